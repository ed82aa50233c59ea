//! Configuration: defaults, then a TOML file, then `LIGHTBRIDGE_*` environment variables
//! (`__` nests), then flags. Secrets may come from `*_FILE` variables. Unknown keys in the file
//! are an error; unknown `LIGHTBRIDGE_*` variables are warned about.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;
use vault::MasterKey;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid configuration: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error(
        "no master key is configured: set LIGHTBRIDGE_MASTER_KEY (or LIGHTBRIDGE_MASTER_KEY_FILE, or master_key_file in the config file); `lightbridge keys generate` makes one"
    )]
    NoMasterKey,
}

/// The configuration file's shape (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub public_url: Option<String>,
    pub master_key: Option<String>,
    pub master_key_file: Option<PathBuf>,
    /// Keys being rotated away from: they still open secrets, never seal (`keys rotate`).
    pub previous_master_keys: Option<Vec<String>>,
    pub health_check_interval_secs: Option<u64>,
    #[serde(default)]
    pub salesforce: SalesforceFile,
    #[serde(default)]
    pub publish: PublishFile,
    #[serde(default)]
    pub database: DatabaseFile,
    /// The bearer token Prometheus sends to `GET /metrics` (off without one).
    pub metrics_token: Option<String>,
    pub metrics_token_file: Option<PathBuf>,
}

/// `[database]`: SQLite in the data folder unless a PostgreSQL URL is given (several
/// instances share one PostgreSQL database).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseFile {
    /// `postgres://user:password@host:5432/lightbridge`.
    pub url: Option<String>,
    /// A file holding the URL (it carries the database password).
    pub url_file: Option<PathBuf>,
    pub max_connections: Option<u64>,
}

/// `[publish]`: how hard the publish worker pushes (B2).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishFile {
    pub concurrency: Option<u64>,
    pub per_org: Option<u64>,
    pub max_attempts: Option<u64>,
    pub lease_secs: Option<u64>,
    /// First retry delay (doubles per attempt, with jitter) and its cap, in milliseconds.
    pub backoff_base_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceFile {
    pub login_url: Option<String>,
    pub test_url: Option<String>,
    /// Origins besides Salesforce's own domains that may receive tokens (e.g. the emulator).
    pub allowed_hosts: Option<Vec<String>>,
    /// An extra CA certificate (PEM) to trust, e.g. the emulator's.
    pub ca_file: Option<PathBuf>,
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
    pub ca_file: Option<PathBuf>,
    /// How often each connection's health is checked (B1); zero turns the check off.
    pub health_check_interval: std::time::Duration,
    /// The publish worker's limits, retries and lease.
    pub publish: crate::WorkerConfig,
    /// A PostgreSQL URL; `None` is SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// PostgreSQL connections this instance may hold.
    pub database_max_connections: u32,
    /// The bearer token for `GET /metrics`; `None` turns the endpoint off.
    pub metrics_token: Option<String>,
}

const KNOWN_ENV: &[&str] = &[
    "LIGHTBRIDGE_LISTEN",
    "LIGHTBRIDGE_DATA_DIR",
    "LIGHTBRIDGE_PUBLIC_URL",
    "LIGHTBRIDGE_MASTER_KEY",
    "LIGHTBRIDGE_MASTER_KEY_FILE",
    "LIGHTBRIDGE_PREVIOUS_MASTER_KEYS",
    "LIGHTBRIDGE_HEALTH_CHECK_INTERVAL_SECS",
    "LIGHTBRIDGE_SALESFORCE__LOGIN_URL",
    "LIGHTBRIDGE_SALESFORCE__TEST_URL",
    "LIGHTBRIDGE_SALESFORCE__ALLOWED_HOSTS",
    "LIGHTBRIDGE_SALESFORCE__CA_FILE",
    "LIGHTBRIDGE_PUBLISH__CONCURRENCY",
    "LIGHTBRIDGE_PUBLISH__PER_ORG",
    "LIGHTBRIDGE_PUBLISH__MAX_ATTEMPTS",
    "LIGHTBRIDGE_PUBLISH__LEASE_SECS",
    "LIGHTBRIDGE_PUBLISH__BACKOFF_BASE_MS",
    "LIGHTBRIDGE_PUBLISH__BACKOFF_MAX_MS",
    "LIGHTBRIDGE_DATABASE__URL",
    "LIGHTBRIDGE_DATABASE__URL_FILE",
    "LIGHTBRIDGE_DATABASE__MAX_CONNECTIONS",
    "LIGHTBRIDGE_METRICS_TOKEN",
    "LIGHTBRIDGE_METRICS_TOKEN_FILE",
    "LIGHTBRIDGE_LOG_FORMAT",
    "LIGHTBRIDGE_CONFIG",
    "LIGHTBRIDGE_LOG",
];

/// Flags given on the command line (they win over everything else).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads from an optional file, the process environment and flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("LIGHTBRIDGE_")).collect();
        for (key, _) in &env {
            if !KNOWN_ENV.contains(&key.as_str())
                && !key.starts_with("LIGHTBRIDGE_EMULATOR_")
                && !key.starts_with("LIGHTBRIDGE_TEST_")
            {
                tracing::warn!(variable = %key, "unknown LIGHTBRIDGE_ environment variable ignored (is it misspelt?)");
            }
        }
        Self::from_parts(file, &|k| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()), overrides)
    }

    /// The same, with the environment given explicitly (tests).
    pub fn from_parts(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let file_config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?
            }
            None => FileConfig::default(),
        };
        let pick = |flag: Option<String>, var: &str, file: Option<String>, default: &str| {
            flag.or_else(|| env(var)).or(file).unwrap_or_else(|| default.to_string())
        };
        let listen_text = pick(overrides.listen.clone(), "LIGHTBRIDGE_LISTEN", file_config.listen, "127.0.0.1:8080");
        let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
            key: "listen",
            message: format!("{listen_text:?} is not an address like 127.0.0.1:8080"),
        })?;
        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| env("LIGHTBRIDGE_DATA_DIR").map(PathBuf::from))
            .or(file_config.data_dir)
            .unwrap_or_else(|| PathBuf::from(".lightbridge"));
        let public_text = pick(None, "LIGHTBRIDGE_PUBLIC_URL", file_config.public_url, &format!("http://{listen}"));
        let public_url = parse_url("public_url", &public_text)?;
        let sf = file_config.salesforce;
        let login = pick(None, "LIGHTBRIDGE_SALESFORCE__LOGIN_URL", sf.login_url, "https://login.salesforce.com");
        let test = pick(None, "LIGHTBRIDGE_SALESFORCE__TEST_URL", sf.test_url, "https://test.salesforce.com");
        let allowed_hosts = match env("LIGHTBRIDGE_SALESFORCE__ALLOWED_HOSTS") {
            Some(list) => list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
            None => sf.allowed_hosts.unwrap_or_default(),
        };
        let ca_file = env("LIGHTBRIDGE_SALESFORCE__CA_FILE").map(PathBuf::from).or(sf.ca_file);
        let key_text = secret(
            "master_key",
            env("LIGHTBRIDGE_MASTER_KEY"),
            env("LIGHTBRIDGE_MASTER_KEY_FILE"),
            file_config.master_key,
            file_config.master_key_file,
        )?
        .ok_or(ConfigError::NoMasterKey)?;
        let interval_text = env("LIGHTBRIDGE_HEALTH_CHECK_INTERVAL_SECS");
        let health_secs = match (interval_text, file_config.health_check_interval_secs) {
            (Some(t), _) => t.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                key: "health_check_interval_secs",
                message: format!("{t:?} is not a number of seconds"),
            })?,
            (None, Some(n)) => n,
            (None, None) => 900,
        };
        let number = |key: &'static str, var: &str, file: Option<u64>, default: u64| -> Result<u64, ConfigError> {
            let value = match env(var) {
                Some(t) => t
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| ConfigError::Invalid { key, message: format!("{t:?} is not a whole number") })?,
                None => file.unwrap_or(default),
            };
            if value == 0 {
                return Err(ConfigError::Invalid { key, message: "must be at least 1".into() });
            }
            Ok(value)
        };
        let defaults = crate::WorkerConfig::default();
        let p = file_config.publish;
        let concurrency = number(
            "publish.concurrency",
            "LIGHTBRIDGE_PUBLISH__CONCURRENCY",
            p.concurrency,
            defaults.concurrency as u64,
        )? as usize;
        let publish = crate::WorkerConfig {
            concurrency,
            prefetch: concurrency.div_ceil(4),
            per_org: number("publish.per_org", "LIGHTBRIDGE_PUBLISH__PER_ORG", p.per_org, defaults.per_org as u64)?
                as usize,
            max_attempts: number(
                "publish.max_attempts",
                "LIGHTBRIDGE_PUBLISH__MAX_ATTEMPTS",
                p.max_attempts,
                u64::from(defaults.max_attempts),
            )?
            .min(100) as u32,
            lease: std::time::Duration::from_secs(number(
                "publish.lease_secs",
                "LIGHTBRIDGE_PUBLISH__LEASE_SECS",
                p.lease_secs,
                defaults.lease.as_secs(),
            )?),
            backoff_base: std::time::Duration::from_millis(number(
                "publish.backoff_base_ms",
                "LIGHTBRIDGE_PUBLISH__BACKOFF_BASE_MS",
                p.backoff_base_ms,
                defaults.backoff_base.as_millis() as u64,
            )?),
            backoff_max: std::time::Duration::from_millis(number(
                "publish.backoff_max_ms",
                "LIGHTBRIDGE_PUBLISH__BACKOFF_MAX_MS",
                p.backoff_max_ms,
                defaults.backoff_max.as_millis() as u64,
            )?),
        };
        let db = file_config.database;
        let database_url = secret(
            "database.url",
            env("LIGHTBRIDGE_DATABASE__URL"),
            env("LIGHTBRIDGE_DATABASE__URL_FILE"),
            db.url,
            db.url_file,
        )?;
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: "database.url",
                message: "must be a postgres:// URL (leave it out for SQLite in the data folder)".into(),
            });
        }
        let database_max_connections =
            number("database.max_connections", "LIGHTBRIDGE_DATABASE__MAX_CONNECTIONS", db.max_connections, 16)?
                .min(1000) as u32;
        let metrics_token = secret(
            "metrics_token",
            env("LIGHTBRIDGE_METRICS_TOKEN"),
            env("LIGHTBRIDGE_METRICS_TOKEN_FILE"),
            file_config.metrics_token,
            file_config.metrics_token_file,
        )?;
        if metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::Invalid { key: "metrics_token", message: "use at least 16 characters".into() });
        }
        let master_key = MasterKey::from_base64(&key_text)
            .map_err(|e| ConfigError::Invalid { key: "master_key", message: e.to_string() })?;
        let previous_text: Vec<String> = match env("LIGHTBRIDGE_PREVIOUS_MASTER_KEYS") {
            Some(list) => list.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_string).collect(),
            None => file_config.previous_master_keys.unwrap_or_default(),
        };
        let previous_master_keys = previous_text
            .iter()
            .map(|k| MasterKey::from_base64(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::Invalid { key: "previous_master_keys", message: e.to_string() })?;
        Ok(Config {
            listen,
            data_dir,
            public_url,
            master_key,
            previous_master_keys,
            salesforce_login_url: parse_url("salesforce.login_url", &login)?,
            salesforce_test_url: parse_url("salesforce.test_url", &test)?,
            allowed_hosts,
            ca_file,
            health_check_interval: std::time::Duration::from_secs(health_secs),
            publish,
            database_url,
            database_max_connections,
            metrics_token,
        })
    }

    /// The keys that open secrets: the master key (which also seals) and any previous ones.
    pub fn keyring(&self) -> vault::Keyring {
        self.previous_master_keys
            .iter()
            .fold(vault::Keyring::new(self.master_key.clone()), |ring, k| ring.with_previous(k.clone()))
    }

    /// The effective configuration as TOML, with the master key shown only by fingerprint.
    pub fn redacted(&self) -> String {
        let hosts = self.allowed_hosts.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ");
        format!(
            "listen = \"{}\"\ndata_dir = {:?}\npublic_url = \"{}\"\nmaster_key = \"[redacted; fingerprint {}]\"\n{}{}health_check_interval_secs = {}\n\n[database]\n{}max_connections = {}\n\n[salesforce]\nlogin_url = \"{}\"\ntest_url = \"{}\"\nallowed_hosts = [{hosts}]\n{}\n[publish]\nconcurrency = {}\nper_org = {}\nmax_attempts = {}\nlease_secs = {}\nbackoff_base_ms = {}\nbackoff_max_ms = {}\n",
            self.listen,
            self.data_dir.display().to_string(),
            self.public_url,
            &self.master_key.fingerprint()[..16],
            if self.metrics_token.is_some() { "metrics_token = \"[redacted]\"\n" } else { "" },
            if self.previous_master_keys.is_empty() {
                String::new()
            } else {
                format!(
                    "previous_master_keys = [{}]\n",
                    self.previous_master_keys
                        .iter()
                        .map(|k| format!("\"[redacted; fingerprint {}]\"", &k.fingerprint()[..16]))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            self.health_check_interval.as_secs(),
            self.database_url.as_deref().map(|u| format!("url = \"{}\"\n", redact_password(u))).unwrap_or_default(),
            self.database_max_connections,
            self.salesforce_login_url,
            self.salesforce_test_url,
            self.ca_file.as_ref().map(|f| format!("ca_file = {:?}\n", f.display().to_string())).unwrap_or_default(),
            self.publish.concurrency,
            self.publish.per_org,
            self.publish.max_attempts,
            self.publish.lease.as_secs(),
            self.publish.backoff_base.as_millis(),
            self.publish.backoff_max.as_millis(),
        )
    }
}

/// A setting that may be given as a value or as a file holding it (secrets: keys, passwords,
/// tokens), in the environment or the file: the environment's value, then the environment's
/// file, then the file's value or file (not both). Trimmed; empty is absent.
fn secret(
    key: &'static str,
    env_value: Option<String>,
    env_file: Option<String>,
    file_value: Option<String>,
    file_path: Option<PathBuf>,
) -> Result<Option<String>, ConfigError> {
    let read = |path: PathBuf| std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path, source });
    let text = match (env_value, env_file, file_value, file_path) {
        (Some(value), ..) => Some(value),
        (None, Some(path), ..) => Some(read(PathBuf::from(path))?),
        (None, None, Some(_), Some(_)) => {
            return Err(ConfigError::Invalid { key, message: format!("give {key} or {key}_file, not both") });
        }
        (None, None, Some(value), None) => Some(value),
        (None, None, None, Some(path)) => Some(read(path)?),
        (None, None, None, None) => None,
    };
    Ok(text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
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

fn parse_url(key: &'static str, text: &str) -> Result<Url, ConfigError> {
    Url::parse(text).map_err(|e| ConfigError::Invalid { key, message: format!("{text:?} is not a URL: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn environment_wins_over_the_file_and_flags_win_over_both() {
        let dir = std::env::temp_dir().join(format!("lightbridge-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("lightbridge.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\npublic_url = \"https://lb.example\"\n[salesforce]\nallowed_hosts = [\"http://127.0.0.1:8181\"]\n").expect("write");
        let env = |k: &str| match k {
            "LIGHTBRIDGE_MASTER_KEY" => Some(KEY.to_string()),
            "LIGHTBRIDGE_LISTEN" => Some("127.0.0.1:9100".to_string()),
            _ => None,
        };
        let config = Config::from_parts(Some(&file), &env, &Overrides::default()).expect("config");
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.public_url.as_str(), "https://lb.example/");
        assert_eq!(config.allowed_hosts, ["http://127.0.0.1:8181"]);
        let flagged =
            Config::from_parts(Some(&file), &env, &Overrides { listen: Some("127.0.0.1:9200".into()), data_dir: None })
                .expect("config");
        assert_eq!(flagged.listen.port(), 9200);
        let printed = config.redacted();
        assert!(!printed.contains(KEY) && printed.contains("[redacted"), "{printed}");
        assert_eq!(config.database_url, None, "SQLite unless a URL is given");
        let with_pg = |k: &str| match k {
            "LIGHTBRIDGE_DATABASE__URL" => Some("postgres://lb:s3cret-pw@db.internal:5432/lightbridge".to_string()),
            other => env(other),
        };
        let pg = Config::from_parts(Some(&file), &with_pg, &Overrides::default()).expect("config");
        assert_eq!(pg.database_url.as_deref(), Some("postgres://lb:s3cret-pw@db.internal:5432/lightbridge"));
        let printed = pg.redacted();
        assert!(!printed.contains("s3cret-pw") && printed.contains("db.internal"), "{printed}");
        let bad = |k: &str| if k == "LIGHTBRIDGE_DATABASE__URL" { Some("mysql://x".to_string()) } else { env(k) };
        let err = Config::from_parts(Some(&file), &bad, &Overrides::default()).expect_err("not postgres").to_string();
        assert!(err.contains("database.url"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn unknown_file_keys_and_a_missing_key_are_errors_that_say_what_to_do() {
        let dir = std::env::temp_dir().join(format!("lightbridge-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("bad.toml");
        std::fs::write(&file, "listne = \"x\"\n").expect("write");
        let err = Config::from_parts(Some(&file), &|_| None, &Overrides::default()).expect_err("typo").to_string();
        assert!(err.contains("listne"), "{err}");
        let err = Config::from_parts(None, &|_| None, &Overrides::default()).expect_err("no key").to_string();
        assert!(err.contains("LIGHTBRIDGE_MASTER_KEY") && err.contains("keys generate"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
