//! `/api/v1/systems` and `/api/v1/environments` (product.md §2), and a system's Connectors
//! tab (F4): one row per environment with its legacy connector.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::{ConnectionKind, System, SystemId};
use serde::{Deserialize, Serialize};
use store::{CatalogStore, ConnectionStore};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use service::catalog;

use super::connections::ConnectionView;
use super::{ApiError, Caller, ErrorBody};
use crate::AppState;
use crate::http::{Admin, Body, Owned};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_systems, create_system))
        .routes(routes!(show_system, rename_system, delete_system))
        .routes(routes!(connectors))
        .routes(routes!(show_loader, set_loader, turn_off_loader))
        .routes(routes!(list_environments, create_environment))
        .routes(routes!(delete_environment))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SystemView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

impl From<&System> for SystemView {
    fn from(s: &System) -> Self {
        SystemView { id: s.id.to_string(), name: s.name.clone(), created_at: s.created_at }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentView {
    pub id: String,
    pub name: String,
    /// Production, Test and Sandbox are built in and cannot be removed.
    pub built_in: bool,
}

impl From<&domain::Environment> for EnvironmentView {
    fn from(e: &domain::Environment) -> Self {
        EnvironmentView { id: e.id.to_string(), name: e.name.clone(), built_in: e.built_in }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NameInput {
    /// 1–80 characters, unique in the account (any case).
    #[schema(
        min_length = 1,
        max_length = 80,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    name: String,
}

/// A system's loader (issue #15): what it loads from each environment's published resource on
/// every Lightning page, and the origins its player calls back to.
#[derive(Debug, Serialize, ToSchema)]
struct LoaderView {
    /// Whether the system has a loader; when false the lists are empty.
    enabled: bool,
    /// Scripts inside the environment's resource, loaded in this order.
    scripts: Vec<String>,
    /// Style sheets inside the resource.
    styles: Vec<String>,
    /// Origins the player calls (`https://host[:port]`), each a CSP Trusted Site in the org.
    trusted_sites: Vec<String>,
    /// Lightning apps (`standard__LightningSales`, `MyApp`) whose utility bars hold the loader:
    /// it runs on their pages.
    apps: Vec<String>,
    updated_at: Option<i64>,
    updated_by: Option<String>,
}

impl From<Option<domain::LoaderConfig>> for LoaderView {
    fn from(c: Option<domain::LoaderConfig>) -> Self {
        match c {
            Some(c) => LoaderView {
                enabled: true,
                scripts: c.scripts,
                styles: c.styles,
                trusted_sites: c.trusted_sites,
                apps: c.apps,
                updated_at: Some(c.updated_at),
                updated_by: Some(c.updated_by),
            },
            None => LoaderView {
                enabled: false,
                scripts: Vec::new(),
                styles: Vec::new(),
                trusted_sites: Vec::new(),
                apps: Vec::new(),
                updated_at: None,
                updated_by: None,
            },
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoaderInput {
    /// Paths inside the resource (`player.js`, `js/app.js`): letters, digits, `.`, `-`, `_`
    /// and `/`; at least one script or style sheet; at most 20 in all.
    #[serde(default)]
    #[schema(max_items = 20)]
    scripts: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 20)]
    styles: Vec<String>,
    /// `https://host[:port]` (plain `http` only for 127.0.0.1 or localhost); at most 20.
    #[serde(default)]
    #[schema(max_items = 20)]
    trusted_sites: Vec<String>,
    /// The Lightning apps whose utility bars get the loader, by API name (`MyApp`, or
    /// `namespace__MyApp` such as `standard__LightningSales`); each must have a utility bar in
    /// the org. Empty or absent: `standard__LightningSales`. At most 20.
    #[serde(default)]
    #[schema(max_items = 20)]
    apps: Vec<String>,
}

/// A system's loader settings.
#[utoipa::path(get, path = "/systems/{id}/loader", tag = "systems", params(("id" = String, Path, description = "sys_…")),
    responses((status = 200, body = LoaderView), (status = 404, body = ErrorBody)))]
async fn show_loader(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<LoaderView>, ApiError> {
    Ok(Json(service::loader::settings(&state, &caller, &id).await?.into()))
}

/// Turns the loader on or changes it (admins and owners); every fault is named by field.
#[utoipa::path(put, path = "/systems/{id}/loader", tag = "systems", params(("id" = String, Path, description = "sys_…")),
    request_body = LoaderInput,
    responses((status = 200, body = LoaderView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_loader(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
    Body(input): Body<LoaderInput>,
) -> Result<Json<LoaderView>, ApiError> {
    let input = service::loader::LoaderInput {
        scripts: input.scripts,
        styles: input.styles,
        trusted_sites: input.trusted_sites,
        apps: input.apps,
    };
    Ok(Json(Some(service::loader::set(&state, &caller, &id, input).await?).into()))
}

/// Turns the loader off; what orgs hold stays until it is removed there.
#[utoipa::path(delete, path = "/systems/{id}/loader", tag = "systems", params(("id" = String, Path, description = "sys_…")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn turn_off_loader(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::loader::turn_off(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn system_id(id: &str) -> Result<SystemId, ApiError> {
    Ok(catalog::system_id(id)?)
}

/// The account's systems, by name.
#[utoipa::path(get, path = "/systems", tag = "systems", responses((status = 200, body = Vec<SystemView>)))]
async fn list_systems(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<SystemView>>, ApiError> {
    let systems = state.store.systems(caller.account()?).await?;
    Ok(Json(systems.iter().map(SystemView::from).collect()))
}

/// Adds a system (admins and owners).
#[utoipa::path(post, path = "/systems", tag = "systems", request_body = NameInput,
    responses((status = 201, body = SystemView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_system(
    State(state): State<AppState>,
    caller: Admin,
    Body(input): Body<NameInput>,
) -> Result<(StatusCode, Json<SystemView>), ApiError> {
    let system = catalog::create_system(&state, &caller, &input.name).await?;
    Ok((StatusCode::CREATED, Json(SystemView::from(&system))))
}

/// One system.
#[utoipa::path(get, path = "/systems/{id}", tag = "systems", params(("id" = String, Path, description = "sys_…")),
    responses((status = 200, body = SystemView), (status = 404, body = ErrorBody)))]
async fn show_system(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SystemView>, ApiError> {
    let system = state.store.system(caller.account()?, &system_id(&id)?).await?;
    Ok(Json(SystemView::from(&system)))
}

/// Renames a system.
#[utoipa::path(patch, path = "/systems/{id}", tag = "systems", params(("id" = String, Path, description = "sys_…")),
    request_body = NameInput,
    responses((status = 200, body = SystemView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rename_system(
    State(state): State<AppState>,
    caller: Admin,
    Owned(system): Owned<System>,
    Body(input): Body<NameInput>,
) -> Result<Json<SystemView>, ApiError> {
    let system = catalog::rename_system(&state, &caller, system.id.as_str(), &input.name).await?;
    Ok(Json(SystemView::from(&system)))
}

/// Removes a system; refused while legacy connectors are bound to it.
#[utoipa::path(delete, path = "/systems/{id}", tag = "systems", params(("id" = String, Path, description = "sys_…")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_system(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    catalog::delete_system(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
struct ConnectorsView {
    /// Whether the operator enabled Connectors for the account; when false there are no rows.
    enabled: bool,
    system: SystemView,
    rows: Vec<ConnectorRow>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ConnectorRow {
    environment: EnvironmentView,
    /// The legacy connector bound to this system × environment, if any.
    connector: Option<ConnectionView>,
}

/// A system's Connectors tab (F4): one row per environment with its legacy connector.
#[utoipa::path(get, path = "/systems/{id}/connectors", tag = "systems", params(("id" = String, Path, description = "sys_…")),
    responses((status = 200, body = ConnectorsView), (status = 404, body = ErrorBody)))]
async fn connectors(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectorsView>, ApiError> {
    let account = caller.account()?;
    let system = state.store.system(account, &system_id(&id)?).await?;
    let enabled = state.store.account(account).await?.connectors_enabled;
    let mut rows = Vec::new();
    if enabled {
        let bound = state.store.legacy_connectors(account, &system.id).await?;
        for env in state.store.environments(account).await? {
            let connector = bound.iter().find(
                |c| matches!(&c.kind, ConnectionKind::Legacy { environment_id, .. } if *environment_id == env.id),
            );
            rows.push(ConnectorRow {
                environment: EnvironmentView::from(&env),
                connector: connector.map(ConnectionView::from),
            });
        }
    }
    Ok(Json(ConnectorsView { enabled, system: SystemView::from(&system), rows }))
}

/// The account's environments in display order (built-in first).
#[utoipa::path(get, path = "/environments", tag = "systems", responses((status = 200, body = Vec<EnvironmentView>)))]
async fn list_environments(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<EnvironmentView>>, ApiError> {
    let envs = state.store.environments(caller.account()?).await?;
    Ok(Json(envs.iter().map(EnvironmentView::from).collect()))
}

/// Adds an environment after the existing ones.
#[utoipa::path(post, path = "/environments", tag = "systems", request_body = NameInput,
    responses((status = 201, body = EnvironmentView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_environment(
    State(state): State<AppState>,
    caller: Admin,
    Body(input): Body<NameInput>,
) -> Result<(StatusCode, Json<EnvironmentView>), ApiError> {
    let env = catalog::create_environment(&state, &caller, &input.name).await?;
    Ok((StatusCode::CREATED, Json(EnvironmentView::from(&env))))
}

/// Removes an environment the account added; built-in ones and ones with connectors stay.
#[utoipa::path(delete, path = "/environments/{id}", tag = "systems", params(("id" = String, Path, description = "env_…")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_environment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    catalog::delete_environment(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
