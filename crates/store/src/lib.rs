//! Storage: one trait per capability, implemented on SQLite (embedded, the default) and, with
//! issue #6, PostgreSQL — the same conformance suite runs on both. SQL lives here and nowhere
//! else; queries are checked at run time (`query_as` + `FromRow`) so building needs no
//! database. Must not import axum.

mod access;
mod any;
mod catalog;
mod connections;
mod deployments;
mod error;
mod postgres;
mod postgres_catalog;
mod postgres_deployments;
mod rows;
mod shared;
mod sqlite;
mod sqlite_catalog;
mod sqlite_deployments;
mod tx;

pub use access::{AccessStore, ApiTokenInfo, Attempt, AuditQuery, AuditStore, Throttle, TokenOwner};
pub use any::Store;
pub use catalog::CatalogStore;
pub use connections::{
    ConnectionSecrets, ConnectionStore, ListQuery, NewSecrets, Page, Rotation, SortKey, TableRow, TokenSet,
};
pub use deployments::{Claimed, DeploymentStore, Finish, TargetCounts, TargetOutcome};
pub use error::StoreError;
pub use postgres::PgStore;
pub use sqlite::{SqliteStore, create_private_dir};
pub use tx::Tx;
