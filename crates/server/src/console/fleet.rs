//! The Fleet page (#17): a matrix of orgs × system-environments — which release each org runs,
//! which drifted or failed — with each slot's latest release and how long it took to reach
//! every org; filtered by system, environment and state, exported as CSV or XLSX, and a drift
//! scan of every org on demand.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use domain::{EnvironmentId, SystemId};
use serde::Deserialize;
use service::fleet::{FleetFilter, FleetSlot, OrgState};
use store::CatalogStore;

use super::export::neutralize;
use super::{Checked, Chrome, CsrfForm, PageResult, SignedIn, date, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new().route("/fleet", get(page)).route("/fleet/export", get(export)).route("/fleet/scan", post(scan))
}

#[derive(Debug, Default, Deserialize)]
pub struct FleetParams {
    #[serde(default)]
    system: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    state: String,
    /// `csv` or `xlsx`, for the export.
    #[serde(default)]
    format: String,
}

impl FleetParams {
    /// The filter, and the query string that keeps it (for the export links).
    fn filter(&self) -> (FleetFilter, String) {
        let filter = FleetFilter {
            system: SystemId::parse(&self.system).ok(),
            environment: EnvironmentId::parse(&self.environment).ok(),
            state: OrgState::parse(&self.state),
        };
        let mut query = Vec::new();
        if let Some(s) = &filter.system {
            query.push(format!("system={s}"));
        }
        if let Some(e) = &filter.environment {
            query.push(format!("environment={e}"));
        }
        if let Some(s) = filter.state {
            query.push(format!("state={}", s.as_str()));
        }
        (filter, query.join("&"))
    }
}

/// One cell of the matrix: an org's state in one slot.
struct Cell {
    state: &'static str,
    label: &'static str,
    release: String,
    /// Who changed what, or why it failed.
    detail: String,
}

/// One row: an org (by connection) and its cell in each slot (none: not bound there).
struct OrgRow {
    connection_id: String,
    connection: String,
    org: String,
    cells: Vec<Option<Cell>>,
}

/// A column: a system × environment and how its latest release went.
struct Column {
    name: String,
    latest: String,
    counts: String,
}

#[derive(Template)]
#[template(path = "fleet.html")]
struct FleetPage {
    chrome: Chrome,
    columns: Vec<Column>,
    rows: Vec<OrgRow>,
    systems: Vec<(String, String)>,
    environments: Vec<(String, String)>,
    states: Vec<(&'static str, &'static str)>,
    system: String,
    environment: String,
    state: String,
    query: String,
    can_scan: bool,
}

fn short(id: &str) -> String {
    let tail = id.rsplit('_').next().unwrap_or(id);
    format!("{}…", &tail[..8.min(tail.len())])
}

fn detail(o: &service::fleet::FleetOrg) -> String {
    match (&o.drift, &o.error) {
        (Some(d), _) => d.describe(),
        (None, Some(e)) => e.clone(),
        (None, None) => o.published_at.map(|t| format!("published {}", date(t))).unwrap_or_default(),
    }
}

/// How long, in words: `3.4 s`, `12 min`, `2.5 h`.
fn took(ms: i64) -> String {
    match ms {
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{} min", ms / 60_000),
        ms => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

fn column(slot: &FleetSlot) -> Column {
    let latest = match &slot.latest {
        None => "no release yet".to_string(),
        Some(l) => match l.took_ms {
            Some(ms) => format!("latest {} reached every org in {}", short(l.deployment_id.as_str()), took(ms)),
            None => format!(
                "latest {} ({}): {} org(s) run it",
                short(l.deployment_id.as_str()),
                l.status.as_str(),
                l.reached
            ),
        },
    };
    let counts = OrgState::ALL
        .into_iter()
        .filter_map(|s| match slot.count(s) {
            0 => None,
            n => Some(format!("{n} {}", s.label().to_lowercase())),
        })
        .collect::<Vec<_>>()
        .join(", ");
    Column { name: format!("{} × {}", slot.system_name, slot.environment_name), latest, counts }
}

/// The matrix: one row per org, one column per slot.
fn matrix(slots: &[FleetSlot]) -> (Vec<Column>, Vec<OrgRow>) {
    let columns = slots.iter().map(column).collect();
    let mut rows: BTreeMap<(String, String), OrgRow> = BTreeMap::new();
    for (i, slot) in slots.iter().enumerate() {
        for o in &slot.orgs {
            let row =
                rows.entry((o.connection_name.to_lowercase(), o.connection_id.to_string())).or_insert_with(|| OrgRow {
                    connection_id: o.connection_id.to_string(),
                    connection: o.connection_name.clone(),
                    org: o.org_name.clone().unwrap_or_default(),
                    cells: (0..slots.len()).map(|_| None).collect(),
                });
            row.cells[i] = Some(Cell {
                state: o.state.as_str(),
                label: o.state.label(),
                release: o.release.as_ref().map(|r| short(r.as_str())).unwrap_or_default(),
                detail: detail(o),
            });
        }
    }
    (columns, rows.into_values().collect())
}

async fn page(State(state): State<AppState>, signed_in: SignedIn, Query(p): Query<FleetParams>) -> PageResult {
    let account = signed_in.caller.account()?.clone();
    let (filter, query) = p.filter();
    let slots = service::fleet::fleet(&state, &signed_in.caller, &filter).await.map_err(ApiError::from)?;
    let (columns, rows) = matrix(&slots);
    let systems = state.store.systems(&account).await?.into_iter().map(|s| (s.id.to_string(), s.name)).collect();
    let environments =
        state.store.environments(&account).await?.into_iter().map(|e| (e.id.to_string(), e.name)).collect();
    let chrome = signed_in.chrome("fleet");
    let page = FleetPage {
        chrome: chrome.clone(),
        columns,
        rows,
        systems,
        environments,
        states: OrgState::ALL.into_iter().map(|s| (s.as_str(), s.label())).collect(),
        system: filter.system.as_ref().map(ToString::to_string).unwrap_or_default(),
        environment: filter.environment.as_ref().map(ToString::to_string).unwrap_or_default(),
        state: filter.state.map(|s| s.as_str().to_string()).unwrap_or_default(),
        query,
        can_scan: signed_in.caller.require_publisher().is_ok(),
    };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

const EXPORT_COLUMNS: [&str; 11] = [
    "System",
    "Environment",
    "Connection",
    "Org",
    "Org ID",
    "State",
    "Release",
    "Bundle SHA-256",
    "Published",
    "Latest release took",
    "Detail",
];

/// The matrix in long form (one line per org and slot), as the page's filter shows it.
fn export_rows(slots: &[FleetSlot]) -> Vec<[String; 11]> {
    let mut out = Vec::new();
    for slot in slots {
        let took_text = slot.latest.as_ref().and_then(|l| l.took_ms).map(took).unwrap_or_default();
        for o in &slot.orgs {
            out.push([
                slot.system_name.clone(),
                slot.environment_name.clone(),
                o.connection_name.clone(),
                o.org_name.clone().unwrap_or_default(),
                o.org_id.clone().unwrap_or_default(),
                o.state.label().to_string(),
                o.release.as_ref().map(ToString::to_string).unwrap_or_default(),
                o.sha256.clone().unwrap_or_default(),
                o.published_at.map(date).unwrap_or_default(),
                took_text.clone(),
                match (&o.drift, &o.error) {
                    (Some(d), _) => d.describe(),
                    (None, Some(e)) => e.clone(),
                    _ => String::new(),
                },
            ]);
        }
    }
    out
}

async fn export(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(p): Query<FleetParams>,
) -> Result<axum::response::Response, super::PageError> {
    let (filter, _) = p.filter();
    let slots = service::fleet::fleet(&state, &signed_in.caller, &filter).await.map_err(ApiError::from)?;
    let rows = export_rows(&slots);
    let (body, content_type, extension) = match p.format.as_str() {
        "xlsx" => (
            xlsx(&rows).map_err(|e| {
                tracing::error!(error = %e, "the fleet's XLSX export failed");
                ApiError::Internal
            })?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        _ => {
            let mut out = csv::Writer::from_writer(Vec::new());
            let write = |out: &mut csv::Writer<Vec<u8>>| -> Result<(), csv::Error> {
                out.write_record(EXPORT_COLUMNS)?;
                for row in &rows {
                    out.write_record(row.iter().map(|c| neutralize(c).into_owned()))?;
                }
                out.flush()?;
                Ok(())
            };
            write(&mut out).map_err(|e| {
                tracing::error!(error = %e, "the fleet's CSV export failed");
                ApiError::Internal
            })?;
            (out.into_inner().map_err(|_| ApiError::Internal)?, "text/csv; charset=utf-8", "csv")
        }
    };
    let disposition = format!("attachment; filename=\"lightbridge-fleet.{extension}\"");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(|_| ApiError::Internal)?),
        ],
        body,
    )
        .into_response())
}

fn xlsx(rows: &[[String; 11]]) -> std::io::Result<Vec<u8>> {
    let columns: Vec<super::xlsx::Column<'_>> = EXPORT_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, label)| super::xlsx::Column { label, width: if i == 10 { 60.0 } else { 20.0 } })
        .collect();
    let mut sheet = super::xlsx::Sheet::new(Vec::new(), "Fleet", &columns)?;
    for row in rows {
        for cell in row {
            sheet.text(&neutralize(cell));
        }
        sheet.end_row()?;
    }
    sheet.finish()
}

/// A drift scan of every org, now; back to the page with what it found.
async fn scan(State(state): State<AppState>, Checked(signed_in, _): Checked<CsrfForm>) -> PageResult {
    match service::drift::scan(&state, &signed_in.caller).await {
        Ok(r) => {
            let mut text = format!(
                "Scanned {} resource(s) in {} org(s) with {} Salesforce call(s): {} drifted.",
                r.resources, r.orgs, r.calls, r.drifted
            );
            for (org, why) in &r.failed {
                text.push_str(&format!(" Org {org} was not scanned: {why}."));
            }
            let kind = if r.drifted > 0 || !r.failed.is_empty() { "error" } else { "success" };
            Ok(redirect_with_flash("/fleet", kind, &text))
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}
