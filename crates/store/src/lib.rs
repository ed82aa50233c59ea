//! Storage: one trait per capability, implemented on SQLite (embedded, the default) and, with
//! issue #6, PostgreSQL — the same conformance suite runs on both. SQL lives here and nowhere
//! else; queries are checked at run time (`query_as` + `FromRow`) so building needs no
//! database. Must not import axum.

/// Declares a store trait and its pass-through on [`Store`] from one list of signatures: a
/// method written here costs its signature line and one body in each backend (or one in
/// `shared.rs`). Each method returns `impl Future<Output = …> + Send`. `provided` holds
/// methods with a default body; `by_hand` methods the macro cannot pass through (streams
/// borrowing their arguments), with their `Store` bodies.
macro_rules! store_trait {
    (
        $(#[$trait_meta:meta])*
        pub trait $trait:ident {
            $(
                $(#[$meta:meta])*
                fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
            )*
        }
        $(provided { $($provided:tt)* })?
        $(by_hand { trait { $($hand_sig:tt)* } for Store { $($hand_body:tt)* } })?
    ) => {
        $(#[$trait_meta])*
        pub trait $trait: Send + Sync {
            $(
                $(#[$meta])*
                fn $name(&self $(, $arg: $ty)*) -> impl ::std::future::Future<Output = $ret> + Send;
            )*
            $($($provided)*)?
            $($($hand_sig)*)?
        }

        impl $trait for crate::Store {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        crate::Store::Sqlite(s) => s.$name($($arg),*).await,
                        crate::Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
            $($($hand_body)*)?
        }
    };
}

mod access;
mod any;
mod catalog;
mod connections;
mod deployments;
mod error;
mod notifications;
mod postgres;
mod postgres_catalog;
mod postgres_deployments;
mod postgres_notifications;
mod rows;
mod search;
mod shared;
mod sqlite;
mod sqlite_catalog;
mod sqlite_deployments;
mod sqlite_notifications;
mod tx;

pub use access::{
    AccessStore, ApiTokenInfo, Attempt, AuditQuery, AuditStore, DomainClaim, Invitation, LiveSession, Membership,
    NewSession, RoutedDomain, SessionInfo, SsoConfig, Throttle, TokenOwner, TwoFactor,
};
pub use any::Store;
pub use catalog::CatalogStore;
pub use connections::{
    AuthKind, ConnectionSecrets, ConnectionStore, Cursor, Filters, ListQuery, NewSecrets, Observation, Page, Rotation,
    SHORT_SEARCH_CAP, SUBSTRING_SEARCH_FROM, SortKey, StatusChange, TableRow, TableRowRef, TokenSet,
};
pub use deployments::{Claimed, DeploymentStore, Finish, TargetCounts, TargetOutcome};
pub use error::StoreError;
pub use notifications::{
    AttemptRecorded, Attempted, ClaimedDelivery, ClaimedMail, EXCERPT_CHARS, MAIL_WINDOW_MS, MailOutcome,
    NotificationStore, RETRY_WINDOW_MS,
};
pub use postgres::PgStore;
pub use sqlite::{SqliteStore, create_private_dir};
pub use tx::Tx;
