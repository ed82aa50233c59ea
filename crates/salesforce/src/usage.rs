//! An org's daily API allowance as Salesforce reports it on every REST answer:
//! `Sforce-Limit-Info: api-usage=<used>/<max>` (optionally followed by
//! `; per-app-api-usage=<u>/<t>(appName=<name>)`). Lightbridge keeps the latest figures per
//! instance, so the publish worker can leave an org's allowance a reserve (#17).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use url::Url;

/// An org's API use in the rolling 24 hours, as of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
    /// When the answer came (milliseconds, the client's clock).
    pub seen_at: i64,
}

impl ApiUsage {
    /// The share of the allowance left (0 to 1); a zero allowance has none.
    pub fn remaining_share(&self) -> f64 {
        if self.max == 0 { 0.0 } else { self.max.saturating_sub(self.used) as f64 / self.max as f64 }
    }
}

/// `(used, max)` from the header's `api-usage=` part; `None` when it is not there or not numbers.
pub fn parse_api_usage(header: &str) -> Option<(u64, u64)> {
    let part = header.split(';').map(str::trim).find_map(|p| p.strip_prefix("api-usage="))?;
    let (used, max) = part.trim().split_once('/')?;
    Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
}

/// The latest usage per instance (its origin).
#[derive(Debug, Default, Clone)]
pub(crate) struct UsageBook(Arc<Mutex<HashMap<String, ApiUsage>>>);

impl UsageBook {
    pub(crate) fn note(&self, url: &Url, headers: &reqwest::header::HeaderMap, now_ms: i64) {
        let Some((used, max)) =
            headers.get("sforce-limit-info").and_then(|v| v.to_str().ok()).and_then(parse_api_usage)
        else {
            return;
        };
        let mut book = self.0.lock().unwrap_or_else(|p| p.into_inner());
        book.insert(url.origin().ascii_serialization(), ApiUsage { used, max, seen_at: now_ms });
    }

    pub(crate) fn get(&self, instance: &Url) -> Option<ApiUsage> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&instance.origin().ascii_serialization()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_reads_as_salesforce_writes_it() {
        assert_eq!(parse_api_usage("api-usage=18/5000"), Some((18, 5000)));
        assert_eq!(
            parse_api_usage("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-app)"),
            Some((25, 5000))
        );
        assert_eq!(parse_api_usage("api-usage=110018/100000; api-bursts=1/750"), Some((110_018, 100_000)));
        assert_eq!(parse_api_usage("per-app-api-usage=17/250(appName=x)"), None);
        assert_eq!(parse_api_usage("api-usage=many/5000"), None);
        let at = |used, max| ApiUsage { used, max, seen_at: 0 };
        assert!((at(80_000, 100_000).remaining_share() - 0.2).abs() < 1e-9);
        assert_eq!(at(5, 0).remaining_share(), 0.0);
        assert_eq!(at(120, 100).remaining_share(), 0.0);
    }
}
