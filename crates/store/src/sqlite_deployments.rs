//! The SQLite implementation of [`DeploymentStore`].

use domain::{
    AccountId, BundleId, BundleInfo, Connection, ConnectionId, Deployment, DeploymentId, EnvironmentId, Millis,
    SystemId, Target,
};
use sqlx::Row;

use crate::deployments::{Claimed, DeploymentStore, Finish, TargetCounts, TargetOutcome};
use crate::rows::{DEPLOYMENT_COLUMNS, TARGET_COLUMNS};
use crate::rows::{row_to_bundle, row_to_deployment, row_to_target};
use crate::sqlite::{query, query_scalar};
use crate::{SqliteStore, StoreError};

impl DeploymentStore for SqliteStore {
    async fn bind(
        &self,
        account: &AccountId,
        connection: &ConnectionId,
        system: &SystemId,
        environment: &EnvironmentId,
        now: Millis,
    ) -> Result<(), StoreError> {
        // Every id must be this account's: checked in the statement itself.
        let done = sqlx::query(
            "INSERT INTO bindings (account_id, connection_id, system_id, environment_id, created_at) \
             SELECT ?1, c.id, s.id, e.id, ?2 FROM connections c, systems s, environments e \
             WHERE c.id = ?3 AND c.account_id = ?1 AND c.legacy = 0 AND s.id = ?4 AND s.account_id = ?1 AND e.id = ?5 AND e.account_id = ?1 \
             ON CONFLICT DO NOTHING",
        )
        .bind(account.as_str())
        .bind(now)
        .bind(connection.as_str())
        .bind(system.as_str())
        .bind(environment.as_str())
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM bindings WHERE account_id = ? AND connection_id = ? AND system_id = ? AND environment_id = ?",
            )
            .bind(account.as_str())
            .bind(connection.as_str())
            .bind(system.as_str())
            .bind(environment.as_str())
            .fetch_optional(self.writer())
            .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        Ok(())
    }

    async fn targets_for(
        &self,
        account: &AccountId,
        system: &SystemId,
        environment: &EnvironmentId,
    ) -> Result<Vec<Connection>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM connections WHERE account_id = ?1 AND (\
                 id IN (SELECT connection_id FROM bindings WHERE account_id = ?1 AND system_id = ?2 AND environment_id = ?3) \
                 OR (legacy = 1 AND active = 1 AND system_id = ?2 AND environment_id = ?3)) \
             ORDER BY created_at, id",
            crate::rows::COLUMNS
        )))
        .bind(account.as_str())
        .bind(system.as_str())
        .bind(environment.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(crate::rows::row_to_connection).collect()
    }

    async fn create_deployment(&self, d: &Deployment, connections: &[ConnectionId]) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO deployments (id, account_id, system_id, environment_id, bundle_id, resource_name, cache_control, status, \
             created_at, created_by, finished_at, redeploy_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(d.id.as_str())
        .bind(d.account_id.as_str())
        .bind(d.system_id.as_str())
        .bind(d.environment_id.as_str())
        .bind(d.bundle_id.as_str())
        .bind(d.resource_name.as_str())
        .bind(d.cache_control.as_str())
        .bind(d.status.as_str())
        .bind(d.created_at)
        .bind(&d.created_by)
        .bind(d.finished_at)
        .bind(d.redeploy_of.as_ref().map(DeploymentId::as_str))
        .execute(&mut *tx)
        .await?;
        // One statement for all targets: the ids go in as one JSON array.
        let ids = serde_json::to_string(&connections.iter().map(ConnectionId::as_str).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO deployment_targets (deployment_id, connection_id, status, updated_at) \
             SELECT ?1, value, 'pending', ?2 FROM json_each(?3)",
        )
        .bind(d.id.as_str())
        .bind(d.created_at)
        .bind(ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn deployments(
        &self,
        account: &AccountId,
        system: Option<&SystemId>,
        environment: Option<&EnvironmentId>,
        connection: Option<&ConnectionId>,
        limit: u32,
    ) -> Result<Vec<(Deployment, TargetCounts)>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEPLOYMENT_COLUMNS}, \
             (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'pending') AS n_pending, \
             (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'running') AS n_running, \
             (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'succeeded') AS n_succeeded, \
             (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'unchanged') AS n_unchanged, \
             (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'failed') AS n_failed \
             FROM deployments d WHERE d.account_id = ? AND (? IS NULL OR d.system_id = ?) AND (? IS NULL OR d.environment_id = ?) \
             AND (? IS NULL OR EXISTS (SELECT 1 FROM deployment_targets t WHERE t.deployment_id = d.id AND t.connection_id = ?)) \
             ORDER BY d.seq DESC LIMIT ?"
        )))
        .bind(account.as_str())
        .bind(system.map(SystemId::as_str))
        .bind(system.map(SystemId::as_str))
        .bind(environment.map(EnvironmentId::as_str))
        .bind(environment.map(EnvironmentId::as_str))
        .bind(connection.map(ConnectionId::as_str))
        .bind(connection.map(ConnectionId::as_str))
        .bind(i64::from(limit.clamp(1, 500)))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| -> Result<u32, StoreError> { Ok(r.try_get::<i64, _>(c)? as u32) };
                Ok((
                    row_to_deployment(r)?,
                    TargetCounts {
                        pending: n("n_pending")?,
                        running: n("n_running")?,
                        succeeded: n("n_succeeded")?,
                        unchanged: n("n_unchanged")?,
                        failed: n("n_failed")?,
                    },
                ))
            })
            .collect()
    }

    async fn claim_targets(
        &self,
        owner: &str,
        now: Millis,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut tx = self.writer().begin().await?;
        let claimed = sqlx::query(
            "UPDATE deployment_targets SET status = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? \
             WHERE rowid IN (SELECT rowid FROM deployment_targets \
                 WHERE (status = 'pending' AND not_before <= ?) OR (status = 'running' AND lease_until < ?) \
                 ORDER BY not_before, rowid LIMIT ?) \
             RETURNING deployment_id, connection_id",
        )
        .bind(owner)
        .bind(now + lease_ms)
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        if claimed.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // Two more statements for the whole batch: the claimed targets, and their deployments.
        let keys: Vec<(String, String)> = claimed
            .iter()
            .map(|row| Ok((row.try_get("deployment_id")?, row.try_get("connection_id")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let pairs = vec!["(?, ?)"; keys.len()].join(", ");
        let mut targets = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TARGET_COLUMNS} FROM deployment_targets t LEFT JOIN connections c ON c.id = t.connection_id \
             WHERE (t.deployment_id, t.connection_id) IN (VALUES {pairs})"
        )));
        for (d, c) in &keys {
            targets = targets.bind(d).bind(c);
        }
        let targets = targets.fetch_all(&mut *tx).await?;
        let mut ids: Vec<&str> = keys.iter().map(|(d, _)| d.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let marks = vec!["?"; ids.len()].join(", ");
        let mut deployments = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments d WHERE d.id IN ({marks})"
        )));
        for id in &ids {
            deployments = deployments.bind(*id);
        }
        let deployments =
            deployments.fetch_all(&mut *tx).await?.iter().map(row_to_deployment).collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        targets
            .iter()
            .map(|row| {
                let target = row_to_target(row)?;
                let deployment = deployments
                    .iter()
                    .find(|d| d.id == target.deployment_id)
                    .ok_or_else(|| StoreError::Corrupt(format!("deployment {} vanished", target.deployment_id)))?;
                Ok(Claimed { deployment: deployment.clone(), target })
            })
            .collect()
    }

    crate::shared::shared_deployment_methods!(None);
}
