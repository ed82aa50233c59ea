//! "Your account": change your own password, see where you are signed in, and sign out one
//! session or every other (issue #13). Every action is the service's; this page only renders.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use service::sessions::{SessionSummary, end_other_sessions, end_session, list_sessions};
use vault::Password;

use super::{Checked, Chrome, CsrfForm, PageResult, SignedIn, WithCsrf, date, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(account))
        .route("/account/password", post(change_password))
        .route("/account/sessions/end-others", post(sign_out_elsewhere))
        .route("/account/sessions/{handle}/end", post(sign_out_one))
}

/// A session as the table shows it.
#[derive(Debug)]
struct SessionRow {
    handle: String,
    current: bool,
    opened: String,
    expires: String,
    from: String,
    browser: String,
}

impl SessionRow {
    fn of(s: SessionSummary) -> Self {
        SessionRow {
            opened: date(s.created_at),
            expires: date(s.expires_at),
            from: s.remote_addr.unwrap_or_else(|| "unknown".into()),
            browser: s.user_agent.as_deref().map(browser_name).unwrap_or_else(|| "unknown".into()),
            current: s.current,
            handle: s.handle,
        }
    }
}

/// A browser's `User-Agent` in a few words a person recognizes ("Firefox on Linux").
fn browser_name(agent: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| *name);
    let system = [
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_string(),
        (None, _) => agent.chars().take(60).collect(),
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    email: String,
    role: &'static str,
    sessions: Vec<SessionRow>,
}

async fn account(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    let sessions = list_sessions(&state, &signed_in.caller, Some(signed_in.session.expose())).await?;
    let chrome = signed_in.chrome("account");
    let page = AccountPage {
        chrome: chrome.clone(),
        email: signed_in.caller.user.email.clone(),
        role: signed_in.caller.user.role.as_str(),
        sessions: sessions.into_iter().map(SessionRow::of).collect(),
    };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    current_password: Password,
    new_password: Password,
    confirm_password: Password,
}

impl WithCsrf for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordForm([redacted])")
    }
}

async fn change_password(State(state): State<AppState>, Checked(signed_in, form): Checked<PasswordForm>) -> PageResult {
    if form.new_password.expose_secret() != form.confirm_password.expose_secret() {
        return Ok(redirect_with_flash("/account", "error", "The new password and its confirmation differ."));
    }
    let keep = signed_in.session.expose().to_string();
    let changed = service::users::change_password(
        &state,
        &signed_in.caller,
        form.current_password,
        form.new_password,
        Some(&keep),
    )
    .await;
    match changed {
        Ok(0) => Ok(redirect_with_flash("/account", "success", "Your password is changed.")),
        Ok(ended) => Ok(redirect_with_flash(
            "/account",
            "success",
            &format!("Your password is changed. {ended} other session(s) were signed out."),
        )),
        Err(e) => refused(e.into()),
    }
}

async fn sign_out_elsewhere(State(state): State<AppState>, Checked(signed_in, _): Checked<CsrfForm>) -> PageResult {
    let ended = end_other_sessions(&state, &signed_in.caller, Some(signed_in.session.expose())).await?;
    Ok(redirect_with_flash("/account", "success", &format!("Signed out of {ended} other session(s).")))
}

async fn sign_out_one(
    State(state): State<AppState>,
    Path(handle): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    end_session(&state, &signed_in.caller, &handle).await?;
    Ok(redirect_with_flash("/account", "success", "That session is signed out."))
}

/// What the person can fix goes back to the page as a message; the rest is an error page.
fn refused(e: ApiError) -> PageResult {
    match e {
        ApiError::Invalid(_) => Ok(redirect_with_flash("/account", "error", &e.to_string_for_people())),
        ApiError::TooManyAttempts(secs) => Ok(redirect_with_flash(
            "/account",
            "error",
            &format!("Too many wrong current passwords: try again in {secs} s."),
        )),
        other => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::browser_name;

    #[test]
    fn browsers_are_named_as_people_know_them() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(browser_name(firefox), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(browser_name(chrome), "Chrome on Windows");
        let safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
        assert_eq!(browser_name(safari), "Safari on macOS");
        assert_eq!(browser_name("curl/8.5.0"), "curl");
        assert_eq!(browser_name("a-script"), "a-script");
    }
}
