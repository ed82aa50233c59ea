//! Who is calling: an API token (`Authorization: Bearer lb_…`), stored only as its SHA-256.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{AccountId, ActorKind, AuditEntry, Role, User};
use store::AccessStore;
use vault::ApiToken;

use super::ApiError;
use crate::AppState;

/// A new API token: `lb_` + 32 random bytes, base64url.
pub fn new_api_token() -> Result<ApiToken, ApiError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| ApiError::Internal)?;
    Ok(ApiToken::new(format!("lb_{}", URL_SAFE_NO_PAD.encode(bytes))))
}

/// SHA-256 (hex) of a token: what the store keeps and looks up. API tokens carry 256 bits
/// of randomness, so a fast hash is enough (passwords use argon2id).
pub fn hash_token(token: &str) -> String {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// The client's address, for the audit log.
    pub remote_addr: Option<String>,
}

impl Caller {
    /// The caller's account; the instance-wide operator has none for account routes.
    pub fn account(&self) -> Result<&AccountId, ApiError> {
        self.user
            .account_id
            .as_ref()
            .ok_or(ApiError::Forbidden("this route acts within an account; the operator has none"))
    }

    /// Admins and owners may change connections; editors and viewers may only look.
    pub fn require_connection_admin(&self) -> Result<&AccountId, ApiError> {
        let account = self.account()?;
        if !self.user.role.manages_connections() {
            return Err(ApiError::Forbidden("only account admins and owners can change Salesforce connections"));
        }
        Ok(account)
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    /// An audit entry for something this caller did in their account.
    pub fn audit(
        &self,
        now: i64,
        action: &str,
        target_kind: &str,
        target_id: Option<&str>,
        label: Option<&str>,
        detail: Option<String>,
    ) -> AuditEntry {
        AuditEntry {
            account_id: self.user.account_id.clone(),
            at: now,
            actor: self.user.email.clone(),
            actor_kind: ActorKind::ApiToken,
            action: action.to_string(),
            target_kind: target_kind.to_string(),
            target_id: target_id.map(str::to_string),
            target_label: label.map(str::to_string),
            detail,
            remote_addr: self.remote_addr.clone(),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| t.starts_with("lb_"))
            .ok_or(ApiError::Unauthorized)?;
        let owner =
            state.store.api_token_owner(&hash_token(token), state.clock.now_ms()).await.map_err(|e| match e {
                store::StoreError::NotFound => ApiError::Unauthorized,
                other => ApiError::from(other),
            })?;
        let remote_addr =
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(Caller { user: owner.user, remote_addr })
    }
}
