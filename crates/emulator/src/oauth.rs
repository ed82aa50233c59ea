//! OAuth 2.0 as Salesforce serves it: the authorize pages, the token endpoint's four grants,
//! revoke, userinfo and the identity URL. Error texts follow salesforce-api.md §1–§3.

use std::collections::HashMap;
use std::net::IpAddr;

use aws_lc_rs::{digest, hmac};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::observe::{Actor, Operation};
use crate::policy::{self, TokenRequest};
use crate::seed::IpRelaxation;
use crate::server::Listener;
use crate::state::{App, AuthCode, PendingAuth, User, World};
use crate::{HostKind, Shared, ids, pages, state};

pub fn routes(host: HostKind) -> Router<Shared> {
    Router::new()
        .route("/services/oauth2/authorize", get(authorize))
        .route("/services/oauth2/authorize/login", post(login))
        .route("/services/oauth2/authorize/approve", post(approve))
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/revoke", post(revoke).get(revoke))
        .route("/services/oauth2/introspect", post(introspect))
        .route("/services/oauth2/userinfo", get(userinfo).post(userinfo))
        .route("/id/{org}/{user}", get(identity).post(identity))
        .route("/setup/secur/RemoteAccessErrorPage.apexp", get(error_page))
        .layer(Extension(host))
}

/// `{error, error_description}` with Salesforce's no-store headers.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (status, axum::Json(json!({"error": error, "error_description": description}))).into_response();
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache,must-revalidate,max-age=0,no-store,private"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn login_base(listener: &Listener, host: HostKind) -> String {
    format!("{}{}", listener.base, host.prefix())
}

fn with_op(mut response: Response, op: &str, actor: Option<Actor>) -> Response {
    response.extensions_mut().insert(Operation(op.to_string()));
    if let Some(actor) = actor {
        response.extensions_mut().insert(actor);
    }
    response
}

/// `302 Found`, the redirect Salesforce answers with.
fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, Html(pages::error("invalid_request", "redirect_uri is not a valid URL")))
            .into_response(),
    }
}

/// Redirects the browser to the app's callback with query parameters.
fn to_callback(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    found(&format!("{redirect_uri}{sep}{}", query.finish()))
}

fn callback_error(redirect_uri: &str, state: Option<&str>, error: &str, description: &str) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    with_op(to_callback(redirect_uri, &params), "authorize:error", None)
}

/// Errors that cannot be trusted to the callback (unknown app, callback mismatch) are shown
/// on Salesforce's own error page.
fn error_redirect(listener: &Listener, host: HostKind, error: &str, description: &str) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("error", error).append_pair("error_description", description);
    let url = format!("{}/setup/secur/RemoteAccessErrorPage.apexp?{}", login_base(listener, host), query.finish());
    with_op(found(&url), "authorize:error", None)
}

async fn error_page(Query(q): Query<HashMap<String, String>>) -> Response {
    let error = q.get("error").map_or("error", String::as_str);
    let description = q.get("error_description").map_or("", String::as_str);
    (StatusCode::BAD_REQUEST, Html(pages::error(error, description))).into_response()
}

fn scope_list(text: &str) -> Vec<String> {
    text.split([' ', '+', ',']).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn host_label(host: HostKind) -> &'static str {
    match host {
        HostKind::Login => "login.salesforce.com",
        HostKind::Test => "test.salesforce.com",
        HostKind::Instance => "your My Domain",
    }
}

async fn authorize(
    State(shared): State<Shared>,
    Extension(host): Extension<HostKind>,
    Extension(listener): Extension<Listener>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let param = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut world = shared.world();
    let Some(app) = param("client_id").and_then(|id| world.apps.get(id)).cloned() else {
        return error_redirect(&listener, host, "invalid_client_id", "client identifier invalid");
    };
    let Some(redirect_uri) = param("redirect_uri").filter(|r| app.callback_urls.iter().any(|c| c == r)) else {
        return error_redirect(&listener, host, "redirect_uri_mismatch", "redirect_uri must match configuration");
    };
    let state = param("state");
    match param("response_type") {
        Some("code") => {}
        Some("token") => {
            return callback_error(
                redirect_uri,
                state,
                "unsupported_response_type",
                "the user-agent flow is blocked in this org",
            );
        }
        _ => return callback_error(redirect_uri, state, "unsupported_response_type", "response type not supported"),
    }
    let challenge = param("code_challenge");
    if let Some(method) = param("code_challenge_method")
        && method != "S256"
    {
        return callback_error(
            redirect_uri,
            state,
            "invalid_request",
            "invalid code_challenge_method: only S256 is supported",
        );
    }
    if let Some(c) = challenge
        && (URL_SAFE_NO_PAD.decode(c).map(|d| d.len()) != Ok(32))
    {
        return callback_error(redirect_uri, state, "invalid_request", "invalid code challenge");
    }
    if app.require_pkce && challenge.is_none() {
        return callback_error(redirect_uri, state, "invalid_request", "missing required code challenge");
    }
    let scopes = match param("scope") {
        None => app.scopes.clone(),
        Some(s) => {
            let requested = scope_list(s);
            if requested.iter().any(|r| !app.scopes.contains(r)) {
                return callback_error(redirect_uri, state, "invalid_scope", "the requested scope is not allowed");
            }
            requested
        }
    };
    if param("immediate") == Some("true") {
        // No Salesforce session exists on the emulator, so an immediate request cannot succeed.
        return callback_error(redirect_uri, state, "immediate_unsuccessful", "user is not logged in");
    }
    let now = shared.clock.now_ms();
    world.pending.retain(|_, p| p.expires_ms > now);
    let txn = ids::random_alnum(40);
    let login_hint = param("login_hint").map(str::to_string);
    world.pending.insert(
        txn.clone(),
        PendingAuth {
            host,
            login_base: login_base(&listener, host),
            consumer_key: app.consumer_key.clone(),
            redirect_uri: redirect_uri.to_string(),
            state: state.map(str::to_string),
            scopes,
            code_challenge: challenge.map(str::to_string),
            force_consent: param("prompt").is_some_and(|p| p.split(' ').any(|x| x == "consent")),
            user_id: None,
            expires_ms: now + state::PENDING_TTL_SECS * 1000,
        },
    );
    let action = format!("{}/services/oauth2/authorize", host.prefix());
    let page = pages::login(&action, host_label(host), &app.name, &txn, login_hint.as_deref().unwrap_or(""), None);
    with_op(Html(page).into_response(), "authorize:login_page", None)
}

fn expired_page() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(pages::error("expired_request", "This sign-in page has expired. Start again from the application.")),
    )
        .into_response()
}

fn form(body: &Bytes) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The parameters of a token, introspection or revocation request: read only from an
/// `application/x-www-form-urlencoded` body, as Salesforce does (a JSON body carries none, so
/// its grant type is "not supported"; `docs/salesforce-behaviour.md`).
fn form_params(headers: &HeaderMap, body: &Bytes) -> HashMap<String, String> {
    let is_form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if is_form { form(body) } else { HashMap::new() }
}

async fn login(State(shared): State<Shared>, Extension(host): Extension<HostKind>, body: Bytes) -> Response {
    let f = form(&body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    let Some(pending) = world.pending.get(get("txn")).filter(|p| p.expires_ms > now && p.host == host).cloned() else {
        return expired_page();
    };
    let app = world.apps[&pending.consumer_key].clone();
    let action = format!("{}/services/oauth2/authorize", host.prefix());
    let fail = |message: &str| {
        let page = pages::login(&action, host_label(host), &app.name, get("txn"), get("username"), Some(message));
        with_op(Html(page).into_response(), "authorize:login_failed", None)
    };
    let Some(user) = world.user_by_username(get("username")).cloned() else {
        return fail(
            "Please check your username and password. If you still can't log in, contact your Salesforce administrator.",
        );
    };
    let org_sandbox = world.orgs[&user.org_id].sandbox;
    let right_host = match host {
        HostKind::Login => !org_sandbox,
        HostKind::Test => org_sandbox,
        HostKind::Instance => true,
    };
    // A sandbox user does not exist at the production login host (and vice versa).
    if !right_host || user.password != get("password") {
        return fail(
            "Please check your username and password. If you still can't log in, contact your Salesforce administrator.",
        );
    }
    if !user.active {
        return fail("Your account has been deactivated. Contact your Salesforce administrator.");
    }
    if user.frozen {
        return fail("Your account is frozen. Contact your Salesforce administrator.");
    }
    let actor = Some(Actor { org_id: user.org_id.clone(), user_id: Some(user.id.clone()) });
    // The app refused in this org: back to the callback with Salesforce's error.
    let refusal = if app.blocked_in.contains(&user.org_id) {
        Some(("OAUTH_APP_BLOCKED", "this app is blocked by admin", "authorize:blocked"))
    } else if !app.installed {
        Some(("invalid_client", "app must be installed into org", "authorize:not_installed"))
    } else {
        None
    };
    if let Some((error, description, op)) = refusal {
        world.pending.remove(get("txn"));
        let r = callback_error(&pending.redirect_uri, pending.state.as_deref(), error, description);
        return with_op(r, op, actor);
    }
    let approved = world.approvals.contains(&(app.consumer_key.clone(), user.id.clone()));
    if approved && !pending.force_consent {
        world.pending.remove(get("txn"));
        return with_op(issue_code(&mut world, pending, &user.id, &user.org_id, now), "authorize:code", actor);
    }
    if let Some(p) = world.pending.get_mut(get("txn")) {
        p.user_id = Some(user.id.clone());
    }
    let page = pages::approve(&action, &app.name, &user.display_name(), &user.username, &pending.scopes, get("txn"));
    with_op(Html(page).into_response(), "authorize:approve_page", actor)
}

async fn approve(State(shared): State<Shared>, Extension(host): Extension<HostKind>, body: Bytes) -> Response {
    let f = form(&body);
    let txn = f.get("txn").cloned().unwrap_or_default();
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    let Some(pending) = world.pending.get(&txn).filter(|p| p.expires_ms > now && p.host == host).cloned() else {
        return expired_page();
    };
    let Some(user_id) = pending.user_id.clone() else {
        return expired_page();
    };
    world.pending.remove(&txn);
    let org_id = world.users[&user_id].org_id.clone();
    let actor = Some(Actor { org_id: org_id.clone(), user_id: Some(user_id.clone()) });
    if f.get("decision").map(String::as_str) != Some("allow") {
        let r = callback_error(
            &pending.redirect_uri,
            pending.state.as_deref(),
            "access_denied",
            "end-user denied authorization",
        );
        return with_op(r, "authorize:denied", actor);
    }
    world.approvals.insert((pending.consumer_key.clone(), user_id.clone()));
    with_op(issue_code(&mut world, pending, &user_id, &org_id, now), "authorize:code", actor)
}

fn issue_code(world: &mut World, pending: PendingAuth, user_id: &str, org_id: &str, now: i64) -> Response {
    let code = ids::authorization_code();
    world.codes.retain(|_, c| c.expires_ms > now);
    world.codes.insert(
        code.clone(),
        AuthCode {
            consumer_key: pending.consumer_key,
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge,
            user_id: user_id.to_string(),
            org_id: org_id.to_string(),
            scopes: pending.scopes,
            expires_ms: now + state::CODE_TTL_SECS * 1000,
            login_base: pending.login_base,
        },
    );
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = pending.state.as_deref() {
        params.push(("state", state));
    }
    to_callback(&pending.redirect_uri, &params)
}

/// Client credentials from HTTP Basic or the form body.
fn client_auth(headers: &HeaderMap, f: &HashMap<String, String>) -> (Option<String>, Option<String>) {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        && let Some((id, secret)) = basic.split_once(':')
    {
        let decode = |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        return (decode(id), decode(secret));
    }
    (f.get("client_id").cloned(), f.get("client_secret").cloned())
}

fn secret_matches(given: &str, expected: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected.as_bytes()).is_ok()
}

/// `signature` = base64(HMAC-SHA256(client secret, id + issued_at)).
pub fn signature(secret: &str, id: &str, issued_at: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{id}{issued_at}").as_bytes());
    STANDARD.encode(tag.as_ref())
}

struct Grant<'a> {
    access: String,
    refresh: Option<String>,
    scopes: &'a [String],
    user_id: &'a str,
    org_id: &'a str,
    login_base: &'a str,
    /// Where the org's API lives: its My Domain when it has one.
    instance_url: String,
    secret: &'a str,
}

/// The org's instance URL as a token reply names it: the listener's scheme and port, and the
/// org's My Domain host when it has its own.
fn instance_url(world: &crate::state::World, listener: &Listener, org_id: &str) -> String {
    match world.orgs.get(org_id).and_then(|o| o.my_domain.as_deref()) {
        Some(host) => listener.base.replacen("127.0.0.1", host, 1),
        None => listener.base.to_string(),
    }
}

fn token_reply(now_ms: i64, grant: Grant<'_>) -> Response {
    let id = format!("{}/id/{}/{}", grant.login_base, grant.org_id, grant.user_id);
    let issued_at = now_ms.to_string();
    let mut body = serde_json::Map::new();
    body.insert("access_token".into(), json!(grant.access));
    if let Some(refresh) = grant.refresh {
        body.insert("refresh_token".into(), json!(refresh));
    }
    body.insert("signature".into(), json!(signature(grant.secret, &id, &issued_at)));
    body.insert("scope".into(), json!(grant.scopes.join(" ")));
    body.insert("instance_url".into(), json!(grant.instance_url));
    body.insert("id".into(), json!(id));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("issued_at".into(), json!(issued_at));
    let mut response = axum::Json(Value::Object(body)).into_response();
    no_store(&mut response);
    response
        .extensions_mut()
        .insert(Actor { org_id: grant.org_id.to_string(), user_id: Some(grant.user_id.to_string()) });
    response
}

fn wants_refresh(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s == "refresh_token" || s == "offline_access" || s == "full")
}

async fn token(
    State(shared): State<Shared>,
    Extension(host): Extension<HostKind>,
    Extension(listener): Extension<Listener>,
    peer: Option<Extension<crate::server::Peer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(p)| p.0).unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let f = form_params(&headers, &body);
    let grant_type = f.get("grant_type").cloned().unwrap_or_default();
    let op = format!(
        "token:{}",
        if grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer" { "jwt_bearer" } else { grant_type.as_str() }
    );
    let response = match grant_type.as_str() {
        "authorization_code" => code_grant(&shared, &listener, peer, &headers, &f),
        "refresh_token" => refresh_grant(&shared, host, &listener, peer, &headers, &f),
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => jwt_grant(&shared, host, &listener, peer, &f),
        "client_credentials" => client_credentials_grant(&shared, host, &listener, peer, &headers, &f),
        "" => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant type not supported"),
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant type not supported"),
    };
    with_op(response, &op, None)
}

fn bad(error: &str, description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}

/// What refuses any token request for this user and app, whatever the grant (issue #14; the
/// texts and their sources are in docs/salesforce-behaviour.md): a deactivated or frozen user,
/// the app blocked in the org or not installed, and IP restrictions — an External Client App's
/// refresh-token allowlist, and the profile's login IP ranges as the app's IP Relaxation
/// applies them (JWT bearer always enforces them).
fn gate(
    world: &World,
    app: &App,
    user: &User,
    request: TokenRequest,
    relaxation: IpRelaxation,
    peer: IpAddr,
) -> Option<Response> {
    if !user.active {
        return Some(bad("invalid_grant", "inactive user"));
    }
    if user.frozen {
        // Salesforce documents no text for a frozen user: the stricter reading is a refusal
        // that names nothing.
        return Some(bad("invalid_grant", "authentication failure"));
    }
    if app.blocked_in.contains(&user.org_id) {
        return Some(bad("invalid_client", "OAUTH_APP_BLOCKED"));
    }
    if !app.installed {
        return Some(bad("invalid_client", "app must be installed into org"));
    }
    if request == TokenRequest::Refresh && !policy::allowed(&app.refresh_ip_allowlist, peer) {
        return Some(bad("invalid_grant", "ip restricted by app developer"));
    }
    let ranges = world.orgs.get(&user.org_id).map(|o| o.login_ip_ranges.as_slice()).unwrap_or_default();
    if policy::login_ranges_refuse(relaxation, request, ranges, peer) {
        return Some(bad("invalid_grant", "ip restricted"));
    }
    None
}

fn code_grant(
    shared: &Shared,
    listener: &Listener,
    peer: IpAddr,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Response {
    let (client_id, client_secret) = client_auth(headers, f);
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    let Some(app) = client_id.as_deref().and_then(|id| world.apps.get(id)).cloned() else {
        return bad("invalid_client_id", "client identifier invalid");
    };
    // Codes are single use: whatever happens next, this one is spent.
    let Some(code) = f.get("code").and_then(|c| world.codes.remove(c)) else {
        return bad("invalid_grant", "expired authorization code");
    };
    if code.expires_ms <= now || code.consumer_key != app.consumer_key {
        return bad("invalid_grant", "expired authorization code");
    }
    if f.get("redirect_uri") != Some(&code.redirect_uri) {
        return bad("redirect_uri_mismatch", "redirect_uri must match configuration");
    }
    match client_secret.as_deref() {
        Some(secret) if !secret_matches(secret, &app.consumer_secret) => {
            return bad("invalid_client", "invalid client credentials");
        }
        None if app.require_secret => return bad("invalid_client", "invalid client credentials"),
        _ => {}
    }
    if let Some(challenge) = &code.code_challenge {
        let Some(verifier) = f.get("code_verifier") else {
            return bad("invalid_grant", "code_verifier required");
        };
        let digest = digest::digest(&digest::SHA256, verifier.as_bytes());
        if !secret_matches(&URL_SAFE_NO_PAD.encode(digest.as_ref()), challenge) {
            return bad("invalid_request", "invalid code verifier");
        }
    }
    let Some(user) = world.users.get(&code.user_id).cloned() else {
        return bad("invalid_grant", "expired authorization code");
    };
    if let Some(refused) = gate(&world, &app, &user, TokenRequest::SignIn, app.ip_relaxation, peer) {
        return refused;
    }
    let (access, refresh) = world.issue_tokens(
        &code.user_id,
        &app.consumer_key,
        &code.scopes,
        wants_refresh(&code.scopes),
        &code.login_base,
        now,
    );
    if let Some(token) = &refresh {
        // A web-server sign-in's refresh token is one of the user's five approvals for the app.
        world.count_approval(&app.consumer_key, &code.user_id, token);
    }
    token_reply(
        now,
        Grant {
            access,
            refresh,
            scopes: &code.scopes,
            user_id: &code.user_id,
            org_id: &code.org_id,
            instance_url: instance_url(&world, listener, &code.org_id),
            login_base: &code.login_base,
            secret: &app.consumer_secret,
        },
    )
}

fn refresh_grant(
    shared: &Shared,
    host: HostKind,
    listener: &Listener,
    peer: IpAddr,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Response {
    let (client_id, client_secret) = client_auth(headers, f);
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    let Some(app) = client_id.as_deref().and_then(|id| world.apps.get(id)).cloned() else {
        return bad("invalid_client_id", "client identifier invalid");
    };
    match client_secret.as_deref() {
        Some(secret) if !secret_matches(secret, &app.consumer_secret) => {
            return bad("invalid_client", "invalid client credentials");
        }
        None if app.require_secret_for_refresh => return bad("invalid_client", "invalid client credentials"),
        _ => {}
    }
    let Some(token) = f.get("refresh_token") else {
        return bad("invalid_grant", "expired access/refresh token");
    };
    if let Some((family, key)) = world.retired_refresh.get(token).cloned() {
        // A rotated-away token presented again (by its own app): Salesforce revokes the
        // current refresh token of its family and the access tokens issued from it.
        if key == app.consumer_key {
            world.revoke_family(&family);
        }
        return bad("invalid_grant", "expired access/refresh token");
    }
    let Some(grant) = world.refresh_tokens.get(token).cloned() else {
        return bad("invalid_grant", "expired access/refresh token");
    };
    if grant.consumer_key != app.consumer_key {
        return bad("invalid_grant", "expired access/refresh token");
    }
    if policy::refresh_expired(&app, &grant, now) {
        world.revoke_refresh(token);
        return bad("invalid_grant", "expired access/refresh token");
    }
    let Some(user) = world.users.get(&grant.user_id).cloned() else {
        return bad("invalid_grant", "expired access/refresh token");
    };
    if let Some(refused) = gate(&world, &app, &user, TokenRequest::Refresh, app.ip_relaxation, peer) {
        return refused;
    }
    // A refresh at a login host must match the org's kind, as the token's org lives there.
    let sandbox = world.orgs[&grant.org_id].sandbox;
    if (host == HostKind::Login && sandbox) || (host == HostKind::Test && !sandbox) {
        return bad("invalid_grant", "expired access/refresh token");
    }
    let (refresh, source) = if app.rotate_refresh_tokens {
        let Some(fresh) = world.rotate_refresh(token, now) else {
            return bad("invalid_grant", "expired access/refresh token");
        };
        let access = world.issue_access_token(
            &user.id,
            &app.consumer_key,
            &grant.scopes,
            Some(fresh.clone()),
            &grant.login_base,
            now,
        );
        (Some(fresh), access)
    } else {
        if let Some(live) = world.refresh_tokens.get_mut(token) {
            live.last_used_ms = now;
        }
        let access = world.issue_access_token(
            &user.id,
            &app.consumer_key,
            &grant.scopes,
            Some(token.clone()),
            &grant.login_base,
            now,
        );
        (None, access)
    };
    token_reply(
        now,
        Grant {
            access: source,
            refresh,
            scopes: &grant.scopes,
            user_id: &user.id,
            org_id: &grant.org_id,
            instance_url: instance_url(&world, listener, &grant.org_id),
            login_base: &grant.login_base,
            secret: &app.consumer_secret,
        },
    )
}

fn audience_ok(aud: &[String], host: HostKind, sandbox: bool, listener: &Listener) -> bool {
    let kind = match host {
        HostKind::Instance if sandbox => HostKind::Test,
        HostKind::Instance => HostKind::Login,
        other => other,
    };
    let mut accepted: Vec<String> = vec![kind.salesforce_audience().unwrap_or_default().to_string()];
    // The emulator's own URL for that login host works as audience too, over either scheme.
    let own = format!("{}{}", listener.base, kind.prefix());
    accepted.push(own.replacen("https://", "http://", 1));
    accepted.push(own.replacen("http://", "https://", 1));
    aud.iter().any(|a| accepted.iter().any(|x| x == a.trim_end_matches('/')))
}

fn jwt_grant(
    shared: &Shared,
    host: HostKind,
    listener: &Listener,
    peer: IpAddr,
    f: &HashMap<String, String>,
) -> Response {
    let Some(assertion) = f.get("assertion") else {
        return bad("invalid_request", "assertion required");
    };
    let Ok((claims, input, signature)) = crate::jwt::decode_unverified(assertion) else {
        return bad("invalid_grant", "invalid assertion");
    };
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    let Some(app) = world.apps.get(&claims.iss).cloned() else {
        return bad("invalid_client_id", "client identifier invalid");
    };
    let Some(public_key) = &app.jwt_public_key else {
        return bad("invalid_grant", "invalid assertion");
    };
    if crate::jwt::verify(&input, &signature, public_key).is_err() {
        return bad("invalid_grant", "invalid assertion");
    }
    if claims.exp <= now / 1000 {
        return bad("invalid_grant", "expired authorization code");
    }
    let Some(user) = world.user_by_username(&claims.sub).cloned() else {
        return bad("invalid_grant", "user hasn't approved this consumer");
    };
    let sandbox = world.orgs[&user.org_id].sandbox;
    // A sandbox user does not exist behind the production login host (and vice versa).
    if (host == HostKind::Login && sandbox) || (host == HostKind::Test && !sandbox) {
        return bad("invalid_grant", "user hasn't approved this consumer");
    }
    if !audience_ok(&claims.aud, host, sandbox, listener) {
        return bad("invalid_grant", "audience is invalid");
    }
    // The JWT bearer flow always enforces the profile's login IP ranges.
    if let Some(refused) = gate(&world, &app, &user, TokenRequest::SignIn, IpRelaxation::Enforce, peer) {
        return refused;
    }
    let approved = app.pre_authorized.contains(&user.username.to_ascii_lowercase())
        || world.approvals.contains(&(app.consumer_key.clone(), user.id.clone()));
    if !approved {
        return bad("invalid_grant", "user hasn't approved this consumer");
    }
    let kind = match host {
        HostKind::Instance if sandbox => HostKind::Test,
        HostKind::Instance => HostKind::Login,
        other => other,
    };
    let login_base = login_base(listener, kind);
    let scopes: Vec<String> =
        app.scopes.iter().filter(|s| *s != "refresh_token" && *s != "offline_access").cloned().collect();
    let access = world.issue_access_token(&user.id, &app.consumer_key, &scopes, None, &login_base, now);
    token_reply(
        now,
        Grant {
            access,
            refresh: None,
            scopes: &scopes,
            user_id: &user.id,
            org_id: &user.org_id,
            instance_url: instance_url(&world, listener, &user.org_id),
            login_base: &login_base,
            secret: &app.consumer_secret,
        },
    )
}

fn client_credentials_grant(
    shared: &Shared,
    host: HostKind,
    listener: &Listener,
    peer: IpAddr,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Response {
    if host != HostKind::Instance {
        return bad("invalid_grant", "request not supported on this domain");
    }
    let (client_id, client_secret) = client_auth(headers, f);
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    let Some(app) = client_id.as_deref().and_then(|id| world.apps.get(id)).cloned() else {
        return bad("invalid_client_id", "client identifier invalid");
    };
    if !client_secret.as_deref().is_some_and(|s| secret_matches(s, &app.consumer_secret)) {
        return bad("invalid_client", "invalid client credentials");
    }
    let Some(user) = app.client_credentials_user.as_deref().and_then(|u| world.user_by_username(u)).cloned() else {
        return bad("invalid_grant", "no client credentials user enabled");
    };
    if let Some(refused) = gate(&world, &app, &user, TokenRequest::SignIn, app.ip_relaxation, peer) {
        return refused;
    }
    let login_base = login_base(listener, HostKind::Instance);
    let scopes: Vec<String> =
        app.scopes.iter().filter(|s| *s != "refresh_token" && *s != "offline_access").cloned().collect();
    let access = world.issue_access_token(&user.id, &app.consumer_key, &scopes, None, &login_base, now);
    token_reply(
        now,
        Grant {
            access,
            refresh: None,
            scopes: &scopes,
            user_id: &user.id,
            org_id: &user.org_id,
            instance_url: instance_url(&world, listener, &user.org_id),
            login_base: &login_base,
            secret: &app.consumer_secret,
        },
    )
}

/// Token introspection (issue #14): "allows all OAuth connected apps to check the current
/// state of an OAuth 2.0 access or refresh token"; an app introspects its own tokens (the
/// org-wide "introspect all tokens" setting is not modelled). Client credentials in the body
/// or HTTP Basic; an unknown, dead or another app's token is `{"active": false}`.
async fn introspect(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form_params(&headers, &body);
    let (client_id, client_secret) = client_auth(&headers, &f);
    let now = shared.clock.now_ms();
    let world = shared.world();
    let Some(app) = client_id.as_deref().and_then(|id| world.apps.get(id)) else {
        return with_op(bad("invalid_client_id", "client identifier invalid"), "introspect", None);
    };
    if !client_secret.as_deref().is_some_and(|s| secret_matches(s, &app.consumer_secret)) {
        return with_op(bad("invalid_client", "invalid client credentials"), "introspect", None);
    }
    let token = f.get("token").map(String::as_str).unwrap_or_default();
    let describe = |user_id: &str, login_base: &str, org_id: &str, scopes: &[String], kind: &str, iat: i64| {
        let username = world.users.get(user_id).map(|u| u.username.clone()).unwrap_or_default();
        json!({
            "active": true,
            "scope": scopes.join(" "),
            "client_id": app.consumer_key,
            "username": username,
            "sub": format!("{login_base}/id/{org_id}/{user_id}"),
            "token_type": kind,
            "iat": iat / 1000,
            "nbf": iat / 1000,
        })
    };
    let answer = if let Some(s) =
        world.sessions.get(token).filter(|s| s.consumer_key == app.consumer_key && s.expires_ms > now)
    {
        let timeout = world.orgs.get(&s.org_id).map(|o| o.session_timeout_ms).unwrap_or_default();
        let mut body =
            describe(&s.user_id, &s.login_base, &s.org_id, &s.scopes, "access_token", s.expires_ms - timeout);
        body["exp"] = json!(s.expires_ms / 1000);
        body
    } else if let Some(g) = world
        .refresh_tokens
        .get(token)
        .filter(|g| g.consumer_key == app.consumer_key && !policy::refresh_expired(app, g, now))
    {
        describe(&g.user_id, &g.login_base, &g.org_id, &g.scopes, "refresh_token", g.issued_ms)
    } else {
        json!({"active": false})
    };
    with_op(axum::Json(answer).into_response(), "introspect", None)
}

async fn revoke(
    State(shared): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = form_params(&headers, &body);
    let Some(token) = f.get("token").or_else(|| q.get("token")) else {
        return with_op(bad("invalid_request", "token required"), "revoke", None);
    };
    let mut world = shared.world();
    let owner = world
        .refresh_tokens
        .get(token)
        .map(|g| (g.org_id.clone(), g.user_id.clone()))
        .or_else(|| world.sessions.get(token).map(|s| (s.org_id.clone(), s.user_id.clone())));
    let revoked = world.revoke_refresh(token) || world.sessions.remove(token).is_some();
    let actor = owner.map(|(org_id, user_id)| Actor { org_id, user_id: Some(user_id) });
    if !revoked {
        return with_op(bad("invalid_token", "invalid token"), "revoke", actor);
    }
    with_op(StatusCode::OK.into_response(), "revoke", actor)
}

/// The access token from `Authorization: Bearer`/`OAuth`, or an `oauth_token` parameter.
fn bearer(headers: &HeaderMap, q: &HashMap<String, String>) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("OAuth ")))
        .map(|t| t.trim().to_string())
        .or_else(|| q.get("oauth_token").cloned())
}

fn bad_token() -> Response {
    (StatusCode::FORBIDDEN, "Bad_OAuth_Token").into_response()
}

async fn userinfo(
    State(shared): State<Shared>,
    Extension(listener): Extension<Listener>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    let Some(session) = bearer(&headers, &q).and_then(|t| world.touch_session(&t, now)) else {
        return with_op(bad_token(), "userinfo", None);
    };
    let user = world.users[&session.user_id].clone();
    let org = world.orgs[&session.org_id].clone();
    let id = format!("{}/id/{}/{}", session.login_base, org.id, user.id);
    let body = json!({
        "sub": id,
        "user_id": user.id,
        "organization_id": org.id,
        "preferred_username": user.username,
        "nickname": user.username.split('@').next().unwrap_or_default(),
        "name": user.display_name(),
        "email": user.email,
        "email_verified": true,
        "given_name": user.first_name,
        "family_name": user.last_name,
        "zoneinfo": "America/Los_Angeles",
        "photos": photos(&listener, &user.id),
        "profile": format!("{}/{}", listener.base, user.id),
        "picture": format!("{}/img/userprofile/default_profile_200_v2.png", listener.base),
        "address": {"country": "US"},
        "is_salesforce_integration_user": false,
        "urls": urls(&listener, &org.id, &user.id, None),
        "active": user.active,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": -28_800_000,
        "updated_at": crate::clock::sf_datetime(org.created_ms),
        "is_app_installed": true,
    });
    with_op(axum::Json(body).into_response(), "userinfo", Some(Actor { org_id: org.id, user_id: Some(user.id) }))
}

fn photos(listener: &Listener, user_id: &str) -> Value {
    json!({
        "picture": format!("{}/profilephoto/005/F?u={user_id}", listener.base),
        "thumbnail": format!("{}/profilephoto/005/T?u={user_id}", listener.base),
    })
}

/// The `urls` map of identity replies; `{version}` stays literal unless a version is given.
fn urls(listener: &Listener, org_id: &str, user_id: &str, version: Option<&str>) -> Value {
    let v = version.unwrap_or("{version}");
    let base = &listener.base;
    json!({
        "enterprise": format!("{base}/services/Soap/c/{v}/{org_id}"),
        "metadata": format!("{base}/services/Soap/m/{v}/{org_id}"),
        "partner": format!("{base}/services/Soap/u/{v}/{org_id}"),
        "rest": format!("{base}/services/data/v{v}/"),
        "sobjects": format!("{base}/services/data/v{v}/sobjects/"),
        "search": format!("{base}/services/data/v{v}/search/"),
        "query": format!("{base}/services/data/v{v}/query/"),
        "recent": format!("{base}/services/data/v{v}/recent/"),
        "tooling_soap": format!("{base}/services/Soap/T/{v}/{org_id}"),
        "tooling_rest": format!("{base}/services/data/v{v}/tooling/"),
        "profile": format!("{base}/{user_id}"),
        "feeds": format!("{base}/services/data/v{v}/chatter/feeds"),
        "groups": format!("{base}/services/data/v{v}/chatter/groups"),
        "users": format!("{base}/services/data/v{v}/chatter/users"),
        "feed_items": format!("{base}/services/data/v{v}/chatter/feed-items"),
        "feed_elements": format!("{base}/services/data/v{v}/chatter/feed-elements"),
        "custom_domain": base.to_string(),
    })
}

async fn identity(
    State(shared): State<Shared>,
    Extension(listener): Extension<Listener>,
    Path((org_id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    let Some(session) = bearer(&headers, &q).and_then(|t| world.touch_session(&t, now)) else {
        return with_op(bad_token(), "identity", None);
    };
    let actor = Some(Actor { org_id: session.org_id.clone(), user_id: Some(session.user_id.clone()) });
    // The identity URL needs the `id` scope (or a synonym: profile, email, address, phone) or
    // `full` (docs/salesforce-behaviour.md). Salesforce does not document the refusal's body;
    // a 403 in the identity service's plain-text style is the stricter reading.
    let granted =
        session.scopes.iter().any(|s| matches!(s.as_str(), "id" | "profile" | "email" | "address" | "phone" | "full"));
    if !granted {
        return with_op((StatusCode::FORBIDDEN, "Insufficient_Scope").into_response(), "identity", actor);
    }
    let (Some(org_id), Some(user_id)) = (ids::normalize(&org_id), ids::normalize(&user_id)) else {
        return with_op((StatusCode::NOT_FOUND, "Bad_Id").into_response(), "identity", actor);
    };
    let Some(user) = world.users.get(&user_id).filter(|u| u.org_id == org_id && org_id == session.org_id).cloned()
    else {
        return with_op((StatusCode::FORBIDDEN, "Bad_Id").into_response(), "identity", actor);
    };
    let version = q.get("version").map(|v| {
        if v == "latest" { format!("{}.0", crate::LATEST_API_VERSION) } else { v.trim_start_matches('v').to_string() }
    });
    let body = json!({
        "id": format!("{}/id/{}/{}", session.login_base, org_id, user.id),
        "asserted_user": session.user_id == user.id,
        "user_id": user.id,
        "organization_id": org_id,
        "username": user.username,
        "nick_name": user.username.split('@').next().unwrap_or_default(),
        "display_name": user.display_name(),
        "email": user.email,
        "email_verified": true,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "timezone": "America/Los_Angeles",
        "photos": photos(&listener, &user.id),
        "addr_street": null, "addr_city": null, "addr_state": null, "addr_country": "US", "addr_zip": null,
        "mobile_phone": null,
        "mobile_phone_verified": false,
        "is_lightning_login_user": false,
        "status": {"created_date": null, "body": null},
        "urls": urls(&listener, &org_id, &user.id, version.as_deref()),
        "active": user.active,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": -28_800_000,
        "last_modified_date": crate::clock::sf_datetime(world.orgs[&org_id].created_ms),
        "is_app_installed": true,
    });
    with_op(axum::Json(body).into_response(), "identity", actor)
}
