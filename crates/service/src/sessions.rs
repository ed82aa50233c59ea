//! Browser sessions: password sign-in (argon2id) and sign-out. The session id goes to the
//! browser in a cookie; the store keeps only its SHA-256, with the session's CSRF token.
//!
//! Sign-in is throttled (issue #13), in the database so every instance counts alike:
//! - per email and client address: 3 free failures, then a lock of 1 s doubling with each
//!   further failure, at most 15 minutes — one address guessing gets a handful of tries an hour;
//! - per email, from anywhere: 10 free failures, then a lock of 1 minute doubling, at most an
//!   hour — a guess spread over many addresses slows to a crawl too. A browser that signed the
//!   user in before (its `lb_device` cookie) is exempt from this one, so an attacker cannot lock
//!   the real user out;
//! - a locked attempt is answered at once (no password check), with the seconds to wait; every
//!   failure is in the account's audit log.

use domain::User;
use store::AccessStore;
use vault::Password;

use crate::audit::record;
use crate::secrets::{hash_token, random_token};
use crate::{Actor, Service, ServiceError};

/// Sessions last 12 hours.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

/// A session just opened: the user, its id (for the cookie, never stored), its CSRF token, and
/// the browser's device token to keep in its `lb_device` cookie (the one it sent, or a new one).
#[derive(Debug)]
pub struct Opened {
    pub user: User,
    pub id: String,
    pub csrf: String,
    pub device: String,
}

/// Where a sign-in comes from: the client's address, and the device token its browser sent.
#[derive(Debug, Default, Clone)]
pub struct Origin {
    pub remote_addr: Option<String>,
    pub device: Option<String>,
}

/// Failed attempts older than a day are forgotten.
const FAILURES_KEPT_MS: i64 = 24 * 60 * 60 * 1000;
/// Per email and address: free failures, the first lock, the longest.
const PAIR_FREE: u32 = 3;
const PAIR_FIRST_LOCK_MS: i64 = 1_000;
const PAIR_MAX_LOCK_MS: i64 = 15 * 60 * 1000;
/// Per email from anywhere (browsers the user signed in with before are exempt).
const EMAIL_FREE: u32 = 10;
const EMAIL_FIRST_LOCK_MS: i64 = 60 * 1000;
const EMAIL_MAX_LOCK_MS: i64 = 60 * 60 * 1000;

/// The lock after `failures` failures: nothing while free, then `first` doubling, capped.
fn lock_ms(failures: u32, free: u32, first: i64, max: i64) -> Option<i64> {
    let over = failures.checked_sub(free).filter(|n| *n > 0)?;
    Some(first.saturating_mul(1_i64 << (over - 1).min(30)).min(max))
}

fn pair_key(email: &str, remote: Option<&str>) -> String {
    format!("pair:{}|{}", email.to_lowercase(), remote.unwrap_or("-"))
}

fn email_key(email: &str) -> String {
    format!("email:{}", email.to_lowercase())
}

/// Checks the password (argon2id; a missing user costs the same time as a wrong password),
/// within the throttle above, and opens a session.
pub async fn open_session(
    svc: &Service,
    email: &str,
    password: Password,
    origin: Origin,
) -> Result<Opened, ServiceError> {
    let now = svc.now_ms();
    let (pair, whole) = (pair_key(email, origin.remote_addr.as_deref()), email_key(email));
    let found = match svc.store.credentials(email).await {
        Ok(found) => Some(found),
        Err(store::StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    // A browser that signed this user in before is not slowed by the per-email ceiling.
    let known_device = match (&found, origin.device.as_deref()) {
        (Some((user, _)), Some(device)) => svc.store.device_known(&hash_token(device), &user.id).await?,
        _ => false,
    };
    let keys = if known_device { vec![pair.clone()] } else { vec![pair.clone(), whole.clone()] };
    if let Some(until) = svc.store.sign_in_locked_until(&keys, now).await? {
        let retry_after_secs = u64::try_from((until - now + 999) / 1000).unwrap_or(1).max(1);
        if let Some((user, _)) = &found {
            let detail = format!("refused without a check: locked for {retry_after_secs} s more");
            record_failure(svc, user, &origin, now, detail).await;
        }
        return Err(ServiceError::TooManyAttempts { retry_after_secs });
    }
    let stored = found.as_ref().and_then(|(_, hash)| hash.clone());
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
            let pair_failures = svc.store.count_sign_in_failure(&pair, now, now - FAILURES_KEPT_MS).await?;
            let email_failures = svc.store.count_sign_in_failure(&whole, now, now - FAILURES_KEPT_MS).await?;
            if let Some(ms) = lock_ms(pair_failures, PAIR_FREE, PAIR_FIRST_LOCK_MS, PAIR_MAX_LOCK_MS) {
                svc.store.lock_sign_in(&pair, now + ms).await?;
            }
            if let Some(ms) = lock_ms(email_failures, EMAIL_FREE, EMAIL_FIRST_LOCK_MS, EMAIL_MAX_LOCK_MS) {
                svc.store.lock_sign_in(&whole, now + ms).await?;
            }
            if let Some((user, _)) = &found {
                let detail =
                    format!("wrong password ({pair_failures} from this address, {email_failures} in all within a day)");
                record_failure(svc, user, &origin, now, detail).await;
            }
            tracing::info!(email = %email, "failed sign-in");
            return Err(ServiceError::Unauthorized);
        }
    };
    // This address's count starts again; the email's does not (it fades after a day), so the
    // real user signing in does not hand a spread-out guess ten fresh tries.
    svc.store.clear_sign_in_failures(&[pair]).await?;
    let device = match origin.device.filter(|_| known_device) {
        Some(device) => device,
        None => random_token()?,
    };
    svc.store.remember_device(&hash_token(&device), &user.id, now).await?;
    let id = random_token()?;
    let csrf = random_token()?;
    svc.store.create_session(&hash_token(&id), &user.id, &csrf, now, now + SESSION_TTL_MS).await?;
    let actor = Actor::new(user.clone(), domain::ActorKind::User, origin.remote_addr);
    record(svc, actor.audit(now, "session.signed_in", "user", Some(user.id.as_str()), Some(&user.email), None)).await;
    Ok(Opened { user, id, csrf, device })
}

/// A failed sign-in in the user's account's audit log.
async fn record_failure(svc: &Service, user: &User, origin: &Origin, now: i64, detail: String) {
    let actor = Actor::new(user.clone(), domain::ActorKind::User, origin.remote_addr.clone());
    let entry =
        actor.audit(now, "session.sign_in_failed", "user", Some(user.id.as_str()), Some(&user.email), Some(detail));
    record(svc, entry).await;
}

/// The live session's user and CSRF token.
pub async fn session(svc: &Service, id: &str) -> Result<(User, String), ServiceError> {
    svc.store.session(&hash_token(id), svc.now_ms()).await.map_err(|e| match e {
        store::StoreError::NotFound => ServiceError::Unauthorized,
        other => other.into(),
    })
}

/// Ends a session (signing out).
pub async fn close_session(svc: &Service, id: &str) -> Result<(), ServiceError> {
    Ok(svc.store.delete_session(&hash_token(id)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_start_after_the_free_failures_double_and_stop_at_the_cap() {
        let pair = |n| lock_ms(n, PAIR_FREE, PAIR_FIRST_LOCK_MS, PAIR_MAX_LOCK_MS);
        assert_eq!((pair(1), pair(3)), (None, None));
        assert_eq!((pair(4), pair(5), pair(6)), (Some(1_000), Some(2_000), Some(4_000)));
        assert_eq!(pair(50), Some(PAIR_MAX_LOCK_MS));
        let email = |n| lock_ms(n, EMAIL_FREE, EMAIL_FIRST_LOCK_MS, EMAIL_MAX_LOCK_MS);
        assert_eq!((email(10), email(11), email(12)), (None, Some(60_000), Some(120_000)));
        assert_eq!(email(1_000), Some(EMAIL_MAX_LOCK_MS));
    }
}
