//! People who sign in to the Admin Center and their roles.

use crate::{AccountId, UserId};

/// A user's role in their account; the operator is instance-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
    Owner,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Owner => "owner",
            Role::Operator => "operator",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "viewer" => Role::Viewer,
            "editor" => Role::Editor,
            "admin" => Role::Admin,
            "owner" => Role::Owner,
            "operator" => Role::Operator,
            _ => return None,
        })
    }
    /// Admins and owners manage connections (F10, F11).
    pub fn manages_connections(self) -> bool {
        matches!(self, Role::Admin | Role::Owner)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub account_id: Option<AccountId>,
    pub email: String,
    pub name: String,
    pub role: Role,
}
