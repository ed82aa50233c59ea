//! Accounts, systems and environments (product.md §2).

use domain::{
    Account, AccountId, ConnectionId, Environment, EnvironmentId, LoaderConfig, LoaderState, Millis, System, SystemId,
};

use crate::StoreError;

store_trait! {
    pub trait CatalogStore {
        /// Creates an account with its built-in environments (Production, Test, Sandbox).
        fn create_account(&self, id: &AccountId, name: &str, now: Millis) -> Result<(), StoreError>;
        fn account(&self, id: &AccountId) -> Result<Account, StoreError>;
        /// Every account, oldest first (the operator's view).
        fn accounts(&self) -> Result<Vec<Account>, StoreError>;
        /// The operator's switch for legacy connectors (F4).
        fn set_connectors_enabled(&self, id: &AccountId, enabled: bool) -> Result<(), StoreError>;
        /// A name already used in the account (any case) is a `Conflict`.
        fn insert_system(&self, system: &System) -> Result<(), StoreError>;
        fn systems(&self, account: &AccountId) -> Result<Vec<System>, StoreError>;
        fn system(&self, account: &AccountId, id: &SystemId) -> Result<System, StoreError>;
        fn rename_system(&self, account: &AccountId, id: &SystemId, name: &str) -> Result<(), StoreError>;
        /// Refused (`Conflict`) while legacy connectors are bound to the system.
        fn delete_system(&self, account: &AccountId, id: &SystemId) -> Result<(), StoreError>;
        /// Adds an environment after the existing ones; a name already used is a `Conflict`.
        fn insert_environment(&self, account: &AccountId, id: &EnvironmentId, name: &str) -> Result<Environment, StoreError>;
        /// The account's environments in display order.
        fn environments(&self, account: &AccountId) -> Result<Vec<Environment>, StoreError>;
        fn environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<Environment, StoreError>;
        /// Refused (`Conflict`) for built-in environments and while legacy connectors use it.
        fn delete_environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<(), StoreError>;
        /// A system's loader settings (issue #15), if it has any.
        fn loader_config(&self, account: &AccountId, system: &SystemId) -> Result<Option<LoaderConfig>, StoreError>;
        /// Sets a system's loader settings; another account's system is `NotFound`.
        fn put_loader_config(&self, account: &AccountId, config: &LoaderConfig) -> Result<(), StoreError>;
        /// Turns a system's loader off (its settings gone); `NotFound` when it had none.
        fn delete_loader_config(&self, account: &AccountId, system: &SystemId) -> Result<(), StoreError>;
        /// What the last deployment with the loader left in each org of a system, per
        /// environment and connection.
        fn loader_states(&self, account: &AccountId, system: &SystemId) -> Result<Vec<LoaderState>, StoreError>;
        /// The system × environment slots a connection publishes for whose system deploys the
        /// loader (its bindings, or its legacy connector's slot).
        fn loader_slots(&self, account: &AccountId, connection: &ConnectionId) -> Result<Vec<(SystemId, EnvironmentId)>, StoreError>;
        /// Records that the loader was removed from a connection's org (beside the deployments'
        /// history, which stays as it was): its state reads `removed` until a later deployment
        /// with the loader reaches it.
        fn mark_loader_removed(&self, account: &AccountId, system: &SystemId, environment: &EnvironmentId, connection: &ConnectionId, now: Millis, by: &str) -> Result<(), StoreError>;
    }
}
