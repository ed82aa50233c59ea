//! Events and their delivery to an account's webhook endpoints (B8, issue #18).
//!
//! An event is written in the same transaction as the change that caused it, together with one
//! delivery per endpoint that subscribed to its type (the outbox); the notifier sends each
//! delivery until the endpoint answers 2xx, or gives up after the retry window.

use crate::{AccountId, DeliveryId, EventId, Millis, WebhookId};

/// What happened. The wire name (`connection.logged_out`) is what endpoints subscribe to and
/// what the payload's `type` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Salesforce no longer accepts a connection's sign-in: a person must act.
    ConnectionLoggedOut,
    /// A connection has failed its checks for longer than the grace period.
    ConnectionUnavailable,
    /// A Logged out or Not available connection works again.
    ConnectionRecovered,
    /// A connection's renewals or calls started failing for now — the keep-alive's included —
    /// (the first failure in a row; past the grace period it is Not available).
    ConnectionFailing,
    /// A Salesforce user holds five approvals for one connected app: the next sign-in as them
    /// through it logs out the oldest connection.
    ConnectionApprovalLimitReached,
    /// Every org of a deployment holds the release (or was skipped).
    DeploymentSucceeded,
    /// A deployment ended with some orgs published and some failed.
    DeploymentPartiallyFailed,
    /// A deployment ended with no org published and at least one failed.
    DeploymentFailed,
    /// A wave failed more than its rollout allows: later waves wait for a person.
    DeploymentHalted,
    /// Someone changed a resource Lightbridge published, in the org: the target waits.
    DriftFound,
    /// A system's loader settings changed: orgs run an earlier version until the next
    /// deployment with the loader.
    LoaderOutdated,
    /// Sent on request to check an endpoint.
    WebhookTest,
    /// An endpoint failed for five days without a success and was turned off.
    WebhookDisabled,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        EventType::ConnectionLoggedOut,
        EventType::ConnectionUnavailable,
        EventType::ConnectionRecovered,
        EventType::ConnectionFailing,
        EventType::ConnectionApprovalLimitReached,
        EventType::DeploymentSucceeded,
        EventType::DeploymentPartiallyFailed,
        EventType::DeploymentFailed,
        EventType::DeploymentHalted,
        EventType::DriftFound,
        EventType::LoaderOutdated,
        EventType::WebhookTest,
        EventType::WebhookDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ConnectionLoggedOut => "connection.logged_out",
            EventType::ConnectionUnavailable => "connection.unavailable",
            EventType::ConnectionRecovered => "connection.recovered",
            EventType::ConnectionFailing => "connection.failing",
            EventType::ConnectionApprovalLimitReached => "connection.approval_limit_reached",
            EventType::DeploymentSucceeded => "deployment.succeeded",
            EventType::DeploymentPartiallyFailed => "deployment.partially_failed",
            EventType::DeploymentFailed => "deployment.failed",
            EventType::DeploymentHalted => "deployment.halted",
            EventType::DriftFound => "drift.found",
            EventType::LoaderOutdated => "loader.outdated",
            EventType::WebhookTest => "webhook.test",
            EventType::WebhookDisabled => "webhook.disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// One line for people choosing what to receive.
    pub fn describe(self) -> &'static str {
        match self {
            EventType::ConnectionLoggedOut => "A connection logged out: Salesforce no longer accepts its sign-in",
            EventType::ConnectionUnavailable => "A connection has failed its checks for longer than the grace period",
            EventType::ConnectionRecovered => "A logged-out or unavailable connection works again",
            EventType::ConnectionFailing => "A connection's renewals or calls (the keep-alive's too) started failing",
            EventType::ConnectionApprovalLimitReached => {
                "A Salesforce user holds five approvals for an app: the next sign-in logs out a connection"
            }
            EventType::DeploymentSucceeded => "A deployment reached every org",
            EventType::DeploymentPartiallyFailed => "A deployment ended with some orgs failed",
            EventType::DeploymentFailed => "A deployment ended with every attempted org failed",
            EventType::DeploymentHalted => "A rollout halted: a wave failed more than allowed",
            EventType::DriftFound => "Someone changed a published resource in an org",
            EventType::LoaderOutdated => "A system's loader settings changed: orgs run an earlier version",
            EventType::WebhookTest => "A test event, sent on request to one endpoint",
            EventType::WebhookDisabled => "An endpoint failed for five days and was turned off",
        }
    }

    /// Sent only to the endpoint it concerns, never by subscription (nor by e-mail).
    pub fn is_direct(self) -> bool {
        matches!(self, EventType::WebhookTest)
    }

    /// What admins and owners who have not chosen receive by e-mail: the news a person must
    /// act on.
    pub const MAIL_DEFAULT: [EventType; 7] = [
        EventType::ConnectionLoggedOut,
        EventType::ConnectionUnavailable,
        EventType::ConnectionApprovalLimitReached,
        EventType::DeploymentPartiallyFailed,
        EventType::DeploymentFailed,
        EventType::DeploymentHalted,
        EventType::WebhookDisabled,
    ];
}

/// What a user receives by e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailPreferences {
    /// The event types mailed; empty: none.
    pub events: Vec<EventType>,
    /// One mail a day listing the day's events, instead of one mail per event.
    pub digest: bool,
    /// The hour (UTC, 0–23) the digest is sent.
    pub digest_hour: u8,
    /// False: the user never chose, and the defaults of their role apply.
    pub saved: bool,
}

impl MailPreferences {
    /// What a user who never chose receives: admins and owners [`EventType::MAIL_DEFAULT`],
    /// one mail per event; others nothing.
    pub fn defaults(role: crate::Role) -> Self {
        let events = if role.manages_connections() { EventType::MAIL_DEFAULT.to_vec() } else { Vec::new() };
        MailPreferences { events, digest: false, digest_hour: 8, saved: false }
    }
}

/// When the digest at `hour` (UTC) next goes out after `at`: always later than `at`, within a day.
pub fn next_digest(at: Millis, hour: u8) -> Millis {
    const DAY: Millis = 86_400_000;
    let offset = Millis::from(hour) * 3_600_000;
    ((at - offset).div_euclid(DAY) + 1) * DAY + offset
}

/// Where a mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailStatus {
    /// Not yet accepted by the mail server; sent (again) at `next_at`.
    Pending,
    /// The mail server accepted it.
    Sent,
    /// Refused for good, or not accepted in time.
    Failed,
}

impl MailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Pending => "pending",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => MailStatus::Pending,
            "sent" => MailStatus::Sent,
            "failed" => MailStatus::Failed,
            _ => return None,
        })
    }
}

/// One event's mail to one user (several events share one digest mail).
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub event_id: EventId,
    pub event_type: EventType,
    pub digest: bool,
    pub status: MailStatus,
    pub attempts: u32,
    pub next_at: Millis,
    pub sent_at: Option<Millis>,
    /// Why the mail server did not accept it, last time.
    pub last_error: Option<String>,
    pub created_at: Millis,
}

/// An event as recorded: its payload is the JSON `data` object of the webhook body.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub account_id: AccountId,
    pub kind: EventType,
    pub at: Millis,
    pub data: serde_json::Value,
}

impl Event {
    pub fn new(account: &AccountId, kind: EventType, at: Millis, data: serde_json::Value) -> Self {
        Event { id: EventId::generate(), account_id: account.clone(), kind, at, data }
    }

    /// The webhook body: `{"type", "timestamp", "data"}`, as the Standard Webhooks
    /// specification recommends, plus the event's id and account.
    pub fn payload(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id.as_str(),
            "type": self.kind.as_str(),
            "timestamp": crate::format_rfc3339(self.at),
            "account_id": self.account_id.as_str(),
            "data": self.data,
        })
    }
}

/// An account's webhook endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    pub account_id: AccountId,
    pub url: String,
    pub description: String,
    /// The event types it receives; empty: all of them.
    pub events: Vec<EventType>,
    pub enabled: bool,
    /// Why it is off, when Lightbridge turned it off.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed (none since the last success).
    pub failing_since: Option<Millis>,
    pub created_at: Millis,
    pub created_by: String,
}

impl Webhook {
    pub fn receives(&self, kind: EventType) -> bool {
        !kind.is_direct() && (self.events.is_empty() || self.events.contains(&kind))
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not yet answered 2xx; tried again at `next_at`.
    Pending,
    Delivered,
    /// Every attempt of the retry window failed; redeliver to try again.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_at: Millis,
    /// The last attempt's HTTP status (none: no answer).
    pub last_status: Option<u16>,
    pub last_latency_ms: Option<i64>,
    /// The start of the last answer's body, or why there was none.
    pub last_response: Option<String>,
    pub delivered_at: Option<Millis>,
    pub created_at: Millis,
}

/// One attempt of a delivery, for its log.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    pub at: Millis,
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// The start of the answer's body (at most 500 characters), or why there was no answer.
    pub response: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_reads_back_from_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("connection.deleted"), None);
    }

    #[test]
    fn the_digest_goes_out_at_its_hour_after_the_event() {
        let day = 86_400_000;
        let hour = 3_600_000;
        // 10:30 on day 3: the 08:00 digest of day 4; the 11:00 digest of day 3.
        let at = 3 * day + 10 * hour + hour / 2;
        assert_eq!(next_digest(at, 8), 4 * day + 8 * hour);
        assert_eq!(next_digest(at, 11), 3 * day + 11 * hour);
        // Exactly at the hour: the next day's (the digest being sent now is already claimed).
        assert_eq!(next_digest(3 * day + 8 * hour, 8), 4 * day + 8 * hour);
    }

    #[test]
    fn only_admins_and_owners_are_mailed_by_default() {
        assert_eq!(MailPreferences::defaults(crate::Role::Admin).events, EventType::MAIL_DEFAULT.to_vec());
        assert_eq!(MailPreferences::defaults(crate::Role::Owner).events, EventType::MAIL_DEFAULT.to_vec());
        assert!(MailPreferences::defaults(crate::Role::Editor).events.is_empty());
        assert!(EventType::MAIL_DEFAULT.iter().all(|t| !t.is_direct()));
    }

    #[test]
    fn an_endpoint_with_no_choice_receives_everything_but_direct_events() {
        let mut w = Webhook {
            id: WebhookId::generate(),
            account_id: AccountId::generate(),
            url: "https://example.com/hook".into(),
            description: String::new(),
            events: Vec::new(),
            enabled: true,
            disabled_reason: None,
            failing_since: None,
            created_at: 0,
            created_by: "a@example.com".into(),
        };
        assert!(w.receives(EventType::ConnectionLoggedOut));
        assert!(!w.receives(EventType::WebhookTest));
        w.events = vec![EventType::DriftFound];
        assert!(!w.receives(EventType::ConnectionLoggedOut));
        assert!(w.receives(EventType::DriftFound));
    }
}
