//! The typed API client (`crates/client`) against the running server: every typed answer
//! re-serializes to exactly the JSON the server sent for the same request, so a field added,
//! renamed or retyped on either side fails here. Its errors carry the server's code, message,
//! field errors, request id and, for a failed check, every step.

use client::{ConnectionInput, ListOptions};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{KEY, deploy, finished, spawn};

fn same(typed: &impl serde::Serialize, raw: &Value) {
    assert_eq!(&serde_json::to_value(typed).expect("json"), raw, "the typed answer differs from the server's");
}

#[tokio::test]
async fn every_typed_answer_is_the_json_the_server_sent() {
    let app = spawn().await;
    let api = app.client("admin_a");
    let input = ConnectionInput::jwt("Typed", "production", "login", KEY, "admin@acme.test", &app.private_key);

    let report = api.test_connection(&input).await.expect("test");
    assert!(report.passed, "{report:?}");
    let (_, raw) =
        app.call("admin_a", Method::POST, "/connections/test", Some(app.jwt("Typed", "admin@acme.test"))).await;
    same(&report, &raw);

    let created = api.create_connection(&input).await.expect("create");
    let (_, raw) = app.call("admin_a", Method::GET, &format!("/connections/{}", created.id), None).await;
    same(&created, &raw);
    same(&api.connection(&created.id).await.expect("show"), &raw);

    let options = ListOptions { search: Some("acme".into()), per_page: Some(10), ..ListOptions::default() };
    let page = api.connections(&options).await.expect("list");
    let (_, raw) = app.call("admin_a", Method::GET, "/connections?search=acme&per_page=10", None).await;
    same(&page, &raw);
    assert_eq!(page.items.len(), 1);

    let renamed = api.rename_connection(&created.id, "Typed again").await.expect("rename");
    assert_eq!(renamed.name.as_deref(), Some("Typed again"));
    let checked = api.check_connection(&created.id).await.expect("check");
    assert_eq!(checked.health, "Logged in");
    let (_, raw) = app.call("admin_a", Method::GET, &format!("/connections/{}", created.id), None).await;
    same(&api.connection(&created.id).await.expect("show"), &raw);

    let (_, system) = app.call("admin_a", Method::POST, "/systems", Some(json!({"name": "Typed"}))).await;
    let system = system["id"].as_str().expect("system").to_string();
    let (_, envs) = app.call("admin_a", Method::GET, "/environments", None).await;
    let env = envs[0]["id"].as_str().expect("env").to_string();
    let path = format!("/systems/{system}/environments/{env}/connections/{}", created.id);
    assert_eq!(app.call("admin_a", Method::PUT, &path, None).await.0, 204);
    let started = deploy(&app, "admin_a", &system, &env, "Typed", &[("a.js", b"1")]).await;
    let id = started["id"].as_str().expect("id");
    let done = finished(&app, "admin_a", id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (_, raw) = app.call("admin_a", Method::GET, &format!("/deployments/{id}"), None).await;
    same(&api.deployment(id).await.expect("deployment"), &raw);

    let deleted = api.delete_connection(&created.id).await.expect("delete");
    assert!(deleted.deleted && deleted.revoked, "{deleted:?}");
}

#[tokio::test]
async fn errors_carry_the_servers_code_fields_request_id_and_failed_check() {
    let app = spawn().await;
    let api = app.client("admin_a");
    let unknown = api.connection("conn_0123456789abcdef0123456789abcdef").await.expect_err("unknown");
    let e = unknown.api().expect("the server's error");
    assert_eq!((e.status, e.code.as_str()), (404, "not_found"), "{e}");
    assert!(e.request_id.is_some(), "{e}");

    let bad = ConnectionInput::jwt("", "mainframe", "login", KEY, "admin@acme.test", &app.private_key);
    let invalid = api.create_connection(&bad).await.expect_err("invalid");
    let e = invalid.api().expect("the server's error");
    assert_eq!((e.status, e.code.as_str()), (422, "invalid"), "{e}");
    let fields: Vec<&str> = e.fields.iter().map(|f| f.field.as_str()).collect();
    assert!(fields.contains(&"name") && fields.contains(&"org_type"), "{e}");
    assert!(invalid.to_string().contains("\n  name: "), "every field on its own line: {invalid}");

    let stranger = ConnectionInput::jwt("Stranger", "production", "login", KEY, "nobody@acme.test", &app.private_key);
    let failed = api.create_connection(&stranger).await.expect_err("check fails");
    let e = failed.api().expect("the server's error");
    assert_eq!(e.code, "check_failed", "{e}");
    let report = e.check.as_ref().expect("the check's report");
    assert_eq!(report.failure().expect("a failed step").step, "token_obtained", "{report:?}");

    let viewer = app.client("viewer_a").create_connection(&stranger).await.expect_err("forbidden");
    assert_eq!(viewer.api().map(|e| e.status), Some(403), "{viewer}");

    let nowhere = client::Client::new("http://127.0.0.1:9", "lb_x").connections(&ListOptions::default()).await;
    let message = nowhere.expect_err("unreachable").to_string();
    assert!(message.contains("cannot reach Lightbridge at http://127.0.0.1:9"), "{message}");
}
