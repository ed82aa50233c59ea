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
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(save_tested))
        .routes(routes!(reconnect))
        .routes(routes!(start_connector))
}

/// Save after a passing OAuth Test Connection: the test's answer (`/oauth/callback`) carries a
/// `tested_grant`; sent back here within 5 minutes with the same sign-in settings, it saves the
/// connection without a second sign-in at Salesforce. Unsaved, the grant is revoked.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SaveTested {
    /// From the Test Connection's answer.
    tested_grant: String,
    /// Unique in the account (it may differ from the name tested).
    name: String,
    org_type: String,
    login_host: String,
    consumer_key: String,
    #[schema(value_type = String)]
    consumer_secret: vault::ClientSecret,
}

/// Saves a connection from a passing OAuth Test Connection's grant (no second sign-in). 409
/// when the grant expired (5 minutes), was used, or the sign-in settings changed: start again.
#[utoipa::path(post, path = "/connections/oauth/save", tag = "connections", request_body = SaveTested,
    responses((status = 201, body = super::connections::ConnectionView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_tested(
    State(state): State<AppState>,
    caller: Admin,
    Body(input): Body<SaveTested>,
) -> Result<(axum::http::StatusCode, Json<super::connections::ConnectionView>), ApiError> {
    let settings = StartInput {
        name: input.name,
        org_type: input.org_type,
        login_host: input.login_host,
        consumer_key: input.consumer_key,
        consumer_secret: input.consumer_secret,
        test_only: false,
    };
    let connection = service::oauth::save_tested(&state, &caller, &input.tested_grant, settings).await?;
    Ok((axum::http::StatusCode::CREATED, Json(super::connections::ConnectionView::from(&connection))))
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
