//! Bundles, bindings, deployments and their targets (F3, B2).

use std::future::Future;

use domain::{
    AccountId, BundleId, BundleInfo, Connection, ConnectionId, Deployment, DeploymentId, EnvironmentId, Millis,
    SystemId, Target, TargetStatus,
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
    },
    Failed {
        error: String,
    },
    /// Try again at `not_before` (a transient error; `error` says which).
    Retry {
        error: String,
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
}

impl TargetCounts {
    pub fn total(&self) -> u32 {
        self.pending + self.running + self.succeeded + self.unchanged + self.failed
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
        /// Stores a deployment with one pending target per connection, in one transaction.
        fn create_deployment(&self, deployment: &Deployment, connections: &[ConnectionId]) -> Result<(), StoreError>;
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
