//! Configuration, layered with `figment`: defaults (the `Default` of [`Settings`]), then a
//! TOML file, then `LIGHTBRIDGE_*` environment variables (`__` nests), then flags. Secrets may
//! come from `*_FILE` settings. Unknown keys are found from the struct itself: in the file they
//! are an error, in the environment a warning. `print-config` serializes the same struct with
//! its secrets redacted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;
use vault::MasterKey;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Layers(String),
    #[error("unknown setting `{key}` in {origin} (is it misspelt? `lightbridge print-config` shows the known ones)")]
    Unknown { key: String, origin: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error(
        "no master key is configured: set LIGHTBRIDGE_MASTER_KEY (or LIGHTBRIDGE_MASTER_KEY_FILE, or master_key_file in the config file); `lightbridge keys generate` makes one"
    )]
    NoMasterKey,
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        // One line per problem, each naming its key and where the value came from.
        let describe = |e: figment::Error| {
            let key = e.path.join(".").to_ascii_lowercase();
            let origin = match e.metadata.as_ref().map(|m| (&m.name, &m.source)) {
                Some((_, Some(figment::Source::File(path)))) => format!(" in {}", path.display()),
                Some((name, _)) if name.contains("environment") => {
                    format!(" in the environment variable LIGHTBRIDGE_{}", key.to_ascii_uppercase().replace('.', "__"))
                }
                _ => String::new(),
            };
            if key.is_empty() { format!("{}{origin}", e.kind) } else { format!("{key}: {}{origin}", e.kind) }
        };
        ConfigError::Layers(e.into_iter().map(describe).collect::<Vec<_>>().join("; "))
    }
}

/// Every setting, as the file, the environment and the flags give it. Its `Default` is the
/// defaults layer; the keys it knows are the only keys there are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub listen: String,
    pub data_dir: PathBuf,
    /// Where browsers reach this server; `http://<listen>` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text")]
    pub master_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
    /// Keys being rotated away from: they still open secrets, never seal (`keys rotate`).
    #[serde(deserialize_with = "list")]
    pub previous_master_keys: Vec<String>,
    /// How often each connection's health is checked (B1); zero turns the check off.
    pub health_check_interval_secs: u64,
    /// How long renewals or calls may fail for a transient cause (network, 5xx, limits) before
    /// a connection is Not available.
    pub unavailable_after_secs: u64,
    /// OAuth connections not renewed for this long are renewed by the health check, so an
    /// app's idle refresh-token policy never ends them; zero turns it off.
    pub keep_alive_hours: u64,
    /// The bearer token Prometheus sends to `GET /metrics` (off without one).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text")]
    pub metrics_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token_file: Option<PathBuf>,
    pub database: DatabaseSettings,
    pub salesforce: SalesforceSettings,
    pub publish: PublishSettings,
    pub sso: SsoSettings,
    pub notifications: NotificationSettings,
    pub mail: MailSettings,
}

/// `[mail]`: notification e-mail (#18) through the operator's SMTP server; off until
/// `smtp_host` and `from` are given. `security` is `starttls` (the default: the server must
/// offer STARTTLS, port 587), `tls` (TLS from the first byte, port 465) or `none` (a relay on
/// this machine only, port 25); `smtp_port` 0 takes the port of the security chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MailSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub security: String,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The sender: `Lightbridge <lightbridge@example.com>` or an address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Certificates (PEM) to trust for the mail server besides the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: u64,
    /// How often due mails are looked for, and the first retry's delay (each next one four
    /// times longer, up to an hour; a mail is tried for a day).
    pub poll_ms: u64,
    pub retry_base_secs: u64,
}

impl Default for MailSettings {
    fn default() -> Self {
        let d = service::mail::MailerConfig::default();
        MailSettings {
            smtp_host: None,
            smtp_port: 0,
            security: "starttls".into(),
            username: None,
            password: None,
            password_file: None,
            from: None,
            ca_file: None,
            timeout_secs: 30,
            poll_ms: d.poll.as_millis() as u64,
            retry_base_secs: d.backoff_base.as_secs(),
        }
    }
}

/// The mail server and how the mailer uses it, once validated.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub smtp: outbound::mail::SmtpConfig,
    pub ca_file: Option<PathBuf>,
    pub mailer: service::mail::MailerConfig,
}

/// `[notifications]`: webhook deliveries (#18). Deliveries go to public addresses over HTTPS
/// only, unless `allow_private_addresses` (loopback, private and link-local addresses, plain
/// HTTP: tests, receivers inside the operator's network). A failed delivery is retried after
/// `retry_base_ms`, each next retry four times later up to `retry_max_secs`, for three days.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationSettings {
    pub allow_private_addresses: bool,
    pub concurrency: u64,
    pub retry_base_ms: u64,
    pub retry_max_secs: u64,
    pub timeout_secs: u64,
    pub lease_secs: u64,
    /// Events (with their deliveries and mails) are kept this many days.
    pub retention_days: u64,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        let d = service::notify::NotifierConfig::default();
        NotificationSettings {
            allow_private_addresses: false,
            concurrency: d.concurrency as u64,
            retry_base_ms: d.backoff_base.as_millis() as u64,
            retry_max_secs: d.backoff_max.as_secs(),
            timeout_secs: d.timeout.as_secs(),
            lease_secs: d.lease.as_secs(),
            retention_days: d.retention.as_secs() / 86_400,
        }
    }
}

/// `[sso]`: accounts' own OpenID Connect providers (single sign-on). Providers are reached over
/// HTTPS; `allowed_hosts` names plain-HTTP origins the operator allows besides (a provider on
/// the operator's own network, or a test one). `dns_servers` names the name servers asked when
/// an account proves it owns an email domain (`ip` or `ip:port`; empty: the system's resolvers).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SsoSettings {
    #[serde(deserialize_with = "list")]
    pub allowed_hosts: Vec<String>,
    #[serde(deserialize_with = "list")]
    pub dns_servers: Vec<String>,
}

/// `[database]`: SQLite in the data folder unless a PostgreSQL URL is given (several
/// instances share one PostgreSQL database).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:5432/lightbridge`.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "text")]
    pub url: Option<String>,
    /// A file holding the URL (it carries the database password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    pub max_connections: u64,
}

/// `[salesforce]`: the login hosts and who else may receive tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SalesforceSettings {
    pub login_url: String,
    pub test_url: String,
    /// Origins besides Salesforce's own domains that may receive tokens (e.g. the emulator).
    #[serde(deserialize_with = "list")]
    pub allowed_hosts: Vec<String>,
    /// An extra CA certificate (PEM) to trust, e.g. the emulator's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// `[publish]`: how hard the publish worker pushes (B2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PublishSettings {
    pub concurrency: u64,
    pub per_org: u64,
    pub max_attempts: u64,
    pub lease_secs: u64,
    /// First retry delay (doubles per attempt, with jitter) and its cap, in milliseconds.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How often a loader deploy's status is read (milliseconds), and how long it may take
    /// before it is cancelled (seconds).
    pub loader_poll_ms: u64,
    pub loader_timeout_secs: u64,
    /// The share of each org's daily API allowance (in %, 0–90) a publish leaves alone; a target
    /// whose org has less left waits `defer_secs` (#17).
    pub api_reserve_percent: u64,
    pub defer_secs: u64,
    /// How often every org Lightbridge published to is scanned for drift (#17), in seconds;
    /// 0: only when a person asks.
    pub drift_scan_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from(".lightbridge"),
            public_url: None,
            master_key: None,
            master_key_file: None,
            previous_master_keys: Vec::new(),
            health_check_interval_secs: 900,
            unavailable_after_secs: 1800,
            keep_alive_hours: 24,
            metrics_token: None,
            metrics_token_file: None,
            database: DatabaseSettings::default(),
            salesforce: SalesforceSettings::default(),
            publish: PublishSettings::default(),
            sso: SsoSettings::default(),
            notifications: NotificationSettings::default(),
            mail: MailSettings::default(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings { url: None, url_file: None, max_connections: 16 }
    }
}

impl Default for SalesforceSettings {
    fn default() -> Self {
        SalesforceSettings {
            login_url: "https://login.salesforce.com".into(),
            test_url: "https://test.salesforce.com".into(),
            allowed_hosts: Vec::new(),
            ca_file: None,
        }
    }
}

impl Default for PublishSettings {
    fn default() -> Self {
        let worker = crate::WorkerConfig::default();
        PublishSettings {
            concurrency: worker.concurrency as u64,
            per_org: worker.per_org as u64,
            max_attempts: u64::from(worker.max_attempts),
            lease_secs: worker.lease.as_secs(),
            backoff_base_ms: worker.backoff_base.as_millis() as u64,
            backoff_max_ms: worker.backoff_max.as_millis() as u64,
            loader_poll_ms: worker.loader_polling.every.as_millis() as u64,
            loader_timeout_secs: worker.loader_polling.timeout.as_secs(),
            api_reserve_percent: (worker.api_reserve * 100.0).round() as u64,
            defer_secs: worker.defer.as_secs(),
            drift_scan_secs: worker.drift_scan.as_secs(),
        }
    }
}

/// A value the environment may have typed as a number or a boolean (a token of digits),
/// taken as the text it was written as.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Text(String),
        Whole(i64),
        Big(u64),
        Real(f64),
        Flag(bool),
    }
    Ok(Option::<Loose>::deserialize(d)?.map(|v| match v {
        Loose::Text(s) => s,
        Loose::Whole(n) => n.to_string(),
        Loose::Big(n) => n.to_string(),
        Loose::Real(n) => n.to_string(),
        Loose::Flag(b) => b.to_string(),
    }))
}

/// A list, given as a TOML array or (in the environment) as comma-separated text.
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<String>),
        One(String),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(items) => items,
        OneOrMany::One(text) => text.split(',').map(str::to_string).collect(),
    }
    .into_iter()
    .map(|s| s.trim().to_string())
    .filter(|s| !s.is_empty())
    .collect())
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Where browsers reach this server (OAuth callbacks are built from it).
    pub public_url: Url,
    pub master_key: MasterKey,
    /// Older keys that still open secrets during a rotation.
    pub previous_master_keys: Vec<MasterKey>,
    pub salesforce_login_url: Url,
    pub salesforce_test_url: Url,
    pub allowed_hosts: Vec<String>,
    /// Plain-HTTP origins a single sign-on provider may be at (`[sso] allowed_hosts`).
    pub sso_allowed_hosts: Vec<String>,
    /// The name servers asked when an account proves an email domain (`[sso] dns_servers`;
    /// empty: the system's).
    pub sso_dns_servers: Vec<SocketAddr>,
    pub ca_file: Option<PathBuf>,
    /// How often each connection's health is checked (B1); zero turns the check off.
    pub health_check_interval: std::time::Duration,
    /// Transient failures turn a connection Not available only after lasting this long.
    pub unavailable_after: std::time::Duration,
    /// OAuth connections not renewed for this long are renewed (zero: off).
    pub keep_alive: std::time::Duration,
    /// The publish worker's limits, retries and lease.
    pub publish: crate::WorkerConfig,
    /// A PostgreSQL URL; `None` is SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// PostgreSQL connections this instance may hold.
    pub database_max_connections: u32,
    /// The bearer token for `GET /metrics`; `None` turns the endpoint off.
    pub metrics_token: Option<String>,
    /// How webhook deliveries are sent and retried (#18).
    pub notifier: service::notify::NotifierConfig,
    /// Deliveries may go to loopback and private addresses, over plain HTTP too.
    pub webhook_allow_private: bool,
    /// Notification e-mail (`[mail]`); `None`: off.
    pub mail: Option<MailConfig>,
}

/// `LIGHTBRIDGE_*` variables that are not settings: read by the binary, the emulator or tests.
const NOT_SETTINGS: &[&str] = &["config", "log", "log_format"];
const NOT_SETTINGS_PREFIXES: &[&str] = &["emulator_", "test_"];

/// Flags given on the command line (they win over everything else).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads from an optional file, the process environment and flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut layers = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            // `Toml::file` would quietly skip a missing file; a named file must exist.
            std::fs::metadata(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            layers = layers.merge(Toml::file_exact(path));
        }
        let environment = Env::prefixed("LIGHTBRIDGE_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                !NOT_SETTINGS.contains(&key.as_str()) && !NOT_SETTINGS_PREFIXES.iter().any(|p| key.starts_with(p))
            })
            .split("__");
        let layers = layers.merge(environment).merge(Serialized::defaults(overrides));
        Self::from_layers(&layers)
    }

    fn from_layers(layers: &Figment) -> Result<Self, ConfigError> {
        let settings: Settings = layers.extract()?;
        // Keys no field of `Settings` takes: an error in a file, a warning in the environment
        // (a shell may carry variables meant for another version).
        let merged: figment::value::Value = layers.extract()?;
        let mut unknown = Vec::new();
        let _: Result<Settings, _> = serde_ignored::deserialize(&merged, |path| unknown.push(path.to_string()));
        for key in unknown {
            let origin = layers.find_metadata(&key);
            match origin.and_then(|m| m.source.as_ref()) {
                Some(figment::Source::File(path)) => {
                    return Err(ConfigError::Unknown { key, origin: path.display().to_string() });
                }
                _ => {
                    let variable = format!("LIGHTBRIDGE_{}", key.to_ascii_uppercase().replace('.', "__"));
                    tracing::warn!(%variable, "unknown LIGHTBRIDGE_ environment variable ignored (is it misspelt?)");
                }
            }
        }
        let master_key_text = secret(layers, "master_key", settings.master_key.clone(), &settings.master_key_file)?
            .ok_or(ConfigError::NoMasterKey)?;
        let database_url = secret(layers, "database.url", settings.database.url.clone(), &settings.database.url_file)?;
        let metrics_token =
            secret(layers, "metrics_token", settings.metrics_token.clone(), &settings.metrics_token_file)?;
        let mail_password =
            secret(layers, "mail.password", settings.mail.password.clone(), &settings.mail.password_file)?;
        let mut config = Self::validate(&settings, &master_key_text, database_url, metrics_token)?;
        config.mail = mail(&settings.mail, mail_password)?;
        Ok(config)
    }

    fn validate(
        s: &Settings,
        master_key_text: &str,
        database_url: Option<String>,
        metrics_token: Option<String>,
    ) -> Result<Self, ConfigError> {
        let listen: SocketAddr = s.listen.parse().map_err(|_| ConfigError::Invalid {
            key: "listen",
            message: format!("{:?} is not an address like 127.0.0.1:8080", s.listen),
        })?;
        let public_url = parse_url("public_url", s.public_url.as_deref().unwrap_or(&format!("http://{listen}")))?;
        let at_least_one = |key: &'static str, value: u64| {
            if value == 0 {
                return Err(ConfigError::Invalid { key, message: "must be at least 1".into() });
            }
            Ok(value)
        };
        let p = &s.publish;
        let concurrency = at_least_one("publish.concurrency", p.concurrency)? as usize;
        let publish = crate::WorkerConfig {
            concurrency,
            prefetch: concurrency.div_ceil(4),
            per_org: at_least_one("publish.per_org", p.per_org)? as usize,
            max_attempts: at_least_one("publish.max_attempts", p.max_attempts)?.min(100) as u32,
            lease: std::time::Duration::from_secs(at_least_one("publish.lease_secs", p.lease_secs)?),
            backoff_base: std::time::Duration::from_millis(at_least_one("publish.backoff_base_ms", p.backoff_base_ms)?),
            backoff_max: std::time::Duration::from_millis(at_least_one("publish.backoff_max_ms", p.backoff_max_ms)?),
            loader_polling: service::worker::LoaderPolling {
                every: std::time::Duration::from_millis(at_least_one("publish.loader_poll_ms", p.loader_poll_ms)?),
                timeout: std::time::Duration::from_secs(at_least_one(
                    "publish.loader_timeout_secs",
                    p.loader_timeout_secs,
                )?),
            },
            api_reserve: if p.api_reserve_percent <= 90 {
                p.api_reserve_percent as f64 / 100.0
            } else {
                return Err(ConfigError::Invalid {
                    key: "publish.api_reserve_percent",
                    message: format!(
                        "{} is more than 90: a publish must be able to use some of an org's allowance",
                        p.api_reserve_percent
                    ),
                });
            },
            defer: std::time::Duration::from_secs(at_least_one("publish.defer_secs", p.defer_secs)?),
            drift_scan: match p.drift_scan_secs {
                0 => std::time::Duration::ZERO,
                secs if secs >= 60 => std::time::Duration::from_secs(secs),
                secs => {
                    return Err(ConfigError::Invalid {
                        key: "publish.drift_scan_secs",
                        message: format!(
                            "{secs} is less than 60: scan at most once a minute (0 turns scheduled scans off)"
                        ),
                    });
                }
            },
        };
        // A loader deploy (a validation, then the deploy) must finish while the worker holds
        // the target's lease, or another worker would take the target over mid-way.
        if publish.loader_polling.timeout * 2 > publish.lease {
            return Err(ConfigError::Invalid {
                key: "publish.loader_timeout_secs",
                message: format!(
                    "{} s is more than half of publish.lease_secs ({} s): a validation and a deploy must fit in one lease",
                    publish.loader_polling.timeout.as_secs(),
                    publish.lease.as_secs()
                ),
            });
        }
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: "database.url",
                message: "must be a postgres:// URL (leave it out for SQLite in the data folder)".into(),
            });
        }
        if metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::Invalid { key: "metrics_token", message: "use at least 16 characters".into() });
        }
        let master_key = MasterKey::from_base64(master_key_text)
            .map_err(|e| ConfigError::Invalid { key: "master_key", message: e.to_string() })?;
        let previous_master_keys = s
            .previous_master_keys
            .iter()
            .map(|k| MasterKey::from_base64(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::Invalid { key: "previous_master_keys", message: e.to_string() })?;
        Ok(Config {
            listen,
            data_dir: s.data_dir.clone(),
            public_url,
            master_key,
            previous_master_keys,
            salesforce_login_url: parse_url("salesforce.login_url", &s.salesforce.login_url)?,
            salesforce_test_url: parse_url("salesforce.test_url", &s.salesforce.test_url)?,
            allowed_hosts: s.salesforce.allowed_hosts.clone(),
            sso_allowed_hosts: s.sso.allowed_hosts.clone(),
            sso_dns_servers: s.sso.dns_servers.iter().map(|s| name_server(s)).collect::<Result<_, _>>()?,
            ca_file: s.salesforce.ca_file.clone(),
            health_check_interval: std::time::Duration::from_secs(s.health_check_interval_secs),
            unavailable_after: std::time::Duration::from_secs(s.unavailable_after_secs),
            keep_alive: std::time::Duration::from_secs(s.keep_alive_hours.saturating_mul(3600)),
            publish,
            database_url,
            database_max_connections: at_least_one("database.max_connections", s.database.max_connections)?.min(1000)
                as u32,
            metrics_token,
            notifier: service::notify::NotifierConfig {
                concurrency: at_least_one("notifications.concurrency", s.notifications.concurrency)?.min(1024) as usize,
                backoff_base: std::time::Duration::from_millis(at_least_one(
                    "notifications.retry_base_ms",
                    s.notifications.retry_base_ms,
                )?),
                backoff_max: std::time::Duration::from_secs(at_least_one(
                    "notifications.retry_max_secs",
                    s.notifications.retry_max_secs,
                )?),
                timeout: std::time::Duration::from_secs(
                    at_least_one("notifications.timeout_secs", s.notifications.timeout_secs)?.min(60),
                ),
                lease: std::time::Duration::from_secs(
                    at_least_one("notifications.lease_secs", s.notifications.lease_secs)?
                        .max(s.notifications.timeout_secs.min(60) + 1),
                ),
                retention: std::time::Duration::from_secs(
                    at_least_one("notifications.retention_days", s.notifications.retention_days)?.min(3650) * 86_400,
                ),
                ..Default::default()
            },
            webhook_allow_private: s.notifications.allow_private_addresses,
            mail: None,
        })
    }

    /// The keys that open secrets: the master key (which also seals) and any previous ones.
    pub fn keyring(&self) -> vault::Keyring {
        self.previous_master_keys
            .iter()
            .fold(vault::Keyring::new(self.master_key.clone()), |ring, k| ring.with_previous(k.clone()))
    }

    /// The effective settings, secrets replaced by what identifies them without revealing them.
    pub fn settings(&self) -> Settings {
        let fingerprint = |k: &MasterKey| format!("[redacted; fingerprint {}]", &k.fingerprint()[..16]);
        Settings {
            listen: self.listen.to_string(),
            data_dir: self.data_dir.clone(),
            public_url: Some(self.public_url.to_string()),
            master_key: Some(fingerprint(&self.master_key)),
            master_key_file: None,
            previous_master_keys: self.previous_master_keys.iter().map(fingerprint).collect(),
            health_check_interval_secs: self.health_check_interval.as_secs(),
            unavailable_after_secs: self.unavailable_after.as_secs(),
            keep_alive_hours: self.keep_alive.as_secs() / 3600,
            metrics_token: self.metrics_token.as_ref().map(|_| "[redacted]".to_string()),
            metrics_token_file: None,
            database: DatabaseSettings {
                url: self.database_url.as_deref().map(redact_password),
                url_file: None,
                max_connections: u64::from(self.database_max_connections),
            },
            salesforce: SalesforceSettings {
                login_url: self.salesforce_login_url.to_string(),
                test_url: self.salesforce_test_url.to_string(),
                allowed_hosts: self.allowed_hosts.clone(),
                ca_file: self.ca_file.clone(),
            },
            sso: SsoSettings {
                allowed_hosts: self.sso_allowed_hosts.clone(),
                dns_servers: self.sso_dns_servers.iter().map(ToString::to_string).collect(),
            },
            publish: PublishSettings {
                concurrency: self.publish.concurrency as u64,
                per_org: self.publish.per_org as u64,
                max_attempts: u64::from(self.publish.max_attempts),
                lease_secs: self.publish.lease.as_secs(),
                backoff_base_ms: self.publish.backoff_base.as_millis() as u64,
                backoff_max_ms: self.publish.backoff_max.as_millis() as u64,
                loader_poll_ms: self.publish.loader_polling.every.as_millis() as u64,
                loader_timeout_secs: self.publish.loader_polling.timeout.as_secs(),
                api_reserve_percent: (self.publish.api_reserve * 100.0).round() as u64,
                defer_secs: self.publish.defer.as_secs(),
                drift_scan_secs: self.publish.drift_scan.as_secs(),
            },
            notifications: NotificationSettings {
                allow_private_addresses: self.webhook_allow_private,
                concurrency: self.notifier.concurrency as u64,
                retry_base_ms: self.notifier.backoff_base.as_millis() as u64,
                retry_max_secs: self.notifier.backoff_max.as_secs(),
                timeout_secs: self.notifier.timeout.as_secs(),
                lease_secs: self.notifier.lease.as_secs(),
                retention_days: self.notifier.retention.as_secs() / 86_400,
            },
            mail: match &self.mail {
                None => MailSettings::default(),
                Some(m) => MailSettings {
                    smtp_host: Some(m.smtp.host.clone()),
                    smtp_port: m.smtp.port,
                    security: m.smtp.security.as_str().into(),
                    username: m.smtp.username.clone(),
                    password: m.smtp.password.as_ref().map(|_| "[redacted]".to_string()),
                    password_file: None,
                    from: Some(m.smtp.from.clone()),
                    ca_file: m.ca_file.clone(),
                    timeout_secs: m.smtp.timeout.as_secs(),
                    poll_ms: m.mailer.poll.as_millis() as u64,
                    retry_base_secs: m.mailer.backoff_base.as_secs(),
                },
            },
        }
    }

    /// The effective configuration as a TOML file would hold it, secrets redacted.
    pub fn redacted(&self) -> String {
        toml::to_string(&self.settings()).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

/// A setting that may be given as a value or as a file holding it (secrets: keys, passwords,
/// tokens). Where both are given the later layer wins (the environment over the file); both in
/// the same layer is an error. Trimmed; empty is absent.
fn secret(
    layers: &Figment,
    key: &'static str,
    value: Option<String>,
    path: &Option<PathBuf>,
) -> Result<Option<String>, ConfigError> {
    let file_key = format!("{key}_file");
    let from_file = match (&value, path) {
        (Some(_), Some(_)) => {
            let rank = |k: &str| layers.find_metadata(k).map(|m| layer_rank(&m.name));
            match rank(key).cmp(&rank(&file_key)) {
                std::cmp::Ordering::Equal => {
                    return Err(ConfigError::Invalid { key, message: format!("give {key} or {file_key}, not both") });
                }
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Less => true,
            }
        }
        (None, Some(_)) => true,
        _ => false,
    };
    let text = match (from_file, path) {
        (true, Some(path)) => {
            Some(std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?)
        }
        _ => value,
    };
    Ok(text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
}

/// `[mail]` validated: `None` without `smtp_host`; every mistake named by its key.
fn mail(m: &MailSettings, password: Option<String>) -> Result<Option<MailConfig>, ConfigError> {
    let Some(host) = m.smtp_host.as_deref().map(str::trim).filter(|h| !h.is_empty()) else {
        if m.from.is_some() || m.username.is_some() || password.is_some() {
            return Err(ConfigError::Invalid {
                key: "mail.smtp_host",
                message: "the mail server is missing: give smtp_host with the other [mail] settings".into(),
            });
        }
        return Ok(None);
    };
    let invalid = |key: &'static str, message: String| ConfigError::Invalid { key, message };
    let security = outbound::mail::Security::parse(m.security.trim())
        .ok_or_else(|| invalid("mail.security", format!("{:?}: use starttls, tls or none", m.security)))?;
    let from = m.from.as_deref().map(str::trim).filter(|f| !f.is_empty()).ok_or_else(|| {
        invalid("mail.from", "give the sender, e.g. \"Lightbridge <lightbridge@example.com>\"".into())
    })?;
    if m.username.is_some() != password.is_some() {
        return Err(invalid("mail.password", "give both username and password (or password_file), or neither".into()));
    }
    if m.timeout_secs == 0 || m.poll_ms == 0 || m.retry_base_secs == 0 {
        return Err(invalid(
            "mail.timeout_secs",
            "timeout_secs, poll_ms and retry_base_secs must each be at least 1".into(),
        ));
    }
    if security == outbound::mail::Security::None && !matches!(host, "127.0.0.1" | "::1" | "[::1]" | "localhost") {
        return Err(invalid(
            "mail.security",
            format!(
                "none sends mail and the sign-in unencrypted: it is for a relay on this machine only (127.0.0.1, ::1 or localhost), not {host}; use starttls or tls"
            ),
        ));
    }
    let port = match (m.smtp_port, security) {
        (0, outbound::mail::Security::StartTls) => 587,
        (0, outbound::mail::Security::Tls) => 465,
        (0, outbound::mail::Security::None) => 25,
        (port, _) => port,
    };
    let ca_pem = match &m.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?),
        None => None,
    };
    let timeout = std::time::Duration::from_secs(m.timeout_secs.min(300));
    let smtp = outbound::mail::SmtpConfig {
        host: host.to_string(),
        port,
        security,
        username: m.username.clone(),
        password: password.map(zeroize::Zeroizing::new),
        from: from.to_string(),
        ca_pem,
        timeout,
    };
    // The sender and the CA file are checked now, not at the first mail.
    outbound::mail::Smtp::check(&smtp).map_err(|e| {
        let key = if e.contains("CA file") {
            "mail.ca_file"
        } else if e.contains("TLS") {
            "mail.security"
        } else {
            "mail.from"
        };
        invalid(key, e)
    })?;
    let mailer = service::mail::MailerConfig {
        poll: std::time::Duration::from_millis(m.poll_ms),
        backoff_base: std::time::Duration::from_secs(m.retry_base_secs),
        // Every step of one SMTP conversation (connect, greeting, EHLO, STARTTLS, AUTH, MAIL,
        // RCPT, DATA, the message) may take the timeout: a claim outlasts them all, so no
        // other instance takes a mail over while it is being sent.
        lease: (timeout * 10).max(std::time::Duration::from_secs(120)),
        ..Default::default()
    };
    Ok(Some(MailConfig { smtp, ca_file: m.ca_file.clone(), mailer }))
}

/// Which layer a value came from, later layers ranking higher.
fn layer_rank(name: &str) -> u8 {
    if name.contains("environment") {
        2
    } else if name.contains("TOML") {
        1
    } else {
        0
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:[redacted]@host/db`.
pub fn redact_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("[redacted]"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "[not a URL]".into(),
    }
}

/// A name server as `ip` (port 53) or `ip:port` (`[::1]:53` for IPv6 with a port).
fn name_server(text: &str) -> Result<SocketAddr, ConfigError> {
    let text = text.trim();
    text.parse::<SocketAddr>().or_else(|_| text.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53))).map_err(
        |_| ConfigError::Invalid {
            key: "sso.dns_servers",
            message: format!("{text:?} is not a name server address (an IP address, optionally with :port)"),
        },
    )
}

fn parse_url(key: &'static str, text: &str) -> Result<Url, ConfigError> {
    Url::parse(text).map_err(|e| ConfigError::Invalid { key, message: format!("{text:?} is not a URL: {e}") })
}

#[cfg(test)]
// `Jail`'s closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use figment::Jail;

    use super::*;

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn load(file: Option<&str>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::load(file.map(Path::new), overrides)
    }

    #[test]
    fn environment_wins_over_the_file_and_flags_win_over_both() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "lightbridge.toml",
                "listen = \"127.0.0.1:9000\"\npublic_url = \"https://lb.example\"\n[salesforce]\nallowed_hosts = [\"http://127.0.0.1:8181\"]\n",
            )?;
            jail.set_env("LIGHTBRIDGE_MASTER_KEY", KEY);
            jail.set_env("LIGHTBRIDGE_LISTEN", "127.0.0.1:9100");
            let config = load(Some("lightbridge.toml"), &Overrides::default()).expect("config");
            assert_eq!(config.listen.port(), 9100);
            assert_eq!(config.public_url.as_str(), "https://lb.example/");
            assert_eq!(config.allowed_hosts, ["http://127.0.0.1:8181"]);
            let flagged =
                load(Some("lightbridge.toml"), &Overrides { listen: Some("127.0.0.1:9200".into()), data_dir: None })
                    .expect("config");
            assert_eq!(flagged.listen.port(), 9200);
            let printed = config.redacted();
            assert!(!printed.contains(KEY) && printed.contains("[redacted"), "{printed}");
            assert_eq!(config.database_url, None, "SQLite unless a URL is given");

            jail.set_env("LIGHTBRIDGE_DATABASE__URL", "postgres://lb:s3cret-pw@db.internal:5432/lightbridge");
            let pg = load(Some("lightbridge.toml"), &Overrides::default()).expect("config");
            assert_eq!(pg.database_url.as_deref(), Some("postgres://lb:s3cret-pw@db.internal:5432/lightbridge"));
            let printed = pg.redacted();
            assert!(!printed.contains("s3cret-pw") && printed.contains("db.internal"), "{printed}");

            jail.set_env("LIGHTBRIDGE_DATABASE__URL", "mysql://x");
            let err = load(Some("lightbridge.toml"), &Overrides::default()).expect_err("not postgres").to_string();
            assert!(err.contains("database.url"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_environment_lists_by_commas_and_numbers_are_checked_with_their_key() {
        Jail::expect_with(|jail| {
            jail.set_env("LIGHTBRIDGE_MASTER_KEY", KEY);
            jail.set_env("LIGHTBRIDGE_SALESFORCE__ALLOWED_HOSTS", "http://127.0.0.1:8181, http://127.0.0.1:8282,");
            jail.set_env("LIGHTBRIDGE_PREVIOUS_MASTER_KEYS", format!("{KEY},{KEY}"));
            jail.set_env("LIGHTBRIDGE_METRICS_TOKEN", "12345678901234567890");
            let config = load(None, &Overrides::default()).expect("config");
            assert_eq!(config.allowed_hosts, ["http://127.0.0.1:8181", "http://127.0.0.1:8282"]);
            assert_eq!(config.previous_master_keys.len(), 2);
            assert_eq!(config.metrics_token.as_deref(), Some("12345678901234567890"), "digits stay text");

            jail.set_env("LIGHTBRIDGE_SSO__DNS_SERVERS", "127.0.0.1:5353, ::1");
            let config = load(None, &Overrides::default()).expect("config");
            assert_eq!(
                config.sso_dns_servers,
                ["127.0.0.1:5353".parse().expect("addr"), "[::1]:53".parse().expect("addr")]
            );
            jail.set_env("LIGHTBRIDGE_SSO__DNS_SERVERS", "dns.example");
            let err = load(None, &Overrides::default()).expect_err("not an address").to_string();
            assert!(err.contains("sso.dns_servers") && err.contains("dns.example"), "{err}");
            jail.set_env("LIGHTBRIDGE_SSO__DNS_SERVERS", "");

            // A loader deploy that cannot fit in a lease is refused (issue #15).
            jail.set_env("LIGHTBRIDGE_PUBLISH__LOADER_TIMEOUT_SECS", "61");
            let err = load(None, &Overrides::default()).expect_err("too long").to_string();
            assert!(err.contains("publish.loader_timeout_secs") && err.contains("lease"), "{err}");
            jail.set_env("LIGHTBRIDGE_PUBLISH__LOADER_TIMEOUT_SECS", "50");
            load(None, &Overrides::default()).expect("the default fits");

            jail.set_env("LIGHTBRIDGE_PUBLISH__CONCURRENCY", "many");
            let err = load(None, &Overrides::default()).expect_err("not a number").to_string();
            assert!(err.contains("publish.concurrency") && err.contains("LIGHTBRIDGE_PUBLISH__CONCURRENCY"), "{err}");
            jail.set_env("LIGHTBRIDGE_PUBLISH__CONCURRENCY", "0");
            let err = load(None, &Overrides::default()).expect_err("zero").to_string();
            assert!(err.contains("publish.concurrency") && err.contains("at least 1"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_secret_file_in_a_later_layer_wins_and_both_in_one_layer_is_an_error() {
        Jail::expect_with(|jail| {
            jail.create_file("master.key", &format!("{KEY}\n"))?;
            jail.create_file("both.toml", &format!("master_key = \"{KEY}\"\nmaster_key_file = \"master.key\"\n"))?;
            jail.create_file("value.toml", "master_key = \"not a key\"\n")?;
            let err = load(Some("both.toml"), &Overrides::default()).expect_err("both").to_string();
            assert!(err.contains("master_key_file, not both"), "{err}");
            jail.set_env("LIGHTBRIDGE_MASTER_KEY_FILE", "master.key");
            let config = load(Some("value.toml"), &Overrides::default()).expect("the environment's file wins");
            assert_eq!(config.master_key.fingerprint(), MasterKey::from_base64(KEY).expect("key").fingerprint());
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_found_from_the_struct_and_a_missing_key_says_what_to_do() {
        Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "listne = \"x\"\n")?;
            jail.create_file("nested.toml", "[publish]\nconcurency = 3\n")?;
            jail.set_env("LIGHTBRIDGE_MASTER_KEY", KEY);
            let err = load(Some("bad.toml"), &Overrides::default()).expect_err("typo").to_string();
            assert!(err.contains("listne") && err.contains("bad.toml"), "{err}");
            let err = load(Some("nested.toml"), &Overrides::default()).expect_err("typo").to_string();
            assert!(err.contains("publish.concurency"), "{err}");
            let err = load(Some("missing.toml"), &Overrides::default()).expect_err("no file").to_string();
            assert!(err.contains("missing.toml"), "{err}");
            jail.set_env("LIGHTBRIDGE_PUBLISH__CONCURENCY", "3");
            load(None, &Overrides::default()).expect("an unknown variable is only a warning");
            jail.set_env("LIGHTBRIDGE_MASTER_KEY", "");
            let err = load(None, &Overrides::default()).expect_err("no key").to_string();
            assert!(err.contains("LIGHTBRIDGE_MASTER_KEY") && err.contains("keys generate"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn mail_needs_an_encrypted_connection_off_this_machine_and_its_password_never_prints() {
        Jail::expect_with(|jail| {
            jail.set_env("LIGHTBRIDGE_MASTER_KEY", KEY);
            assert!(load(None, &Overrides::default()).expect("no [mail]").mail.is_none());
            jail.create_file("pw", "smtp-secret-password\n")?;
            let mail = |extra: &str| {
                format!(
                    "[mail]\nsmtp_host = \"smtp.example.com\"\nfrom = \"Lightbridge <lb@example.com>\"\nusername = \"lb\"\npassword_file = \"pw\"\n{extra}"
                )
            };
            jail.create_file("good.toml", &mail(""))?;
            let config = load(Some("good.toml"), &Overrides::default()).expect("starttls");
            let smtp = &config.mail.as_ref().expect("mail").smtp;
            assert_eq!((smtp.port, smtp.security), (587, outbound::mail::Security::StartTls));
            assert_eq!(config.mail.as_ref().expect("mail").mailer.lease, std::time::Duration::from_secs(300));
            let printed = config.redacted();
            assert!(!printed.contains("smtp-secret-password") && printed.contains("[redacted]"), "{printed}");
            jail.create_file("plain.toml", &mail("security = \"none\"\n"))?;
            let err = load(Some("plain.toml"), &Overrides::default()).expect_err("none off this machine").to_string();
            assert!(err.contains("mail.security") && err.contains("smtp.example.com"), "{err}");
            jail.create_file("local.toml", &mail("security = \"none\"\n").replace("smtp.example.com", "localhost"))?;
            assert_eq!(
                load(Some("local.toml"), &Overrides::default()).expect("a local relay").mail.expect("mail").smtp.port,
                25
            );
            jail.create_file("nofrom.toml", "[mail]\nsmtp_host = \"smtp.example.com\"\n")?;
            let err = load(Some("nofrom.toml"), &Overrides::default()).expect_err("no sender").to_string();
            assert!(err.contains("mail.from"), "{err}");
            jail.create_file("half.toml", &mail("").replace("password_file = \"pw\"\n", ""))?;
            let err = load(Some("half.toml"), &Overrides::default()).expect_err("no password").to_string();
            assert!(err.contains("mail.password"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn print_config_output_is_a_configuration_file_that_loads_back() {
        Jail::expect_with(|jail| {
            jail.set_env("LIGHTBRIDGE_MASTER_KEY", KEY);
            jail.set_env("LIGHTBRIDGE_PUBLISH__PER_ORG", "7");
            let config = load(None, &Overrides::default()).expect("config");
            let printed = config.redacted();
            assert!(!printed.contains(KEY), "{printed}");
            jail.create_file("printed.toml", &printed.replace("master_key = ", "# master_key = "))?;
            jail.clear_env();
            jail.set_env("LIGHTBRIDGE_MASTER_KEY", KEY);
            let again = load(Some("printed.toml"), &Overrides::default()).expect("loads back");
            assert_eq!(again.settings().publish.per_org, 7);
            assert_eq!(toml::to_string(&again.settings()).expect("toml"), printed);
            Ok(())
        });
    }
}
