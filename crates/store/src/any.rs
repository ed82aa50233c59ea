//! The store the server runs on, chosen by configuration: SQLite (one instance, the default)
//! or PostgreSQL (several instances on one database). Every trait method passes straight
//! through to the chosen backend.

use domain::{
    Account, AccountId, AuditEntry, BundleId, BundleInfo, Connection, ConnectionId, ConnectionStatus, Deployment,
    DeploymentId, Environment, EnvironmentId, Millis, Role, System, SystemId, Target, User, UserId,
};

use crate::access::{AccessStore, ApiTokenInfo, Attempt, AuditQuery, AuditStore, Throttle, TokenOwner};
use crate::catalog::CatalogStore;
use crate::connections::{ConnectionSecrets, ConnectionStore, ListQuery, NewSecrets, Page, TableRow, TokenSet};
use crate::deployments::{Claimed, DeploymentStore, Finish, TargetCounts};
use crate::{PgStore, SqliteStore, StoreError};

/// Each method passes straight through to the chosen backend: the signature, written once
/// here, is the whole of it.
macro_rules! delegate {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(
            async fn $name(&self $(, $arg: $ty)*) -> $ret {
                match self {
                    Store::Sqlite(s) => s.$name($($arg),*).await,
                    Store::Postgres(s) => s.$name($($arg),*).await,
                }
            }
        )*
    };
}

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

    /// `sqlite` or `postgres`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}

impl ConnectionStore for Store {
    delegate! {
        fn take_renewal(&self, id: &ConnectionId, owner: &str, now: Millis, until: Millis) -> Result<bool, StoreError>;
        fn rotate_keys(&self, limit: u32) -> Result<crate::Rotation, StoreError>;
        fn status_counts(&self) -> Result<Vec<(String, u64)>, StoreError>;
        fn release_renewal(&self, id: &ConnectionId, owner: &str) -> Result<(), StoreError>;
        fn insert(&self, connection: &Connection, secrets: &NewSecrets) -> Result<(), StoreError>;
        fn update(&self, connection: &Connection, secrets: &NewSecrets) -> Result<(), StoreError>;
        fn get(&self, account: &AccountId, id: &ConnectionId) -> Result<Connection, StoreError>;
        fn list(&self, account: &AccountId, query: &ListQuery) -> Result<Page, StoreError>;
        fn name_taken(&self, account: &AccountId, name: &str, except: Option<&ConnectionId>) -> Result<bool, StoreError>;
        fn legacy_connectors(&self, account: &AccountId, system: &SystemId) -> Result<Vec<Connection>, StoreError>;
        fn delete(&self, account: &AccountId, id: &ConnectionId) -> Result<(), StoreError>;
        fn secrets(&self, id: &ConnectionId) -> Result<ConnectionSecrets, StoreError>;
        fn save_tokens(&self, id: &ConnectionId, tokens: &TokenSet, seen_version: i64, now: Millis) -> Result<bool, StoreError>;
        fn due_for_check(&self, before: Millis, limit: u32) -> Result<Vec<Connection>, StoreError>;
        fn set_status(&self, id: &ConnectionId, status: ConnectionStatus, detail: Option<&str>, now: Millis) -> Result<(), StoreError>;
    }

    fn stream<'a>(
        &'a self,
        account: &'a AccountId,
        query: &ListQuery,
    ) -> impl futures_util::Stream<Item = Result<Connection, StoreError>> + Send + 'a {
        use futures_util::StreamExt;
        match self {
            Store::Sqlite(s) => s.stream(account, query).boxed(),
            Store::Postgres(s) => s.stream(account, query).boxed(),
        }
    }

    fn table_chunks<'a>(
        &'a self,
        account: &'a AccountId,
        query: &ListQuery,
    ) -> impl futures_util::Stream<Item = Result<Vec<TableRow>, StoreError>> + Send + 'a {
        use futures_util::StreamExt;
        match self {
            Store::Sqlite(s) => s.table_chunks(account, query).boxed(),
            Store::Postgres(s) => s.table_chunks(account, query).boxed(),
        }
    }
}

impl AccessStore for Store {
    delegate! {
        fn create_user(&self, user: &User, password_hash: Option<&str>, now: Millis) -> Result<(), StoreError>;
        fn user_by_email(&self, email: &str) -> Result<User, StoreError>;
        fn create_api_token(&self, id: &str, user: &UserId, name: &str, token_hash: &str, now: Millis) -> Result<(), StoreError>;
        fn api_token_owner(&self, token_hash: &str, now: Millis) -> Result<TokenOwner, StoreError>;
        fn users(&self, account: &AccountId) -> Result<Vec<User>, StoreError>;
        fn user(&self, account: &AccountId, id: &UserId) -> Result<User, StoreError>;
        fn set_role(&self, account: &AccountId, id: &UserId, role: Role) -> Result<(), StoreError>;
        fn delete_user(&self, account: &AccountId, id: &UserId) -> Result<(), StoreError>;
        fn api_tokens(&self, user: &UserId) -> Result<Vec<ApiTokenInfo>, StoreError>;
        fn revoke_api_token(&self, user: &UserId, id: &str, now: Millis) -> Result<(), StoreError>;
        fn preference(&self, user: &UserId, key: &str) -> Result<Option<String>, StoreError>;
        fn set_preference(&self, user: &UserId, key: &str, value: &str) -> Result<(), StoreError>;
        fn set_password(&self, user: &UserId, password_hash: &str) -> Result<(), StoreError>;
        fn credentials(&self, email: &str) -> Result<(User, Option<String>), StoreError>;
        fn create_session(&self, id_hash: &str, user: &UserId, csrf_token: &str, now: Millis, expires_at: Millis) -> Result<(), StoreError>;
        fn session(&self, id_hash: &str, now: Millis) -> Result<(User, String), StoreError>;
        fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;
        fn end_sessions(&self, user: &UserId, keep: Option<&str>) -> Result<u64, StoreError>;
        fn take_sign_in_attempt(&self, key: &str, now: Millis, throttle: Throttle) -> Result<Attempt, StoreError>;
        fn forgive_sign_in(&self, key: &str, clear: bool) -> Result<(), StoreError>;
        fn remember_device(&self, id_hash: &str, user: &UserId, now: Millis) -> Result<(), StoreError>;
        fn device_known(&self, id_hash: &str, user: &UserId, since: Millis) -> Result<bool, StoreError>;
        fn forget_devices(&self, user: &UserId) -> Result<(), StoreError>;
        fn save_oauth_state(&self, state_hash: &str, account: &AccountId, user: &UserId, payload: &str, expires_at: Millis) -> Result<(), StoreError>;
        fn take_oauth_state(&self, state_hash: &str, account: &AccountId, user: &UserId, now: Millis) -> Result<String, StoreError>;
    }
}

impl AuditStore for Store {
    delegate! {
        fn record(&self, entry: &AuditEntry) -> Result<(), StoreError>;
        fn audit(&self, account: &AccountId, query: &AuditQuery) -> Result<Vec<(i64, AuditEntry)>, StoreError>;
    }
}

impl CatalogStore for Store {
    delegate! {
        fn create_account(&self, id: &AccountId, name: &str, now: Millis) -> Result<(), StoreError>;
        fn account(&self, id: &AccountId) -> Result<Account, StoreError>;
        fn accounts(&self) -> Result<Vec<Account>, StoreError>;
        fn set_connectors_enabled(&self, id: &AccountId, enabled: bool) -> Result<(), StoreError>;
        fn insert_system(&self, system: &System) -> Result<(), StoreError>;
        fn systems(&self, account: &AccountId) -> Result<Vec<System>, StoreError>;
        fn system(&self, account: &AccountId, id: &SystemId) -> Result<System, StoreError>;
        fn rename_system(&self, account: &AccountId, id: &SystemId, name: &str) -> Result<(), StoreError>;
        fn delete_system(&self, account: &AccountId, id: &SystemId) -> Result<(), StoreError>;
        fn insert_environment(&self, account: &AccountId, id: &EnvironmentId, name: &str) -> Result<Environment, StoreError>;
        fn environments(&self, account: &AccountId) -> Result<Vec<Environment>, StoreError>;
        fn environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<Environment, StoreError>;
        fn delete_environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<(), StoreError>;
    }
}

impl DeploymentStore for Store {
    delegate! {
        fn save_bundle(&self, bundle: &BundleInfo, bytes: &[u8]) -> Result<BundleInfo, StoreError>;
        fn bundle(&self, account: &AccountId, id: &BundleId) -> Result<BundleInfo, StoreError>;
        fn bundle_bytes(&self, id: &BundleId) -> Result<Vec<u8>, StoreError>;
        fn bind(&self, account: &AccountId, connection: &ConnectionId, system: &SystemId, environment: &EnvironmentId, now: Millis) -> Result<(), StoreError>;
        fn unbind(&self, account: &AccountId, connection: &ConnectionId, system: &SystemId, environment: &EnvironmentId) -> Result<(), StoreError>;
        fn targets_for(&self, account: &AccountId, system: &SystemId, environment: &EnvironmentId) -> Result<Vec<Connection>, StoreError>;
        fn create_deployment(&self, deployment: &Deployment, connections: &[ConnectionId]) -> Result<(), StoreError>;
        fn deployment(&self, account: &AccountId, id: &DeploymentId) -> Result<(Deployment, Vec<Target>), StoreError>;
        fn deployments(&self, account: &AccountId, system: Option<&SystemId>, environment: Option<&EnvironmentId>, connection: Option<&ConnectionId>, limit: u32) -> Result<Vec<(Deployment, TargetCounts)>, StoreError>;
        fn claim_targets(&self, owner: &str, now: Millis, lease_ms: i64, limit: u32) -> Result<Vec<Claimed>, StoreError>;
        fn finish_targets(&self, owner: &str, finished: &[Finish]) -> Result<Vec<bool>, StoreError>;
        fn next_due(&self) -> Result<Option<Millis>, StoreError>;
    }
}
