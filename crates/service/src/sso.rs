//! Single sign-on (B9, issue #13): an account signs its people in through its own OpenID
//! Connect provider — the authorization code flow with PKCE (S256), found by discovery.
//!
//! - The owner sets the provider (issuer, client id and secret, the claim that names a new
//!   person's role, the default role) with [`configure`]; the provider's discovery document must
//!   answer and name the same issuer before anything is saved. The secret is sealed at rest.
//! - People reach it from `/signin` by their email's domain (domains the account proved by DNS,
//!   [`crate::domains`], or the operator routed to it, [`add_domain`]) or through the account's
//!   own sign-in address (`/sso/<account>`).
//!   The provider speaks only for those domains: an email outside them is refused, so whoever
//!   runs an account's provider cannot sign in as anyone else.
//! - A person who has a password or a second factor here is never taken over by email: they
//!   sign in as they do and link their provider sign-in themselves ([`start_link`]).
//! - [`start`] keeps the flow's state, nonce and PKCE verifier sealed for 10 minutes, once;
//!   [`finish`] has the `oidc` crate exchange the code and validate the ID token (signature
//!   against the provider's published keys, issuer, audience, expiry, nonce). The person is who
//!   the provider's (issuer, subject) signed in as before; else the account's person with that
//!   verified email; else a new person in the role the claim names.
//! - With "SSO only", passwords are refused for the account's people, except the break-glass
//!   owner the operator names ([`set_break_glass`]).
//! - Providers are reached over HTTPS, or at plain-HTTP origins the operator allows.

use domain::{AccountId, Role, User, UserId};
use serde::Deserialize;
use store::{AccessStore, CatalogStore, SsoConfig};
use vault::SsoClientSecret;

use crate::audit::record;
use crate::domains::domain_name;
use crate::secrets::{hash_token, random_token};
use crate::sessions::{Opened, Origin};
use crate::{Actor, Service, ServiceError};

/// What a single sign-on flow is stored as while the person is at their provider.
const PENDING: &str = "sso";
/// How long the person may take at their provider.
const FLOW_MS: i64 = 10 * 60 * 1000;

/// The owner's settings for the account's provider.
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SsoSettings {
    /// The provider's issuer URL, e.g. `https://login.example.com/realms/acme`.
    pub issuer: String,
    pub client_id: String,
    /// Required the first time; left out, the stored one stays.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub client_secret: Option<SsoClientSecret>,
    /// The claim whose value (`owner`, `admin`, `editor` or `viewer`) is a new person's role.
    #[serde(default)]
    pub role_claim: Option<String>,
    /// A new person's role when the claim is absent or names no role (default `viewer`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub default_role: Option<String>,
    /// Passwords are refused for the account's people, except the break-glass owner.
    #[serde(default)]
    pub sso_only: bool,
}

impl std::fmt::Debug for SsoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoSettings").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// The account's single sign-on as its people see it (never the secret).
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SsoView {
    pub issuer: String,
    pub client_id: String,
    pub role_claim: Option<String>,
    pub default_role: String,
    pub sso_only: bool,
    /// Who may still sign in with a password while SSO is the only way (the operator names them).
    pub break_glass_email: Option<String>,
    /// Email domains that lead here from the sign-in page.
    pub domains: Vec<String>,
    /// The account's own sign-in address.
    pub sign_in_url: String,
    /// What to register at the provider as the redirect URI.
    pub redirect_uri: String,
}

#[derive(serde::Serialize, Deserialize)]
struct Flow {
    account: String,
    nonce: String,
    verifier: String,
    next: String,
    /// A signed-in person linking their own sign-in at the provider (not signing in anew).
    #[serde(default)]
    link: Option<String>,
}

fn role_of(text: &str) -> Option<Role> {
    match Role::parse(&text.trim().to_ascii_lowercase()) {
        Some(Role::Operator) | None => None,
        Some(role) => Some(role),
    }
}

/// Sets the account's provider (the owner). Its discovery document must answer first.
pub async fn configure(svc: &Service, actor: &Actor, settings: SsoSettings) -> Result<SsoView, ServiceError> {
    let account = actor.require_owner()?.clone();
    let mut errors = Vec::new();
    let issuer = settings.issuer.trim().trim_end_matches('/').to_string();
    if let Err(e) = svc.sso.policy().check(&issuer) {
        errors.push(("issuer".to_string(), e.0));
    }
    let client_id = settings.client_id.trim().to_string();
    if client_id.is_empty() || client_id.len() > 255 {
        errors.push(("client_id".to_string(), "give the client id the provider issued (1–255 characters)".into()));
    }
    let default_role = match settings.default_role.as_deref() {
        None => Role::Viewer,
        Some(text) => role_of(text).unwrap_or_else(|| {
            errors.push(("default_role".to_string(), "owner, admin, editor or viewer".into()));
            Role::Viewer
        }),
    };
    let role_claim = settings.role_claim.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    if role_claim.as_ref().is_some_and(|c| c.len() > 100) {
        errors.push(("role_claim".to_string(), "at most 100 characters".into()));
    }
    let existing = svc.store.sso_config(&account).await?;
    let secret = match (settings.client_secret, &existing) {
        (Some(secret), _) if !secret.expose_secret().is_empty() => Some(secret),
        (_, Some(old)) => Some(old.client_secret.clone()),
        _ => {
            errors.push(("client_secret".to_string(), "give the client secret the provider issued".into()));
            None
        }
    };
    let Some(client_secret) = secret.filter(|_| errors.is_empty()) else {
        return Err(ServiceError::Invalid(errors));
    };
    svc.sso.discover(&issuer).await.map_err(|e| ServiceError::Conflict { field: Some("issuer"), message: e.0 })?;
    let config = SsoConfig {
        issuer: issuer.clone(),
        client_id,
        client_secret,
        role_claim,
        default_role,
        sso_only: settings.sso_only,
        break_glass_email: existing.and_then(|e| e.break_glass_email),
    };
    svc.store.set_sso_config(&account, &config, svc.now_ms()).await?;
    let detail = Some(format!("{issuer}{}", if config.sso_only { ", the only way in" } else { "" }));
    let entry = actor.audit(svc.now_ms(), "account.sso_configured", "account", Some(account.as_str()), None, detail);
    record(svc, entry).await;
    view_of(svc, &account).await?.ok_or(ServiceError::NotFound)
}

async fn view_of(svc: &Service, account: &AccountId) -> Result<Option<SsoView>, ServiceError> {
    let Some(config) = svc.store.sso_config(account).await? else { return Ok(None) };
    let base = svc.public_url.as_str().trim_end_matches('/').to_string();
    Ok(Some(SsoView {
        issuer: config.issuer,
        client_id: config.client_id,
        role_claim: config.role_claim,
        default_role: config.default_role.as_str().to_string(),
        sso_only: config.sso_only,
        break_glass_email: config.break_glass_email,
        domains: svc.store.sso_domains(account).await?,
        sign_in_url: format!("{base}/sso/{account}"),
        redirect_uri: svc.sso_callback(),
    }))
}

/// The account's single sign-on, if set (admins and owners).
pub async fn view(svc: &Service, actor: &Actor) -> Result<Option<SsoView>, ServiceError> {
    let account = actor.require_people_reader()?.clone();
    view_of(svc, &account).await
}

/// Turns the account's single sign-on off (the owner); people it created keep their accounts
/// and sign in with a password once one is set for them.
pub async fn remove(svc: &Service, actor: &Actor) -> Result<(), ServiceError> {
    let account = actor.require_owner()?.clone();
    svc.store.delete_sso_config(&account).await?;
    let entry = actor.audit(svc.now_ms(), "account.sso_removed", "account", Some(account.as_str()), None, None);
    record(svc, entry).await;
    Ok(())
}

/// Routes an email domain to the account's provider (the operator, who vouches that the
/// account owns it).
pub async fn add_domain(svc: &Service, actor: &Actor, account: &str, domain: &str) -> Result<(), ServiceError> {
    actor.require_operator()?;
    let account = AccountId::parse(account).map_err(|_| ServiceError::NotFound)?;
    let domain = domain_name(domain)?;
    svc.store.account(&account).await?;
    svc.store.add_sso_domain(&account, &domain, svc.now_ms()).await?;
    let entry = actor.audit_for(
        Some(account.clone()),
        svc.now_ms(),
        "account.sso_domain_added",
        "account",
        Some(account.as_str()),
        Some(&domain),
        None,
    );
    record(svc, entry).await;
    Ok(())
}

/// Stops routing an email domain to the account (the operator).
pub async fn remove_domain(svc: &Service, actor: &Actor, account: &str, domain: &str) -> Result<(), ServiceError> {
    actor.require_operator()?;
    let account = AccountId::parse(account).map_err(|_| ServiceError::NotFound)?;
    let domain = domain_name(domain)?;
    svc.store.remove_sso_domain(&account, &domain).await?;
    let entry = actor.audit_for(
        Some(account.clone()),
        svc.now_ms(),
        "account.sso_domain_removed",
        "account",
        Some(account.as_str()),
        Some(&domain),
        None,
    );
    record(svc, entry).await;
    Ok(())
}

/// Names (or, with `None`, clears) the person who may still sign in with a password while SSO
/// is the only way in (the operator).
pub async fn set_break_glass(
    svc: &Service,
    actor: &Actor,
    account: &str,
    email: Option<&str>,
) -> Result<(), ServiceError> {
    actor.require_operator()?;
    let account = AccountId::parse(account).map_err(|_| ServiceError::NotFound)?;
    if let Some(email) = email {
        let user = svc.store.user_by_email(email).await?;
        if user.account_id.as_ref() != Some(&account) || user.role != Role::Owner {
            return Err(ServiceError::invalid("email", "the break-glass person must be an owner of this account"));
        }
    }
    svc.store.set_break_glass(&account, email).await.map_err(|e| match e {
        store::StoreError::NotFound => ServiceError::conflict("the account has no single sign-on"),
        other => other.into(),
    })?;
    let entry = actor.audit_for(
        Some(account.clone()),
        svc.now_ms(),
        "account.sso_break_glass",
        "account",
        Some(account.as_str()),
        email,
        None,
    );
    record(svc, entry).await;
    Ok(())
}

/// Whether a password sign-in by `user` is refused because their account signs in only
/// through SSO (they are not its break-glass owner).
pub(crate) async fn password_refused(svc: &Service, user: &User) -> Result<bool, ServiceError> {
    let Some(account) = &user.account_id else { return Ok(false) };
    Ok(match svc.store.sso_config(account).await? {
        Some(config) if config.sso_only => {
            !config.break_glass_email.is_some_and(|e| e.eq_ignore_ascii_case(&user.email))
        }
        _ => false,
    })
}

/// The name of the account at a sign-in address, if it has single sign-on.
pub async fn account_name(svc: &Service, account: &str) -> Result<Option<String>, ServiceError> {
    let Ok(account) = AccountId::parse(account) else { return Ok(None) };
    if svc.store.sso_config(&account).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(svc.store.account(&account).await?.name))
}

/// The account whose provider an email's domain leads to.
pub async fn account_for_email(svc: &Service, email: &str) -> Result<Option<AccountId>, ServiceError> {
    let Some((_, domain)) = email.trim().rsplit_once('@') else { return Ok(None) };
    let Ok(domain) = domain_name(domain) else { return Ok(None) };
    Ok(svc.store.account_for_domain(&domain).await?)
}

/// A flow just started: where to send the browser, and the state to bind to it (a cookie).
#[derive(Debug)]
pub struct Started {
    pub redirect: String,
    pub state: String,
}

/// Starts a sign-in at the account's provider.
pub async fn start(
    svc: &Service,
    account: &str,
    login_hint: Option<&str>,
    next: &str,
) -> Result<Started, ServiceError> {
    let account = AccountId::parse(account).map_err(|_| ServiceError::NotFound)?;
    begin(svc, account, login_hint, next, None).await
}

/// Starts linking the signed-in person's own sign-in at their account's provider: after it,
/// single sign-on signs them in as themselves (a person who has a password or a second factor
/// here is never linked by email alone).
pub async fn start_link(svc: &Service, actor: &Actor, next: &str) -> Result<Started, ServiceError> {
    let account = actor.account()?.clone();
    let hint = actor.user.email.clone();
    begin(svc, account, Some(&hint), next, Some(actor.user.id.to_string())).await
}

/// Whether the caller's account signs in through a provider (the *Your account* page offers to
/// link to it).
pub async fn available(svc: &Service, actor: &Actor) -> Result<bool, ServiceError> {
    let Ok(account) = actor.account() else { return Ok(false) };
    Ok(svc.store.sso_config(account).await?.is_some())
}

async fn begin(
    svc: &Service,
    account: AccountId,
    login_hint: Option<&str>,
    next: &str,
    link: Option<String>,
) -> Result<Started, ServiceError> {
    let config = svc.store.sso_config(&account).await?.ok_or(ServiceError::NotFound)?;
    let provider = svc.sso.discover(&config.issuer).await.map_err(|e| ServiceError::SsoFailed(e.0))?;
    let (state, nonce, verifier) = (random_token()?, random_token()?, random_token()?);
    let redirect_uri = svc.sso_callback();
    let registration = oidc::Registration {
        client_id: &config.client_id,
        client_secret: &config.client_secret,
        redirect_uri: &redirect_uri,
    };
    let request = oidc::Request { state: &state, nonce: &nonce, verifier: &verifier, login_hint };
    let redirect = provider.authorization_url(&registration, &request);
    let flow = Flow { account: account.to_string(), nonce, verifier, next: next.to_string(), link };
    let payload = serde_json::to_string(&flow).map_err(|e| ServiceError::internal("flow", e))?;
    svc.store.save_pending_sign_in(&hash_token(&state), PENDING, &payload, svc.now_ms() + FLOW_MS).await?;
    Ok(Started { redirect, state })
}

/// Finishes a sign-in the provider sent back: exchanges the code, validates the ID token, finds
/// or creates the person, and opens their session. Returns it with where to go next.
pub async fn finish(svc: &Service, state: &str, code: &str, origin: Origin) -> Result<(Opened, String), ServiceError> {
    let payload = match svc.store.take_pending_sign_in(&hash_token(state), PENDING, svc.now_ms()).await {
        Ok(payload) => payload,
        Err(store::StoreError::NotFound) => {
            return Err(ServiceError::SsoFailed("this sign-in expired or was already used: start it again".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let flow: Flow = serde_json::from_str(&payload).map_err(|e| ServiceError::internal("flow", e))?;
    let account = AccountId::parse(&flow.account).map_err(|e| ServiceError::internal("flow account", e))?;
    let config = svc
        .store
        .sso_config(&account)
        .await?
        .ok_or_else(|| ServiceError::SsoFailed("the account's single sign-on was turned off meanwhile".into()))?;
    let provider = svc.sso.discover(&config.issuer).await.map_err(|e| ServiceError::SsoFailed(e.0))?;
    let redirect_uri = svc.sso_callback();
    let registration = oidc::Registration {
        client_id: &config.client_id,
        client_secret: &config.client_secret,
        redirect_uri: &redirect_uri,
    };
    let claims = svc
        .sso
        .sign_in(&provider, &registration, code, &flow.verifier, &flow.nonce)
        .await
        .map_err(|e| ServiceError::SsoFailed(e.0))?;
    let subject = claims["sub"].as_str().unwrap_or_default().to_string();
    let link =
        flow.link.as_deref().map(UserId::parse).transpose().map_err(|e| ServiceError::internal("flow link", e))?;
    let user = person(svc, &account, &config, &subject, &claims, link.as_ref()).await?;
    let opened =
        crate::sessions::start(svc, user, origin.device.clone(), origin, crate::sessions::How::SingleSignOn).await?;
    Ok((opened, flow.next))
}

/// Who the provider's subject is in this account: signed in before; or, for an email in a
/// domain the operator routed to this account, the person linking it, or a person of the account
/// with no password or second factor of their own, or someone new in the role the claim names.
async fn person(
    svc: &Service,
    account: &AccountId,
    config: &SsoConfig,
    subject: &str,
    claims: &serde_json::Value,
    link: Option<&UserId>,
) -> Result<User, ServiceError> {
    if let Some(id) = svc.store.sso_identity(&config.issuer, subject).await? {
        return match svc.store.user(account, &id).await {
            Ok(user) if link.is_none_or(|l| *l == user.id) => Ok(user),
            Ok(_) => Err(ServiceError::SsoFailed("that sign-in is linked to another person already".into())),
            Err(store::StoreError::NotFound) => {
                Err(ServiceError::SsoFailed("that sign-in belongs to a person of another account".into()))
            }
            Err(e) => Err(e.into()),
        };
    }
    let email = claims["email"].as_str().map(str::trim).filter(|e| e.contains('@') && e.len() <= 254);
    let Some(email) = email else {
        return Err(ServiceError::SsoFailed("the provider sent no email for this person".into()));
    };
    if claims["email_verified"].as_bool() != Some(true) {
        return Err(ServiceError::SsoFailed(format!("the provider has not verified {email}")));
    }
    // The provider speaks only for the domains routed to this account (proved by its DNS, or
    // vouched for by the operator): whoever runs it cannot claim anyone else's email.
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    if !svc.store.sso_domains(account).await?.contains(&domain) {
        return Err(ServiceError::SsoFailed(format!(
            "{email} is not in an email domain this account has proved (Your account → Single sign-on → Email domains)"
        )));
    }
    if let Some(id) = link {
        let user = svc.store.user(account, id).await?;
        if !user.email.eq_ignore_ascii_case(email) {
            return Err(ServiceError::SsoFailed(format!(
                "the provider signed in {email}, not {}: link with your own sign-in",
                user.email
            )));
        }
        svc.store.link_sso_identity(&config.issuer, subject, &user.id).await?;
        let actor = Actor::new(user.clone(), domain::ActorKind::User, None);
        let entry =
            actor.audit(svc.now_ms(), "user.sso_linked", "user", Some(user.id.as_str()), Some(&user.email), None);
        record(svc, entry).await;
        return Ok(user);
    }
    let user = match svc.store.credentials(email).await {
        Ok((user, password)) if user.account_id.as_ref() == Some(account) => {
            let second = svc.store.two_factor(&user.id).await?.is_some_and(|f| f.confirmed_at.is_some());
            if password.is_some() || second {
                return Err(ServiceError::SsoFailed(format!(
                    "{email} signs in here with a password: sign in with it once, then link single sign-on on the Your account page"
                )));
            }
            user
        }
        Ok(_) => {
            return Err(ServiceError::SsoFailed(format!(
                "{email} already signs in to another Lightbridge account; ask your administrator"
            )));
        }
        Err(store::StoreError::NotFound) => {
            let role = config
                .role_claim
                .as_deref()
                .and_then(|claim| claims[claim].as_str())
                .and_then(role_of)
                .unwrap_or(config.default_role);
            let name = claims["name"].as_str().unwrap_or_default().chars().take(200).collect::<String>();
            let user = User {
                id: UserId::generate(),
                account_id: Some(account.clone()),
                email: email.to_string(),
                name,
                role,
            };
            svc.store.create_user(&user, None, svc.now_ms()).await?;
            let actor = Actor::new(user.clone(), domain::ActorKind::User, None);
            let entry = actor.audit(
                svc.now_ms(),
                "user.created",
                "user",
                Some(user.id.as_str()),
                Some(&user.email),
                Some(format!("by single sign-on, as {}", role.as_str())),
            );
            record(svc, entry).await;
            user
        }
        Err(e) => return Err(e.into()),
    };
    svc.store.link_sso_identity(&config.issuer, subject, &user.id).await?;
    Ok(user)
}
