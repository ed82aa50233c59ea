//! A local Salesforce org emulator (B5): the parts of Salesforce that Lightbridge and common
//! Salesforce clients use, faithful enough that jsforce and simple-salesforce work against it
//! unchanged. It serves OAuth 2.0 (authorization code with PKCE, refresh with optional
//! rotation, JWT bearer, client credentials, revoke, userinfo, identity URLs), REST and Tooling
//! queries, `StaticResource` CRUD with Salesforce's validation and error shapes, per-org API
//! allowances and session timeouts, and `/resource/...` serving of ZIP static resources.
//!
//! Tests and benchmarks control it in-process through [`Emulator`], or over HTTP through the
//! admin API under `/__emulator/` (faults, latency, clock, token revocation, request log).
//!
//! This crate stands alone, as Salesforce does: it must not import Lightbridge's own
//! `salesforce` client crate, or a shared bug could hide on both sides of the wire.

mod admin;
mod blobs;
pub mod clock;
pub mod flexipage;
pub mod ids;
pub mod jwt;
mod lightning;
mod metadata;
mod moved;
mod multipart;
mod oauth;
pub mod observe;
mod pages;
pub mod policy;
mod rest;
pub mod seed;
mod server;
pub mod soql;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use observe::{FaultAction, FaultRule, Latency, RequestRecord};
pub use seed::{
    AppSeed, IpRelaxation, LightningAppSeed, ManagedResourceSeed, OrgSeed, RefreshTokenPolicy, Seed, SeedError,
    UserSeed,
};

/// Newest REST API version the emulator lists (Spring '26).
pub const LATEST_API_VERSION: u32 = 66;
/// Oldest version still served; older ones answer 410 as retired versions do.
pub const OLDEST_API_VERSION: u32 = 31;

/// Which Salesforce host a request arrived at. The emulator serves the production login host
/// under `/hosts/login`, the sandbox login host under `/hosts/test`, and the org instance
/// (the My Domain host) at the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    Login,
    Test,
    Instance,
}

impl HostKind {
    pub fn prefix(self) -> &'static str {
        match self {
            HostKind::Login => "/hosts/login",
            HostKind::Test => "/hosts/test",
            HostKind::Instance => "",
        }
    }
    /// The audience Salesforce expects in JWT assertions for this kind of host.
    pub fn salesforce_audience(self) -> Option<&'static str> {
        match self {
            HostKind::Login => Some("https://login.salesforce.com"),
            HostKind::Test => Some("https://test.salesforce.com"),
            HostKind::Instance => None,
        }
    }
}

/// How to start an emulator.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub seed: Seed,
    /// Plain HTTP port on 127.0.0.1; 0 picks a free one.
    pub http_port: u16,
    /// HTTPS port on 127.0.0.1; 0 picks a free one. `None` serves no HTTPS.
    pub https_port: Option<u16>,
    /// Where to write the CA certificate (PEM) and generated JWT keys; a fresh temporary
    /// folder when absent.
    pub state_dir: Option<PathBuf>,
}

/// Shared state behind every handler.
#[derive(Debug)]
pub(crate) struct Inner {
    pub world: Mutex<state::World>,
    pub clock: clock::Clock,
    pub observe: observe::Observer,
    pub blobs: blobs::Blobs,
}

impl Inner {
    pub fn world(&self) -> MutexGuard<'_, state::World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) type Shared = Arc<Inner>;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot prepare TLS: {0}")]
    Tls(String),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no user with username {0}")]
    UnknownUser(String),
    #[error("no org with id {0}")]
    UnknownOrg(String),
    #[error("no app with consumer key {0}")]
    UnknownApp(String),
    #[error("no static resource named {0} in that org")]
    UnknownResource(String),
    #[error(transparent)]
    Seed(#[from] SeedError),
}

/// A running emulator. Dropping it stops the listeners.
#[derive(Debug)]
pub struct Emulator {
    inner: Shared,
    http_url: String,
    https_url: Option<String>,
    ca_file: PathBuf,
    state_dir: PathBuf,
    _temp: Option<TempDir>,
    server: server::Running,
}

/// A folder removed when the emulator stops.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Summary of one static resource, for tests that look inside an org.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResourceInfo {
    pub id: String,
    /// A managed package's namespace; `None` for the org's own.
    pub namespace_prefix: Option<String>,
    pub name: String,
    pub content_type: String,
    pub cache_control: String,
    pub description: Option<String>,
    pub body_length: usize,
    pub last_modified_ms: i64,
    /// Path the resource is served at: `/resource/<lastModMs>/<Name>`.
    pub url_path: String,
}

impl Emulator {
    /// Starts on 127.0.0.1 with free HTTP and HTTPS ports.
    pub async fn start(seed: Seed) -> Result<Emulator, StartError> {
        Self::start_with(Config { seed, https_port: Some(0), ..Config::default() }).await
    }

    pub async fn start_with(config: Config) -> Result<Emulator, StartError> {
        let (state_dir, temp) = match config.state_dir {
            Some(dir) => (dir, None),
            None => {
                let dir = std::env::temp_dir().join(format!("lightbridge-emulator-{}", ids::random_alnum(12)));
                (dir.clone(), Some(TempDir(dir)))
            }
        };
        std::fs::create_dir_all(&state_dir).map_err(|source| StartError::Write { path: state_dir.clone(), source })?;
        let inner = Arc::new(Inner {
            world: Mutex::new(state::World::new()),
            clock: clock::Clock::default(),
            observe: observe::Observer::default(),
            blobs: blobs::Blobs::default(),
        });
        let now = inner.clock.now_ms();
        inner.world().add_seed(&config.seed, now)?;
        let tls = tls::generate_server_tls().map_err(StartError::Tls)?;
        let ca_file = state_dir.join("emulator-ca.pem");
        std::fs::write(&ca_file, &tls.ca_pem).map_err(|source| StartError::Write { path: ca_file.clone(), source })?;
        let emulator_keys: Vec<(String, String)> =
            inner.world().generated_keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (consumer_key, pem) in emulator_keys {
            let path = state_dir.join(format!("{}.key.pem", sanitize(&consumer_key)));
            std::fs::write(&path, pem).map_err(|source| StartError::Write { path, source })?;
        }
        let server = server::start(inner.clone(), config.http_port, config.https_port, tls).await?;
        Ok(Emulator {
            http_url: format!("http://127.0.0.1:{}", server.http_port),
            https_url: server.https_port.map(|p| format!("https://127.0.0.1:{p}")),
            inner,
            ca_file,
            state_dir,
            _temp: temp,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`: the instance (My Domain) host, where REST calls go.
    pub fn base_url(&self) -> &str {
        &self.http_url
    }
    /// `https://127.0.0.1:<port>`, when HTTPS is served.
    pub fn https_url(&self) -> Option<&str> {
        self.https_url.as_deref()
    }
    /// The production login host (`login.salesforce.com`'s stand-in) over plain HTTP.
    pub fn login_url(&self) -> String {
        format!("{}{}", self.http_url, HostKind::Login.prefix())
    }
    /// The sandbox login host (`test.salesforce.com`'s stand-in) over plain HTTP.
    pub fn test_login_url(&self) -> String {
        format!("{}{}", self.http_url, HostKind::Test.prefix())
    }
    /// The CA certificate file HTTPS clients should trust.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
    /// The private key (PKCS#8 PEM) generated for an app seeded with `generate_certificate`.
    pub fn private_key_pem(&self, consumer_key: &str) -> Option<String> {
        self.inner.world().generated_keys.get(consumer_key).cloned()
    }
    /// Path of that private key's file.
    pub fn private_key_file(&self, consumer_key: &str) -> PathBuf {
        self.state_dir.join(format!("{}.key.pem", sanitize(consumer_key)))
    }

    pub fn user_id(&self, username: &str) -> Option<String> {
        self.inner.world().user_by_username(username).map(|u| u.id.clone())
    }
    pub fn org_id_of_user(&self, username: &str) -> Option<String> {
        self.inner.world().user_by_username(username).map(|u| u.org_id.clone())
    }
    /// How many sessions (access tokens) the orgs would still accept: what a client left open.
    pub fn live_sessions(&self) -> usize {
        self.inner.world().sessions.len()
    }
    pub fn org_ids(&self) -> Vec<String> {
        self.inner.world().org_order.clone()
    }

    /// Adds an org (with its users) while running; returns its 18-character id.
    pub fn add_org(&self, org: &OrgSeed) -> Result<String, ControlError> {
        let now = self.inner.clock.now_ms();
        Ok(self.inner.world().add_org(org, now)?)
    }
    pub fn add_app(&self, app: &AppSeed) -> Result<(), ControlError> {
        Ok(self.inner.world().add_app(app)?)
    }

    /// Moves the emulator's clock forward (sessions, codes and JWT `exp` follow it).
    pub fn advance_clock(&self, by: Duration) {
        self.inner.clock.advance(by);
    }
    /// Expires every access token; refresh tokens keep working.
    pub fn expire_all_tokens(&self) -> usize {
        self.inner.world().expire_all_sessions()
    }
    /// Revokes every access and refresh token of a user (and their app approvals).
    pub fn revoke_user(&self, username: &str) -> Result<usize, ControlError> {
        admin::revoke_user(&self.inner, username)
    }
    /// Changes a user's permissions or active flag; `None` leaves a flag as it is.
    pub fn set_user(&self, username: &str, change: &admin::UserChange) -> Result<(), ControlError> {
        admin::set_user(&self.inner, username, change)
    }
    /// Changes an app's token policies (refresh token policy, rotation, IP rules, blocks).
    pub fn set_app(&self, consumer_key: &str, change: &admin::AppChange) -> Result<(), ControlError> {
        admin::set_app(&self.inner, consumer_key, change)
    }
    /// Refreshes a sandbox: a new org id, the old copy's tokens and resources gone, users and
    /// apps carried over. Returns the new org id.
    pub fn refresh_sandbox(&self, org_id: &str) -> Result<String, ControlError> {
        let now = self.inner.clock.now_ms();
        let id = emulator_id(org_id);
        let mut world = self.inner.world();
        if !world.orgs.contains_key(&id) {
            return Err(ControlError::UnknownOrg(org_id.into()));
        }
        Ok(world.refresh_sandbox(&id, now)?)
    }
    /// Deploys a My Domain change: token replies name `host` as the org's instance from now
    /// on, the org's sessions end (its refresh tokens too when `end_refresh_tokens`), and the
    /// previous host redirects to the new one until the next change.
    pub fn change_my_domain(&self, org_id: &str, host: &str, end_refresh_tokens: bool) -> Result<(), ControlError> {
        let id = emulator_id(org_id);
        let mut world = self.inner.world();
        if !world.orgs.contains_key(&id) {
            return Err(ControlError::UnknownOrg(org_id.into()));
        }
        Ok(world.change_my_domain(&id, host, end_refresh_tokens)?)
    }
    /// Adds a Lightning app (and its utility bar, when it names one the org lacks) to an org.
    pub fn add_lightning_app(&self, org_id: &str, app: &LightningAppSeed) -> Result<(), ControlError> {
        let now = self.inner.clock.unique_ms();
        let id = emulator_id(org_id);
        let mut world = self.inner.world();
        if !world.orgs.contains_key(&id) {
            return Err(ControlError::UnknownOrg(org_id.into()));
        }
        Ok(world.add_lightning_app(&id, app, now)?)
    }

    /// A Lightning page's (FlexiPage's) Metadata API XML, as the org holds it now.
    pub fn flexipage_xml(&self, org_id: &str, name: &str) -> Option<String> {
        let now = self.inner.clock.now_ms();
        let mut world = self.inner.world();
        world.settle_deploys(now);
        world.flexipage_xml(&emulator_id(org_id), name)
    }

    /// Installs a managed package's static resource in an org; returns its id.
    pub fn install_managed_resource(
        &self,
        org_id: &str,
        resource: &ManagedResourceSeed,
    ) -> Result<String, ControlError> {
        let now = self.inner.clock.unique_ms();
        let id = emulator_id(org_id);
        let mut world = self.inner.world();
        if !world.orgs.contains_key(&id) {
            return Err(ControlError::UnknownOrg(org_id.into()));
        }
        Ok(world.install_managed_resource(&id, resource, now)?)
    }
    /// How long a Metadata API deploy takes on the emulator's clock (3 s unless set).
    pub fn set_deploy_time(&self, time: Duration) {
        self.inner.world().deploy_ms = i64::try_from(time.as_millis()).unwrap_or(i64::MAX);
    }
    /// Changes an org's login IP ranges.
    pub fn set_org(&self, org_id: &str, change: &admin::OrgChange) -> Result<(), ControlError> {
        admin::set_org(&self.inner, org_id, change)
    }
    /// How many refresh tokens a user holds for an app (their live approvals).
    pub fn approvals(&self, username: &str, consumer_key: &str) -> usize {
        let world = self.inner.world();
        let Some(user) = world.user_by_username(username) else { return 0 };
        world.refresh_tokens.values().filter(|g| g.user_id == user.id && g.consumer_key == consumer_key).count()
    }
    /// Sets an org's daily API allowance and how much of it is used.
    pub fn set_api_usage(&self, org_id: &str, used: u64, max: u64) -> Result<(), ControlError> {
        let mut world = self.inner.world();
        let org = world.orgs.get_mut(org_id).ok_or_else(|| ControlError::UnknownOrg(org_id.into()))?;
        org.api_used = used;
        org.daily_api_limit = max;
        Ok(())
    }

    pub fn set_latency(&self, latency: Latency) {
        self.inner.observe.set_latency(latency);
    }
    /// Whether create/update accept a blob as a multipart body (as Salesforce does); off, they
    /// answer 415, so a client's fallback to base64 JSON can be tested.
    pub fn set_multipart_blobs(&self, accepted: bool) {
        self.inner.observe.set_multipart_blobs(accepted);
    }
    /// Adds a fault rule; returns its id.
    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        self.inner.observe.add_fault(rule)
    }
    pub fn clear_faults(&self) {
        self.inner.observe.clear_faults();
    }
    /// The request log, oldest first (the newest 200,000 requests are kept).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.observe.requests(0)
    }
    pub fn clear_requests(&self) {
        self.inner.observe.clear_requests();
    }

    /// The static resources of an org, by name.
    pub fn resources(&self, org_id: &str) -> Vec<ResourceInfo> {
        admin::resources(&self.inner, org_id)
    }
    /// A static resource's body.
    pub fn resource_body(&self, org_id: &str, name: &str) -> Option<Vec<u8>> {
        self.inner.world().resource_by_name(org_id, name).map(|r| r.body.to_vec())
    }

    /// A person edits the org's own static resource `name` in Setup, as `by` (a username of
    /// that org): what Lightbridge's drift check must notice (#17).
    pub fn edit_resource(
        &self,
        org_id: &str,
        name: &str,
        by: &str,
        edit: &admin::ResourceEdit,
    ) -> Result<(), ControlError> {
        admin::edit_resource(&self.inner, org_id, name, by, edit)
    }

    /// Stops accepting connections.
    pub fn shutdown(&self) {
        self.server.stop();
    }
}

pub use admin::{AppChange, OrgChange, ResourceEdit, UserChange};

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// An org id as the emulator keys it (18 characters).
fn emulator_id(org_id: &str) -> String {
    ids::normalize(org_id).unwrap_or_else(|| org_id.to_string())
}
