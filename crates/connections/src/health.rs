//! The periodic health check (B1): connections nobody used lately are still checked, so a
//! revoked or unreachable one is flagged on the page, in the API and in its status before
//! anyone tries to publish through it.

use std::time::Duration;

use domain::{Connection, ConnectionStatus, StatusReason};
use salesforce::API_VERSION;
use store::{ConnectionStore, Observation};

use crate::{KeeperError, TokenKeeper};

/// What one sweep found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepSummary {
    pub checked: usize,
    pub logged_in: usize,
    pub logged_out: usize,
    pub not_available: usize,
}

/// What one keep-alive pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeepAliveSummary {
    pub renewed: usize,
    pub failed: usize,
}

/// Who asked for a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The periodic sweep: a Logged out connection is left alone (it costs Salesforce nothing
    /// until someone reconnects it).
    Sweep,
    /// A person ("Check now"): tried even when Logged out, as they may have fixed the cause.
    Person,
}

impl<S: ConnectionStore + 'static> TokenKeeper<S> {
    /// Checks up to `limit` connections not checked within `every` (Logged out ones are not
    /// due): one authenticated call each, which also renews an expired session, then records
    /// the status.
    pub async fn health_sweep(&self, every: Duration, limit: u32) -> Result<SweepSummary, store::StoreError> {
        let now = self.now_ms();
        let due = self.store().due_for_check(now - every.as_millis() as i64, limit).await?;
        let mut summary = SweepSummary::default();
        for connection in due {
            summary.checked += 1;
            match self.check_health(&connection, Trigger::Sweep).await? {
                ConnectionStatus::LoggedIn => summary.logged_in += 1,
                ConnectionStatus::LoggedOut => summary.logged_out += 1,
                ConnectionStatus::NotAvailable => summary.not_available += 1,
            }
        }
        Ok(summary)
    }

    /// The keep-alive (issue #14): renews up to `limit` OAuth connections whose tokens were
    /// last renewed more than `every` ago, so an app's "expire refresh token if not used for N"
    /// policy never ends a connection nobody used (the health check alone would not: its calls
    /// keep the session alive, and a live session is never renewed). Failures are recorded as
    /// any renewal's are.
    pub async fn keep_alive(&self, every: Duration, limit: u32) -> Result<KeepAliveSummary, store::StoreError> {
        let now = self.now_ms();
        let due = self.store().due_for_keep_alive(now - every.as_millis() as i64, limit).await?;
        let mut summary = KeepAliveSummary::default();
        for connection in due {
            let version = self.store().secrets(&connection.id).await?.token_version;
            match self.renew(&connection, version).await {
                Ok(_) => summary.renewed += 1,
                Err(KeeperError::Store(e)) => return Err(e),
                Err(_) => summary.failed += 1,
            }
        }
        metrics::counter!("lightbridge_keep_alive_renewals_total", "outcome" => "renewed")
            .increment(summary.renewed as u64);
        metrics::counter!("lightbridge_keep_alive_renewals_total", "outcome" => "failed")
            .increment(summary.failed as u64);
        Ok(summary)
    }

    /// Checks one connection now and records what it showed. The call is one any connected
    /// user may make — the API's resource list for our version (`/services/data/vXX.X/`),
    /// not `/limits`, which needs *View Setup and Configuration* — renewing an expired session
    /// first, and only then.
    pub async fn check_health(
        &self,
        connection: &Connection,
        trigger: Trigger,
    ) -> Result<ConnectionStatus, store::StoreError> {
        let path = format!("services/data/v{API_VERSION}/");
        let call = |session| {
            let path = path.clone();
            async move { self.client().get_json::<serde_json::Value>(&session, &path).await.map(|_| ()) }
        };
        let outcome = match trigger {
            Trigger::Sweep => self.with_session(connection, call).await,
            Trigger::Person => self.with_session_now(connection, call).await,
        };
        let observation = match outcome {
            Ok(()) => Some(Observation::Healthy),
            // A renewal's failure is recorded where it happened (or the connection was not called).
            Err(KeeperError::LoggedOut(_) | KeeperError::Unavailable(_)) => None,
            Err(KeeperError::Salesforce(e)) => Some(self.observation_of(&e)),
            Err(KeeperError::Misconfigured(detail)) => {
                Some(Observation::Dead { reason: StatusReason::NoCredentials, detail })
            }
            Err(KeeperError::Store(e)) => return Err(e),
        };
        if let Some(observation) = observation {
            self.observe(connection, observation, None).await?;
        }
        let now = self.store().get(&connection.account_id, &connection.id).await?;
        Ok(now.status)
    }
}
