//! `/api/v1/me`, `/api/v1/users` (owners manage the account's people and roles) and
//! `/api/v1/tokens` (each user's own API tokens, shown once).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::{Role, User};
use serde::{Deserialize, Serialize};
use store::{AccessStore, CatalogStore};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vault::Password;

use service::users;

use super::{ApiError, Caller, ErrorBody};
use crate::AppState;
use crate::http::{Body, Owned, Owner};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(list_users, create_user))
        .routes(routes!(list_invitations))
        .routes(routes!(withdraw_invitation))
        .routes(routes!(my_accounts))
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordInput {
    #[schema(value_type = String)]
    current_password: Password,
    /// At least 12 characters.
    #[schema(value_type = String)]
    new_password: Password,
}

/// Changes the caller's own password (the current one is required, and guessing it is throttled
/// like a sign-in). Every other session of the caller ends; the session making the change (if it
/// is one) stays.
#[utoipa::path(put, path = "/me/password", tag = "users", request_body = PasswordInput,
    responses((status = 204), (status = 422, body = ErrorBody),
        (status = 429, description = "too many wrong current passwords: try again after `Retry-After`", body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Body(input): Body<PasswordInput>,
) -> Result<StatusCode, ApiError> {
    // The session making the change stays signed in; every other one of the user's ends.
    let keep = crate::http::session_id(&headers).filter(|_| caller.via == domain::ActorKind::User);
    users::change_password(&state, &caller, input.current_password, input.new_password, keep.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's users (admins and owners).
#[utoipa::path(get, path = "/users", tag = "users", responses((status = 200, body = Vec<UserView>), (status = 403, body = ErrorBody)))]
async fn list_users(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(users::list(&state, &caller).await?.iter().map(UserView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[schema(
        max_length = 254,
        pattern = "^[^\\s@\\u0000-\\u001F\\u007F-\\u009F]+@[^\\s@\\u0000-\\u001F\\u007F-\\u009F]*\\.[^\\s@\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    email: String,
    /// `owner`, `admin`, `editor` or `viewer`.
    #[schema(pattern = "^(owner|admin|editor|viewer)$")]
    role: String,
}

/// Invites a person to the account (owners only): the answer carries the link to send them,
/// shown once, valid 7 days. A new person chooses their own password when they accept; someone
/// who already uses Lightbridge joins with the sign-in they have. The answer is the same
/// whether or not the email is known to Lightbridge; 409 only when they are already in this
/// account.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = service::members::InvitationView), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    caller: Owner,
    Body(input): Body<NewUser>,
) -> Result<(StatusCode, Json<service::members::InvitationView>), ApiError> {
    let invited = service::members::invite(&state, &caller, &input.email, &input.role).await?;
    Ok((StatusCode::CREATED, Json(invited)))
}

/// The account's invitations not accepted yet (admins and owners).
#[utoipa::path(get, path = "/invitations", tag = "users",
    responses((status = 200, body = Vec<service::members::InvitationView>), (status = 403, body = ErrorBody)))]
async fn list_invitations(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<service::members::InvitationView>>, ApiError> {
    Ok(Json(service::members::invitations(&state, &caller).await?))
}

/// Withdraws an invitation not accepted yet (owners): its link stops working.
#[utoipa::path(delete, path = "/invitations/{id}", tag = "users", params(("id" = String, Path, description = "inv_…")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn withdraw_invitation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::members::withdraw(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The accounts you belong to, with your role in each; `current` marks the one this request
/// acts in (switch a browser session with `PUT /api/v1/session/account`).
#[utoipa::path(get, path = "/me/accounts", tag = "users",
    responses((status = 200, body = Vec<service::members::AccountChoice>), (status = 401, body = ErrorBody)))]
async fn my_accounts(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<service::members::AccountChoice>>, ApiError> {
    Ok(Json(service::members::accounts(&state, &caller).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleInput {
    /// `owner`, `admin`, `editor` or `viewer`.
    #[schema(pattern = "^(owner|admin|editor|viewer)$")]
    role: String,
}

/// Changes a user's role (owners only).
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = String, Path, description = "user_…")),
    request_body = RoleInput,
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    caller: Owner,
    Owned(user): Owned<User>,
    Body(input): Body<RoleInput>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(UserView::from(&users::change_role(&state, &caller, user.id.as_str(), &input.role).await?)))
}

/// Removes a user with their sessions and API tokens (owners only).
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = String, Path, description = "user_…")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    users::remove_user(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    #[schema(
        min_length = 1,
        max_length = 80,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
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
    Body(input): Body<TokenInput>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let created = users::create_token(&state, &caller, &input.name).await?;
    let token = created.token.expose_secret().to_string();
    Ok((StatusCode::CREATED, Json(CreatedToken { id: created.id, name: created.name, token })))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "users", params(("id" = String, Path, description = "tok_…")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    users::revoke_token(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
