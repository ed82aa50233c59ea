//! The seed format: the orgs, users and client apps an emulator starts with.
//!
//! A seed is TOML or JSON (by file extension). Every field but an org's `name`, a user's
//! `username` and an app's `consumer_key` has a default, so a seed can be as short as the test
//! that needs it. See docs/emulator.md, "Seed format", for a full example.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub orgs: Vec<OrgSeed>,
    #[serde(default)]
    pub apps: Vec<AppSeed>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSeed {
    /// 15- or 18-character org id starting `00D`; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The company name, as `SELECT Name FROM Organization` returns it.
    pub name: String,
    /// `OrganizationType`, e.g. "Enterprise Edition" or "Developer Edition".
    #[serde(default = "default_edition")]
    pub edition: String,
    /// A sandbox answers `IsSandbox = true` and signs in only through the sandbox login host.
    #[serde(default)]
    pub sandbox: bool,
    /// `InstanceName`, e.g. "NA1" or "CS42"; derived from `sandbox` when absent.
    #[serde(default)]
    pub instance_name: Option<String>,
    /// Access tokens expire after this many seconds without use (the org's session timeout).
    #[serde(default = "default_session_timeout")]
    pub session_timeout_secs: u64,
    /// Daily API request allowance (`DailyApiRequests.Max`).
    #[serde(default = "default_daily_api_limit")]
    pub daily_api_limit: u64,
    /// The users' profile's login IP ranges (`10.0.0.0/8`, `192.0.2.1`, `192.0.2.1-192.0.2.9`);
    /// empty: any address. Enforced as each app's IP Relaxation says.
    #[serde(default)]
    pub login_ip_ranges: Vec<String>,
    /// The org's own My Domain host (e.g. `localhost`); token replies name it in
    /// `instance_url`. Absent: the emulator's own host.
    #[serde(default)]
    pub my_domain: Option<String>,
    #[serde(default)]
    pub users: Vec<UserSeed>,
    /// Static resources of installed managed packages (a `NamespacePrefix`), which share names
    /// with the org's own and which no API call may change or delete.
    #[serde(default)]
    pub managed_resources: Vec<ManagedResourceSeed>,
    /// The org's Lightning apps and their utility bars. Absent: the standard Sales app (with a
    /// utility bar holding one utility item) and Service app (without a utility bar).
    #[serde(default)]
    pub lightning_apps: Option<Vec<LightningAppSeed>>,
}

/// A Lightning app (`AppDefinition`) and, when it has one, its utility bar.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightningAppSeed {
    /// `standard` for Salesforce's own apps; absent for the org's.
    #[serde(default)]
    pub namespace: Option<String>,
    pub developer_name: String,
    pub label: String,
    /// The developer name of the app's utility bar FlexiPage; absent: the app has none.
    #[serde(default)]
    pub utility_bar: Option<String>,
    /// Components in the bar's utility items region (`notes:utilityBarNoteList`).
    #[serde(default)]
    pub utility_items: Vec<String>,
}

impl LightningAppSeed {
    /// What a new org shows: Sales with a utility bar, Service without.
    pub fn standard() -> Vec<LightningAppSeed> {
        vec![
            LightningAppSeed {
                namespace: Some("standard".into()),
                developer_name: "LightningSales".into(),
                label: "Sales".into(),
                utility_bar: Some("LightningSales_UtilityBar".into()),
                utility_items: vec!["notes:utilityBarNoteList".into()],
            },
            LightningAppSeed {
                namespace: Some("standard".into()),
                developer_name: "LightningService".into(),
                label: "Service".into(),
                utility_bar: None,
                utility_items: Vec::new(),
            },
        ]
    }
}

/// A managed package's static resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedResourceSeed {
    /// The package's namespace prefix (up to 15 characters).
    pub namespace: String,
    pub name: String,
    #[serde(default = "default_managed_content_type")]
    pub content_type: String,
    /// The resource's body, as text.
    #[serde(default)]
    pub body: String,
}

fn default_managed_content_type() -> String {
    "text/javascript".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    /// Optional 15- or 18-character user id starting `005`.
    #[serde(default)]
    pub id: Option<String>,
    /// Unique across the whole emulator, as Salesforce usernames are.
    pub username: String,
    /// Defaults to the username.
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    /// Typed on the emulator's own sign-in page; never seen by Lightbridge.
    #[serde(default = "default_password")]
    pub password: String,
    #[serde(default = "yes")]
    pub active: bool,
    /// *API Enabled*: without it every REST call answers `API_CURRENTLY_DISABLED`.
    #[serde(default = "yes")]
    pub api_enabled: bool,
    /// *Customize Application*: without it static resources cannot be created or changed.
    #[serde(default = "yes")]
    pub customize_application: bool,
    /// A frozen user cannot sign in, and their sessions end.
    #[serde(default)]
    pub frozen: bool,
    /// *View Setup and Configuration*: without it the REST `limits` resource answers 403.
    #[serde(default = "yes")]
    pub view_setup: bool,
    /// *Modify Metadata Through Metadata API Functions*: with *Modify All Data*, what a
    /// Metadata API deploy needs.
    #[serde(default = "yes")]
    pub modify_metadata: bool,
    /// *Modify All Data* (which also allows Metadata API deploys).
    #[serde(default)]
    pub modify_all_data: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSeed {
    #[serde(default = "default_app_name")]
    pub name: String,
    pub consumer_key: String,
    #[serde(default)]
    pub consumer_secret: String,
    /// Exact callback URLs; `redirect_uri` must equal one of them.
    #[serde(default)]
    pub callback_urls: Vec<String>,
    /// OAuth scopes the app may grant; a request without `scope` gets all of them.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// PEM X.509 certificate whose key signs JWT bearer assertions.
    #[serde(default)]
    pub certificate: Option<String>,
    /// Path of a PEM certificate file (relative to the seed file).
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// Emulator convenience: generate an RSA key pair and certificate at start. The private
    /// key is written next to the CA file and is available from `Emulator::private_key_pem`.
    #[serde(default)]
    pub generate_certificate: bool,
    #[serde(default)]
    pub require_pkce: bool,
    /// "Require Secret for Web Server Flow".
    #[serde(default = "yes")]
    pub require_secret: bool,
    /// "Require Secret for Refresh Token Flow" (a secret that is sent is checked either way).
    #[serde(default)]
    pub require_secret_for_refresh: bool,
    /// Refresh-token rotation: each refresh returns a new refresh token and retires the old one.
    #[serde(default)]
    pub rotate_refresh_tokens: bool,
    /// Refresh tokens expire this many seconds after issue (shorthand for
    /// `refresh_token_policy = { kind = "expire_after", seconds = N }`).
    #[serde(default)]
    pub refresh_token_ttl_secs: Option<u64>,
    /// The app's Refresh Token Policy (default: valid until revoked).
    #[serde(default)]
    pub refresh_token_policy: RefreshTokenPolicy,
    /// The app's IP Relaxation: how the org's login IP ranges apply to its tokens.
    #[serde(default)]
    pub ip_relaxation: IpRelaxation,
    /// An External Client App's refresh-token IP allowlist: refreshes from elsewhere are
    /// refused whatever the relaxation (empty: no allowlist).
    #[serde(default)]
    pub refresh_token_ip_allowlist: Vec<String>,
    /// Orgs (ids) whose admins blocked the app in *Connected Apps OAuth Usage*.
    #[serde(default)]
    pub blocked_in: Vec<String>,
    /// Client-credentials flow: the username the token acts as. Absent = flow not enabled.
    #[serde(default)]
    pub client_credentials_user: Option<String>,
    /// Usernames pre-authorized by an admin ("Admin approved users are pre-authorized").
    #[serde(default)]
    pub pre_authorized: Vec<String>,
    /// An app that is not installed refuses every sign-in with `app must be installed into org`.
    #[serde(default = "yes")]
    pub installed: bool,
}

/// An app's Refresh Token Policy, as Setup offers it (Edit Policies → OAuth Policies), in
/// seconds (Setup counts in hours, days or months).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RefreshTokenPolicy {
    /// "Refresh token is valid until revoked".
    #[default]
    ValidUntilRevoked,
    /// "Immediately expire refresh token".
    ImmediatelyExpire,
    /// "Expire refresh token after N".
    ExpireAfter { seconds: u64 },
    /// "Expire refresh token if not used for N".
    ExpireIfUnused { seconds: u64 },
}

/// An app's IP Relaxation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpRelaxation {
    /// "Enforce IP restrictions": token requests and calls from outside the login IP ranges
    /// are refused.
    #[default]
    Enforce,
    /// "Enforce IP restrictions, but relax for refreshed tokens".
    EnforceRelaxRefresh,
    /// "Relax IP restrictions".
    Relax,
}

fn yes() -> bool {
    true
}
fn default_edition() -> String {
    "Enterprise Edition".into()
}
fn default_session_timeout() -> u64 {
    7200
}
fn default_daily_api_limit() -> u64 {
    100_000
}
fn default_password() -> String {
    "emulator".into()
}
fn default_app_name() -> String {
    "Connected App".into()
}
fn default_scopes() -> Vec<String> {
    ["api", "refresh_token", "offline_access", "web", "id", "openid", "full"].map(String::from).to_vec()
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("seed file {path} is not valid {format}: {message}")]
    Parse { path: PathBuf, format: &'static str, message: String },
    #[error("seed is inconsistent: {0}")]
    Invalid(String),
}

impl Seed {
    /// Reads a seed from a `.toml` or `.json` file; relative certificate paths are resolved
    /// against the file's folder.
    pub fn from_file(path: &Path) -> Result<Self, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read { path: path.to_owned(), source })?;
        let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let mut seed: Seed = if is_json {
            serde_json::from_str(&text).map_err(|e| SeedError::Parse {
                path: path.to_owned(),
                format: "JSON",
                message: e.to_string(),
            })?
        } else {
            toml::from_str(&text).map_err(|e| SeedError::Parse {
                path: path.to_owned(),
                format: "TOML",
                message: e.to_string(),
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        for app in &mut seed.apps {
            if let Some(file) = app.certificate_file.take() {
                let full = base.join(&file);
                let pem = std::fs::read_to_string(&full).map_err(|source| SeedError::Read { path: full, source })?;
                app.certificate = Some(pem);
            }
        }
        Ok(seed)
    }

    /// The built-in demo seed: a production org and a sandbox; an admin holding both
    /// permissions, a user without *Customize Application* and one without *API Enabled*;
    /// and one client app with a generated JWT certificate.
    pub fn demo() -> Self {
        let user = |username: &str, first: &str, last: &str, customize: bool, api: bool| UserSeed {
            id: None,
            username: username.into(),
            email: Some(username.replace(".sandbox", "")),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            password: "emulator".into(),
            active: true,
            api_enabled: api,
            customize_application: customize,
            frozen: false,
            view_setup: true,
            modify_metadata: true,
            modify_all_data: false,
        };
        Seed {
            orgs: vec![
                OrgSeed {
                    id: Some("00D5g0000012AbCEAU".into()),
                    name: "Acme Corporation".into(),
                    edition: "Enterprise Edition".into(),
                    sandbox: false,
                    instance_name: Some("NA224".into()),
                    session_timeout_secs: default_session_timeout(),
                    daily_api_limit: default_daily_api_limit(),
                    login_ip_ranges: Vec::new(),
                    my_domain: None,
                    managed_resources: Vec::new(),
                    lightning_apps: None,
                    users: vec![
                        user("admin@acme.example", "Ada", "Admin", true, true),
                        user("editor@acme.example", "Eli", "Editor", false, true),
                        user("noapi@acme.example", "Nia", "Noapi", true, false),
                    ],
                },
                OrgSeed {
                    id: Some("00D7x0000009SbXEAU".into()),
                    name: "Acme Corporation (UAT sandbox)".into(),
                    edition: "Enterprise Edition".into(),
                    sandbox: true,
                    instance_name: Some("CS42".into()),
                    session_timeout_secs: default_session_timeout(),
                    daily_api_limit: 5_000_000,
                    login_ip_ranges: Vec::new(),
                    my_domain: None,
                    managed_resources: Vec::new(),
                    lightning_apps: None,
                    users: vec![
                        user("admin@acme.example.uat", "Ada", "Admin", true, true),
                        user("editor@acme.example.uat", "Eli", "Editor", false, true),
                    ],
                },
            ],
            apps: vec![AppSeed {
                name: "Lightbridge".into(),
                consumer_key: "3MVG9LightbridgeDemoConsumerKey".into(),
                consumer_secret: "demo-consumer-secret-change-me".into(),
                callback_urls: vec![
                    "http://127.0.0.1:8080/oauth/callback".into(),
                    "http://localhost:8080/oauth/callback".into(),
                ],
                scopes: default_scopes(),
                certificate: None,
                certificate_file: None,
                generate_certificate: true,
                require_pkce: true,
                require_secret: true,
                require_secret_for_refresh: false,
                rotate_refresh_tokens: false,
                refresh_token_ttl_secs: None,
                refresh_token_policy: RefreshTokenPolicy::ValidUntilRevoked,
                ip_relaxation: IpRelaxation::Enforce,
                refresh_token_ip_allowlist: Vec::new(),
                blocked_in: Vec::new(),
                client_credentials_user: Some("admin@acme.example".into()),
                // The admin pre-authorized the whole profile, so every demo user can sign in with
                // JWT and Test Connection shows what each one lacks.
                pre_authorized: vec![
                    "admin@acme.example".into(),
                    "editor@acme.example".into(),
                    "noapi@acme.example".into(),
                    "admin@acme.example.uat".into(),
                    "editor@acme.example.uat".into(),
                ],
                installed: true,
            }],
        }
    }
}

impl UserSeed {
    /// A user with both permissions and the default password.
    pub fn new(username: impl Into<String>) -> Self {
        UserSeed {
            id: None,
            username: username.into(),
            email: None,
            first_name: None,
            last_name: None,
            password: default_password(),
            active: true,
            api_enabled: true,
            customize_application: true,
            frozen: false,
            view_setup: true,
            modify_metadata: true,
            modify_all_data: false,
        }
    }
}

impl OrgSeed {
    pub fn new(name: impl Into<String>) -> Self {
        OrgSeed {
            id: None,
            name: name.into(),
            edition: default_edition(),
            sandbox: false,
            instance_name: None,
            session_timeout_secs: default_session_timeout(),
            daily_api_limit: default_daily_api_limit(),
            login_ip_ranges: Vec::new(),
            my_domain: None,
            managed_resources: Vec::new(),
            lightning_apps: None,
            users: Vec::new(),
        }
    }
}

impl AppSeed {
    pub fn new(consumer_key: impl Into<String>, consumer_secret: impl Into<String>) -> Self {
        AppSeed {
            name: default_app_name(),
            consumer_key: consumer_key.into(),
            consumer_secret: consumer_secret.into(),
            callback_urls: Vec::new(),
            scopes: default_scopes(),
            certificate: None,
            certificate_file: None,
            generate_certificate: false,
            require_pkce: false,
            require_secret: true,
            require_secret_for_refresh: false,
            rotate_refresh_tokens: false,
            refresh_token_ttl_secs: None,
            refresh_token_policy: RefreshTokenPolicy::ValidUntilRevoked,
            ip_relaxation: IpRelaxation::Enforce,
            refresh_token_ip_allowlist: Vec::new(),
            blocked_in: Vec::new(),
            client_credentials_user: None,
            pre_authorized: Vec::new(),
            installed: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_toml_seed_fills_in_defaults() {
        let seed: Seed = toml::from_str(
            r#"
            [[orgs]]
            name = "Tiny"
            [[orgs.users]]
            username = "a@tiny.example"
            [[apps]]
            consumer_key = "key"
            "#,
        )
        .expect("parses");
        let user = &seed.orgs[0].users[0];
        assert!(user.api_enabled && user.customize_application && user.active);
        assert_eq!(seed.orgs[0].session_timeout_secs, 7200);
        assert!(seed.apps[0].installed && seed.apps[0].require_secret);
    }

    #[test]
    fn unknown_seed_keys_are_refused() {
        let err = toml::from_str::<Seed>("[[orgs]]\nname='x'\nsandboxx=true\n").expect_err("typo must be refused");
        assert!(err.to_string().contains("sandboxx"), "{err}");
    }
}

#[cfg(test)]
mod documented_example {
    #[test]
    fn the_example_seed_in_docs_parses_and_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/emulator-seed.example.toml");
        let seed = super::Seed::from_file(&path).expect("docs/emulator-seed.example.toml is a valid seed");
        assert_eq!(seed.orgs.len(), 2);
        assert!(!seed.orgs[0].users[1].customize_application);
        assert_eq!(seed.orgs[0].managed_resources.len(), 1);
        let mut world = crate::state::World::default();
        world.add_seed(&seed, 0).expect("the example seed loads");
    }
}
