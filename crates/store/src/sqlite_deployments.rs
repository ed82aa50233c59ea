//! The SQLite implementation of [`DeploymentStore`].

use domain::{
    AccountId, BundleId, BundleInfo, Connection, ConnectionId, Deployment, DeploymentId, EnvironmentId, Millis,
    SystemId, Target,
};
use sqlx::Row;

use crate::deployments::{Claimed, DeploymentStore, Finish, TargetCounts, TargetOutcome};
use crate::rows::{DEPLOYMENT_COLUMNS, TARGET_COLUMNS};
use crate::rows::{row_to_bundle, row_to_deployment, row_to_target};
use crate::sqlite::{dialect, query, query_scalar};
use crate::{SqliteStore, StoreError};

impl DeploymentStore for SqliteStore {
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

    crate::shared::shared_deployment_methods!(None);
}
