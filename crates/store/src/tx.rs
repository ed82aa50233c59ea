//! A unit of work: statements that commit together or not at all. An action's change, its
//! audit entry and (with the notifications issue) the events it publishes go into one `Tx`, so
//! none of them can be written without the others. Dropping a `Tx` without [`Tx::commit`]
//! rolls it back.

use domain::{AccountId, AuditEntry, Connection, ConnectionId};
use vault::Keyring;

use crate::StoreError;
use crate::connections::NewSecrets;

/// An open transaction on the configured database.
#[derive(Debug)]
pub struct Tx {
    inner: Inner,
    keys: Keyring,
}

#[derive(Debug)]
enum Inner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs one shared statement on whichever database the transaction is on.
macro_rules! on_either {
    ($tx:expr, $statement:ident($($arg:expr),*)) => {
        match &mut $tx.inner {
            Inner::Sqlite(t) => crate::sqlite::statements::$statement(&mut **t, $($arg),*).await,
            Inner::Postgres(t) => crate::postgres::statements::$statement(&mut **t, $($arg),*).await,
        }
    };
}

impl Tx {
    pub(crate) fn sqlite(tx: sqlx::Transaction<'static, sqlx::Sqlite>, keys: Keyring) -> Self {
        Tx { inner: Inner::Sqlite(tx), keys }
    }

    pub(crate) fn postgres(tx: sqlx::Transaction<'static, sqlx::Postgres>, keys: Keyring) -> Self {
        Tx { inner: Inner::Postgres(tx), keys }
    }

    /// [`crate::ConnectionStore::insert`], inside the transaction.
    pub async fn insert_connection(&mut self, c: &Connection, secrets: &NewSecrets) -> Result<(), StoreError> {
        let Tx { inner, keys } = self;
        match inner {
            Inner::Sqlite(t) => crate::sqlite::statements::insert_connection(&mut **t, keys, c, secrets).await,
            Inner::Postgres(t) => crate::postgres::statements::insert_connection(&mut **t, keys, c, secrets).await,
        }
    }

    /// [`crate::ConnectionStore::delete`], inside the transaction.
    pub async fn delete_connection(&mut self, account: &AccountId, id: &ConnectionId) -> Result<(), StoreError> {
        on_either!(self, delete_connection(account, id))
    }

    /// [`crate::AuditStore::record`], inside the transaction.
    pub async fn record(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        on_either!(self, record(entry))
    }

    /// Records an event and queues its webhook deliveries (#18), inside the transaction.
    pub async fn record_event(&mut self, event: &domain::Event) -> Result<(), StoreError> {
        match &mut self.inner {
            Inner::Sqlite(t) => crate::sqlite::statements::record_event(t, event).await,
            Inner::Postgres(t) => crate::postgres::statements::record_event(t, event).await,
        }
    }

    /// Makes every statement of the transaction durable at once.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            Inner::Sqlite(t) => t.commit().await?,
            Inner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}
