//! B1: tokens refresh when Salesforce says the session is over, once per connection however
//! many callers are waiting, and a connection that logs out is flagged at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use domain::{AuthMethod, Connection, ConnectionId, ConnectionStatus, LoginHost, Millis, OrgType, StatusReason};
use salesforce::{Client, ClientCredentials, SalesforceError, Session, TokenResponse};
use store::{ConnectionStore, Observation, StoreError, TokenSet};

use crate::failure::{Failure, classify};
use url::Url;

/// Where `login` and `test` point: Salesforce's hosts, or the emulator's stand-ins.
#[derive(Debug, Clone)]
pub struct LoginUrls {
    pub login: Url,
    pub test: Url,
}

impl LoginUrls {
    pub fn salesforce() -> Self {
        LoginUrls {
            login: Url::parse("https://login.salesforce.com").expect("constant URL"),
            test: Url::parse("https://test.salesforce.com").expect("constant URL"),
        }
    }

    /// The base URL for a connection's login host.
    pub fn base_for(&self, host: &LoginHost) -> Result<Url, KeeperError> {
        match host {
            LoginHost::Login => Ok(self.login.clone()),
            LoginHost::Test => Ok(self.test.clone()),
            LoginHost::MyDomain(url) => {
                Url::parse(url).map_err(|_| KeeperError::Misconfigured(format!("{url} is not a URL")))
            }
        }
    }
}

pub use domain::{Clock, SystemClock};

#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    /// Salesforce refused the stored credentials: the connection is Logged out and needs
    /// Reconnect.
    #[error("the connection is logged out: {0}")]
    LoggedOut(String),
    /// Salesforce could not be reached or failed for now: the connection is Not available.
    #[error("Salesforce is not available: {0}")]
    Unavailable(String),
    /// The connection lacks what its auth method needs (e.g. no refresh token, no key).
    #[error("{0}")]
    Misconfigured(String),
    #[error(transparent)]
    Salesforce(SalesforceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Keeps sessions usable: hands out the stored access token, renews it on
/// `INVALID_SESSION_ID` exactly once per connection however many callers are waiting, and
/// records each connection's status as calls succeed or fail.
#[derive(Debug)]
pub struct TokenKeeper<S> {
    core: Core<S>,
    /// One async lock per connection: only the holder renews.
    locks: Mutex<HashMap<ConnectionId, Arc<tokio::sync::Mutex<()>>>>,
}

/// What a renewal needs, cheap to clone: a renewal runs on its own task, so that a caller who
/// gives up (a timeout, a closed request) cannot stop it between Salesforce's answer and the
/// save — with rotation, that would leave a retired refresh token stored, and presenting it
/// again revokes the connection's grant.
#[derive(Debug)]
struct Core<S> {
    store: Arc<S>,
    client: Client,
    urls: LoginUrls,
    clock: Arc<dyn Clock>,
    /// This keeper's name on renewal leases.
    owner: String,
    /// How long transient failures may last before the connection is Not available.
    grace_ms: Millis,
}

impl<S> Clone for Core<S> {
    fn clone(&self) -> Self {
        Core {
            store: self.store.clone(),
            client: self.client.clone(),
            urls: self.urls.clone(),
            clock: self.clock.clone(),
            owner: self.owner.clone(),
            grace_ms: self.grace_ms,
        }
    }
}

/// The default grace period for transient failures: 30 minutes.
pub const DEFAULT_GRACE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// How long an instance may hold a connection's renewal lease: longer than a token call
/// takes, short enough that a crashed instance's lease is soon taken over.
const RENEWAL_LEASE_MS: i64 = 30_000;

impl<S: ConnectionStore + 'static> TokenKeeper<S> {
    pub fn new(store: Arc<S>, client: Client, urls: LoginUrls, clock: Arc<dyn Clock>) -> Self {
        let owner = format!("keeper-{}", domain::UserId::generate().as_str().trim_start_matches("user_"));
        let grace_ms = DEFAULT_GRACE.as_millis() as Millis;
        TokenKeeper { core: Core { store, client, urls, clock, owner, grace_ms }, locks: Mutex::new(HashMap::new()) }
    }

    /// Transient failures turn a connection Not available only after lasting this long.
    pub fn with_grace(mut self, grace: std::time::Duration) -> Self {
        self.core.grace_ms = grace.as_millis() as Millis;
        self
    }

    pub(crate) async fn observe(
        &self,
        connection: &Connection,
        observation: Observation,
        based_on: Option<i64>,
    ) -> Result<(), StoreError> {
        self.core.observe(connection, observation, based_on).await
    }

    pub(crate) fn observation_of(&self, e: &SalesforceError) -> Observation {
        self.core.observation_of(e)
    }

    pub fn client(&self) -> &Client {
        &self.core.client
    }

    pub fn store(&self) -> &S {
        &self.core.store
    }

    pub fn now_ms(&self) -> Millis {
        self.core.clock.now_ms()
    }

    /// The stored session and its token version; renews first when there is no token yet.
    pub async fn session(&self, connection: &Connection) -> Result<(Session, i64), KeeperError> {
        let secrets = self.core.store.secrets(&connection.id).await?;
        match (secrets.access_token, secrets.instance_url.as_deref().and_then(|u| Url::parse(u).ok())) {
            (Some(access_token), Some(instance_url)) => {
                Ok((Session { instance_url, access_token }, secrets.token_version))
            }
            _ => self.renew(connection, secrets.token_version).await,
        }
    }

    /// Runs `call` with a session; on `INVALID_SESSION_ID` renews once and runs it again. A
    /// Logged out connection is not called at all: it costs Salesforce nothing until someone
    /// reconnects it (or checks it by hand, [`TokenKeeper::with_session_now`]).
    pub async fn with_session<T, F, Fut>(&self, connection: &Connection, call: F) -> Result<T, KeeperError>
    where
        F: Fn(Session) -> Fut,
        Fut: Future<Output = Result<T, SalesforceError>>,
    {
        if connection.status == ConnectionStatus::LoggedOut {
            metrics::counter!("lightbridge_calls_skipped_total", "why" => "logged_out").increment(1);
            return Err(KeeperError::LoggedOut(logged_out_words(connection)));
        }
        self.with_session_now(connection, call).await
    }

    /// [`TokenKeeper::with_session`] even for a Logged out connection: a person asked (they
    /// may have fixed the cause in the org).
    pub async fn with_session_now<T, F, Fut>(&self, connection: &Connection, call: F) -> Result<T, KeeperError>
    where
        F: Fn(Session) -> Fut,
        Fut: Future<Output = Result<T, SalesforceError>>,
    {
        let (session, version) = self.session(connection).await?;
        let result = match call(session).await {
            // A session ended, or the instance redirected (a My Domain change): a renewal
            // brings a new session and names the org's instance as it is now.
            Err(SalesforceError::SessionExpired | SalesforceError::Moved { .. }) => {
                let (fresh, _) = self.renew(connection, version).await?;
                call(fresh).await.map_err(KeeperError::Salesforce)
            }
            other => other.map_err(KeeperError::Salesforce),
        };
        // A call that worked ends whatever the stored status said (a failure streak, a refusal).
        let unhealthy = connection.status != ConnectionStatus::LoggedIn || connection.status_detail.is_some();
        if result.is_ok() && unhealthy {
            self.observe(connection, Observation::Healthy, None).await?;
        }
        result
    }

    fn lock_for(&self, id: &ConnectionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.clone()).or_default().clone()
    }

    /// Renews the session unless someone already did since `seen_version`: one task per
    /// connection in this process (an async lock), one instance per connection across
    /// instances sharing the database (the store's renewal lease). The renewal runs to its
    /// end on its own task, holding the lock, whatever happens to the caller.
    pub async fn renew(&self, connection: &Connection, seen_version: i64) -> Result<(Session, i64), KeeperError> {
        let held = self.lock_for(&connection.id).lock_owned().await;
        let core = self.core.clone();
        let connection = connection.clone();
        let renewal = async move {
            let _held = held;
            core.renew_locked(&connection, seen_version).await
        };
        tokio::spawn(tracing::Instrument::in_current_span(renewal))
            .await
            .map_err(|e| KeeperError::Unavailable(format!("the renewal stopped: {e}")))?
    }
}

impl<S: ConnectionStore + 'static> Core<S> {
    /// Records what a call or renewal showed (the store's one way to change a status), with
    /// its metric and log line.
    async fn observe(
        &self,
        connection: &Connection,
        observation: Observation,
        based_on: Option<i64>,
    ) -> Result<(), StoreError> {
        let change = self.store.observe(&connection.id, &observation, based_on, self.clock.now_ms()).await?;
        if change.changed {
            let reason = change.reason.map(StatusReason::as_str).unwrap_or("none");
            metrics::counter!("lightbridge_connection_status_changes_total", "to" => change.to.as_str(), "reason" => reason)
                .increment(1);
            tracing::info!(connection = %connection.id, from = change.from.as_str(), to = change.to.as_str(), reason, "connection status changed");
        }
        Ok(())
    }

    /// The observation a failure makes.
    fn observation_of(&self, e: &SalesforceError) -> Observation {
        let detail = e.to_string();
        match classify(e) {
            Failure::Transient(reason) => Observation::Failing { reason, detail, grace_ms: self.grace_ms },
            Failure::Refused(reason) => Observation::Refused { reason, detail },
            Failure::Dead(reason) => Observation::Dead { reason, detail },
        }
    }

    async fn renew_locked(&self, connection: &Connection, seen_version: i64) -> Result<(Session, i64), KeeperError> {
        let waiting_since = std::time::Instant::now();
        let secrets = loop {
            // Whoever renewed before us (here or on another instance): use their token.
            let secrets = self.store.secrets(&connection.id).await?;
            if secrets.token_version != seen_version
                && let (Some(access_token), Some(instance_url)) =
                    (secrets.access_token.clone(), secrets.instance_url.as_deref().and_then(|u| Url::parse(u).ok()))
            {
                metrics::counter!("lightbridge_session_renewals_total", "outcome" => "shared").increment(1);
                return Ok((Session { instance_url, access_token }, secrets.token_version));
            }
            let now = self.clock.now_ms();
            if self.store.take_renewal(&connection.id, &self.owner, now, now + RENEWAL_LEASE_MS).await? {
                // Taken: but someone may have finished renewing between the read and the take.
                let fresh = self.store.secrets(&connection.id).await?;
                if fresh.token_version == secrets.token_version {
                    break fresh;
                }
                self.store.release_renewal(&connection.id, &self.owner).await?;
                continue;
            }
            if waiting_since.elapsed() > std::time::Duration::from_millis(RENEWAL_LEASE_MS as u64 + 5_000) {
                return Err(KeeperError::Unavailable(
                    "another instance has been renewing this session for too long".into(),
                ));
            }
            // Another instance renews: its new token shows up in the store in a moment.
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        };
        let renewed = self.renew_holding_lease(connection, secrets).await;
        metrics::counter!("lightbridge_session_renewals_total", "outcome" => if renewed.is_ok() { "renewed" } else { "failed" })
            .increment(1);
        if let Err(e) = self.store.release_renewal(&connection.id, &self.owner).await {
            tracing::warn!(connection = %connection.id, error = %e, "could not release the renewal lease (it runs out by itself)");
        }
        renewed
    }

    async fn renew_holding_lease(
        &self,
        connection: &Connection,
        secrets: store::ConnectionSecrets,
    ) -> Result<(Session, i64), KeeperError> {
        let now = self.clock.now_ms();
        let reply = match self.grant(connection, &secrets).await {
            Ok(reply) => reply,
            Err(KeeperError::Salesforce(e)) => {
                return Err(self.record_failure(connection, e, secrets.token_version).await);
            }
            Err(KeeperError::LoggedOut(words)) => {
                let dead = Observation::Dead { reason: StatusReason::NoCredentials, detail: words.clone() };
                if let Err(store_error) = self.observe(connection, dead, Some(secrets.token_version)).await {
                    tracing::error!(connection = %connection.id, error = %store_error, "could not record the connection's status");
                }
                return Err(KeeperError::LoggedOut(words));
            }
            Err(other) => return Err(other),
        };
        // The credentials now sign in to another org: a refreshed sandbox (a new org id), or a
        // user moved. Those tokens are not this connection's; a person decides.
        if let Some(org) = connection.org.as_ref().filter(|o| o.org_id != reply.org_id) {
            let reason = if connection.org_type == OrgType::Sandbox {
                StatusReason::SandboxRefreshed
            } else {
                StatusReason::OrgChanged
            };
            let detail = format!("Salesforce signed in to org {} instead of {}", reply.org_id, org.org_id);
            let dead = Observation::Dead { reason, detail: detail.clone() };
            self.observe(connection, dead, Some(secrets.token_version)).await?;
            if let Some(refresh) = &reply.refresh_token {
                let _ = self.client.revoke(&self.urls.base_for(&connection.login_host)?, refresh.expose_secret()).await;
            }
            return Err(KeeperError::LoggedOut(format!("{}: {detail}", reason.summary())));
        }
        let tokens = TokenSet {
            access_token: reply.access_token.clone(),
            refresh_token: reply.refresh_token.clone(),
            instance_url: reply.instance_url.to_string(),
        };
        // Only this task renews this connection in this process; the version check also
        // keeps another instance's newer tokens (and a rotated refresh token) from being lost.
        if !self.store.save_tokens(&connection.id, &tokens, secrets.token_version, now).await? {
            let latest = self.store.secrets(&connection.id).await?;
            if let (Some(access_token), Some(instance_url)) =
                (latest.access_token, latest.instance_url.as_deref().and_then(|u| Url::parse(u).ok()))
            {
                return Ok((Session { instance_url, access_token }, latest.token_version));
            }
        }
        tracing::info!(connection = %connection.id, "renewed the Salesforce session");
        let was = secrets.instance_url.as_deref().and_then(|u| Url::parse(u).ok()).map(|u| u.origin());
        let observation = match was {
            Some(was) if was != reply.instance_url.origin() => Observation::Moved {
                from: was.ascii_serialization(),
                to: reply.instance_url.origin().ascii_serialization(),
            },
            _ => Observation::Renewed,
        };
        self.observe(connection, observation, None).await?;
        Ok((Session { instance_url: reply.instance_url, access_token: reply.access_token }, secrets.token_version + 1))
    }

    async fn grant(
        &self,
        connection: &Connection,
        secrets: &store::ConnectionSecrets,
    ) -> Result<TokenResponse, KeeperError> {
        let base = self.urls.base_for(&connection.login_host)?;
        let app = ClientCredentials {
            consumer_key: connection.auth.consumer_key().to_string(),
            consumer_secret: secrets.consumer_secret.clone(),
        };
        let result = match &connection.auth {
            AuthMethod::OAuth { .. } => {
                let refresh = secrets.refresh_token.as_ref().ok_or_else(|| {
                    KeeperError::LoggedOut("no refresh token is stored: reconnect to sign in again".into())
                })?;
                self.client.refresh(&base, &app, refresh).await
            }
            AuthMethod::Jwt { consumer_key, username } => {
                let key = secrets.private_key.as_ref().ok_or_else(|| {
                    KeeperError::Misconfigured("no private key is stored for this JWT connection".into())
                })?;
                let org_type = match connection.org_type {
                    OrgType::Production => salesforce::OrgType::Production,
                    OrgType::Sandbox => salesforce::OrgType::Sandbox,
                };
                self.client.jwt_bearer(&base, org_type, consumer_key, username, key).await
            }
            AuthMethod::ClientCredentials { .. } => self.client.client_credentials(&base, &app).await,
        };
        result.map_err(KeeperError::Salesforce)
    }

    /// Records a failed renewal by its class: Logged out at once when the credentials are
    /// dead, Not available once a transient failure outlasts the grace period.
    /// `based_on`: the token version the renewal used (a failure of replaced tokens is ignored).
    async fn record_failure(&self, connection: &Connection, e: SalesforceError, based_on: i64) -> KeeperError {
        let failure = classify(&e);
        tracing::warn!(connection = %connection.id, reason = failure.reason().as_str(), "could not renew the Salesforce session");
        if let Err(store_error) = self.observe(connection, self.observation_of(&e), Some(based_on)).await {
            tracing::error!(connection = %connection.id, error = %store_error, "could not record the connection's status");
        }
        match failure {
            Failure::Dead(reason) => KeeperError::LoggedOut(format!("{}: {e}", reason.summary())),
            Failure::Transient(_) => KeeperError::Unavailable(e.to_string()),
            Failure::Refused(_) => KeeperError::Salesforce(e),
        }
    }
}

/// What a Logged out connection says when asked to call Salesforce.
fn logged_out_words(connection: &Connection) -> String {
    match connection.status_reason {
        Some(reason) => format!("{}. {}", reason.summary(), reason.fix()),
        None => connection.status_detail.clone().unwrap_or_else(|| "reconnect to sign in again".into()),
    }
}
