//! The Deployments page (B2): publish a ZIP to a system × environment, the history with each
//! deployment's outcome, a deployment's per-org results with live progress (the page refreshes
//! itself while it runs), and rollback in one click. Linked from each connection's page.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use domain::{ConnectionId, DeploymentId};
use serde::Deserialize;
use store::{CatalogStore, DeploymentStore};

use super::{Checked, Chrome, CsrfForm, PageResult, SignedIn, date, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;
use service::deployments::{BundleSource, DeployRequest, count, deploy};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/deployments", get(history).post(upload))
        .route("/deployments/{id}", get(detail))
        .route("/deployments/{id}/rollback", post(rollback))
        .route("/deployments/{id}/drift", post(resolve_drift))
        .route("/deployments/{id}/{control}", post(control))
        .layer(axum::extract::DefaultBodyLimit::max(crate::http::MAX_UPLOAD_BYTES))
}

#[derive(Debug, Clone)]
struct Row {
    id: String,
    when: String,
    who: String,
    slot: String,
    resource: String,
    status: String,
    status_class: &'static str,
    summary: String,
    rollback_of: Option<String>,
}

fn status_class(status: &str) -> &'static str {
    match status {
        "succeeded" | "unchanged" => "status status-ok",
        "failed" => "status status-bad",
        _ => "status status-warn",
    }
}

#[derive(Template)]
#[template(path = "deployments.html")]
struct HistoryPage {
    chrome: Chrome,
    rows: Vec<Row>,
    systems: Vec<(String, String)>,
    environments: Vec<(String, String)>,
    can_publish: bool,
    connection: Option<String>,
    form: PublishDraft,
}

/// The publish form as sent, with every fault by field: shown again after a refusal so that
/// nothing typed — nor the file, kept as a bundle — is lost.
#[derive(Debug, Default)]
struct PublishDraft {
    system_id: String,
    environment_id: String,
    resource_name: String,
    cache_control: String,
    with_loader: bool,
    /// Publish over resources changed in the org (#17).
    overwrite_drift: bool,
    /// Roll out as a canary then the rest (#17): its size, the rest's gate (`auto` or
    /// `approval`), and the share of failures (in %) that halts it.
    canary: bool,
    canary_count: String,
    rest_gate: String,
    max_failure_percent: String,
    /// The file already checked and kept: `(bundle id, what it holds)`.
    bundle: Option<(String, String)>,
    errors: Vec<(String, String)>,
}

impl PublishDraft {
    fn error(&self, field: &str) -> String {
        self.errors.iter().filter(|(f, _)| f == field).map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ")
    }

    /// Every fault of fields starting with `prefix` (a rollout's).
    fn errors_under(&self, prefix: &str) -> String {
        self.errors
            .iter()
            .filter(|(f, _)| f.starts_with(prefix))
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The rollout the form asks for: a canary of N orgs, then the rest.
    fn rollout(&mut self) -> Option<domain::Rollout> {
        if !self.canary {
            return None;
        }
        let count = match self.canary_count.trim().parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                self.errors.push(("rollout.canary".into(), "The canary is a whole number of orgs, at least 1.".into()));
                1
            }
        };
        let percent = match self.max_failure_percent.trim() {
            "" => 0.0,
            text => match text.parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => p,
                _ => {
                    self.errors.push((
                        "rollout.max_failure_rate".into(),
                        "The failures allowed are a percentage from 0 to 100.".into(),
                    ));
                    0.0
                }
            },
        };
        let gate = if self.rest_gate == "approval" { domain::Gate::Approval } else { domain::Gate::Auto };
        Some(domain::Rollout {
            waves: vec![
                domain::Wave { count: Some(count), percent: None, connections: None, gate: domain::Gate::Auto },
                domain::Wave { count: None, percent: None, connections: None, gate },
            ],
            max_failure_rate: percent / 100.0,
        })
    }
}

#[derive(Debug, Deserialize)]
struct HistoryParams {
    connection: Option<String>,
}

async fn names(
    state: &AppState,
    account: &domain::AccountId,
) -> Result<(HashMap<String, String>, HashMap<String, String>), ApiError> {
    let systems = state.store.systems(account).await?.into_iter().map(|s| (s.id.to_string(), s.name)).collect();
    let envs = state.store.environments(account).await?.into_iter().map(|e| (e.id.to_string(), e.name)).collect();
    Ok((systems, envs))
}

async fn history(State(state): State<AppState>, signed_in: SignedIn, Query(p): Query<HistoryParams>) -> PageResult {
    let page = history_page(&state, &signed_in, p, PublishDraft::default()).await?;
    let chrome = page.chrome.clone();
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

async fn history_page(
    state: &AppState,
    signed_in: &SignedIn,
    p: HistoryParams,
    form: PublishDraft,
) -> Result<HistoryPage, ApiError> {
    let account = signed_in.caller.account()?.clone();
    let connection = p.connection.as_deref().and_then(|c| ConnectionId::parse(c).ok());
    let found = state.store.deployments(&account, None, None, connection.as_ref(), 100).await?;
    let (systems, envs) = names(state, &account).await?;
    let rows = found
        .iter()
        .map(|(d, c)| Row {
            id: d.id.to_string(),
            when: date(d.created_at),
            who: d.created_by.clone(),
            slot: format!(
                "{} × {}",
                systems.get(d.system_id.as_str()).map(String::as_str).unwrap_or("(removed system)"),
                envs.get(d.environment_id.as_str()).map(String::as_str).unwrap_or("(removed environment)")
            ),
            resource: d.resource_name.as_str().to_string(),
            status: d.status.as_str().to_string(),
            status_class: status_class(d.status.as_str()),
            summary: format!(
                "{} of {} published, {} unchanged, {} failed{}",
                c.succeeded,
                c.total(),
                c.unchanged,
                c.failed,
                if c.pending + c.running > 0 { format!(", {} to go", c.pending + c.running) } else { String::new() }
            ),
            rollback_of: d.redeploy_of.as_ref().map(ToString::to_string),
        })
        .collect();
    let mut systems: Vec<(String, String)> = systems.into_iter().collect();
    systems.sort_by(|a, b| a.1.cmp(&b.1));
    let mut environments: Vec<(String, String)> = Vec::new();
    for e in state.store.environments(&account).await? {
        environments.push((e.id.to_string(), e.name));
    }
    Ok(HistoryPage {
        chrome: signed_in.chrome("deployments"),
        rows,
        systems,
        environments,
        can_publish: signed_in.caller.require_publisher().is_ok(),
        connection: connection.map(|c| c.to_string()),
        form,
    })
}

/// The upload form: a ZIP for a system × environment.
async fn upload(State(state): State<AppState>, signed_in: SignedIn, mut form: Multipart) -> PageResult {
    let mut fields = HashMap::new();
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(|e| ApiError::invalid("body", e.body_text()))? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let bytes = field.bytes().await.map_err(|e| ApiError::invalid("file", e.body_text()))?;
            file = (!bytes.is_empty()).then(|| bytes.to_vec());
        } else {
            fields.insert(name, field.text().await.map_err(|e| ApiError::invalid("body", e.body_text()))?);
        }
    }
    signed_in.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    signed_in.caller.require_publisher()?;
    let mut take = |k: &str| fields.remove(k).unwrap_or_default();
    let mut draft = PublishDraft {
        system_id: take("system_id"),
        environment_id: take("environment_id"),
        resource_name: take("resource_name"),
        cache_control: take("cache_control"),
        with_loader: matches!(take("with_loader").as_str(), "on" | "true"),
        overwrite_drift: matches!(take("overwrite_drift").as_str(), "on" | "true"),
        canary: take("rollout") == "canary",
        canary_count: take("canary_count"),
        rest_gate: take("rest_gate"),
        max_failure_percent: take("max_failure_percent"),
        ..PublishDraft::default()
    };
    let rollout = draft.rollout();
    let earlier = take("bundle_id");
    // The file is checked and kept first, so that it survives the other fields' faults.
    let bundle = match file {
        Some(bytes) => match service::deployments::keep_bundle(&state, &signed_in.caller, bytes).await {
            Ok(info) => Some(info.id.to_string()),
            Err(service::ServiceError::Invalid(errors)) => {
                draft.errors.extend(errors);
                None
            }
            Err(e) => return Err(ApiError::from(e).into()),
        },
        None if !earlier.is_empty() => Some(earlier),
        None => {
            draft.errors.push(("file".into(), "Choose a ZIP file to publish.".into()));
            None
        }
    };
    let request = DeployRequest {
        system_id: draft.system_id.clone(),
        environment_id: draft.environment_id.clone(),
        resource_name: draft.resource_name.clone(),
        cache_control: Some(draft.cache_control.clone()),
        bundle: BundleSource::Stored(bundle.clone().unwrap_or_default()),
        with_loader: draft.with_loader,
        rollout,
        overwrite_drift: draft.overwrite_drift,
    };
    // Without a good file the stand-in bundle id is refused: never started, and that refusal
    // is the file's, already said. A rollout the form could not read starts nothing either.
    let form_faults = draft.errors.iter().any(|(f, _)| f.starts_with("rollout"));
    let result = if form_faults {
        Err(service::ServiceError::Invalid(Vec::new()))
    } else {
        deploy(&state, &signed_in.caller, request).await
    };
    let refused = match result {
        Ok(started) => {
            let to = format!("/deployments/{}", started.deployment.id);
            return Ok(redirect_with_flash(&to, "success", "Publishing started."));
        }
        Err(service::ServiceError::Invalid(errors)) => {
            errors.into_iter().filter(|(f, _)| !(bundle.is_none() && f == "bundle_id")).collect()
        }
        Err(service::ServiceError::NotFound) => {
            vec![("system_id".into(), "no such system or environment in this account".into())]
        }
        Err(e) => return Err(ApiError::from(e).into()),
    };
    draft.errors.extend(refused);
    if let Some(id) = bundle {
        let account = signed_in.caller.account()?.clone();
        let kept = match domain::BundleId::parse(&id) {
            Ok(bundle_id) => state.store.bundle(&account, &bundle_id).await.ok(),
            Err(_) => None,
        };
        if let Some(kept) = kept {
            let what = format!(
                "{} file(s), {:.1} KB, sha256 {}",
                kept.files.len(),
                kept.size as f64 / 1024.0,
                &kept.sha256[..12.min(kept.sha256.len())]
            );
            draft.bundle = Some((id, what));
        }
    }
    let page = history_page(&state, &signed_in, HistoryParams { connection: None }, draft).await?;
    let chrome = page.chrome.clone();
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page, Some(&chrome)))
}

#[derive(Debug, Clone)]
struct TargetRow {
    connection_id: String,
    /// The connection's name; the org and its user beside it.
    connection: String,
    org: String,
    status: String,
    status_class: &'static str,
    attempts: u32,
    action: String,
    url: Option<String>,
    error: String,
}

#[derive(Template)]
#[template(path = "deployment.html")]
struct DetailPage {
    chrome: Chrome,
    id: String,
    running: bool,
    status: String,
    status_class: &'static str,
    slot: String,
    resource: String,
    cache_control: String,
    when: String,
    who: String,
    finished: Option<String>,
    progress: String,
    percent: u32,
    targets: Vec<TargetRow>,
    can_publish: bool,
    /// A later deployment to the same system × environment exists: this release can be put
    /// back.
    can_roll_back: bool,
    rollback_of: Option<String>,
    /// Why it waits, is paused, halted or aborted.
    note: Option<String>,
    /// The rollout's waves (#17): (wave, gate, progress, current).
    waves: Vec<(u32, String, String, bool)>,
    /// The moves a person may make now: (path, label, danger).
    controls: Vec<(&'static str, &'static str, bool)>,
    /// Orgs held as drifted (#17), which a publisher may overwrite or skip.
    drifted: u32,
}

async fn detail(State(state): State<AppState>, signed_in: SignedIn, Path(id): Path<String>) -> PageResult {
    let account = signed_in.caller.account()?.clone();
    let id = DeploymentId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let (d, targets) = state.store.deployment(&account, &id).await?;
    let latest = state
        .store
        .deployments(&account, Some(&d.system_id), Some(&d.environment_id), None, 1)
        .await?
        .into_iter()
        .next()
        .map(|(l, _)| l.id);
    let c = count(&targets);
    let (systems, envs) = names(&state, &account).await?;
    let done = c.succeeded + c.unchanged + c.failed;
    // Only drifted orgs left: nothing moves until a person answers, so the page stops refreshing.
    let waits_for_person = c.drifted > 0 && c.pending + c.running + c.held == 0;
    let rows = targets
        .iter()
        .map(|t| TargetRow {
            connection_id: t.connection_id.to_string(),
            connection: t
                .connection_name
                .clone()
                .or_else(|| t.org_name.clone())
                .unwrap_or_else(|| "(deleted connection)".into()),
            org: [t.org_name.as_deref(), t.username.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" · "),
            status: t.status.as_str().to_string(),
            status_class: status_class(t.status.as_str()),
            attempts: t.attempts,
            action: t.action.clone().unwrap_or_default(),
            url: t.url.as_ref().map(|u| format!("{}{u}", t.instance_url.as_deref().unwrap_or_default())),
            error: t.error.clone().unwrap_or_default(),
        })
        .collect();
    let chrome = signed_in.chrome("deployments");
    let page = DetailPage {
        chrome: chrome.clone(),
        id: d.id.to_string(),
        running: matches!(d.status, domain::DeploymentStatus::Running | domain::DeploymentStatus::Waiting)
            && !waits_for_person,
        status: d.status.as_str().to_string(),
        status_class: status_class(d.status.as_str()),
        slot: format!(
            "{} × {}",
            systems.get(d.system_id.as_str()).map(String::as_str).unwrap_or("(removed system)"),
            envs.get(d.environment_id.as_str()).map(String::as_str).unwrap_or("(removed environment)")
        ),
        resource: d.resource_name.as_str().to_string(),
        cache_control: d.cache_control.as_str().to_string(),
        when: date(d.created_at),
        who: d.created_by.clone(),
        finished: d.finished_at.map(date),
        progress: format!(
            "{done} of {} orgs done: {} published, {} unchanged, {} failed{}",
            c.total(),
            c.succeeded,
            c.unchanged,
            c.failed,
            if c.drifted > 0 { format!(", {} held as drifted", c.drifted) } else { String::new() }
        ),
        percent: if c.total() == 0 { 100 } else { done * 100 / c.total() },
        targets: rows,
        can_publish: signed_in.caller.require_publisher().is_ok(),
        can_roll_back: latest.is_some_and(|l| l != d.id),
        rollback_of: d.redeploy_of.as_ref().map(ToString::to_string),
        note: d.note.clone(),
        waves: d
            .rollout
            .as_ref()
            .map(|r| {
                r.waves
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let of: Vec<domain::Target> =
                            targets.iter().filter(|t| t.wave as usize == i).cloned().collect();
                        let c = count(&of);
                        let gate = match w.gate {
                            _ if i == 0 => "at once".to_string(),
                            domain::Gate::Auto => "when the wave before it passed".to_string(),
                            domain::Gate::Approval => "after approval".to_string(),
                            domain::Gate::At(at) => format!("at {}", date(at)),
                        };
                        let progress = format!(
                            "{} orgs: {} published, {} unchanged, {} failed, {} waiting, {} skipped{}",
                            c.total(),
                            c.succeeded,
                            c.unchanged,
                            c.failed,
                            c.held + c.pending + c.running,
                            c.skipped,
                            if c.drifted > 0 { format!(", {} drifted", c.drifted) } else { String::new() }
                        );
                        (i as u32 + 1, gate, progress, i as u32 == d.wave)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        controls: if signed_in.caller.require_publisher().is_err() {
            Vec::new()
        } else {
            use domain::DeploymentStatus as S;
            let has_next = d.rollout.as_ref().is_some_and(|r| (d.wave as usize + 1) < r.waves.len());
            let mut controls = Vec::new();
            match d.status {
                S::Running => controls.push(("pause", "Pause", false)),
                S::Waiting => {
                    if has_next {
                        controls.push(("approve", "Start the next wave now", false));
                    }
                    controls.push(("pause", "Pause", false));
                }
                S::Paused => controls.push(("resume", "Resume", false)),
                S::Halted if has_next => controls.push(("resume", "Resume anyway", false)),
                _ => {}
            }
            if !d.status.is_final() {
                controls.push(("abort", "Abort", true));
            }
            controls
        },
        drifted: if d.finished_at.is_none() { c.drifted } else { 0 },
    };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

/// Pause, resume, approve or abort (#17), from the deployment's page.
async fn control(
    State(state): State<AppState>,
    Path((id, control)): Path<(String, String)>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    let Some(move_) = service::rollout::Control::parse(&control) else { return Err(ApiError::NotFound.into()) };
    let back = format!("/deployments/{}", DeploymentId::parse(&id).map_err(|_| ApiError::NotFound)?);
    match service::rollout::control(&state, &signed_in.caller, &id, move_).await {
        Ok(d) => {
            let text = match move_ {
                service::rollout::Control::Pause => {
                    "Paused: what is publishing now finishes, nothing else starts.".to_string()
                }
                service::rollout::Control::Resume => "Resumed.".to_string(),
                service::rollout::Control::Approve => format!("Wave {} started.", d.wave + 1),
                service::rollout::Control::Abort => "Aborted: orgs not yet started are skipped.".to_string(),
            };
            Ok(redirect_with_flash(&back, "success", &text))
        }
        Err(e @ service::ServiceError::Conflict { .. }) => Ok(redirect_with_flash(&back, "error", &e.to_string())),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// The answer to drifted orgs (#17): all of them, or one (`connection`).
#[derive(Debug, Deserialize)]
struct DriftForm {
    csrf: String,
    /// `overwrite` or `skip`.
    resolve: String,
    #[serde(default)]
    connection: Option<String>,
}

impl super::WithCsrf for DriftForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Overwrite or skip the orgs held as drifted, from the deployment's page.
async fn resolve_drift(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<DriftForm>,
) -> PageResult {
    let back = format!("/deployments/{}", DeploymentId::parse(&id).map_err(|_| ApiError::NotFound)?);
    let overwrite = match form.resolve.as_str() {
        "overwrite" => true,
        "skip" => false,
        _ => return Ok(redirect_with_flash(&back, "error", "Choose to overwrite or to skip.")),
    };
    let only: Option<Vec<String>> = form.connection.filter(|c| !c.is_empty()).map(|c| vec![c]);
    match service::drift::resolve(&state, &signed_in.caller, &id, overwrite, only.as_deref()).await {
        Ok(n) => {
            let text = if overwrite {
                format!("Publishing over the changes made in {n} org(s).")
            } else {
                format!("Skipped {n} drifted org(s): they keep their changes.")
            };
            Ok(redirect_with_flash(&back, "success", &text))
        }
        Err(e @ (service::ServiceError::Conflict { .. } | service::ServiceError::Invalid(_))) => {
            Ok(redirect_with_flash(&back, "error", &ApiError::from(e).to_string_for_people()))
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// Rollback: this deployment's release again, to the same system × environment.
async fn rollback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    let started = service::deployments::rollback(&state, &signed_in.caller, &id).await.map_err(ApiError::from);
    match started {
        Ok(started) => Ok(redirect_with_flash(
            &format!("/deployments/{}", started.deployment.id),
            "success",
            "Rolling back: publishing that release again.",
        )),
        Err(e @ ApiError::Invalid(_)) => {
            Ok(redirect_with_flash(&format!("/deployments/{id}"), "error", &e.to_string_for_people()))
        }
        Err(e) => Err(e.into()),
    }
}
