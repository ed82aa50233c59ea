//! A system's loader settings (issue #15, B7): what the loader loads from each environment's
//! published static resource on every Lightning page, and the origins its player calls back
//! to. Admins and owners change them; anyone in the account reads them.

use domain::LoaderConfig;
use store::CatalogStore;

use crate::audit::record;
use crate::catalog::system_id;
use crate::{Actor, Service, ServiceError};

/// The app a loader runs in when none is named: Salesforce's standard Sales app, which has a
/// utility bar in every new org.
pub const DEFAULT_APP: &str = "standard__LightningSales";

/// New settings, as a person or a pipeline sends them.
#[derive(Debug, Clone, Default)]
pub struct LoaderInput {
    pub scripts: Vec<String>,
    pub styles: Vec<String>,
    pub trusted_sites: Vec<String>,
    /// Lightning apps whose utility bars hold the loader; empty: the standard Sales app.
    pub apps: Vec<String>,
}

/// A system's loader settings, if it has a loader.
pub async fn settings(svc: &Service, actor: &Actor, system: &str) -> Result<Option<LoaderConfig>, ServiceError> {
    let account = actor.account()?;
    let id = system_id(system)?;
    svc.store.system(account, &id).await?;
    Ok(svc.store.loader_config(account, &id).await?)
}

/// Sets a system's loader settings; every fault is reported at once, by field.
pub async fn set(svc: &Service, actor: &Actor, system: &str, input: LoaderInput) -> Result<LoaderConfig, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let id = system_id(system)?;
    let system = svc.store.system(&account, &id).await?;
    let trim = |list: Vec<String>| -> Vec<String> {
        list.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    };
    let (scripts, styles, trusted_sites) = (trim(input.scripts), trim(input.styles), trim(input.trusted_sites));
    let mut apps = trim(input.apps);
    if apps.is_empty() {
        apps.push(DEFAULT_APP.to_string());
    }
    let faults = publish::loader::faults(&scripts, &styles, &trusted_sites, &apps);
    if !faults.is_empty() {
        return Err(ServiceError::Invalid(faults.into_iter().map(|(f, e)| (f.to_string(), e.to_string())).collect()));
    }
    let now = svc.now_ms();
    let before = svc.store.loader_config(&account, &id).await?;
    let config = LoaderConfig {
        system_id: id.clone(),
        scripts,
        styles,
        trusted_sites,
        apps,
        updated_at: now,
        updated_by: actor.user.email.clone(),
    };
    svc.store.put_loader_config(&account, &config).await?;
    let detail = format!(
        "{} script(s), {} style sheet(s), trusted sites: {}; apps: {}",
        config.scripts.len(),
        config.styles.len(),
        if config.trusted_sites.is_empty() { "none".to_string() } else { config.trusted_sites.join(", ") },
        config.apps.join(", ")
    );
    let action = if before.is_some() { "loader.settings_changed" } else { "loader.turned_on" };
    record(svc, actor.audit(now, action, "system", Some(id.as_str()), Some(&system.name), Some(detail))).await;
    if before.as_ref().is_some_and(|b| {
        (&b.scripts, &b.styles, &b.trusted_sites, &b.apps)
            != (&config.scripts, &config.styles, &config.trusted_sites, &config.apps)
    }) {
        announce_outdated(svc, actor, &system).await;
    }
    Ok(config)
}

/// `loader.outdated` (#18) when orgs hold an earlier version of the settings just saved: they
/// run it until the next deployment with the loader. Its failure is logged, not the change's.
async fn announce_outdated(svc: &Service, actor: &Actor, system: &domain::System) {
    use store::NotificationStore;
    let outdated = match org_states(svc, actor, system.id.as_str()).await {
        Ok(states) => states.into_iter().filter(|o| o.state == OrgLoaderState::Outdated).collect::<Vec<_>>(),
        Err(e) => {
            tracing::error!(system = %system.id, error = %e, "could not tell which orgs run an earlier loader");
            return;
        }
    };
    if outdated.is_empty() {
        return;
    }
    let data = serde_json::json!({
        "system": {"id": system.id.as_str(), "name": system.name},
        "outdated": outdated.len(),
        "orgs": outdated.iter().take(100).map(|o| serde_json::json!({
            "connection_id": o.connection_id,
            "connection": o.connection,
            "environment_id": o.environment_id,
            "environment": o.environment,
            "detail": o.detail,
        })).collect::<Vec<_>>(),
        "changed_by": actor.user.email,
    });
    let Ok(account) = actor.account() else { return };
    let event = domain::Event::new(account, domain::EventType::LoaderOutdated, svc.now_ms(), data);
    if let Err(e) = svc.store.record_event(&event).await {
        tracing::error!(system = %system.id, error = %e, "could not record a loader.outdated event");
    }
}

/// Turns a system's loader off (its settings gone). What orgs hold stays until removed there.
pub async fn turn_off(svc: &Service, actor: &Actor, system: &str) -> Result<(), ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let id = system_id(system)?;
    let system = svc.store.system(&account, &id).await?;
    svc.store.delete_loader_config(&account, &id).await?;
    record(svc, actor.audit(svc.now_ms(), "loader.turned_off", "system", Some(id.as_str()), Some(&system.name), None))
        .await;
    Ok(())
}

/// Where one org stands with the system's loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgLoaderState {
    /// The current settings' version is in the org.
    InPlace,
    /// An earlier version is in the org: the next deployment with the loader updates it.
    Outdated,
    /// The last deployment with the loader failed there.
    Failed,
    /// No deployment with the loader reached this org yet.
    Missing,
    /// The system's loader is off, and this org still holds what a deployment put there.
    LeftBehind,
}

impl OrgLoaderState {
    pub fn label(self) -> &'static str {
        match self {
            OrgLoaderState::InPlace => "In place",
            OrgLoaderState::Outdated => "Outdated",
            OrgLoaderState::Failed => "Failed",
            OrgLoaderState::Missing => "Missing",
            OrgLoaderState::LeftBehind => "Left behind",
        }
    }
}

/// One org (a connection publishing for an environment of the system) and its loader.
#[derive(Debug, Clone)]
pub struct OrgLoader {
    pub environment_id: String,
    pub environment: String,
    pub connection_id: String,
    pub connection: String,
    pub state: OrgLoaderState,
    /// The version there, or why it failed.
    pub detail: String,
    pub updated_at: Option<domain::Millis>,
    pub by: Option<String>,
    pub deployment_id: Option<String>,
}

/// Every org the system publishes to, per environment, with what its last deployment with the
/// loader left there and whether that is the current settings' version. When the system's
/// loader is off: the orgs that still hold it (to remove it from them).
pub async fn org_states(svc: &Service, actor: &Actor, system: &str) -> Result<Vec<OrgLoader>, ServiceError> {
    use store::DeploymentStore;
    let account = actor.account()?.clone();
    let id = system_id(system)?;
    svc.store.system(&account, &id).await?;
    let states = svc.store.loader_states(&account, &id).await?;
    let Some(config) = svc.store.loader_config(&account, &id).await? else {
        return left_behind(svc, &account, &states).await;
    };
    let mut out = Vec::new();
    for env in svc.store.environments(&account).await? {
        for connection in svc.store.targets_for(&account, &id, &env.id).await? {
            let last = states.iter().find(|s| s.environment_id == env.id && s.connection_id == connection.id);
            let (state, detail) = match last {
                None => (OrgLoaderState::Missing, "no deployment with the loader has reached this org".to_string()),
                Some(s) if s.loader.as_deref() == Some("removed") => {
                    (OrgLoaderState::Missing, "removed from the org".to_string())
                }
                Some(s) if s.loader.is_none() => {
                    (OrgLoaderState::Failed, s.error.clone().unwrap_or_else(|| "failed".into()))
                }
                Some(s) => {
                    let there = s.loader.as_deref().and_then(|l| l.split_whitespace().last()).unwrap_or_default();
                    let current = domain::ResourceName::parse(&s.resource_name).ok().and_then(|resource| {
                        let settings = publish::loader::LoaderSettings::from_config(resource, &config);
                        publish::loader::LoaderPackage::build(&format!("{id}/{}", env.id), &settings).ok()
                    });
                    match current {
                        Some(p) if p.version == there => (OrgLoaderState::InPlace, format!("version {there}")),
                        _ => (OrgLoaderState::Outdated, format!("version {there}; the settings have changed since")),
                    }
                }
            };
            out.push(OrgLoader {
                environment_id: env.id.to_string(),
                environment: env.name.clone(),
                connection_id: connection.id.to_string(),
                connection: crate::connections::label(&connection),
                state,
                detail,
                updated_at: last.map(|s| s.updated_at),
                by: last.map(|s| s.by.clone()),
                deployment_id: last.map(|s| s.deployment_id.to_string()),
            });
        }
    }
    Ok(out)
}

/// The orgs still holding a loader that was turned off.
async fn left_behind(
    svc: &Service,
    account: &domain::AccountId,
    states: &[domain::LoaderState],
) -> Result<Vec<OrgLoader>, ServiceError> {
    use store::ConnectionStore;
    let environments = svc.store.environments(account).await?;
    let mut out = Vec::new();
    for s in states.iter().filter(|s| s.held.as_deref().is_some_and(|l| l != "removed")) {
        let Ok(connection) = svc.store.get(account, &s.connection_id).await else { continue };
        let there = s.held.as_deref().and_then(|l| l.split_whitespace().last()).unwrap_or_default();
        out.push(OrgLoader {
            environment_id: s.environment_id.to_string(),
            environment: environments
                .iter()
                .find(|e| e.id == s.environment_id)
                .map(|e| e.name.clone())
                .unwrap_or_else(|| s.environment_id.to_string()),
            connection_id: connection.id.to_string(),
            connection: crate::connections::label(&connection),
            state: OrgLoaderState::LeftBehind,
            detail: format!("version {there}; the loader is off — remove it from this org"),
            updated_at: Some(s.updated_at),
            by: Some(s.by.clone()),
            deployment_id: Some(s.deployment_id.to_string()),
        });
    }
    Ok(out)
}

/// Deploys the loader to every org of a system × environment without a new release: the
/// environment's latest release (of the last deployment that finished) is published again
/// with the loader — its resource is unchanged in each org, so only the loader step works.
/// The Loader tab's *Deploy the loader*, and the API. Publishers.
pub async fn deploy(
    svc: &Service,
    actor: &Actor,
    system: &str,
    env: &str,
) -> Result<crate::deployments::Started, ServiceError> {
    use store::DeploymentStore;
    let account = actor.require_publisher()?.clone();
    let (system_id, env_id) = crate::deployments::slot(system, env)?;
    svc.store.system(&account, &system_id).await?;
    svc.store.environment(&account, &env_id).await?;
    let Some(config) = svc.store.loader_config(&account, &system_id).await? else {
        return Err(ServiceError::invalid("system_id", "this system has no loader: set its loader's scripts first"));
    };
    let recent = svc.store.deployments(&account, Some(&system_id), Some(&env_id), None, 20).await?;
    if recent.iter().any(|(d, _)| d.status == domain::DeploymentStatus::Running) {
        return Err(ServiceError::invalid(
            "environment_id",
            "a deployment to this environment is running: it deploys the loader if it was asked to; try again when it ends",
        ));
    }
    let Some((last, _)) = recent.first() else {
        return Err(ServiceError::invalid(
            "environment_id",
            "nothing has been published to this environment yet: publish a release with the loader",
        ));
    };
    // Only a release every org took: publishing a failed one again would change resources.
    if last.status != domain::DeploymentStatus::Succeeded {
        return Err(ServiceError::invalid(
            "environment_id",
            format!(
                "the environment's latest deployment ({}) did not succeed in every org: publish a release again, with the loader",
                last.id
            ),
        ));
    }
    let last = last.clone();
    let bundle = svc.store.bundle(&account, &last.bundle_id).await?;
    let settings = publish::loader::LoaderSettings::from_config(last.resource_name.clone(), &config);
    settings.check_files(&bundle.files).map_err(|e| {
        ServiceError::invalid("system_id", format!("{e} (the environment's latest release): the loader loads it"))
    })?;
    crate::deployments::start(
        svc,
        actor,
        &account,
        &system_id,
        &env_id,
        last.resource_name.clone(),
        last.cache_control,
        &bundle,
        crate::deployments::How { with_loader: true, ..Default::default() },
    )
    .await
}

/// Removes the system's loader from one org it publishes to (a destructive deploy of every
/// component any version of it may have left): offered when a binding or a connection goes,
/// and on the Loader tab. Admins and owners.
pub async fn remove_from_org(
    svc: &Service,
    actor: &Actor,
    system: &str,
    env: &str,
    connection: &str,
) -> Result<String, ServiceError> {
    use publish::loader::{LoaderFailure, LoaderOutcome, LoaderPackage, remove_loader};
    use store::ConnectionStore;
    let account = actor.require_connection_admin()?.clone();
    let (system_id, env_id) = crate::deployments::slot(system, env)?;
    let system = svc.store.system(&account, &system_id).await?;
    svc.store.environment(&account, &env_id).await?;
    let connection_id = domain::ConnectionId::parse(connection).map_err(|_| ServiceError::NotFound)?;
    let connection = svc.store.get(&account, &connection_id).await?;
    // The components' names depend on the system × environment only.
    let package = LoaderPackage::names(&format!("{system_id}/{env_id}"));
    let polling = svc.loader_polling;
    let outcome = svc
        .keeper
        .with_session_now(&connection, |session| {
            let (client, package) = (svc.client.clone(), package.clone());
            async move {
                match remove_loader(&client, &session, &package, polling).await {
                    Ok(outcome) => Ok(Ok(outcome)),
                    Err(LoaderFailure::Salesforce(e)) => Err(e),
                    Err(other) => Ok(Err(other)),
                }
            }
        })
        .await;
    let words = match outcome {
        Ok(Ok(LoaderOutcome::Removed { deploy_id })) => format!("removed by deploy {deploy_id}"),
        Ok(Ok(other)) => format!("{other:?}"),
        Ok(Err(failure)) => return Err(ServiceError::invalid("connection_id", failure.to_string())),
        Err(e) => return Err(ServiceError::invalid("connection_id", format!("Salesforce could not be asked: {e}"))),
    };
    svc.store
        .mark_loader_removed(&account, &system_id, &env_id, &connection_id, svc.now_ms(), &actor.user.email)
        .await?;
    let detail = format!("{} — {words}", crate::connections::label(&connection));
    record(
        svc,
        actor.audit(
            svc.now_ms(),
            "loader.removed",
            "system",
            Some(system_id.as_str()),
            Some(&system.name),
            Some(detail),
        ),
    )
    .await;
    Ok(words)
}
