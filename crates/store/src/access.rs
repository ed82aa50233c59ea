//! Users, API tokens and OAuth states.

use std::future::Future;

use domain::{AccountId, AuditEntry, Millis, Role, User, UserId};

use crate::StoreError;

/// Who an API token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub token_id: String,
    pub user: User,
}

/// An API token as its owner sees it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    /// Updated at most once a minute.
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

pub trait AccessStore: Send + Sync {
    fn create_user(
        &self,
        user: &User,
        password_hash: Option<&str>,
        now: Millis,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn user_by_email(&self, email: &str) -> impl Future<Output = Result<User, StoreError>> + Send;
    /// Stores a token by its SHA-256 (hex); the token itself is never stored.
    fn create_api_token(
        &self,
        id: &str,
        user: &UserId,
        name: &str,
        token_hash: &str,
        now: Millis,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The live token with this hash, marking it used.
    fn api_token_owner(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> impl Future<Output = Result<TokenOwner, StoreError>> + Send;
    /// The account's users, by email.
    fn users(&self, account: &AccountId) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;
    /// A user of this account; another account's id is `NotFound`.
    fn user(&self, account: &AccountId, id: &UserId) -> impl Future<Output = Result<User, StoreError>> + Send;
    fn set_role(
        &self,
        account: &AccountId,
        id: &UserId,
        role: Role,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes a user with their sessions and API tokens.
    fn delete_user(&self, account: &AccountId, id: &UserId) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A user's API tokens, newest first.
    fn api_tokens(&self, user: &UserId) -> impl Future<Output = Result<Vec<ApiTokenInfo>, StoreError>> + Send;
    /// Revokes one of this user's tokens; someone else's id is `NotFound`.
    fn revoke_api_token(
        &self,
        user: &UserId,
        id: &str,
        now: Millis,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A user's saved setting (e.g. `connections.columns`), if any.
    fn preference(&self, user: &UserId, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn set_preference(
        &self,
        user: &UserId,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn set_password(&self, user: &UserId, password_hash: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A user and their password hash (if they have one), by email.
    fn credentials(&self, email: &str) -> impl Future<Output = Result<(User, Option<String>), StoreError>> + Send;
    fn create_session(
        &self,
        id_hash: &str,
        user: &UserId,
        csrf_token: &str,
        now: Millis,
        expires_at: Millis,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The live session's user and CSRF token.
    fn session(&self, id_hash: &str, now: Millis) -> impl Future<Output = Result<(User, String), StoreError>> + Send;
    fn delete_session(&self, id_hash: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Sign-in throttling: the latest lock among `keys` that lasts beyond `now`, if any.
    fn sign_in_locked_until(
        &self,
        keys: &[String],
        now: Millis,
    ) -> impl Future<Output = Result<Option<Millis>, StoreError>> + Send;
    /// Counts a failed sign-in against `key` (a count older than `fresh_after` starts again) and
    /// returns the failures so far.
    fn count_sign_in_failure(
        &self,
        key: &str,
        now: Millis,
        fresh_after: Millis,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;
    /// Locks `key` until `until`.
    fn lock_sign_in(&self, key: &str, until: Millis) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets the failures of `keys` (after a successful sign-in).
    fn clear_sign_in_failures(&self, keys: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Remembers a browser (its cookie's hash) that signed `user` in.
    fn remember_device(
        &self,
        id_hash: &str,
        user: &UserId,
        now: Millis,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether this browser signed `user` in before.
    fn device_known(&self, id_hash: &str, user: &UserId) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Ends every session of the user except `keep` (a session id's hash); returns how many ended.
    fn end_sessions(&self, user: &UserId, keep: Option<&str>) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn save_oauth_state(
        &self,
        state_hash: &str,
        account: &AccountId,
        user: &UserId,
        payload: &str,
        expires_at: Millis,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes (deletes and returns) a state if it exists, is unexpired and belongs to this user
    /// and account: a state works once, only for whoever started it.
    fn take_oauth_state(
        &self,
        state_hash: &str,
        account: &AccountId,
        user: &UserId,
        now: Millis,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
}

/// Filters for reading the audit log, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub target_id: Option<String>,
    /// Entries older than this sequence number (for paging back).
    pub before: Option<i64>,
    /// At most 500.
    pub limit: u32,
}

pub trait AuditStore: Send + Sync {
    fn record(&self, entry: &AuditEntry) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// An account's entries, newest first, each with its sequence number.
    fn audit(
        &self,
        account: &AccountId,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<(i64, AuditEntry)>, StoreError>> + Send;
}
