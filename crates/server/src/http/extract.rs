//! Extractors that do at the edge what every handler would otherwise repeat: JSON bodies and
//! query strings whose rejections come in the API's error shape, role guards (a 403 before the
//! body is read), typed ids in paths (a malformed id is a 404), and the caller's own objects
//! loaded in the caller's account (another account's id is a 404 before the handler runs).
//!
//! Order in a handler's arguments is order of checks: `State`, the role guard, `Owned<…>`, then
//! the `Body` — so a viewer gets 403 and a foreign id 404 whatever the body holds.

use std::collections::HashMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use domain::{AccountId, Connection, ConnectionId, DeploymentId, EnvironmentId, System, SystemId, User, UserId};
use store::{AccessStore, CatalogStore, ConnectionStore};

use super::{ApiError, Caller};
use crate::AppState;

/// A JSON request body; a body that does not parse is `invalid` on the field `body`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state)
            .await
            .map_err(|e| ApiError::invalid("body", e.body_text()))?;
        Ok(Body(value))
    }
}

/// A query string; one that does not parse is `invalid` on the field `query`.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    Query<T>: FromRequestParts<S, Rejection = QueryRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.body_text()))?;
        Ok(Params(value))
    }
}

macro_rules! role_guard {
    ($(#[$doc:meta])* $name:ident, $check:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl std::ops::Deref for $name {
            type Target = Caller;

            fn deref(&self) -> &Caller {
                &self.0
            }
        }

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
                let caller = Caller::from_request_parts(parts, state).await?;
                caller.$check()?;
                Ok($name(caller))
            }
        }
    };
}

role_guard!(
    /// An account's admin or owner: changes Salesforce connections, systems and bindings.
    Admin,
    require_connection_admin
);
role_guard!(
    /// An account's admin or owner, reading the audit log.
    AuditReader,
    require_audit_reader
);
role_guard!(
    /// An account's owner: manages its people.
    Owner,
    require_owner
);
role_guard!(
    /// An editor, admin or owner: publishes.
    Publisher,
    require_publisher
);
role_guard!(
    /// The instance-wide operator.
    Operator,
    require_operator
);

/// An id type a path segment names.
pub trait PathIdKind: Sized + Send {
    fn parse_id(text: &str) -> Option<Self>;
}

macro_rules! path_ids {
    ($($t:ty),*) => {$(
        impl PathIdKind for $t {
            fn parse_id(text: &str) -> Option<Self> {
                <$t>::parse(text).ok()
            }
        }
    )*};
}

path_ids!(ConnectionId, SystemId, EnvironmentId, DeploymentId, UserId, AccountId);

/// The path's `{id}` as a typed id; a malformed one names nothing of the caller's, so it is
/// answered like a missing one: 404.
#[derive(Debug)]
pub struct PathId<T>(pub T);

impl<T: PathIdKind, S: Send + Sync> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(segments) =
            Path::<HashMap<String, String>>::from_request_parts(parts, state).await.map_err(|_| ApiError::NotFound)?;
        segments.get("id").and_then(|id| T::parse_id(id)).map(PathId).ok_or(ApiError::NotFound)
    }
}

/// The path's `{id}` loaded in the caller's account: another account's id (or a missing one)
/// is 404 before the handler runs.
#[derive(Debug)]
pub struct Owned<T>(pub T);

impl FromRequestParts<AppState> for Owned<Connection> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let PathId(id) = PathId::<ConnectionId>::from_request_parts(parts, state).await?;
        Ok(Owned(state.store.get(caller.account()?, &id).await?))
    }
}

impl FromRequestParts<AppState> for Owned<System> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let PathId(id) = PathId::<SystemId>::from_request_parts(parts, state).await?;
        Ok(Owned(state.store.system(caller.account()?, &id).await?))
    }
}

impl FromRequestParts<AppState> for Owned<User> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let PathId(id) = PathId::<UserId>::from_request_parts(parts, state).await?;
        Ok(Owned(state.store.user(caller.account()?, &id).await?))
    }
}
