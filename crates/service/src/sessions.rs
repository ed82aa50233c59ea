//! Browser sessions: password sign-in (argon2id) and sign-out. The session id goes to the
//! browser in a cookie; the store keeps only its SHA-256, with the session's CSRF token.

use domain::User;
use store::AccessStore;
use vault::Password;

use crate::audit::record;
use crate::secrets::{hash_token, random_token};
use crate::{Actor, Service, ServiceError};

/// Sessions last 12 hours.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

/// A session just opened: the user, its id (for the cookie, never stored) and its CSRF token.
#[derive(Debug)]
pub struct Opened {
    pub user: User,
    pub id: String,
    pub csrf: String,
}

/// Checks the password (argon2id; a missing user costs the same time as a wrong password) and
/// opens a session.
pub async fn open_session(
    svc: &Service,
    email: &str,
    password: Password,
    remote_addr: Option<String>,
) -> Result<Opened, ServiceError> {
    let (user, stored) = match svc.store.credentials(email).await {
        Ok((user, stored)) => (Some(user), stored),
        Err(store::StoreError::NotFound) => (None, None),
        Err(e) => return Err(e.into()),
    };
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
    let Some(user) = user else { return Err(ServiceError::Unauthorized) };
    if !verified {
        tracing::info!(email = %user.email, "failed sign-in");
        return Err(ServiceError::Unauthorized);
    }
    let id = random_token()?;
    let csrf = random_token()?;
    let now = svc.now_ms();
    svc.store.create_session(&hash_token(&id), &user.id, &csrf, now, now + SESSION_TTL_MS).await?;
    let actor = Actor::new(user.clone(), domain::ActorKind::User, remote_addr);
    record(svc, actor.audit(now, "session.signed_in", "user", Some(user.id.as_str()), Some(&user.email), None)).await;
    Ok(Opened { user, id, csrf })
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
