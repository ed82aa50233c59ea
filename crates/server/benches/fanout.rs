//! Issue #5's figures: publish a 1 MB bundle to N emulated orgs (default 1,000) with a fixed
//! latency on every Salesforce call (default 50 ms), and compare, in the same run,
//! 1. the wall time against the floor ⌈orgs / concurrency⌉ × calls per org × latency
//!    (goal ≤ 1.25× the floor);
//! 2. a plain sequential simple-salesforce script doing the same upserts (goal ≥ 50× slower
//!    than Lightbridge). The script runs on a sample of the orgs (default 40) and its time is
//!    scaled to all of them — sequential work scales linearly; the sample size is printed.
//!
//! Also the build time and size of a bundle from a 5 MB folder.
//!
//! With `--with-loader` (issue #15) the deployment also deploys the system's loader into each
//! org — permission check, version read, the org's apps and utility bar, a validation and a
//! deploy each taking `--deploy-ms` (default 3,000) on the emulator's clock and polled every
//! second as the worker does by default, then the read back — and the floor becomes
//! ⌈orgs / concurrency⌉ × (calls × latency + 2 × deploy time), the status polls counted among
//! the calls (goal ≤ 1.3×). The report adds each org's calls (and how much of an Enterprise
//! org's daily allowance they take) and the process's peak memory. The simple-salesforce
//! comparison is for resources alone, so it is skipped.
//!
//! `cargo bench -p server --bench fanout` (`-- --orgs 1000 --latency-ms 50 --concurrency 128 --sample 40`;
//! `--waves N` rolls the release out in N waves, #17). Lightbridge and the emulator run on
//! runtimes of their own with named threads, and the report gives each one's CPU seconds.
//! Each connection holds a session token, as a connection does once its check passed.
//! The simple-salesforce part needs `compat/install.sh`; without it that part is skipped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use connections::{Clock, LoginUrls, SystemClock};
use domain::{
    AccountId, AuthMethod, Connection, ConnectionId, ConnectionKind, ConnectionName, ConnectionStatus, LoginHost,
    OrgFacts, OrgType, Role, System, SystemId, User, UserId,
};
use emulator::{AppSeed, Emulator, Latency, OrgSeed, Seed, UserSeed};
use server::api::{hash_token, new_api_token};
use server::{AppState, Server, WorkerConfig};
use store::{AccessStore, CatalogStore, ConnectionStore, DeploymentStore, NewSecrets, PgStore, SqliteStore, Store};
use vault::{JwtPrivateKey, Keyring, MasterKey};

const KEY: &str = "3MVG9FanoutBench";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Bytes that do not compress, so the bundle really is about `len` bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// User + system CPU time so far of this process's threads whose name starts with `prefix`
/// (Linux; the kernel keeps 15 characters of a thread's name), in seconds.
fn thread_cpu_seconds(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1;
            name.starts_with(prefix).then_some(rest.to_string())
        })
        .map(|rest| {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (ticks(11) + ticks(12)) / 100.0
        })
        .sum()
}

/// User + system CPU time of this process so far (Linux), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Where the time beyond the floor goes, from the emulator's request log: each call's time in
/// the emulator beyond the injected latency, the gaps between one org's calls (the publisher's
/// own work between answers), and each org's span against the calls' latency.
fn breakdown(requests: &[emulator::RequestRecord], latency_ms: u64, wall: f64, started_ms: i64, slots: usize) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v.get(v.len() / 2).copied().unwrap_or(0.0), v.get(v.len() * 9 / 10).copied().unwrap_or(0.0))
    };
    let mut by_org: std::collections::HashMap<&str, Vec<&emulator::RequestRecord>> = Default::default();
    for r in requests {
        by_org.entry(r.org_id.as_deref().unwrap_or("")).or_default().push(r);
    }
    let mut inside = Vec::new();
    let mut between = Vec::new();
    let mut first = Vec::new();
    let mut spans = 0.0;
    for calls in by_org.values_mut() {
        calls.sort_by_key(|r| r.seq);
        let last = calls[calls.len() - 1];
        spans += (last.at_ms - calls[0].at_ms) as f64 + last.duration_us as f64 / 1000.0;
        for pair in calls.windows(2) {
            let end = pair[0].at_ms as f64 + pair[0].duration_us as f64 / 1000.0;
            between.push(pair[1].at_ms as f64 - end);
        }
        first.push((calls[0].at_ms - started_ms) as f64);
        inside.extend(calls.iter().map(|r| r.duration_us as f64 / 1000.0 - latency_ms as f64));
    }
    let (inside, inside90) = median(inside);
    let (between, between90) = median(between);
    let (_, first90) = median(first);
    let orgs = by_org.len().max(1) as f64;
    println!(
        "  each org's calls span {:.1} ms on average; a slot spends {:.1} ms per org outside its calls (claiming, reading the connection, recording the result, idle)",
        spans / orgs,
        (slots as f64 * wall * 1000.0 - spans) / orgs
    );
    println!(
        "  per call beyond the latency: {inside:.1} ms median ({inside90:.1} ms p90) in the emulator, {between:.1} ms ({between90:.1} ms p90) between one org's calls; 90% of orgs started within {first90:.0} ms of {wall:.2} s"
    );
}

/// A `kB` figure of `/proc/self/status` (`VmHWM`, `VmRSS`).
fn vm_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// With `LIGHTBRIDGE_PERF_CTL=path` (a `perf record --control fifo:path -D -1` control FIFO),
/// perf samples only the fan-out itself, not the seeding around it.
fn perf_control(command: &str) {
    if let Ok(path) = std::env::var("LIGHTBRIDGE_PERF_CTL") {
        use std::io::Write;
        if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(path) {
            let _ = writeln!(fifo, "{command}");
        }
    }
}

/// The emulator the fan-out publishes to: in this process (its own runtime), or — with
/// `--emulator-process` — a child process (this same binary, started with
/// `FANOUT_EMULATOR_SEED`), so this process's memory is Lightbridge's alone (#17).
enum Em {
    Local(Emulator),
    Child {
        child: std::process::Child,
        base: String,
        https: String,
        ca: std::path::PathBuf,
        private_key: String,
        /// username → (org id, user id)
        users: std::collections::HashMap<String, (String, String)>,
    },
}

impl Em {
    fn base_url(&self) -> &str {
        match self {
            Em::Local(em) => em.base_url(),
            Em::Child { base, .. } => base,
        }
    }
    fn https_url(&self) -> String {
        match self {
            Em::Local(em) => em.https_url().expect("https").to_string(),
            Em::Child { https, .. } => https.clone(),
        }
    }
    fn login_url(&self) -> String {
        format!("{}/hosts/login", self.base_url())
    }
    fn test_login_url(&self) -> String {
        format!("{}/hosts/test", self.base_url())
    }
    fn ca_file(&self) -> std::path::PathBuf {
        match self {
            Em::Local(em) => em.ca_file().to_path_buf(),
            Em::Child { ca, .. } => ca.clone(),
        }
    }
    fn private_key_pem(&self) -> String {
        match self {
            Em::Local(em) => em.private_key_pem(KEY).expect("key"),
            Em::Child { private_key, .. } => private_key.clone(),
        }
    }
    fn ids_of(&self, username: &str) -> (String, String) {
        match self {
            Em::Local(em) => (em.org_id_of_user(username).expect("org"), em.user_id(username).expect("user")),
            Em::Child { users, .. } => users.get(username).cloned().expect("user"),
        }
    }
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> reqwest::Response {
        let mut r = reqwest::Client::new().request(method, format!("{}/__emulator{path}", self.base_url()));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.expect("emulator admin")
    }
    async fn set_latency(&self, latency: Latency) {
        match self {
            Em::Local(em) => em.set_latency(latency),
            Em::Child { .. } => {
                let body = serde_json::to_value(latency).expect("json");
                self.admin(reqwest::Method::PUT, "/latency", Some(body)).await;
            }
        }
    }
    async fn set_deploy_time(&self, time: Duration) {
        match self {
            Em::Local(em) => em.set_deploy_time(time),
            Em::Child { .. } => {
                let body = serde_json::json!({"ms": time.as_millis() as u64});
                self.admin(reqwest::Method::PUT, "/deploy-time", Some(body)).await;
            }
        }
    }
    async fn clear_requests(&self) {
        match self {
            Em::Local(em) => em.clear_requests(),
            Em::Child { .. } => {
                self.admin(reqwest::Method::DELETE, "/requests", None).await;
            }
        }
    }
    async fn requests(&self) -> Vec<emulator::RequestRecord> {
        match self {
            Em::Local(em) => em.requests(),
            Em::Child { .. } => {
                let v: serde_json::Value =
                    self.admin(reqwest::Method::GET, "/requests", None).await.json().await.expect("json");
                let list = v.get("requests").cloned().unwrap_or(v);
                serde_json::from_value(list).expect("request log")
            }
        }
    }
    fn shutdown(self) {
        match self {
            Em::Local(em) => em.shutdown(),
            Em::Child { mut child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The child's side of `--emulator-process`: the emulator alone, what the parent needs on one
/// line of stdout, then serving until the parent kills it.
fn emulator_child(seed_file: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("emulator")
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let seed: Seed = serde_json::from_slice(&std::fs::read(seed_file).expect("seed")).expect("seed json");
        let em = Emulator::start_with(emulator::Config { seed, http_port: 0, https_port: Some(0), state_dir: None })
            .await
            .expect("emulator");
        let line = serde_json::json!({
            "base": em.base_url(), "https": em.https_url(), "ca": em.ca_file(),
            "private_key": em.private_key_pem(KEY),
        });
        println!("{line}");
        std::future::pending::<()>().await;
    });
}

fn main() {
    // As `lightbridge` starts.
    server::limit_malloc_arenas();
    if let Ok(seed) = std::env::var("FANOUT_EMULATOR_SEED") {
        return emulator_child(&seed);
    }
    // Lightbridge and the emulator on runtimes of their own, their threads named, so the CPU
    // each spends is read apart (#17): the emulator is Salesforce's side of the work.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lightbridge")
        .enable_all()
        .build()
        .expect("runtime");
    let emulator_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("emulator")
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(
        emulator_rt.handle().clone(),
        arg("--orgs", 1000),
        arg("--latency-ms", 50) as u64,
        arg("--concurrency", 128),
        arg("--sample", 40),
        arg("--instances", 1),
    ));
}

async fn run(
    emulator_rt: tokio::runtime::Handle,
    orgs: usize,
    latency_ms: u64,
    concurrency: usize,
    sample: usize,
    instances: usize,
) {
    // As `lightbridge serve` sets it: a quarter of the concurrency.
    let prefetch = arg("--prefetch", concurrency.div_ceil(4));
    let dir = std::env::temp_dir().join(format!("lightbridge-bench-fanout-{}", UserId::generate()));
    std::fs::create_dir_all(&dir).expect("dir");

    // Bundles: 1 MB for the fan-out, and the build time of a 5 MB folder.
    let five = dir.join("five-mb");
    std::fs::create_dir_all(five.join("data")).expect("dir");
    for i in 0..20 {
        std::fs::write(five.join(format!("data/chunk{i:02}.bin")), noise(200 * 1024, i + 1)).expect("file");
        std::fs::write(
            five.join(format!("data/page{i:02}.json")),
            format!("{{\"page\": {i}, \"text\": \"{}\"}}", "lorem ipsum ".repeat(4_000)),
        )
        .expect("file");
    }
    let mut builds = Vec::new();
    let mut size = 0;
    let mut folder_bytes = 0;
    for _ in 0..5 {
        let started = Instant::now();
        match publish::Bundle::from_dir(&five, publish::Limits::default()) {
            Ok(b) => size = b.bytes().len(),
            Err(e) => println!("5 MB folder: {e}"),
        }
        builds.push(started.elapsed());
    }
    for e in std::fs::read_dir(five.join("data")).expect("dir").flatten() {
        folder_bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
    }
    builds.sort();
    println!(
        "bundle from a {:.1} MB folder (40 files): median build {:.1} ms, {:.2} MB zipped",
        folder_bytes as f64 / 1_048_576.0,
        builds[2].as_secs_f64() * 1000.0,
        size as f64 / 1_048_576.0
    );
    let one_mb = dir.join("one-mb");
    std::fs::create_dir_all(&one_mb).expect("dir");
    std::fs::write(one_mb.join("player.bin"), noise(1024 * 1024 - 2048, 99)).expect("file");
    std::fs::write(one_mb.join("player.js"), "window.player = true;").expect("file");
    let bundle = publish::Bundle::from_dir(&one_mb, publish::Limits::default()).expect("bundle");
    println!("fan-out bundle: {:.2} MB", bundle.bytes().len() as f64 / 1_048_576.0);

    let with_loader = std::env::args().any(|a| a == "--with-loader");
    let deploy_ms = arg("--deploy-ms", 3_000) as u64;
    let sample = if with_loader { 0 } else { sample };

    // N orgs, one user each, one JWT app pre-authorizing them all.
    let users: Vec<String> = (0..orgs).map(|i| format!("publisher{i}@org{i}.bench")).collect();
    let mut seed_orgs = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let mut org = OrgSeed::new(format!("Bench Org {i:04}"));
        org.daily_api_limit = 10_000_000;
        org.users = vec![UserSeed::new(u)];
        seed_orgs.push(org);
    }
    let app =
        AppSeed { generate_certificate: true, pre_authorized: users.clone(), ..AppSeed::new(KEY, "fanout-secret") };
    // HTTPS too: simple-salesforce only speaks HTTPS (it trusts the emulator's CA file).
    let seed = Seed { orgs: seed_orgs, apps: vec![app] };
    let em = if std::env::args().any(|a| a == "--emulator-process") {
        let seed_file = dir.join("seed.json");
        std::fs::write(&seed_file, serde_json::to_vec(&seed).expect("json")).expect("seed");
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .env("FANOUT_EMULATOR_SEED", &seed_file)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the emulator's process");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
            .expect("the emulator's address");
        let started: serde_json::Value = serde_json::from_str(&line).expect("json");
        let text = |k: &str| started[k].as_str().expect(k).to_string();
        let base = text("base");
        let state: serde_json::Value =
            reqwest::get(format!("{base}/__emulator/state")).await.expect("state").json().await.expect("json");
        let mut users = std::collections::HashMap::new();
        for org in state["orgs"].as_array().expect("orgs") {
            for u in org["users"].as_array().expect("users") {
                let name = u["username"].as_str().expect("username").to_string();
                users.insert(
                    name,
                    (org["id"].as_str().expect("org").to_string(), u["id"].as_str().expect("id").to_string()),
                );
            }
        }
        println!("emulator in its own process (pid {})", child.id());
        Em::Child { child, base, https: text("https"), ca: text("ca").into(), private_key: text("private_key"), users }
    } else {
        Em::Local(
            emulator_rt
                .spawn(Emulator::start_with(emulator::Config {
                    seed,
                    http_port: 0,
                    https_port: Some(0),
                    state_dir: None,
                }))
                .await
                .expect("emulator task")
                .expect("emulator"),
        )
    };
    let private_key = em.private_key_pem();

    // SQLite in a file, or a new PostgreSQL database (`--store postgres`, through
    // scripts/with-postgres); `--instances N` runs N workers, each with its own connections to it.
    let master = MasterKey::generate().expect("key");
    let postgres = std::env::args().any(|a| a == "postgres");
    let (store, reopen): (Arc<Store>, String) = if postgres {
        let url = std::env::var("LIGHTBRIDGE_TEST_POSTGRES").expect("--store postgres needs scripts/with-postgres");
        let pg = PgStore::scratch(&url, Keyring::new(master.clone())).await.expect("postgres");
        let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(pg.pool()).await.expect("name");
        (Arc::new(pg.into()), format!("{}/{name}", url.rsplit_once('/').expect("url").0))
    } else {
        let path = dir.join("bench.db");
        let sqlite = SqliteStore::open(&path, Keyring::new(master.clone())).await.expect("store");
        (Arc::new(sqlite.into()), path.display().to_string())
    };
    let account = AccountId::generate();
    store.create_account(&account, "Fan-out", 0).await.expect("account");
    let user = User {
        id: UserId::generate(),
        account_id: Some(account.clone()),
        email: "ci@bench.test".into(),
        name: "CI".into(),
        role: Role::Editor,
    };
    store.create_user(&user, None, 0).await.expect("user");
    let token = new_api_token().expect("token");
    store.create_api_token("tok_fanout", &user.id, "ci", &hash_token(token.expose_secret()), 0).await.expect("token");
    let system =
        System { id: SystemId::generate(), account_id: account.clone(), name: "Sales Cloud".into(), created_at: 0 };
    store.insert_system(&system).await.expect("system");
    let env = store.environments(&account).await.expect("envs")[0].id.clone();
    if with_loader {
        let config = domain::LoaderConfig {
            system_id: system.id.clone(),
            scripts: vec!["player.js".into()],
            styles: Vec::new(),
            trusted_sites: vec!["https://player.example.com".into()],
            apps: vec!["standard__LightningSales".into()],
            updated_at: 0,
            updated_by: "ci@bench.test".into(),
        };
        store.put_loader_config(&account, &config).await.expect("loader");
        em.set_deploy_time(Duration::from_millis(deploy_ms)).await;
    }
    let client_for_seed =
        salesforce::Client::new(salesforce::HostPolicy::allowing([em.base_url()]).expect("policy")).expect("client");
    let login: url::Url = em.login_url().parse().expect("url");
    for (i, u) in users.iter().enumerate() {
        let c = Connection {
            id: ConnectionId::generate(),
            account_id: account.clone(),
            kind: ConnectionKind::New { name: ConnectionName::parse(&format!("Org {i}")).expect("name") },
            org_type: OrgType::Production,
            login_host: LoginHost::Login,
            auth: AuthMethod::Jwt { consumer_key: KEY.into(), username: u.clone() },
            org: Some(OrgFacts {
                org_id: em.ids_of(u).0,
                org_name: format!("Bench Org {i:04}"),
                instance_url: em.base_url().into(),
                user_id: em.ids_of(u).1,
                username: u.clone(),
                email: Some(u.clone()),
            }),
            status: ConnectionStatus::LoggedIn,
            status_detail: None,
            status_reason: None,
            granted_at: None,
            status_checked_at: Some(0),
            created_at: i as i64,
            created_by: Some(u.clone()),
            modified_at: i as i64,
            modified_by: Some(u.clone()),
        };
        // A stored session, as every connection has after its check (minted before latency is on).
        let token = client_for_seed
            .jwt_bearer(&login, salesforce::OrgType::Production, KEY, u, &JwtPrivateKey::new(private_key.clone()))
            .await
            .expect("token");
        let secrets = NewSecrets {
            private_key: Some(JwtPrivateKey::new(private_key.clone())),
            tokens: Some(store::TokenSet {
                access_token: token.access_token,
                refresh_token: None,
                instance_url: token.instance_url.to_string(),
            }),
            ..Default::default()
        };
        store.insert(&c, &secrets).await.expect("connection");
        store.bind(&account, &c.id, &system.id, &env, 0).await.expect("bind");
    }

    let client =
        salesforce::Client::new(salesforce::HostPolicy::allowing([em.base_url()]).expect("policy")).expect("client");
    let urls =
        LoginUrls { login: em.login_url().parse().expect("url"), test: em.test_login_url().parse().expect("url") };
    let state = AppState::new((*store).clone(), client.clone(), urls.clone(), Arc::new(SystemClock));
    server::spawn_worker(&state, WorkerConfig { concurrency, per_org: 4, prefetch, ..Default::default() });
    // The rollout keeper, as `lightbridge serve` runs it: it starts each next wave (#17).
    service::rollout::spawn_keeper(&state, Duration::from_millis(250));
    for _ in 1..instances {
        let other: Store = if postgres {
            PgStore::open(&reopen, 16, Keyring::new(master.clone())).await.expect("postgres").into()
        } else {
            SqliteStore::open(std::path::Path::new(&reopen), Keyring::new(master.clone())).await.expect("sqlite").into()
        };
        let other = AppState::new(other, client.clone(), urls.clone(), Arc::new(SystemClock));
        server::spawn_worker(&other, WorkerConfig { concurrency, per_org: 4, prefetch, ..Default::default() });
    }
    let server = Server::bind(state, "127.0.0.1:0".parse().expect("addr")).await.expect("bind");
    let base = format!("http://{}", server.local_addr().expect("addr"));
    tokio::spawn(server.run(std::future::pending()));

    // Sessions for the simple-salesforce script's sample, minted before the latency is on.
    let mut sessions = Vec::new();
    for u in users.iter().take(sample) {
        let t = client
            .jwt_bearer(
                &em.login_url().parse().expect("url"),
                salesforce::OrgType::Production,
                KEY,
                u,
                &JwtPrivateKey::new(private_key.clone()),
            )
            .await
            .expect("token");
        let https = em.https_url().trim_end_matches('/').to_string();
        let _ = t.instance_url;
        sessions.push(serde_json::json!({"instance_url": https, "access_token": t.access_token.expose_secret()}));
    }

    em.set_latency(Latency { fixed_ms: latency_ms, jitter_ms: 0 }).await;
    em.clear_requests().await;
    let http = reqwest::Client::new();
    let boundary = "fanout-bench";
    let mut body = Vec::new();
    let mut fields =
        vec![("system_id", system.id.as_str()), ("environment_id", env.as_str()), ("resource_name", "Fanout_Player")];
    if with_loader {
        fields.push(("with_loader", "true"));
    }
    // `--waves N` (#17): the same release in N waves, each of an equal share of the orgs,
    // each starting as soon as the one before passed.
    let waves = arg("--waves", 1).clamp(1, 20);
    let rollout = (waves > 1).then(|| {
        let share = 100 / waves;
        let mut list: Vec<serde_json::Value> =
            (0..waves - 1).map(|_| serde_json::json!({"percent": share.max(1)})).collect();
        list.push(serde_json::json!({}));
        serde_json::json!({"waves": list, "max_failure_rate": 0.0}).to_string()
    });
    if let Some(r) = &rollout {
        fields.push(("rollout", r.as_str()));
    }
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.zip\"\r\nContent-Type: application/zip\r\n\r\n").as_bytes());
    body.extend_from_slice(bundle.bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    perf_control("enable");
    // The peak from here on: the seeding above (10,000 tokens minted, the emulator's state read)
    // is the bench's, not the fan-out's. Writing 5 to clear_refs resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let resident_before = vm_kb("VmRSS");
    let cpu_before = cpu_seconds();
    // Lightbridge's threads: its runtime's and SQLite's (sqlx runs each connection on a thread).
    let lightbridge_cpu_now = || thread_cpu_seconds("lightbridge") + thread_cpu_seconds("sqlx-sqlite");
    let (lightbridge_before, emulator_before) = (lightbridge_cpu_now(), thread_cpu_seconds("emulator"));
    let started_ms = SystemClock.now_ms();
    let created: serde_json::Value = http
        .post(format!("{base}/api/v1/deployments"))
        .bearer_auth(token.expose_secret())
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .expect("deploy")
        .json()
        .await
        .expect("json");
    let id = domain::DeploymentId::parse(created["id"].as_str().expect("id")).expect("id");
    let created_after = SystemClock.now_ms() - started_ms;
    // Follow it as `lightbridge publish` does: the deployment through the API every 250 ms.
    // The wall time is the server's own finish time, so the polling interval does not count.
    loop {
        let body: serde_json::Value = http
            .get(format!("{base}/api/v1/deployments/{}", id.as_str()))
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .expect("follow")
            .json()
            .await
            .expect("json");
        if body["status"] != "running" && body["status"] != "waiting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Read before the bench loads the request log and the targets for its own report.
    let peak = vm_kb("VmHWM");
    let (deployment, targets) = store.deployment(&account, &id).await.expect("deployment");
    let wall = Duration::from_millis((deployment.finished_at.expect("finished") - started_ms) as u64);
    let cpu = cpu_seconds() - cpu_before;
    let lightbridge_cpu = lightbridge_cpu_now() - lightbridge_before;
    let emulator_cpu = thread_cpu_seconds("emulator") - emulator_before;
    perf_control("disable");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let requests = em.requests().await;
    let calls = requests.len();
    let failed = targets.iter().filter(|t| t.status == domain::TargetStatus::Failed).count();
    let per_org = calls as f64 / orgs as f64;
    let total = concurrency * instances;
    // Two deploys per org (the validation, then the deploy), each taking the deploy time.
    let deploys_s = if with_loader { 2.0 * deploy_ms as f64 / 1000.0 } else { 0.0 };
    let floor = (orgs.div_ceil(total) as f64) * (per_org.round() * latency_ms as f64 / 1000.0 + deploys_s);
    println!(
        "\nLightbridge on {} × {instances}: {orgs} orgs, {latency_ms} ms per call, concurrency {concurrency}: {:.2} s wall ({:?}, {failed} failed)",
        store.kind(),
        wall.as_secs_f64(),
        deployment.status
    );
    println!(
        "  stored and started {created_after} ms after the upload began; {cpu:.2} s of CPU in the run ({:.0}% of {cores} cores)",
        cpu * 100.0 / (wall.as_secs_f64() * cores as f64)
    );
    println!(
        "  CPU: Lightbridge {lightbridge_cpu:.2} s ({:.2} ms per org), the emulator {emulator_cpu:.2} s ({:.2} ms per org), the rest (the bench's main thread, DNS lookups) {:.2} s{}",
        lightbridge_cpu * 1000.0 / orgs as f64,
        emulator_cpu * 1000.0 / orgs as f64,
        (cpu - lightbridge_cpu - emulator_cpu).max(0.0),
        if waves > 1 { format!("; in {waves} waves") } else { String::new() }
    );
    if with_loader {
        let polls = requests.iter().filter(|r| r.operation.as_deref() == Some("deploy:status")).count();
        let deployed =
            targets.iter().filter(|t| t.loader.as_deref().is_some_and(|l| l.starts_with("deployed"))).count();
        println!(
            "  calls: {calls} ({per_org:.2} per org, {:.2} of them status polls): {:.3}% of an Enterprise org's 100,000 daily API requests",
            polls as f64 / orgs as f64,
            per_org * 100.0 / 100_000.0
        );
        println!("  loader deployed in {deployed} of {orgs} orgs; deploy time {deploy_ms} ms (validation and deploy)");
        println!(
            "  floor ⌈{orgs}/{total}⌉ × ({} × {latency_ms} ms + 2 × {deploy_ms} ms) = {floor:.2} s → wall / floor = {:.2}",
            per_org.round(),
            wall.as_secs_f64() / floor
        );
    } else {
        println!("  calls: {calls} ({per_org:.2} per org: lookup, create, read back)");
        println!(
            "  floor ⌈{orgs}/{total}⌉ × {} × {latency_ms} ms = {floor:.2} s → wall / floor = {:.2}",
            per_org.round(),
            wall.as_secs_f64() / floor
        );
    }
    let peak = format!("{:.0} MB", peak as f64 / 1024.0);
    match &em {
        Em::Local(_) => {
            println!("  peak memory of the process during the fan-out (Lightbridge and the emulator together): {peak}")
        }
        Em::Child { .. } => {
            println!(
                "  peak memory of Lightbridge's process during the fan-out (the emulator in its own): {peak} ({:.0} MB resident when it began)",
                resident_before as f64 / 1024.0
            )
        }
    }

    breakdown(&requests, latency_ms, wall.as_secs_f64(), started_ms, total);

    // The sequential simple-salesforce script, on a sample of the same orgs (a different
    // resource name, so it creates as Lightbridge did).
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat/.venv/bin/python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat/fanout_sequential.py");
    if sample == 0 {
        println!("\nsimple-salesforce: not run (--sample 0)");
    } else if !python.exists() {
        println!("\nsimple-salesforce: SKIPPED (run compat/install.sh)");
    } else {
        let sessions_file = dir.join("sessions.json");
        std::fs::write(&sessions_file, serde_json::to_string(&sessions).expect("json")).expect("write");
        let zip_file = dir.join("bundle.zip");
        std::fs::write(&zip_file, bundle.bytes()).expect("write");
        let out = tokio::process::Command::new(&python)
            .arg(&script)
            .arg(&sessions_file)
            .arg(&zip_file)
            .arg("Sequential_Player")
            .env("REQUESTS_CA_BUNDLE", em.ca_file())
            .output()
            .await
            .expect("python");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("script failed: {}", String::from_utf8_lossy(&out.stderr)));
        let seconds = report["seconds"].as_f64().expect("seconds");
        let scaled = seconds * orgs as f64 / sample as f64;
        println!(
            "\nsimple-salesforce, sequential: {sample} orgs in {seconds:.2} s ({:.0} ms per org) → {orgs} orgs ≈ {scaled:.1} s",
            seconds * 1000.0 / sample as f64
        );
        println!("  Lightbridge is {:.0}× faster", scaled / wall.as_secs_f64());
    }
    em.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}
