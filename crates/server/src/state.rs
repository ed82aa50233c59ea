use std::sync::Arc;

use connections::{Clock, LoginUrls, TokenKeeper};
use salesforce::Client;
use store::Store;

/// Everything a handler needs, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub keeper: Arc<TokenKeeper<Store>>,
    pub client: Client,
    pub urls: LoginUrls,
    pub clock: Arc<dyn Clock>,
    /// Where browsers reach this server; the OAuth callback is `<public_url>/oauth/callback`.
    pub public_url: url::Url,
    /// Wakes the publish worker when a deployment is created.
    pub publish_wake: Arc<tokio::sync::Notify>,
    /// The bearer token `GET /metrics` requires; without one the endpoint is off.
    pub metrics_token: Option<String>,
}

impl AppState {
    /// The state over a store (SQLite or PostgreSQL; see [`store::Store`]).
    pub fn new(store: impl Into<Store>, client: Client, urls: LoginUrls, clock: Arc<dyn Clock>) -> Self {
        let store = Arc::new(store.into());
        let keeper = Arc::new(TokenKeeper::new(store.clone(), client.clone(), urls.clone(), clock.clone()));
        let public_url = url::Url::parse("http://127.0.0.1:8080/").expect("constant URL");
        AppState { store, keeper, client, urls, clock, public_url, publish_wake: Arc::default(), metrics_token: None }
    }

    /// Turns `GET /metrics` on for scrapers presenting this bearer token.
    pub fn with_metrics_token(mut self, token: Option<String>) -> Self {
        self.metrics_token = token.filter(|t| !t.is_empty());
        self
    }

    /// Sets where browsers reach this server (from configuration).
    pub fn with_public_url(mut self, public_url: url::Url) -> Self {
        self.public_url = public_url;
        self
    }

    /// The OAuth callback registered on the connected app.
    pub fn oauth_callback(&self) -> String {
        format!("{}/oauth/callback", self.public_url.as_str().trim_end_matches('/'))
    }

    /// Whether cookies must be `Secure` (served over HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}
