//! The PostgreSQL implementation of [`CatalogStore`].

use domain::{Account, AccountId, BUILT_IN_ENVIRONMENTS, Environment, EnvironmentId, Millis, System, SystemId};

use crate::catalog::CatalogStore;
use crate::postgres::{query, query_scalar};
use crate::rows::unique;
use crate::rows::{row_to_account, row_to_environment, row_to_system};
use crate::{PgStore, StoreError};

fn one_or_not_found(done: sqlx::postgres::PgQueryResult) -> Result<(), StoreError> {
    if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

impl CatalogStore for PgStore {
    crate::shared::shared_catalog_methods!();

    async fn systems(&self, account: &AccountId) -> Result<Vec<System>, StoreError> {
        let rows =
            query("SELECT id, account_id, name, created_at FROM systems WHERE account_id = ? ORDER BY lower(name), id")
                .bind(account.as_str())
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(row_to_system).collect()
    }

    async fn delete_system(&self, account: &AccountId, id: &SystemId) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        let bound: i64 =
            query_scalar("SELECT COUNT(*) FROM connections WHERE account_id = ? AND legacy = 1 AND system_id = ?")
                .bind(account.as_str())
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if bound > 0 {
            return Err(StoreError::Conflict(format!(
                "this system still has {bound} connector(s): remove them first (that revokes their tokens)"
            )));
        }
        let done = query("DELETE FROM systems WHERE id = ? AND account_id = ?")
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(&mut *tx)
            .await?;
        one_or_not_found(done)?;
        tx.commit().await?;
        Ok(())
    }

    async fn environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<Environment, StoreError> {
        let row =
            query("SELECT id, account_id, name, built_in, position FROM environments WHERE id = ? AND account_id = ?")
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotFound)?;
        row_to_environment(&row)
    }

    async fn delete_environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<(), StoreError> {
        let env = self.environment(account, id).await?;
        if env.built_in {
            return Err(StoreError::Conflict(format!("{} is built in and cannot be removed", env.name)));
        }
        let mut tx = self.writer().begin().await?;
        let bound: i64 =
            query_scalar("SELECT COUNT(*) FROM connections WHERE account_id = ? AND legacy = 1 AND environment_id = ?")
                .bind(account.as_str())
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if bound > 0 {
            return Err(StoreError::Conflict(format!(
                "{} still has {bound} connector(s): remove them first (that revokes their tokens)",
                env.name
            )));
        }
        let done = query("DELETE FROM environments WHERE id = ? AND account_id = ?")
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(&mut *tx)
            .await?;
        one_or_not_found(done)?;
        tx.commit().await?;
        Ok(())
    }
}
