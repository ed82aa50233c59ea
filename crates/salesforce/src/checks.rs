//! The connection check (F2, F11): what Connect, Test Connection and Save all run, step by
//! step, so an admin sees exactly what is missing and what to do about it.

use serde::{Deserialize, Serialize};

use crate::{Client, OrgType, SalesforceError, Session, TokenResponse};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Salesforce issued a token for the connection's credentials.
    TokenObtained,
    /// The identity URL named the org and user.
    IdentityRead,
    /// *API Enabled*: REST calls are allowed for this user.
    ApiEnabled,
    /// *Customize Application*: static resources can be created and updated.
    CustomizeApplication,
    /// Static resources can be listed.
    StaticResourcesReadable,
    /// The org's name was read.
    OrgNameRead,
    /// The org is a sandbox exactly when the connection says so.
    OrgTypeMatches,
    /// *Modify Metadata Through Metadata API Functions* (or *Modify All Data*): what deploying
    /// the loader needs. Checked only for a connection whose system uses the loader.
    ModifyMetadata,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::TokenObtained,
        Step::IdentityRead,
        Step::ApiEnabled,
        Step::CustomizeApplication,
        Step::StaticResourcesReadable,
        Step::OrgNameRead,
        Step::OrgTypeMatches,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Step::TokenObtained => "Salesforce issued a token",
            Step::IdentityRead => "Signed-in user identified",
            Step::ApiEnabled => "API Enabled permission",
            Step::CustomizeApplication => "Customize Application permission",
            Step::StaticResourcesReadable => "Static resources readable",
            Step::OrgNameRead => "Org name read",
            Step::OrgTypeMatches => "Org type matches",
            Step::ModifyMetadata => "Modify Metadata permission (for the loader)",
        }
    }
}

/// What else a connection is used for, so the check covers it too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Its system deploys the loader (issue #15): the Metadata API permission is checked.
    pub loader: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    /// Not run because an earlier step failed.
    Skipped,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub step: Step,
    pub title: String,
    pub outcome: Outcome,
    /// What was found, in words.
    pub detail: String,
    /// What the admin should do, when the step failed.
    pub fix: Option<String>,
}

/// What a passing check learned about the org (stored with the connection, shown in F6).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrgFacts {
    pub org_id: String,
    pub org_name: String,
    pub is_sandbox: bool,
    pub instance_url: String,
    pub user_id: String,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub steps: Vec<StepResult>,
    pub org: Option<OrgFacts>,
    /// The steps this check runs (the loader's only where it is needed).
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    plan: Vec<Step>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.outcome == Outcome::Passed)
    }

    /// The first failed step, if any.
    pub fn failure(&self) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.outcome == Outcome::Failed)
    }

    /// A report for a sign-in that did not produce a token.
    pub fn token_failed(error: &SalesforceError) -> Self {
        let mut report = Report { steps: Vec::new(), org: None, plan: Step::ALL.to_vec() };
        report.push(Step::TokenObtained, Outcome::Failed, error.to_string(), Some(token_fix(error)));
        report.skip_rest();
        report
    }

    fn push(&mut self, step: Step, outcome: Outcome, detail: String, fix: Option<String>) {
        self.steps.push(StepResult { step, title: step.title().to_string(), outcome, detail, fix });
    }

    fn skip_rest(&mut self) {
        let done: Vec<Step> = self.steps.iter().map(|s| s.step).collect();
        let plan = if self.plan.is_empty() { Step::ALL.to_vec() } else { self.plan.clone() };
        for step in plan.into_iter().filter(|s| !done.contains(s)) {
            self.push(step, Outcome::Skipped, "not checked: an earlier step failed".into(), None);
        }
    }
}

fn token_fix(error: &SalesforceError) -> String {
    match error {
        SalesforceError::OAuth { error, description, .. } => match (error.as_str(), description.as_str()) {
            ("invalid_client_id", _) => "Check the consumer key: copy it again from the connected app (or External Client App) in Salesforce Setup.".into(),
            ("invalid_client", d) if d.contains("installed") => {
                "The connected app is not installed in this org. In Salesforce Setup, open Connected Apps OAuth Usage and install it, then try again.".into()
            }
            ("invalid_client", _) => "Check the consumer secret: copy it again from the connected app in Salesforce Setup.".into(),
            ("invalid_request" | "invalid_grant", d) if d.contains("verifier") => {
                "Salesforce refused the code: it was not issued to the sign-in this browser started (the PKCE check failed). Start the connection again from Lightbridge.".into()
            }
            ("invalid_grant", d) if d.contains("approved") => {
                "The user has not been approved for this app. In the connected app's policies choose \"Admin approved users are pre-authorized\" and add the user's profile or permission set — and check that the org type (Production or Sandbox) matches the org.".into()
            }
            ("invalid_grant", d) if d.contains("audience") => "The org type does not match the login host: sandboxes sign in at test.salesforce.com, production orgs at login.salesforce.com.".into(),
            ("invalid_grant", d) if d.contains("client credentials") => {
                "Client credentials are not enabled: in the app's settings enable the Client Credentials Flow and choose a Run As user.".into()
            }
            ("invalid_grant", _) => "Salesforce no longer accepts these credentials: reconnect to sign in again.".into(),
            ("inactive_user", _) => "The Salesforce user is deactivated: use an active user.".into(),
            ("invalid_app_access", _) => "The user is not allowed to use this app: assign the app to the user's profile or a permission set.".into(),
            _ => format!("Salesforce refused the sign-in ({error}). Check the app's settings and try again."),
        },
        SalesforceError::Unreachable { .. } => "Salesforce could not be reached. Check the login host and try again; if it persists, Salesforce may be down.".into(),
        SalesforceError::HostNotAllowed(_) => "Use login.salesforce.com, test.salesforce.com or your org's My Domain (…my.salesforce.com).".into(),
        _ => "Check the connection's settings and try again.".into(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PermissionRow {
    permissions_customize_application: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OrgRow {
    name: String,
    is_sandbox: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserRow {
    username: String,
    email: Option<String>,
    name: Option<String>,
}

/// Who signed in: the identity URL when the app has the `id` scope; otherwise (a 401 or 403
/// from it) the same facts from the token reply (org and user ids) and the user's own `User`
/// record, which the `api` scope reads. The `id` scope is not silently required.
async fn identify(
    client: &Client,
    session: &Session,
    token: &TokenResponse,
) -> Result<crate::Identity, SalesforceError> {
    match client.identity(session, &token.id).await {
        Ok(identity) => Ok(identity),
        Err(SalesforceError::Api { status: 401 | 403, .. } | SalesforceError::Unexpected { status: 401 | 403, .. }) => {
            if !token.user_id.chars().all(|c| c.is_ascii_alphanumeric()) || token.user_id.is_empty() {
                return Err(SalesforceError::Unexpected { status: 200, detail: "the token names no user".into() });
            }
            let soql = format!("SELECT Username, Email, Name FROM User WHERE Id = '{}'", token.user_id);
            let found = client.query::<UserRow>(session, &soql).await?;
            let user = found.records.into_iter().next().ok_or_else(|| SalesforceError::Unexpected {
                status: 200,
                detail: "the signed-in user's record is not readable".into(),
            })?;
            Ok(crate::Identity {
                user_id: token.user_id.clone(),
                organization_id: token.org_id.clone(),
                username: user.username,
                email: user.email,
                display_name: user.name,
            })
        }
        Err(e) => Err(e),
    }
}

/// Runs every step after the token: stops at the first failure and marks the rest skipped.
pub async fn run(client: &Client, token: &TokenResponse, expected: OrgType) -> Report {
    run_for(client, token, expected, Needs::default()).await
}

/// [`run`], with the steps what the connection is used for needs.
pub async fn run_for(client: &Client, token: &TokenResponse, expected: OrgType, needs: Needs) -> Report {
    let mut plan = Step::ALL.to_vec();
    if needs.loader {
        let after = plan.iter().position(|s| *s == Step::CustomizeApplication).map_or(plan.len(), |i| i + 1);
        plan.insert(after, Step::ModifyMetadata);
    }
    let mut report = Report { steps: Vec::new(), org: None, plan };
    report.push(Step::TokenObtained, Outcome::Passed, format!("signed in to org {}", token.org_id), None);
    let session = Session { instance_url: token.instance_url.clone(), access_token: token.access_token.clone() };
    let identity = match identify(client, &session, token).await {
        Ok(i) => i,
        Err(e) => {
            report.push(
                Step::IdentityRead,
                Outcome::Failed,
                e.to_string(),
                Some(if e.is_transient() {
                    "Salesforce did not describe the signed-in user; try again.".into()
                } else {
                    "Salesforce would not describe the signed-in user to this app. In the connected app's OAuth settings, add the \"Manage user data via APIs (api)\" scope (and \"Access the identity URL service (id, profile, email, address, phone)\"), then test again.".into()
                }),
            );
            report.skip_rest();
            return report;
        }
    };
    let user = identity.username.clone();
    report.push(Step::IdentityRead, Outcome::Passed, format!("signed in as {user}"), None);

    // API Enabled: the first REST call answers API_CURRENTLY_DISABLED when it is missing.
    let permissions = match client
        .query::<PermissionRow>(
            &session,
            "SELECT PermissionsCustomizeApplication, PermissionsApiEnabled FROM UserPermissionAccess",
        )
        .await
    {
        Ok(result) => result,
        Err(SalesforceError::Api { code, .. })
            if code == "API_CURRENTLY_DISABLED" || code == "API_DISABLED_FOR_ORG" =>
        {
            let (detail, fix) = if code == "API_DISABLED_FOR_ORG" {
                (
                    "this org's edition has no API access".to_string(),
                    "Use an org whose edition includes API access (Enterprise, Unlimited, Developer or Performance)."
                        .to_string(),
                )
            } else {
                (
                    format!("{user} does not have the API Enabled permission"),
                    format!(
                        "In Salesforce Setup, give {user} the API Enabled permission (Profile or Permission Set → System Permissions → API Enabled), then test again."
                    ),
                )
            };
            report.push(Step::ApiEnabled, Outcome::Failed, detail, Some(fix));
            report.skip_rest();
            return report;
        }
        Err(e) => {
            report.push(
                Step::ApiEnabled,
                Outcome::Failed,
                e.to_string(),
                Some("Salesforce refused a REST call; try again.".into()),
            );
            report.skip_rest();
            return report;
        }
    };
    report.push(Step::ApiEnabled, Outcome::Passed, format!("{user} may call the API"), None);

    let customize = permissions.records.first().is_some_and(|r| r.permissions_customize_application);
    if !customize {
        report.push(
            Step::CustomizeApplication,
            Outcome::Failed,
            format!("{user} does not have the Customize Application permission, which creating and updating static resources needs"),
            Some(format!("In Salesforce Setup, give {user} the Customize Application permission (Profile or Permission Set → System Permissions → Customize Application), then test again.")),
        );
        report.skip_rest();
        return report;
    }
    report.push(
        Step::CustomizeApplication,
        Outcome::Passed,
        format!("{user} may create and update static resources"),
        None,
    );

    if needs.loader {
        match client.may_deploy_metadata(&session).await {
            Ok(true) => report.push(
                Step::ModifyMetadata,
                Outcome::Passed,
                format!("{user} may deploy the loader through the Metadata API"),
                None,
            ),
            Ok(false) => {
                report.push(
                    Step::ModifyMetadata,
                    Outcome::Failed,
                    format!("{user} may not deploy metadata, which the system's loader needs"),
                    Some(format!("In Salesforce Setup, give {user} the Modify Metadata Through Metadata API Functions permission (or Modify All Data), then test again.")),
                );
                report.skip_rest();
                return report;
            }
            Err(e) => {
                report.push(
                    Step::ModifyMetadata,
                    Outcome::Failed,
                    e.to_string(),
                    Some("Salesforce would not say whether the user may deploy metadata; try again.".into()),
                );
                report.skip_rest();
                return report;
            }
        }
    }

    match client
        .tooling_query::<serde_json::Value>(
            &session,
            "SELECT Id, Name FROM StaticResource WHERE NamespacePrefix = null LIMIT 1",
        )
        .await
    {
        Ok(r) => report.push(
            Step::StaticResourcesReadable,
            Outcome::Passed,
            format!("{} static resource(s) in the org", r.total_size),
            None,
        ),
        Err(e) => {
            report.push(
                Step::StaticResourcesReadable,
                Outcome::Failed,
                e.to_string(),
                Some(format!("Check that {user} can view static resources (Setup → Static Resources).")),
            );
            report.skip_rest();
            return report;
        }
    }

    let org = match client.query::<OrgRow>(&session, "SELECT Name, IsSandbox FROM Organization").await {
        Ok(mut r) if !r.records.is_empty() => r.records.remove(0),
        Ok(_) => {
            report.push(Step::OrgNameRead, Outcome::Failed, "the org did not describe itself".into(), None);
            report.skip_rest();
            return report;
        }
        Err(e) => {
            report.push(
                Step::OrgNameRead,
                Outcome::Failed,
                e.to_string(),
                Some("Salesforce refused to describe the org; try again.".into()),
            );
            report.skip_rest();
            return report;
        }
    };
    report.push(Step::OrgNameRead, Outcome::Passed, org.name.clone(), None);

    let actual = if org.is_sandbox { OrgType::Sandbox } else { OrgType::Production };
    if actual != expected {
        let (is, chosen) = if org.is_sandbox { ("a sandbox", "Production") } else { ("a production org", "Sandbox") };
        report.push(
            Step::OrgTypeMatches,
            Outcome::Failed,
            format!("{} is {is}, but the connection is set to {chosen}", org.name),
            Some(format!(
                "Set the org type to {} (and its login host), or connect a {} org.",
                if org.is_sandbox { "Sandbox" } else { "Production" },
                chosen.to_lowercase()
            )),
        );
        return report;
    }
    report.push(
        Step::OrgTypeMatches,
        Outcome::Passed,
        format!("{} is {}", org.name, if org.is_sandbox { "a sandbox" } else { "a production org" }),
        None,
    );
    report.org = Some(OrgFacts {
        org_id: identity.organization_id,
        org_name: org.name,
        is_sandbox: org.is_sandbox,
        instance_url: token.instance_url.to_string().trim_end_matches('/').to_string(),
        user_id: identity.user_id,
        username: identity.username,
        email: identity.email,
        display_name: identity.display_name,
    });
    report
}
