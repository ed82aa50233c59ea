//! `/api/v1/accounts`: the operator's view of every account, and the per-account Connectors
//! switch (F4).

use axum::Json;
use axum::extract::{Path, State};
use domain::{Account, AccountId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Caller, ErrorBody};
use crate::AppState;
use crate::http::{Body, Operator};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_accounts)).routes(routes!(set_connectors))
}

#[derive(Debug, Serialize, ToSchema)]
struct AccountView {
    id: String,
    name: String,
    connectors_enabled: bool,
    created_at: i64,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            id: a.id.to_string(),
            name: a.name.clone(),
            connectors_enabled: a.connectors_enabled,
            created_at: a.created_at,
        }
    }
}

/// Every account on this instance (the operator only).
#[utoipa::path(get, path = "/accounts", tag = "operator",
    responses((status = 200, body = Vec<AccountView>), (status = 403, body = ErrorBody)))]
async fn list_accounts(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<AccountView>>, ApiError> {
    Ok(Json(service::accounts::list(&state, &caller).await?.iter().map(AccountView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConnectorsSwitch {
    enabled: bool,
}

/// Turns legacy Connectors (F4) on or off for an account (the operator only). Turning them off
/// hides the Connectors tab's actions; existing connectors stay and keep working.
#[utoipa::path(put, path = "/accounts/{id}/connectors", tag = "operator", request_body = ConnectorsSwitch,
    params(("id" = String, Path, description = "acct_…")),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn set_connectors(
    State(state): State<AppState>,
    caller: Operator,
    Path(id): Path<String>,
    Body(input): Body<ConnectorsSwitch>,
) -> Result<Json<AccountView>, ApiError> {
    AccountId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let account = service::accounts::set_connectors(&state, &caller, &id, input.enabled).await?;
    Ok(Json(AccountView::from(&account)))
}
