//! Accounts, the operator's: create them, and switch legacy Connectors (F4) on or off.

use domain::{Account, AccountId};
use store::CatalogStore;

use crate::audit::record;
use crate::{Actor, Service, ServiceError};

/// Every account (the operator only).
pub async fn list(svc: &Service, actor: &Actor) -> Result<Vec<Account>, ServiceError> {
    actor.require_operator()?;
    Ok(svc.store.accounts().await?)
}

/// An account as the operator's page shows it.
#[derive(Debug, Clone)]
pub struct Overview {
    pub account: Account,
    pub connections: u64,
    pub users: usize,
    /// When someone last signed in to it (from its audit log).
    pub last_sign_in: Option<domain::Millis>,
}

/// Every account with its connection and user counts and its last sign-in (the operator
/// only). Three reads per account: fine for the operator's page; a very large installation
/// would want one aggregate query.
pub async fn overview(svc: &Service, actor: &Actor) -> Result<Vec<Overview>, ServiceError> {
    use store::{AccessStore, AuditStore, ConnectionStore};
    actor.require_operator()?;
    let mut out = Vec::new();
    for account in svc.store.accounts().await? {
        let connections =
            svc.store.list(&account.id, &store::ListQuery { limit: 1, ..Default::default() }).await?.total;
        let users = svc.store.users(&account.id).await?.len();
        let query =
            store::AuditQuery { action: Some("session.signed_in".into()), target_id: None, before: None, limit: 1 };
        let last_sign_in = svc.store.audit(&account.id, &query).await?.first().map(|(_, e)| e.at);
        out.push(Overview { account, connections, users, last_sign_in });
    }
    Ok(out)
}

/// Creates an account (the operator only); its owner is added next with [`crate::users::create_user`].
pub async fn create(svc: &Service, actor: &Actor, name: &str) -> Result<AccountId, ServiceError> {
    actor.require_operator()?;
    let name = domain::account_name(name)?;
    let id = AccountId::generate();
    let now = svc.now_ms();
    svc.store.create_account(&id, &name, now).await?;
    record(
        svc,
        actor.audit_for(Some(id.clone()), now, "account.created", "account", Some(id.as_str()), Some(&name), None),
    )
    .await;
    Ok(id)
}

/// Turns legacy Connectors (F4) on or off for an account (the operator only). Turning them off
/// hides the Connectors tab's actions; existing connectors stay and keep working.
pub async fn set_connectors(svc: &Service, actor: &Actor, id: &str, enabled: bool) -> Result<Account, ServiceError> {
    actor.require_operator()?;
    let id = AccountId::parse(id).map_err(|_| ServiceError::NotFound)?;
    svc.store.set_connectors_enabled(&id, enabled).await?;
    let account = svc.store.account(&id).await?;
    let action = if enabled { "account.connectors_enabled" } else { "account.connectors_disabled" };
    // The account's own log shows what the operator changed for it.
    let entry = actor.audit_for(
        Some(id.clone()),
        svc.now_ms(),
        action,
        "account",
        Some(id.as_str()),
        Some(&account.name),
        None,
    );
    record(svc, entry).await;
    Ok(account)
}
