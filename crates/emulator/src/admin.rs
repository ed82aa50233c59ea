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

/// A change to a user; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub active: Option<bool>,
    pub api_enabled: Option<bool>,
    pub customize_application: Option<bool>,
    pub password: Option<String>,
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/state", get(state))
        .route("/orgs", post(add_org))
        .route("/orgs/{id}/resources", get(list_resources))
        .route("/orgs/{id}/api-usage", put(api_usage))
        .route("/apps", post(add_app))
        .route("/users/{username}", axum::routing::patch(patch_user))
        .route("/users/{username}/revoke", post(revoke))
        .route("/tokens/expire", post(expire_tokens))
        .route("/clock/advance", post(advance_clock))
        .route("/latency", put(set_latency).get(get_latency))
        .route("/faults", post(add_fault).get(list_faults).delete(clear_faults))
        .route("/faults/{id}", delete(remove_fault))
        .route("/requests", get(requests).delete(clear_requests))
}

fn problem(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

fn control(result: Result<Response, ControlError>) -> Response {
    result.unwrap_or_else(|e| match e {
        ControlError::UnknownUser(_) | ControlError::UnknownOrg(_) => problem(StatusCode::NOT_FOUND, e),
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
                   "users": users})
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
            name: r.name.clone(),
            content_type: r.content_type.clone(),
            cache_control: r.cache_control.clone(),
            description: r.description.clone(),
            body_length: r.body.len(),
            last_modified_ms: r.modified_ms,
            url_path: format!("/resource/{}/{}", r.modified_ms, r.name),
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
    if change.active == Some(false) {
        world.revoke_user(&id);
    }
    Ok(())
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
