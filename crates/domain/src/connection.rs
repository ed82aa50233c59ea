//! Salesforce connections: new ones (named, OAuth / JWT / client credentials) and legacy
//! connectors (one per system × environment, OAuth only).

use serde::{Deserialize, Serialize};
use url::Url;

use crate::{AccountId, ConnectionId, ConnectionName, DomainError, EnvironmentId, Millis, SystemId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgType {
    Production,
    Sandbox,
}

impl OrgType {
    pub fn label(self) -> &'static str {
        match self {
            OrgType::Production => "Production",
            OrgType::Sandbox => "Sandbox",
        }
    }
}

/// Where the admin signs in: Salesforce's production or sandbox login host, or the org's
/// My Domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "url")]
pub enum LoginHost {
    Login,
    Test,
    MyDomain(String),
}

impl LoginHost {
    /// Reads `login`, `test`, or a My Domain URL (`https://acme.my.salesforce.com`; the scheme
    /// may be left out). Whether a My Domain host may receive tokens is the host policy's call.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let t = text.trim();
        match t.to_ascii_lowercase().as_str() {
            "login" | "login.salesforce.com" | "https://login.salesforce.com" => return Ok(LoginHost::Login),
            "test" | "test.salesforce.com" | "https://test.salesforce.com" => return Ok(LoginHost::Test),
            "" => return Err(DomainError::invalid("login_host", "choose login, test, or your org's My Domain URL")),
            _ => {}
        }
        let with_scheme = if t.contains("://") { t.to_string() } else { format!("https://{t}") };
        let url =
            Url::parse(&with_scheme).map_err(|_| DomainError::invalid("login_host", format!("{t:?} is not a URL")))?;
        if url.host_str().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
            || !(url.path() == "/" || url.path().is_empty())
        {
            return Err(DomainError::invalid(
                "login_host",
                "a My Domain URL is just the host, like https://acme.my.salesforce.com",
            ));
        }
        Ok(LoginHost::MyDomain(url.origin().ascii_serialization()))
    }

    pub fn as_setting(&self) -> String {
        match self {
            LoginHost::Login => "login".into(),
            LoginHost::Test => "test".into(),
            LoginHost::MyDomain(url) => url.clone(),
        }
    }
}

/// How the connection signs in to Salesforce. Secrets (consumer secret, private key, tokens)
/// are not here: they live sealed in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum AuthMethod {
    /// Authorization code with PKCE (F1).
    OAuth { consumer_key: String },
    /// JWT bearer: the app's key signs an assertion for `username`.
    Jwt { consumer_key: String, username: String },
    /// Client credentials against a My Domain, acting as the app's run-as user.
    ClientCredentials { consumer_key: String },
}

impl AuthMethod {
    pub fn consumer_key(&self) -> &str {
        match self {
            AuthMethod::OAuth { consumer_key }
            | AuthMethod::Jwt { consumer_key, .. }
            | AuthMethod::ClientCredentials { consumer_key } => consumer_key,
        }
    }
    pub fn label(&self) -> &'static str {
        match self {
            AuthMethod::OAuth { .. } => "OAuth",
            AuthMethod::Jwt { .. } => "JWT",
            AuthMethod::ClientCredentials { .. } => "Client credentials",
        }
    }
}

/// product.md §4: Logged in (the last call or refresh succeeded), Logged out (Salesforce
/// refused the tokens), Not available (unreachable, or not checked yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    LoggedIn,
    LoggedOut,
    NotAvailable,
}

impl ConnectionStatus {
    pub fn label(self) -> &'static str {
        match self {
            ConnectionStatus::LoggedIn => "Logged in",
            ConnectionStatus::LoggedOut => "Logged out",
            ConnectionStatus::NotAvailable => "Not available",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::LoggedIn => "logged_in",
            ConnectionStatus::LoggedOut => "logged_out",
            ConnectionStatus::NotAvailable => "not_available",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "logged_in" => Some(ConnectionStatus::LoggedIn),
            "logged_out" => Some(ConnectionStatus::LoggedOut),
            "not_available" => Some(ConnectionStatus::NotAvailable),
            _ => None,
        }
    }
}

/// Why a connection is Logged out or Not available (issue #14): a stable code for the API,
/// metrics and alerts, with what it means and the fix for the person who reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    /// `invalid_grant` / `expired access/refresh token`: the refresh token was revoked, expired
    /// under the app's refresh token policy, or rotated away.
    RefreshTokenInvalid,
    /// Salesforce revoked this grant when its user signed in through the same app a sixth time.
    ApprovalLimit,
    /// The Salesforce user is deactivated.
    UserInactive,
    /// The Salesforce user is frozen.
    UserFrozen,
    /// The connected app is not installed in the org (and the user may not use uninstalled apps).
    AppNotInstalled,
    /// An admin blocked the connected app in the org.
    AppBlocked,
    /// The request came from an address the app's or the user's IP restrictions refuse.
    IpRestricted,
    /// The org is deleted, locked or expired.
    OrgInactive,
    /// The consumer key or secret is no longer the app's.
    ClientRejected,
    /// The user is not approved for the app (JWT pre-authorization, admin approval).
    UserNotApproved,
    /// The app refused the JWT's signature: its certificate is not the connection's key.
    CertificateRejected,
    /// Nothing to sign in with is stored (no refresh token or key).
    NoCredentials,
    /// The user or org may not use the API.
    ApiDisabled,
    /// Salesforce refuses a session it has just issued (locked to an address, IP
    /// restrictions relaxed only for refreshes, API access control).
    SessionRefused,
    /// The sandbox was refreshed: its new copy is another org (a new org id).
    SandboxRefreshed,
    /// Salesforce signed the connection's credentials in to another org than its own.
    OrgChanged,
    /// The org's My Domain changed and Salesforce redirects the connection's login host (or
    /// still its instance after a renewal) to the new one.
    MyDomainChanged,
    /// Salesforce named an instance for the org that credentials may not go to.
    InstanceNotAllowed,
    /// Salesforce has not answered (network, 5xx, limits) for longer than the grace period.
    SalesforceUnreachable,
    /// Salesforce refused with an error Lightbridge has no better name for.
    SalesforceError,
}

impl StatusReason {
    pub const ALL: [StatusReason; 20] = [
        StatusReason::RefreshTokenInvalid,
        StatusReason::ApprovalLimit,
        StatusReason::UserInactive,
        StatusReason::UserFrozen,
        StatusReason::AppNotInstalled,
        StatusReason::AppBlocked,
        StatusReason::IpRestricted,
        StatusReason::OrgInactive,
        StatusReason::ClientRejected,
        StatusReason::UserNotApproved,
        StatusReason::CertificateRejected,
        StatusReason::NoCredentials,
        StatusReason::ApiDisabled,
        StatusReason::SessionRefused,
        StatusReason::SandboxRefreshed,
        StatusReason::OrgChanged,
        StatusReason::MyDomainChanged,
        StatusReason::InstanceNotAllowed,
        StatusReason::SalesforceUnreachable,
        StatusReason::SalesforceError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatusReason::RefreshTokenInvalid => "refresh_token_invalid",
            StatusReason::ApprovalLimit => "approval_limit",
            StatusReason::UserInactive => "user_inactive",
            StatusReason::UserFrozen => "user_frozen",
            StatusReason::AppNotInstalled => "app_not_installed",
            StatusReason::AppBlocked => "app_blocked",
            StatusReason::IpRestricted => "ip_restricted",
            StatusReason::OrgInactive => "org_inactive",
            StatusReason::ClientRejected => "client_rejected",
            StatusReason::UserNotApproved => "user_not_approved",
            StatusReason::CertificateRejected => "certificate_rejected",
            StatusReason::NoCredentials => "no_credentials",
            StatusReason::ApiDisabled => "api_disabled",
            StatusReason::SessionRefused => "session_refused",
            StatusReason::SandboxRefreshed => "sandbox_refreshed",
            StatusReason::OrgChanged => "org_changed",
            StatusReason::MyDomainChanged => "my_domain_changed",
            StatusReason::InstanceNotAllowed => "instance_not_allowed",
            StatusReason::SalesforceUnreachable => "salesforce_unreachable",
            StatusReason::SalesforceError => "salesforce_error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        StatusReason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What happened, in a few words.
    pub fn summary(self) -> &'static str {
        match self {
            StatusReason::RefreshTokenInvalid => "Salesforce no longer accepts the stored sign-in",
            StatusReason::ApprovalLimit => {
                "Salesforce revoked this sign-in: its user signed in through the same connected app a sixth time"
            }
            StatusReason::UserInactive => "The Salesforce user is deactivated",
            StatusReason::UserFrozen => "The Salesforce user is frozen",
            StatusReason::AppNotInstalled => "The connected app is not installed in the org",
            StatusReason::AppBlocked => "The connected app is blocked in the org",
            StatusReason::IpRestricted => "Salesforce refuses Lightbridge's network address",
            StatusReason::OrgInactive => "The org is no longer active",
            StatusReason::ClientRejected => "The consumer key or secret is no longer valid",
            StatusReason::UserNotApproved => "The user is not approved for the connected app",
            StatusReason::CertificateRejected => "The connected app refuses this connection's key",
            StatusReason::NoCredentials => "No sign-in is stored for this connection",
            StatusReason::ApiDisabled => "The user or org may not use the API",
            StatusReason::SessionRefused => "Salesforce refuses the sessions it issues to Lightbridge",
            StatusReason::SandboxRefreshed => "The sandbox was refreshed: its new copy is a new org",
            StatusReason::OrgChanged => "Salesforce signs these credentials in to another org",
            StatusReason::MyDomainChanged => "The org's My Domain changed: Salesforce redirects to the new one",
            StatusReason::InstanceNotAllowed => {
                "Salesforce moved the org to a host Lightbridge may not send credentials to"
            }
            StatusReason::SalesforceUnreachable => "Salesforce has not answered for a while",
            StatusReason::SalesforceError => "Salesforce refused the request",
        }
    }

    /// What a person does about it.
    pub fn fix(self) -> &'static str {
        match self {
            StatusReason::RefreshTokenInvalid => {
                "Reconnect to sign in again. If it keeps happening, check the connected app's refresh token policy (Setup → App Manager → Manage → Edit Policies: \"Refresh token is valid until revoked\"), and that the Salesforce user has no more than five sign-ins through this app: a sixth revokes the oldest."
            }
            StatusReason::ApprovalLimit => {
                "Reconnect, as another Salesforce user if this one already has five connections through this app; or use JWT for some of them (JWT sign-ins are not approvals). Salesforce keeps at most five sign-ins per user and connected app."
            }
            StatusReason::UserInactive => {
                "Reactivate the Salesforce user, then choose Check now (the stored sign-in works again); or Reconnect as an active user."
            }
            StatusReason::UserFrozen => {
                "Unfreeze the Salesforce user (Setup → Users → the user → Unfreeze), then choose Check now; or Reconnect as another user."
            }
            StatusReason::AppNotInstalled => {
                "Install the connected app in the org (Setup → Connected Apps OAuth Usage → Install), or give the user the \"Approve Uninstalled Connected Apps\" permission; then choose Check now."
            }
            StatusReason::AppBlocked => {
                "Unblock the connected app (Setup → Connected Apps OAuth Usage → Unblock), then choose Check now (an OAuth connection needs Reconnect: blocking ended its sign-in)."
            }
            StatusReason::IpRestricted => {
                "Relax the connected app's IP restrictions (Edit Policies → IP Relaxation), or add Lightbridge's outbound addresses to the profile's login IP ranges; then choose Check now."
            }
            StatusReason::OrgInactive => {
                "The org is deleted, locked or expired: Reconnect to an active org, or delete this connection."
            }
            StatusReason::ClientRejected => {
                "Edit the connection with the connected app's current consumer key and secret."
            }
            StatusReason::UserNotApproved => {
                "Approve the user for the connected app (Edit Policies → Permitted Users: \"Admin approved users are pre-authorized\", then add their profile or a permission set), then choose Check now."
            }
            StatusReason::CertificateRejected => {
                "Upload the certificate of this connection's private key to the connected app, or Edit the connection with the key the app's certificate belongs to."
            }
            StatusReason::NoCredentials => "Reconnect to sign in again.",
            StatusReason::ApiDisabled => {
                "Give the Salesforce user the \"API Enabled\" permission (the org's edition must include API access)."
            }
            StatusReason::SessionRefused => {
                "Check the org's session settings (\"Lock sessions to the IP address from which they originated\"), the connected app's IP Relaxation (\"relax for refresh tokens\" still refuses calls from outside the profile's IP ranges) and API Access Control; then choose Check now."
            }
            StatusReason::SandboxRefreshed => {
                "Reconnect: the refreshed sandbox of the same name is accepted as this connection's new copy (publish again to it: a refresh copies production's resources)."
            }
            StatusReason::OrgChanged => {
                "Check which org the credentials belong to: a connection stays with its org, so add a new connection for the other one."
            }
            StatusReason::MyDomainChanged => {
                "Edit the connection: set its login URL to the org's new My Domain (Setup → My Domain shows it), then Reconnect."
            }
            StatusReason::InstanceNotAllowed => {
                "If the host named below is your org's new My Domain, ask the operator to allow it (Salesforce's own domains over HTTPS always are), then Reconnect; otherwise do not: Lightbridge refuses to send credentials there."
            }
            StatusReason::SalesforceUnreachable => {
                "Nothing to do: Lightbridge keeps trying, and the connection is Logged in again by itself when Salesforce answers."
            }
            StatusReason::SalesforceError => {
                "Read Salesforce's message below, fix it in the org, then check the connection again."
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ConnectionKind {
    /// Created in the Integration Center: named, any auth method, has Edit.
    New { name: ConnectionName },
    /// Created from a system's Connectors tab: OAuth only, one per system × environment.
    Legacy { system_id: SystemId, environment_id: EnvironmentId, active: bool },
}

/// What the connection check read about the org, shown in the table (F6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgFacts {
    pub org_id: String,
    pub org_name: String,
    pub instance_url: String,
    pub user_id: String,
    pub username: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub account_id: AccountId,
    pub kind: ConnectionKind,
    pub org_type: OrgType,
    pub login_host: LoginHost,
    pub auth: AuthMethod,
    pub org: Option<OrgFacts>,
    pub status: ConnectionStatus,
    /// Why the status is what it is, in words (e.g. Salesforce's error).
    pub status_detail: Option<String>,
    /// Why the connection is Logged out or Not available, as a stable code.
    pub status_reason: Option<StatusReason>,
    /// When its current OAuth grant was given: one of its Salesforce user's five approvals for
    /// the connected app, the oldest of which a sixth sign-in revokes. Read only (the store sets
    /// it when a sign-in's tokens are saved).
    pub granted_at: Option<Millis>,
    pub status_checked_at: Option<Millis>,
    pub created_at: Millis,
    /// Email of the Salesforce user who authenticated it.
    pub created_by: Option<String>,
    pub modified_at: Millis,
    pub modified_by: Option<String>,
}

impl Connection {
    pub fn is_legacy(&self) -> bool {
        matches!(self.kind, ConnectionKind::Legacy { .. })
    }

    /// Legacy connectors are OAuth only (F4).
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.is_legacy() && !matches!(self.auth, AuthMethod::OAuth { .. }) {
            return Err(DomainError::invalid("auth", "legacy connectors use OAuth only"));
        }
        if let AuthMethod::ClientCredentials { .. } = self.auth
            && !matches!(self.login_host, LoginHost::MyDomain(_))
        {
            return Err(DomainError::invalid(
                "login_host",
                "client credentials need your org's My Domain URL, not login or test",
            ));
        }
        if self.auth.consumer_key().trim().is_empty() {
            return Err(DomainError::invalid("consumer_key", "the consumer key is required"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_hosts_parse_from_what_admins_type() {
        assert_eq!(LoginHost::parse("login"), Ok(LoginHost::Login));
        assert_eq!(LoginHost::parse("https://test.salesforce.com"), Ok(LoginHost::Test));
        assert_eq!(
            LoginHost::parse("acme.my.salesforce.com"),
            Ok(LoginHost::MyDomain("https://acme.my.salesforce.com".into()))
        );
        assert_eq!(
            LoginHost::parse("https://Acme.My.Salesforce.com/"),
            Ok(LoginHost::MyDomain("https://acme.my.salesforce.com".into()))
        );
        assert!(LoginHost::parse("https://acme.my.salesforce.com/some/path").is_err());
        assert!(LoginHost::parse("").is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in [ConnectionStatus::LoggedIn, ConnectionStatus::LoggedOut, ConnectionStatus::NotAvailable] {
            assert_eq!(ConnectionStatus::parse(s.as_str()), Some(s));
        }
    }
}
