//! `/api/v1/fleet` and `/api/v1/drift/scan` (#17): which release each org runs per system ×
//! environment, drifted and failed orgs, how long the last release took to reach the fleet;
//! and a drift scan of every org, now.

use axum::Json;
use axum::extract::State;
use domain::{EnvironmentId, SystemId};
use serde::{Deserialize, Serialize};
use service::fleet::{FleetFilter, FleetSlot, OrgState};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller, ErrorBody};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(fleet)).routes(routes!(scan))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FleetParams {
    #[param(pattern = "^sys_[0-9a-f]{32}$")]
    system_id: Option<String>,
    #[param(pattern = "^env_[0-9a-f]{32}$")]
    environment_id: Option<String>,
    /// Only orgs in this state: `current`, `rolling`, `behind`, `drifted`, `failed` or `never`.
    #[param(pattern = "^(current|rolling|behind|drifted|failed|never)$")]
    state: Option<String>,
}

/// A change made in an org to a resource Lightbridge published.
#[derive(Debug, Serialize, ToSchema)]
pub struct DriftView {
    /// What changed: `its body changed`, `deleted from the org`…
    pub what: String,
    /// Who changed it (`LastModifiedBy.Name`) and when (Unix milliseconds).
    pub by: Option<String>,
    pub at: Option<i64>,
    /// When Lightbridge noticed.
    pub found_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FleetOrgView {
    pub connection_id: String,
    pub connection_name: String,
    pub org_name: Option<String>,
    pub org_id: Option<String>,
    /// `current`, `rolling`, `behind`, `drifted`, `failed` or `never`.
    pub state: String,
    /// The deployment whose release the org runs, its bundle's SHA-256, and when it was published.
    pub release: Option<String>,
    pub sha256: Option<String>,
    pub published_at: Option<i64>,
    pub drift: Option<DriftView>,
    /// Why the latest release failed there.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LatestView {
    pub deployment_id: String,
    pub sha256: String,
    pub status: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// Orgs running it now.
    pub reached: usize,
    /// Milliseconds from its start until every org ran it; null while it has not.
    pub took_ms: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FleetSlotView {
    pub system_id: String,
    pub system_name: String,
    pub environment_id: String,
    pub environment_name: String,
    pub latest: Option<LatestView>,
    /// How many orgs it has, and how many are in each state (whatever `state` asked).
    pub org_count: usize,
    pub counts: std::collections::BTreeMap<String, usize>,
    /// Its orgs (only those in the asked `state`, when given).
    pub orgs: Vec<FleetOrgView>,
}

pub fn slot_view(s: &FleetSlot) -> FleetSlotView {
    FleetSlotView {
        system_id: s.system_id.to_string(),
        system_name: s.system_name.clone(),
        environment_id: s.environment_id.to_string(),
        environment_name: s.environment_name.clone(),
        org_count: s.org_count(),
        counts: s.counts.iter().map(|(state, n)| (state.as_str().to_string(), *n)).collect(),
        latest: s.latest.as_ref().map(|l| LatestView {
            deployment_id: l.deployment_id.to_string(),
            sha256: l.sha256.clone(),
            status: l.status.as_str().to_string(),
            created_at: l.created_at,
            finished_at: l.finished_at,
            reached: l.reached,
            took_ms: l.took_ms,
        }),
        orgs: s
            .orgs
            .iter()
            .map(|o| FleetOrgView {
                connection_id: o.connection_id.to_string(),
                connection_name: o.connection_name.clone(),
                org_name: o.org_name.clone(),
                org_id: o.org_id.clone(),
                state: o.state.as_str().to_string(),
                release: o.release.as_ref().map(ToString::to_string),
                sha256: o.sha256.clone(),
                published_at: o.published_at,
                drift: o.drift.as_ref().map(|d| DriftView {
                    what: d.what.clone(),
                    by: d.by.clone(),
                    at: d.at,
                    found_at: d.found_at,
                }),
                error: o.error.clone(),
            })
            .collect(),
    }
}

/// The fleet (#17): per system × environment with orgs or a release, its latest release and how
/// far it got, and each org's state and the release it runs.
#[utoipa::path(get, path = "/fleet", tag = "publishing", params(FleetParams),
    responses((status = 200, body = Vec<FleetSlotView>), (status = 422, body = ErrorBody)))]
async fn fleet(
    State(state): State<AppState>,
    caller: Caller,
    crate::http::Params(p): crate::http::Params<FleetParams>,
) -> Result<Json<Vec<FleetSlotView>>, ApiError> {
    let filter = FleetFilter {
        system: p
            .system_id
            .as_deref()
            .map(SystemId::parse)
            .transpose()
            .map_err(|_| ApiError::invalid("system_id", "not a system id"))?,
        environment: p
            .environment_id
            .as_deref()
            .map(EnvironmentId::parse)
            .transpose()
            .map_err(|_| ApiError::invalid("environment_id", "not an environment id"))?,
        state: p
            .state
            .as_deref()
            .map(|s| {
                OrgState::parse(s).ok_or_else(|| ApiError::invalid("state", format!("{s:?} is not a fleet state")))
            })
            .transpose()?,
    };
    let slots = service::fleet::fleet(&state, &caller, &filter).await?;
    Ok(Json(slots.iter().map(slot_view).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScanView {
    pub orgs: usize,
    pub resources: usize,
    pub drifted: usize,
    /// Salesforce calls made: one query per org, and a body read where a modstamp moved but the
    /// length did not tell.
    pub calls: usize,
    /// Orgs that could not be scanned.
    pub failed: Vec<ScanFailure>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScanFailure {
    pub org_id: String,
    pub error: String,
}

/// Scans every org the account published to for drift, now (#17): one query per org. Publishers.
#[utoipa::path(post, path = "/drift/scan", tag = "publishing",
    responses((status = 200, body = ScanView), (status = 403, body = ErrorBody)))]
async fn scan(State(state): State<AppState>, caller: crate::http::Publisher) -> Result<Json<ScanView>, ApiError> {
    let report = service::drift::scan(&state, &caller).await?;
    Ok(Json(ScanView {
        orgs: report.orgs,
        resources: report.resources,
        drifted: report.drifted,
        calls: report.calls,
        failed: report.failed.into_iter().map(|(org_id, error)| ScanFailure { org_id, error }).collect(),
    }))
}
