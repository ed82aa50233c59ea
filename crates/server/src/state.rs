use std::sync::Arc;

use service::{Client, Service};
use service::{Clock, LoginUrls};
use store::Store;

/// What the HTTP adapters hold: the service every action runs on, plus the settings only HTTP
/// needs. It dereferences to the [`Service`], so a handler passes `&state` to an action.
#[derive(Debug, Clone)]
pub struct AppState {
    pub service: Service,
    /// The bearer token `GET /metrics` requires; without one the endpoint is off.
    pub metrics_token: Option<String>,
}

impl std::ops::Deref for AppState {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.service
    }
}

impl AppState {
    /// The state over a store (SQLite or PostgreSQL; see [`store::Store`]).
    pub fn new(store: impl Into<Store>, client: Client, urls: LoginUrls, clock: Arc<dyn Clock>) -> Self {
        AppState::from_service(Service::new(store, client, urls, clock))
    }

    pub fn from_service(service: Service) -> Self {
        AppState { service, metrics_token: None }
    }

    /// Turns `GET /metrics` on for scrapers presenting this bearer token.
    pub fn with_metrics_token(mut self, token: Option<String>) -> Self {
        self.metrics_token = token.filter(|t| !t.is_empty());
        self
    }

    /// Sets where browsers reach this server (from configuration).
    pub fn with_public_url(mut self, public_url: url::Url) -> Self {
        self.service.public_url = public_url;
        self
    }

    /// Whether cookies must be `Secure` (served over HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.service.public_url.scheme() == "https"
    }
}
