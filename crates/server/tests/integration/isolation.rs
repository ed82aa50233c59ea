//! Tenant isolation for every route (issue #3's acceptance): the route list comes from the
//! OpenAPI document, which is built from the router itself, so a new route is covered (or this
//! test fails asking how to treat it).
//! - Account B's admin, using account A's ids, gets 404 on every route that takes an id.
//! - Lists B can read never contain any of A's ids.
//! - A viewer of A is refused (403) every change, except their own session, password and tokens.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{KEY, OAUTH_KEY, OAUTH_SECRET, TestApp, spawn};

/// Creates one of everything in account A; returns the ids to put into paths.
async fn account_a_objects(app: &TestApp) -> Vec<(&'static str, String)> {
    let account = app.accounts["A"].to_string();
    app.call("operator", Method::PUT, &format!("/accounts/{account}/connectors"), Some(json!({"enabled": true}))).await;
    let (_, connection) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt("A's", "admin@acme.test"))).await;
    let (_, system) = app.call("admin_a", Method::POST, "/systems", Some(json!({"name": "A's system"}))).await;
    let (_, environment) = app.call("admin_a", Method::POST, "/environments", Some(json!({"name": "A's env"}))).await;
    let (_, users) = app.call("owner_a", Method::GET, "/users", None).await;
    let user = users.as_array().expect("users")[0]["id"].as_str().expect("user").to_string();
    let (_, token) = app.call("admin_a", Method::POST, "/tokens", Some(json!({"name": "A's token"}))).await;
    let (_, invitation) = app
        .call("owner_a", Method::POST, "/users", Some(json!({"email": "invited@a.example", "role": "viewer"})))
        .await;
    let (system_id, env_id, connection_id) = (
        system["id"].as_str().expect("system"),
        environment["id"].as_str().expect("environment"),
        connection["id"].as_str().expect("connection"),
    );
    let (status, _) = app
        .call(
            "admin_a",
            Method::PUT,
            &format!("/systems/{system_id}/environments/{env_id}/connections/{connection_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let deployment = testkit::deploy(app, "admin_a", system_id, env_id, "A_s_Resource", &[("a.js", b"1")]).await;
    // A webhook endpoint and a delivery of its test event (#18).
    let (status, webhook) =
        app.call("admin_a", Method::POST, "/webhooks", Some(json!({"url": "https://hooks.example.com/a"}))).await;
    assert_eq!(status, 201, "{webhook}");
    let webhook = webhook["webhook"]["id"].as_str().expect("webhook").to_string();
    let (status, sent) = app.call("admin_a", Method::POST, &format!("/webhooks/{webhook}/test"), None).await;
    assert_eq!(status, 202, "{sent}");
    vec![
        ("wh", webhook),
        ("dlv", sent["delivery_id"].as_str().expect("delivery").to_string()),
        ("dep", deployment["id"].as_str().expect("deployment").to_string()),
        ("conn", connection["id"].as_str().expect("connection").to_string()),
        ("sys", system["id"].as_str().expect("system").to_string()),
        ("env", environment["id"].as_str().expect("environment").to_string()),
        ("user", user),
        ("inv", invitation["id"].as_str().expect("invitation").to_string()),
        ("tok", token["id"].as_str().expect("token").to_string()),
        ("acct", account),
    ]
}

/// The id of the kind a path's `{id}` names.
fn kind_of(path: &str) -> &'static str {
    for (prefix, kind) in [
        ("/api/v1/connections/", "conn"),
        ("/api/v1/systems/", "sys"),
        ("/api/v1/environments/", "env"),
        ("/api/v1/users/", "user"),
        ("/api/v1/tokens/", "tok"),
        ("/api/v1/accounts/", "acct"),
        ("/api/v1/deployments/", "dep"),
        ("/api/v1/invitations/", "inv"),
        ("/api/v1/webhooks/", "wh"),
        ("/api/v1/deliveries/", "dlv"),
    ] {
        if path.starts_with(prefix) {
            return kind;
        }
    }
    panic!("{path}: which kind of id does it take? add it to kind_of")
}

/// Fills a route's other placeholders with account A's ids.
fn fill(path: &str, ids: &[(&'static str, String)]) -> String {
    let of = |kind: &str| ids.iter().find(|(k, _)| *k == kind).map(|(_, v)| v.clone()).unwrap_or_default();
    path.replace("{env}", &of("env")).replace("{connection}", &of("conn")).replace("{domain}", "acme.example")
}

/// A plausible body for each change, so the route reaches its account check rather than
/// stopping at a missing body.
fn body_for(method: &Method, path: &str, env: &str) -> Option<Value> {
    let oauth = json!({"environment_id": env, "org_type": "production", "login_host": "login",
                       "consumer_key": OAUTH_KEY, "consumer_secret": OAUTH_SECRET});
    match (method.as_str(), path) {
        ("PATCH", "/api/v1/connections/{id}") => Some(json!({"name": "Taken over"})),
        ("PATCH", "/api/v1/systems/{id}") => Some(json!({"name": "Taken over"})),
        ("PATCH", "/api/v1/users/{id}") => Some(json!({"role": "owner"})),
        ("PUT", "/api/v1/accounts/{id}/connectors") => Some(json!({"enabled": false})),
        ("PUT", "/api/v1/account/sign-in") => Some(json!({"two_factor_required": false})),
        ("PUT", "/api/v1/account/sso") => Some(json!({"issuer": "https://idp.example", "client_id": "x"})),
        ("POST", "/api/v1/account/sso/domains") => Some(json!({"domain": "acme.example"})),
        ("POST", "/api/v1/systems/{id}/connectors") => Some(oauth),
        ("PUT", "/api/v1/systems/{id}/loader") => Some(json!({"scripts": ["player.js"]})),
        ("PATCH", "/api/v1/webhooks/{id}") => Some(json!({"enabled": false})),
        _ => None,
    }
}

fn operations() -> Vec<(Method, String)> {
    let doc: Value = serde_json::from_str(&server::api::openapi_json()).expect("document");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                ops.push((method.to_uppercase().parse().expect("method"), path.clone()));
            }
        }
    }
    assert!(ops.len() >= 30, "the document lists {} operations", ops.len());
    ops
}

#[tokio::test]
async fn another_account_s_ids_are_not_found_on_any_route() {
    let app = spawn().await;
    let ids = account_a_objects(&app).await;
    let env = ids.iter().find(|(k, _)| *k == "env").map(|(_, v)| v.clone()).expect("env");
    let mut checked = 0;
    for (method, path) in operations() {
        if !path.contains("{id}") {
            continue;
        }
        let kind = kind_of(&path);
        let id = &ids.iter().find(|(k, _)| *k == kind).expect("an id of that kind").1;
        let url = fill(&path.trim_start_matches("/api/v1").replace("{id}", id), &ids);
        let (status, body) = app.call("admin_b", method.clone(), &url, body_for(&method, &path, &env)).await;
        // The operator's account routes are not account-scoped: B's owner is refused outright.
        let expected = if kind == "acct" { 403 } else { 404 };
        assert_eq!(status, expected, "{method} {path} as account B: {body}");
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} routes take an id");
    // A's objects are all still there, unchanged.
    let (_, connection) = app
        .call(
            "admin_a",
            Method::GET,
            &format!("/connections/{}", ids.iter().find(|(k, _)| *k == "conn").expect("conn").1),
            None,
        )
        .await;
    assert_eq!(connection["name"], "A's");
    let (_, tokens) = app.call("admin_a", Method::GET, "/tokens", None).await;
    assert_eq!(tokens[0]["revoked_at"], Value::Null);
}

#[tokio::test]
async fn lists_never_show_another_account_s_data() {
    let app = spawn().await;
    let ids = account_a_objects(&app).await;
    for (method, path) in operations() {
        if method != Method::GET || path.contains("{id}") || path == "/api/v1/accounts" {
            continue;
        }
        let query =
            if path == "/api/v1/connections/approvals" { format!("?consumer_key={KEY}") } else { String::new() };
        let (status, body) =
            app.call("admin_b", Method::GET, &format!("{}{query}", path.trim_start_matches("/api/v1")), None).await;
        // An account without single sign-on has none to show.
        let none_set = path == "/api/v1/account/sso" && status == 404;
        assert!(status == 200 || status == 401 || none_set, "GET {path}: {status} {body}");
        let text = body.to_string();
        for (kind, id) in &ids {
            if *kind != "acct" {
                assert!(!text.contains(id.as_str()), "GET {path} shows account A's {kind} to account B: {text}");
            }
        }
        assert!(!text.contains("A's"), "GET {path} shows account A's names: {text}");
    }
}

#[tokio::test]
async fn a_viewer_cannot_change_anything_but_their_own_session_and_tokens() {
    let app = spawn().await;
    let ids = account_a_objects(&app).await;
    let env = ids.iter().find(|(k, _)| *k == "env").map(|(_, v)| v.clone()).expect("env");
    let self_service = [
        "/api/v1/session",
        "/api/v1/me/password",
        "/api/v1/me/sessions",
        "/api/v1/me/sessions/{handle}",
        "/api/v1/me/two-factor",
        "/api/v1/me/two-factor/confirm",
        "/api/v1/me/two-factor/disable",
        "/api/v1/me/two-factor/recovery-codes",
        "/api/v1/me/notifications",
        "/api/v1/session/account",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
    ];
    let mut refused = 0;
    for (method, path) in operations() {
        if method == Method::GET || self_service.contains(&path.as_str()) {
            continue;
        }
        let url = if path.contains("{id}") {
            let kind = kind_of(&path);
            fill(&path.replace("{id}", &ids.iter().find(|(k, _)| *k == kind).expect("id").1), &ids)
        } else {
            path.clone()
        };
        let body = body_for(&method, &path, &env).or_else(|| Some(json!({})));
        let (status, answer) = app.call("viewer_a", method.clone(), url.trim_start_matches("/api/v1"), body).await;
        assert_eq!(status, 403, "{method} {path} as a viewer: {answer}");
        refused += 1;
    }
    assert!(refused >= 15, "only {refused} changes were tried");
    let (_, connection) = app
        .call(
            "admin_a",
            Method::GET,
            &format!("/connections/{}", ids.iter().find(|(k, _)| *k == "conn").expect("conn").1),
            None,
        )
        .await;
    assert_eq!(connection["name"], "A's", "nothing changed");
}
