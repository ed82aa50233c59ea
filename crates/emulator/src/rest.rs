//! REST and Tooling API: versions, limits, SOQL queries, `StaticResource` CRUD (and read-only
//! `User` and `Organization`), and `/resource/...` serving of ZIP static resources.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::clock::sf_datetime;
use crate::observe::{Actor, Operation};
use crate::server::Listener;
use crate::state::{QueryCursor, StaticResource, World};
use crate::{LATEST_API_VERSION, OLDEST_API_VERSION, Shared, ids, soql, state};

/// Who is calling and through which API version; set by [`authenticate`].
#[derive(Debug, Clone)]
pub struct Ctx {
    pub org_id: String,
    pub user_id: String,
    pub version: String,
    pub login_base: String,
}

/// `[{message, errorCode, fields?}]`, Salesforce's REST error body.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    SfError::new(status, code, message).into_response()
}

/// A Salesforce REST error as a value; rendered as `[{message, errorCode, fields}]`.
#[derive(Debug)]
pub struct SfError {
    status: StatusCode,
    code: String,
    message: String,
    fields: Option<Vec<String>>,
}

impl SfError {
    pub fn new(status: StatusCode, code: &str, message: &str) -> Self {
        SfError { status, code: code.to_string(), message: message.to_string(), fields: None }
    }
    pub fn fields(status: StatusCode, code: &str, message: &str, fields: &[&str]) -> Self {
        SfError { fields: Some(fields.iter().map(|f| f.to_string()).collect()), ..Self::new(status, code, message) }
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
    }
}

impl IntoResponse for SfError {
    fn into_response(self) -> Response {
        let body = match self.fields {
            Some(fields) => json!([{"message": self.message, "errorCode": self.code, "fields": fields}]),
            None => json!([{"message": self.message, "errorCode": self.code}]),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

fn not_found_body() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
}

pub async fn not_found() -> Response {
    not_found_body()
}

async fn method_not_allowed(method: Method) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        &format!("HTTP Method '{method}' not allowed. Allowed are GET,PATCH,DELETE,HEAD"),
    )
}

pub fn routes(shared: Shared) -> Router<Shared> {
    let versioned = Router::new()
        .route("/services/data/{v}", get(version_root))
        .route("/services/data/{v}/limits", get(limits))
        .route("/services/data/{v}/query", get(query))
        .route("/services/data/{v}/queryAll", get(query))
        .route("/services/data/{v}/query/{locator}", get(query_more))
        .route("/services/data/{v}/tooling/query", get(tooling_query))
        .route("/services/data/{v}/tooling/query/{locator}", get(query_more_tooling))
        .route("/services/data/{v}/sobjects", get(describe_global))
        .route("/services/data/{v}/tooling/sobjects", get(describe_global))
        .route("/services/data/{v}/sobjects/{object}", get(object_info).post(create))
        .route("/services/data/{v}/tooling/sobjects/{object}", get(object_info_tooling).post(create_tooling))
        .route("/services/data/{v}/sobjects/{object}/{id}", get(read).patch(update).delete(delete))
        .route(
            "/services/data/{v}/tooling/sobjects/{object}/{id}",
            get(read_tooling).patch(update_tooling).delete(delete_tooling),
        )
        .route("/services/data/{v}/sobjects/{object}/{id}/{field}", get(read_blob))
        .route("/services/data/{v}/tooling/sobjects/{object}/{id}/{field}", get(read_blob))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(shared, authenticate));
    Router::new()
        .route("/services/data", get(versions))
        .route("/resource/{ts}/{name}", get(serve_resource_root))
        .route("/resource/{ts}/{name}/{*path}", get(serve_resource))
        .merge(versioned)
}

fn version_label(major: u32) -> String {
    let n = major.saturating_sub(20);
    let season = ["Winter", "Spring", "Summer"][(n % 3) as usize];
    format!("{season} '{:02}", 11 + n / 3)
}

async fn versions() -> Response {
    let list: Vec<Value> = (OLDEST_API_VERSION..=LATEST_API_VERSION)
        .map(|v| json!({"label": version_label(v), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")}))
        .collect();
    let mut response = axum::Json(list).into_response();
    response.extensions_mut().insert(Operation("versions".into()));
    response
}

/// Version check, then the session, *API Enabled* and the daily allowance, in Salesforce's
/// order; adds `Sforce-Limit-Info` to every answer.
async fn authenticate(State(shared): State<Shared>, mut request: Request, next: Next) -> Response {
    let segment = request.uri().path().split('/').nth(3).unwrap_or_default().to_string();
    let version = if segment == "latest" {
        format!("{LATEST_API_VERSION}.0")
    } else {
        match segment.strip_prefix('v').and_then(|v| v.parse::<f64>().ok()) {
            Some(v) if v.fract() == 0.0 && (OLDEST_API_VERSION..=LATEST_API_VERSION).contains(&(v as u32)) => {
                format!("{}.0", v as u32)
            }
            Some(v) if v > 0.0 && (v as u32) < OLDEST_API_VERSION => {
                return error(
                    StatusCode::GONE,
                    "GONE",
                    "The requested version has been retired and is no longer available.",
                );
            }
            _ => return not_found_body(),
        }
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("OAuth ")))
        .map(|t| t.trim().to_string());
    let now = shared.clock.now_ms();
    let (ctx, used, max) = {
        let mut world = shared.world();
        let Some(session) = token.and_then(|t| world.touch_session(&t, now)) else {
            let mut r = error(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
            return r;
        };
        let actor = Actor { org_id: session.org_id.clone(), user_id: Some(session.user_id.clone()) };
        if !session.scopes.iter().any(|s| s == "api" || s == "full") {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "This session is not valid for use with the REST API",
            );
            r.extensions_mut().insert(actor);
            return r;
        }
        if !world.users.get(&session.user_id).is_some_and(|u| u.api_enabled) {
            let mut r = error(StatusCode::FORBIDDEN, "API_CURRENTLY_DISABLED", "API is disabled for this User");
            r.extensions_mut().insert(actor);
            return r;
        }
        let Some(org) = world.orgs.get_mut(&session.org_id) else {
            return not_found_body();
        };
        if org.api_used >= org.daily_api_limit {
            let mut r = error(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
            r.extensions_mut().insert(actor);
            return r;
        }
        org.api_used += 1;
        let ctx = Ctx { org_id: session.org_id, user_id: session.user_id, version, login_base: session.login_base };
        (ctx, org.api_used, org.daily_api_limit)
    };
    let actor = Actor { org_id: ctx.org_id.clone(), user_id: Some(ctx.user_id.clone()) };
    request.extensions_mut().insert(ctx);
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&format!("api-usage={used}/{max}")) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response.extensions_mut().insert(actor);
    response
}

fn op(mut response: Response, name: String) -> Response {
    response.extensions_mut().insert(Operation(name));
    response
}

async fn version_root(Extension(ctx): Extension<Ctx>, Extension(listener): Extension<Listener>) -> Response {
    let v = format!("/services/data/v{}", ctx.version);
    let mut map = Map::new();
    for name in [
        "tooling",
        "metadata",
        "eclair",
        "folders",
        "prechatForms",
        "contact-tracing",
        "jsonxform",
        "chatter",
        "tabs",
        "appMenu",
        "quickActions",
        "queryAll",
        "commerce",
        "wave",
        "iot",
        "analytics",
        "search",
        "smartdatadiscovery",
        "composite",
        "parameterizedSearch",
        "fingerprint",
        "theme",
        "nouns",
        "recent",
        "licensing",
        "limits",
        "process",
        "async-queries",
        "query",
        "match",
        "emailConnect",
        "compactLayouts",
        "knowledgeManagement",
        "sobjects",
        "actions",
        "support",
        "scheduling",
    ] {
        map.insert(name.to_string(), json!(format!("{v}/{name}")));
    }
    map.insert("identity".into(), json!(format!("{}/id/{}/{}", ctx.login_base, ctx.org_id, ctx.user_id)));
    let _ = listener;
    op(axum::Json(Value::Object(map)).into_response(), "version_root".into())
}

async fn limits(State(shared): State<Shared>, Extension(ctx): Extension<Ctx>) -> Response {
    let world = shared.world();
    let org = &world.orgs[&ctx.org_id];
    let used_storage = world.org_resource_bytes(&ctx.org_id) / (1024 * 1024);
    let dev = org.edition.contains("Developer");
    let pair = |max: u64, remaining: u64| json!({"Max": max, "Remaining": remaining});
    let fixed = |max: u64| pair(max, max);
    let body = json!({
        "ConcurrentAsyncGetReportInstances": fixed(200),
        "ConcurrentSyncReportRuns": fixed(20),
        "DailyApiRequests": pair(org.daily_api_limit, org.daily_api_limit.saturating_sub(org.api_used)),
        "DailyAsyncApexExecutions": fixed(250_000),
        "DailyBulkApiRequests": fixed(if dev { 5_000 } else { 15_000 }),
        "DailyDurableGenericStreamingApiEvents": fixed(10_000),
        "DailyDurableStreamingApiEvents": fixed(10_000),
        "DailyGenericStreamingApiEvents": fixed(10_000),
        "DailyStreamingApiEvents": fixed(10_000),
        "DailyWorkflowEmails": fixed(390),
        "DataStorageMB": fixed(if dev { 5 } else { 1024 }),
        "DurableStreamingApiConcurrentClients": fixed(20),
        "FileStorageMB": pair(if dev { 20 } else { 10_240 }, (if dev { 20u64 } else { 10_240 }).saturating_sub(used_storage as u64)),
        "HourlyAsyncReportRuns": fixed(1200),
        "HourlyDashboardRefreshes": fixed(200),
        "HourlyDashboardResults": fixed(5000),
        "HourlyDashboardStatuses": fixed(999_999_999),
        "HourlyODataCallout": fixed(10_000),
        "HourlySyncReportRuns": fixed(500),
        "HourlyTimeBasedWorkflow": fixed(50),
        "MassEmail": fixed(10),
        "SingleEmail": fixed(15),
        "StreamingApiConcurrentClients": fixed(20),
    });
    op(axum::Json(body).into_response(), "limits".into())
}

// ---- objects ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Data,
    Tooling,
}

impl Api {
    fn path(self, version: &str) -> String {
        match self {
            Api::Data => format!("/services/data/v{version}"),
            Api::Tooling => format!("/services/data/v{version}/tooling"),
        }
    }
}

const STATIC_RESOURCE_FIELDS: &[&str] = &[
    "Id",
    "NamespacePrefix",
    "Name",
    "ContentType",
    "BodyLength",
    "Body",
    "Description",
    "CacheControl",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
];
const TOOLING_STATIC_RESOURCE_FIELDS: &[&str] = &[
    "Id",
    "NamespacePrefix",
    "Name",
    "ContentType",
    "BodyLength",
    "Body",
    "Description",
    "CacheControl",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
    "ManageableState",
];
const ORGANIZATION_FIELDS: &[&str] = &[
    "Id",
    "Name",
    "Division",
    "InstanceName",
    "IsSandbox",
    "TrialExpirationDate",
    "NamespacePrefix",
    "OrganizationType",
    "PrimaryContact",
    "DefaultLocaleSidKey",
    "LanguageLocaleKey",
    "TimeZoneSidKey",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
];
const USER_FIELDS: &[&str] = &[
    "Id",
    "Username",
    "Email",
    "Name",
    "FirstName",
    "LastName",
    "IsActive",
    "OrganizationId",
    "UserType",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
];
const PERMISSION_ACCESS_FIELDS: &[&str] = &[
    "Id",
    "LastCacheUpdate",
    "PermissionsApiEnabled",
    "PermissionsCustomizeApplication",
    "PermissionsModifyAllData",
    "PermissionsViewSetup",
    "PermissionsViewAllData",
    "PermissionsManageUsers",
];

/// The canonical name and fields of an object this API serves.
fn object_def(api: Api, name: &str) -> Option<(&'static str, &'static [&'static str])> {
    let all: &[(&str, &[&str])] = match api {
        Api::Data => &[
            ("StaticResource", STATIC_RESOURCE_FIELDS),
            ("Organization", ORGANIZATION_FIELDS),
            ("User", USER_FIELDS),
            ("UserPermissionAccess", PERMISSION_ACCESS_FIELDS),
        ],
        Api::Tooling => &[
            ("StaticResource", TOOLING_STATIC_RESOURCE_FIELDS),
            ("Organization", ORGANIZATION_FIELDS),
            ("User", USER_FIELDS),
        ],
    };
    all.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).copied()
}

fn attributes(api: Api, version: &str, object: &str, id: &str) -> Value {
    json!({"type": object, "url": format!("{}/sobjects/{object}/{id}", api.path(version))})
}

fn resource_row(api: Api, version: &str, r: &StaticResource) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("attributes".into(), attributes(api, version, "StaticResource", &r.id));
    m.insert("Id".into(), json!(r.id));
    m.insert("NamespacePrefix".into(), Value::Null);
    m.insert("Name".into(), json!(r.name));
    m.insert("ContentType".into(), json!(r.content_type));
    m.insert("BodyLength".into(), json!(r.body.len()));
    m.insert("Body".into(), json!(format!("{}/sobjects/StaticResource/{}/Body", api.path(version), r.id)));
    m.insert("Description".into(), r.description.as_ref().map_or(Value::Null, |d| json!(d)));
    m.insert("CacheControl".into(), json!(r.cache_control));
    m.insert("CreatedDate".into(), json!(sf_datetime(r.created_ms)));
    m.insert("CreatedById".into(), json!(r.created_by));
    m.insert("LastModifiedDate".into(), json!(sf_datetime(r.modified_ms)));
    m.insert("LastModifiedById".into(), json!(r.modified_by));
    m.insert("SystemModstamp".into(), json!(sf_datetime(r.modified_ms)));
    if api == Api::Tooling {
        m.insert("ManageableState".into(), json!("unmanaged"));
    }
    m
}

fn org_row(api: Api, version: &str, org: &state::Org) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("attributes".into(), attributes(api, version, "Organization", &org.id));
    m.insert("Id".into(), json!(org.id));
    m.insert("Name".into(), json!(org.name));
    m.insert("Division".into(), Value::Null);
    m.insert("InstanceName".into(), json!(org.instance_name));
    m.insert("IsSandbox".into(), json!(org.sandbox));
    m.insert("TrialExpirationDate".into(), Value::Null);
    m.insert("NamespacePrefix".into(), Value::Null);
    m.insert("OrganizationType".into(), json!(org.edition));
    m.insert("PrimaryContact".into(), Value::Null);
    m.insert("DefaultLocaleSidKey".into(), json!("en_US"));
    m.insert("LanguageLocaleKey".into(), json!("en_US"));
    m.insert("TimeZoneSidKey".into(), json!("America/Los_Angeles"));
    m.insert("CreatedDate".into(), json!(sf_datetime(org.created_ms)));
    m.insert("LastModifiedDate".into(), json!(sf_datetime(org.created_ms)));
    m.insert("SystemModstamp".into(), json!(sf_datetime(org.created_ms)));
    m
}

fn user_row(api: Api, version: &str, user: &state::User, org: &state::Org) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("attributes".into(), attributes(api, version, "User", &user.id));
    m.insert("Id".into(), json!(user.id));
    m.insert("Username".into(), json!(user.username));
    m.insert("Email".into(), json!(user.email));
    m.insert("Name".into(), json!(user.display_name()));
    m.insert("FirstName".into(), json!(user.first_name));
    m.insert("LastName".into(), json!(user.last_name));
    m.insert("IsActive".into(), json!(user.active));
    m.insert("OrganizationId".into(), json!(user.org_id));
    m.insert("UserType".into(), json!("Standard"));
    m.insert("CreatedDate".into(), json!(sf_datetime(org.created_ms)));
    m.insert("LastModifiedDate".into(), json!(sf_datetime(org.created_ms)));
    m.insert("SystemModstamp".into(), json!(sf_datetime(org.created_ms)));
    m
}

fn permission_row(world: &World, ctx: &Ctx, now: i64) -> Map<String, Value> {
    let user = &world.users[&ctx.user_id];
    let org = &world.orgs[&ctx.org_id];
    let id = ids::make(ids::PERMISSION_ACCESS_PREFIX, &org.pod, 1);
    let mut m = Map::new();
    m.insert("attributes".into(), json!({"type": "UserPermissionAccess", "url": format!("/services/data/v{}/sobjects/UserPermissionAccess/{id}", ctx.version)}));
    m.insert("Id".into(), json!(id));
    m.insert("LastCacheUpdate".into(), json!(sf_datetime(now)));
    m.insert("PermissionsApiEnabled".into(), json!(user.api_enabled));
    m.insert("PermissionsCustomizeApplication".into(), json!(user.customize_application));
    m.insert("PermissionsModifyAllData".into(), json!(user.customize_application));
    m.insert("PermissionsViewSetup".into(), json!(true));
    m.insert("PermissionsViewAllData".into(), json!(user.customize_application));
    m.insert("PermissionsManageUsers".into(), json!(user.customize_application));
    m
}

/// Every record of `object` the caller can see, as full rows.
fn rows(world: &World, ctx: &Ctx, api: Api, object: &str, now: i64) -> Vec<Map<String, Value>> {
    match object {
        "StaticResource" => {
            let mut list: Vec<&StaticResource> = world.org_resources(&ctx.org_id).collect();
            list.sort_by(|a, b| a.id.cmp(&b.id));
            list.into_iter().map(|r| resource_row(api, &ctx.version, r)).collect()
        }
        "Organization" => vec![org_row(api, &ctx.version, &world.orgs[&ctx.org_id])],
        "User" => {
            let org = &world.orgs[&ctx.org_id];
            let mut users: Vec<&state::User> = world.users.values().filter(|u| u.org_id == ctx.org_id).collect();
            users.sort_by(|a, b| a.id.cmp(&b.id));
            users.into_iter().map(|u| user_row(api, &ctx.version, u, org)).collect()
        }
        "UserPermissionAccess" => vec![permission_row(world, ctx, now)],
        _ => Vec::new(),
    }
}

/// Keeps `attributes` and the named fields, in the order written.
fn project(row: &Map<String, Value>, fields: &[&str]) -> Value {
    let mut out = Map::new();
    if let Some(a) = row.get("attributes") {
        out.insert("attributes".into(), a.clone());
    }
    for f in fields {
        out.insert((*f).to_string(), row.get(*f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

const DEFAULT_BATCH: usize = 2000;

fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|p| p.trim().strip_prefix("batchSize=")))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .map_or(DEFAULT_BATCH, |n| n.clamp(200, DEFAULT_BATCH))
}

async fn query(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    run_query(&shared, &ctx, Api::Data, &headers, &q)
}

async fn tooling_query(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    run_query(&shared, &ctx, Api::Tooling, &headers, &q)
}

fn run_query(shared: &Shared, ctx: &Ctx, api: Api, headers: &HeaderMap, q: &HashMap<String, String>) -> Response {
    let label = if api == Api::Tooling { "tooling_query" } else { "query" };
    let Some(text) = q.get("q").filter(|t| !t.trim().is_empty()) else {
        return op(
            error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", "A query string has to be specified"),
            label.into(),
        );
    };
    let parsed = match soql::parse(text) {
        Ok(p) => p,
        Err(e) => return op(error(StatusCode::BAD_REQUEST, e.code, &e.message), label.into()),
    };
    let Some((object, known)) = object_def(api, &parsed.object.name) else {
        let e = soql::SoqlError::invalid_type(text, &parsed.object);
        return op(error(StatusCode::BAD_REQUEST, e.code, &e.message), label.into());
    };
    if let Err(e) = soql::check_fields(text, &parsed, object, known) {
        return op(error(StatusCode::BAD_REQUEST, e.code, &e.message), label.into());
    }
    let fields: Vec<&str> = parsed.fields.iter().filter_map(|f| soql::canonical(known, &f.name)).collect();
    let label = format!("{label}:{object}");
    if q.get("columns").is_some_and(|c| c == "true") {
        return op(axum::Json(column_metadata(object, &fields)).into_response(), label);
    }
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    let hits = soql::run(&parsed, rows(&world, ctx, api, object, now));
    if parsed.count {
        return op(axum::Json(json!({"totalSize": hits.len(), "done": true, "records": []})).into_response(), label);
    }
    let records: Vec<Value> = hits.iter().map(|r| project(r, &fields)).collect();
    let batch = batch_size(headers);
    op(page(&mut world, ctx, api, Arc::new(records), 0, batch), label)
}

fn page(world: &mut World, ctx: &Ctx, api: Api, records: Arc<Vec<Value>>, from: usize, batch: usize) -> Response {
    let total = records.len();
    let end = (from + batch).min(total);
    let slice: Vec<Value> = records[from.min(total)..end].to_vec();
    let mut body = Map::new();
    body.insert("totalSize".into(), json!(total));
    body.insert("done".into(), json!(end >= total));
    if end < total {
        let locator = world.store_cursor(QueryCursor { org_id: ctx.org_id.clone(), records, batch });
        body.insert("nextRecordsUrl".into(), json!(format!("{}/query/{locator}-{end}", api.path(&ctx.version))));
    }
    body.insert("records".into(), Value::Array(slice));
    axum::Json(Value::Object(body)).into_response()
}

async fn query_more(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, locator)): Path<(String, String)>,
) -> Response {
    more(&shared, &ctx, Api::Data, &locator)
}

async fn query_more_tooling(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, locator)): Path<(String, String)>,
) -> Response {
    more(&shared, &ctx, Api::Tooling, &locator)
}

fn more(shared: &Shared, ctx: &Ctx, api: Api, locator: &str) -> Response {
    let mut world = shared.world();
    let (id, from) = locator.rsplit_once('-').unwrap_or((locator, "0"));
    let cursor = world.cursors.get(id).filter(|c| c.org_id == ctx.org_id).cloned();
    let (Some(cursor), Ok(from)) = (cursor, from.parse::<usize>()) else {
        return op(
            error(StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR", "invalid query locator"),
            "query_more".into(),
        );
    };
    op(page(&mut world, ctx, api, cursor.records, from, cursor.batch), "query_more".into())
}

fn column_metadata(object: &str, fields: &[&str]) -> Value {
    let columns: Vec<Value> = fields
        .iter()
        .map(|f| {
            let (apex, boolean, number) = match *f {
                "Id" | "CreatedById" | "LastModifiedById" | "OrganizationId" => ("Id", false, false),
                "IsSandbox" | "IsActive" => ("Boolean", true, false),
                "BodyLength" => ("Integer", false, true),
                f if f.starts_with("Permissions") => ("Boolean", true, false),
                f if f.ends_with("Date") || f == "SystemModstamp" || f == "LastCacheUpdate" => {
                    ("Datetime", false, false)
                }
                _ => ("String", false, false),
            };
            json!({
                "aggregate": false,
                "apexType": apex,
                "booleanType": boolean,
                "columnName": f,
                "custom": false,
                "displayName": f,
                "foreignKeyName": null,
                "insertable": matches!(*f, "Name" | "ContentType" | "Body" | "Description" | "CacheControl"),
                "joinColumns": [],
                "numberType": number,
                "textType": apex == "String",
                "updatable": matches!(*f, "Name" | "ContentType" | "Body" | "Description" | "CacheControl"),
            })
        })
        .collect();
    json!({
        "columnMetadata": columns,
        "entityName": object,
        "groupBy": false,
        "idSelected": fields.contains(&"Id"),
        "keyPrefix": match object { "StaticResource" => Some(ids::STATIC_RESOURCE_PREFIX), "Organization" => Some(ids::ORG_PREFIX), "User" => Some(ids::USER_PREFIX), _ => None },
    })
}

async fn describe_global(Extension(ctx): Extension<Ctx>, request_path: axum::extract::OriginalUri) -> Response {
    let api = if request_path.path().contains("/tooling/") { Api::Tooling } else { Api::Data };
    let objects: Vec<Value> = ["StaticResource", "Organization", "User"]
        .iter()
        .map(|name| describe_summary(api, &ctx.version, name))
        .collect();
    op(
        axum::Json(json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})).into_response(),
        "describe_global".into(),
    )
}

fn describe_summary(api: Api, version: &str, name: &str) -> Value {
    let writable = name == "StaticResource";
    let base = format!("{}/sobjects/{name}", api.path(version));
    json!({
        "name": name, "label": name, "labelPlural": format!("{name}s"), "custom": false,
        "keyPrefix": match name { "StaticResource" => ids::STATIC_RESOURCE_PREFIX, "Organization" => ids::ORG_PREFIX, _ => ids::USER_PREFIX },
        "layoutable": false, "activateable": false, "updateable": writable, "searchable": false,
        "createable": writable, "customSetting": false, "deletable": writable, "deprecatedAndHidden": false,
        "feedEnabled": false, "mergeable": false, "queryable": true, "replicateable": true,
        "retrieveable": true, "undeletable": false, "triggerable": false,
        "urls": {"sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}")},
    })
}

async fn object_info(Extension(ctx): Extension<Ctx>, Path((_, object)): Path<(String, String)>) -> Response {
    info(&ctx, Api::Data, &object)
}

async fn object_info_tooling(Extension(ctx): Extension<Ctx>, Path((_, object)): Path<(String, String)>) -> Response {
    info(&ctx, Api::Tooling, &object)
}

fn info(ctx: &Ctx, api: Api, object: &str) -> Response {
    let Some((name, _)) = object_def(api, object).filter(|(n, _)| *n != "UserPermissionAccess") else {
        return not_found_body();
    };
    op(
        axum::Json(json!({"objectDescribe": describe_summary(api, &ctx.version, name), "recentItems": []}))
            .into_response(),
        format!("describe:{name}"),
    )
}

fn describe(api: Api, version: &str, name: &str, fields: &[&str]) -> Value {
    let mut summary = describe_summary(api, version, name);
    let field_list: Vec<Value> = fields
        .iter()
        .map(|f| {
            let writable = name == "StaticResource" && matches!(*f, "Name" | "ContentType" | "Body" | "Description" | "CacheControl");
            let kind = match *f {
                "Id" => "id",
                "Body" => "base64",
                "BodyLength" => "int",
                "CacheControl" => "picklist",
                "Description" => "textarea",
                f if f.ends_with("ById") => "reference",
                f if f.ends_with("Date") || f == "SystemModstamp" => "datetime",
                f if f.starts_with("Is") => "boolean",
                _ => "string",
            };
            json!({"name": f, "label": f, "type": kind, "createable": writable, "updateable": writable,
                   "nillable": !matches!(*f, "Id" | "Name" | "Body" | "ContentType"), "length": if kind == "string" { 255 } else { 0 }})
        })
        .collect();
    if let Some(m) = summary.as_object_mut() {
        m.insert("fields".into(), Value::Array(field_list));
    }
    summary
}

// ---- StaticResource writes ------------------------------------------------------------------

const WRITABLE: &[&str] = &["Name", "ContentType", "CacheControl", "Description", "Body"];

/// Name rules from salesforce-api.md §5.4; the length limit (255) was not found in Salesforce's
/// documentation and is our decision.
pub fn name_problem(name: &str) -> Option<&'static str> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__");
    (!valid).then_some(
        "The Name field can only contain underscores and alphanumeric characters. It must be unique, begin with a letter, not include spaces, not end with an underscore, and not contain two consecutive underscores.",
    )
}

struct Changes {
    name: Option<String>,
    content_type: Option<String>,
    cache_control: Option<String>,
    description: Option<Option<String>>,
    body: Option<Bytes>,
}

/// Reads a create/update body — JSON with a base64 `Body`, or the multipart form Salesforce takes
/// for blobs (the fields as a JSON part, then the `Body` part as raw bytes) — answering
/// Salesforce's errors for what it refuses.
fn read_changes(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Result<Changes, SfError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim_start().to_ascii_lowercase().starts_with("multipart/") {
        let mut changes = read_json_changes(body)?;
        changes.body = changes.body.map(|b| shared.blobs.intern(b));
        return Ok(changes);
    }
    if !shared.observe.multipart_blobs() {
        return Err(SfError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content type multipart/form-data is not supported for this resource",
        ));
    }
    let malformed =
        |why: &str| SfError::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", &format!("Multipart message: {why}"));
    let boundary =
        crate::multipart::boundary(content_type).ok_or_else(|| malformed("no boundary in the Content-Type"))?;
    let parts = crate::multipart::parts(body, boundary).map_err(malformed)?;
    let Some((entity, blobs)) = parts.split_first() else {
        return Err(malformed("no parts"));
    };
    if !entity.content_type.as_deref().is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json")) {
        return Err(malformed("the first part must be the record's fields as application/json"));
    }
    let mut changes = read_json_changes(&entity.data)?;
    for blob in blobs {
        match blob.name.as_deref() {
            // A slice of the request body, itself shared with equal uploads before it.
            Some(name) if name.eq_ignore_ascii_case("Body") => changes.body = Some(blob.data.clone()),
            other => {
                return Err(SfError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    &format!("No such column '{}' on sobject of type StaticResource", other.unwrap_or_default()),
                ));
            }
        }
    }
    Ok(changes)
}

fn read_json_changes(body: &[u8]) -> Result<Changes, SfError> {
    let parsed: Value = serde_json::from_slice(body).map_err(|e| {
        SfError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            &format!("Unexpected character at [line:{},column:{}]", e.line(), e.column()),
        )
    })?;
    let Value::Object(map) = parsed else {
        return Err(SfError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of StaticResource from a non-object value",
        ));
    };
    let mut changes = Changes { name: None, content_type: None, cache_control: None, description: None, body: None };
    for (key, value) in map {
        if key == "attributes" {
            continue;
        }
        let Some(field) = WRITABLE.iter().find(|f| f.eq_ignore_ascii_case(&key)) else {
            if STATIC_RESOURCE_FIELDS.iter().chain(["ManageableState"].iter()).any(|f| f.eq_ignore_ascii_case(&key)) {
                return Err(SfError::fields(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    &format!(
                        "Unable to create/update fields: {key}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."
                    ),
                    &[&key],
                ));
            }
            return Err(SfError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                &format!("No such column '{key}' on sobject of type StaticResource"),
            ));
        };
        let text = match value {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => {
                return Err(SfError::new(
                    StatusCode::BAD_REQUEST,
                    "JSON_PARSER_ERROR",
                    &format!(
                        "Cannot deserialize instance of string from {} value {other}",
                        if other.is_number() { "VALUE_NUMBER_INT" } else { "START_OBJECT" }
                    ),
                ));
            }
        };
        match *field {
            "Name" => changes.name = Some(text.unwrap_or_default()),
            "ContentType" => changes.content_type = Some(text.unwrap_or_default()),
            "CacheControl" => changes.cache_control = Some(text.unwrap_or_default()),
            "Description" => changes.description = Some(text),
            _ => {
                // Salesforce accepts line-wrapped base64 (MIME style); strip the breaks only when there are any.
                let mut encoded = text.unwrap_or_default();
                if encoded.bytes().any(|b| b.is_ascii_whitespace()) {
                    encoded.retain(|c| !c.is_ascii_whitespace());
                }
                let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()).map_err(|_| {
                    SfError::new(
                        StatusCode::BAD_REQUEST,
                        "JSON_PARSER_ERROR",
                        "Cannot deserialize instance of base64 from VALUE_STRING value: not valid Base64",
                    )
                })?;
                changes.body = Some(Bytes::from(bytes));
            }
        }
    }
    Ok(changes)
}

fn validate(world: &World, ctx: &Ctx, api: Api, existing: Option<&StaticResource>, c: &Changes) -> Result<(), SfError> {
    let creating = existing.is_none();
    let mut missing = Vec::new();
    if creating {
        if c.name.as_deref().is_none_or(str::is_empty) {
            missing.push("Name");
        }
        if c.body.is_none() {
            missing.push("Body");
        }
        if c.content_type.as_deref().is_none_or(str::is_empty) {
            missing.push("ContentType");
        }
        if api == Api::Tooling && c.cache_control.as_deref().is_none_or(str::is_empty) {
            missing.push("CacheControl");
        }
    } else {
        for (field, value) in [("Name", &c.name), ("ContentType", &c.content_type)] {
            if value.as_deref().is_some_and(str::is_empty) {
                missing.push(field);
            }
        }
    }
    if !missing.is_empty() {
        return Err(SfError::fields(
            StatusCode::BAD_REQUEST,
            "REQUIRED_FIELD_MISSING",
            &format!("Required fields are missing: [{}]", missing.join(", ")),
            &missing,
        ));
    }
    if let Some(name) = &c.name {
        if name.chars().count() > 255 {
            return Err(SfError::fields(
                StatusCode::BAD_REQUEST,
                "STRING_TOO_LONG",
                &format!("Name: data value too large: {name} (max length=255)"),
                &["Name"],
            ));
        }
        if let Some(problem) = name_problem(name) {
            return Err(SfError::fields(StatusCode::BAD_REQUEST, "FIELD_INTEGRITY_EXCEPTION", problem, &["Name"]));
        }
        if let Some(other) = world.resource_by_name(&ctx.org_id, name)
            && existing.is_none_or(|e| e.id != other.id)
        {
            return Err(SfError::fields(
                StatusCode::BAD_REQUEST,
                "DUPLICATE_VALUE",
                &format!("duplicate value found: Name duplicates value on record with id: {}", other.id),
                &[],
            ));
        }
    }
    if let Some(ct) = &c.content_type
        && ct.chars().count() > 120
    {
        return Err(SfError::fields(
            StatusCode::BAD_REQUEST,
            "STRING_TOO_LONG",
            "Mime Type: data value too large (max length=120)",
            &["ContentType"],
        ));
    }
    if let Some(cc) = &c.cache_control
        && !(cc == "Private" || cc == "Public" || (cc.is_empty() && api == Api::Data))
    {
        return Err(SfError::fields(
            StatusCode::BAD_REQUEST,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            &format!("Cache Control: bad value for restricted picklist field: {cc}"),
            &["CacheControl"],
        ));
    }
    if let Some(Some(d)) = &c.description
        && d.chars().count() > 255
    {
        return Err(SfError::fields(
            StatusCode::BAD_REQUEST,
            "STRING_TOO_LONG",
            "Description: data value too large (max length=255)",
            &["Description"],
        ));
    }
    if let Some(body) = &c.body {
        if body.len() > state::MAX_RESOURCE_BYTES {
            return Err(SfError::fields(
                StatusCode::BAD_REQUEST,
                "FIELD_INTEGRITY_EXCEPTION",
                "static resource cannot exceed 5MB",
                &["Body"],
            ));
        }
        let others = world.org_resource_bytes(&ctx.org_id) - existing.map_or(0, |e| e.body.len());
        if others + body.len() > state::MAX_ORG_RESOURCE_BYTES {
            return Err(SfError::new(
                StatusCode::BAD_REQUEST,
                "STORAGE_LIMIT_EXCEEDED",
                "storage limit exceeded: static resources may use at most 250 MB per org",
            ));
        }
    }
    Ok(())
}

fn may_customize(world: &World, ctx: &Ctx) -> bool {
    world.users.get(&ctx.user_id).is_some_and(|u| u.customize_application)
}

fn insufficient_access() -> Response {
    error(StatusCode::BAD_REQUEST, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
}

fn only_static_resource(api: Api, object: &str) -> Result<(), SfError> {
    match object_def(api, object) {
        Some(("StaticResource", _)) => Ok(()),
        Some((name, _)) => Err(SfError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            &format!("{name} records cannot be changed through this emulator"),
        )),
        None => Err(SfError::not_found()),
    }
}

async fn create(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, object)): Path<(String, String)>,
    headers: HeaderMap,
    crate::blobs::Upload(body): crate::blobs::Upload,
) -> Response {
    create_in(&s, &ctx, Api::Data, &object, &headers, &body)
}

async fn create_tooling(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, object)): Path<(String, String)>,
    headers: HeaderMap,
    crate::blobs::Upload(body): crate::blobs::Upload,
) -> Response {
    create_in(&s, &ctx, Api::Tooling, &object, &headers, &body)
}

fn create_in(shared: &Shared, ctx: &Ctx, api: Api, object: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    let label = "create:StaticResource".to_string();
    if let Err(e) = only_static_resource(api, object) {
        return op(e.into_response(), format!("create:{object}"));
    }
    let changes = match read_changes(shared, headers, body) {
        Ok(c) => c,
        Err(e) => return op(e.into_response(), label),
    };
    let mut world = shared.world();
    if !may_customize(&world, ctx) {
        return op(insufficient_access(), label);
    }
    if let Err(e) = validate(&world, ctx, api, None, &changes) {
        return op(e.into_response(), label);
    }
    let now = shared.clock.unique_ms();
    let id = world.new_record_id(&ctx.org_id, ids::STATIC_RESOURCE_PREFIX);
    let name = changes.name.unwrap_or_default();
    world.resource_names.insert((ctx.org_id.clone(), name.to_ascii_lowercase()), id.clone());
    world.resources.insert(
        id.clone(),
        StaticResource {
            id: id.clone(),
            org_id: ctx.org_id.clone(),
            name,
            content_type: changes.content_type.unwrap_or_default(),
            cache_control: changes.cache_control.filter(|c| !c.is_empty()).unwrap_or_else(|| "Private".into()),
            description: changes.description.flatten(),
            body: changes.body.unwrap_or_default(),
            created_ms: now,
            created_by: ctx.user_id.clone(),
            modified_ms: now,
            modified_by: ctx.user_id.clone(),
        },
    );
    let response = (StatusCode::CREATED, axum::Json(json!({"id": id, "success": true, "errors": []}))).into_response();
    op(response, label)
}

/// Finds a static resource of the caller's org by a 15- or 18-character id.
fn find<'w>(world: &'w World, ctx: &Ctx, id: &str) -> Result<&'w StaticResource, SfError> {
    ids::normalize(id).and_then(|id| world.resources.get(&id)).filter(|r| r.org_id == ctx.org_id).ok_or_else(|| {
        SfError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {id}"),
        )
    })
}

async fn update(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    crate::blobs::Upload(body): crate::blobs::Upload,
) -> Response {
    update_in(&s, &ctx, Api::Data, &object, &id, &headers, &body)
}

async fn update_tooling(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    crate::blobs::Upload(body): crate::blobs::Upload,
) -> Response {
    update_in(&s, &ctx, Api::Tooling, &object, &id, &headers, &body)
}

fn update_in(
    shared: &Shared,
    ctx: &Ctx,
    api: Api,
    object: &str,
    id: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let label = "update:StaticResource".to_string();
    if let Err(e) = only_static_resource(api, object) {
        return op(e.into_response(), format!("update:{object}"));
    }
    let changes = match read_changes(shared, headers, body) {
        Ok(c) => c,
        Err(e) => return op(e.into_response(), label),
    };
    let mut world = shared.world();
    let existing = match find(&world, ctx, id) {
        Ok(r) => r.clone(),
        Err(e) => return op(e.into_response(), label),
    };
    if !may_customize(&world, ctx) {
        return op(insufficient_access(), label);
    }
    if let Err(e) = validate(&world, ctx, api, Some(&existing), &changes) {
        return op(e.into_response(), label);
    }
    let now = shared.clock.unique_ms();
    let mut updated = existing.clone();
    if let Some(name) = changes.name {
        world.resource_names.remove(&(ctx.org_id.clone(), existing.name.to_ascii_lowercase()));
        world.resource_names.insert((ctx.org_id.clone(), name.to_ascii_lowercase()), existing.id.clone());
        updated.name = name;
    }
    if let Some(ct) = changes.content_type {
        updated.content_type = ct;
    }
    if let Some(cc) = changes.cache_control.filter(|c| !c.is_empty()) {
        updated.cache_control = cc;
    }
    if let Some(d) = changes.description {
        updated.description = d;
    }
    if let Some(b) = changes.body {
        updated.body = b;
    }
    updated.modified_ms = now;
    updated.modified_by = ctx.user_id.clone();
    world.resources.insert(existing.id.clone(), updated);
    op(StatusCode::NO_CONTENT.into_response(), label)
}

async fn delete(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, object, id)): Path<(String, String, String)>,
) -> Response {
    delete_in(&s, &ctx, Api::Data, &object, &id)
}

async fn delete_tooling(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, object, id)): Path<(String, String, String)>,
) -> Response {
    delete_in(&s, &ctx, Api::Tooling, &object, &id)
}

fn delete_in(shared: &Shared, ctx: &Ctx, api: Api, object: &str, id: &str) -> Response {
    let label = "delete:StaticResource".to_string();
    if let Err(e) = only_static_resource(api, object) {
        return op(e.into_response(), format!("delete:{object}"));
    }
    let mut world = shared.world();
    let existing = match find(&world, ctx, id) {
        Ok(r) => r.clone(),
        Err(e) => return op(e.into_response(), label),
    };
    if !may_customize(&world, ctx) {
        return op(insufficient_access(), label);
    }
    world.resources.remove(&existing.id);
    world.resource_names.remove(&(ctx.org_id.clone(), existing.name.to_ascii_lowercase()));
    op(StatusCode::NO_CONTENT.into_response(), label)
}

async fn read(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, object, id)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    read_in(&s, &ctx, Api::Data, &object, &id, &q)
}

async fn read_tooling(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, object, id)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    read_in(&s, &ctx, Api::Tooling, &object, &id, &q)
}

fn read_in(shared: &Shared, ctx: &Ctx, api: Api, object: &str, id: &str, q: &HashMap<String, String>) -> Response {
    let Some((name, known)) = object_def(api, object).filter(|(n, _)| *n != "UserPermissionAccess") else {
        return not_found_body();
    };
    if id == "describe" {
        return op(axum::Json(describe(api, &ctx.version, name, known)).into_response(), format!("describe:{name}"));
    }
    let label = format!("read:{name}");
    let now = shared.clock.now_ms();
    let world = shared.world();
    let wanted = ids::normalize(id);
    let row = rows(&world, ctx, api, name, now)
        .into_iter()
        .find(|r| r.get("Id").and_then(Value::as_str) == wanted.as_deref());
    let Some(row) = row else {
        return op(
            error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("Provided external ID field does not exist or is not accessible: {id}"),
            ),
            label,
        );
    };
    let fields: Vec<&str> = match q.get("fields") {
        Some(list) => {
            let mut out = Vec::new();
            for f in list.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                match soql::canonical(known, f) {
                    Some(c) => out.push(c),
                    None => {
                        return op(
                            error(
                                StatusCode::BAD_REQUEST,
                                "INVALID_FIELD",
                                &format!("No such column '{f}' on sobject of type {name}"),
                            ),
                            label,
                        );
                    }
                }
            }
            out
        }
        None => known.to_vec(),
    };
    op(axum::Json(project(&row, &fields)).into_response(), label)
}

async fn read_blob(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, object, id, field)): Path<(String, String, String, String)>,
) -> Response {
    let label = "read_body:StaticResource".to_string();
    if !object.eq_ignore_ascii_case("StaticResource") || !field.eq_ignore_ascii_case("Body") {
        return op(not_found_body(), label);
    }
    let world = shared.world();
    match find(&world, &ctx, &id) {
        Ok(r) => {
            let mut response = (StatusCode::OK, r.body.clone()).into_response();
            if let Ok(ct) = HeaderValue::from_str(&r.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            op(response, label)
        }
        Err(e) => op(e.into_response(), label),
    }
}

// ---- /resource serving ----------------------------------------------------------------------

async fn serve_resource_root(State(shared): State<Shared>, Path((ts, name)): Path<(String, String)>) -> Response {
    serve(&shared, &ts, &name, None)
}

async fn serve_resource(
    State(shared): State<Shared>,
    Path((ts, name, path)): Path<(String, String, String)>,
) -> Response {
    serve(&shared, &ts, &name, Some(&path))
}

/// `/resource/<lastModMs>/<Name>[/<path in zip>]`. The timestamp picks the version (the
/// emulator hands out unique modstamps, so it also picks the org); a stale timestamp still
/// serves the current version when only one org has a resource of that name, as Salesforce
/// serves the latest version behind any timestamp.
fn serve(shared: &Shared, ts: &str, name: &str, path: Option<&str>) -> Response {
    let resource = {
        let world = shared.world();
        let ts: Option<i64> = ts.parse().ok();
        let same_name: Vec<&StaticResource> =
            world.resources.values().filter(|r| r.name.eq_ignore_ascii_case(name)).collect();
        let exact = same_name.iter().find(|r| Some(r.modified_ms) == ts).copied();
        let found = exact.or(if same_name.len() == 1 { same_name.first().copied() } else { None });
        match found {
            Some(r) => r.clone(),
            None => return op((StatusCode::NOT_FOUND, "Static resource not found").into_response(), "resource".into()),
        }
    };
    let cache = if resource.cache_control == "Public" { "public, max-age=86400" } else { "private, max-age=86400" };
    let mut response = match path {
        None => {
            let mut r = (StatusCode::OK, resource.body.clone()).into_response();
            if let Ok(ct) = HeaderValue::from_str(&resource.content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            r
        }
        Some(inner) => match read_zip_entry(&resource.body, inner) {
            Some(bytes) => {
                let mime = mime_guess::from_path(inner).first_or_octet_stream();
                let mut r = (StatusCode::OK, bytes).into_response();
                if let Ok(ct) = HeaderValue::from_str(mime.essence_str()) {
                    r.headers_mut().insert(header::CONTENT_TYPE, ct);
                }
                r
            }
            None => (StatusCode::NOT_FOUND, "File not found in static resource").into_response(),
        },
    };
    if let Ok(v) = HeaderValue::from_str(cache) {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response.extensions_mut().insert(Actor { org_id: resource.org_id, user_id: None });
    op(response, "resource".into())
}

fn read_zip_entry(zip_bytes: &[u8], path: &str) -> Option<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).ok()?;
    let mut file = archive.by_name(path.trim_start_matches('/')).ok()?;
    if file.is_dir() {
        return None;
    }
    let mut out = Vec::with_capacity(file.size() as usize);
    file.read_to_end(&mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_labels_follow_salesforce_releases() {
        assert_eq!(version_label(20), "Winter '11");
        assert_eq!(version_label(60), "Spring '24");
        assert_eq!(version_label(66), "Spring '26");
    }

    #[test]
    fn resource_names_follow_the_rules() {
        for good in ["walkme", "WalkMe_Lightning_2", "a"] {
            assert!(name_problem(good).is_none(), "{good} is valid");
        }
        for bad in ["", "1abc", "_abc", "abc_", "a__b", "a b", "a-b", "é"] {
            assert!(name_problem(bad).is_some(), "{bad:?} is invalid");
        }
    }
}
