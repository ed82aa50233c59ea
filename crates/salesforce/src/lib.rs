//! Lightbridge's Salesforce client: the OAuth 2.0 grants (authorization code with PKCE,
//! refresh, JWT bearer, client credentials), revoke, identity, REST and Tooling calls, and the
//! connection check (F2, F11). Base URLs are always injected, and every URL a token is sent to
//! passes the [`HostPolicy`] first: Salesforce's own domains, or hosts the operator allowed.
//!
//! Follows `shared/spec/salesforce-api.md`; tested against the `emulator` crate. It must not
//! import the store or the server.

pub mod checks;
mod error;
mod hosts;
pub mod jwt;
pub mod metadata;
pub mod oauth;
mod resources;
mod rest;
pub mod usage;

pub use error::SalesforceError;
pub use hosts::HostPolicy;
pub use oauth::{ClientCredentials, Pkce, TokenResponse};
pub use resources::{NewStaticResource, ResourceUpload, StaticResource};
pub use rest::{Identity, QueryResult, Session};
pub use usage::ApiUsage;

/// REST API version Lightbridge speaks (Spring '24 and later all serve it).
pub const API_VERSION: &str = "60.0";

/// Whether an org is a production (or Developer Edition) org or a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgType {
    Production,
    Sandbox,
}

impl OrgType {
    /// The JWT bearer audience Salesforce expects for this kind of org.
    pub fn jwt_audience(self) -> &'static str {
        match self {
            OrgType::Production => "https://login.salesforce.com",
            OrgType::Sandbox => "https://test.salesforce.com",
        }
    }
}

/// The HTTP client Lightbridge uses for Salesforce: one connection pool, a host policy.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    policy: HostPolicy,
    /// Orgs (by instance URL) that refused a multipart upload and took the base64 JSON form
    /// instead: they get JSON from then on; every other org still gets multipart.
    json_only: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// "Now", for what the client signs (JWT assertions' expiry).
    clock: std::sync::Arc<dyn domain::Clock>,
    /// Each instance's daily API use, from its latest answer's `Sforce-Limit-Info` (#17).
    usage: usage::UsageBook,
}

impl Client {
    pub fn new(policy: HostPolicy) -> Result<Self, SalesforceError> {
        Self::with_ca(policy, None)
    }

    /// A client that also trusts an extra CA certificate (PEM), e.g. the emulator's.
    pub fn with_ca(policy: HostPolicy, extra_ca_pem: Option<&[u8]>) -> Result<Self, SalesforceError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("Lightbridge/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(120));
        if let Some(pem) = extra_ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| SalesforceError::Config(format!("CA certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| SalesforceError::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            policy,
            json_only: std::sync::Arc::default(),
            clock: std::sync::Arc::new(domain::SystemClock),
            usage: usage::UsageBook::default(),
        })
    }

    /// The same client reading time from `clock` (the service's, so a simulation's moved time
    /// reaches the JWT assertions too).
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn domain::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Milliseconds since the epoch, by the client's clock (what [`ApiUsage::seen_at`] uses).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Seconds since the epoch, by the client's clock.
    pub(crate) fn now_secs(&self) -> u64 {
        u64::try_from(self.clock.now_ms() / 1000).unwrap_or_default()
    }

    pub fn policy(&self) -> &HostPolicy {
        &self.policy
    }

    /// The org's daily API use as its instance last reported it, if this client has heard.
    pub fn api_usage(&self, instance: &url::Url) -> Option<ApiUsage> {
        self.usage.get(instance)
    }

    /// Keeps what an answer says of the org's API use.
    pub(crate) fn note_usage(&self, url: &url::Url, headers: &reqwest::header::HeaderMap) {
        self.usage.note(url, headers, self.clock.now_ms());
    }
}
