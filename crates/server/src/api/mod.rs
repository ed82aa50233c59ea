//! `/api/v1`: the versioned JSON API (B3). Every route authenticates the caller (an API token,
//! or a browser session with its CSRF token) and scopes every read and write to the caller's
//! account, so another account's ids are simply not found. Routes are registered through
//! `utoipa_axum`, so the OpenAPI document (`/api/v1/openapi.json`, committed as
//! `docs/openapi.json`) is built from the same list the router serves.

mod accounts;
mod audit;
mod auth;
pub(crate) mod catalog;
pub(crate) mod connections;
pub(crate) mod deployments;
mod error;
pub(crate) mod oauth;
pub(crate) mod session;
pub(crate) mod users;

pub use auth::{Caller, hash_token, new_api_token, random_token, session_cookie as session_id};
pub use error::{ApiError, ErrorBody};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lightbridge API",
        version = "1",
        description = "Salesforce connections, systems, environments, users and the audit log of one account. \
Authenticate with `Authorization: Bearer lb_…` (an API token) or the `lb_session` cookie from `POST /api/v1/session` \
plus its `x-csrf-token` header on every change. Errors always have the `ErrorBody` shape."
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "connections", description = "Salesforce connections (F1, F2, F6, F7, F10, F11)"),
        (name = "systems", description = "Systems, environments and legacy connectors (F4)"),
        (name = "users", description = "Users, roles and API tokens"),
        (name = "session", description = "Browser sign-in"),
        (name = "publishing", description = "Deployments, history, rollback and bindings (F3, B2)"),
        (name = "audit", description = "The audit log (B4)"),
        (name = "operator", description = "Instance-wide operator actions"),
    )
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("lb_…").build()),
        );
        components
            .add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("lb_session"))));
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("api_token", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::new("session", Vec::<String>::new()),
        ]);
    }
}

/// The API's routes and the OpenAPI document describing exactly them.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            connections::routes()
                .merge(oauth::api_routes())
                .merge(catalog::routes())
                .merge(deployments::routes().layer(axum::extract::DefaultBodyLimit::max(deployments::MAX_UPLOAD_BYTES)))
                .merge(users::routes())
                .merge(accounts::routes())
                .merge(audit::routes())
                .merge(session::routes()),
        )
        .split_for_parts()
}

/// The OpenAPI document, as served at `/api/v1/openapi.json` and committed as
/// `docs/openapi.json`.
pub fn openapi_json() -> String {
    let mut json = api().1.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

tokio::task_local! {
    /// The id of the request being handled, for error bodies and logs.
    pub static REQUEST_ID: String;
}

pub fn router(state: AppState) -> Router {
    let (api, _) = api();
    let document = openapi_json();
    crate::metrics::handle();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::scrape))
        .route(
            "/api/v1/openapi.json",
            get(move || async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], document) }),
        )
        .merge(api)
        .merge(oauth::callback_routes())
        .merge(crate::console::routes())
        .fallback(|headers: axum::http::HeaderMap| async move {
            // Browsers get a page; API clients the JSON error.
            let html = headers
                .get(axum::http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"));
            if html {
                crate::console::error_page(&ApiError::NotFound, None)
            } else {
                ApiError::NotFound.into_response()
            }
        })
        .layer(axum::middleware::from_fn_with_state(SecurityHeaders::new(&state), security_headers))
        .layer(axum::middleware::from_fn(request_id))
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

/// The headers every answer carries, and the ones HTML pages add.
#[derive(Debug, Clone)]
struct SecurityHeaders {
    /// Pages load only this site's assets, cannot be framed, and post forms only here and to
    /// where an OAuth start redirects (Chromium checks `form-action` on the redirect too):
    /// Salesforce's hosts over HTTPS and the origins the operator allowed.
    page_csp: HeaderValue,
}

impl SecurityHeaders {
    fn new(state: &AppState) -> Self {
        let mut form_action = vec!["'self'".to_string()];
        form_action.extend(state.client.policy().csp_sources());
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

async fn security_headers(State(policy): State<SecurityHeaders>, request: Request, next: Next) -> Response {
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
