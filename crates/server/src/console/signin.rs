//! `/signin` and `/signout`: the Admin Center's password sign-in. The sign-in form has its own
//! CSRF token (a cookie and a hidden field that must match), so nobody can sign a browser in to
//! someone else's session.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use vault::Password;

use super::{Checked, CsrfForm, PageError, cookie_value, redirect_with_flash, render};
use crate::AppState;
use crate::http::random_token;

const SIGNIN_COOKIE: &str = "lb_signin";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signin", get(form).post(submit))
        .route("/signin/code", post(submit_code))
        .route("/signin/sso", post(submit_sso))
        .route("/invitations/{token}", get(invitation).post(join_as_new))
        .route("/invitations/{token}/accept", post(join_signed_in))
        .route("/accounts/choose", get(choose_account).post(chose_account))
        .route("/sso/callback", get(sso_callback))
        .route("/sso/{account}", get(sso_address).post(submit_sso_address))
        .route("/signout", post(sign_out))
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
    notice: Option<String>,
    /// Set on the second step: the code is asked for.
    challenge: Option<String>,
    /// The account's own sign-in address: (id, name) of the account whose provider to go to.
    sso_account: Option<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct NextParam {
    next: Option<String>,
}

/// Only paths of this site: never an absolute URL someone else chose. Browsers drop tabs and
/// newlines from URLs and read `\\` as `/`, so `/\t/evil.example` would leave the site: anything
/// but printable ASCII without a backslash is refused, and the path must still name this site
/// once resolved the way a browser resolves it.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    const HOME: &str = "/integrations";
    let Some(next) = next else { return HOME.to_string() };
    let printable = next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if !printable || !next.starts_with('/') || next.starts_with("//") || next.len() > 2048 {
        return HOME.to_string();
    }
    let base = url::Url::parse("http://lightbridge.invalid/").expect("constant URL");
    match base.join(next) {
        Ok(url) if url.origin() == base.origin() => next.to_string(),
        _ => HOME.to_string(),
    }
}

fn with_signin_cookie(state: &AppState, status: StatusCode, page: &SignInPage) -> Response {
    let mut response = render(status, page, None);
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SIGNIN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{secure}",
        page.csrf
    )) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextParam>,
) -> Result<Response, PageError> {
    let notice = super::read_flash(&headers).map(|f| f.text);
    let page = SignInPage {
        csrf: random_token()?,
        next: safe_next(q.next.as_deref()),
        email: String::new(),
        error: None,
        notice,
        challenge: None,
        sso_account: None,
    };
    let mut response = with_signin_cookie(&state, StatusCode::OK, &page);
    response
        .headers_mut()
        .append(header::SET_COOKIE, HeaderValue::from_static("lb_flash=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"));
    Ok(response)
}

#[derive(Deserialize)]
struct SignInForm {
    email: String,
    password: Password,
    csrf: String,
    next: Option<String>,
}

async fn submit(
    State(state): State<AppState>,
    connect: Result<axum::extract::ConnectInfo<std::net::SocketAddr>, axum::extract::rejection::ExtensionRejection>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref());
    let cookie = cookie_value(&headers, SIGNIN_COOKIE).unwrap_or_default();
    let fresh = |error: &str| -> Result<Response, PageError> {
        let page = SignInPage {
            csrf: random_token()?,
            next: next.clone(),
            email: form.email.clone(),
            error: Some(error.into()),
            notice: None,
            challenge: None,
            sso_account: None,
        };
        Ok(with_signin_cookie(&state, StatusCode::UNPROCESSABLE_ENTITY, &page))
    };
    if cookie.is_empty()
        || aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), form.csrf.as_bytes()).is_err()
    {
        return fresh("This sign-in form expired. Please sign in again.");
    }
    let origin = crate::http::sign_in_origin(&headers, connect.as_ref().ok());
    match service::sessions::open_session(&state, form.email.trim(), form.password.clone(), None, origin).await {
        Ok(service::sessions::SignIn::Opened(opened)) => signed_in(&state, &next, &opened).await,
        Ok(service::sessions::SignIn::SecondFactor { challenge }) => {
            let page = SignInPage {
                csrf: random_token()?,
                next: next.clone(),
                email: form.email.trim().to_string(),
                error: None,
                notice: None,
                challenge: Some(challenge),
                sso_account: None,
            };
            Ok(with_signin_cookie(&state, StatusCode::OK, &page))
        }
        Err(service::ServiceError::Unauthorized) => fresh("That email and password do not match an account."),
        Err(service::ServiceError::SsoRequired) => {
            fresh("Your account signs in with single sign-on: use \"Sign in with single sign-on\" below.")
        }
        Err(service::ServiceError::TooManyAttempts { retry_after_secs }) => {
            let message =
                format!("Too many failed sign-ins for this email. Try again in {}.", wait_in_words(retry_after_secs));
            too_many(fresh(&message)?, retry_after_secs)
        }
        Err(e) => Err(e.into()),
    }
}

/// The redirect into the Admin Center, with the session's and the browser's cookies; a person
/// in several accounts chooses one first.
async fn signed_in(state: &AppState, next: &str, opened: &service::sessions::Opened) -> Result<Response, PageError> {
    let target = if service::members::has_choice(state, &opened.user).await? {
        let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        format!("/accounts/choose?next={next}")
    } else {
        next.to_string()
    };
    let mut response = Redirect::to(&target).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, crate::http::session_cookie_header(state, &opened.id)?);
    headers.append(header::SET_COOKIE, crate::http::device_cookie_header(state, &opened.device)?);
    Ok(response)
}

/// A refused attempt as 429 with `Retry-After`, its message saying how long to wait.
fn too_many(mut response: Response, retry_after_secs: u64) -> Result<Response, PageError> {
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct CodeForm {
    challenge: String,
    code: String,
    csrf: String,
    next: Option<String>,
    #[serde(default)]
    email: String,
}

/// The second step: the code from the person's app, or a recovery code.
async fn submit_code(
    State(state): State<AppState>,
    connect: Result<axum::extract::ConnectInfo<std::net::SocketAddr>, axum::extract::rejection::ExtensionRejection>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref());
    let cookie = cookie_value(&headers, SIGNIN_COOKIE).unwrap_or_default();
    let page = |error: String, challenge: Option<String>| -> Result<SignInPage, PageError> {
        Ok(SignInPage {
            csrf: random_token()?,
            next: next.clone(),
            email: form.email.clone(),
            error: Some(error),
            notice: None,
            challenge,
            sso_account: None,
        })
    };
    let again = |error: &str| -> Result<Response, PageError> {
        Ok(with_signin_cookie(&state, StatusCode::UNPROCESSABLE_ENTITY, &page(error.into(), None)?))
    };
    if cookie.is_empty()
        || aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), form.csrf.as_bytes()).is_err()
    {
        return again("This sign-in form expired. Please sign in again.");
    }
    let origin = crate::http::sign_in_origin(&headers, connect.as_ref().ok());
    match service::sessions::complete_sign_in(&state, &form.challenge, &form.code, origin).await {
        Ok(opened) => signed_in(&state, &next, &opened).await,
        Err(service::ServiceError::Unauthorized) => {
            again("This sign-in took too long or was already used. Please sign in again.")
        }
        Err(service::ServiceError::Invalid(_)) => {
            let message =
                "That code is wrong or was used already. Type the newest code your app shows, or a recovery code.";
            let page = page(message.into(), Some(form.challenge.clone()))?;
            Ok(with_signin_cookie(&state, StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(service::ServiceError::TooManyAttempts { retry_after_secs }) => {
            let message = format!("Too many wrong codes. Try again in {}.", wait_in_words(retry_after_secs));
            let page = page(message, Some(form.challenge.clone()))?;
            too_many(with_signin_cookie(&state, StatusCode::UNPROCESSABLE_ENTITY, &page), retry_after_secs)
        }
        Err(e) => Err(e.into()),
    }
}

/// The cookie that binds a single sign-on flow to the browser that started it (its state).
const SSO_COOKIE: &str = "lb_sso";

#[derive(Deserialize)]
struct SsoForm {
    email: String,
    csrf: String,
    next: Option<String>,
}

/// "Sign in with single sign-on": the email's domain leads to the account's provider.
async fn submit_sso(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SsoForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref());
    let cookie = cookie_value(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if cookie.is_empty()
        || aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), form.csrf.as_bytes()).is_err()
    {
        return sso_refused(&state, &next, &form.email, "This sign-in form expired. Please try again.");
    }
    let Some(account) = service::sso::account_for_email(&state, &form.email).await? else {
        return sso_refused(
            &state,
            &next,
            &form.email,
            "No single sign-on is set up for that email's domain. Sign in with your password, or use your organization's Lightbridge sign-in address.",
        );
    };
    // The sign-in page's CSP lets its forms reach only this site, so the browser goes on to the
    // provider from a page of ours (a meta refresh), not from the form's redirect.
    to_provider(&state, account.as_str(), Some(form.email.trim()), &next, true).await
}

#[derive(Template)]
#[template(path = "sso_redirect.html")]
struct SsoRedirectPage {
    target: String,
}

/// The account's own sign-in address: a page naming the account with one button. Going on to
/// the provider takes that button (a POST with this page's CSRF pair), so nobody can start a
/// sign-in into their own account in someone else's browser with a link.
async fn sso_address(
    State(state): State<AppState>,
    axum::extract::Path(account): axum::extract::Path<String>,
    Query(q): Query<NextParam>,
) -> Result<Response, PageError> {
    let next = safe_next(q.next.as_deref());
    let Some(name) = service::sso::account_name(&state, &account).await? else {
        return sso_refused(&state, &next, "", "There is no single sign-on at that address.");
    };
    let page = SignInPage {
        csrf: random_token()?,
        next,
        email: String::new(),
        error: None,
        notice: None,
        challenge: None,
        sso_account: Some((account, name)),
    };
    Ok(with_signin_cookie(&state, StatusCode::OK, &page))
}

#[derive(Deserialize)]
struct AddressForm {
    csrf: String,
    next: Option<String>,
}

async fn submit_sso_address(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(account): axum::extract::Path<String>,
    Form(form): Form<AddressForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref());
    let cookie = cookie_value(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if cookie.is_empty()
        || aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), form.csrf.as_bytes()).is_err()
    {
        return sso_refused(&state, &next, "", "This sign-in form expired. Please try again.");
    }
    to_provider(&state, &account, None, &next, true).await
}

async fn to_provider(
    state: &AppState,
    account: &str,
    hint: Option<&str>,
    next: &str,
    from_form: bool,
) -> Result<Response, PageError> {
    match service::sso::start(state, account, hint, next).await {
        Ok(started) => Ok(provider_redirect(state, &started, from_form)),
        Err(service::ServiceError::NotFound) => {
            sso_refused(state, next, hint.unwrap_or_default(), "There is no single sign-on at that address.")
        }
        Err(service::ServiceError::SsoFailed(message)) => {
            sso_refused(state, next, hint.unwrap_or_default(), &format!("Single sign-on did not work: {message}."))
        }
        Err(e) => Err(e.into()),
    }
}

/// On to the provider, with the flow's state bound to this browser. After a form of ours, from a
/// page of ours (a meta refresh): the pages' CSP lets their forms reach only this site.
pub(crate) fn provider_redirect(state: &AppState, started: &service::sso::Started, from_form: bool) -> Response {
    let mut response = if from_form {
        render(StatusCode::OK, &SsoRedirectPage { target: started.redirect.clone() }, None)
    } else {
        Redirect::to(&started.redirect).into_response()
    };
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    // Lax: the provider sends the browser back with a top-level GET.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SSO_COOKIE}={}; Path=/sso; HttpOnly; SameSite=Lax; Max-Age=600{secure}",
        started.state
    )) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

fn sso_refused(state: &AppState, next: &str, email: &str, error: &str) -> Result<Response, PageError> {
    let page = SignInPage {
        csrf: random_token()?,
        next: next.to_string(),
        email: email.trim().to_string(),
        error: Some(error.to_string()),
        notice: None,
        challenge: None,
        sso_account: None,
    };
    Ok(with_signin_cookie(state, StatusCode::UNAUTHORIZED, &page))
}

#[derive(Deserialize)]
struct SsoCallback {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// Where the provider sends the browser back.
async fn sso_callback(
    State(state): State<AppState>,
    connect: Result<axum::extract::ConnectInfo<std::net::SocketAddr>, axum::extract::rejection::ExtensionRejection>,
    headers: HeaderMap,
    Query(q): Query<SsoCallback>,
) -> Result<Response, PageError> {
    let home = safe_next(None);
    let cookie = cookie_value(&headers, SSO_COOKIE).unwrap_or_default();
    let sent = q.state.clone().unwrap_or_default();
    let mut response = if let Some(error) = &q.error {
        // Only the standard error code, never the provider's free text: anyone can make a link
        // to this address, and a page of ours must not say what they wrote.
        let code: String =
            error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect::<String>();
        let message = match code.as_str() {
            "access_denied" => "Your organization's sign-in was cancelled or refused.".to_string(),
            _ => format!("Your organization's sign-in did not complete ({code})."),
        };
        sso_refused(&state, &home, "", &message)?
    } else if sent.is_empty()
        || cookie.is_empty()
        || aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), sent.as_bytes()).is_err()
    {
        // A callback this browser did not start (someone else's link): never signs it in.
        sso_refused(&state, &home, "", "This sign-in was not started in this browser. Start it again.")?
    } else {
        let origin = crate::http::sign_in_origin(&headers, connect.as_ref().ok());
        match service::sso::finish(&state, &sent, q.code.as_deref().unwrap_or_default(), origin).await {
            Ok((opened, next)) => signed_in(&state, &safe_next(Some(&next)), &opened).await?,
            Err(service::ServiceError::SsoFailed(message)) => {
                tracing::info!(reason = %message, "single sign-on refused");
                sso_refused(&state, &home, "", &format!("Single sign-on did not work: {message}."))?
            }
            Err(e) => return Err(e.into()),
        }
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{SSO_COOKIE}=; Path=/sso; HttpOnly; SameSite=Lax; Max-Age=0")) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    token: String,
    csrf: String,
    valid: bool,
    account_name: String,
    email: String,
    role: &'static str,
    known: bool,
    signed_in_as_invited: bool,
    name: String,
    error: Option<String>,
}

/// An invitation's link: join as a new person (choosing a password), or, signed in as the
/// invited email, join with that sign-in.
async fn invitation(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
    signed_in: Result<super::SignedIn, super::NotSignedIn>,
) -> Result<Response, PageError> {
    invitation_page(&state, &token, signed_in.ok().as_ref(), String::new(), None).await
}

async fn invitation_page(
    state: &AppState,
    token: &str,
    signed_in: Option<&super::SignedIn>,
    name: String,
    error: Option<String>,
) -> Result<Response, PageError> {
    let pending = match service::members::pending(state, token).await {
        Ok(p) => Some(p),
        Err(service::ServiceError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let status = if pending.is_some() { StatusCode::OK } else { StatusCode::NOT_FOUND };
    let signed_in_as_invited = match (&pending, signed_in) {
        (Some(p), Some(s)) => s.caller.user.email.eq_ignore_ascii_case(&p.email),
        _ => false,
    };
    let page = InvitationPage {
        token: token.to_string(),
        // Signed in: the session's CSRF token; otherwise the sign-in form's cookie pair.
        csrf: match signed_in.filter(|_| signed_in_as_invited) {
            Some(s) => s.csrf.clone(),
            None => random_token()?,
        },
        valid: pending.is_some(),
        account_name: pending.as_ref().map(|p| p.account_name.clone()).unwrap_or_default(),
        email: pending.as_ref().map(|p| p.email.clone()).unwrap_or_default(),
        role: pending.as_ref().map_or("", |p| p.role.as_str()),
        known: pending.as_ref().is_some_and(|p| p.known),
        signed_in_as_invited,
        name,
        error,
    };
    if signed_in_as_invited {
        return Ok(render(status, &page, None));
    }
    let mut response = render(status, &page, None);
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SIGNIN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{secure}",
        page.csrf
    )) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct JoinForm {
    csrf: String,
    #[serde(default)]
    name: String,
    password: Password,
    confirm: Password,
}

/// A new person accepts: their sign-in is made with the password they chose, and they are in.
async fn join_as_new(
    State(state): State<AppState>,
    connect: Result<axum::extract::ConnectInfo<std::net::SocketAddr>, axum::extract::rejection::ExtensionRejection>,
    headers: HeaderMap,
    axum::extract::Path(token): axum::extract::Path<String>,
    Form(form): Form<JoinForm>,
) -> Result<Response, PageError> {
    let cookie = cookie_value(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if cookie.is_empty()
        || aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), form.csrf.as_bytes()).is_err()
    {
        let error = Some("This form expired. Please try again.".to_string());
        return invitation_page(&state, &token, None, form.name, error).await;
    }
    if form.password.expose_secret() != form.confirm.expose_secret() {
        let error = Some("The two passwords differ.".to_string());
        return invitation_page(&state, &token, None, form.name, error).await;
    }
    let origin = crate::http::sign_in_origin(&headers, connect.as_ref().ok());
    match service::members::accept_new(&state, &token, &form.name, form.password, origin).await {
        Ok(opened) => signed_in(&state, "/integrations", &opened).await,
        Err(service::ServiceError::Invalid(fields)) => {
            let error = Some(fields.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; "));
            invitation_page(&state, &token, None, form.name, error).await
        }
        Err(service::ServiceError::Conflict { message, .. }) => {
            invitation_page(&state, &token, None, form.name, Some(message)).await
        }
        Err(service::ServiceError::NotFound) => invitation_page(&state, &token, None, form.name, None).await,
        Err(e) => Err(e.into()),
    }
}

/// The signed-in invited person joins with the sign-in they have; this session moves there.
async fn join_signed_in(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
    super::Checked(signed_in, _): super::Checked<super::CsrfForm>,
) -> Result<Response, PageError> {
    match service::members::accept_signed_in(&state, &signed_in.caller, &token).await {
        Ok(account) => {
            service::members::switch(&state, &signed_in.caller, signed_in.session.expose(), account.as_str()).await?;
            Ok(super::redirect_with_flash("/integrations", "success", "You joined the account: this is it now."))
        }
        Err(service::ServiceError::Conflict { message, .. }) => {
            invitation_page(&state, &token, Some(&signed_in), String::new(), Some(message)).await
        }
        Err(service::ServiceError::NotFound) => invitation_page(&state, &token, None, String::new(), None).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "choose_account.html")]
struct ChoosePage {
    chrome: super::Chrome,
    accounts: Vec<service::members::AccountChoice>,
    next: String,
}

async fn choose_account(
    State(state): State<AppState>,
    signed_in: super::SignedIn,
    Query(q): Query<NextParam>,
) -> Result<Response, PageError> {
    let accounts = service::members::accounts(&state, &signed_in.caller).await?;
    let chrome = signed_in.chrome("account");
    let page = ChoosePage { chrome: chrome.clone(), accounts, next: safe_next(q.next.as_deref()) };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

#[derive(Debug, Deserialize)]
struct ChooseForm {
    csrf: String,
    account: String,
    next: Option<String>,
}

impl super::WithCsrf for ChooseForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn chose_account(
    State(state): State<AppState>,
    super::Checked(signed_in, form): super::Checked<ChooseForm>,
) -> Result<Response, PageError> {
    service::members::switch(&state, &signed_in.caller, signed_in.session.expose(), &form.account).await?;
    Ok(Redirect::to(&safe_next(form.next.as_deref())).into_response())
}

/// "42 seconds", "3 minutes", "1 hour".
fn wait_in_words(secs: u64) -> String {
    let (n, unit) = match secs {
        0..=89 => (secs.max(1), "second"),
        90..=5399 => (secs.div_ceil(60), "minute"),
        _ => (secs.div_ceil(3600), "hour"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    _: Checked<CsrfForm>,
) -> Result<Response, PageError> {
    if let Some(id) = crate::http::session_id(&headers) {
        service::sessions::close_session(&state, &id).await?;
    }
    let mut response = redirect_with_flash("/signin", "info", "You are signed out.");
    response.headers_mut().append(header::SET_COOKIE, crate::http::cleared_session_cookie(&state)?);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_keeps_paths_of_this_site_and_refuses_everything_that_leaves_it() {
        for ok in ["/integrations", "/connections?q=a%20b&sort=name", "/deployments/dep_1#top", "/%2F%2Fevil.example"] {
            assert_eq!(safe_next(Some(ok)), ok, "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\r\nSet-Cookie: x=1",
            "/\n",
            "/ /evil.example",
            "https://evil.example/",
            "evil.example",
            "javascript:alert(1)",
            "/caf\u{e9}",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/integrations", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/integrations");
    }
}
