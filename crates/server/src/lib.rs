//! Lightbridge's HTTP server: adapters over the service layer. `api/` is the versioned JSON API
//! under `/api/v1` (B3), `console/` the Admin Center pages; neither imports the other — what
//! they share (the caller extractor, the error, the session cookie, the request id, security
//! headers) is in `http/`, and `router` puts the whole application together. Actions live in
//! the `service` crate; this crate knows HTTP, never SQL or Salesforce.

pub mod api;
pub mod app;
mod callback;
pub mod config;
mod console;
pub mod http;
mod memory;
pub mod metrics;
mod router;
mod state;

pub use config::{Config, ConfigError};
pub use memory::limit_malloc_arenas;
pub use router::router;
pub use service::health::spawn_health_checks;
pub use service::worker::{WorkerConfig, spawn_worker};
pub use state::AppState;

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// A bound, not yet running server: bind first (port 0 works), read the address, then run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    app: axum::Router,
}

impl Server {
    pub async fn bind(state: AppState, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self::with_listener(state, listener))
    }

    /// Serves on a listener bound earlier (so the address can go into the state first).
    pub fn with_listener(state: AppState, listener: TcpListener) -> Self {
        Server { listener, app: router::router(state) }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(self.listener, self.app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
    }
}
