//! `/api/v1/connections`: list with search, sort and pages (F6, F7), get, test without
//! saving (F11), create after a passing check, delete with revoke first (F10).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::{
    AuthMethod, Connection, ConnectionId, ConnectionKind, ConnectionName, ConnectionStatus, LoginHost, OrgFacts,
    OrgType,
};
use salesforce::checks::{self, Report};
use salesforce::{ClientCredentials, SalesforceError, TokenResponse};
use serde::{Deserialize, Serialize};
use store::{AuditStore, ConnectionStore, ListQuery, NewSecrets, SortKey, TokenSet};
use vault::{ClientSecret, JwtPrivateKey};

use super::{ApiError, Caller};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connections", get(list).post(create))
        .route("/connections/test", post(test))
        .route("/connections/{id}", get(show).delete(remove))
}

/// A connection as the API shows it: the table's columns (F6) and its health.
#[derive(Debug, Serialize)]
pub struct ConnectionView {
    pub id: String,
    pub legacy: bool,
    pub name: Option<String>,
    /// "Production" or "Sandbox".
    pub environment: &'static str,
    pub account_name: Option<String>,
    pub org_id: Option<String>,
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
            environment: c.org_type.label(),
            account_name: c.org.as_ref().map(|o| o.org_name.clone()),
            org_id: c.org.as_ref().map(|o| o.org_id.clone()),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    search: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

#[derive(Debug, Serialize)]
struct ListView {
    items: Vec<ConnectionView>,
    total: u64,
    page: u32,
    per_page: u32,
}

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

fn parse_id(id: &str) -> Result<ConnectionId, ApiError> {
    // A malformed id cannot name anything of the caller's: same answer as a missing one.
    ConnectionId::parse(id).map_err(|_| ApiError::NotFound)
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let connection = state.store.get(caller.account()?, &parse_id(&id)?).await?;
    Ok(Json(ConnectionView::from(&connection)))
}

/// What a new connection is made of (F11). OAuth connections are made through the browser
/// sign-in, which arrives with the Admin Center; this endpoint takes JWT and client credentials.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionInput {
    name: String,
    org_type: String,
    login_host: String,
    auth: AuthInput,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
enum AuthInput {
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
    pub name: ConnectionName,
    pub org_type: OrgType,
    pub login_host: LoginHost,
    pub auth: AuthMethod,
    pub consumer_secret: Option<ClientSecret>,
    pub private_key: Option<JwtPrivateKey>,
}

/// The settings every kind of connection has, each wrong one added to `errors`.
pub(super) fn parse_basics(
    name: &str,
    org_type: &str,
    login_host: &str,
    errors: &mut Vec<(String, String)>,
) -> (Option<ConnectionName>, Option<OrgType>, Option<LoginHost>) {
    let name = ConnectionName::parse(name).map_err(|e| errors.push(("name".to_string(), field_message(e)))).ok();
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
    (name, org_type, login_host)
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
            Ok(Valid { name, org_type, login_host, auth, consumer_secret, private_key })
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

#[derive(Debug, Serialize)]
struct TestView {
    passed: bool,
    #[serde(flatten)]
    report: Report,
}

async fn test(
    State(state): State<AppState>,
    caller: Caller,
    input: Result<Json<ConnectionInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require_connection_admin()?;
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let valid = validate(input)?;
    let (report, _) = check(&state, &valid).await?;
    let outcome = outcome(&report);
    record(
        &state,
        caller.audit(
            state.clock.now_ms(),
            "connection.tested",
            "connection",
            None,
            Some(valid.name.as_str()),
            Some(outcome),
        ),
    )
    .await;
    Ok(Json(TestView { passed: report.passed(), report }).into_response())
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    input: Result<Json<ConnectionInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let valid = validate(input)?;
    let (report, token) = check(&state, &valid).await?;
    save_new(&state, &caller, account, valid, report, token).await
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
) -> Result<Response, ApiError> {
    let (Some(org), Some(token)) = (report.org.clone(), token) else {
        let reason = report.failure().map(|f| f.detail.clone()).unwrap_or_default();
        return Err(ApiError::CheckFailed(reason, Box::new(report)));
    };
    let now = state.clock.now_ms();
    let connection = Connection {
        id: ConnectionId::generate(),
        account_id: account,
        kind: ConnectionKind::New { name: valid.name },
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
    let label = match &connection.kind {
        ConnectionKind::New { name } => name.as_str().to_string(),
        ConnectionKind::Legacy { .. } => connection.id.to_string(),
    };
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
    Ok((StatusCode::CREATED, Json(ConnectionView::from(&connection))).into_response())
}

#[derive(Debug, Serialize)]
struct Deleted {
    deleted: bool,
    /// Whether Salesforce confirmed the revoke.
    revoked: bool,
    message: String,
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let connection = state.store.get(&account, &parse_id(&id)?).await?;
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
    let label = match &connection.kind {
        ConnectionKind::New { name } => name.as_str().to_string(),
        ConnectionKind::Legacy { .. } => connection.id.to_string(),
    };
    let detail = if revoked.is_ok() { "tokens revoked at Salesforce" } else { "Salesforce did not confirm the revoke" };
    record(
        &state,
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
    Ok(Json(Deleted { deleted: true, revoked, message }))
}

/// A check's result in words, for the audit log.
pub(super) fn outcome(report: &Report) -> String {
    match report.failure() {
        None => "all checks passed".to_string(),
        Some(f) => format!("failed at {}: {}", f.title, f.detail),
    }
}

/// Writes an audit entry. A failure is logged loudly but does not undo what already happened.
pub(super) async fn record(state: &AppState, entry: domain::AuditEntry) {
    if let Err(e) = state.store.record(&entry).await {
        tracing::error!(error = %e, action = %entry.action, "could not write the audit log");
    }
}
