//! Helpers for running the `lightbridge` binary as a user would: processes, raw HTTP, the
//! emulator on free ports.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A child process killed (SIGKILL) when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection; returns the status and the body.
pub fn http(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> (u16, String) {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).expect("connect");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .expect("send");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read");
    let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    // Bodies arrive chunked: keep what is between the chunk sizes.
    let body = if reply.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(&body) } else { body };
    (status, body)
}

fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn http_get(base: &str, path: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("send");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read");
    reply
}

/// Runs `lightbridge ARGS` against a data folder and key; returns stdout (asserting success).
pub fn lightbridge(data_dir: &std::path::Path, key: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(args)
        .env("LIGHTBRIDGE_DATA_DIR", data_dir)
        .env("LIGHTBRIDGE_MASTER_KEY", key)
        .env_remove("LIGHTBRIDGE_CONFIG")
        .output()
        .expect("run lightbridge");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn new_key() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lightbridge")).args(["keys", "generate"]).output().expect("keys");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts `lightbridge emulator` (demo seed) and returns it with its instance URL and the
/// demo app's JWT key file.
pub fn start_emulator(state: &std::path::Path) -> (Running, String, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["emulator", "--port", "0", "--no-https", "--json", "--state-dir"])
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("emulator");
    let mut running = Running(child);
    let mut line = String::new();
    BufReader::new(running.0.stdout.take().expect("stdout")).read_line(&mut line).expect("summary");
    let summary: serde_json::Value = serde_json::from_str(&line).expect("json");
    let key_file = summary["jwt_private_keys"][0]["file"].as_str().expect("key file").to_string();
    (running, summary["instance_url"].as_str().expect("url").to_string(), key_file)
}

/// Starts `lightbridge serve` on a free port against the emulator; returns it and its URL.
pub fn start_serve(data: &std::path::Path, key: &str, emulator_url: &str, env: &[(&str, &str)]) -> (Running, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lightbridge"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LIGHTBRIDGE_DATA_DIR", data)
        .env("LIGHTBRIDGE_MASTER_KEY", key)
        .env("LIGHTBRIDGE_SALESFORCE__LOGIN_URL", format!("{emulator_url}/hosts/login"))
        .env("LIGHTBRIDGE_SALESFORCE__TEST_URL", format!("{emulator_url}/hosts/test"))
        .env("LIGHTBRIDGE_SALESFORCE__ALLOWED_HOSTS", emulator_url)
        .env_remove("LIGHTBRIDGE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("banner");
    let base =
        format!("http://{}", line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).expect("address"));
    (Running(child), base)
}

/// `lightbridge demo` as a newcomer starts it, on free ports (never 8080), with its own data
/// folder `lightbridge-<tag>-<pid>`: the demo, the Admin Center's address and the API token it
/// printed, and the data folder.
pub fn start_demo(tag: &str) -> (Running, String, String, std::path::PathBuf) {
    let data = std::env::temp_dir().join(format!("lightbridge-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["demo", "--listen", "127.0.0.1:0", "--emulator-port", "0", "--emulator-https-port", "0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let running = Running(child);
    let (mut base, mut token) = (None, None);
    for line in stdout.lines() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("Lightbridge is serving on ") {
            base = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(t) = line.trim().strip_prefix("export LIGHTBRIDGE_TOKEN=") {
            token = Some(t.to_string());
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let (base, token) = (base.expect("the serving line"), token.expect("the token line"));
    assert!(!base.ends_with(":8080"), "{base}");
    (running, base, token, data)
}
