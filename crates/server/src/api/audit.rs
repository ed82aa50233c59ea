//! `GET /api/v1/audit` (B4): the account's audit log, newest first, with filters.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::{AuditQuery, AuditStore};

use super::{ApiError, Caller};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    action: Option<String>,
    target_id: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Entry {
    seq: i64,
    #[serde(flatten)]
    entry: domain::AuditEntry,
}

#[derive(Debug, Serialize)]
struct Page {
    items: Vec<Entry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    next_before: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let account = caller.require_connection_admin()?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is between 1 and 500"));
    }
    let rows = state
        .store
        .audit(account, &AuditQuery { action: p.action, target_id: p.target_id, before: p.before, limit })
        .await?;
    let next_before = (rows.len() == limit as usize).then(|| rows.last().map(|(seq, _)| *seq)).flatten();
    Ok(Json(Page { items: rows.into_iter().map(|(seq, entry)| Entry { seq, entry }).collect(), next_before }))
}
