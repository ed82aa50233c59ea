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
        // One statement for all targets: each an `[id, wave]` pair of one JSON array (two arrays
        // joined by position made SQLite compare every pair: 3 s for 10,000 targets).
        let pairs: Vec<serde_json::Value> = connections
            .iter()
            .enumerate()
            .map(|(i, c)| serde_json::json!([c.as_str(), waves.get(i).copied().unwrap_or(0)]))
            .collect();
        sqlx::query(
            "INSERT INTO deployment_targets (deployment_id, connection_id, status, wave, updated_at) \
             SELECT ?1, value ->> 0, CASE WHEN value ->> 1 = 0 THEN 'pending' ELSE 'held' END, value ->> 1, ?2 \
             FROM json_each(?3)",
        )
        .bind(d.id.as_str())
        .bind(d.created_at)
        .bind(serde_json::Value::Array(pairs).to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    crate::shared::shared_deployment_methods!(None);
}
