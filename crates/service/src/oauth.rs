//! F1, F4, F10: connecting with OAuth. [`start_oauth`] (and its legacy-connector and reconnect
//! variants) returns Salesforce's authorize URL (with `state` and PKCE S256); the admin signs in
//! on Salesforce — Lightbridge never sees their password — and Salesforce sends the browser to
//! `/oauth/callback`, whose adapter calls [`finish_oauth`]: the state is checked (single use,
//! 10 minutes, bound to the user and account that started it), the code exchanged, the reply's
//! signature verified, every check step run, and the connection saved only if all pass.

use domain::{AuthMethod, ConnectionId, ConnectionKind, ConnectionName, EnvironmentId, LoginHost, OrgType, SystemId};
use salesforce::checks::{self, Report};
use salesforce::oauth::authorize_url;
use salesforce::{ClientCredentials, Pkce};
use serde::{Deserialize, Serialize};
use store::{AccessStore, CatalogStore, ConnectionStore};
use vault::ClientSecret;

use crate::audit::record;
use crate::connections::{
    Valid, org_type_setting, parse_basics, parse_org_settings, record_check, save_new, sf_org_type,
};
use crate::secrets::{hash_token, random_token};
use crate::{Actor, Service, ServiceError};

/// How long an admin has to finish the Salesforce sign-in.
const STATE_TTL_MS: i64 = 10 * 60 * 1000;
/// What Lightbridge asks for: API access, refresh tokens, and the identity service.
const SCOPES: &str = "api refresh_token id";

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StartInput {
    /// Unique in the account.
    pub name: String,
    /// `production` or `sandbox`.
    pub org_type: String,
    /// `login`, `test`, or a My Domain URL.
    pub login_host: String,
    /// The connected app's consumer key and secret.
    pub consumer_key: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer_secret: ClientSecret,
    /// Test Connection (F11) for OAuth: sign in, run every check step, revoke what Salesforce
    /// issued, save nothing. The callback answers with the steps.
    #[serde(default)]
    pub test_only: bool,
}

/// A legacy connector's sign-in (F4): no name, it is bound to the system and environment.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectorInput {
    /// env_…: one of the account's environments.
    pub environment_id: String,
    pub org_type: String,
    pub login_host: String,
    pub consumer_key: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer_secret: ClientSecret,
}

/// Reconnect (F10) with, optionally, new sign-in settings; left out, the stored ones are used.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReconnectInput {
    pub org_type: Option<String>,
    pub login_host: Option<String>,
    pub consumer_key: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub consumer_secret: Option<ClientSecret>,
    /// The Admin Center page the reconnect started from, to go back to (not part of the API).
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub return_to: Option<String>,
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
    /// The Admin Center page the sign-in started from.
    #[serde(default)]
    return_to: Option<String>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Started {
    /// Send the admin's browser here: Salesforce's sign-in and approval page.
    pub authorize_url: String,
    pub expires_at: i64,
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
pub async fn start_oauth(svc: &Service, actor: &Actor, input: StartInput) -> Result<Started, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let mut errors = Vec::new();
    let (name, org_type, login_host) = parse_basics(&input.name, &input.org_type, &input.login_host, &mut errors);
    require_app(&input.consumer_key, input.consumer_secret.expose_secret(), &mut errors);
    let (Some(name), Some(org_type), Some(login_host)) = (name, org_type, login_host) else {
        return Err(ServiceError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    // Saving: a taken name is refused before the trip to Salesforce, not after it.
    if !input.test_only {
        crate::connections::name_free(svc, &account, name.as_str()).await?;
    }
    let pending = Pending {
        name: name.as_str().to_string(),
        org_type,
        login_host: login_host.as_setting(),
        consumer_key: input.consumer_key.trim().to_string(),
        consumer_secret: input.consumer_secret.expose_secret().to_string(),
        verifier: String::new(),
        reconnect: None,
        legacy: None,
        test_only: input.test_only,
        return_to: None,
    };
    begin(svc, actor, &account, pending).await
}

/// F4 start: a legacy connector's sign-in for one system × environment.
pub async fn start_legacy(
    svc: &Service,
    actor: &Actor,
    system_id: &str,
    input: ConnectorInput,
) -> Result<Started, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let system_id = crate::catalog::system_id(system_id)?;
    let system = svc.store.system(&account, &system_id).await?;
    if !svc.store.account(&account).await?.connectors_enabled {
        return Err(ServiceError::ConnectorsDisabled);
    }
    let mut errors = Vec::new();
    let environment = match EnvironmentId::parse(&input.environment_id) {
        Ok(id) => match svc.store.environment(&account, &id).await {
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
    require_app(&input.consumer_key, input.consumer_secret.expose_secret(), &mut errors);
    let (Some(environment), Some(org_type), Some(login_host)) = (environment, org_type, login_host) else {
        return Err(ServiceError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    let taken = svc.store.legacy_connectors(&account, &system.id).await?;
    if taken
        .iter()
        .any(|c| matches!(&c.kind, ConnectionKind::Legacy { environment_id, .. } if *environment_id == environment.id))
    {
        return Err(ServiceError::conflict(format!(
            "{} already has a connector for {}: reconnect or remove it instead",
            system.name, environment.name
        )));
    }
    let pending = Pending {
        name: format!("{} × {}", system.name, environment.name),
        org_type,
        login_host: login_host.as_setting(),
        consumer_key: input.consumer_key.trim().to_string(),
        consumer_secret: input.consumer_secret.expose_secret().to_string(),
        verifier: String::new(),
        reconnect: None,
        legacy: Some((system.id.to_string(), environment.id.to_string())),
        test_only: false,
        return_to: None,
    };
    begin(svc, actor, &account, pending).await
}

/// Stores the pending sign-in under a fresh state and returns Salesforce's authorize URL.
async fn begin(
    svc: &Service,
    actor: &Actor,
    account: &domain::AccountId,
    mut pending: Pending,
) -> Result<Started, ServiceError> {
    let login_host = LoginHost::parse(&pending.login_host)?;
    let base = svc.urls.base_for(&login_host).map_err(|e| ServiceError::invalid("login_host", e.to_string()))?;
    svc.client.policy().check(&base).map_err(|e| ServiceError::invalid("login_host", e.to_string()))?;
    let pkce = Pkce::generate().map_err(|e| ServiceError::internal("PKCE", e))?;
    pending.verifier = pkce.verifier.clone();
    let state_token = random_token()?;
    let payload =
        serde_json::to_string(&pending).map_err(|e| ServiceError::internal("sealing a pending sign-in", e))?;
    let now = svc.clock.now_ms();
    svc.store
        .save_oauth_state(&hash_token(&state_token), account, &actor.user.id, &payload, now + STATE_TTL_MS)
        .await?;
    let url = authorize_url(&base, &pending.consumer_key, &svc.oauth_callback(), SCOPES, &state_token, &pkce);
    Ok(Started { authorize_url: url.to_string(), expires_at: now + STATE_TTL_MS })
}

/// F10 Reconnect start: the stored (or the given) settings, the connection's id in the state.
pub async fn start_reconnect(
    svc: &Service,
    actor: &Actor,
    id: &str,
    input: ReconnectInput,
) -> Result<Started, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let id = crate::connections::parse_id(id)?;
    let connection = svc.store.get(&account, &id).await?;
    let AuthMethod::OAuth { consumer_key } = &connection.auth else {
        return Err(ServiceError::invalid(
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
        Some(s) if s.expose_secret().is_empty() => {
            errors.push(("consumer_secret".into(), "the consumer secret cannot be empty".into()));
            String::new()
        }
        Some(s) => s.expose_secret().to_string(),
        None => svc
            .store
            .secrets(&id)
            .await?
            .consumer_secret
            .map(|s| s.expose_secret().to_string())
            .ok_or_else(|| ServiceError::invalid("consumer_secret", "no consumer secret is stored: give one"))?,
    };
    let (Some(org_type), Some(login_host)) = (org_type, login_host) else {
        return Err(ServiceError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    let pending = Pending {
        name: crate::connections::label(&connection),
        org_type,
        login_host: login_host.as_setting(),
        consumer_key,
        consumer_secret: secret,
        verifier: String::new(),
        reconnect: Some(id.to_string()),
        legacy: None,
        test_only: false,
        return_to: input.return_to,
    };
    begin(svc, actor, &account, pending).await
}

#[derive(Debug, Deserialize)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
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
pub enum Finished {
    Created(domain::Connection),
    Reconnected(domain::Connection),
    /// Test Connection: every step's result. A passing test's grant is kept sealed for a few
    /// minutes (`grant`) so Save takes it without a second sign-in at Salesforce; nobody saving
    /// it, it is revoked. A failing test leaves nothing authorized.
    Tested {
        report: Report,
        grant: Option<String>,
    },
}

/// How long a passing OAuth Test Connection's grant waits for Save before it is revoked.
pub const TESTED_GRANT_MS: i64 = 5 * 60 * 1000;
const TESTED: &str = "tested_grant";

/// A passing test's grant, sealed in the store until Save takes it (or it is revoked).
#[derive(Serialize, Deserialize)]
struct TestedGrant {
    account: String,
    user: String,
    org_type: OrgType,
    login_host: String,
    consumer_key: String,
    consumer_secret: String,
    access_token: String,
    refresh_token: Option<String>,
    instance_url: String,
    report: Report,
}

/// The settings a sign-in was started with (never its secret), so a page can offer to start
/// again with everything the admin typed.
#[derive(Debug, Clone, Default)]
pub struct SignInContext {
    pub name: String,
    pub org_type: Option<OrgType>,
    pub login_host: String,
    pub consumer_key: String,
    pub reconnect: Option<String>,
    pub legacy: Option<(String, String)>,
    /// The consumer secret the admin typed, to refill their form after a Test Connection or a
    /// failed check (only ever shown back to the same signed-in user).
    pub consumer_secret: Option<ClientSecret>,
    /// The Admin Center page the sign-in started from (a reconnect's), if any.
    pub return_to: Option<String>,
}

/// Finishes an OAuth sign-in: the state (single use, unexpired, this user's), the code
/// exchange with its signature check, every check step, then save or reconnect.
pub async fn finish_oauth(
    svc: &Service,
    actor: &Actor,
    params: CallbackParams,
) -> (Option<SignInContext>, Result<Finished, ServiceError>) {
    let account = match actor.require_connection_admin() {
        Ok(a) => a.clone(),
        Err(e) => return (None, Err(e)),
    };
    let pending = match take_pending(svc, actor, &account, &params).await {
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
        return_to: pending.return_to.clone(),
    };
    (Some(context), complete(svc, actor, account, pending, params).await)
}

async fn take_pending(
    svc: &Service,
    actor: &Actor,
    account: &domain::AccountId,
    params: &CallbackParams,
) -> Result<Pending, ServiceError> {
    let state_token = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ServiceError::invalid("state", "the callback has no state"))?;
    // Single use, unexpired, and only for whoever started it: a forged, replayed or someone
    // else's state finds nothing.
    let payload = svc.store.take_oauth_state(&hash_token(state_token), account, &actor.user.id, svc.clock.now_ms()).await.map_err(|e| match e {
        store::StoreError::NotFound => ServiceError::invalid(
            "state",
            "this sign-in is not valid any more: it was already used, it expired (10 minutes), or another user started it. Start again.",
        ),
        other => other.into(),
    })?;
    serde_json::from_str(&payload).map_err(|e| ServiceError::internal("a stored pending sign-in", e))
}

async fn complete(
    svc: &Service,
    actor: &Actor,
    account: domain::AccountId,
    pending: Pending,
    params: CallbackParams,
) -> Result<Finished, ServiceError> {
    if let Some(error) = params.error.as_deref() {
        return Err(ServiceError::invalid(
            "authorize",
            authorize_error(error, params.error_description.as_deref().unwrap_or("")),
        ));
    }
    let code = params
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ServiceError::invalid("code", "the callback has no code"))?;
    let login_host = LoginHost::parse(&pending.login_host)?;
    let base = svc.urls.base_for(&login_host).map_err(|e| ServiceError::invalid("login_host", e.to_string()))?;
    let secret = ClientSecret::new(pending.consumer_secret.clone());
    let app = ClientCredentials { consumer_key: pending.consumer_key.clone(), consumer_secret: Some(secret.clone()) };
    // The loader's permission is checked where the connection's system deploys the loader.
    let loader = match (&pending.reconnect, &pending.legacy) {
        (Some(id), _) => match domain::ConnectionId::parse(id) {
            Ok(id) => !svc.store.loader_slots(&account, &id).await?.is_empty(),
            Err(_) => false,
        },
        (None, Some((system, _))) => match domain::SystemId::parse(system) {
            Ok(system) => svc.store.loader_config(&account, &system).await?.is_some(),
            Err(_) => false,
        },
        (None, None) => false,
    };
    let needs = checks::Needs { loader };
    let (report, token) =
        match svc.client.exchange_code(&base, &app, code, &svc.oauth_callback(), &pending.verifier).await {
            Ok(token) => {
                (checks::run_for(&svc.client, &token, sf_org_type(pending.org_type), needs).await, Some(token))
            }
            Err(e) => (Report::token_failed(&e), None),
        };
    if let Some(id) = &pending.reconnect {
        let settings = (pending.org_type, login_host, pending.consumer_key.clone(), secret);
        let connection = finish_reconnect(svc, actor, &account, id, &base, settings, report, token).await?;
        return Ok(Finished::Reconnected(connection));
    }
    if pending.test_only {
        let kept = match &token {
            Some(token) if report.passed() => keep_tested(svc, actor, &account, &pending, token, &report).await,
            _ => None,
        };
        if kept.is_none()
            && let Some(token) = &token
        {
            let revoke =
                token.refresh_token.as_ref().map(|r| r.expose_secret()).unwrap_or(token.access_token.expose_secret());
            let _ = svc.client.revoke(&base, revoke).await;
        }
        record_check(svc, actor, "connection.tested", &pending.name, &report).await;
        return Ok(Finished::Tested { report, grant: kept });
    }
    let kind = match &pending.legacy {
        Some((system, environment)) => ConnectionKind::Legacy {
            system_id: SystemId::parse(system).map_err(|e| ServiceError::internal("a pending sign-in's system", e))?,
            environment_id: EnvironmentId::parse(environment)
                .map_err(|e| ServiceError::internal("a pending sign-in's environment", e))?,
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
        let _ = svc.client.revoke(&base, refresh.expose_secret()).await;
    }
    if !report.passed() {
        record_check(svc, actor, "connection.oauth_failed", &pending.name, &report).await;
    }
    let connection = save_new(svc, actor, account, valid, report, token).await?;
    Ok(Finished::Created(connection))
}

/// Keeps a passing test's grant for Save; returns the handle the browser sends back with Save
/// (none if it could not be kept: then it is revoked as before).
async fn keep_tested(
    svc: &Service,
    actor: &Actor,
    account: &domain::AccountId,
    pending: &Pending,
    token: &salesforce::TokenResponse,
    report: &Report,
) -> Option<String> {
    let grant = TestedGrant {
        account: account.to_string(),
        user: actor.user.id.to_string(),
        org_type: pending.org_type,
        login_host: pending.login_host.clone(),
        consumer_key: pending.consumer_key.clone(),
        consumer_secret: pending.consumer_secret.clone(),
        access_token: token.access_token.expose_secret().to_string(),
        refresh_token: token.refresh_token.as_ref().map(|r| r.expose_secret().to_string()),
        instance_url: token.instance_url.to_string(),
        report: report.clone(),
    };
    let handle = random_token().ok()?;
    let payload = serde_json::to_string(&grant).ok()?;
    let expires = svc.now_ms() + TESTED_GRANT_MS;
    svc.store.save_pending_sign_in(&hash_token(&handle), TESTED, &payload, expires).await.ok()?;
    Some(handle)
}

/// Save after a passing OAuth Test Connection: takes the test's grant (once, within
/// [`TESTED_GRANT_MS`], only for whoever tested, with the same sign-in settings) and saves the
/// connection under `name` without another sign-in at Salesforce. An expired or used grant is
/// a `Conflict` (sign in again); a refused name leaves the grant for another try.
pub async fn save_tested(
    svc: &Service,
    actor: &Actor,
    grant: &str,
    input: StartInput,
) -> Result<domain::Connection, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let mut errors = Vec::new();
    let (name, org_type, login_host) = parse_basics(&input.name, &input.org_type, &input.login_host, &mut errors);
    let (Some(name), Some(org_type), Some(login_host)) = (name, org_type, login_host) else {
        return Err(ServiceError::Invalid(errors));
    };
    let id_hash = hash_token(grant);
    let expired = || ServiceError::conflict("the tested sign-in expired (5 minutes) or was used: Save signs in again");
    let payload = match svc.store.take_pending_sign_in(&id_hash, TESTED, svc.now_ms()).await {
        Ok(payload) => payload,
        Err(store::StoreError::NotFound) => return Err(expired()),
        Err(e) => return Err(e.into()),
    };
    let kept: TestedGrant =
        serde_json::from_str(&payload).map_err(|e| ServiceError::internal("a kept tested grant", e))?;
    let same_settings = kept.org_type == org_type
        && kept.login_host == login_host.as_setting()
        && kept.consumer_key == input.consumer_key.trim()
        && kept.consumer_secret == input.consumer_secret.expose_secret();
    if kept.account != account.as_str() || kept.user != actor.user.id.as_str() || !same_settings {
        // Someone else's, or settings changed since the test: put it back for its owner.
        let _ = svc.store.save_pending_sign_in(&id_hash, TESTED, &payload, svc.now_ms() + TESTED_GRANT_MS).await;
        return Err(ServiceError::conflict(
            "the sign-in settings changed since the test: Save signs in again with the new ones",
        ));
    }
    let valid = Valid {
        kind: ConnectionKind::New { name },
        org_type,
        login_host,
        auth: AuthMethod::OAuth { consumer_key: kept.consumer_key.clone() },
        consumer_secret: Some(ClientSecret::new(kept.consumer_secret.clone())),
        private_key: None,
    };
    let tokens = store::TokenSet {
        access_token: vault::AccessToken::new(kept.access_token.clone()),
        refresh_token: kept.refresh_token.clone().map(vault::RefreshToken::new),
        instance_url: kept.instance_url.clone(),
    };
    match crate::connections::save_checked(svc, actor, account, valid, kept.report.clone(), Some(tokens)).await {
        Ok(connection) => Ok(connection),
        Err(e) => {
            // A name taken meanwhile, say: the grant waits for another try until it expires.
            let _ = svc.store.save_pending_sign_in(&id_hash, TESTED, &payload, svc.now_ms() + TESTED_GRANT_MS).await;
            Err(e)
        }
    }
}

/// Revokes the grants of passing tests nobody saved in time (the health sweep calls this).
pub async fn revoke_unsaved_tests(svc: &Service) -> Result<usize, ServiceError> {
    let expired = svc.store.take_expired_pending(TESTED, svc.now_ms(), 100).await?;
    let mut revoked = 0;
    for payload in expired {
        let Ok(kept) = serde_json::from_str::<TestedGrant>(&payload) else { continue };
        let Ok(host) = LoginHost::parse(&kept.login_host) else { continue };
        let Ok(base) = svc.urls.base_for(&host) else { continue };
        let token = kept.refresh_token.as_deref().unwrap_or(&kept.access_token);
        if svc.client.revoke(&base, token).await.is_ok() {
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// Replaces a connection's tokens (and the sign-in settings used) after a passing check, if
/// the sign-in reached the same org.
#[allow(clippy::too_many_arguments)]
async fn finish_reconnect(
    svc: &Service,
    actor: &Actor,
    account: &domain::AccountId,
    id: &str,
    base: &url::Url,
    (org_type, login_host, consumer_key, secret): (OrgType, LoginHost, String, ClientSecret),
    report: Report,
    token: Option<salesforce::TokenResponse>,
) -> Result<domain::Connection, ServiceError> {
    // Whatever goes wrong below, tokens Salesforce just issued must not stay authorized.
    let revoke = |token: &Option<salesforce::TokenResponse>| {
        let refresh = token.as_ref().and_then(|t| t.refresh_token.as_ref()).map(|r| r.expose_secret().to_string());
        async move {
            if let Some(refresh) = refresh {
                let _ = svc.client.revoke(base, &refresh).await;
            }
        }
    };
    let id = ConnectionId::parse(id).map_err(|e| ServiceError::internal("a pending reconnect's connection", e))?;
    let mut connection = match svc.store.get(account, &id).await {
        Ok(c) => c,
        Err(e) => {
            revoke(&token).await;
            return Err(e.into());
        }
    };
    let (Some(org), Some(fresh)) = (report.org.clone(), token.clone()) else {
        revoke(&token).await;
        let reason = report.failure().map(|f| f.detail.clone()).unwrap_or_default();
        return Err(ServiceError::CheckFailed(reason, Box::new(report)));
    };
    let now = svc.clock.now_ms();
    let refreshed = crate::connections::carries_on(&connection, &org);
    if let Err(existing) = &refreshed {
        let existing = (*existing).clone();
        revoke(&token).await;
        let message = format!(
            "you signed in to {} ({}), but this connection belongs to {} ({}): sign in as a user of that org, or add a new connection",
            org.org_name, org.org_id, existing.org_name, existing.org_id
        );
        record(
            svc,
            actor.audit(
                now,
                "connection.reconnect_refused",
                "connection",
                Some(id.as_str()),
                None,
                Some(message.clone()),
            ),
        )
        .await;
        return Err(ServiceError::conflict(message));
    }
    let refreshed = refreshed.ok().flatten();
    // The grant being replaced, if Salesforce still counted it among this user's approvals.
    let same_app = matches!(&connection.auth, AuthMethod::OAuth { consumer_key: old } if *old == consumer_key);
    let same_user = same_app && connection.org.as_ref().is_some_and(|o| o.user_id == org.user_id);
    let replaced_grant = crate::approvals::live_grant_time(&connection).filter(|_| same_user);
    let modified_by = org.email.clone();
    connection.org = Some(crate::connections::org_facts(org));
    connection.status = domain::ConnectionStatus::LoggedIn;
    connection.status_detail = None;
    connection.status_reason = None;
    connection.status_checked_at = Some(now);
    connection.modified_at = now;
    connection.modified_by = modified_by;
    connection.org_type = org_type;
    connection.login_host = login_host;
    connection.auth = AuthMethod::OAuth { consumer_key };
    // The grant this sign-in replaces: revoked once the new one is stored, so reconnecting
    // does not hold one of the user's five approvals for the app for nothing.
    let replaced = svc.store.secrets(&id).await.ok().and_then(|old| {
        old.refresh_token
            .map(|r| r.expose_secret().to_string())
            .or(old.access_token.map(|a| a.expose_secret().to_string()))
    });
    let fresh_refresh = fresh.refresh_token.as_ref().map(|r| r.expose_secret().to_string());
    let secrets = store::NewSecrets {
        consumer_secret: Some(secret),
        tokens: Some(crate::connections::token_set(fresh)),
        ..Default::default()
    };
    svc.store.update(&connection, &secrets).await?;
    svc.store.observe(&connection.id, &store::Observation::Healthy, None, now).await?;
    let connection = match svc.store.get(account, &connection.id).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(connection = %connection.id, error = %e, "could not read back a reconnected connection");
            connection
        }
    };
    crate::approvals::mark_revoked(svc, &connection, replaced_grant).await;
    if let Some(old) = replaced.filter(|old| Some(old) != fresh_refresh.as_ref()) {
        let _ = svc.client.revoke(base, &old).await;
    }
    record(
        svc,
        actor.audit(
            now,
            "connection.reconnected",
            "connection",
            Some(id.as_str()),
            None,
            Some(match &refreshed {
                Some(words) => format!("signed in again; tokens replaced; {words}"),
                None => "signed in again; tokens replaced".into(),
            }),
        ),
    )
    .await;
    Ok(connection)
}
