//! Users, roles, passwords and API tokens: owners manage their account's people; everyone
//! manages their own password and tokens; the operator (the CLI) creates users in any account.

use domain::{AccountId, Role, User, UserId};
use store::{AccessStore, CatalogStore};
use vault::{ApiToken, Password};

use crate::audit::record;
use crate::secrets::{hash_token, new_api_token};
use crate::{Actor, Service, ServiceError};

/// A role an account member may have (the operator is instance-wide, never a member).
pub fn account_role(text: &str) -> Result<Role, ServiceError> {
    match Role::parse(text) {
        Some(Role::Operator) | None => {
            Err(ServiceError::invalid("role", format!("{text:?} is not one of owner, admin, editor, viewer")))
        }
        Some(role) => Ok(role),
    }
}

pub fn valid_email(email: &str) -> bool {
    email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'))
}

/// The email and display name checked the same way everywhere, every fault in `errors`.
pub(crate) fn person(email: &str, name: &str, errors: &mut Vec<(String, String)>) -> (String, String) {
    let email = email.trim().to_string();
    if !valid_email(&email) {
        errors.push(("email".to_string(), format!("{email:?} is not an email address")));
    }
    let name = name.trim().to_string();
    if name.chars().count() > 120 || name.chars().any(char::is_control) {
        errors.push(("name".to_string(), "a name has at most 120 characters and no control characters".to_string()));
    }
    (email, name)
}

fn user_id(id: &str) -> Result<UserId, ServiceError> {
    UserId::parse(id).map_err(|_| ServiceError::NotFound)
}

/// The people of the actor's account (admins and owners look).
pub async fn list(svc: &Service, actor: &Actor) -> Result<Vec<User>, ServiceError> {
    Ok(svc.store.users(actor.require_people_reader()?).await?)
}

/// The operator creates a user in an account, or another operator (no account); the user has
/// no password until one is set.
pub async fn create_user(
    svc: &Service,
    actor: &Actor,
    account: Option<AccountId>,
    email: &str,
    name: &str,
    role: Role,
) -> Result<User, ServiceError> {
    actor.require_operator()?;
    match (role, &account) {
        (Role::Operator, Some(_)) => {
            return Err(ServiceError::invalid("account", "the operator is instance-wide: give no account"));
        }
        (Role::Operator, None) => {}
        (_, None) => return Err(ServiceError::invalid("account", "an account is required for this role")),
        (_, Some(id)) => {
            svc.store.account(id).await?;
        }
    }
    let mut errors = Vec::new();
    let (email, name) = person(email, name, &mut errors);
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    let user = User { id: UserId::generate(), account_id: account, email, name, role };
    let now = svc.now_ms();
    svc.store.create_user(&user, None, now).await?;
    let detail = Some(format!("role {}", role.as_str()));
    let entry = actor.audit_for(
        user.account_id.clone(),
        now,
        "user.created",
        "user",
        Some(user.id.as_str()),
        Some(&user.email),
        detail,
    );
    record(svc, entry).await;
    Ok(user)
}

/// An account keeps at least one owner: refuses to demote or remove the last one.
async fn keep_an_owner(svc: &Service, account: &AccountId, leaving: &User) -> Result<(), ServiceError> {
    if leaving.role != Role::Owner {
        return Ok(());
    }
    let owners = svc.store.users(account).await?.iter().filter(|u| u.role == Role::Owner).count();
    if owners <= 1 {
        return Err(ServiceError::conflict(format!(
            "{} is the account's only owner: make someone else an owner first",
            leaving.email
        )));
    }
    Ok(())
}

/// Changes a user's role (owners only); the account keeps an owner.
pub async fn change_role(svc: &Service, actor: &Actor, id: &str, role: &str) -> Result<User, ServiceError> {
    let account = actor.require_owner()?.clone();
    let mut user = svc.store.user(&account, &user_id(id)?).await?;
    let role = account_role(role)?;
    if role != user.role {
        if role != Role::Owner {
            keep_an_owner(svc, &account, &user).await?;
        }
        svc.store.set_role(&account, &user.id, role).await?;
        let detail = format!("role {} → {}", user.role.as_str(), role.as_str());
        let now = svc.now_ms();
        let entry =
            actor.audit(now, "user.role_changed", "user", Some(user.id.as_str()), Some(&user.email), Some(detail));
        record(svc, entry).await;
        user.role = role;
    }
    Ok(user)
}

/// Removes a user with their sessions and tokens (owners only); the last owner stays.
/// One of the owner's account's people (to confirm a removal); another account's is not found.
pub async fn member(svc: &Service, actor: &Actor, id: &str) -> Result<User, ServiceError> {
    let account = actor.require_owner()?;
    Ok(svc.store.user(account, &user_id(id)?).await?)
}

pub async fn remove_user(svc: &Service, actor: &Actor, id: &str) -> Result<User, ServiceError> {
    let account = actor.require_owner()?.clone();
    let user = svc.store.user(&account, &user_id(id)?).await?;
    keep_an_owner(svc, &account, &user).await?;
    svc.store.delete_user(&account, &user.id).await?;
    let now = svc.now_ms();
    record(svc, actor.audit(now, "user.deleted", "user", Some(user.id.as_str()), Some(&user.email), None)).await;
    Ok(user)
}

/// Checks the signed-in person's own password (before a change to their sign-in), throttled
/// like a sign-in from one address so whoever holds the session cannot guess it at CPU speed.
pub async fn check_own_password(svc: &Service, actor: &Actor, password: Password) -> Result<(), ServiceError> {
    let key = crate::sessions::own_password_key(&actor.user.id);
    crate::sessions::take_attempt(svc, &key, crate::sessions::PAIR).await?;
    let (_, stored) = svc.store.credentials(&actor.user.email).await?;
    let matches =
        svc.cpu.run(move || stored.as_deref().is_some_and(|hash| crate::password::verify(&password, hash))).await?;
    if !matches {
        return Err(ServiceError::invalid("password", "that is not your password"));
    }
    svc.store.forgive_sign_in(&key, true).await?;
    Ok(())
}

/// Changes the actor's own password; the current one is required. Every other session of the
/// user ends (whoever else had signed in with the old password is out); `keep` is the session
/// making the change, when it is one, and stays. Returns how many sessions ended.
pub async fn change_password(
    svc: &Service,
    actor: &Actor,
    current: Password,
    new: Password,
    keep: Option<&str>,
) -> Result<u64, ServiceError> {
    // Whoever holds the session or token may not guess the current password at CPU speed: the
    // check is throttled like a sign-in from one address.
    let key = crate::sessions::own_password_key(&actor.user.id);
    crate::sessions::take_attempt(svc, &key, crate::sessions::PAIR).await?;
    let (_, stored) = svc.store.credentials(&actor.user.email).await?;
    let mut errors = Vec::new();
    let context = [actor.user.email.clone(), actor.user.name.clone()];
    let (matches, new) = svc
        .cpu
        .run(move || {
            let matches = stored.as_deref().is_some_and(|hash| crate::password::verify(&current, hash));
            let context: Vec<&str> = context.iter().map(String::as_str).collect();
            (matches, crate::password::policy(&new, &context).and_then(|()| crate::password::hash(&new)))
        })
        .await?;
    if matches {
        svc.store.forgive_sign_in(&key, true).await?;
    } else {
        errors.push(("current_password".to_string(), "that is not your current password".to_string()));
    }
    let new = new.map_err(|e| errors.push(("new_password".to_string(), e))).ok();
    let (Some(hash), true) = (new, errors.is_empty()) else {
        return Err(ServiceError::Invalid(errors));
    };
    svc.store.set_password(&actor.user.id, &hash).await?;
    let ended = svc.store.end_sessions(&actor.user.id, keep.map(hash_token).as_deref()).await?;
    // Browsers remembered with the old password are no longer exempt from the sign-in ceiling.
    svc.store.forget_devices(&actor.user.id).await?;
    let now = svc.now_ms();
    let user = &actor.user;
    let detail = Some(format!("{ended} other session(s) ended"));
    record(svc, actor.audit(now, "user.password_changed", "user", Some(user.id.as_str()), Some(&user.email), detail))
        .await;
    Ok(ended)
}

/// The operator sets anyone's password (the first one, or a reset).
pub async fn set_password(svc: &Service, actor: &Actor, email: &str, password: Password) -> Result<User, ServiceError> {
    actor.require_operator()?;
    let user = svc.store.user_by_email(email).await?;
    let context = [user.email.clone(), user.name.clone()];
    let hash = svc
        .cpu
        .run(move || {
            let context: Vec<&str> = context.iter().map(String::as_str).collect();
            crate::password::policy(&password, &context).and_then(|()| crate::password::hash(&password))
        })
        .await?
        .map_err(|e| ServiceError::invalid("password", e))?;
    svc.store.set_password(&user.id, &hash).await?;
    // A reset by the operator ends every session signed in with the old password, and forgets
    // the browsers remembered with it.
    svc.store.end_sessions(&user.id, None).await?;
    svc.store.forget_devices(&user.id).await?;
    let entry = actor.audit_for(
        user.account_id.clone(),
        svc.now_ms(),
        "user.password_set",
        "user",
        Some(user.id.as_str()),
        Some(&user.email),
        Some("password set".into()),
    );
    record(svc, entry).await;
    Ok(user)
}

/// A new API token: its id and name, and the token itself (shown once; only its hash is kept).
#[derive(Debug)]
pub struct NewToken {
    pub id: String,
    pub name: String,
    pub token: ApiToken,
    /// The user it acts as.
    pub user: User,
}

/// Creates an API token acting as the actor, with the actor's role.
pub async fn create_token(svc: &Service, actor: &Actor, name: &str) -> Result<NewToken, ServiceError> {
    let name = domain::label("name", "a token", name, 80)?;
    let user = actor.user.clone();
    let (id, token) = issue_token(svc, &user, &name).await?;
    record(svc, actor.audit(svc.now_ms(), "api_token.created", "api_token", Some(&id), Some(&name), None)).await;
    Ok(NewToken { id, name, token, user })
}

/// The operator creates an API token acting as a user (a CI pipeline's, say).
pub async fn create_token_for(svc: &Service, actor: &Actor, email: &str, name: &str) -> Result<NewToken, ServiceError> {
    actor.require_operator()?;
    let name = domain::label("name", "a token", name, 80)?;
    let user = svc.store.user_by_email(email).await?;
    let (id, token) = issue_token(svc, &user, &name).await?;
    let detail = Some(format!("acts as {}", user.email));
    let entry = actor.audit_for(
        user.account_id.clone(),
        svc.now_ms(),
        "api_token.created",
        "api_token",
        Some(&id),
        Some(&name),
        detail,
    );
    record(svc, entry).await;
    Ok(NewToken { id, name, token, user })
}

async fn issue_token(svc: &Service, user: &User, name: &str) -> Result<(String, ApiToken), ServiceError> {
    let token = new_api_token()?;
    let id = format!("tok_{}", &UserId::generate().as_str()[5..]);
    svc.store.create_api_token(&id, &user.id, name, &hash_token(token.expose_secret()), svc.now_ms()).await?;
    // It acts in the account it was made in (for a person in several, not only their first).
    if let Some(account) = &user.account_id {
        svc.store.set_api_token_account(&id, account).await?;
    }
    Ok((id, token))
}

/// Revokes one of the actor's own API tokens.
pub async fn revoke_token(svc: &Service, actor: &Actor, id: &str) -> Result<(), ServiceError> {
    let now = svc.now_ms();
    svc.store.revoke_api_token(&actor.user.id, id, now).await?;
    record(svc, actor.audit(now, "api_token.revoked", "api_token", Some(id), None, None)).await;
    Ok(())
}
