//! `/api/v1/deployments` (B2, B3): publish a bundle (multipart upload, or a stored bundle's id)
//! to every connection bound to a system × environment; follow it; list the history; roll a
//! system × environment back to an earlier release in one call. And the bindings that decide
//! which connections a system × environment publishes to.

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::StatusCode;
use domain::{ConnectionId, Deployment, DeploymentId, EnvironmentId, SystemId};
use serde::{Deserialize, Serialize};
use store::{CatalogStore, DeploymentStore, TargetCounts};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use service::deployments::{self, BundleSource, DeployRequest};

use super::connections::ConnectionView;
use super::{ApiError, Caller, ErrorBody};
use crate::AppState;
use crate::http::Publisher;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show))
        .routes(routes!(rollback))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(approve))
        .routes(routes!(abort))
        .routes(routes!(resolve_drift))
        .routes(routes!(bound))
        .routes(routes!(bind, unbind))
        .routes(routes!(remove_loader))
        .routes(routes!(deploy_loader))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountsView {
    pub total: u32,
    pub pending: u32,
    pub running: u32,
    pub succeeded: u32,
    pub unchanged: u32,
    pub failed: u32,
    /// Waiting for their wave, or held by a paused or halted rollout.
    pub held: u32,
    /// Never started: the rollout was aborted.
    pub skipped: u32,
    /// Held: the resource was changed in the org since Lightbridge published it; waits for
    /// `POST /deployments/{id}/drift` (overwrite or skip).
    pub drifted: u32,
}

impl From<TargetCounts> for CountsView {
    fn from(c: TargetCounts) -> Self {
        CountsView {
            total: c.total(),
            pending: c.pending,
            running: c.running,
            succeeded: c.succeeded,
            unchanged: c.unchanged,
            failed: c.failed,
            held: c.held,
            skipped: c.skipped,
            drifted: c.drifted,
        }
    }
}

/// A rollout in waves as asked for (#17): a canary first, then further waves, each started when
/// the one before it ended with at most `max_failure_rate` of its orgs failed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutInput {
    /// 1 to 20 waves, in order. Orgs no wave takes go with the last one.
    #[schema(min_items = 1, max_items = 20)]
    pub waves: Vec<WaveInput>,
    /// The share (0 to 1) of a wave's finished orgs that may fail; above it the rollout halts
    /// before the next wave. Default 0: any failure halts it.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub max_failure_rate: Option<f64>,
}

/// One wave: at most one of `count`, `percent` and `connections` (none: every org left), and
/// what starts it once the wave before it passed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaveInput {
    /// This many orgs (at least 1).
    #[schema(minimum = 1)]
    pub count: Option<u32>,
    /// This share of all the deployment's orgs, 1 to 100, rounded up.
    #[schema(minimum = 1, maximum = 100)]
    pub percent: Option<u32>,
    /// These connections (`conn_…`), each bound to the system × environment.
    pub connections: Option<Vec<String>>,
    /// `auto` (default: as soon as the wave before it passed) or `approval` (when a person
    /// approves it: `POST /deployments/{id}/approve`). The first wave starts at once.
    #[schema(pattern = "^(auto|approval)$")]
    pub gate: Option<String>,
    /// Not before this time (Unix milliseconds): the wave waits for it.
    pub start_at: Option<i64>,
}

impl RolloutInput {
    /// The domain's rollout; every fault of the input at once.
    pub fn into_rollout(self) -> Result<domain::Rollout, ApiError> {
        let mut errors = Vec::new();
        let mut waves = Vec::new();
        for (i, w) in self.waves.into_iter().enumerate() {
            let gate = match (w.gate.as_deref(), w.start_at) {
                (None | Some("auto"), None) => domain::Gate::Auto,
                (Some("approval"), None) => domain::Gate::Approval,
                (None | Some("auto"), Some(at)) => domain::Gate::At(at),
                (Some("approval"), Some(_)) => {
                    errors.push((
                        format!("rollout.waves[{i}].start_at"),
                        "give a gate of approval or a start time, not both".to_string(),
                    ));
                    domain::Gate::Approval
                }
                (Some(other), _) => {
                    errors.push((format!("rollout.waves[{i}].gate"), format!("{other:?} is not auto or approval")));
                    domain::Gate::Auto
                }
            };
            let mut parsed = Vec::new();
            for id in w.connections.iter().flatten() {
                match ConnectionId::parse(id) {
                    Ok(id) => parsed.push(id),
                    Err(_) => errors.push((
                        format!("rollout.waves[{i}].connections"),
                        format!("{id:?} is not a connection id (conn_…)"),
                    )),
                }
            }
            let connections = w.connections.is_some().then_some(parsed);
            waves.push(domain::Wave { count: w.count, percent: w.percent, connections, gate });
        }
        let max_failure_rate = self.max_failure_rate.unwrap_or(0.0);
        if !max_failure_rate.is_finite() {
            errors.push(("rollout.max_failure_rate".to_string(), "a share from 0 to 1".to_string()));
        }
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        Ok(domain::Rollout { waves, max_failure_rate })
    }
}

/// A deployment's rollout as it runs (#17).
#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutView {
    pub max_failure_rate: f64,
    /// Each wave's gate and, with `GET /deployments/{id}`, its orgs by status.
    pub waves: Vec<WaveView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WaveView {
    /// `auto`, `approval` or `time`.
    pub gate: String,
    /// A time gate's start (Unix milliseconds).
    pub start_at: Option<i64>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<CountsView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    pub connection_id: String,
    /// The org's name (empty if the connection was deleted since).
    pub account_name: Option<String>,
    /// `pending`, `running`, `succeeded`, `unchanged` or `failed`; with waves also `held` and
    /// `skipped`; `drifted` when the org's copy was changed by someone since Lightbridge
    /// published it (nothing uploaded).
    pub status: String,
    pub attempts: u32,
    /// `created`, `updated` or `unchanged`.
    pub action: Option<String>,
    pub resource_id: Option<String>,
    /// Where the org serves the resource: `/resource/<timestamp>/<Name>` on its instance.
    pub url: Option<String>,
    /// Why it failed — or, while it waits to retry, why the last attempt did.
    pub error: Option<String>,
    /// With the loader: what happened to it in this org (`deployed <version>`,
    /// `unchanged <version>`).
    pub loader: Option<String>,
    pub updated_at: i64,
    /// A drifted target: who changed the resource in the org (`LastModifiedBy.Name`) and when
    /// (Unix milliseconds).
    pub drift_by: Option<String>,
    pub drift_at: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentView {
    pub id: String,
    pub system_id: String,
    pub environment_id: String,
    pub bundle_id: String,
    pub resource_name: String,
    /// `Private` or `Public`.
    pub cache_control: String,
    /// `running`, `succeeded` or `failed`; a rollout in waves also `waiting` (a wave's
    /// approval or time), `paused`, `halted` (a wave failed too much) or `aborted`.
    pub status: String,
    pub created_at: i64,
    pub created_by: String,
    pub finished_at: Option<i64>,
    /// A rollback: the deployment whose bundle this one publishes again.
    pub redeploy_of: Option<String>,
    /// Also deploys the system's loader into each org after its resource (issue #15).
    pub with_loader: bool,
    /// In waves (#17): the plan, and the last wave started (0: the first).
    pub rollout: Option<RolloutView>,
    pub wave: u32,
    /// Why it waits, is paused, halted or aborted.
    pub note: Option<String>,
    /// Publishes over resources changed in the org instead of holding those orgs as drifted.
    pub overwrite_drift: bool,
    pub counts: CountsView,
    /// With `GET /deployments/{id}`: one entry per connection.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<TargetView>>,
}

pub fn view(d: &Deployment, counts: TargetCounts, targets: Option<&[domain::Target]>) -> DeploymentView {
    DeploymentView {
        id: d.id.to_string(),
        system_id: d.system_id.to_string(),
        environment_id: d.environment_id.to_string(),
        bundle_id: d.bundle_id.to_string(),
        resource_name: d.resource_name.as_str().to_string(),
        cache_control: d.cache_control.as_str().to_string(),
        status: d.status.as_str().to_string(),
        created_at: d.created_at,
        created_by: d.created_by.clone(),
        finished_at: d.finished_at,
        redeploy_of: d.redeploy_of.as_ref().map(ToString::to_string),
        with_loader: d.with_loader,
        rollout: d.rollout.as_ref().map(|r| RolloutView {
            max_failure_rate: r.max_failure_rate,
            waves: r
                .waves
                .iter()
                .enumerate()
                .map(|(i, w)| WaveView {
                    gate: match w.gate {
                        domain::Gate::Auto => "auto",
                        domain::Gate::Approval => "approval",
                        domain::Gate::At(_) => "time",
                    }
                    .to_string(),
                    start_at: match w.gate {
                        domain::Gate::At(at) => Some(at),
                        _ => None,
                    },
                    counts: targets.map(|ts| {
                        deployments::count(&ts.iter().filter(|t| t.wave as usize == i).cloned().collect::<Vec<_>>())
                            .into()
                    }),
                })
                .collect(),
        }),
        wave: d.wave,
        note: d.note.clone(),
        overwrite_drift: d.overwrite_drift,
        counts: counts.into(),
        targets: targets.map(|ts| {
            ts.iter()
                .map(|t| TargetView {
                    connection_id: t.connection_id.to_string(),
                    account_name: t.org_name.clone(),
                    status: t.status.as_str().to_string(),
                    attempts: t.attempts,
                    action: t.action.clone(),
                    resource_id: t.resource_id.clone(),
                    url: t.url.clone(),
                    error: t.error.clone(),
                    loader: t.loader.clone(),
                    updated_at: t.updated_at,
                    drift_by: t.drift_by.clone(),
                    drift_at: t.drift_at,
                })
                .collect()
        }),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    #[param(pattern = "^sys_[0-9a-f]{32}$")]
    system_id: Option<String>,
    #[param(pattern = "^env_[0-9a-f]{32}$")]
    environment_id: Option<String>,
    /// Only deployments that published to this connection.
    #[param(pattern = "^conn_[0-9a-f]{32}$")]
    connection_id: Option<String>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The deployment history, newest first (B2).
#[utoipa::path(get, path = "/deployments", tag = "publishing", params(ListParams),
    responses((status = 200, body = Vec<DeploymentView>)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    crate::http::Params(p): crate::http::Params<ListParams>,
) -> Result<Json<Vec<DeploymentView>>, ApiError> {
    let account = caller.account()?;
    let system = p
        .system_id
        .as_deref()
        .map(SystemId::parse)
        .transpose()
        .map_err(|_| ApiError::invalid("system_id", "not a system id"))?;
    let env = p
        .environment_id
        .as_deref()
        .map(EnvironmentId::parse)
        .transpose()
        .map_err(|_| ApiError::invalid("environment_id", "not an environment id"))?;
    let connection = p
        .connection_id
        .as_deref()
        .map(ConnectionId::parse)
        .transpose()
        .map_err(|_| ApiError::invalid("connection_id", "not a connection id"))?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is between 1 and 500"));
    }
    let rows = state.store.deployments(account, system.as_ref(), env.as_ref(), connection.as_ref(), limit).await?;
    Ok(Json(rows.iter().map(|(d, c)| view(d, *c, None)).collect()))
}

/// One deployment with every connection's outcome (poll it to follow progress).
#[utoipa::path(get, path = "/deployments/{id}", tag = "publishing", params(("id" = String, Path, description = "dep_…")),
    responses((status = 200, body = DeploymentView), (status = 404, body = ErrorBody)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    let id = DeploymentId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let (d, targets) = state.store.deployment(caller.account()?, &id).await?;
    Ok(Json(view(&d, deployments::count(&targets), Some(&targets))))
}

/// A deployment request as JSON: a bundle stored earlier.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DeployInput {
    system_id: String,
    environment_id: String,
    /// The static resource's name in each org.
    resource_name: String,
    /// `Private` (default) or `Public`.
    cache_control: Option<String>,
    bundle_id: String,
    /// Also deploy the system's loader into each org after its resource (its settings must be
    /// set, and the bundle must hold the files it loads).
    #[serde(default)]
    with_loader: bool,
    /// Roll out in waves (#17); absent: every org at once.
    rollout: Option<RolloutInput>,
    /// Publish over a resource someone changed in the org (default `false`: that org is held
    /// as drifted, and nothing is uploaded there).
    #[serde(default)]
    overwrite_drift: bool,
}

/// A deployment request as `multipart/form-data`: the same fields and `file` (a ZIP).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
struct DeployUpload {
    system_id: String,
    environment_id: String,
    resource_name: String,
    cache_control: Option<String>,
    /// `true` to deploy the system's loader too (default `false`).
    with_loader: Option<bool>,
    /// A rollout in waves, as JSON (see `RolloutInput`).
    rollout: Option<String>,
    /// `true` to publish over resources changed in the org (default `false`).
    overwrite_drift: Option<bool>,
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Publishes a bundle to every connection bound to the system × environment. Answers at once
/// (202) with the deployment; targets run in the background (poll `GET /deployments/{id}`).
/// A bad bundle (over 5 MB, escaping paths, links, duplicates, a zip bomb) is refused here.
#[utoipa::path(post, path = "/deployments", tag = "publishing",
    request_body(content(
        (DeployUpload = "multipart/form-data"),
        (DeployInput = "application/json")
    )),
    responses((status = 202, body = DeploymentView), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    caller: Publisher,
    request: Request,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let request = if multipart {
        let mut form =
            Multipart::from_request(request, &state).await.map_err(|e| ApiError::invalid("body", e.body_text()))?;
        let mut fields = std::collections::HashMap::new();
        let mut file = None;
        while let Some(field) = form.next_field().await.map_err(|e| ApiError::invalid("body", e.body_text()))? {
            let name = field.name().unwrap_or_default().to_string();
            if name == "file" {
                file = Some(field.bytes().await.map_err(|e| ApiError::invalid("file", e.body_text()))?.to_vec());
            } else {
                fields.insert(name, field.text().await.map_err(|e| ApiError::invalid("body", e.body_text()))?);
            }
        }
        let file = file.ok_or_else(|| ApiError::invalid("file", "attach the bundle (a ZIP) as the `file` field"))?;
        let mut flag = |name: &'static str| match fields.remove(name).as_deref().map(str::trim) {
            None | Some("" | "false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::invalid(name, format!("{other:?} is not true or false"))),
        };
        let with_loader = flag("with_loader")?;
        let overwrite_drift = flag("overwrite_drift")?;
        let rollout = match fields.remove("rollout").filter(|r| !r.trim().is_empty()) {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<RolloutInput>(&text)
                    .map_err(|e| ApiError::invalid("rollout", format!("not a rollout: {e}")))?
                    .into_rollout()?,
            ),
        };
        let mut take = |k: &str| fields.remove(k).unwrap_or_default();
        DeployRequest {
            system_id: take("system_id"),
            environment_id: take("environment_id"),
            resource_name: take("resource_name"),
            cache_control: Some(take("cache_control")),
            bundle: BundleSource::Upload(file),
            with_loader,
            rollout,
            overwrite_drift,
        }
    } else {
        let Json(input) = Json::<DeployInput>::from_request(request, &state)
            .await
            .map_err(|e| ApiError::invalid("body", e.body_text()))?;
        DeployRequest {
            system_id: input.system_id,
            environment_id: input.environment_id,
            resource_name: input.resource_name,
            cache_control: input.cache_control,
            bundle: BundleSource::Stored(input.bundle_id),
            with_loader: input.with_loader,
            rollout: input.rollout.map(RolloutInput::into_rollout).transpose()?,
            overwrite_drift: input.overwrite_drift,
        }
    };
    let started = deployments::deploy(&state, &caller, request).await?;
    let deployment = view(&started.deployment, started.counts, None);
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

/// A rollback's options: in waves, like a release (#17).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackInput {
    /// Roll the earlier release back out in waves; absent: every org at once.
    rollout: Option<RolloutInput>,
}

/// Rollback (B2): publishes this deployment's bundle again to the system × environment's
/// connections, as a new deployment — in waves when the body asks (#17).
#[utoipa::path(post, path = "/deployments/{id}/rollback", tag = "publishing", params(("id" = String, Path, description = "dep_…")),
    request_body(content = Option<RollbackInput>, description = "optional: a rollout in waves"),
    responses((status = 202, body = DeploymentView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    // The release to put back first: an id that names none is 404 whatever the body says.
    let earlier = DeploymentId::parse(&id).map_err(|_| ApiError::NotFound)?;
    state.store.deployment(caller.account()?, &earlier).await?;
    // No body, or `null`: every org at once.
    let input: RollbackInput = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackInput::default()
    } else {
        serde_json::from_slice::<Option<RollbackInput>>(&body)
            .map_err(|e| ApiError::invalid("body", e.to_string()))?
            .unwrap_or_default()
    };
    let rollout = input.rollout.map(RolloutInput::into_rollout).transpose()?;
    let started = deployments::rollback_in_waves(&state, &caller, &id, rollout).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&started.deployment, started.counts, None))))
}

async fn control(
    state: &AppState,
    caller: &Caller,
    id: &str,
    control: service::rollout::Control,
) -> Result<Json<DeploymentView>, ApiError> {
    service::rollout::control(state, caller, id, control).await?;
    let id = DeploymentId::parse(id).map_err(|_| ApiError::NotFound)?;
    let (d, targets) = state.store.deployment(caller.account()?, &id).await?;
    Ok(Json(view(&d, deployments::count(&targets), Some(&targets))))
}

/// Pauses a deployment (#17): targets publishing now finish, no other starts until it is
/// resumed. Publishers; 409 when it has ended or is not running or waiting.
#[utoipa::path(post, path = "/deployments/{id}/pause", tag = "publishing", params(("id" = String, Path, description = "dep_…")),
    responses((status = 200, body = DeploymentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    control(&state, &caller, &id, service::rollout::Control::Pause).await
}

/// Resumes a paused deployment, or a halted rollout (its next wave starts anyway). 409 otherwise.
#[utoipa::path(post, path = "/deployments/{id}/resume", tag = "publishing", params(("id" = String, Path, description = "dep_…")),
    responses((status = 200, body = DeploymentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    control(&state, &caller, &id, service::rollout::Control::Resume).await
}

/// Starts the rollout's next wave now: the one waiting for approval, or for its time. 409 when
/// no wave waits.
#[utoipa::path(post, path = "/deployments/{id}/approve", tag = "publishing", params(("id" = String, Path, description = "dep_…")),
    responses((status = 200, body = DeploymentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    control(&state, &caller, &id, service::rollout::Control::Approve).await
}

/// Aborts a deployment: targets that have not started never will (they show as skipped);
/// targets publishing now finish. 409 when it has ended.
#[utoipa::path(post, path = "/deployments/{id}/abort", tag = "publishing", params(("id" = String, Path, description = "dep_…")),
    responses((status = 200, body = DeploymentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn abort(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    control(&state, &caller, &id, service::rollout::Control::Abort).await
}

/// A person's answer to a deployment's drifted targets (#17).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DriftInput {
    /// `overwrite`: publish over the change made in the org; `skip`: leave those orgs as they are.
    #[schema(pattern = "^(overwrite|skip)$")]
    resolve: String,
    /// Only these connections' targets (`con_…`); absent: every drifted target.
    connections: Option<Vec<String>>,
}

/// Answers a deployment's drifted targets (#17): `overwrite` puts them back to publish over the
/// org's change (when the rollout runs), `skip` leaves those orgs alone. Publishers; 409 when
/// the deployment has ended or has no drifted target.
#[utoipa::path(post, path = "/deployments/{id}/drift", tag = "publishing", params(("id" = String, Path, description = "dep_…")),
    request_body = DriftInput,
    responses((status = 200, body = DeploymentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn resolve_drift(
    State(state): State<AppState>,
    caller: Publisher,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<DeploymentView>, ApiError> {
    let parsed = DeploymentId::parse(&id).map_err(|_| ApiError::NotFound)?;
    state.store.deployment(caller.account()?, &parsed).await?;
    let input: DriftInput = serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?;
    let overwrite = match input.resolve.as_str() {
        "overwrite" => true,
        "skip" => false,
        other => return Err(ApiError::invalid("resolve", format!("{other:?} is not overwrite or skip"))),
    };
    service::drift::resolve(&state, &caller, &id, overwrite, input.connections.as_deref()).await?;
    let (d, targets) = state.store.deployment(caller.account()?, &parsed).await?;
    Ok(Json(view(&d, deployments::count(&targets), Some(&targets))))
}

/// The connections a deployment to this system × environment publishes to.
#[utoipa::path(get, path = "/systems/{id}/environments/{env}/connections", tag = "publishing",
    params(("id" = String, Path, description = "sys_…"), ("env" = String, Path, description = "env_…")),
    responses((status = 200, body = Vec<ConnectionView>), (status = 404, body = ErrorBody)))]
async fn bound(
    State(state): State<AppState>,
    caller: Caller,
    Path((system, env)): Path<(String, String)>,
) -> Result<Json<Vec<ConnectionView>>, ApiError> {
    let account = caller.account()?;
    let (system, env) = deployments::slot(&system, &env)?;
    state.store.system(account, &system).await?;
    state.store.environment(account, &env).await?;
    let connections = state.store.targets_for(account, &system, &env).await?;
    Ok(Json(connections.iter().map(ConnectionView::from).collect()))
}

/// Binds a new connection to a system × environment (admins and owners).
#[utoipa::path(put, path = "/systems/{id}/environments/{env}/connections/{connection}", tag = "publishing",
    params(("id" = String, Path, description = "sys_…"), ("env" = String, Path, description = "env_…"), ("connection" = String, Path, description = "conn_…")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn bind(
    State(state): State<AppState>,
    caller: Caller,
    Path((system, env, connection)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    deployments::bind(&state, &caller, &system, &env, &connection).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
struct LoaderRemoved {
    /// What Salesforce did: `removed by deploy 0Af…`.
    removed: String,
}

/// Removes the system's loader from this connection's org (issue #15): a destructive deploy of
/// its component and trusted sites, offered when a binding or a connection goes (admins and
/// owners). Salesforce's refusal is a 422 with its words.
#[utoipa::path(post, path = "/systems/{id}/environments/{env}/connections/{connection}/loader/remove", tag = "publishing",
    params(("id" = String, Path, description = "sys_…"), ("env" = String, Path, description = "env_…"), ("connection" = String, Path, description = "conn_…")),
    responses((status = 200, body = LoaderRemoved), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn remove_loader(
    State(state): State<AppState>,
    caller: Caller,
    Path((system, env, connection)): Path<(String, String, String)>,
) -> Result<Json<LoaderRemoved>, ApiError> {
    let removed = service::loader::remove_from_org(&state, &caller, &system, &env, &connection).await?;
    Ok(Json(LoaderRemoved { removed }))
}

/// Deploys the system's loader to every org of this environment without a new release
/// (issue #15): the environment's latest release is published again with the loader, so each
/// org's resource is unchanged and only the loader is validated and deployed (skipped where
/// the org already holds this version). Publishers; 422 when the system has no loader, the
/// environment has no release yet, or a deployment to it is running.
#[utoipa::path(post, path = "/systems/{id}/environments/{env}/loader/deploy", tag = "publishing",
    params(("id" = String, Path, description = "sys_…"), ("env" = String, Path, description = "env_…")),
    responses((status = 202, body = DeploymentView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn deploy_loader(
    State(state): State<AppState>,
    caller: Caller,
    Path((system, env)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let started = service::loader::deploy(&state, &caller, &system, &env).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&started.deployment, started.counts, None))))
}

/// Unbinds a connection from a system × environment.
#[utoipa::path(delete, path = "/systems/{id}/environments/{env}/connections/{connection}", tag = "publishing",
    params(("id" = String, Path, description = "sys_…"), ("env" = String, Path, description = "env_…"), ("connection" = String, Path, description = "conn_…")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn unbind(
    State(state): State<AppState>,
    caller: Caller,
    Path((system, env, connection)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    deployments::unbind(&state, &caller, &system, &env, &connection).await?;
    Ok(StatusCode::NO_CONTENT)
}
