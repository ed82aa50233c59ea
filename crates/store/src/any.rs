//! The store the server runs on, chosen by configuration: SQLite (one instance, the default)
//! or PostgreSQL (several instances on one database). Each store trait's pass-through to the
//! chosen backend is generated with the trait (`store_trait!` in `lib.rs`).

use crate::{PgStore, SqliteStore, StoreError};

#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl From<SqliteStore> for Store {
    fn from(s: SqliteStore) -> Self {
        Store::Sqlite(s)
    }
}

impl From<PgStore> for Store {
    fn from(s: PgStore) -> Self {
        Store::Postgres(s)
    }
}

impl Store {
    /// Opens a transaction on the configured database (see [`crate::Tx`]).
    pub async fn begin(&self) -> Result<crate::Tx, StoreError> {
        match self {
            Store::Sqlite(s) => s.begin().await,
            Store::Postgres(s) => s.begin().await,
        }
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.ping().await,
            Store::Postgres(s) => s.ping().await,
        }
    }

    /// Closes the database connections (shutdown; tests that take the database away).
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => {
                s.pool().close().await;
                s.writer().close().await;
            }
            Store::Postgres(s) => s.pool().close().await,
        }
    }

    /// Whether [`Self::read_table_blocking`] reads (not an SQLite database in memory).
    pub fn reads_directly(&self) -> bool {
        match self {
            Store::Sqlite(s) => s.reads_directly(),
            Store::Postgres(_) => true,
        }
    }

    /// The table's rows for an export, in the query's order, handed to `each` borrowed as the
    /// database gives them, on the calling thread (a blocking one, in the runtime): SQLite's rows
    /// through a connection of the export's own, PostgreSQL's `COPY` stream (#17). `each`
    /// returns false to stop.
    pub fn read_table_blocking(
        &self,
        account: &domain::AccountId,
        q: &crate::ListQuery,
        each: &mut dyn FnMut(crate::TableRowRef<'_>) -> bool,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.read_table_blocking(account, q, each).unwrap_or(Ok(())),
            Store::Postgres(s) => s.read_table_blocking(account, q, each),
        }
    }

    /// `sqlite` or `postgres`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}
