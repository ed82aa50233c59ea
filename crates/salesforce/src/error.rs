//! What can go wrong talking to Salesforce, keeping Salesforce's own codes.

/// A Salesforce failure. OAuth errors keep `error` / `error_description`; REST errors keep
/// `errorCode` / `message`; bodies are never kept whole (a short, redacted excerpt at most).
#[derive(Debug, thiserror::Error)]
pub enum SalesforceError {
    /// The token endpoint refused (`invalid_grant`, `invalid_client`, …).
    #[error("Salesforce refused the sign-in: {error} ({description})")]
    OAuth { status: u16, error: String, description: String },
    /// The session is no longer valid: refresh or sign in again.
    #[error("Salesforce session expired or invalid")]
    SessionExpired,
    /// A REST or Tooling call failed with Salesforce's `errorCode`.
    #[error("Salesforce answered {status} {code}: {message}")]
    Api { status: u16, code: String, message: String },
    /// An answer Salesforce would not give (not JSON, fields missing, bad signature).
    #[error("unexpected answer from Salesforce (HTTP {status}): {detail}")]
    Unexpected { status: u16, detail: String },
    /// Tokens may only go to Salesforce's domains or hosts the operator allowed.
    #[error("refusing to send credentials to {0}: not a Salesforce host and not allowed in configuration")]
    HostNotAllowed(String),
    /// Salesforce redirected a request (its answer for an org's previous My Domain host after
    /// a My Domain change); `to` is the origin it named. Redirects are never followed with
    /// credentials.
    #[error("Salesforce redirected the request to {to}: the org's My Domain has changed")]
    Moved { to: String },
    /// A token reply named an instance (`instance_url`) credentials may not go to.
    #[error("Salesforce named {0} as the org's instance: not a Salesforce host and not allowed in configuration")]
    InstanceNotAllowed(String),
    /// Salesforce could not be reached (DNS, connect, TLS, timeout).
    #[error("cannot reach Salesforce at {host}: {reason}")]
    Unreachable { host: String, reason: String },
    /// Bad input from our side (a malformed URL, key, or setting).
    #[error("{0}")]
    Config(String),
}

impl SalesforceError {
    /// True when retrying later may succeed: timeouts, dropped connections, 5xx, lock and
    /// limit errors.
    pub fn is_transient(&self) -> bool {
        match self {
            SalesforceError::Unreachable { .. } => true,
            SalesforceError::Api { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "REQUEST_LIMIT_EXCEEDED" | "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE" | "QUERY_TIMEOUT"
                    )
            }
            SalesforceError::Unexpected { status, .. } => *status >= 500,
            SalesforceError::OAuth { status, error, .. } => *status >= 500 || error == "rate_limit_exceeded",
            _ => false,
        }
    }

    /// True when the stored credentials are dead and only a new sign-in helps
    /// (refresh answered `invalid_grant`, user inactive, app gone).
    pub fn is_logged_out(&self) -> bool {
        matches!(self, SalesforceError::OAuth { error, .. }
            if matches!(error.as_str(), "invalid_grant" | "inactive_user" | "inactive_org" | "invalid_client_id" | "invalid_app_access"))
    }
}

/// A redirect answer as [`SalesforceError::Moved`] (with the origin it names), or `None`.
pub(crate) fn redirected(response: &reqwest::Response) -> Option<SalesforceError> {
    if !response.status().is_redirection() {
        return None;
    }
    let to = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| response.url().join(l).ok())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|| "an address it did not name".into());
    Some(SalesforceError::Moved { to })
}

/// At most 200 characters of a body, with anything token-shaped masked.
pub(crate) fn excerpt(body: &str) -> String {
    let short: String = body.chars().take(200).collect();
    short
        .split_inclusive(|c: char| c.is_whitespace() || c == '"')
        .map(|w| if w.len() > 40 && w.contains('!') { "[redacted]" } else { w })
        .collect()
}
