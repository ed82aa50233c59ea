//! `/api/v1/session`: sign in with email and password (argon2id), read the session, sign out.
//! The session lives in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS); its CSRF token is
//! returned in the body for the pages to send back on every change.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use store::AccessStore;
use vault::Password;

use super::auth::{SESSION_COOKIE, random_token, session_cookie};
use super::{ApiError, Caller, hash_token};
use crate::AppState;

/// Sessions last 12 hours.
const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/session", post(sign_in).get(current).delete(sign_out))
}

#[derive(Deserialize)]
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

async fn sign_in(
    State(state): State<AppState>,
    body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let password = Password::new(body.password);
    let wrong = || ApiError::Unauthorized;
    let (user, stored) = match state.store.credentials(body.email.trim()).await {
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
    let caller = Caller { user: user.clone(), remote_addr: None, via: domain::ActorKind::User };
    super::connections::record(
        &state,
        caller.audit(now, "session.signed_in", "user", Some(user.id.as_str()), Some(&user.email), None),
    )
    .await;
    let mut response =
        Json(json!({"email": user.email, "role": user.role, "account_id": user.account_id, "csrf_token": csrf}))
            .into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie(&state, &id, SESSION_TTL_MS / 1000)?);
    Ok(response)
}

async fn current(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let id = session_cookie(&headers).ok_or(ApiError::Unauthorized)?;
    let (user, csrf) =
        state.store.session(&hash_token(&id), state.clock.now_ms()).await.map_err(|_| ApiError::Unauthorized)?;
    Ok(Json(json!({"email": user.email, "role": user.role, "account_id": user.account_id, "csrf_token": csrf}))
        .into_response())
}

async fn sign_out(State(state): State<AppState>, _caller: Caller, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(id) = session_cookie(&headers) {
        state.store.delete_session(&hash_token(&id)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie(&state, "", 0)?);
    Ok(response)
}
