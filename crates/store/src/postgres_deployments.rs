//! The PostgreSQL implementation of [`DeploymentStore`].

use domain::{
    AccountId, BundleId, BundleInfo, Connection, ConnectionId, Deployment, DeploymentId, EnvironmentId, Millis,
    SystemId, Target,
};
use sqlx::Row;

use crate::deployments::{Claimed, DeploymentStore, Finish, TargetCounts, TargetOutcome};
use crate::postgres::{dialect, query, query_scalar};
use crate::rows::{DEPLOYMENT_COLUMNS, TARGET_COLUMNS};
use crate::rows::{row_to_bundle, row_to_deployment, row_to_target};
use crate::{PgStore, StoreError};

impl DeploymentStore for PgStore {
    async fn create_deployment(&self, d: &Deployment, connections: &[ConnectionId]) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        crate::postgres::statements::insert_deployment(&mut *tx, d).await?;
        // One statement for all targets: the ids go in as one array.
        let ids: Vec<String> = connections.iter().map(|c| c.as_str().to_string()).collect();
        query(
            "INSERT INTO deployment_targets (deployment_id, connection_id, status, updated_at) \
             SELECT ?1, unnest(?3::text[]), 'pending', ?2",
        )
        .bind(d.id.as_str())
        .bind(d.created_at)
        .bind(ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    crate::shared::shared_deployment_methods!(Some("SELECT id FROM deployments WHERE id = ? FOR UPDATE"));
}
