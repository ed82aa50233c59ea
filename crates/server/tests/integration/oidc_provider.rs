//! A real OpenID Connect provider for the single sign-on tests: panva's `oidc-provider` (OpenID
//! Certified, from npm; `scripts/oidc-provider`), unmodified, behind a small proxy of ours. The
//! proxy passes everything through — the browser and Lightbridge both reach the provider only
//! at its address, which is the issuer — and can play the provider misbehaving: down, or
//! answering the token request with a tampered or substituted ID token.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

/// The client secret Lightbridge's client is registered with.
pub const CLIENT_SECRET: &str = "lightbridge-test-client-secret-0123456789";
/// The second client's (`other-app`) secret.
pub const OTHER_SECRET: &str = "other-app-test-client-secret-0123456789";

/// What the proxy does.
#[derive(Debug, Clone)]
pub enum Mode {
    Pass,
    /// Every request answered 503, as a provider that is down.
    Down,
    /// The ID token's signature altered by one character.
    TamperSignature,
    /// The ID token replaced with this one.
    Replace(String),
}

#[derive(Clone)]
struct Shared {
    upstream: Arc<std::sync::OnceLock<u16>>,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
    host: String,
}

/// The proxy, started before the provider (whose issuer is the proxy's address).
pub struct Proxy {
    shared: Shared,
    pub issuer: String,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("address");
        let shared = Shared {
            upstream: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Pass)),
            seen: Arc::default(),
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
            host: address.to_string(),
        };
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Proxy { shared, issuer: format!("http://{address}") }
    }

    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().expect("mode") = mode;
    }

    /// Every ID token the provider issued through the proxy, oldest first.
    pub fn id_tokens(&self) -> Vec<String> {
        self.shared.seen.lock().expect("seen").clone()
    }
}

async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let mode = shared.mode.lock().expect("mode").clone();
    if matches!(mode, Mode::Down) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let Some(port) = shared.upstream.get() else { return StatusCode::BAD_GATEWAY.into_response() };
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let mut headers = parts.headers.clone();
    headers.insert("host", shared.host.parse().expect("host"));
    let sent = shared
        .http
        .request(parts.method.clone(), format!("http://127.0.0.1:{port}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("the provider did not answer: {e}")).into_response(),
    };
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
            headers.append(HeaderName::from(name), value.clone());
        }
    }
    let mut bytes: Bytes = answer.bytes().await.unwrap_or_default();
    if parts.uri.path() == "/token"
        && let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && let Some(token) = json["id_token"].as_str().map(str::to_string)
    {
        shared.seen.lock().expect("seen").push(token.clone());
        let changed = match mode {
            Mode::TamperSignature => {
                let mut chars: Vec<char> = token.chars().collect();
                let at = chars.len() - 5;
                chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
                Some(chars.into_iter().collect::<String>())
            }
            Mode::Replace(other) => Some(other),
            _ => None,
        };
        if let Some(changed) = changed {
            json["id_token"] = serde_json::Value::String(changed);
            bytes = Bytes::from(serde_json::to_vec(&json).expect("json"));
        }
    }
    (status, headers, bytes).into_response()
}

/// The provider process (stopped on drop) behind its proxy.
pub struct Provider {
    pub proxy: Proxy,
    child: tokio::process::Child,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Provider {
    /// Starts the provider with Lightbridge's client (`lightbridge`) sending people back to
    /// `redirect_uri`, and a second client (`other-app`) with the same redirect.
    pub async fn start(proxy: Proxy, redirect_uri: &str) -> Provider {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/oidc-provider");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "the OpenID Connect provider is not installed: run `npm ci` in scripts/oidc-provider (.ci/run does)"
        );
        let mut command = tokio::process::Command::new("node");
        command
            .arg("provider.mjs")
            .args([&proxy.issuer, redirect_uri, CLIENT_SECRET, redirect_uri, OTHER_SECRET])
            .current_dir(&dir);
        let (child, port) = crate::process::start_listening(command, "the OpenID Connect provider").await;
        proxy.shared.upstream.set(port).expect("upstream once");
        Provider { proxy, child }
    }
}

/// A browser without a screen: one cookie jar for Lightbridge and the provider, redirects
/// followed by hand so each step is seen.
pub struct Person {
    pub http: reqwest::Client,
}

/// Where a sign-in through the provider ended: Lightbridge's answer to the callback.
pub struct Ended {
    pub status: u16,
    pub location: Option<String>,
    pub session_cookie: Option<String>,
    pub body: String,
    /// The callback URL the provider sent the browser to.
    pub callback: String,
}

impl Person {
    pub fn new() -> Person {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Person { http }
    }

    /// From `start` (Lightbridge's SSO address, or the provider URL a page sent us to): the
    /// provider's own login page as `login`, its consent page, and back to Lightbridge's callback.
    pub async fn sign_in(&self, start: &str, login: &str, callback_prefix: &str) -> Ended {
        let mut url = start.to_string();
        for _ in 0..20 {
            let answer = self.http.get(&url).send().await.expect("get");
            if url.starts_with(callback_prefix) {
                return ended(answer, url).await;
            }
            if answer.status().is_redirection() {
                let location = answer.headers()["location"].to_str().expect("location").to_string();
                url = reqwest::Url::parse(&url).expect("url").join(&location).expect("join").to_string();
                continue;
            }
            let status = answer.status();
            let page = answer.text().await.expect("page");
            assert!(status.is_success(), "{status} at {url}: {page}");
            let form: Vec<(&str, &str)> = if page.contains(r#"name="prompt" value="login""#) {
                vec![("prompt", "login"), ("login", login), ("password", "any password")]
            } else if page.contains(r#"name="prompt" value="consent""#) {
                vec![("prompt", "consent")]
            } else {
                panic!("an unexpected page at {url}: {page}");
            };
            let answer = self.http.post(&url).form(&form).send().await.expect("post");
            assert!(answer.status().is_redirection(), "the provider's form answered {}", answer.status());
            let location = answer.headers()["location"].to_str().expect("location").to_string();
            url = reqwest::Url::parse(&url).expect("url").join(&location).expect("join").to_string();
        }
        panic!("the sign-in did not come back to Lightbridge");
    }
}

async fn ended(answer: reqwest::Response, callback: String) -> Ended {
    let status = answer.status().as_u16();
    let location = answer.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    let session_cookie = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lb_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string());
    Ended { status, location, session_cookie, body: answer.text().await.unwrap_or_default(), callback }
}
