//! Publishing (F3, B2): deploy a bundle to every connection bound to a system × environment,
//! roll back to an earlier release, and the bindings that decide where a deployment goes. The
//! [`crate::worker`] carries deployments out.

use domain::{
    BundleId, BundleInfo, CacheControl, ConnectionId, Deployment, DeploymentId, DeploymentStatus, EnvironmentId,
    ResourceName, Rollout, SystemId,
};
use store::{CatalogStore, DeploymentStore, TargetCounts};

use crate::audit::record;
use crate::{Actor, Service, ServiceError};

/// Where a deployment's bundle comes from.
#[derive(Debug)]
pub enum BundleSource {
    /// A ZIP as uploaded: rebuilt (and refused if it breaks a rule) before anything starts.
    Upload(Vec<u8>),
    /// A bundle stored earlier (`bun_…`).
    Stored(String),
}

/// A deployment as asked for, each field as given (checked by [`deploy`], every fault at once).
#[derive(Debug)]
pub struct DeployRequest {
    pub system_id: String,
    pub environment_id: String,
    pub resource_name: String,
    /// `Private` (the default) or `Public`.
    pub cache_control: Option<String>,
    pub bundle: BundleSource,
    /// Also deploy the system's loader into each org after its resource (issue #15).
    pub with_loader: bool,
    /// Roll out in waves (#17); `None`: every org at once.
    pub rollout: Option<Rollout>,
    /// Publish over resources someone changed in the org instead of holding those orgs as
    /// drifted (#17).
    pub overwrite_drift: bool,
}

/// A deployment just started: pending targets, one per bound connection.
#[derive(Debug)]
pub struct Started {
    pub deployment: Deployment,
    pub counts: TargetCounts,
}

/// Validates the request, rebuilds and stores an uploaded bundle (or finds a stored one), then
/// starts the deployment. The API, the Deployments page and `lightbridge publish` come here.
pub async fn deploy(svc: &Service, actor: &Actor, request: DeployRequest) -> Result<Started, ServiceError> {
    let account = actor.require_publisher()?.clone();
    let mut errors: Vec<(String, String)> = Vec::new();
    let system = SystemId::parse(&request.system_id)
        .map_err(|_| errors.push(("system_id".into(), "not a system id (sys_…)".into())))
        .ok();
    let env = EnvironmentId::parse(&request.environment_id)
        .map_err(|_| errors.push(("environment_id".into(), "not an environment id (env_…)".into())))
        .ok();
    // Every fault of the name, not only the first.
    let name_faults = ResourceName::faults(&request.resource_name);
    for fault in &name_faults {
        errors.push(("resource_name".into(), domain::DomainError::invalid("resource_name", fault.clone()).to_string()));
    }
    let name = if name_faults.is_empty() { ResourceName::parse(&request.resource_name).ok() } else { None };
    let cache = match request.cache_control.as_deref().filter(|c| !c.is_empty()) {
        None => Some(CacheControl::Private),
        Some(text) => CacheControl::parse(text).or_else(|| {
            errors.push(("cache_control".into(), format!("{text:?} is not Private or Public")));
            None
        }),
    };
    let (Some(system), Some(env), Some(name), Some(cache)) = (system, env, name, cache) else {
        return Err(ServiceError::Invalid(errors));
    };
    svc.store.system(&account, &system).await?;
    svc.store.environment(&account, &env).await?;
    let bundle = match request.bundle {
        BundleSource::Upload(bytes) => keep_bundle(svc, actor, bytes).await?,
        BundleSource::Stored(id) => {
            let id = BundleId::parse(&id).map_err(|_| ServiceError::invalid("bundle_id", "not a bundle id (bun_…)"))?;
            svc.store.bundle(&account, &id).await.map_err(|e| match e {
                store::StoreError::NotFound => ServiceError::invalid("bundle_id", "no such bundle in this account"),
                other => other.into(),
            })?
        }
    };
    if request.with_loader {
        let refusal = match svc.store.loader_config(&account, &system).await? {
            None => Some(
                "this system has no loader: set its loader's scripts first (PUT /api/v1/systems/{id}/loader)"
                    .to_string(),
            ),
            Some(config) => {
                let settings = publish::loader::LoaderSettings::from_config(name.clone(), &config);
                settings.check_files(&bundle.files).err().map(|e| format!("{e}: the loader loads it"))
            }
        };
        if let Some(refusal) = refusal {
            return Err(ServiceError::invalid("with_loader", refusal));
        }
    }
    let how = How {
        redeploy_of: None,
        with_loader: request.with_loader,
        rollout: request.rollout,
        overwrite_drift: request.overwrite_drift,
    };
    start(svc, actor, &account, &system, &env, name, cache, &bundle, how).await
}

/// How a deployment runs, besides what and where.
#[derive(Debug, Default)]
pub(crate) struct How {
    /// A rollback: the earlier deployment whose bundle this one publishes again.
    pub redeploy_of: Option<DeploymentId>,
    /// Also deploy the system's loader.
    pub with_loader: bool,
    /// In waves (#17).
    pub rollout: Option<Rollout>,
    /// Publish over changes made in the org (#17).
    pub overwrite_drift: bool,
}

/// Checks an uploaded ZIP as a release (the publish checks, rebuilt deterministically) and
/// keeps it as the account's bundle, to deploy now or after a form's other faults are fixed.
/// Publishers.
pub async fn keep_bundle(svc: &Service, actor: &Actor, bytes: Vec<u8>) -> Result<BundleInfo, ServiceError> {
    let account = actor.require_publisher()?.clone();
    let built = svc
        .cpu
        .run(move || publish::Bundle::from_zip(&bytes, publish::Limits::default()))
        .await?
        .map_err(|e| ServiceError::invalid("file", e.to_string()))?;
    let info = BundleInfo {
        id: BundleId::generate(),
        account_id: account,
        sha256: built.sha256().to_string(),
        size: built.bytes().len() as u64,
        files: built.files().to_vec(),
        created_at: svc.now_ms(),
        created_by: actor.user.email.clone(),
    };
    Ok(svc.store.save_bundle(&info, built.bytes()).await?)
}

/// Creates the deployment with one target per bound connection and wakes the worker.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    svc: &Service,
    actor: &Actor,
    account: &domain::AccountId,
    system: &SystemId,
    env: &EnvironmentId,
    resource_name: ResourceName,
    cache_control: CacheControl,
    bundle: &BundleInfo,
    how: How,
) -> Result<Started, ServiceError> {
    let targets = svc.store.targets_for(account, system, env).await?;
    if targets.is_empty() {
        return Err(ServiceError::invalid(
            "environment_id",
            "no connection publishes for this system and environment: bind a connection to it (or connect its legacy connector) first",
        ));
    }
    let ids: Vec<ConnectionId> = targets.iter().map(|c| c.id.clone()).collect();
    let (rollout, waves) = match &how.rollout {
        Some(r) => {
            let (effective, waves) = crate::rollout::plan(r, &ids)?;
            (Some(effective), waves)
        }
        None => (None, Vec::new()),
    };
    let now = svc.now_ms();
    let deployment = Deployment {
        id: DeploymentId::generate(),
        account_id: account.clone(),
        system_id: system.clone(),
        environment_id: env.clone(),
        bundle_id: bundle.id.clone(),
        resource_name,
        cache_control,
        status: DeploymentStatus::Running,
        created_at: now,
        created_by: actor.user.email.clone(),
        finished_at: None,
        redeploy_of: how.redeploy_of,
        with_loader: how.with_loader,
        rollout,
        wave: 0,
        note: None,
        overwrite_drift: how.overwrite_drift,
    };
    svc.store.create_deployment(&deployment, &ids, &waves).await?;
    // An earlier deployment of the same resource to the same system × environment still open —
    // a rollout (waiting, paused, halted, or running its waves), or one holding orgs as
    // drifted — would put its older release back over this one: it ends here.
    for (earlier, counts) in svc.store.deployments(account, Some(system), Some(env), None, 50).await? {
        let same_resource = earlier.resource_name.as_str().eq_ignore_ascii_case(deployment.resource_name.as_str());
        let could_come_back = earlier.rollout.is_some() || counts.drifted > 0;
        if earlier.id == deployment.id || !same_resource || !could_come_back || earlier.status.is_final() {
            continue;
        }
        let note = format!("Superseded by {} (a newer release to the same system and environment)", deployment.id);
        if svc
            .store
            .move_rollout(
                &earlier.id,
                (earlier.status, earlier.wave),
                (DeploymentStatus::Aborted, earlier.wave),
                Some(&note),
                now,
            )
            .await?
        {
            record(
                svc,
                actor.audit(
                    now,
                    "deployment.aborted",
                    "deployment",
                    Some(earlier.id.as_str()),
                    Some(earlier.resource_name.as_str()),
                    Some(note),
                ),
            )
            .await;
        }
    }
    svc.publish_wake.notify_one();
    let detail = format!(
        "{} to {} org(s), bundle sha256 {}{}{}{}{}",
        deployment.resource_name.as_str(),
        ids.len(),
        &bundle.sha256[..12.min(bundle.sha256.len())],
        deployment.redeploy_of.as_ref().map(|d| format!(", rollback to {d}")).unwrap_or_default(),
        if deployment.with_loader { ", with the loader" } else { "" },
        if deployment.overwrite_drift { ", overwriting changes made in the orgs" } else { "" },
        deployment
            .rollout
            .as_ref()
            .map(|r| format!(
                ", in {} waves (first wave {} org(s), halting above {:.0} % failed)",
                r.waves.len(),
                waves.iter().filter(|w| **w == 0).count(),
                r.max_failure_rate * 100.0
            ))
            .unwrap_or_default()
    );
    record(svc, actor.audit(now, "deployment.created", "deployment", Some(deployment.id.as_str()), None, Some(detail)))
        .await;
    let first = waves.iter().filter(|w| **w == 0).count() as u32;
    let counts = if waves.is_empty() {
        TargetCounts { pending: ids.len() as u32, ..Default::default() }
    } else {
        TargetCounts { pending: first, held: ids.len() as u32 - first, ..Default::default() }
    };
    Ok(Started { deployment, counts })
}

/// Rollback (B2): publishes this deployment's bundle again to the system × environment's
/// connections, as a new deployment.
pub async fn rollback(svc: &Service, actor: &Actor, id: &str) -> Result<Started, ServiceError> {
    rollback_in_waves(svc, actor, id, None).await
}

/// Rollback (B2) through the same machinery as a release: in waves when asked (#17).
pub async fn rollback_in_waves(
    svc: &Service,
    actor: &Actor,
    id: &str,
    rollout: Option<Rollout>,
) -> Result<Started, ServiceError> {
    let account = actor.require_publisher()?.clone();
    let id = DeploymentId::parse(id).map_err(|_| ServiceError::NotFound)?;
    let (earlier, _) = svc.store.deployment(&account, &id).await?;
    let bundle = svc.store.bundle(&account, &earlier.bundle_id).await?;
    start(
        svc,
        actor,
        &account,
        &earlier.system_id,
        &earlier.environment_id,
        earlier.resource_name.clone(),
        earlier.cache_control,
        &bundle,
        // A rollback puts the earlier resource back; the loader (which follows the system's
        // settings, not the bundle) stays as it is.
        // Drift is held as for any release: a rollback must not silently undo a person's change.
        How { redeploy_of: Some(earlier.id.clone()), with_loader: false, rollout, overwrite_drift: false },
    )
    .await
}

/// A system × environment of the account, from its ids (a bad id is not found).
pub fn slot(system: &str, env: &str) -> Result<(SystemId, EnvironmentId), ServiceError> {
    Ok((crate::catalog::system_id(system)?, crate::catalog::environment_id(env)?))
}

/// Binds a new connection to a system × environment (admins and owners).
pub async fn bind(svc: &Service, actor: &Actor, system: &str, env: &str, connection: &str) -> Result<(), ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let (system, env) = slot(system, env)?;
    let connection = crate::connections::parse_id(connection)?;
    let now = svc.now_ms();
    svc.store.bind(&account, &connection, &system, &env, now).await?;
    let detail = format!("publishes for {system} × {env}");
    record(svc, actor.audit(now, "connection.bound", "connection", Some(connection.as_str()), None, Some(detail)))
        .await;
    Ok(())
}

/// Unbinds a connection from a system × environment.
pub async fn unbind(
    svc: &Service,
    actor: &Actor,
    system: &str,
    env: &str,
    connection: &str,
) -> Result<(), ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let (system, env) = slot(system, env)?;
    let connection = crate::connections::parse_id(connection)?;
    svc.store.unbind(&account, &connection, &system, &env).await?;
    let detail = format!("no longer publishes for {system} × {env}");
    let entry =
        actor.audit(svc.now_ms(), "connection.unbound", "connection", Some(connection.as_str()), None, Some(detail));
    record(svc, entry).await;
    Ok(())
}

/// How many of a deployment's targets are in each state.
pub fn count(targets: &[domain::Target]) -> TargetCounts {
    let mut c = TargetCounts::default();
    for t in targets {
        c.add(t.status, 1);
    }
    c
}
