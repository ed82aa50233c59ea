//! Users, API tokens and OAuth states.

use domain::{AccountId, AuditEntry, Millis, Role, User, UserId};

use crate::StoreError;

/// Who an API token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub token_id: String,
    pub user: User,
    /// The user's account requires two-factor sign-in and they have not set it up: their
    /// tokens reach only their own sign-in settings until they do.
    pub must_enrol: bool,
}

/// An API token as its owner sees it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    /// Updated at most once a minute.
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

store_trait! {
    pub trait AccessStore {
        fn create_user(&self, user: &User, password_hash: Option<&str>, now: Millis) -> Result<(), StoreError>;
        fn user_by_email(&self, email: &str) -> Result<User, StoreError>;
        /// Stores a token by its SHA-256 (hex); the token itself is never stored.
        fn create_api_token(&self, id: &str, user: &UserId, name: &str, token_hash: &str, now: Millis) -> Result<(), StoreError>;
        /// The live token with this hash, marking it used.
        fn api_token_owner(&self, token_hash: &str, now: Millis) -> Result<TokenOwner, StoreError>;
        /// The account's users, by email.
        fn users(&self, account: &AccountId) -> Result<Vec<User>, StoreError>;
        /// A user of this account; another account's id is `NotFound`.
        fn user(&self, account: &AccountId, id: &UserId) -> Result<User, StoreError>;
        fn set_role(&self, account: &AccountId, id: &UserId, role: Role) -> Result<(), StoreError>;
        /// Removes a user with their sessions and API tokens.
        fn delete_user(&self, account: &AccountId, id: &UserId) -> Result<(), StoreError>;
        /// A user's API tokens, newest first.
        fn api_tokens(&self, user: &UserId) -> Result<Vec<ApiTokenInfo>, StoreError>;
        /// Revokes one of this user's tokens; someone else's id is `NotFound`.
        fn revoke_api_token(&self, user: &UserId, id: &str, now: Millis) -> Result<(), StoreError>;
        /// A user's saved setting (e.g. `connections.columns`), if any.
        fn preference(&self, user: &UserId, key: &str) -> Result<Option<String>, StoreError>;
        fn set_preference(&self, user: &UserId, key: &str, value: &str) -> Result<(), StoreError>;
        fn set_password(&self, user: &UserId, password_hash: &str) -> Result<(), StoreError>;
        /// A user and their password hash (if they have one), by email.
        fn credentials(&self, email: &str) -> Result<(User, Option<String>), StoreError>;
        /// Stores a new browser session (its id only as a hash).
        fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
        /// The user's live sessions, newest first.
        fn sessions_of(&self, user: &UserId, now: Millis) -> Result<Vec<SessionInfo>, StoreError>;
        /// Ends one of the user's sessions by its handle; `NotFound` if the user has none so named.
        fn end_session(&self, user: &UserId, handle: &str) -> Result<(), StoreError>;
        /// The live session: its user, CSRF token, and whether the user must still set up
        /// two-factor sign-in (their account requires it and they have not).
        fn session(&self, id_hash: &str, now: Millis) -> Result<LiveSession, StoreError>;
        fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;
        /// Takes a sign-in attempt on `key` (a SHA-256, never an email): refused while the key is
        /// locked; otherwise counted in advance as the failure it may be and, past the free ones,
        /// the key locked as that failure would lock it — in one compare-and-set, so concurrent
        /// attempts on any instance are refused from the moment one is let through. A successful
        /// sign-in gives its attempt back with [`AccessStore::forgive_sign_in`].
        fn take_sign_in_attempt(&self, key: &str, now: Millis, throttle: Throttle) -> Result<Attempt, StoreError>;
        /// After a successful sign-in: the key's count goes (`clear`), or only this attempt's with
        /// the lock it set in advance (the per-email count, which the real user must not reset).
        fn forgive_sign_in(&self, key: &str, clear: bool) -> Result<(), StoreError>;
        /// Remembers a browser (its cookie's hash) that signed `user` in.
        fn remember_device(&self, id_hash: &str, user: &UserId, now: Millis) -> Result<(), StoreError>;
        /// Whether this browser signed `user` in since `since`.
        fn device_known(&self, id_hash: &str, user: &UserId, since: Millis) -> Result<bool, StoreError>;
        /// Forgets every browser of `user` (their password changed).
        fn forget_devices(&self, user: &UserId) -> Result<(), StoreError>;
        /// Ends every session of the user except `keep` (a session id's hash); returns how many ended.
        fn end_sessions(&self, user: &UserId, keep: Option<&str>) -> Result<u64, StoreError>;
        fn save_oauth_state(&self, state_hash: &str, account: &AccountId, user: &UserId, payload: &str, expires_at: Millis) -> Result<(), StoreError>;
        /// Takes (deletes and returns) a state if it exists, is unexpired and belongs to this user
        /// and account: a state works once, only for whoever started it.
        fn take_oauth_state(&self, state_hash: &str, account: &AccountId, user: &UserId, now: Millis) -> Result<String, StoreError>;
        /// The user's second factor, if they have begun or finished setting one up.
        fn two_factor(&self, user: &UserId) -> Result<Option<TwoFactor>, StoreError>;
        /// Stores a new, unconfirmed TOTP secret (sealed), replacing an unconfirmed one; a
        /// confirmed one is a `Conflict`.
        fn begin_two_factor(&self, user: &UserId, secret: &vault::TotpSecret, now: Millis) -> Result<(), StoreError>;
        /// Confirms the pending secret (its first code was for `step`) and stores the recovery
        /// codes' hashes, replacing any before.
        fn confirm_two_factor(&self, user: &UserId, step: i64, recovery_hashes: &[String], now: Millis) -> Result<(), StoreError>;
        /// Replaces the user's recovery codes.
        fn replace_recovery_codes(&self, user: &UserId, recovery_hashes: &[String]) -> Result<(), StoreError>;
        /// Accepts a confirmed secret's code for `step` once: false if that step or a later one
        /// was already used (compare-and-set, so two instances cannot both accept it).
        fn use_totp_step(&self, user: &UserId, step: i64) -> Result<bool, StoreError>;
        /// Uses an unused recovery code: false if there is none so hashed.
        fn use_recovery_code(&self, user: &UserId, code_hash: &str, now: Millis) -> Result<bool, StoreError>;
        /// Removes the user's second factor and recovery codes; false if they had none.
        fn remove_two_factor(&self, user: &UserId) -> Result<bool, StoreError>;
        /// The owner's rule that every password user of the account has a second factor.
        fn set_two_factor_required(&self, account: &AccountId, required: bool) -> Result<(), StoreError>;
        /// Keeps a sign-in half done (sealed `payload`, bound to `id_hash`) until `expires_at`.
        fn save_pending_sign_in(&self, id_hash: &str, kind: &str, payload: &str, expires_at: Millis) -> Result<(), StoreError>;
        /// A live pending sign-in's payload, left in place.
        fn pending_sign_in(&self, id_hash: &str, kind: &str, now: Millis) -> Result<String, StoreError>;
        /// Takes (deletes and returns) a live pending sign-in: it works once.
        fn take_pending_sign_in(&self, id_hash: &str, kind: &str, now: Millis) -> Result<String, StoreError>;
        /// The accounts a person belongs to, with their role in each (oldest first).
        fn memberships_of(&self, user: &UserId) -> Result<Vec<Membership>, StoreError>;
        /// Makes a person a member of another account; already one is a `Conflict`.
        fn add_membership(&self, user: &UserId, account: &AccountId, role: Role, now: Millis) -> Result<(), StoreError>;
        /// Switches a session to another of its person's accounts (`NotFound` if not a member).
        fn set_session_account(&self, id_hash: &str, account: &AccountId) -> Result<(), StoreError>;
        /// Makes an API token act in this account (by default, its person's home account).
        fn set_api_token_account(&self, id: &str, account: &AccountId) -> Result<(), StoreError>;
        /// Stores an invitation (its token only as `token_hash`).
        fn create_invitation(&self, invitation: &Invitation, token_hash: &str) -> Result<(), StoreError>;
        /// A live (unexpired, not accepted) invitation by its token's hash, with the account's name.
        fn invitation(&self, token_hash: &str, now: Millis) -> Result<(Invitation, String), StoreError>;
        /// Marks an invitation accepted, once: false if it was already.
        fn accept_invitation(&self, id: &str, now: Millis) -> Result<bool, StoreError>;
        /// The account's live invitations, newest first.
        fn invitations(&self, account: &AccountId, now: Millis) -> Result<Vec<Invitation>, StoreError>;
        /// Withdraws a live invitation of this account.
        fn withdraw_invitation(&self, account: &AccountId, id: &str) -> Result<(), StoreError>;
        /// Takes (deletes and returns) up to `limit` pending entries of `kind` that expired, for
        /// whatever must follow their expiry (a kept test grant is revoked at Salesforce).
        fn take_expired_pending(&self, kind: &str, now: Millis, limit: u32) -> Result<Vec<String>, StoreError>;
        /// The account's single sign-on, if it has one.
        fn sso_config(&self, account: &AccountId) -> Result<Option<SsoConfig>, StoreError>;
        /// Sets the account's single sign-on (the break-glass email is left as it was).
        fn set_sso_config(&self, account: &AccountId, config: &SsoConfig, now: Millis) -> Result<(), StoreError>;
        /// Removes the account's single sign-on and its domains.
        fn delete_sso_config(&self, account: &AccountId) -> Result<(), StoreError>;
        /// Names the person who may still sign in with a password while SSO is the only way in.
        fn set_break_glass(&self, account: &AccountId, email: Option<&str>) -> Result<(), StoreError>;
        /// Routes an email domain (lowercase) to the account; taken by another account is a `Conflict`.
        fn add_sso_domain(&self, account: &AccountId, domain: &str, now: Millis) -> Result<(), StoreError>;
        fn remove_sso_domain(&self, account: &AccountId, domain: &str) -> Result<(), StoreError>;
        fn sso_domains(&self, account: &AccountId) -> Result<Vec<String>, StoreError>;
        /// The account's routed domains with how each came to it, by name.
        fn routed_domains(&self, account: &AccountId) -> Result<Vec<RoutedDomain>, StoreError>;
        /// Claims an email domain for the account, proof pending; claiming it again returns the
        /// first claim (its token stays what the owner may have published already).
        fn claim_sso_domain(&self, account: &AccountId, domain: &str, token: &str, now: Millis) -> Result<DomainClaim, StoreError>;
        /// The account's pending claims, by domain.
        fn sso_domain_claims(&self, account: &AccountId) -> Result<Vec<DomainClaim>, StoreError>;
        /// One pending claim of the account (`NotFound` if it has none for the domain).
        fn sso_domain_claim(&self, account: &AccountId, domain: &str) -> Result<DomainClaim, StoreError>;
        /// Keeps what the last look at DNS found, for the owner to read.
        fn record_domain_check(&self, account: &AccountId, domain: &str, now: Millis, result: &str) -> Result<(), StoreError>;
        /// Withdraws a pending claim (`NotFound` if there is none).
        fn delete_sso_domain_claim(&self, account: &AccountId, domain: &str) -> Result<(), StoreError>;
        /// The claim proved: routes the domain to the account (verified by DNS) and removes the
        /// claim, in one transaction; routed to another account already is a `Conflict`.
        fn prove_sso_domain(&self, account: &AccountId, domain: &str, now: Millis) -> Result<(), StoreError>;
        /// The account an email domain leads to.
        fn account_for_domain(&self, domain: &str) -> Result<Option<AccountId>, StoreError>;
        /// The user a provider's subject signed in as before.
        fn sso_identity(&self, issuer: &str, subject: &str) -> Result<Option<UserId>, StoreError>;
        fn link_sso_identity(&self, issuer: &str, subject: &str, user: &UserId) -> Result<(), StoreError>;
    }
}

/// An account's OpenID Connect provider, as the store keeps it.
#[derive(Clone)]
pub struct SsoConfig {
    /// The provider's issuer URL (exactly as its discovery document names it).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: vault::SsoClientSecret,
    /// The claim whose value is a new person's role.
    pub role_claim: Option<String>,
    pub default_role: Role,
    /// Passwords are refused for the account's people (but the break-glass one).
    pub sso_only: bool,
    /// Read only: set by the operator with [`AccessStore::set_break_glass`].
    pub break_glass_email: Option<String>,
}

impl std::fmt::Debug for SsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("sso_only", &self.sso_only)
            .finish_non_exhaustive()
    }
}

/// A person's role in one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub account: AccountId,
    pub account_name: String,
    pub role: Role,
}

/// An owner's invitation to their account (its token is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// `inv_…`
    pub id: String,
    pub account: AccountId,
    pub email: String,
    pub role: Role,
    /// The inviting owner's email.
    pub invited_by: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A live browser session as a request finds it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub user: User,
    pub csrf: String,
    /// The user's account requires two-factor sign-in and they have not set it up: until they
    /// do, the session reaches only the pages and calls that set it up.
    pub must_enrol: bool,
}

/// A person's second factor: the TOTP secret (base32, opened from its seal) and its state.
#[derive(Clone)]
pub struct TwoFactor {
    pub secret: vault::TotpSecret,
    pub created_at: Millis,
    /// None while the enrolment waits for its first code.
    pub confirmed_at: Option<Millis>,
    /// The last step a code was accepted for.
    pub last_step: i64,
    /// Recovery codes not used yet.
    pub recovery_left: u32,
}

impl std::fmt::Debug for TwoFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoFactor")
            .field("confirmed_at", &self.confirmed_at)
            .field("recovery_left", &self.recovery_left)
            .finish_non_exhaustive()
    }
}

/// A browser session to store: the id's SHA-256 (the id itself stays in the cookie), a public
/// handle to name it by, and where it was opened.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id_hash: String,
    /// `ses_` and 16 hex digits: what lists show and what ending one names.
    pub handle: String,
    pub user: UserId,
    pub csrf_token: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub remote_addr: Option<String>,
    pub user_agent: Option<String>,
    /// Opened through the account's single sign-on (whose provider answers for the second factor).
    pub via_sso: bool,
    /// The account it acts in (none: the person's home account).
    pub account: Option<AccountId>,
}

/// A claim on an email domain, waiting for its DNS record.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DomainClaim {
    pub domain: String,
    /// What the TXT record must say (after `lightbridge-verification=`).
    pub token: String,
    pub created_at: Millis,
    /// When DNS was last looked at, and what it showed.
    pub checked_at: Option<Millis>,
    pub last_result: Option<String>,
}

/// An email domain routed to an account's single sign-on.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoutedDomain {
    pub domain: String,
    /// `operator` (vouched for with `lightbridge accounts sso-domain`) or `dns` (proved by the
    /// account's own TXT record).
    pub verified_by: String,
    pub created_at: Millis,
}

/// A live session as its owner sees it (and its id's hash, to tell the caller's own).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionInfo {
    pub handle: String,
    pub id_hash: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub remote_addr: Option<String>,
    pub user_agent: Option<String>,
}

/// Filters for reading the audit log, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub target_id: Option<String>,
    /// Entries older than this sequence number (for paging back).
    pub before: Option<i64>,
    /// At most 500.
    pub limit: u32,
}

store_trait! {
    pub trait AuditStore {
        fn record(&self, entry: &AuditEntry) -> Result<(), StoreError>;
        /// An account's entries, newest first, each with its sequence number.
        fn audit(&self, account: &AccountId, query: &AuditQuery) -> Result<Vec<(i64, AuditEntry)>, StoreError>;
    }
}

/// How attempts on one sign-in key are throttled.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    /// Failures that cost nothing.
    pub free: u32,
    /// The lock after the first failure beyond them; each further one doubles it.
    pub first_lock_ms: Millis,
    pub max_lock_ms: Millis,
    /// A count whose last attempt is older than this starts again.
    pub forget_after_ms: Millis,
}

impl Throttle {
    /// The lock after `failures` failures: none while they are free, then `first_lock_ms`
    /// doubling, capped at `max_lock_ms`.
    pub fn lock_ms(&self, failures: u32) -> Option<Millis> {
        let over = failures.checked_sub(self.free).filter(|n| *n > 0)?;
        Some(self.first_lock_ms.saturating_mul(1_i64 << (over - 1).min(30)).min(self.max_lock_ms))
    }
}

/// What [`AccessStore::take_sign_in_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Go on and check the password.
    Allowed,
    /// Refused without a check until then.
    Locked { until: Millis },
}
