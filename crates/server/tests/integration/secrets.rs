//! No token, secret or key reaches the database file or the logs. Its own test binary: it
//! installs a global log subscriber, which parallel tests in one process would disturb.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use testkit::{KEY, SECRET, spawn};

/// Captures everything the server logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_secret_or_key_reaches_the_database_file_or_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).init();
    let app = spawn().await;
    let (_, jwt) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Jwt", "admin@acme.test"))).await;
    let cc = json!({"name": "CC", "org_type": "production", "login_host": app.em.base_url(), "auth": {"method": "client_credentials", "consumer_key": KEY, "consumer_secret": SECRET}});
    let (status, _) = app.call("admin_a", reqwest::Method::POST, "/connections", Some(cc)).await;
    assert_eq!(status, 201);
    app.call("admin_a", reqwest::Method::POST, "/connections/test", Some(app.jwt("T", "editor@acme.test"))).await;
    app.call("admin_a", reqwest::Method::DELETE, &format!("/connections/{}", jwt["id"].as_str().expect("id")), None)
        .await;
    let mut on_disk = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(bytes) = std::fs::read(format!("{}{suffix}", app.db.display())) {
            on_disk.extend(bytes);
        }
    }
    let on_disk = String::from_utf8_lossy(&on_disk).to_string();
    let logs = String::from_utf8_lossy(&captured.0.lock().expect("lock")).to_string();
    assert!(logs.contains("connection created"), "the capture works: {logs}");
    let org15 = &app.em.org_id_of_user("admin@acme.test").expect("org")[..15];
    let key_body = app.private_key.lines().nth(1).expect("a line of the key body").to_string();
    let api_token = app.tokens["admin_a"].clone();
    for (what, needle) in [
        ("an access token", format!("{org15}!AQ")),
        ("the consumer secret", SECRET.to_string()),
        ("the private key", key_body),
        ("an API token", api_token),
    ] {
        assert!(!on_disk.contains(&needle), "{what} is in the database file");
        assert!(!logs.contains(&needle), "{what} is in the logs");
    }
}
