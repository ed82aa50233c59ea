//! Lightbridge's HTTP server: the versioned JSON API under `/api/v1` (B3), the Admin Center
//! pages (`console`), health endpoints, and the publish worker. Handlers call the connections
//! core, the publish crate and the store traits; SQL and Salesforce calls live in those
//! crates, never here.

pub mod api;
pub mod config;
mod console;
pub mod metrics;
pub mod password;
mod state;
pub mod worker;

pub use config::{Config, ConfigError};
pub use state::AppState;
pub use worker::{WorkerConfig, spawn_worker};

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Runs the periodic health check (B1) in the background: every tick (a minute, or the
/// interval if shorter) it checks the connections not checked within `every`, up to 500 at a
/// time. Returns `None` when `every` is zero (turned off).
pub fn spawn_health_checks(state: &AppState, every: std::time::Duration) -> Option<tokio::task::JoinHandle<()>> {
    if every.is_zero() {
        return None;
    }
    let keeper = state.keeper.clone();
    let tick = every.min(std::time::Duration::from_secs(60));
    Some(tokio::spawn(async move {
        let mut timer = tokio::time::interval(tick);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            match keeper.health_sweep(every, 500).await {
                Ok(s) if s.checked > 0 => tracing::info!(
                    checked = s.checked,
                    logged_in = s.logged_in,
                    logged_out = s.logged_out,
                    not_available = s.not_available,
                    "health check"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "health check failed"),
            }
        }
    }))
}

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
        Server { listener, app: api::router(state) }
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
