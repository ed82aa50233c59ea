//! Accounts, and what content is published for: systems and their environments (product.md §2).

use serde::{Deserialize, Serialize};

use crate::{AccountId, DomainError, EnvironmentId, Millis, SystemId, names};

/// A tenant. `connectors_enabled` is the operator's switch for legacy connectors (F4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub connectors_enabled: bool,
    /// Every password user of the account signs in with a second factor (the owner's rule).
    #[serde(default)]
    pub two_factor_required: bool,
    pub created_at: Millis,
}

/// An application the content is built for, e.g. "Sales Cloud (Lightning)".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct System {
    pub id: SystemId,
    pub account_id: AccountId,
    pub name: String,
    pub created_at: Millis,
}

/// A content environment of the account's systems. Every account starts with Production, Test
/// and Sandbox (built in, cannot be removed) and may add more. Not the Salesforce org type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub id: EnvironmentId,
    pub account_id: AccountId,
    pub name: String,
    pub built_in: bool,
    /// Display order: built-in ones first, then by creation.
    pub position: i64,
}

/// A system's loader settings (issue #15, B7): what the loader loads from each environment's
/// published static resource on every Lightning page, and where its player may call back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderConfig {
    pub system_id: SystemId,
    /// Scripts inside the resource, loaded in this order.
    pub scripts: Vec<String>,
    /// Style sheets inside the resource.
    pub styles: Vec<String>,
    /// Origins (`https://host[:port]`), each deployed as a CSP Trusted Site.
    pub trusted_sites: Vec<String>,
    /// The Lightning apps whose utility bars hold the loader (`standard__LightningSales`,
    /// `MyApp`): it runs on their pages.
    pub apps: Vec<String>,
    pub updated_at: Millis,
    pub updated_by: String,
}

/// What the last deployment with the loader left in one org (issue #15): per system ×
/// environment × connection, from that deployment's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderState {
    pub environment_id: EnvironmentId,
    pub connection_id: crate::ConnectionId,
    pub deployment_id: crate::DeploymentId,
    /// The resource the loader loads there.
    pub resource_name: String,
    /// `deployed <version>` or `unchanged <version>` when it worked.
    pub loader: Option<String>,
    /// What the org holds as far as Lightbridge knows: the latest of its targets that did
    /// something with the loader (`deployed …`, `unchanged …`, `removed`), even when a later
    /// one failed.
    pub held: Option<String>,
    /// Why the target failed, when it did.
    pub error: Option<String>,
    pub updated_at: Millis,
    /// Who started that deployment.
    pub by: String,
}

/// The environments every account has from the start, in display order.
pub const BUILT_IN_ENVIRONMENTS: [&str; 3] = ["Production", "Test", "Sandbox"];

/// System and environment names: 1–80 characters, trimmed, unique per account (the store
/// checks uniqueness, case-insensitively).
pub fn system_name(text: &str) -> Result<String, DomainError> {
    names::label("name", "a system", text, 80)
}

pub fn environment_name(text: &str) -> Result<String, DomainError> {
    names::label("name", "an environment", text, 80)
}

pub fn account_name(text: &str) -> Result<String, DomainError> {
    names::label("name", "an account", text, 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_say_what_they_name() {
        assert_eq!(system_name("  Sales Cloud (Lightning) ").expect("ok"), "Sales Cloud (Lightning)");
        let err = environment_name(" ").expect_err("empty").to_string();
        assert!(err.contains("an environment needs a name"), "{err}");
        assert!(system_name(&"x".repeat(81)).is_err());
        assert!(account_name(&"x".repeat(120)).is_ok());
    }
}
