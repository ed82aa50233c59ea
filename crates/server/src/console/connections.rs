//! The Salesforce Connections page (F6–F10) and the connection page (F11).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::{AuthMethod, Connection, ConnectionKind, LoginHost};
use serde::Deserialize;
use service::{Outcome, Report};
use store::{AccessStore, ConnectionStore, ListQuery, SortKey};

use super::{Checked, Chrome, FieldErrors, PageResult, SignedIn, date, error_page, page, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;
use service::connections::{
    AuthInput, ConnectionInput, EditAuth, EditInput, create_connection, delete_connection, edit_connection, label,
    parse_id, test_connection,
};
use service::oauth::{Finished, ReconnectInput, SignInContext, StartInput, start_oauth, start_reconnect};

pub const TABLE: &str = "/connections/salesforce";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(TABLE, get(table))
        .route("/connections/salesforce/columns", post(save_columns))
        .route("/connections/salesforce/export", get(super::export::connections))
        .route("/connections/salesforce/new", get(new_form).post(submit_new))
        .route("/connections/salesforce/name-available", get(name_available))
        .route("/connections/salesforce/approvals", get(approvals))
        .route("/connections/salesforce/{id}", get(show).post(submit_edit))
        .route("/connections/salesforce/{id}/delete", get(confirm_delete).post(delete))
        .route("/connections/salesforce/{id}/reconnect", post(reconnect))
        .route("/connections/salesforce/{id}/check", post(check))
        .route("/connections/salesforce/{id}/activity", post(activity))
}

/// F6's nine columns, in order: (key, label). The choice of visible ones is saved per user (F9).
pub const COLUMNS: [(&str, &str); 9] = [
    ("connection_id", "Connection ID"),
    ("environment", "Environment"),
    ("account_name", "Account name"),
    ("created_at", "Creation date"),
    ("created_by", "Created by"),
    ("last_modified_at", "Last modified date"),
    ("last_modified_by", "Last modified by"),
    ("connection_status", "Connection status"),
    ("activity_status", "Activity status"),
];

pub const COLUMNS_PREFERENCE: &str = "connections.columns";

/// The user's visible columns (all of them until they choose).
pub async fn visible_columns(state: &AppState, user: &domain::UserId) -> Result<Vec<&'static str>, ApiError> {
    let saved = state.store.preference(user, COLUMNS_PREFERENCE).await?;
    Ok(match saved {
        Some(list) => {
            let chosen: Vec<&str> = list.split(',').collect();
            let visible: Vec<&'static str> = COLUMNS.iter().map(|(k, _)| *k).filter(|k| chosen.contains(k)).collect();
            if visible.is_empty() { COLUMNS.iter().map(|(k, _)| *k).collect() } else { visible }
        }
        None => COLUMNS.iter().map(|(k, _)| *k).collect(),
    })
}

/// One cell's value: empty where the column does not apply to the row's kind (F6).
#[derive(Debug, Clone, PartialEq)]
pub enum CellValue {
    Text(String),
    /// Milliseconds since the epoch: real dates in XLSX.
    Date(i64),
}

pub fn cell_value(c: &Connection, key: &str) -> CellValue {
    row_value(&table_row(c), key)
}

/// The table's fields of a connection (what exports read straight from the store).
pub fn table_row(c: &Connection) -> store::TableRow {
    store::TableRow {
        id: c.id.to_string(),
        legacy: c.is_legacy(),
        org_type: service::connections::org_type_setting(c.org_type).to_string(),
        org_name: c.org.as_ref().map(|o| o.org_name.clone()),
        created_at: c.created_at,
        created_by: c.created_by.clone(),
        modified_at: c.modified_at,
        modified_by: c.modified_by.clone(),
        status: c.status.as_str().to_string(),
        active: !matches!(c.kind, ConnectionKind::Legacy { active: false, .. }),
    }
}

/// One cell of a table row: the same for the page, CSV and XLSX.
pub fn row_value(r: &store::TableRow, key: &str) -> CellValue {
    let text = |s: &str| CellValue::Text(s.to_string());
    match key {
        "connection_id" => CellValue::Text(r.id.clone()),
        "environment" => text(if r.org_type == "sandbox" { "Sandbox" } else { "Production" }),
        "account_name" => CellValue::Text(r.org_name.clone().unwrap_or_default()),
        "created_at" if !r.legacy => CellValue::Date(r.created_at),
        "created_by" => CellValue::Text(r.created_by.clone().unwrap_or_default()),
        "last_modified_at" if !r.legacy => CellValue::Date(r.modified_at),
        "last_modified_by" if !r.legacy => CellValue::Text(r.modified_by.clone().unwrap_or_default()),
        "connection_status" if r.legacy => {
            text(domain::ConnectionStatus::parse(&r.status).map(domain::ConnectionStatus::label).unwrap_or_default())
        }
        "activity_status" if r.legacy => text(if r.active { "Active" } else { "Inactive" }),
        _ => text(""),
    }
}

/// One cell's text as the table shows it.
pub fn cell_text(c: &Connection, key: &str) -> String {
    match cell_value(c, key) {
        CellValue::Text(t) => t,
        CellValue::Date(ms) => date(ms),
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    pub visible: bool,
    /// The sort link (for sortable columns), and whether it is the current sort.
    pub sort: Option<String>,
    pub sorted: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub key: &'static str,
    /// The column's label, shown beside the value when rows are cards (narrow screens).
    pub label: &'static str,
    pub text: String,
    /// A CSS class for status cells (`status-logged-in`, …).
    pub class: &'static str,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub legacy: bool,
    pub highlight: bool,
    pub cells: Vec<Cell>,
    /// A connection that is not Logged in, new or legacy (#16 item 4): its status, the
    /// status's CSS class, and what happened in a few words (the fix is on its page).
    pub health: Option<(&'static str, &'static str, String)>,
}

#[derive(Debug, Clone)]
pub struct Results {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub total: u64,
    pub first: u64,
    pub last: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub search: String,
    pub can_manage: bool,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct TablePage {
    chrome: Chrome,
    results: Results,
    export_csv: String,
    export_xlsx: String,
    search: String,
    sort: String,
    order: String,
}

#[derive(Template)]
#[template(path = "connections_results.html")]
struct ResultsOnly {
    results: Results,
}

#[derive(Debug, Default, Deserialize)]
pub struct TableParams {
    pub search: Option<String>,
    pub sort: Option<String>,
    pub order: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    pub highlight: Option<String>,
    pub partial: Option<u8>,
}

impl TableParams {
    pub fn sort_key(&self) -> SortKey {
        match self.sort.as_deref() {
            Some("account_name") => SortKey::AccountName,
            Some("last_modified_at") => SortKey::ModifiedAt,
            _ => SortKey::CreatedAt,
        }
    }
    pub fn descending(&self) -> bool {
        self.order.as_deref() == Some("desc")
    }
    pub fn search(&self) -> Option<String> {
        self.search.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
    }
}

fn sort_name(key: SortKey) -> &'static str {
    match key {
        SortKey::CreatedAt => "created_at",
        SortKey::AccountName => "account_name",
        SortKey::ModifiedAt => "last_modified_at",
    }
}

/// A link to the table with these settings (empty ones left out).
fn table_url(search: &Option<String>, sort: SortKey, desc: bool, page: u32, per_page: u32) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(s) = search {
        q.append_pair("search", s);
    }
    if sort != SortKey::CreatedAt {
        q.append_pair("sort", sort_name(sort));
    }
    if desc {
        q.append_pair("order", "desc");
    }
    if page > 1 {
        q.append_pair("page", &page.to_string());
    }
    if per_page != 50 {
        q.append_pair("per_page", &per_page.to_string());
    }
    let q = q.finish();
    if q.is_empty() { TABLE.to_string() } else { format!("{TABLE}?{q}") }
}

fn status_class(text: &str) -> &'static str {
    match text {
        "Logged in" | "Active" => "status status-ok",
        "Logged out" => "status status-bad",
        "Not available" | "Inactive" => "status status-warn",
        _ => "",
    }
}

async fn table(State(state): State<AppState>, signed_in: SignedIn, Query(params): Query<TableParams>) -> PageResult {
    let account = signed_in.caller.account()?.clone();
    let per_page = params.per_page.unwrap_or(50).clamp(10, 200);
    let mut page_no = params.page.unwrap_or(1).max(1);
    let (sort, desc, search) = (params.sort_key(), params.descending(), params.search());
    let query = |page_no: u32| ListQuery {
        search: search.clone(),
        sort,
        descending: desc,
        offset: (page_no - 1).saturating_mul(per_page),
        limit: per_page,
    };
    let mut found = state.store.list(&account, &query(page_no)).await?;
    // After a save the new row is highlighted: show the page it is on (#16 item 3), not page 1
    // of a long table sorted oldest first.
    if let (Some(id), None) = (params.highlight.as_deref(), params.page)
        && !found.rows.iter().any(|c| c.id.as_str() == id)
    {
        let pages = u32::try_from(found.total.div_ceil(u64::from(per_page))).unwrap_or(1).max(1);
        // Newest last by default: its page is the last one; otherwise look a few pages on.
        let candidates: Vec<u32> =
            if sort == SortKey::CreatedAt && !desc { vec![pages] } else { (2..=pages.min(10)).collect() };
        for candidate in candidates {
            let page = state.store.list(&account, &query(candidate)).await?;
            if page.rows.iter().any(|c| c.id.as_str() == id) {
                (found, page_no) = (page, candidate);
                break;
            }
        }
    }
    let visible = visible_columns(&state, &signed_in.caller.user.id).await?;
    // A legacy connector is named by the system × environment it publishes for.
    let slots: std::collections::HashMap<String, String> = if found.rows.iter().any(Connection::is_legacy) {
        let systems = store::CatalogStore::systems(&*state.store, &account).await?;
        let environments = store::CatalogStore::environments(&*state.store, &account).await?;
        let mut slots = std::collections::HashMap::new();
        for s in &systems {
            for e in &environments {
                slots.insert(format!("{}/{}", s.id, e.id), format!("{} × {}", s.name, e.name));
            }
        }
        slots
    } else {
        std::collections::HashMap::new()
    };
    let columns = COLUMNS
        .iter()
        .map(|(key, label)| {
            let sortable = match *key {
                "created_at" => Some(SortKey::CreatedAt),
                "account_name" => Some(SortKey::AccountName),
                "last_modified_at" => Some(SortKey::ModifiedAt),
                _ => None,
            };
            let sorted = sortable.filter(|k| *k == sort).map(|_| if desc { "descending" } else { "ascending" });
            Column {
                key,
                label,
                visible: visible.contains(key),
                sort: sortable.map(|k| table_url(&search, k, k == sort && !desc, 1, per_page)),
                sorted,
            }
        })
        .collect::<Vec<_>>();
    let rows = found
        .rows
        .iter()
        .map(|c| Row {
            id: c.id.to_string(),
            name: match &c.kind {
                ConnectionKind::New { name } => name.as_str().to_string(),
                ConnectionKind::Legacy { system_id, environment_id, .. } => {
                    slots.get(&format!("{system_id}/{environment_id}")).cloned().unwrap_or_default()
                }
            },
            legacy: c.is_legacy(),
            highlight: params.highlight.as_deref() == Some(c.id.as_str()),
            health: (c.status != domain::ConnectionStatus::LoggedIn).then(|| {
                let why = match c.status_reason {
                    Some(reason) => reason.summary().to_string(),
                    None => c.status_detail.clone().unwrap_or_else(|| "not checked yet".into()),
                };
                (c.status.label(), status_class(c.status.label()), why)
            }),
            cells: visible
                .iter()
                .map(|key| {
                    let text = cell_text(c, key);
                    let class = if key.ends_with("_status") { status_class(&text) } else { "" };
                    let label = COLUMNS.iter().find(|(k, _)| k == key).map_or("", |(_, l)| *l);
                    Cell { key, label, text, class }
                })
                .collect(),
        })
        .collect::<Vec<_>>();
    let offset = u64::from((page_no - 1) * per_page);
    let results = Results {
        columns,
        first: if rows.is_empty() { 0 } else { offset + 1 },
        last: offset + rows.len() as u64,
        prev: (page_no > 1).then(|| table_url(&search, sort, desc, page_no - 1, per_page)),
        next: (offset + (rows.len() as u64) < found.total)
            .then(|| table_url(&search, sort, desc, page_no + 1, per_page)),
        rows,
        total: found.total,
        search: search.clone().unwrap_or_default(),
        can_manage: signed_in.can_manage(),
        csrf: signed_in.csrf.clone(),
    };
    if params.partial == Some(1) {
        return Ok(render(StatusCode::OK, &ResultsOnly { results }, None));
    }
    let export = |format: &str| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("format", format);
        if let Some(s) = &search {
            q.append_pair("search", s);
        }
        q.append_pair("sort", sort_name(sort));
        q.append_pair("order", if desc { "desc" } else { "asc" });
        format!("/connections/salesforce/export?{}", q.finish())
    };
    let chrome = signed_in.chrome("connections");
    Ok(page(
        &TablePage {
            export_csv: export("csv"),
            export_xlsx: export("xlsx"),
            search: search.unwrap_or_default(),
            sort: sort_name(sort).to_string(),
            order: if desc { "desc" } else { "asc" }.to_string(),
            chrome: chrome.clone(),
            results,
        },
        Some(&chrome),
    ))
}

#[derive(Debug, Deserialize)]
struct ColumnsForm {
    csrf: String,
    #[serde(default)]
    columns: Vec<String>,
    back: Option<String>,
}

/// F9 Apply: saves the visible columns for this user (at least one stays).
async fn save_columns(State(state): State<AppState>, signed_in: SignedIn, body: axum::body::Bytes) -> PageResult {
    // Repeated `columns=` fields: parsed by hand (serde_urlencoded has no sequences).
    let mut form = ColumnsForm { csrf: String::new(), columns: Vec::new(), back: None };
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => form.csrf = v.into_owned(),
            "columns" => form.columns.push(v.into_owned()),
            "back" => form.back = Some(v.into_owned()),
            _ => {}
        }
    }
    signed_in.check_csrf(&form.csrf)?;
    let chosen: Vec<&str> = COLUMNS.iter().map(|(k, _)| *k).filter(|k| form.columns.iter().any(|c| c == k)).collect();
    let back = form.back.filter(|b| b.starts_with(TABLE)).unwrap_or_else(|| TABLE.to_string());
    if chosen.is_empty() {
        return Ok(redirect_with_flash(&back, "error", "Choose at least one column."));
    }
    state.store.set_preference(&signed_in.caller.user.id, COLUMNS_PREFERENCE, &chosen.join(",")).await?;
    Ok(redirect_with_flash(&back, "success", "Columns updated. Exports use the same columns."))
}

/// The connection page's fields, as typed (F11). Its `Debug` leaves the secret and the key out.
#[derive(Clone, Default, Deserialize)]
pub struct ConnectionForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub org_type: String,
    #[serde(default)]
    pub login_host: String,
    #[serde(default)]
    pub my_domain: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub consumer_key: String,
    #[serde(default)]
    pub consumer_secret: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub private_key: String,
    /// After a passing OAuth Test Connection: the handle of its kept grant, so Save needs no
    /// second sign-in at Salesforce.
    #[serde(default)]
    pub tested_grant: String,
}

impl std::fmt::Debug for ConnectionForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionForm")
            .field("action", &self.action)
            .field("name", &self.name)
            .field("org_type", &self.org_type)
            .field("login_host", &self.login_host)
            .field("method", &self.method)
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"[redacted]")
            .field("username", &self.username)
            .field("private_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl super::WithCsrf for ConnectionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl ConnectionForm {
    fn fresh() -> Self {
        ConnectionForm {
            org_type: "production".into(),
            login_host: "login".into(),
            method: "oauth".into(),
            ..Default::default()
        }
    }

    fn of(c: &Connection) -> Self {
        let (login_host, my_domain) = match &c.login_host {
            LoginHost::Login => ("login".to_string(), String::new()),
            LoginHost::Test => ("test".to_string(), String::new()),
            LoginHost::MyDomain(url) => ("mydomain".to_string(), url.clone()),
        };
        let (method, username) = match &c.auth {
            AuthMethod::OAuth { .. } => ("oauth", String::new()),
            AuthMethod::Jwt { username, .. } => ("jwt", username.clone()),
            AuthMethod::ClientCredentials { .. } => ("client_credentials", String::new()),
        };
        ConnectionForm {
            name: match &c.kind {
                ConnectionKind::New { name } => name.as_str().to_string(),
                ConnectionKind::Legacy { .. } => String::new(),
            },
            org_type: service::connections::org_type_setting(c.org_type).to_string(),
            login_host,
            my_domain,
            method: method.to_string(),
            consumer_key: c.auth.consumer_key().to_string(),
            username,
            ..Default::default()
        }
    }

    /// The login host as the API takes it.
    fn host(&self) -> String {
        match self.login_host.as_str() {
            "mydomain" => self.my_domain.trim().to_string(),
            other => other.to_string(),
        }
    }

    fn input(&self) -> ConnectionInput {
        let auth = match self.method.as_str() {
            "client_credentials" => AuthInput::ClientCredentials {
                consumer_key: self.consumer_key.clone(),
                consumer_secret: self.consumer_secret.clone().into(),
            },
            _ => AuthInput::Jwt {
                consumer_key: self.consumer_key.clone(),
                username: self.username.clone(),
                private_key: self.private_key.clone().into(),
            },
        };
        ConnectionInput { name: self.name.clone(), org_type: self.org_type.clone(), login_host: self.host(), auth }
    }

    fn start(&self, test_only: bool) -> StartInput {
        StartInput {
            name: self.name.clone(),
            org_type: self.org_type.clone(),
            login_host: self.host(),
            consumer_key: self.consumer_key.clone(),
            consumer_secret: self.consumer_secret.clone().into(),
            test_only,
        }
    }
}

/// One check step as the page shows it.
#[derive(Debug, Clone)]
pub struct StepView {
    pub title: String,
    pub outcome: &'static str,
    pub detail: String,
    pub fix: Option<String>,
}

fn steps(report: &Report) -> Vec<StepView> {
    report
        .steps
        .iter()
        .map(|s| StepView {
            title: s.title.clone(),
            outcome: match s.outcome {
                Outcome::Passed => "passed",
                Outcome::Failed => "failed",
                Outcome::Skipped => "skipped",
            },
            detail: s.detail.clone(),
            fix: s.fix.clone(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "connection.html")]
struct ConnectionPage {
    chrome: Chrome,
    /// `None` for a new connection.
    id: Option<String>,
    form: ConnectionForm,
    errors: FieldErrors,
    /// A message above the form (why it was not saved).
    problem: Option<String>,
    steps: Vec<StepView>,
    passed: Option<bool>,
    /// The stored connection, when editing.
    /// Status, its detail, and (when not healthy) what happened and the fix.
    health: Option<(String, Option<String>, Option<ReasonText>)>,
    /// Which connection a Reconnect would cost (the five-approval limit), when it would.
    reconnect_warning: Option<String>,
}

impl ConnectionPage {
    fn render_with(self, status: StatusCode) -> Response {
        let chrome = self.chrome.clone();
        render(status, &self, Some(&chrome))
    }
}

async fn new_form(signed_in: SignedIn) -> PageResult {
    signed_in.caller.require_connection_admin()?;
    let form = ConnectionForm::fresh();
    let page = ConnectionPage {
        chrome: signed_in.chrome("connections"),
        id: None,
        form,
        errors: FieldErrors::default(),
        problem: None,
        steps: Vec::new(),
        passed: None,
        health: None,
        reconnect_warning: None,
    };
    Ok(page.render_with(StatusCode::OK))
}

/// Test Connection or Save (F11). OAuth goes through Salesforce's sign-in (and comes back to
/// [`oauth_landing`]); JWT and client credentials are checked here.
async fn submit_new(State(state): State<AppState>, Checked(signed_in, form): Checked<ConnectionForm>) -> PageResult {
    let test = form.action == "test";
    let caller = &signed_in.caller;
    let result: Result<Response, ApiError> = if form.method == "oauth" && !test && !form.tested_grant.is_empty() {
        // Save right after a passing test: its grant, no second sign-in. Expired, used, or the
        // settings changed since: sign in as usual.
        match service::oauth::save_tested(&state, caller, &form.tested_grant, form.start(false)).await {
            Ok(c) => Ok(saved(&c)),
            Err(service::ServiceError::Conflict { .. }) => start_oauth(&state, caller, form.start(false))
                .await
                .map(|started| Redirect::to(&started.authorize_url).into_response())
                .map_err(ApiError::from),
            Err(e) => Err(ApiError::from(e)),
        }
    } else if form.method == "oauth" {
        start_oauth(&state, caller, form.start(test))
            .await
            .map(|started| Redirect::to(&started.authorize_url).into_response())
            .map_err(ApiError::from)
    } else if test {
        test_connection(&state, caller, form.input())
            .await
            .map(|report| {
                form_page(&signed_in, None, form.clone(), FieldErrors::default(), None, Some(&report))
                    .render_with(StatusCode::OK)
            })
            .map_err(ApiError::from)
    } else {
        create_connection(&state, caller, form.input()).await.map(|c| saved(&c)).map_err(ApiError::from)
    };
    Ok(result.unwrap_or_else(|e| refused(&signed_in, None, form, e)))
}

fn saved(c: &Connection) -> Response {
    redirect_with_flash(&home_of(c), "success", &format!("Connection “{}” saved: every check passed.", label(c)))
}

/// Where a connection's actions come back to: a legacy connector's system's Connectors tab
/// (where it is managed), else the table with its row highlighted.
fn home_of(c: &Connection) -> String {
    match &c.kind {
        ConnectionKind::Legacy { system_id, .. } => format!("/systems/{system_id}/connectors"),
        ConnectionKind::New { .. } => format!("{TABLE}?highlight={}", c.id),
    }
}

fn form_page(
    signed_in: &SignedIn,
    id: Option<String>,
    mut form: ConnectionForm,
    errors: FieldErrors,
    problem: Option<String>,
    report: Option<&Report>,
) -> ConnectionPage {
    form.csrf = String::new();
    ConnectionPage {
        chrome: signed_in.chrome("connections"),
        id,
        form,
        errors,
        problem,
        steps: report.map(steps).unwrap_or_default(),
        passed: report.map(Report::passed),
        health: None,
        reconnect_warning: None,
    }
}

/// A refused Test or Save: the form again, everything typed kept, each wrong field marked.
fn refused(signed_in: &SignedIn, id: Option<String>, form: ConnectionForm, error: ApiError) -> Response {
    match error {
        ApiError::Invalid(fields) => {
            // Salesforce's answer to the sign-in (consent denied, say) is no field of the form:
            // it is said as it is, not as "some fields need a fix" with none marked (#16 item 7).
            const FORM_FIELDS: [&str; 8] = [
                "name",
                "org_type",
                "login_host",
                "my_domain",
                "method",
                "consumer_key",
                "consumer_secret",
                "username",
            ];
            let on_form = |f: &str| {
                FORM_FIELDS.iter().any(|k| f == *k || f.ends_with(&format!(".{k}"))) || f.contains("private_key")
            };
            let problem = if fields.iter().any(|(f, _)| on_form(f)) {
                "Some fields need a fix; nothing was saved.".to_string()
            } else {
                fields.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join(" ")
            };
            form_page(signed_in, id, form, FieldErrors(fields), Some(problem), None)
                .render_with(StatusCode::UNPROCESSABLE_ENTITY)
        }
        ApiError::CheckFailed(reason, report) => {
            let problem = Some(format!("Not saved: the connection check failed. {reason}"));
            form_page(signed_in, id, form, FieldErrors::default(), problem, Some(&report))
                .render_with(StatusCode::UNPROCESSABLE_ENTITY)
        }
        ApiError::Conflict { field, message } => {
            let errors = match field {
                Some(field) => FieldErrors(vec![(field.into(), message.clone())]),
                None => FieldErrors::default(),
            };
            form_page(signed_in, id, form, errors, Some(message), None).render_with(StatusCode::CONFLICT)
        }
        other => error_page(&other, Some(&signed_in.chrome("connections"))),
    }
}

#[derive(Debug, Deserialize)]
struct ApprovalQuery {
    consumer_key: String,
}

/// The five-approval warning for a new OAuth connection through this app, as the admin types
/// the consumer key (issue #14).
async fn approvals(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<ApprovalQuery>,
) -> Result<Json<serde_json::Value>, super::PageError> {
    let warning = if q.consumer_key.trim().is_empty() {
        None
    } else {
        service::approvals::before_sign_in(&state, &signed_in.caller, &q.consumer_key, None).await?.warning()
    };
    Ok(Json(serde_json::json!({ "warning": warning })))
}

#[derive(Debug, Deserialize)]
struct NameQuery {
    name: String,
    except: Option<String>,
}

/// F11: is this name free in the account? (Checked as the admin types, and again on save.)
async fn name_available(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(q): Query<NameQuery>,
) -> Result<Json<serde_json::Value>, super::PageError> {
    let account = signed_in.caller.account()?;
    let except = q.except.as_deref().and_then(|id| domain::ConnectionId::parse(id).ok());
    let message = match domain::ConnectionName::parse(&q.name) {
        Err(domain::DomainError::Invalid { message, .. }) => Some(message),
        Err(e) => Some(e.to_string()),
        Ok(name) => state
            .store
            .name_taken(account, name.as_str(), except.as_ref())
            .await?
            .then(|| "another connection already has this name".to_string()),
    };
    Ok(Json(serde_json::json!({"available": message.is_none(), "message": message})))
}

/// A status reason as pages show it: what happened, and the fix.
type ReasonText = (&'static str, &'static str);

#[derive(Template)]
#[template(path = "legacy.html")]
struct LegacyPage {
    chrome: Chrome,
    id: String,
    account_name: String,
    environment: String,
    status: String,
    status_class: &'static str,
    detail: Option<String>,
    /// What happened and the fix, when not healthy.
    reason: Option<ReasonText>,
    active: bool,
    created_by: String,
    system_id: String,
}

/// A connection's page: the form for new connections (Edit), the facts and actions for
/// legacy connectors.
async fn show(State(state): State<AppState>, signed_in: SignedIn, Path(id): Path<String>) -> PageResult {
    let account = signed_in.caller.account()?.clone();
    let c = state.store.get(&account, &parse_id(&id)?).await?;
    let chrome = signed_in.chrome("connections");
    if let ConnectionKind::Legacy { system_id, active, .. } = &c.kind {
        let status = c.status.label().to_string();
        let page = LegacyPage {
            chrome: chrome.clone(),
            id: c.id.to_string(),
            account_name: cell_text(&c, "account_name"),
            environment: c.org_type.label().into(),
            status_class: status_class(&status),
            status,
            detail: c.status_detail.clone(),
            reason: c.status_reason.map(|r| (r.summary(), r.fix())),
            active: *active,
            created_by: c.created_by.clone().unwrap_or_default(),
            system_id: system_id.to_string(),
        };
        return Ok(render(StatusCode::OK, &page, Some(&chrome)));
    }
    let mut page =
        form_page(&signed_in, Some(c.id.to_string()), ConnectionForm::of(&c), FieldErrors::default(), None, None);
    page.health =
        Some((c.status.label().to_string(), c.status_detail.clone(), c.status_reason.map(|r| (r.summary(), r.fix()))));
    if let domain::AuthMethod::OAuth { consumer_key } = &c.auth
        && signed_in.caller.require_connection_admin().is_ok()
    {
        let view =
            service::approvals::before_sign_in(&state, &signed_in.caller, consumer_key, Some(c.id.as_str())).await?;
        page.reconnect_warning = view.warning();
    }
    Ok(page.render_with(StatusCode::OK))
}

/// Edit (F10) Save: a rename saves at once; changed sign-in settings are checked first (JWT,
/// client credentials) or go through Salesforce's sign-in again (OAuth).
async fn submit_edit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<ConnectionForm>,
) -> PageResult {
    let account = signed_in.caller.require_connection_admin()?.clone();
    let current = state.store.get(&account, &parse_id(&id)?).await?;
    let was = ConnectionForm::of(&current);
    let caller = &signed_in.caller;
    let settings_changed = form.org_type != was.org_type
        || form.host() != was.host()
        || form.consumer_key.trim() != was.consumer_key
        || form.username.trim() != was.username
        || !form.private_key.trim().is_empty()
        || !form.consumer_secret.is_empty();
    let rename = (form.name.trim() != was.name).then(|| form.name.clone());
    let result: Result<Response, ApiError> = match (&current.auth, settings_changed) {
        (AuthMethod::OAuth { .. }, true) => {
            // The name first, then the new sign-in (the callback keeps the id).
            let renamed = match rename {
                Some(name) => {
                    edit_connection(&state, caller, &id, EditInput { name: Some(name), ..Default::default() })
                        .await
                        .map(|_| ())
                }
                None => Ok(()),
            };
            match renamed {
                Ok(()) => start_reconnect(
                    &state,
                    caller,
                    &id,
                    ReconnectInput {
                        org_type: Some(form.org_type.clone()),
                        login_host: Some(form.host()),
                        consumer_key: Some(form.consumer_key.clone()),
                        consumer_secret: (!form.consumer_secret.is_empty())
                            .then(|| form.consumer_secret.clone().into()),
                    },
                )
                .await
                .map(|started| Redirect::to(&started.authorize_url).into_response())
                .map_err(ApiError::from),
                Err(e) => Err(e.into()),
            }
        }
        (_, changed) => {
            let auth = changed.then(|| EditAuth {
                consumer_key: Some(form.consumer_key.clone()),
                username: (form.method == "jwt").then(|| form.username.clone()),
                private_key: (!form.private_key.trim().is_empty()).then(|| form.private_key.clone().into()),
                consumer_secret: (!form.consumer_secret.is_empty()).then(|| form.consumer_secret.clone().into()),
            });
            let input = EditInput {
                name: rename,
                org_type: changed.then(|| form.org_type.clone()),
                login_host: changed.then(|| form.host()),
                active: None,
                auth,
            };
            edit_connection(&state, caller, &id, input)
                .await
                .map(|c| {
                    redirect_with_flash(
                        &format!("{TABLE}?highlight={}", c.id),
                        "success",
                        &format!("Connection “{}” saved.", label(&c)),
                    )
                })
                .map_err(ApiError::from)
        }
    };
    Ok(result.unwrap_or_else(|e| refused(&signed_in, Some(id.clone()), form, e)))
}

#[derive(Template)]
#[template(path = "delete.html")]
struct DeletePage {
    chrome: Chrome,
    id: String,
    label: String,
    account_name: String,
    /// Systems whose loader this connection's org holds (issue #15): offered for removal.
    loader_systems: usize,
}

/// F10 Delete, step one: a confirmation naming the connection.
async fn confirm_delete(State(state): State<AppState>, signed_in: SignedIn, Path(id): Path<String>) -> PageResult {
    let account = signed_in.caller.require_connection_admin()?.clone();
    let c = state.store.get(&account, &parse_id(&id)?).await?;
    let chrome = signed_in.chrome("connections");
    let loader_systems = store::CatalogStore::loader_slots(&*state.store, &account, &c.id).await?.len();
    let page = DeletePage {
        chrome: chrome.clone(),
        id: c.id.to_string(),
        label: label(&c),
        account_name: cell_text(&c, "account_name"),
        loader_systems,
    };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
    #[serde(default)]
    active: Option<String>,
    /// Delete: also remove the loader from the connection's org first.
    #[serde(default)]
    remove_loader: Option<String>,
}

impl super::WithCsrf for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<CsrfForm>,
) -> PageResult {
    // The loader comes out while the connection can still sign in.
    let mut notes = Vec::new();
    if form.remove_loader.is_some() {
        let account = signed_in.caller.require_connection_admin()?.clone();
        for (system, env) in store::CatalogStore::loader_slots(&*state.store, &account, &parse_id(&id)?).await? {
            let (system, env) = (system.to_string(), env.to_string());
            match service::loader::remove_from_org(&state, &signed_in.caller, &system, &env, &id).await {
                Ok(_) => {}
                Err(service::ServiceError::Invalid(errors)) => notes.extend(errors.into_iter().map(|(_, m)| m)),
                Err(e) => return Err(ApiError::from(e).into()),
            }
        }
    }
    let deleted = delete_connection(&state, &signed_in.caller, &id).await?;
    let kind = if deleted.revoked && notes.is_empty() { "success" } else { "error" };
    let message = match (form.remove_loader.is_some(), notes.is_empty()) {
        (false, _) => deleted.message,
        (true, true) => format!("{} The loader is out of its org.", deleted.message),
        (true, false) => {
            format!("{} The loader could not be removed from its org: {}", deleted.message, notes.join("; "))
        }
    };
    Ok(redirect_with_flash(TABLE, kind, &message))
}

/// F10 Reconnect: Salesforce's sign-in again; the callback keeps the connection id.
async fn reconnect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    let started = start_reconnect(&state, &signed_in.caller, &id, ReconnectInput::default()).await?;
    Ok(Redirect::to(&started.authorize_url).into_response())
}

/// Checks a stored connection now and says what it found.
async fn check(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    let checked = service::connections::check_now(&state, &signed_in.caller, &id).await?;
    let status = checked.status;
    let text = match (checked.status_reason, &checked.status_detail) {
        (Some(reason), _) if status != domain::ConnectionStatus::LoggedIn => {
            format!("{}: {} — {}. {}", label(&checked), status.label(), reason.summary(), reason.fix())
        }
        (_, Some(detail)) => format!("{}: {} — {detail}", label(&checked), status.label()),
        (_, None) => format!("{}: {}", label(&checked), status.label()),
    };
    let kind = if status == domain::ConnectionStatus::LoggedIn { "success" } else { "error" };
    Ok(redirect_with_flash(&format!("/connections/salesforce/{}", checked.id), kind, &text))
}

/// A legacy connector's activity (product.md §4): deactivate without deleting, or activate.
async fn activity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<CsrfForm>,
) -> PageResult {
    let active = form.active.as_deref() == Some("true");
    let c = edit_connection(&state, &signed_in.caller, &id, EditInput { active: Some(active), ..Default::default() })
        .await?;
    let text = if active {
        "Connector activated."
    } else {
        "Connector deactivated: publishing skips it until it is activated again."
    };
    // Activation is a legacy connector's: back to its system's Connectors tab.
    let back = match &c.kind {
        ConnectionKind::Legacy { .. } => home_of(&c),
        ConnectionKind::New { .. } => format!("/connections/salesforce/{}", c.id),
    };
    Ok(redirect_with_flash(&back, "success", text))
}

/// Where Salesforce sends the browser back (`/oauth/callback`, asking for HTML): saved or
/// reconnected → the table with the row highlighted; Test Connection or a failed check → the
/// connection page with every step and everything typed.
pub async fn oauth_landing(
    signed_in: Result<SignedIn, super::NotSignedIn>,
    context: Option<SignInContext>,
    result: Result<Finished, ApiError>,
) -> Response {
    let signed_in = match signed_in {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let form_of = |ctx: &SignInContext| ConnectionForm {
        name: ctx.name.clone(),
        org_type: ctx.org_type.map(service::connections::org_type_setting).unwrap_or("production").into(),
        login_host: match ctx.login_host.as_str() {
            "login" | "test" => ctx.login_host.clone(),
            _ => "mydomain".into(),
        },
        my_domain: match ctx.login_host.as_str() {
            "login" | "test" => String::new(),
            other => other.to_string(),
        },
        method: "oauth".into(),
        consumer_key: ctx.consumer_key.clone(),
        consumer_secret: ctx.consumer_secret.as_ref().map(|s| s.expose_secret().to_string()).unwrap_or_default(),
        ..Default::default()
    };
    match (result, context) {
        (Ok(Finished::Created(c)), _) => saved(&c),
        (Ok(Finished::Reconnected(c)), _) => redirect_with_flash(
            &format!("{TABLE}?highlight={}", c.id),
            "success",
            &format!("Reconnected “{}”: new tokens, same connection.", label(&c)),
        ),
        (Ok(Finished::Tested { report, grant }), Some(ctx)) => {
            let form = ConnectionForm { tested_grant: grant.unwrap_or_default(), ..form_of(&ctx) };
            form_page(&signed_in, None, form, FieldErrors::default(), None, Some(&report)).render_with(StatusCode::OK)
        }
        (Err(e), Some(ctx)) if ctx.reconnect.is_none() && ctx.legacy.is_none() => {
            refused(&signed_in, None, form_of(&ctx), e)
        }
        (Err(e), Some(ctx)) if ctx.legacy.is_some() => {
            let system = ctx.legacy.map(|(s, _)| s).unwrap_or_default();
            redirect_with_flash(&format!("/systems/{system}/connectors"), "error", &failure_text(&e))
        }
        (Err(e), Some(ctx)) => {
            let back =
                ctx.reconnect.map(|id| format!("/connections/salesforce/{id}")).unwrap_or_else(|| TABLE.to_string());
            redirect_with_flash(&back, "error", &failure_text(&e))
        }
        // No sign-in to go back to: its state was used (the callback page reloaded, say) or it
        // expired. Back to the table, saying so, rather than an error page.
        (Err(ApiError::Invalid(fields)), None) if fields.iter().any(|(f, _)| f == "state") => redirect_with_flash(
            TABLE,
            "info",
            "That Salesforce sign-in is finished or expired (a page reloaded?): the table shows what was saved.",
        ),
        (Err(e), None) => error_page(&e, Some(&signed_in.chrome("connections"))),
        (Ok(Finished::Tested { .. }), None) => Redirect::to(TABLE).into_response(),
    }
}

fn failure_text(e: &ApiError) -> String {
    match e {
        ApiError::Invalid(fields) => fields.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join(" "),
        ApiError::CheckFailed(reason, _) => format!("Not connected: the check failed. {reason}"),
        other => other.to_string(),
    }
}
