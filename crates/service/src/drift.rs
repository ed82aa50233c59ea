//! Drift (#17): changes people made in an org to resources Lightbridge published there. The
//! publish worker checks each org before it updates a resource (see [`crate::worker`]); this
//! module scans a whole fleet — on demand and on a schedule — at one query per org, and
//! answers a deployment's drifted targets (overwrite or skip).

use std::collections::BTreeMap;
use std::time::Duration;

use connections::KeeperError;
use domain::{AccountId, ActorKind, AuditEntry, Baseline, ConnectionId, ConnectionStatus, DeploymentId, Drift};
use futures_util::StreamExt;
use publish::drift::{Compared, Expected, compare};
use store::{ConnectionStore, DeploymentStore};

use crate::audit::record;
use crate::{Actor, Service, ServiceError};

/// Orgs scanned at once.
const SCAN_CONCURRENCY: usize = 8;
/// Names per query (SOQL's text stays far below its 100,000-character limit).
const NAMES_PER_QUERY: usize = 200;

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Orgs looked at, and the resources in them.
    pub orgs: usize,
    pub resources: usize,
    /// Resources changed in their org since Lightbridge published them.
    pub drifted: usize,
    /// Salesforce calls the scan made: one query per org (per 200 resources), and a body read
    /// only for a resource whose modstamp moved while its length did not.
    pub calls: usize,
    /// Orgs that could not be scanned, with why.
    pub failed: Vec<(String, String)>,
}

/// Scans every org the account published to, now (a person asked).
pub async fn scan(svc: &Service, actor: &Actor) -> Result<ScanReport, ServiceError> {
    let account = actor.require_publisher()?.clone();
    let report = scan_account(svc, &account).await?;
    let detail = format!(
        "{} resource(s) in {} org(s): {} drifted{}",
        report.resources,
        report.orgs,
        report.drifted,
        if report.failed.is_empty() {
            String::new()
        } else {
            format!(", {} org(s) not reachable", report.failed.len())
        }
    );
    record(svc, actor.audit(svc.now_ms(), "drift.scanned", "account", Some(account.as_str()), None, Some(detail)))
        .await;
    Ok(report)
}

/// Scans the account's orgs, several at once; each org's findings are stored as they come.
pub async fn scan_account(svc: &Service, account: &AccountId) -> Result<ScanReport, ServiceError> {
    let mut by_org: BTreeMap<String, Vec<Baseline>> = BTreeMap::new();
    for b in svc.store.baselines(account).await? {
        by_org.entry(b.org_id.clone()).or_default().push(b);
    }
    let mut report = ScanReport { orgs: by_org.len(), ..Default::default() };
    let mut scans = futures_util::stream::iter(by_org)
        .map(|(org, baselines)| async move {
            let outcome = scan_org(svc, account, &org, &baselines).await;
            (org, baselines, outcome)
        })
        .buffer_unordered(SCAN_CONCURRENCY);
    while let Some((org, baselines, outcome)) = scans.next().await {
        report.resources += baselines.len();
        match outcome {
            Ok((found, calls)) => {
                report.calls += calls;
                let now = svc.now_ms();
                for (b, drift) in baselines.iter().zip(found) {
                    report.drifted += usize::from(drift.is_some());
                    // Only onto the baseline it compared with: a publish that landed meanwhile
                    // keeps its clean record.
                    svc.store
                        .set_drift(account, &org, &b.resource_name, drift.as_ref(), Some(now), b.modstamp_ms)
                        .await?;
                }
            }
            Err(ScanError::Store(e)) => return Err(e.into()),
            Err(ScanError::Org(why)) => {
                // Not asked again before its next turn; what was found before stays.
                svc.store.touch_scanned(account, &org, svc.now_ms()).await?;
                report.failed.push((org, why));
            }
        }
    }
    Ok(report)
}

enum ScanError {
    Store(store::StoreError),
    /// The org could not be asked: in words.
    Org(String),
}

/// One org: its resources in one query (per 200 names), compared with their baselines; what
/// changed for each baseline (in order), and the calls it took.
async fn scan_org(
    svc: &Service,
    account: &AccountId,
    org: &str,
    baselines: &[Baseline],
) -> Result<(Vec<Option<Drift>>, usize), ScanError> {
    let connection = connection_to(svc, account, org, baselines).await?;
    let names: Vec<String> = baselines.iter().map(|b| b.resource_name.as_str().to_string()).collect();
    let expected: Vec<Expected> = baselines.iter().map(Expected::from).collect();
    // A drift already found is kept, without reading the body again, while the record has not
    // moved since.
    let known: Vec<Option<Drift>> = baselines.iter().map(|b| b.drift.clone()).collect();
    let result = svc
        .keeper
        .with_session(&connection, |session| {
            let (names, expected, known, client) = (names.clone(), expected.clone(), known.clone(), svc.client.clone());
            async move {
                let mut found = Vec::new();
                let mut calls = 0;
                for chunk in names.chunks(NAMES_PER_QUERY) {
                    let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    found.extend(client.find_static_resources(&session, &chunk).await?);
                    calls += 1;
                }
                let mut drifts = Vec::with_capacity(names.len());
                for ((name, expected), known) in names.iter().zip(&expected).zip(&known) {
                    let here = found.iter().find(|r| r.name.eq_ignore_ascii_case(name));
                    if let (Some(r), Some(d)) = (here, known)
                        && d.seen_modstamp == Some(r.modstamp_ms)
                    {
                        drifts.push(Some(d.clone()));
                        continue;
                    }
                    // A body is read only when the modstamp moved and the length did not tell.
                    if here
                        .is_some_and(|r| r.modstamp_ms != expected.modstamp_ms && r.body_length == expected.body_length)
                    {
                        calls += 1;
                    }
                    drifts.push(match compare(&client, &session, here, expected, None).await? {
                        Compared::Drifted(d) => Some(d),
                        Compared::Clean | Compared::IsRelease => None,
                    });
                }
                Ok((drifts, calls))
            }
        })
        .await;
    match result {
        Ok(done) => Ok(done),
        Err(KeeperError::Store(e)) => Err(ScanError::Store(e)),
        Err(e) => Err(ScanError::Org(e.to_string())),
    }
}

/// A connection to ask the org with: the one that last published there if it still works,
/// else any other of the account's connections to the same org.
async fn connection_to(
    svc: &Service,
    account: &AccountId,
    org: &str,
    baselines: &[Baseline],
) -> Result<domain::Connection, ScanError> {
    let usable = |c: &domain::Connection| c.status != ConnectionStatus::LoggedOut;
    for b in baselines {
        match svc.store.get(account, &b.connection_id).await {
            Ok(c) if usable(&c) => return Ok(c),
            Ok(_) | Err(store::StoreError::NotFound) => {}
            Err(e) => return Err(ScanError::Store(e)),
        }
    }
    let others = svc.store.connections_to_org(account, org).await.map_err(ScanError::Store)?;
    others
        .into_iter()
        .find(usable)
        .ok_or_else(|| ScanError::Org("no working connection to this org: reconnect one to scan it".into()))
}

/// Scans, every `every`, the accounts whose orgs were not looked at (by a scan or a publish)
/// for that long; runs until the process ends. With several instances on one database, each
/// due account is claimed by one of them for an interval, so an org is asked once per interval
/// (an instance that stops mid-scan leaves the account to the next interval).
pub fn spawn_scanner(svc: &Service, every: Duration) -> tokio::task::JoinHandle<()> {
    let svc = svc.clone();
    tokio::spawn(async move {
        let owner = format!("drift-{}", domain::UserId::generate().as_str().trim_start_matches("user_"));
        // Looks for due accounts 60 times per interval (between once a second and once a minute).
        let tick = (every / 60).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let interval = every.as_millis() as i64;
        loop {
            tokio::time::sleep(tick).await;
            // One account claimed at a time, just before its scan: a batch claimed at once could
            // see its last claims lapse while the first scans ran, and be scanned twice.
            loop {
                let now = svc.now_ms();
                let account = match svc.store.claim_drift_scans(&owner, now - interval, now, now + interval, 1).await {
                    Ok(mut due) => match due.pop() {
                        Some(account) => account,
                        None => break,
                    },
                    Err(e) => {
                        tracing::error!(error = %e, "could not find the accounts due for a drift scan");
                        break;
                    }
                };
                match scan_account(&svc, &account).await {
                    Ok(report) => {
                        tracing::info!(account = %account, orgs = report.orgs, drifted = report.drifted, calls = report.calls, "drift scan");
                        if report.drifted > 0 || !report.failed.is_empty() {
                            let detail = format!(
                                "scheduled: {} resource(s) in {} org(s): {} drifted, {} org(s) not reachable",
                                report.resources,
                                report.orgs,
                                report.drifted,
                                report.failed.len()
                            );
                            record(&svc, by_lightbridge(&account, svc.now_ms(), detail)).await;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, account = %account, "drift scan failed"),
                }
            }
        }
    })
}

fn by_lightbridge(account: &AccountId, now: i64, detail: String) -> AuditEntry {
    AuditEntry {
        account_id: Some(account.clone()),
        at: now,
        actor: "lightbridge".into(),
        actor_kind: ActorKind::System,
        action: "drift.scanned".into(),
        target_kind: "account".into(),
        target_id: Some(account.to_string()),
        target_label: None,
        detail: Some(detail),
        remote_addr: None,
    }
}

/// A person's answer to a deployment's drifted targets (all, or those of `connections`):
/// publish over the org's change, or skip those orgs. Returns how many targets it moved.
pub async fn resolve(
    svc: &Service,
    actor: &Actor,
    id: &str,
    overwrite: bool,
    connections: Option<&[String]>,
) -> Result<u64, ServiceError> {
    let account = actor.require_publisher()?.clone();
    let id = DeploymentId::parse(id).map_err(|_| ServiceError::NotFound)?;
    let (deployment, _) = svc.store.deployment(&account, &id).await?;
    let only = connections
        .map(|list| {
            list.iter()
                .map(|c| {
                    ConnectionId::parse(c)
                        .map_err(|_| ServiceError::invalid("connections", format!("{c:?} is not a connection id")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    if deployment.finished_at.is_some() {
        return Err(ServiceError::conflict(format!(
            "the deployment is {}: publish again to reach the orgs it did not",
            deployment.status.as_str()
        )));
    }
    let now = svc.now_ms();
    let moved = svc.store.resolve_drifted(&account, &id, only.as_deref(), overwrite, now).await?;
    if moved == 0 {
        return Err(ServiceError::conflict("no target of this deployment is held as drifted"));
    }
    let detail = format!(
        "{moved} drifted org(s) {}",
        if overwrite { "to be published over (the changes made in the org are replaced)" } else { "skipped" }
    );
    let action = if overwrite { "deployment.drift_overwritten" } else { "deployment.drift_skipped" };
    record(
        svc,
        actor.audit(
            now,
            action,
            "deployment",
            Some(id.as_str()),
            Some(deployment.resource_name.as_str()),
            Some(detail),
        ),
    )
    .await;
    svc.publish_wake.notify_one();
    Ok(moved)
}
