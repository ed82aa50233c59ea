//! What several commands share: loading configuration and opening the store.

use std::path::PathBuf;

use server::Config;
use server::config::Overrides;
use store::Store;

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

/// The configured store (see [`server::app::open_store`]).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Ok(server::app::open_store(config).await?)
}

/// The service layer over the configured store: what every command that changes something runs on.
pub async fn open_service(config: &Config) -> anyhow::Result<service::Service> {
    let store = open_store(config).await?;
    Ok(server::app::service(config, store)?)
}
