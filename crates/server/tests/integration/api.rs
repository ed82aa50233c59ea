//! The connections API end to end: the server on port 0, the emulator, a fresh SQLite file.

use emulator::{FaultAction, FaultRule};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{KEY, SECRET, spawn};

#[tokio::test]
async fn an_admin_creates_a_jwt_connection_after_a_passing_check_and_sees_it_listed() {
    let app = spawn().await;
    let (status, created) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Acme prod", "admin@acme.test"))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["account_name"], "Acme Production");
    assert_eq!(created["created_by"], "admin@acme.test");
    assert_eq!(created["environment"], "Production");
    assert_eq!(created["connection_status"], Value::Null, "legacy-only columns are empty for new connections");
    let (status, listed) = app.call("admin_a", reqwest::Method::GET, "/connections?search=ADMIN@ACME", None).await;
    assert_eq!((status, listed["total"].as_u64()), (200, Some(1)), "{listed}");
    let (_, none) = app.call("admin_a", reqwest::Method::GET, "/connections?search=nobody", None).await;
    assert_eq!(none["total"], 0);
    let id = created["id"].as_str().expect("id");
    let (status, shown) = app.call("viewer_a", reqwest::Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!((status, shown["name"].as_str()), (200, Some("Acme prod")), "viewers can look");
    let (status, dup) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("acme PROD", "admin@acme.test"))).await;
    assert_eq!((status, dup["error"]["code"].as_str()), (409, Some("conflict")), "{dup}");
}

#[tokio::test]
async fn test_connection_reports_every_step_names_the_missing_permission_and_saves_nothing() {
    let app = spawn().await;
    let (status, report) = app
        .call("admin_a", reqwest::Method::POST, "/connections/test", Some(app.jwt("Editor", "editor@acme.test")))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["passed"], false);
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 7);
    let failed = steps.iter().find(|s| s["outcome"] == "failed").expect("a failed step");
    assert_eq!(failed["step"], "customize_application");
    assert!(failed["fix"].as_str().expect("fix").contains("Customize Application"));
    let (status, refused) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Editor", "editor@acme.test"))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("check_failed")), "{refused}");
    assert_eq!(refused["check"]["steps"].as_array().map(Vec::len), Some(7));
    let (_, listed) = app.call("admin_a", reqwest::Method::GET, "/connections", None).await;
    assert_eq!(listed["total"], 0, "nothing was saved");
    let (_, passing) = app
        .call("admin_a", reqwest::Method::POST, "/connections/test", Some(app.jwt("Admin", "admin@acme.test")))
        .await;
    assert_eq!(passing["passed"], true, "{passing}");
}

#[tokio::test]
async fn a_sandbox_user_against_the_production_host_is_refused_with_a_fix() {
    let app = spawn().await;
    let (_, report) = app
        .call("admin_a", reqwest::Method::POST, "/connections/test", Some(app.jwt("UAT", "admin@acme.test.uat")))
        .await;
    let failed = &report["steps"][0];
    assert_eq!(
        (failed["step"].as_str(), failed["outcome"].as_str()),
        (Some("token_obtained"), Some("failed")),
        "{report}"
    );
    assert!(failed["fix"].as_str().expect("fix").contains("org type"), "{failed}");
}

#[tokio::test]
async fn bad_input_names_every_wrong_field() {
    let app = spawn().await;
    let body = json!({"name": " ", "org_type": "staging", "login_host": "https://acme.my.salesforce.com/x",
                      "auth": {"method": "jwt", "consumer_key": "", "username": "u", "private_key": "not a key"}});
    let (status, err) = app.call("admin_a", reqwest::Method::POST, "/connections", Some(body)).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("invalid")), "{err}");
    let fields: Vec<&str> =
        err["error"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    for field in ["name", "org_type", "login_host", "auth.consumer_key", "auth.private_key"] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    let (status, err) = app.call("admin_a", reqwest::Method::POST, "/connections", Some(json!({"name": "x"}))).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("invalid")),
        "a malformed body is a clear error, not a 500"
    );
    let cc = json!({"name": "cc", "org_type": "production", "login_host": "login", "auth": {"method": "client_credentials", "consumer_key": KEY, "consumer_secret": SECRET}});
    let (_, err) = app.call("admin_a", reqwest::Method::POST, "/connections", Some(cc)).await;
    assert!(err["error"]["fields"].to_string().contains("My Domain"), "{err}");
    let outside = json!({"name": "x", "org_type": "production", "login_host": "https://evil.example", "auth": {"method": "client_credentials", "consumer_key": KEY, "consumer_secret": SECRET}});
    let (status, err) = app.call("admin_a", reqwest::Method::POST, "/connections/test", Some(outside)).await;
    assert_eq!(status, 422, "tokens are not sent to a host outside the policy: {err}");
}

#[tokio::test]
async fn accounts_never_see_each_other_and_viewers_change_nothing() {
    let app = spawn().await;
    let (_, created) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Mine", "admin@acme.test"))).await;
    let id = created["id"].as_str().expect("id").to_string();
    // Account B, guessing A's id, gets 404 on every route; its list is empty.
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/connections/{id}"), None),
        (reqwest::Method::DELETE, format!("/connections/{id}"), None),
        (reqwest::Method::POST, format!("/connections/{id}/reconnect"), None),
    ] {
        let (status, body) = app.call("admin_b", method, &path, body).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{path}");
    }
    let (_, listed) = app.call("admin_b", reqwest::Method::GET, "/connections", None).await;
    assert_eq!(listed["total"], 0);
    // A viewer of A may look but not change.
    let (status, _) = app.call("viewer_a", reqwest::Method::DELETE, &format!("/connections/{id}"), None).await;
    assert_eq!(status, 403);
    let (status, _) =
        app.call("viewer_a", reqwest::Method::POST, "/connections", Some(app.jwt("V", "admin@acme.test"))).await;
    assert_eq!(status, 403);
    let (status, _) =
        app.call("viewer_a", reqwest::Method::POST, "/connections/test", Some(app.jwt("V", "admin@acme.test"))).await;
    assert_eq!(status, 403);
    // Nobody without a token; a made-up token is refused the same way.
    let (status, body) = app.call("nobody", reqwest::Method::GET, "/connections", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    assert!(!body["error"]["request_id"].as_str().unwrap_or_default().is_empty(), "errors carry the request id");
    let r =
        app.http.get(format!("{}/api/v1/connections", app.base)).bearer_auth("lb_made-up").send().await.expect("req");
    assert_eq!(r.status(), 401);
    // Malformed ids are not found either.
    let (status, _) = app.call("admin_a", reqwest::Method::GET, "/connections/../../etc", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn delete_revokes_at_salesforce_first_and_still_deletes_when_it_cannot() {
    let app = spawn().await;
    let (_, one) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("One", "admin@acme.test"))).await;
    let (_, two) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Two", "admin@acme.test"))).await;
    let (status, deleted) = app
        .call("admin_a", reqwest::Method::DELETE, &format!("/connections/{}", one["id"].as_str().expect("id")), None)
        .await;
    assert_eq!((status, deleted["revoked"].as_bool()), (200, Some(true)), "{deleted}");
    assert_eq!(
        app.em.requests().iter().filter(|r| r.operation.as_deref() == Some("revoke") && r.status == 200).count(),
        1,
        "the emulator saw the revoke"
    );
    app.em
        .add_fault(FaultRule { action: FaultAction::Drop, ..FaultRule::error("/services/oauth2/revoke", 1, 500, "x") });
    let (status, deleted) = app
        .call("admin_a", reqwest::Method::DELETE, &format!("/connections/{}", two["id"].as_str().expect("id")), None)
        .await;
    assert_eq!(
        (status, deleted["deleted"].as_bool(), deleted["revoked"].as_bool()),
        (200, Some(true), Some(false)),
        "{deleted}"
    );
    assert!(deleted["message"].as_str().expect("message").contains("Revoke its access in Salesforce Setup"));
    let (_, listed) = app.call("admin_a", reqwest::Method::GET, "/connections", None).await;
    assert_eq!(listed["total"], 0);
}

#[tokio::test]
async fn health_endpoints_answer() {
    let app = spawn().await;
    for path in ["/healthz", "/readyz"] {
        let r = app.http.get(format!("{}{path}", app.base)).send().await.expect("req");
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers().contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn the_audit_log_records_who_did_what_from_where_and_stays_in_the_account() {
    let app = spawn().await;
    let (_, created) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Audited", "admin@acme.test"))).await;
    app.call("admin_a", reqwest::Method::POST, "/connections/test", Some(app.jwt("Probe", "editor@acme.test"))).await;
    let id = created["id"].as_str().expect("id");
    app.call("admin_a", reqwest::Method::DELETE, &format!("/connections/{id}"), None).await;
    let (status, log) = app.call("admin_a", reqwest::Method::GET, "/audit", None).await;
    assert_eq!(status, 200, "{log}");
    let actions: Vec<&str> =
        log["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["connection.deleted", "connection.tested", "connection.created"], "newest first");
    let deleted = &log["items"][0];
    assert_eq!(deleted["actor"], "admin_a@lightbridge.test");
    assert_eq!(deleted["actor_kind"], "api_token");
    assert_eq!(deleted["target_id"], id);
    assert_eq!(deleted["target_label"], "Audited");
    assert_eq!(deleted["remote_addr"], "127.0.0.1");
    assert!(
        log["items"][1]["detail"].as_str().expect("detail").contains("Customize Application"),
        "{}",
        log["items"][1]
    );
    let (_, only) = app.call("admin_a", reqwest::Method::GET, "/audit?action=connection.created", None).await;
    assert_eq!(only["items"].as_array().map(Vec::len), Some(1));
    let (_, other) = app.call("admin_b", reqwest::Method::GET, "/audit", None).await;
    assert_eq!(other["items"].as_array().map(Vec::len), Some(0), "another account sees none of it");
    let (status, _) = app.call("viewer_a", reqwest::Method::GET, "/audit", None).await;
    assert_eq!(status, 403);
    assert!(
        !log.to_string().contains(&app.private_key.lines().nth(1).expect("key line")[..20]),
        "no secret in the audit log"
    );
}

#[tokio::test]
async fn the_background_health_check_flags_a_revoked_connection_without_anyone_using_it() {
    let app = testkit::spawn_with_health_checks(Some(std::time::Duration::from_millis(100))).await;
    let (_, created) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Watched", "admin@acme.test"))).await;
    let id = created["id"].as_str().expect("id").to_string();
    // JWT connections mint a new token when theirs dies; deactivating the user is what logs
    // them out for good.
    app.em
        .set_user("admin@acme.test", &emulator::UserChange { active: Some(false), ..Default::default() })
        .expect("deactivate");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, shown) = app.call("admin_a", reqwest::Method::GET, &format!("/connections/{id}"), None).await;
        if shown["health"] == "Logged out" {
            assert!(shown["health_detail"].as_str().is_some_and(|d| d.contains("inactive")), "{shown}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {} after 10 s", shown["health"]);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The edge checks run in a fixed order whatever the body holds — the caller's role (403),
/// then the id in the caller's account (404), then the body (422) — and a body or query string
/// that does not parse answers in the API's one error shape.
#[tokio::test]
async fn role_then_ownership_then_body_and_rejections_in_the_error_shape() {
    let app = testkit::spawn().await;
    let (_, system) = app.call("admin_a", Method::POST, "/systems", Some(json!({"name": "Ordered"}))).await;
    let system = system["id"].as_str().expect("id").to_string();
    let send = |who: &'static str, method: Method, path: String, body: &'static str| {
        let request = app
            .http
            .request(method, format!("{}/api/v1{path}", app.base))
            .bearer_auth(&app.tokens[who])
            .header("content-type", "application/json")
            .body(body);
        async move {
            let r = request.send().await.expect("send");
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.expect("an error body"))
        }
    };
    let malformed = "{\"name\": ";
    let (status, body) = send("viewer_a", Method::PATCH, format!("/systems/{system}"), malformed).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, body) = send("admin_b", Method::PATCH, format!("/systems/{system}"), malformed).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = send("admin_a", Method::PATCH, format!("/systems/{system}"), malformed).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid")), "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "body", "{body}");
    assert!(body["error"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    let (status, body) = send("admin_a", Method::PATCH, "/systems/sys_not-an-id".into(), "{\"name\":\"x\"}").await;
    assert_eq!(status, 404, "a malformed id names nothing: {body}");
    let (status, body) = send("admin_a", Method::GET, "/connections?per_page=lots".into(), "").await;
    assert_eq!((status, body["error"]["fields"][0]["field"].as_str()), (422, Some("query")), "{body}");
    let (status, body) = send("admin_a", Method::GET, "/audit?limit=-1".into(), "").await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid")), "{body}");
    // Found by the schema fuzzer: a NUL in a search was a 500 (SQLite's full-text query ended
    // early); page 0 was taken for page 1 although the document says pages start at 1; the
    // deployments' query answered 400 in axum's shape; a NUL in an audit filter reaches
    // PostgreSQL, which refuses it.
    let (status, body) = send("admin_a", Method::GET, "/connections?search=ac%00me".into(), "").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send("admin_a", Method::GET, "/connections?page=0".into(), "").await;
    assert_eq!((status, body["error"]["fields"][0]["field"].as_str()), (422, Some("page")), "{body}");
    let (status, body) = send("admin_a", Method::GET, "/deployments?limit=lots".into(), "").await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid")), "{body}");
    let (status, body) = send("admin_a", Method::GET, "/audit?action=a%00b".into(), "").await;
    assert_eq!((status, body["error"]["fields"][0]["field"].as_str()), (422, Some("action")), "{body}");
}

#[tokio::test]
async fn test_connection_with_jwt_or_client_credentials_leaves_no_live_session_in_the_org() {
    // Found by an independent Salesforce stand-in (#14 fix 4): each Test Connection left a live
    // session at Salesforce that nothing would ever use.
    let app = spawn().await;
    let live = || app.em.live_sessions();
    let before = live();
    let cc = json!({"name": "cc", "org_type": "production", "login_host": app.em.base_url(),
                    "auth": {"method": "client_credentials", "consumer_key": KEY, "consumer_secret": SECRET}});
    for body in [app.jwt("Tested", "admin@acme.test"), cc] {
        let (status, report) = app.call("admin_a", Method::POST, "/connections/test", Some(body)).await;
        assert_eq!(status, 200, "{report}");
        assert!(!report.to_string().contains("\"failed\""), "the check passes: {report}");
    }
    let revokes = app.em.requests().into_iter().filter(|r| r.path.ends_with("/services/oauth2/revoke")).count();
    assert_eq!(revokes, 2, "each test revokes what it opened");
    assert_eq!(live(), before, "no session left behind");

    // A save whose check fails revokes too; a save that passes keeps its session.
    let (status, _) = app.call("admin_a", Method::POST, "/connections", Some(app.jwt("Kept", "admin@acme.test"))).await;
    assert_eq!(status, 201);
    assert_eq!(live(), before + 1, "the saved connection's session stays");
}

#[tokio::test]
async fn a_taken_name_is_refused_before_anything_is_asked_of_salesforce() {
    // #16 item 5: a duplicate name was caught only after the Salesforce round trip.
    let app = spawn().await;
    let (status, _) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt("Taken", "admin@acme.test"))).await;
    assert_eq!(status, 201);
    app.em.clear_requests();
    let (status, err) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt("TAKEN", "admin@acme.test"))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("conflict")), "{err}");
    let oauth = json!({"name": "taken", "org_type": "production", "login_host": "login",
                       "consumer_key": testkit::OAUTH_KEY, "consumer_secret": testkit::OAUTH_SECRET});
    let (status, err) = app.call("admin_a", Method::POST, "/connections/oauth/start", Some(oauth)).await;
    assert_eq!(status, 409, "no trip to Salesforce's sign-in for a name that cannot be saved: {err}");
    assert!(app.em.requests().is_empty(), "Salesforce was not called: {:?}", app.em.requests());
}
