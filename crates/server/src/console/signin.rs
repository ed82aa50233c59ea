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
use store::AccessStore;
use vault::Password;

use super::{CsrfForm, PageError, SignedIn, cookie_value, redirect_with_flash, render};
use crate::AppState;
use crate::api::{ApiError, hash_token, random_token};

const SIGNIN_COOKIE: &str = "lb_signin";

pub fn routes() -> Router<AppState> {
    Router::new().route("/signin", get(form).post(submit)).route("/signout", post(sign_out))
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NextParam {
    next: Option<String>,
}

/// Only paths of this site: never an absolute URL someone else chose.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/integrations".to_string(),
    }
}

fn with_signin_cookie(state: &AppState, status: StatusCode, page: &SignInPage) -> Response {
    let mut response = render(status, page, None);
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SIGNIN_COOKIE}={}; Path=/signin; HttpOnly; SameSite=Strict; Max-Age=3600{secure}",
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
    password: String,
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
        };
        Ok(with_signin_cookie(&state, StatusCode::UNPROCESSABLE_ENTITY, &page))
    };
    if cookie.is_empty()
        || aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), form.csrf.as_bytes()).is_err()
    {
        return fresh("This sign-in form expired. Please sign in again.");
    }
    let remote = connect.ok().map(|c| c.0.ip().to_string());
    match crate::api::session::open_session(&state, form.email.trim(), Password::new(form.password.clone()), remote)
        .await
    {
        Ok((_, id, _)) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().append(header::SET_COOKIE, crate::api::session::session_cookie_header(&state, &id)?);
            Ok(response)
        }
        Err(ApiError::Unauthorized) => fresh("That email and password do not match an account."),
        Err(e) => Err(e.into()),
    }
}

async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    signed_in.check_csrf(&form.csrf)?;
    if let Some(id) = crate::api::session_id(&headers) {
        state.store.delete_session(&hash_token(&id)).await?;
    }
    let mut response = redirect_with_flash("/signin", "info", "You are signed out.");
    response.headers_mut().append(header::SET_COOKIE, crate::api::session::cleared_session_cookie(&state)?);
    Ok(response)
}
