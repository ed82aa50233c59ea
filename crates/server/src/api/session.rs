//! `/api/v1/session`: sign in with email and password (argon2id), read the session, sign out.
//! The session lives in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS); its CSRF token is
//! returned in the body for the pages to send back on every change.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use store::AccessStore;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vault::Password;

use super::auth::{SESSION_COOKIE, random_token, session_cookie};
use super::{ApiError, Caller, ErrorBody, hash_token};
use crate::AppState;

/// Sessions last 12 hours.
const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sign_in, current, sign_out))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignIn {
    email: String,
    password: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn").field("email", &self.email).field("password", &"[redacted]").finish()
    }
}

fn cookie(state: &AppState, value: &str, max_age_secs: i64) -> Result<HeaderValue, ApiError> {
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .map_err(|_| ApiError::Internal)
}

/// A signed-in browser session: who, and the CSRF token to send as `x-csrf-token` on every
/// change.
#[derive(Debug, Serialize, ToSchema)]
struct SessionView {
    email: String,
    #[schema(value_type = String)]
    role: domain::Role,
    account_id: Option<String>,
    csrf_token: String,
}

impl SessionView {
    fn new(user: &domain::User, csrf: String) -> Json<Self> {
        Json(SessionView {
            email: user.email.clone(),
            role: user.role,
            account_id: user.account_id.as_ref().map(ToString::to_string),
            csrf_token: csrf,
        })
    }
}

/// Signs in with email and password; sets the `lb_session` cookie (HttpOnly, SameSite=Lax).
#[utoipa::path(post, path = "/session", tag = "session", request_body = SignIn, security(),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
async fn sign_in(
    State(state): State<AppState>,
    body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let (user, id, csrf) = open_session(&state, body.email.trim(), Password::new(body.password), None).await?;
    let mut response = SessionView::new(&user, csrf).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie_header(&state, &id)?);
    Ok(response)
}

/// The `Set-Cookie` value for a new session.
pub(crate) fn session_cookie_header(state: &AppState, id: &str) -> Result<HeaderValue, ApiError> {
    cookie(state, id, SESSION_TTL_MS / 1000)
}

/// The `Set-Cookie` value that ends a session.
pub(crate) fn cleared_session_cookie(state: &AppState) -> Result<HeaderValue, ApiError> {
    cookie(state, "", 0)
}

/// Checks the password (argon2id; a missing user costs the same time as a wrong password) and
/// opens a session: returns the user, the session id (for the cookie) and its CSRF token.
pub(crate) async fn open_session(
    state: &AppState,
    email: &str,
    password: Password,
    remote_addr: Option<String>,
) -> Result<(domain::User, String, String), ApiError> {
    let wrong = || ApiError::Unauthorized;
    let (user, stored) = match state.store.credentials(email).await {
        Ok(found) => found,
        Err(store::StoreError::NotFound) => {
            crate::password::verify_dummy(&password);
            return Err(wrong());
        }
        Err(e) => return Err(e.into()),
    };
    let verified = match &stored {
        Some(hash) => crate::password::verify(&password, hash),
        None => {
            crate::password::verify_dummy(&password);
            false
        }
    };
    if !verified {
        tracing::info!(email = %user.email, "failed sign-in");
        return Err(wrong());
    }
    let id = random_token()?;
    let csrf = random_token()?;
    let now = state.clock.now_ms();
    state.store.create_session(&hash_token(&id), &user.id, &csrf, now, now + SESSION_TTL_MS).await?;
    let caller = Caller { user: user.clone(), remote_addr, via: domain::ActorKind::User };
    super::connections::record(
        state,
        caller.audit(now, "session.signed_in", "user", Some(user.id.as_str()), Some(&user.email), None),
    )
    .await;
    Ok((user, id, csrf))
}

/// The current browser session and its CSRF token.
#[utoipa::path(get, path = "/session", tag = "session", responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
async fn current(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let id = session_cookie(&headers).ok_or(ApiError::Unauthorized)?;
    let (user, csrf) =
        state.store.session(&hash_token(&id), state.clock.now_ms()).await.map_err(|_| ApiError::Unauthorized)?;
    Ok(SessionView::new(&user, csrf).into_response())
}

/// Signs out: ends the session and clears the cookie.
#[utoipa::path(delete, path = "/session", tag = "session", responses((status = 204), (status = 401, body = ErrorBody)))]
async fn sign_out(State(state): State<AppState>, _caller: Caller, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(id) = session_cookie(&headers) {
        state.store.delete_session(&hash_token(&id)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie(&state, "", 0)?);
    Ok(response)
}
