//! The fleet view (#17): per system × environment, which release each org runs, which orgs
//! drifted or failed, and how long the last release took to reach the whole fleet. One
//! answer for the Admin Center's matrix, the API and `lightbridge fleet`.

use std::collections::HashMap;

use domain::{
    Baseline, ConnectionId, DeploymentId, DeploymentStatus, Drift, EnvironmentId, Millis, SystemId, TargetStatus,
};
use store::{CatalogStore, DeploymentStore};

use crate::{Actor, Service, ServiceError};

/// Where one org stands for one system × environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrgState {
    /// Runs the slot's latest release.
    Current,
    /// The latest release is still on its way there (pending, running, held by its wave).
    Rolling,
    /// Runs an older release (or the latest did not reach it: skipped).
    Behind,
    /// Someone changed the resource in the org since Lightbridge published it.
    Drifted,
    /// The latest release failed there.
    Failed,
    /// Nothing was ever published there.
    Never,
}

impl OrgState {
    pub const ALL: [OrgState; 6] =
        [OrgState::Current, OrgState::Rolling, OrgState::Behind, OrgState::Drifted, OrgState::Failed, OrgState::Never];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgState::Current => "current",
            OrgState::Rolling => "rolling",
            OrgState::Behind => "behind",
            OrgState::Drifted => "drifted",
            OrgState::Failed => "failed",
            OrgState::Never => "never",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// In words, for people.
    pub fn label(self) -> &'static str {
        match self {
            OrgState::Current => "Current",
            OrgState::Rolling => "Rolling out",
            OrgState::Behind => "Behind",
            OrgState::Drifted => "Drifted",
            OrgState::Failed => "Failed",
            OrgState::Never => "Never published",
        }
    }
}

/// One org of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetOrg {
    pub connection_id: ConnectionId,
    pub connection_name: String,
    pub org_name: Option<String>,
    pub org_id: Option<String>,
    pub state: OrgState,
    /// The release the org runs: the deployment that last published there, its bundle's hash,
    /// and when.
    pub release: Option<DeploymentId>,
    pub sha256: Option<String>,
    pub published_at: Option<Millis>,
    pub drift: Option<Drift>,
    /// Why the latest release failed there.
    pub error: Option<String>,
}

/// The latest release of a slot, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestRelease {
    pub deployment_id: DeploymentId,
    pub sha256: String,
    pub status: DeploymentStatus,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
    /// Orgs that run it now, of the slot's orgs.
    pub reached: usize,
    /// How long it took from its start until every org ran it (none: it has not yet, or never
    /// will: some failed, drifted or were skipped).
    pub took_ms: Option<Millis>,
}

/// One system × environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSlot {
    pub system_id: SystemId,
    pub system_name: String,
    pub environment_id: EnvironmentId,
    pub environment_name: String,
    pub latest: Option<LatestRelease>,
    /// Its orgs (only those in the filter's state, when it names one).
    pub orgs: Vec<FleetOrg>,
    /// How many of all its orgs are in each state (whatever the filter).
    pub counts: [(OrgState, usize); 6],
}

impl FleetSlot {
    /// How many of its orgs are in `state`.
    pub fn count(&self, state: OrgState) -> usize {
        self.counts.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n)
    }

    /// How many orgs it has (whatever the filter).
    pub fn org_count(&self) -> usize {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

/// Which part of the fleet to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetFilter {
    pub system: Option<SystemId>,
    pub environment: Option<EnvironmentId>,
    pub state: Option<OrgState>,
}

/// The account's fleet: every system × environment that has orgs or a release, each org
/// (only those in `filter.state`, when given).
pub async fn fleet(svc: &Service, actor: &Actor, filter: &FleetFilter) -> Result<Vec<FleetSlot>, ServiceError> {
    let account = actor.account()?.clone();
    let systems = svc.store.systems(&account).await?;
    let environments = svc.store.environments(&account).await?;
    let baselines: HashMap<(String, String), Baseline> = svc
        .store
        .baselines(&account)
        .await?
        .into_iter()
        .map(|b| ((b.org_id.clone(), b.resource_name.as_str().to_ascii_lowercase()), b))
        .collect();
    let mut slots = Vec::new();
    for system in systems.iter().filter(|s| filter.system.as_ref().is_none_or(|f| *f == s.id)) {
        for env in environments.iter().filter(|e| filter.environment.as_ref().is_none_or(|f| *f == e.id)) {
            let connections = svc.store.targets_for(&account, &system.id, &env.id).await?;
            let latest =
                svc.store.deployments(&account, Some(&system.id), Some(&env.id), None, 1).await?.into_iter().next();
            if connections.is_empty() && latest.is_none() {
                continue;
            }
            let (latest, targets, sha, resource) = match latest {
                Some((d, _)) => {
                    let (_, targets) = svc.store.deployment(&account, &d.id).await?;
                    let sha = svc.store.bundle(&account, &d.bundle_id).await?.sha256;
                    let resource = d.resource_name.as_str().to_ascii_lowercase();
                    (Some(d), targets, Some(sha), Some(resource))
                }
                None => (None, Vec::new(), None, None),
            };
            let mut orgs = Vec::with_capacity(connections.len());
            for c in &connections {
                let org_id = c.org.as_ref().map(|o| o.org_id.clone());
                let baseline = match (&org_id, &resource) {
                    (Some(org), Some(resource)) => baselines.get(&(org.clone(), resource.clone())),
                    _ => None,
                };
                let target = targets.iter().find(|t| t.connection_id == c.id);
                let runs_latest = baseline.is_some_and(|b| Some(&b.sha256) == sha.as_ref());
                let state = match (target.map(|t| t.status), baseline) {
                    (_, Some(b)) if b.drift.is_some() => OrgState::Drifted,
                    (Some(TargetStatus::Drifted), _) => OrgState::Drifted,
                    (Some(TargetStatus::Failed), _) => OrgState::Failed,
                    _ if runs_latest => OrgState::Current,
                    (Some(TargetStatus::Pending | TargetStatus::Running | TargetStatus::Held), _) => OrgState::Rolling,
                    (_, Some(_)) => OrgState::Behind,
                    (Some(TargetStatus::Succeeded | TargetStatus::Unchanged), None) => OrgState::Current,
                    _ => OrgState::Never,
                };
                orgs.push(FleetOrg {
                    connection_id: c.id.clone(),
                    connection_name: match &c.kind {
                        domain::ConnectionKind::New { name } => name.as_str().to_string(),
                        domain::ConnectionKind::Legacy { .. } => format!("{} × {} connector", system.name, env.name),
                    },
                    org_name: c.org.as_ref().map(|o| o.org_name.clone()),
                    org_id,
                    state,
                    release: baseline.map(|b| b.deployment_id.clone()),
                    sha256: baseline.map(|b| b.sha256.clone()),
                    published_at: baseline.map(|b| b.published_at),
                    drift: baseline.and_then(|b| b.drift.clone()).or_else(|| {
                        target.filter(|t| t.status == TargetStatus::Drifted).map(|t| Drift {
                            // The target's reason without its "drifted: " and its "(by …)".
                            what: t
                                .error
                                .as_deref()
                                .unwrap_or_default()
                                .trim_start_matches("drifted: ")
                                .split(" (by ")
                                .next()
                                .unwrap_or_default()
                                .to_string(),
                            seen_modstamp: None,
                            by: t.drift_by.clone(),
                            at: t.drift_at,
                            found_at: t.updated_at,
                        })
                    }),
                    error: target.filter(|t| t.status == TargetStatus::Failed).and_then(|t| t.error.clone()),
                });
            }
            let latest = latest.map(|d| {
                let reached = orgs.iter().filter(|o| o.state == OrgState::Current).count();
                let everywhere = d.status == DeploymentStatus::Succeeded && reached == orgs.len();
                LatestRelease {
                    took_ms: d.finished_at.filter(|_| everywhere).map(|f| f - d.created_at),
                    deployment_id: d.id,
                    sha256: sha.unwrap_or_default(),
                    status: d.status,
                    created_at: d.created_at,
                    finished_at: d.finished_at,
                    reached,
                }
            });
            let counts = OrgState::ALL.map(|s| (s, orgs.iter().filter(|o| o.state == s).count()));
            if let Some(state) = filter.state {
                orgs.retain(|o| o.state == state);
            }
            slots.push(FleetSlot {
                system_id: system.id.clone(),
                system_name: system.name.clone(),
                environment_id: env.id.clone(),
                environment_name: env.name.clone(),
                latest,
                orgs,
                counts,
            });
        }
    }
    Ok(slots)
}
