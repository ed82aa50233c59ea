//! Where credentials may go: Salesforce's domains over HTTPS, or origins the operator allowed.

use url::Url;

use crate::SalesforceError;

/// Host suffixes Salesforce owns (the Salesforce CLI's list, `sfdcUrl.ts`), plus the government
/// and China variants of My Domain.
const SALESFORCE_SUFFIXES: &[&str] = &[
    ".salesforce.com",
    ".force.com",
    ".cloudforce.com",
    ".salesforceliveagent.com",
    ".my-salesforce.com",
    ".salesforce.mil",
    ".force.mil",
    ".crmforce.mil",
    ".sfcrmproducts.cn",
];

/// Which hosts may receive tokens and secrets.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Extra origins (`scheme://host:port`) the operator allowed, e.g. the emulator.
    allowed: Vec<String>,
}

impl HostPolicy {
    /// Only Salesforce's own domains, over HTTPS.
    pub fn salesforce_only() -> Self {
        HostPolicy::default()
    }

    /// Also allows these origins (any scheme), as written in configuration.
    pub fn allowing(origins: impl IntoIterator<Item = impl AsRef<str>>) -> Result<Self, SalesforceError> {
        let mut allowed = Vec::new();
        for origin in origins {
            let url = Url::parse(origin.as_ref()).map_err(|e| {
                SalesforceError::Config(format!("allowed host {:?} is not a URL: {e}", origin.as_ref()))
            })?;
            allowed.push(url.origin().ascii_serialization());
        }
        Ok(HostPolicy { allowed })
    }

    /// Whether credentials may be sent to `url`.
    pub fn check(&self, url: &Url) -> Result<(), SalesforceError> {
        if self.allowed.iter().any(|o| *o == url.origin().ascii_serialization()) {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if url.scheme() == "https" && is_salesforce_host(&host) {
            return Ok(());
        }
        Err(SalesforceError::HostNotAllowed(url.origin().ascii_serialization()))
    }

    /// The same rule as Content-Security-Policy sources (`https://*.salesforce.com`, …, and
    /// each allowed origin): where a sign-in may send the browser, for a page's `form-action`.
    pub fn csp_sources(&self) -> Vec<String> {
        let mut sources: Vec<String> = SALESFORCE_SUFFIXES.iter().map(|s| format!("https://*{s}")).collect();
        sources.extend(self.allowed.iter().cloned());
        sources
    }
}

pub fn is_salesforce_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    SALESFORCE_SUFFIXES.iter().any(|suffix| host.ends_with(suffix) && host.len() > suffix.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn salesforce_domains_over_https_are_allowed_and_lookalikes_are_not() {
        let policy = HostPolicy::salesforce_only();
        for ok in [
            "https://login.salesforce.com/services/oauth2/token",
            "https://acme.my.salesforce.com",
            "https://acme--uat.sandbox.my.salesforce.com",
            "https://acme.lightning.force.com",
        ] {
            assert!(policy.check(&url(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://login.salesforce.com",
            "https://evilsalesforce.com",
            "https://salesforce.com.evil.example",
            "https://127.0.0.1:8181",
            "https://login.salesforce.com.attacker.net",
        ] {
            assert!(matches!(policy.check(&url(bad)), Err(SalesforceError::HostNotAllowed(_))), "{bad}");
        }
    }

    #[test]
    fn allowed_origins_match_scheme_host_and_port_exactly() {
        let policy = HostPolicy::allowing(["http://127.0.0.1:8181"]).expect("policy");
        assert!(policy.check(&url("http://127.0.0.1:8181/hosts/login/services/oauth2/token")).is_ok());
        assert!(policy.check(&url("http://127.0.0.1:8182/")).is_err());
        assert!(policy.check(&url("https://127.0.0.1:8181/")).is_err());
    }

    #[test]
    fn csp_sources_name_salesforce_over_https_and_the_allowed_origins_only() {
        let sources = HostPolicy::allowing(["http://127.0.0.1:8181/hosts/login"]).expect("policy").csp_sources();
        assert!(sources.contains(&"https://*.salesforce.com".to_string()));
        assert!(sources.contains(&"http://127.0.0.1:8181".to_string()), "origins, no path: {sources:?}");
        assert!(sources.iter().all(|s| s.starts_with("https://*.") || s == "http://127.0.0.1:8181"), "{sources:?}");
    }
}
