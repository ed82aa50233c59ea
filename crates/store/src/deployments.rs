//! Bundles, bindings, deployments and their targets (F3, B2).

use std::future::Future;

use domain::{
    AccountId, Baseline, BundleId, BundleInfo, Connection, ConnectionId, Deployment, DeploymentId, DeploymentStatus,
    Drift, EnvironmentId, Millis, ResourceName, SystemId, Target, TargetStatus,
};

use crate::StoreError;

/// A target handed to a worker, with what it needs to publish.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub deployment: Deployment,
    pub target: Target,
}

/// How a target ended (or why it waits for another attempt).
#[derive(Debug, Clone)]
pub enum TargetOutcome {
    Done {
        status: TargetStatus,
        action: String,
        resource_id: String,
        url: String,
        /// What happened to the loader there, for a deployment with the loader.
        loader: Option<String>,
        /// What the org now holds, for the drift check (#17); recorded with the outcome.
        baseline: Option<Box<Baseline>>,
    },
    /// Not published: someone changed the resource in the org (#17). Waits for a person.
    Drifted {
        drift: Drift,
    },
    Failed {
        error: String,
    },
    /// Try again at `not_before` (a transient error; `error` says which).
    Retry {
        error: String,
        not_before: Millis,
    },
    /// Not tried: held back (the org's API allowance is at the reserve Lightbridge leaves it,
    /// #17) until `not_before`. The attempt does not count, and the target stays visible as
    /// pending with `reason`.
    Defer {
        reason: String,
        not_before: Millis,
    },
}

/// A claimed target's outcome, to record.
#[derive(Debug, Clone)]
pub struct Finish {
    pub deployment: DeploymentId,
    pub connection: ConnectionId,
    pub outcome: TargetOutcome,
    /// When it ended.
    pub now: Millis,
}

/// Counts of a deployment's targets by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetCounts {
    pub pending: u32,
    pub running: u32,
    pub succeeded: u32,
    pub unchanged: u32,
    pub failed: u32,
    /// Waiting for their wave, or held by a paused or halted rollout (#17).
    pub held: u32,
    /// Never started: the rollout was aborted (#17).
    pub skipped: u32,
    /// Held: changed in the org since Lightbridge published there (#17).
    pub drifted: u32,
}

impl TargetCounts {
    pub fn total(&self) -> u32 {
        self.pending
            + self.running
            + self.succeeded
            + self.unchanged
            + self.failed
            + self.held
            + self.skipped
            + self.drifted
    }

    /// Targets that ran to an end: what a wave's failure rate is measured on.
    pub fn finished(&self) -> u32 {
        self.succeeded + self.unchanged + self.failed
    }

    /// Counts one more target of this status.
    pub fn add(&mut self, status: TargetStatus, n: u32) {
        match status {
            TargetStatus::Pending => self.pending += n,
            TargetStatus::Running => self.running += n,
            TargetStatus::Succeeded => self.succeeded += n,
            TargetStatus::Unchanged => self.unchanged += n,
            TargetStatus::Failed => self.failed += n,
            TargetStatus::Held => self.held += n,
            TargetStatus::Skipped => self.skipped += n,
            TargetStatus::Drifted => self.drifted += n,
        }
    }
}

store_trait! {
    pub trait DeploymentStore {
        /// Stores a bundle's bytes (or returns the account's existing bundle with the same hash).
        fn save_bundle(&self, bundle: &BundleInfo, bytes: &[u8]) -> Result<BundleInfo, StoreError>;
        fn bundle(&self, account: &AccountId, id: &BundleId) -> Result<BundleInfo, StoreError>;
        fn bundle_bytes(&self, id: &BundleId) -> Result<Vec<u8>, StoreError>;
        /// Binds a new connection to a system × environment (idempotent).
        fn bind(&self, account: &AccountId, connection: &ConnectionId, system: &SystemId, environment: &EnvironmentId, now: Millis) -> Result<(), StoreError>;
        fn unbind(&self, account: &AccountId, connection: &ConnectionId, system: &SystemId, environment: &EnvironmentId) -> Result<(), StoreError>;
        /// The connections a deployment to this system × environment publishes to: bound new
        /// connections and the slot's legacy connector while it is active.
        fn targets_for(&self, account: &AccountId, system: &SystemId, environment: &EnvironmentId) -> Result<Vec<Connection>, StoreError>;
        /// Stores a deployment with one target per connection, in one transaction: `waves[i]` is
        /// the rollout's wave of `connections[i]` (none given: all in wave 0); wave 0's targets
        /// are pending, later waves' held until their wave starts (#17).
        fn create_deployment(&self, deployment: &Deployment, connections: &[ConnectionId], waves: &[u32]) -> Result<(), StoreError>;
        fn deployment(&self, account: &AccountId, id: &DeploymentId) -> Result<(Deployment, Vec<Target>), StoreError>;
        /// The account's deployments, newest first, with their target counts; optionally only those
        /// of a system, an environment, or that published to a connection.
        fn deployments(&self, account: &AccountId, system: Option<&SystemId>, environment: Option<&EnvironmentId>, connection: Option<&ConnectionId>, limit: u32) -> Result<Vec<(Deployment, TargetCounts)>, StoreError>;
        /// Claims up to `limit` targets of any account that are pending (and due) or whose
        /// worker's lease ran out, marking them running for `owner` until `now + lease_ms`.
        fn claim_targets(&self, owner: &str, now: Millis, lease_ms: i64, limit: u32) -> Result<Vec<Claimed>, StoreError>;
        /// Records claimed targets' outcomes in one transaction, each only while `owner` still holds
        /// its lease (a worker whose lease expired must not overwrite the new owner's work).
        /// Finishes a deployment when its last target is final. Returns, for each, whether it was
        /// recorded (false: the lease was lost).
        fn finish_targets(&self, owner: &str, finished: &[Finish]) -> Result<Vec<bool>, StoreError>;
        /// When the next retry of any pending target is due (for the worker's sleep).
        fn next_due(&self) -> Result<Option<Millis>, StoreError>;
        /// Rollouts in waves with something to decide (#17), of every account: running ones whose
        /// started waves have no target left to run, and waiting ones; each with its target
        /// counts per wave.
        fn rollouts_to_advance(&self) -> Result<Vec<(Deployment, Vec<TargetCounts>)>, StoreError>;
        /// A deployment's target counts per wave (index: the wave).
        fn wave_counts(&self, id: &DeploymentId) -> Result<Vec<TargetCounts>, StoreError>;
        /// Moves a rollout from `from` (its status and wave as the caller read them) to `to`, and
        /// its targets with it, in one transaction: running releases the held targets of every
        /// wave up to `to`'s; waiting, paused and halted hold the pending ones (running ones
        /// finish); aborted skips every target not yet started and finishes the deployment.
        /// False (and nothing changed) when the deployment was no longer at `from`.
        fn move_rollout(&self, id: &DeploymentId, from: (DeploymentStatus, u32), to: (DeploymentStatus, u32), note: Option<&str>, now: Millis) -> Result<bool, StoreError>;
        /// What Lightbridge last published as `resource` in the org `org_id` (#17); resource
        /// names compare without case, as Salesforce's do.
        fn baseline(&self, account: &AccountId, org_id: &str, resource: &ResourceName) -> Result<Option<Baseline>, StoreError>;
        /// Every baseline of the account, by org and resource (the drift scan and the fleet view).
        fn baselines(&self, account: &AccountId) -> Result<Vec<Baseline>, StoreError>;
        /// Records what a look at an org found (`None`: as published), and when a scan looked
        /// (`None`: leaves the time of the last scan) — only while the baseline is the one the
        /// look compared with (`published_modstamp`): a publish that landed meanwhile is not
        /// marked by a stale finding. False when it was not.
        fn set_drift(&self, account: &AccountId, org_id: &str, resource: &ResourceName, drift: Option<&Drift>, scanned_at: Option<Millis>, published_modstamp: Millis) -> Result<bool, StoreError>;
        /// Records that a scan looked at an org (also when the org could not be asked, so it is
        /// not asked again before its next turn).
        fn touch_scanned(&self, account: &AccountId, org_id: &str, now: Millis) -> Result<(), StoreError>;
        /// Claims, for `owner` until `until`, the scheduled drift scan of accounts with a
        /// baseline not scanned (or published) since `before`, the longest waiting first; an
        /// account another owner claimed until after `now` is left to it, so however many
        /// instances look, each account is scanned by one (#17).
        fn claim_drift_scans(&self, owner: &str, before: Millis, now: Millis, until: Millis, limit: u32) -> Result<Vec<AccountId>, StoreError>;
        /// A person's answer to drifted targets of an unfinished deployment (all of them, or
        /// those of `connections`): overwrite (pending again, publishing over the org's change;
        /// held while the rollout is not running) or skip. Finishes the deployment when nothing
        /// is left. Returns how many targets moved.
        fn resolve_drifted(&self, account: &AccountId, id: &DeploymentId, connections: Option<&[ConnectionId]>, overwrite: bool, now: Millis) -> Result<u64, StoreError>;
    }
    provided {
        /// [`finish_targets`](Self::finish_targets) for one target.
        fn finish_target(
            &self,
            deployment: &DeploymentId,
            connection: &ConnectionId,
            owner: &str,
            outcome: &TargetOutcome,
            now: Millis,
        ) -> impl Future<Output = Result<bool, StoreError>> + Send {
            let one =
                [Finish { deployment: deployment.clone(), connection: connection.clone(), outcome: outcome.clone(), now }];
            async move { Ok(self.finish_targets(owner, &one).await?.first().copied().unwrap_or(false)) }
        }
    }
}
