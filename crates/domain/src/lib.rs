//! Lightbridge's domain: accounts, users, systems, environments and Salesforce connections,
//! as validated types, and the rules of product.md §4. Ids validate on parse, so a bad path
//! segment never reaches a handler. This crate does no I/O: it must not import axum, sqlx or
//! reqwest.

mod audit;
mod catalog;
mod clock;
mod connection;
mod deployment;
mod error;
mod ids;
mod names;
mod notification;
mod user;

pub use audit::{ActorKind, AuditEntry};
pub use catalog::{
    Account, BUILT_IN_ENVIRONMENTS, Environment, LoaderConfig, LoaderState, System, account_name, environment_name,
    system_name,
};
pub use clock::{Clock, SystemClock, civil_utc, format_rfc3339, format_utc, thousands};
pub use connection::{
    AuthMethod, Connection, ConnectionKind, ConnectionStatus, LoginHost, OrgFacts, OrgType, StatusReason,
};
pub use deployment::{
    Baseline, BundleInfo, CacheControl, Deployment, DeploymentStatus, Drift, Gate, Rollout, Target, TargetStatus, Wave,
};
pub use error::DomainError;
pub use ids::{
    AccountId, BundleId, ConnectionId, DeliveryId, DeploymentId, EnvironmentId, EventId, SystemId, UserId, WebhookId,
};
pub use names::{ConnectionName, ResourceName, label};
pub use notification::{
    Delivery, DeliveryAttempt, DeliveryStatus, Event, EventType, Mail, MailPreferences, MailStatus, Webhook,
    next_digest,
};
pub use user::{Role, User};

/// Milliseconds since the Unix epoch: how Lightbridge stores and compares times.
pub type Millis = i64;
