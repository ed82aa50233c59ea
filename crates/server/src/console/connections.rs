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
use store::{AccessStore, AuthKind, ConnectionStore, Cursor, Filters, ListQuery, SortKey};

use super::{Checked, Chrome, FieldErrors, PageResult, SignedIn, date, error_page, page, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;
use service::connections::{
    AuthInput, ConnectionInput, EditAuth, EditInput, create_connection, delete_connection, describe, edit_connection,
    label, parse_id, test_connection,
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
    match row_cell(r.as_ref(), key) {
        CellRef::Text(t) => CellValue::Text(t.to_string()),
        CellRef::Date(ms) => CellValue::Date(ms),
    }
}

/// A cell of a table row, borrowed from it (the exports write a million of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellRef<'a> {
    Text(&'a str),
    Date(i64),
}

pub fn row_cell<'a>(r: store::TableRowRef<'a>, key: &str) -> CellRef<'a> {
    match key {
        "connection_id" => CellRef::Text(r.id),
        "environment" => CellRef::Text(if r.org_type == "sandbox" { "Sandbox" } else { "Production" }),
        "account_name" => CellRef::Text(r.org_name.unwrap_or_default()),
        "created_at" if !r.legacy => CellRef::Date(r.created_at),
        "created_by" => CellRef::Text(r.created_by.unwrap_or_default()),
        "last_modified_at" if !r.legacy => CellRef::Date(r.modified_at),
        "last_modified_by" if !r.legacy => CellRef::Text(r.modified_by.unwrap_or_default()),
        "connection_status" if r.legacy => CellRef::Text(
            domain::ConnectionStatus::parse(r.status).map(domain::ConnectionStatus::label).unwrap_or_default(),
        ),
        "activity_status" if r.legacy => CellRef::Text(if r.active { "Active" } else { "Inactive" }),
        _ => CellRef::Text(""),
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
    /// How many rows match, as shown ("1,000+" when a short search stopped counting).
    pub total: String,
    pub first: u64,
    pub last: u64,
    /// Keyset paging's links: first, previous, next and last page (none where there is none).
    pub first_page: Option<String>,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub last_page: Option<String>,
    /// This page's own link (where bulk actions come back to).
    pub here: String,
    pub search: String,
    /// A search or a filter narrows the rows.
    pub narrowed: bool,
    /// The table with nothing narrowing it.
    pub clear: String,
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
    menus: FilterMenus,
    /// The filters and page size, kept by the search form (a search narrows, it does not reset).
    kept: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "connections_results.html")]
struct ResultsOnly {
    results: Results,
}

/// The table's query string: search, filters, sort, page size and where the page starts. Every
/// field is text, so an export's flattened parameters parse the same way.
#[derive(Debug, Default, Deserialize)]
pub struct TableParams {
    pub search: Option<String>,
    pub sort: Option<String>,
    pub order: Option<String>,
    pub per_page: Option<String>,
    /// Filters (#16): health, environment, legacy or new, sign-in method.
    pub status: Option<String>,
    pub environment: Option<String>,
    pub kind: Option<String>,
    pub auth: Option<String>,
    /// Keyset paging: the page after or before a row, or the last page.
    pub after: Option<String>,
    pub before: Option<String>,
    pub last: Option<String>,
    /// With `after` or `before`: how many rows come before the page (the link knew), so a deep
    /// page need not count them (#17). Shown only.
    pub at: Option<String>,
    pub highlight: Option<String>,
    pub partial: Option<String>,
}

/// Rows per page the table offers.
pub const PAGE_SIZES: [u32; 4] = [25, 50, 100, 200];

impl TableParams {
    pub fn sort_key(&self) -> SortKey {
        SORTS.iter().find(|(name, _)| Some(*name) == self.sort.as_deref()).map_or(SortKey::CreatedAt, |(_, k)| *k)
    }
    pub fn descending(&self) -> bool {
        self.order.as_deref() == Some("desc")
    }
    pub fn search(&self) -> Option<String> {
        self.search.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
    }
    pub fn per_page(&self) -> u32 {
        self.per_page.as_deref().and_then(|p| p.parse().ok()).filter(|p| PAGE_SIZES.contains(p)).unwrap_or(50)
    }
    /// The filters; a value that names nothing filters nothing (the form shows "All").
    pub fn filters(&self) -> Filters {
        Filters {
            status: self.status.as_deref().and_then(domain::ConnectionStatus::parse),
            org_type: match self.environment.as_deref() {
                Some("production") => Some(domain::OrgType::Production),
                Some("sandbox") => Some(domain::OrgType::Sandbox),
                _ => None,
            },
            legacy: match self.kind.as_deref() {
                Some("legacy") => Some(true),
                Some("new") => Some(false),
                _ => None,
            },
            auth: match self.auth.as_deref() {
                Some("oauth") => Some(AuthKind::OAuth),
                Some("jwt") => Some(AuthKind::Jwt),
                Some("client_credentials") => Some(AuthKind::ClientCredentials),
                _ => None,
            },
        }
    }
    /// The table as these parameters ask for it, without its page.
    pub fn view(&self) -> View {
        View {
            search: self.search(),
            filters: self.filters(),
            sort: self.sort_key(),
            descending: self.descending(),
            per_page: self.per_page(),
        }
    }
    /// Where the page starts.
    pub fn cursor(&self) -> Option<Cursor> {
        let id = |v: &Option<String>| v.as_deref().and_then(|id| domain::ConnectionId::parse(id).ok());
        if let Some(id) = id(&self.after) {
            Some(Cursor::After(id))
        } else if let Some(id) = id(&self.before) {
            Some(Cursor::Before(id))
        } else if self.last.is_some() {
            Some(Cursor::Last)
        } else {
            None
        }
    }
}

/// Each column's sort, by the column's key (#16: every column sorts).
const SORTS: [(&str, SortKey); 9] = [
    ("connection_id", SortKey::ConnectionId),
    ("environment", SortKey::Environment),
    ("account_name", SortKey::AccountName),
    ("created_at", SortKey::CreatedAt),
    ("created_by", SortKey::CreatedBy),
    ("last_modified_at", SortKey::ModifiedAt),
    ("last_modified_by", SortKey::ModifiedBy),
    ("connection_status", SortKey::Status),
    ("activity_status", SortKey::Activity),
];

fn sort_name(key: SortKey) -> &'static str {
    SORTS.iter().find(|(_, k)| *k == key).map_or("created_at", |(name, _)| *name)
}

/// What the table shows, apart from the page: kept in every link the page makes, and in its
/// exports.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub search: Option<String>,
    pub filters: Filters,
    pub sort: SortKey,
    pub descending: bool,
    pub per_page: u32,
}

impl View {
    /// The query pairs of this view (defaults left out).
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(s) = &self.search {
            out.push(("search", s.clone()));
        }
        let f = &self.filters;
        if let Some(status) = f.status {
            out.push(("status", status.as_str().to_string()));
        }
        if let Some(t) = f.org_type {
            out.push(("environment", service::connections::org_type_setting(t).to_string()));
        }
        if let Some(legacy) = f.legacy {
            out.push(("kind", if legacy { "legacy" } else { "new" }.to_string()));
        }
        if let Some(auth) = f.auth {
            out.push(("auth", auth.as_str().to_string()));
        }
        if self.sort != SortKey::CreatedAt {
            out.push(("sort", sort_name(self.sort).to_string()));
        }
        if self.descending {
            out.push(("order", "desc".to_string()));
        }
        if self.per_page != 50 {
            out.push(("per_page", self.per_page.to_string()));
        }
        out
    }

    /// A link to the table with this view, and `extra` pairs (a page's start).
    pub fn url(&self, extra: &[(&str, &str)]) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs() {
            q.append_pair(k, &v);
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        let q = q.finish();
        if q.is_empty() { TABLE.to_string() } else { format!("{TABLE}?{q}") }
    }

    /// The export of this view: every matching row, not one page.
    pub fn export_url(&self, format: &str) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("format", format);
        for (k, v) in self.pairs() {
            if k != "per_page" {
                q.append_pair(k, &v);
            }
        }
        format!("/connections/salesforce/export?{}", q.finish())
    }

    pub fn query(&self, cursor: Option<Cursor>) -> ListQuery {
        self.query_at(cursor, None)
    }

    /// [`View::query`] with the page's position as its link knew it.
    pub fn query_at(&self, cursor: Option<Cursor>, position: Option<u64>) -> ListQuery {
        ListQuery {
            search: self.search.clone(),
            filters: self.filters,
            sort: self.sort,
            descending: self.descending,
            offset: 0,
            limit: self.per_page,
            cursor,
            position,
        }
    }

    /// Whether anything narrows the table.
    pub fn narrowed(&self) -> bool {
        self.search.is_some() || !self.filters.is_empty()
    }
}

fn status_class(text: &str) -> &'static str {
    match text {
        "Logged in" | "Active" => "status status-ok",
        "Logged out" => "status status-bad",
        "Not available" | "Inactive" => "status status-warn",
        _ => "",
    }
}

/// Whether `back` (a form's way back) is a path of this site under `prefix`, safe to redirect
/// to: no other host (`//`, a scheme), no control character (a header cannot hold one).
pub fn safe_back(back: &str, prefix: &str) -> bool {
    back.starts_with(prefix) && !back.contains("//") && !back.contains('\\') && !back.chars().any(char::is_control)
}

/// One choice of a filter's menu: (value, label, selected).
pub type Choice = (&'static str, &'static str, bool);

/// The filters' menus as the form shows them.
#[derive(Debug, Clone)]
pub struct FilterMenus {
    pub status: Vec<Choice>,
    pub environment: Vec<Choice>,
    pub kind: Vec<Choice>,
    pub auth: Vec<Choice>,
    pub per_page: Vec<(u32, bool)>,
    /// How many filters narrow the table (shown on the narrow screens' Filters button).
    pub active: usize,
}

fn filter_menus(view: &View) -> FilterMenus {
    let f = &view.filters;
    let pick = |choices: &[(&'static str, &'static str)], current: Option<&str>| -> Vec<Choice> {
        let mut out = vec![("", "All", current.is_none())];
        out.extend(choices.iter().map(|(v, l)| (*v, *l, current == Some(*v))));
        out
    };
    FilterMenus {
        status: pick(
            &[("logged_in", "Logged in"), ("logged_out", "Logged out"), ("not_available", "Not available")],
            f.status.map(domain::ConnectionStatus::as_str),
        ),
        environment: pick(
            &[("production", "Production"), ("sandbox", "Sandbox")],
            f.org_type.map(service::connections::org_type_setting),
        ),
        kind: pick(
            &[("new", "New connections"), ("legacy", "Legacy connectors")],
            f.legacy.map(|l| if l { "legacy" } else { "new" }),
        ),
        auth: pick(
            &[("oauth", "OAuth"), ("jwt", "JWT bearer"), ("client_credentials", "Client credentials")],
            f.auth.map(AuthKind::as_str),
        ),
        per_page: PAGE_SIZES.iter().map(|p| (*p, *p == view.per_page)).collect(),
        active: [f.status.is_some(), f.org_type.is_some(), f.legacy.is_some(), f.auth.is_some()]
            .iter()
            .filter(|on| **on)
            .count(),
    }
}

async fn table(State(state): State<AppState>, signed_in: SignedIn, Query(params): Query<TableParams>) -> PageResult {
    let account = signed_in.caller.account()?.clone();
    let view = params.view();
    let highlight = params.highlight.as_deref().and_then(|id| domain::ConnectionId::parse(id).ok());
    let mut cursor = params.cursor();
    // After a save the new row is highlighted: show the page it is on (#16 item 3) — the page
    // from it, or the last page when it is among the last rows.
    if cursor.is_none()
        && let Some(id) = &highlight
    {
        cursor = Some(Cursor::From(id.clone()));
    }
    let known = params.at.as_deref().and_then(|a| a.parse::<u64>().ok());
    let mut found = state.store.list(&account, &view.query_at(cursor.clone(), known)).await?;
    if matches!(cursor, Some(Cursor::From(_))) && found.rows.len() < view.per_page as usize && found.position > 0 {
        found = state.store.list(&account, &view.query(Some(Cursor::Last))).await?;
    }
    // A page beside a row that is gone (deleted since): the first page instead.
    if found.rows.is_empty() && found.total > 0 && cursor.is_some() {
        found = state.store.list(&account, &view.query(None)).await?;
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
            let key_sort = SORTS.iter().find(|(name, _)| name == key).map_or(SortKey::CreatedAt, |(_, k)| *k);
            let current = key_sort == view.sort;
            let sorted = current.then_some(if view.descending { "descending" } else { "ascending" });
            let flipped = View { sort: key_sort, descending: current && !view.descending, ..view.clone() };
            Column { key, label, visible: visible.contains(key), sort: Some(flipped.url(&[])), sorted }
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
            highlight: highlight.as_ref() == Some(&c.id),
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
    let shown = rows.len() as u64;
    let more_before = found.position > 0;
    let more_after = found.position + shown < found.total || found.more;
    // Where the next and previous pages start, carried in their links (no count for them).
    let (next_at, prev_at) =
        ((found.position + shown).to_string(), found.position.saturating_sub(u64::from(view.per_page)).to_string());
    let results = Results {
        columns,
        first: if rows.is_empty() { 0 } else { found.position + 1 },
        last: found.position + shown,
        first_page: more_before.then(|| view.url(&[])),
        prev: rows.first().filter(|_| more_before).map(|r| view.url(&[("before", &r.id), ("at", &prev_at)])),
        next: rows.last().filter(|_| more_after).map(|r| view.url(&[("after", &r.id), ("at", &next_at)])),
        // A short search's count stops at its cap: no last page to jump to.
        last_page: (more_after && !found.more).then(|| view.url(&[("last", "1")])),
        here: match &cursor {
            Some(Cursor::After(id)) => view.url(&[("after", id.as_str())]),
            Some(Cursor::Before(id)) => view.url(&[("before", id.as_str())]),
            Some(Cursor::Last) => view.url(&[("last", "1")]),
            _ => view.url(&[]),
        },
        rows,
        total: if found.more { format!("{}+", domain::thousands(found.total)) } else { domain::thousands(found.total) },
        search: view.search.clone().unwrap_or_default(),
        narrowed: view.narrowed(),
        clear: TABLE.to_string(),
        can_manage: signed_in.can_manage(),
        csrf: signed_in.csrf.clone(),
    };
    if params.partial.as_deref() == Some("1") {
        return Ok(render(StatusCode::OK, &ResultsOnly { results }, None));
    }
    let chrome = signed_in.chrome("connections");
    Ok(page(
        &TablePage {
            export_csv: view.export_url("csv"),
            export_xlsx: view.export_url("xlsx"),
            search: view.search.clone().unwrap_or_default(),
            sort: sort_name(view.sort).to_string(),
            order: if view.descending { "desc" } else { "asc" }.to_string(),
            menus: filter_menus(&view),
            kept: view.pairs().into_iter().filter(|(k, _)| !matches!(*k, "search" | "sort" | "order")).collect(),
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
    /// The stored connection's activity (#16).
    activity: Option<ActivityView>,
}

/// A connection's activity as its page shows it (#16): facts about its tokens, then its
/// timeline, newest first.
#[derive(Debug, Clone)]
pub struct ActivityView {
    pub facts: Vec<(&'static str, String)>,
    pub events: Vec<EventView>,
}

#[derive(Debug, Clone)]
pub struct EventView {
    pub at: String,
    pub title: String,
    pub detail: Option<String>,
    pub by: String,
    /// `good`, `bad` or `neutral`.
    pub outcome: &'static str,
    pub link: Option<String>,
}

/// "3 hours ago", "in 2 days": how far `ms` is from `now`, roughly.
pub fn relative(now: i64, ms: i64) -> String {
    let (seconds, future) = if ms > now { ((ms - now) / 1000, true) } else { ((now - ms) / 1000, false) };
    let (n, unit) = match seconds {
        s if s < 60 => return if future { "in under a minute".into() } else { "just now".into() },
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    let unit = if n == 1 { unit.to_string() } else { format!("{unit}s") };
    if future { format!("in {n} {unit}") } else { format!("{n} {unit} ago") }
}

async fn activity_view(state: &AppState, signed_in: &SignedIn, id: &str) -> Result<ActivityView, ApiError> {
    let found = service::activity::activity(state, &signed_in.caller, id).await?;
    let now = state.clock.now_ms();
    let when = |ms: i64| format!("{} ({})", date(ms), relative(now, ms));
    let t = &found.tokens;
    let mut facts = Vec::new();
    if let Some(at) = t.granted_at {
        facts.push(("Signed in to Salesforce", when(at)));
    }
    facts.push(("Tokens last renewed", t.renewed_at.map_or_else(|| "not since it was saved".to_string(), when)));
    if let Some(at) = t.next_keep_alive {
        let due =
            if at <= now { format!("due now (the next sweep renews it; was due {})", date(at)) } else { when(at) };
        facts.push(("Next keep-alive", due));
    }
    facts.push(("Health last checked", t.checked_at.map_or_else(|| "never".to_string(), when)));
    let events = found
        .events
        .into_iter()
        .map(|e| EventView {
            at: date(e.at),
            title: e.title,
            detail: e.detail,
            by: e.by,
            outcome: e.outcome.as_str(),
            link: e.link,
        })
        .collect();
    Ok(ActivityView { facts, events })
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
        activity: None,
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
        activity: None,
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
    activity: Option<ActivityView>,
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
            activity: Some(activity_view(&state, &signed_in, &id).await?),
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
    page.activity = Some(activity_view(&state, &signed_in, &id).await?);
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
                        return_to: None,
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
        label: describe(&state, &c).await,
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
    /// Reconnect: the page to come back to.
    #[serde(default)]
    back: Option<String>,
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
    Checked(signed_in, form): Checked<CsrfForm>,
) -> PageResult {
    // From a system's Connectors tab, back to it afterwards (#16 item 10); else to the table.
    let return_to = form.back.filter(|b| safe_back(b, "/systems/"));
    let started =
        start_reconnect(&state, &signed_in.caller, &id, ReconnectInput { return_to, ..Default::default() }).await?;
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
    let name = describe(&state, &checked).await;
    let text = match (checked.status_reason, &checked.status_detail) {
        (Some(reason), _) if status != domain::ConnectionStatus::LoggedIn => {
            format!("{name}: {} — {}. {}", status.label(), reason.summary(), reason.fix())
        }
        (_, Some(detail)) => format!("{name}: {} — {detail}", status.label()),
        (_, None) => format!("{name}: {}", status.label()),
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
    state: &AppState,
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
    // Checked again where it is used: the sealed sign-in only ever holds what `reconnect` let in.
    let back = context.as_ref().and_then(|ctx| ctx.return_to.clone()).filter(|b| safe_back(b, "/systems/"));
    match (result, context) {
        (Ok(Finished::Created(c)), _) => saved(&c),
        (Ok(Finished::Reconnected(c)), _) => redirect_with_flash(
            &back.unwrap_or_else(|| format!("{TABLE}?highlight={}", c.id)),
            "success",
            &format!("Reconnected “{}”: new tokens, same connection.", describe(state, &c).await),
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
