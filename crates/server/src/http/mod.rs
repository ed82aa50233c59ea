//! What the API and the Admin Center share at the HTTP edge, so neither imports the other: the
//! caller extractor, the error both render, the request id, the session cookie, and the
//! security headers every answer carries.

mod auth;
mod error;
mod extract;

pub use auth::{
    Caller, SESSION_COOKIE, cookie_value, hash_token, new_api_token, random_token, session_cookie as session_id,
};
pub use error::{ApiError, ErrorBody, ErrorDetail, FieldError};
pub use extract::{Admin, AuditReader, Body, Operator, Owned, Owner, Params, PathId, Publisher};

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

tokio::task_local! {
    /// The id of the request being handled, for error bodies and logs.
    pub static REQUEST_ID: String;
}

/// The headers every answer carries, and the ones HTML pages add.
#[derive(Debug, Clone)]
pub(crate) struct SecurityHeaders {
    /// Pages load only this site's assets, cannot be framed, and post forms only here and to
    /// where an OAuth start redirects (Chromium checks `form-action` on the redirect too):
    /// Salesforce's hosts over HTTPS and the origins the operator allowed.
    page_csp: HeaderValue,
}

impl SecurityHeaders {
    pub(crate) fn new(state: &AppState) -> Self {
        let mut form_action = vec!["'self'".to_string()];
        form_action.extend(state.sign_in_origins());
        let csp = format!(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; \
             base-uri 'none'; object-src 'none'; form-action {}",
            form_action.join(" ")
        );
        let page_csp = HeaderValue::from_str(&csp).unwrap_or_else(|_| {
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'")
        });
        SecurityHeaders { page_csp }
    }
}

pub(crate) async fn security_headers(State(policy): State<SecurityHeaders>, request: Request, next: Next) -> Response {
    use axum::http::header;
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    let html =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if html {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::CONTENT_SECURITY_POLICY, policy.page_csp.clone());
    }
    response
}

/// Gives every request an id (or keeps a sane one the caller sent) and returns it in
/// `x-request-id`.
pub(crate) async fn request_id(request: Request, next: Next) -> Response {
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

/// A `Set-Cookie` value for the session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS).
fn cookie(state: &AppState, value: &str, max_age_secs: i64) -> Result<HeaderValue, ApiError> {
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .map_err(|e| ApiError::internal("a session cookie", e))
}

/// The browser's device token: kept 90 days, it exempts the browser from the per-email sign-in
/// ceiling for the users it signed in (issue #13).
pub const DEVICE_COOKIE: &str = "lb_device";

/// The `Set-Cookie` value for the device token.
pub fn device_cookie_header(state: &AppState, token: &str) -> Result<HeaderValue, ApiError> {
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{DEVICE_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=7776000{secure}"))
        .map_err(|e| ApiError::internal("a device cookie", e))
}

/// Where a sign-in comes from: the client's address and the browser's device token.
pub fn sign_in_origin(
    headers: &axum::http::HeaderMap,
    connect: Option<&axum::extract::ConnectInfo<std::net::SocketAddr>>,
) -> service::sessions::Origin {
    service::sessions::Origin {
        remote_addr: connect.map(|c| c.0.ip().to_string()),
        device: cookie_value(headers, DEVICE_COOKIE).filter(|d| !d.is_empty() && d.len() <= 64),
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|ua| !ua.is_empty())
            .map(str::to_string),
    }
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie_header(state: &AppState, id: &str) -> Result<HeaderValue, ApiError> {
    cookie(state, id, service::sessions::SESSION_TTL_MS / 1000)
}

/// The `Set-Cookie` value that ends a session.
pub fn cleared_session_cookie(state: &AppState) -> Result<HeaderValue, ApiError> {
    cookie(state, "", 0)
}

/// The largest upload accepted (API and Deployments page): the bundle itself may be at most
/// 5 MB once rebuilt.
pub const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;
