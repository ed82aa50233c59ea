//! The SQLite implementation of [`CatalogStore`].

use domain::{Account, AccountId, BUILT_IN_ENVIRONMENTS, Environment, EnvironmentId, Millis, System, SystemId};

use crate::catalog::CatalogStore;
use crate::rows::sqlite::{row_to_account, row_to_environment, row_to_system};
use crate::rows::unique;
use crate::{SqliteStore, StoreError};

fn one_or_not_found(done: sqlx::sqlite::SqliteQueryResult) -> Result<(), StoreError> {
    if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

impl CatalogStore for SqliteStore {
    async fn create_account(&self, id: &AccountId, name: &str, now: Millis) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)")
            .bind(id.as_str())
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        for (position, name) in BUILT_IN_ENVIRONMENTS.iter().enumerate() {
            sqlx::query("INSERT INTO environments (id, account_id, name, built_in, position) VALUES (?, ?, ?, 1, ?)")
                .bind(EnvironmentId::generate().as_str())
                .bind(id.as_str())
                .bind(*name)
                .bind(position as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn account(&self, id: &AccountId) -> Result<Account, StoreError> {
        let row = sqlx::query("SELECT id, name, connectors_enabled, created_at FROM accounts WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        row_to_account(&row)
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query("SELECT id, name, connectors_enabled, created_at FROM accounts ORDER BY created_at, id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(row_to_account).collect()
    }

    async fn set_connectors_enabled(&self, id: &AccountId, enabled: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE accounts SET connectors_enabled = ? WHERE id = ?")
            .bind(i64::from(enabled))
            .bind(id.as_str())
            .execute(self.writer())
            .await?;
        one_or_not_found(done)
    }

    async fn insert_system(&self, s: &System) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO systems (id, account_id, name, created_at) VALUES (?, ?, ?, ?)")
            .bind(s.id.as_str())
            .bind(s.account_id.as_str())
            .bind(&s.name)
            .bind(s.created_at)
            .execute(self.writer())
            .await
            .map_err(unique("a system"))?;
        Ok(())
    }

    async fn systems(&self, account: &AccountId) -> Result<Vec<System>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, account_id, name, created_at FROM systems WHERE account_id = ? ORDER BY name COLLATE NOCASE, id",
        )
        .bind(account.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_system).collect()
    }

    async fn system(&self, account: &AccountId, id: &SystemId) -> Result<System, StoreError> {
        let row = sqlx::query("SELECT id, account_id, name, created_at FROM systems WHERE id = ? AND account_id = ?")
            .bind(id.as_str())
            .bind(account.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        row_to_system(&row)
    }

    async fn rename_system(&self, account: &AccountId, id: &SystemId, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE systems SET name = ? WHERE id = ? AND account_id = ?")
            .bind(name)
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(self.writer())
            .await
            .map_err(unique("a system"))?;
        one_or_not_found(done)
    }

    async fn delete_system(&self, account: &AccountId, id: &SystemId) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        let bound: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM connections WHERE account_id = ? AND legacy = 1 AND system_id = ?",
        )
        .bind(account.as_str())
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if bound > 0 {
            return Err(StoreError::Conflict(format!(
                "this system still has {bound} connector(s): remove them first (that revokes their tokens)"
            )));
        }
        let done = sqlx::query("DELETE FROM systems WHERE id = ? AND account_id = ?")
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(&mut *tx)
            .await?;
        one_or_not_found(done)?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_environment(
        &self,
        account: &AccountId,
        id: &EnvironmentId,
        name: &str,
    ) -> Result<Environment, StoreError> {
        let row = sqlx::query(
            "INSERT INTO environments (id, account_id, name, built_in, position) \
             VALUES (?, ?, ?, 0, (SELECT COALESCE(MAX(position), -1) + 1 FROM environments WHERE account_id = ?)) \
             RETURNING id, account_id, name, built_in, position",
        )
        .bind(id.as_str())
        .bind(account.as_str())
        .bind(name)
        .bind(account.as_str())
        .fetch_one(self.writer())
        .await
        .map_err(unique("an environment"))?;
        row_to_environment(&row)
    }

    async fn environments(&self, account: &AccountId) -> Result<Vec<Environment>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, account_id, name, built_in, position FROM environments WHERE account_id = ? ORDER BY position, id",
        )
        .bind(account.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_environment).collect()
    }

    async fn environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<Environment, StoreError> {
        let row = sqlx::query(
            "SELECT id, account_id, name, built_in, position FROM environments WHERE id = ? AND account_id = ?",
        )
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
        let bound: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM connections WHERE account_id = ? AND legacy = 1 AND environment_id = ?",
        )
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
        let done = sqlx::query("DELETE FROM environments WHERE id = ? AND account_id = ?")
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(&mut *tx)
            .await?;
        one_or_not_found(done)?;
        tx.commit().await?;
        Ok(())
    }
}
