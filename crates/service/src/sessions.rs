//! Browser sessions: password sign-in (argon2id) and sign-out. The session id goes to the
//! browser in a cookie; the store keeps only its SHA-256, with the session's CSRF token.
//!
//! Sign-in is throttled (issue #13), in the database so every instance counts alike. Each
//! attempt is taken from its keys before the password is checked (the store counts it and sets
//! the lock a failure would set, in one compare-and-set), so a burst of concurrent guesses is
//! refused from the moment the free ones are used up; a success gives its attempts back.
//! - per person and client address (an IPv6 client by its /64): 3 free failures, then a lock of
//!   1 s doubling with each further failure, at most 15 minutes;
//! - per person, from anywhere: 10 free failures, then a lock of 1 minute doubling, at most an
//!   hour — a guess spread over many addresses slows to a crawl too;
//! - a browser that signed the user in within 90 days (its `lb_device` cookie) is throttled on
//!   its own key instead of those two, so neither an attacker elsewhere nor one behind the same
//!   NAT can lock the real user out of it; a password change forgets the user's browsers;
//! - a locked attempt is answered at once, with the seconds to wait; every checked failure is in
//!   the account's audit log. Keys are SHA-256 digests; a person is keyed by their user id (so
//!   spellings of their email share one count), an unknown email by its trimmed lowercase form.

use domain::User;
use store::{AccessStore, Attempt, NewSession, Throttle};
use vault::Password;

use crate::audit::record;
use crate::secrets::{hash_token, random_token};
use crate::{Actor, Service, ServiceError};

/// Sessions last 12 hours.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

/// A session just opened: the user, its id (for the cookie, never stored), its CSRF token, and
/// the browser's device token to keep in its `lb_device` cookie (the one it sent, or a new one).
pub struct Opened {
    pub user: User,
    pub id: String,
    pub csrf: String,
    pub device: String,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").field("user", &self.user.email).finish_non_exhaustive()
    }
}

/// Where a sign-in comes from: the client's address, the device token its browser sent, and
/// its `User-Agent` (shown in the person's list of sessions).
#[derive(Default, Clone)]
pub struct Origin {
    pub remote_addr: Option<String>,
    pub device: Option<String>,
    pub user_agent: Option<String>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin").field("remote_addr", &self.remote_addr).finish_non_exhaustive()
    }
}

/// Per person and address; also the rule for checking a signed-in person's current password.
pub(crate) const PAIR: Throttle =
    Throttle { free: 3, first_lock_ms: 1_000, max_lock_ms: 15 * 60 * 1000, forget_after_ms: 24 * 60 * 60 * 1000 };
/// Per person from anywhere (browsers the user signed in with before are exempt).
const PERSON: Throttle =
    Throttle { free: 10, first_lock_ms: 60 * 1000, max_lock_ms: 60 * 60 * 1000, forget_after_ms: 24 * 60 * 60 * 1000 };
/// A remembered browser's own key: the per-address rule.
const DEVICE: Throttle = PAIR;
/// How long a browser stays remembered (its cookie's lifetime).
const DEVICE_KEPT_MS: i64 = 90 * 24 * 60 * 60 * 1000;
/// The longest email looked at; longer is no one's.
const MAX_EMAIL_LEN: usize = 254;
/// How much of a browser's `User-Agent` a session keeps.
const MAX_USER_AGENT_CHARS: usize = 200;

/// The client's address as throttled: IPv4 as it is, IPv6 by its /64 (one customer's block).
fn address_key(remote: Option<&str>) -> String {
    match remote.and_then(|r| r.parse::<std::net::IpAddr>().ok()).map(|ip| ip.to_canonical()) {
        Some(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(ip) => ip.to_string(),
        None => remote.unwrap_or("-").to_string(),
    }
}

/// What a right password leads to.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in.
    Opened(Opened),
    /// The person has two-factor sign-in on: their code is asked for next, with this challenge
    /// (a secret for the browser's form; it works for 10 minutes and once).
    SecondFactor { challenge: String },
}

/// Checks the password (argon2id; a missing user costs the same time as a wrong password),
/// within the throttle above, and opens a session — or, for a person with two-factor sign-in
/// on, checks `code` (a code from their app or a recovery code) too, or asks for it.
pub async fn open_session(
    svc: &Service,
    email: &str,
    password: Password,
    code: Option<&str>,
    origin: Origin,
) -> Result<SignIn, ServiceError> {
    let now = svc.now_ms();
    if email.len() > MAX_EMAIL_LEN {
        return Err(ServiceError::Unauthorized);
    }
    let found = match svc.store.credentials(email).await {
        Ok(found) => Some(found),
        Err(store::StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let person = match &found {
        Some((user, _)) => format!("user:{}", user.id),
        None => format!("email:{}", email.trim().to_lowercase()),
    };
    // A browser that signed this user in lately is throttled on its own key only.
    let device = match (&found, origin.device.as_deref()) {
        (Some((user, _)), Some(device))
            if svc.store.device_known(&hash_token(device), &user.id, now - DEVICE_KEPT_MS).await? =>
        {
            Some(device.to_string())
        }
        _ => None,
    };
    let keys: Vec<(String, Throttle, bool)> = match &device {
        Some(device) => vec![(hash_token(&format!("device:{device}")), DEVICE, true)],
        None => vec![
            (hash_token(&format!("pair:{person}|{}", address_key(origin.remote_addr.as_deref()))), PAIR, true),
            (hash_token(&format!("person:{person}")), PERSON, false),
        ],
    };
    let mut taken = Vec::new();
    for (key, throttle, clear) in &keys {
        match svc.store.take_sign_in_attempt(key, now, *throttle).await? {
            Attempt::Allowed => taken.push((key.clone(), *clear)),
            Attempt::Locked { until } => {
                // Give back what this refused attempt took from the other keys.
                for (key, _) in &taken {
                    svc.store.forgive_sign_in(key, false).await?;
                }
                return Err(locked(until, now));
            }
        }
    }
    let stored = found.as_ref().and_then(|(_, hash)| hash.clone());
    let stored_password = stored.clone();
    // A missing user or password costs the same argon2 time as a wrong password.
    let verified = svc
        .cpu
        .run(move || match &stored {
            Some(hash) => crate::password::verify(&password, hash),
            None => {
                crate::password::verify_dummy(&password);
                false
            }
        })
        .await?;
    let user = match found {
        Some((user, _)) if verified => user,
        found => {
            // The attempt stays counted (and any lock it set stands).
            if let Some((user, _)) = &found {
                let detail =
                    if device.is_some() { "wrong password, from a remembered browser" } else { "wrong password" };
                record_failure(svc, user, &origin, now, detail.to_string()).await;
            }
            tracing::info!(email = ?email, "failed sign-in");
            return Err(ServiceError::Unauthorized);
        }
    };
    // This browser's or address's count starts again; the person's gives back only this attempt
    // (it fades after a day), so the real user signing in does not hand a guess fresh tries.
    for (key, clear) in &taken {
        svc.store.forgive_sign_in(key, *clear).await?;
    }
    // An account that signs in only through its provider refuses passwords (but its break-glass owner's).
    if crate::sso::password_refused(svc, &user).await? {
        return Err(ServiceError::SsoRequired);
    }
    if crate::two_factor::asked_of(svc, &user).await? {
        return match code {
            Some(code) => {
                if !crate::two_factor::check_code(svc, &user, code, true).await? {
                    return Err(wrong_code());
                }
                Ok(SignIn::Opened(start(svc, user, device, origin, How::SecondFactor).await?))
            }
            None => {
                let challenge = random_token()?;
                // The password it was given with: a change meanwhile voids the challenge.
                let password = hash_token(stored_password.as_deref().unwrap_or_default());
                let payload = serde_json::json!({
                    "user": user.id.as_str(), "email": user.email, "device": device, "password": password,
                });
                let expires_at = now + SECOND_FACTOR_WAIT_MS;
                svc.store
                    .save_pending_sign_in(&hash_token(&challenge), SECOND_FACTOR, &payload.to_string(), expires_at)
                    .await?;
                Ok(SignIn::SecondFactor { challenge })
            }
        };
    }
    Ok(SignIn::Opened(start(svc, user, device, origin, How::Password).await?))
}

/// What a second-factor challenge is stored as.
const SECOND_FACTOR: &str = "second_factor";
/// How long the code may take after the password.
const SECOND_FACTOR_WAIT_MS: i64 = 10 * 60 * 1000;

fn wrong_code() -> ServiceError {
    ServiceError::invalid(
        "code",
        "that code is wrong or was used already: type the newest code your app shows, or a recovery code",
    )
}

/// The second step of a sign-in: the code from the person's app (or a recovery code) for the
/// challenge [`open_session`] gave. A wrong code leaves the challenge for another try (within
/// the per-person throttle); an expired or used one is `Unauthorized` (sign in again).
pub async fn complete_sign_in(
    svc: &Service,
    challenge: &str,
    code: &str,
    origin: Origin,
) -> Result<Opened, ServiceError> {
    #[derive(serde::Deserialize)]
    struct Pending {
        user: String,
        email: String,
        device: Option<String>,
        password: String,
    }
    let id_hash = hash_token(challenge);
    let found = match svc.store.pending_sign_in(&id_hash, SECOND_FACTOR, svc.now_ms()).await {
        Ok(found) => found,
        Err(store::StoreError::NotFound) => return Err(ServiceError::Unauthorized),
        Err(e) => return Err(e.into()),
    };
    let pending: Pending =
        serde_json::from_str(&found).map_err(|e| ServiceError::internal("pending sign-in does not parse", e))?;
    let (user, stored) = svc.store.credentials(&pending.email).await?;
    // The same person, with the same password, still allowed to use it.
    if user.id.as_str() != pending.user || hash_token(stored.as_deref().unwrap_or_default()) != pending.password {
        return Err(ServiceError::Unauthorized);
    }
    if crate::sso::password_refused(svc, &user).await? {
        return Err(ServiceError::SsoRequired);
    }
    if !crate::two_factor::check_code(svc, &user, code, true).await? {
        return Err(wrong_code());
    }
    // Taken only now, and only once: two tabs sending codes cannot both sign in.
    match svc.store.take_pending_sign_in(&id_hash, SECOND_FACTOR, svc.now_ms()).await {
        Ok(_) => {}
        Err(store::StoreError::NotFound) => return Err(ServiceError::Unauthorized),
        Err(e) => return Err(e.into()),
    }
    start(svc, user, pending.device, origin, How::SecondFactor).await
}

/// How a sign-in was completed (in the audit log; a single sign-on session is not sent to set
/// up Lightbridge's own second factor: the provider answers for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    Password,
    SecondFactor,
    SingleSignOn,
}

/// Opens the session of a person whose sign-in is complete, and remembers their browser.
pub(crate) async fn start(
    svc: &Service,
    user: User,
    device: Option<String>,
    origin: Origin,
    how: How,
) -> Result<Opened, ServiceError> {
    let now = svc.now_ms();
    let device = match device {
        Some(device) => device,
        None => random_token()?,
    };
    svc.store.remember_device(&hash_token(&device), &user.id, now).await?;
    let id = random_token()?;
    let csrf = random_token()?;
    let handle = format!("ses_{}", &hash_token(&random_token()?)[..16]);
    let user_agent = origin.user_agent.as_deref().map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect::<String>());
    svc.store
        .create_session(&NewSession {
            id_hash: hash_token(&id),
            handle,
            user: user.id.clone(),
            csrf_token: csrf.clone(),
            created_at: now,
            expires_at: now + SESSION_TTL_MS,
            remote_addr: origin.remote_addr.clone(),
            user_agent,
            via_sso: how == How::SingleSignOn,
            account: None,
        })
        .await?;
    let actor = Actor::new(user.clone(), domain::ActorKind::User, origin.remote_addr);
    let detail = match how {
        How::Password => None,
        How::SecondFactor => Some("with a second factor".to_string()),
        How::SingleSignOn => Some("through single sign-on".to_string()),
    };
    record(svc, actor.audit(now, "session.signed_in", "user", Some(user.id.as_str()), Some(&user.email), detail)).await;
    Ok(Opened { user, id, csrf, device })
}

/// A refused attempt, with the whole seconds until `until` (at least one).
fn locked(until: i64, now: i64) -> ServiceError {
    ServiceError::TooManyAttempts { retry_after_secs: u64::try_from((until - now + 999) / 1000).unwrap_or(1).max(1) }
}

/// Takes an attempt on one throttle key: refused with the seconds to wait while it is locked.
pub(crate) async fn take_attempt(svc: &Service, key: &str, throttle: Throttle) -> Result<(), ServiceError> {
    let now = svc.now_ms();
    match svc.store.take_sign_in_attempt(key, now, throttle).await? {
        Attempt::Allowed => Ok(()),
        Attempt::Locked { until } => Err(locked(until, now)),
    }
}

/// The throttle key of a signed-in person checking their own password (before changing it or
/// their sign-in): one count, however the check is reached.
pub(crate) fn own_password_key(user: &domain::UserId) -> String {
    hash_token(&format!("password-check:{user}"))
}

/// A failed sign-in in the user's account's audit log.
pub(crate) async fn record_failure(svc: &Service, user: &User, origin: &Origin, now: i64, detail: String) {
    let actor = Actor::new(user.clone(), domain::ActorKind::User, origin.remote_addr.clone());
    let entry =
        actor.audit(now, "session.sign_in_failed", "user", Some(user.id.as_str()), Some(&user.email), Some(detail));
    record(svc, entry).await;
}

/// The live session: its user, CSRF token, and whether they must set up two-factor sign-in.
pub async fn session(svc: &Service, id: &str) -> Result<store::LiveSession, ServiceError> {
    svc.store.session(&hash_token(id), svc.now_ms()).await.map_err(|e| match e {
        store::StoreError::NotFound => ServiceError::Unauthorized,
        other => other.into(),
    })
}

/// Ends a session (signing out).
pub async fn close_session(svc: &Service, id: &str) -> Result<(), ServiceError> {
    Ok(svc.store.delete_session(&hash_token(id)).await?)
}

/// One of the person's live browser sessions, as they see it in their list.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionSummary {
    /// Names the session when ending it (`ses_…`); the session's id itself is never shown.
    pub handle: String,
    /// Whether this is the session the request came with.
    pub current: bool,
    pub created_at: i64,
    pub expires_at: i64,
    /// The address it was opened from.
    pub remote_addr: Option<String>,
    /// The browser it was opened with, as it named itself.
    pub user_agent: Option<String>,
}

/// The caller's own live sessions, newest first; `current` is the session id the request came
/// with (none through an API token).
pub async fn list_sessions(
    svc: &Service,
    actor: &Actor,
    current: Option<&str>,
) -> Result<Vec<SessionSummary>, ServiceError> {
    let current = current.map(hash_token);
    let sessions = svc.store.sessions_of(&actor.user.id, svc.now_ms()).await?;
    Ok(sessions
        .into_iter()
        .map(|s| SessionSummary {
            current: current.as_deref() == Some(s.id_hash.as_str()),
            handle: s.handle,
            created_at: s.created_at,
            expires_at: s.expires_at,
            remote_addr: s.remote_addr,
            user_agent: s.user_agent,
        })
        .collect())
}

/// Ends one of the caller's own sessions (another's handle is not found).
pub async fn end_session(svc: &Service, actor: &Actor, handle: &str) -> Result<(), ServiceError> {
    if handle.len() > 64 {
        return Err(ServiceError::NotFound);
    }
    svc.store.end_session(&actor.user.id, handle).await?;
    let user = &actor.user;
    let detail = Some(format!("session {handle} ended by its owner"));
    record(svc, actor.audit(svc.now_ms(), "session.ended", "user", Some(user.id.as_str()), Some(&user.email), detail))
        .await;
    Ok(())
}

/// Ends every session of the caller's except `current` (the one the request came with):
/// "sign out everywhere else". Returns how many ended.
pub async fn end_other_sessions(svc: &Service, actor: &Actor, current: Option<&str>) -> Result<u64, ServiceError> {
    let ended = svc.store.end_sessions(&actor.user.id, current.map(hash_token).as_deref()).await?;
    let user = &actor.user;
    let detail = Some(format!("{ended} other session(s) ended"));
    record(
        svc,
        actor.audit(svc.now_ms(), "session.ended_elsewhere", "user", Some(user.id.as_str()), Some(&user.email), detail),
    )
    .await;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_start_after_the_free_failures_double_and_stop_at_the_cap() {
        assert_eq!((PAIR.lock_ms(1), PAIR.lock_ms(3)), (None, None));
        assert_eq!((PAIR.lock_ms(4), PAIR.lock_ms(5), PAIR.lock_ms(6)), (Some(1_000), Some(2_000), Some(4_000)));
        assert_eq!(PAIR.lock_ms(50), Some(PAIR.max_lock_ms));
        assert_eq!((PERSON.lock_ms(10), PERSON.lock_ms(11), PERSON.lock_ms(12)), (None, Some(60_000), Some(120_000)));
        assert_eq!(PERSON.lock_ms(u32::MAX), Some(PERSON.max_lock_ms));
    }

    #[test]
    fn addresses_are_throttled_as_a_v4_address_or_a_v6_slash_64() {
        assert_eq!(address_key(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(address_key(Some("::ffff:203.0.113.7")), "203.0.113.7", "IPv4-mapped is IPv4");
        assert_eq!(address_key(Some("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(address_key(Some("2001:db8:1:2:bbbb::9")), address_key(Some("2001:db8:1:2::1")), "one /64");
        assert_eq!(address_key(None), "-");
    }
}
