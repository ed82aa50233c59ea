//! `/api/v1/me/notifications` and `/api/v1/me/mails` (#18): which events the caller receives
//! by e-mail (one mail per event, or a daily digest), and the mails sent to them. Every user
//! of an account, for themselves.

use axum::Json;
use axum::extract::State;
use domain::{Mail, MailPreferences};
use serde::{Deserialize, Serialize};
use service::mail::{self, PreferencesInput};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody};
use crate::AppState;
use crate::http::{Body, Caller, Params};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(preferences, set_preferences)).routes(routes!(mails))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesView {
    /// The event types you receive by e-mail (see `GET /event-types`); empty: none.
    pub events: Vec<String>,
    /// One mail a day listing the day's events, instead of one mail per event.
    pub digest: bool,
    /// The digest's hour, UTC (0–23).
    pub digest_hour: u8,
    /// False: you never chose, and the defaults of your role apply (admins and owners: the
    /// events a person must act on).
    pub saved: bool,
    /// Whether this server sends e-mail at all (its operator sets up `[mail]`).
    pub email_enabled: bool,
    /// Mails come from this sender.
    pub from: Option<String>,
    /// Mails go to this address (your sign-in address).
    pub to: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    /// Event types to receive by e-mail; empty: none.
    pub events: Vec<String>,
    /// A daily digest instead of one mail per event.
    #[serde(default)]
    pub digest: bool,
    /// The digest's hour, UTC (0–23); absent: unchanged (08:00 at first).
    #[schema(minimum = 0, maximum = 23)]
    pub digest_hour: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailView {
    /// The event it tells of.
    pub event_id: String,
    pub event_type: String,
    /// Part of a daily digest.
    pub digest: bool,
    /// `pending`, `sent` (the mail server accepted it) or `failed` (refused, or not accepted
    /// within a day).
    pub status: String,
    pub attempts: u32,
    /// When it is sent (next), Unix milliseconds.
    pub next_at: i64,
    pub sent_at: Option<i64>,
    /// Why the mail server did not accept it, last time.
    pub last_error: Option<String>,
    pub created_at: i64,
}

impl From<&Mail> for MailView {
    fn from(m: &Mail) -> Self {
        MailView {
            event_id: m.event_id.to_string(),
            event_type: m.event_type.as_str().to_string(),
            digest: m.digest,
            status: m.status.as_str().to_string(),
            attempts: m.attempts,
            next_at: m.next_at,
            sent_at: m.sent_at,
            last_error: m.last_error.clone(),
            created_at: m.created_at,
        }
    }
}

fn view(state: &AppState, caller: &Caller, p: &MailPreferences) -> PreferencesView {
    PreferencesView {
        events: p.events.iter().map(|e| e.as_str().to_string()).collect(),
        digest: p.digest,
        digest_hour: p.digest_hour,
        saved: p.saved,
        email_enabled: state.mail_from.is_some(),
        from: state.mail_from.clone(),
        to: caller.user.email.clone(),
    }
}

/// What you receive by e-mail.
#[utoipa::path(get, path = "/me/notifications", tag = "notifications", responses((status = 200, body = PreferencesView)))]
async fn preferences(State(state): State<AppState>, caller: Caller) -> Result<Json<PreferencesView>, ApiError> {
    let p = mail::preferences(&state, &caller).await?;
    Ok(Json(view(&state, &caller, &p)))
}

/// Chooses what you receive by e-mail. Leaving the digest sends what it held now.
#[utoipa::path(put, path = "/me/notifications", tag = "notifications", request_body = PreferencesBody,
    responses((status = 200, body = PreferencesView), (status = 422, body = ErrorBody)))]
async fn set_preferences(
    State(state): State<AppState>,
    caller: Caller,
    Body(input): Body<PreferencesBody>,
) -> Result<Json<PreferencesView>, ApiError> {
    let input = PreferencesInput { events: input.events, digest: input.digest, digest_hour: input.digest_hour };
    let p = mail::set_preferences(&state, &caller, &input).await?;
    Ok(Json(view(&state, &caller, &p)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MailParams {
    /// At most this many (1–200, default 50), newest first.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// The mails sent (or to be sent) to you, newest first.
#[utoipa::path(get, path = "/me/mails", tag = "notifications", params(MailParams), responses((status = 200, body = Vec<MailView>)))]
async fn mails(
    State(state): State<AppState>,
    caller: Caller,
    Params(p): Params<MailParams>,
) -> Result<Json<Vec<MailView>>, ApiError> {
    let limit = match p.limit {
        None => 50,
        Some(n @ 1..=200) => n,
        Some(n) => return Err(ApiError::invalid("limit", format!("{n} is not between 1 and 200"))),
    };
    Ok(Json(mail::mails(&state, &caller, limit).await?.iter().map(MailView::from).collect()))
}
