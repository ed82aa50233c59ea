//! The API's request and answer bodies, as `docs/openapi.json` describes them. Answers carry
//! every field the server sends, so a value re-serializes to the answer it was read from (the
//! server's tests check that, so a change on either side is seen).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A connection as the API shows it: the table's columns (F6) and its health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub id: String,
    pub legacy: bool,
    pub name: Option<String>,
    pub system_id: Option<String>,
    pub environment_id: Option<String>,
    /// `Production` or `Sandbox`.
    pub environment: String,
    pub account_name: Option<String>,
    pub org_id: Option<String>,
    pub salesforce_username: Option<String>,
    pub instance_url: Option<String>,
    pub login_host: String,
    pub auth_method: String,
    pub created_at: Option<i64>,
    pub created_by: Option<String>,
    pub last_modified_at: Option<i64>,
    pub last_modified_by: Option<String>,
    pub connection_status: Option<String>,
    pub activity_status: Option<String>,
    /// `Logged in`, `Logged out`, `Not available` or `Not checked`.
    pub health: String,
    pub health_detail: Option<String>,
    /// Why it is Logged out or Not available, as a stable code.
    pub health_reason: Option<String>,
    /// What to do about it.
    pub health_fix: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

/// `GET /connections`'s query: all optional.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// `created_at`, `account_name` or `last_modified_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// `asc` or `desc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u32>,
}

/// Text that must not be printed: a consumer secret or a private key. Its `Debug` is
/// `[redacted]`; it is sent as the plain string.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A connection's settings, for Test Connection and create.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionInput {
    pub name: String,
    /// `production` or `sandbox`.
    pub org_type: String,
    /// `login`, `test`, or a My Domain URL.
    pub login_host: String,
    pub auth: Auth,
}

impl ConnectionInput {
    /// JWT bearer: act as `username`, signing with `private_key` (PEM).
    pub fn jwt(
        name: &str,
        org_type: &str,
        login_host: &str,
        consumer_key: &str,
        username: &str,
        private_key: &str,
    ) -> Self {
        ConnectionInput {
            name: name.into(),
            org_type: org_type.into(),
            login_host: login_host.into(),
            auth: Auth::Jwt {
                consumer_key: consumer_key.into(),
                username: username.into(),
                private_key: Secret::new(private_key),
            },
        }
    }

    /// The client credentials flow (needs the org's My Domain as `login_host`).
    pub fn client_credentials(name: &str, org_type: &str, login_host: &str, consumer_key: &str, secret: &str) -> Self {
        ConnectionInput {
            name: name.into(),
            org_type: org_type.into(),
            login_host: login_host.into(),
            auth: Auth::ClientCredentials { consumer_key: consumer_key.into(), consumer_secret: Secret::new(secret) },
        }
    }
}

/// How a connection signs in.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Auth {
    Jwt { consumer_key: String, username: String, private_key: Secret },
    ClientCredentials { consumer_key: String, consumer_secret: Secret },
}

/// One check step's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The step's stable name, e.g. `token_obtained`, `api_enabled`.
    pub step: String,
    pub title: String,
    /// `passed`, `failed` or `skipped`.
    pub outcome: String,
    pub detail: String,
    /// What the admin should do, when the step failed.
    pub fix: Option<String>,
}

/// What a passing check learned about the org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub org_id: String,
    pub org_name: String,
    pub is_sandbox: bool,
    pub instance_url: String,
    pub user_id: String,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

/// A connection check's steps (in a failed create's error, as `check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub steps: Vec<Step>,
    pub org: Option<Org>,
}

impl CheckReport {
    /// The first failed step.
    pub fn failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.outcome == "failed")
    }
}

/// Test Connection's answer: whether every step passed, and each step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    pub passed: bool,
    pub steps: Vec<Step>,
    pub org: Option<Org>,
}

/// A delete's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub deleted: bool,
    /// Whether Salesforce confirmed the revoke.
    pub revoked: bool,
    pub message: String,
}

/// A bundle to publish, and where.
#[derive(Clone)]
pub struct DeploymentUpload {
    pub system_id: String,
    pub environment_id: String,
    /// The static resource's name in each org.
    pub resource_name: String,
    /// `private` or `public`.
    pub cache_control: String,
    /// Also deploy the system's loader into each org after its resource (issue #15).
    pub with_loader: bool,
    /// Roll out in waves (#17): the API's `RolloutInput` as JSON; `None`: every org at once.
    pub rollout: Option<Value>,
    /// Publish over resources changed in the org instead of holding those orgs as drifted (#17).
    pub overwrite_drift: bool,
    /// The bundle, a ZIP.
    pub zip: Vec<u8>,
}

impl fmt::Debug for DeploymentUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeploymentUpload")
            .field("system_id", &self.system_id)
            .field("environment_id", &self.environment_id)
            .field("resource_name", &self.resource_name)
            .field("cache_control", &self.cache_control)
            .field("with_loader", &self.with_loader)
            .field("rollout", &self.rollout)
            .field("overwrite_drift", &self.overwrite_drift)
            .field("zip_bytes", &self.zip.len())
            .finish()
    }
}

/// Targets by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: u32,
    pub pending: u32,
    pub running: u32,
    pub succeeded: u32,
    pub unchanged: u32,
    pub failed: u32,
    /// Waiting for their wave, or held by a paused or halted rollout (#17).
    #[serde(default)]
    pub held: u32,
    /// Never started: the rollout was aborted (#17).
    #[serde(default)]
    pub skipped: u32,
    /// Held: changed in the org since Lightbridge published there; waits for a person (#17).
    #[serde(default)]
    pub drifted: u32,
}

/// One org's part of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub connection_id: String,
    pub account_name: Option<String>,
    /// `pending`, `running`, `succeeded`, `unchanged` or `failed`.
    pub status: String,
    pub attempts: u32,
    /// `created`, `updated` or `unchanged`.
    pub action: Option<String>,
    pub resource_id: Option<String>,
    pub url: Option<String>,
    pub error: Option<String>,
    /// With the loader: `deployed <version>` or `unchanged <version>`.
    #[serde(default)]
    pub loader: Option<String>,
    pub updated_at: i64,
    /// A drifted target: who changed the resource in the org, and when (#17).
    #[serde(default)]
    pub drift_by: Option<String>,
    #[serde(default)]
    pub drift_at: Option<i64>,
}

/// A deployment: one bundle published to every connection bound to a system × environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub system_id: String,
    pub environment_id: String,
    pub bundle_id: String,
    pub resource_name: String,
    pub cache_control: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    pub created_at: i64,
    pub created_by: String,
    pub finished_at: Option<i64>,
    pub redeploy_of: Option<String>,
    /// Also deploys the system's loader into each org (issue #15).
    #[serde(default)]
    pub with_loader: bool,
    /// In waves (#17): the plan as the server runs it.
    #[serde(default)]
    pub rollout: Option<Value>,
    /// The last wave started (0: the first).
    #[serde(default)]
    pub wave: u32,
    /// Why it waits, is paused, halted or aborted.
    #[serde(default)]
    pub note: Option<String>,
    /// Publishes over resources changed in the org (#17).
    #[serde(default)]
    pub overwrite_drift: bool,
    pub counts: Counts,
    /// With [`crate::Client::deployment`]: one entry per connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<Target>>,
}

impl Deployment {
    /// Whether nothing more happens by itself: every target finished (or was skipped), or it
    /// waits for a person — paused, halted, a wave waiting for approval, or only drifted
    /// targets left (#17).
    pub fn finished(&self) -> bool {
        let c = &self.counts;
        match self.status.as_str() {
            "running" => c.drifted > 0 && c.pending + c.running + c.held == 0,
            // A wave waiting for its time goes on by itself; one waiting for approval does not.
            "waiting" => self.next_gate() == Some("approval"),
            _ => true,
        }
    }

    /// The gate of the rollout's next wave (`auto`, `approval` or `time`), if there is one.
    pub fn next_gate(&self) -> Option<&str> {
        self.rollout.as_ref()?.get("waves")?.get(self.wave as usize + 1)?.get("gate")?.as_str()
    }
}
