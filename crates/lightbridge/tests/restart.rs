//! Issue #5: a server killed with `kill -9` in the middle of a deployment resumes it when it
//! starts again — every target ends, none is lost, and no org receives the upload twice
//! (checked against the emulator's request log).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, http, lightbridge, new_key, start_emulator, start_serve};
use serde_json::{Value, json};

fn json_of(reply: (u16, String)) -> (u16, Value) {
    (reply.0, serde_json::from_str(&reply.1).unwrap_or(Value::Null))
}

#[test]
fn a_deployment_survives_kill_9_and_uploads_nothing_twice() {
    let data = std::env::temp_dir().join(format!("lightbridge-restart-{}", std::process::id()));
    let (_emulator, emulator_url, key_file) = start_emulator(&data.join("emulator"));
    let key = new_key();
    let account = lightbridge(&data, &key, &["accounts", "create", "--name", "Acme"]);
    lightbridge(
        &data,
        &key,
        &["users", "create", "--account", &account, "--email", "admin@acme.test", "--role", "admin"],
    );
    let token = lightbridge(&data, &key, &["tokens", "create", "--email", "admin@acme.test"]);
    // A short lease, so the restarted server takes the dead one's targets over quickly.
    // (A loader deploy must fit in it too: half of it at most.)
    let env = [("LIGHTBRIDGE_PUBLISH__LEASE_SECS", "2"), ("LIGHTBRIDGE_PUBLISH__LOADER_TIMEOUT_SECS", "1")];
    let (first, base) = start_serve(&data, &key, &emulator_url, &env);

    // Two orgs (production and the sandbox), one JWT connection to each, bound to Sales Cloud × Production.
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
    // Every Salesforce call now takes 400 ms: a target takes well over a second.
    let (status, _) =
        http(&emulator_url, "PUT", "/__emulator/latency", None, Some(&json!({"fixed_ms": 400, "jitter_ms": 0})));
    assert_eq!(status / 100, 2);
    assert_eq!(http(&emulator_url, "DELETE", "/__emulator/requests", None, None).0 / 100, 2);

    // Publish with the CLI, as a pipeline would, and kill the server while targets run.
    let files = data.join("dist");
    std::fs::create_dir_all(files.join("js")).expect("dir");
    std::fs::write(files.join("js/player.js"), "window.player = 'kill -9';").expect("file");
    let _publisher = Running(
        Command::new(env!("CARGO_BIN_EXE_lightbridge"))
            .args(["publish", "--system", &system, "--env", &env_id, "--name", "Player", "--json"])
            .arg(&files)
            .env("LIGHTBRIDGE_SERVER", &base)
            .env("LIGHTBRIDGE_TOKEN", &token)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("publish"),
    );
    let started = Instant::now();
    let deployment = loop {
        let (_, list) = json_of(http(&base, "GET", "/api/v1/deployments", Some(&token), None));
        if let Some(id) = list[0]["id"].as_str() {
            let (_, d) = json_of(http(&base, "GET", &format!("/api/v1/deployments/{id}"), Some(&token), None));
            if d["targets"].as_array().is_some_and(|ts| ts.iter().any(|t| t["status"] == "running")) {
                break id.to_string();
            }
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the deployment never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(first); // SIGKILL: no shutdown, no cleanup
    let (_second, base) = start_serve(&data, &key, &emulator_url, &env);
    let finished = loop {
        let (status, d) = json_of(http(&base, "GET", &format!("/api/v1/deployments/{deployment}"), Some(&token), None));
        assert_eq!(status, 200);
        if d["status"] != "running" {
            break d;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not resumed: {d}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(finished["status"], "succeeded", "{finished}");
    let targets = finished["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2, "no target lost");
    assert!(targets.iter().all(|t| t["status"] == "succeeded" || t["status"] == "unchanged"), "{finished}");
    assert!(
        targets.iter().any(|t| t["attempts"].as_u64().is_some_and(|a| a >= 2)),
        "a target the killed server held was taken over by the new one: {finished}"
    );

    // The emulator's log: each org got exactly one successful upload.
    let (_, log) = json_of(http(&emulator_url, "GET", "/__emulator/requests", None, None));
    let records = log.as_array().or_else(|| log["requests"].as_array()).expect("request log");
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
    let _ = std::fs::remove_dir_all(data);
}
