//! "Your account": change your own password, see where you are signed in, and sign out one
//! session or every other (issue #13). Every action is the service's; this page only renders.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
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
        .route("/account/two-factor", get(two_factor_page))
        .route("/account/two-factor/start", post(start_two_factor))
        .route("/account/two-factor/confirm", post(confirm_two_factor))
        .route("/account/two-factor/recovery-codes", post(replace_recovery_codes))
        .route("/account/two-factor/disable", post(disable_two_factor))
        .route("/account/sign-in", post(set_sign_in_policy))
        .route("/account/sso/link", post(link_sso))
        .route("/account/sso", get(sso_settings).post(save_sso))
        .route("/account/sso/remove", post(remove_sso))
        .route("/account/sso/domains", post(claim_domain))
        .route("/account/sso/domains/{domain}/check", post(check_domain))
        .route("/account/sso/domains/{domain}/remove", post(remove_domain))
}

/// A domain to claim, from the single sign-on page.
#[derive(Debug, Default, Deserialize)]
struct DomainForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    domain: String,
}

impl WithCsrf for DomainForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A claimed domain as the page shows it.
#[derive(Debug)]
struct ClaimRow {
    domain: String,
    record_name: String,
    record_value: String,
    checked: Option<String>,
    last_result: Option<String>,
}

/// A routed domain as the page shows it.
#[derive(Debug)]
struct RoutedRow {
    domain: String,
    how: &'static str,
    since: String,
}

/// The owner's single sign-on settings, as the form holds them.
#[derive(Default, Deserialize)]
struct SsoForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    role_claim: String,
    #[serde(default)]
    default_role: String,
    #[serde(default, deserialize_with = "checkbox")]
    sso_only: bool,
}

fn checkbox<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    Ok(value.is_some_and(|v| !v.is_empty()))
}

impl std::fmt::Debug for SsoForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoForm").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl WithCsrf for SsoForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Template)]
#[template(path = "sso_settings.html")]
struct SsoPage {
    chrome: Chrome,
    current: Option<service::sso::SsoView>,
    form: SsoForm,
    errors: super::FieldErrors,
    redirect_uri: String,
    can_edit: bool,
    roles: [&'static str; 4],
    routed: Vec<RoutedRow>,
    claims: Vec<ClaimRow>,
    domain_form: String,
}

async fn sso_page(
    state: &AppState,
    signed_in: &SignedIn,
    form: Option<SsoForm>,
    errors: super::FieldErrors,
    status: StatusCode,
) -> PageResult {
    sso_page_with(state, signed_in, form, String::new(), errors, status).await
}

async fn sso_page_with(
    state: &AppState,
    signed_in: &SignedIn,
    form: Option<SsoForm>,
    domain_form: String,
    errors: super::FieldErrors,
    status: StatusCode,
) -> PageResult {
    let current = service::sso::view(state, &signed_in.caller).await?;
    let domains = service::domains::list(state, &signed_in.caller).await?;
    let routed = domains
        .routed
        .into_iter()
        .map(|d| RoutedRow {
            how: if d.verified_by == "dns" {
                "proved by your DNS record"
            } else {
                "routed by your Lightbridge operator"
            },
            since: date(d.created_at),
            domain: d.domain,
        })
        .collect();
    let claims = domains
        .pending
        .into_iter()
        .map(|c| ClaimRow {
            checked: c.checked_at.map(date),
            domain: c.domain,
            record_name: c.record_name,
            record_value: c.record_value,
            last_result: c.last_result,
        })
        .collect();
    let form = form.unwrap_or_else(|| match &current {
        Some(v) => SsoForm {
            issuer: v.issuer.clone(),
            client_id: v.client_id.clone(),
            role_claim: v.role_claim.clone().unwrap_or_default(),
            default_role: v.default_role.clone(),
            sso_only: v.sso_only,
            ..SsoForm::default()
        },
        None => SsoForm { default_role: "viewer".into(), ..SsoForm::default() },
    });
    let chrome = signed_in.chrome("account");
    let page = SsoPage {
        chrome: chrome.clone(),
        current,
        form,
        errors,
        redirect_uri: state.sso_callback(),
        can_edit: signed_in.caller.user.role == domain::Role::Owner,
        roles: ["owner", "admin", "editor", "viewer"],
        routed,
        claims,
        domain_form,
    };
    Ok(render(status, &page, Some(&chrome)))
}

async fn sso_settings(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    sso_page(&state, &signed_in, None, super::FieldErrors::default(), StatusCode::OK).await
}

async fn save_sso(State(state): State<AppState>, Checked(signed_in, form): Checked<SsoForm>) -> PageResult {
    let settings = service::sso::SsoSettings {
        issuer: form.issuer.clone(),
        client_id: form.client_id.clone(),
        client_secret: (!form.client_secret.is_empty())
            .then(|| vault::SsoClientSecret::new(form.client_secret.clone())),
        role_claim: Some(form.role_claim.clone()),
        default_role: Some(form.default_role.clone()),
        sso_only: form.sso_only,
    };
    match service::sso::configure(&state, &signed_in.caller, settings).await {
        Ok(_) => Ok(redirect_with_flash("/account/sso", "success", "Single sign-on is saved: the provider answered.")),
        Err(service::ServiceError::Invalid(fields)) => {
            sso_page(&state, &signed_in, Some(form), super::FieldErrors(fields), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(service::ServiceError::Conflict { field, message }) => {
            let fields = vec![(field.unwrap_or("issuer").to_string(), message)];
            sso_page(&state, &signed_in, Some(form), super::FieldErrors(fields), StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn remove_sso(State(state): State<AppState>, Checked(signed_in, _): Checked<CsrfForm>) -> PageResult {
    service::sso::remove(&state, &signed_in.caller).await?;
    Ok(redirect_with_flash("/account/sso", "success", "Single sign-on is off: people sign in with passwords."))
}

async fn claim_domain(State(state): State<AppState>, Checked(signed_in, form): Checked<DomainForm>) -> PageResult {
    match service::domains::claim(&state, &signed_in.caller, &form.domain).await {
        Ok(claim) => Ok(redirect_with_flash(
            "/account/sso#domains",
            "success",
            &format!("Publish the TXT record below for {}, then choose Check now.", claim.domain),
        )),
        Err(service::ServiceError::Invalid(fields)) => {
            let errors = super::FieldErrors(fields);
            sso_page_with(&state, &signed_in, None, form.domain, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(service::ServiceError::Conflict { message, .. }) => {
            let errors = super::FieldErrors(vec![("domain".into(), message)]);
            sso_page_with(&state, &signed_in, None, form.domain, errors, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn check_domain(
    State(state): State<AppState>,
    Path(domain): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    Ok(match service::domains::check(&state, &signed_in.caller, &domain).await {
        Ok(service::domains::CheckResult::Verified { domain }) => redirect_with_flash(
            "/account/sso#domains",
            "success",
            &format!("{domain} is proved: its people now reach your single sign-on from the sign-in page."),
        ),
        Ok(service::domains::CheckResult::Pending { claim }) => redirect_with_flash(
            "/account/sso#domains",
            "error",
            &format!("{} is not proved yet: {}.", claim.domain, claim.last_result.unwrap_or_default()),
        ),
        Err(service::ServiceError::Conflict { message, .. }) => {
            redirect_with_flash("/account/sso#domains", "error", &capitalized(&message))
        }
        Err(e) => return Err(e.into()),
    })
}

async fn remove_domain(
    State(state): State<AppState>,
    Path(domain): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    service::domains::remove(&state, &signed_in.caller, &domain).await?;
    Ok(redirect_with_flash(
        "/account/sso#domains",
        "success",
        &format!("{domain} is removed from your single sign-on."),
    ))
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
    two_factor: service::two_factor::Status,
    is_owner: bool,
    /// The account signs in through its own provider: the person can link theirs.
    sso: bool,
    /// The accounts the person belongs to (a switch when there are several).
    accounts: Vec<service::members::AccountChoice>,
}

async fn account(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    let sessions = list_sessions(&state, &signed_in.caller, Some(signed_in.session.expose())).await?;
    let two_factor = service::two_factor::status(&state, &signed_in.caller).await?;
    let chrome = signed_in.chrome("account");
    let page = AccountPage {
        chrome: chrome.clone(),
        email: signed_in.caller.user.email.clone(),
        role: signed_in.caller.user.role.as_str(),
        sessions: sessions.into_iter().map(SessionRow::of).collect(),
        two_factor,
        is_owner: signed_in.caller.user.role == domain::Role::Owner,
        sso: service::sso::available(&state, &signed_in.caller).await?,
        accounts: service::members::accounts(&state, &signed_in.caller).await?,
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

#[derive(Template)]
#[template(path = "two_factor.html")]
struct TwoFactorPage {
    chrome: Chrome,
    /// The secret being set up, if one is.
    enrolment: Option<service::two_factor::Enrolment>,
    /// Recovery codes just made, shown this once.
    codes: Vec<String>,
    required: bool,
}

/// Setting up two-factor sign-in: the secret waiting for its first code (as a QR code and as
/// text), or the button that makes one.
async fn two_factor_page(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    let status = service::two_factor::status(&state, &signed_in.caller).await?;
    if status.enabled {
        return Ok(redirect_with_flash("/account", "info", "Two-factor sign-in is already on."));
    }
    let enrolment = service::two_factor::pending(&state, &signed_in.caller).await?;
    let chrome = signed_in.chrome("account");
    let page = TwoFactorPage { chrome: chrome.clone(), enrolment, codes: Vec::new(), required: status.required };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

async fn start_two_factor(State(state): State<AppState>, Checked(signed_in, _): Checked<CsrfForm>) -> PageResult {
    match service::two_factor::begin(&state, &signed_in.caller).await {
        Ok(_) => Ok(axum::response::Redirect::to("/account/two-factor").into_response()),
        Err(service::ServiceError::Conflict { message, .. }) => Ok(redirect_with_flash("/account", "error", &message)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct CodeForm {
    csrf: String,
    code: String,
}

impl WithCsrf for CodeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn confirm_two_factor(State(state): State<AppState>, Checked(signed_in, form): Checked<CodeForm>) -> PageResult {
    match service::two_factor::confirm(&state, &signed_in.caller, &form.code).await {
        Ok(codes) => {
            let chrome = signed_in.chrome("account");
            let mut chrome_with_flash = chrome.clone();
            chrome_with_flash.flash = Some(super::Flash {
                kind: "success".into(),
                text: "Two-factor sign-in is on. Keep these recovery codes somewhere safe.".into(),
            });
            let page = TwoFactorPage {
                chrome: chrome_with_flash.clone(),
                enrolment: None,
                codes: codes.recovery_codes,
                required: false,
            };
            Ok(render(StatusCode::OK, &page, Some(&chrome_with_flash)))
        }
        Err(service::ServiceError::Invalid(fields)) => {
            let message = fields.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; ");
            Ok(redirect_with_flash("/account/two-factor", "error", &capitalized(&message)))
        }
        Err(service::ServiceError::Conflict { message, .. }) => {
            Ok(redirect_with_flash("/account/two-factor", "error", &capitalized(&message)))
        }
        Err(service::ServiceError::TooManyAttempts { retry_after_secs }) => Ok(redirect_with_flash(
            "/account/two-factor",
            "error",
            &format!("Too many wrong codes: try again in {retry_after_secs} s."),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn replace_recovery_codes(
    State(state): State<AppState>,
    Checked(signed_in, form): Checked<CodeForm>,
) -> PageResult {
    match service::two_factor::new_codes(&state, &signed_in.caller, &form.code).await {
        Ok(codes) => {
            let mut chrome = signed_in.chrome("account");
            chrome.flash = Some(super::Flash {
                kind: "success".into(),
                text: "New recovery codes: the old ones no longer work.".into(),
            });
            let page =
                TwoFactorPage { chrome: chrome.clone(), enrolment: None, codes: codes.recovery_codes, required: false };
            Ok(render(StatusCode::OK, &page, Some(&chrome)))
        }
        Err(e) => refused(e.into()),
    }
}

#[derive(Deserialize)]
struct DisableForm {
    csrf: String,
    password: Password,
}

impl WithCsrf for DisableForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl std::fmt::Debug for DisableForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DisableForm([redacted])")
    }
}

async fn disable_two_factor(
    State(state): State<AppState>,
    Checked(signed_in, form): Checked<DisableForm>,
) -> PageResult {
    match service::two_factor::disable(&state, &signed_in.caller, form.password).await {
        Ok(()) => Ok(redirect_with_flash("/account", "success", "Two-factor sign-in is off.")),
        Err(e) => refused(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct PolicyForm {
    csrf: String,
    /// A checkbox: present when ticked.
    two_factor_required: Option<String>,
}

impl WithCsrf for PolicyForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn set_sign_in_policy(
    State(state): State<AppState>,
    Checked(signed_in, form): Checked<PolicyForm>,
) -> PageResult {
    let required = form.two_factor_required.is_some();
    match service::two_factor::set_required(&state, &signed_in.caller, required).await {
        Ok(_) if required => Ok(redirect_with_flash(
            "/account",
            "success",
            "Two-factor sign-in is now required: people without it set it up at their next page.",
        )),
        Ok(_) => Ok(redirect_with_flash("/account", "success", "Two-factor sign-in is now each person's choice.")),
        Err(e) => refused(e.into()),
    }
}

/// Links the person's own sign-in at the account's provider (then single sign-on signs them in).
async fn link_sso(State(state): State<AppState>, Checked(signed_in, _): Checked<CsrfForm>) -> PageResult {
    match service::sso::start_link(&state, &signed_in.caller, "/account").await {
        Ok(started) => Ok(super::signin::provider_redirect(&state, &started, true)),
        Err(service::ServiceError::NotFound) => {
            Ok(redirect_with_flash("/account", "error", "Your account has no single sign-on."))
        }
        Err(service::ServiceError::SsoFailed(message)) => {
            Ok(redirect_with_flash("/account", "error", &format!("Single sign-on did not work: {message}.")))
        }
        Err(e) => Err(e.into()),
    }
}

fn capitalized(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What the person can fix goes back to the page as a message; the rest is an error page.
fn refused(e: ApiError) -> PageResult {
    match e {
        ApiError::Invalid(_) => Ok(redirect_with_flash("/account", "error", &e.to_string_for_people())),
        ApiError::Conflict { message, .. } => Ok(redirect_with_flash("/account", "error", &capitalized(&message))),
        ApiError::TooManyAttempts(secs) => {
            Ok(redirect_with_flash("/account", "error", &format!("Too many wrong attempts: try again in {secs} s.")))
        }
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
