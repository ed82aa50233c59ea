//! The whole application: the API, the OAuth callback, the Admin Center, health and metrics,
//! under the middleware every request passes (metrics, request id, security headers).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::http::{ApiError, SecurityHeaders};

pub fn router(state: AppState) -> Router {
    let (api, _) = crate::api::api();
    let document = crate::api::openapi_json();
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
        .merge(crate::callback::callback_routes())
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
        .layer(axum::middleware::from_fn_with_state(SecurityHeaders::new(&state), crate::http::security_headers))
        .layer(axum::middleware::from_fn(crate::http::request_id))
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
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
