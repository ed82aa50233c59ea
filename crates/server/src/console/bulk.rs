//! Bulk actions on the connections table (#16): check now, delete with one confirmation that
//! lists them, and export the selection. Each connection goes through the same service call as
//! when acted on alone, so the rules, the audit log and the messages are the same.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use domain::ConnectionStatus;
use store::ConnectionStore;

use super::connections::{TABLE, cell_text, table_row, visible_columns};
use super::export::{Rows, send};
use super::{Chrome, PageResult, SignedIn, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;
use service::connections::{check_many, delete_many, describe, parse_id};

/// At most one page of the largest size at once.
pub const MOST_AT_ONCE: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connections/salesforce/bulk", post(bulk))
        .route("/connections/salesforce/bulk/delete", post(delete))
}

/// A bulk form: its token, action, the rows chosen (repeated `id`) and the table's page to
/// come back to.
#[derive(Debug, Default)]
struct BulkForm {
    csrf: String,
    action: String,
    ids: Vec<String>,
    back: String,
    /// Delete: also remove the loader from the connections' orgs first (issue #15).
    remove_loader: bool,
}

impl BulkForm {
    /// Repeated `id=` fields: parsed by hand (serde_urlencoded has no sequences).
    fn parse(body: &[u8]) -> BulkForm {
        let mut form = BulkForm::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            match k.as_ref() {
                "csrf" => form.csrf = v.into_owned(),
                "action" => form.action = v.into_owned(),
                // One more than allowed is enough to refuse the lot; the rest is not read.
                "id" if form.ids.len() <= MOST_AT_ONCE && seen.insert(v.to_string()) => form.ids.push(v.into_owned()),
                "back" => form.back = v.into_owned(),
                "remove_loader" => form.remove_loader = true,
                _ => {}
            }
        }
        if !super::connections::safe_back(&form.back, TABLE) {
            form.back = TABLE.to_string();
        }
        form
    }
}

#[derive(Template)]
#[template(path = "bulk_delete.html")]
struct ConfirmDelete {
    chrome: Chrome,
    rows: Vec<(String, String, String)>,
    back: String,
    /// Orgs among them holding a system's loader (offered for removal first, as one delete does).
    loader_orgs: usize,
}

async fn bulk(State(state): State<AppState>, signed_in: SignedIn, body: Bytes) -> PageResult {
    let form = BulkForm::parse(&body);
    signed_in.check_csrf(&form.csrf)?;
    let account = signed_in.caller.account()?.clone();
    if form.ids.is_empty() {
        return Ok(redirect_with_flash(&form.back, "error", "Select at least one connection first."));
    }
    if form.ids.len() > MOST_AT_ONCE {
        let text = format!("Select at most {MOST_AT_ONCE} connections at once.");
        return Ok(redirect_with_flash(&form.back, "error", &text));
    }
    match form.action.as_str() {
        "check" => {
            signed_in.caller.require_connection_admin()?;
            let results = check_many(&state, &signed_in.caller, &form.ids).await;
            let (mut fine, mut problems) = (0, Vec::new());
            for (id, result) in results {
                match result {
                    Ok(c) if c.status == ConnectionStatus::LoggedIn => fine += 1,
                    Ok(c) => {
                        let why = c.status_reason.map(|r| r.summary().to_string()).or(c.status_detail.clone());
                        let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
                        problems.push(format!("{}: {}{why}", describe(&state, &c).await, c.status.label()))
                    }
                    Err(e) => problems.push(format!("{id}: {}", ApiError::from(e))),
                }
            }
            let checked = fine + problems.len();
            let mut text = format!("Checked {checked} connection{}: {fine} Logged in.", plural(checked));
            if !problems.is_empty() {
                text.push_str(&format!(" Needs attention — {}.", first_few(&problems)));
            }
            let kind = if problems.is_empty() { "success" } else { "error" };
            Ok(redirect_with_flash(&form.back, kind, &text))
        }
        "delete" => {
            signed_in.caller.require_connection_admin()?;
            let (mut rows, mut loader_orgs) = (Vec::new(), 0);
            for id in &form.ids {
                // A row deleted meanwhile (or not this account's) is simply not listed.
                let Ok(id) = parse_id(id) else { continue };
                if let Ok(c) = state.store.get(&account, &id).await {
                    let slots = store::CatalogStore::loader_slots(&*state.store, &account, &c.id).await?;
                    loader_orgs += usize::from(!slots.is_empty());
                    rows.push((c.id.to_string(), describe(&state, &c).await, cell_text(&c, "account_name")));
                }
            }
            if rows.is_empty() {
                return Ok(redirect_with_flash(
                    &form.back,
                    "error",
                    "None of the selected connections exists any more.",
                ));
            }
            let chrome = signed_in.chrome("connections");
            let page = ConfirmDelete { chrome: chrome.clone(), rows, back: form.back, loader_orgs };
            Ok(render(StatusCode::OK, &page, Some(&chrome)))
        }
        format @ ("csv" | "xlsx") => {
            let mut rows = Vec::new();
            for id in &form.ids {
                let Ok(id) = parse_id(id) else { continue };
                if let Ok(c) = state.store.get(&account, &id).await {
                    rows.push(table_row(&c));
                }
            }
            let columns = visible_columns(&state, &signed_in.caller.user.id).await?;
            let what = format!(", {} selected", rows.len());
            Ok(send(&state, &signed_in, account, Rows::Selected(rows), columns, format, &what).await?)
        }
        other => Err(ApiError::invalid("action", format!("{other:?} is not check, delete, csv or xlsx")).into()),
    }
}

async fn delete(State(state): State<AppState>, signed_in: SignedIn, body: Bytes) -> PageResult {
    let form = BulkForm::parse(&body);
    signed_in.check_csrf(&form.csrf)?;
    signed_in.caller.require_connection_admin()?;
    if form.ids.is_empty() || form.ids.len() > MOST_AT_ONCE {
        return Ok(redirect_with_flash(&form.back, "error", "Select between 1 and 200 connections to delete."));
    }
    let account = signed_in.caller.account()?.clone();
    // The loader comes out of each org first, while its connection can still sign in.
    let mut notes = Vec::new();
    if form.remove_loader {
        for id in &form.ids {
            let Ok(connection) = parse_id(id) else { continue };
            for (system, env) in store::CatalogStore::loader_slots(&*state.store, &account, &connection).await? {
                let (system, env) = (system.to_string(), env.to_string());
                match service::loader::remove_from_org(&state, &signed_in.caller, &system, &env, id).await {
                    Ok(_) => {}
                    Err(service::ServiceError::Invalid(errors)) => notes.extend(errors.into_iter().map(|(_, m)| m)),
                    Err(e) => notes.push(ApiError::from(e).to_string()),
                }
            }
        }
    }
    let (mut deleted, mut unconfirmed, mut failed) = (0, 0, Vec::new());
    for (id, result) in delete_many(&state, &signed_in.caller, &form.ids).await {
        match result {
            Ok(d) => {
                deleted += 1;
                unconfirmed += usize::from(!d.revoked);
            }
            // Gone already: what was asked for holds.
            Err(service::ServiceError::NotFound) => {}
            Err(e) => failed.push(format!("{id}: {}", ApiError::from(e))),
        }
    }
    let mut text = format!("Deleted {deleted} connection{}.", plural(deleted));
    if unconfirmed > 0 {
        text.push_str(&format!(
            " Salesforce did not confirm the revoke for {unconfirmed}: revoke their access in Setup → Connected Apps OAuth Usage."
        ));
    }
    if !failed.is_empty() {
        text.push_str(&format!(" Not deleted — {}.", first_few(&failed)));
    }
    if !notes.is_empty() {
        text.push_str(&format!(" The loader could not be removed — {}.", first_few(&notes)));
    }
    let kind = if failed.is_empty() && unconfirmed == 0 && notes.is_empty() { "success" } else { "error" };
    Ok(redirect_with_flash(&form.back, kind, &text))
}

/// The first five of a list, then how many more: a message (a cookie) stays short.
fn first_few(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
    if items.len() > SHOWN {
        text.push_str(&format!("; and {} more", items.len() - SHOWN));
    }
    text
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
