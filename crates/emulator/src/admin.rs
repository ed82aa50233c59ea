//! The admin API under `/__emulator/`, for tests and benchmarks that drive the emulator from
//! another process: seed more orgs and apps, inject faults and latency, move the clock, revoke
//! tokens, read the request log. It is not part of Salesforce and sees no faults itself.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, extract::rejection::JsonRejection};
use serde::Deserialize;
use serde_json::json;

use crate::observe::{FaultRule, Latency};
use crate::seed::{AppSeed, OrgSeed};
use crate::{ControlError, ResourceInfo, Shared};

/// A person's edit of a static resource in Setup; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceEdit {
    /// The new body, as text.
    pub body: Option<String>,
    pub content_type: Option<String>,
    /// `Private` or `Public`.
    pub cache_control: Option<String>,
    pub description: Option<String>,
}

/// The body of `POST /orgs/{id}/resources/{name}/edit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    /// The username of the person editing.
    by: String,
    #[serde(flatten)]
    edit: ResourceEdit,
}

/// A change to a user; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub active: Option<bool>,
    pub api_enabled: Option<bool>,
    pub customize_application: Option<bool>,
    pub password: Option<String>,
    /// Frozen: no sign-in, and the user's sessions end (their refresh tokens stay).
    pub frozen: Option<bool>,
    /// *View Setup and Configuration* (the `limits` resource needs it).
    pub view_setup: Option<bool>,
    /// *Modify Metadata Through Metadata API Functions*.
    pub modify_metadata: Option<bool>,
    /// *Modify All Data*.
    pub modify_all_data: Option<bool>,
}

/// A change to an app's token policies; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppChange {
    pub refresh_token_policy: Option<crate::seed::RefreshTokenPolicy>,
    pub rotate_refresh_tokens: Option<bool>,
    pub ip_relaxation: Option<crate::seed::IpRelaxation>,
    pub refresh_token_ip_allowlist: Option<Vec<String>>,
    pub installed: Option<bool>,
    /// Blocks the app in this org: its sessions and refresh tokens there end, and sign-ins
    /// are refused until it is unblocked.
    pub block_in: Option<String>,
    pub unblock_in: Option<String>,
}

/// A change to an org; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrgChange {
    /// The profile's login IP ranges (empty: anywhere).
    pub login_ip_ranges: Option<Vec<String>>,
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/state", get(state))
        .route("/orgs", post(add_org))
        .route("/orgs/{id}", axum::routing::patch(patch_org))
        .route("/orgs/{id}/refresh-sandbox", post(refresh_sandbox))
        .route("/orgs/{id}/my-domain", post(change_my_domain))
        .route("/orgs/{id}/managed-resources", post(install_managed))
        .route("/orgs/{id}/lightning-apps", post(add_lightning_app))
        .route("/apps/{key}", axum::routing::patch(patch_app))
        .route("/orgs/{id}/resources", get(list_resources))
        .route("/orgs/{id}/api-usage", put(api_usage))
        .route("/orgs/{id}/resources/{name}/edit", post(edit_resource_route))
        .route("/apps", post(add_app))
        .route("/users/{username}", axum::routing::patch(patch_user))
        .route("/users/{username}/revoke", post(revoke))
        .route("/tokens/expire", post(expire_tokens))
        .route("/clock/advance", post(advance_clock))
        .route("/latency", put(set_latency).get(get_latency))
        .route("/deploy-time", put(set_deploy_time))
        .route("/faults", post(add_fault).get(list_faults).delete(clear_faults))
        .route("/faults/{id}", delete(remove_fault))
        .route("/requests", get(requests).delete(clear_requests))
}

fn problem(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

fn control(result: Result<Response, ControlError>) -> Response {
    result.unwrap_or_else(|e| match e {
        ControlError::UnknownUser(_)
        | ControlError::UnknownOrg(_)
        | ControlError::UnknownApp(_)
        | ControlError::UnknownResource(_) => problem(StatusCode::NOT_FOUND, e),
        ControlError::Seed(_) => problem(StatusCode::BAD_REQUEST, e),
    })
}

/// A request body the admin API could not read.
#[derive(Debug)]
struct BadBody(String);

impl IntoResponse for BadBody {
    fn into_response(self) -> Response {
        problem(StatusCode::BAD_REQUEST, self.0)
    }
}

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, BadBody> {
    payload.map(|Json(v)| v).map_err(|e| BadBody(e.body_text()))
}

async fn state(State(shared): State<Shared>) -> Response {
    let world = shared.world();
    let orgs: Vec<_> = world
        .org_order
        .iter()
        .filter_map(|id| world.orgs.get(id))
        .map(|o| {
            let users: Vec<_> = world
                .users
                .values()
                .filter(|u| u.org_id == o.id)
                .map(|u| {
                    json!({"id": u.id, "username": u.username, "email": u.email, "active": u.active,
                                "api_enabled": u.api_enabled, "customize_application": u.customize_application})
                })
                .collect();
            json!({"id": o.id, "name": o.name, "edition": o.edition, "sandbox": o.sandbox,
                   "instance_name": o.instance_name, "api_used": o.api_used, "daily_api_limit": o.daily_api_limit,
                   "my_domain": o.my_domain, "previous_my_domain": o.previous_my_domain, "users": users})
        })
        .collect();
    let apps: Vec<_> = world
        .apps
        .values()
        .map(|a| {
            let sessions = world.sessions.values().filter(|s| s.consumer_key == a.consumer_key).count();
            json!({"name": a.name, "consumer_key": a.consumer_key, "callback_urls": a.callback_urls,
                   "jwt": a.jwt_public_key.is_some(), "installed": a.installed, "sessions": sessions})
        })
        .collect();
    Json(json!({"orgs": orgs, "apps": apps, "sessions": world.sessions.len(), "refresh_tokens": world.refresh_tokens.len()}))
        .into_response()
}

async fn add_org(State(shared): State<Shared>, payload: Result<Json<OrgSeed>, JsonRejection>) -> Response {
    let seed = match body(payload) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let now = shared.clock.now_ms();
    let result = shared.world().add_org(&seed, now);
    control(result.map_err(ControlError::from).map(|id| (StatusCode::CREATED, Json(json!({"id": id}))).into_response()))
}

async fn add_app(State(shared): State<Shared>, payload: Result<Json<AppSeed>, JsonRejection>) -> Response {
    let seed = match body(payload) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let result = shared.world().add_app(&seed);
    control(result.map_err(ControlError::from).map(|()| {
        let key = shared.world().generated_keys.get(&seed.consumer_key).cloned();
        (StatusCode::CREATED, Json(json!({"consumer_key": seed.consumer_key, "private_key_pem": key}))).into_response()
    }))
}

pub fn resources(shared: &Shared, org_id: &str) -> Vec<ResourceInfo> {
    let world = shared.world();
    let mut list: Vec<ResourceInfo> = world
        .org_resources(org_id)
        .map(|r| ResourceInfo {
            id: r.id.clone(),
            namespace_prefix: r.namespace_prefix.clone(),
            name: r.name.clone(),
            content_type: r.content_type.clone(),
            cache_control: r.cache_control.clone(),
            description: r.description.clone(),
            body_length: r.body.len(),
            last_modified_ms: r.modified_ms,
            url_path: match &r.namespace_prefix {
                Some(ns) => format!("/resource/{}/{ns}__{}", r.modified_ms, r.name),
                None => format!("/resource/{}/{}", r.modified_ms, r.name),
            },
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

async fn list_resources(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(id) = crate::ids::normalize(&id).filter(|id| shared.world().orgs.contains_key(id)) else {
        return problem(StatusCode::NOT_FOUND, format!("no org with id {id}"));
    };
    Json(resources(&shared, &id)).into_response()
}

#[derive(Debug, Deserialize)]
struct Usage {
    used: u64,
    max: u64,
}

async fn api_usage(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    payload: Result<Json<Usage>, JsonRejection>,
) -> Response {
    let usage = match body(payload) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let mut world = shared.world();
    let Some(org) = crate::ids::normalize(&id).and_then(|id| world.orgs.get_mut(&id)) else {
        return problem(StatusCode::NOT_FOUND, format!("no org with id {id}"));
    };
    org.api_used = usage.used;
    org.daily_api_limit = usage.max;
    StatusCode::NO_CONTENT.into_response()
}

pub fn revoke_user(shared: &Shared, username: &str) -> Result<usize, ControlError> {
    let mut world = shared.world();
    let id = world
        .user_by_username(username)
        .map(|u| u.id.clone())
        .ok_or_else(|| ControlError::UnknownUser(username.into()))?;
    Ok(world.revoke_user(&id))
}

pub fn set_user(shared: &Shared, username: &str, change: &UserChange) -> Result<(), ControlError> {
    let mut world = shared.world();
    let id = world
        .user_by_username(username)
        .map(|u| u.id.clone())
        .ok_or_else(|| ControlError::UnknownUser(username.into()))?;
    let user = world.users.get_mut(&id).ok_or_else(|| ControlError::UnknownUser(username.into()))?;
    if let Some(v) = change.active {
        user.active = v;
    }
    if let Some(v) = change.api_enabled {
        user.api_enabled = v;
    }
    if let Some(v) = change.customize_application {
        user.customize_application = v;
    }
    if let Some(v) = &change.password {
        user.password = v.clone();
    }
    if let Some(v) = change.frozen {
        user.frozen = v;
    }
    if let Some(v) = change.modify_metadata {
        user.modify_metadata = v;
    }
    if let Some(v) = change.modify_all_data {
        user.modify_all_data = v;
    }
    if let Some(v) = change.view_setup {
        user.view_setup = v;
    }
    // Deactivated or frozen: the user's sessions end; refresh tokens stay, and a refresh says
    // why it is refused (`inactive user`).
    if change.active == Some(false) || change.frozen == Some(true) {
        world.sessions.retain(|_, s| s.user_id != id);
    }
    Ok(())
}

pub fn set_app(shared: &Shared, consumer_key: &str, change: &AppChange) -> Result<(), ControlError> {
    let mut world = shared.world();
    let unknown = || ControlError::UnknownApp(consumer_key.into());
    let allowlist = match &change.refresh_token_ip_allowlist {
        Some(list) => Some(crate::policy::parse_ranges(list).map_err(crate::SeedError::Invalid)?),
        None => None,
    };
    let block = match &change.block_in {
        Some(org) => Some(
            crate::ids::normalize(org)
                .filter(|id| world.orgs.contains_key(id))
                .ok_or_else(|| ControlError::UnknownOrg(org.clone()))?,
        ),
        None => None,
    };
    let app = world.apps.get_mut(consumer_key).ok_or_else(unknown)?;
    if let Some(v) = change.refresh_token_policy {
        app.refresh_policy = v;
    }
    if let Some(v) = change.rotate_refresh_tokens {
        app.rotate_refresh_tokens = v;
    }
    if let Some(v) = change.ip_relaxation {
        app.ip_relaxation = v;
    }
    if let Some(v) = allowlist {
        app.refresh_ip_allowlist = v;
    }
    if let Some(v) = change.installed {
        app.installed = v;
    }
    if let Some(org) = change.unblock_in.as_deref().and_then(crate::ids::normalize) {
        app.blocked_in.remove(&org);
    }
    if let Some(org) = block {
        app.blocked_in.insert(org.clone());
        // Blocking ends every session and refresh token of the app in the org.
        let tokens: Vec<String> = world
            .refresh_tokens
            .iter()
            .filter(|(_, g)| g.consumer_key == consumer_key && g.org_id == org)
            .map(|(t, _)| t.clone())
            .collect();
        for token in tokens {
            world.revoke_refresh(&token);
        }
        world.sessions.retain(|_, s| !(s.consumer_key == consumer_key && s.org_id == org));
    }
    Ok(())
}

pub fn set_org(shared: &Shared, org_id: &str, change: &OrgChange) -> Result<(), ControlError> {
    let mut world = shared.world();
    let ranges = match &change.login_ip_ranges {
        Some(list) => Some(crate::policy::parse_ranges(list).map_err(crate::SeedError::Invalid)?),
        None => None,
    };
    let id = crate::ids::normalize(org_id).unwrap_or_else(|| org_id.to_string());
    let org = world.orgs.get_mut(&id).ok_or_else(|| ControlError::UnknownOrg(org_id.into()))?;
    if let Some(ranges) = ranges {
        org.login_ip_ranges = ranges;
    }
    Ok(())
}

async fn refresh_sandbox(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let now = shared.clock.now_ms();
    let id = crate::ids::normalize(&id).unwrap_or(id);
    let mut world = shared.world();
    if !world.orgs.contains_key(&id) {
        return control(Err(ControlError::UnknownOrg(id)));
    }
    let result = world.refresh_sandbox(&id, now).map_err(ControlError::from);
    control(result.map(|new_id| Json(json!({"org_id": new_id})).into_response()))
}

/// A My Domain change: the new host, and whether refresh tokens end with the sessions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MyDomainChange {
    pub host: String,
    #[serde(default)]
    pub end_refresh_tokens: bool,
}

/// An org-scoped change: the body read, the org found (by its 15- or 18-character id), then
/// `apply` on the world with the clock's time.
fn org_change<T>(
    shared: &Shared,
    id: String,
    payload: Result<Json<T>, JsonRejection>,
    apply: impl FnOnce(&mut crate::state::World, &str, T, i64) -> Result<Response, crate::seed::SeedError>,
) -> Response {
    let input = match body(payload) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let now = shared.clock.unique_ms();
    let id = crate::ids::normalize(&id).unwrap_or(id);
    let mut world = shared.world();
    if !world.orgs.contains_key(&id) {
        return control(Err(ControlError::UnknownOrg(id)));
    }
    control(apply(&mut world, &id, input, now).map_err(ControlError::from))
}

async fn change_my_domain(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    payload: Result<Json<MyDomainChange>, JsonRejection>,
) -> Response {
    org_change(&shared, id, payload, |world, id, change: MyDomainChange, _| {
        world.change_my_domain(id, &change.host, change.end_refresh_tokens)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

async fn add_lightning_app(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    payload: Result<Json<crate::seed::LightningAppSeed>, JsonRejection>,
) -> Response {
    org_change(&shared, id, payload, |world, id, app: crate::seed::LightningAppSeed, now| {
        world.add_lightning_app(id, &app, now)?;
        Ok(StatusCode::CREATED.into_response())
    })
}

async fn install_managed(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    payload: Result<Json<crate::seed::ManagedResourceSeed>, JsonRejection>,
) -> Response {
    org_change(&shared, id, payload, |world, id, resource: crate::seed::ManagedResourceSeed, now| {
        let rid = world.install_managed_resource(id, &resource, now)?;
        Ok((StatusCode::CREATED, Json(json!({"id": rid}))).into_response())
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployTime {
    ms: u64,
}

/// How long a Metadata API deploy takes on the emulator's clock.
async fn set_deploy_time(State(shared): State<Shared>, payload: Result<Json<DeployTime>, JsonRejection>) -> Response {
    match body(payload) {
        Ok(t) => {
            shared.world().deploy_ms = i64::try_from(t.ms).unwrap_or(i64::MAX);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn patch_app(
    State(shared): State<Shared>,
    Path(key): Path<String>,
    payload: Result<Json<AppChange>, JsonRejection>,
) -> Response {
    let change = match body(payload) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    control(set_app(&shared, &key, &change).map(|()| StatusCode::NO_CONTENT.into_response()))
}

async fn patch_org(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    payload: Result<Json<OrgChange>, JsonRejection>,
) -> Response {
    let change = match body(payload) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    control(set_org(&shared, &id, &change).map(|()| StatusCode::NO_CONTENT.into_response()))
}

async fn patch_user(
    State(shared): State<Shared>,
    Path(username): Path<String>,
    payload: Result<Json<UserChange>, JsonRejection>,
) -> Response {
    let change = match body(payload) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    control(set_user(&shared, &username, &change).map(|()| StatusCode::NO_CONTENT.into_response()))
}

async fn revoke(State(shared): State<Shared>, Path(username): Path<String>) -> Response {
    control(revoke_user(&shared, &username).map(|n| Json(json!({"revoked": n})).into_response()))
}

async fn expire_tokens(State(shared): State<Shared>) -> Response {
    let n = shared.world().expire_all_sessions();
    Json(json!({"expired": n})).into_response()
}

#[derive(Debug, Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance_clock(State(shared): State<Shared>, payload: Result<Json<Advance>, JsonRejection>) -> Response {
    match body(payload) {
        Ok(a) => {
            shared.clock.advance(Duration::from_secs(a.seconds));
            Json(json!({"now_ms": shared.clock.now_ms()})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn set_latency(State(shared): State<Shared>, payload: Result<Json<Latency>, JsonRejection>) -> Response {
    match body(payload) {
        Ok(l) => {
            shared.observe.set_latency(l);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn get_latency(State(shared): State<Shared>) -> Response {
    Json(shared.observe.latency()).into_response()
}

async fn add_fault(State(shared): State<Shared>, payload: Result<Json<FaultRule>, JsonRejection>) -> Response {
    match body(payload) {
        Ok(rule) => {
            if rule.percent.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
                return problem(StatusCode::BAD_REQUEST, "percent must be between 0 and 100");
            }
            (StatusCode::CREATED, Json(json!({"id": shared.observe.add_fault(rule)}))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn list_faults(State(shared): State<Shared>) -> Response {
    let list: Vec<_> = shared
        .observe
        .faults()
        .into_iter()
        .map(|(id, rule, remaining)| json!({"id": id, "rule": rule, "remaining": remaining}))
        .collect();
    Json(list).into_response()
}

async fn clear_faults(State(shared): State<Shared>) -> Response {
    shared.observe.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_fault(State(shared): State<Shared>, Path(id): Path<u64>) -> Response {
    if shared.observe.remove_fault(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(StatusCode::NOT_FOUND, format!("no fault {id}"))
    }
}

#[derive(Debug, Deserialize)]
struct Since {
    #[serde(default)]
    after: u64,
}

async fn requests(State(shared): State<Shared>, Query(since): Query<Since>) -> Response {
    Json(shared.observe.requests(since.after)).into_response()
}

async fn clear_requests(State(shared): State<Shared>) -> Response {
    shared.observe.clear_requests();
    StatusCode::NO_CONTENT.into_response()
}

pub fn edit_resource(
    shared: &Shared,
    org_id: &str,
    name: &str,
    by: &str,
    edit: &ResourceEdit,
) -> Result<(), ControlError> {
    let now = shared.clock.unique_ms();
    let mut world = shared.world();
    let org_id = crate::ids::normalize(org_id)
        .filter(|id| world.orgs.contains_key(id))
        .ok_or_else(|| ControlError::UnknownOrg(org_id.into()))?;
    let user = world
        .user_by_username(by)
        .filter(|u| u.org_id == org_id)
        .map(|u| u.id.clone())
        .ok_or_else(|| ControlError::UnknownUser(by.into()))?;
    let mut resource =
        world.resource_by_name(&org_id, name).cloned().ok_or_else(|| ControlError::UnknownResource(name.into()))?;
    if let Some(body) = &edit.body {
        resource.body = axum::body::Bytes::from(body.clone().into_bytes());
    }
    if let Some(v) = &edit.content_type {
        resource.content_type = v.clone();
    }
    if let Some(v) = &edit.cache_control {
        resource.cache_control = v.clone();
    }
    if let Some(v) = &edit.description {
        resource.description = Some(v.clone());
    }
    resource.modified_ms = now;
    resource.modified_by = user;
    world.put_resource(resource);
    Ok(())
}

async fn edit_resource_route(
    State(shared): State<Shared>,
    Path((id, name)): Path<(String, String)>,
    payload: Result<Json<EditBody>, JsonRejection>,
) -> Response {
    let edit = match body(payload) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    control(edit_resource(&shared, &id, &name, &edit.by, &edit.edit).map(|()| StatusCode::NO_CONTENT.into_response()))
}
