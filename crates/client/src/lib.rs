//! A typed client of Lightbridge's JSON API (`/api/v1`), independent of the server's code: its
//! types are written from the API's contract (`docs/openapi.json`), not imported from the
//! server, and the server's tests check that every answer they read re-serializes to exactly
//! what the server sent (`crates/server/tests/integration/client.rs`). The CLI's
//! `connections` and `publish` commands and the test kit use it.
//!
//! Every method answers the typed body, or an [`Error`]: the server's error (its code,
//! message, field errors and request id), or why the server could not be reached or read.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod types;

pub use reqwest::Method;
pub use types::*;

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with its error shape.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The server could not be reached.
    #[error("cannot reach Lightbridge at {base}: {source}")]
    Unreachable { base: String, source: reqwest::Error },
    /// The server answered something this client cannot read (another product on the port,
    /// or a version this client does not know).
    #[error("Lightbridge at {base} answered {status} with a body this client cannot read: {message}")]
    Unreadable { base: String, status: u16, message: String },
}

impl Error {
    /// The server's error, if it answered one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }
}

/// The API's error shape: `{"error": {code, message, request_id, fields?}, "check"?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub fields: Vec<FieldError>,
    /// A failed connection check's report (`check_failed`), every step with its outcome.
    #[serde(skip)]
    pub check: Option<CheckReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    /// The message, its status, every field error on its own line and the request id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)?;
        for field in &self.fields {
            write!(f, "\n  {}: {}", field.field, field.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, "\n  (request id {id})")?;
        }
        Ok(())
    }
}

/// A client for one server and one API token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("token", &"[redacted]").finish()
    }
}

impl Client {
    /// `base` is the server's address (`http://127.0.0.1:8080`); `token` an API token (`lb_…`).
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Self {
        Self::with_http(reqwest::Client::new(), base, token)
    }

    /// The same, sharing a `reqwest` client (its connection pool, its trusted certificates).
    pub fn with_http(http: reqwest::Client, base: impl Into<String>, token: impl Into<String>) -> Self {
        Client { http, base: base.into().trim_end_matches('/').to_string(), token: token.into() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One page of the account's connections (F6), searched (F7) and sorted.
    pub async fn connections(&self, query: &ListOptions) -> Result<Page<Connection>, Error> {
        self.get("/connections", Some(query)).await
    }

    /// One connection.
    pub async fn connection(&self, id: &str) -> Result<Connection, Error> {
        self.get(&format!("/connections/{}", segment(id)), None::<&()>).await
    }

    /// Test Connection (F11): every check step for these settings; nothing is saved.
    pub async fn test_connection(&self, input: &ConnectionInput) -> Result<TestReport, Error> {
        self.send(reqwest::Method::POST, "/connections/test", Some(input)).await
    }

    /// Checks, then saves the connection if every step passed. A failed check is an
    /// [`ApiError`] with code `check_failed` and its report in [`ApiError::check`].
    pub async fn create_connection(&self, input: &ConnectionInput) -> Result<Connection, Error> {
        self.send(reqwest::Method::POST, "/connections", Some(input)).await
    }

    /// Renames a new connection.
    pub async fn rename_connection(&self, id: &str, name: &str) -> Result<Connection, Error> {
        #[derive(Serialize)]
        struct Rename<'a> {
            name: &'a str,
        }
        self.send(reqwest::Method::PATCH, &format!("/connections/{}", segment(id)), Some(&Rename { name })).await
    }

    /// Checks a stored connection now (one authenticated call) and records its health.
    pub async fn check_connection(&self, id: &str) -> Result<Connection, Error> {
        self.send(reqwest::Method::POST, &format!("/connections/{}/check", segment(id)), None::<&()>).await
    }

    /// Revokes the connection's tokens at Salesforce and deletes it.
    pub async fn delete_connection(&self, id: &str) -> Result<Deleted, Error> {
        self.send(reqwest::Method::DELETE, &format!("/connections/{}", segment(id)), None::<&()>).await
    }

    /// Uploads a bundle (a ZIP) and starts publishing it to every connection bound to the
    /// system × environment (202: the deployment, running).
    pub async fn start_deployment(&self, upload: DeploymentUpload) -> Result<Deployment, Error> {
        let file = reqwest::multipart::Part::bytes(upload.zip)
            .file_name("bundle.zip")
            .mime_str("application/zip")
            .expect("a valid media type");
        let mut form = reqwest::multipart::Form::new()
            .text("system_id", upload.system_id)
            .text("environment_id", upload.environment_id)
            .text("resource_name", upload.resource_name)
            .text("cache_control", upload.cache_control)
            .text("with_loader", upload.with_loader.to_string())
            .text("overwrite_drift", upload.overwrite_drift.to_string());
        if let Some(rollout) = upload.rollout {
            form = form.text("rollout", rollout.to_string());
        }
        let form = form.part("file", file);
        let request = self.http.post(self.url("/deployments")).bearer_auth(&self.token).multipart(form);
        self.read(request).await
    }

    /// Answers a deployment's drifted targets (#17): `overwrite` publishes over the org's change,
    /// `skip` leaves those orgs; `connections`: only these targets.
    pub async fn resolve_drift(
        &self,
        id: &str,
        resolve: &str,
        connections: Option<&[String]>,
    ) -> Result<Deployment, Error> {
        let body = serde_json::json!({"resolve": resolve, "connections": connections});
        self.send(reqwest::Method::POST, &format!("/deployments/{}/drift", segment(id)), Some(&body)).await
    }

    /// The fleet (#17): per system × environment, each org's state and release, as JSON.
    pub async fn fleet(&self, query: &[(&str, &str)]) -> Result<Value, Error> {
        self.get("/fleet", Some(query)).await
    }

    /// Scans every org the account published to for drift, now (#17).
    pub async fn scan_drift(&self) -> Result<Value, Error> {
        self.send(reqwest::Method::POST, "/drift/scan", None::<&()>).await
    }

    /// A deployment with every target's outcome.
    pub async fn deployment(&self, id: &str) -> Result<Deployment, Error> {
        self.get(&format!("/deployments/{}", segment(id)), None::<&()>).await
    }

    /// Pauses, resumes, approves or aborts a deployment (`pause`, `resume`, `approve`,
    /// `abort`; #17); answers with the deployment as it is then.
    pub async fn control_deployment(&self, id: &str, action: &str) -> Result<Deployment, Error> {
        self.send(reqwest::Method::POST, &format!("/deployments/{}/{}", segment(id), segment(action)), None::<&()>)
            .await
    }

    /// Any call, answered as JSON: for what has no typed method yet.
    pub async fn json(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        self.send(method, path, body).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    async fn get<T: DeserializeOwned, Q: Serialize + ?Sized>(&self, path: &str, query: Option<&Q>) -> Result<T, Error> {
        let mut request = self.http.get(self.url(path)).bearer_auth(&self.token);
        if let Some(q) = query {
            request = request.query(q);
        }
        self.read(request).await
    }

    async fn send<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Error> {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(&self.token);
        if let Some(b) = body {
            request = request.json(b);
        }
        self.read(request).await
    }

    async fn read<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, Error> {
        let unreachable = |source| Error::Unreachable { base: self.base.clone(), source };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(unreachable)?;
        let unreadable = |message: String| Error::Unreadable { base: self.base.clone(), status, message };
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()));
        }
        #[derive(Deserialize)]
        struct Failure {
            error: ApiError,
            check: Option<CheckReport>,
        }
        let failure: Failure = serde_json::from_str(&text)
            .map_err(|_| unreadable(text.chars().take(200).collect::<String>().trim().to_string()))?;
        Err(Error::Api(Box::new(ApiError { status, check: failure.check, ..failure.error })))
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(segment("conn_01ab"), "conn_01ab");
        assert_eq!(segment("../admin?x=1"), "..%2Fadmin%3Fx%3D1");
    }

    #[test]
    fn an_api_error_reads_with_every_field_and_the_request_id() {
        let e = ApiError {
            status: 422,
            code: "invalid".into(),
            message: "some fields are not valid".into(),
            request_id: Some("req_1".into()),
            fields: vec![FieldError { field: "name".into(), message: "is taken".into() }],
            check: None,
        };
        assert_eq!(e.to_string(), "some fields are not valid (422)\n  name: is taken\n  (request id req_1)");
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let client = Client::new("http://127.0.0.1:1/", "lb_secret_token");
        let debug = format!("{client:?}");
        assert!(!debug.contains("lb_secret_token") && debug.contains("127.0.0.1:1"), "{debug}");
        let input = ConnectionInput::client_credentials("n", "production", "login", "key", "shh-secret");
        assert!(!format!("{input:?}").contains("shh-secret"));
    }
}
