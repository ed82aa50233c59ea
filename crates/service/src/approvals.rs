//! The five-approval trap (issue #14): Salesforce keeps at most five OAuth grants (approvals)
//! per user and connected app, and a sixth sign-in revokes the oldest — silently, to whoever
//! held it. Lightbridge knows which Salesforce user and app each OAuth connection uses, so it
//! warns before a sign-in that would cost one of them ([`before_sign_in`]), and right after a
//! sign-in marks the connection whose grant Salesforce just revoked ([`after_grant`]; counted,
//! then confirmed by one refresh of the candidate), instead of letting it turn up later as a
//! mystery Logged out.
//!
//! What counts (docs/salesforce-behaviour.md): each web-server sign-in that issues a refresh
//! token; rotation keeps the approval; JWT bearer and client credentials are none. A grant
//! Salesforce already ended (its refresh token refused, or revoked by an earlier sixth sign-in)
//! no longer counts. Approvals held outside Lightbridge (the same user and app elsewhere) are
//! invisible here: the warning is a lower bound, and says so.

use domain::{Connection, ConnectionStatus, Millis, StatusReason};
use serde::Serialize;
use store::{ConnectionStore, Observation};

use crate::connections::label;
use crate::{Actor, Service, ServiceError};

/// Approvals Salesforce keeps per user and connected app.
pub const LIMIT: usize = 5;

/// A connection holding one approval.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Holder {
    pub id: String,
    pub name: String,
    /// When its grant was given (milliseconds since the epoch).
    pub granted_at: Option<i64>,
}

/// One Salesforce user's approvals for the app, as far as Lightbridge holds them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserApprovals {
    pub salesforce_user_id: String,
    pub salesforce_username: String,
    /// Oldest grant first.
    pub connections: Vec<Holder>,
    /// The connection a sign-in as this user would cost (its grant is the oldest of five).
    pub would_revoke: Option<Holder>,
}

/// The users a sign-in through one app could cost a connection.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalsView {
    pub limit: usize,
    /// Users with five live grants here (for a reconnect: only its own user).
    pub users: Vec<UserApprovals>,
}

impl ApprovalsView {
    /// The warning in words, when a sign-in would cost a connection.
    pub fn warning(&self) -> Option<String> {
        let at_risk: Vec<String> = self
            .users
            .iter()
            .filter_map(|u| {
                u.would_revoke.as_ref().map(|h| format!("signing in as {} revokes “{}”", u.salesforce_username, h.name))
            })
            .collect();
        (!at_risk.is_empty()).then(|| {
            format!(
                "Salesforce keeps at most {LIMIT} sign-ins per user and connected app, and a new one revokes the oldest: {}. Sign in as another Salesforce user, or use JWT (not an approval).",
                at_risk.join("; ")
            )
        })
    }
}

/// Whether a connection's grant still counts as one of its user's approvals.
fn holds_approval(c: &Connection) -> bool {
    !(c.status == ConnectionStatus::LoggedOut
        && matches!(
            c.status_reason,
            Some(StatusReason::RefreshTokenInvalid | StatusReason::ApprovalLimit | StatusReason::NoCredentials)
        ))
}

fn holder(c: &Connection) -> Holder {
    Holder { id: c.id.to_string(), name: label(c), granted_at: c.granted_at }
}

/// The live grants through `consumer_key`, by Salesforce user, oldest first.
async fn grants_by_user(
    svc: &Service,
    account: &domain::AccountId,
    consumer_key: &str,
) -> Result<Vec<(String, String, Vec<Connection>)>, ServiceError> {
    let mut users: Vec<(String, String, Vec<Connection>)> = Vec::new();
    for c in svc.store.oauth_grants(account, consumer_key).await?.into_iter().filter(holds_approval) {
        let Some(org) = c.org.clone() else { continue };
        match users.iter_mut().find(|(id, _, _)| *id == org.user_id) {
            Some((_, _, list)) => list.push(c),
            None => users.push((org.user_id, org.username, vec![c])),
        }
    }
    Ok(users)
}

/// What a sign-in through `consumer_key` would cost: for a new connection, every user with five
/// live grants here; for a reconnect of `replacing`, its user only (its own grant is replaced,
/// so only another connection's loss is a warning).
pub async fn before_sign_in(
    svc: &Service,
    actor: &Actor,
    consumer_key: &str,
    replacing: Option<&str>,
) -> Result<ApprovalsView, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let replaced = match replacing {
        Some(id) => Some(svc.store.get(&account, &crate::parse_id(id)?).await?),
        None => None,
    };
    let only_user = replaced.as_ref().and_then(|c| c.org.as_ref().map(|o| o.user_id.clone()));
    let users = grants_by_user(svc, &account, consumer_key.trim())
        .await?
        .into_iter()
        .filter(|(id, _, _)| only_user.as_ref().is_none_or(|u| u == id))
        .filter(|(_, _, list)| list.len() >= LIMIT)
        .map(|(user_id, username, list)| {
            let oldest = &list[0];
            let harmless = replaced.as_ref().is_some_and(|r| r.id == oldest.id);
            UserApprovals {
                salesforce_user_id: user_id,
                salesforce_username: username,
                would_revoke: (!harmless).then(|| holder(oldest)),
                connections: list.iter().map(holder).collect(),
            }
        })
        .collect();
    Ok(ApprovalsView { limit: LIMIT, users })
}

/// When `c`'s grant was given, if Salesforce still counts it as an approval.
pub fn live_grant_time(c: &Connection) -> Option<Millis> {
    if holds_approval(c) { c.granted_at } else { None }
}

/// [`after_grant`], its failure logged rather than failing the sign-in that was saved.
pub async fn mark_revoked(svc: &Service, connection: &Connection, replaced_granted_at: Option<Millis>) {
    match after_grant(svc, connection, replaced_granted_at).await {
        Ok(marked) if !marked.is_empty() => {
            tracing::info!(connection = %connection.id, revoked = ?marked, "a sixth sign-in revoked the oldest approvals")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(connection = %connection.id, error = %e, "could not mark connections a sixth sign-in revoked")
        }
    }
}

/// After a sign-in's grant is saved on `connection`: marks the connections whose grants it
/// cost (the oldest beyond five of the same user and app), counting, for a reconnect, the grant
/// it replaced (`replaced_granted_at`: Salesforce counted it until Lightbridge revoked it).
pub async fn after_grant(
    svc: &Service,
    connection: &Connection,
    replaced_granted_at: Option<Millis>,
) -> Result<Vec<String>, ServiceError> {
    let (Some(org), domain::AuthMethod::OAuth { consumer_key }) = (&connection.org, &connection.auth) else {
        return Ok(Vec::new());
    };
    let users = grants_by_user(svc, &connection.account_id, consumer_key).await?;
    let Some((_, username, grants)) = users.into_iter().find(|(id, _, _)| *id == org.user_id) else {
        return Ok(Vec::new());
    };
    // The other approvals Salesforce saw at the sign-in, oldest first (as the store orders
    // them): the live grants, and the one this sign-in replaced (if it was still live).
    let mut others: Vec<(Millis, Option<&Connection>)> = grants
        .iter()
        .filter(|c| c.id != connection.id)
        .map(|c| (c.granted_at.unwrap_or(c.created_at), Some(c)))
        .collect();
    if let Some(at) = replaced_granted_at {
        others.push((at, None));
        others.sort_by_key(|(at, _)| *at);
    }
    let excess = (others.len() + 1).saturating_sub(LIMIT);
    let mut marked = Vec::new();
    for (_, candidate) in others.into_iter().take(excess) {
        // The replaced grant was the oldest: Salesforce's revoke cost nothing else.
        let Some(candidate) = candidate else { continue };
        // Counting is not proof (a grant may have ended unseen, or be held elsewhere): one
        // refresh asks Salesforce. Only a refused one is the sixth sign-in's victim.
        let version = svc.store.secrets(&candidate.id).await?.token_version;
        match svc.keeper.renew(candidate, version).await {
            Err(::connections::KeeperError::LoggedOut(_)) => {}
            Err(::connections::KeeperError::Store(e)) => return Err(e.into()),
            _ => continue,
        }
        let detail = format!(
            "{username} signed in through this connected app for “{}”, a sixth sign-in: Salesforce revoked this, the oldest",
            label(connection)
        );
        let dead = Observation::Dead { reason: StatusReason::ApprovalLimit, detail };
        svc.store.observe(&candidate.id, &dead, Some(version), svc.now_ms()).await?;
        metrics::counter!("lightbridge_connection_status_changes_total", "to" => "logged_out", "reason" => "approval_limit")
            .increment(1);
        marked.push(candidate.id.to_string());
    }
    // Announced when this sign-in brought the user to the limit (a new grant, not one replacing
    // its own), or cost a connection: not again for each reconnect at the limit.
    if (replaced_granted_at.is_none() || !marked.is_empty())
        && let Err(e) = warn_when_full(svc, connection, consumer_key, &org.user_id).await
    {
        tracing::error!(connection = %connection.id, error = %e, "could not record the five-approval warning");
    }
    Ok(marked)
}

/// `connection.approval_limit_reached` (#18) when, after a sign-in, the user holds as many live
/// grants for the app as Salesforce keeps: the next sign-in as them through it costs the oldest
/// connection.
async fn warn_when_full(
    svc: &Service,
    connection: &Connection,
    consumer_key: &str,
    user_id: &str,
) -> Result<(), ServiceError> {
    use store::NotificationStore;
    let users = grants_by_user(svc, &connection.account_id, consumer_key).await?;
    let Some((user_id, username, grants)) = users.into_iter().find(|(id, _, _)| id == user_id) else { return Ok(()) };
    if grants.len() < LIMIT {
        return Ok(());
    }
    let data = serde_json::json!({
        "salesforce_user": {"id": user_id, "username": username},
        "limit": LIMIT,
        "connections": grants.iter().map(|c| serde_json::json!({
            "id": c.id.as_str(),
            "name": label(c),
            "granted_at": c.granted_at.map(domain::format_rfc3339),
        })).collect::<Vec<_>>(),
        "next_revoked": {"id": grants[0].id.as_str(), "name": label(&grants[0])},
        "signed_in_for": {"id": connection.id.as_str(), "name": label(connection)},
    });
    let event = domain::Event::new(
        &connection.account_id,
        domain::EventType::ConnectionApprovalLimitReached,
        svc.now_ms(),
        data,
    );
    svc.store.record_event(&event).await?;
    Ok(())
}
