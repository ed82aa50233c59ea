//! F1: connecting with OAuth. `POST /api/v1/connections/oauth/start` returns Salesforce's
//! authorize URL (with `state` and PKCE S256); the admin signs in on Salesforce — Lightbridge
//! never sees their password — and Salesforce sends the browser to `/oauth/callback`, which
//! checks the state (single use, 10 minutes, bound to the user and account that started it),
//! exchanges the code, verifies the reply's signature, runs every check step and saves the
//! connection only if all pass.

use axum::Json;
use axum::extract::State;
use domain::{Connection, System};
use service::oauth::{ConnectorInput, ReconnectInput, StartInput, Started, start_legacy, start_oauth, start_reconnect};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody};
use crate::AppState;
use crate::http::{Admin, Body, Owned};

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start)).routes(routes!(reconnect)).routes(routes!(start_connector))
}

/// F1: starts an OAuth connection. Returns Salesforce's authorize URL (with `state` and PKCE
/// S256); after the admin signs in there, Salesforce sends the browser to `/oauth/callback`,
/// which checks everything and saves the connection only if every step passes.
#[utoipa::path(post, path = "/connections/oauth/start", tag = "connections", request_body = StartInput,
    responses((status = 200, body = Started), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn start(
    State(state): State<AppState>,
    caller: Admin,
    Body(input): Body<StartInput>,
) -> Result<Json<Started>, ApiError> {
    Ok(Json(start_oauth(&state, &caller, input).await?))
}

/// F4: connects a legacy connector for a system × environment through the same OAuth sign-in.
/// Refused while Connectors are off for the account, or when the slot already has one.
#[utoipa::path(post, path = "/systems/{id}/connectors", tag = "systems", request_body = ConnectorInput,
    params(("id" = String, Path, description = "sys_…")),
    responses((status = 200, body = Started), (status = 404, body = ErrorBody),
        (status = 403, description = "`connectors_disabled`, or not an admin", body = ErrorBody),
        (status = 409, description = "the environment already has a connector", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn start_connector(
    State(state): State<AppState>,
    caller: Admin,
    Owned(system): Owned<System>,
    Body(input): Body<ConnectorInput>,
) -> Result<Json<Started>, ApiError> {
    Ok(Json(start_legacy(&state, &caller, system.id.as_str(), input).await?))
}

/// F10 Reconnect: the same OAuth sign-in for an existing connection (optionally with new
/// sign-in settings); the callback keeps its id, replaces its tokens, and refuses a sign-in to
/// a different org.
#[utoipa::path(post, path = "/connections/{id}/reconnect", tag = "connections",
    params(("id" = String, Path, description = "conn_…")),
    request_body(content = Option<ReconnectInput>, description = "optional: new sign-in settings"),
    responses((status = 200, body = Started), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reconnect(
    State(state): State<AppState>,
    caller: Admin,
    Owned(connection): Owned<Connection>,
    body: axum::body::Bytes,
) -> Result<Json<Started>, ApiError> {
    let id = connection.id.to_string();
    let input: ReconnectInput = if body.iter().all(u8::is_ascii_whitespace) {
        ReconnectInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?
    };
    Ok(Json(start_reconnect(&state, &caller, &id, input).await?))
}
