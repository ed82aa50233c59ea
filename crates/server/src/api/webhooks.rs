//! `/api/v1/webhooks`, `/api/v1/deliveries`, `/api/v1/events` (#18): an account's webhook
//! endpoints, their deliveries and the events behind them. Admins and owners.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::{Delivery, DeliveryAttempt, DeliveryId, DeliveryStatus, Event, EventType, Webhook, WebhookId};
use serde::{Deserialize, Serialize};
use service::notify::{self, WebhookChange, WebhookInput};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

use super::{ApiError, ErrorBody};
use crate::AppState;
use crate::http::{Admin, Body, Params};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver_failed))
        .routes(routes!(delivery))
        .routes(routes!(redeliver_one))
        .routes(routes!(events))
        .routes(routes!(event_types))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub description: String,
    /// The event types it receives; empty: every type.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why Lightbridge turned it off (five days of failed deliveries).
    pub disabled_reason: Option<String>,
    /// Since when every delivery attempt has failed (Unix milliseconds); null after a success.
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id.to_string(),
            url: w.url.clone(),
            description: w.description.clone(),
            events: w.events.iter().map(|e| e.as_str().to_string()).collect(),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone(),
            failing_since: w.failing_since,
            created_at: w.created_at,
            created_by: w.created_by.clone(),
        }
    }
}

/// A new endpoint, with its signing secret: shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub webhook: WebhookView,
    /// `whsec_…`: verify deliveries with it (any Standard Webhooks library takes it as it is).
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// Where deliveries are POSTed: `https://…`, a public address.
    #[schema(max_length = 2000)]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
    /// Event types to receive (see `GET /event-types`); empty or absent: every type.
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    /// Turn it off, or on again (which clears why Lightbridge turned it off).
    pub enabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The new `whsec_…`, shown this once.
    pub secret: String,
    /// Until then (Unix milliseconds) deliveries are signed with the previous secret too.
    pub previous_valid_until: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestSent {
    /// The test event's delivery: follow it at `GET /deliveries/{id}`.
    pub delivery_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub webhook_id: String,
    /// The event's id: the `webhook-id` header of every attempt.
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed` (every attempt of its three days failed).
    pub status: String,
    pub attempts: u32,
    /// When it is tried next (pending), Unix milliseconds.
    pub next_at: i64,
    pub last_status: Option<u16>,
    pub last_latency_ms: Option<i64>,
    /// The start of the last answer's body (at most 500 characters), or why there was none.
    pub last_response: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        DeliveryView {
            id: d.id.to_string(),
            webhook_id: d.webhook_id.to_string(),
            event_id: d.event_id.to_string(),
            event_type: d.event_type.as_str().to_string(),
            status: d.status.as_str().to_string(),
            attempts: d.attempts,
            next_at: d.next_at,
            last_status: d.last_status,
            last_latency_ms: d.last_latency_ms,
            last_response: d.last_response.clone(),
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub at: i64,
    /// The HTTP status; null when there was no answer.
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub response: String,
}

impl From<&DeliveryAttempt> for AttemptView {
    fn from(a: &DeliveryAttempt) -> Self {
        AttemptView { at: a.at, status: a.status, latency_ms: a.latency_ms, response: a.response.clone() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    pub delivery: DeliveryView,
    pub attempts: Vec<AttemptView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivered {
    pub redelivered: u64,
}

/// What a webhook receives: the body of every delivery (and of `GET /events`). Verify it with
/// the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers (Standard Webhooks),
/// and keep the `webhook-id`s seen in the last five minutes: a replayed delivery repeats one.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPayload {
    /// `evt_…`; the same as the delivery's `webhook-id` header.
    pub id: String,
    #[serde(rename = "type")]
    #[schema(example = "connection.logged_out")]
    pub kind: String,
    /// RFC 3339, UTC, when it happened.
    pub timestamp: String,
    pub account_id: String,
    #[schema(value_type = EventData)]
    pub data: serde_json::Value,
}

impl From<&Event> for EventPayload {
    fn from(e: &Event) -> Self {
        EventPayload {
            id: e.id.to_string(),
            kind: e.kind.as_str().to_string(),
            timestamp: domain::format_rfc3339(e.at),
            account_id: e.account_id.to_string(),
            data: e.data.clone(),
        }
    }
}

/// The `data` of an event, by its `type`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum EventData {
    /// `connection.logged_out`, `connection.unavailable`, `connection.recovered`,
    /// `connection.failing` (its `reason`: why it fails; its status unchanged).
    Connection(ConnectionEventData),
    /// `connection.approval_limit_reached`.
    Approvals(ApprovalsEventData),
    /// `loader.outdated`.
    Loader(LoaderEventData),
    /// `deployment.succeeded`, `deployment.partially_failed`, `deployment.failed`, `deployment.halted`.
    Deployment(DeploymentEventData),
    /// `drift.found`.
    Drift(DriftEventData),
    /// `webhook.test`, `webhook.disabled`.
    Webhook(WebhookEventData),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionRef {
    pub id: String,
    pub name: Option<String>,
    pub org_id: Option<String>,
    pub org_name: Option<String>,
    pub username: Option<String>,
    pub instance_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonData {
    /// A stable code, e.g. `refresh_token_invalid`.
    pub code: String,
    pub summary: String,
    /// What a person does about it.
    pub fix: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionEventData {
    pub connection: ConnectionRef,
    /// `logged_in`, `logged_out` or `not_available`.
    pub status: String,
    pub previous_status: String,
    pub reason: Option<ReasonData>,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentRef {
    pub id: String,
    pub status: String,
    pub resource_name: String,
    pub system_id: String,
    pub environment_id: String,
    pub created_by: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// Why a rollout halted, and the like.
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentEventData {
    pub deployment: DeploymentRef,
    /// How many of its orgs are in each target status (`succeeded`, `failed`, `skipped`…).
    pub targets: std::collections::BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DriftEventData {
    pub resource_name: String,
    pub org_id: String,
    pub connection: ConnectionRef,
    /// The deployment that found it; null when a drift scan did.
    pub deployment_id: Option<String>,
    pub change: String,
    pub changed_by: Option<String>,
    pub changed_at: Option<String>,
    pub summary: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SalesforceUserRef {
    /// The Salesforce user's id (`005…`).
    pub id: String,
    pub username: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantRef {
    pub id: String,
    pub name: String,
    /// When its grant was given (RFC 3339).
    pub granted_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NamedRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalsEventData {
    pub salesforce_user: SalesforceUserRef,
    /// Approvals Salesforce keeps per user and connected app (5).
    pub limit: u32,
    /// The connections holding the user's approvals for the app, oldest grant first.
    pub connections: Vec<GrantRef>,
    /// The connection the next sign-in as this user through the app logs out.
    pub next_revoked: NamedRef,
    /// The connection whose sign-in reached the limit.
    pub signed_in_for: NamedRef,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutdatedOrg {
    pub connection_id: String,
    pub connection: String,
    pub environment_id: String,
    pub environment: String,
    /// The version there.
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoaderEventData {
    pub system: NamedRef,
    /// How many orgs run an earlier version of the loader's settings.
    pub outdated: u32,
    /// Those orgs (at most 100).
    pub orgs: Vec<OutdatedOrg>,
    pub changed_by: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookRef {
    pub id: String,
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEventData {
    pub webhook: WebhookRef,
    /// `webhook.disabled`: why.
    pub reason: Option<String>,
    /// `webhook.test`: who asked, and a line of text.
    pub requested_by: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    pub name: String,
    pub description: String,
    /// Sent on request only (`webhook.test`), never by subscription.
    pub on_request_only: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    /// Only deliveries in this status.
    #[param(pattern = "^(pending|delivered|failed)$")]
    status: Option<String>,
    /// At most this many (1–500, default 100), newest first.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LimitParams {
    /// At most this many (1–500, default 100), newest first.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// At most `limit` (1–500), 100 when not given.
fn limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(100),
        Some(n @ 1..=500) => Ok(n),
        Some(n) => Err(ApiError::invalid("limit", format!("{n} is not between 1 and 500"))),
    }
}

impl std::fmt::Debug for CreatedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedWebhook").field("webhook", &self.webhook).field("secret", &"[redacted]").finish()
    }
}

impl std::fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSecret")
            .field("secret", &"[redacted]")
            .field("previous_valid_until", &self.previous_valid_until)
            .finish()
    }
}

fn webhook_id(id: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(id).map_err(|_| ApiError::NotFound)
}

fn delivery_id(id: &str) -> Result<DeliveryId, ApiError> {
    DeliveryId::parse(id).map_err(|_| ApiError::NotFound)
}

fn secret_text(secret: Zeroizing<String>) -> String {
    secret.as_str().to_string()
}

/// The account's webhook endpoints.
#[utoipa::path(get, path = "/webhooks", tag = "notifications", responses((status = 200, body = Vec<WebhookView>)))]
async fn list(State(state): State<AppState>, caller: Admin) -> Result<Json<Vec<WebhookView>>, ApiError> {
    Ok(Json(notify::list(&state, &caller).await?.iter().map(WebhookView::from).collect()))
}

/// Adds an endpoint. Its signing secret is in the answer, once: store it with the receiver.
#[utoipa::path(post, path = "/webhooks", tag = "notifications", request_body = WebhookBody,
    responses((status = 201, body = CreatedWebhook), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    caller: Admin,
    Body(input): Body<WebhookBody>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let input = WebhookInput { url: input.url, description: input.description, events: input.events };
    let (webhook, secret) = notify::create(&state, &caller, &input).await?;
    Ok((StatusCode::CREATED, Json(CreatedWebhook { webhook: (&webhook).into(), secret: secret_text(secret) })))
}

/// One endpoint.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "notifications", params(("id" = String, Path, description = "wh_…")),
    responses((status = 200, body = WebhookView)))]
async fn get(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json((&notify::get(&state, &caller, &webhook_id(&id)?).await?).into()))
}

/// Changes an endpoint's URL, description or event types, or turns it off or on.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "notifications", params(("id" = String, Path, description = "wh_…")),
    request_body = WebhookPatch, responses((status = 200, body = WebhookView), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
    Body(input): Body<WebhookPatch>,
) -> Result<Json<WebhookView>, ApiError> {
    let change =
        WebhookChange { url: input.url, description: input.description, events: input.events, enabled: input.enabled };
    Ok(Json((&notify::update(&state, &caller, &webhook_id(&id)?, &change).await?).into()))
}

/// Removes an endpoint and its delivery log.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "notifications", params(("id" = String, Path, description = "wh_…")),
    responses((status = 204)))]
async fn delete(State(state): State<AppState>, caller: Admin, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    notify::delete(&state, &caller, &webhook_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret (shown once); the previous one keeps signing for 24 hours, so a
/// receiver that verifies with either loses nothing while it switches.
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "notifications",
    params(("id" = String, Path, description = "wh_…")), responses((status = 200, body = RotatedSecret)))]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<Json<RotatedSecret>, ApiError> {
    let (secret, until) = notify::rotate_secret(&state, &caller, &webhook_id(&id)?).await?;
    Ok(Json(RotatedSecret { secret: secret_text(secret), previous_valid_until: until }))
}

/// Sends a `webhook.test` event to this endpoint now.
#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "notifications", params(("id" = String, Path, description = "wh_…")),
    responses((status = 202, body = TestSent)))]
async fn send_test(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    let delivery = notify::send_test(&state, &caller, &webhook_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(TestSent { delivery_id: delivery.to_string() })))
}

/// An endpoint's deliveries, newest first, with each one's last attempt.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "notifications",
    params(("id" = String, Path, description = "wh_…"), DeliveryParams), responses((status = 200, body = Vec<DeliveryView>)))]
async fn deliveries(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
    Params(p): Params<DeliveryParams>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let status = p
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("status", format!("{s:?} is not pending, delivered or failed")))
        })
        .transpose()?;
    let list = notify::deliveries(&state, &caller, &webhook_id(&id)?, status, limit(p.limit)?).await?;
    Ok(Json(list.iter().map(DeliveryView::from).collect()))
}

/// Sends every failed delivery of the endpoint again, with a new retry window.
#[utoipa::path(post, path = "/webhooks/{id}/redeliver", tag = "notifications", params(("id" = String, Path, description = "wh_…")),
    responses((status = 200, body = Redelivered)))]
async fn redeliver_failed(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<Json<Redelivered>, ApiError> {
    Ok(Json(Redelivered { redelivered: notify::redeliver(&state, &caller, &webhook_id(&id)?, None).await? }))
}

/// One delivery and each of its attempts (status, latency, the start of the answer).
#[utoipa::path(get, path = "/deliveries/{id}", tag = "notifications", params(("id" = String, Path, description = "dlv_…")),
    responses((status = 200, body = DeliveryDetail)))]
async fn delivery(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let (d, attempts) = notify::delivery(&state, &caller, &delivery_id(&id)?).await?;
    Ok(Json(DeliveryDetail { delivery: (&d).into(), attempts: attempts.iter().map(AttemptView::from).collect() }))
}

/// Sends one delivery again now, whatever its status (it keeps its `webhook-id`).
#[utoipa::path(post, path = "/deliveries/{id}/redeliver", tag = "notifications",
    params(("id" = String, Path, description = "dlv_…")), responses((status = 200, body = Redelivered)))]
async fn redeliver_one(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<Json<Redelivered>, ApiError> {
    let id = delivery_id(&id)?;
    let (d, _) = notify::delivery(&state, &caller, &id).await?;
    Ok(Json(Redelivered { redelivered: notify::redeliver(&state, &caller, &d.webhook_id, Some(&id)).await? }))
}

/// The account's latest events, newest first, as webhooks receive them.
#[utoipa::path(get, path = "/events", tag = "notifications", params(LimitParams),
    responses((status = 200, body = Vec<EventPayload>)))]
async fn events(
    State(state): State<AppState>,
    caller: Admin,
    Params(p): Params<LimitParams>,
) -> Result<Json<Vec<EventPayload>>, ApiError> {
    Ok(Json(notify::events(&state, &caller, limit(p.limit)?).await?.iter().map(EventPayload::from).collect()))
}

/// Every event type an endpoint can receive.
#[utoipa::path(get, path = "/event-types", tag = "notifications", responses((status = 200, body = Vec<EventTypeView>)))]
async fn event_types(caller: Admin) -> Result<Json<Vec<EventTypeView>>, ApiError> {
    let _ = caller;
    Ok(Json(
        EventType::ALL
            .iter()
            .map(|t| EventTypeView {
                name: t.as_str().to_string(),
                description: t.describe().to_string(),
                on_request_only: t.is_direct(),
            })
            .collect(),
    ))
}
