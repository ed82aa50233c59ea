//! The API's one error shape: `{"error": {"code", "message", "request_id", "fields"?}}`, with a
//! stable snake_case code per variant and no default-to-400.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sign in first: send an API token as `Authorization: Bearer <token>`, or sign in at /api/v1/session")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    /// Legacy connectors (F4) are off for the account until the operator enables them.
    #[error("Connectors are not enabled for this account; ask your Lightbridge operator to enable them")]
    ConnectorsDisabled,
    #[error("the request has invalid fields")]
    Invalid(Vec<(String, String)>),
    /// `field` names the input at fault, when one is (a page marks it).
    #[error("{message}")]
    Conflict { field: Option<&'static str>, message: String },
    /// The connection check failed; the body carries every step's result.
    #[error("the connection check failed: {0}")]
    CheckFailed(String, Box<service::Report>),
    #[error("Salesforce is not available: {0}")]
    Unavailable(String),
    #[error("Salesforce refused: {0}")]
    Upstream(String),
    /// Sign-in throttling: answered 429 with `Retry-After`.
    #[error("too many failed sign-ins: try again in {0} s")]
    TooManyAttempts(u64),
    /// A sign-in whose email and password match no one (the same answer for an unknown email).
    #[error("that email and password do not match an account")]
    WrongCredentials,
    /// The password was right; the person has two-factor sign-in on and sent no code.
    #[error(
        "this account signs in with a second factor: send the code your authenticator app shows (or a recovery code) as `code`, with the email and password"
    )]
    SecondFactorRequired,
    /// The person's account requires two-factor sign-in and they have not set it up.
    #[error(
        "your account requires two-factor sign-in: set it up first (POST /api/v1/me/two-factor, or on the Your account page)"
    )]
    TwoFactorSetupRequired,
    #[error("single sign-on failed: {0}")]
    SsoFailed(String),
    #[error("your account signs in with single sign-on: use \"Sign in with single sign-on\" on the sign-in page")]
    SsoRequired,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![(field.to_string(), message.into())])
    }

    /// An internal error whose cause is logged here, once.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{context}");
        ApiError::Internal
    }

    /// The HTTP status and the stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::ConnectorsDisabled => (StatusCode::FORBIDDEN, "connectors_disabled"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            ApiError::CheckFailed(..) => (StatusCode::UNPROCESSABLE_ENTITY, "check_failed"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "salesforce_unavailable"),
            ApiError::Upstream(_) => (StatusCode::BAD_GATEWAY, "salesforce_error"),
            ApiError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            ApiError::WrongCredentials => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::SecondFactorRequired => (StatusCode::UNAUTHORIZED, "second_factor_required"),
            ApiError::TwoFactorSetupRequired => (StatusCode::FORBIDDEN, "two_factor_setup_required"),
            ApiError::SsoFailed(_) => (StatusCode::UNAUTHORIZED, "sso_failed"),
            ApiError::SsoRequired => (StatusCode::FORBIDDEN, "sso_required"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The error body every route answers with (documented in the OpenAPI document).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// Every step's result, with `check_failed`.
    #[schema(nullable = false)]
    pub check: Option<service::Report>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and snake_case: `unauthorized`, `forbidden`, `not_found`, `connectors_disabled`,
    /// `invalid`, `conflict`, `check_failed`, `salesforce_unavailable`, `salesforce_error`,
    /// `too_many_attempts`, `second_factor_required`, `two_factor_setup_required`, `sso_failed`, `sso_required`, `internal`.
    pub code: String,
    pub message: String,
    /// Quote it when asking for help: the server's logs carry it too.
    pub request_id: String,
    /// With `invalid`: every wrong field at once.
    #[schema(nullable = false)]
    pub fields: Option<Vec<FieldError>>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let request_id = super::REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
        let mut error = json!({"code": code, "message": self.to_string(), "request_id": request_id});
        if let ApiError::Invalid(fields) = &self {
            error["fields"] = fields.iter().map(|(f, m)| json!({"field": f, "message": m})).collect();
        }
        let mut body = json!({"error": error});
        if let ApiError::CheckFailed(_, report) = &self {
            body["check"] = serde_json::to_value(report).unwrap_or_default();
        }
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyAttempts(secs) = &self
            && let Ok(value) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

impl ApiError {
    /// The message as a sentence for a page: field errors spelled out, one after another.
    pub fn to_string_for_people(&self) -> String {
        match self {
            ApiError::Invalid(fields) => fields.iter().map(|(_, m)| capitalize(m)).collect::<Vec<_>>().join(". ") + ".",
            other => other.to_string(),
        }
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

impl From<service::ServiceError> for ApiError {
    fn from(e: service::ServiceError) -> Self {
        use service::ServiceError as S;
        match e {
            S::Unauthorized => ApiError::Unauthorized,
            S::Forbidden(m) => ApiError::Forbidden(m),
            S::NotFound => ApiError::NotFound,
            S::ConnectorsDisabled => ApiError::ConnectorsDisabled,
            S::Invalid(fields) => ApiError::Invalid(fields),
            S::Conflict { field, message } => ApiError::Conflict { field, message },
            S::CheckFailed(reason, report) => ApiError::CheckFailed(reason, report),
            S::TooManyAttempts { retry_after_secs } => ApiError::TooManyAttempts(retry_after_secs),
            S::SsoFailed(message) => ApiError::SsoFailed(message),
            S::SsoRequired => ApiError::SsoRequired,
            S::Internal => ApiError::Internal,
        }
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        service::ServiceError::from(e).into()
    }
}

impl From<domain::DomainError> for ApiError {
    fn from(e: domain::DomainError) -> Self {
        service::ServiceError::from(e).into()
    }
}
