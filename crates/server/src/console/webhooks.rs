//! The Webhooks pages (#18): an account's endpoints — add one (its secret shown once), send a
//! test event, turn one off or on, rotate its secret, remove it — and each endpoint's delivery
//! log with redelivery. Admins and owners.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use domain::{DeliveryStatus, EventType, Webhook, WebhookId};
use serde::Deserialize;
use service::notify::{self, WebhookChange, WebhookInput};

use super::{Checked, Chrome, CsrfForm, PageResult, SignedIn, date, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(add))
        .route("/webhooks/{id}", get(detail))
        .route("/webhooks/{id}/test", post(test))
        .route("/webhooks/{id}/enabled", post(switch))
        .route("/webhooks/{id}/rotate", post(rotate))
        .route("/webhooks/{id}/delete", get(confirm_remove).post(remove))
        .route("/webhooks/{id}/redeliver", post(redeliver))
}

/// An endpoint as the list shows it.
struct Row {
    id: String,
    url: String,
    description: String,
    events: String,
    enabled: bool,
    /// `On`, `Off: …` or `Failing since …`.
    state: String,
}

fn row(w: &Webhook) -> Row {
    Row {
        id: w.id.to_string(),
        url: w.url.clone(),
        description: w.description.clone(),
        events: if w.events.is_empty() {
            "Every event".into()
        } else {
            w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
        },
        enabled: w.enabled,
        state: match (w.enabled, &w.disabled_reason, w.failing_since) {
            (false, Some(why), _) => format!("Off: {why}"),
            (false, None, _) => "Off".into(),
            (true, _, Some(since)) => format!("Failing since {}", date(since)),
            (true, _, None) => "On".into(),
        },
    }
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    /// Every event type an endpoint can choose: (name, meaning, ticked).
    types: Vec<(&'static str, &'static str, bool)>,
    /// Shown once, right after adding an endpoint or rotating its secret: (endpoint URL, secret).
    secret: Option<(String, String)>,
    /// The add form as it was sent, when it was refused, and why.
    url: String,
    description: String,
    error: Option<String>,
}

async fn list_page(
    state: &AppState,
    signed_in: &SignedIn,
    secret: Option<(String, String)>,
    refused: Option<(&AddForm, String)>,
) -> PageResult {
    let webhooks = notify::list(state, &signed_in.caller).await?;
    let chrome = signed_in.chrome("webhooks");
    let page = ListPage {
        chrome: chrome.clone(),
        rows: webhooks.iter().map(row).collect(),
        types: EventType::ALL
            .iter()
            .filter(|t| !t.is_direct())
            .map(|t| {
                let ticked = refused.as_ref().is_some_and(|(f, _)| f.events.iter().any(|e| e == t.as_str()));
                (t.as_str(), t.describe(), ticked)
            })
            .collect(),
        secret,
        url: refused.as_ref().map(|(f, _)| f.url.clone()).unwrap_or_default(),
        description: refused.as_ref().map(|(f, _)| f.description.clone()).unwrap_or_default(),
        error: refused.as_ref().map(|(_, e)| e.clone()),
    };
    let status = if page.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(render(status, &page, Some(&chrome)))
}

async fn list(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    list_page(&state, &signed_in, None, None).await
}

/// The add form: repeated `event` boxes (parsed by hand: serde_urlencoded has no sequences).
#[derive(Debug, Default)]
struct AddForm {
    csrf: String,
    url: String,
    description: String,
    events: Vec<String>,
}

impl AddForm {
    fn parse(body: &[u8]) -> AddForm {
        let mut form = AddForm::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            match k.as_ref() {
                "csrf" => form.csrf = v.into_owned(),
                "url" => form.url = v.into_owned(),
                "description" => form.description = v.into_owned(),
                "event" if form.events.len() < EventType::ALL.len() => form.events.push(v.into_owned()),
                _ => {}
            }
        }
        form
    }
}

/// Adds an endpoint; its secret is shown once on the page (never in a cookie or a log).
async fn add(State(state): State<AppState>, signed_in: SignedIn, body: Bytes) -> PageResult {
    let form = AddForm::parse(&body);
    signed_in.check_csrf(&form.csrf)?;
    let input =
        WebhookInput { url: form.url.clone(), description: form.description.clone(), events: form.events.clone() };
    match notify::create(&state, &signed_in.caller, &input).await {
        Ok((webhook, secret)) => {
            list_page(&state, &signed_in, Some((webhook.url.clone(), secret.as_str().to_string())), None).await
        }
        Err(e) => match ApiError::from(e) {
            e @ (ApiError::Invalid(_) | ApiError::Conflict { .. }) => {
                // The page again, the form as it was sent and the refusal above it.
                list_page(&state, &signed_in, None, Some((&form, e.to_string_for_people()))).await
            }
            other => Err(other.into()),
        },
    }
}

fn webhook_id(id: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(id).map_err(|_| ApiError::NotFound)
}

/// A delivery as the endpoint's page shows it.
struct DeliveryRow {
    id: String,
    event_id: String,
    event_type: &'static str,
    status: &'static str,
    attempts: u32,
    last: String,
    latency: String,
    answer: String,
    created: String,
    next: String,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct DetailPage {
    chrome: Chrome,
    webhook: Row,
    deliveries: Vec<DeliveryRow>,
    /// `pending`, `delivered`, `failed`, or empty for all.
    status: String,
    failed: usize,
}

#[derive(Debug, Default, Deserialize)]
struct DetailParams {
    #[serde(default)]
    status: String,
}

async fn detail(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(p): Query<DetailParams>,
) -> PageResult {
    let id = webhook_id(&id)?;
    let webhook = notify::get(&state, &signed_in.caller, &id).await?;
    let status = DeliveryStatus::parse(&p.status);
    let deliveries = notify::deliveries(&state, &signed_in.caller, &id, status, 200).await?;
    let failed = notify::deliveries(&state, &signed_in.caller, &id, Some(DeliveryStatus::Failed), 500).await?.len();
    let chrome = signed_in.chrome("webhooks");
    let page = DetailPage {
        chrome: chrome.clone(),
        webhook: row(&webhook),
        deliveries: deliveries
            .iter()
            .map(|d| DeliveryRow {
                id: d.id.to_string(),
                event_id: d.event_id.to_string(),
                event_type: d.event_type.as_str(),
                status: d.status.as_str(),
                attempts: d.attempts,
                last: d
                    .last_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| if d.attempts > 0 { "no answer".into() } else { "not tried yet".into() }),
                latency: d.last_latency_ms.map(|ms| format!("{ms} ms")).unwrap_or_default(),
                answer: d.last_response.clone().unwrap_or_default(),
                created: date(d.created_at),
                next: if d.status == DeliveryStatus::Pending { date(d.next_at) } else { String::new() },
            })
            .collect(),
        status: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        failed,
    };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

async fn test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    let id = webhook_id(&id)?;
    notify::send_test(&state, &signed_in.caller, &id).await?;
    Ok(redirect_with_flash(
        &format!("/webhooks/{id}"),
        "success",
        "A test event is on its way: its delivery is at the top of the list (reload to see its answer).",
    ))
}

#[derive(Deserialize)]
struct SwitchForm {
    csrf: String,
    enabled: String,
}

impl super::WithCsrf for SwitchForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn switch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<SwitchForm>,
) -> PageResult {
    let id = webhook_id(&id)?;
    let on = form.enabled == "true";
    let change = WebhookChange { enabled: Some(on), ..Default::default() };
    let webhook = notify::update(&state, &signed_in.caller, &id, &change).await?;
    let text = if on {
        format!("{} is on: deliveries waiting for it are sent now.", webhook.url)
    } else {
        format!("{} is off: no new deliveries go to it until it is on again.", webhook.url)
    };
    Ok(redirect_with_flash("/webhooks", "success", &text))
}

/// A new secret, shown once on the list page; the previous one signs too for 24 hours.
async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    let id = webhook_id(&id)?;
    let webhook = notify::get(&state, &signed_in.caller, &id).await?;
    let (secret, _) = notify::rotate_secret(&state, &signed_in.caller, &id).await?;
    list_page(&state, &signed_in, Some((webhook.url, secret.as_str().to_string())), None).await
}

#[derive(Template)]
#[template(path = "remove_webhook.html")]
struct RemovePage {
    chrome: Chrome,
    id: String,
    url: String,
    /// Deliveries still waiting to be sent, dropped with it.
    pending: usize,
}

/// Removing an endpoint asks first: its delivery log goes too.
async fn confirm_remove(State(state): State<AppState>, Path(id): Path<String>, signed_in: SignedIn) -> PageResult {
    let id = webhook_id(&id)?;
    let webhook = notify::get(&state, &signed_in.caller, &id).await?;
    let pending = notify::deliveries(&state, &signed_in.caller, &id, Some(DeliveryStatus::Pending), 500).await?.len();
    let chrome = signed_in.chrome("webhooks");
    let page = RemovePage { chrome: chrome.clone(), id: id.to_string(), url: webhook.url, pending };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, _): Checked<CsrfForm>,
) -> PageResult {
    let id = webhook_id(&id)?;
    let webhook = notify::get(&state, &signed_in.caller, &id).await?;
    notify::delete(&state, &signed_in.caller, &id).await?;
    Ok(redirect_with_flash("/webhooks", "success", &format!("{} is removed, with its delivery log.", webhook.url)))
}

#[derive(Deserialize)]
struct RedeliverForm {
    csrf: String,
    /// One delivery (`dlv_…`), or empty for every failed one.
    #[serde(default)]
    delivery: String,
}

impl super::WithCsrf for RedeliverForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn redeliver(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<RedeliverForm>,
) -> PageResult {
    let id = webhook_id(&id)?;
    let delivery = match form.delivery.as_str() {
        "" => None,
        d => Some(domain::DeliveryId::parse(d).map_err(|_| ApiError::NotFound)?),
    };
    let n = notify::redeliver(&state, &signed_in.caller, &id, delivery.as_ref()).await?;
    let text = match (delivery, n) {
        (Some(_), 1) => "The delivery is sent again now.".to_string(),
        (Some(_), _) => "That delivery is being sent at this moment; look again in a few seconds.".to_string(),
        (None, n) => format!("{n} failed deliveries are sent again now."),
    };
    Ok(redirect_with_flash(&format!("/webhooks/{id}"), "success", &text))
}
