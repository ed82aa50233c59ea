//! Who is calling: an API token (`Authorization: Bearer lb_…`), stored only as its SHA-256.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::ActorKind;
use service::Actor;
pub use service::secrets::{hash_token, new_api_token, random_token};
use store::AccessStore;

use super::ApiError;
use crate::AppState;

/// The authenticated caller: the service's [`Actor`], found from the request's API token or
/// session cookie (with its CSRF header on changes). It dereferences to the actor, so a
/// handler passes `&caller` to an action.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

impl std::ops::Deref for Caller {
    type Target = Actor;

    fn deref(&self) -> &Actor {
        &self.0
    }
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lb_session";

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_string())
}

/// The session id from the request's cookies.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // A role guard and an `Owned<…>` both ask for the caller: authenticate once.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(parts, state).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// The caller from an API token, or from the session cookie (with its CSRF token on changes).
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
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
        let owner = state.store.api_token_owner(&hash_token(token), now).await.map_err(not_found_is_unauthorized)?;
        // A token acts for its person: while they owe their account a second factor, it
        // reaches only their own sign-in settings too.
        if owner.must_enrol && !reaches_while_enrolling(parts) {
            return Err(ApiError::TwoFactorSetupRequired);
        }
        return Ok(Caller(Actor::new(owner.user, ActorKind::ApiToken, remote_addr)));
    }
    let session = session_cookie(&parts.headers).ok_or(ApiError::Unauthorized)?;
    let store::LiveSession { user, csrf, must_enrol } =
        state.store.session(&hash_token(&session), now).await.map_err(not_found_is_unauthorized)?;
    // Until a person whose account requires a second factor has set theirs up, their session
    // reaches only their own sign-in settings.
    if must_enrol && !reaches_while_enrolling(parts) {
        return Err(ApiError::TwoFactorSetupRequired);
    }
    // Browsers send cookies on their own: a request that changes anything must also carry
    // the session's CSRF token, which only our own pages can read.
    let safe = matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS);
    if !safe {
        let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), csrf.as_bytes()).is_err() {
            return Err(ApiError::Forbidden(
                "missing or wrong CSRF token (send the x-csrf-token header from GET /api/v1/session)",
            ));
        }
    }
    Ok(Caller(Actor::new(user, ActorKind::User, remote_addr)))
}

/// What a person owing their account a second factor may still reach: the session itself,
/// and setting up two-factor sign-in (its state, start and confirmation).
pub(crate) fn reaches_while_enrolling(parts: &Parts) -> bool {
    let path = parts.extensions.get::<axum::extract::OriginalUri>().map_or(parts.uri.path(), |u| u.0.path());
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    matches!(path, "/session" | "/me/two-factor" | "/me/two-factor/confirm")
}

fn not_found_is_unauthorized(e: store::StoreError) -> ApiError {
    match e {
        store::StoreError::NotFound => ApiError::Unauthorized,
        other => ApiError::from(other),
    }
}
