//! The publish worker (B2): claims deployment targets from the store and publishes each
//! bundle into its org, many at once under a global limit and a per-org limit. Transient
//! failures (5xx, timeouts, dropped connections, `REQUEST_LIMIT_EXCEEDED`,
//! `UNABLE_TO_LOCK_ROW`) come back later with exponential backoff and jitter, up to a limit;
//! an expired session is renewed once through the connections core; permanent failures
//! (a missing permission, Logged out, a deleted connection) fail that target at once with the
//! reason. Claims carry a lease, so targets of a worker that died — even by `kill -9` — are
//! taken over when the lease runs out; an upload that finished before the crash is recognized
//! by its content hash and not repeated.
//!
//! Two things keep slots busy on a small machine: a worker claims a quarter more targets than it
//! has slots (they read their connection, then wait for a slot), and the outcomes of targets
//! finishing together are recorded in one transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connections::KeeperError;
use domain::{BundleId, ConnectionStatus, TargetStatus, thousands};
use publish::{Budgeted, Bundle, PublishAction, Release, publish_within};
use store::{Claimed, ConnectionStore, DeploymentStore, Finish, StoreError, TargetOutcome};
use tokio::sync::Semaphore;

use crate::Service;
use crate::org_limit::{self, Answer, OrgLimit};

/// Prepared releases by bundle and deployment; the first target of a deployment prepares it while
/// the others wait for that one (not one copy per target).
type Releases = Mutex<HashMap<(BundleId, String), Arc<tokio::sync::OnceCell<Arc<Release>>>>>;

pub use publish::loader::Polling as LoaderPolling;

/// How hard the worker pushes.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// Targets in flight at once, across all orgs.
    pub concurrency: usize,
    /// Targets in flight at once for one org (Salesforce limits concurrent long requests per org).
    pub per_org: usize,
    /// Targets claimed beyond the free slots, their connection already read, so a slot that
    /// frees starts the next one at once instead of waiting for a claim.
    pub prefetch: usize,
    /// Attempts per target before a transient failure becomes final.
    pub max_attempts: u32,
    /// How long a claim lasts before another worker may take the target over.
    pub lease: Duration,
    /// First retry delay; doubles each attempt (with jitter) up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often a loader deploy's status is read, and how long it may take (issue #15).
    pub loader_polling: publish::loader::Polling,
    /// The share (0 to 1) of each org's daily API allowance Lightbridge leaves alone: a target
    /// whose org has less left is deferred, not uploaded (#17). Zero: no reserve.
    pub api_reserve: f64,
    /// How long a deferred target waits before it looks at the org's allowance again.
    pub defer: Duration,
    /// How often the orgs Lightbridge published to are scanned for drift (#17); zero: never by
    /// schedule.
    pub drift_scan: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 128,
            per_org: 4,
            prefetch: 32,
            max_attempts: 6,
            lease: Duration::from_secs(120),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            loader_polling: publish::loader::Polling::default(),
            api_reserve: 0.2,
            defer: Duration::from_secs(600),
            drift_scan: Duration::from_secs(6 * 3600),
        }
    }
}

/// How long a target may stay deferred for its org's API allowance before it fails.
const MOST_DEFERRED_MS: i64 = 24 * 3_600_000;

/// "10 min", "45 s": a delay in words.
fn humantime(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// The delay before attempt `attempts + 1`: base × 2^(attempts − 1), capped, then a random
/// 50–100 % of that (so many orgs failing together do not retry together).
pub fn backoff(config: &WorkerConfig, attempts: u32, random: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let full = config.backoff_base.saturating_mul(1 << exponent).min(config.backoff_max);
    let fraction = 0.5 + f64::from(random % 1000) / 2000.0;
    full.mul_f64(fraction)
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

/// Starts the worker in the background; it runs until the process ends.
pub fn spawn_worker(svc: &Service, config: WorkerConfig) -> tokio::task::JoinHandle<()> {
    let svc = svc.clone();
    tokio::spawn(async move {
        let owner = format!("worker-{}", domain::UserId::generate().as_str().trim_start_matches("user_"));
        // Publishing now, and claimed but not yet recorded (publishing, or about to).
        let slots = Arc::new(Semaphore::new(config.concurrency));
        let held = Arc::new(Semaphore::new(config.concurrency + config.prefetch));
        let orgs: Arc<Mutex<HashMap<String, Arc<OrgLimit>>>> = Arc::default();
        let bundles: Arc<Releases> = Arc::default();
        let finished = spawn_finisher(&svc, &owner);
        tracing::info!(%owner, concurrency = config.concurrency, per_org = config.per_org, "publish worker started");
        loop {
            let free = held.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                let now = svc.clock.now_ms();
                match svc.store.claim_targets(&owner, now, config.lease.as_millis() as i64, free as u32).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "could not claim deployment targets");
                        Vec::new()
                    }
                }
            };
            let got = claimed.len();
            for claim in claimed {
                let Ok(hold) = held.clone().acquire_owned().await else { return };
                let work = Work { slots: slots.clone(), orgs: orgs.clone(), bundles: bundles.clone() };
                let (svc, finished) = (svc.clone(), finished.clone());
                tokio::spawn(async move {
                    let finish = run_target(&svc, &config, claim, &work).await;
                    // Held until the outcome is recorded (or at once if there is none).
                    let unrecorded = match finish {
                        Some(finish) => finished.send((finish, hold)).err().map(|e| e.0.1),
                        None => Some(hold),
                    };
                    if let Some(hold) = unrecorded {
                        drop(hold);
                        svc.publish_wake.notify_one();
                    }
                });
            }
            if got > 0 && held.available_permits() > 0 {
                continue; // there may be more waiting
            }
            // Sleep until woken (a new deployment, recorded outcomes) or the next retry is due,
            // at most a second (a dead worker's leases are noticed within that). With all it may
            // hold claimed, only a recorded outcome can make room.
            let wait = if held.available_permits() == 0 {
                Duration::from_secs(1)
            } else {
                match svc.store.next_due().await {
                    Ok(Some(due)) => Duration::from_millis((due - svc.clock.now_ms()).clamp(5, 1_000) as u64),
                    _ => Duration::from_secs(1),
                }
            };
            let _ = tokio::time::timeout(wait, svc.publish_wake.notified()).await;
        }
    })
}

type Finished = tokio::sync::mpsc::UnboundedSender<(Finish, tokio::sync::OwnedSemaphorePermit)>;

/// Records outcomes as they come, all that are waiting in one transaction (a burst of targets
/// finishing together costs one commit, not one each), then lets go of their targets and wakes
/// the claiming loop, which claims as many new ones at once.
fn spawn_finisher(svc: &Service, owner: &str) -> Finished {
    let (sender, mut outcomes) = tokio::sync::mpsc::unbounded_channel::<(Finish, tokio::sync::OwnedSemaphorePermit)>();
    let (svc, owner) = (svc.clone(), owner.to_string());
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while outcomes.recv_many(&mut batch, 512).await > 0 {
            let (finishes, permits): (Vec<Finish>, Vec<_>) = batch.drain(..).unzip();
            let mut tries = 0;
            let recorded = loop {
                tries += 1;
                match svc.store.finish_targets(&owner, &finishes).await {
                    Ok(recorded) => break recorded,
                    Err(e) if tries < 3 => {
                        tracing::warn!(error = %e, "could not record targets' outcomes; trying again");
                        tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                    }
                    // Their leases run out and the targets are tried again (an upload that
                    // finished is then recognized by its hash and not repeated).
                    Err(e) => {
                        tracing::error!(error = %e, targets = finishes.len(), "could not record targets' outcomes");
                        break Vec::new();
                    }
                }
            };
            for (finish, recorded) in finishes.iter().zip(recorded) {
                if !recorded {
                    tracing::warn!(deployment = %finish.deployment, connection = %finish.connection, "lease lost; another worker owns this target");
                }
            }
            drop(permits);
            svc.publish_wake.notify_one();
        }
    });
    sender
}

/// What the targets of one worker share.
struct Work {
    /// Targets publishing now.
    slots: Arc<Semaphore>,
    /// Publishing now, per org, under each org's adaptive limit (#17).
    orgs: Arc<Mutex<HashMap<String, Arc<OrgLimit>>>>,
    bundles: Arc<Releases>,
}

/// Publishes one claimed target; `None` when the store failed (the lease runs out and the
/// target is tried again).
async fn run_target(svc: &Service, config: &WorkerConfig, claim: Claimed, work: &Work) -> Option<Finish> {
    let Claimed { deployment, target } = claim;
    let started = std::time::Instant::now();
    let outcome = match attempt(svc, config, &deployment, &target, work).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %e, deployment = %deployment.id, "publishing failed in the store");
            metrics::counter!("lightbridge_publish_targets_total", "outcome" => "store_error").increment(1);
            return None;
        }
    };
    let label = match &outcome {
        TargetOutcome::Done { status, .. } => status.as_str(),
        TargetOutcome::Failed { .. } => "failed",
        TargetOutcome::Retry { .. } => "retry",
        TargetOutcome::Defer { .. } => "deferred",
        TargetOutcome::Drifted { .. } => "drifted",
    };
    metrics::counter!("lightbridge_publish_targets_total", "outcome" => label).increment(1);
    metrics::histogram!("lightbridge_publish_target_duration_seconds", "outcome" => label)
        .record(started.elapsed().as_secs_f64());
    Some(Finish { deployment: deployment.id, connection: target.connection_id, outcome, now: svc.clock.now_ms() })
}

async fn attempt(
    svc: &Service,
    config: &WorkerConfig,
    deployment: &domain::Deployment,
    target: &domain::Target,
    work: &Work,
) -> Result<TargetOutcome, StoreError> {
    let connection = match svc.store.get(&deployment.account_id, &target.connection_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => {
            return Ok(TargetOutcome::Failed { error: "the connection was deleted before it was published to".into() });
        }
        Err(e) => return Err(e),
    };
    if connection.status == ConnectionStatus::LoggedOut {
        return Ok(TargetOutcome::Failed {
            error: match connection.status_reason {
                Some(reason) => {
                    format!("the connection is Logged out ({}): {} Then publish again.", reason.summary(), reason.fix())
                }
                None => format!(
                    "the connection is Logged out{}: reconnect it, then publish again",
                    connection.status_detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
                ),
            },
        });
    }
    let release = match load_release(svc, deployment, &work.bundles).await? {
        Ok(release) => release,
        Err(e) => return Ok(TargetOutcome::Failed { error: e.to_string() }),
    };
    let org_key = connection.org.as_ref().map(|o| o.org_id.clone()).unwrap_or_else(|| connection.id.to_string());
    let org_slots = {
        let mut map = work.orgs.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(org_key).or_insert_with(|| OrgLimit::new(config.per_org)).clone()
    };
    // Ready: wait for a slot (a prefetched target waits here with its connection read).
    let stopped = |_| StoreError::Corrupt("worker stopped".into());
    let _slot = work.slots.acquire().await.map_err(stopped)?;
    let _org_permit = org_slots.acquire().await;
    // An org kept at its reserve for a day gives up: the rollout must not wait for ever (#17).
    if let Some(since) = target.deferred_since
        && svc.clock.now_ms() - since > MOST_DEFERRED_MS
    {
        return Ok(TargetOutcome::Failed {
            error: format!(
                "the org stayed under the API reserve Lightbridge leaves it ({:.0} % of its daily allowance) for a day: publish again when it has room, or lower publish.api_reserve_percent",
                config.api_reserve * 100.0
            ),
        });
    }
    // What Lightbridge last published there, unless this deployment (or a person, for this
    // target) chose to publish over changes made in the org (#17).
    let org_id = connection.org.as_ref().map(|o| o.org_id.clone());
    let overwrite = deployment.overwrite_drift || target.overwrite;
    let baseline = match &org_id {
        Some(org) if !overwrite => svc.store.baseline(&deployment.account_id, org, &deployment.resource_name).await?,
        _ => None,
    };
    let expected = baseline.as_ref().map(publish::drift::Expected::from);
    let reserve = config.api_reserve;
    let result = svc
        .keeper
        .with_session(&connection, |session| {
            let (release, expected) = (release.clone(), expected.clone());
            async move {
                let guard = publish::Guard { reserve, baseline: expected.as_ref(), overwrite };
                publish_within(&svc.client, &session, &release, &guard).await
            }
        })
        .await;
    // The org's answer moves its limit: pushed back, fewer at once; quiet, more again (#17).
    org_slots.answered(match &result {
        Err(KeeperError::Salesforce(e)) if org_limit::is_pressure(e) => Answer::Pressure,
        _ => Answer::Quiet,
    });
    // Held back by the org's API allowance: not an attempt, and no failure (#17).
    let result = match result {
        Ok(Budgeted::AtReserve(usage)) => {
            let reason = format!(
                "deferred: the org has used {} of its {} daily API requests, and Lightbridge leaves it {:.0} %; tried again after {}",
                thousands(usage.used),
                thousands(usage.max),
                reserve * 100.0,
                humantime(config.defer)
            );
            return Ok(TargetOutcome::Defer {
                reason,
                not_before: svc.clock.now_ms() + config.defer.as_millis() as i64,
            });
        }
        // Changed in the org: left alone, and shown on the fleet view until published over (#17).
        Ok(Budgeted::Drifted(drift)) => {
            if let (Some(org), Some(b)) = (&org_id, &baseline) {
                svc.store
                    .set_drift(
                        &deployment.account_id,
                        org,
                        &deployment.resource_name,
                        Some(&drift),
                        None,
                        b.modstamp_ms,
                    )
                    .await?;
            }
            return Ok(TargetOutcome::Drifted { drift });
        }
        Ok(Budgeted::Published(published)) => Ok(published),
        Err(e) => Err(e),
    };
    // The loader, after the resource it loads (issue #15).
    let loader = match (&result, deployment.with_loader) {
        (Ok(_), true) => match loader_step(svc, config, deployment, &connection, target.attempts).await? {
            Ok(text) => Some(text),
            Err(outcome) => return Ok(outcome),
        },
        _ => None,
    };
    Ok(match result {
        Ok(published) => TargetOutcome::Done {
            baseline: org_id.map(|org_id| {
                Box::new(domain::Baseline {
                    account_id: deployment.account_id.clone(),
                    org_id,
                    resource_name: deployment.resource_name.clone(),
                    sha256: release.sha256.clone(),
                    content_type: publish::CONTENT_TYPE.into(),
                    cache_control: release.cache_control.clone(),
                    body_length: published.resource.body_length,
                    modstamp_ms: published.resource.modstamp_ms,
                    resource_id: published.resource.id.clone(),
                    connection_id: connection.id.clone(),
                    deployment_id: deployment.id.clone(),
                    published_at: svc.clock.now_ms(),
                    drift: None,
                    scanned_at: None,
                })
            }),
            loader,
            status: if published.action == PublishAction::Unchanged {
                TargetStatus::Unchanged
            } else {
                TargetStatus::Succeeded
            },
            action: match published.action {
                PublishAction::Created => "created",
                PublishAction::Updated => "updated",
                PublishAction::Unchanged => "unchanged",
            }
            .into(),
            resource_id: published.resource.id.clone(),
            url: published.resource.url_path(),
        },
        Err(KeeperError::Store(e)) => return Err(e),
        Err(e) => {
            let transient = match &e {
                KeeperError::Unavailable(_) => true,
                KeeperError::Salesforce(sf) => sf.is_transient(),
                _ => false,
            };
            let reason = explain(&e);
            if transient && target.attempts < config.max_attempts {
                let delay = backoff(config, target.attempts, random_u32());
                TargetOutcome::Retry { error: reason, not_before: svc.clock.now_ms() + delay.as_millis() as i64 }
            } else if transient {
                TargetOutcome::Failed { error: format!("gave up after {} attempts: {reason}", target.attempts) }
            } else {
                TargetOutcome::Failed { error: reason }
            }
        }
    })
}

/// Deploys the system's loader into one org (validation, deploy, read back; skipped when the
/// org holds this version, which also makes a target resumed after a crash cheap): what to
/// record, or the target's outcome when it did not work.
async fn loader_step(
    svc: &Service,
    config: &WorkerConfig,
    deployment: &domain::Deployment,
    connection: &domain::Connection,
    attempts: u32,
) -> Result<Result<String, TargetOutcome>, StoreError> {
    use publish::loader::{LoaderFailure, LoaderOutcome, LoaderPackage, LoaderSettings, deploy_loader_within};
    use store::CatalogStore;
    let failed = |error: String| Ok(Err(TargetOutcome::Failed { error }));
    let Some(settings) = svc.store.loader_config(&deployment.account_id, &deployment.system_id).await? else {
        return failed("the resource is published; the loader is not: the system's loader was turned off".into());
    };
    let settings = LoaderSettings::from_config(deployment.resource_name.clone(), &settings);
    let owner = format!("{}/{}", deployment.system_id, deployment.environment_id);
    let package = match LoaderPackage::build(&owner, &settings) {
        Ok(p) => p,
        Err(e) => return failed(format!("the resource is published; the loader is not: {e}")),
    };
    let (polling, reserve) = (config.loader_polling, config.api_reserve);
    let result = svc
        .keeper
        .with_session(connection, |session| {
            let (client, package) = (svc.client.clone(), package.clone());
            async move {
                match deploy_loader_within(&client, &session, &package, polling, reserve).await {
                    Ok(outcome) => Ok(Ok(outcome)),
                    // Salesforce's own errors go to the keeper (an expired session renews).
                    Err(LoaderFailure::Salesforce(e)) => Err(e),
                    Err(other) => Ok(Err(other)),
                }
            }
        })
        .await;
    Ok(match result {
        Ok(Ok(LoaderOutcome::Unchanged)) => Ok(format!("unchanged {}", package.version)),
        // Held back by the org's API allowance, as the resource upload is: tried again later;
        // the resource, already published, then costs one query (#17).
        Ok(Ok(LoaderOutcome::AtReserve(usage))) => Err(TargetOutcome::Defer {
            reason: format!(
                "deferred: the resource is published; the loader waits, as the org has used {} of its {} daily API requests, and Lightbridge leaves it {:.0} %; tried again after {}",
                thousands(usage.used),
                thousands(usage.max),
                reserve * 100.0,
                humantime(config.defer)
            ),
            not_before: svc.clock.now_ms() + config.defer.as_millis() as i64,
        }),
        Ok(Ok(_)) => Ok(format!("deployed {}", package.version)),
        // Salesforce held the deploy too long (its queue): cancelled; tried again later.
        Ok(Err(failure @ LoaderFailure::TimedOut { .. })) if attempts < config.max_attempts => {
            let delay = backoff(config, attempts, random_u32());
            Err(TargetOutcome::Retry {
                error: format!("the resource is published; the loader is not yet: {failure}"),
                not_before: svc.clock.now_ms() + delay.as_millis() as i64,
            })
        }
        Ok(Err(failure)) => {
            Err(TargetOutcome::Failed { error: format!("the resource is published; the loader is not: {failure}") })
        }
        Err(KeeperError::Store(e)) => return Err(e),
        Err(e) => {
            let transient = match &e {
                KeeperError::Unavailable(_) => true,
                KeeperError::Salesforce(sf) => sf.is_transient(),
                _ => false,
            };
            let error = format!("the resource is published; the loader is not: {}", explain(&e));
            if transient && attempts < config.max_attempts {
                let delay = backoff(config, attempts, random_u32());
                Err(TargetOutcome::Retry { error, not_before: svc.clock.now_ms() + delay.as_millis() as i64 })
            } else {
                Err(TargetOutcome::Failed { error })
            }
        }
    })
}

/// A failure in words an admin can act on.
fn explain(e: &KeeperError) -> String {
    match e {
        KeeperError::Salesforce(salesforce::SalesforceError::Api { code, message, .. }) => match code.as_str() {
            "INSUFFICIENT_ACCESS_OR_READONLY" => format!(
                "the connected user lacks the Customize Application permission needed to create and update static resources ({message})"
            ),
            "API_CURRENTLY_DISABLED" => format!("the connected user lacks the API Enabled permission ({message})"),
            _ => format!("{code}: {message}"),
        },
        other => other.to_string(),
    }
}

/// The deployment's release with its request bodies built once for all its orgs (kept for the
/// few deployments in flight).
async fn load_release(
    svc: &Service,
    deployment: &domain::Deployment,
    cache: &Releases,
) -> Result<Result<Arc<Release>, salesforce::SalesforceError>, StoreError> {
    let key = (deployment.bundle_id.clone(), deployment.id.to_string());
    let cell = {
        let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 16 && !map.contains_key(&key) {
            map.clear();
        }
        map.entry(key).or_default().clone()
    };
    enum Failed {
        Store(StoreError),
        Salesforce(salesforce::SalesforceError),
    }
    let prepared = cell
        .get_or_try_init(|| async {
            let bundle = Bundle::stored(svc.store.bundle_bytes(&deployment.bundle_id).await.map_err(Failed::Store)?);
            let release = Release::new(
                &deployment.resource_name,
                &bundle,
                deployment.id.as_str(),
                deployment.cache_control.as_str(),
            );
            release.map(Arc::new).map_err(Failed::Salesforce)
        })
        .await;
    match prepared {
        Ok(release) => Ok(Ok(release.clone())),
        Err(Failed::Store(e)) => Err(e),
        Err(Failed::Salesforce(e)) => Ok(Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_growing() {
        let c = WorkerConfig {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..Default::default()
        };
        let full = |attempts| backoff(&c, attempts, 999);
        assert!(full(1) <= Duration::from_millis(100) && full(1) >= Duration::from_millis(99));
        assert!(full(2) >= Duration::from_millis(199));
        assert_eq!(full(10), full(20), "capped");
        assert!(backoff(&c, 3, 0) >= Duration::from_millis(200), "jitter keeps at least half");
    }
}
