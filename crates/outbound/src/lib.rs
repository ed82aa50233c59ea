//! Lightbridge's messages out (#18): mail through the operator's SMTP server ([`mail`]), and
//! requests to addresses Lightbridge's customers choose — webhook endpoints: the one HTTP
//! client for them, kept out of the service layer (which knows no HTTP). Only public addresses
//! are reached: a literal address in the URL is checked before sending, a name is resolved by
//! the client's own resolver, which keeps only public answers ([`oidc::PublicOnly`], shared with
//! single sign-on), so DNS rebinding cannot get around the check. Redirects are not followed
//! and no proxy from the environment is used (it would resolve the name itself).

pub mod mail;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a POST got: the status (none when there was no answer), how long it took, and the
/// start of the answer's body or why there was none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub text: String,
}

/// The HTTP client for customers' addresses.
#[derive(Debug, Clone)]
pub struct Sender {
    http: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    /// `allow_private`: loopback and private addresses may be reached too (tests, receivers
    /// inside the operator's network).
    pub fn new(allow_private: bool, timeout: Duration) -> Self {
        let resolver = if allow_private { oidc::PublicOnly::any() } else { oidc::PublicOnly::allowing(Vec::new()) };
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(resolver))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .user_agent(concat!("Lightbridge-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client");
        Sender { http, allow_private }
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Why this URL may not be sent to, for an address written into it (names are checked when
    /// the connection is made).
    pub fn refusal(&self, url: &str) -> Option<String> {
        if self.allow_private {
            return None;
        }
        let parsed = url::Url::parse(url).ok()?;
        let ip = match parsed.host()? {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain(_) => return None,
        };
        (!oidc::public(ip))
            .then(|| format!("{ip} is not a public address; Lightbridge delivers to public addresses only"))
    }

    /// POSTs `body` with these headers; the answer's first `excerpt` characters are kept.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: String, excerpt: usize) -> Answer {
        if let Some(refusal) = self.refusal(url) {
            return Answer { status: None, latency_ms: 0, text: refusal };
        }
        let mut request = self.http.post(url).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let started = Instant::now();
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = read_excerpt(response, excerpt).await;
                Answer { status: Some(status), latency_ms: started.elapsed().as_millis() as i64, text }
            }
            Err(e) => Answer { status: None, latency_ms: started.elapsed().as_millis() as i64, text: describe(&e) },
        }
    }
}

impl Default for Sender {
    fn default() -> Self {
        Sender::new(false, Duration::from_secs(10))
    }
}

/// The start of an answer's body, without reading more than needed.
async fn read_excerpt(mut response: reqwest::Response, chars: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < chars * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes[..bytes.len().min(chars * 4)]).chars().take(chars).collect()
}

/// Why a request got no answer, in words (the innermost cause says most).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() { "no answer in time".to_string() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_private_address_is_refused_unless_allowed() {
        let strict = Sender::default();
        for url in ["https://127.0.0.1/x", "https://[::1]/x", "http://10.0.0.1/", "https://[2002:7f00:1::1]/"] {
            assert!(strict.refusal(url).is_some(), "{url}");
        }
        assert_eq!(strict.refusal("https://hooks.example.com/x"), None, "names are checked when connecting");
        assert_eq!(Sender::new(true, Duration::from_secs(1)).refusal("http://127.0.0.1/x"), None);
    }
}
