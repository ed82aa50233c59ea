//! "E-mail notifications" (#18): which events you receive by e-mail — one mail per event, or a
//! daily digest at an hour you choose — and the mails sent to you. Every user of an account,
//! for themselves; every action is the service's.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use domain::{EventType, MailPreferences, MailStatus};
use service::mail::{self, PreferencesInput};

use super::{Chrome, PageResult, SignedIn, date, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new().route("/account/notifications", get(show).post(save))
}

/// A mail as the page lists it.
struct MailRow {
    event_type: &'static str,
    meaning: &'static str,
    digest: bool,
    status: &'static str,
    when: String,
    error: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct Page {
    chrome: Chrome,
    /// Every event type a user can receive: (name, meaning, ticked).
    types: Vec<(&'static str, &'static str, bool)>,
    digest: bool,
    /// (hour, label, selected) for the digest's hour.
    hours: Vec<(u8, String, bool)>,
    saved: bool,
    email_enabled: bool,
    from: String,
    to: String,
    mails: Vec<MailRow>,
    error: Option<String>,
}

async fn page(state: &AppState, signed_in: &SignedIn, shown: &MailPreferences, error: Option<String>) -> PageResult {
    let mails = mail::mails(state, &signed_in.caller, 50).await?;
    let chrome = signed_in.chrome("account");
    let page = Page {
        chrome: chrome.clone(),
        types: EventType::ALL
            .iter()
            .filter(|t| !t.is_direct())
            .map(|t| (t.as_str(), t.describe(), shown.events.contains(t)))
            .collect(),
        digest: shown.digest,
        hours: (0..24u8).map(|h| (h, format!("{h:02}:00 UTC"), h == shown.digest_hour)).collect(),
        saved: shown.saved,
        email_enabled: state.mail_from.is_some(),
        from: state.mail_from.clone().unwrap_or_default(),
        to: signed_in.caller.user.email.clone(),
        mails: mails
            .iter()
            .map(|m| MailRow {
                event_type: m.event_type.as_str(),
                meaning: m.event_type.describe(),
                digest: m.digest,
                status: match m.status {
                    MailStatus::Pending if state.mail_from.is_none() => "Waiting: e-mail is not set up",
                    MailStatus::Pending if m.attempts > 0 => "Trying again",
                    MailStatus::Pending if m.digest => "In the next digest",
                    MailStatus::Pending => "Being sent",
                    MailStatus::Sent => "Sent",
                    MailStatus::Failed => "Not sent",
                },
                when: date(m.sent_at.unwrap_or(m.next_at)),
                error: m.last_error.clone().unwrap_or_default(),
            })
            .collect(),
        error,
    };
    let status = if page.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(render(status, &page, Some(&chrome)))
}

async fn show(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    let prefs = mail::preferences(&state, &signed_in.caller).await?;
    page(&state, &signed_in, &prefs, None).await
}

/// The form: repeated `event` boxes (parsed by hand: serde_urlencoded has no sequences).
#[derive(Debug, Default)]
struct Form {
    csrf: String,
    events: Vec<String>,
    digest: bool,
    hour: Option<i64>,
    hour_text: String,
}

impl Form {
    fn parse(body: &[u8]) -> Form {
        let mut form = Form::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            match k.as_ref() {
                "csrf" => form.csrf = v.into_owned(),
                "event" if form.events.len() < EventType::ALL.len() => form.events.push(v.into_owned()),
                "delivery" => form.digest = v == "digest",
                "hour" => {
                    form.hour_text = v.chars().take(20).collect();
                    form.hour = v.trim().parse().ok();
                }
                _ => {}
            }
        }
        form
    }
}

async fn save(State(state): State<AppState>, signed_in: SignedIn, body: Bytes) -> PageResult {
    let form = Form::parse(&body);
    signed_in.check_csrf(&form.csrf)?;
    // An hour that is not a number is refused like one out of range, not quietly kept.
    let hour = match (form.hour, form.hour_text.is_empty()) {
        (Some(h), _) => Some(h),
        (None, true) => None,
        (None, false) => Some(-1),
    };
    let input = PreferencesInput { events: form.events.clone(), digest: form.digest, digest_hour: hour };
    match mail::set_preferences(&state, &signed_in.caller, &input).await {
        Ok(p) => {
            let text = if p.events.is_empty() {
                "Saved: you receive no notification e-mail.".to_string()
            } else if p.digest {
                format!("Saved: a daily digest at {:02}:00 UTC of the events you chose.", p.digest_hour)
            } else {
                "Saved: one e-mail per event you chose.".to_string()
            };
            Ok(redirect_with_flash("/account/notifications", "success", &text))
        }
        Err(e) => match ApiError::from(e) {
            e @ ApiError::Invalid(_) => {
                // The page again, the form as it was sent and the refusal above it.
                let shown = MailPreferences {
                    events: form.events.iter().filter_map(|n| EventType::parse(n)).collect(),
                    digest: form.digest,
                    digest_hour: form.hour.and_then(|h| u8::try_from(h).ok()).filter(|h| *h < 24).unwrap_or(8),
                    saved: true,
                };
                page(&state, &signed_in, &shown, Some(e.to_string_for_people())).await
            }
            other => Err(other.into()),
        },
    }
}
