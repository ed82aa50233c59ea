//! Users, API tokens and OAuth states.

use std::future::Future;

use domain::{AccountId, Millis, User, UserId};

use crate::StoreError;

/// Who an API token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub token_id: String,
    pub user: User,
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
