//! The periodic health check (B1): connections nobody used lately are still checked, so a
//! revoked or unreachable one is flagged on the page, in the API and in its status before
//! anyone tries to publish through it.

use std::time::Duration;

use domain::{Connection, ConnectionStatus};
use salesforce::API_VERSION;
use store::ConnectionStore;

use crate::{KeeperError, TokenKeeper};

/// What one sweep found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepSummary {
    pub checked: usize,
    pub logged_in: usize,
    pub logged_out: usize,
    pub not_available: usize,
}

impl<S: ConnectionStore> TokenKeeper<S> {
    /// Checks up to `limit` connections not checked within `every`: one authenticated call
    /// each (`/limits`, which also renews an expired session), then records the status.
    pub async fn health_sweep(&self, every: Duration, limit: u32) -> Result<SweepSummary, store::StoreError> {
        let now = self.now_ms();
        let due = self.store().due_for_check(now - every.as_millis() as i64, limit).await?;
        let mut summary = SweepSummary::default();
        for connection in due {
            summary.checked += 1;
            match self.check_health(&connection).await? {
                ConnectionStatus::LoggedIn => summary.logged_in += 1,
                ConnectionStatus::LoggedOut => summary.logged_out += 1,
                ConnectionStatus::NotAvailable => summary.not_available += 1,
            }
        }
        Ok(summary)
    }

    /// Checks one connection now: one authenticated call (`/limits`, renewing an expired
    /// session first), and records the resulting status with its reason.
    pub async fn check_health(&self, connection: &Connection) -> Result<ConnectionStatus, store::StoreError> {
        let path = format!("services/data/v{API_VERSION}/limits");
        let outcome = self
            .with_session(connection, |session| {
                let path = path.clone();
                async move { self.client().get_json::<serde_json::Value>(&session, &path).await.map(|_| ()) }
            })
            .await;
        let now = self.now_ms();
        let (status, detail) = match outcome {
            Ok(()) => (ConnectionStatus::LoggedIn, None),
            Err(KeeperError::LoggedOut(d)) => (ConnectionStatus::LoggedOut, Some(d)),
            Err(KeeperError::Salesforce(e)) if e.is_logged_out() => (ConnectionStatus::LoggedOut, Some(e.to_string())),
            Err(other) => (ConnectionStatus::NotAvailable, Some(other.to_string())),
        };
        if status != connection.status {
            tracing::info!(connection = %connection.id, from = connection.status.as_str(), to = status.as_str(), "connection status changed");
        }
        self.store().set_status(&connection.id, status, detail.as_deref(), now).await?;
        Ok(status)
    }
}
