//! The operator's pages (issue #16, item 8): every account with its connections, people and
//! last sign-in, and its legacy Connectors switch — what needed the CLI before. The operator
//! lands here after signing in.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Checked, Chrome, PageResult, SignedIn, date, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/operator/accounts", get(accounts))
        .route("/operator/accounts/{id}/connectors", post(set_connectors))
}

#[derive(Debug, Clone)]
struct Row {
    id: String,
    name: String,
    connectors: bool,
    connections: u64,
    users: usize,
    last_sign_in: String,
    created: String,
}

#[derive(Template)]
#[template(path = "operator_accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    rows: Vec<Row>,
}

async fn accounts(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    let rows = service::accounts::overview(&state, &signed_in.caller)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|o| Row {
            id: o.account.id.to_string(),
            name: o.account.name,
            connectors: o.account.connectors_enabled,
            connections: o.connections,
            users: o.users,
            last_sign_in: o.last_sign_in.map(date).unwrap_or_else(|| "never".into()),
            created: date(o.account.created_at),
        })
        .collect();
    let chrome = signed_in.chrome("operator");
    Ok(render(StatusCode::OK, &AccountsPage { chrome: chrome.clone(), rows }, Some(&chrome)))
}

#[derive(Debug, Deserialize)]
struct ConnectorsForm {
    csrf: String,
    enabled: String,
}

impl super::WithCsrf for ConnectorsForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn set_connectors(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<ConnectorsForm>,
) -> PageResult {
    let enabled = form.enabled == "true";
    let account =
        service::accounts::set_connectors(&state, &signed_in.caller, &id, enabled).await.map_err(ApiError::from)?;
    let words = if enabled {
        format!("Connectors are on for {}: its systems' Connectors tabs can bind legacy connectors.", account.name)
    } else {
        format!("Connectors are off for {}: existing connectors stay and keep working.", account.name)
    };
    Ok(redirect_with_flash("/operator/accounts", "success", &words))
}
