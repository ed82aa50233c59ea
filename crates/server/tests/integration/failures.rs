//! Issue #3's list of failures, each through the running app against the emulator, each with
//! a message that says what to do: wrong client secret, PKCE mismatch, missing API Enabled, a
//! JWT user not pre-authorized, an expired refresh token. (Denied consent, forged or replayed
//! state, missing Customize Application and a different org on reconnect are in oauth.rs; a
//! sandbox user against the production host in api.rs.)

use emulator::AppSeed;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{OAUTH_KEY, OAUTH_SECRET, spawn};

fn oauth_body(name: &str, key: &str, secret: &str) -> Value {
    json!({"name": name, "org_type": "production", "login_host": "login", "consumer_key": key, "consumer_secret": secret})
}

fn failed_step(body: &Value) -> (String, String, String) {
    let step = body["check"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["outcome"] == "failed")
        .expect("a failed step");
    let text = |k: &str| step[k].as_str().unwrap_or_default().to_string();
    (text("step"), text("detail"), text("fix"))
}

#[tokio::test]
async fn a_wrong_consumer_secret_fails_the_code_exchange_and_says_to_check_the_secret() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let body = oauth_body("Wrong secret", OAUTH_KEY, "not-the-secret");
    let callback =
        app.oauth_through_salesforce(&cookie, &csrf, "/api/v1/connections/oauth/start", body, "admin@acme.test").await;
    let (status, refused) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("check_failed")), "{refused}");
    let (step, _, fix) = failed_step(&refused);
    assert_eq!(step, "token_obtained");
    assert!(fix.contains("consumer secret"), "{fix}");
    let (_, listed) = app.call("admin_a", Method::GET, "/connections", None).await;
    assert_eq!(listed["total"], 0);
}

#[tokio::test]
async fn a_code_from_another_sign_in_fails_the_pkce_check() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let start = "/api/v1/connections/oauth/start";
    let first = app
        .oauth_through_salesforce(&cookie, &csrf, start, oauth_body("One", OAUTH_KEY, OAUTH_SECRET), "admin@acme.test")
        .await;
    let second = app
        .oauth_through_salesforce(&cookie, &csrf, start, oauth_body("Two", OAUTH_KEY, OAUTH_SECRET), "admin@acme.test")
        .await;
    let param = |url: &str, name: &str| {
        url::Url::parse(url)
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .expect(name)
    };
    // The second sign-in's code, injected into the first sign-in's callback: the code was
    // issued for the second sign-in's PKCE challenge, so the first one's verifier fails.
    let injected =
        format!("{}/oauth/callback?state={}&code={}", app.base, param(&first, "state"), param(&second, "code"));
    let (status, refused) = app.browser(&cookie, None, Method::GET, &injected, None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("check_failed")), "{refused}");
    let (step, detail, fix) = failed_step(&refused);
    assert_eq!(step, "token_obtained");
    assert!(detail.contains("verifier") && fix.contains("PKCE"), "{detail} / {fix}");
}

#[tokio::test]
async fn a_user_without_api_enabled_fails_that_step_with_the_fix() {
    let app = spawn().await;
    let (status, report) =
        app.call("admin_a", Method::POST, "/connections/test", Some(app.jwt("No API", "noapi@acme.test"))).await;
    assert_eq!((status, report["passed"].as_bool()), (200, Some(false)), "{report}");
    let failed = report["steps"].as_array().expect("steps").iter().find(|s| s["outcome"] == "failed").expect("failed");
    assert_eq!(failed["step"], "api_enabled");
    assert!(failed["fix"].as_str().expect("fix").contains("API Enabled"), "{failed}");
}

#[tokio::test]
async fn a_jwt_user_who_is_not_pre_authorized_is_told_how_to_approve_them() {
    let app = spawn().await;
    let (_, report) =
        app.call("admin_a", Method::POST, "/connections/test", Some(app.jwt("Stranger", "stranger@acme.test"))).await;
    let failed = report["steps"].as_array().expect("steps").iter().find(|s| s["outcome"] == "failed").expect("failed");
    assert_eq!(failed["step"], "token_obtained", "{report}");
    assert!(failed["detail"].as_str().expect("detail").contains("approved"), "{failed}");
    assert!(failed["fix"].as_str().expect("fix").contains("pre-authorized"), "{failed}");
}

#[tokio::test]
async fn an_expired_refresh_token_marks_the_connection_logged_out() {
    let app = spawn().await;
    // An app whose refresh tokens live one hour.
    app.em
        .add_app(&AppSeed {
            callback_urls: vec![format!("{}/oauth/callback", app.base)],
            refresh_token_ttl_secs: Some(3600),
            ..AppSeed::new("3MVG9ShortLived", "short-lived-secret")
        })
        .expect("app");
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let body = oauth_body("Short lived", "3MVG9ShortLived", "short-lived-secret");
    let callback =
        app.oauth_through_salesforce(&cookie, &csrf, "/api/v1/connections/oauth/start", body, "admin@acme.test").await;
    let (status, saved) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().expect("id");
    let (_, fresh) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
    assert_eq!(fresh["health"], "Logged in", "{fresh}");
    // Two hours later the session has timed out and the refresh token has expired.
    app.em.expire_all_tokens();
    app.em.advance_clock(std::time::Duration::from_secs(2 * 3600));
    let (status, checked) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
    assert_eq!((status, checked["health"].as_str()), (200, Some("Logged out")), "{checked}");
    assert!(checked["health_detail"].as_str().expect("detail").contains("expired"), "{checked}");
}
