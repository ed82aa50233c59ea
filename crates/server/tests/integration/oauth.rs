//! F1 end to end: sign in to Lightbridge, start OAuth, sign in on the emulator's Salesforce
//! pages, come back to the callback, and get a checked, saved connection — plus every way
//! that must be refused.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{OAUTH_KEY, OAUTH_SECRET, TestApp, spawn};

fn start_body(name: &str) -> Value {
    json!({"name": name, "org_type": "production", "login_host": "login", "consumer_key": OAUTH_KEY, "consumer_secret": OAUTH_SECRET})
}

/// Starts OAuth as `label` and returns the Salesforce authorize URL.
async fn start(app: &TestApp, cookie: &str, csrf: &str, name: &str) -> String {
    let (status, started) =
        app.browser(cookie, Some(csrf), Method::POST, "/api/v1/connections/oauth/start", Some(start_body(name))).await;
    assert_eq!(status, 200, "{started}");
    started["authorize_url"].as_str().expect("authorize_url").to_string()
}

#[tokio::test]
async fn an_admin_connects_an_org_through_salesforce_s_sign_in_and_the_connection_is_saved() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let authorize = start(&app, &cookie, &csrf, "Acme via OAuth").await;
    assert!(authorize.contains("code_challenge_method=S256") && authorize.contains("state="), "{authorize}");
    // The admin types the Salesforce password on Salesforce's page, never into Lightbridge.
    let callback =
        emulator::testing::sign_in(&authorize, "admin@acme.test", "emulator", true).await.expect("salesforce sign-in");
    assert!(callback.starts_with(&format!("{}/oauth/callback?", app.base)), "{callback}");
    let (status, saved) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(
        (saved["auth_method"].as_str(), saved["account_name"].as_str()),
        (Some("OAuth"), Some("Acme Production"))
    );
    assert_eq!(saved["created_by"], "admin@acme.test");
    let (_, listed) = app.call("admin_a", Method::GET, "/connections", None).await;
    assert_eq!(listed["total"], 1);
    // The same callback again: the state was single use.
    let (status, replay) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!((status, replay["error"]["fields"][0]["field"].as_str()), (422, Some("state")), "{replay}");
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=connection.created", None).await;
    assert_eq!(log["items"][0]["actor_kind"], "user", "a browser session, not an API token");
}

#[tokio::test]
async fn a_forged_state_or_someone_else_s_is_refused() {
    let app = spawn().await;
    let (cookie_a, csrf_a) = app.sign_in("admin_a").await;
    let authorize = start(&app, &cookie_a, &csrf_a, "Stolen").await;
    let callback = emulator::testing::sign_in(&authorize, "admin@acme.test", "emulator", true).await.expect("sign-in");
    let (cookie_b, _) = app.sign_in("admin_b").await;
    let (status, body) = app.browser(&cookie_b, None, Method::GET, &callback, None).await;
    assert_eq!(status, 422, "another user's (and account's) state: {body}");
    let forged = format!("{}/oauth/callback?state=forged&code=whatever", app.base);
    let (status, _) = app.browser(&cookie_a, None, Method::GET, &forged, None).await;
    assert_eq!(status, 422);
    let (status, _) = app.browser("lb_session=not-a-session", None, Method::GET, &callback, None).await;
    assert_eq!(status, 401, "no session, no callback");
    // The real owner can still finish: the failed attempts did not use the state up.
    let (status, _) = app.browser(&cookie_a, None, Method::GET, &callback, None).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn denying_on_salesforce_saves_nothing_and_says_why() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let authorize = start(&app, &cookie, &csrf, "Denied").await;
    let callback = emulator::testing::sign_in(&authorize, "admin@acme.test", "emulator", false).await.expect("sign-in");
    assert!(callback.contains("error=access_denied"));
    let (status, body) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!(status, 422);
    assert!(body["error"]["fields"][0]["message"].as_str().expect("message").contains("Deny"), "{body}");
    let (_, listed) = app.call("admin_a", Method::GET, "/connections", None).await;
    assert_eq!(listed["total"], 0);
}

#[tokio::test]
async fn a_user_without_customize_application_is_refused_and_nothing_stays_authorized() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let authorize = start(&app, &cookie, &csrf, "Editor").await;
    let callback = emulator::testing::sign_in(&authorize, "editor@acme.test", "emulator", true).await.expect("sign-in");
    let (status, body) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("check_failed")), "{body}");
    let failed = body["check"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["outcome"] == "failed")
        .cloned()
        .expect("failed step");
    assert_eq!(failed["step"], "customize_application");
    let revoked =
        app.em.requests().iter().filter(|r| r.operation.as_deref() == Some("revoke") && r.status == 200).count();
    assert_eq!(revoked, 1, "the refused connection's tokens were revoked at Salesforce");
}

#[tokio::test]
async fn browser_sessions_need_the_csrf_token_to_change_anything() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let (status, body) =
        app.browser(&cookie, None, Method::POST, "/api/v1/connections/oauth/start", Some(start_body("No CSRF"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("CSRF"));
    let (status, _) = app
        .browser(
            &cookie,
            Some("wrong-token"),
            Method::POST,
            "/api/v1/connections/oauth/start",
            Some(start_body("Bad CSRF")),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .browser(&cookie, Some(&csrf), Method::POST, "/api/v1/connections/oauth/start", Some(start_body("Good")))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.browser(&cookie, None, Method::GET, "/api/v1/connections", None).await;
    assert_eq!(status, 200, "reading needs no CSRF token");
    // A viewer's session cannot start one at all.
    let (viewer_cookie, viewer_csrf) = app.sign_in("viewer_a").await;
    let (status, _) = app
        .browser(
            &viewer_cookie,
            Some(&viewer_csrf),
            Method::POST,
            "/api/v1/connections/oauth/start",
            Some(start_body("V")),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn sign_in_refuses_wrong_passwords_and_sign_out_ends_the_session() {
    let app = spawn().await;
    let r = app
        .http
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"email": "admin_a@lightbridge.test", "password": "not the password"}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 401);
    let wrong: Value = r.json().await.expect("json");
    assert_eq!(
        wrong["error"]["message"], "that email and password do not match an account",
        "said as what it is, not as 'sign in first'"
    );
    let r = app
        .http
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"email": "nobody@x.test", "password": "whatever-long"}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 401, "an unknown email gets the same answer");
    let unknown: Value = r.json().await.expect("json");
    assert_eq!(unknown["error"]["message"], wrong["error"]["message"]);
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let r = app
        .http
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"email": "admin_a@lightbridge.test", "password": "password-admin_a"}))
        .send()
        .await
        .expect("again");
    let set_cookie = r.headers()["set-cookie"].to_str().expect("cookie").to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax") && !set_cookie.contains("Secure"),
        "{set_cookie}"
    );
    let (status, _) = app.browser(&cookie, Some(&csrf), Method::DELETE, "/api/v1/session", None).await;
    assert_eq!(status, 204);
    let (status, _) = app.browser(&cookie, None, Method::GET, "/api/v1/connections", None).await;
    assert_eq!(status, 401, "the session is gone");
}

/// Connects "Acme via OAuth" as admin@acme.test and returns (cookie, csrf, connection id).
async fn connected(app: &TestApp) -> (String, String, String) {
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let authorize = start(app, &cookie, &csrf, "Acme via OAuth").await;
    let callback = emulator::testing::sign_in(&authorize, "admin@acme.test", "emulator", true).await.expect("sign-in");
    let (status, saved) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!(status, 201, "{saved}");
    (cookie, csrf, saved["id"].as_str().expect("id").to_string())
}

#[tokio::test]
async fn reconnect_signs_in_again_and_keeps_the_connection_id() {
    let app = spawn().await;
    let (cookie, csrf, id) = connected(&app).await;
    app.em.revoke_user("admin@acme.test").expect("revoke");
    let (_, checked) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
    assert_eq!(checked["health"], "Logged out", "{checked}");
    let (status, started) =
        app.browser(&cookie, Some(&csrf), Method::POST, &format!("/api/v1/connections/{id}/reconnect"), None).await;
    assert_eq!(status, 200, "{started}");
    let callback = emulator::testing::sign_in(
        started["authorize_url"].as_str().expect("url"),
        "admin@acme.test",
        "emulator",
        true,
    )
    .await
    .expect("sign-in");
    let (status, back) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!((status, back["id"].as_str()), (200, Some(id.as_str())), "{back}");
    assert_eq!(back["health"], "Logged in");
    let (_, listed) = app.call("admin_a", Method::GET, "/connections", None).await;
    assert_eq!(listed["total"], 1, "no second connection");
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=connection.reconnected", None).await;
    assert_eq!(log["items"][0]["target_id"], id.as_str());
    // Brought back by a person: announced as when a check finds it working again (#18).
    let (_, events) = app.call("admin_a", Method::GET, "/events", None).await;
    let types: Vec<&str> = events.as_array().expect("events").iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["connection.recovered", "connection.logged_out"], "{events:#}");
    assert_eq!(events[0]["data"]["connection"]["id"], id.as_str());
}

#[tokio::test]
async fn reconnecting_to_a_different_org_is_refused_and_leaves_the_connection_as_it_was() {
    let app = spawn().await;
    let (cookie, csrf, id) = connected(&app).await;
    let (_, started) =
        app.browser(&cookie, Some(&csrf), Method::POST, &format!("/api/v1/connections/{id}/reconnect"), None).await;
    let callback = emulator::testing::sign_in(
        started["authorize_url"].as_str().expect("url"),
        "admin@other.test",
        "emulator",
        true,
    )
    .await
    .expect("sign-in");
    let revokes_before = app.em.requests().iter().filter(|r| r.operation.as_deref() == Some("revoke")).count();
    let (status, refused) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("conflict")), "{refused}");
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(message.contains("Other Corp") && message.contains("Acme Production"), "{message}");
    let revokes_after = app.em.requests().iter().filter(|r| r.operation.as_deref() == Some("revoke")).count();
    assert_eq!(revokes_after, revokes_before + 1, "the other org's new tokens were revoked");
    let (_, shown) = app.call("admin_a", Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(shown["account_name"], "Acme Production");
}

#[tokio::test]
async fn only_oauth_connections_reconnect_through_the_sign_in() {
    let app = spawn().await;
    let (_, created) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt("JWT one", "admin@acme.test"))).await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let (status, body) = app
        .browser(
            &cookie,
            Some(&csrf),
            Method::POST,
            &format!("/api/v1/connections/{}/reconnect", created["id"].as_str().expect("id")),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = app
        .browser(
            &cookie,
            Some(&csrf),
            Method::POST,
            "/api/v1/connections/conn_00000000000000000000000000000000/reconnect",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn starting_without_the_app_s_key_and_secret_names_both_fields() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let body = json!({"name": "No app", "org_type": "production", "login_host": "login", "consumer_key": " ", "consumer_secret": ""});
    let (status, refused) =
        app.browser(&cookie, Some(&csrf), Method::POST, "/api/v1/connections/oauth/start", Some(body)).await;
    let fields: Vec<_> =
        refused["error"]["fields"].as_array().expect("fields").iter().map(|f| f["field"].clone()).collect();
    assert_eq!((status, fields), (422, vec![json!("consumer_key"), json!("consumer_secret")]), "{refused}");
}

/// Runs an OAuth Test Connection as the signed-in admin; returns the callback's answer.
async fn test_through_salesforce(app: &TestApp, cookie: &str, csrf: &str, name: &str) -> Value {
    let mut body = start_body(name);
    body["test_only"] = json!(true);
    let (status, started) =
        app.browser(cookie, Some(csrf), Method::POST, "/api/v1/connections/oauth/start", Some(body)).await;
    assert_eq!(status, 200, "{started}");
    let authorize = started["authorize_url"].as_str().expect("authorize_url");
    let callback = emulator::testing::sign_in(authorize, "admin@acme.test", "emulator", true).await.expect("sign-in");
    let (status, tested) = app.browser(cookie, None, Method::GET, &callback, None).await;
    assert_eq!((status, tested["passed"].as_bool()), (200, Some(true)), "{tested}");
    tested
}

#[tokio::test]
async fn a_passing_oauth_test_is_saved_without_a_second_sign_in_and_an_unsaved_one_is_revoked() {
    // #14 fix 5 and #16 item 6: Test Connection then Save cost two sign-ins at Salesforce (and
    // two of the user's five approvals for the app).
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let before = app.em.live_sessions();
    let tested = test_through_salesforce(&app, &cookie, &csrf, "Tested first").await;
    let grant = tested["tested_grant"].as_str().expect("a kept grant").to_string();
    let authorizations =
        || app.em.requests().into_iter().filter(|r| r.path.contains("/services/oauth2/authorize")).count();
    let signed_in = authorizations();

    // Changed settings: refused (409), the grant stays for the right ones.
    let mut save = start_body("Saved after the test");
    save["tested_grant"] = json!(grant);
    let mut changed = save.clone();
    changed["org_type"] = json!("sandbox");
    let (status, body) =
        app.browser(&cookie, Some(&csrf), Method::POST, "/api/v1/connections/oauth/save", Some(changed)).await;
    assert_eq!(status, 409, "{body}");
    // Another admin cannot use it.
    let (status, _) = app.call("owner_a", Method::POST, "/connections/oauth/save", Some(save.clone())).await;
    assert_eq!(status, 409);

    let (status, saved) =
        app.browser(&cookie, Some(&csrf), Method::POST, "/api/v1/connections/oauth/save", Some(save.clone())).await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!((saved["name"].as_str(), saved["auth_method"].as_str()), (Some("Saved after the test"), Some("OAuth")));
    assert_eq!(authorizations(), signed_in, "no second sign-in at Salesforce");
    assert_eq!(app.em.live_sessions(), before + 1, "one grant, kept by the saved connection");
    let (status, _) =
        app.browser(&cookie, Some(&csrf), Method::POST, "/api/v1/connections/oauth/save", Some(save)).await;
    assert_eq!(status, 409, "a grant saves once");
    let (_, listed) = app.call("admin_a", Method::GET, "/connections", None).await;
    assert_eq!(listed["total"], 1);
    let (status, checked) = app
        .call("admin_a", Method::POST, &format!("/connections/{}/check", saved["id"].as_str().expect("id")), None)
        .await;
    assert_eq!(status, 200, "the kept tokens work: {checked}");

    // A test nobody saves is revoked once its five minutes are up.
    test_through_salesforce(&app, &cookie, &csrf, "Never saved").await;
    assert_eq!(app.em.live_sessions(), before + 2);
    let svc: &service::Service = &app.state;
    assert_eq!(service::oauth::revoke_unsaved_tests(svc).await.expect("sweep"), 0, "not before it expires");
    app.clock.advance(std::time::Duration::from_secs(5 * 60 + 1));
    assert_eq!(service::oauth::revoke_unsaved_tests(svc).await.expect("sweep"), 1);
    assert_eq!(app.em.live_sessions(), before + 1, "nothing left authorized by the unsaved test");
}

#[tokio::test]
async fn reconnect_revokes_the_grant_it_replaces() {
    // #14 fix 5: reconnecting held one more of the user's five approvals for the app.
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let authorize = start(&app, &cookie, &csrf, "Reconnected").await;
    let callback = emulator::testing::sign_in(&authorize, "admin@acme.test", "emulator", true).await.expect("sign-in");
    let (status, saved) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!(status, 201, "{saved}");
    let live = app.em.live_sessions();
    let path = format!("/api/v1/connections/{}/reconnect", saved["id"].as_str().expect("id"));
    let (status, started) = app.browser(&cookie, Some(&csrf), Method::POST, &path, None).await;
    assert_eq!(status, 200, "{started}");
    let authorize = started["authorize_url"].as_str().expect("authorize_url");
    let callback = emulator::testing::sign_in(authorize, "admin@acme.test", "emulator", true).await.expect("sign-in");
    let (status, body) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.em.live_sessions(), live, "the old grant is revoked as the new one is kept");
}

#[tokio::test]
async fn a_denied_consent_and_a_reloaded_callback_page_say_what_happened() {
    // #16 item 7: denying consent said "Some fields need a fix" with no field marked; reloading
    // the callback page showed "That did not work".
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let page = |url: String| {
        let request = app.http.get(url).header("cookie", &cookie).header("accept", "text/html");
        async move {
            let r = request.send().await.expect("page");
            (r.url().path().to_string(), r.status().as_u16(), r.text().await.expect("text"))
        }
    };
    let authorize = start(&app, &cookie, &csrf, "Denied").await;
    let denied = emulator::testing::sign_in(&authorize, "admin@acme.test", "emulator", false).await.expect("deny");
    let (_, status, body) = page(denied).await;
    assert_eq!(status, 422);
    assert!(body.contains("You chose Deny") && !body.contains("Some fields need a fix"), "{body}");

    let authorize = start(&app, &cookie, &csrf, "Reloaded").await;
    let callback = emulator::testing::sign_in(&authorize, "admin@acme.test", "emulator", true).await.expect("sign-in");
    let (path, _, _) = page(callback.clone()).await;
    assert_eq!(path, "/connections/salesforce", "saved and back to the table");
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let reload =
        no_redirect.get(callback).header("cookie", &cookie).header("accept", "text/html").send().await.expect("reload");
    assert_eq!(reload.status(), 303, "the reload goes back to the table, no error page");
    assert_eq!(reload.headers()["location"], "/connections/salesforce");
    let flash =
        reload.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(" ");
    assert!(flash.contains("lb_flash="), "with a word on what happened: {flash}");
}
