//! Lightbridge's service layer: every action the product offers — connections (test, create,
//! edit, check, reconnect, delete), the OAuth start and finish, systems and environments,
//! bindings, deployments and rollback, users, API tokens, sessions, accounts — lives here once,
//! with the audit entry it writes, together with the publish worker and the health sweep.
//! The JSON API, the Admin Center and the CLI are adapters over it.
//!
//! An action takes the [`Service`] (the store, the token keeper, the Salesforce client, the
//! clock), the [`Actor`] doing it, and plain inputs, and returns a domain result or a
//! [`ServiceError`]. Nothing here knows HTTP: must not import axum, askama or utoipa (except
//! behind the `openapi` feature, which only derives schemas for the API's document).

pub mod accounts;
pub mod activity;
mod actor;
pub mod approvals;
pub mod audit;
pub mod blocking;
pub mod catalog;
pub mod connections;
pub mod deployments;
pub mod domains;
pub mod drift;
mod error;
pub mod fleet;
pub mod health;
pub mod keys;
pub mod loader;
pub mod mail;
pub mod members;
pub mod notify;
pub mod oauth;
pub mod org_limit;
pub mod password;
pub mod rollout;
pub mod secrets;
pub mod sessions;
pub mod sso;
pub mod two_factor;
pub mod users;
pub mod worker;

use std::sync::Arc;

pub use ::connections::{Clock, LoginUrls, SystemClock, TokenKeeper};
pub use actor::Actor;
pub use connections::parse_id;
pub use error::ServiceError;
pub use salesforce::checks::{Outcome, Report, Step};
pub use salesforce::{Client, HostPolicy};
use store::Store;

/// What every action needs, cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    pub store: Arc<Store>,
    pub keeper: Arc<TokenKeeper<Store>>,
    pub client: Client,
    pub urls: LoginUrls,
    pub clock: Arc<dyn Clock>,
    /// Where browsers reach Lightbridge; the OAuth callback is `<public_url>/oauth/callback`.
    pub public_url: url::Url,
    /// Wakes the publish worker when a deployment is created.
    pub publish_wake: Arc<tokio::sync::Notify>,
    /// Where argon2 and ZIP rebuilding run: blocking threads, one job per core at a time.
    pub cpu: blocking::BlockingPool,
    /// Talks to accounts' single sign-on providers (HTTPS, or plain-HTTP origins allowed).
    pub sso: oidc::Client,
    /// Answers the DNS questions of an account proving it owns an email domain.
    pub dns: domains::Dns,
    /// How a loader deploy or removal outside the worker is polled (issue #15).
    pub loader_polling: publish::loader::Polling,
    /// How long an OAuth connection's tokens go unrenewed before the keep-alive renews them
    /// (zero: never); a connection's page says when its next renewal is due.
    pub keep_alive: std::time::Duration,
    /// Sends webhook deliveries, to public addresses only unless the operator allows more (#18).
    pub webhooks: notify::Sender,
    /// Wakes the notifier when a delivery is due now (a test event, a redelivery).
    pub notify_wake: Arc<tokio::sync::Notify>,
    /// The sender of notification mails, when the operator set up e-mail (#18).
    pub mail_from: Option<String>,
}

impl Service {
    /// The service over a store (SQLite or PostgreSQL; see [`store::Store`]).
    pub fn new(store: impl Into<Store>, client: Client, urls: LoginUrls, clock: Arc<dyn Clock>) -> Self {
        let store = Arc::new(store.into());
        let client = client.with_clock(clock.clone());
        let keeper = Arc::new(TokenKeeper::new(store.clone(), client.clone(), urls.clone(), clock.clone()));
        let public_url = url::Url::parse("http://127.0.0.1:8080/").expect("constant URL");
        let cpu = blocking::BlockingPool::per_core();
        Service {
            store,
            keeper,
            client,
            urls,
            clock,
            public_url,
            publish_wake: Arc::default(),
            cpu,
            sso: oidc::Client::new(oidc::Policy::default()).expect("an HTTP client"),
            dns: domains::Dns::default(),
            loader_polling: publish::loader::Polling::default(),
            keep_alive: std::time::Duration::from_secs(24 * 3600),
            webhooks: notify::Sender::default(),
            notify_wake: Arc::default(),
            mail_from: None,
        }
    }

    /// How webhook deliveries are sent (from configuration).
    pub fn with_webhooks(mut self, sender: notify::Sender) -> Self {
        self.webhooks = sender;
        self
    }

    /// The sender of notification mails (e-mail set up in configuration).
    pub fn with_mail_from(mut self, from: Option<String>) -> Self {
        self.mail_from = from;
        self
    }

    /// The keep-alive period (from configuration).
    pub fn with_keep_alive(mut self, keep_alive: std::time::Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// How loader deploys and removals are polled (the worker's setting, from configuration).
    pub fn with_loader_polling(mut self, polling: publish::loader::Polling) -> Self {
        self.loader_polling = polling;
        self
    }

    /// Sets where browsers reach this server (from configuration).
    pub fn with_public_url(mut self, public_url: url::Url) -> Self {
        self.public_url = public_url;
        self
    }

    /// Allows single sign-on providers at these plain-HTTP origins (`http://host:port`).
    pub fn with_sso_allowed_hosts(mut self, hosts: Vec<String>) -> Self {
        self.sso = oidc::Client::new(oidc::Policy { allowed_http_origins: hosts }).expect("an HTTP client");
        self
    }

    /// Transient failures turn a connection Not available only after lasting this long.
    pub fn with_unavailable_after(mut self, grace: std::time::Duration) -> Self {
        self.keeper = Arc::new(
            TokenKeeper::new(self.store.clone(), self.client.clone(), self.urls.clone(), self.clock.clone())
                .with_grace(grace),
        );
        self
    }

    /// Asks these name servers when an account proves an email domain (empty: the system's).
    pub fn with_dns_servers(mut self, servers: Vec<std::net::SocketAddr>) -> Self {
        self.dns = domains::Dns::new(servers);
        self
    }

    /// Where an account's OpenID Connect provider sends people back.
    pub fn sso_callback(&self) -> String {
        format!("{}/sso/callback", self.public_url.as_str().trim_end_matches('/'))
    }

    /// The OAuth callback registered on the connected app.
    pub fn oauth_callback(&self) -> String {
        format!("{}/oauth/callback", self.public_url.as_str().trim_end_matches('/'))
    }

    /// Where an OAuth start may send a browser, as Content-Security-Policy sources.
    pub fn sign_in_origins(&self) -> Vec<String> {
        self.client.policy().csp_sources()
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
