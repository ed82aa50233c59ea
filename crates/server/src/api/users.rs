//! `/api/v1/me`, `/api/v1/users` (owners manage the account's people and roles) and
//! `/api/v1/tokens` (each user's own API tokens, shown once).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::{Role, User, UserId};
use serde::{Deserialize, Serialize};
use store::{AccessStore, CatalogStore};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vault::Password;

use super::auth::random_token;
use super::connections::record;
use super::{ApiError, Caller, ErrorBody, hash_token, new_api_token};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user, delete_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `owner`, `admin`, `editor` or `viewer` (`operator` for the instance-wide operator).
    #[schema(value_type = String)]
    pub role: Role,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView { id: u.id.to_string(), email: u.email.clone(), name: u.name.clone(), role: u.role }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct MeView {
    user: UserView,
    account_id: Option<String>,
    account_name: Option<String>,
    /// Whether the operator enabled legacy Connectors (F4) for the account.
    connectors_enabled: bool,
}

/// Who the caller is, and their account.
#[utoipa::path(get, path = "/me", tag = "users", responses((status = 200, body = MeView)))]
async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<MeView>, ApiError> {
    let account = match &caller.user.account_id {
        Some(id) => Some(state.store.account(id).await?),
        None => None,
    };
    Ok(Json(MeView {
        user: UserView::from(&caller.user),
        account_id: account.as_ref().map(|a| a.id.to_string()),
        account_name: account.as_ref().map(|a| a.name.clone()),
        connectors_enabled: account.is_some_and(|a| a.connectors_enabled),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordInput {
    current_password: String,
    /// At least 12 characters.
    new_password: String,
}

impl std::fmt::Debug for PasswordInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordInput([redacted])")
    }
}

/// Changes the caller's own password (the current one is required).
#[utoipa::path(put, path = "/me/password", tag = "users", request_body = PasswordInput,
    responses((status = 204), (status = 422, body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    input: Result<Json<PasswordInput>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let (_, stored) = state.store.credentials(&caller.user.email).await?;
    let current = Password::new(input.current_password);
    let mut errors = Vec::new();
    if !stored.as_deref().is_some_and(|hash| crate::password::verify(&current, hash)) {
        errors.push(("current_password".to_string(), "that is not your current password".to_string()));
    }
    let new = crate::password::hash(&Password::new(input.new_password))
        .map_err(|e| errors.push(("new_password".to_string(), e)))
        .ok();
    let (Some(hash), true) = (new, errors.is_empty()) else {
        return Err(ApiError::Invalid(errors));
    };
    state.store.set_password(&caller.user.id, &hash).await?;
    let now = state.clock.now_ms();
    let user = &caller.user;
    record(&state, caller.audit(now, "user.password_changed", "user", Some(user.id.as_str()), Some(&user.email), None))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's users (admins and owners).
#[utoipa::path(get, path = "/users", tag = "users", responses((status = 200, body = Vec<UserView>), (status = 403, body = ErrorBody)))]
async fn list_users(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<UserView>>, ApiError> {
    let account = caller.require_connection_admin()?;
    Ok(Json(state.store.users(account).await?.iter().map(UserView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    #[serde(default)]
    name: String,
    /// `owner`, `admin`, `editor` or `viewer`.
    role: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct CreatedUser {
    user: UserView,
    /// Shown once: give it to the person, who signs in and changes it (`PUT /api/v1/me/password`).
    temporary_password: String,
}

fn account_role(text: &str) -> Result<Role, ApiError> {
    match Role::parse(text) {
        Some(Role::Operator) | None => {
            Err(ApiError::invalid("role", format!("{text:?} is not one of owner, admin, editor, viewer")))
        }
        Some(role) => Ok(role),
    }
}

/// Adds a person to the account with a temporary password (owners only).
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = CreatedUser), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    input: Result<Json<NewUser>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    caller.require_owner()?;
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let (user, temporary) = add_user(&state, &caller, &input.email, &input.name, &input.role).await?;
    Ok((StatusCode::CREATED, Json(CreatedUser { user: UserView::from(&user), temporary_password: temporary })))
}

/// Adds a person to the owner's account with a temporary password (returned once): the API's
/// and the users page's one implementation.
pub(crate) async fn add_user(
    state: &AppState,
    caller: &Caller,
    email: &str,
    name: &str,
    role: &str,
) -> Result<(User, String), ApiError> {
    let account = caller.require_owner()?.clone();
    let mut errors = Vec::new();
    let email = email.trim().to_string();
    if !valid_email(&email) {
        errors.push(("email".to_string(), format!("{email:?} is not an email address")));
    }
    let name = name.trim().to_string();
    if name.chars().count() > 120 || name.chars().any(char::is_control) {
        errors.push(("name".to_string(), "a name has at most 120 characters and no control characters".to_string()));
    }
    let role = account_role(role)
        .map_err(|_| errors.push(("role".to_string(), format!("{role:?} is not one of owner, admin, editor, viewer"))))
        .ok();
    let (Some(role), true) = (role, errors.is_empty()) else {
        return Err(ApiError::Invalid(errors));
    };
    let temporary = random_token()?;
    let hash = crate::password::hash(&Password::new(temporary.clone())).map_err(|_| ApiError::Internal)?;
    let user = User { id: UserId::generate(), account_id: Some(account), email, name, role };
    let now = state.clock.now_ms();
    state.store.create_user(&user, Some(&hash), now).await?;
    let detail = Some(format!("role {}", role.as_str()));
    record(state, caller.audit(now, "user.created", "user", Some(user.id.as_str()), Some(&user.email), detail)).await;
    Ok((user, temporary))
}

fn valid_email(email: &str) -> bool {
    email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleInput {
    /// `owner`, `admin`, `editor` or `viewer`.
    role: String,
}

fn user_id(id: &str) -> Result<UserId, ApiError> {
    UserId::parse(id).map_err(|_| ApiError::NotFound)
}

/// An account keeps at least one owner: refuses to demote or remove the last one.
async fn keep_an_owner(state: &AppState, account: &domain::AccountId, leaving: &User) -> Result<(), ApiError> {
    if leaving.role != Role::Owner {
        return Ok(());
    }
    let owners = state.store.users(account).await?.iter().filter(|u| u.role == Role::Owner).count();
    if owners <= 1 {
        return Err(ApiError::Conflict(format!(
            "{} is the account's only owner: make someone else an owner first",
            leaving.email
        )));
    }
    Ok(())
}

/// Changes a user's role (owners only).
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = String, Path, description = "user_…")),
    request_body = RoleInput,
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    input: Result<Json<RoleInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<UserView>, ApiError> {
    let account = caller.require_owner()?.clone();
    state.store.user(&account, &user_id(&id)?).await?;
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    Ok(Json(UserView::from(&change_role(&state, &caller, &id, &input.role).await?)))
}

/// Changes a user's role (owners only); the account keeps an owner.
pub(crate) async fn change_role(state: &AppState, caller: &Caller, id: &str, role: &str) -> Result<User, ApiError> {
    let account = caller.require_owner()?.clone();
    let mut user = state.store.user(&account, &user_id(id)?).await?;
    let role = account_role(role)?;
    if role != user.role {
        if role != Role::Owner {
            keep_an_owner(state, &account, &user).await?;
        }
        state.store.set_role(&account, &user.id, role).await?;
        let detail = format!("role {} → {}", user.role.as_str(), role.as_str());
        let now = state.clock.now_ms();
        let entry =
            caller.audit(now, "user.role_changed", "user", Some(user.id.as_str()), Some(&user.email), Some(detail));
        record(state, entry).await;
        user.role = role;
    }
    Ok(user)
}

/// Removes a user with their sessions and API tokens (owners only).
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = String, Path, description = "user_…")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_user(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a user with their sessions and tokens (owners only); the last owner stays.
pub(crate) async fn remove_user(state: &AppState, caller: &Caller, id: &str) -> Result<User, ApiError> {
    let account = caller.require_owner()?.clone();
    let user = state.store.user(&account, &user_id(id)?).await?;
    keep_an_owner(state, &account, &user).await?;
    state.store.delete_user(&account, &user.id).await?;
    let now = state.clock.now_ms();
    record(state, caller.audit(now, "user.deleted", "user", Some(user.id.as_str()), Some(&user.email), None)).await;
    Ok(user)
}

#[derive(Debug, Serialize, ToSchema)]
struct TokenView {
    id: String,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// The caller's own API tokens (never the tokens themselves).
#[utoipa::path(get, path = "/tokens", tag = "users", responses((status = 200, body = Vec<TokenView>)))]
async fn list_tokens(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = state.store.api_tokens(&caller.user.id).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                created_at: t.created_at,
                last_used_at: t.last_used_at,
                revoked_at: t.revoked_at,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenInput {
    /// What it is for, e.g. "CI publish".
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct CreatedToken {
    id: String,
    name: String,
    /// Shown once; only its SHA-256 is stored. It acts as the caller, with the caller's role.
    token: String,
}

/// Creates an API token acting as the caller.
#[utoipa::path(post, path = "/tokens", tag = "users", request_body = TokenInput,
    responses((status = 201, body = CreatedToken), (status = 422, body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    input: Result<Json<TokenInput>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let Json(input) = input.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let name = domain::label("name", "a token", &input.name, 80)?;
    let token = new_api_token()?;
    let id = format!("tok_{}", &UserId::generate().as_str()[5..]);
    let now = state.clock.now_ms();
    state.store.create_api_token(&id, &caller.user.id, &name, &hash_token(token.expose_secret()), now).await?;
    record(&state, caller.audit(now, "api_token.created", "api_token", Some(&id), Some(&name), None)).await;
    Ok((StatusCode::CREATED, Json(CreatedToken { id, name, token: token.expose_secret().to_string() })))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "users", params(("id" = String, Path, description = "tok_…")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now_ms();
    state.store.revoke_api_token(&caller.user.id, &id, now).await?;
    record(&state, caller.audit(now, "api_token.revoked", "api_token", Some(&id), None, None)).await;
    Ok(StatusCode::NO_CONTENT)
}
