//! What several commands share: loading configuration and opening the store.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use connections::{LoginUrls, SystemClock};
use server::config::Overrides;
use server::{AppState, Config};
use store::{PgStore, SqliteStore, Store};

/// Flags every server-side command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(long, env = "LIGHTBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data folder (the SQLite database lives here).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn load(&self, listen: Option<String>) -> anyhow::Result<Config> {
        Ok(Config::load(self.config.as_deref(), &Overrides { listen, data_dir: self.data_dir.clone() })?)
    }
}

/// The configured store: PostgreSQL when `database.url` is set, else SQLite in the data folder.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if let Some(url) = &config.database_url {
        let store = PgStore::open(url, config.database_max_connections, config.keyring())
            .await
            .with_context(|| format!("cannot open the database {}", server::config::redact_password(url)))?;
        return Ok(store.into());
    }
    store::create_private_dir(&config.data_dir).context("cannot prepare the data folder")?;
    let path = config.data_dir.join("lightbridge.db");
    let store = SqliteStore::open(&path, config.keyring())
        .await
        .with_context(|| format!("cannot open the database {}", path.display()))?;
    Ok(store.into())
}

/// The service layer over the configured store: what every command that changes something runs on.
pub async fn open_service(config: &Config) -> anyhow::Result<service::Service> {
    let store = open_store(config).await?;
    Ok(app_state(config, store)?.service)
}

pub fn app_state(config: &Config, store: Store) -> anyhow::Result<AppState> {
    let policy = salesforce::HostPolicy::allowing(&config.allowed_hosts)?;
    let ca = match &config.ca_file {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read the CA file {}", path.display()))?),
        None => None,
    };
    let client = salesforce::Client::with_ca(policy, ca.as_deref())?;
    let urls = LoginUrls { login: config.salesforce_login_url.clone(), test: config.salesforce_test_url.clone() };
    Ok(AppState::new(store, client, urls, Arc::new(SystemClock))
        .with_public_url(config.public_url.clone())
        .with_metrics_token(config.metrics_token.clone()))
}
