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
