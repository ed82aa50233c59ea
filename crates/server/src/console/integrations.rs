//! F5 Integration Center: *Available connections* and *Active connections* tabs. The
//! Salesforce tile shows **Setup** while the account has no connection and **Manage
//! connections** once it has one; both lead to the Salesforce Connections page.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Deserialize;
use store::{ConnectionStore, ListQuery};

use super::{Chrome, PageResult, SignedIn, page};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/integrations", get(center))
}

#[derive(Template)]
#[template(path = "integrations.html")]
struct Center {
    chrome: Chrome,
    /// `available` or `active`.
    tab: String,
    connections: u64,
}

#[derive(Debug, Deserialize)]
struct TabParam {
    tab: Option<String>,
}

async fn center(State(state): State<AppState>, signed_in: SignedIn, Query(q): Query<TabParam>) -> PageResult {
    // The operator has no account of their own: their home is the accounts page.
    if signed_in.caller.user.role == domain::Role::Operator {
        return Ok(axum::response::IntoResponse::into_response(axum::response::Redirect::to("/operator/accounts")));
    }
    let account = signed_in.caller.account()?.clone();
    let total = state.store.list(&account, &ListQuery { limit: 1, ..Default::default() }).await?.total;
    let tab = match q.tab.as_deref() {
        Some("available") => "available",
        Some("active") => "active",
        _ if total > 0 => "active",
        _ => "available",
    };
    Ok(page(
        &Center { chrome: signed_in.chrome("integrations"), tab: tab.into(), connections: total },
        Some(&signed_in.chrome("integrations")),
    ))
}
