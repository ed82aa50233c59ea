//! `/oauth/callback`: where Salesforce sends the browser after its sign-in page. Browsers
//! (asking for HTML) land on an Admin Center page; API clients get JSON. It lives apart from
//! `api/` and `console/` because it answers in either form.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use service::oauth::{CallbackParams, Finished, finish_oauth};

use crate::AppState;
use crate::api::{ApiError, Caller};

pub fn callback_routes() -> Router<AppState> {
    Router::new().route("/oauth/callback", get(callback))
}

/// `/oauth/callback`: browsers (asking for HTML) land on an Admin Center page; API clients
/// get JSON.
async fn callback(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    signed_in: Result<crate::console::SignedIn, crate::console::NotSignedIn>,
    headers: axum::http::HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let html =
        headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    let caller = match caller {
        Ok(caller) => caller,
        Err(e) if html => return crate::console::sign_in_first(&e),
        Err(e) => return e.into_response(),
    };
    let (context, result) = finish_oauth(&state, &caller, params).await;
    let result = result.map_err(ApiError::from);
    if html {
        return crate::console::oauth_landing(&state, signed_in, context, result).await;
    }
    match result {
        Ok(Finished::Created(connection)) => {
            (axum::http::StatusCode::CREATED, Json(crate::api::connections::ConnectionView::from(&connection)))
                .into_response()
        }
        Ok(Finished::Reconnected(connection)) => {
            Json(crate::api::connections::ConnectionView::from(&connection)).into_response()
        }
        Ok(Finished::Tested { report, grant }) => Json(serde_json::json!({
            "passed": report.passed(), "steps": report.steps, "org": report.org, "tested_grant": grant,
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}
