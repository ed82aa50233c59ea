//! Events, webhook endpoints and the outbox of their deliveries (B8, issue #18).
//!
//! An event goes in through [`crate::Tx::record_event`] or the statement of the same name, in
//! the transaction of the change that caused it; the same statement queues one delivery per
//! enabled endpoint of the account that receives its type. A worker claims due deliveries
//! under a lease (several instances never send one at the same time), records each attempt,
//! and the delivery is retried until the endpoint answers 2xx or its retry window ends.

use domain::{
    AccountId, Delivery, DeliveryAttempt, DeliveryId, DeliveryStatus, Event, EventId, Mail, MailPreferences, Millis,
    UserId, Webhook, WebhookId,
};
use zeroize::Zeroizing;

use crate::StoreError;

/// How long a delivery is retried after its event (or after a person asked to redeliver).
pub const RETRY_WINDOW_MS: Millis = 3 * 24 * 3_600_000;

/// How long a mail is tried after its event (or its digest hour): news older than a day is
/// not sent late.
pub const MAIL_WINDOW_MS: Millis = 24 * 3_600_000;

/// The longest response excerpt kept per attempt, in characters.
pub const EXCERPT_CHARS: usize = 500;

/// A delivery handed to a worker, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: Delivery,
    /// The claim's own token: the attempt is recorded only under it.
    pub lease: String,
    pub account_id: AccountId,
    pub url: String,
    /// The exact body to send.
    pub payload: String,
    /// The signing secrets (`whsec_…`), the current one first.
    pub secrets: Vec<Zeroizing<String>>,
}

/// An attempt to record: the claim it was made under, what happened, and when to retry.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub claimed: ClaimedDelivery,
    pub attempt: DeliveryAttempt,
    pub retry_at: Millis,
}

/// A mail handed to the mailer: one event for one recipient.
#[derive(Debug, Clone)]
pub struct ClaimedMail {
    /// `<event id>:<user id>`.
    pub id: String,
    /// The claim's own token: the outcome is recorded only under it.
    pub lease: String,
    pub event: Event,
    /// The name of the event's account, for the recipient who belongs to several.
    pub account_name: String,
    pub user_id: UserId,
    pub to: String,
    pub name: String,
    /// Part of the recipient's digest (due mails of one digest go out as one).
    pub digest: bool,
    pub attempts: u32,
}

/// What became of a claimed mail.
#[derive(Debug, Clone)]
pub struct MailOutcome {
    pub id: String,
    pub lease: String,
    pub at: Millis,
    /// Why the mail server did not accept it; none: accepted.
    pub error: Option<String>,
    /// When to try again after an error; none: refused for good.
    pub retry_at: Option<Millis>,
}

/// What recording an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptRecorded {
    /// False when the claim had run out and another worker holds the delivery.
    pub recorded: bool,
    pub status: DeliveryStatus,
    /// The endpoint was turned off by this attempt: it had failed for too long.
    pub disabled: bool,
}

store_trait! {
    /// Events, webhook endpoints and deliveries.
    pub trait NotificationStore {
        /// Records an event on its own (with its deliveries); changes record theirs in their
        /// own transaction.
        fn record_event(&self, event: &Event) -> Result<(), StoreError>;
        /// The account's latest events, newest first.
        fn events(&self, account: &AccountId, limit: u32) -> Result<Vec<Event>, StoreError>;
        /// A new endpoint and its first signing secret (`whsec_…`).
        fn create_webhook(&self, webhook: &Webhook, secret: &str) -> Result<(), StoreError>;
        fn webhooks(&self, account: &AccountId) -> Result<Vec<Webhook>, StoreError>;
        fn webhook(&self, account: &AccountId, id: &WebhookId) -> Result<Webhook, StoreError>;
        /// Writes an endpoint's URL, description and event types, and (when given) whether it is
        /// on — left as the database has it otherwise, so a change of description never undoes
        /// an endpoint turned off meanwhile; turning it on clears why it was off and its failing
        /// time.
        fn update_webhook(&self, webhook: &Webhook, enabled: Option<bool>) -> Result<(), StoreError>;
        fn delete_webhook(&self, account: &AccountId, id: &WebhookId) -> Result<(), StoreError>;
        /// A new current secret; the one it replaces keeps signing until `previous_until`.
        fn rotate_webhook_secret(
            &self,
            account: &AccountId,
            id: &WebhookId,
            secret: &str,
            now: Millis,
            previous_until: Millis,
        ) -> Result<(), StoreError>;
        /// Records `event` and one delivery of it to this endpoint only (a test event).
        fn record_direct_event(&self, webhook: &Webhook, event: &Event) -> Result<DeliveryId, StoreError>;
        /// Claims up to `limit` due deliveries of enabled endpoints for `lease_ms`.
        fn claim_deliveries(
            &self,
            owner: &str,
            now: Millis,
            lease_ms: i64,
            limit: u32,
        ) -> Result<Vec<ClaimedDelivery>, StoreError>;
        /// Records an attempt. A 2xx delivers it; otherwise it is tried again at `retry_at`
        /// unless that is past its retry window (then it failed). An endpoint failing for
        /// `disable_after_ms` without a success is turned off, with an event saying so.
        fn record_attempt(
            &self,
            claimed: &ClaimedDelivery,
            attempt: &DeliveryAttempt,
            retry_at: Millis,
            disable_after_ms: i64,
        ) -> Result<AttemptRecorded, StoreError>;
        /// Records many attempts in one transaction (the notifier's batches); one answer each.
        fn record_attempts(&self, batch: &[Attempted], disable_after_ms: i64) -> Result<Vec<AttemptRecorded>, StoreError>;
        /// An endpoint's deliveries, newest first; only those of one status when given.
        fn deliveries(
            &self,
            account: &AccountId,
            webhook: &WebhookId,
            status: Option<DeliveryStatus>,
            limit: u32,
        ) -> Result<Vec<Delivery>, StoreError>;
        fn delivery(&self, account: &AccountId, id: &DeliveryId) -> Result<(Delivery, Vec<DeliveryAttempt>), StoreError>;
        /// Sends one delivery again (any status), or every failed delivery of the endpoint:
        /// due now, with a new retry window. Returns how many.
        fn redeliver(
            &self,
            account: &AccountId,
            webhook: &WebhookId,
            delivery: Option<&DeliveryId>,
            now: Millis,
        ) -> Result<u64, StoreError>;
        /// Deliveries still to send, across accounts (for metrics and the benchmark).
        fn pending_deliveries(&self) -> Result<u64, StoreError>;
        /// What a user chose to receive by e-mail; none: they never chose.
        fn mail_preferences(&self, user: &UserId) -> Result<Option<MailPreferences>, StoreError>;
        /// Saves a user's choice. Leaving the digest for one mail per event sends what the
        /// digest held now.
        fn set_mail_preferences(&self, user: &UserId, prefs: &MailPreferences, now: Millis) -> Result<(), StoreError>;
        /// Fails, unsent, pending mails past their window or to people no longer in the account
        /// (the mailer does it at each claim; this is for instances without e-mail set up).
        fn expire_mails(&self, now: Millis) -> Result<u64, StoreError>;
        /// Claims up to `limit` due mails for `lease_ms`: single mails, then whole digests (a
        /// person's every due digest row; one person's digest never split between two claims).
        /// Mails past their window, or to people no longer in the account, fail first, unsent.
        fn claim_mails(&self, owner: &str, now: Millis, lease_ms: i64, limit: u32) -> Result<Vec<ClaimedMail>, StoreError>;
        /// Records what became of claimed mails, in one transaction.
        fn record_mails(&self, outcomes: &[MailOutcome]) -> Result<(), StoreError>;
        /// Deletes up to `limit` events recorded before `before`, oldest first, with their
        /// deliveries, attempts and mails — but not one with a delivery or mail that may still
        /// go out (pending, within its window at `now`). Returns how many.
        fn prune_events(&self, before: Millis, now: Millis, limit: u32) -> Result<u64, StoreError>;
        /// A user's latest mails about one of their accounts, newest first.
        fn mails(&self, user: &UserId, account: &AccountId, limit: u32) -> Result<Vec<Mail>, StoreError>;
    }
}

/// `',a,b,'` for the `events` column: commas around each type, so `LIKE '%,a,%'` finds one.
pub(crate) fn event_list(webhook: &Webhook) -> String {
    list_of(&webhook.events)
}

/// `',a,b,'` of these types; `''` for none.
pub(crate) fn list_of(events: &[domain::EventType]) -> String {
    if events.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        format!(",{},", names.join(","))
    }
}

pub(crate) fn parse_event_list(text: &str) -> Result<Vec<domain::EventType>, StoreError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| domain::EventType::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown event type {s:?}"))))
        .collect()
}

pub(crate) fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

pub(crate) fn event_id(text: &str) -> Result<EventId, StoreError> {
    Ok(EventId::parse(text)?)
}

/// The statements both databases share, as a macro expanded in each `statements` module.
macro_rules! notification_statements {
    () => {
        /// Records an event and queues a delivery to each enabled endpoint of its account that
        /// receives its type — inside the caller's transaction.
        pub(crate) async fn record_event(
            tx: &mut <Db as sqlx::Database>::Connection,
            event: &domain::Event,
        ) -> Result<(), StoreError> {
            query("INSERT INTO events (id, account_id, type, at, payload) VALUES (?, ?, ?, ?, ?)")
                .bind(event.id.as_str())
                .bind(event.account_id.as_str())
                .bind(event.kind.as_str())
                .bind(event.at)
                .bind(event.payload().to_string())
                .execute(&mut *tx)
                .await?;
            if event.kind.is_direct() {
                return Ok(());
            }
            let webhooks: Vec<String> = query_scalar(
                "SELECT id FROM webhooks WHERE account_id = ? AND enabled = 1 AND (events = '' OR events LIKE ?) ORDER BY id",
                )
            .bind(event.account_id.as_str())
            .bind(format!("%,{},%", event.kind.as_str()))
            .fetch_all(&mut *tx)
            .await?;
            for webhook in webhooks {
                queue_delivery(&mut *tx, &webhook, event).await?;
            }
            queue_mails(&mut *tx, event).await
        }

        /// One mail of `event` to each user of its account who receives its type: by their
        /// choice, or (admins and owners who never chose) by default. A digest reader's mail
        /// waits for their digest hour.
        pub(crate) async fn queue_mails(
            tx: &mut <Db as sqlx::Database>::Connection,
            event: &domain::Event,
        ) -> Result<(), StoreError> {
            let by_default = if domain::EventType::MAIL_DEFAULT.contains(&event.kind) {
                " OR (p.user_id IS NULL AND ms.role IN ('admin', 'owner'))"
            } else {
                ""
            };
            // The digest's hour after the event (see domain::next_digest), and a day after it.
            let at = "((? - p.digest_hour * 3600000) / 86400000 + 1) * 86400000 + p.digest_hour * 3600000";
            query(format!(
                "INSERT INTO mail_outbox (id, event_id, user_id, account_id, event_type, digest, status, attempts, next_at, \
                 give_up_at, created_at) \
                 SELECT ? || ':' || u.id, ?, u.id, ?, ?, COALESCE(p.digest, 0), 'pending', 0, \
                 CASE WHEN p.digest = 1 THEN {at} ELSE ? END, CASE WHEN p.digest = 1 THEN {at} + 86400000 ELSE ? END, ? \
                 FROM memberships ms JOIN users u ON u.id = ms.user_id LEFT JOIN mail_preferences p ON p.user_id = u.id \
                 WHERE ms.account_id = ? AND (p.events LIKE ?{by_default})"
            ))
            .bind(event.id.as_str())
            .bind(event.id.as_str())
            .bind(event.account_id.as_str())
            .bind(event.kind.as_str())
            .bind(event.at)
            .bind(event.at)
            .bind(event.at)
            .bind(event.at + crate::notifications::MAIL_WINDOW_MS)
            .bind(event.at)
            .bind(event.account_id.as_str())
            .bind(format!("%,{},%", event.kind.as_str()))
            .execute(&mut *tx)
            .await?;
            Ok(())
        }

        /// Fails, unsent, the pending mails past their window and those of people no longer in
        /// the mail's account (not leased by a mailer this moment). Returns how many.
        pub(crate) async fn expire_mails(
            tx: &mut <Db as sqlx::Database>::Connection,
            now: domain::Millis,
        ) -> Result<u64, StoreError> {
            let stale = query(
                "UPDATE mail_outbox SET status = 'failed', lease_owner = NULL, lease_until = NULL, \
                 last_error = COALESCE(last_error, 'not sent within a day: e-mail was not set up, or the mail server did not take it') \
                 WHERE status = 'pending' AND give_up_at < ? AND (lease_until IS NULL OR lease_until < ?)",
            )
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let gone = query(
                "UPDATE mail_outbox SET status = 'failed', lease_owner = NULL, lease_until = NULL, \
                 last_error = 'not sent: the person is no longer in this account' \
                 WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < ?) AND NOT EXISTS \
                 (SELECT 1 FROM memberships ms WHERE ms.user_id = mail_outbox.user_id AND ms.account_id = mail_outbox.account_id)",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Ok(stale.rows_affected() + gone.rows_affected())
        }

        /// A mail of `event` to the user with this e-mail address in its account, whatever they
        /// chose (an endpoint's creator is told it was turned off); nothing when they already
        /// have one or are no longer a user there.
        pub(crate) async fn queue_mail_to(
            tx: &mut <Db as sqlx::Database>::Connection,
            event: &domain::Event,
            email: &str,
        ) -> Result<(), StoreError> {
            query(
                "INSERT INTO mail_outbox (id, event_id, user_id, account_id, event_type, digest, status, attempts, next_at, \
                 give_up_at, created_at) \
                 SELECT ? || ':' || u.id, ?, u.id, ?, ?, 0, 'pending', 0, ?, ?, ? \
                 FROM memberships ms JOIN users u ON u.id = ms.user_id \
                 WHERE ms.account_id = ? AND LOWER(u.email) = LOWER(?) ON CONFLICT (id) DO NOTHING",
            )
            .bind(event.id.as_str())
            .bind(event.id.as_str())
            .bind(event.account_id.as_str())
            .bind(event.kind.as_str())
            .bind(event.at)
            .bind(event.at + crate::notifications::MAIL_WINDOW_MS)
            .bind(event.at)
            .bind(event.account_id.as_str())
            .bind(email)
            .execute(&mut *tx)
            .await?;
            Ok(())
        }

        /// A signing secret of an endpoint, sealed (bound to its own row).
        pub(crate) async fn insert_webhook_secret(
            tx: &mut <Db as sqlx::Database>::Connection,
            keys: &vault::Keyring,
            webhook: &domain::WebhookId,
            secret: &str,
            now: domain::Millis,
        ) -> Result<(), StoreError> {
            let id = format!("whs_{}", domain::DeliveryId::generate().as_str().trim_start_matches("dlv_"));
            let sealed = keys.seal_str(secret, vault::Binding::new(&id, "webhook_secret"))?;
            query("INSERT INTO webhook_secrets (id, webhook_id, secret, created_at) VALUES (?, ?, ?, ?)")
                .bind(&id)
                .bind(webhook.as_str())
                .bind(sealed.as_stored())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }

        /// One delivery of `event` to `webhook`, due now.
        pub(crate) async fn queue_delivery(
            tx: &mut <Db as sqlx::Database>::Connection,
            webhook: &str,
            event: &domain::Event,
        ) -> Result<domain::DeliveryId, StoreError> {
            let id = domain::DeliveryId::generate();
            query(
                "INSERT INTO webhook_deliveries (id, webhook_id, account_id, event_id, event_type, status, attempts, next_at, \
                 give_up_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
            )
            .bind(id.as_str())
            .bind(webhook)
            .bind(event.account_id.as_str())
            .bind(event.id.as_str())
            .bind(event.kind.as_str())
            .bind(event.at)
            .bind(event.at + crate::notifications::RETRY_WINDOW_MS)
            .bind(event.at)
            .execute(&mut *tx)
            .await?;
            Ok(id)
        }

        /// A connection's status news: logged out, unavailable, recovered.
        #[allow(clippy::too_many_arguments)]
        pub(crate) async fn connection_event(
            tx: &mut <Db as sqlx::Database>::Connection,
            id: &domain::ConnectionId,
            kind: domain::EventType,
            from: domain::ConnectionStatus,
            to: domain::ConnectionStatus,
            reason: Option<domain::StatusReason>,
            detail: Option<&str>,
            now: domain::Millis,
        ) -> Result<(), StoreError> {
            use sqlx::Row;
            let row = query("SELECT account_id, name, org_id, org_name, sf_username, instance_url FROM connections WHERE id = ?")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            let account = domain::AccountId::parse(&row.try_get::<String, _>("account_id")?)?;
            let text = |column: &str| row.try_get::<Option<String>, _>(column);
            let data = serde_json::json!({
                "connection": {
                    "id": id.as_str(),
                    "name": text("name")?,
                    "org_id": text("org_id")?,
                    "org_name": text("org_name")?,
                    "username": text("sf_username")?,
                    "instance_url": text("instance_url")?,
                },
                "status": to.as_str(),
                "previous_status": from.as_str(),
                "reason": reason.map(|r| serde_json::json!({"code": r.as_str(), "summary": r.summary(), "fix": r.fix()})),
                "detail": detail,
            });
            record_event(&mut *tx, &domain::Event::new(&account, kind, now, data)).await
        }

        /// `drift.found`: someone changed a resource Lightbridge published, in one org — found by
        /// a deployment (`deployment` given) or by a scan.
        pub(crate) async fn drift_event(
            tx: &mut <Db as sqlx::Database>::Connection,
            account: &domain::AccountId,
            org_id: &str,
            resource: &str,
            connection: &domain::ConnectionId,
            deployment: Option<&domain::DeploymentId>,
            drift: &domain::Drift,
        ) -> Result<(), StoreError> {
            use sqlx::Row;
            let row = query("SELECT name, org_name, sf_username FROM connections WHERE id = ?")
                .bind(connection.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let text = |column: &str| -> Result<Option<String>, StoreError> {
                Ok(match &row {
                    Some(r) => r.try_get::<Option<String>, _>(column)?,
                    None => None,
                })
            };
            let data = serde_json::json!({
                "resource_name": resource,
                "org_id": org_id,
                "connection": {"id": connection.as_str(), "name": text("name")?, "org_name": text("org_name")?, "username": text("sf_username")?},
                "deployment_id": deployment.map(domain::DeploymentId::as_str),
                "change": drift.what,
                "changed_by": drift.by,
                "changed_at": drift.at.map(domain::format_rfc3339),
                "summary": drift.describe(),
            });
            record_event(&mut *tx, &domain::Event::new(account, domain::EventType::DriftFound, drift.found_at, data)).await
        }

        /// [`drift_event`] for a deployment's target held as drifted.
        pub(crate) async fn drift_event_of_target(
            tx: &mut <Db as sqlx::Database>::Connection,
            deployment: &domain::DeploymentId,
            connection: &domain::ConnectionId,
            drift: &domain::Drift,
        ) -> Result<(), StoreError> {
            use sqlx::Row;
            let row = query(
                "SELECT d.account_id, d.resource_name, c.org_id FROM deployments d LEFT JOIN connections c ON c.id = ? WHERE d.id = ?",
            )
            .bind(connection.as_str())
            .bind(deployment.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { return Ok(()) };
            let account = domain::AccountId::parse(&row.try_get::<String, _>("account_id")?)?;
            let resource: String = row.try_get("resource_name")?;
            let org: Option<String> = row.try_get("org_id")?;
            drift_event(&mut *tx, &account, org.as_deref().unwrap_or(""), &resource, connection, Some(deployment), drift).await
        }

        /// The event a deployment's end (or halt) means, if it has just ended: recorded once,
        /// in the transaction that ended it.
        pub(crate) async fn deployment_event(
            tx: &mut <Db as sqlx::Database>::Connection,
            id: &domain::DeploymentId,
            now: domain::Millis,
        ) -> Result<(), StoreError> {
            use sqlx::Row;
            let Some(row) = query(
                "SELECT account_id, status, resource_name, system_id, environment_id, created_at, created_by, finished_at, note \
                 FROM deployments WHERE id = ?",
            )
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(());
            };
            let status: String = row.try_get("status")?;
            let counts: Vec<(String, i64)> =
                query("SELECT status, COUNT(*) AS n FROM deployment_targets WHERE deployment_id = ? GROUP BY status ORDER BY status")
                    .bind(id.as_str())
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get::<String, _>("status")?, r.try_get::<i64, _>("n")?)))
                    .collect::<Result<_, StoreError>>()?;
            let count = |s: &str| counts.iter().find(|(k, _)| k == s).map(|(_, n)| *n).unwrap_or(0);
            let kind = match status.as_str() {
                "succeeded" => domain::EventType::DeploymentSucceeded,
                "failed" if count("succeeded") + count("unchanged") > 0 => domain::EventType::DeploymentPartiallyFailed,
                "failed" => domain::EventType::DeploymentFailed,
                "halted" => domain::EventType::DeploymentHalted,
                _ => return Ok(()),
            };
            let account = domain::AccountId::parse(&row.try_get::<String, _>("account_id")?)?;
            let by_status: serde_json::Map<String, serde_json::Value> =
                counts.iter().map(|(k, n)| (k.clone(), serde_json::json!(n))).collect();
            let data = serde_json::json!({
                "deployment": {
                    "id": id.as_str(),
                    "status": status,
                    "resource_name": row.try_get::<String, _>("resource_name")?,
                    "system_id": row.try_get::<String, _>("system_id")?,
                    "environment_id": row.try_get::<String, _>("environment_id")?,
                    "created_by": row.try_get::<String, _>("created_by")?,
                    "created_at": domain::format_rfc3339(row.try_get::<i64, _>("created_at")?),
                    "finished_at": row.try_get::<Option<i64>, _>("finished_at")?.map(domain::format_rfc3339),
                    "note": row.try_get::<Option<String>, _>("note")?,
                },
                "targets": by_status,
            });
            record_event(&mut *tx, &domain::Event::new(&account, kind, now, data)).await
        }
        /// Records one attempt of a claimed delivery (see [`NotificationStore::record_attempt`]),
        /// inside the caller's transaction.
        pub(crate) async fn record_attempt(
            tx: &mut <Db as sqlx::Database>::Connection,
            claimed: &crate::notifications::ClaimedDelivery,
            attempt: &domain::DeliveryAttempt,
            retry_at: domain::Millis,
            disable_after_ms: i64,
        ) -> Result<crate::notifications::AttemptRecorded, StoreError> {
            use domain::DeliveryStatus as S;
            let d = &claimed.delivery;
            let ok = attempt.status.is_some_and(|s| (200..300).contains(&s));
            let response = crate::notifications::excerpt(&attempt.response);
            // A write first: it takes SQLite's write lock (a read first would fail the later
            // write with SQLITE_BUSY_SNAPSHOT when another instance wrote in between).
            let give_up_at: Option<i64> = query_scalar(
                "UPDATE webhook_deliveries SET lease_until = lease_until WHERE id = ? AND lease_owner = ? AND status = 'pending' \
                 RETURNING give_up_at",
            )
            .bind(d.id.as_str())
            .bind(&claimed.lease)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(give_up_at) = give_up_at else {
                return Ok(crate::notifications::AttemptRecorded { recorded: false, status: d.status, disabled: false });
            };
            query("INSERT INTO webhook_attempts (delivery_id, at, status, latency, response) VALUES (?, ?, ?, ?, ?)")
                .bind(d.id.as_str())
                .bind(attempt.at)
                .bind(attempt.status.map(i64::from))
                .bind(attempt.latency_ms)
                .bind(&response)
                .execute(&mut *tx)
                .await?;
            let status = if ok {
                S::Delivered
            } else if retry_at <= give_up_at {
                S::Pending
            } else {
                S::Failed
            };
            query(
                "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, next_at = ?, lease_owner = NULL, lease_until = NULL, \
                 last_status = ?, last_latency = ?, last_response = ?, delivered_at = ? WHERE id = ?",
            )
            .bind(status.as_str())
            .bind(if status == S::Pending { retry_at } else { attempt.at })
            .bind(attempt.status.map(i64::from))
            .bind(attempt.latency_ms)
            .bind(&response)
            .bind(ok.then_some(attempt.at))
            .bind(d.id.as_str())
            .execute(&mut *tx)
            .await?;
            let mut disabled = false;
            if ok {
                query("UPDATE webhooks SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL")
                    .bind(d.webhook_id.as_str())
                    .execute(&mut *tx)
                    .await?;
            } else {
                query("UPDATE webhooks SET failing_since = ? WHERE id = ? AND failing_since IS NULL")
                    .bind(attempt.at)
                    .bind(d.webhook_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                let reason = format!(
                    "Turned off by Lightbridge on {}: every delivery failed for {} days (the last answer: {}). Turn it on again once it answers.",
                    domain::format_utc(attempt.at),
                    disable_after_ms / 86_400_000,
                    if response.is_empty() { "none".to_string() } else { response.chars().take(120).collect::<String>() }
                );
                let off = query(
                    "UPDATE webhooks SET enabled = 0, disabled_reason = ? WHERE id = ? AND enabled = 1 AND failing_since <= ?",
                )
                .bind(&reason)
                .bind(d.webhook_id.as_str())
                .bind(attempt.at - disable_after_ms)
                .execute(&mut *tx)
                .await?;
                if off.rows_affected() == 1 {
                    disabled = true;
                    let row = query("SELECT url, created_by FROM webhooks WHERE id = ?")
                        .bind(d.webhook_id.as_str())
                        .fetch_one(&mut *tx)
                        .await?;
                    let url: String = sqlx::Row::try_get(&row, "url")?;
                    let owner: String = sqlx::Row::try_get(&row, "created_by")?;
                    let data = serde_json::json!({
                        "webhook": {"id": d.webhook_id.as_str(), "url": url},
                        "reason": reason,
                    });
                    let event = domain::Event::new(&claimed.account_id, domain::EventType::WebhookDisabled, attempt.at, data);
                    record_event(&mut *tx, &event).await?;
                    queue_mail_to(&mut *tx, &event, &owner).await?;
                    record(
                        &mut *tx,
                        &domain::AuditEntry {
                            account_id: Some(claimed.account_id.clone()),
                            at: attempt.at,
                            actor: "lightbridge".into(),
                            actor_kind: domain::ActorKind::System,
                            action: "webhook.disabled".into(),
                            target_kind: "webhook".into(),
                            target_id: Some(d.webhook_id.as_str().to_string()),
                            target_label: Some(url),
                            detail: Some(reason),
                            remote_addr: None,
                        },
                    )
                    .await?;
                }
            }
            Ok(crate::notifications::AttemptRecorded { recorded: true, status, disabled })
        }
    };
}

pub(crate) use notification_statements;

/// The [`NotificationStore`] methods both databases share; `$skip_locked` is what a claim adds
/// so that rows another instance is claiming are skipped.
macro_rules! shared_notification_methods {
    () => {
        async fn record_event(&self, event: &domain::Event) -> Result<(), StoreError> {
            let mut tx = self.writer().begin().await?;
            statements::record_event(&mut *tx, event).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn events(&self, account: &AccountId, limit: u32) -> Result<Vec<domain::Event>, StoreError> {
            let rows = query("SELECT id, type, at, payload FROM events WHERE account_id = ? ORDER BY id DESC LIMIT ?")
                .bind(account.as_str())
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
            rows.iter()
                .map(|r| {
                    let (id, kind, at, payload): (String, String, i64, String) =
                        (r.try_get("id")?, r.try_get("type")?, r.try_get("at")?, r.try_get("payload")?);
                    let body: serde_json::Value =
                        serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
                    Ok(domain::Event {
                        id: crate::notifications::event_id(&id)?,
                        account_id: account.clone(),
                        kind: domain::EventType::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("event type {kind:?}")))?,
                        at,
                        data: body.get("data").cloned().unwrap_or(serde_json::Value::Null),
                    })
                })
                .collect()
        }

        async fn create_webhook(&self, w: &domain::Webhook, secret: &str) -> Result<(), StoreError> {
            let mut tx = self.writer().begin().await?;
            query(
                "INSERT INTO webhooks (id, account_id, url, description, events, enabled, created_at, created_by) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(w.id.as_str())
            .bind(w.account_id.as_str())
            .bind(&w.url)
            .bind(&w.description)
            .bind(crate::notifications::event_list(w))
            .bind(i64::from(w.enabled))
            .bind(w.created_at)
            .bind(&w.created_by)
            .execute(&mut *tx)
            .await?;
            statements::insert_webhook_secret(&mut *tx, &self.keys, &w.id, secret, w.created_at).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn webhooks(&self, account: &AccountId) -> Result<Vec<domain::Webhook>, StoreError> {
            let rows = query(format!("SELECT {} FROM webhooks WHERE account_id = ? ORDER BY created_at, id", WEBHOOK_COLUMNS))
                .bind(account.as_str())
                .fetch_all(self.pool())
                .await?;
            rows.iter().map(row_to_webhook).collect()
        }

        async fn webhook(&self, account: &AccountId, id: &WebhookId) -> Result<domain::Webhook, StoreError> {
            let row = query(format!("SELECT {} FROM webhooks WHERE id = ? AND account_id = ?", WEBHOOK_COLUMNS))
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotFound)?;
            row_to_webhook(&row)
        }

        async fn update_webhook(&self, w: &domain::Webhook, enabled: Option<bool>) -> Result<(), StoreError> {
            let enabled = enabled.map(i64::from);
            let done = query(format!(
                "UPDATE webhooks SET url = ?, description = ?, events = ?, enabled = COALESCE({n}, enabled), \
                 disabled_reason = CASE WHEN {n} = 1 THEN NULL ELSE disabled_reason END, \
                 failing_since = CASE WHEN {n} = 1 AND enabled = 0 THEN NULL ELSE failing_since END \
                 WHERE id = ? AND account_id = ?",
                n = dialect::NULLABLE_BIGINT
            ))
            .bind(&w.url)
            .bind(&w.description)
            .bind(crate::notifications::event_list(w))
            .bind(enabled)
            .bind(enabled)
            .bind(enabled)
            .bind(w.id.as_str())
            .bind(w.account_id.as_str())
            .execute(self.writer())
            .await?;
            if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        }

        async fn delete_webhook(&self, account: &AccountId, id: &WebhookId) -> Result<(), StoreError> {
            let done = query("DELETE FROM webhooks WHERE id = ? AND account_id = ?")
                .bind(id.as_str())
                .bind(account.as_str())
                .execute(self.writer())
                .await?;
            if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        }

        async fn rotate_webhook_secret(
            &self,
            account: &AccountId,
            id: &WebhookId,
            secret: &str,
            now: Millis,
            previous_until: Millis,
        ) -> Result<(), StoreError> {
            let mut tx = self.writer().begin().await?;
            // Ours, or not found (never another account's).
            let owned = query("UPDATE webhooks SET url = url WHERE id = ? AND account_id = ?")
                .bind(id.as_str())
                .bind(account.as_str())
                .execute(&mut *tx)
                .await?;
            if owned.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            // Older previous secrets end now; the current one becomes the previous one.
            query("DELETE FROM webhook_secrets WHERE webhook_id = ? AND expires_at IS NOT NULL")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            query("UPDATE webhook_secrets SET expires_at = ? WHERE webhook_id = ? AND expires_at IS NULL")
                .bind(previous_until)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            statements::insert_webhook_secret(&mut *tx, &self.keys, id, secret, now).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn record_direct_event(&self, w: &domain::Webhook, event: &domain::Event) -> Result<DeliveryId, StoreError> {
            let mut tx = self.writer().begin().await?;
            statements::record_event(&mut *tx, event).await?;
            let id = statements::queue_delivery(&mut *tx, w.id.as_str(), event).await?;
            tx.commit().await?;
            Ok(id)
        }

        async fn claim_deliveries(
            &self,
            owner: &str,
            now: Millis,
            lease_ms: i64,
            limit: u32,
        ) -> Result<Vec<crate::notifications::ClaimedDelivery>, StoreError> {
            // A token of this claim alone: what it took is read back by it.
            let lease = format!("{owner}:{}", domain::DeliveryId::generate().as_str());
            // The rows are picked and locked once, in a materialized CTE, then updated: as
            // `id IN (SELECT … FOR UPDATE SKIP LOCKED)` PostgreSQL may re-run the locking scan
            // for each row another instance changed meanwhile (EvalPlanQual), which stalled a
            // claim for minutes at 100,000 waiting deliveries.
            let claimed = query(format!(
                "WITH picked AS MATERIALIZED (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? \
                  AND (lease_until IS NULL OR lease_until < ?) \
                  AND {}webhook_id IN (SELECT id FROM webhooks WHERE enabled = 1) \
                  ORDER BY next_at LIMIT ?{}) \
                 UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ? WHERE status = 'pending' \
                 AND id IN (SELECT id FROM picked) RETURNING id",
                // The due index leads (walking an endpoint's whole log instead grew with it).
                dialect::NOT_INDEXED,
                dialect::SKIP_LOCKED
            ))
            .bind(now)
            .bind(now)
            .bind(i64::from(limit.max(1)))
            .bind(&lease)
            .bind(now + lease_ms)
            .fetch_all(self.writer())
            .await?;
            if claimed.is_empty() {
                return Ok(Vec::new());
            }
            // Read back by key (the claim's ids), off the writer.
            let ids: Vec<String> = claimed.iter().map(|r| r.try_get::<String, _>("id")).collect::<Result<_, _>>()?;
            let marks = vec!["?"; ids.len()].join(", ");
            let mut rows = query(format!(
                "SELECT {}, w.url, e.payload FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                 JOIN events e ON e.id = d.event_id WHERE d.id IN ({marks}) ORDER BY d.next_at",
                DELIVERY_COLUMNS
            ));
            for id in &ids {
                rows = rows.bind(id);
            }
            let rows = rows.fetch_all(self.pool()).await?;
            let mut webhooks: Vec<String> = rows.iter().map(|r| r.try_get::<String, _>("webhook_id")).collect::<Result<_, _>>()?;
            webhooks.sort();
            webhooks.dedup();
            let marks = vec!["?"; webhooks.len()].join(", ");
            let mut secrets = query(format!(
                "SELECT s.webhook_id, s.id, s.secret FROM webhook_secrets s WHERE (s.expires_at IS NULL OR s.expires_at > ?) \
                 AND s.webhook_id IN ({marks}) \
                 ORDER BY s.webhook_id, CASE WHEN s.expires_at IS NULL THEN 0 ELSE 1 END, s.created_at DESC"
            ))
            .bind(now);
            for w in &webhooks {
                secrets = secrets.bind(w);
            }
            let secrets: Vec<(String, String, String)> = secrets
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| Ok((r.try_get("webhook_id")?, r.try_get("id")?, r.try_get("secret")?)))
                .collect::<Result<_, StoreError>>()?;
            // Each secret opened once per claim, not once per delivery. One that cannot be opened
            // (its master key is gone) leaves its endpoint's deliveries without a secret: each
            // gets a failed attempt saying so, and the others of the claim go on.
            let mut opened: Vec<(String, zeroize::Zeroizing<String>)> = Vec::with_capacity(secrets.len());
            for (webhook, id, sealed) in &secrets {
                match self.keys.open_string(&vault::Sealed::from_stored(sealed.as_str()), vault::Binding::new(id, "webhook_secret")) {
                    Ok(key) => opened.push((webhook.clone(), key)),
                    Err(e) => tracing::error!(error = %e, webhook = %webhook, "a webhook secret cannot be opened"),
                }
            }
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                // A row that does not read (a corrupt value) is left to its lease, not the claim's end.
                let read = row_to_delivery(row).and_then(|d| Ok((d, AccountId::parse(&row.try_get::<String, _>("account_id")?)?)));
                let (delivery, account_id) = match read {
                    Ok(read) => read,
                    Err(e) => {
                        tracing::error!(error = %e, "a claimed webhook delivery does not read");
                        continue;
                    }
                };
                let keys: Vec<zeroize::Zeroizing<String>> = opened
                    .iter()
                    .filter(|(webhook, _)| webhook == delivery.webhook_id.as_str())
                    .map(|(_, key)| key.clone())
                    .collect();
                out.push(crate::notifications::ClaimedDelivery {
                    delivery,
                    lease: lease.clone(),
                    account_id,
                    url: row.try_get("url")?,
                    payload: row.try_get("payload")?,
                    secrets: keys,
                });
            }
            Ok(out)
        }

        async fn record_attempt(
            &self,
            claimed: &crate::notifications::ClaimedDelivery,
            attempt: &domain::DeliveryAttempt,
            retry_at: Millis,
            disable_after_ms: i64,
        ) -> Result<crate::notifications::AttemptRecorded, StoreError> {
            let mut tx = self.writer().begin().await?;
            let r = statements::record_attempt(&mut *tx, claimed, attempt, retry_at, disable_after_ms).await?;
            tx.commit().await?;
            Ok(r)
        }

        async fn record_attempts(
            &self,
            batch: &[crate::notifications::Attempted],
            disable_after_ms: i64,
        ) -> Result<Vec<crate::notifications::AttemptRecorded>, StoreError> {
            // In endpoint order, so two instances recording at once never wait on each other's
            // endpoint rows in opposite orders (a deadlock on PostgreSQL).
            let mut order: Vec<usize> = (0..batch.len()).collect();
            order.sort_by(|&i, &j| batch[i].claimed.delivery.webhook_id.cmp(&batch[j].claimed.delivery.webhook_id));
            let mut tx = self.writer().begin().await?;
            let mut out = vec![None; batch.len()];
            for i in order {
                let a = &batch[i];
                out[i] = Some(statements::record_attempt(&mut *tx, &a.claimed, &a.attempt, a.retry_at, disable_after_ms).await?);
            }
            tx.commit().await?;
            Ok(out.into_iter().flatten().collect())
        }

        async fn deliveries(
            &self,
            account: &AccountId,
            webhook: &WebhookId,
            status: Option<domain::DeliveryStatus>,
            limit: u32,
        ) -> Result<Vec<domain::Delivery>, StoreError> {
            let rows = query(format!(
                "SELECT {} FROM webhook_deliveries d WHERE d.account_id = ? AND d.webhook_id = ? AND ({} IS NULL OR d.status = ?) \
                 ORDER BY d.created_at DESC, d.id DESC LIMIT ?",
                DELIVERY_COLUMNS,
                dialect::NULLABLE_TEXT
            ))
            .bind(account.as_str())
            .bind(webhook.as_str())
            .bind(status.map(domain::DeliveryStatus::as_str))
            .bind(status.map(domain::DeliveryStatus::as_str))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(row_to_delivery).collect()
        }

        async fn delivery(
            &self,
            account: &AccountId,
            id: &DeliveryId,
        ) -> Result<(domain::Delivery, Vec<domain::DeliveryAttempt>), StoreError> {
            let row = query(format!("SELECT {} FROM webhook_deliveries d WHERE d.id = ? AND d.account_id = ?", DELIVERY_COLUMNS))
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotFound)?;
            let attempts = query("SELECT at, status, latency, response FROM webhook_attempts WHERE delivery_id = ? ORDER BY at")
                .bind(id.as_str())
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| {
                    Ok(domain::DeliveryAttempt {
                        at: r.try_get("at")?,
                        status: r.try_get::<Option<i64>, _>("status")?.and_then(|s| u16::try_from(s).ok()),
                        latency_ms: r.try_get("latency")?,
                        response: r.try_get("response")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            Ok((row_to_delivery(&row)?, attempts))
        }

        async fn redeliver(
            &self,
            account: &AccountId,
            webhook: &WebhookId,
            delivery: Option<&DeliveryId>,
            now: Millis,
        ) -> Result<u64, StoreError> {
            let done = query(format!(
                "UPDATE webhook_deliveries SET status = 'pending', next_at = ?, give_up_at = ?, attempts = 0, lease_owner = NULL, \
                 lease_until = NULL WHERE account_id = ? AND webhook_id = ? AND (({} IS NULL AND status = 'failed') OR id = ?) \
                 AND NOT (status = 'pending' AND COALESCE(lease_until, 0) >= ?)",
                dialect::NULLABLE_TEXT
            ))
            .bind(now)
            .bind(now + crate::notifications::RETRY_WINDOW_MS)
            .bind(account.as_str())
            .bind(webhook.as_str())
            .bind(delivery.map(DeliveryId::as_str))
            .bind(delivery.map(DeliveryId::as_str))
            .bind(now)
            .execute(self.writer())
            .await?;
            if delivery.is_some() && done.rows_affected() == 0 {
                // Not ours, unknown, or being sent this moment.
                let exists: Option<String> = query_scalar(
                    "SELECT id FROM webhook_deliveries WHERE id = ? AND account_id = ? AND webhook_id = ?",
                    )
                .bind(delivery.map(DeliveryId::as_str))
                .bind(account.as_str())
                .bind(webhook.as_str())
                .fetch_optional(self.pool())
                .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound);
                }
            }
            Ok(done.rows_affected())
        }

        async fn pending_deliveries(&self) -> Result<u64, StoreError> {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")
                .fetch_one(self.pool())
                .await?;
            Ok(n as u64)
        }

        async fn prune_events(&self, before: Millis, now: Millis, limit: u32) -> Result<u64, StoreError> {
            // A delivery waiting past its window (its endpoint off for longer) or a mail past its
            // day will not go out: they do not hold their event back.
            let done = query(
                "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.at < ? \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending' \
                   AND d.give_up_at >= ?) \
                 AND NOT EXISTS (SELECT 1 FROM mail_outbox m WHERE m.event_id = e.id AND m.status = 'pending' \
                   AND m.give_up_at >= ?) \
                 ORDER BY e.at LIMIT ?)",
            )
            .bind(before)
            .bind(now)
            .bind(now)
            .bind(i64::from(limit.max(1)))
            .execute(self.writer())
            .await?;
            Ok(done.rows_affected())
        }

        async fn mail_preferences(&self, user: &domain::UserId) -> Result<Option<domain::MailPreferences>, StoreError> {
            let row = query("SELECT events, digest, digest_hour FROM mail_preferences WHERE user_id = ?")
                .bind(user.as_str())
                .fetch_optional(self.pool())
                .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(domain::MailPreferences {
                events: crate::notifications::parse_event_list(&row.try_get::<String, _>("events")?)?,
                digest: row.try_get::<i64, _>("digest")? != 0,
                digest_hour: u8::try_from(row.try_get::<i64, _>("digest_hour")?).unwrap_or(8).min(23),
                saved: true,
            }))
        }

        async fn set_mail_preferences(
            &self,
            user: &domain::UserId,
            prefs: &domain::MailPreferences,
            now: Millis,
        ) -> Result<(), StoreError> {
            let mut tx = self.writer().begin().await?;
            let events = crate::notifications::list_of(&prefs.events);
            query(
                "INSERT INTO mail_preferences (user_id, events, digest, digest_hour, updated_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (user_id) DO UPDATE SET events = excluded.events, digest = excluded.digest, \
                 digest_hour = excluded.digest_hour, updated_at = excluded.updated_at",
            )
            .bind(user.as_str())
            .bind(&events)
            .bind(i64::from(prefs.digest))
            .bind(i64::from(prefs.digest_hour))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // What waits and is no longer chosen is not sent (but an endpoint's creator is told
            // it was turned off whatever they chose).
            query(
                "DELETE FROM mail_outbox WHERE user_id = ? AND status = 'pending' AND (lease_until IS NULL OR lease_until < ?) \
                 AND event_type <> 'webhook.disabled' AND ? NOT LIKE '%,' || event_type || ',%'",
            )
            .bind(user.as_str())
            .bind(now)
            .bind(&events)
            .execute(&mut *tx)
            .await?;
            // What the digest holds goes out at a new hour, or now (for a day) when leaving it; a
            // digest already at the chosen hour stays as it is (due, or being tried again).
            let (next, digest) = if prefs.digest { (domain::next_digest(now, prefs.digest_hour), 1) } else { (now, 0) };
            let hour_ms = i64::from(prefs.digest_hour) * 3_600_000;
            query(
                "UPDATE mail_outbox SET digest = ?, next_at = ?, give_up_at = ? \
                 WHERE user_id = ? AND status = 'pending' AND digest = 1 AND (lease_until IS NULL OR lease_until < ?) \
                 AND (? = 0 OR (next_at - ?) % 86400000 <> 0)",
            )
            .bind(digest)
            .bind(next)
            .bind(next + crate::notifications::MAIL_WINDOW_MS)
            .bind(user.as_str())
            .bind(now)
            .bind(digest)
            .bind(hour_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn expire_mails(&self, now: Millis) -> Result<u64, StoreError> {
            let mut tx = self.writer().begin().await?;
            let n = statements::expire_mails(&mut *tx, now).await?;
            tx.commit().await?;
            Ok(n)
        }

        async fn claim_mails(
            &self,
            owner: &str,
            now: Millis,
            lease_ms: i64,
            limit: u32,
        ) -> Result<Vec<crate::notifications::ClaimedMail>, StoreError> {
            let lease = format!("{owner}:{}", domain::DeliveryId::generate().as_str());
            let limit = i64::from(limit.max(1));
            // Stale mails, and mails of people no longer in the account, fail unsent (in a
            // statement of its own: instances claiming at once never wait on each other there).
            self.expire_mails(now).await?;
            // Due: pending, its time come, not leased, and its person still in the account.
            let due = "status = 'pending' AND next_at <= ? AND (lease_until IS NULL OR lease_until < ?) AND EXISTS \
                       (SELECT 1 FROM memberships ms WHERE ms.user_id = mail_outbox.user_id AND ms.account_id = mail_outbox.account_id)";
            let mut tx = self.writer().begin().await?;
            // Digests first (one per person a day, so they never starve behind single mails),
            // each whole: a person's preferences row is held (skipped by another instance
            // claiming at once) while all their due digest rows are leased. On SQLite the first
            // statement is this UPDATE's write, as BUSY_SNAPSHOT needs: the people are read in
            // its subquery.
            let mut ids: Vec<String> = query_scalar(format!(
                "UPDATE mail_outbox SET lease_owner = ?, lease_until = ? WHERE {due} AND digest = 1 AND user_id IN \
                 (SELECT user_id FROM mail_preferences WHERE user_id IN \
                  (SELECT user_id FROM mail_outbox WHERE {due} AND digest = 1) ORDER BY user_id LIMIT ?{}) RETURNING id",
                dialect::SKIP_LOCKED
            ))
            .bind(&lease)
            .bind(now + lease_ms)
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let people: std::collections::BTreeSet<&str> = ids.iter().filter_map(|id| id.split_once(':').map(|(_, u)| u)).collect();
            let room = limit - people.len() as i64;
            if room > 0 {
                // Picked and locked once (a materialized CTE), as the webhook claim.
                let single: Vec<String> = query_scalar(format!(
                    "WITH picked AS MATERIALIZED (SELECT id FROM mail_outbox WHERE {due} AND digest = 0 \
                     ORDER BY next_at LIMIT ?{}) \
                     UPDATE mail_outbox SET lease_owner = ?, lease_until = ? WHERE status = 'pending' \
                     AND id IN (SELECT id FROM picked) RETURNING id",
                    dialect::SKIP_LOCKED
                ))
                .bind(now)
                .bind(now)
                .bind(room)
                .bind(&lease)
                .bind(now + lease_ms)
                .fetch_all(&mut *tx)
                .await?;
                ids.extend(single);
            }
            tx.commit().await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            // Read back by key (the claim's ids).
            let marks = vec!["?"; ids.len()].join(", ");
            let mut rows = query(format!(
                "SELECT m.id, m.user_id, m.digest, m.attempts, u.email, u.name, a.name AS account_name, e.id AS event_id, \
                 e.account_id, e.type, e.at, e.payload FROM mail_outbox m JOIN users u ON u.id = m.user_id \
                 JOIN events e ON e.id = m.event_id JOIN accounts a ON a.id = m.account_id \
                 WHERE m.id IN ({marks}) ORDER BY m.user_id, e.at, e.id"
            ));
            for id in &ids {
                rows = rows.bind(id);
            }
            let rows = rows.fetch_all(self.writer()).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let read = (|| -> Result<crate::notifications::ClaimedMail, StoreError> {
                    let kind: String = row.try_get("type")?;
                    let payload: String = row.try_get("payload")?;
                    let body: serde_json::Value =
                        serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
                    Ok(crate::notifications::ClaimedMail {
                        id: row.try_get("id")?,
                        lease: lease.clone(),
                        event: domain::Event {
                            id: crate::notifications::event_id(&row.try_get::<String, _>("event_id")?)?,
                            account_id: AccountId::parse(&row.try_get::<String, _>("account_id")?)?,
                            kind: domain::EventType::parse(&kind)
                                .ok_or_else(|| StoreError::Corrupt(format!("event type {kind:?}")))?,
                            at: row.try_get("at")?,
                            data: body.get("data").cloned().unwrap_or(serde_json::Value::Null),
                        },
                        account_name: row.try_get("account_name")?,
                        user_id: domain::UserId::parse(&row.try_get::<String, _>("user_id")?)?,
                        to: row.try_get("email")?,
                        name: row.try_get("name")?,
                        digest: row.try_get::<i64, _>("digest")? != 0,
                        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
                    })
                })();
                match read {
                    Ok(mail) => out.push(mail),
                    // Left to its lease; the others go on.
                    Err(e) => tracing::error!(error = %e, "a claimed mail does not read"),
                }
            }
            Ok(out)
        }

        async fn record_mails(&self, outcomes: &[crate::notifications::MailOutcome]) -> Result<(), StoreError> {
            let mut tx = self.writer().begin().await?;
            for o in outcomes {
                let error = o.error.as_deref().map(crate::notifications::excerpt);
                let (status, next_at) = match (&o.error, o.retry_at) {
                    (None, _) => ("sent", o.at),
                    (Some(_), Some(retry)) => ("pending", retry),
                    (Some(_), None) => ("failed", o.at),
                };
                query(
                    "UPDATE mail_outbox SET status = CASE WHEN ? = 'pending' AND ? > give_up_at THEN 'failed' ELSE ? END, \
                     attempts = attempts + 1, next_at = ?, lease_owner = NULL, lease_until = NULL, last_error = ?, sent_at = ? \
                     WHERE id = ? AND lease_owner = ? AND status = 'pending'",
                )
                .bind(status)
                .bind(next_at)
                .bind(status)
                .bind(next_at)
                .bind(error)
                .bind(o.error.is_none().then_some(o.at))
                .bind(&o.id)
                .bind(&o.lease)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn mails(&self, user: &domain::UserId, account: &AccountId, limit: u32) -> Result<Vec<domain::Mail>, StoreError> {
            let rows = query(
                "SELECT event_id, event_type, digest, status, attempts, next_at, sent_at, last_error, created_at \
                 FROM mail_outbox WHERE user_id = ? AND account_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            )
            .bind(user.as_str())
            .bind(account.as_str())
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|r| {
                    let kind: String = r.try_get("event_type")?;
                    let status: String = r.try_get("status")?;
                    Ok(domain::Mail {
                        event_id: crate::notifications::event_id(&r.try_get::<String, _>("event_id")?)?,
                        event_type: domain::EventType::parse(&kind)
                            .ok_or_else(|| StoreError::Corrupt(format!("event type {kind:?}")))?,
                        digest: r.try_get::<i64, _>("digest")? != 0,
                        status: domain::MailStatus::parse(&status)
                            .ok_or_else(|| StoreError::Corrupt(format!("mail status {status:?}")))?,
                        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
                        next_at: r.try_get("next_at")?,
                        sent_at: r.try_get("sent_at")?,
                        last_error: r.try_get("last_error")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect()
        }
    };
}

pub(crate) use shared_notification_methods;

pub(crate) const WEBHOOK_COLUMNS: &str =
    "id, account_id, url, description, events, enabled, disabled_reason, failing_since, created_at, created_by";
pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.account_id, d.event_id, d.event_type, d.status, d.attempts, \
    d.next_at, d.last_status, d.last_latency, d.last_response, d.delivered_at, d.created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct WebhookRow {
    id: String,
    account_id: String,
    url: String,
    description: String,
    events: String,
    enabled: i64,
    disabled_reason: Option<String>,
    failing_since: Option<Millis>,
    created_at: Millis,
    created_by: String,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;

    fn try_from(r: WebhookRow) -> Result<Self, StoreError> {
        Ok(Webhook {
            id: WebhookId::parse(&r.id)?,
            account_id: AccountId::parse(&r.account_id)?,
            url: r.url,
            description: r.description,
            events: parse_event_list(&r.events)?,
            enabled: r.enabled != 0,
            disabled_reason: r.disabled_reason,
            failing_since: r.failing_since,
            created_at: r.created_at,
            created_by: r.created_by,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: String,
    webhook_id: String,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    next_at: Millis,
    last_status: Option<i64>,
    last_latency: Option<i64>,
    last_response: Option<String>,
    delivered_at: Option<Millis>,
    created_at: Millis,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;

    fn try_from(r: DeliveryRow) -> Result<Self, StoreError> {
        Ok(Delivery {
            id: DeliveryId::parse(&r.id)?,
            webhook_id: WebhookId::parse(&r.webhook_id)?,
            event_id: event_id(&r.event_id)?,
            event_type: domain::EventType::parse(&r.event_type)
                .ok_or_else(|| StoreError::Corrupt(format!("event type {:?}", r.event_type)))?,
            status: DeliveryStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery status {:?}", r.status)))?,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            next_at: r.next_at,
            last_status: r.last_status.and_then(|s| u16::try_from(s).ok()),
            last_latency_ms: r.last_latency,
            last_response: r.last_response,
            delivered_at: r.delivered_at,
            created_at: r.created_at,
        })
    }
}

pub(crate) fn row_to_webhook<'r, R: sqlx::Row>(row: &'r R) -> Result<Webhook, StoreError>
where
    WebhookRow: sqlx::FromRow<'r, R>,
{
    Webhook::try_from(<WebhookRow as sqlx::FromRow<'r, R>>::from_row(row)?)
}

pub(crate) fn row_to_delivery<'r, R: sqlx::Row>(row: &'r R) -> Result<Delivery, StoreError>
where
    DeliveryRow: sqlx::FromRow<'r, R>,
{
    Delivery::try_from(<DeliveryRow as sqlx::FromRow<'r, R>>::from_row(row)?)
}
