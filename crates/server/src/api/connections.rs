//! `/api/v1/connections`: list with search, sort and pages (F6, F7), get, test without
//! saving (F11), create after a passing check, edit (new connections) and activate or
//! deactivate (legacy connectors), delete with revoke first (F10).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{Connection, ConnectionKind};
use serde::{Deserialize, Serialize};
use service::Report;
use service::connections::{
    ConnectionInput, Deleted, EditInput, create_connection, delete_connection, edit_connection, test_connection,
};
use store::{ConnectionStore, ListQuery, SortKey};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller, ErrorBody};
use crate::AppState;
use crate::http::{Admin, Body, Owned, Params};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(test))
        .routes(routes!(show, update, remove))
        .routes(routes!(check_now))
        .routes(routes!(approvals))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ApprovalParams {
    /// The connected app's consumer key (not blank).
    #[param(min_length = 1, pattern = "\\S")]
    consumer_key: String,
    /// For a reconnect: the connection (`conn_…`) whose grant the sign-in replaces.
    replacing: Option<String>,
}

/// What an OAuth sign-in through this connected app would cost (issue #14): Salesforce keeps
/// at most five grants per user and app and a sixth revokes the oldest. Lists the Salesforce
/// users with five live grants among the account's connections (for a reconnect, its own user
/// only) and which connection a sign-in as each would cost. Grants held outside Lightbridge
/// are not seen: this is a lower bound.
#[utoipa::path(get, path = "/connections/approvals", tag = "connections", params(ApprovalParams),
    responses((status = 200, body = service::approvals::ApprovalsView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn approvals(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<ApprovalParams>,
) -> Result<Json<service::approvals::ApprovalsView>, ApiError> {
    if params.consumer_key.trim().is_empty() {
        return Err(ApiError::invalid("consumer_key", "the connected app's consumer key"));
    }
    Ok(Json(
        service::approvals::before_sign_in(&state, &caller, &params.consumer_key, params.replacing.as_deref()).await?,
    ))
}

/// Checks a stored connection now (B1): one authenticated call, renewing the session if it
/// expired, and records Logged in / Logged out / Not available with the reason.
#[utoipa::path(post, path = "/connections/{id}/check", tag = "connections", params(("id" = String, Path, description = "conn_…")),
    responses((status = 200, description = "the connection with its fresh status", body = ConnectionView),
        (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn check_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let checked = service::connections::check_now(&state, &caller, &id).await?;
    Ok(Json(ConnectionView::from(&checked)))
}

/// A connection as the API shows it: the table's columns (F6) and its health.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    pub id: String,
    pub legacy: bool,
    /// New connections' name.
    pub name: Option<String>,
    /// Legacy connectors: the system and environment they publish for.
    pub system_id: Option<String>,
    pub environment_id: Option<String>,
    /// "Production" or "Sandbox".
    pub environment: &'static str,
    pub account_name: Option<String>,
    pub org_id: Option<String>,
    /// The Salesforce user the connection signed in as.
    pub salesforce_username: Option<String>,
    pub instance_url: Option<String>,
    pub login_host: String,
    pub auth_method: &'static str,
    /// New connections only (F6).
    pub created_at: Option<i64>,
    pub created_by: Option<String>,
    pub last_modified_at: Option<i64>,
    pub last_modified_by: Option<String>,
    /// Legacy connectors only (F6).
    pub connection_status: Option<&'static str>,
    pub activity_status: Option<&'static str>,
    /// Health of every connection (shown on a new connection's page).
    pub health: &'static str,
    pub health_detail: Option<String>,
    /// Why it is Logged out or Not available, as a stable code (`refresh_token_invalid`,
    /// `user_inactive`, `app_not_installed`, `ip_restricted`, `salesforce_unreachable`, …).
    pub health_reason: Option<&'static str>,
    /// What to do about it.
    pub health_fix: Option<&'static str>,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        let legacy = c.is_legacy();
        let new_only = |v: Option<String>| if legacy { None } else { v };
        ConnectionView {
            id: c.id.to_string(),
            legacy,
            name: match &c.kind {
                ConnectionKind::New { name } => Some(name.as_str().to_string()),
                ConnectionKind::Legacy { .. } => None,
            },
            system_id: match &c.kind {
                ConnectionKind::Legacy { system_id, .. } => Some(system_id.to_string()),
                ConnectionKind::New { .. } => None,
            },
            environment_id: match &c.kind {
                ConnectionKind::Legacy { environment_id, .. } => Some(environment_id.to_string()),
                ConnectionKind::New { .. } => None,
            },
            environment: c.org_type.label(),
            account_name: c.org.as_ref().map(|o| o.org_name.clone()),
            org_id: c.org.as_ref().map(|o| o.org_id.clone()),
            salesforce_username: c.org.as_ref().map(|o| o.username.clone()),
            instance_url: c.org.as_ref().map(|o| o.instance_url.clone()),
            login_host: c.login_host.as_setting(),
            auth_method: c.auth.label(),
            created_at: (!legacy).then_some(c.created_at),
            created_by: c.created_by.clone(),
            last_modified_at: (!legacy).then_some(c.modified_at),
            last_modified_by: new_only(c.modified_by.clone()),
            connection_status: legacy.then(|| c.status.label()),
            activity_status: match c.kind {
                ConnectionKind::Legacy { active, .. } => Some(if active { "Active" } else { "Inactive" }),
                ConnectionKind::New { .. } => None,
            },
            health: c.status.label(),
            health_detail: c.status_detail.clone(),
            health_reason: c.status_reason.map(domain::StatusReason::as_str),
            health_fix: c.status_reason.map(domain::StatusReason::fix),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Case-insensitive substring of the org name or the created-by / last-modified-by emails (F7).
    search: Option<String>,
    /// `created_at` (default), `account_name` or `last_modified_at`.
    #[param(pattern = "^(created_at|account_name|last_modified_at)$")]
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    #[param(pattern = "^(asc|desc)$")]
    order: Option<String>,
    /// From 1.
    #[param(minimum = 1, maximum = 2147483647)]
    page: Option<u32>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    per_page: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ListView {
    items: Vec<ConnectionView>,
    total: u64,
    page: u32,
    per_page: u32,
}

/// The Salesforce Connections table (F6): one page, searched (F7) and sorted.
#[utoipa::path(get, path = "/connections", tag = "connections", params(ListParams),
    responses((status = 200, body = ListView), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Response, ApiError> {
    let account = caller.account()?;
    let sort = match params.sort.as_deref() {
        None | Some("created_at") => SortKey::CreatedAt,
        Some("account_name") => SortKey::AccountName,
        Some("last_modified_at") => SortKey::ModifiedAt,
        Some(other) => {
            return Err(ApiError::invalid(
                "sort",
                format!("{other:?} is not one of created_at, account_name, last_modified_at"),
            ));
        }
    };
    let descending = match params.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(ApiError::invalid("order", format!("{other:?} is not asc or desc"))),
    };
    let per_page = params.per_page.unwrap_or(50);
    if !(1..=500).contains(&per_page) {
        return Err(ApiError::invalid("per_page", "per_page is between 1 and 500"));
    }
    let page = params.page.unwrap_or(1);
    if page == 0 || page > i32::MAX as u32 {
        return Err(ApiError::invalid("page", "pages are numbered from 1 to 2147483647"));
    }
    let query = ListQuery {
        search: params.search,
        sort,
        descending,
        offset: (page - 1).saturating_mul(per_page),
        limit: per_page,
        ..Default::default()
    };
    let found = state.store.list(account, &query).await?;
    Ok(Json(ListView {
        items: found.rows.iter().map(ConnectionView::from).collect(),
        total: found.total,
        page,
        per_page,
    })
    .into_response())
}

/// One connection of the caller's account.
#[utoipa::path(get, path = "/connections/{id}", tag = "connections", params(("id" = String, Path, description = "conn_…")),
    responses((status = 200, body = ConnectionView), (status = 404, body = ErrorBody)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let connection = service::connections::get(&state, &caller, &id).await?;
    Ok(Json(ConnectionView::from(&connection)))
}

#[derive(Debug, Serialize, ToSchema)]
struct TestView {
    passed: bool,
    #[serde(flatten)]
    report: Report,
}

/// Test Connection (F11): signs in with these settings and runs every check step; saves nothing.
#[utoipa::path(post, path = "/connections/test", tag = "connections", request_body = ConnectionInput,
    responses((status = 200, description = "every step's result; `passed` tells whether all passed", body = TestView),
        (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn test(
    State(state): State<AppState>,
    caller: Admin,
    Body(input): Body<ConnectionInput>,
) -> Result<Response, ApiError> {
    let report = test_connection(&state, &caller, input).await?;
    Ok(Json(TestView { passed: report.passed(), report }).into_response())
}

/// Runs the same check as Test Connection and saves the connection only if every step passed.
#[utoipa::path(post, path = "/connections", tag = "connections", request_body = ConnectionInput,
    responses((status = 201, body = ConnectionView),
        (status = 422, description = "`invalid` (fields) or `check_failed` (with every step)", body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    caller: Admin,
    Body(input): Body<ConnectionInput>,
) -> Result<Response, ApiError> {
    let connection = create_connection(&state, &caller, input).await?;
    Ok((StatusCode::CREATED, Json(ConnectionView::from(&connection))).into_response())
}

/// Revokes the connection's tokens at Salesforce, then deletes it (F10). If Salesforce cannot
/// be reached it still deletes, and says so.
#[utoipa::path(delete, path = "/connections/{id}", tag = "connections", params(("id" = String, Path, description = "conn_…")),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    Ok(Json(delete_connection(&state, &caller, &id).await?))
}

/// Edits a connection, recording who and when. Changing how a JWT or client-credentials
/// connection signs in re-runs the whole check first (and must reach the same org); an OAuth
/// connection's sign-in settings change through Reconnect.
#[utoipa::path(patch, path = "/connections/{id}", tag = "connections", params(("id" = String, Path, description = "conn_…")),
    request_body = EditInput,
    responses((status = 200, body = ConnectionView), (status = 404, body = ErrorBody),
        (status = 409, description = "the name is taken, or the new settings reach another org", body = ErrorBody),
        (status = 422, description = "`invalid` or `check_failed`", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    caller: Admin,
    Owned(connection): Owned<Connection>,
    Body(input): Body<EditInput>,
) -> Result<Json<ConnectionView>, ApiError> {
    let connection = edit_connection(&state, &caller, connection.id.as_str(), input).await?;
    Ok(Json(ConnectionView::from(&connection)))
}
