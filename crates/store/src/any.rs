//! The store the server runs on, chosen by configuration: SQLite (one instance, the default)
//! or PostgreSQL (several instances on one database). Every trait method passes straight
//! through to the chosen backend.

use domain::{
    Account, AccountId, AuditEntry, BundleId, BundleInfo, Connection, ConnectionId, ConnectionStatus, Deployment,
    DeploymentId, Environment, EnvironmentId, Millis, Role, System, SystemId, Target, User, UserId,
};

use crate::access::{AccessStore, ApiTokenInfo, AuditQuery, AuditStore, TokenOwner};
use crate::catalog::CatalogStore;
use crate::connections::{ConnectionSecrets, ConnectionStore, ListQuery, NewSecrets, Page, TableRow, TokenSet};
use crate::deployments::{Claimed, DeploymentStore, Finish, TargetCounts};
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
    async fn take_renewal(
        &self,
        id: &ConnectionId,
        owner: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.take_renewal(id, owner, now, until).await,
            Store::Postgres(s) => s.take_renewal(id, owner, now, until).await,
        }
    }

    async fn rotate_keys(&self, limit: u32) -> Result<crate::Rotation, StoreError> {
        match self {
            Store::Sqlite(s) => s.rotate_keys(limit).await,
            Store::Postgres(s) => s.rotate_keys(limit).await,
        }
    }

    async fn status_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.status_counts().await,
            Store::Postgres(s) => s.status_counts().await,
        }
    }

    async fn release_renewal(&self, id: &ConnectionId, owner: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.release_renewal(id, owner).await,
            Store::Postgres(s) => s.release_renewal(id, owner).await,
        }
    }

    async fn insert(&self, connection: &Connection, secrets: &NewSecrets) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.insert(connection, secrets).await,
            Store::Postgres(s) => s.insert(connection, secrets).await,
        }
    }

    async fn update(&self, connection: &Connection, secrets: &NewSecrets) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.update(connection, secrets).await,
            Store::Postgres(s) => s.update(connection, secrets).await,
        }
    }

    async fn get(&self, account: &AccountId, id: &ConnectionId) -> Result<Connection, StoreError> {
        match self {
            Store::Sqlite(s) => s.get(account, id).await,
            Store::Postgres(s) => s.get(account, id).await,
        }
    }

    async fn list(&self, account: &AccountId, query: &ListQuery) -> Result<Page, StoreError> {
        match self {
            Store::Sqlite(s) => s.list(account, query).await,
            Store::Postgres(s) => s.list(account, query).await,
        }
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

    async fn name_taken(
        &self,
        account: &AccountId,
        name: &str,
        except: Option<&ConnectionId>,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.name_taken(account, name, except).await,
            Store::Postgres(s) => s.name_taken(account, name, except).await,
        }
    }

    async fn legacy_connectors(&self, account: &AccountId, system: &SystemId) -> Result<Vec<Connection>, StoreError> {
        match self {
            Store::Sqlite(s) => s.legacy_connectors(account, system).await,
            Store::Postgres(s) => s.legacy_connectors(account, system).await,
        }
    }

    async fn delete(&self, account: &AccountId, id: &ConnectionId) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.delete(account, id).await,
            Store::Postgres(s) => s.delete(account, id).await,
        }
    }

    async fn secrets(&self, id: &ConnectionId) -> Result<ConnectionSecrets, StoreError> {
        match self {
            Store::Sqlite(s) => s.secrets(id).await,
            Store::Postgres(s) => s.secrets(id).await,
        }
    }

    async fn save_tokens(
        &self,
        id: &ConnectionId,
        tokens: &TokenSet,
        seen_version: i64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.save_tokens(id, tokens, seen_version, now).await,
            Store::Postgres(s) => s.save_tokens(id, tokens, seen_version, now).await,
        }
    }

    async fn due_for_check(&self, before: Millis, limit: u32) -> Result<Vec<Connection>, StoreError> {
        match self {
            Store::Sqlite(s) => s.due_for_check(before, limit).await,
            Store::Postgres(s) => s.due_for_check(before, limit).await,
        }
    }

    async fn set_status(
        &self,
        id: &ConnectionId,
        status: ConnectionStatus,
        detail: Option<&str>,
        now: Millis,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.set_status(id, status, detail, now).await,
            Store::Postgres(s) => s.set_status(id, status, detail, now).await,
        }
    }
}

impl AccessStore for Store {
    async fn create_user(&self, user: &User, password_hash: Option<&str>, now: Millis) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.create_user(user, password_hash, now).await,
            Store::Postgres(s) => s.create_user(user, password_hash, now).await,
        }
    }

    async fn user_by_email(&self, email: &str) -> Result<User, StoreError> {
        match self {
            Store::Sqlite(s) => s.user_by_email(email).await,
            Store::Postgres(s) => s.user_by_email(email).await,
        }
    }

    async fn create_api_token(
        &self,
        id: &str,
        user: &UserId,
        name: &str,
        token_hash: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.create_api_token(id, user, name, token_hash, now).await,
            Store::Postgres(s) => s.create_api_token(id, user, name, token_hash, now).await,
        }
    }

    async fn api_token_owner(&self, token_hash: &str, now: Millis) -> Result<TokenOwner, StoreError> {
        match self {
            Store::Sqlite(s) => s.api_token_owner(token_hash, now).await,
            Store::Postgres(s) => s.api_token_owner(token_hash, now).await,
        }
    }

    async fn users(&self, account: &AccountId) -> Result<Vec<User>, StoreError> {
        match self {
            Store::Sqlite(s) => s.users(account).await,
            Store::Postgres(s) => s.users(account).await,
        }
    }

    async fn user(&self, account: &AccountId, id: &UserId) -> Result<User, StoreError> {
        match self {
            Store::Sqlite(s) => s.user(account, id).await,
            Store::Postgres(s) => s.user(account, id).await,
        }
    }

    async fn set_role(&self, account: &AccountId, id: &UserId, role: Role) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.set_role(account, id, role).await,
            Store::Postgres(s) => s.set_role(account, id, role).await,
        }
    }

    async fn delete_user(&self, account: &AccountId, id: &UserId) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.delete_user(account, id).await,
            Store::Postgres(s) => s.delete_user(account, id).await,
        }
    }

    async fn api_tokens(&self, user: &UserId) -> Result<Vec<ApiTokenInfo>, StoreError> {
        match self {
            Store::Sqlite(s) => s.api_tokens(user).await,
            Store::Postgres(s) => s.api_tokens(user).await,
        }
    }

    async fn revoke_api_token(&self, user: &UserId, id: &str, now: Millis) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.revoke_api_token(user, id, now).await,
            Store::Postgres(s) => s.revoke_api_token(user, id, now).await,
        }
    }

    async fn preference(&self, user: &UserId, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.preference(user, key).await,
            Store::Postgres(s) => s.preference(user, key).await,
        }
    }

    async fn set_preference(&self, user: &UserId, key: &str, value: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.set_preference(user, key, value).await,
            Store::Postgres(s) => s.set_preference(user, key, value).await,
        }
    }

    async fn set_password(&self, user: &UserId, password_hash: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.set_password(user, password_hash).await,
            Store::Postgres(s) => s.set_password(user, password_hash).await,
        }
    }

    async fn credentials(&self, email: &str) -> Result<(User, Option<String>), StoreError> {
        match self {
            Store::Sqlite(s) => s.credentials(email).await,
            Store::Postgres(s) => s.credentials(email).await,
        }
    }

    async fn create_session(
        &self,
        id_hash: &str,
        user: &UserId,
        csrf_token: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.create_session(id_hash, user, csrf_token, now, expires_at).await,
            Store::Postgres(s) => s.create_session(id_hash, user, csrf_token, now, expires_at).await,
        }
    }

    async fn session(&self, id_hash: &str, now: Millis) -> Result<(User, String), StoreError> {
        match self {
            Store::Sqlite(s) => s.session(id_hash, now).await,
            Store::Postgres(s) => s.session(id_hash, now).await,
        }
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.delete_session(id_hash).await,
            Store::Postgres(s) => s.delete_session(id_hash).await,
        }
    }

    async fn save_oauth_state(
        &self,
        state_hash: &str,
        account: &AccountId,
        user: &UserId,
        payload: &str,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.save_oauth_state(state_hash, account, user, payload, expires_at).await,
            Store::Postgres(s) => s.save_oauth_state(state_hash, account, user, payload, expires_at).await,
        }
    }

    async fn take_oauth_state(
        &self,
        state_hash: &str,
        account: &AccountId,
        user: &UserId,
        now: Millis,
    ) -> Result<String, StoreError> {
        match self {
            Store::Sqlite(s) => s.take_oauth_state(state_hash, account, user, now).await,
            Store::Postgres(s) => s.take_oauth_state(state_hash, account, user, now).await,
        }
    }
}

impl AuditStore for Store {
    async fn record(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.record(entry).await,
            Store::Postgres(s) => s.record(entry).await,
        }
    }

    async fn audit(&self, account: &AccountId, query: &AuditQuery) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.audit(account, query).await,
            Store::Postgres(s) => s.audit(account, query).await,
        }
    }
}

impl CatalogStore for Store {
    async fn create_account(&self, id: &AccountId, name: &str, now: Millis) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.create_account(id, name, now).await,
            Store::Postgres(s) => s.create_account(id, name, now).await,
        }
    }

    async fn account(&self, id: &AccountId) -> Result<Account, StoreError> {
        match self {
            Store::Sqlite(s) => s.account(id).await,
            Store::Postgres(s) => s.account(id).await,
        }
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        match self {
            Store::Sqlite(s) => s.accounts().await,
            Store::Postgres(s) => s.accounts().await,
        }
    }

    async fn set_connectors_enabled(&self, id: &AccountId, enabled: bool) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.set_connectors_enabled(id, enabled).await,
            Store::Postgres(s) => s.set_connectors_enabled(id, enabled).await,
        }
    }

    async fn insert_system(&self, system: &System) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.insert_system(system).await,
            Store::Postgres(s) => s.insert_system(system).await,
        }
    }

    async fn systems(&self, account: &AccountId) -> Result<Vec<System>, StoreError> {
        match self {
            Store::Sqlite(s) => s.systems(account).await,
            Store::Postgres(s) => s.systems(account).await,
        }
    }

    async fn system(&self, account: &AccountId, id: &SystemId) -> Result<System, StoreError> {
        match self {
            Store::Sqlite(s) => s.system(account, id).await,
            Store::Postgres(s) => s.system(account, id).await,
        }
    }

    async fn rename_system(&self, account: &AccountId, id: &SystemId, name: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.rename_system(account, id, name).await,
            Store::Postgres(s) => s.rename_system(account, id, name).await,
        }
    }

    async fn delete_system(&self, account: &AccountId, id: &SystemId) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.delete_system(account, id).await,
            Store::Postgres(s) => s.delete_system(account, id).await,
        }
    }

    async fn insert_environment(
        &self,
        account: &AccountId,
        id: &EnvironmentId,
        name: &str,
    ) -> Result<Environment, StoreError> {
        match self {
            Store::Sqlite(s) => s.insert_environment(account, id, name).await,
            Store::Postgres(s) => s.insert_environment(account, id, name).await,
        }
    }

    async fn environments(&self, account: &AccountId) -> Result<Vec<Environment>, StoreError> {
        match self {
            Store::Sqlite(s) => s.environments(account).await,
            Store::Postgres(s) => s.environments(account).await,
        }
    }

    async fn environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<Environment, StoreError> {
        match self {
            Store::Sqlite(s) => s.environment(account, id).await,
            Store::Postgres(s) => s.environment(account, id).await,
        }
    }

    async fn delete_environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.delete_environment(account, id).await,
            Store::Postgres(s) => s.delete_environment(account, id).await,
        }
    }
}

impl DeploymentStore for Store {
    async fn save_bundle(&self, bundle: &BundleInfo, bytes: &[u8]) -> Result<BundleInfo, StoreError> {
        match self {
            Store::Sqlite(s) => s.save_bundle(bundle, bytes).await,
            Store::Postgres(s) => s.save_bundle(bundle, bytes).await,
        }
    }

    async fn bundle(&self, account: &AccountId, id: &BundleId) -> Result<BundleInfo, StoreError> {
        match self {
            Store::Sqlite(s) => s.bundle(account, id).await,
            Store::Postgres(s) => s.bundle(account, id).await,
        }
    }

    async fn bundle_bytes(&self, id: &BundleId) -> Result<Vec<u8>, StoreError> {
        match self {
            Store::Sqlite(s) => s.bundle_bytes(id).await,
            Store::Postgres(s) => s.bundle_bytes(id).await,
        }
    }

    async fn bind(
        &self,
        account: &AccountId,
        connection: &ConnectionId,
        system: &SystemId,
        environment: &EnvironmentId,
        now: Millis,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.bind(account, connection, system, environment, now).await,
            Store::Postgres(s) => s.bind(account, connection, system, environment, now).await,
        }
    }

    async fn unbind(
        &self,
        account: &AccountId,
        connection: &ConnectionId,
        system: &SystemId,
        environment: &EnvironmentId,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.unbind(account, connection, system, environment).await,
            Store::Postgres(s) => s.unbind(account, connection, system, environment).await,
        }
    }

    async fn targets_for(
        &self,
        account: &AccountId,
        system: &SystemId,
        environment: &EnvironmentId,
    ) -> Result<Vec<Connection>, StoreError> {
        match self {
            Store::Sqlite(s) => s.targets_for(account, system, environment).await,
            Store::Postgres(s) => s.targets_for(account, system, environment).await,
        }
    }

    async fn create_deployment(&self, deployment: &Deployment, connections: &[ConnectionId]) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.create_deployment(deployment, connections).await,
            Store::Postgres(s) => s.create_deployment(deployment, connections).await,
        }
    }

    async fn deployment(
        &self,
        account: &AccountId,
        id: &DeploymentId,
    ) -> Result<(Deployment, Vec<Target>), StoreError> {
        match self {
            Store::Sqlite(s) => s.deployment(account, id).await,
            Store::Postgres(s) => s.deployment(account, id).await,
        }
    }

    async fn deployments(
        &self,
        account: &AccountId,
        system: Option<&SystemId>,
        environment: Option<&EnvironmentId>,
        connection: Option<&ConnectionId>,
        limit: u32,
    ) -> Result<Vec<(Deployment, TargetCounts)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.deployments(account, system, environment, connection, limit).await,
            Store::Postgres(s) => s.deployments(account, system, environment, connection, limit).await,
        }
    }

    async fn claim_targets(
        &self,
        owner: &str,
        now: Millis,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        match self {
            Store::Sqlite(s) => s.claim_targets(owner, now, lease_ms, limit).await,
            Store::Postgres(s) => s.claim_targets(owner, now, lease_ms, limit).await,
        }
    }

    async fn finish_targets(&self, owner: &str, finished: &[Finish]) -> Result<Vec<bool>, StoreError> {
        match self {
            Store::Sqlite(s) => s.finish_targets(owner, finished).await,
            Store::Postgres(s) => s.finish_targets(owner, finished).await,
        }
    }

    async fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        match self {
            Store::Sqlite(s) => s.next_due().await,
            Store::Postgres(s) => s.next_due().await,
        }
    }
}
