//! Systems and a system's Settings → Connectors tab (F4): one row per environment with its
//! legacy connector, status and actions. When the operator has not enabled Connectors for the
//! account, the tab says so and offers nothing else.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use domain::{ConnectionKind, SystemId};
use serde::Deserialize;
use store::{CatalogStore, ConnectionStore, DeploymentStore, ListQuery};

use super::connections::{CellValue, cell_value};
use super::{Checked, Chrome, PageResult, SignedIn, redirect_with_flash, render};
use crate::AppState;
use crate::http::ApiError;
use service::oauth::{ConnectorInput, start_legacy};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/systems", get(list).post(create))
        .route("/systems/{id}/connectors", get(connectors))
        .route("/systems/{id}/connectors/connect", post(connect))
        .route("/environments", post(add_environment))
        .route("/systems/{id}/publishing", get(publishing).post(change_binding))
        .route("/systems/{id}/loader", get(loader).post(save_loader))
        .route("/systems/{id}/loader/off", post(loader_off))
        .route("/systems/{id}/loader/remove", post(loader_remove))
        .route("/systems/{id}/loader/deploy", post(loader_deploy))
}

#[derive(Debug, Clone)]
struct SystemRow {
    id: String,
    name: String,
    connectors: usize,
}

#[derive(Template)]
#[template(path = "systems.html")]
struct SystemsPage {
    chrome: Chrome,
    systems: Vec<SystemRow>,
    environments: Vec<String>,
    connectors_enabled: bool,
}

async fn list(State(state): State<AppState>, signed_in: SignedIn) -> PageResult {
    let account = signed_in.caller.account()?.clone();
    let mut systems = Vec::new();
    for s in state.store.systems(&account).await? {
        let connectors = state.store.legacy_connectors(&account, &s.id).await?.len();
        systems.push(SystemRow { id: s.id.to_string(), name: s.name, connectors });
    }
    let environments = state.store.environments(&account).await?.into_iter().map(|e| e.name).collect();
    let connectors_enabled = state.store.account(&account).await?.connectors_enabled;
    let chrome = signed_in.chrome("systems");
    Ok(render(
        StatusCode::OK,
        &SystemsPage { chrome: chrome.clone(), systems, environments, connectors_enabled },
        Some(&chrome),
    ))
}

#[derive(Debug, Deserialize)]
struct NameForm {
    csrf: String,
    name: String,
}

impl super::WithCsrf for NameForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn create(State(state): State<AppState>, Checked(signed_in, form): Checked<NameForm>) -> PageResult {
    match service::catalog::create_system(&state, &signed_in.caller, &form.name).await.map_err(ApiError::from) {
        Ok(system) => Ok(redirect_with_flash("/systems", "success", &format!("System “{}” added.", system.name))),
        Err(e @ (ApiError::Invalid(_) | ApiError::Conflict { .. })) => {
            Ok(redirect_with_flash("/systems", "error", &e.to_string_for_people()))
        }
        Err(e) => Err(e.into()),
    }
}

async fn add_environment(State(state): State<AppState>, Checked(signed_in, form): Checked<NameForm>) -> PageResult {
    match service::catalog::create_environment(&state, &signed_in.caller, &form.name).await.map_err(ApiError::from) {
        Ok(env) => Ok(redirect_with_flash("/systems", "success", &format!("Environment “{}” added.", env.name))),
        Err(e @ (ApiError::Invalid(_) | ApiError::Conflict { .. })) => {
            Ok(redirect_with_flash("/systems", "error", &e.to_string_for_people()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone)]
struct ConnectorRow {
    environment_id: String,
    environment: String,
    connector: Option<ConnectorView>,
}

#[derive(Debug, Clone)]
struct ConnectorView {
    id: String,
    account_name: String,
    status: String,
    status_class: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "connectors.html")]
struct ConnectorsPage {
    chrome: Chrome,
    system_id: String,
    system_name: String,
    enabled: bool,
    rows: Vec<ConnectorRow>,
    /// The environment whose Connect form is open: (id, name).
    connect: Option<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct ConnectParam {
    connect: Option<String>,
}

async fn connectors(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<ConnectParam>,
) -> PageResult {
    let account = signed_in.caller.account()?.clone();
    let system_id = SystemId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let system = state.store.system(&account, &system_id).await?;
    let enabled = state.store.account(&account).await?.connectors_enabled;
    let mut rows = Vec::new();
    if enabled {
        let bound = state.store.legacy_connectors(&account, &system.id).await?;
        for env in state.store.environments(&account).await? {
            let connector = bound
                .iter()
                .find(|c| matches!(&c.kind, ConnectionKind::Legacy { environment_id, .. } if *environment_id == env.id))
                .map(|c| {
                    let status = c.status.label().to_string();
                    ConnectorView {
                        id: c.id.to_string(),
                        account_name: match cell_value(c, "account_name") {
                            CellValue::Text(t) => t,
                            CellValue::Date(_) => String::new(),
                        },
                        status_class: match c.status {
                            domain::ConnectionStatus::LoggedIn => "status status-ok",
                            domain::ConnectionStatus::LoggedOut => "status status-bad",
                            domain::ConnectionStatus::NotAvailable => "status status-warn",
                        },
                        status,
                        active: matches!(c.kind, ConnectionKind::Legacy { active: true, .. }),
                    }
                });
            rows.push(ConnectorRow { environment_id: env.id.to_string(), environment: env.name, connector });
        }
    }
    let chrome = signed_in.chrome("systems");
    let connect = q
        .connect
        .and_then(|env| rows.iter().find(|r| r.environment_id == env && r.connector.is_none()))
        .filter(|_| signed_in.can_manage())
        .map(|r| (r.environment_id.clone(), r.environment.clone()));
    let page = ConnectorsPage {
        chrome: chrome.clone(),
        system_id: system.id.to_string(),
        system_name: system.name,
        enabled,
        rows,
        connect,
    };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

/// A legacy connector's sign-in settings; its `Debug` leaves the secret out.
#[derive(Deserialize)]
struct ConnectForm {
    csrf: String,
    environment_id: String,
    #[serde(default)]
    org_type: String,
    #[serde(default)]
    login_host: String,
    #[serde(default)]
    my_domain: String,
    #[serde(default)]
    consumer_key: String,
    #[serde(default)]
    consumer_secret: String,
}

impl std::fmt::Debug for ConnectForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectForm")
            .field("environment_id", &self.environment_id)
            .field("org_type", &self.org_type)
            .field("login_host", &self.login_host)
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl super::WithCsrf for ConnectForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Connect: the legacy connector's OAuth sign-in for one environment (F4).
async fn connect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<ConnectForm>,
) -> PageResult {
    let back = format!("/systems/{id}/connectors");
    let input = ConnectorInput {
        environment_id: form.environment_id.clone(),
        org_type: form.org_type.clone(),
        login_host: if form.login_host == "mydomain" {
            form.my_domain.trim().to_string()
        } else {
            form.login_host.clone()
        },
        consumer_key: form.consumer_key.clone(),
        consumer_secret: form.consumer_secret.clone().into(),
    };
    match start_legacy(&state, &signed_in.caller, &id, input).await.map_err(ApiError::from) {
        Ok(started) => Ok(Redirect::to(&started.authorize_url).into_response()),
        Err(e @ (ApiError::Invalid(_) | ApiError::Conflict { .. } | ApiError::ConnectorsDisabled)) => {
            Ok(redirect_with_flash(&back, "error", &e.to_string_for_people()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone)]
struct Bound {
    id: String,
    label: String,
    legacy: bool,
}

#[derive(Debug, Clone)]
struct PublishingRow {
    environment_id: String,
    environment: String,
    bound: Vec<Bound>,
}

#[derive(Template)]
#[template(path = "publishing.html")]
struct PublishingPage {
    chrome: Chrome,
    system_id: String,
    system_name: String,
    rows: Vec<PublishingRow>,
    /// New connections that can be bound: (id, label).
    choices: Vec<(String, String)>,
    /// The system deploys the loader: unbinding offers to remove it from the org.
    loader: bool,
}

/// A system's Publishing tab: which connections each environment publishes to (B2).
async fn publishing(State(state): State<AppState>, signed_in: SignedIn, Path(id): Path<String>) -> PageResult {
    let account = signed_in.caller.account()?.clone();
    let system_id = SystemId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let system = state.store.system(&account, &system_id).await?;
    let mut rows = Vec::new();
    for env in state.store.environments(&account).await? {
        let bound = state
            .store
            .targets_for(&account, &system.id, &env.id)
            .await?
            .iter()
            .map(|c| Bound { id: c.id.to_string(), label: service::connections::label(c), legacy: c.is_legacy() })
            .collect();
        rows.push(PublishingRow { environment_id: env.id.to_string(), environment: env.name, bound });
    }
    let newest = state.store.list(&account, &ListQuery { descending: true, limit: 500, ..Default::default() }).await?;
    let choices = newest
        .rows
        .iter()
        .filter(|c| !c.is_legacy())
        .map(|c| {
            let org = c.org.as_ref().map(|o| format!(" — {}", o.org_name)).unwrap_or_default();
            (c.id.to_string(), format!("{}{org}", service::connections::label(c)))
        })
        .collect();
    let chrome = signed_in.chrome("systems");
    let loader = state.store.loader_config(&account, &system.id).await?.is_some();
    let page = PublishingPage {
        chrome: chrome.clone(),
        system_id: system.id.to_string(),
        system_name: system.name,
        rows,
        choices,
        loader,
    };
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

#[derive(Debug, Deserialize)]
struct BindingForm {
    csrf: String,
    environment_id: String,
    connection_id: String,
    /// `bind` or `unbind`.
    action: String,
    /// With `unbind`: also remove the loader from the connection's org.
    #[serde(default)]
    remove_loader: Option<String>,
}

impl super::WithCsrf for BindingForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn change_binding(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<BindingForm>,
) -> PageResult {
    signed_in.caller.require_connection_admin()?;
    let back = format!("/systems/{id}/publishing");
    if domain::ConnectionId::parse(&form.connection_id).is_err() {
        return Ok(redirect_with_flash(&back, "error", "Choose a connection."));
    }
    let (svc, actor, env, connection) = (&state, &signed_in.caller, &form.environment_id, &form.connection_id);
    let text = if form.action == "unbind" {
        service::deployments::unbind(svc, actor, &id, env, connection).await?;
        if form.remove_loader.is_some() {
            let words = match service::loader::remove_from_org(svc, actor, &id, env, connection).await {
                Ok(words) => {
                    format!("The connection no longer publishes here, and the loader is out of its org ({words}).")
                }
                Err(service::ServiceError::Invalid(errors)) => format!(
                    "The connection no longer publishes here; the loader could not be removed from its org: {}",
                    errors.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; ")
                ),
                Err(e) => return Err(ApiError::from(e).into()),
            };
            return Ok(redirect_with_flash(&back, "success", &words));
        }
        "no longer publishes here"
    } else {
        service::deployments::bind(svc, actor, &id, env, connection).await?;
        "publishes here now"
    };
    Ok(redirect_with_flash(&back, "success", &format!("The connection {text}.")))
}

/// One org's row on the Loader tab.
#[derive(Debug, Clone)]
struct OrgRow {
    environment_id: String,
    environment: String,
    connection_id: String,
    connection: String,
    state: &'static str,
    detail: String,
    deployment_id: Option<String>,
    when: String,
    by: String,
}

#[derive(Template)]
#[template(path = "loader.html")]
struct LoaderPage {
    chrome: Chrome,
    system_id: String,
    system_name: String,
    enabled: bool,
    scripts: String,
    styles: String,
    trusted_sites: String,
    apps: String,
    scripts_error: String,
    styles_error: String,
    sites_error: String,
    apps_error: String,
    orgs: Vec<OrgRow>,
    /// The environments the orgs publish for, `(id, name)`, each deployable on its own.
    environments: Vec<(String, String)>,
    can_publish: bool,
}

/// The form as typed, and each field's faults (every one, joined).
#[derive(Debug, Default)]
struct LoaderDraft {
    scripts: String,
    styles: String,
    trusted_sites: String,
    apps: String,
    errors: Vec<(String, String)>,
}

impl LoaderDraft {
    fn error(&self, field: &str) -> String {
        self.errors.iter().filter(|(f, _)| f == field).map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ")
    }
}

async fn loader_page(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
    draft: Option<LoaderDraft>,
) -> Result<LoaderPage, ApiError> {
    let account = signed_in.caller.account()?.clone();
    let system_id = SystemId::parse(id).map_err(|_| ApiError::NotFound)?;
    let system = state.store.system(&account, &system_id).await?;
    let config = service::loader::settings(state, &signed_in.caller, id).await?;
    let orgs = service::loader::org_states(state, &signed_in.caller, id)
        .await?
        .into_iter()
        .map(|o| OrgRow {
            environment_id: o.environment_id,
            environment: o.environment,
            connection_id: o.connection_id,
            connection: o.connection,
            state: o.state.label(),
            detail: o.detail,
            deployment_id: o.deployment_id,
            when: o.updated_at.map(super::date).unwrap_or_default(),
            by: o.by.unwrap_or_default(),
        })
        .collect::<Vec<OrgRow>>();
    let mut environments: Vec<(String, String)> = Vec::new();
    for o in &orgs {
        if !environments.iter().any(|(id, _)| *id == o.environment_id) {
            environments.push((o.environment_id.clone(), o.environment.clone()));
        }
    }
    let draft = draft.unwrap_or_else(|| match &config {
        Some(c) => LoaderDraft {
            scripts: c.scripts.join("\n"),
            styles: c.styles.join("\n"),
            trusted_sites: c.trusted_sites.join("\n"),
            apps: c.apps.join("\n"),
            errors: Vec::new(),
        },
        None => LoaderDraft { apps: service::loader::DEFAULT_APP.to_string(), ..LoaderDraft::default() },
    });
    Ok(LoaderPage {
        chrome: signed_in.chrome("systems"),
        system_id: system.id.to_string(),
        system_name: system.name,
        enabled: config.is_some(),
        scripts_error: draft.error("scripts"),
        styles_error: draft.error("styles"),
        sites_error: draft.error("trusted_sites"),
        apps_error: draft.error("apps"),
        scripts: draft.scripts,
        styles: draft.styles,
        trusted_sites: draft.trusted_sites,
        apps: draft.apps,
        orgs,
        environments,
        can_publish: signed_in.caller.require_publisher().is_ok(),
    })
}

/// A system's Loader tab (issue #15): its settings, and where each org stands.
async fn loader(State(state): State<AppState>, signed_in: SignedIn, Path(id): Path<String>) -> PageResult {
    let page = loader_page(&state, &signed_in, &id, None).await?;
    let chrome = page.chrome.clone();
    Ok(render(StatusCode::OK, &page, Some(&chrome)))
}

#[derive(Debug, Deserialize)]
struct LoaderForm {
    csrf: String,
    #[serde(default)]
    scripts: String,
    #[serde(default)]
    styles: String,
    #[serde(default)]
    trusted_sites: String,
    #[serde(default)]
    apps: String,
}

impl super::WithCsrf for LoaderForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

async fn save_loader(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<LoaderForm>,
) -> PageResult {
    let input = service::loader::LoaderInput {
        scripts: lines(&form.scripts),
        styles: lines(&form.styles),
        trusted_sites: lines(&form.trusted_sites),
        apps: lines(&form.apps),
    };
    match service::loader::set(&state, &signed_in.caller, &id, input).await {
        Ok(_) => {
            Ok(redirect_with_flash(&format!("/systems/{id}/loader"), "success", "The loader's settings are saved."))
        }
        // Every fault shown beside its field, with what was typed kept.
        Err(service::ServiceError::Invalid(errors)) => {
            let draft = LoaderDraft {
                scripts: form.scripts,
                styles: form.styles,
                trusted_sites: form.trusted_sites,
                apps: form.apps,
                errors,
            };
            let page = loader_page(&state, &signed_in, &id, Some(draft)).await?;
            let chrome = page.chrome.clone();
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page, Some(&chrome)))
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

#[derive(Debug, Deserialize)]
struct CsrfOnly {
    csrf: String,
}

impl super::WithCsrf for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, Deserialize)]
struct RemoveForm {
    csrf: String,
    environment_id: String,
    connection_id: String,
    /// Where to go after: the Loader tab (default) or the Publishing tab.
    #[serde(default)]
    back: String,
}

impl super::WithCsrf for RemoveForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Removes the loader from one org (a destructive deploy): from the Loader tab, and after an
/// unbind on the Publishing tab.
async fn loader_remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<RemoveForm>,
) -> PageResult {
    let back =
        if form.back == "publishing" { format!("/systems/{id}/publishing") } else { format!("/systems/{id}/loader") };
    let (svc, actor) = (&state, &signed_in.caller);
    match service::loader::remove_from_org(svc, actor, &id, &form.environment_id, &form.connection_id).await {
        Ok(words) => Ok(redirect_with_flash(&back, "success", &format!("The loader is out of that org ({words})."))),
        Err(service::ServiceError::Invalid(errors)) => {
            let words = errors.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; ");
            Ok(redirect_with_flash(&back, "error", &format!("The loader could not be removed: {words}")))
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

#[derive(Debug, Deserialize)]
struct DeployLoaderForm {
    csrf: String,
    #[serde(default)]
    environment_id: String,
}

impl super::WithCsrf for DeployLoaderForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Deploys the loader to an environment's orgs (its latest release again, with the loader),
/// then follows the deployment on its page.
async fn loader_deploy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, form): Checked<DeployLoaderForm>,
) -> PageResult {
    match service::loader::deploy(&state, &signed_in.caller, &id, &form.environment_id).await {
        Ok(started) => Ok(redirect_with_flash(
            &format!("/deployments/{}", started.deployment.id),
            "success",
            "Deploying the loader: validated, then deployed in each org (skipped where it is in place).",
        )),
        Err(service::ServiceError::Invalid(errors)) => {
            let words = errors.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; ");
            Ok(redirect_with_flash(&format!("/systems/{id}/loader"), "error", &format!("Not deployed: {words}")))
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

async fn loader_off(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Checked(signed_in, _form): Checked<CsrfOnly>,
) -> PageResult {
    service::loader::turn_off(&state, &signed_in.caller, &id).await.map_err(ApiError::from)?;
    let words = "The loader is off. What orgs hold stays until it is removed there.";
    Ok(redirect_with_flash(&format!("/systems/{id}/loader"), "success", words))
}
