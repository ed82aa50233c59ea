//! The Admin Center (issue #4): server-rendered pages on the same services as the JSON API.
//! Every page needs a signed-in session (else it redirects to `/signin`); every form carries
//! the session's CSRF token; errors render the same `ApiError` as a page or a message. Assets
//! are embedded in the binary: nothing is loaded from elsewhere.

mod account;
mod bulk;
pub(crate) mod connections;
mod deployments;
mod export;
mod fleet;
mod integrations;
mod notifications;
mod operator;
mod people;
mod signin;
mod systems;
mod webhooks;
mod xlsx;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use domain::ActorKind;
use store::{AccessStore, CatalogStore};

use crate::AppState;
use crate::http::{ApiError, Caller, cookie_value, hash_token};

pub use connections::oauth_landing;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/integrations") }))
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", include_str!("../../assets/app.css")) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", include_str!("../../assets/app.js")) }),
        )
        .merge(signin::routes())
        .merge(integrations::routes())
        .merge(connections::routes())
        .merge(bulk::routes())
        .merge(systems::routes())
        .merge(deployments::routes())
        .merge(fleet::routes())
        .merge(people::routes())
        .merge(account::routes())
        .merge(operator::routes())
        .merge(webhooks::routes())
        .merge(notifications::routes())
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// A signed-in browser session: who, their account, and the CSRF token forms must carry.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub caller: Caller,
    pub csrf: String,
    pub account_name: String,
    pub flash: Option<Flash>,
    /// The session's id, from its cookie (to tell it apart in the person's list of sessions).
    pub session: SessionCookie,
}

/// A session id as the browser's cookie holds it; never printed.
#[derive(Clone)]
pub struct SessionCookie(String);

impl SessionCookie {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCookie([redacted])")
    }
}

impl SignedIn {
    pub fn can_manage(&self) -> bool {
        self.caller.user.role.manages_connections()
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), ApiError> {
        aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), self.csrf.as_bytes()).map_err(|_| {
            ApiError::Forbidden("this form has expired or did not come from Lightbridge: reload the page and try again")
        })
    }

    /// What every page's frame shows.
    pub fn chrome(&self, active: &'static str) -> Chrome {
        let user = &self.caller.user;
        Chrome {
            active,
            email: user.email.clone(),
            role: user.role.as_str(),
            account_name: self.account_name.clone(),
            csrf: self.csrf.clone(),
            flash: self.flash.clone(),
            can_manage: self.can_manage(),
        }
    }
}

/// The page frame: navigation, who is signed in, the flash message.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub active: &'static str,
    pub email: String,
    pub role: &'static str,
    pub account_name: String,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub can_manage: bool,
}

/// A one-time message shown on the next page (kept in a short-lived cookie).
#[derive(Debug, Clone)]
pub struct Flash {
    /// `success`, `error` or `info`.
    pub kind: String,
    pub text: String,
}

const FLASH_COOKIE: &str = "lb_flash";

fn read_flash(headers: &HeaderMap) -> Option<Flash> {
    let raw = cookie_value(headers, FLASH_COOKIE)?;
    let decoded: String = url::form_urlencoded::parse(format!("f={raw}").as_bytes()).next()?.1.into_owned();
    let (kind, text) = decoded.split_once('|')?;
    let kind = match kind {
        "success" | "error" | "info" => kind.to_string(),
        _ => return None,
    };
    Some(Flash { kind, text: text.chars().take(500).collect() })
}

/// A redirect (303, so the browser follows with GET) that shows `text` on the next page.
pub fn redirect_with_flash(to: &str, kind: &str, text: &str) -> Response {
    let value: String = url::form_urlencoded::byte_serialize(format!("{kind}|{text}").as_bytes()).collect();
    let mut response = Redirect::to(to).into_response();
    if let Ok(cookie) =
        HeaderValue::from_str(&format!("{FLASH_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"))
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Renders a page; a flash it showed is cleared; pages are never cached (they hold a CSRF
/// token and sometimes what the admin typed).
pub fn page(template: &impl Template, chrome: Option<&Chrome>) -> Response {
    render(StatusCode::OK, template, chrome)
}

pub fn render(status: StatusCode, template: &impl Template, chrome: Option<&Chrome>) -> Response {
    let body = match template.render() {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "a page could not be rendered");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    let mut response = (status, axum::response::Html(body)).into_response();
    let headers = response.headers_mut();
    // The frame and content policies are added to every HTML answer by `api::security_headers`.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if chrome.is_some_and(|c| c.flash.is_some()) {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("lb_flash=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        );
    }
    response
}

/// Where a request without a session goes.
pub fn sign_in_first(_error: &ApiError) -> Response {
    Redirect::to("/signin").into_response()
}

/// The rejection of [`SignedIn`]: pages redirect to the sign-in page (back here afterwards).
#[derive(Debug)]
pub enum NotSignedIn {
    Redirect(String),
    /// Signed in, but the account requires a second factor the person has not set up.
    SetUpTwoFactor,
    Error(ApiError),
}

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        match self {
            NotSignedIn::Redirect(next) => {
                let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                Redirect::to(&format!("/signin?next={next}")).into_response()
            }
            NotSignedIn::SetUpTwoFactor => redirect_with_flash(
                "/account/two-factor",
                "info",
                "Your account requires two-factor sign-in: set it up to continue.",
            ),
            NotSignedIn::Error(e) => error_page(&e, None),
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = NotSignedIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let next = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let session = crate::http::session_id(&parts.headers).ok_or_else(|| NotSignedIn::Redirect(next.clone()))?;
        let store::LiveSession { user, csrf, must_enrol } =
            match state.store.session(&hash_token(&session), state.clock.now_ms()).await {
                Ok(found) => found,
                Err(store::StoreError::NotFound) => return Err(NotSignedIn::Redirect(next)),
                Err(e) => return Err(NotSignedIn::Error(e.into())),
            };
        // Until a person whose account requires a second factor has set theirs up, every page
        // but its set-up sends them there (signing out needs no session check).
        if must_enrol
            && !matches!(
                parts.uri.path(),
                "/account/two-factor" | "/account/two-factor/start" | "/account/two-factor/confirm" | "/signout"
            )
        {
            return Err(NotSignedIn::SetUpTwoFactor);
        }
        let remote_addr =
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
        let account_name = match &user.account_id {
            Some(id) => state.store.account(id).await.map_err(|e| NotSignedIn::Error(e.into()))?.name,
            None => "Lightbridge operator".into(),
        };
        Ok(SignedIn {
            caller: Caller(service::Actor::new(user, ActorKind::User, remote_addr)),
            csrf,
            account_name,
            flash: read_flash(&parts.headers),
            session: SessionCookie(session),
        })
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Option<&'a Chrome>,
    title: &'a str,
    message: String,
    request_id: String,
}

/// `ApiError` as a page: the same status and message the API would give.
pub fn error_page(error: &ApiError, chrome: Option<&Chrome>) -> Response {
    let (status, _) = error.status_and_code();
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::UNAUTHORIZED => "Sign in first",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    let message = match error {
        ApiError::NotFound => "There is nothing here, or it belongs to another account.".to_string(),
        ApiError::Invalid(fields) => fields.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    };
    let request_id = crate::http::REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
    render(status, &ErrorPage { chrome, title, message, request_id }, chrome)
}

/// A form that carries only the session's CSRF token (sign-out, remove, rollback).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

impl WithCsrf for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A form that carries the session's CSRF token in a field.
pub trait WithCsrf {
    fn csrf(&self) -> &str;
}

/// A form posted from one of our pages by a signed-in browser: the session found (else the
/// sign-in page), the form parsed, and its CSRF token the session's (else 403, nothing done).
#[derive(Debug)]
pub struct Checked<T>(pub SignedIn, pub T);

impl<T> axum::extract::FromRequest<AppState> for Checked<T>
where
    T: serde::de::DeserializeOwned + WithCsrf + Send,
{
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let signed_in = SignedIn::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let request = axum::extract::Request::from_parts(parts, body);
        let axum::Form(form) = axum::Form::<T>::from_request(request, state)
            .await
            .map_err(|e| PageError(ApiError::invalid("body", e.body_text())).into_response())?;
        signed_in.check_csrf(form.csrf()).map_err(|e| PageError(e).into_response())?;
        Ok(Checked(signed_in, form))
    }
}

/// A page handler's error: the same `ApiError`, rendered as a page.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<service::ServiceError> for PageError {
    fn from(e: service::ServiceError) -> Self {
        PageError(e.into())
    }
}

impl From<store::StoreError> for PageError {
    fn from(e: store::StoreError) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(&self.0, None)
    }
}

pub type PageResult = Result<Response, PageError>;

/// Milliseconds since the epoch as a date people read: `2026-11-23 16:41 UTC`.
pub fn date(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// A form field's error, by field name, for the templates.
#[derive(Debug, Clone, Default)]
pub struct FieldErrors(pub Vec<(String, String)>);

impl FieldErrors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _)| f == field || f.ends_with(&format!(".{field}"))).map(|(_, m)| m.as_str())
    }
}
