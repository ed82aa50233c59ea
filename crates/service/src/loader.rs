//! A system's loader settings (issue #15, B7): what the loader loads from each environment's
//! published static resource on every Lightning page, and the origins its player calls back
//! to. Admins and owners change them; anyone in the account reads them.

use domain::LoaderConfig;
use store::CatalogStore;

use crate::audit::record;
use crate::catalog::system_id;
use crate::{Actor, Service, ServiceError};

/// New settings, as a person or a pipeline sends them.
#[derive(Debug, Clone, Default)]
pub struct LoaderInput {
    pub scripts: Vec<String>,
    pub styles: Vec<String>,
    pub trusted_sites: Vec<String>,
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
    let faults = publish::loader::faults(&scripts, &styles, &trusted_sites);
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
        updated_at: now,
        updated_by: actor.user.email.clone(),
    };
    svc.store.put_loader_config(&account, &config).await?;
    let detail = format!(
        "{} script(s), {} style sheet(s), trusted sites: {}",
        config.scripts.len(),
        config.styles.len(),
        if config.trusted_sites.is_empty() { "none".to_string() } else { config.trusted_sites.join(", ") }
    );
    let action = if before.is_some() { "loader.settings_changed" } else { "loader.turned_on" };
    record(svc, actor.audit(now, action, "system", Some(id.as_str()), Some(&system.name), Some(detail))).await;
    Ok(config)
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
