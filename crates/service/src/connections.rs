//! Connections (F1, F2, F10, F11): Test Connection without saving, create after a passing
//! check, edit (new connections) and activate or deactivate (legacy connectors), check now,
//! delete with revoke first.

use domain::{
    AuthMethod, Connection, ConnectionId, ConnectionKind, ConnectionName, ConnectionStatus, LoginHost, OrgFacts,
    OrgType,
};
use salesforce::checks::{self, Report};
use salesforce::{ClientCredentials, SalesforceError, TokenResponse};
use serde::{Deserialize, Serialize};
use store::{ConnectionStore, NewSecrets, TokenSet};
use vault::{ClientSecret, JwtPrivateKey};

use crate::audit::record;
use crate::{Actor, Service, ServiceError};

pub fn parse_id(id: &str) -> Result<ConnectionId, ServiceError> {
    // A malformed id cannot name anything of the actor's: same answer as a missing one.
    ConnectionId::parse(id).map_err(|_| ServiceError::NotFound)
}

/// What a new connection is made of (F11). OAuth connections are made through the browser
/// sign-in (`POST /connections/oauth/start`); this endpoint takes JWT and client credentials.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectionInput {
    /// Unique in the account, 1–80 characters.
    pub name: String,
    /// `production` or `sandbox`.
    pub org_type: String,
    /// `login`, `test`, or a My Domain URL such as `https://acme.my.salesforce.com`.
    pub login_host: String,
    pub auth: AuthInput,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthInput {
    Jwt {
        consumer_key: String,
        username: String,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        private_key: JwtPrivateKey,
    },
    ClientCredentials {
        consumer_key: String,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        consumer_secret: ClientSecret,
    },
    #[serde(rename = "oauth")]
    OAuth {},
}

/// The validated input, with every wrong field reported at once.
pub(crate) struct Valid {
    pub kind: ConnectionKind,
    pub org_type: OrgType,
    pub login_host: LoginHost,
    pub auth: AuthMethod,
    pub consumer_secret: Option<ClientSecret>,
    pub private_key: Option<JwtPrivateKey>,
}

/// The settings every new connection has, each wrong one added to `errors`.
pub fn parse_basics(
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
pub fn parse_org_settings(
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

fn validate(input: ConnectionInput) -> Result<Valid, ServiceError> {
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
            let key = private_key;
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
            if consumer_secret.expose_secret().is_empty() {
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
                Some(consumer_secret),
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
        _ => Err(ServiceError::Invalid(errors)),
    }
}

fn field_message(e: domain::DomainError) -> String {
    match e {
        domain::DomainError::Invalid { message, .. } => message,
        other => other.to_string(),
    }
}

/// The API's spelling of an org type.
pub fn org_type_setting(t: OrgType) -> &'static str {
    match t {
        OrgType::Production => "production",
        OrgType::Sandbox => "sandbox",
    }
}

pub fn sf_org_type(t: OrgType) -> salesforce::OrgType {
    match t {
        OrgType::Production => salesforce::OrgType::Production,
        OrgType::Sandbox => salesforce::OrgType::Sandbox,
    }
}

/// Signs in with the given credentials and runs every check step; saves nothing.
async fn check(svc: &Service, v: &Valid) -> Result<(Report, Option<TokenResponse>), ServiceError> {
    check_for(svc, v, checks::Needs::default()).await
}

/// [`check`], with the steps what the connection is used for needs (the loader's permission
/// where its system deploys the loader).
async fn check_for(
    svc: &Service,
    v: &Valid,
    needs: checks::Needs,
) -> Result<(Report, Option<TokenResponse>), ServiceError> {
    let base = svc.urls.base_for(&v.login_host).map_err(|e| ServiceError::invalid("login_host", e.to_string()))?;
    let token = match &v.auth {
        AuthMethod::Jwt { consumer_key, username } => {
            let key = v.private_key.as_ref().ok_or_else(|| ServiceError::internal("a JWT check", "no private key"))?;
            svc.client.jwt_bearer(&base, sf_org_type(v.org_type), consumer_key, username, key).await
        }
        AuthMethod::ClientCredentials { consumer_key } => {
            let app =
                ClientCredentials { consumer_key: consumer_key.clone(), consumer_secret: v.consumer_secret.clone() };
            svc.client.client_credentials(&base, &app).await
        }
        AuthMethod::OAuth { .. } => {
            return Err(ServiceError::invalid("auth.method", "OAuth is not tested through this endpoint"));
        }
    };
    match token {
        Ok(token) => Ok((checks::run_for(&svc.client, &token, sf_org_type(v.org_type), needs).await, Some(token))),
        Err(SalesforceError::HostNotAllowed(host)) => Err(ServiceError::invalid(
            "login_host",
            format!("{host} is not a Salesforce host; use login, test or your My Domain (…my.salesforce.com)"),
        )),
        Err(e) => Ok((Report::token_failed(&e), None)),
    }
}

/// Refuses a name another connection of the account has (case-insensitive), on the name field.
pub(crate) async fn name_free(svc: &Service, account: &domain::AccountId, name: &str) -> Result<(), ServiceError> {
    if svc.store.name_taken(account, name, None).await? {
        return Err(ServiceError::Conflict {
            field: Some("name"),
            message: format!("a connection named “{name}” already exists in this account: choose another name"),
        });
    }
    Ok(())
}

/// A session a check opened that nothing keeps (a test, or a failed save): revoked at
/// Salesforce, so testing leaves no live session behind (best effort: a failure is logged).
async fn revoke_unkept(svc: &Service, v: &Valid, token: &TokenResponse) {
    let Ok(base) = svc.urls.base_for(&v.login_host) else { return };
    let secret = token.refresh_token.as_ref().map_or(token.access_token.expose_secret(), |r| r.expose_secret());
    if let Err(e) = svc.client.revoke(&base, secret).await {
        tracing::info!(error = %e, "could not revoke the session a connection check opened");
    }
}

/// Test Connection: validates, signs in, runs every step, records it; saves nothing, and
/// revokes the session it opened.
pub async fn test_connection(svc: &Service, actor: &Actor, input: ConnectionInput) -> Result<Report, ServiceError> {
    actor.require_connection_admin()?;
    let valid = validate(input)?;
    let (report, token) = check(svc, &valid).await?;
    if let Some(token) = &token {
        revoke_unkept(svc, &valid, token).await;
    }
    record_check(svc, actor, "connection.tested", &kind_label(&valid.kind), &report).await;
    Ok(report)
}

/// Save (F11) for JWT and client credentials: the whole check, then the connection.
pub async fn create_connection(
    svc: &Service,
    actor: &Actor,
    input: ConnectionInput,
) -> Result<Connection, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let valid = validate(input)?;
    // A taken name is refused before anything is asked of Salesforce.
    if let ConnectionKind::New { name } = &valid.kind {
        name_free(svc, &account, name.as_str()).await?;
    }
    let (report, token) = check(svc, &valid).await?;
    if !report.passed()
        && let Some(token) = &token
    {
        revoke_unkept(svc, &valid, token).await;
    }
    save_new(svc, actor, account, valid, report, token).await
}

/// Saves a new connection whose check passed (or answers `check_failed` with every step):
/// the one path both the JWT / client-credentials create and the OAuth callback take.
pub(crate) async fn save_new(
    svc: &Service,
    actor: &Actor,
    account: domain::AccountId,
    valid: Valid,
    report: Report,
    token: Option<TokenResponse>,
) -> Result<Connection, ServiceError> {
    save_checked(svc, actor, account, valid, report, token.map(token_set)).await
}

/// [`save_new`] with the tokens as the store keeps them (a tested OAuth grant kept for Save).
pub(crate) async fn save_checked(
    svc: &Service,
    actor: &Actor,
    account: domain::AccountId,
    valid: Valid,
    report: Report,
    tokens: Option<TokenSet>,
) -> Result<Connection, ServiceError> {
    let (Some(org), Some(tokens)) = (report.org.clone(), tokens) else {
        let reason = report.failure().map(|f| f.detail.clone()).unwrap_or_default();
        return Err(ServiceError::CheckFailed(reason, Box::new(report)));
    };
    let now = svc.clock.now_ms();
    let connection = Connection {
        id: ConnectionId::generate(),
        account_id: account,
        kind: valid.kind,
        org_type: valid.org_type,
        login_host: valid.login_host,
        auth: valid.auth,
        org: Some(org_facts(org.clone())),
        status: ConnectionStatus::LoggedIn,
        status_detail: None,
        status_reason: None,
        granted_at: None,
        status_checked_at: Some(now),
        created_at: now,
        created_by: org.email.clone(),
        modified_at: now,
        modified_by: org.email,
    };
    let secrets =
        NewSecrets { consumer_secret: valid.consumer_secret, private_key: valid.private_key, tokens: Some(tokens) };
    let new = matches!(connection.kind, ConnectionKind::New { .. });
    let label = describe(svc, &connection).await;
    let detail = format!(
        "{} connection to {} ({})",
        connection.auth.label(),
        connection.org.as_ref().map(|o| o.org_name.as_str()).unwrap_or("?"),
        connection.org_type.label()
    );
    // The connection and its audit entry commit together: no unaudited connection.
    let mut tx = svc.store.begin().await?;
    tx.insert_connection(&connection, &secrets)
        .await
        .map_err(|e| if new { ServiceError::from(e).on_field("name") } else { ServiceError::from(e) })?;
    tx.record(&actor.audit(
        now,
        "connection.created",
        "connection",
        Some(connection.id.as_str()),
        Some(&label),
        Some(detail),
    ))
    .await?;
    tx.commit().await?;
    tracing::info!(connection = %connection.id, account = %connection.account_id, "connection created");
    let connection = match svc.store.get(&connection.account_id, &connection.id).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(connection = %connection.id, error = %e, "could not read back a new connection");
            connection
        }
    };
    crate::approvals::mark_revoked(svc, &connection, None).await;
    Ok(connection)
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deleted {
    pub deleted: bool,
    /// Whether Salesforce confirmed the revoke.
    pub revoked: bool,
    pub message: String,
}

/// Delete (F10): revoke at Salesforce first, then delete (even if the revoke failed).
pub async fn delete_connection(svc: &Service, actor: &Actor, id: &str) -> Result<Deleted, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let connection = svc.store.get(&account, &parse_id(id)?).await?;
    let secrets = svc.store.secrets(&connection.id).await?;
    // Revoke at Salesforce first (the refresh token ends its sessions too).
    let token = secrets
        .refresh_token
        .as_ref()
        .map(|t| t.expose_secret().to_string())
        .or_else(|| secrets.access_token.as_ref().map(|t| t.expose_secret().to_string()));
    let revoked = match (token, svc.urls.base_for(&connection.login_host)) {
        (Some(token), Ok(base)) => svc.client.revoke(&base, &token).await,
        _ => Ok(()),
    };
    let label = describe(svc, &connection).await;
    let detail = if revoked.is_ok() { "tokens revoked at Salesforce" } else { "Salesforce did not confirm the revoke" };
    let mut tx = svc.store.begin().await?;
    tx.delete_connection(&account, &connection.id).await?;
    tx.record(&actor.audit(
        svc.clock.now_ms(),
        "connection.deleted",
        "connection",
        Some(connection.id.as_str()),
        Some(&label),
        Some(detail.into()),
    ))
    .await?;
    tx.commit().await?;
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
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EditInput {
    pub name: Option<String>,
    /// `production` or `sandbox`.
    pub org_type: Option<String>,
    pub login_host: Option<String>,
    /// Legacy connectors only: whether publishing goes through it (F4, product.md §4).
    pub active: Option<bool>,
    /// JWT and client-credentials connections: the credentials to change (the rest are kept).
    pub auth: Option<EditAuth>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EditAuth {
    pub consumer_key: Option<String>,
    /// JWT only.
    pub username: Option<String>,
    /// JWT only: PEM.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub private_key: Option<JwtPrivateKey>,
    /// Client credentials only.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub consumer_secret: Option<ClientSecret>,
}

/// Edit: see [`update`].
pub async fn edit_connection(
    svc: &Service,
    actor: &Actor,
    id: &str,
    input: EditInput,
) -> Result<Connection, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let mut connection = svc.store.get(&account, &parse_id(id)?).await?;
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
            let valid = edited_settings(svc, &connection, &input, &mut errors).await?;
            if let Some(valid) = valid.filter(|_| errors.is_empty()) {
                secrets = recheck(svc, &mut connection, valid, &mut changes).await?;
                if input.auth.as_ref().is_some_and(|a| a.private_key.is_some() || a.consumer_secret.is_some()) {
                    changes.push("new credentials stored".into());
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    if changes.is_empty() {
        // Nothing to store; what is stored (status included) is the answer.
        return Ok(svc.store.get(&connection.account_id, &connection.id).await?);
    }
    let now = svc.clock.now_ms();
    connection.modified_at = now;
    connection.modified_by = Some(actor.user.email.clone());
    let signed_in_again = secrets.tokens.is_some();
    svc.store.update(&connection, &secrets).await.map_err(|e| ServiceError::from(e).on_field("name"))?;
    if signed_in_again {
        svc.store.observe(&connection.id, &store::Observation::Healthy, None, now).await?;
    }
    record(
        svc,
        actor.audit(
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
    svc: &Service,
    connection: &Connection,
    input: &EditInput,
    errors: &mut Vec<(String, String)>,
) -> Result<Option<Valid>, ServiceError> {
    let (org_type, login_host) = parse_org_settings(
        input.org_type.as_deref().unwrap_or(org_type_setting(connection.org_type)),
        &input.login_host.clone().unwrap_or_else(|| connection.login_host.as_setting()),
        errors,
    );
    let stored = svc.store.secrets(&connection.id).await?;
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
                Some(key) => {
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
                Some(s) if s.expose_secret().is_empty() => {
                    errors.push(("auth.consumer_secret".into(), "the consumer secret cannot be empty".into()));
                    None
                }
                Some(s) => Some(s),
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
    svc: &Service,
    connection: &mut Connection,
    valid: Valid,
    changes: &mut Vec<String>,
) -> Result<NewSecrets, ServiceError> {
    let loader =
        !store::CatalogStore::loader_slots(&*svc.store, &connection.account_id, &connection.id).await?.is_empty();
    let (report, token) = check_for(svc, &valid, checks::Needs { loader }).await?;
    let (Some(org), Some(token)) = (report.org.clone(), token) else {
        let reason = report.failure().map(|f| f.detail.clone()).unwrap_or_default();
        return Err(ServiceError::CheckFailed(reason, Box::new(report)));
    };
    match carries_on(connection, &org) {
        Ok(Some(refreshed)) => changes.push(refreshed),
        Ok(None) => {}
        Err(existing) => {
            return Err(ServiceError::conflict(format!(
                "these settings sign in to {} ({}), but this connection belongs to {} ({}): add a new connection for that org",
                org.org_name, org.org_id, existing.org_name, existing.org_id
            )));
        }
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
    connection.org = Some(org_facts(org));
    connection.status = ConnectionStatus::LoggedIn;
    connection.status_detail = None;
    connection.status_reason = None;
    connection.status_checked_at = Some(svc.clock.now_ms());
    Ok(NewSecrets {
        consumer_secret: valid.consumer_secret,
        private_key: valid.private_key,
        tokens: Some(token_set(token)),
    })
}

/// Whether a sign-in to `new` may carry on `connection`: the same org, or — for a sandbox
/// connection — a refreshed copy of its sandbox (a sandbox of the same name, which a refresh
/// gives a new org id; issue #14). `Ok(Some(words))` says it was refreshed; `Err` gives the
/// connection's own org, for the refusal.
pub(crate) fn carries_on<'c>(
    connection: &'c Connection,
    new: &salesforce::checks::OrgFacts,
) -> Result<Option<String>, &'c domain::OrgFacts> {
    let Some(existing) = &connection.org else { return Ok(None) };
    if existing.org_id == new.org_id {
        return Ok(None);
    }
    if connection.org_type == domain::OrgType::Sandbox && new.is_sandbox && existing.org_name == new.org_name {
        return Ok(Some(format!(
            "the sandbox {} was refreshed: org id {} → {}",
            new.org_name, existing.org_id, new.org_id
        )));
    }
    Err(existing)
}

/// How a connection is named in messages and the audit log.
/// How messages name a connection: a new one by its name, a legacy connector by the system ×
/// environment it publishes for (#16 item 10), or by its id when those are gone.
pub async fn describe(svc: &Service, c: &Connection) -> String {
    let ConnectionKind::Legacy { system_id, environment_id, .. } = &c.kind else { return label(c) };
    let system = store::CatalogStore::system(&*svc.store, &c.account_id, system_id).await;
    let environment = store::CatalogStore::environment(&*svc.store, &c.account_id, environment_id).await;
    match (system, environment) {
        (Ok(s), Ok(e)) => format!("{} × {} connector", s.name, e.name),
        _ => label(c),
    }
}

pub fn label(c: &Connection) -> String {
    kind_label(&c.kind).replace("legacy connector", &format!("legacy connector {}", c.id))
}

pub fn kind_label(kind: &ConnectionKind) -> String {
    match kind {
        ConnectionKind::New { name } => name.as_str().to_string(),
        ConnectionKind::Legacy { .. } => "legacy connector".to_string(),
    }
}

/// What Salesforce's identity told the check, as the connection keeps it.
pub(crate) fn org_facts(org: salesforce::checks::OrgFacts) -> OrgFacts {
    OrgFacts {
        org_id: org.org_id,
        org_name: org.org_name,
        instance_url: org.instance_url,
        user_id: org.user_id,
        username: org.username,
        email: org.email,
    }
}

/// A token reply, as the store seals it.
pub(crate) fn token_set(token: TokenResponse) -> TokenSet {
    TokenSet {
        access_token: token.access_token,
        refresh_token: token.refresh_token,
        instance_url: token.instance_url.to_string(),
    }
}

/// A check that saved nothing (Test Connection, or a failed OAuth sign-in), in the audit log
/// with its outcome in words.
pub(crate) async fn record_check(svc: &Service, actor: &Actor, action: &str, label: &str, report: &Report) {
    record(svc, actor.audit(svc.now_ms(), action, "connection", None, Some(label), Some(outcome(report)))).await;
}

/// A check's result in words, for the audit log.
pub fn outcome(report: &Report) -> String {
    match report.failure() {
        None => "all checks passed".to_string(),
        Some(f) => format!("failed at {}: {}", f.title, f.detail),
    }
}

/// Checks a stored connection now (B1): one authenticated call, renewing the session if it
/// expired, and records Logged in / Logged out / Not available with the reason. Returns the
/// connection with its fresh status.
pub async fn check_now(svc: &Service, actor: &Actor, id: &str) -> Result<Connection, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let connection = svc.store.get(&account, &parse_id(id)?).await?;
    svc.keeper.check_health(&connection, ::connections::Trigger::Person).await?;
    let checked = svc.store.get(&account, &connection.id).await?;
    // A person's check is theirs to see on the connection's activity (#16), whatever it found.
    let found = match (checked.status_reason, &checked.status_detail) {
        (Some(reason), _) if checked.status != ConnectionStatus::LoggedIn => {
            format!("{}: {}", checked.status.label(), reason.summary())
        }
        _ => checked.status.label().to_string(),
    };
    let label = describe(svc, &checked).await;
    record(
        svc,
        actor.audit(
            svc.now_ms(),
            "connection.checked",
            "connection",
            Some(checked.id.as_str()),
            Some(&label),
            Some(found),
        ),
    )
    .await;
    Ok(checked)
}
/// Checks at most this many connections at once in a bulk check.
const BULK_CHECKS_AT_ONCE: usize = 8;

/// Bulk check (#16): each connection checked as [`check_now`] would, eight at a time; one
/// result per id, in the order given.
pub async fn check_many(
    svc: &Service,
    actor: &Actor,
    ids: &[String],
) -> Vec<(String, Result<Connection, ServiceError>)> {
    use futures_util::StreamExt;
    let checks: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| async move {
            let result = check_now(svc, actor, &id).await;
            (id, result)
        })
        .collect();
    futures_util::stream::iter(checks).buffered(BULK_CHECKS_AT_ONCE).collect().await
}

/// Bulk delete (#16): each connection revoked and deleted as [`delete_connection`] would, one
/// after another; one result per id, in the order given.
pub async fn delete_many(svc: &Service, actor: &Actor, ids: &[String]) -> Vec<(String, Result<Deleted, ServiceError>)> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push((id.clone(), delete_connection(svc, actor, id).await));
    }
    out
}

/// One connection of the actor's account.
pub async fn get(svc: &Service, actor: &Actor, id: &str) -> Result<Connection, ServiceError> {
    Ok(svc.store.get(actor.account()?, &parse_id(id)?).await?)
}
