//! The emulator's world: orgs, users, apps, issued credentials and static resources, held in
//! memory behind one lock. Handlers take the lock briefly and never across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::ids;
use crate::seed::{AppSeed, OrgSeed, Seed, SeedError, UserSeed};

/// How long an authorization code may wait to be exchanged (seconds).
pub const CODE_TTL_SECS: i64 = 15 * 60;
/// How long a sign-in page stays valid (seconds).
pub const PENDING_TTL_SECS: i64 = 30 * 60;
/// Largest static resource body (bytes): 5 MB.
pub const MAX_RESOURCE_BYTES: usize = 5 * 1024 * 1024;
/// Static resource storage per org (bytes): 250 MB.
pub const MAX_ORG_RESOURCE_BYTES: usize = 250 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub edition: String,
    pub sandbox: bool,
    pub instance_name: String,
    pub session_timeout_ms: i64,
    pub daily_api_limit: u64,
    pub api_used: u64,
    pub created_ms: i64,
    pub pod: String,
    /// The users' profile's login IP ranges (empty: anywhere).
    pub login_ip_ranges: Vec<crate::policy::IpRange>,
    /// The org's My Domain host, when it has its own: token replies name it in `instance_url`
    /// (the listener's scheme and port, this host). `None`: the listener's own host.
    pub my_domain: Option<String>,
    /// The My Domain host before the last change: requests to it are redirected to the
    /// current one until the next change.
    pub previous_my_domain: Option<String>,
    /// The org's Lightning apps, the default app first.
    pub apps: Vec<crate::flexipage::LightningApp>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password: String,
    pub active: bool,
    pub api_enabled: bool,
    pub customize_application: bool,
    pub frozen: bool,
    pub view_setup: bool,
    /// *Modify Metadata Through Metadata API Functions*: what a Metadata API deploy needs
    /// (or *Modify All Data*).
    pub modify_metadata: bool,
    pub modify_all_data: bool,
}

impl User {
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_string()
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    pub callback_urls: Vec<String>,
    pub scopes: Vec<String>,
    /// PKCS#1 `RSAPublicKey` DER taken from the app's certificate.
    pub jwt_public_key: Option<Vec<u8>>,
    pub require_pkce: bool,
    pub require_secret: bool,
    pub require_secret_for_refresh: bool,
    pub rotate_refresh_tokens: bool,
    pub refresh_policy: crate::seed::RefreshTokenPolicy,
    pub ip_relaxation: crate::seed::IpRelaxation,
    pub refresh_ip_allowlist: Vec<crate::policy::IpRange>,
    /// Orgs whose admins blocked the app.
    pub blocked_in: std::collections::HashSet<String>,
    pub client_credentials_user: Option<String>,
    pub pre_authorized: Vec<String>,
    pub installed: bool,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct Session {
    pub org_id: String,
    pub user_id: String,
    pub consumer_key: String,
    pub scopes: Vec<String>,
    pub expires_ms: i64,
    /// When the expiry was last pushed out; Salesforce extends a session once more than half
    /// of its timeout has passed since then.
    pub extended_ms: i64,
    /// The refresh token this access token came from, so revoking one revokes both.
    pub refresh_token: Option<String>,
    /// Base URL of the host that issued the token (`<base>/id/<org>/<user>` is its identity).
    pub login_base: String,
}

#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub login_base: String,
    pub org_id: String,
    pub user_id: String,
    pub consumer_key: String,
    pub scopes: Vec<String>,
    /// When the approval this token carries was given (rotation keeps it: the policy's
    /// "expire after" counts from the sign-in, not from the last rotation).
    pub issued_ms: i64,
    pub last_used_ms: i64,
    /// The approval this token belongs to: rotation hands it on, and replaying a retired
    /// token of the family revokes the family.
    pub family: String,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub consumer_key: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub user_id: String,
    pub org_id: String,
    pub scopes: Vec<String>,
    pub expires_ms: i64,
    pub login_base: String,
}

/// An authorize request waiting for the user to sign in and approve.
#[derive(Debug, Clone)]
pub struct PendingAuth {
    pub host: crate::HostKind,
    pub login_base: String,
    pub consumer_key: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub force_consent: bool,
    pub user_id: Option<String>,
    pub expires_ms: i64,
}

#[derive(Debug, Clone)]
pub struct StaticResource {
    pub id: String,
    pub org_id: String,
    /// A managed package's namespace (`NamespacePrefix`); `None` for the org's own resources.
    /// Names are unique per namespace, and a managed resource cannot be changed or deleted.
    pub namespace_prefix: Option<String>,
    pub name: String,
    pub content_type: String,
    pub cache_control: String,
    pub description: Option<String>,
    /// Shares the request body it arrived in (no copy per upload).
    pub body: axum::body::Bytes,
    pub created_ms: i64,
    pub created_by: String,
    pub modified_ms: i64,
    pub modified_by: String,
}

/// A query's remaining records, fetched page by page through `nextRecordsUrl`.
#[derive(Debug, Clone)]
pub struct QueryCursor {
    pub org_id: String,
    pub records: Arc<Vec<serde_json::Value>>,
    pub batch: usize,
}

#[derive(Debug, Default)]
pub struct World {
    pub orgs: HashMap<String, Org>,
    pub org_order: Vec<String>,
    pub users: HashMap<String, User>,
    /// Lower-cased username → user id.
    pub usernames: HashMap<String, String>,
    pub apps: HashMap<String, App>,
    pub sessions: HashMap<String, Session>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub codes: HashMap<String, AuthCode>,
    pub pending: HashMap<String, PendingAuth>,
    /// (consumer key, user id) pairs the user approved on the consent page.
    pub approvals: std::collections::HashSet<(String, String)>,
    /// Refresh tokens retired by rotation → their family and app.
    pub retired_refresh: HashMap<String, (String, String)>,
    /// (consumer key, user id) → the families (approvals) that count toward the five, oldest
    /// first.
    pub approval_order: HashMap<(String, String), VecDeque<String>>,
    /// Static resources by id; written only through [`World::put_resource`] and
    /// [`World::remove_resource`], which keep `resource_names` in step.
    resources: HashMap<String, StaticResource>,
    /// (org id, lower-cased namespace or "", lower-cased name) → resource id.
    /// Ordered, so one org's resources are a range.
    resource_names: std::collections::BTreeMap<(String, String, String), String>,
    pub cursors: HashMap<String, QueryCursor>,
    pub cursor_order: VecDeque<String>,
    next_org: u64,
    next_user: u64,
    /// Record ids are unique across every org, as Salesforce's are.
    next_record: u64,
    /// Generated JWT private keys (PEM) by consumer key.
    pub generated_keys: HashMap<String, String>,
    /// Metadata components by (org id, kind, lower-cased name) (issue #15).
    pub components: std::collections::BTreeMap<(String, crate::metadata::Kind, String), crate::metadata::Component>,
    /// Metadata API deploys by id.
    pub deploys: HashMap<String, crate::metadata::Deploy>,
    /// How long a deploy takes on the emulator's clock.
    pub deploy_ms: i64,
    /// Browser sessions of the Lightning page stand-in (cookie → org id, user id).
    pub ui_sessions: HashMap<String, (String, String)>,
}

const MAX_CURSORS: usize = 1_000;

impl World {
    /// An empty world, deploys taking [`crate::metadata::DEFAULT_DEPLOY_MS`].
    pub fn new() -> Self {
        World { deploy_ms: crate::metadata::DEFAULT_DEPLOY_MS, ..World::default() }
    }

    pub fn user_by_username(&self, username: &str) -> Option<&User> {
        self.usernames.get(&username.to_ascii_lowercase()).and_then(|id| self.users.get(id))
    }

    pub fn add_seed(&mut self, seed: &Seed, now_ms: i64) -> Result<(), SeedError> {
        for org in &seed.orgs {
            self.add_org(org, now_ms)?;
        }
        for app in &seed.apps {
            self.add_app(app)?;
        }
        Ok(())
    }

    pub fn add_org(&mut self, seed: &OrgSeed, now_ms: i64) -> Result<String, SeedError> {
        self.next_org += 1;
        let id = match &seed.id {
            Some(id) => ids::normalize(id).filter(|id| id.starts_with(ids::ORG_PREFIX)).ok_or_else(|| {
                SeedError::Invalid(format!("org id {id:?} is not a 15- or 18-character id starting 00D"))
            })?,
            None => ids::make(ids::ORG_PREFIX, "Lb", self.next_org),
        };
        if self.orgs.contains_key(&id) {
            return Err(SeedError::Invalid(format!("org id {id} is used twice")));
        }
        // Usernames are unique across Salesforce: check them all before changing anything.
        let mut seen = std::collections::HashSet::new();
        for user in &seed.users {
            let key = user.username.to_ascii_lowercase();
            if self.usernames.contains_key(&key) || !seen.insert(key) {
                return Err(SeedError::Invalid(format!("username {} is used twice", user.username)));
            }
        }
        let pod = id[3..5].to_string();
        let instance_name = seed.instance_name.clone().unwrap_or_else(|| {
            if seed.sandbox {
                format!("CS{}", 10 + self.next_org % 90)
            } else {
                format!("NA{}", 10 + self.next_org % 200)
            }
        });
        self.orgs.insert(
            id.clone(),
            Org {
                id: id.clone(),
                name: seed.name.clone(),
                edition: seed.edition.clone(),
                sandbox: seed.sandbox,
                instance_name,
                session_timeout_ms: (seed.session_timeout_secs as i64).saturating_mul(1000),
                daily_api_limit: seed.daily_api_limit,
                api_used: 0,
                created_ms: now_ms,
                pod,
                login_ip_ranges: crate::policy::parse_ranges(&seed.login_ip_ranges).map_err(SeedError::Invalid)?,
                my_domain: seed.my_domain.as_deref().map(my_domain_host).transpose()?,
                previous_my_domain: None,
                apps: Vec::new(),
            },
        );
        self.org_order.push(id.clone());
        for user in &seed.users {
            self.add_user(&id, user)?;
        }
        for resource in &seed.managed_resources {
            self.install_managed_resource(&id, resource, now_ms)?;
        }
        let apps = seed.lightning_apps.clone().unwrap_or_else(crate::seed::LightningAppSeed::standard);
        for app in &apps {
            self.add_lightning_app(&id, app, now_ms)?;
        }
        Ok(id)
    }

    /// Adds a Lightning app to an org, and its utility bar when it names one the org lacks.
    pub fn add_lightning_app(
        &mut self,
        org_id: &str,
        seed: &crate::seed::LightningAppSeed,
        now_ms: i64,
    ) -> Result<(), SeedError> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.len() <= 80
                && n.starts_with(|c: char| c.is_ascii_alphabetic())
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !n.contains("__")
        };
        if !name_ok(&seed.developer_name) || seed.utility_bar.as_deref().is_some_and(|b| !name_ok(b)) {
            return Err(SeedError::Invalid(format!(
                "app {:?} (utility bar {:?}): developer names are letters, digits and single underscores",
                seed.developer_name, seed.utility_bar
            )));
        }
        let org = self.orgs.get(org_id).ok_or_else(|| SeedError::Invalid(format!("no org {org_id}")))?;
        let app = crate::flexipage::LightningApp {
            durable_id: ids::make("02u", &org.pod, org.apps.len() as u64 + 1),
            namespace: seed.namespace.clone(),
            developer_name: seed.developer_name.clone(),
            label: seed.label.clone(),
            utility_bar: seed.utility_bar.clone(),
        };
        if org.apps.iter().any(|a| a.full_name().eq_ignore_ascii_case(&app.full_name())) {
            return Err(SeedError::Invalid(format!("app {} is listed twice", app.full_name())));
        }
        if let Some(bar) = &seed.utility_bar
            && self.component(org_id, crate::metadata::Kind::FlexiPage, bar).is_none()
        {
            let xml = crate::flexipage::utility_bar_xml(&format!("{} UtilityBar", seed.label), &seed.utility_items);
            self.seed_component(org_id, crate::metadata::Kind::FlexiPage, bar, xml.into_bytes(), now_ms);
        }
        if let Some(org) = self.orgs.get_mut(org_id) {
            org.apps.push(app);
        }
        Ok(())
    }

    pub fn add_user(&mut self, org_id: &str, seed: &UserSeed) -> Result<String, SeedError> {
        let key = seed.username.to_ascii_lowercase();
        if self.usernames.contains_key(&key) {
            return Err(SeedError::Invalid(format!("username {} is used twice", seed.username)));
        }
        let org = self.orgs.get(org_id).ok_or_else(|| SeedError::Invalid(format!("no org {org_id}")))?;
        self.next_user += 1;
        let id = match &seed.id {
            Some(id) => ids::normalize(id)
                .filter(|id| id.starts_with(ids::USER_PREFIX))
                .ok_or_else(|| SeedError::Invalid(format!("user id {id:?} is not an id starting 005")))?,
            None => ids::make(ids::USER_PREFIX, &org.pod, self.next_user),
        };
        let local = seed.username.split('@').next().unwrap_or("user");
        self.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                org_id: org_id.to_string(),
                username: seed.username.clone(),
                email: seed.email.clone().unwrap_or_else(|| seed.username.clone()),
                first_name: seed.first_name.clone().unwrap_or_default(),
                last_name: seed.last_name.clone().unwrap_or_else(|| local.to_string()),
                password: seed.password.clone(),
                active: seed.active,
                api_enabled: seed.api_enabled,
                customize_application: seed.customize_application,
                frozen: seed.frozen,
                view_setup: seed.view_setup,
                modify_metadata: seed.modify_metadata,
                modify_all_data: seed.modify_all_data,
            },
        );
        self.usernames.insert(key, id.clone());
        Ok(id)
    }

    pub fn add_app(&mut self, seed: &AppSeed) -> Result<(), SeedError> {
        if seed.consumer_key.is_empty() {
            return Err(SeedError::Invalid("an app needs a consumer_key".into()));
        }
        let jwt_public_key = if seed.generate_certificate {
            let (key_pem, public_key) = crate::tls::generate_jwt_key(&seed.consumer_key)
                .map_err(|e| SeedError::Invalid(format!("cannot generate a certificate: {e}")))?;
            self.generated_keys.insert(seed.consumer_key.clone(), key_pem);
            Some(public_key)
        } else {
            match &seed.certificate {
                Some(pem) => Some(
                    crate::jwt::rsa_public_key_from_certificate(pem)
                        .map_err(|e| SeedError::Invalid(format!("app {}: {e}", seed.consumer_key)))?,
                ),
                None => None,
            }
        };
        self.apps.insert(
            seed.consumer_key.clone(),
            App {
                name: seed.name.clone(),
                consumer_key: seed.consumer_key.clone(),
                consumer_secret: seed.consumer_secret.clone(),
                callback_urls: seed.callback_urls.clone(),
                scopes: seed.scopes.clone(),
                jwt_public_key,
                require_pkce: seed.require_pkce,
                require_secret: seed.require_secret,
                require_secret_for_refresh: seed.require_secret_for_refresh,
                rotate_refresh_tokens: seed.rotate_refresh_tokens,
                refresh_policy: match (seed.refresh_token_policy, seed.refresh_token_ttl_secs) {
                    (crate::seed::RefreshTokenPolicy::ValidUntilRevoked, Some(seconds)) => {
                        crate::seed::RefreshTokenPolicy::ExpireAfter { seconds }
                    }
                    (policy, _) => policy,
                },
                ip_relaxation: seed.ip_relaxation,
                refresh_ip_allowlist: crate::policy::parse_ranges(&seed.refresh_token_ip_allowlist)
                    .map_err(|e| SeedError::Invalid(format!("app {}: {e}", seed.consumer_key)))?,
                blocked_in: seed.blocked_in.iter().filter_map(|id| ids::normalize(id)).collect(),
                client_credentials_user: seed.client_credentials_user.clone(),
                pre_authorized: seed.pre_authorized.iter().map(|u| u.to_ascii_lowercase()).collect(),
                installed: seed.installed,
            },
        );
        Ok(())
    }

    /// Mints a record id in `org_id`.
    pub fn new_record_id(&mut self, org_id: &str, prefix: &str) -> String {
        let org = self.orgs.get(org_id).expect("record ids are minted for known orgs");
        self.next_record += 1;
        ids::make(prefix, &org.pod, self.next_record)
    }

    /// Issues an access token (and, when `with_refresh`, a refresh token) for a user.
    pub fn issue_tokens(
        &mut self,
        user_id: &str,
        consumer_key: &str,
        scopes: &[String],
        with_refresh: bool,
        login_base: &str,
        now_ms: i64,
    ) -> (String, Option<String>) {
        let user = &self.users[user_id];
        let org = &self.orgs[&user.org_id];
        let refresh = with_refresh.then(|| {
            let token = ids::refresh_token();
            self.refresh_tokens.insert(
                token.clone(),
                RefreshGrant {
                    login_base: login_base.to_string(),
                    org_id: org.id.clone(),
                    user_id: user_id.to_string(),
                    consumer_key: consumer_key.to_string(),
                    scopes: scopes.to_vec(),
                    issued_ms: now_ms,
                    last_used_ms: now_ms,
                    family: token.clone(),
                },
            );
            token
        });
        let access = self.issue_access_token(user_id, consumer_key, scopes, refresh.clone(), login_base, now_ms);
        (access, refresh)
    }

    pub fn issue_access_token(
        &mut self,
        user_id: &str,
        consumer_key: &str,
        scopes: &[String],
        refresh_token: Option<String>,
        login_base: &str,
        now_ms: i64,
    ) -> String {
        let user = &self.users[user_id];
        let org = &self.orgs[&user.org_id];
        let token = ids::access_token(&org.id);
        self.sessions.insert(
            token.clone(),
            Session {
                org_id: org.id.clone(),
                user_id: user_id.to_string(),
                consumer_key: consumer_key.to_string(),
                scopes: scopes.to_vec(),
                expires_ms: now_ms + org.session_timeout_ms,
                extended_ms: now_ms,
                refresh_token,
                login_base: login_base.to_string(),
            },
        );
        token
    }

    /// Looks up a live session, extending it the way Salesforce does on activity.
    pub fn touch_session(&mut self, token: &str, now_ms: i64) -> Option<Session> {
        let timeout = {
            let session = self.sessions.get(token)?;
            if now_ms >= session.expires_ms {
                self.sessions.remove(token);
                return None;
            }
            self.orgs.get(&session.org_id)?.session_timeout_ms
        };
        let session = self.sessions.get_mut(token)?;
        if now_ms - session.extended_ms > timeout / 2 {
            session.expires_ms = now_ms + timeout;
            session.extended_ms = now_ms;
        }
        Some(session.clone())
    }

    /// Refreshes a sandbox: the copy gets a new org id (and id prefix); its users keep their
    /// usernames and ids, the apps carry over, and every session, refresh token and approval of
    /// the old copy ends, as do its static resources (a refresh copies production afresh). Its
    /// Lightning apps and metadata components (utility bars among them) carry over, as if
    /// production held the same.
    /// Returns the new org id.
    pub fn refresh_sandbox(&mut self, old_id: &str, now_ms: i64) -> Result<String, SeedError> {
        let mut org = self.orgs.get(old_id).cloned().ok_or_else(|| SeedError::Invalid(format!("no org {old_id}")))?;
        if !org.sandbox {
            return Err(SeedError::Invalid(format!("{old_id} is not a sandbox: only a sandbox is refreshed")));
        }
        self.next_org += 1;
        let id = ids::make(ids::ORG_PREFIX, "Lb", self.next_org);
        org.id = id.clone();
        org.pod = id[3..5].to_string();
        org.created_ms = now_ms;
        org.api_used = 0;
        self.orgs.remove(old_id);
        self.orgs.insert(id.clone(), org);
        for slot in self.org_order.iter_mut().filter(|o| *o == old_id) {
            *slot = id.clone();
        }
        let users: Vec<String> = self.users.values().filter(|u| u.org_id == old_id).map(|u| u.id.clone()).collect();
        for user in &users {
            self.revoke_user(user);
            if let Some(u) = self.users.get_mut(user) {
                u.org_id = id.clone();
            }
        }
        let resources: Vec<String> = self.org_resources(old_id).map(|r| r.id.clone()).collect();
        for resource in resources {
            self.remove_resource(&resource);
        }
        for app in self.apps.values_mut() {
            if app.blocked_in.remove(old_id) {
                app.blocked_in.insert(id.clone());
            }
        }
        let keys: Vec<_> = self.components.keys().filter(|(org, _, _)| org == old_id).cloned().collect();
        for key in keys {
            if let Some(mut component) = self.components.remove(&key) {
                component.org_id = id.clone();
                self.components.insert((id.clone(), key.1, key.2), component);
            }
        }
        Ok(id)
    }

    /// Deploys a My Domain change: the org's instance host becomes `host`; every session of
    /// the org ends (Salesforce: "active user sessions are terminated"); refresh tokens live on
    /// unless `end_refresh_tokens` (the docs do not say; both readings are switchable). The
    /// host before is redirected to the new one until the next change.
    pub fn change_my_domain(&mut self, org_id: &str, host: &str, end_refresh_tokens: bool) -> Result<(), SeedError> {
        let host = my_domain_host(host)?;
        // `127.0.0.1`, the emulator's own host, is every org's without one: not anyone's own.
        let own = (host != "127.0.0.1").then_some(host.clone());
        if own.is_some() && self.orgs.values().any(|o| o.id != org_id && o.my_domain == own) {
            return Err(SeedError::Invalid(format!("My Domain {host} belongs to another org")));
        }
        let org = self.orgs.get_mut(org_id).ok_or_else(|| SeedError::Invalid(format!("no org {org_id}")))?;
        if org.my_domain == own {
            return Err(SeedError::Invalid(format!("{host} is already the org's My Domain")));
        }
        org.previous_my_domain = std::mem::replace(&mut org.my_domain, own);
        self.sessions.retain(|_, s| s.org_id != org_id);
        if end_refresh_tokens {
            let users: Vec<String> = self.users.values().filter(|u| u.org_id == org_id).map(|u| u.id.clone()).collect();
            for user in &users {
                self.revoke_user(user);
            }
        }
        Ok(())
    }

    /// The org whose previous My Domain `host` is, when no org lives there now: where a
    /// request to that host is redirected.
    pub fn moved_from(&self, host: &str) -> Option<&Org> {
        if self.orgs.values().any(|o| o.my_domain.as_deref() == Some(host)) {
            return None;
        }
        self.orgs.values().find(|o| o.previous_my_domain.as_deref() == Some(host))
    }

    /// Revokes a refresh token and every access token minted from it (and its approval).
    pub fn revoke_refresh(&mut self, token: &str) -> bool {
        let Some(grant) = self.refresh_tokens.remove(token) else {
            return false;
        };
        self.sessions.retain(|_, s| s.refresh_token.as_deref() != Some(token));
        let key = (grant.consumer_key.clone(), grant.user_id.clone());
        if let Some(order) = self.approval_order.get_mut(&key) {
            order.retain(|f| *f != grant.family);
        }
        true
    }

    /// Revokes every live token of a refresh-token family (an approval), with their access
    /// tokens: what replaying a rotated-away refresh token does.
    pub fn revoke_family(&mut self, family: &str) -> usize {
        let tokens: Vec<String> =
            self.refresh_tokens.iter().filter(|(_, g)| g.family == family).map(|(t, _)| t.clone()).collect();
        // Its retired tokens need no remembering once the family is gone.
        self.retired_refresh.retain(|_, (f, _)| f != family);
        tokens.iter().filter(|t| self.revoke_refresh(t)).count()
    }

    /// Rotation: the new token takes over the old one's approval; the old one is retired
    /// (kept only to recognise a replay).
    pub fn rotate_refresh(&mut self, old: &str, now_ms: i64) -> Option<String> {
        let grant = self.refresh_tokens.remove(old)?;
        self.retired_refresh.insert(old.to_string(), (grant.family.clone(), grant.consumer_key.clone()));
        let token = ids::refresh_token();
        // Access tokens already issued live on (Salesforce documents only the old refresh
        // token's end), now tied to the new one, so revoking the family ends them too.
        for session in self.sessions.values_mut().filter(|s| s.refresh_token.as_deref() == Some(old)) {
            session.refresh_token = Some(token.clone());
        }
        self.refresh_tokens.insert(token.clone(), RefreshGrant { last_used_ms: now_ms, ..grant });
        Some(token)
    }

    /// Counts a web-server sign-in's refresh token as one of the user's approvals for the app:
    /// past five, the oldest approval is revoked (Salesforce: "Each connected app allows five
    /// unique approvals per user. After a fifth approval is made, the oldest approval is
    /// revoked."). Returns how many tokens that revoked.
    pub fn count_approval(&mut self, consumer_key: &str, user_id: &str, family: &str) -> usize {
        let key = (consumer_key.to_string(), user_id.to_string());
        let live: std::collections::HashSet<String> = self
            .refresh_tokens
            .values()
            .filter(|g| g.consumer_key == consumer_key && g.user_id == user_id)
            .map(|g| g.family.clone())
            .collect();
        let order = self.approval_order.entry(key.clone()).or_default();
        order.retain(|f| live.contains(f));
        order.push_back(family.to_string());
        let mut oldest = Vec::new();
        while order.len() > 5 {
            oldest.extend(order.pop_front());
        }
        oldest.iter().map(|f| self.revoke_family(f)).sum()
    }

    /// Revokes every token a user holds. Returns how many were revoked.
    pub fn revoke_user(&mut self, user_id: &str) -> usize {
        let before = self.sessions.len() + self.refresh_tokens.len();
        self.sessions.retain(|_, s| s.user_id != user_id);
        self.refresh_tokens.retain(|_, r| r.user_id != user_id);
        self.approvals.retain(|(_, u)| u != user_id);
        self.approval_order.retain(|(_, u), _| u != user_id);
        before - self.sessions.len() - self.refresh_tokens.len()
    }

    pub fn expire_all_sessions(&mut self) -> usize {
        let n = self.sessions.len();
        self.sessions.clear();
        n
    }

    pub fn org_resource_bytes(&self, org_id: &str) -> usize {
        self.org_resources(org_id).map(|r| r.body.len()).sum()
    }

    /// One org's static resources (without visiting every other org's).
    pub fn org_resources<'a>(&'a self, org_id: &'a str) -> impl Iterator<Item = &'a StaticResource> + 'a {
        self.resource_names
            .range((org_id.to_string(), String::new(), String::new())..)
            .take_while(move |((org, _, _), _)| org == org_id)
            .filter_map(|(_, id)| self.resources.get(id))
    }

    /// A static resource by its (18-character) id, of any org.
    pub fn resource(&self, id: &str) -> Option<&StaticResource> {
        self.resources.get(id)
    }

    /// Every org's static resources.
    pub fn all_resources(&self) -> impl Iterator<Item = &StaticResource> {
        self.resources.values()
    }

    /// Stores a new or changed static resource, its name index following a rename.
    pub fn put_resource(&mut self, resource: StaticResource) {
        if let Some(old) = self.resources.get(&resource.id) {
            self.resource_names.remove(&name_key(old));
        }
        self.resource_names.insert(name_key(&resource), resource.id.clone());
        self.resources.insert(resource.id.clone(), resource);
    }

    /// Removes a static resource and its name.
    pub fn remove_resource(&mut self, id: &str) -> Option<StaticResource> {
        let removed = self.resources.remove(id)?;
        self.resource_names.remove(&name_key(&removed));
        Some(removed)
    }

    /// Installs a managed package's static resource (`namespace`'s `name`) in an org: it sits
    /// beside the org's own resource of the same name, and no API call changes or deletes it.
    pub fn install_managed_resource(
        &mut self,
        org_id: &str,
        seed: &crate::seed::ManagedResourceSeed,
        now_ms: i64,
    ) -> Result<String, SeedError> {
        if !self.orgs.contains_key(org_id) {
            return Err(SeedError::Invalid(format!("no org {org_id}")));
        }
        let namespace = seed.namespace.trim();
        let namespace_ok = !namespace.is_empty()
            && namespace.len() <= 15
            && namespace.starts_with(|c: char| c.is_ascii_alphabetic())
            && namespace.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !namespace.contains("__");
        if !namespace_ok {
            return Err(SeedError::Invalid(format!(
                "namespace {namespace:?}: up to 15 letters, digits and single underscores, a letter first"
            )));
        }
        if let Some(problem) = crate::rest::name_problem(&seed.name) {
            return Err(SeedError::Invalid(format!("resource name {:?}: {problem}", seed.name)));
        }
        let key = (org_id.to_string(), namespace.to_ascii_lowercase(), seed.name.to_ascii_lowercase());
        if self.resource_names.contains_key(&key) {
            return Err(SeedError::Invalid(format!("{namespace}__{} is already installed", seed.name)));
        }
        let id = self.new_record_id(org_id, crate::ids::STATIC_RESOURCE_PREFIX);
        self.put_resource(StaticResource {
            id: id.clone(),
            org_id: org_id.to_string(),
            namespace_prefix: Some(namespace.to_string()),
            name: seed.name.clone(),
            content_type: seed.content_type.clone(),
            cache_control: "Public".into(),
            description: Some(format!("Installed with the {namespace} package")),
            body: axum::body::Bytes::from(seed.body.clone().into_bytes()),
            created_ms: now_ms,
            created_by: String::new(),
            modified_ms: now_ms,
            modified_by: String::new(),
        });
        Ok(id)
    }

    /// The org's own (unmanaged) static resource of this name.
    pub fn resource_by_name(&self, org_id: &str, name: &str) -> Option<&StaticResource> {
        let key = (org_id.to_string(), String::new(), name.to_ascii_lowercase());
        self.resource_names.get(&key).and_then(|id| self.resources.get(id))
    }

    pub fn store_cursor(&mut self, cursor: QueryCursor) -> String {
        let id = format!("{}{}", ids::QUERY_LOCATOR_PREFIX, ids::random_alnum(15));
        self.cursors.insert(id.clone(), cursor);
        self.cursor_order.push_back(id.clone());
        while self.cursor_order.len() > MAX_CURSORS {
            if let Some(old) = self.cursor_order.pop_front() {
                self.cursors.remove(&old);
            }
        }
        id
    }
}

fn name_key(r: &StaticResource) -> (String, String, String) {
    let namespace = r.namespace_prefix.as_deref().unwrap_or_default().to_ascii_lowercase();
    (r.org_id.clone(), namespace, r.name.to_ascii_lowercase())
}

/// A My Domain host as the emulator takes it: a DNS name (letters, digits, hyphens, dots), no
/// scheme or port; it must resolve to 127.0.0.1 for a client to reach it (`localhost` does).
pub fn my_domain_host(host: &str) -> Result<String, SeedError> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(SeedError::Invalid(format!(
            "My Domain {host:?} is not a host name (letters, digits, hyphens and dots; no scheme or port)"
        )));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(id: &str, org: &str, name: &str) -> StaticResource {
        StaticResource {
            id: id.into(),
            org_id: org.into(),
            namespace_prefix: None,
            name: name.into(),
            content_type: "application/zip".into(),
            cache_control: "Private".into(),
            description: None,
            body: axum::body::Bytes::from_static(b"zip"),
            created_ms: 1,
            created_by: "u".into(),
            modified_ms: 1,
            modified_by: "u".into(),
        }
    }

    #[test]
    fn the_name_index_follows_puts_renames_and_removes() {
        let mut world = World::default();
        world.put_resource(resource("081A", "org1", "Player"));
        world.put_resource(resource("081B", "org2", "Player"));
        assert_eq!(world.resource_by_name("org1", "PLAYER").map(|r| r.id.as_str()), Some("081A"));
        world.put_resource(resource("081A", "org1", "Viewer"));
        assert!(world.resource_by_name("org1", "Player").is_none(), "the old name is gone");
        assert_eq!(world.resource_by_name("org1", "viewer").map(|r| r.id.as_str()), Some("081A"));
        assert_eq!(world.org_resources("org1").count(), 1);
        assert_eq!(world.remove_resource("081A").map(|r| r.name), Some("Viewer".into()));
        assert!(world.resource_by_name("org1", "Viewer").is_none());
        assert_eq!(world.org_resources("org1").count(), 0);
        assert_eq!(world.org_resources("org2").count(), 1, "another org's resource is untouched");
    }
}
