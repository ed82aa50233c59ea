//! F1: connecting with OAuth. `POST /api/v1/connections/oauth/start` returns Salesforce's
//! authorize URL (with `state` and PKCE S256); the admin signs in on Salesforce — Lightbridge
//! never sees their password — and Salesforce sends the browser to `/oauth/callback`, which
//! checks the state (single use, 10 minutes, bound to the user and account that started it),
//! exchanges the code, verifies the reply's signature, runs every check step and saves the
//! connection only if all pass.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::{AuthMethod, ConnectionId, ConnectionName, LoginHost, OrgType};
use salesforce::checks::{self, Report};
use salesforce::oauth::authorize_url;
use salesforce::{ClientCredentials, Pkce};
use serde::{Deserialize, Serialize};
use store::{AccessStore, ConnectionStore};
use vault::ClientSecret;

use super::auth::random_token;
use super::connections::{Valid, outcome, parse_basics, record, save_new, sf_org_type};
use super::{ApiError, Caller, hash_token};
use crate::AppState;

/// How long an admin has to finish the Salesforce sign-in.
const STATE_TTL_MS: i64 = 10 * 60 * 1000;
/// What Lightbridge asks for: API access, refresh tokens, and the identity service.
const SCOPES: &str = "api refresh_token id";

pub fn api_routes() -> Router<AppState> {
    Router::new().route("/connections/oauth/start", post(start)).route("/connections/{id}/reconnect", post(reconnect))
}

pub fn callback_routes() -> Router<AppState> {
    Router::new().route("/oauth/callback", get(callback))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartInput {
    name: String,
    org_type: String,
    login_host: String,
    consumer_key: String,
    consumer_secret: String,
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
}

#[derive(Debug, Serialize)]
struct Started {
    authorize_url: String,
    expires_at: i64,
}

async fn start(
    State(state): State<AppState>,
    caller: Caller,
    input: Result<Json<StartInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Started>, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let mut errors = Vec::new();
    let (name, org_type, login_host) = parse_basics(&input.name, &input.org_type, &input.login_host, &mut errors);
    if input.consumer_key.trim().is_empty() {
        errors.push(("consumer_key".into(), "the consumer key is required".into()));
    }
    if input.consumer_secret.is_empty() {
        errors.push(("consumer_secret".into(), "the consumer secret is required".into()));
    }
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
    };
    begin(&state, &caller, &account, pending).await
}

/// Stores the pending sign-in under a fresh state and returns Salesforce's authorize URL.
async fn begin(
    state: &AppState,
    caller: &Caller,
    account: &domain::AccountId,
    mut pending: Pending,
) -> Result<Json<Started>, ApiError> {
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
    Ok(Json(Started { authorize_url: url.to_string(), expires_at: now + STATE_TTL_MS }))
}

/// F10 Reconnect: the same OAuth sign-in for an existing connection; the callback keeps its
/// id and refuses a different org.
async fn reconnect(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Started>, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let id = ConnectionId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let connection = state.store.get(&account, &id).await?;
    let AuthMethod::OAuth { consumer_key } = &connection.auth else {
        return Err(ApiError::invalid(
            "auth",
            "only OAuth connections reconnect through Salesforce's sign-in; JWT and client-credentials connections get new tokens by themselves (fix their settings if they fail)",
        ));
    };
    let secret = state
        .store
        .secrets(&id)
        .await?
        .consumer_secret
        .ok_or_else(|| ApiError::invalid("consumer_secret", "no consumer secret is stored"))?;
    let name = match &connection.kind {
        domain::ConnectionKind::New { name } => name.as_str().to_string(),
        domain::ConnectionKind::Legacy { .. } => connection.id.to_string(),
    };
    let pending = Pending {
        name,
        org_type: connection.org_type,
        login_host: connection.login_host.as_setting(),
        consumer_key: consumer_key.clone(),
        consumer_secret: secret.expose_secret().to_string(),
        verifier: String::new(),
        reconnect: Some(id.to_string()),
    };
    begin(&state, &caller, &account, pending).await
}

#[derive(Debug, Deserialize)]
struct CallbackParams {
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

async fn callback(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<CallbackParams>,
) -> Result<Response, ApiError> {
    let account = caller.require_connection_admin()?.clone();
    let state_token = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("state", "the callback has no state"))?;
    // Single use, unexpired, and only for whoever started it: a forged, replayed or someone
    // else's state finds nothing.
    let payload = state.store.take_oauth_state(&hash_token(state_token), &account, &caller.user.id, state.clock.now_ms()).await.map_err(|e| match e {
        store::StoreError::NotFound => ApiError::invalid(
            "state",
            "this sign-in is not valid any more: it was already used, it expired (10 minutes), or another user started it. Start again.",
        ),
        other => other.into(),
    })?;
    let pending: Pending = serde_json::from_str(&payload).map_err(|_| ApiError::Internal)?;
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
        return finish_reconnect(&state, &caller, &account, id, &base, report, token).await;
    }
    let valid = Valid {
        name: ConnectionName::parse(&pending.name)?,
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
            &state,
            caller.audit(
                state.clock.now_ms(),
                "connection.oauth_failed",
                "connection",
                None,
                Some(valid.name.as_str()),
                Some(outcome),
            ),
        )
        .await;
    }
    save_new(&state, &caller, account, valid, report, token).await
}

/// Replaces a connection's tokens after a passing check, if the sign-in reached the same org.
async fn finish_reconnect(
    state: &AppState,
    caller: &Caller,
    account: &domain::AccountId,
    id: &str,
    base: &url::Url,
    report: Report,
    token: Option<salesforce::TokenResponse>,
) -> Result<Response, ApiError> {
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
    let secrets = store::NewSecrets {
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
    Ok(Json(super::connections::ConnectionView::from(&connection)).into_response())
}
