//! `/api/v1/connections`: list with search, sort and pages (F6, F7), get, test without
//! saving (F11), create after a passing check, edit (new connections) and activate or
//! deactivate (legacy connectors), delete with revoke first (F10).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{
    AuthMethod, Connection, ConnectionId, ConnectionKind, ConnectionName, ConnectionStatus, LoginHost, OrgFacts,
    OrgType,
};
use salesforce::checks::{self, Report};
use salesforce::{ClientCredentials, SalesforceError, TokenResponse};
use serde::{Deserialize, Serialize};
use store::{AuditStore, ConnectionStore, ListQuery, NewSecrets, SortKey, TokenSet};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vault::{ClientSecret, JwtPrivateKey};

use super::{ApiError, Caller, ErrorBody};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(test))
        .routes(routes!(show, update, remove))
        .routes(routes!(check_now))
}

/// Checks a stored connection now (B1): one authenticated call, renewing the session if it
/// expired, and records Logged in / Logged out / Not available with the reason.
#[utoipa::path(post, path = "/connections/{id}/check", tag = "connections", params(("id" = String, Path, description = "conn_…")),
    responses((status = 200, description = "the connection with its fresh status", body = ConnectionView),
        (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn check_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let connection = state.store.get(&account, &parse_id(&id)?).await?;
    state.keeper.check_health(&connection).await?;
    let checked = state.store.get(&account, &connection.id).await?;
    Ok(Json(ConnectionView::from(&checked)))
}

/// A connection as the API shows it: the table's columns (F6) and its health.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    pub id: String,
    pub legacy: bool,
    /// New connections' name.
    pub name: Option<String>,
    /// Legacy connectors: the system and environment they publish for.
    pub system_id: Option<String>,
    pub environment_id: Option<String>,
    /// "Production" or "Sandbox".
    pub environment: &'static str,
    pub account_name: Option<String>,
    pub org_id: Option<String>,
    /// The Salesforce user the connection signed in as.
    pub salesforce_username: Option<String>,
    pub instance_url: Option<String>,
    pub login_host: String,
    pub auth_method: &'static str,
    /// New connections only (F6).
    pub created_at: Option<i64>,
    pub created_by: Option<String>,
    pub last_modified_at: Option<i64>,
    pub last_modified_by: Option<String>,
    /// Legacy connectors only (F6).
    pub connection_status: Option<&'static str>,
    pub activity_status: Option<&'static str>,
    /// Health of every connection (shown on a new connection's page).
    pub health: &'static str,
    pub health_detail: Option<String>,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        let legacy = c.is_legacy();
        let new_only = |v: Option<String>| if legacy { None } else { v };
        ConnectionView {
            id: c.id.to_string(),
            legacy,
            name: match &c.kind {
                ConnectionKind::New { name } => Some(name.as_str().to_string()),
                ConnectionKind::Legacy { .. } => None,
            },
            system_id: match &c.kind {
                ConnectionKind::Legacy { system_id, .. } => Some(system_id.to_string()),
                ConnectionKind::New { .. } => None,
            },
            environment_id: match &c.kind {
                ConnectionKind::Legacy { environment_id, .. } => Some(environment_id.to_string()),
                ConnectionKind::New { .. } => None,
            },
            environment: c.org_type.label(),
            account_name: c.org.as_ref().map(|o| o.org_name.clone()),
            org_id: c.org.as_ref().map(|o| o.org_id.clone()),
            salesforce_username: c.org.as_ref().map(|o| o.username.clone()),
            instance_url: c.org.as_ref().map(|o| o.instance_url.clone()),
            login_host: c.login_host.as_setting(),
            auth_method: c.auth.label(),
            created_at: (!legacy).then_some(c.created_at),
            created_by: c.created_by.clone(),
            last_modified_at: (!legacy).then_some(c.modified_at),
            last_modified_by: new_only(c.modified_by.clone()),
            connection_status: legacy.then(|| c.status.label()),
            activity_status: match c.kind {
                ConnectionKind::Legacy { active, .. } => Some(if active { "Active" } else { "Inactive" }),
                ConnectionKind::New { .. } => None,
            },
            health: c.status.label(),
            health_detail: c.status_detail.clone(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Case-insensitive substring of the org name or the created-by / last-modified-by emails (F7).
    search: Option<String>,
    /// `created_at` (default), `account_name` or `last_modified_at`.
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    order: Option<String>,
    /// From 1.
    page: Option<u32>,
    /// 1 to 500, default 50.
    per_page: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ListView {
    items: Vec<ConnectionView>,
    total: u64,
    page: u32,
    per_page: u32,
}

/// The Salesforce Connections table (F6): one page, searched (F7) and sorted.
#[utoipa::path(get, path = "/connections", tag = "connections", params(ListParams),
    responses((status = 200, body = ListView), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let account = caller.account()?;
    let sort = match params.sort.as_deref() {
        None | Some("created_at") => SortKey::CreatedAt,
        Some("account_name") => SortKey::AccountName,
        Some("last_modified_at") => SortKey::ModifiedAt,
        Some(other) => {
            return Err(ApiError::invalid(
                "sort",
                format!("{other:?} is not one of created_at, account_name, last_modified_at"),
            ));
        }
    };
    let descending = match params.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(ApiError::invalid("order", format!("{other:?} is not asc or desc"))),
    };
    let per_page = params.per_page.unwrap_or(50);
    if !(1..=500).contains(&per_page) {
        return Err(ApiError::invalid("per_page", "per_page is between 1 and 500"));
    }
    let page = params.page.unwrap_or(1).max(1);
    let query = ListQuery {
        search: params.search,
        sort,
        descending,
        offset: (page - 1).saturating_mul(per_page),
        limit: per_page,
    };
    let found = state.store.list(account, &query).await?;
    Ok(Json(ListView {
        items: found.rows.iter().map(ConnectionView::from).collect(),
        total: found.total,
        page,
        per_page,
    })
    .into_response())
}

pub(crate) fn parse_id(id: &str) -> Result<ConnectionId, ApiError> {
    // A malformed id cannot name anything of the caller's: same answer as a missing one.
    ConnectionId::parse(id).map_err(|_| ApiError::NotFound)
}

/// One connection of the caller's account.
#[utoipa::path(get, path = "/connections/{id}", tag = "connections", params(("id" = String, Path, description = "conn_…")),
    responses((status = 200, body = ConnectionView), (status = 404, body = ErrorBody)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let connection = state.store.get(caller.account()?, &parse_id(&id)?).await?;
    Ok(Json(ConnectionView::from(&connection)))
}

/// What a new connection is made of (F11). OAuth connections are made through the browser
/// sign-in (`POST /connections/oauth/start`); this endpoint takes JWT and client credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionInput {
    /// Unique in the account, 1–80 characters.
    pub name: String,
    /// `production` or `sandbox`.
    pub org_type: String,
    /// `login`, `test`, or a My Domain URL such as `https://acme.my.salesforce.com`.
    pub login_host: String,
    pub auth: AuthInput,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum AuthInput {
    Jwt {
        consumer_key: String,
        username: String,
        private_key: String,
    },
    ClientCredentials {
        consumer_key: String,
        consumer_secret: String,
    },
    #[serde(rename = "oauth")]
    OAuth {},
}

/// The validated input, with every wrong field reported at once.
pub(super) struct Valid {
    pub kind: ConnectionKind,
    pub org_type: OrgType,
    pub login_host: LoginHost,
    pub auth: AuthMethod,
    pub consumer_secret: Option<ClientSecret>,
    pub private_key: Option<JwtPrivateKey>,
}

/// The settings every new connection has, each wrong one added to `errors`.
pub(super) fn parse_basics(
    name: &str,
    org_type: &str,
    login_host: &str,
    errors: &mut Vec<(String, String)>,
) -> (Option<ConnectionName>, Option<OrgType>, Option<LoginHost>) {
    let name = ConnectionName::parse(name).map_err(|e| errors.push(("name".to_string(), field_message(e)))).ok();
    let (org_type, login_host) = parse_org_settings(org_type, login_host, errors);
    (name, org_type, login_host)
}

/// Org type and login host, each wrong one added to `errors`.
pub(super) fn parse_org_settings(
    org_type: &str,
    login_host: &str,
    errors: &mut Vec<(String, String)>,
) -> (Option<OrgType>, Option<LoginHost>) {
    let org_type = match org_type {
        "production" => Some(OrgType::Production),
        "sandbox" => Some(OrgType::Sandbox),
        other => {
            errors.push(("org_type".into(), format!("{other:?} is not production or sandbox")));
            None
        }
    };
    let login_host =
        LoginHost::parse(login_host).map_err(|e| errors.push(("login_host".to_string(), field_message(e)))).ok();
    (org_type, login_host)
}

fn validate(input: ConnectionInput) -> Result<Valid, ApiError> {
    let mut errors = Vec::new();
    let (name, org_type, login_host) = parse_basics(&input.name, &input.org_type, &input.login_host, &mut errors);
    let (auth, consumer_secret, private_key) = match input.auth {
        AuthInput::Jwt { consumer_key, username, private_key } => {
            if consumer_key.trim().is_empty() {
                errors.push(("auth.consumer_key".into(), "the consumer key is required".into()));
            }
            if username.trim().is_empty() {
                errors.push(("auth.username".into(), "the Salesforce username is required".into()));
            }
            let key = JwtPrivateKey::new(private_key);
            if let Err(e) = salesforce::jwt::validate_private_key(&key) {
                errors.push(("auth.private_key".into(), e.to_string()));
            }
            (
                Some(AuthMethod::Jwt { consumer_key: consumer_key.trim().into(), username: username.trim().into() }),
                None,
                Some(key),
            )
        }
        AuthInput::ClientCredentials { consumer_key, consumer_secret } => {
            if consumer_key.trim().is_empty() {
                errors.push(("auth.consumer_key".into(), "the consumer key is required".into()));
            }
            if consumer_secret.is_empty() {
                errors.push(("auth.consumer_secret".into(), "the consumer secret is required".into()));
            }
            if login_host.as_ref().is_some_and(|h| !matches!(h, LoginHost::MyDomain(_))) {
                errors.push((
                    "login_host".into(),
                    "client credentials need your org's My Domain URL, not login or test".into(),
                ));
            }
            (
                Some(AuthMethod::ClientCredentials { consumer_key: consumer_key.trim().into() }),
                Some(ClientSecret::new(consumer_secret)),
                None,
            )
        }
        AuthInput::OAuth {} => {
            errors.push((
                "auth.method".into(),
                "OAuth connections are made through the Salesforce sign-in in the Admin Center".into(),
            ));
            (None, None, None)
        }
    };
    match (name, org_type, login_host, auth) {
        (Some(name), Some(org_type), Some(login_host), Some(auth)) if errors.is_empty() => {
            Ok(Valid { kind: ConnectionKind::New { name }, org_type, login_host, auth, consumer_secret, private_key })
        }
        _ => Err(ApiError::Invalid(errors)),
    }
}

fn field_message(e: domain::DomainError) -> String {
    match e {
        domain::DomainError::Invalid { message, .. } => message,
        other => other.to_string(),
    }
}

/// The API's spelling of an org type.
pub(crate) fn org_type_setting(t: OrgType) -> &'static str {
    match t {
        OrgType::Production => "production",
        OrgType::Sandbox => "sandbox",
    }
}

pub(super) fn sf_org_type(t: OrgType) -> salesforce::OrgType {
    match t {
        OrgType::Production => salesforce::OrgType::Production,
        OrgType::Sandbox => salesforce::OrgType::Sandbox,
    }
}

/// Signs in with the given credentials and runs every check step; saves nothing.
async fn check(state: &AppState, v: &Valid) -> Result<(Report, Option<TokenResponse>), ApiError> {
    let base = state.urls.base_for(&v.login_host).map_err(|e| ApiError::invalid("login_host", e.to_string()))?;
    let token = match &v.auth {
        AuthMethod::Jwt { consumer_key, username } => {
            let key = v.private_key.as_ref().ok_or(ApiError::Internal)?;
            state.client.jwt_bearer(&base, sf_org_type(v.org_type), consumer_key, username, key).await
        }
        AuthMethod::ClientCredentials { consumer_key } => {
            let app =
                ClientCredentials { consumer_key: consumer_key.clone(), consumer_secret: v.consumer_secret.clone() };
            state.client.client_credentials(&base, &app).await
        }
        AuthMethod::OAuth { .. } => {
            return Err(ApiError::invalid("auth.method", "OAuth is not tested through this endpoint"));
        }
    };
    match token {
        Ok(token) => Ok((checks::run(&state.client, &token, sf_org_type(v.org_type)).await, Some(token))),
        Err(SalesforceError::HostNotAllowed(host)) => Err(ApiError::invalid(
            "login_host",
            format!("{host} is not a Salesforce host; use login, test or your My Domain (…my.salesforce.com)"),
        )),
        Err(e) => Ok((Report::token_failed(&e), None)),
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct TestView {
    passed: bool,
    #[serde(flatten)]
    report: Report,
}

/// Test Connection (F11): signs in with these settings and runs every check step; saves nothing.
#[utoipa::path(post, path = "/connections/test", tag = "connections", request_body = ConnectionInput,
    responses((status = 200, description = "every step's result; `passed` tells whether all passed", body = TestView),
        (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn test(
    State(state): State<AppState>,
    caller: Caller,
    input: Result<Json<ConnectionInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require_connection_admin()?;
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let report = test_connection(&state, &caller, input).await?;
    Ok(Json(TestView { passed: report.passed(), report }).into_response())
}

/// Test Connection: validates, signs in, runs every step, records it; saves nothing.
pub(crate) async fn test_connection(
    state: &AppState,
    caller: &Caller,
    input: ConnectionInput,
) -> Result<Report, ApiError> {
    caller.require_connection_admin()?;
    let valid = validate(input)?;
    let (report, _) = check(state, &valid).await?;
    let outcome = outcome(&report);
    record(
        state,
        caller.audit(
            state.clock.now_ms(),
            "connection.tested",
            "connection",
            None,
            Some(&kind_label(&valid.kind)),
            Some(outcome),
        ),
    )
    .await;
    Ok(report)
}

/// Runs the same check as Test Connection and saves the connection only if every step passed.
#[utoipa::path(post, path = "/connections", tag = "connections", request_body = ConnectionInput,
    responses((status = 201, body = ConnectionView),
        (status = 422, description = "`invalid` (fields) or `check_failed` (with every step)", body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    input: Result<Json<ConnectionInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require_connection_admin()?;
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let connection = create_connection(&state, &caller, input).await?;
    Ok((StatusCode::CREATED, Json(ConnectionView::from(&connection))).into_response())
}

/// Save (F11) for JWT and client credentials: the whole check, then the connection.
pub(crate) async fn create_connection(
    state: &AppState,
    caller: &Caller,
    input: ConnectionInput,
) -> Result<Connection, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let valid = validate(input)?;
    let (report, token) = check(state, &valid).await?;
    save_new(state, caller, account, valid, report, token).await
}

/// Saves a new connection whose check passed (or answers `check_failed` with every step):
/// the one path both the JWT / client-credentials create and the OAuth callback take.
pub(super) async fn save_new(
    state: &AppState,
    caller: &Caller,
    account: domain::AccountId,
    valid: Valid,
    report: Report,
    token: Option<TokenResponse>,
) -> Result<Connection, ApiError> {
    let (Some(org), Some(token)) = (report.org.clone(), token) else {
        let reason = report.failure().map(|f| f.detail.clone()).unwrap_or_default();
        return Err(ApiError::CheckFailed(reason, Box::new(report)));
    };
    let now = state.clock.now_ms();
    let connection = Connection {
        id: ConnectionId::generate(),
        account_id: account,
        kind: valid.kind,
        org_type: valid.org_type,
        login_host: valid.login_host,
        auth: valid.auth,
        org: Some(OrgFacts {
            org_id: org.org_id,
            org_name: org.org_name,
            instance_url: org.instance_url,
            user_id: org.user_id,
            username: org.username,
            email: org.email.clone(),
        }),
        status: ConnectionStatus::LoggedIn,
        status_detail: None,
        status_checked_at: Some(now),
        created_at: now,
        created_by: org.email.clone(),
        modified_at: now,
        modified_by: org.email,
    };
    let secrets = NewSecrets {
        consumer_secret: valid.consumer_secret,
        private_key: valid.private_key,
        tokens: Some(TokenSet {
            access_token: token.access_token,
            refresh_token: token.refresh_token,
            instance_url: token.instance_url.to_string(),
        }),
    };
    state.store.insert(&connection, &secrets).await?;
    tracing::info!(connection = %connection.id, account = %connection.account_id, "connection created");
    let label = label(&connection);
    let detail = format!(
        "{} connection to {} ({})",
        connection.auth.label(),
        connection.org.as_ref().map(|o| o.org_name.as_str()).unwrap_or("?"),
        connection.org_type.label()
    );
    record(
        state,
        caller.audit(now, "connection.created", "connection", Some(connection.id.as_str()), Some(&label), Some(detail)),
    )
    .await;
    Ok(connection)
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deleted {
    pub deleted: bool,
    /// Whether Salesforce confirmed the revoke.
    pub revoked: bool,
    pub message: String,
}

/// Revokes the connection's tokens at Salesforce, then deletes it (F10). If Salesforce cannot
/// be reached it still deletes, and says so.
#[utoipa::path(delete, path = "/connections/{id}", tag = "connections", params(("id" = String, Path, description = "conn_…")),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    delete_connection(&state, &caller, &id).await.map(Json)
}

/// Delete (F10): revoke at Salesforce first, then delete (even if the revoke failed).
pub(crate) async fn delete_connection(state: &AppState, caller: &Caller, id: &str) -> Result<Deleted, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let connection = state.store.get(&account, &parse_id(id)?).await?;
    let secrets = state.store.secrets(&connection.id).await?;
    // Revoke at Salesforce first (the refresh token ends its sessions too).
    let token = secrets
        .refresh_token
        .as_ref()
        .map(|t| t.expose_secret().to_string())
        .or_else(|| secrets.access_token.as_ref().map(|t| t.expose_secret().to_string()));
    let revoked = match (token, state.urls.base_for(&connection.login_host)) {
        (Some(token), Ok(base)) => state.client.revoke(&base, &token).await,
        _ => Ok(()),
    };
    state.store.delete(&account, &connection.id).await?;
    let label = label(&connection);
    let detail = if revoked.is_ok() { "tokens revoked at Salesforce" } else { "Salesforce did not confirm the revoke" };
    record(
        state,
        caller.audit(
            state.clock.now_ms(),
            "connection.deleted",
            "connection",
            Some(connection.id.as_str()),
            Some(&label),
            Some(detail.into()),
        ),
    )
    .await;
    let (revoked, message) = match revoked {
        Ok(()) => (true, "The connection was deleted and its tokens were revoked at Salesforce.".to_string()),
        Err(e) => {
            tracing::warn!(connection = %connection.id, error = %e, "revoke failed; deleted locally");
            (
                false,
                format!(
                    "The connection was deleted here, but Salesforce could not confirm the revoke ({e}). Revoke its access in Salesforce Setup → Connected Apps OAuth Usage."
                ),
            )
        }
    };
    Ok(Deleted { deleted: true, revoked, message })
}

/// Edit (F10, F11): `name`, `org_type`, `login_host` and `auth` for new connections; `active`
/// for legacy connectors. Fields left out keep their value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditInput {
    pub name: Option<String>,
    /// `production` or `sandbox`.
    pub org_type: Option<String>,
    pub login_host: Option<String>,
    /// Legacy connectors only: whether publishing goes through it (F4, product.md §4).
    pub active: Option<bool>,
    /// JWT and client-credentials connections: the credentials to change (the rest are kept).
    pub auth: Option<EditAuth>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditAuth {
    pub consumer_key: Option<String>,
    /// JWT only.
    pub username: Option<String>,
    /// JWT only: PEM.
    pub private_key: Option<String>,
    /// Client credentials only.
    pub consumer_secret: Option<String>,
}

/// Edits a connection, recording who and when. Changing how a JWT or client-credentials
/// connection signs in re-runs the whole check first (and must reach the same org); an OAuth
/// connection's sign-in settings change through Reconnect.
#[utoipa::path(patch, path = "/connections/{id}", tag = "connections", params(("id" = String, Path, description = "conn_…")),
    request_body = EditInput,
    responses((status = 200, body = ConnectionView), (status = 404, body = ErrorBody),
        (status = 409, description = "the name is taken, or the new settings reach another org", body = ErrorBody),
        (status = 422, description = "`invalid` or `check_failed`", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    input: Result<Json<EditInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ConnectionView>, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    state.store.get(&account, &parse_id(&id)?).await?;
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let connection = edit_connection(&state, &caller, &id, input).await?;
    Ok(Json(ConnectionView::from(&connection)))
}

/// Edit: see [`update`].
pub(crate) async fn edit_connection(
    state: &AppState,
    caller: &Caller,
    id: &str,
    input: EditInput,
) -> Result<Connection, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let mut connection = state.store.get(&account, &parse_id(id)?).await?;
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut changes: Vec<String> = Vec::new();
    let resign = input.org_type.is_some() || input.login_host.is_some() || input.auth.is_some();
    match &mut connection.kind {
        ConnectionKind::Legacy { active, .. } => {
            for (field, given) in [("name", input.name.is_some()), ("auth", resign)] {
                if given {
                    errors.push((
                        field.into(),
                        "a legacy connector has no name, and its sign-in changes through Reconnect".into(),
                    ));
                }
            }
            if let Some(now_active) = input.active
                && now_active != *active
            {
                *active = now_active;
                changes.push(if now_active { "activated".into() } else { "deactivated".into() });
            }
        }
        ConnectionKind::New { name } => {
            if input.active.is_some() {
                errors.push(("active".into(), "only legacy connectors have an activity status".into()));
            }
            if let Some(given) = &input.name {
                match ConnectionName::parse(given) {
                    Ok(new) if &new != name => {
                        changes.push(format!("renamed from {:?} to {:?}", name.as_str(), new.as_str()));
                        *name = new;
                    }
                    Ok(_) => {}
                    Err(e) => errors.push(("name".into(), field_message(e))),
                }
            }
        }
    }
    let mut secrets = NewSecrets::default();
    if resign && !connection.is_legacy() {
        if let AuthMethod::OAuth { .. } = connection.auth {
            errors.push((
                "auth".into(),
                "an OAuth connection's sign-in settings change through Reconnect (POST /api/v1/connections/{id}/reconnect with the new settings)".into(),
            ));
        } else {
            let valid = edited_settings(state, &connection, &input, &mut errors).await?;
            if let Some(valid) = valid.filter(|_| errors.is_empty()) {
                secrets = recheck(state, &mut connection, valid, &mut changes).await?;
                if input.auth.as_ref().is_some_and(|a| a.private_key.is_some() || a.consumer_secret.is_some()) {
                    changes.push("new credentials stored".into());
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    if changes.is_empty() {
        return Ok(connection);
    }
    let now = state.clock.now_ms();
    connection.modified_at = now;
    connection.modified_by = Some(caller.user.email.clone());
    state.store.update(&connection, &secrets).await?;
    record(
        state,
        caller.audit(
            now,
            "connection.edited",
            "connection",
            Some(connection.id.as_str()),
            Some(&label(&connection)),
            Some(changes.join("; ")),
        ),
    )
    .await;
    Ok(connection)
}

/// The connection's sign-in settings with the edit applied (stored secrets fill what was not
/// given); every wrong field goes to `errors`.
async fn edited_settings(
    state: &AppState,
    connection: &Connection,
    input: &EditInput,
    errors: &mut Vec<(String, String)>,
) -> Result<Option<Valid>, ApiError> {
    let (org_type, login_host) = parse_org_settings(
        input.org_type.as_deref().unwrap_or(org_type_setting(connection.org_type)),
        &input.login_host.clone().unwrap_or_else(|| connection.login_host.as_setting()),
        errors,
    );
    let stored = state.store.secrets(&connection.id).await?;
    let given = input.auth.as_ref().map_or_else(EditAuth::default, |a| EditAuth {
        consumer_key: a.consumer_key.clone(),
        username: a.username.clone(),
        private_key: a.private_key.clone(),
        consumer_secret: a.consumer_secret.clone(),
    });
    let consumer_key =
        given.consumer_key.as_deref().map(str::trim).unwrap_or(connection.auth.consumer_key()).to_string();
    if consumer_key.is_empty() {
        errors.push(("auth.consumer_key".into(), "the consumer key is required".into()));
    }
    let (auth, consumer_secret, private_key) = match &connection.auth {
        AuthMethod::Jwt { username, .. } => {
            if given.consumer_secret.is_some() {
                errors.push(("auth.consumer_secret".into(), "JWT connections have no consumer secret".into()));
            }
            let username = given.username.as_deref().map(str::trim).unwrap_or(username).to_string();
            if username.is_empty() {
                errors.push(("auth.username".into(), "the Salesforce username is required".into()));
            }
            let key = match given.private_key {
                Some(pem) => {
                    let key = JwtPrivateKey::new(pem);
                    if let Err(e) = salesforce::jwt::validate_private_key(&key) {
                        errors.push(("auth.private_key".into(), e.to_string()));
                    }
                    Some(key)
                }
                None => stored.private_key,
            };
            (AuthMethod::Jwt { consumer_key, username }, None, key)
        }
        AuthMethod::ClientCredentials { .. } => {
            if given.username.is_some() || given.private_key.is_some() {
                errors.push(("auth".into(), "client-credentials connections have no username or private key".into()));
            }
            if login_host.as_ref().is_some_and(|h| !matches!(h, LoginHost::MyDomain(_))) {
                errors.push((
                    "login_host".into(),
                    "client credentials need your org's My Domain URL, not login or test".into(),
                ));
            }
            let secret = match given.consumer_secret {
                Some(s) if s.is_empty() => {
                    errors.push(("auth.consumer_secret".into(), "the consumer secret cannot be empty".into()));
                    None
                }
                Some(s) => Some(ClientSecret::new(s)),
                None => stored.consumer_secret,
            };
            (AuthMethod::ClientCredentials { consumer_key }, secret, None)
        }
        AuthMethod::OAuth { .. } => return Ok(None),
    };
    Ok(match (org_type, login_host) {
        (Some(org_type), Some(login_host)) => {
            Some(Valid { kind: connection.kind.clone(), org_type, login_host, auth, consumer_secret, private_key })
        }
        _ => None,
    })
}

/// Runs the whole check with edited settings; on success applies them (same org only) and
/// returns the secrets to store.
async fn recheck(
    state: &AppState,
    connection: &mut Connection,
    valid: Valid,
    changes: &mut Vec<String>,
) -> Result<NewSecrets, ApiError> {
    let (report, token) = check(state, &valid).await?;
    let (Some(org), Some(token)) = (report.org.clone(), token) else {
        let reason = report.failure().map(|f| f.detail.clone()).unwrap_or_default();
        return Err(ApiError::CheckFailed(reason, Box::new(report)));
    };
    if let Some(existing) = &connection.org
        && existing.org_id != org.org_id
    {
        return Err(ApiError::Conflict(format!(
            "these settings sign in to {} ({}), but this connection belongs to {} ({}): add a new connection for that org",
            org.org_name, org.org_id, existing.org_name, existing.org_id
        )));
    }
    if valid.org_type != connection.org_type {
        changes.push(format!("org type {}", valid.org_type.label()));
    }
    if valid.login_host != connection.login_host {
        changes.push(format!("login host {}", valid.login_host.as_setting()));
    }
    if valid.auth != connection.auth {
        changes.push("sign-in settings changed".into());
    }
    connection.org_type = valid.org_type;
    connection.login_host = valid.login_host;
    connection.auth = valid.auth;
    connection.org = Some(OrgFacts {
        org_id: org.org_id,
        org_name: org.org_name,
        instance_url: org.instance_url,
        user_id: org.user_id,
        username: org.username,
        email: org.email,
    });
    connection.status = ConnectionStatus::LoggedIn;
    connection.status_detail = None;
    connection.status_checked_at = Some(state.clock.now_ms());
    Ok(NewSecrets {
        consumer_secret: valid.consumer_secret,
        private_key: valid.private_key,
        tokens: Some(TokenSet {
            access_token: token.access_token,
            refresh_token: token.refresh_token,
            instance_url: token.instance_url.to_string(),
        }),
    })
}

/// How a connection is named in messages and the audit log.
pub(crate) fn label(c: &Connection) -> String {
    kind_label(&c.kind).replace("legacy connector", &format!("legacy connector {}", c.id))
}

pub(super) fn kind_label(kind: &ConnectionKind) -> String {
    match kind {
        ConnectionKind::New { name } => name.as_str().to_string(),
        ConnectionKind::Legacy { .. } => "legacy connector".to_string(),
    }
}

/// A check's result in words, for the audit log.
pub(super) fn outcome(report: &Report) -> String {
    match report.failure() {
        None => "all checks passed".to_string(),
        Some(f) => format!("failed at {}: {}", f.title, f.detail),
    }
}

/// Writes an audit entry. A failure is logged loudly but does not undo what already happened.
pub(crate) async fn record(state: &AppState, entry: domain::AuditEntry) {
    if let Err(e) = state.store.record(&entry).await {
        tracing::error!(error = %e, action = %entry.action, "could not write the audit log");
    }
}
