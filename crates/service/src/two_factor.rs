//! Two-factor sign-in for password users (issue #13): a time-based one-time password
//! (RFC 6238 as every authenticator app reads it: HMAC-SHA-1, 6 digits, 30-second steps, one
//! step of clock skew either way) and ten recovery codes.
//!
//! - Setting it up takes two steps: [`begin`] makes a secret (160 random bits, sealed at rest
//!   like every credential) and shows it as text, an `otpauth://` link and a QR code;
//!   [`confirm`] takes the first code the app shows, turns the factor on and returns the
//!   recovery codes — shown once, stored only as SHA-256 digests.
//! - A code is accepted once: the store keeps the last step used and moves it forward with a
//!   compare-and-set, so a code seen over someone's shoulder is worthless, on every instance.
//! - Codes are throttled per person (the one guessing already has the password): 5 free
//!   failures, then a lock of 1 s doubling to at most 15 minutes; a right code gives back only
//!   its own attempt. Failures are audited.
//! - Recovery codes are kept sealed by the vault (bound to the person), so a copy of the
//!   database without the master key cannot be searched for them.
//! - An account's owner can require it of every password user; a person who has not set it up
//!   then reaches only the pages that set it up, until they do.
//! - The operator resets a person's second factor from the CLI (`lightbridge users
//!   reset-two-factor`), which also ends their sessions.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use domain::User;
use store::{AccessStore, CatalogStore, Throttle};
use vault::{Password, TotpSecret};

use crate::audit::record;
use crate::secrets::hash_token;
use crate::{Actor, Service, ServiceError};

/// The issuer authenticator apps show next to the person's email.
const ISSUER: &str = "Lightbridge";
/// How many recovery codes a person gets.
pub const RECOVERY_CODES: usize = 10;
/// Second-factor attempts, per person.
pub(crate) const CODES: Throttle =
    Throttle { free: 5, first_lock_ms: 1_000, max_lock_ms: 15 * 60 * 1000, forget_after_ms: 24 * 60 * 60 * 1000 };
/// Letters of recovery codes: lowercase, without the ones people misread (0/o, 1/l).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// Where a person's two-factor sign-in stands.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// Codes are asked for at sign-in.
    pub enabled: bool,
    /// A secret was made and waits for its first code.
    pub pending: bool,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
    /// The person's account requires it.
    pub required: bool,
}

/// A secret being set up, as the person's authenticator app takes it.
#[derive(Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Enrolment {
    /// Base32, for typing into the app.
    pub secret: String,
    /// `otpauth://totp/…`, what the QR code holds.
    pub otpauth_uri: String,
    /// The QR code as an SVG image.
    pub qr_svg: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([redacted])")
    }
}

/// Recovery codes, shown once.
#[derive(Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryCodes {
    /// Each works once, in place of a code from the app.
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCodes([redacted])")
    }
}

fn totp(secret: &TotpSecret, email: &str) -> Result<totp_rs::Totp, ServiceError> {
    let bytes = totp_rs::Secret::try_from_base32(secret.expose_secret())
        .map_err(|e| ServiceError::internal("stored TOTP secret does not parse", e))?;
    // Authenticator apps refuse a label with a colon; an email has none, but be sure.
    let label = email.replace(':', " ");
    totp_rs::Builder::new()
        .with_secret(bytes)
        .with_account_name(label)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| ServiceError::internal("cannot build TOTP", e))
}

fn enrolment(secret: &TotpSecret, email: &str) -> Result<Enrolment, ServiceError> {
    let uri = totp(secret, email)?.to_url().map_err(|e| ServiceError::internal("cannot write otpauth URI", e))?;
    let qr = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ServiceError::internal("cannot make QR code", e))?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    Ok(Enrolment { secret: secret.expose_secret().to_string(), otpauth_uri: uri, qr_svg })
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ServiceError> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|e| ServiceError::internal("no randomness", e))?;
    Ok(bytes)
}

/// Ten codes like `k7mq2-xr9tb` (50 random bits each) and their digests for the store.
fn new_recovery_codes() -> Result<(Vec<String>, Vec<String>), ServiceError> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let bytes = random_bytes::<10>()?;
        let letters: String =
            bytes.iter().map(|b| RECOVERY_ALPHABET[usize::from(*b) % RECOVERY_ALPHABET.len()] as char).collect();
        codes.push(format!("{}-{}", &letters[..5], &letters[5..]));
    }
    let hashes = codes.iter().map(|c| recovery_digest(c)).collect();
    Ok((codes, hashes))
}

/// A recovery code as typed (any case, spaces or dashes anywhere) → its digest, which the store
/// keeps sealed.
fn recovery_digest(code: &str) -> String {
    let normal: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    hash_token(&format!("recovery:{normal}"))
}

/// The person's two-factor state.
pub async fn status(svc: &Service, actor: &Actor) -> Result<Status, ServiceError> {
    let found = svc.store.two_factor(&actor.user.id).await?;
    Ok(Status {
        enabled: found.as_ref().is_some_and(|f| f.confirmed_at.is_some()),
        pending: found.as_ref().is_some_and(|f| f.confirmed_at.is_none()),
        recovery_codes_left: found.as_ref().map_or(0, |f| f.recovery_left),
        required: required_for(svc, &actor.user).await?,
    })
}

/// Whether the caller's account requires two-factor sign-in (the operator has no account).
pub async fn account_requires(svc: &Service, actor: &Actor) -> Result<bool, ServiceError> {
    actor.account()?;
    required_for(svc, &actor.user).await
}

async fn required_for(svc: &Service, user: &User) -> Result<bool, ServiceError> {
    Ok(match &user.account_id {
        Some(account) => svc.store.account(account).await?.two_factor_required,
        None => false,
    })
}

/// Makes a new secret for the person to add to their app (replacing one not confirmed yet).
pub async fn begin(svc: &Service, actor: &Actor) -> Result<Enrolment, ServiceError> {
    let secret = TotpSecret::new(totp_rs::Secret::from(random_bytes::<20>()?).to_base32());
    svc.store.begin_two_factor(&actor.user.id, &secret, svc.now_ms()).await.map_err(|e| match e {
        store::StoreError::Conflict(_) => {
            ServiceError::conflict("two-factor sign-in is already on; turn it off first to move it to another app")
        }
        other => other.into(),
    })?;
    enrolment(&secret, &actor.user.email)
}

/// The secret waiting for its first code, to show again (a reloaded page).
pub async fn pending(svc: &Service, actor: &Actor) -> Result<Option<Enrolment>, ServiceError> {
    match svc.store.two_factor(&actor.user.id).await? {
        Some(f) if f.confirmed_at.is_none() => Ok(Some(enrolment(&f.secret, &actor.user.email)?)),
        _ => Ok(None),
    }
}

/// Turns two-factor sign-in on with the first code from the app; returns the recovery codes.
pub async fn confirm(svc: &Service, actor: &Actor, code: &str) -> Result<RecoveryCodes, ServiceError> {
    let user = &actor.user;
    let found = svc.store.two_factor(&user.id).await?;
    let Some(pending) = found.filter(|f| f.confirmed_at.is_none()) else {
        return Err(ServiceError::conflict("there is no set-up under way: start it again"));
    };
    throttled(svc, &user.id).await?;
    let step =
        app_code(code).and_then(|digits| totp(&pending.secret, &user.email).ok()?.check(&digits, unix_secs(svc)));
    let Some(step) = step else {
        return Err(ServiceError::invalid(
            "code",
            "that is not the code your app shows now: check the phone's clock is right, and type the newest code",
        ));
    };
    forgive(svc, &user.id).await?;
    let (codes, hashes) = new_recovery_codes()?;
    svc.store.confirm_two_factor(&user.id, step_i64(step), &hashes, svc.now_ms()).await?;
    let entry =
        actor.audit(svc.now_ms(), "user.two_factor_enabled", "user", Some(user.id.as_str()), Some(&user.email), None);
    record(svc, entry).await;
    Ok(RecoveryCodes { recovery_codes: codes })
}

/// New recovery codes in place of the old ones, given a code from the app.
pub async fn new_codes(svc: &Service, actor: &Actor, code: &str) -> Result<RecoveryCodes, ServiceError> {
    let user = &actor.user;
    if !enabled(svc, user).await? {
        return Err(ServiceError::conflict("two-factor sign-in is off"));
    }
    if !check_code(svc, user, code, false).await? {
        return Err(ServiceError::invalid("code", "that is not the code your app shows now"));
    }
    let (codes, hashes) = new_recovery_codes()?;
    svc.store.replace_recovery_codes(&user.id, &hashes).await?;
    let entry = actor.audit(
        svc.now_ms(),
        "user.recovery_codes_replaced",
        "user",
        Some(user.id.as_str()),
        Some(&user.email),
        None,
    );
    record(svc, entry).await;
    Ok(RecoveryCodes { recovery_codes: codes })
}

/// Turns the person's own two-factor sign-in off, given their password; refused while their
/// account requires it.
pub async fn disable(svc: &Service, actor: &Actor, password: Password) -> Result<(), ServiceError> {
    let user = &actor.user;
    if required_for(svc, user).await? && enabled(svc, user).await? {
        return Err(ServiceError::conflict(
            "your account requires two-factor sign-in: it cannot be turned off (to move it to a new phone, ask your operator to reset it)",
        ));
    }
    crate::users::check_own_password(svc, actor, password).await?;
    if !svc.store.remove_two_factor(&user.id).await? {
        return Err(ServiceError::conflict("two-factor sign-in is already off"));
    }
    let entry =
        actor.audit(svc.now_ms(), "user.two_factor_disabled", "user", Some(user.id.as_str()), Some(&user.email), None);
    record(svc, entry).await;
    Ok(())
}

/// The operator resets someone's second factor (a lost phone and lost codes): it is removed and
/// their sessions end; they set it up again at their next sign-in if their account requires it.
pub async fn reset(svc: &Service, actor: &Actor, email: &str) -> Result<User, ServiceError> {
    actor.require_operator()?;
    let user = svc.store.user_by_email(email).await?;
    let removed = svc.store.remove_two_factor(&user.id).await?;
    let ended = svc.store.end_sessions(&user.id, None).await?;
    let detail = Some(format!(
        "{}; {ended} session(s) ended",
        if removed { "second factor removed" } else { "had no second factor" }
    ));
    let entry = actor.audit_for(
        user.account_id.clone(),
        svc.now_ms(),
        "user.two_factor_reset",
        "user",
        Some(user.id.as_str()),
        Some(&user.email),
        detail,
    );
    record(svc, entry).await;
    Ok(user)
}

/// The owner requires (or stops requiring) two-factor sign-in of every password user of the
/// account. Either change needs the owner's own second factor on: requiring it first, so nobody
/// locks out the account; and someone holding only an owner's password cannot lift it.
pub async fn set_required(svc: &Service, actor: &Actor, required: bool) -> Result<domain::Account, ServiceError> {
    let account = actor.require_owner()?.clone();
    if !enabled(svc, &actor.user).await? {
        return Err(ServiceError::Conflict {
            field: Some("two_factor_required"),
            message: "turn on two-factor sign-in for yourself first".into(),
        });
    }
    svc.store.set_two_factor_required(&account, required).await?;
    let action = if required { "account.two_factor_required" } else { "account.two_factor_optional" };
    let found = svc.store.account(&account).await?;
    let entry = actor.audit(svc.now_ms(), action, "account", Some(account.as_str()), Some(&found.name), None);
    record(svc, entry).await;
    Ok(found)
}

async fn enabled(svc: &Service, user: &User) -> Result<bool, ServiceError> {
    Ok(svc.store.two_factor(&user.id).await?.is_some_and(|f| f.confirmed_at.is_some()))
}

/// Whether the person has a second factor to ask for at sign-in.
pub(crate) async fn asked_of(svc: &Service, user: &User) -> Result<bool, ServiceError> {
    enabled(svc, user).await
}

/// Checks a code from the app (each step once) or, if `recovery` allows, a recovery code (each
/// once), within the per-person throttle. A failure is audited.
pub(crate) async fn check_code(svc: &Service, user: &User, code: &str, recovery: bool) -> Result<bool, ServiceError> {
    throttled(svc, &user.id).await?;
    let code = code.trim();
    let digits = app_code(code);
    let ok = if code.len() > 64 {
        false
    } else if let Some(digits) = digits {
        match svc.store.two_factor(&user.id).await? {
            Some(f) if f.confirmed_at.is_some() => match totp(&f.secret, &user.email)?.check(&digits, unix_secs(svc)) {
                Some(step) => svc.store.use_totp_step(&user.id, step_i64(step)).await?,
                None => false,
            },
            _ => false,
        }
    } else {
        recovery && svc.store.use_recovery_code(&user.id, &recovery_digest(code), svc.now_ms()).await?
    };
    if ok {
        forgive(svc, &user.id).await?;
    } else {
        let detail = "wrong or reused two-factor code".to_string();
        crate::sessions::record_failure(svc, user, &crate::sessions::Origin::default(), svc.now_ms(), detail).await;
    }
    Ok(ok)
}

/// A code as an app shows it, typed with or without the space in the middle: its digits.
fn app_code(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (!digits.is_empty() && digits.len() <= 10 && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

async fn throttled(svc: &Service, user: &domain::UserId) -> Result<(), ServiceError> {
    crate::sessions::take_attempt(svc, &throttle_key(user), CODES).await
}

/// A right code gives back its own attempt only: the real person signing in does not hand
/// someone guessing with their password a fresh set of free guesses (the count fades in a day).
async fn forgive(svc: &Service, user: &domain::UserId) -> Result<(), ServiceError> {
    Ok(svc.store.forgive_sign_in(&throttle_key(user), false).await?)
}

fn throttle_key(user: &domain::UserId) -> String {
    hash_token(&format!("second-factor:{user}"))
}

fn unix_secs(svc: &Service) -> u64 {
    u64::try_from(svc.now_ms() / 1000).unwrap_or(0)
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_ten_distinct_and_match_however_they_are_typed() {
        let (codes, hashes) = new_recovery_codes().expect("codes");
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(codes.iter().collect::<std::collections::HashSet<_>>().len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(code.len(), 11, "{code}");
            assert!(!code.contains(['0', 'o', '1', 'l']), "{code}");
        }
        let typed = format!(" {} ", codes[0].to_uppercase().replace('-', " "));
        assert_eq!(recovery_digest(&typed), hashes[0]);
        assert_ne!(recovery_digest(&codes[1]), hashes[0]);
    }

    #[test]
    fn app_codes_are_read_with_or_without_the_space() {
        assert_eq!(app_code("123 456").as_deref(), Some("123456"));
        assert_eq!(app_code(" 123456 ").as_deref(), Some("123456"));
        assert_eq!(app_code("k7mq2-xr9tb"), None, "a recovery code");
        assert_eq!(app_code(""), None);
    }

    #[test]
    fn the_enrolment_names_lightbridge_and_the_person() {
        let secret = TotpSecret::new(totp_rs::Secret::from([7u8; 20]).to_base32());
        let e = enrolment(&secret, "ada@example.com").expect("enrolment");
        assert!(e.otpauth_uri.starts_with("otpauth://totp/Lightbridge:ada%40example.com?"), "{}", e.otpauth_uri);
        assert!(e.otpauth_uri.contains(&format!("secret={}", e.secret)), "{}", e.otpauth_uri);
        assert!(e.qr_svg.starts_with("<?xml") && e.qr_svg.contains("<svg"), "{}", &e.qr_svg[..80]);
    }
}
