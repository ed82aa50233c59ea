//! Edit (F10, F11) for new connections: renames record who and when; changed sign-in settings
//! re-run the whole check and must reach the same org; OAuth settings change through Reconnect.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{OAUTH_KEY, OAUTH_SECRET, TestApp, spawn};

async fn jwt_connection(app: &TestApp, name: &str) -> String {
    let (status, created) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt(name, "admin@acme.test"))).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_string()
}

async fn edit(app: &TestApp, id: &str, body: Value) -> (u16, Value) {
    app.call("admin_a", Method::PATCH, &format!("/connections/{id}"), Some(body)).await
}

#[tokio::test]
async fn a_rename_records_who_and_when_and_names_stay_unique() {
    let app = spawn().await;
    let id = jwt_connection(&app, "Acme prod").await;
    jwt_connection(&app, "Taken").await;
    let (_, before) = app.call("admin_a", Method::GET, &format!("/connections/{id}"), None).await;
    let (status, renamed) = edit(&app, &id, json!({"name": "Acme production"})).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["name"], "Acme production");
    assert_eq!(renamed["last_modified_by"], "admin_a@lightbridge.test", "the Lightbridge user who edited");
    assert_eq!(renamed["created_by"], before["created_by"], "created by stays the Salesforce user");
    assert!(renamed["last_modified_at"].as_i64() >= before["last_modified_at"].as_i64());
    let (status, taken) = edit(&app, &id, json!({"name": "TAKEN"})).await;
    assert_eq!((status, taken["error"]["code"].as_str()), (409, Some("conflict")), "{taken}");
    let (_, log) =
        app.call("admin_a", Method::GET, &format!("/audit?action=connection.edited&target_id={id}"), None).await;
    assert_eq!(log["items"][0]["detail"], "renamed from \"Acme prod\" to \"Acme production\"");
    let (status, _) =
        app.call("viewer_a", Method::PATCH, &format!("/connections/{id}"), Some(json!({"name": "V"}))).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn changed_credentials_are_checked_first_and_a_failure_changes_nothing() {
    let app = spawn().await;
    let id = jwt_connection(&app, "Acme prod").await;
    // A user without Customize Application: the check fails, the connection is untouched.
    let (status, refused) = edit(&app, &id, json!({"auth": {"username": "editor@acme.test"}})).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("check_failed")), "{refused}");
    let (_, same) = app.call("admin_a", Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(same["salesforce_username"], "admin@acme.test");
    // Another org's user: refused, the connection stays bound to its org.
    let (status, other) = edit(&app, &id, json!({"auth": {"username": "admin@other.test"}})).await;
    assert_eq!(status, 409, "{other}");
    assert!(other["error"]["message"].as_str().expect("message").contains("Other Corp"), "{other}");
    // Bad input: every wrong field at once, nothing called.
    let (status, bad) =
        edit(&app, &id, json!({"org_type": "staging", "auth": {"private_key": "not a key", "consumer_secret": "x"}}))
            .await;
    let fields: Vec<_> =
        bad["error"]["fields"].as_array().expect("fields").iter().map(|f| f["field"].as_str().expect("f")).collect();
    assert_eq!(status, 422);
    assert!(
        fields.contains(&"org_type")
            && fields.contains(&"auth.private_key")
            && fields.contains(&"auth.consumer_secret"),
        "{bad}"
    );
    // The same key again (say, after renewing the app's certificate): checked and stored.
    let (status, ok) = edit(&app, &id, json!({"auth": {"private_key": app.private_key}})).await;
    assert_eq!((status, ok["health"].as_str()), (200, Some("Logged in")), "{ok}");
    let (_, log) =
        app.call("admin_a", Method::GET, &format!("/audit?action=connection.edited&target_id={id}"), None).await;
    assert_eq!(log["items"][0]["detail"], "new credentials stored");
}

#[tokio::test]
async fn oauth_settings_change_through_reconnect_which_can_switch_the_app() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let start = json!({"name": "OAuth one", "org_type": "production", "login_host": "login", "consumer_key": OAUTH_KEY, "consumer_secret": OAUTH_SECRET});
    let callback =
        app.oauth_through_salesforce(&cookie, &csrf, "/api/v1/connections/oauth/start", start, "admin@acme.test").await;
    let (_, saved) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    let id = saved["id"].as_str().expect("id").to_string();
    let (status, refused) = edit(&app, &id, json!({"login_host": "test"})).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["error"]["fields"][0]["message"].as_str().expect("message").contains("Reconnect"), "{refused}");
    // Reconnect with another connected app of the same org: the id stays, the app changes.
    app.em
        .add_app(&emulator::AppSeed {
            callback_urls: vec![format!("{}/oauth/callback", app.base)],
            ..emulator::AppSeed::new("3MVG9SecondApp", "second-app-secret")
        })
        .expect("app");
    let body = json!({"consumer_key": "3MVG9SecondApp", "consumer_secret": "second-app-secret"});
    let callback = app
        .oauth_through_salesforce(
            &cookie,
            &csrf,
            &format!("/api/v1/connections/{id}/reconnect"),
            body,
            "admin@acme.test",
        )
        .await;
    let (status, reconnected) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!((status, reconnected["id"].as_str()), (200, Some(id.as_str())), "{reconnected}");
    app.em.expire_all_tokens();
    let (_, checked) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
    assert_eq!(checked["health"], "Logged in", "the renewal uses the new app's stored secret: {checked}");
    let refreshes: Vec<_> =
        app.em.requests().into_iter().filter(|r| r.operation.as_deref() == Some("token:refresh_token")).collect();
    assert_eq!(refreshes.len(), 1);
}
