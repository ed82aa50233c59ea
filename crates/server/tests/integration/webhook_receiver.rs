//! A webhook receiver for the notification tests: the official Standard Webhooks library from
//! PyPI verifying every delivery (`scripts/webhook-receiver/serve.py`, installed into
//! `compat/.venv` by `compat/install.sh`), deduplicating by `webhook-id`.

use std::path::Path;

use serde_json::{Value, json};

pub struct Receiver {
    pub url: String,
    base: String,
    _child: tokio::process::Child,
    http: reqwest::Client,
}

impl Receiver {
    pub async fn start(secrets: &[&str]) -> Receiver {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join("compat/.venv/bin/python");
        assert!(
            python.exists(),
            "the webhook receiver's Python is not installed: run compat/install.sh (.ci/run does)"
        );
        let mut command = tokio::process::Command::new(python);
        command.arg(root.join("scripts/webhook-receiver/serve.py")).args(secrets);
        let (child, port) = crate::process::start_listening(command, "the webhook receiver").await;
        let base = format!("http://127.0.0.1:{port}");
        Receiver { url: format!("{base}/hook"), base, _child: child, http: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self.http.post(format!("{}{path}", self.base)).json(&body).send().await.expect("receiver");
        r.json().await.unwrap_or(Value::Null)
    }

    pub async fn set_secrets(&self, secrets: &[&str]) {
        self.post("/__secrets", json!(secrets)).await;
    }

    /// The next `times` deliveries get a 500.
    pub async fn fail(&self, times: u32) {
        self.post(&format!("/__fail?times={times}"), json!({})).await;
    }

    /// Handles a message as if it had arrived (a replay, or a tampered copy); its record.
    pub async fn replay(&self, headers: &Value, body: &str) -> Value {
        self.post("/__replay", json!({"headers": headers, "body": body})).await
    }

    pub async fn log(&self) -> Vec<Value> {
        let r = self.http.get(format!("{}/__log", self.base)).send().await.expect("receiver");
        r.json().await.expect("log")
    }

    /// Waits (up to 20 s) until the log has an entry with this verdict for `id` (any id: None).
    pub async fn wait_for(&self, id: Option<&str>, verdict: &str) -> Value {
        let started = std::time::Instant::now();
        loop {
            let log = self.log().await;
            if let Some(found) =
                log.iter().find(|e| e["verdict"] == verdict && id.is_none_or(|id| e["id"].as_str() == Some(id)))
            {
                return found.clone();
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "no {verdict} delivery of {id:?}: {log:#?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
