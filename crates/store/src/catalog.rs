//! Accounts, systems and environments (product.md §2).

use std::future::Future;

use domain::{Account, AccountId, Environment, EnvironmentId, Millis, System, SystemId};

use crate::StoreError;

pub trait CatalogStore: Send + Sync {
    /// Creates an account with its built-in environments (Production, Test, Sandbox).
    fn create_account(
        &self,
        id: &AccountId,
        name: &str,
        now: Millis,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn account(&self, id: &AccountId) -> impl Future<Output = Result<Account, StoreError>> + Send;
    /// Every account, oldest first (the operator's view).
    fn accounts(&self) -> impl Future<Output = Result<Vec<Account>, StoreError>> + Send;
    /// The operator's switch for legacy connectors (F4).
    fn set_connectors_enabled(
        &self,
        id: &AccountId,
        enabled: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A name already used in the account (any case) is a `Conflict`.
    fn insert_system(&self, system: &System) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn systems(&self, account: &AccountId) -> impl Future<Output = Result<Vec<System>, StoreError>> + Send;
    fn system(&self, account: &AccountId, id: &SystemId) -> impl Future<Output = Result<System, StoreError>> + Send;
    fn rename_system(
        &self,
        account: &AccountId,
        id: &SystemId,
        name: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Refused (`Conflict`) while legacy connectors are bound to the system.
    fn delete_system(&self, account: &AccountId, id: &SystemId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds an environment after the existing ones; a name already used is a `Conflict`.
    fn insert_environment(
        &self,
        account: &AccountId,
        id: &EnvironmentId,
        name: &str,
    ) -> impl Future<Output = Result<Environment, StoreError>> + Send;
    /// The account's environments in display order.
    fn environments(&self, account: &AccountId) -> impl Future<Output = Result<Vec<Environment>, StoreError>> + Send;
    fn environment(
        &self,
        account: &AccountId,
        id: &EnvironmentId,
    ) -> impl Future<Output = Result<Environment, StoreError>> + Send;
    /// Refused (`Conflict`) for built-in environments and while legacy connectors use it.
    fn delete_environment(
        &self,
        account: &AccountId,
        id: &EnvironmentId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
