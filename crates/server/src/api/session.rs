//! `/api/v1/session`: sign in with email and password (argon2id), read the session, sign out.
//! The session lives in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS); its CSRF token is
//! returned in the body for the pages to send back on every change.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use service::sessions::{close_session, open_session};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vault::Password;

use super::{ApiError, Caller, ErrorBody};
use crate::AppState;
use crate::http::Body;
use crate::http::{cleared_session_cookie, session_cookie_header, session_id as session_cookie};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in, current, sign_out))
        .routes(routes!(my_sessions, end_other_sessions))
        .routes(routes!(end_session))
        .routes(routes!(two_factor_status, begin_two_factor))
        .routes(routes!(confirm_two_factor))
        .routes(routes!(disable_two_factor))
        .routes(routes!(new_recovery_codes))
        .routes(routes!(account_sign_in, set_account_sign_in))
        .routes(routes!(account_sso, set_account_sso, remove_account_sso))
        .routes(routes!(sso_domains, claim_sso_domain))
        .routes(routes!(check_sso_domain))
        .routes(routes!(remove_sso_domain))
        .routes(routes!(switch_account))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AccountSwitch {
    /// acct_…: one of yours (`GET /api/v1/me/accounts`).
    #[schema(max_length = 64)]
    account_id: String,
}

/// Switches this browser session to another of your accounts (404 if you are not in it). API
/// tokens act in the account they were made in.
#[utoipa::path(put, path = "/session/account", tag = "session", request_body = AccountSwitch,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn switch_account(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<AccountSwitch>,
) -> Result<Response, ApiError> {
    let Some(session) = this_session(&caller, &headers) else {
        return Err(ApiError::invalid(
            "account_id",
            "only a browser session switches accounts; an API token acts in the account it was made in",
        ));
    };
    service::members::switch(&state, &caller, &session, &body.account_id).await?;
    let live = service::sessions::session(&state, &session).await?;
    Ok(SessionView::new(&live.user, live.csrf).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignIn {
    email: String,
    #[schema(value_type = String)]
    password: Password,
    /// With two-factor sign-in on: the code the authenticator app shows, or a recovery code.
    #[schema(max_length = 64)]
    code: Option<String>,
    /// For a person in several accounts: the one to act in (default: their first).
    #[schema(max_length = 64)]
    account_id: Option<String>,
}

/// A signed-in browser session: who, and the CSRF token to send as `x-csrf-token` on every
/// change.
#[derive(Debug, Serialize, ToSchema)]
struct SessionView {
    email: String,
    #[schema(value_type = String)]
    role: domain::Role,
    account_id: Option<String>,
    csrf_token: String,
}

impl SessionView {
    fn new(user: &domain::User, csrf: String) -> Json<Self> {
        Json(SessionView {
            email: user.email.clone(),
            role: user.role,
            account_id: user.account_id.as_ref().map(ToString::to_string),
            csrf_token: csrf,
        })
    }
}

/// Signs in with email and password; sets the `lb_session` cookie (HttpOnly, SameSite=Lax) and
/// the browser's `lb_device` cookie. Attempts are throttled per person and address, and per
/// person (a browser that signed the user in before is throttled on its own instead): a locked
/// attempt answers 429 `too_many_attempts` with `Retry-After`, without checking the password.
/// A person with two-factor sign-in on sends `code` too; without it the right password answers
/// 401 `second_factor_required`, and a wrong code 422 (codes are throttled per person).
#[utoipa::path(post, path = "/session", tag = "session", request_body = SignIn, security(),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn sign_in(
    State(state): State<AppState>,
    connect: Result<axum::extract::ConnectInfo<std::net::SocketAddr>, axum::extract::rejection::ExtensionRejection>,
    headers: HeaderMap,
    Body(body): Body<SignIn>,
) -> Result<Response, ApiError> {
    let origin = crate::http::sign_in_origin(&headers, connect.as_ref().ok());
    // A wrong password is said as such, not as "sign in first".
    let signed_in = open_session(&state, body.email.trim(), body.password, body.code.as_deref(), origin).await;
    let opened = match signed_in.map_err(|e| match e {
        service::ServiceError::Unauthorized => ApiError::WrongCredentials,
        other => ApiError::from(other),
    })? {
        service::sessions::SignIn::Opened(opened) => opened,
        service::sessions::SignIn::SecondFactor { .. } => return Err(ApiError::SecondFactorRequired),
    };
    let mut view = SessionView::new(&opened.user, opened.csrf.clone());
    if let Some(account) = body.account_id.as_deref() {
        let actor = service::Actor::new(opened.user.clone(), domain::ActorKind::User, None);
        if let Err(e) = service::members::switch(&state, &actor, &opened.id, account).await {
            // Not one of theirs: no session is left behind.
            close_session(&state, &opened.id).await?;
            return Err(e.into());
        }
        let live = service::sessions::session(&state, &opened.id).await?;
        view = SessionView::new(&live.user, live.csrf);
    }
    let mut response = view.into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie_header(&state, &opened.id)?);
    response.headers_mut().append(header::SET_COOKIE, crate::http::device_cookie_header(&state, &opened.device)?);
    Ok(response)
}

/// The current browser session and its CSRF token.
#[utoipa::path(get, path = "/session", tag = "session", responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
async fn current(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let id = session_cookie(&headers).ok_or(ApiError::Unauthorized)?;
    let live = service::sessions::session(&state, &id).await?;
    Ok(SessionView::new(&live.user, live.csrf).into_response())
}

/// Signs out: ends the session and clears the cookie.
#[utoipa::path(delete, path = "/session", tag = "session", responses((status = 204), (status = 401, body = ErrorBody)))]
async fn sign_out(State(state): State<AppState>, _caller: Caller, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(id) = session_cookie(&headers) {
        close_session(&state, &id).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cleared_session_cookie(&state)?);
    Ok(response)
}

/// The browser session the request came with, if it came with one (not through an API token).
fn this_session(caller: &Caller, headers: &HeaderMap) -> Option<String> {
    session_cookie(headers).filter(|_| caller.via == domain::ActorKind::User)
}

/// Your own signed-in browser sessions, newest first: where and with which browser each was
/// opened, and which one is this request's.
#[utoipa::path(get, path = "/me/sessions", tag = "session",
    responses((status = 200, body = Vec<service::sessions::SessionSummary>), (status = 401, body = ErrorBody)))]
async fn my_sessions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Json<Vec<service::sessions::SessionSummary>>, ApiError> {
    let current = this_session(&caller, &headers);
    Ok(Json(service::sessions::list_sessions(&state, &caller, current.as_deref()).await?))
}

#[derive(Debug, Serialize, ToSchema)]
struct Ended {
    /// How many sessions ended.
    ended: u64,
}

/// Signs you out everywhere else: ends every one of your sessions except this request's.
#[utoipa::path(delete, path = "/me/sessions", tag = "session",
    responses((status = 200, body = Ended), (status = 401, body = ErrorBody)))]
async fn end_other_sessions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Json<Ended>, ApiError> {
    let current = this_session(&caller, &headers);
    let ended = service::sessions::end_other_sessions(&state, &caller, current.as_deref()).await?;
    Ok(Json(Ended { ended }))
}

/// Ends one of your sessions by its handle (another person's is not found).
#[utoipa::path(delete, path = "/me/sessions/{handle}", tag = "session",
    params(("handle" = String, Path, description = "ses_…, from `GET /me/sessions`")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn end_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::sessions::end_session(&state, &caller, &handle).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your two-factor sign-in: on or off, a set-up under way, recovery codes left, and whether
/// your account requires it.
#[utoipa::path(get, path = "/me/two-factor", tag = "session",
    responses((status = 200, body = service::two_factor::Status), (status = 401, body = ErrorBody)))]
async fn two_factor_status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<service::two_factor::Status>, ApiError> {
    Ok(Json(service::two_factor::status(&state, &caller).await?))
}

/// Starts setting up two-factor sign-in: a new secret for your authenticator app, as text, an
/// `otpauth://` link and a QR code (replacing a set-up not finished). Finish with
/// `POST /me/two-factor/confirm`. 409 if it is already on.
#[utoipa::path(post, path = "/me/two-factor", tag = "session",
    responses((status = 200, body = service::two_factor::Enrolment), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn begin_two_factor(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<service::two_factor::Enrolment>, ApiError> {
    Ok(Json(service::two_factor::begin(&state, &caller).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Code {
    /// The code your authenticator app shows now.
    #[schema(max_length = 64)]
    code: String,
}

/// Turns two-factor sign-in on with the first code your app shows; answers your ten recovery
/// codes, shown this once.
#[utoipa::path(post, path = "/me/two-factor/confirm", tag = "session", request_body = Code,
    responses((status = 200, body = service::two_factor::RecoveryCodes), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn confirm_two_factor(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<Code>,
) -> Result<Json<service::two_factor::RecoveryCodes>, ApiError> {
    Ok(Json(service::two_factor::confirm(&state, &caller, &body.code).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CurrentPassword {
    #[schema(value_type = String)]
    password: Password,
}

/// Turns your two-factor sign-in off, given your password (refused, 409, while your account
/// requires it).
#[utoipa::path(post, path = "/me/two-factor/disable", tag = "session", request_body = CurrentPassword,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn disable_two_factor(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<CurrentPassword>,
) -> Result<StatusCode, ApiError> {
    service::two_factor::disable(&state, &caller, body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// New recovery codes in place of the old ones, given a code from your app.
#[utoipa::path(post, path = "/me/two-factor/recovery-codes", tag = "session", request_body = Code,
    responses((status = 200, body = service::two_factor::RecoveryCodes), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn new_recovery_codes(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<Code>,
) -> Result<Json<service::two_factor::RecoveryCodes>, ApiError> {
    Ok(Json(service::two_factor::new_codes(&state, &caller, &body.code).await?))
}

/// The account's sign-in rules.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignInPolicy {
    /// Every password user signs in with a second factor.
    two_factor_required: bool,
}

/// Your account's sign-in rules.
#[utoipa::path(get, path = "/account/sign-in", tag = "session",
    responses((status = 200, body = SignInPolicy), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn account_sign_in(State(state): State<AppState>, caller: Caller) -> Result<Json<SignInPolicy>, ApiError> {
    let two_factor_required = service::two_factor::account_requires(&state, &caller).await?;
    Ok(Json(SignInPolicy { two_factor_required }))
}

/// Sets your account's sign-in rules (the owner). Requiring two-factor sign-in needs your own
/// on first (409 otherwise); people without it are then sent to set it up at their next page.
#[utoipa::path(put, path = "/account/sign-in", tag = "session", request_body = SignInPolicy,
    responses((status = 200, body = SignInPolicy), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn set_account_sign_in(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<SignInPolicy>,
) -> Result<Json<SignInPolicy>, ApiError> {
    let account = service::two_factor::set_required(&state, &caller, body.two_factor_required).await?;
    Ok(Json(SignInPolicy { two_factor_required: account.two_factor_required }))
}

/// The account's single sign-on (admins and owners): its provider, the claim that names a new
/// person's role, whether it is the only way in, the email domains that lead to it, the
/// account's own sign-in address and the redirect URI to register at the provider. 404 when
/// none is set.
#[utoipa::path(get, path = "/account/sso", tag = "session",
    responses((status = 200, body = service::sso::SsoView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn account_sso(State(state): State<AppState>, caller: Caller) -> Result<Json<service::sso::SsoView>, ApiError> {
    Ok(Json(service::sso::view(&state, &caller).await?.ok_or(ApiError::NotFound)?))
}

/// Sets the account's single sign-on (the owner): an OpenID Connect provider found by
/// discovery from its issuer (HTTPS; 409 if it does not answer or names another issuer). The
/// client secret is sealed at rest and never shown again; leave it out to keep the stored one.
#[utoipa::path(put, path = "/account/sso", tag = "session", request_body = service::sso::SsoSettings,
    responses((status = 200, body = service::sso::SsoView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_account_sso(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<service::sso::SsoSettings>,
) -> Result<Json<service::sso::SsoView>, ApiError> {
    Ok(Json(service::sso::configure(&state, &caller, body).await?))
}

/// Turns the account's single sign-on off (the owner); its domains stop leading to it.
#[utoipa::path(delete, path = "/account/sso", tag = "session",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn remove_account_sso(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    service::sso::remove(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's email domains (admins and owners): those that lead to its single sign-on from
/// `/signin`, and those claimed but not yet proved by their DNS record.
#[utoipa::path(get, path = "/account/sso/domains", tag = "session",
    responses((status = 200, body = service::domains::DomainsView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn sso_domains(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<service::domains::DomainsView>, ApiError> {
    Ok(Json(service::domains::list(&state, &caller).await?))
}

/// Claims an email domain (the owner): the answer names the DNS TXT record that proves the
/// account owns it (`record_name`, `record_value`). Claiming it again gives the same record;
/// 409 without single sign-on, or when the domain already leads to this account.
#[utoipa::path(post, path = "/account/sso/domains", tag = "session", request_body = service::domains::NewClaim,
    responses((status = 201, body = service::domains::ClaimView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn claim_sso_domain(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<service::domains::NewClaim>,
) -> Result<(StatusCode, Json<service::domains::ClaimView>), ApiError> {
    Ok((StatusCode::CREATED, Json(service::domains::claim(&state, &caller, &body.domain).await?)))
}

/// Looks for the claim's TXT record now (the owner). `verified`: the domain leads to the
/// account's single sign-on; `pending`: the claim, with what DNS showed. 409 when DNS proved
/// the claim but another Lightbridge account has the domain.
#[utoipa::path(post, path = "/account/sso/domains/{domain}/check", tag = "session",
    params(("domain" = String, Path, description = "The claimed domain")),
    responses((status = 200, body = service::domains::CheckResult), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn check_sso_domain(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
) -> Result<Json<service::domains::CheckResult>, ApiError> {
    Ok(Json(service::domains::check(&state, &caller, &domain).await?))
}

/// Withdraws a claim, or stops a domain leading to the account's single sign-on (the owner).
#[utoipa::path(delete, path = "/account/sso/domains/{domain}", tag = "session",
    params(("domain" = String, Path, description = "The domain")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn remove_sso_domain(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::domains::remove(&state, &caller, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
