//! Notifications (B8, issue #18): an account's webhook endpoints, and the notifier that
//! delivers the events the store records (in the transaction of the change that caused each)
//! to them, signed as the Standard Webhooks specification says.
//!
//! Each delivery carries `webhook-id` (the event's id: the same on every retry, so receivers
//! deduplicate by it), `webhook-timestamp` (seconds, when this attempt was signed) and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per valid
//! secret, space-separated: after a rotation, the old and the new secret both verify until the
//! old one expires). A delivery is retried with exponential back-off until the endpoint
//! answers 2xx or three days have passed; an endpoint failing for five days is turned off.
//!
//! Deliveries go only to public addresses: the address a name resolves to is checked when the
//! connection is made (the resolver refuses loopback, private, link-local and other
//! non-public addresses), so a name that changes its answer after the endpoint was saved
//! cannot reach inside the network. An operator may allow private addresses (tests do).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use domain::Clock as _;
use domain::{AccountId, Delivery, DeliveryAttempt, DeliveryId, DeliveryStatus, Event, EventType, Webhook, WebhookId};
use store::{ClaimedDelivery, NotificationStore};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::audit::record;
use crate::{Actor, Service, ServiceError};

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// How the notifier delivers.
#[derive(Debug, Clone, Copy)]
pub struct NotifierConfig {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How long a claim lasts before another instance may take the delivery over.
    pub lease: Duration,
    /// How often due deliveries are looked for when nothing woke the notifier.
    pub poll: Duration,
    /// The first retry's delay; each next one is four times longer (with jitter), up to
    /// `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long an endpoint may take to answer.
    pub timeout: Duration,
    /// An endpoint failing this long without a success is turned off.
    pub disable_after: Duration,
    /// Events older than this are deleted with their deliveries and mails (none that may still
    /// go out), once an hour by [`spawn_pruner`].
    pub retention: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            concurrency: 128,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(8 * 3600),
            timeout: Duration::from_secs(10),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The delay before the attempt after `attempts` failed ones: base × 4^(attempts − 1), capped,
/// then a random 75–100 % of that. With the defaults: 5 s, 20 s, 80 s, 5 min, 21 min, 85 min,
/// 5.7 h, then every 8 h until three days after the event: 17 attempts in all.
pub fn backoff(config: &NotifierConfig, attempts: u32, random: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(15);
    let full = config.backoff_base.saturating_mul(4u32.saturating_pow(exponent)).min(config.backoff_max);
    full.mul_f64(0.75 + f64::from(random % 1001) / 4000.0)
}

/// Who may receive deliveries, and the HTTP client that enforces it (see [`outbound`]).
pub use outbound::Sender;

/// A new signing secret: `whsec_` and 24 random bytes in base64, as the specification's
/// libraries read it.
pub fn new_secret() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 24]);
    aws_lc_rs::rand::fill(bytes.as_mut()).expect("the system's random source");
    Zeroizing::new(format!("whsec_{}", STANDARD.encode(bytes.as_ref())))
}

/// `v1,<signature>` of one message under one `whsec_…` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String, ServiceError> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|e| ServiceError::internal("a webhook secret is not base64", e))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", STANDARD.encode(tag.as_ref())))
}

/// An endpoint as a person describes it.
#[derive(Debug, Clone, Default)]
pub struct WebhookInput {
    pub url: String,
    pub description: String,
    /// Event type names; empty: every type.
    pub events: Vec<String>,
}

/// A change to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

fn check_url(svc: &Service, url: &str, errors: &mut Vec<(String, String)>) -> Option<String> {
    let url = url.trim();
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            errors.push(("url".into(), format!("not a URL: {e}")));
            return None;
        }
    };
    let private = svc.webhooks.allows_private();
    match parsed.scheme() {
        "https" => {}
        "http" if private => {}
        "http" => errors.push(("url".into(), "use an https:// URL: deliveries carry signed account data".into())),
        _ => errors.push(("url".into(), "use an https:// URL".into())),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        errors.push(("url".into(), "leave credentials out of the URL: deliveries are signed instead".into()));
    }
    if parsed.fragment().is_some() {
        errors.push(("url".into(), "remove the #fragment: it is never sent".into()));
    }
    if url.len() > 2000 {
        errors.push(("url".into(), "at most 2,000 characters".into()));
    }
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) if !private && (d == "localhost" || d.ends_with(".localhost")) => {
            errors.push((
                "url".into(),
                "localhost is not a public address; Lightbridge delivers to public addresses only".into(),
            ));
            None
        }
        Some(url::Host::Domain(_)) => None,
        None => {
            errors.push(("url".into(), "the URL has no host".into()));
            None
        }
    };
    if let Some(ip) = literal
        && !private
        && !oidc::public(ip)
    {
        errors.push((
            "url".into(),
            format!("{ip} is not a public address; Lightbridge delivers to public addresses only"),
        ));
    }
    Some(parsed.to_string())
}

fn check_events(names: &[String], errors: &mut Vec<(String, String)>) -> Vec<EventType> {
    let mut out = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        match EventType::parse(name) {
            Some(t) if t.is_direct() => {
                errors.push(("events".into(), format!("{name} is sent on request, not by subscription")))
            }
            Some(t) if !out.contains(&t) => out.push(t),
            Some(_) => {}
            None => errors.push((
                "events".into(),
                format!(
                    "unknown event type {name:?}; choose from {}",
                    EventType::ALL.iter().filter(|t| !t.is_direct()).map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
    out
}

fn check_description(text: &str, errors: &mut Vec<(String, String)>) -> String {
    let text = text.trim();
    if text.chars().count() > 200 {
        errors.push(("description".into(), "at most 200 characters".into()));
    }
    if text.chars().any(char::is_control) {
        errors.push(("description".into(), "one line, without control characters".into()));
    }
    text.to_string()
}

/// The account's endpoints.
pub async fn list(svc: &Service, actor: &Actor) -> Result<Vec<Webhook>, ServiceError> {
    let account = actor.require_connection_admin()?;
    Ok(svc.store.webhooks(account).await?)
}

pub async fn get(svc: &Service, actor: &Actor, id: &WebhookId) -> Result<Webhook, ServiceError> {
    let account = actor.require_connection_admin()?;
    Ok(svc.store.webhook(account, id).await?)
}

/// A new endpoint; its signing secret is returned this once.
pub async fn create(
    svc: &Service,
    actor: &Actor,
    input: &WebhookInput,
) -> Result<(Webhook, Zeroizing<String>), ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let mut errors = Vec::new();
    let url = check_url(svc, &input.url, &mut errors);
    let events = check_events(&input.events, &mut errors);
    let description = check_description(&input.description, &mut errors);
    let Some(url) = url.filter(|_| errors.is_empty()) else { return Err(ServiceError::Invalid(errors)) };
    if svc.store.webhooks(&account).await?.len() >= MAX_WEBHOOKS {
        return Err(ServiceError::Conflict {
            field: None,
            message: format!("an account has at most {MAX_WEBHOOKS} webhook endpoints; remove one first"),
        });
    }
    let now = svc.now_ms();
    let webhook = Webhook {
        id: WebhookId::generate(),
        account_id: account.clone(),
        url,
        description,
        events,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        created_by: actor.user.email.clone(),
    };
    let secret = new_secret();
    svc.store.create_webhook(&webhook, &secret).await?;
    record(
        svc,
        actor.audit(
            now,
            "webhook.created",
            "webhook",
            Some(webhook.id.as_str()),
            Some(&webhook.url),
            Some(subscribed(&webhook)),
        ),
    )
    .await;
    Ok((webhook, secret))
}

/// The most endpoints one account may have.
pub const MAX_WEBHOOKS: usize = 20;

fn subscribed(w: &Webhook) -> String {
    if w.events.is_empty() {
        "every event".into()
    } else {
        w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
    }
}

pub async fn update(
    svc: &Service,
    actor: &Actor,
    id: &WebhookId,
    change: &WebhookChange,
) -> Result<Webhook, ServiceError> {
    let account = actor.require_connection_admin()?;
    let mut webhook = svc.store.webhook(account, id).await?;
    let mut errors = Vec::new();
    if let Some(url) = &change.url
        && let Some(url) = check_url(svc, url, &mut errors)
    {
        webhook.url = url;
    }
    if let Some(events) = &change.events {
        webhook.events = check_events(events, &mut errors);
    }
    if let Some(description) = &change.description {
        webhook.description = check_description(description, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    let was_enabled = webhook.enabled;
    if let Some(enabled) = change.enabled {
        webhook.enabled = enabled;
        if enabled {
            webhook.disabled_reason = None;
            if !was_enabled {
                webhook.failing_since = None;
            }
        }
    }
    svc.store.update_webhook(&webhook, change.enabled).await?;
    let what = match (was_enabled, webhook.enabled) {
        (false, true) => "webhook.enabled",
        (true, false) => "webhook.disabled_by_person",
        _ => "webhook.updated",
    };
    record(
        svc,
        actor.audit(svc.now_ms(), what, "webhook", Some(id.as_str()), Some(&webhook.url), Some(subscribed(&webhook))),
    )
    .await;
    Ok(webhook)
}

pub async fn delete(svc: &Service, actor: &Actor, id: &WebhookId) -> Result<(), ServiceError> {
    let account = actor.require_connection_admin()?;
    let webhook = svc.store.webhook(account, id).await?;
    svc.store.delete_webhook(account, id).await?;
    record(svc, actor.audit(svc.now_ms(), "webhook.deleted", "webhook", Some(id.as_str()), Some(&webhook.url), None))
        .await;
    Ok(())
}

/// A new signing secret, returned this once; the old one keeps signing for
/// [`ROTATION_OVERLAP`] so receivers can switch without losing a delivery.
pub async fn rotate_secret(
    svc: &Service,
    actor: &Actor,
    id: &WebhookId,
) -> Result<(Zeroizing<String>, i64), ServiceError> {
    let account = actor.require_connection_admin()?;
    let webhook = svc.store.webhook(account, id).await?;
    let secret = new_secret();
    let now = svc.now_ms();
    let until = now + ROTATION_OVERLAP.as_millis() as i64;
    svc.store.rotate_webhook_secret(account, id, &secret, now, until).await?;
    record(
        svc,
        actor.audit(
            now,
            "webhook.secret_rotated",
            "webhook",
            Some(id.as_str()),
            Some(&webhook.url),
            Some(format!("the previous secret signs too until {}", domain::format_utc(until))),
        ),
    )
    .await;
    Ok((secret, until))
}

/// Sends a `webhook.test` event to this endpoint only; returns its delivery.
pub async fn send_test(svc: &Service, actor: &Actor, id: &WebhookId) -> Result<DeliveryId, ServiceError> {
    let account = actor.require_connection_admin()?;
    let webhook = svc.store.webhook(account, id).await?;
    if !webhook.enabled {
        return Err(ServiceError::conflict("this endpoint is off: turn it on to send it a test event"));
    }
    let now = svc.now_ms();
    let data = serde_json::json!({
        "webhook": {"id": webhook.id.as_str(), "url": webhook.url},
        "requested_by": actor.user.email,
        "message": "A test event from Lightbridge: this endpoint receives and verifies deliveries.",
    });
    let event = Event::new(account, EventType::WebhookTest, now, data);
    let delivery = svc.store.record_direct_event(&webhook, &event).await?;
    svc.notify_wake.notify_one();
    record(svc, actor.audit(now, "webhook.tested", "webhook", Some(id.as_str()), Some(&webhook.url), None)).await;
    Ok(delivery)
}

/// An endpoint's deliveries, newest first.
pub async fn deliveries(
    svc: &Service,
    actor: &Actor,
    id: &WebhookId,
    status: Option<DeliveryStatus>,
    limit: u32,
) -> Result<Vec<Delivery>, ServiceError> {
    let account = actor.require_connection_admin()?;
    svc.store.webhook(account, id).await?;
    Ok(svc.store.deliveries(account, id, status, limit.clamp(1, 500)).await?)
}

/// One delivery with each attempt.
pub async fn delivery(
    svc: &Service,
    actor: &Actor,
    id: &DeliveryId,
) -> Result<(Delivery, Vec<DeliveryAttempt>), ServiceError> {
    let account = actor.require_connection_admin()?;
    Ok(svc.store.delivery(account, id).await?)
}

/// Sends one delivery again, or (none given) every failed delivery of the endpoint.
pub async fn redeliver(
    svc: &Service,
    actor: &Actor,
    id: &WebhookId,
    delivery: Option<&DeliveryId>,
) -> Result<u64, ServiceError> {
    let account = actor.require_connection_admin()?;
    let webhook = svc.store.webhook(account, id).await?;
    let now = svc.now_ms();
    let n = svc.store.redeliver(account, id, delivery, now).await?;
    svc.notify_wake.notify_one();
    let detail = match delivery {
        Some(d) => format!("delivery {d}"),
        None => format!("{n} failed deliveries"),
    };
    record(
        svc,
        actor.audit(now, "webhook.redelivered", "webhook", Some(id.as_str()), Some(&webhook.url), Some(detail)),
    )
    .await;
    Ok(n)
}

/// The account's latest events.
pub async fn events(svc: &Service, actor: &Actor, limit: u32) -> Result<Vec<Event>, ServiceError> {
    let account: &AccountId = actor.require_connection_admin()?;
    Ok(svc.store.events(account, limit.clamp(1, 500)).await?)
}

/// Starts the notifier; it runs until the process ends. Several instances may run against one
/// database: each delivery is claimed by one of them at a time.
pub fn spawn_notifier(svc: &Service, config: NotifierConfig) -> tokio::task::JoinHandle<()> {
    let svc = svc.clone();
    tokio::spawn(async move {
        let owner = format!("notifier-{}", domain::UserId::generate().as_str().trim_start_matches("user_"));
        // A slot is held from the claim until the attempt is recorded.
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let recorder = spawn_recorder(&svc, &config);
        let _stop_recorder = AbortOnDrop(recorder.1);
        loop {
            let free = slots.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                let now = svc.now_ms();
                match svc.store.claim_deliveries(&owner, now, config.lease.as_millis() as i64, free as u32).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "could not claim webhook deliveries");
                        Vec::new()
                    }
                }
            };
            let got = claimed.len();
            for claim in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                let (svc, record) = (svc.clone(), recorder.0.clone());
                tokio::spawn(async move {
                    let attempted = attempt(&svc, &config, claim).await;
                    let _ = record.send((attempted, permit));
                });
            }
            if got == 0 || slots.available_permits() == 0 {
                // Nothing due (or every slot busy): wait for a new event, a recorded attempt
                // (a free slot) or the poll.
                tokio::select! {
                    _ = svc.notify_wake.notified() => {}
                    _ = tokio::time::sleep(config.poll) => {}
                }
            }
        }
    })
}

/// Starts the pruner: once an hour, from a random minute of the first hour (so instances
/// started together do not prune together), it deletes events past `retention` and fails mails
/// nobody will send. It runs until the process ends.
pub fn spawn_pruner(svc: &Service, retention: Duration) -> tokio::task::JoinHandle<()> {
    let svc = svc.clone();
    tokio::spawn(async move {
        let first = {
            let mut b = [0u8; 4];
            let _ = aws_lc_rs::rand::fill(&mut b);
            Duration::from_secs(60 + u64::from(u32::from_le_bytes(b)) % 3540)
        };
        tokio::time::sleep(first).await;
        loop {
            prune(&svc, retention).await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    })
}

/// Deletes events past `retention` (with their deliveries, attempts and mails), a thousand at a
/// time so no transaction holds the database long, at most a hundred thousand a run.
pub async fn prune(svc: &Service, retention: Duration) -> u64 {
    let now = svc.now_ms();
    let before = now - retention.as_millis() as i64;
    let mut total = 0;
    for _ in 0..100 {
        match svc.store.prune_events(before, now, 1000).await {
            Ok(n) => {
                total += n;
                if n < 1000 {
                    break;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not prune old events");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(events = total, "pruned events past their retention");
    }
    // Mails nobody will send (no e-mail set up here, or their person left the account) fail
    // with why, rather than wait forever.
    if let Err(e) = svc.store.expire_mails(svc.now_ms()).await {
        tracing::error!(error = %e, "could not expire stale mails");
    }
    total
}

/// Ends a task when dropped (the notifier's recorder ends with the notifier).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Recorder = tokio::sync::mpsc::UnboundedSender<(store::Attempted, tokio::sync::OwnedSemaphorePermit)>;

/// Records attempts as they finish, those that finish together in one transaction (one write
/// per delivery would make the database the bottleneck); then frees their slots.
fn spawn_recorder(svc: &Service, config: &NotifierConfig) -> (Recorder, tokio::task::JoinHandle<()>) {
    let (sender, mut attempts) =
        tokio::sync::mpsc::unbounded_channel::<(store::Attempted, tokio::sync::OwnedSemaphorePermit)>();
    let svc = svc.clone();
    let disable_after = config.disable_after.as_millis() as i64;
    let task = tokio::spawn(async move {
        let mut batch = Vec::new();
        while attempts.recv_many(&mut batch, 256).await > 0 {
            let (done, permits): (Vec<store::Attempted>, Vec<_>) = batch.drain(..).unzip();
            // A database busy a moment is asked again: an attempt left unrecorded is sent again
            // when its claim runs out (under the same webhook-id, but needlessly).
            let mut recorded = svc.store.record_attempts(&done, disable_after).await;
            for wait in [50, 200, 1000] {
                if recorded.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(wait)).await;
                recorded = svc.store.record_attempts(&done, disable_after).await;
            }
            match recorded {
                Ok(results) => {
                    for (a, r) in done.iter().zip(results) {
                        if r.disabled {
                            tracing::warn!(webhook = %a.claimed.delivery.webhook_id, "a webhook endpoint failed for too long and was turned off");
                        }
                        if !r.recorded {
                            tracing::warn!(delivery = %a.claimed.delivery.id, "a webhook delivery's claim ran out before its attempt was recorded");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, attempts = done.len(), "could not record webhook attempts"),
            }
            drop(permits);
            svc.notify_wake.notify_one();
        }
    });
    (sender, task)
}

/// One attempt of one delivery, with when to try again should it have failed.
pub async fn attempt(svc: &Service, config: &NotifierConfig, claim: ClaimedDelivery) -> store::Attempted {
    let attempt = send(svc, &claim).await;
    let random = {
        let mut b = [0u8; 4];
        let _ = aws_lc_rs::rand::fill(&mut b);
        u32::from_le_bytes(b)
    };
    let retry_at = attempt.at + backoff(config, claim.delivery.attempts + 1, random).as_millis() as i64;
    let delivered = attempt.status.is_some_and(|s| (200..300).contains(&s));
    metrics::counter!("lightbridge_webhook_attempts_total", "outcome" => if delivered { "delivered" } else { "failed" })
        .increment(1);
    store::Attempted { claimed: claim, attempt, retry_at }
}

/// Signs and posts a delivery; the attempt as it went.
async fn send(svc: &Service, claim: &ClaimedDelivery) -> DeliveryAttempt {
    let at = svc.now_ms();
    // The receiver compares this with its own clock: the machine's time, always (the service's
    // clock is one tests move, to expire a rotated secret).
    let timestamp = domain::SystemClock.now_ms().div_euclid(1000);
    let id = claim.delivery.event_id.as_str();
    if claim.secrets.is_empty() {
        let why = "the endpoint's signing secret cannot be opened (the master key that sealed it is not configured): nothing was sent";
        return DeliveryAttempt { at, status: None, latency_ms: 0, response: why.into() };
    }
    let mut signatures = Vec::new();
    for secret in &claim.secrets {
        match sign(secret, id, timestamp, &claim.payload) {
            Ok(s) => signatures.push(s),
            Err(e) => return DeliveryAttempt { at, status: None, latency_ms: 0, response: e.to_string() },
        }
    }
    let headers = [
        ("content-type", "application/json".to_string()),
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ];
    let answer = svc.webhooks.post(&claim.url, &headers, claim.payload.clone(), store::EXCERPT_CHARS).await;
    DeliveryAttempt { at, status: answer.status, latency_ms: answer.latency_ms, response: answer.text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_specification_s_example() {
        // The Standard Webhooks specification's test vector (its libraries' tests share it).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1614265330, body).expect("sign"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn retries_back_off_to_eight_hours_and_fill_three_days() {
        let config = NotifierConfig::default();
        assert_eq!(backoff(&config, 1, 0), Duration::from_secs(5).mul_f64(0.75));
        assert_eq!(backoff(&config, 30, 1000), Duration::from_secs(8 * 3600));
        let mut total = Duration::ZERO;
        let mut attempts = 1;
        while total < Duration::from_millis(store::RETRY_WINDOW_MS as u64) {
            total += backoff(&config, attempts, 1000);
            attempts += 1;
        }
        assert_eq!(attempts, 17, "attempts in the window");
    }
}
