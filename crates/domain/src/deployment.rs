//! Publishing (F3, B2): stored bundles, deployments and their per-connection targets.

use serde::{Deserialize, Serialize};

use crate::{AccountId, BundleId, ConnectionId, DeploymentId, EnvironmentId, Millis, ResourceName, SystemId};

/// A release's bytes, stored so any earlier release can be published again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInfo {
    pub id: BundleId,
    pub account_id: AccountId,
    pub sha256: String,
    pub size: u64,
    pub files: Vec<String>,
    pub created_at: Millis,
    pub created_by: String,
}

/// Who may read a published resource once cached: `Private` (signed-in users, the default)
/// or `Public` (anyone on the internet, salesforce-api.md §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum CacheControl {
    #[default]
    Private,
    Public,
}

impl CacheControl {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheControl::Private => "Private",
            CacheControl::Public => "Public",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "private" => Some(CacheControl::Private),
            "public" => Some(CacheControl::Public),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// Some targets are still pending or running.
    Running,
    Succeeded,
    /// Every target finished and at least one failed.
    Failed,
    /// A rollout's next wave waits for its gate: an approval or its time (#17).
    Waiting,
    /// Paused by a person: targets already publishing finish, no other starts (#17).
    Paused,
    /// A wave failed more than the rollout allows: later waves have not started (#17).
    Halted,
    /// Stopped by a person: targets that had not started never will (#17).
    Aborted,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Running => "running",
            DeploymentStatus::Succeeded => "succeeded",
            DeploymentStatus::Failed => "failed",
            DeploymentStatus::Waiting => "waiting",
            DeploymentStatus::Paused => "paused",
            DeploymentStatus::Halted => "halted",
            DeploymentStatus::Aborted => "aborted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => DeploymentStatus::Running,
            "succeeded" => DeploymentStatus::Succeeded,
            "failed" => DeploymentStatus::Failed,
            "waiting" => DeploymentStatus::Waiting,
            "paused" => DeploymentStatus::Paused,
            "halted" => DeploymentStatus::Halted,
            "aborted" => DeploymentStatus::Aborted,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    Pending,
    Running,
    /// Created or updated in the org.
    Succeeded,
    /// The org already held the same bytes: nothing uploaded.
    Unchanged,
    Failed,
    /// Not started: its wave has not begun, or the rollout is paused or halted (#17).
    Held,
    /// Never started: the rollout was aborted (#17).
    Skipped,
    /// Not published: someone changed the resource in the org since Lightbridge last published
    /// it there (#17). Waits until a person overwrites or skips it; never a failure.
    Drifted,
}

impl TargetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Pending => "pending",
            TargetStatus::Running => "running",
            TargetStatus::Succeeded => "succeeded",
            TargetStatus::Unchanged => "unchanged",
            TargetStatus::Failed => "failed",
            TargetStatus::Held => "held",
            TargetStatus::Skipped => "skipped",
            TargetStatus::Drifted => "drifted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => TargetStatus::Pending,
            "running" => TargetStatus::Running,
            "succeeded" => TargetStatus::Succeeded,
            "unchanged" => TargetStatus::Unchanged,
            "failed" => TargetStatus::Failed,
            "held" => TargetStatus::Held,
            "skipped" => TargetStatus::Skipped,
            "drifted" => TargetStatus::Drifted,
            _ => return None,
        })
    }
    pub fn is_final(self) -> bool {
        matches!(self, TargetStatus::Succeeded | TargetStatus::Unchanged | TargetStatus::Failed | TargetStatus::Skipped)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub id: DeploymentId,
    pub account_id: AccountId,
    pub system_id: SystemId,
    pub environment_id: EnvironmentId,
    pub bundle_id: BundleId,
    pub resource_name: ResourceName,
    pub cache_control: CacheControl,
    pub status: DeploymentStatus,
    pub created_at: Millis,
    pub created_by: String,
    pub finished_at: Option<Millis>,
    /// A rollback: the earlier deployment whose bundle this one publishes again.
    pub redeploy_of: Option<DeploymentId>,
    /// Also deploys the system's loader into each org after its resource (issue #15).
    pub with_loader: bool,
    /// Rolled out in waves (#17); `None`: every org at once.
    pub rollout: Option<Rollout>,
    /// The last wave started (0: the first).
    pub wave: u32,
    /// Why the deployment waits, is paused, halted or aborted, in words.
    pub note: Option<String>,
    /// Publishes over a resource someone changed in the org instead of holding that org as
    /// drifted (#17).
    pub overwrite_drift: bool,
}

impl DeploymentStatus {
    /// Whether no target will run again by itself (a paused, halted or waiting rollout can
    /// still go on).
    pub fn is_final(self) -> bool {
        matches!(self, DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Aborted)
    }
}

/// A deployment in waves (#17): the first wave (a canary) starts at once; each later one when
/// the wave before it finished with at most `max_failure_rate` of its targets failed — by
/// itself, after an approval, or at a time, as its gate says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    pub waves: Vec<Wave>,
    /// The share of a wave's finished targets that may fail (0 to 1) before the rollout halts.
    #[serde(default)]
    pub max_failure_rate: f64,
}

/// One wave: which targets, and what starts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    /// How many of the targets not in an earlier wave (at least one), a percentage of all the
    /// deployment's targets, or these connections; none of them: every target left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<ConnectionId>>,
    /// What starts this wave once the one before it passed (the first starts at once).
    #[serde(default)]
    pub gate: Gate,
}

/// What starts a wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// As soon as the wave before it passed.
    #[default]
    Auto,
    /// When a person approves it.
    Approval,
    /// Not before this time (Unix milliseconds).
    At(Millis),
}

/// One connection's part of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub deployment_id: DeploymentId,
    pub connection_id: ConnectionId,
    pub status: TargetStatus,
    pub attempts: u32,
    /// `created`, `updated` or `unchanged` once it succeeded.
    pub action: Option<String>,
    pub resource_id: Option<String>,
    /// Where the org serves it: `/resource/<timestamp>/<Name>`.
    pub url: Option<String>,
    /// Why it failed (or why the last attempt did, while retrying).
    pub error: Option<String>,
    /// What happened to the loader in this org (`deployed <version>`, `unchanged <version>`),
    /// for a deployment with the loader.
    pub loader: Option<String>,
    pub updated_at: Millis,
    /// The connection's org name and instance when read (none once the connection is deleted).
    pub org_name: Option<String>,
    pub instance_url: Option<String>,
    /// The connection's own name and its Salesforce user, which tell apart two orgs of the same
    /// name (a production org and its sandbox).
    pub connection_name: Option<String>,
    pub username: Option<String>,
    /// The rollout's wave it belongs to (0 without waves).
    pub wave: u32,
    /// When it was first deferred for its org's API allowance (#17), if it was.
    pub deferred_since: Option<Millis>,
    /// Who changed the resource in the org, and when, for a drifted target (#17).
    pub drift_by: Option<String>,
    pub drift_at: Option<Millis>,
    /// A person chose to publish over the org's change (#17).
    pub overwrite: bool,
}

/// What Lightbridge last published as one resource in one org (#17): what the drift check
/// compares the org's copy with. Kept per org, not per connection, so two connections to the
/// same org share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    pub account_id: AccountId,
    /// The Salesforce org id.
    pub org_id: String,
    pub resource_name: ResourceName,
    pub sha256: String,
    pub content_type: String,
    pub cache_control: String,
    pub body_length: u64,
    /// The record's `SystemModstamp` right after the publish.
    pub modstamp_ms: Millis,
    pub resource_id: String,
    /// The connection and deployment that published it.
    pub connection_id: ConnectionId,
    pub deployment_id: DeploymentId,
    pub published_at: Millis,
    /// What the last look at the org found changed, if anything.
    pub drift: Option<Drift>,
    /// When a drift scan last looked.
    pub scanned_at: Option<Millis>,
}

/// A change someone made in the org to a resource Lightbridge published (#17).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// What changed, in words: "its body changed", "deleted from the org"…
    pub what: String,
    /// `LastModifiedBy.Name` (none once the resource is deleted).
    pub by: Option<String>,
    /// `LastModifiedDate`.
    pub at: Option<Millis>,
    /// When Lightbridge noticed.
    pub found_at: Millis,
    /// The record's `SystemModstamp` when it was noticed: a scan that finds it unmoved keeps
    /// this finding without reading the body again.
    #[serde(default)]
    pub seen_modstamp: Option<Millis>,
}

impl Drift {
    /// "its body changed (by Ada Admin, 2026-11-26 10:00 UTC)".
    pub fn describe(&self) -> String {
        let when = self.at.map(crate::clock::format_utc);
        match (&self.by, when) {
            (Some(by), Some(when)) => format!("{} (by {by}, {when})", self.what),
            (Some(by), None) => format!("{} (by {by})", self.what),
            (None, Some(when)) => format!("{} ({when})", self.what),
            (None, None) => self.what.clone(),
        }
    }
}
