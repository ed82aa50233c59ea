//! F1: connecting with OAuth. `POST /api/v1/connections/oauth/start` returns Salesforce's
//! authorize URL (with `state` and PKCE S256); the admin signs in on Salesforce — Lightbridge
//! never sees their password — and Salesforce sends the browser to `/oauth/callback`, which
//! checks the state (single use, 10 minutes, bound to the user and account that started it),
//! exchanges the code, verifies the reply's signature, runs every check step and saves the
//! connection only if all pass.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::{AuthMethod, ConnectionId, ConnectionKind, ConnectionName, EnvironmentId, LoginHost, OrgType, SystemId};
use salesforce::checks::{self, Report};
use salesforce::oauth::authorize_url;
use salesforce::{ClientCredentials, Pkce};
use serde::{Deserialize, Serialize};
use store::{AccessStore, CatalogStore, ConnectionStore};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vault::ClientSecret;

use super::auth::random_token;
use super::connections::{
    Valid, org_type_setting, outcome, parse_basics, parse_org_settings, record, save_new, sf_org_type,
};
use super::{ApiError, Caller, ErrorBody, hash_token};
use crate::AppState;

/// How long an admin has to finish the Salesforce sign-in.
const STATE_TTL_MS: i64 = 10 * 60 * 1000;
/// What Lightbridge asks for: API access, refresh tokens, and the identity service.
const SCOPES: &str = "api refresh_token id";

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start)).routes(routes!(reconnect)).routes(routes!(start_connector))
}

pub fn callback_routes() -> Router<AppState> {
    Router::new().route("/oauth/callback", get(callback))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartInput {
    /// Unique in the account.
    pub name: String,
    /// `production` or `sandbox`.
    pub org_type: String,
    /// `login`, `test`, or a My Domain URL.
    pub login_host: String,
    /// The connected app's consumer key and secret.
    pub consumer_key: String,
    pub consumer_secret: String,
    /// Test Connection (F11) for OAuth: sign in, run every check step, revoke what Salesforce
    /// issued, save nothing. The callback answers with the steps.
    #[serde(default)]
    pub test_only: bool,
}

/// A legacy connector's sign-in (F4): no name, it is bound to the system and environment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectorInput {
    /// env_…: one of the account's environments.
    pub environment_id: String,
    pub org_type: String,
    pub login_host: String,
    pub consumer_key: String,
    pub consumer_secret: String,
}

/// Reconnect (F10) with, optionally, new sign-in settings; left out, the stored ones are used.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReconnectInput {
    pub org_type: Option<String>,
    pub login_host: Option<String>,
    pub consumer_key: Option<String>,
    pub consumer_secret: Option<String>,
}

/// What waits, sealed in the store, for the callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    name: String,
    org_type: OrgType,
    login_host: String,
    consumer_key: String,
    consumer_secret: String,
    verifier: String,
    /// Reconnect (F10): the connection whose tokens this sign-in replaces.
    #[serde(default)]
    reconnect: Option<String>,
    /// A legacy connector (F4): the system and environment it is for.
    #[serde(default)]
    legacy: Option<(String, String)>,
    /// Test Connection only: check, revoke, save nothing.
    #[serde(default)]
    test_only: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Started {
    /// Send the admin's browser here: Salesforce's sign-in and approval page.
    pub authorize_url: String,
    pub expires_at: i64,
}

/// F1: starts an OAuth connection. Returns Salesforce's authorize URL (with `state` and PKCE
/// S256); after the admin signs in there, Salesforce sends the browser to `/oauth/callback`,
/// which checks everything and saves the connection only if every step passes.
#[utoipa::path(post, path = "/connections/oauth/start", tag = "connections", request_body = StartInput,
    responses((status = 200, body = Started), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    input: Result<Json<StartInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Started>, ApiError> {
    caller.require_connection_admin()?;
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    start_oauth(&state, &caller, input).await.map(Json)
}

/// The connected app's consumer key and secret are both needed to start a sign-in.
fn require_app(consumer_key: &str, consumer_secret: &str, errors: &mut Vec<(String, String)>) {
    if consumer_key.trim().is_empty() {
        errors.push(("consumer_key".into(), "the consumer key is required".into()));
    }
    if consumer_secret.is_empty() {
        errors.push(("consumer_secret".into(), "the consumer secret is required".into()));
    }
}

/// F1 start: validates the settings and returns Salesforce's authorize URL.
pub(crate) async fn start_oauth(state: &AppState, caller: &Caller, input: StartInput) -> Result<Started, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let mut errors = Vec::new();
    let (name, org_type, login_host) = parse_basics(&input.name, &input.org_type, &input.login_host, &mut errors);
    require_app(&input.consumer_key, &input.consumer_secret, &mut errors);
    let (Some(name), Some(org_type), Some(login_host)) = (name, org_type, login_host) else {
        return Err(ApiError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let pending = Pending {
        name: name.as_str().to_string(),
        org_type,
        login_host: login_host.as_setting(),
        consumer_key: input.consumer_key.trim().to_string(),
        consumer_secret: input.consumer_secret,
        verifier: String::new(),
        reconnect: None,
        legacy: None,
        test_only: input.test_only,
    };
    begin(state, caller, &account, pending).await
}

/// F4: connects a legacy connector for a system × environment through the same OAuth sign-in.
/// Refused while Connectors are off for the account, or when the slot already has one.
#[utoipa::path(post, path = "/systems/{id}/connectors", tag = "systems", request_body = ConnectorInput,
    params(("id" = String, Path, description = "sys_…")),
    responses((status = 200, body = Started), (status = 404, body = ErrorBody),
        (status = 403, description = "`connectors_disabled`, or not an admin", body = ErrorBody),
        (status = 409, description = "the environment already has a connector", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn start_connector(
    State(state): State<AppState>,
    caller: Caller,
    Path(system_id): Path<String>,
    input: Result<Json<ConnectorInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Started>, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let id = SystemId::parse(&system_id).map_err(|_| ApiError::NotFound)?;
    state.store.system(&account, &id).await?;
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    start_legacy(&state, &caller, &system_id, input).await.map(Json)
}

/// F4 start: a legacy connector's sign-in for one system × environment.
pub(crate) async fn start_legacy(
    state: &AppState,
    caller: &Caller,
    system_id: &str,
    input: ConnectorInput,
) -> Result<Started, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let system_id = SystemId::parse(system_id).map_err(|_| ApiError::NotFound)?;
    let system = state.store.system(&account, &system_id).await?;
    if !state.store.account(&account).await?.connectors_enabled {
        return Err(ApiError::ConnectorsDisabled);
    }
    let mut errors = Vec::new();
    let environment = match EnvironmentId::parse(&input.environment_id) {
        Ok(id) => match state.store.environment(&account, &id).await {
            Ok(env) => Some(env),
            Err(store::StoreError::NotFound) => {
                errors.push(("environment_id".to_string(), "no such environment in this account".to_string()));
                None
            }
            Err(e) => return Err(e.into()),
        },
        Err(_) => {
            errors.push(("environment_id".to_string(), "not an environment id (env_…)".to_string()));
            None
        }
    };
    let (org_type, login_host) = parse_org_settings(&input.org_type, &input.login_host, &mut errors);
    require_app(&input.consumer_key, &input.consumer_secret, &mut errors);
    let (Some(environment), Some(org_type), Some(login_host)) = (environment, org_type, login_host) else {
        return Err(ApiError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let taken = state.store.legacy_connectors(&account, &system.id).await?;
    if taken
        .iter()
        .any(|c| matches!(&c.kind, ConnectionKind::Legacy { environment_id, .. } if *environment_id == environment.id))
    {
        return Err(ApiError::Conflict(format!(
            "{} already has a connector for {}: reconnect or remove it instead",
            system.name, environment.name
        )));
    }
    let pending = Pending {
        name: format!("{} × {}", system.name, environment.name),
        org_type,
        login_host: login_host.as_setting(),
        consumer_key: input.consumer_key.trim().to_string(),
        consumer_secret: input.consumer_secret,
        verifier: String::new(),
        reconnect: None,
        legacy: Some((system.id.to_string(), environment.id.to_string())),
        test_only: false,
    };
    begin(state, caller, &account, pending).await
}

/// Stores the pending sign-in under a fresh state and returns Salesforce's authorize URL.
async fn begin(
    state: &AppState,
    caller: &Caller,
    account: &domain::AccountId,
    mut pending: Pending,
) -> Result<Started, ApiError> {
    let login_host = LoginHost::parse(&pending.login_host)?;
    let base = state.urls.base_for(&login_host).map_err(|e| ApiError::invalid("login_host", e.to_string()))?;
    state.client.policy().check(&base).map_err(|e| ApiError::invalid("login_host", e.to_string()))?;
    let pkce = Pkce::generate().map_err(|_| ApiError::Internal)?;
    pending.verifier = pkce.verifier.clone();
    let state_token = random_token()?;
    let payload = serde_json::to_string(&pending).map_err(|_| ApiError::Internal)?;
    let now = state.clock.now_ms();
    state
        .store
        .save_oauth_state(&hash_token(&state_token), account, &caller.user.id, &payload, now + STATE_TTL_MS)
        .await?;
    let url = authorize_url(&base, &pending.consumer_key, &state.oauth_callback(), SCOPES, &state_token, &pkce);
    Ok(Started { authorize_url: url.to_string(), expires_at: now + STATE_TTL_MS })
}

/// F10 Reconnect: the same OAuth sign-in for an existing connection (optionally with new
/// sign-in settings); the callback keeps its id, replaces its tokens, and refuses a sign-in to
/// a different org.
#[utoipa::path(post, path = "/connections/{id}/reconnect", tag = "connections",
    params(("id" = String, Path, description = "conn_…")),
    request_body(content = Option<ReconnectInput>, description = "optional: new sign-in settings"),
    responses((status = 200, body = Started), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reconnect(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Started>, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let parsed = ConnectionId::parse(&id).map_err(|_| ApiError::NotFound)?;
    state.store.get(&account, &parsed).await?;
    let input: ReconnectInput = if body.iter().all(u8::is_ascii_whitespace) {
        ReconnectInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?
    };
    start_reconnect(&state, &caller, &id, input).await.map(Json)
}

/// F10 Reconnect start: the stored (or the given) settings, the connection's id in the state.
pub(crate) async fn start_reconnect(
    state: &AppState,
    caller: &Caller,
    id: &str,
    input: ReconnectInput,
) -> Result<Started, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let id = ConnectionId::parse(id).map_err(|_| ApiError::NotFound)?;
    let connection = state.store.get(&account, &id).await?;
    let AuthMethod::OAuth { consumer_key } = &connection.auth else {
        return Err(ApiError::invalid(
            "auth",
            "only OAuth connections reconnect through Salesforce's sign-in; JWT and client-credentials connections get new tokens by themselves (fix their settings if they fail)",
        ));
    };
    let mut errors = Vec::new();
    let (org_type, login_host) = parse_org_settings(
        input.org_type.as_deref().unwrap_or(org_type_setting(connection.org_type)),
        &input.login_host.clone().unwrap_or_else(|| connection.login_host.as_setting()),
        &mut errors,
    );
    let consumer_key = input.consumer_key.as_deref().map(str::trim).unwrap_or(consumer_key).to_string();
    if consumer_key.is_empty() {
        errors.push(("consumer_key".into(), "the consumer key is required".into()));
    }
    let secret = match input.consumer_secret {
        Some(s) if s.is_empty() => {
            errors.push(("consumer_secret".into(), "the consumer secret cannot be empty".into()));
            String::new()
        }
        Some(s) => s,
        None => state
            .store
            .secrets(&id)
            .await?
            .consumer_secret
            .map(|s| s.expose_secret().to_string())
            .ok_or_else(|| ApiError::invalid("consumer_secret", "no consumer secret is stored: give one"))?,
    };
    let (Some(org_type), Some(login_host)) = (org_type, login_host) else {
        return Err(ApiError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let pending = Pending {
        name: super::connections::label(&connection),
        org_type,
        login_host: login_host.as_setting(),
        consumer_key,
        consumer_secret: secret,
        verifier: String::new(),
        reconnect: Some(id.to_string()),
        legacy: None,
        test_only: false,
    };
    begin(state, caller, &account, pending).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Salesforce's authorize errors, in words an admin can act on.
fn authorize_error(error: &str, description: &str) -> String {
    match error {
        "access_denied" => "You chose Deny on Salesforce's page, so nothing was connected. Start again and choose Allow.".into(),
        "invalid_client" if description.contains("installed") => {
            "The connected app is not installed in this org: in Salesforce Setup, open Connected Apps OAuth Usage and install it, then start again.".into()
        }
        "invalid_scope" => "The connected app does not allow the scopes Lightbridge needs (api, refresh_token, id): add them to the app's OAuth scopes.".into(),
        _ => format!("Salesforce refused the sign-in: {error} ({description})."),
    }
}

/// What a finished sign-in did.
#[derive(Debug)]
pub(crate) enum Finished {
    Created(domain::Connection),
    Reconnected(domain::Connection),
    /// Test Connection: every step's result; nothing saved, nothing left authorized.
    Tested(Report),
}

/// The settings a sign-in was started with (never its secret), so a page can offer to start
/// again with everything the admin typed.
#[derive(Debug, Clone, Default)]
pub(crate) struct SignInContext {
    pub name: String,
    pub org_type: Option<OrgType>,
    pub login_host: String,
    pub consumer_key: String,
    pub reconnect: Option<String>,
    pub legacy: Option<(String, String)>,
    /// The consumer secret the admin typed, to refill their form after a Test Connection or a
    /// failed check (only ever shown back to the same signed-in user).
    pub consumer_secret: Option<ClientSecret>,
}

/// `/oauth/callback`: browsers (asking for HTML) land on an Admin Center page; API clients
/// get JSON.
async fn callback(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    signed_in: Result<crate::console::SignedIn, crate::console::NotSignedIn>,
    headers: axum::http::HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let html =
        headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    let caller = match caller {
        Ok(caller) => caller,
        Err(e) if html => return crate::console::sign_in_first(&e),
        Err(e) => return e.into_response(),
    };
    let (context, result) = finish_oauth(&state, &caller, params).await;
    if html {
        return crate::console::oauth_landing(signed_in, context, result).await;
    }
    match result {
        Ok(Finished::Created(connection)) => {
            (axum::http::StatusCode::CREATED, Json(super::connections::ConnectionView::from(&connection)))
                .into_response()
        }
        Ok(Finished::Reconnected(connection)) => {
            Json(super::connections::ConnectionView::from(&connection)).into_response()
        }
        Ok(Finished::Tested(report)) => {
            Json(serde_json::json!({"passed": report.passed(), "steps": report.steps, "org": report.org}))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Finishes an OAuth sign-in: the state (single use, unexpired, this user's), the code
/// exchange with its signature check, every check step, then save or reconnect.
pub(crate) async fn finish_oauth(
    state: &AppState,
    caller: &Caller,
    params: CallbackParams,
) -> (Option<SignInContext>, Result<Finished, ApiError>) {
    let account = match caller.require_connection_admin() {
        Ok(a) => a.clone(),
        Err(e) => return (None, Err(e)),
    };
    let pending = match take_pending(state, caller, &account, &params).await {
        Ok(p) => p,
        Err(e) => return (None, Err(e)),
    };
    let context = SignInContext {
        name: pending.name.clone(),
        org_type: Some(pending.org_type),
        login_host: pending.login_host.clone(),
        consumer_key: pending.consumer_key.clone(),
        reconnect: pending.reconnect.clone(),
        legacy: pending.legacy.clone(),
        consumer_secret: Some(ClientSecret::new(pending.consumer_secret.clone())),
    };
    (Some(context), complete(state, caller, account, pending, params).await)
}

async fn take_pending(
    state: &AppState,
    caller: &Caller,
    account: &domain::AccountId,
    params: &CallbackParams,
) -> Result<Pending, ApiError> {
    let state_token = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("state", "the callback has no state"))?;
    // Single use, unexpired, and only for whoever started it: a forged, replayed or someone
    // else's state finds nothing.
    let payload = state.store.take_oauth_state(&hash_token(state_token), account, &caller.user.id, state.clock.now_ms()).await.map_err(|e| match e {
        store::StoreError::NotFound => ApiError::invalid(
            "state",
            "this sign-in is not valid any more: it was already used, it expired (10 minutes), or another user started it. Start again.",
        ),
        other => other.into(),
    })?;
    serde_json::from_str(&payload).map_err(|_| ApiError::Internal)
}

async fn complete(
    state: &AppState,
    caller: &Caller,
    account: domain::AccountId,
    pending: Pending,
    params: CallbackParams,
) -> Result<Finished, ApiError> {
    if let Some(error) = params.error.as_deref() {
        return Err(ApiError::invalid(
            "authorize",
            authorize_error(error, params.error_description.as_deref().unwrap_or("")),
        ));
    }
    let code = params
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::invalid("code", "the callback has no code"))?;
    let login_host = LoginHost::parse(&pending.login_host)?;
    let base = state.urls.base_for(&login_host).map_err(|e| ApiError::invalid("login_host", e.to_string()))?;
    let secret = ClientSecret::new(pending.consumer_secret);
    let app = ClientCredentials { consumer_key: pending.consumer_key.clone(), consumer_secret: Some(secret.clone()) };
    let (report, token) =
        match state.client.exchange_code(&base, &app, code, &state.oauth_callback(), &pending.verifier).await {
            Ok(token) => (checks::run(&state.client, &token, sf_org_type(pending.org_type)).await, Some(token)),
            Err(e) => (Report::token_failed(&e), None),
        };
    if let Some(id) = &pending.reconnect {
        let settings = (pending.org_type, login_host, pending.consumer_key.clone(), secret);
        let connection = finish_reconnect(state, caller, &account, id, &base, settings, report, token).await?;
        return Ok(Finished::Reconnected(connection));
    }
    if pending.test_only {
        if let Some(token) = &token {
            let revoke =
                token.refresh_token.as_ref().map(|r| r.expose_secret()).unwrap_or(token.access_token.expose_secret());
            let _ = state.client.revoke(&base, revoke).await;
        }
        let outcome = outcome(&report);
        record(
            state,
            caller.audit(
                state.clock.now_ms(),
                "connection.tested",
                "connection",
                None,
                Some(&pending.name),
                Some(outcome),
            ),
        )
        .await;
        return Ok(Finished::Tested(report));
    }
    let kind = match &pending.legacy {
        Some((system, environment)) => ConnectionKind::Legacy {
            system_id: SystemId::parse(system).map_err(|_| ApiError::Internal)?,
            environment_id: EnvironmentId::parse(environment).map_err(|_| ApiError::Internal)?,
            active: true,
        },
        None => ConnectionKind::New { name: ConnectionName::parse(&pending.name)? },
    };
    let valid = Valid {
        kind,
        org_type: pending.org_type,
        login_host,
        auth: AuthMethod::OAuth { consumer_key: pending.consumer_key },
        consumer_secret: Some(secret),
        private_key: None,
    };
    if !report.passed()
        && let Some(token) = &token
        && let Some(refresh) = &token.refresh_token
    {
        // Nothing is saved, so nothing may stay authorized at Salesforce either.
        let _ = state.client.revoke(&base, refresh.expose_secret()).await;
    }
    if !report.passed() {
        let outcome = outcome(&report);
        record(
            state,
            caller.audit(
                state.clock.now_ms(),
                "connection.oauth_failed",
                "connection",
                None,
                Some(&pending.name),
                Some(outcome),
            ),
        )
        .await;
    }
    let connection = save_new(state, caller, account, valid, report, token).await?;
    Ok(Finished::Created(connection))
}

/// Replaces a connection's tokens (and the sign-in settings used) after a passing check, if
/// the sign-in reached the same org.
#[allow(clippy::too_many_arguments)]
async fn finish_reconnect(
    state: &AppState,
    caller: &Caller,
    account: &domain::AccountId,
    id: &str,
    base: &url::Url,
    (org_type, login_host, consumer_key, secret): (OrgType, LoginHost, String, ClientSecret),
    report: Report,
    token: Option<salesforce::TokenResponse>,
) -> Result<domain::Connection, ApiError> {
    // Whatever goes wrong below, tokens Salesforce just issued must not stay authorized.
    let revoke = |token: &Option<salesforce::TokenResponse>| {
        let refresh = token.as_ref().and_then(|t| t.refresh_token.as_ref()).map(|r| r.expose_secret().to_string());
        async move {
            if let Some(refresh) = refresh {
                let _ = state.client.revoke(base, &refresh).await;
            }
        }
    };
    let id = ConnectionId::parse(id).map_err(|_| ApiError::Internal)?;
    let mut connection = match state.store.get(account, &id).await {
        Ok(c) => c,
        Err(e) => {
            revoke(&token).await;
            return Err(e.into());
        }
    };
    let (Some(org), Some(fresh)) = (report.org.clone(), token.clone()) else {
        revoke(&token).await;
        let reason = report.failure().map(|f| f.detail.clone()).unwrap_or_default();
        return Err(ApiError::CheckFailed(reason, Box::new(report)));
    };
    let now = state.clock.now_ms();
    if let Some(existing) = &connection.org
        && existing.org_id != org.org_id
    {
        revoke(&token).await;
        let message = format!(
            "you signed in to {} ({}), but this connection belongs to {} ({}): sign in as a user of that org, or add a new connection",
            org.org_name, org.org_id, existing.org_name, existing.org_id
        );
        record(
            state,
            caller.audit(
                now,
                "connection.reconnect_refused",
                "connection",
                Some(id.as_str()),
                None,
                Some(message.clone()),
            ),
        )
        .await;
        return Err(ApiError::Conflict(message));
    }
    connection.org = Some(domain::OrgFacts {
        org_id: org.org_id,
        org_name: org.org_name,
        instance_url: org.instance_url,
        user_id: org.user_id,
        username: org.username,
        email: org.email.clone(),
    });
    connection.status = domain::ConnectionStatus::LoggedIn;
    connection.status_detail = None;
    connection.status_checked_at = Some(now);
    connection.modified_at = now;
    connection.modified_by = org.email;
    connection.org_type = org_type;
    connection.login_host = login_host;
    connection.auth = AuthMethod::OAuth { consumer_key };
    let secrets = store::NewSecrets {
        consumer_secret: Some(secret),
        tokens: Some(store::TokenSet {
            access_token: fresh.access_token,
            refresh_token: fresh.refresh_token,
            instance_url: fresh.instance_url.to_string(),
        }),
        ..Default::default()
    };
    state.store.update(&connection, &secrets).await?;
    record(
        state,
        caller.audit(
            now,
            "connection.reconnected",
            "connection",
            Some(id.as_str()),
            None,
            Some("signed in again; tokens replaced".into()),
        ),
    )
    .await;
    Ok(connection)
}
