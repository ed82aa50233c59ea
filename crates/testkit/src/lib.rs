//! Lightbridge's test harness. [`spawn`] starts the server the way `lightbridge serve` does
//! (`server::app::start_with_store`: the same service, router, worker and health sweep) on
//! 127.0.0.1 port 0, beside the Salesforce org emulator on port 0, over a fresh SQLite file — or
//! a fresh PostgreSQL database when `LIGHTBRIDGE_TEST_STORE=postgres` (`scripts/with-postgres`
//! sets `LIGHTBRIDGE_TEST_POSTGRES`). Two accounts and their users are seeded, each with an API
//! token and a password; [`TestApp`] sends requests as any of them.

pub mod lifecycle;
pub mod webdriver;

use domain::{AccountId, Role, User, UserId};
use emulator::{AppSeed, Emulator, OrgSeed, Seed, UserSeed};
use serde_json::{Value, json};
use server::api::{hash_token, new_api_token};
use server::{AppState, Config};
use store::{AccessStore, CatalogStore, PgStore, Store};
use vault::MasterKey;

pub const OAUTH_KEY: &str = "3MVG9OAuthApp";
pub const OAUTH_SECRET: &str = "oauth-app-secret";
pub const KEY: &str = "3MVG9ApiTestApp";
pub const SECRET: &str = "api-test-consumer-secret";

/// The scrape token test servers accept on `GET /metrics`.
pub const METRICS_TOKEN: &str = "metrics-scrape-token-for-tests";

#[derive(Debug)]
pub struct TestApp {
    pub base: String,
    pub em: Emulator,
    pub db: std::path::PathBuf,
    pub private_key: String,
    /// Tokens by name: owner_a, admin_a, editor_a, viewer_a (account A), admin_b (owner of B),
    /// operator (instance-wide). Each also signs in with the password `password-<name>`.
    pub tokens: std::collections::HashMap<&'static str, String>,
    /// Account ids by name: "A", "B".
    pub accounts: std::collections::HashMap<&'static str, AccountId>,
    pub http: reqwest::Client,
    /// The server's state (its store, for tests that break the database).
    pub state: AppState,
    /// The server's clock: real time plus an offset tests move (`clock.advance(…)`).
    pub clock: std::sync::Arc<TestClock>,
    /// The keys its store seals with, for a test that opens the same database again (another
    /// instance).
    pub keys: vault::Keyring,
}

/// The machine's time plus an offset a test moves forward, so it can wait out a lock or an
/// expiry without sleeping.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: std::sync::atomic::AtomicI64,
}

impl TestClock {
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl domain::Clock for TestClock {
    fn now_ms(&self) -> domain::Millis {
        domain::SystemClock.now_ms() + self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub async fn spawn() -> TestApp {
    spawn_with_health_checks(None).await
}

/// The app with the periodic health check running every `every`.
pub async fn spawn_with_health_checks(every: Option<std::time::Duration>) -> TestApp {
    spawn_configured(every, |_| {}).await
}

/// The app with its configuration changed by `customize` before it starts (e.g. a single
/// sign-on provider's origin allowed).
pub async fn spawn_configured(every: Option<std::time::Duration>, customize: impl FnOnce(&mut Config)) -> TestApp {
    let user = |name: &str, customize: bool| UserSeed { customize_application: customize, ..UserSeed::new(name) };
    let mut prod = OrgSeed::new("Acme Production");
    prod.users = vec![
        user("admin@acme.test", true),
        user("editor@acme.test", false),
        UserSeed { api_enabled: false, ..UserSeed::new("noapi@acme.test") },
        user("stranger@acme.test", true),
    ];
    let mut other = OrgSeed::new("Other Corp");
    other.users = vec![user("admin@other.test", true)];
    let mut sandbox = OrgSeed::new("Acme UAT");
    sandbox.sandbox = true;
    sandbox.users = vec![user("admin@acme.test.uat", true)];
    let app = AppSeed {
        generate_certificate: true,
        // stranger@acme.test is left out: a JWT for it is refused as not pre-authorized.
        pre_authorized: vec![
            "admin@acme.test".into(),
            "editor@acme.test".into(),
            "noapi@acme.test".into(),
            "admin@acme.test.uat".into(),
            "admin@other.test".into(),
        ],
        client_credentials_user: Some("admin@acme.test".into()),
        ..AppSeed::new(KEY, SECRET)
    };
    let em = Emulator::start(Seed { orgs: vec![prod, sandbox, other], apps: vec![app] }).await.expect("emulator");
    let dir = std::env::temp_dir().join(format!("lightbridge-api-{}", UserId::generate()));
    let db = dir.join("lightbridge.db");
    let mut config = test_config(&em, &dir, every);
    customize(&mut config);
    // `LIGHTBRIDGE_TEST_STORE=postgres` runs the same tests on PostgreSQL (`.ci/run` does).
    let store: Store = if std::env::var("LIGHTBRIDGE_TEST_STORE").as_deref() == Ok("postgres") {
        let url =
            std::env::var("LIGHTBRIDGE_TEST_POSTGRES").expect("LIGHTBRIDGE_TEST_POSTGRES (scripts/with-postgres)");
        PgStore::scratch(&url, config.keyring()).await.expect("postgres store").into()
    } else {
        server::app::open_store(&config).await.expect("store")
    };
    let mut tokens = std::collections::HashMap::new();
    let mut accounts = std::collections::HashMap::new();
    for (label, account_name, role) in [
        ("owner_a", "A", Role::Owner),
        ("admin_a", "A", Role::Admin),
        ("editor_a", "A", Role::Editor),
        ("viewer_a", "A", Role::Viewer),
        ("admin_b", "B", Role::Owner),
        ("operator", "", Role::Operator),
    ] {
        let account = match store.user_by_email(&format!("first@{account_name}.test")).await {
            _ if account_name.is_empty() => None,
            Ok(u) => Some(u.account_id.expect("account")),
            Err(_) => {
                let id = AccountId::generate();
                store.create_account(&id, account_name, 0).await.expect("account");
                store
                    .create_user(
                        &User {
                            id: UserId::generate(),
                            account_id: Some(id.clone()),
                            email: format!("first@{account_name}.test"),
                            name: "First".into(),
                            role: Role::Owner,
                        },
                        None,
                        0,
                    )
                    .await
                    .expect("first user");
                accounts.insert(account_name, id.clone());
                Some(id)
            }
        };
        let user = User {
            id: UserId::generate(),
            account_id: account,
            email: format!("{label}@lightbridge.test"),
            name: label.into(),
            role,
        };
        let hash = service::password::hash(&vault::Password::new(format!("password-{label}"))).expect("hash");
        store.create_user(&user, Some(&hash), 0).await.expect("user");
        let token = new_api_token().expect("token");
        store
            .create_api_token(&format!("tok_{label}"), &user.id, label, &hash_token(token.expose_secret()), 0)
            .await
            .expect("token");
        tokens.insert(label, token.expose_secret().to_string());
    }
    let clock = std::sync::Arc::new(TestClock::default());
    let started = server::app::start_with_clock(&config, store, clock.clone()).await.expect("start");
    let base = format!("http://{}", started.local_addr().expect("addr"));
    em.add_app(&AppSeed {
        callback_urls: vec![format!("{base}/oauth/callback")],
        require_pkce: true,
        ..AppSeed::new(OAUTH_KEY, OAUTH_SECRET)
    })
    .expect("oauth app");
    let state = started.state.clone();
    tokio::spawn(started.run(std::future::pending()));
    let private_key = em.private_key_pem(KEY).expect("key");
    let keys = config.keyring();
    TestApp { base, em, db, private_key, tokens, accounts, http: reqwest::Client::new(), state, clock, keys }
}

/// The configuration a test server runs with: port 0, its own data folder and master key, the
/// emulator as the only allowed Salesforce, quick publish retries (so fault tests finish in a
/// moment), `/metrics` behind [`METRICS_TOKEN`], the health sweep only when asked for.
pub fn test_config(em: &Emulator, data_dir: &std::path::Path, health: Option<std::time::Duration>) -> Config {
    let listen: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
    Config {
        listen,
        data_dir: data_dir.to_path_buf(),
        public_url: format!("http://{listen}/").parse().expect("url"),
        master_key: MasterKey::generate().expect("key"),
        previous_master_keys: Vec::new(),
        salesforce_login_url: em.login_url().parse().expect("url"),
        salesforce_test_url: em.test_login_url().parse().expect("url"),
        allowed_hosts: vec![em.base_url().to_string()],
        sso_allowed_hosts: Vec::new(),
        sso_dns_servers: Vec::new(),
        ca_file: None,
        health_check_interval: health.unwrap_or_default(),
        unavailable_after: std::time::Duration::from_secs(1800),
        keep_alive: std::time::Duration::from_secs(24 * 3600),
        publish: server::WorkerConfig {
            backoff_base: std::time::Duration::from_millis(20),
            backoff_max: std::time::Duration::from_millis(200),
            lease: std::time::Duration::from_secs(10),
            loader_polling: service::worker::LoaderPolling {
                every: std::time::Duration::from_millis(50),
                timeout: std::time::Duration::from_secs(4),
            },
            ..Default::default()
        },
        database_url: None,
        database_max_connections: 10,
        metrics_token: Some(METRICS_TOKEN.into()),
        // Retries in tenths of a second, and receivers on 127.0.0.1 (#18).
        notifier: service::notify::NotifierConfig {
            poll: std::time::Duration::from_millis(100),
            backoff_base: std::time::Duration::from_millis(100),
            backoff_max: std::time::Duration::from_millis(400),
            ..Default::default()
        },
        webhook_allow_private: true,
        mail: None,
    }
}

/// Sends a request; returns the status and the body as JSON (or as a string when it is not).
async fn read(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

impl TestApp {
    /// The typed API client, as the CLI uses it, with `who`'s token.
    pub fn client(&self, who: &str) -> client::Client {
        client::Client::with_http(self.http.clone(), &self.base, self.tokens.get(who).cloned().unwrap_or_default())
    }

    pub async fn call(&self, who: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}/api/v1{path}", self.base));
        if let Some(token) = self.tokens.get(who) {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req).await
    }

    /// Signs in with the user's password; returns the session cookie and CSRF token.
    pub async fn sign_in(&self, label: &str) -> (String, String) {
        let r = self
            .http
            .post(format!("{}/api/v1/session", self.base))
            .json(&json!({"email": format!("{label}@lightbridge.test"), "password": format!("password-{label}")}))
            .send()
            .await
            .expect("sign in");
        assert_eq!(r.status(), 200, "sign-in as {label}");
        let cookie = r.headers()["set-cookie"].to_str().expect("cookie").split(';').next().expect("pair").to_string();
        let body: Value = r.json().await.expect("json");
        (cookie, body["csrf_token"].as_str().expect("csrf").to_string())
    }

    /// A browser request with a session cookie (and the CSRF header when given).
    pub async fn browser(
        &self,
        cookie: &str,
        csrf: Option<&str>,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = if url.starts_with("http") { url.to_string() } else { format!("{}{url}", self.base) };
        let mut req = self.http.request(method, url).header("cookie", cookie);
        if let Some(token) = csrf {
            req = req.header("x-csrf-token", token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req).await
    }

    /// Starts an OAuth sign-in in the browser session and follows it through the emulator's
    /// Salesforce pages as `username`; returns the callback URL Salesforce sent the browser to.
    pub async fn oauth_through_salesforce(
        &self,
        cookie: &str,
        csrf: &str,
        start_path: &str,
        body: Value,
        username: &str,
    ) -> String {
        let (status, started) = self.browser(cookie, Some(csrf), reqwest::Method::POST, start_path, Some(body)).await;
        assert_eq!(status, 200, "{started}");
        let authorize = started["authorize_url"].as_str().expect("authorize_url");
        emulator::testing::sign_in(authorize, username, "emulator", true).await.expect("salesforce sign-in")
    }

    pub fn jwt(&self, name: &str, username: &str) -> Value {
        json!({"name": name, "org_type": "production", "login_host": "login",
               "auth": {"method": "jwt", "consumer_key": KEY, "username": username, "private_key": self.private_key}})
    }
}

/// A connection of `account` as it is stored after a sign-in, numbered `i`, with the status
/// and kind asked for: to seed a table without signing in to Salesforce each time.
pub fn seeded_connection(
    account: &AccountId,
    i: i64,
    status: domain::ConnectionStatus,
    sandbox: bool,
    jwt: bool,
) -> domain::Connection {
    domain::Connection {
        id: domain::ConnectionId::generate(),
        account_id: account.clone(),
        kind: domain::ConnectionKind::New {
            name: domain::ConnectionName::parse(&format!("Seed {i:03}")).expect("name"),
        },
        org_type: if sandbox { domain::OrgType::Sandbox } else { domain::OrgType::Production },
        login_host: domain::LoginHost::Login,
        auth: if jwt {
            domain::AuthMethod::Jwt { consumer_key: KEY.into(), username: "admin@acme.test".into() }
        } else {
            domain::AuthMethod::OAuth { consumer_key: OAUTH_KEY.into() }
        },
        org: Some(domain::OrgFacts {
            org_id: "00D5g0000012AbCEAU".into(),
            org_name: format!("Org {}", (i * 7) % 13),
            instance_url: "https://acme.my.salesforce.com".into(),
            user_id: "0055g0000000001AAA".into(),
            username: format!("user{}@seed.test", i % 5),
            email: Some(format!("user{}@seed.test", i % 5)),
        }),
        status,
        status_detail: None,
        status_reason: None,
        granted_at: None,
        status_checked_at: None,
        created_at: 1_000 + i,
        created_by: Some(format!("user{}@seed.test", i % 5)),
        modified_at: 5_000 - i,
        modified_by: Some(format!("user{}@seed.test", i % 3)),
    }
}

/// Opens an XLSX with openpyxl (from `compat/install.sh`), as a spreadsheet program would:
/// the header row, the data rows, and the Python type of each cell of the first row.
pub fn read_xlsx(path: &std::path::Path) -> serde_json::Value {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat/.venv/bin/python");
    let script = r#"
import json, sys, openpyxl
ws = openpyxl.load_workbook(sys.argv[1]).active
rows = [[c.value for c in r] for r in ws.iter_rows()]
print(json.dumps({"headers": rows[0], "rows": [[str(v) if v is not None else None for v in r] for r in rows[1:]],
                  "types": [type(v).__name__ for v in rows[1]] if len(rows) > 1 else []}))
"#;
    let out = std::process::Command::new(&python).args(["-c", script]).arg(path).output().unwrap_or_else(|e| {
        panic!("openpyxl is needed to check the XLSX export: run compat/install.sh ({}: {e})", python.display())
    });
    assert!(out.status.success(), "openpyxl could not open the export: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Opens an XLSX in LibreOffice Calc (Debian's `libreoffice-calc-nogui`, which `.ci/run`
/// installs) and saves it as UTF-8 CSV, each cell as Calc shows it: the sheet's records, the
/// header first. Each call has its own Calc profile, so tests can run it at once.
pub fn read_xlsx_in_calc(path: &std::path::Path) -> Vec<Vec<String>> {
    let dir = std::env::temp_dir().join(format!("lightbridge-calc-{}", UserId::generate()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = std::process::Command::new("soffice")
        .arg(format!("-env:UserInstallation=file://{}", dir.join("profile").display()))
        .args(["--headless", "--norestore", "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir"])
        .arg(&dir)
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("LibreOffice Calc is needed to check the XLSX export (Debian's libreoffice-calc-nogui, which .ci/run installs): {e}")
        });
    let stem = path.file_stem().expect("a file name");
    let converted = dir.join(stem).with_extension("csv");
    let bytes = std::fs::read(&converted).unwrap_or_else(|e| {
        panic!(
            "Calc could not open the XLSX ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes.as_slice())
        .records()
        .map(|r| r.expect("Calc's CSV").iter().map(str::to_string).collect())
        .collect()
}

/// A ZIP bundle of these files (through the publish crate, as the CLI builds it).
pub fn bundle_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("lightbridge-test-bundle-{}", UserId::generate()));
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, content).expect("write");
    }
    let bundle = publish::Bundle::from_dir(&dir, publish::Limits::default()).expect("bundle");
    let _ = std::fs::remove_dir_all(dir);
    bundle.bytes().to_vec()
}

/// `POST /api/v1/deployments` as multipart with a ZIP; returns the status and the JSON.
pub async fn upload(app: &TestApp, who: &str, fields: &[(&str, &str)], zip: &[u8]) -> (u16, Value) {
    let boundary = "lightbridge-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.zip\"\r\nContent-Type: application/zip\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(zip);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let request = app
        .http
        .post(format!("{}/api/v1/deployments", app.base))
        .bearer_auth(&app.tokens[who])
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body);
    read(request).await
}

/// Uploads a bundle of `files` as a deployment through the typed client and returns it (202
/// expected), as JSON (the client's types re-serialize to exactly what the server sent).
pub async fn deploy(app: &TestApp, who: &str, system: &str, env: &str, name: &str, files: &[(&str, &[u8])]) -> Value {
    deploy_as(app, who, (system, env, name), files, false, None).await
}

/// [`deploy`] in waves (#17): `rollout` is the API's `RolloutInput` as JSON.
pub async fn deploy_in_waves(
    app: &TestApp,
    who: &str,
    (system, env, name): (&str, &str, &str),
    files: &[(&str, &[u8])],
    rollout: Value,
) -> Value {
    deploy_as(app, who, (system, env, name), files, false, Some(rollout)).await
}

/// [`deploy`], asking for the system's loader too (issue #15).
pub async fn deploy_with_loader(
    app: &TestApp,
    who: &str,
    system: &str,
    env: &str,
    name: &str,
    files: &[(&str, &[u8])],
) -> Value {
    deploy_as(app, who, (system, env, name), files, true, None).await
}

async fn deploy_as(
    app: &TestApp,
    who: &str,
    (system, env, name): (&str, &str, &str),
    files: &[(&str, &[u8])],
    with_loader: bool,
    rollout: Option<Value>,
) -> Value {
    let upload = client::DeploymentUpload {
        system_id: system.into(),
        environment_id: env.into(),
        resource_name: name.into(),
        cache_control: "private".into(),
        with_loader,
        rollout,
        overwrite_drift: false,
        zip: bundle_zip(files),
    };
    let started = app.client(who).start_deployment(upload).await.unwrap_or_else(|e| panic!("deploy: {e}"));
    serde_json::to_value(started).expect("json")
}

/// Polls a deployment through the typed client until it is no longer running (20 s at most).
pub async fn finished(app: &TestApp, who: &str, id: &str) -> Value {
    let started = std::time::Instant::now();
    let api = app.client(who);
    loop {
        let deployment = api.deployment(id).await.unwrap_or_else(|e| panic!("deployment {id}: {e}"));
        if deployment.finished() {
            return serde_json::to_value(deployment).expect("json");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "still running: {deployment:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
