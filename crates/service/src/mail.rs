//! E-mail notifications (B8, issue #18): what each user chose to receive, and the mailer that
//! sends the mails the store queued with each event (in the transaction of the change that
//! caused it) through the operator's SMTP server.
//!
//! A mail says what happened, what to do about it, and links to the page in the Admin Center
//! where it is done; it has a plain-text and an HTML body of the same words. A user who chose
//! the daily digest gets one mail at their hour listing the day's events instead. Admins and
//! owners who never chose receive the events a person must act on ([`EventType::MAIL_DEFAULT`]);
//! the creator of a webhook endpoint Lightbridge turned off is told whatever they chose.
//!
//! A mail the server does not accept is tried again (1 minute, then four times longer each
//! time, up to an hour) for a day; news older than that is not sent late. Each try of one mail
//! carries the same `Message-ID`.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::{Event, EventType, Mail, MailPreferences};
use outbound::mail::{Letter, Smtp};
use store::{ClaimedMail, MailOutcome, NotificationStore};

use crate::audit::record;
use crate::{Actor, Service, ServiceError};

/// How the mailer sends.
#[derive(Debug, Clone, Copy)]
pub struct MailerConfig {
    /// Mails sent at the same time; each claim takes at most this many, so a claim is sent in
    /// one round, well within its lease.
    pub concurrency: usize,
    /// How long a claim lasts before another instance may take the mail over: longer than one
    /// mail can take (every step of an SMTP conversation may take the timeout).
    pub lease: Duration,
    /// How often due mails are looked for.
    pub poll: Duration,
    /// The first retry's delay; each next one is four times longer, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for MailerConfig {
    fn default() -> Self {
        MailerConfig {
            concurrency: 4,
            lease: Duration::from_secs(300),
            poll: Duration::from_secs(5),
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

/// A user's choice as they send it.
#[derive(Debug, Clone, Default)]
pub struct PreferencesInput {
    /// Event type names; empty: no mail at all.
    pub events: Vec<String>,
    pub digest: bool,
    /// The digest's hour (UTC); none: as it was (08:00 at first).
    pub digest_hour: Option<i64>,
}

/// What the caller receives by e-mail: their choice, or their role's defaults.
pub async fn preferences(svc: &Service, actor: &Actor) -> Result<MailPreferences, ServiceError> {
    actor.account()?;
    Ok(svc.store.mail_preferences(&actor.user.id).await?.unwrap_or_else(|| MailPreferences::defaults(actor.user.role)))
}

/// Saves what the caller receives by e-mail.
pub async fn set_preferences(
    svc: &Service,
    actor: &Actor,
    input: &PreferencesInput,
) -> Result<MailPreferences, ServiceError> {
    actor.account()?;
    let current = preferences(svc, actor).await?;
    let mut errors = Vec::new();
    let mut events = Vec::new();
    for name in input.events.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        match EventType::parse(name) {
            Some(t) if t.is_direct() => errors.push((
                "events".to_string(),
                format!("{name} is sent to a webhook endpoint on request, not by e-mail"),
            )),
            Some(t) if !events.contains(&t) => events.push(t),
            Some(_) => {}
            None => {
                errors.push(("events".to_string(), format!("unknown event type {name:?}; choose from {}", mailable())))
            }
        }
    }
    let digest_hour = match input.digest_hour {
        None => current.digest_hour,
        Some(h @ 0..=23) => h as u8,
        Some(_) => {
            errors.push(("digest_hour".to_string(), "an hour of the day, 0 to 23 (UTC)".to_string()));
            current.digest_hour
        }
    };
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    // In the order of the catalogue, whatever order they came in.
    events.sort_by_key(|t| EventType::ALL.iter().position(|a| a == t));
    let prefs = MailPreferences { events, digest: input.digest, digest_hour, saved: true };
    let now = svc.now_ms();
    svc.store.set_mail_preferences(&actor.user.id, &prefs, now).await?;
    let detail = if prefs.events.is_empty() {
        "no e-mail".to_string()
    } else {
        format!(
            "{}; {}",
            prefs.events.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
            if prefs.digest {
                format!("a daily digest at {:02}:00 UTC", prefs.digest_hour)
            } else {
                "one mail per event".into()
            }
        )
    };
    record(
        svc,
        actor.audit(
            now,
            "notifications.preferences_changed",
            "user",
            Some(actor.user.id.as_str()),
            Some(&actor.user.email),
            Some(detail),
        ),
    )
    .await;
    Ok(prefs)
}

/// The caller's latest mails, newest first.
pub async fn mails(svc: &Service, actor: &Actor, limit: u32) -> Result<Vec<Mail>, ServiceError> {
    let account = actor.account()?;
    Ok(svc.store.mails(&actor.user.id, account, limit.clamp(1, 200)).await?)
}

fn mailable() -> String {
    EventType::ALL.iter().filter(|t| !t.is_direct()).map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
}

/// The delay before the try after `attempts` failed ones.
pub fn backoff(config: &MailerConfig, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(15);
    config.backoff_base.saturating_mul(4u32.saturating_pow(exponent)).min(config.backoff_max)
}

/// Starts the mailer; it runs until the process ends. Several instances may run against one
/// database: each mail is claimed by one of them at a time.
pub fn spawn_mailer(svc: &Service, smtp: Smtp, config: MailerConfig) -> tokio::task::JoinHandle<()> {
    let svc = svc.clone();
    tokio::spawn(async move {
        let owner = format!("mailer-{}", domain::UserId::generate().as_str().trim_start_matches("user_"));
        loop {
            let now = svc.now_ms();
            let limit = config.concurrency.max(1) as u32;
            let claimed = match svc.store.claim_mails(&owner, now, config.lease.as_millis() as i64, limit).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "could not claim mails");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::time::sleep(config.poll).await;
                continue;
            }
            let outcomes = send_all(&svc, &smtp, &config, claimed).await;
            if let Err(e) = svc.store.record_mails(&outcomes).await {
                // Each is sent again when its claim runs out (under the same Message-ID).
                tracing::error!(error = %e, mails = outcomes.len(), "could not record mails");
            }
        }
    })
}

/// Sends the claimed mails (a digest's as one), a few at a time; what became of each.
pub async fn send_all(
    svc: &Service,
    smtp: &Smtp,
    config: &MailerConfig,
    claimed: Vec<ClaimedMail>,
) -> Vec<MailOutcome> {
    use futures_util::StreamExt;
    let base = svc.public_url.clone();
    let letters = letters(&base, claimed);
    futures_util::stream::iter(letters)
        .map(|(letter, mails)| async move {
            let result = smtp.send(&letter).await;
            let at = svc.now_ms();
            let outcome = match &result {
                Ok(()) => "sent",
                Err(r) if r.permanent => "refused",
                Err(_) => "failed",
            };
            metrics::counter!("lightbridge_mails_total", "outcome" => outcome).increment(1);
            if let Err(r) = &result {
                tracing::warn!(to_user = %mails[0].user_id, permanent = r.permanent, error = %r.text, "a mail was not accepted");
            }
            mails
                .iter()
                .map(|m| MailOutcome {
                    id: m.id.clone(),
                    lease: m.lease.clone(),
                    at,
                    error: result.as_ref().err().map(|r| r.text.clone()),
                    retry_at: match &result {
                        Err(r) if !r.permanent => Some(at + backoff(config, m.attempts + 1).as_millis() as i64),
                        _ => None,
                    },
                })
                .collect::<Vec<_>>()
        })
        .buffer_unordered(config.concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One letter per mail, and one per recipient's digest; with the mails each one carries.
pub fn letters(base: &url::Url, claimed: Vec<ClaimedMail>) -> Vec<(Letter, Vec<ClaimedMail>)> {
    let mut out = Vec::new();
    let mut digests: BTreeMap<String, Vec<ClaimedMail>> = BTreeMap::new();
    for mail in claimed {
        if mail.digest {
            digests.entry(mail.user_id.as_str().to_string()).or_default().push(mail);
        } else {
            out.push((single(base, &mail), vec![mail]));
        }
    }
    for (_, mut mails) in digests {
        mails.sort_by_key(|m| (m.event.at, m.event.id.as_str().to_string()));
        out.push((digest(base, &mails), mails));
    }
    out
}

/// What one event says: a headline, what happened, what to do, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub lines: Vec<String>,
    pub fix: Option<String>,
    pub link: String,
    pub link_label: String,
}

fn text<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

/// The words of one event.
pub fn notice(base: &url::Url, event: &Event) -> Notice {
    let d = &event.data;
    let link = |path: &str| base.join(path).map(|u| u.to_string()).unwrap_or_else(|_| base.to_string());
    let connection = || {
        let name = text(d, &["connection", "name"]).unwrap_or("a connection").to_string();
        let org = match (text(d, &["connection", "org_name"]), text(d, &["connection", "username"])) {
            (Some(org), Some(user)) => format!(" ({org}, signed in as {user})"),
            (Some(org), None) => format!(" ({org})"),
            (None, Some(user)) => format!(" (signed in as {user})"),
            (None, None) => String::new(),
        };
        (name, org, text(d, &["connection", "id"]).map(|id| link(&format!("connections/salesforce/{id}"))))
    };
    let reason = || {
        text(d, &["reason", "summary"]).map(|s| {
            format!("Reason: {s}{}", text(d, &["reason", "code"]).map(|c| format!(" ({c})")).unwrap_or_default())
        })
    };
    let deployment = || {
        let resource = text(d, &["deployment", "resource_name"]).unwrap_or("a release").to_string();
        let targets = d
            .get("targets")
            .and_then(|t| t.as_object())
            .map(|m| m.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let url = text(d, &["deployment", "id"])
            .map(|id| link(&format!("deployments/{id}")))
            .unwrap_or_else(|| link("deployments"));
        (resource, targets, url)
    };
    match event.kind {
        EventType::ConnectionFailing => {
            let (name, org, url) = connection();
            let mut lines = vec![format!(
                "Renewing the sign-in of the connection \u{201c}{name}\u{201d}{org}, or a call to Salesforce through it, failed; Lightbridge keeps trying."
            )];
            lines.extend(reason());
            lines.extend(text(d, &["detail"]).map(|s| format!("Detail: {s}")));
            Notice {
                title: format!("Connection \u{201c}{name}\u{201d} started failing"),
                lines,
                fix: Some(
                    text(d, &["reason", "fix"])
                        .unwrap_or("If it goes on past the grace period the connection becomes Not available: open it and run Test connection to see why.")
                        .to_string(),
                ),
                link: url.unwrap_or_else(|| link("integrations")),
                link_label: "Open the connection".into(),
            }
        }
        EventType::ConnectionApprovalLimitReached => {
            let username = text(d, &["salesforce_user", "username"]).unwrap_or("a Salesforce user");
            let oldest = text(d, &["next_revoked", "name"]).unwrap_or("the oldest connection");
            let names: Vec<&str> = d
                .get("connections")
                .and_then(|c| c.as_array())
                .into_iter()
                .flatten()
                .filter_map(|c| text(c, &["name"]))
                .collect();
            let limit = d.get("limit").and_then(|l| l.as_u64()).unwrap_or(5);
            Notice {
                title: format!("The next sign-in as {username} will log out \u{201c}{oldest}\u{201d}"),
                lines: vec![
                    format!(
                        "{username} now holds {} approvals for one connected app through these connections: {}.",
                        names.len(),
                        names.join(", ")
                    ),
                    format!(
                        "Salesforce keeps {limit} per user and app: a further sign-in as {username} through it revokes the oldest, \u{201c}{oldest}\u{201d}, without telling anyone."
                    ),
                ],
                fix: Some(format!(
                    "Before anyone signs in as {username} through this app again: remove a connection you no longer need, sign in as another Salesforce user, or use a JWT bearer connection (it holds no approval)."
                )),
                link: text(d, &["next_revoked", "id"])
                    .map(|id| link(&format!("connections/salesforce/{id}")))
                    .unwrap_or_else(|| link("connections/salesforce")),
                link_label: "Open the connection at risk".into(),
            }
        }
        EventType::LoaderOutdated => {
            let system = text(d, &["system", "name"]).unwrap_or("a system");
            let n = d.get("outdated").and_then(|n| n.as_u64()).unwrap_or(0);
            let orgs = if n == 1 { "1 org runs".to_string() } else { format!("{n} orgs run") };
            let mut lines = vec![format!(
                "The loader settings of {system} changed{}. Until the next deployment with the loader reaches them, {orgs} the earlier version.",
                text(d, &["changed_by"]).map(|b| format!(" (by {b})")).unwrap_or_default()
            )];
            let named: Vec<String> = d
                .get("orgs")
                .and_then(|o| o.as_array())
                .into_iter()
                .flatten()
                .take(10)
                .filter_map(|o| {
                    Some(format!("{} ({})", text(o, &["connection"])?, text(o, &["environment"]).unwrap_or("?")))
                })
                .collect();
            if !named.is_empty() {
                lines.push(format!("Orgs: {}{}.", named.join(", "), if n as usize > named.len() { ", …" } else { "" }));
            }
            Notice {
                title: format!("{orgs} an earlier loader of {system}"),
                lines,
                fix: Some("Publish a release to each environment of the system, or deploy the loader from the system's Loader page.".into()),
                link: text(d, &["system", "id"]).map(|id| link(&format!("systems/{id}/loader"))).unwrap_or_else(|| link("systems")),
                link_label: "Open the loader".into(),
            }
        }
        EventType::ConnectionLoggedOut | EventType::ConnectionUnavailable | EventType::ConnectionRecovered => {
            let (name, org, url) = connection();
            let (title, first) = match event.kind {
                EventType::ConnectionLoggedOut => (
                    format!("Connection \u{201c}{name}\u{201d} logged out"),
                    format!(
                        "Salesforce no longer accepts the sign-in of the connection \u{201c}{name}\u{201d}{org}. Publishing to this org stops until a person reconnects it."
                    ),
                ),
                EventType::ConnectionUnavailable => (
                    format!("Connection \u{201c}{name}\u{201d} is not available"),
                    format!(
                        "Lightbridge marked the connection \u{201c}{name}\u{201d}{org} Not available: Salesforce has failed it for longer than the grace period, or refused it for a reason a person must fix."
                    ),
                ),
                _ => (
                    format!("Connection \u{201c}{name}\u{201d} works again"),
                    format!("The connection \u{201c}{name}\u{201d}{org} is Logged in again."),
                ),
            };
            let mut lines = vec![first];
            lines.extend(reason());
            lines.extend(text(d, &["detail"]).map(|s| format!("Detail: {s}")));
            let fix = match event.kind {
                EventType::ConnectionRecovered => None,
                _ => Some(
                    text(d, &["reason", "fix"])
                        .unwrap_or("Open the connection to see its last check, then reconnect it.")
                        .to_string(),
                ),
            };
            Notice {
                title,
                lines,
                fix,
                link: url.unwrap_or_else(|| link("integrations")),
                link_label: "Open the connection".into(),
            }
        }
        EventType::DeploymentSucceeded
        | EventType::DeploymentPartiallyFailed
        | EventType::DeploymentFailed
        | EventType::DeploymentHalted => {
            let (resource, targets, url) = deployment();
            let (title, fix) = match event.kind {
                EventType::DeploymentSucceeded => (format!("{resource} reached every org"), None),
                EventType::DeploymentPartiallyFailed => (
                    format!("{resource} failed in some orgs"),
                    Some(
                        "Open the deployment to read each failed org's error; mend the cause (often the connection), then retry the failed orgs.",
                    ),
                ),
                EventType::DeploymentFailed => (
                    format!("{resource} failed in every org it tried"),
                    Some("Open the deployment to read each org's error; mend the cause, then retry."),
                ),
                _ => (
                    format!("The rollout of {resource} halted"),
                    Some(
                        "A wave failed more than the rollout allows, so later waves wait. Read the failed orgs' errors, then resume or abort the rollout.",
                    ),
                ),
            };
            let mut lines =
                vec![format!("Deployment of {resource}: {}.", text(d, &["deployment", "status"]).unwrap_or("ended"))];
            if !targets.is_empty() {
                lines.push(format!("Orgs: {targets}."));
            }
            lines.extend(text(d, &["deployment", "note"]).map(|n| format!("Note: {n}")));
            Notice { title, lines, fix: fix.map(str::to_string), link: url, link_label: "Open the deployment".into() }
        }
        EventType::DriftFound => {
            let resource = text(d, &["resource_name"]).unwrap_or("a resource");
            let org = text(d, &["connection", "org_name"]).or(text(d, &["connection", "name"])).unwrap_or("an org");
            let mut lines = vec![format!("Someone changed {resource} in {org} since Lightbridge published it.")];
            lines.extend(text(d, &["summary"]).map(str::to_string));
            let (url, label) = match text(d, &["deployment_id"]) {
                Some(id) => (link(&format!("deployments/{id}")), "Open the deployment"),
                None => (link("fleet"), "Open the fleet view"),
            };
            Notice {
                title: format!("{resource} was changed in {org}"),
                lines,
                fix: Some(
                    "Check the change with whoever made it; then publish over it (overwrite) or skip that org.".into(),
                ),
                link: url,
                link_label: label.into(),
            }
        }
        EventType::WebhookDisabled => {
            let url = text(d, &["webhook", "url"]).unwrap_or("an endpoint");
            let mut lines = vec![format!(
                "Lightbridge turned off the webhook endpoint {url}: every delivery to it failed for days."
            )];
            lines.extend(text(d, &["reason"]).map(str::to_string));
            Notice {
                title: format!("Webhook endpoint {url} was turned off"),
                lines,
                fix: Some(
                    "Make the endpoint answer 2xx again, turn it on on its page, and redeliver what failed.".into(),
                ),
                link: text(d, &["webhook", "id"])
                    .map(|id| link(&format!("webhooks/{id}")))
                    .unwrap_or_else(|| link("webhooks")),
                link_label: "Open the endpoint".into(),
            }
        }
        EventType::WebhookTest => Notice {
            title: "A test event".into(),
            lines: vec!["A test event from Lightbridge.".into()],
            fix: None,
            link: link("webhooks"),
            link_label: "Open the webhooks".into(),
        },
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn notice_text(n: &Notice, mail: &ClaimedMail) -> String {
    let event = &mail.event;
    let mut out = format!("{}\n\n", n.title);
    for line in &n.lines {
        out.push_str(line);
        out.push('\n');
    }
    if let Some(fix) = &n.fix {
        out.push_str(&format!("\nWhat to do: {fix}\n"));
    }
    out.push_str(&format!("\n{}: {}\n", n.link_label, n.link));
    out.push_str(&format!(
        "(account {}, {}, {}, event {})\n",
        mail.account_name,
        event.kind.as_str(),
        domain::format_utc(event.at),
        event.id
    ));
    out
}

fn notice_html(n: &Notice, mail: &ClaimedMail, heading: &str) -> String {
    let event = &mail.event;
    let mut out = format!("<{heading} style=\"font-size:18px;margin:0 0 12px\">{}</{heading}>\n", escape(&n.title));
    for line in &n.lines {
        out.push_str(&format!("<p style=\"margin:0 0 8px\">{}</p>\n", escape(line)));
    }
    if let Some(fix) = &n.fix {
        out.push_str(&format!("<p style=\"margin:12px 0 8px\"><strong>What to do:</strong> {}</p>\n", escape(fix)));
    }
    out.push_str(&format!(
        "<p style=\"margin:12px 0\"><a href=\"{}\" style=\"color:#0b5cad\">{}</a></p>\n",
        escape(&n.link),
        escape(&n.link_label)
    ));
    out.push_str(&format!(
        "<p style=\"margin:0 0 8px;color:#555;font-size:12px\">account {} &middot; {} &middot; {} &middot; event {}</p>\n",
        escape(&mail.account_name),
        escape(event.kind.as_str()),
        escape(&domain::format_utc(event.at)),
        escape(event.id.as_str())
    ));
    out
}

fn footer(base: &url::Url) -> (String, String) {
    let settings = base.join("account/notifications").map(|u| u.to_string()).unwrap_or_else(|_| base.to_string());
    (
        format!("\n--\nYou receive this because of your notification settings in Lightbridge: {settings}\n"),
        format!(
            "<hr style=\"border:0;border-top:1px solid #ddd;margin:16px 0\">\n<p style=\"color:#555;font-size:12px\">You receive this because of your <a href=\"{}\">notification settings</a> in Lightbridge.</p>\n",
            escape(&settings)
        ),
    )
}

fn page(body: &str, title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family:system-ui,sans-serif;color:#1a1a1a;max-width:640px\">\n{body}</body>\n</html>\n",
        escape(title)
    )
}

fn headers(kind: &str) -> Vec<(&'static str, String)> {
    vec![
        // RFC 3834: sent by a program, so auto-responders stay quiet.
        ("Auto-Submitted", "auto-generated".to_string()),
        ("X-Lightbridge-Event", kind.to_string()),
    ]
}

fn single(base: &url::Url, mail: &ClaimedMail) -> Letter {
    let n = notice(base, &mail.event);
    let (text_footer, html_footer) = footer(base);
    Letter {
        to: mail.to.clone(),
        to_name: mail.name.clone(),
        subject: format!("Lightbridge ({}): {}", mail.account_name, n.title),
        text: format!("{}{text_footer}", notice_text(&n, mail)),
        html: page(&format!("{}{html_footer}", notice_html(&n, mail, "h1")), &n.title),
        id: format!("{}.{}", mail.event.id, mail.user_id),
        headers: headers(mail.event.kind.as_str()),
    }
}

fn digest(base: &url::Url, mails: &[ClaimedMail]) -> Letter {
    let first = &mails[0];
    let count = mails.len();
    let title = format!("Lightbridge daily digest: {count} event{}", if count == 1 { "" } else { "s" });
    let mut text = format!("{title}\n\n");
    let mut html = format!("<h1 style=\"font-size:20px\">{}</h1>\n", escape(&title));
    for (i, mail) in mails.iter().enumerate() {
        let n = notice(base, &mail.event);
        text.push_str(&format!("{}. {}", i + 1, notice_text(&n, mail)));
        text.push('\n');
        html.push_str("<section style=\"margin:0 0 20px\">\n");
        html.push_str(&notice_html(&n, mail, "h2"));
        html.push_str("</section>\n");
    }
    let (text_footer, html_footer) = footer(base);
    Letter {
        to: first.to.clone(),
        to_name: first.name.clone(),
        subject: title.clone(),
        text: format!("{text}{text_footer}"),
        html: page(&format!("{html}{html_footer}"), &title),
        // One digest, one id: the same on every try (its first event stays first).
        id: format!("digest.{}.{}", first.user_id, first.event.id),
        headers: headers("digest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(kind: EventType, data: serde_json::Value, digest: bool) -> ClaimedMail {
        let account = domain::AccountId::generate();
        ClaimedMail {
            id: "x".into(),
            lease: "l".into(),
            event: Event::new(&account, kind, 1_800_000_000_000, data),
            account_name: "Acme".into(),
            user_id: domain::UserId::generate(),
            to: "ada@example.com".into(),
            name: "Ada <Admin>".into(),
            digest,
            attempts: 0,
        }
    }

    #[test]
    fn a_logged_out_mail_says_the_reason_the_fix_and_links_to_the_connection() {
        let base: url::Url = "https://lightbridge.example.com/".parse().expect("url");
        let data = serde_json::json!({
            "connection": {"id": "con_1", "name": "Prod <EU>", "org_name": "Acme", "username": "a@acme.test"},
            "reason": {"code": "user_inactive", "summary": "The Salesforce user is deactivated", "fix": "Reactivate the user, then Reconnect."},
        });
        let mail = claimed(EventType::ConnectionLoggedOut, data, false);
        let letters = letters(&base, vec![mail]);
        let (letter, _) = &letters[0];
        assert_eq!(letter.subject, "Lightbridge (Acme): Connection \u{201c}Prod <EU>\u{201d} logged out");
        assert!(letter.text.contains("Reactivate the user, then Reconnect."), "{}", letter.text);
        assert!(
            letter.text.contains("https://lightbridge.example.com/connections/salesforce/con_1"),
            "{}",
            letter.text
        );
        assert!(
            letter.html.contains("href=\"https://lightbridge.example.com/connections/salesforce/con_1\""),
            "{}",
            letter.html
        );
        // Names are escaped in the HTML body, never markup.
        assert!(letter.html.contains("Prod &lt;EU&gt;") && !letter.html.contains("Prod <EU>"), "{}", letter.html);
        assert!(letter.headers.iter().any(|(k, v)| *k == "Auto-Submitted" && v == "auto-generated"));
    }

    #[test]
    fn a_digest_lists_each_event_in_one_mail() {
        let base: url::Url = "https://lightbridge.example.com/".parse().expect("url");
        let a = claimed(
            EventType::DeploymentFailed,
            serde_json::json!({"deployment": {"id": "dep_1", "resource_name": "app_js"}}),
            true,
        );
        let mut b = claimed(
            EventType::DriftFound,
            serde_json::json!({"resource_name": "app_js", "deployment_id": "dep_2"}),
            true,
        );
        b.user_id = a.user_id.clone();
        let letters = letters(&base, vec![a, b]);
        assert_eq!(letters.len(), 1);
        let (letter, mails) = &letters[0];
        assert_eq!(mails.len(), 2);
        assert_eq!(letter.subject, "Lightbridge daily digest: 2 events");
        assert!(
            letter.text.contains("deployments/dep_1") && letter.text.contains("deployments/dep_2"),
            "{}",
            letter.text
        );
    }

    #[test]
    fn retries_back_off_from_a_minute_to_an_hour() {
        let config = MailerConfig::default();
        assert_eq!(backoff(&config, 1), Duration::from_secs(60));
        assert_eq!(backoff(&config, 2), Duration::from_secs(240));
        assert_eq!(backoff(&config, 9), Duration::from_secs(3600));
    }
}
