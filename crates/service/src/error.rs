//! The one error every action returns: what went wrong in the product's terms, no HTTP in it.
//! The API and the Admin Center each render it with one `match`.

use salesforce::checks::Report;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No valid credentials: a wrong password, token or session.
    #[error("sign in first: send an API token as `Authorization: Bearer <token>`, or sign in at /api/v1/session")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    /// Missing, or another account's (the same answer, so ids cannot be probed).
    #[error("not found")]
    NotFound,
    /// Legacy connectors (F4) are off for the account until the operator enables them.
    #[error("Connectors are not enabled for this account; ask your Lightbridge operator to enable them")]
    ConnectorsDisabled,
    /// Every wrong field at once: (field, message).
    #[error("the request has invalid fields")]
    Invalid(Vec<(String, String)>),
    /// The change clashes with what exists; `field` names the input at fault when one is.
    #[error("{message}")]
    Conflict { field: Option<&'static str>, message: String },
    /// The connection check failed; the report carries every step's result.
    #[error("the connection check failed: {0}")]
    CheckFailed(String, Box<Report>),
    /// Too many failed sign-ins: try again after this many seconds.
    #[error("too many failed sign-ins: try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    /// Single sign-on did not work: what the provider or its answer got wrong, in words for
    /// the person signing in.
    #[error("single sign-on failed: {0}")]
    SsoFailed(String),
    /// The person's account signs in only through its single sign-on.
    #[error("your account signs in with single sign-on: use \"Sign in with single sign-on\" on the sign-in page")]
    SsoRequired,
    /// A failure of ours (database, randomness, a stored value that does not parse): logged
    /// with its cause where it is made, shown to people only as "internal error".
    #[error("internal error")]
    Internal,
}

impl ServiceError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![(field.to_string(), message.into())])
    }

    /// A conflict that is no one field's fault.
    pub fn conflict(message: impl Into<String>) -> Self {
        ServiceError::Conflict { field: None, message: message.into() }
    }

    /// An internal error whose cause is logged here, once.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{context}");
        ServiceError::Internal
    }

    /// A name clash the store reported, put on the input field it concerns.
    pub fn on_field(self, field: &'static str) -> Self {
        match self {
            ServiceError::Conflict { message, .. } => ServiceError::Conflict { field: Some(field), message },
            other => other,
        }
    }
}

impl From<store::StoreError> for ServiceError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::NotFound => ServiceError::NotFound,
            store::StoreError::Conflict(m) => ServiceError::Conflict { field: None, message: m },
            other => ServiceError::internal("store failure", other),
        }
    }
}

impl From<domain::DomainError> for ServiceError {
    fn from(e: domain::DomainError) -> Self {
        match e {
            domain::DomainError::Invalid { field, message } => ServiceError::invalid(field, message),
            domain::DomainError::NotFound => ServiceError::NotFound,
            domain::DomainError::Conflict(m) => ServiceError::conflict(m),
        }
    }
}
