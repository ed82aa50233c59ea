use std::sync::Arc;

use connections::{Clock, LoginUrls, TokenKeeper};
use salesforce::Client;
use store::SqliteStore;

/// Everything a handler needs, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<SqliteStore>,
    pub keeper: Arc<TokenKeeper<SqliteStore>>,
    pub client: Client,
    pub urls: LoginUrls,
    pub clock: Arc<dyn Clock>,
}

impl AppState {
    pub fn new(store: Arc<SqliteStore>, client: Client, urls: LoginUrls, clock: Arc<dyn Clock>) -> Self {
        let keeper = Arc::new(TokenKeeper::new(store.clone(), client.clone(), urls.clone(), clock.clone()));
        AppState { store, keeper, client, urls, clock }
    }
}
