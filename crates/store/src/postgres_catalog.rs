//! The PostgreSQL implementation of [`CatalogStore`]: the statements are shared (`shared.rs`).

use domain::{
    Account, AccountId, BUILT_IN_ENVIRONMENTS, Environment, EnvironmentId, LoaderConfig, Millis, System, SystemId,
};

use crate::catalog::CatalogStore;
use crate::postgres::{dialect, query, query_scalar};
use crate::rows::{one_or_not_found, unique};
use crate::rows::{row_to_account, row_to_environment, row_to_system};
use crate::{PgStore, StoreError};

impl CatalogStore for PgStore {
    crate::shared::shared_catalog_methods!();
}
