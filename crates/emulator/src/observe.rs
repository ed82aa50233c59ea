//! Faults and observation for tests and benchmarks: per-request latency, injected errors and
//! dropped connections, and a request log tests can read.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::Shared;

/// How many requests the log keeps (oldest are dropped first).
pub const LOG_CAPACITY: usize = 200_000;

/// Delay added before each Salesforce request is handled: `fixed_ms` plus a uniform random
/// amount in `0..=jitter_ms`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Latency {
    #[serde(default)]
    pub fixed_ms: u64,
    #[serde(default)]
    pub jitter_ms: u64,
}

/// A fault: which requests it hits and what they get instead of an answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRule {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Substring the request path must contain (any when absent).
    #[serde(default)]
    pub path_contains: Option<String>,
    /// Only requests whose bearer token belongs to this org (18-character id).
    #[serde(default)]
    pub org_id: Option<String>,
    /// Fail only the next N matching requests; unlimited when absent.
    #[serde(default)]
    pub times: Option<u64>,
    /// Fail this percentage (0–100) of matching requests; all when absent.
    #[serde(default)]
    pub percent: Option<f64>,
    pub action: FaultAction,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status and Salesforce error code (REST: `[{message, errorCode}]`;
    /// OAuth: `{error, error_description}`).
    Error {
        status: u16,
        error_code: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// Close the connection without answering.
    Drop,
    /// Do the work, then answer only after this many milliseconds: a client that gives up
    /// meanwhile loses an answer Salesforce acted on (a rotated refresh token, a created record).
    Delay { ms: u64 },
}

impl FaultRule {
    /// Fails the next `times` requests whose path contains `path` with a status and code.
    pub fn error(path: &str, times: u64, status: u16, error_code: &str) -> Self {
        FaultRule {
            method: None,
            path_contains: Some(path.to_string()),
            org_id: None,
            times: Some(times),
            percent: None,
            action: FaultAction::Error { status, error_code: error_code.to_string(), message: None },
        }
    }
}

/// One handled request. Tokens, codes and assertions are never recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    pub at_ms: i64,
    pub method: String,
    pub path: String,
    /// `q` for queries; other query parameters are left out.
    pub soql: Option<String>,
    pub status: u16,
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    /// What the request did, e.g. `token:refresh_token`, `create:StaticResource`.
    pub operation: Option<String>,
    /// Set when a fault answered instead of the emulator.
    pub fault: Option<String>,
    pub duration_us: u64,
}

/// Marks a response whose connection must be closed instead of answered.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// Who a request acted for, attached by handlers for the log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub org_id: String,
    pub user_id: Option<String>,
}

/// What a request did, attached by handlers for the log.
#[derive(Debug, Clone)]
pub struct Operation(pub String);

#[derive(Debug)]
struct ActiveFault {
    id: u64,
    rule: FaultRule,
    remaining: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Observer {
    latency: Mutex<Latency>,
    faults: Mutex<Vec<ActiveFault>>,
    next_fault: AtomicU64,
    log: Mutex<VecDeque<RequestRecord>>,
    next_seq: AtomicU64,
    /// Whether blob fields may be sent as multipart bodies (on unless a test turns it off).
    refuse_multipart: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Observer {
    pub fn set_latency(&self, latency: Latency) {
        *lock(&self.latency) = latency;
    }
    pub fn set_multipart_blobs(&self, accepted: bool) {
        self.refuse_multipart.store(!accepted, Ordering::Relaxed);
    }
    pub fn multipart_blobs(&self) -> bool {
        !self.refuse_multipart.load(Ordering::Relaxed)
    }
    pub fn latency(&self) -> Latency {
        *lock(&self.latency)
    }
    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        let id = self.next_fault.fetch_add(1, Ordering::Relaxed) + 1;
        let remaining = rule.times;
        lock(&self.faults).push(ActiveFault { id, rule, remaining });
        id
    }
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }
    pub fn remove_fault(&self, id: u64) -> bool {
        let mut faults = lock(&self.faults);
        let before = faults.len();
        faults.retain(|f| f.id != id);
        faults.len() != before
    }
    pub fn faults(&self) -> Vec<(u64, FaultRule, Option<u64>)> {
        lock(&self.faults).iter().map(|f| (f.id, f.rule.clone(), f.remaining)).collect()
    }

    /// The fault that answers this request, if any; counts it against `times`.
    fn take_fault(&self, method: &Method, path: &str, org_id: Option<&str>) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        let mut hit = None;
        for (index, fault) in faults.iter_mut().enumerate() {
            let rule = &fault.rule;
            let matches = rule.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
                && rule.path_contains.as_deref().is_none_or(|p| path.contains(p))
                && rule.org_id.as_deref().is_none_or(|o| Some(o) == org_id);
            if !matches {
                continue;
            }
            if let Some(percent) = rule.percent
                && rand::rng().random_range(0.0..100.0) >= percent
            {
                continue;
            }
            if let Some(left) = fault.remaining.as_mut() {
                *left -= 1;
            }
            hit = Some((index, rule.action.clone(), fault.remaining == Some(0)));
            break;
        }
        let (index, action, used_up) = hit?;
        if used_up {
            faults.remove(index);
        }
        Some(action)
    }

    fn record(&self, mut record: RequestRecord) {
        record.seq = self.next_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut log = lock(&self.log);
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(record);
    }

    /// Requests with a sequence number above `after`, oldest first.
    pub fn requests(&self, after: u64) -> Vec<RequestRecord> {
        lock(&self.log).iter().filter(|r| r.seq > after).cloned().collect()
    }
    pub fn clear_requests(&self) {
        lock(&self.log).clear();
    }
}

/// The org an access token belongs to, read from its `<org id>!` prefix without a lookup.
pub fn org_of_bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("OAuth "))?;
    let (org, _) = token.split_once('!')?;
    crate::ids::normalize(org)
}

/// Applies latency and faults, then logs the request.
pub(crate) async fn middleware(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let at_ms = shared.clock.now_ms();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let soql = request
        .uri()
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "q").map(|(_, v)| v.into_owned()));
    let token_org = org_of_bearer(request.headers());

    let latency = shared.observe.latency();
    if latency.fixed_ms > 0 || latency.jitter_ms > 0 {
        let jitter = if latency.jitter_ms > 0 { rand::rng().random_range(0..=latency.jitter_ms) } else { 0 };
        tokio::time::sleep(Duration::from_millis(latency.fixed_ms + jitter)).await;
    }

    let (response, fault) = match shared.observe.take_fault(&method, &path, token_org.as_deref()) {
        Some(FaultAction::Delay { ms }) => {
            let response = next.run(request).await;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            (response, Some("delay".to_string()))
        }
        Some(action) => {
            let label = match &action {
                FaultAction::Error { error_code, .. } => error_code.clone(),
                FaultAction::Drop => "drop".to_string(),
                FaultAction::Delay { .. } => "delay".to_string(),
            };
            (fault_response(&path, action), Some(label))
        }
        None => (next.run(request).await, None),
    };
    let actor = response.extensions().get::<Actor>().cloned();
    shared.observe.record(RequestRecord {
        seq: 0,
        at_ms,
        method: method.to_string(),
        path,
        soql,
        status: response.status().as_u16(),
        org_id: actor.as_ref().map(|a| a.org_id.clone()).or(token_org),
        user_id: actor.and_then(|a| a.user_id),
        operation: response.extensions().get::<Operation>().map(|o| o.0.clone()),
        fault,
        duration_us: started.elapsed().as_micros() as u64,
    });
    response
}

fn fault_response(path: &str, action: FaultAction) -> Response {
    match action {
        FaultAction::Drop | FaultAction::Delay { .. } => {
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(DropConnection);
            response
        }
        FaultAction::Error { status, error_code, message } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = message.unwrap_or_else(|| default_message(&error_code).to_string());
            if path.contains("/services/oauth2/") {
                crate::oauth::oauth_error(status, &error_code, &message)
            } else {
                crate::rest::error(status, &error_code, &message)
            }
        }
    }
}

fn default_message(code: &str) -> &'static str {
    match code {
        "REQUEST_LIMIT_EXCEEDED" => "TotalRequests Limit exceeded.",
        "UNABLE_TO_LOCK_ROW" => "unable to obtain exclusive access to this record or 1 records",
        "SERVER_UNAVAILABLE" => "Server temporarily unavailable.",
        "INVALID_SESSION_ID" => "Session expired or invalid",
        "QUERY_TIMEOUT" => "Your query request was running for too long.",
        _ => {
            "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)"
        }
    }
}
