//! `/api/v1`: the versioned JSON API (B3). Every route authenticates the caller (an API token,
//! or a browser session with its CSRF token) and scopes every read and write to the caller's
//! account, so another account's ids are simply not found. Routes are registered through
//! `utoipa_axum`, so the OpenAPI document (`/api/v1/openapi.json`, committed as
//! `docs/openapi.json`) is built from the same list the router serves.

mod accounts;
mod audit;
mod catalog;
pub(crate) mod connections;
pub(crate) mod deployments;
pub(crate) mod fleet;
pub(crate) mod mail;
mod oauth;
mod session;
mod users;
pub(crate) mod webhooks;

pub use crate::http::{ApiError, Caller, ErrorBody, hash_token, new_api_token, random_token, session_id};

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lightbridge API",
        version = "1",
        description = "Salesforce connections, systems, environments, users and the audit log of one account. \
Authenticate with `Authorization: Bearer lb_…` (an API token) or the `lb_session` cookie from `POST /api/v1/session` \
plus its `x-csrf-token` header on every change. Errors always have the `ErrorBody` shape."
    ),
    components(schemas(ErrorBody, webhooks::EventPayload)),
    modifiers(&Security),
    tags(
        (name = "connections", description = "Salesforce connections (F1, F2, F6, F7, F10, F11)"),
        (name = "systems", description = "Systems, environments and legacy connectors (F4)"),
        (name = "users", description = "Users, roles and API tokens"),
        (name = "session", description = "Browser sign-in"),
        (name = "publishing", description = "Deployments, history, rollback and bindings (F3, B2)"),
        (name = "audit", description = "The audit log (B4)"),
        (name = "notifications", description = "Webhook endpoints, their deliveries and the events behind them (B8)"),
        (name = "operator", description = "Instance-wide operator actions"),
    )
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("lb_…").build()),
        );
        components
            .add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("lb_session"))));
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("api_token", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::new("session", Vec::<String>::new()),
        ]);
    }
}

/// The API's routes and the OpenAPI document describing exactly them.
pub(crate) fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            connections::routes()
                .merge(oauth::api_routes())
                .merge(catalog::routes())
                .merge(deployments::routes().layer(axum::extract::DefaultBodyLimit::max(crate::http::MAX_UPLOAD_BYTES)))
                .merge(fleet::routes())
                .merge(webhooks::routes())
                .merge(mail::routes())
                .merge(users::routes())
                .merge(accounts::routes())
                .merge(audit::routes())
                .merge(session::routes()),
        )
        .split_for_parts();
    (router, common_responses(doc))
}

/// Adds what the server answers on an operation besides its handler's own outcomes, so the
/// document promises all of it (the schema fuzzer in `.ci/run` holds the server to it): 401 and
/// 403 where a credential is needed (missing or wrong; a role that does not allow the action —
/// found by the fuzzer, which demoted its own token's owner), 422 where a body or query string is read (the
/// extractors refuse one that does not parse, in the error shape), 404 where the path names
/// something (another account's id is not found).
fn common_responses(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build(),
        )
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for op in operations.into_iter().flatten() {
            let public = op.security.as_ref().is_some_and(|s| s.is_empty());
            let query = op.parameters.iter().flatten().any(|p| match p {
                RefOr::T(p) => matches!(p.parameter_in, ParameterIn::Query),
                RefOr::Ref(_) => false,
            });
            let responses = &mut op.responses.responses;
            if !public {
                responses.entry("401".into()).or_insert_with(|| error("no credential, or not a valid one"));
                // Roles change while a token lives (an owner may be made an admin mid-way).
                responses.entry("403".into()).or_insert_with(|| error("the caller's role does not allow this"));
            }
            if op.request_body.is_some() || query {
                responses.entry("422".into()).or_insert_with(|| error("the body or query string is not valid"));
            }
            if path.contains('{') {
                responses.entry("404".into()).or_insert_with(|| error("nothing of the caller's has that id"));
            }
        }
    }
    doc
}

/// The OpenAPI document, as served at `/api/v1/openapi.json` and committed as
/// `docs/openapi.json`.
pub fn openapi_json() -> String {
    let mut json = api().1.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}
