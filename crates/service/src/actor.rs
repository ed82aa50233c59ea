//! Who does an action: a user through an API token, a browser session or the CLI, with the
//! role checks every action starts with and the audit entry it ends with.

use domain::{AccountId, ActorKind, AuditEntry, Role, User, UserId};

use crate::ServiceError;

/// The authenticated actor.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    /// The client's address, for the audit log.
    pub remote_addr: Option<String>,
    /// An API token, a browser session, or the CLI.
    pub via: ActorKind,
}

impl Actor {
    pub fn new(user: User, via: ActorKind, remote_addr: Option<String>) -> Self {
        Actor { user, remote_addr, via }
    }

    /// The caller's account; the instance-wide operator has none for account routes.
    pub fn account(&self) -> Result<&AccountId, ServiceError> {
        self.user
            .account_id
            .as_ref()
            .ok_or(ServiceError::Forbidden("this route acts within an account; the operator has none"))
    }

    /// Admins and owners may change connections; editors and viewers may only look.
    pub fn require_connection_admin(&self) -> Result<&AccountId, ServiceError> {
        let account = self.account()?;
        if !self.user.role.manages_connections() {
            return Err(ServiceError::Forbidden("only account admins and owners can change Salesforce connections"));
        }
        Ok(account)
    }

    /// Admins and owners read the audit log (the message says so, not "change connections").
    pub fn require_audit_reader(&self) -> Result<&AccountId, ServiceError> {
        let account = self.account()?;
        if !self.user.role.manages_connections() {
            return Err(ServiceError::Forbidden("only account admins and owners can read the audit log"));
        }
        Ok(account)
    }

    /// Admins and owners see the account's people (owners change them).
    pub fn require_people_reader(&self) -> Result<&AccountId, ServiceError> {
        let account = self.account()?;
        if !self.user.role.manages_connections() {
            return Err(ServiceError::Forbidden("only account admins and owners can see the account's people"));
        }
        Ok(account)
    }

    /// Editors, admins and owners publish (content authors and their CI pipelines).
    pub fn require_publisher(&self) -> Result<&AccountId, ServiceError> {
        let account = self.account()?;
        if !matches!(self.user.role, Role::Editor | Role::Admin | Role::Owner) {
            return Err(ServiceError::Forbidden("viewers cannot publish; an editor, admin or owner can"));
        }
        Ok(account)
    }

    /// Owners manage the account's users.
    pub fn require_owner(&self) -> Result<&AccountId, ServiceError> {
        let account = self.account()?;
        if self.user.role != Role::Owner {
            return Err(ServiceError::Forbidden("only account owners can manage users"));
        }
        Ok(account)
    }

    /// The instance-wide operator (enables Connectors per account, F4).
    pub fn require_operator(&self) -> Result<(), ServiceError> {
        if self.user.role != Role::Operator {
            return Err(ServiceError::Forbidden("only the Lightbridge operator can do this"));
        }
        Ok(())
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    /// The CLI, run by the machine's operator: instance-wide, named `cli:$USER` in the audit log.
    pub fn cli() -> Self {
        let name = std::env::var("USER").map(|u| format!("cli:{u}")).unwrap_or_else(|_| "cli".into());
        let user =
            User { id: UserId::generate(), account_id: None, email: name, name: String::new(), role: Role::Operator };
        Actor { user, remote_addr: None, via: ActorKind::Cli }
    }

    /// An audit entry for something this actor did in their account.
    pub fn audit(
        &self,
        now: i64,
        action: &str,
        target_kind: &str,
        target_id: Option<&str>,
        label: Option<&str>,
        detail: Option<String>,
    ) -> AuditEntry {
        self.audit_for(self.user.account_id.clone(), now, action, target_kind, target_id, label, detail)
    }

    /// An audit entry in `account`'s log (the operator acting on an account).
    #[allow(clippy::too_many_arguments)]
    pub fn audit_for(
        &self,
        account: Option<AccountId>,
        now: i64,
        action: &str,
        target_kind: &str,
        target_id: Option<&str>,
        label: Option<&str>,
        detail: Option<String>,
    ) -> AuditEntry {
        AuditEntry {
            account_id: account,
            at: now,
            actor: self.user.email.clone(),
            actor_kind: self.via,
            action: action.to_string(),
            target_kind: target_kind.to_string(),
            target_id: target_id.map(str::to_string),
            target_label: label.map(str::to_string),
            detail,
            remote_addr: self.remote_addr.clone(),
        }
    }
}
