//! An account proves it owns an email domain (B9, issue #13), so `/signin` can send that
//! domain's people to the account's single sign-on without the operator vouching for it.
//!
//! The owner claims a domain ([`claim`]) and gets a token; they publish it as a DNS TXT record
//!
//! ```text
//! _lightbridge-challenge.example.com.  TXT  "lightbridge-verification=<token>"
//! ```
//!
//! and ask Lightbridge to look ([`check`]). Only someone who controls the domain's DNS can put
//! the record there, which is the proof. Found, the domain is routed to the account in one
//! transaction with the claim's removal; not found, the claim stays with what DNS showed, for the
//! owner to read. (The record goes under its own label, as GitHub's `_github-challenge-…` and
//! Okta's `_oktaverification` do, so it does not crowd the domain's own TXT records.)
//!
//! - A claim is per account and its token random: another account claiming the same domain gets
//!   another token, and only the account whose token DNS shows can prove it. Whether another
//!   account has the domain is said only after DNS proved the claim, to the domain's owner.
//! - Every lookup asks the configured name servers afresh, without a cache, so a record just
//!   added is seen at the next check (an upstream resolver may still cache a "no such name" for
//!   its zone's negative TTL: the page says so).
//! - The operator's own routing (`lightbridge accounts sso-domain`) stays; a domain routed that
//!   way and then proved by DNS is marked as proved.

use std::net::SocketAddr;
use std::time::Duration;

use domain::AccountId;
use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use serde::{Deserialize, Serialize};
use store::{AccessStore, DomainClaim, StoreError};

use crate::audit::record;
use crate::secrets::random_token;
use crate::{Actor, Service, ServiceError};

/// The label the TXT record goes under, before the domain.
pub const CHALLENGE_LABEL: &str = "_lightbridge-challenge";
/// What the TXT record says before the token.
pub const RECORD_PREFIX: &str = "lightbridge-verification=";
/// Pending claims an account may hold at once.
const MAX_CLAIMS: usize = 50;

/// Where DNS questions go: the system's resolvers (`/etc/resolv.conf`), or the name servers
/// the operator names (`[sso] dns_servers`).
#[derive(Debug, Clone, Default)]
pub struct Dns {
    servers: Vec<SocketAddr>,
}

impl Dns {
    /// Asks these name servers (empty: the system's).
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Dns { servers }
    }

    /// The TXT records at `name` (each record's strings joined, as RFC 7208 reads them); no
    /// such name or no TXT there is an empty list, not an error.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        let mut builder = if self.servers.is_empty() {
            Resolver::builder_tokio().map_err(|e| format!("no DNS resolver is configured on this server: {e}"))?
        } else {
            let mut group = NameServerConfigGroup::new();
            for server in &self.servers {
                group.merge(NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true));
            }
            Resolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], group),
                TokioConnectionProvider::default(),
            )
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        options.timeout = Duration::from_secs(5);
        options.attempts = 2;
        let resolver = builder.build();
        // A fully qualified name: never one of the server's search domains.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match resolver.txt_lookup(fqdn).await {
            Ok(found) => Ok(found
                .iter()
                .map(|txt| txt.txt_data().iter().map(|part| String::from_utf8_lossy(part)).collect::<String>())
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(format!("the DNS lookup failed: {e}")),
        }
    }
}

/// A domain waiting for its TXT record, and exactly what to publish.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimView {
    pub domain: String,
    /// Where the TXT record goes, e.g. `_lightbridge-challenge.example.com`.
    pub record_name: String,
    /// What it must say, e.g. `lightbridge-verification=3kT…`.
    pub record_value: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub checked_at: Option<i64>,
    /// What the last look at DNS found.
    pub last_result: Option<String>,
}

impl From<DomainClaim> for ClaimView {
    fn from(c: DomainClaim) -> Self {
        ClaimView {
            record_name: format!("{CHALLENGE_LABEL}.{}", c.domain),
            record_value: format!("{RECORD_PREFIX}{}", c.token),
            domain: c.domain,
            created_at: c.created_at,
            checked_at: c.checked_at,
            last_result: c.last_result,
        }
    }
}

/// A domain that leads to the account's single sign-on.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoutedView {
    pub domain: String,
    /// `dns` (proved by the account's TXT record) or `operator` (vouched for by the operator).
    pub verified_by: String,
    pub created_at: i64,
}

/// The account's email domains: routed, and claimed but not yet proved.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DomainsView {
    pub routed: Vec<RoutedView>,
    pub pending: Vec<ClaimView>,
}

/// A domain to claim.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewClaim {
    /// The email domain, e.g. `example.com`.
    pub domain: String,
}

/// What a check found.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CheckResult {
    /// The record is there: the domain now leads to the account's single sign-on.
    Verified { domain: String },
    /// Not yet: the claim, with what DNS showed.
    Pending { claim: ClaimView },
}

/// An email domain as people type it: lowercase, no `@`, labels of letters, digits and hyphens.
pub fn domain_name(text: &str) -> Result<String, ServiceError> {
    let domain = text.trim().trim_start_matches('@').trim_end_matches('.').to_ascii_lowercase();
    let ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok { Ok(domain) } else { Err(ServiceError::invalid("domain", "a domain name such as example.com")) }
}

/// The account's email domains (admins and owners).
pub async fn list(svc: &Service, actor: &Actor) -> Result<DomainsView, ServiceError> {
    let account = actor.require_people_reader()?;
    list_of(svc, account).await
}

async fn list_of(svc: &Service, account: &AccountId) -> Result<DomainsView, ServiceError> {
    let routed = svc
        .store
        .routed_domains(account)
        .await?
        .into_iter()
        .map(|d| RoutedView { domain: d.domain, verified_by: d.verified_by, created_at: d.created_at })
        .collect();
    let pending = svc.store.sso_domain_claims(account).await?.into_iter().map(ClaimView::from).collect();
    Ok(DomainsView { routed, pending })
}

/// Claims an email domain for the account (the owner); claiming it again gives the same token.
pub async fn claim(svc: &Service, actor: &Actor, domain: &str) -> Result<ClaimView, ServiceError> {
    let account = actor.require_owner()?.clone();
    let domain = domain_name(domain)?;
    if svc.store.sso_config(&account).await?.is_none() {
        return Err(ServiceError::conflict("set up single sign-on first: a domain leads people to it"));
    }
    if svc.store.sso_domains(&account).await?.contains(&domain) {
        return Err(ServiceError::conflict(format!("{domain} already leads to this account's single sign-on")));
    }
    let claims = svc.store.sso_domain_claims(&account).await?;
    if let Some(existing) = claims.iter().find(|c| c.domain == domain) {
        return Ok(existing.clone().into());
    }
    if claims.len() >= MAX_CLAIMS {
        return Err(ServiceError::conflict(format!(
            "the account has {MAX_CLAIMS} domains waiting for their DNS record: remove some first"
        )));
    }
    let claim = svc.store.claim_sso_domain(&account, &domain, &random_token()?, svc.now_ms()).await?;
    let entry =
        actor.audit(svc.now_ms(), "account.sso_domain_claimed", "account", Some(account.as_str()), Some(&domain), None);
    record(svc, entry).await;
    Ok(claim.into())
}

/// Looks for the claim's TXT record (the owner); found, the domain leads to the account.
pub async fn check(svc: &Service, actor: &Actor, domain: &str) -> Result<CheckResult, ServiceError> {
    let account = actor.require_owner()?.clone();
    let domain = domain_name(domain)?;
    let claim = svc.store.sso_domain_claim(&account, &domain).await?;
    let view = ClaimView::from(claim);
    let found = svc.dns.txt(&view.record_name).await;
    let result = match &found {
        Ok(records) if records.iter().any(|r| r.trim() == view.record_value) => None,
        Ok(records) if records.is_empty() => Some(format!(
            "no TXT record at {} yet (a new record can take from minutes to the zone's TTL to be seen)",
            view.record_name
        )),
        Ok(records) => Some(format!(
            "{} TXT record{} at {}, none saying {}",
            records.len(),
            if records.len() == 1 { "" } else { "s" },
            view.record_name,
            view.record_value
        )),
        Err(e) => Some(e.clone()),
    };
    let now = svc.now_ms();
    if let Some(result) = result {
        svc.store.record_domain_check(&account, &domain, now, &result).await?;
        let claim = svc.store.sso_domain_claim(&account, &domain).await?;
        return Ok(CheckResult::Pending { claim: claim.into() });
    }
    svc.store.prove_sso_domain(&account, &domain, now).await.map_err(|e| match e {
        // Said only now, to whoever controls the domain's DNS.
        StoreError::Conflict(_) => ServiceError::conflict(format!(
            "{domain} is proved yours, but another Lightbridge account has it already: ask your Lightbridge operator"
        )),
        other => other.into(),
    })?;
    let entry = actor.audit(
        now,
        "account.sso_domain_verified",
        "account",
        Some(account.as_str()),
        Some(&domain),
        Some("DNS TXT record".into()),
    );
    record(svc, entry).await;
    Ok(CheckResult::Verified { domain })
}

/// Withdraws a claim, or stops a routed domain leading to the account (the owner).
pub async fn remove(svc: &Service, actor: &Actor, domain: &str) -> Result<(), ServiceError> {
    let account = actor.require_owner()?.clone();
    let domain = domain_name(domain)?;
    let action = match svc.store.delete_sso_domain_claim(&account, &domain).await {
        Ok(()) => "account.sso_domain_claim_withdrawn",
        Err(StoreError::NotFound) => {
            svc.store.remove_sso_domain(&account, &domain).await?;
            "account.sso_domain_removed"
        }
        Err(e) => return Err(e.into()),
    };
    let entry = actor.audit(svc.now_ms(), action, "account", Some(account.as_str()), Some(&domain), None);
    record(svc, entry).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_checked_and_normalised() {
        assert_eq!(domain_name(" @Example.COM. ").ok().as_deref(), Some("example.com"));
        for bad in ["example", "-a.example", "a-.example", "a..example", "a_b.example", "ex ample.com", ""] {
            assert!(domain_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
