//! The PostgreSQL implementation of [`DeploymentStore`].

use domain::{
    AccountId, Baseline, BundleId, BundleInfo, Connection, ConnectionId, Deployment, DeploymentId, Drift,
    EnvironmentId, Millis, ResourceName, SystemId, Target,
};
use sqlx::Row;

use crate::deployments::{Claimed, DeploymentStore, Finish, TargetCounts, TargetOutcome};
use crate::postgres::statements;
use crate::postgres::{dialect, query, query_scalar};
use crate::rows::{DEPLOYMENT_COLUMNS, TARGET_COLUMNS};
use crate::rows::{row_to_bundle, row_to_deployment, row_to_target};
use crate::{PgStore, StoreError};

impl DeploymentStore for PgStore {
    async fn create_deployment(
        &self,
        d: &Deployment,
        connections: &[ConnectionId],
        waves: &[u32],
    ) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        crate::postgres::statements::insert_deployment(&mut *tx, d).await?;
        // One statement for all targets: the ids and their waves go in as two arrays.
        let ids: Vec<String> = connections.iter().map(|c| c.as_str().to_string()).collect();
        let waves: Vec<i64> = (0..connections.len()).map(|i| i64::from(waves.get(i).copied().unwrap_or(0))).collect();
        query(
            "INSERT INTO deployment_targets (deployment_id, connection_id, status, wave, updated_at) \
             SELECT ?1, u.c, CASE WHEN u.w = 0 THEN 'pending' ELSE 'held' END, u.w, ?2 FROM unnest(?3::text[], ?4::bigint[]) AS u(c, w)",
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

    crate::shared::shared_deployment_methods!(Some("SELECT id FROM deployments WHERE id = ? FOR UPDATE"));
}
