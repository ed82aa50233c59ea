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
    /// An API token, or a browser session (cookie).
    pub via: ActorKind,
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lb_session";

/// A random URL-safe value of 32 bytes (session ids, CSRF tokens, OAuth states).
pub fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| ApiError::Internal)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The session id from the request's cookies.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
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

    /// Editors, admins and owners publish (content authors and their CI pipelines).
    pub fn require_publisher(&self) -> Result<&AccountId, ApiError> {
        let account = self.account()?;
        if !matches!(self.user.role, Role::Editor | Role::Admin | Role::Owner) {
            return Err(ApiError::Forbidden("viewers cannot publish; an editor, admin or owner can"));
        }
        Ok(account)
    }

    /// Owners manage the account's users.
    pub fn require_owner(&self) -> Result<&AccountId, ApiError> {
        let account = self.account()?;
        if self.user.role != Role::Owner {
            return Err(ApiError::Forbidden("only account owners can manage users"));
        }
        Ok(account)
    }

    /// The instance-wide operator (enables Connectors per account, F4).
    pub fn require_operator(&self) -> Result<(), ApiError> {
        if self.user.role != Role::Operator {
            return Err(ApiError::Forbidden("only the Lightbridge operator can do this"));
        }
        Ok(())
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
            actor_kind: self.via,
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
        let remote_addr =
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
        let now = state.clock.now_ms();
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(token) = bearer {
            if !token.starts_with("lb_") {
                return Err(ApiError::Unauthorized);
            }
            let owner =
                state.store.api_token_owner(&hash_token(token), now).await.map_err(not_found_is_unauthorized)?;
            return Ok(Caller { user: owner.user, remote_addr, via: ActorKind::ApiToken });
        }
        let session = session_cookie(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let (user, csrf) = state.store.session(&hash_token(&session), now).await.map_err(not_found_is_unauthorized)?;
        // Browsers send cookies on their own: a request that changes anything must also carry
        // the session's CSRF token, which only our own pages can read.
        let safe =
            matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS);
        if !safe {
            let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
            if aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), csrf.as_bytes()).is_err() {
                return Err(ApiError::Forbidden(
                    "missing or wrong CSRF token (send the x-csrf-token header from GET /api/v1/session)",
                ));
            }
        }
        Ok(Caller { user, remote_addr, via: ActorKind::User })
    }
}

fn not_found_is_unauthorized(e: store::StoreError) -> ApiError {
    match e {
        store::StoreError::NotFound => ApiError::Unauthorized,
        other => ApiError::from(other),
    }
}
