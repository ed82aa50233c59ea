//! The `lightbridge` binary as a user runs it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::{Running, http_get, lightbridge, start_emulator};

#[test]
fn emulator_command_starts_on_free_ports_and_prints_where() {
    let state = std::env::temp_dir().join(format!("lightbridge-cli-test-{}", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["emulator", "--port", "0", "--https-port", "0", "--json", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lightbridge emulator");
    let mut running = Running(child);
    let mut line = String::new();
    BufReader::new(running.0.stdout.take().expect("stdout")).read_line(&mut line).expect("summary line");
    let summary: serde_json::Value = serde_json::from_str(&line).expect("the summary is JSON");
    let base = summary["instance_url"].as_str().expect("instance_url");
    assert!(base.starts_with("http://127.0.0.1:"), "binds loopback only: {base}");
    assert!(summary["ca_file"].as_str().is_some_and(|f| std::path::Path::new(f).exists()), "CA file written");
    let key = &summary["jwt_private_keys"][0]["file"];
    assert!(key.as_str().is_some_and(|f| std::fs::read_to_string(f).is_ok_and(|k| k.contains("PRIVATE KEY"))));
    let reply = http_get(base, "/services/data/");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"version\":\"59.0\""));
    drop(running);
    let _ = std::fs::remove_dir_all(state);
}

#[test]
fn a_bad_seed_file_is_refused_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("lightbridge-cli-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let seed = dir.join("seed.toml");
    std::fs::write(&seed, "[[orgs]]\nname = 'x'\nsandbx = true\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["emulator", "--port", "0", "--no-https", "--seed"])
        .arg(&seed)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("seed.toml") && stderr.contains("sandbx"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["emulator", "--help"],
        vec!["demo", "--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["print-config", "--help"],
        vec!["keys", "generate", "--help"],
        vec!["accounts", "create", "--help"],
        vec!["users", "create", "--help"],
        vec!["tokens", "create", "--help"],
        vec!["connections", "--help"],
        vec!["connections", "list", "--help"],
        vec!["connections", "create", "--help"],
        vec!["connections", "delete", "--help"],
        vec!["connections", "rename", "--help"],
        vec!["connections", "check", "--help"],
        vec!["accounts", "list", "--help"],
        vec!["accounts", "connectors", "--help"],
        vec!["users", "set-password", "--help"],
        vec!["users", "reset-two-factor", "--help"],
        vec!["accounts", "sso-domain", "--help"],
        vec!["accounts", "break-glass", "--help"],
        vec!["publish", "--help"],
        vec!["deployments", "--help"],
        vec!["deployments", "pause", "--help"],
        vec!["deployments", "resume", "--help"],
        vec!["deployments", "approve", "--help"],
        vec!["deployments", "abort", "--help"],
        vec!["deployments", "show", "--help"],
        vec!["deployments", "overwrite", "--help"],
        vec!["deployments", "skip-drifted", "--help"],
        vec!["fleet", "--help"],
        vec!["fleet", "show", "--help"],
        vec!["fleet", "scan", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lightbridge")).args(&args).output().expect("run");
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn an_operator_bootstraps_an_account_and_its_api_token_works_against_serve() {
    let data = std::env::temp_dir().join(format!("lightbridge-cli-serve-{}", std::process::id()));
    let key_out = Command::new(env!("CARGO_BIN_EXE_lightbridge")).args(["keys", "generate"]).output().expect("keys");
    let key = String::from_utf8_lossy(&key_out.stdout).trim().to_string();
    assert_eq!(key.len(), 44, "a base64 32-byte key");
    let account = lightbridge(&data, &key, &["accounts", "create", "--name", "Acme"]);
    assert!(account.starts_with("acct_"), "{account}");
    lightbridge(
        &data,
        &key,
        &["users", "create", "--account", &account, "--email", "owner@acme.test", "--role", "owner"],
    );
    let token = lightbridge(&data, &key, &["tokens", "create", "--email", "owner@acme.test", "--name", "ci"]);
    // A lost phone: the operator resets the person's second factor (audited below).
    lightbridge(&data, &key, &["users", "reset-two-factor", "--email", "owner@acme.test"]);
    assert!(token.starts_with("lb_"));
    let switched = lightbridge(&data, &key, &["accounts", "connectors", "--account", &account, "--enable"]);
    assert!(switched.contains("Connectors are on for Acme"), "{switched}");
    let listed = lightbridge(&data, &key, &["accounts", "list"]);
    assert!(listed.contains(&account) && listed.contains("connectors on"), "{listed}");
    let printed = lightbridge(&data, &key, &["print-config"]);
    assert!(printed.contains("[redacted") && !printed.contains(&key), "{printed}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LIGHTBRIDGE_DATA_DIR", &data)
        .env("LIGHTBRIDGE_MASTER_KEY", &key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("banner");
    let running = Running(child);
    let addr = line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).expect("address").to_string();
    let base = format!("http://{addr}");
    assert!(http_get(&base, "/readyz").starts_with("HTTP/1.1 200"));
    let mut stream = TcpStream::connect(&addr).expect("connect");
    write!(
        stream,
        "GET /api/v1/connections HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read");
    assert!(reply.starts_with("HTTP/1.1 200") && reply.contains("\"total\":0"), "{reply}");
    assert!(http_get(&base, "/api/v1/connections").starts_with("HTTP/1.1 401"));
    let mut stream = TcpStream::connect(&addr).expect("connect");
    write!(
        stream,
        "GET /api/v1/audit HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut audit = String::new();
    stream.read_to_string(&mut audit).expect("read");
    assert!(
        audit.contains("\"action\":\"user.created\"")
            && audit.contains("\"action\":\"api_token.created\"")
            && audit.contains("\"action\":\"user.two_factor_reset\""),
        "{audit}"
    );
    assert!(audit.contains("\"actor_kind\":\"cli\"") && !audit.contains(&token), "{audit}");
    drop(running);

    // A different master key is refused at start, saying what changed.
    let other = String::from_utf8_lossy(
        &Command::new(env!("CARGO_BIN_EXE_lightbridge")).args(["keys", "generate"]).output().expect("keys").stdout,
    )
    .trim()
    .to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["migrate"])
        .env("LIGHTBRIDGE_DATA_DIR", &data)
        .env("LIGHTBRIDGE_MASTER_KEY", &other)
        .output()
        .expect("migrate");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key changed"));
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn the_connections_commands_test_create_list_and_delete_through_the_api() {
    let data = std::env::temp_dir().join(format!("lightbridge-cli-connections-{}", std::process::id()));
    let (_emulator, emulator_url, key_file) = start_emulator(&data.join("emulator"));
    let key = String::from_utf8_lossy(
        &Command::new(env!("CARGO_BIN_EXE_lightbridge")).args(["keys", "generate"]).output().expect("keys").stdout,
    )
    .trim()
    .to_string();
    let account = lightbridge(&data, &key, &["accounts", "create", "--name", "Acme"]);
    lightbridge(
        &data,
        &key,
        &["users", "create", "--account", &account, "--email", "admin@acme.test", "--role", "admin"],
    );
    let token = lightbridge(&data, &key, &["tokens", "create", "--email", "admin@acme.test"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LIGHTBRIDGE_DATA_DIR", &data)
        .env("LIGHTBRIDGE_MASTER_KEY", &key)
        .env("LIGHTBRIDGE_SALESFORCE__LOGIN_URL", format!("{emulator_url}/hosts/login"))
        .env("LIGHTBRIDGE_SALESFORCE__TEST_URL", format!("{emulator_url}/hosts/test"))
        .env("LIGHTBRIDGE_SALESFORCE__ALLOWED_HOSTS", &emulator_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("banner");
    let _server = Running(child);
    let server =
        format!("http://{}", line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).expect("address"));
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lightbridge"))
            .arg("connections")
            .args(args)
            .env("LIGHTBRIDGE_SERVER", &server)
            .env("LIGHTBRIDGE_TOKEN", &token)
            .env("LIGHTBRIDGE_CONSUMER_SECRET", "demo-consumer-secret-change-me")
            .stdin(Stdio::null())
            .output()
            .expect("connections")
    };
    let jwt = ["--consumer-key", "3MVG9LightbridgeDemoConsumerKey", "--private-key-file", &key_file];
    // The editor lacks Customize Application: the test names it and exits 1.
    let out = cli(&[&["test", "--name", "E", "--username", "editor@acme.example"][..], &jwt[..]].concat());
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL") && stdout.contains("Customize Application"), "{stdout}");
    // The admin passes; create saves it; client credentials too.
    let out = cli(&[&["create", "--name", "Acme JWT", "--username", "admin@acme.example"][..], &jwt[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&[
        "create",
        "--name",
        "Acme CC",
        "--client-credentials",
        "--login-host",
        &emulator_url,
        "--consumer-key",
        "3MVG9LightbridgeDemoConsumerKey",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&["list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("ACCOUNT NAME")
            && table.contains("Acme JWT")
            && table.contains("Acme CC")
            && table.contains("2 of 2"),
        "{table}"
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&cli(&["list", "--json", "--search", "admin@acme"]).stdout).expect("json");
    assert_eq!(listed["total"], 2);
    let id = listed["items"][0]["id"].as_str().expect("id").to_string();
    let out = cli(&["rename", &id, "--name", "Acme JWT (renamed)"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Acme JWT (renamed)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["check", &id]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Logged in"), "{out:?}");
    let out = cli(&["delete", &id]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--yes"),
        "no silent delete without confirmation"
    );
    let out = cli(&["delete", &id, "--yes"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("revoked at Salesforce"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cli(&["show", &id]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("(404)"));
    // Bad input: every wrong field is named.
    let out = cli(&["create", "--name", " ", "--org-type", "staging", "--client-credentials", "--consumer-key", "k"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("name:") && stderr.contains("org_type:") && stderr.contains("login_host:"), "{stderr}");
    let _ = std::fs::remove_dir_all(data);
}

/// The demo on ports of the user's choosing (here: any free ones, never 8080): its connected
/// app accepts the OAuth callback this run serves, so the README's OAuth flow reaches
/// Salesforce's sign-in page instead of `redirect_uri_mismatch`.
#[test]
fn the_demo_registers_the_oauth_callback_of_the_port_it_serves() {
    let (running, base, token, data) = common::start_demo("cli-demo");
    let (status, started) = common::http(
        &base,
        "POST",
        "/api/v1/connections/oauth/start",
        Some(&token),
        Some(&serde_json::json!({
            "name": "Acme production", "org_type": "production", "login_host": "login",
            "consumer_key": "3MVG9LightbridgeDemoConsumerKey", "consumer_secret": "demo-consumer-secret-change-me"
        })),
    );
    assert_eq!(status, 200, "{started}");
    let started: serde_json::Value = serde_json::from_str(&started).expect("json");
    let authorize = url::Url::parse(started["authorize_url"].as_str().expect("authorize_url")).expect("url");
    let redirect = authorize.query_pairs().find(|(k, _)| k == "redirect_uri").expect("redirect_uri").1.to_string();
    assert_eq!(redirect, format!("{base}/oauth/callback"));
    let origin = authorize.origin().ascii_serialization();
    let page = http_get(&origin, &authorize[url::Position::BeforePath..]);
    assert!(
        page.starts_with("HTTP/1.1 200"),
        "Salesforce's sign-in page, not an error: {}",
        &page[..page.len().min(400)]
    );
    assert!(!page.contains("redirect_uri_mismatch"));
    drop(running);
    // The demo's folder and database are its owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("lightbridge.db")), 0o600);
    }
    let _ = std::fs::remove_dir_all(data);
}
