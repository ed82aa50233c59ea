//! Issue #5: a server killed with `kill -9` in the middle of a deployment resumes it when it
//! starts again — every target ends, none is lost, and no org receives the upload twice
//! (checked against the emulator's request log). Issue #15: the same for a deployment with
//! the loader killed after an org's loader deploy was sent — the new server reads the org's
//! loader version first and does not deploy it again. Issue #17: a paused rollout stays paused
//! across `kill -9`, and the CLI resumes and approves it to the end; and the CLI's fleet view,
//! drift scan and overwrite of a drifted org. Issue #18: an event recorded before `kill -9` is
//! delivered once by the next server.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, http, lightbridge, new_key, start_emulator, start_serve};
use serde_json::{Value, json};

fn json_of(reply: (u16, String)) -> (u16, Value) {
    (reply.0, serde_json::from_str(&reply.1).unwrap_or(Value::Null))
}

/// An account with an API token, a server, and two orgs (production and the sandbox) with one
/// JWT connection each, bound to Sales Cloud × Production.
struct Setup {
    data: std::path::PathBuf,
    _emulator: Running,
    emulator_url: String,
    key: String,
    token: String,
    server: Option<Running>,
    base: String,
    system: String,
    env_id: String,
}

fn setup(name: &str, env: &[(&str, &str)]) -> Setup {
    let data = std::env::temp_dir().join(format!("lightbridge-{name}-{}", std::process::id()));
    let (_emulator, emulator_url, key_file) = start_emulator(&data.join("emulator"));
    let key = new_key();
    let account = lightbridge(&data, &key, &["accounts", "create", "--name", "Acme"]);
    lightbridge(
        &data,
        &key,
        &["users", "create", "--account", &account, "--email", "admin@acme.test", "--role", "admin"],
    );
    let token = lightbridge(&data, &key, &["tokens", "create", "--email", "admin@acme.test"]);
    let (server, base) = start_serve(&data, &key, &emulator_url, env);
    let connect = |name: &str, user: &str, org_type: &str, host: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
            .args([
                "connections",
                "create",
                "--json",
                "--name",
                name,
                "--username",
                user,
                "--org-type",
                org_type,
                "--login-host",
                host,
            ])
            .args(["--consumer-key", "3MVG9LightbridgeDemoConsumerKey", "--private-key-file", &key_file])
            .env("LIGHTBRIDGE_SERVER", &base)
            .env("LIGHTBRIDGE_TOKEN", &token)
            .output()
            .expect("create");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let created: Value = serde_json::from_slice(&out.stdout).expect("json");
        created["id"].as_str().expect("id").to_string()
    };
    let prod = connect("Prod", "admin@acme.example", "production", "login");
    let uat = connect("UAT", "admin@acme.example.uat", "sandbox", "test");
    let (status, system) =
        json_of(http(&base, "POST", "/api/v1/systems", Some(&token), Some(&json!({"name": "Sales Cloud"}))));
    assert_eq!(status, 201, "{system}");
    let (_, envs) = json_of(http(&base, "GET", "/api/v1/environments", Some(&token), None));
    let (system, env_id) =
        (system["id"].as_str().expect("system").to_string(), envs[0]["id"].as_str().expect("env").to_string());
    for c in [&prod, &uat] {
        let path = format!("/api/v1/systems/{system}/environments/{env_id}/connections/{c}");
        assert_eq!(http(&base, "PUT", &path, Some(&token), None).0, 204);
    }
    Setup { data, _emulator, emulator_url, key, token, server: Some(server), base, system, env_id }
}

/// Publishes `dist/js/player.js` with the CLI, as a pipeline would (with the loader when
/// asked); the running deployment's id once one of its targets runs.
fn publish(s: &Setup, with_loader: bool) -> (Running, String) {
    let files = s.data.join("dist");
    std::fs::create_dir_all(files.join("js")).expect("dir");
    std::fs::write(files.join("js/player.js"), "window.player = 'kill -9';").expect("file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_lightbridge"));
    command.args(["publish", "--system", &s.system, "--env", &s.env_id, "--name", "Player", "--json"]);
    if with_loader {
        command.arg("--with-loader");
    }
    let publisher = Running(
        command
            .arg(&files)
            .env("LIGHTBRIDGE_SERVER", &s.base)
            .env("LIGHTBRIDGE_TOKEN", &s.token)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("publish"),
    );
    let started = Instant::now();
    loop {
        let (_, list) = json_of(http(&s.base, "GET", "/api/v1/deployments", Some(&s.token), None));
        if let Some(id) = list[0]["id"].as_str() {
            let (_, d) = json_of(http(&s.base, "GET", &format!("/api/v1/deployments/{id}"), Some(&s.token), None));
            if d["targets"].as_array().is_some_and(|ts| ts.iter().any(|t| t["status"] == "running")) {
                return (publisher, id.to_string());
            }
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the deployment never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a new server and waits for it to finish the deployment.
fn resume(s: &Setup, env: &[(&str, &str)], deployment: &str) -> (Running, Value) {
    let (second, base) = start_serve(&s.data, &s.key, &s.emulator_url, env);
    let started = Instant::now();
    loop {
        let (status, d) =
            json_of(http(&base, "GET", &format!("/api/v1/deployments/{deployment}"), Some(&s.token), None));
        assert_eq!(status, 200);
        if d["status"] != "running" {
            return (second, d);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not resumed: {d}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn request_log(s: &Setup) -> Vec<Value> {
    let (_, log) = json_of(http(&s.emulator_url, "GET", "/__emulator/requests", None, None));
    log.as_array().or_else(|| log["requests"].as_array()).expect("request log").clone()
}

#[test]
fn a_deployment_survives_kill_9_and_uploads_nothing_twice() {
    // A short lease, so the restarted server takes the dead one's targets over quickly.
    // (A loader deploy must fit in it too: half of it at most.)
    let env = [("LIGHTBRIDGE_PUBLISH__LEASE_SECS", "2"), ("LIGHTBRIDGE_PUBLISH__LOADER_TIMEOUT_SECS", "1")];
    let mut s = setup("restart", &env);
    let emulator_url = &s.emulator_url.clone();
    // Every Salesforce call now takes 400 ms: a target takes well over a second.
    let (status, _) =
        http(emulator_url, "PUT", "/__emulator/latency", None, Some(&json!({"fixed_ms": 400, "jitter_ms": 0})));
    assert_eq!(status / 100, 2);
    assert_eq!(http(emulator_url, "DELETE", "/__emulator/requests", None, None).0 / 100, 2);

    // Publish with the CLI, as a pipeline would, and kill the server while targets run.
    let (_publisher, deployment) = publish(&s, false);
    drop(s.server.take()); // SIGKILL: no shutdown, no cleanup
    let (_second, finished) = resume(&s, &env, &deployment);
    assert_eq!(finished["status"], "succeeded", "{finished}");
    let targets = finished["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2, "no target lost");
    assert!(targets.iter().all(|t| t["status"] == "succeeded" || t["status"] == "unchanged"), "{finished}");
    assert!(
        targets.iter().any(|t| t["attempts"].as_u64().is_some_and(|a| a >= 2)),
        "a target the killed server held was taken over by the new one: {finished}"
    );

    // The emulator's log: each org got exactly one successful upload.
    let records = request_log(&s);
    let uploads: Vec<&Value> = records
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.contains("sobjects/StaticResource")))
        .filter(|r| {
            matches!(r["method"].as_str(), Some("POST" | "PATCH")) && r["status"].as_u64().is_some_and(|s| s < 300)
        })
        .collect();
    let mut orgs: Vec<&str> = uploads.iter().filter_map(|r| r["org_id"].as_str()).collect();
    orgs.sort();
    let before = orgs.len();
    orgs.dedup();
    assert_eq!((before, orgs.len()), (2, 2), "one upload per org, none twice: {uploads:?}");
    let _ = std::fs::remove_dir_all(&s.data);
}

#[test]
fn a_loader_deploy_sent_before_kill_9_is_read_back_not_repeated() {
    // Deploys take 600 ms on the emulator's clock, polled every 100 ms; the lease is long
    // enough for a validation and a deploy (the loader's timeout is at most half of it).
    let env = [
        ("LIGHTBRIDGE_PUBLISH__LEASE_SECS", "4"),
        ("LIGHTBRIDGE_PUBLISH__LOADER_TIMEOUT_SECS", "2"),
        ("LIGHTBRIDGE_PUBLISH__LOADER_POLL_MS", "100"),
    ];
    let mut s = setup("restart-loader", &env);
    let loader = json!({"scripts": ["js/player.js"]});
    let path = format!("/api/v1/systems/{}/loader", s.system);
    assert_eq!(http(&s.base, "PUT", &path, Some(&s.token), Some(&loader)).0, 200);
    let deploy_time = json!({"ms": 600});
    assert_eq!(http(&s.emulator_url, "PUT", "/__emulator/deploy-time", None, Some(&deploy_time)).0 / 100, 2);
    assert_eq!(http(&s.emulator_url, "DELETE", "/__emulator/requests", None, None).0 / 100, 2);

    // Kill the server as soon as one org's second deploy (after its validation) was accepted.
    let (_publisher, deployment) = publish(&s, true);
    let creates = |records: &[Value]| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["operation"] == "deploy:create" && r["status"] == 201)
            .filter_map(|r| r["org_id"].as_str().map(str::to_string))
            .collect()
    };
    let started = Instant::now();
    let (org, seen) = loop {
        let log = request_log(&s);
        let sent = creates(&log);
        if let Some(org) = sent.iter().find(|o| sent.iter().filter(|x| x == o).count() >= 2) {
            break (org.clone(), log.iter().filter_map(|r| r["seq"].as_u64()).max().unwrap_or(0));
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no loader deploy was sent: {sent:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(s.server.take()); // SIGKILL, the deploy sent and not yet known to have finished
    let (_second, finished) = resume(&s, &env, &deployment);
    assert_eq!(finished["status"], "succeeded", "{finished}");
    let records = request_log(&s);
    let sent = creates(&records);
    assert_eq!(
        sent.iter().filter(|o| **o == org).count(),
        2,
        "the org whose deploy was sent got no second one (a validation and a deploy in all): {sent:?}"
    );
    // The new server read that org's loader version (the deploy had finished there).
    assert!(
        records.iter().any(|r| r["seq"].as_u64().is_some_and(|q| q > seen)
            && r["org_id"].as_str() == Some(org.as_str())
            && r["operation"] == "tooling_query:AuraDefinitionBundle"),
        "the resumed target read the org's version first"
    );
    let targets = finished["targets"].as_array().expect("targets");
    assert!(
        targets
            .iter()
            .all(|t| t["loader"].as_str().is_some_and(|l| l.starts_with("deployed") || l.starts_with("unchanged"))),
        "both orgs hold the loader: {finished}"
    );
    let _ = std::fs::remove_dir_all(&s.data);
}

/// Runs `lightbridge <args>` against the setup's server as a pipeline would; its JSON output.
fn cli_json(s: &Setup, base: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(args)
        .env("LIGHTBRIDGE_SERVER", base)
        .env("LIGHTBRIDGE_TOKEN", &s.token)
        .output()
        .expect("cli");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn wait_for(base: &str, s: &Setup, id: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, d) = json_of(http(base, "GET", &format!("/api/v1/deployments/{id}"), Some(&s.token), None));
        if d["status"] == status {
            return d;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never {status}: {d}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_paused_rollout_stays_paused_across_kill_9_and_goes_on_when_resumed() {
    // Issue #17: a canary, then the rest after approval — paused while it waits, the server
    // killed with `kill -9`; the next server keeps it paused (nothing starts by itself), and
    // the CLI resumes and approves it to the end, one upload per org.
    let env = [("LIGHTBRIDGE_PUBLISH__LEASE_SECS", "2"), ("LIGHTBRIDGE_PUBLISH__LOADER_TIMEOUT_SECS", "1")];
    let mut s = setup("restart-rollout", &env);
    assert_eq!(http(&s.emulator_url, "DELETE", "/__emulator/requests", None, None).0 / 100, 2);
    let files = s.data.join("dist");
    std::fs::create_dir_all(&files).expect("dir");
    std::fs::write(files.join("player.js"), "window.player = 'waves';").expect("file");
    let dist = files.to_string_lossy().to_string();
    let base = s.base.clone();
    // The CLI follows the rollout until it waits for the approval, and says so.
    let waiting = cli_json(
        &s,
        &base,
        &[
            "publish", "--system", &s.system, "--env", &s.env_id, "--name", "Player", "--canary", "1", "--then",
            "approval", "--json", &dist,
        ],
    );
    assert_eq!(waiting["status"], "waiting", "{waiting}");
    assert_eq!((waiting["counts"]["succeeded"].as_u64(), waiting["counts"]["held"].as_u64()), (Some(1), Some(1)));
    let id = waiting["id"].as_str().expect("id").to_string();
    let paused = cli_json(&s, &base, &["deployments", "pause", &id, "--json"]);
    assert_eq!(paused["status"], "paused", "{paused}");

    drop(s.server.take()); // SIGKILL
    let (_second, base) = start_serve(&s.data, &s.key, &s.emulator_url, &env);
    std::thread::sleep(Duration::from_millis(800)); // several rounds of the new rollout keeper
    let (_, still) = json_of(http(&base, "GET", &format!("/api/v1/deployments/{id}"), Some(&s.token), None));
    assert_eq!((still["status"].as_str(), still["counts"]["held"].as_u64()), (Some("paused"), Some(1)), "{still}");

    let resumed = cli_json(&s, &base, &["deployments", "resume", &id, "--json"]);
    assert_eq!(resumed["status"], "running", "{resumed}");
    wait_for(&base, &s, &id, "waiting");
    let approved = cli_json(&s, &base, &["deployments", "approve", &id, "--json"]);
    assert_eq!(approved["wave"], 1, "{approved}");
    let done = wait_for(&base, &s, &id, "succeeded");
    assert_eq!(done["counts"]["succeeded"], 2, "{done}");
    let records = request_log(&s);
    let mut orgs: Vec<&str> = records
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.contains("sobjects/StaticResource")))
        .filter(|r| {
            matches!(r["method"].as_str(), Some("POST" | "PATCH")) && r["status"].as_u64().is_some_and(|s| s < 300)
        })
        .filter_map(|r| r["org_id"].as_str())
        .collect();
    orgs.sort();
    let uploads = orgs.len();
    orgs.dedup();
    assert_eq!((uploads, orgs.len()), (2, 2), "one upload per org");
    let _ = std::fs::remove_dir_all(&s.data);
}

#[test]
fn the_cli_shows_the_fleet_scans_for_drift_and_overwrites_it() {
    // Issue #17 from a pipeline's side: publish, someone edits the resource in one org, the
    // scan finds it, the next publish holds that org, the CLI overwrites it, the fleet is current.
    let s = setup("cli-drift", &[]);
    let files = s.data.join("dist");
    std::fs::create_dir_all(&files).expect("dir");
    std::fs::write(files.join("player.js"), "window.player = 1;").expect("file");
    let dist = files.to_string_lossy().to_string();
    let publish = |s: &Setup| {
        cli_json(
            s,
            &s.base,
            &["publish", "--system", &s.system, "--env", &s.env_id, "--name", "Player", "--json", &dist],
        )
    };
    assert_eq!(publish(&s)["status"], "succeeded");
    let (_, state) = json_of(http(&s.emulator_url, "GET", "/__emulator/state", None, None));
    let org = state["orgs"]
        .as_array()
        .expect("orgs")
        .iter()
        .find(|o| o["users"].as_array().is_some_and(|u| u.iter().any(|u| u["username"] == "admin@acme.example")))
        .and_then(|o| o["id"].as_str())
        .expect("the production org")
        .to_string();
    let edit = json!({"by": "admin@acme.example", "body": "window.player = 'hotfix';"});
    let path = format!("/__emulator/orgs/{org}/resources/Player/edit");
    assert_eq!(http(&s.emulator_url, "POST", &path, None, Some(&edit)).0, 204);
    let scan = cli_json(&s, &s.base, &["fleet", "scan", "--json"]);
    assert_eq!((scan["drifted"].as_u64(), scan["calls"].as_u64()), (Some(1), Some(2)), "{scan}");
    let out = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["fleet", "show", "--csv"])
        .env("LIGHTBRIDGE_SERVER", &s.base)
        .env("LIGHTBRIDGE_TOKEN", &s.token)
        .output()
        .expect("fleet");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let states: Vec<String> = reader.records().map(|r| r.expect("row")[5].to_string()).collect();
    assert_eq!(states.iter().filter(|s| *s == "drifted").count(), 1, "{states:?}");
    assert_eq!(states.len(), 2);
    std::fs::write(files.join("player.js"), "window.player = 2;").expect("file");
    let held = publish(&s);
    assert_eq!((held["status"].as_str(), held["counts"]["drifted"].as_u64()), (Some("running"), Some(1)), "{held}");
    let id = held["id"].as_str().expect("id").to_string();
    let overwritten = cli_json(&s, &s.base, &["deployments", "overwrite", &id, "--json"]);
    assert_eq!(overwritten["counts"]["drifted"], 0, "{overwritten}");
    let done = wait_for(&s.base, &s, &id, "succeeded");
    assert_eq!(done["counts"]["succeeded"], 2, "{done}");
    let fleet = cli_json(&s, &s.base, &["fleet", "show", "--json"]);
    let orgs = fleet[0]["orgs"].as_array().expect("orgs");
    assert!(orgs.iter().all(|o| o["state"] == "current"), "{fleet}");
    let _ = std::fs::remove_dir_all(&s.data);
}

/// The webhook receiver of the server's tests (the official Standard Webhooks library
/// verifying, `webhook-id` deduplication); its base URL.
fn start_receiver() -> (Running, String) {
    use std::io::BufRead;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("compat/.venv/bin/python");
    assert!(python.exists(), "the webhook receiver's Python is not installed: run compat/install.sh (.ci/run does)");
    let mut child = Command::new(python)
        .arg(root.join("scripts/webhook-receiver/serve.py"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("receiver");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
    let port = line.trim().strip_prefix("listening=").expect("listening=").to_string();
    (Running(child), format!("http://127.0.0.1:{port}"))
}

#[test]
fn an_event_recorded_before_kill_9_is_delivered_once_after_the_restart() {
    // Issue #18: the deployment's end and its event are one transaction; the receiver is down
    // when the server is killed with `kill -9`, so the delivery is still in the outbox. The
    // next server delivers it once, under the same webhook-id.
    let env = [
        ("LIGHTBRIDGE_NOTIFICATIONS__ALLOW_PRIVATE_ADDRESSES", "true"),
        ("LIGHTBRIDGE_NOTIFICATIONS__RETRY_BASE_MS", "100"),
        ("LIGHTBRIDGE_NOTIFICATIONS__RETRY_MAX_SECS", "1"),
        ("LIGHTBRIDGE_NOTIFICATIONS__TIMEOUT_SECS", "1"),
        ("LIGHTBRIDGE_NOTIFICATIONS__LEASE_SECS", "2"),
    ];
    let mut s = setup("restart-webhook", &env);
    let (_receiver, hooks) = start_receiver();
    let body = json!({"url": format!("{hooks}/hook"), "events": ["deployment.succeeded"]});
    let (status, created) = json_of(http(&s.base, "POST", "/api/v1/webhooks", Some(&s.token), Some(&body)));
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret");
    assert_eq!(http(&hooks, "POST", "/__secrets", None, Some(&json!([secret]))).0, 200);
    assert_eq!(http(&hooks, "POST", "/__fail?times=100000", None, Some(&json!({}))).0, 200);

    let files = s.data.join("dist");
    std::fs::create_dir_all(&files).expect("dir");
    std::fs::write(files.join("player.js"), "window.player = 'outbox';").expect("file");
    let base = s.base.clone();
    let done = cli_json(
        &s,
        &base,
        &["publish", "--system", &s.system, "--env", &s.env_id, "--name", "Player", "--json", &files.to_string_lossy()],
    );
    assert_eq!(done["status"], "succeeded", "{done}");
    let log = |hooks: &str| json_of(http(hooks, "GET", "/__log", None, None)).1;
    let started = Instant::now();
    while log(&hooks).as_array().is_none_or(|l| l.len() < 2) {
        assert!(started.elapsed() < Duration::from_secs(20), "never attempted: {}", log(&hooks));
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(s.server.take()); // SIGKILL, the delivery still owed
    assert_eq!(http(&hooks, "POST", "/__fail?times=0", None, Some(&json!({}))).0, 200);

    let (_second, base) = start_serve(&s.data, &s.key, &s.emulator_url, &env);
    let started = Instant::now();
    loop {
        let entries = log(&hooks);
        if entries.as_array().expect("log").iter().any(|e| e["verdict"] == "accepted") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never delivered: {entries}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500)); // time for a second delivery, were there one
    let entries = log(&hooks);
    let entries = entries.as_array().expect("log");
    let accepted: Vec<&Value> = entries.iter().filter(|e| e["verdict"] == "accepted").collect();
    assert_eq!(accepted.len(), 1, "delivered once: {entries:#?}");
    assert_eq!(accepted[0]["type"], "deployment.succeeded");
    assert!(entries.iter().all(|e| e["id"] == accepted[0]["id"]), "one webhook-id throughout: {entries:#?}");
    assert!(!entries.iter().any(|e| e["verdict"] == "duplicate"), "{entries:#?}");
    let hook = created["webhook"]["id"].as_str().expect("id");
    let (_, deliveries) =
        json_of(http(&base, "GET", &format!("/api/v1/webhooks/{hook}/deliveries"), Some(&s.token), None));
    assert_eq!(deliveries.as_array().map(Vec::len), Some(1), "{deliveries}");
    assert_eq!(deliveries[0]["status"], "delivered", "{deliveries}");
    assert!(deliveries[0]["attempts"].as_u64().is_some_and(|n| n >= 2), "{deliveries}");

    // The same through the command line: the endpoint, its log, a test event it accepts.
    let listed = cli_json(&s, &base, &["webhooks", "list", "--json"]);
    assert_eq!(listed[0]["id"], hook, "{listed}");
    let log = cli_json(&s, &base, &["webhooks", "deliveries", hook, "--status", "delivered", "--json"]);
    assert_eq!(log[0]["event_type"], "deployment.succeeded", "{log}");
    let out = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["webhooks", "test", hook])
        .env("LIGHTBRIDGE_SERVER", &base)
        .env("LIGHTBRIDGE_TOKEN", &s.token)
        .output()
        .expect("cli");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("delivered — 200"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["webhooks", "test", "not-an-id"])
        .env("LIGHTBRIDGE_SERVER", &base)
        .env("LIGHTBRIDGE_TOKEN", &s.token)
        .output()
        .expect("cli");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is not a webhook id"));
    let _ = std::fs::remove_dir_all(&s.data);
}
