//! Starting Lightbridge from its configuration: the store, the service, the HTTP server, the
//! publish worker and the health sweep — the one path `lightbridge serve` takes and the testkit
//! takes too, so tests run the server as it ships.

use std::sync::Arc;

use service::{Client, Clock, HostPolicy, LoginUrls, Service, SystemClock};
use store::{PgStore, SqliteStore, Store};
use tokio::net::TcpListener;

use crate::{AppState, Config, Server};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database {target}: {source}")]
    Store { target: String, source: store::StoreError },
    #[error("cannot set up the Salesforce client: {0}")]
    Client(String),
    #[error("cannot read the CA file {path}: {source}")]
    CaFile { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
}

/// The configured store: PostgreSQL when `database.url` is set, else SQLite in the data folder
/// (created 0700, the database 0600).
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    if let Some(url) = &config.database_url {
        let target = crate::config::redact_password(url);
        let store = PgStore::open(url, config.database_max_connections, config.keyring())
            .await
            .map_err(|source| StartError::Store { target, source })?;
        return Ok(store.into());
    }
    let path = config.data_dir.join("lightbridge.db");
    let failed = |source| StartError::Store { target: path.display().to_string(), source };
    store::create_private_dir(&config.data_dir).map_err(failed)?;
    let store = SqliteStore::open(&path, config.keyring()).await.map_err(failed)?;
    Ok(store.into())
}

/// The service over a store, as configured: the host policy and CA, the login hosts.
pub fn service(config: &Config, store: Store) -> Result<Service, StartError> {
    service_with_clock(config, store, Arc::new(SystemClock))
}

/// The same, reading time from `clock` (tests move it).
pub fn service_with_clock(config: &Config, store: Store, clock: Arc<dyn Clock>) -> Result<Service, StartError> {
    let policy = HostPolicy::allowing(&config.allowed_hosts).map_err(|e| StartError::Client(e.to_string()))?;
    let ca = match &config.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|source| StartError::CaFile { path: path.clone(), source })?),
        None => None,
    };
    let client = Client::with_ca(policy, ca.as_deref()).map_err(|e| StartError::Client(e.to_string()))?;
    let urls = LoginUrls { login: config.salesforce_login_url.clone(), test: config.salesforce_test_url.clone() };
    Ok(Service::new(store, client, urls, clock)
        .with_public_url(config.public_url.clone())
        .with_sso_allowed_hosts(config.sso_allowed_hosts.clone())
        .with_dns_servers(config.sso_dns_servers.clone())
        .with_unavailable_after(config.unavailable_after)
        .with_loader_polling(config.publish.loader_polling)
        .with_keep_alive(config.keep_alive)
        .with_webhooks(service::notify::Sender::new(config.webhook_allow_private, config.notifier.timeout))
        .with_mail_from(config.mail.as_ref().map(|m| m.smtp.from.clone())))
}

/// A started instance: bound (its address known), its worker and health sweep running; call
/// [`Started::run`] to serve.
#[derive(Debug)]
pub struct Started {
    pub state: AppState,
    server: Server,
    health: Option<tokio::task::JoinHandle<()>>,
    worker: tokio::task::JoinHandle<()>,
    housekeeping: tokio::task::JoinHandle<()>,
    /// Decides rollouts' next waves (#17).
    rollouts: tokio::task::JoinHandle<()>,
    /// Scans the fleet for drift on a schedule (#17), unless turned off.
    drift: Option<tokio::task::JoinHandle<()>>,
    /// Delivers events to webhook endpoints (#18).
    notifier: tokio::task::JoinHandle<()>,
    /// Sends notification mails (#18), when e-mail is set up.
    mailer: Option<tokio::task::JoinHandle<()>>,
    /// Deletes events past their retention, hourly (#18).
    pruner: tokio::task::JoinHandle<()>,
}

/// Binds the configured address, then builds the state over `store`. When `public_url` is
/// the default one for the listen address (`http://<listen>/`), it follows the bound address,
/// so port 0 gives OAuth callbacks that work.
pub async fn start_with_store(config: &Config, store: Store) -> Result<Started, StartError> {
    start_with_clock(config, store, Arc::new(SystemClock)).await
}

/// [`start_with_store`] with the time read from `clock` (the testkit's, which tests move).
pub async fn start_with_clock(config: &Config, store: Store, clock: Arc<dyn Clock>) -> Result<Started, StartError> {
    let listener =
        TcpListener::bind(config.listen).await.map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let bound = listener.local_addr().map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let mut service = service_with_clock(config, store, clock)?;
    if config.public_url.as_str() == format!("http://{}/", config.listen)
        && let Ok(url) = format!("http://{bound}/").parse()
    {
        service.public_url = url;
    }
    let state = AppState::from_service(service).with_metrics_token(config.metrics_token.clone());
    let health = service::health::spawn_health_checks(&state, config.health_check_interval, config.keep_alive);
    let worker = service::worker::spawn_worker(&state, config.publish);
    let housekeeping = service::health::spawn_housekeeping(&state);
    let rollouts = service::rollout::spawn_keeper(&state, std::time::Duration::from_millis(250));
    let drift = (!config.publish.drift_scan.is_zero())
        .then(|| service::drift::spawn_scanner(&state, config.publish.drift_scan));
    let notifier = service::notify::spawn_notifier(&state, config.notifier);
    let mailer = match &config.mail {
        Some(mail) => {
            let smtp = outbound::mail::Smtp::new(&mail.smtp).map_err(StartError::Client)?;
            Some(service::mail::spawn_mailer(&state, smtp, mail.mailer))
        }
        None => None,
    };
    let pruner = service::notify::spawn_pruner(&state, config.notifier.retention);
    let server = Server::with_listener(state.clone(), listener);
    Ok(Started { state, server, health, worker, housekeeping, rollouts, drift, notifier, mailer, pruner })
}

/// [`open_store`], then [`start_with_store`].
pub async fn start(config: &Config) -> Result<Started, StartError> {
    let store = open_store(config).await?;
    start_with_store(config, store).await
}

impl Started {
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes; then stops the health sweep and the worker (targets
    /// in flight keep their lease, and whoever starts next picks them up after it).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let result = self.server.run(shutdown).await;
        if let Some(task) = self.health {
            task.abort();
        }
        self.worker.abort();
        self.housekeeping.abort();
        self.rollouts.abort();
        self.notifier.abort();
        self.pruner.abort();
        for task in [self.drift, self.mailer].into_iter().flatten() {
            task.abort();
        }
        result
    }
}
