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
        crate::sqlite::statements::insert_deployment(&mut *tx, d).await?;
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
