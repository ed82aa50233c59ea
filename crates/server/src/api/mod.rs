//! `/api/v1`: the versioned JSON API (B3). Every route authenticates the caller (an API token
//! today; the Admin Center's session cookie with issue #4) and scopes every read and write to
//! the caller's account, so another account's ids are simply not found.

mod audit;
mod auth;
mod connections;
mod error;
mod oauth;
mod session;

pub use auth::{Caller, hash_token, new_api_token};
pub use error::ApiError;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

tokio::task_local! {
    /// The id of the request being handled, for error bodies and logs.
    pub static REQUEST_ID: String;
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .nest(
            "/api/v1",
            connections::routes().merge(audit::routes()).merge(session::routes()).merge(oauth::api_routes()),
        )
        .merge(oauth::callback_routes())
        .fallback(|| async { ApiError::NotFound.into_response() })
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "database is not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// Gives every request an id (or keeps a sane one the caller sent) and returns it in
/// `x-request-id`.
async fn request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_string)
        .unwrap_or_else(|| domain::ConnectionId::generate().as_str().trim_start_matches("conn_").to_string());
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
