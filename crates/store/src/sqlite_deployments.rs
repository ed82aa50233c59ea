//! The SQLite implementation of [`DeploymentStore`].

use domain::{
    AccountId, Baseline, BundleId, BundleInfo, Connection, ConnectionId, Deployment, DeploymentId, Drift,
    EnvironmentId, Millis, ResourceName, SystemId, Target,
};
use sqlx::Row;

use crate::deployments::{Claimed, DeploymentStore, Finish, TargetCounts, TargetOutcome};
use crate::rows::{DEPLOYMENT_COLUMNS, TARGET_COLUMNS};
use crate::rows::{row_to_bundle, row_to_deployment, row_to_target};
use crate::sqlite::statements;
use crate::sqlite::{dialect, query, query_scalar};
use crate::{SqliteStore, StoreError};

impl DeploymentStore for SqliteStore {
    async fn create_deployment(
        &self,
        d: &Deployment,
        connections: &[ConnectionId],
        waves: &[u32],
    ) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        crate::sqlite::statements::insert_deployment(&mut *tx, d).await?;
        // One statement for all targets: the ids and their waves go in as two JSON arrays.
        let json = |v: serde_json::Value| v.to_string();
        let ids = json(connections.iter().map(ConnectionId::as_str).collect());
        let waves = json((0..connections.len()).map(|i| waves.get(i).copied().unwrap_or(0)).collect());
        sqlx::query(
            "INSERT INTO deployment_targets (deployment_id, connection_id, status, wave, updated_at) \
             SELECT ?1, c.value, CASE WHEN w.value = 0 THEN 'pending' ELSE 'held' END, w.value, ?2 \
             FROM json_each(?3) c JOIN json_each(?4) w ON w.key = c.key",
        )
        .bind(d.id.as_str())
        .bind(d.created_at)
        .bind(ids)
        .bind(waves)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    crate::shared::shared_deployment_methods!(None);
}
