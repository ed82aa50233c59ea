//! The Metadata API's REST deploy (issue #15; `docs/salesforce-behaviour.md`, "The loader"):
//! start a deploy of a ZIP, read its status with the components that failed, cancel it; check
//! beforehand that the user may deploy; read back the components an org holds.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::oauth::join;
use crate::{API_VERSION, Client, SalesforceError, Session};

/// How a deploy runs: a validation that saves nothing (`checkOnly`), or the real thing.
/// `rollbackOnError` is always sent (production requires it) and `testLevel` never: left out,
/// a package without Apex runs no tests, where `NoTestRun` is refused in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployMode {
    Validate,
    Deploy,
}

/// One component's problem, as Salesforce's DeployMessage names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentProblem {
    pub component_type: String,
    pub full_name: String,
    pub file_name: String,
    pub problem: String,
    /// `Error` or `Warning`.
    pub problem_type: String,
}

/// A deploy's state.
#[derive(Debug, Clone)]
pub struct DeployStatus {
    pub id: String,
    /// `Pending`, `InProgress`, `FinalizingDeploy`, `Succeeded`, `SucceededPartial`, `Failed`,
    /// `FinalizingDeployFailed`, `Canceling`, `Canceled`.
    pub status: String,
    pub done: bool,
    pub success: bool,
    pub check_only: bool,
    pub problems: Vec<ComponentProblem>,
    pub error: Option<String>,
}

impl DeployStatus {
    /// The errors (not the warnings), each as "Type name (file): problem".
    pub fn errors(&self) -> Vec<String> {
        self.problems
            .iter()
            .filter(|p| p.problem_type != "Warning")
            .map(|p| {
                let what = [p.component_type.as_str(), p.full_name.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
                format!("{what} ({}): {}", p.file_name, p.problem)
            })
            .chain(self.error.clone())
            .collect()
    }

    /// Finished and saved (or, for a validation, would be).
    pub fn succeeded(&self) -> bool {
        self.done && self.success && self.status == "Succeeded"
    }
}

/// A metadata component an org holds, as a query reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeployedComponent {
    pub id: String,
    pub developer_name: String,
    #[serde(default)]
    pub namespace_prefix: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub last_modified_date: Option<String>,
}

/// Salesforce writes booleans and numbers as strings in places; one-element lists as objects.
fn flag(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// Reads a status answer (`{id, deployResult: {…}}`) leniently.
pub fn parse_status(body: &Value) -> Result<DeployStatus, SalesforceError> {
    let result = &body["deployResult"];
    let id = text(&result["id"]);
    if id.is_empty() {
        return Err(SalesforceError::Unexpected {
            status: 200,
            detail: "a deploy answer without deployResult.id".into(),
        });
    }
    let problems = list(&result["details"]["componentFailures"])
        .iter()
        .map(|f| ComponentProblem {
            component_type: text(&f["componentType"]),
            full_name: text(&f["fullName"]),
            file_name: text(&f["fileName"]),
            problem: text(&f["problem"]),
            problem_type: text(&f["problemType"]),
        })
        .collect();
    let error = match (text(&result["errorStatusCode"]), text(&result["errorMessage"])) {
        (code, message) if !message.is_empty() => {
            Some(if code.is_empty() { message } else { format!("{code}: {message}") })
        }
        _ => None,
    };
    Ok(DeployStatus {
        id,
        status: text(&result["status"]),
        done: flag(&result["done"]),
        success: flag(&result["success"]),
        check_only: flag(&result["checkOnly"]),
        problems,
        error,
    })
}

impl Client {
    /// Starts a deploy of `zip` (a single package: `package.xml` at its root); its id.
    pub async fn deploy(&self, session: &Session, zip: &[u8], mode: DeployMode) -> Result<String, SalesforceError> {
        let url = join(&session.instance_url, &format!("services/data/v{API_VERSION}/metadata/deployRequest"));
        let options = json!({"deployOptions": {
            "checkOnly": mode == DeployMode::Validate,
            "rollbackOnError": true,
            "singlePackage": true,
            "ignoreWarnings": true,
            "allowMissingFiles": false,
        }});
        // A boundary that cannot occur in the ZIP.
        let boundary = (0u32..)
            .map(|n| format!("lightbridge-deploy-{n}"))
            .find(|b| memchr::memmem::find(zip, b.as_bytes()).is_none())
            .unwrap_or_default();
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"json\"\r\nContent-Type: application/json\r\n\r\n{options}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"deploy.zip\"\r\nContent-Type: application/zip\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(zip);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = self
            .http
            .post(url.clone())
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        let answer: Value = self.send_json(session, request, &url).await?;
        Ok(parse_status(&answer)?.id)
    }

    /// A deploy's status, with its component failures.
    pub async fn deploy_status(&self, session: &Session, id: &str) -> Result<DeployStatus, SalesforceError> {
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SalesforceError::Config(format!("{id:?} is not a deploy id")));
        }
        let path = format!("services/data/v{API_VERSION}/metadata/deployRequest/{id}?includeDetails=true");
        let answer: Value = self.get_json(session, &path).await?;
        parse_status(&answer)
    }

    /// Asks Salesforce to cancel a deploy that has not finished.
    pub async fn cancel_deploy(&self, session: &Session, id: &str) -> Result<(), SalesforceError> {
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SalesforceError::Config(format!("{id:?} is not a deploy id")));
        }
        let url = join(&session.instance_url, &format!("services/data/v{API_VERSION}/metadata/deployRequest/{id}"));
        let request = self.http.patch(url.clone()).json(&json!({"deployResult": {"status": "Canceling"}}));
        self.send_empty(session, request, &url).await
    }

    /// Whether the signed-in user may deploy metadata: *Modify Metadata Through Metadata API
    /// Functions* or *Modify All Data*, as `UserPermissionAccess` reports the caller's own.
    pub async fn may_deploy_metadata(&self, session: &Session) -> Result<bool, SalesforceError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Access {
            #[serde(default)]
            permissions_modify_all_data: bool,
            #[serde(default)]
            permissions_modify_metadata: bool,
        }
        let soql = "SELECT PermissionsModifyAllData, PermissionsModifyMetadata FROM UserPermissionAccess";
        let result = self.query::<Access>(session, soql).await?;
        Ok(result.records.first().is_some_and(|a| a.permissions_modify_all_data || a.permissions_modify_metadata))
    }

    /// The org's own components of a Tooling type (`AuraDefinitionBundle`,
    /// `LightningComponentBundle`, `CspTrustedSite`) with these developer names.
    pub async fn deployed_components(
        &self,
        session: &Session,
        type_name: &str,
        names: &[&str],
    ) -> Result<Vec<DeployedComponent>, SalesforceError> {
        if !matches!(type_name, "AuraDefinitionBundle" | "LightningComponentBundle" | "CspTrustedSite") {
            return Err(SalesforceError::Config(format!("{type_name} is not a component type Lightbridge reads")));
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let quoted: Vec<String> =
            names.iter().map(|n| crate::resources::soql_name(n).map(|n| format!("'{n}'"))).collect::<Result<_, _>>()?;
        let soql = format!(
            "SELECT Id, DeveloperName, NamespacePrefix, Description, LastModifiedDate FROM {type_name} \
             WHERE DeveloperName IN ({}) AND NamespacePrefix = null",
            quoted.join(", ")
        );
        Ok(self.tooling_query::<DeployedComponent>(session, &soql).await?.records)
    }

    /// The org's Lightning apps the user can see, with their utility bars (`AppDefinition`).
    pub async fn lightning_apps(&self, session: &Session) -> Result<Vec<LightningApp>, SalesforceError> {
        let soql = "SELECT DurableId, DeveloperName, NamespacePrefix, Label, UtilityBar FROM AppDefinition";
        Ok(self.query::<LightningApp>(session, soql).await?.records)
    }

    /// The org's utility bars (`FlexiPage` of type `UtilityBar`), the org's own and managed
    /// packages', without their metadata.
    pub async fn utility_bars(&self, session: &Session) -> Result<Vec<FlexiPage>, SalesforceError> {
        let soql = "SELECT Id, DeveloperName, NamespacePrefix FROM FlexiPage WHERE Type = 'UtilityBar'";
        Ok(self.tooling_query::<FlexiPage>(session, soql).await?.records)
    }

    /// One Lightning page (`FlexiPage`) with its metadata, by developer name among the org's
    /// own (Tooling reads `Metadata` one record at a time). `None`: the org has no such page.
    pub async fn flexipage(&self, session: &Session, name: &str) -> Result<Option<FlexiPage>, SalesforceError> {
        let name = crate::resources::soql_name(name)?;
        let soql = format!(
            "SELECT Id, DeveloperName, NamespacePrefix, Metadata FROM FlexiPage WHERE DeveloperName = '{name}' \
             AND NamespacePrefix = null LIMIT 1"
        );
        Ok(self.tooling_query::<FlexiPage>(session, &soql).await?.records.into_iter().next())
    }
}

/// A Lightning app, as `AppDefinition` shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LightningApp {
    #[serde(default)]
    pub durable_id: Option<String>,
    pub developer_name: String,
    #[serde(default)]
    pub namespace_prefix: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    /// The developer name of the app's utility bar page, when it has one.
    #[serde(default)]
    pub utility_bar: Option<String>,
}

impl LightningApp {
    /// `standard__LightningSales`, or `MyApp` for an app of the org's own.
    pub fn full_name(&self) -> String {
        match self.namespace_prefix.as_deref().filter(|n| !n.is_empty()) {
            Some(ns) => format!("{ns}__{}", self.developer_name),
            None => self.developer_name.clone(),
        }
    }
}

/// A Lightning page and its metadata (Tooling's JSON form of the Metadata API type).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlexiPage {
    pub id: String,
    pub developer_name: String,
    #[serde(default)]
    pub namespace_prefix: Option<String>,
    #[serde(default)]
    pub metadata: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_answers_are_read_leniently() {
        // The guide's own example writes booleans as strings; a one-element list may come bare.
        let body = json!({"id": "0Af1", "deployResult": {"id": "0Af1", "status": "Failed", "done": "true",
            "success": "false", "checkOnly": false, "details": {"componentFailures": {
                "componentType": "AuraDefinitionBundle", "fullName": "lbLoader", "fileName": "aura/lbLoader/lbLoader.cmp",
                "problem": "No STATIC_RESOURCE named Player found", "problemType": "Error"}}}});
        let status = parse_status(&body).expect("status");
        assert!(status.done && !status.success && !status.succeeded());
        assert_eq!(
            status.errors(),
            ["AuraDefinitionBundle lbLoader (aura/lbLoader/lbLoader.cmp): No STATIC_RESOURCE named Player found"]
        );
        let warning = json!({"deployResult": {"id": "0Af2", "status": "Succeeded", "done": true, "success": true,
            "details": {"componentFailures": [{"problemType": "Warning", "problem": "No CspTrustedSite named: X found"}]}}});
        let status = parse_status(&warning).expect("status");
        assert!(status.succeeded() && status.errors().is_empty(), "a warning is not an error");
        assert!(parse_status(&json!({})).is_err());
    }
}
