//! `GET /api/v1/audit` (B4): the account's audit log, newest first, with filters.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::{AuditQuery, AuditStore};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody};
use crate::AppState;
use crate::http::{AuditReader, Params};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// e.g. `connection.created`.
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    action: Option<String>,
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    target_id: Option<String>,
    /// Entries older than this sequence number (from `next_before`).
    before: Option<i64>,
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Entry {
    seq: i64,
    account_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    at: i64,
    /// The actor's email.
    actor: String,
    /// `user` (browser), `api_token`, `cli` or `system`.
    #[schema(value_type = String)]
    actor_kind: domain::ActorKind,
    action: String,
    target_kind: String,
    target_id: Option<String>,
    target_label: Option<String>,
    detail: Option<String>,
    remote_addr: Option<String>,
}

impl Entry {
    fn new(seq: i64, e: domain::AuditEntry) -> Self {
        Entry {
            seq,
            account_id: e.account_id.map(String::from),
            at: e.at,
            actor: e.actor,
            actor_kind: e.actor_kind,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            target_label: e.target_label,
            detail: e.detail,
            remote_addr: e.remote_addr,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct Page {
    items: Vec<Entry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    next_before: Option<i64>,
}

/// The account's audit log (B4), newest first (admins and owners).
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Page), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: AuditReader,
    Params(p): Params<AuditParams>,
) -> Result<Json<Page>, ApiError> {
    let account = caller.account()?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit is between 1 and 500"));
    }
    // No action or id has one; PostgreSQL would refuse a NUL in text outright.
    for (field, value) in [("action", &p.action), ("target_id", &p.target_id)] {
        if value.as_deref().is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(ApiError::invalid(field, format!("{field} cannot contain control characters")));
        }
    }
    let rows = state
        .store
        .audit(account, &AuditQuery { action: p.action, target_id: p.target_id, before: p.before, limit })
        .await?;
    let next_before = (rows.len() == limit as usize).then(|| rows.last().map(|(seq, _)| *seq)).flatten();
    Ok(Json(Page { items: rows.into_iter().map(|(seq, entry)| Entry::new(seq, entry)).collect(), next_before }))
}
