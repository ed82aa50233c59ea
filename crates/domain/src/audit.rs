//! B4: the audit log's entries.

use serde::{Deserialize, Serialize};

use crate::{AccountId, Millis};

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person signed in to the Admin Center.
    User,
    /// Automation with an API token (the token's user is the actor).
    ApiToken,
    /// An operator at the command line.
    Cli,
    /// Lightbridge itself (health checks, renewals).
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiToken => "api_token",
            ActorKind::Cli => "cli",
            ActorKind::System => "system",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => ActorKind::User,
            "api_token" => ActorKind::ApiToken,
            "cli" => ActorKind::Cli,
            "system" => ActorKind::System,
            _ => return None,
        })
    }
}

/// One thing that happened. `action` is dotted and stable (`connection.created`,
/// `connection.deleted`, `connection.tested`, `user.created`, `api_token.created`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub account_id: Option<AccountId>,
    pub at: Millis,
    /// The actor's email (or `lightbridge` for the system).
    pub actor: String,
    pub actor_kind: ActorKind,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<String>,
    /// A name a person recognizes (connection name, user email).
    pub target_label: Option<String>,
    /// What changed, in words; never a secret.
    pub detail: Option<String>,
    pub remote_addr: Option<String>,
}
