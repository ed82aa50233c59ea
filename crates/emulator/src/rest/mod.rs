//! REST and Tooling API, by capability: who may call (`auth`), the objects served
//! (`objects`), SOQL (`query`), describe (`describe`), `StaticResource` reads and writes
//! (`resources`) and `/resource/...` serving of ZIP static resources (`serving`). This file
//! holds the routes and what they all share: the caller's context and Salesforce's error shape.

mod auth;
mod describe;
mod objects;
mod query;
mod resources;
pub(crate) use resources::name_problem;
mod serving;

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::clock::sf_datetime;
use crate::observe::{Actor, Operation};
use crate::server::Listener;
use crate::state::{QueryCursor, StaticResource, World};
use crate::{LATEST_API_VERSION, OLDEST_API_VERSION, Shared, ids, soql, state};

use self::{auth::*, describe::*, objects::*, query::*, resources::*, serving::*};

/// Who is calling and through which API version; set by [`authenticate`].
#[derive(Debug, Clone)]
pub struct Ctx {
    pub org_id: String,
    pub user_id: String,
    pub version: String,
    pub login_base: String,
}

/// `[{message, errorCode, fields?}]`, Salesforce's REST error body.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    SfError::new(status, code, message).into_response()
}

/// A Salesforce REST error as a value; rendered as `[{message, errorCode, fields}]`.
#[derive(Debug)]
pub struct SfError {
    status: StatusCode,
    code: String,
    message: String,
    fields: Option<Vec<String>>,
}

impl SfError {
    pub fn new(status: StatusCode, code: &str, message: &str) -> Self {
        SfError { status, code: code.to_string(), message: message.to_string(), fields: None }
    }
    pub fn fields(status: StatusCode, code: &str, message: &str, fields: &[&str]) -> Self {
        SfError { fields: Some(fields.iter().map(|f| f.to_string()).collect()), ..Self::new(status, code, message) }
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
    }
}

impl IntoResponse for SfError {
    fn into_response(self) -> Response {
        let body = match self.fields {
            Some(fields) => json!([{"message": self.message, "errorCode": self.code, "fields": fields}]),
            None => json!([{"message": self.message, "errorCode": self.code}]),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

fn not_found_body() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
}

pub async fn not_found() -> Response {
    not_found_body()
}

async fn method_not_allowed(method: Method) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        &format!("HTTP Method '{method}' not allowed. Allowed are GET,PATCH,DELETE,HEAD"),
    )
}

pub fn routes(shared: Shared) -> Router<Shared> {
    let versioned = Router::new()
        .route("/services/data/{v}", get(version_root))
        .route("/services/data/{v}/limits", get(limits))
        .route("/services/data/{v}/query", get(query))
        .route("/services/data/{v}/queryAll", get(query))
        .route("/services/data/{v}/query/{locator}", get(query_more))
        .route("/services/data/{v}/tooling/query", get(query))
        .route("/services/data/{v}/tooling/query/{locator}", get(query_more))
        .route("/services/data/{v}/sobjects", get(describe_global))
        .route("/services/data/{v}/tooling/sobjects", get(describe_global))
        .route("/services/data/{v}/sobjects/{object}", get(object_info).post(create))
        .route("/services/data/{v}/tooling/sobjects/{object}", get(object_info).post(create))
        .route("/services/data/{v}/sobjects/{object}/{id}", get(read).patch(update).delete(delete))
        .route("/services/data/{v}/tooling/sobjects/{object}/{id}", get(read).patch(update).delete(delete))
        .route("/services/data/{v}/sobjects/{object}/{id}/{field}", get(read_blob))
        .route("/services/data/{v}/tooling/sobjects/{object}/{id}/{field}", get(read_blob))
        .route("/services/data/{v}/metadata/deployRequest", axum::routing::post(crate::metadata::create))
        .route(
            "/services/data/{v}/metadata/deployRequest/{id}",
            get(crate::metadata::status).patch(crate::metadata::cancel),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(shared, authenticate));
    Router::new()
        .route("/services/data", get(versions))
        .route("/resource/{ts}/{name}", get(serve_resource_root))
        .route("/resource/{ts}/{name}/{*path}", get(serve_resource))
        .merge(versioned)
}

fn version_label(major: u32) -> String {
    let n = major.saturating_sub(20);
    let season = ["Winter", "Spring", "Summer"][(n % 3) as usize];
    format!("{season} '{:02}", 11 + n / 3)
}

async fn versions() -> Response {
    let list: Vec<Value> = (OLDEST_API_VERSION..=LATEST_API_VERSION)
        .map(|v| json!({"label": version_label(v), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")}))
        .collect();
    let mut response = axum::Json(list).into_response();
    response.extensions_mut().insert(Operation("versions".into()));
    response
}

/// A response labelled with its operation for the request log.
pub(crate) fn with_operation(response: Response, name: String) -> Response {
    op(response, name)
}

fn op(mut response: Response, name: String) -> Response {
    response.extensions_mut().insert(Operation(name));
    response
}
