//! A connection's activity (#16): its own timeline — checks, status changes (renewals that
//! failed, outages, recoveries), edits, reconnects, publishes with their outcome — merged from
//! the audit log and the deployment history, with its token's age and the next keep-alive,
//! like the OAuth-usage pages admins know from Salesforce's Setup.

use domain::{AuthMethod, Connection, ConnectionStatus, DeploymentStatus, Millis, TargetStatus};
use store::{AuditQuery, AuditStore, CatalogStore, ConnectionStore, DeploymentStore};

use crate::connections::parse_id;
use crate::{Actor, Service, ServiceError};

/// Audit entries and publishes read for the timeline (each, at most).
const MOST_ENTRIES: u32 = 50;
const MOST_PUBLISHES: u32 = 20;

/// How an event ended, for its mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Good,
    Bad,
    Neutral,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Good => "good",
            Outcome::Bad => "bad",
            Outcome::Neutral => "neutral",
        }
    }
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: Millis,
    pub title: String,
    pub detail: Option<String>,
    /// Who did it: a person's email, `lightbridge` for the service itself.
    pub by: String,
    pub outcome: Outcome,
    /// A page with more (a deployment's).
    pub link: Option<String>,
}

/// The connection's tokens, as a person reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// When the sign-in that gave the refresh token happened (OAuth).
    pub granted_at: Option<Millis>,
    /// When the tokens were last renewed.
    pub renewed_at: Option<Millis>,
    /// When the keep-alive renews them next (OAuth and not Logged out, keep-alive on).
    pub next_keep_alive: Option<Millis>,
    /// When the connection's health was last checked.
    pub checked_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct Activity {
    pub tokens: Tokens,
    /// Newest first.
    pub events: Vec<Event>,
}

/// The activity of one connection of the actor's account.
pub async fn activity(svc: &Service, actor: &Actor, id: &str) -> Result<Activity, ServiceError> {
    let account = actor.account()?.clone();
    let connection = svc.store.get(&account, &parse_id(id)?).await?;
    let renewed_at = svc.store.renewed_at(&account, &connection.id).await?;
    let tokens = tokens(svc, &connection, renewed_at);
    let mut events = Vec::new();
    // Details name systems and environments by id (the audit log keeps what was true then);
    // the timeline shows their names where they still exist.
    let mut names: Vec<(String, String)> = Vec::new();
    for system in svc.store.systems(&account).await? {
        names.push((system.id.to_string(), system.name));
    }
    for environment in svc.store.environments(&account).await? {
        names.push((environment.id.to_string(), environment.name));
    }
    let named = |detail: Option<String>| {
        detail.map(|mut d| {
            for (id, name) in &names {
                d = d.replace(id.as_str(), name);
            }
            d
        })
    };
    let query = AuditQuery { target_id: Some(connection.id.to_string()), limit: MOST_ENTRIES, ..Default::default() };
    for (_, entry) in svc.store.audit(&account, &query).await? {
        let (title, outcome) = describe_entry(&entry.action, entry.detail.as_deref());
        events.push(Event { at: entry.at, title, detail: named(entry.detail), by: entry.actor, outcome, link: None });
    }
    for (deployment, _) in svc.store.deployments(&account, None, None, Some(&connection.id), MOST_PUBLISHES).await? {
        let (_, targets) = svc.store.deployment(&account, &deployment.id).await?;
        let Some(target) = targets.into_iter().find(|t| t.connection_id == connection.id) else { continue };
        let (what, outcome) = match target.status {
            TargetStatus::Succeeded => {
                (format!("{} in the org", target.action.as_deref().unwrap_or("published")), Outcome::Good)
            }
            TargetStatus::Unchanged => ("unchanged: the org already held it".to_string(), Outcome::Good),
            TargetStatus::Failed => ("failed".to_string(), Outcome::Bad),
            TargetStatus::Pending | TargetStatus::Running if deployment.status == DeploymentStatus::Running => {
                ("in progress".to_string(), Outcome::Neutral)
            }
            TargetStatus::Pending | TargetStatus::Running => ("not finished".to_string(), Outcome::Bad),
            TargetStatus::Held => {
                ("held: its wave has not started, or the rollout is paused".to_string(), Outcome::Neutral)
            }
            TargetStatus::Skipped => ("skipped".to_string(), Outcome::Neutral),
            TargetStatus::Drifted => ("held as drifted: the resource was changed in the org".to_string(), Outcome::Bad),
        };
        let mut detail = target.error.clone();
        if let Some(loader) = &target.loader {
            detail = Some(detail.map_or(format!("loader {loader}"), |d| format!("{d}; loader {loader}")));
        }
        events.push(Event {
            at: target.updated_at.max(deployment.created_at),
            title: format!("Publish of {}: {what}", deployment.resource_name.as_str()),
            detail,
            by: deployment.created_by.clone(),
            outcome,
            link: Some(format!("/deployments/{}", deployment.id)),
        });
    }
    events.sort_by_key(|e| std::cmp::Reverse(e.at));
    Ok(Activity { tokens, events })
}

fn tokens(svc: &Service, c: &Connection, renewed_at: Option<Millis>) -> Tokens {
    let oauth = matches!(c.auth, AuthMethod::OAuth { .. });
    let keep_alive = svc.keep_alive.as_millis() as i64;
    let next_keep_alive = (oauth && keep_alive > 0 && c.status != ConnectionStatus::LoggedOut)
        .then(|| renewed_at.unwrap_or(c.created_at) + keep_alive);
    Tokens { granted_at: c.granted_at.filter(|_| oauth), renewed_at, next_keep_alive, checked_at: c.status_checked_at }
}

/// An audit entry's action in words, and how it ended.
fn describe_entry(action: &str, detail: Option<&str>) -> (String, Outcome) {
    let status_of = |d: Option<&str>| match d {
        Some(d) if d.contains("Logged out") || d.contains("Not available") => Outcome::Bad,
        Some(d) if d.contains("Logged in") => Outcome::Good,
        _ => Outcome::Neutral,
    };
    match action {
        "connection.created" => ("Created".into(), Outcome::Good),
        "connection.edited" => ("Edited".into(), Outcome::Neutral),
        "connection.reconnected" => ("Reconnected: new tokens".into(), Outcome::Good),
        "connection.reconnect_refused" => ("Reconnect refused".into(), Outcome::Bad),
        "connection.oauth_failed" => ("Salesforce sign-in failed".into(), Outcome::Bad),
        "connection.checked" => ("Checked now".into(), status_of(detail)),
        "connection.status_changed" => {
            // The detail reads `Logged in → Logged out: …`: how it ended is what it became.
            let became = detail.and_then(|d| d.split('→').nth(1));
            ("Status changed".into(), status_of(became.or(detail)))
        }
        "connection.instance_moved" => ("Moved to another instance (My Domain)".into(), Outcome::Neutral),
        "connection.bound" => ("Bound to a system's environment".into(), Outcome::Neutral),
        "connection.unbound" => ("Unbound from a system's environment".into(), Outcome::Neutral),
        "connection.tested" => ("Tested".into(), Outcome::Neutral),
        other => (other.strip_prefix("connection.").unwrap_or(other).replace('_', " "), Outcome::Neutral),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_change_ends_as_what_it_became() {
        let (_, outcome) = describe_entry("connection.status_changed", Some("Logged out → Logged in: renewed"));
        assert_eq!(outcome, Outcome::Good);
        let (_, outcome) = describe_entry("connection.status_changed", Some("Logged in → Logged out: token revoked"));
        assert_eq!(outcome, Outcome::Bad);
        let (title, outcome) = describe_entry("connection.checked", Some("Not available: Salesforce did not answer"));
        assert_eq!((title.as_str(), outcome), ("Checked now", Outcome::Bad));
    }
}
