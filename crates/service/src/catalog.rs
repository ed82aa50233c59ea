//! Systems and environments (F4): what an account publishes for, and where.

use domain::{Environment, EnvironmentId, System, SystemId};
use store::CatalogStore;

use crate::audit::record;
use crate::{Actor, Service, ServiceError};

pub fn system_id(id: &str) -> Result<SystemId, ServiceError> {
    SystemId::parse(id).map_err(|_| ServiceError::NotFound)
}

pub fn environment_id(id: &str) -> Result<EnvironmentId, ServiceError> {
    EnvironmentId::parse(id).map_err(|_| ServiceError::NotFound)
}

/// Adds a system (admins and owners).
pub async fn create_system(svc: &Service, actor: &Actor, name: &str) -> Result<System, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let name = domain::system_name(name)?;
    let now = svc.now_ms();
    let system = System { id: SystemId::generate(), account_id: account, name, created_at: now };
    svc.store.insert_system(&system).await.map_err(|e| ServiceError::from(e).on_field("name"))?;
    record(svc, actor.audit(now, "system.created", "system", Some(system.id.as_str()), Some(&system.name), None)).await;
    Ok(system)
}

/// Renames a system.
pub async fn rename_system(svc: &Service, actor: &Actor, id: &str, name: &str) -> Result<System, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let id = system_id(id)?;
    let before = svc.store.system(&account, &id).await?;
    let name = domain::system_name(name)?;
    svc.store.rename_system(&account, &id, &name).await.map_err(|e| ServiceError::from(e).on_field("name"))?;
    let detail = format!("renamed from {:?}", before.name);
    record(svc, actor.audit(svc.now_ms(), "system.renamed", "system", Some(id.as_str()), Some(&name), Some(detail)))
        .await;
    Ok(System { name, ..before })
}

/// Removes a system; refused while legacy connectors are bound to it.
pub async fn delete_system(svc: &Service, actor: &Actor, id: &str) -> Result<System, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let id = system_id(id)?;
    let system = svc.store.system(&account, &id).await?;
    svc.store.delete_system(&account, &id).await?;
    record(svc, actor.audit(svc.now_ms(), "system.deleted", "system", Some(id.as_str()), Some(&system.name), None))
        .await;
    Ok(system)
}

/// Adds an environment after the existing ones.
pub async fn create_environment(svc: &Service, actor: &Actor, name: &str) -> Result<Environment, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let name = domain::environment_name(name)?;
    let env = svc
        .store
        .insert_environment(&account, &EnvironmentId::generate(), &name)
        .await
        .map_err(|e| ServiceError::from(e).on_field("name"))?;
    let entry =
        actor.audit(svc.now_ms(), "environment.created", "environment", Some(env.id.as_str()), Some(&env.name), None);
    record(svc, entry).await;
    Ok(env)
}

/// Removes an environment the account added; built-in ones and ones with connectors stay.
pub async fn delete_environment(svc: &Service, actor: &Actor, id: &str) -> Result<Environment, ServiceError> {
    let account = actor.require_connection_admin()?.clone();
    let id = environment_id(id)?;
    let env = svc.store.environment(&account, &id).await?;
    svc.store.delete_environment(&account, &id).await?;
    let entry =
        actor.audit(svc.now_ms(), "environment.deleted", "environment", Some(id.as_str()), Some(&env.name), None);
    record(svc, entry).await;
    Ok(env)
}
