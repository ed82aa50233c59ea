//! The audit log page (B4) with filters and CSV export, and the users page where owners invite
//! people, change roles and remove them.

use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use domain::{AuditEntry, Role, User};
use serde::Deserialize;
use store::{AccessStore, AuditQuery, AuditStore};

use super::export::neutralize;
use super::{Checked, Chrome, CsrfForm, PageResult, SignedIn, date, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit", get(audit))
        .route("/audit/export", get(audit_csv))
        .route("/users", get(users).post(add_user))
        .route("/users/{id}/role", post(change_role))
        .route("/users/{id}/remove", get(confirm_remove).post(remove_user))
        .route("/users/invitations/{id}/withdraw", post(withdraw_invitation))
}

#[derive(Debug, Default, Deserialize)]
struct AuditParams {
    action: Option<String>,
    target_id: Option<String>,
    before: Option<i64>,
}

impl AuditParams {
    fn query(&self, limit: u32) -> AuditQuery {
        let clean = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        AuditQuery { action: clean(&self.action), target_id: clean(&self.target_id), before: self.before, limit }
    }
}

#[derive(Debug, Clone)]
struct EntryView {
    at: String,
    actor: String,
    via: &'static str,
    action: String,
    target: String,
    detail: String,
    from: String,
}

impl EntryView {
    fn of(e: &AuditEntry) -> Self {
        EntryView {
            at: date(e.at),
            actor: e.actor.clone(),
            via: match e.actor_kind {
                domain::ActorKind::User => "browser",
                domain::ActorKind::ApiToken => "API token",
                domain::ActorKind::Cli => "command line",
                domain::ActorKind::System => "Lightbridge",
            },
            action: e.action.clone(),
            target: match (&e.target_label, &e.target_id) {
                (Some(label), Some(id)) if label != id => format!("{label} ({id})"),
                (Some(label), _) => label.clone(),
                (None, Some(id)) => id.clone(),
                (None, None) => e.target_kind.clone(),
            },
            detail: e.detail.clone().unwrap_or_default(),
            from: e.remote_addr.clone().unwrap_or_default(),
        }
    }
}

/// The actions the filter offers (the log may hold others; any can be typed in the URL).
const ACTIONS: [&str; 16] = [
    "connection.created",
    "connection.tested",
    "connection.edited",
    "connection.reconnected",
    "connection.deleted",
    "connection.oauth_failed",
    "connections.exported",
    "system.created",
    "environment.created",
    "user.created",
    "user.role_changed",
    "user.deleted",
    "api_token.created",
    "api_token.revoked",
    "session.signed_in",
    "account.connectors_enabled",
];

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<EntryView>,
    actions: Vec<&'static str>,
    action: String,
    target_id: String,
    older: Option<String>,
    export: String,
}

fn audit_link(path: &str, p: &AuditParams, before: Option<i64>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(a) = p.action.as_deref().filter(|s| !s.is_empty()) {
        q.append_pair("action", a);
    }
    if let Some(t) = p.target_id.as_deref().filter(|s| !s.is_empty()) {
        q.append_pair("target_id", t);
    }
    if let Some(b) = before {
        q.append_pair("before", &b.to_string());
    }
    let q = q.finish();
    if q.is_empty() { path.to_string() } else { format!("{path}?{q}") }
}

async fn audit(State(state): State<AppState>, signed_in: SignedIn, Query(p): Query<AuditParams>) -> PageResult {
    let account = signed_in.caller.require_audit_reader()?.clone();
    let limit = 100;
    let rows = state.store.audit(&account, &p.query(limit)).await?;
    let older = (rows.len() == limit as usize)
        .then(|| rows.last().map(|(seq, _)| audit_link("/audit", &p, Some(*seq))))
        .flatten();
    let chrome = signed_in.chrome("audit");
    let page = AuditPage {
        chrome: chrome.clone(),
        entries: rows.iter().map(|(_, e)| EntryView::of(e)).collect(),
        actions: ACTIONS.to_vec(),
        action: p.action.clone().unwrap_or_default(),
        target_id: p.target_id.clone().unwrap_or_default(),
        older,
        export: audit_link("/audit/export", &p, None),
    };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

/// B4 "exportable": every matching entry as CSV, newest first, read 500 at a time.
async fn audit_csv(State(state): State<AppState>, signed_in: SignedIn, Query(p): Query<AuditParams>) -> PageResult {
    let account = signed_in.caller.require_audit_reader()?.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut query = p.query(500);
        let mut buffer: Vec<u8> = "\u{feff}".as_bytes().to_vec();
        let header = ["When (UTC)", "Who", "Via", "Action", "Target", "Detail", "From"];
        write_row(&mut buffer, header.iter().map(|s| s.to_string()).collect());
        loop {
            let rows = match store.audit(&account, &query).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "audit export stopped");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
            };
            for (_, e) in &rows {
                let v = EntryView::of(e);
                write_row(&mut buffer, vec![v.at, v.actor, v.via.into(), v.action, v.target, v.detail, v.from]);
            }
            let chunk = std::mem::take(&mut buffer);
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            match rows.last() {
                Some((seq, _)) if rows.len() == 500 => query.before = Some(*seq),
                _ => return,
            }
        }
    });
    let body =
        Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) }));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"lightbridge-audit-log.csv\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn write_row(buffer: &mut Vec<u8>, cells: Vec<String>) {
    let mut out = csv::Writer::from_writer(buffer);
    let _ = out.write_record(cells.iter().map(|c| neutralize(c).into_owned()));
    let _ = out.flush();
}

#[derive(Debug, Clone)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    role: &'static str,
    is_me: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    is_owner: bool,
    roles: [&'static str; 4],
    /// Invitations not accepted yet, with when each expires.
    invitations: Vec<(service::members::InvitationView, String)>,
    /// Shown once, right after inviting someone: the link to send them.
    created: Option<service::members::InvitationView>,
}

async fn users_page(
    state: &AppState,
    signed_in: &SignedIn,
    created: Option<service::members::InvitationView>,
) -> PageResult {
    let account = signed_in.caller.require_people_reader()?.clone();
    let users = state
        .store
        .users(&account)
        .await?
        .iter()
        .map(|u: &User| UserRow {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role.as_str(),
            is_me: u.id == signed_in.caller.user.id,
        })
        .collect();
    let chrome = signed_in.chrome("users");
    let page = UsersPage {
        chrome: chrome.clone(),
        users,
        is_owner: signed_in.caller.user.role == Role::Owner,
        roles: ["owner", "admin", "editor", "viewer"],
        invitations: service::members::invitations(state, &signed_in.caller)
            .await?
            .into_iter()
            .map(|i| {
                let expires = date(i.expires_at);
                (i, expires)
            })
            .collect(),
        created,
    };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

async fn users(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    users_page(&state, &signed_in, None).await
}

#[derive(Deserialize)]
struct AddUserForm {
    csrf: String,
    email: String,
    role: String,
}

impl super::WithCsrf for AddUserForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Invites a person: the link to send them is shown once on the page (never in a cookie or log).
async fn add_user(State(state): State<AppState>, Checked(signed_in, form): Checked<AddUserForm>) -> PageResult {
    match service::members::invite(&state, &signed_in.caller, &form.email, &form.role).await {
        Ok(invitation) => users_page(&state, &signed_in, Some(invitation)).await,
        Err(e) => refused(e.into()),
    }
}

async fn withdraw_invitation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    service::members::withdraw(&state, &signed_in.caller, &id).await?;
    Ok(redirect_with_flash("/users", "success", "The invitation is withdrawn: its link no longer works."))
}

/// A refused change as a message on the users page; anything else as an error page.
fn refused(e: ApiError) -> PageResult {
    match e {
        ApiError::Invalid(_) | ApiError::Conflict { .. } => {
            Ok(redirect_with_flash("/users", "error", &e.to_string_for_people()))
        }
        other => Err(other.into()),
    }
}

#[derive(Deserialize)]
struct RoleForm {
    csrf: String,
    role: String,
}

impl super::WithCsrf for RoleForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn change_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<RoleForm>,
) -> PageResult {
    match service::users::change_role(&state, &signed_in.caller, &id, &form.role).await {
        Ok(user) => Ok(redirect_with_flash("/users", "success", &format!("{} is {}.", user.email, user.role.as_str()))),
        Err(e) => refused(e.into()),
    }
}

#[derive(Template)]
#[template(path = "remove_user.html")]
struct RemovePage {
    chrome: Chrome,
    id: String,
    email: String,
}

/// Removing a person asks first (#16 item 7: it acted at once).
async fn confirm_remove(State(state): State<AppState>, Path(id): Path<String>, signed_in: SignedIn) -> PageResult {
    let user = service::users::member(&state, &signed_in.caller, &id).await?;
    let chrome = signed_in.chrome("users");
    let page = RemovePage { chrome: chrome.clone(), id: user.id.to_string(), email: user.email };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

async fn remove_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    match service::users::remove_user(&state, &signed_in.caller, &id).await {
        Ok(user) => Ok(redirect_with_flash(
            "/users",
            "success",
            &format!("{} was removed; their sessions and API tokens stopped working.", user.email),
        )),
        Err(e) => refused(e.into()),
    }
}
