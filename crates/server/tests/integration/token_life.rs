//! Issue #14, failure classes: every failed renewal or call has a class and a stable reason.
//! Dead credentials (revoked, a deactivated user, IP restrictions, a blocked app) are Logged out
//! at once with the reason and its fix — in the API, the audit log and `/metrics` — and then cost
//! Salesforce nothing until a person acts; an outage keeps the connection Logged in through the
//! grace period, then Not available, then Logged in again by itself.

use std::time::Duration;

use emulator::{AppChange, FaultRule, OrgChange, UserChange};
use reqwest::Method;
use serde_json::{Value, json};
use store::ConnectionStore;

use crate::domains::get;
use testkit::{KEY, METRICS_TOKEN, OAUTH_KEY, OAUTH_SECRET, SECRET, TestApp, spawn};

/// An OAuth connection of admin@acme.test, saved through Salesforce's sign-in: its id.
async fn oauth_connection(app: &TestApp, name: &str) -> String {
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let body = json!({"name": name, "org_type": "production", "login_host": "login",
                      "consumer_key": OAUTH_KEY, "consumer_secret": OAUTH_SECRET});
    let callback =
        app.oauth_through_salesforce(&cookie, &csrf, "/api/v1/connections/oauth/start", body, "admin@acme.test").await;
    let (status, saved) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!(status, 201, "{saved}");
    saved["id"].as_str().expect("id").to_string()
}

/// A client-credentials connection (run as admin@acme.test): its id.
async fn cc_connection(app: &TestApp, name: &str) -> String {
    let body = json!({"name": name, "org_type": "production", "login_host": app.em.base_url(),
                      "auth": {"method": "client_credentials", "consumer_key": KEY, "consumer_secret": SECRET}});
    let (status, saved) = app.call("admin_a", Method::POST, "/connections", Some(body)).await;
    assert_eq!(status, 201, "{saved}");
    saved["id"].as_str().expect("id").to_string()
}

/// One periodic health sweep over every connection, as the server's would run.
async fn sweep(app: &TestApp) {
    let svc: &service::Service = &app.state;
    svc.keeper.health_sweep(Duration::ZERO, 500).await.expect("sweep");
}

async fn shown(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.call("admin_a", Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn health(c: &Value) -> (&str, Option<&str>) {
    (c["health"].as_str().unwrap_or_default(), c["health_reason"].as_str())
}

/// Token-endpoint requests the emulator has seen for this grant type.
fn token_calls(app: &TestApp, grant: &str) -> usize {
    let op = format!("token:{grant}");
    app.em.requests().iter().filter(|r| r.operation.as_deref() == Some(op.as_str())).count()
}

#[tokio::test]
async fn a_revoked_connection_is_logged_out_with_the_fix_and_then_costs_salesforce_nothing() {
    let app = spawn().await;
    let id = oauth_connection(&app, "Revoked").await;
    app.em.revoke_user("admin@acme.test").expect("revoke");
    sweep(&app).await;
    let c = shown(&app, &id).await;
    assert_eq!(health(&c), ("Logged out", Some("refresh_token_invalid")), "{c}");
    assert!(c["health_fix"].as_str().expect("fix").contains("Reconnect"), "{c}");
    // Audited as the system, once.
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=connection.status_changed", None).await;
    let items = log["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{log}");
    assert_eq!((items[0]["actor"].as_str(), items[0]["target_id"].as_str()), (Some("lightbridge"), Some(id.as_str())));
    assert!(items[0]["detail"].as_str().expect("detail").contains("Logged in → Logged out"), "{log}");

    // No retry storm: sweeps leave it alone, publishing skips it.
    let before = token_calls(&app, "refresh_token");
    for _ in 0..5 {
        app.clock.advance(Duration::from_secs(3600));
        sweep(&app).await;
    }
    assert_eq!(token_calls(&app, "refresh_token"), before, "no token call for a dead connection");
    // A person's Check now still tries (they may have fixed it), and says what to do.
    let (status, checked) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
    assert_eq!((status, health(&checked)), (200, ("Logged out", Some("refresh_token_invalid"))), "{checked}");
    assert_eq!(token_calls(&app, "refresh_token"), before + 1);
    // The connection's page names the reason and the fix.
    let (cookie, _) = app.sign_in("admin_a").await;
    let page = get(&app, &cookie, &format!("/connections/salesforce/{id}")).await;
    assert!(page.contains("Salesforce no longer accepts the stored sign-in") && page.contains("Fix:"), "{page}");
    // #16 item 4: the table says so on the row, with a way to the fix, whatever columns show.
    let healthy = oauth_connection(&app, "Healthy").await;
    let table = get(&app, &cookie, "/connections/salesforce").await;
    let row = |id: &str| {
        table.split(&format!(r#"data-id="{id}""#)).nth(1).and_then(|r| r.split("</tr>").next()).expect("row")
    };
    let revoked = row(&id);
    assert!(revoked.contains("health-badge") && revoked.contains("Logged out"), "{revoked}");
    assert!(
        revoked.contains("Salesforce no longer accepts the stored sign-in") && revoked.contains("How to fix Revoked"),
        "{revoked}"
    );
    assert!(!row(&healthy).contains("health-badge"), "a healthy row has no badge");
}

#[tokio::test]
async fn a_deactivated_user_is_named_and_a_check_after_reactivation_brings_it_back() {
    let app = spawn().await;
    let id = oauth_connection(&app, "Deactivated").await;
    app.em.set_user("admin@acme.test", &UserChange { active: Some(false), ..Default::default() }).expect("deactivate");
    sweep(&app).await;
    let c = shown(&app, &id).await;
    assert_eq!(health(&c), ("Logged out", Some("user_inactive")), "{c}");
    assert!(c["health_fix"].as_str().expect("fix").contains("Reactivate"), "{c}");
    app.em.set_user("admin@acme.test", &UserChange { active: Some(true), ..Default::default() }).expect("reactivate");
    let (_, checked) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
    assert_eq!(health(&checked), ("Logged in", None), "{checked}");
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=connection.status_changed", None).await;
    assert_eq!(log["items"][0]["detail"], "Logged out → Logged in", "{log}");
}

#[tokio::test]
async fn ip_restrictions_are_named_and_counted_in_metrics() {
    let app = spawn().await;
    let id = oauth_connection(&app, "Restricted").await;
    let org = app.em.org_id_of_user("admin@acme.test").expect("org");
    app.em.set_org(&org, &OrgChange { login_ip_ranges: Some(vec!["10.0.0.0/8".into()]) }).expect("ranges");
    app.em.expire_all_tokens();
    sweep(&app).await;
    let c = shown(&app, &id).await;
    assert_eq!(health(&c), ("Logged out", Some("ip_restricted")), "{c}");
    assert!(c["health_fix"].as_str().expect("fix").contains("IP"), "{c}");
    let metrics = app.http.get(format!("{}/metrics", app.base)).bearer_auth(METRICS_TOKEN).send().await.expect("get");
    let text = metrics.text().await.expect("metrics");
    let line = "lightbridge_connection_status_changes_total{to=\"logged_out\",reason=\"ip_restricted\"}";
    assert!(text.contains(line), "{line} missing from:\n{text}");
}

#[tokio::test]
async fn a_blocked_app_is_named_for_a_client_credentials_connection() {
    let app = spawn().await;
    let id = cc_connection(&app, "Blocked").await;
    let org = app.em.org_id_of_user("admin@acme.test").expect("org");
    app.em.set_app(KEY, &AppChange { block_in: Some(org), ..Default::default() }).expect("block");
    sweep(&app).await;
    let c = shown(&app, &id).await;
    assert_eq!(health(&c), ("Logged out", Some("app_blocked")), "{c}");
    assert!(c["health_fix"].as_str().expect("fix").contains("Unblock"), "{c}");
}

#[tokio::test]
async fn an_outage_is_ridden_out_within_the_grace_period_then_not_available_then_back_by_itself() {
    let app = spawn().await;
    let id = oauth_connection(&app, "Weathered").await;
    app.em.expire_all_tokens();
    let outage = FaultRule { times: None, ..FaultRule::error("/services/oauth2/token", 0, 503, "SERVER_UNAVAILABLE") };
    app.em.add_fault(outage);
    sweep(&app).await;
    assert_eq!(health(&shown(&app, &id).await), ("Logged in", None), "a short outage changes nothing");
    app.clock.advance(Duration::from_secs(20 * 60));
    sweep(&app).await;
    assert_eq!(health(&shown(&app, &id).await).0, "Logged in", "20 minutes: still within 30");
    app.clock.advance(Duration::from_secs(11 * 60));
    sweep(&app).await;
    let c = shown(&app, &id).await;
    assert_eq!(health(&c), ("Not available", Some("salesforce_unreachable")), "{c}");
    assert!(c["health_detail"].as_str().expect("detail").contains("failing for 31 min"), "{c}");
    app.em.clear_faults();
    sweep(&app).await;
    assert_eq!(health(&shown(&app, &id).await), ("Logged in", None), "back by itself");
    // Announced (#18): the streak's first failure once (not at each of its three sweeps), then
    // Not available, then back.
    let (_, events) = app.call("admin_a", Method::GET, "/events", None).await;
    let types: Vec<&str> = events.as_array().expect("events").iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["connection.recovered", "connection.unavailable", "connection.failing"], "{events:#}");
    assert_eq!(events[2]["data"]["reason"]["code"], "salesforce_unreachable", "{events:#}");
    assert_eq!(events[2]["data"]["connection"]["id"], id.as_str());
}

#[tokio::test]
async fn a_frozen_user_reads_as_a_refused_sign_in_and_check_now_brings_it_back_after_unfreezing() {
    let app = spawn().await;
    let id = oauth_connection(&app, "Frozen").await;
    let freeze = |v: bool| UserChange { frozen: Some(v), ..Default::default() };
    app.em.set_user("admin@acme.test", &freeze(true)).expect("freeze");
    sweep(&app).await;
    // Salesforce's answer names no cause (`authentication failure`): the grant is refused.
    let c = shown(&app, &id).await;
    assert_eq!(health(&c), ("Logged out", Some("refresh_token_invalid")), "{c}");
    app.em.set_user("admin@acme.test", &freeze(false)).expect("unfreeze");
    let (_, checked) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
    assert_eq!(health(&checked), ("Logged in", None), "{checked}");
}

#[tokio::test]
async fn a_refused_call_is_not_available_at_once_and_recovers_by_itself_when_fixed() {
    let app = spawn().await;
    let id = oauth_connection(&app, "No API").await;
    let api = |v: bool| UserChange { api_enabled: Some(v), ..Default::default() };
    app.em.set_user("admin@acme.test", &api(false)).expect("api off");
    sweep(&app).await;
    let c = shown(&app, &id).await;
    assert_eq!(health(&c), ("Not available", Some("api_disabled")), "{c}");
    assert!(c["health_fix"].as_str().expect("fix").contains("API Enabled"), "{c}");
    // A renewal alone does not clear a refused call; the next call that works does.
    app.em.expire_all_tokens();
    sweep(&app).await;
    assert_eq!(health(&shown(&app, &id).await), ("Not available", Some("api_disabled")));
    app.em.set_user("admin@acme.test", &api(true)).expect("api on");
    sweep(&app).await;
    assert_eq!(health(&shown(&app, &id).await), ("Logged in", None), "still called, so it comes back");
}

#[tokio::test]
async fn sessions_refused_after_a_relaxed_refresh_are_named_not_blamed_on_the_refresh_token() {
    let app = spawn().await;
    let id = oauth_connection(&app, "Relaxed refresh").await;
    let org = app.em.org_id_of_user("admin@acme.test").expect("org");
    app.em.set_org(&org, &OrgChange { login_ip_ranges: Some(vec!["10.0.0.0/8".into()]) }).expect("ranges");
    let relax = AppChange { ip_relaxation: Some(emulator::IpRelaxation::EnforceRelaxRefresh), ..Default::default() };
    app.em.set_app(OAUTH_KEY, &relax).expect("relax refresh");
    app.em.expire_all_tokens();
    sweep(&app).await;
    // The refresh works (relaxed) but every session is refused from here.
    let c = shown(&app, &id).await;
    assert_eq!(health(&c), ("Not available", Some("session_refused")), "{c}");
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=connection.status_changed", None).await;
    assert_eq!(log["items"].as_array().expect("items").len(), 1, "one change, no flapping: {log}");
}

const HOUR: Duration = Duration::from_secs(3600);
const HALF_HOUR: Duration = Duration::from_secs(1800);

/// Both clocks, Lightbridge's and Salesforce's, half an hour on; the health check (every 15
/// minutes in production: half an hour here keeps a two-hour session as alive) and, if
/// `keep_alive`, the daily keep-alive.
async fn half_an_hour_passes(app: &TestApp, keep_alive: bool) {
    app.clock.advance(HALF_HOUR);
    app.em.advance_clock(HALF_HOUR);
    let svc: &service::Service = &app.state;
    svc.keeper.health_sweep(Duration::from_secs(900), 500).await.expect("sweep");
    if keep_alive {
        svc.keeper.keep_alive(24 * HOUR, 500).await.expect("keep-alive");
    }
}

async fn idle_app() -> (TestApp, String) {
    let app = spawn().await;
    let id = oauth_connection(&app, "Idle").await;
    let idle = emulator::RefreshTokenPolicy::ExpireIfUnused { seconds: 30 * 24 * 3600 };
    app.em.set_app(OAUTH_KEY, &AppChange { refresh_token_policy: Some(idle), ..Default::default() }).expect("policy");
    (app, id)
}

#[tokio::test]
async fn without_the_keep_alive_an_apps_idle_limit_ends_a_connection_kept_busy_by_health_checks() {
    // The control for the next test: health checks keep the *session* alive, so the refresh
    // token is never used, and the app's 30-day idle limit ends it unseen.
    let (app, id) = idle_app().await;
    for _ in 0..31 * 48 {
        half_an_hour_passes(&app, false).await;
    }
    app.clock.advance(3 * HOUR);
    app.em.advance_clock(3 * HOUR);
    let (_, checked) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
    assert_eq!(health(&checked), ("Logged out", Some("refresh_token_invalid")), "{checked}");
}

#[tokio::test]
async fn the_keep_alive_renews_an_idle_connection_so_it_still_works_on_day_61() {
    let (app, id) = idle_app().await;
    let before = token_calls(&app, "refresh_token");
    for _ in 0..61 * 48 {
        half_an_hour_passes(&app, true).await;
    }
    app.clock.advance(3 * HOUR);
    app.em.advance_clock(3 * HOUR);
    let (_, checked) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
    assert_eq!(health(&checked), ("Logged in", None), "{checked}");
    let calls = token_calls(&app, "refresh_token") - before;
    assert!((61..=63).contains(&calls), "about one renewal a day: {calls} in 61 days");
}

#[tokio::test]
async fn a_sixth_sign_in_is_warned_about_and_the_connection_it_costs_is_named_at_once() {
    let app = spawn().await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(oauth_connection(&app, &format!("Org view {n}")).await);
    }
    // Before a sixth sign-in: the API and the new-connection form say which one it would cost.
    let path = format!("/connections/approvals?consumer_key={OAUTH_KEY}");
    let (status, view) = app.call("admin_a", Method::GET, &path, None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["users"][0]["salesforce_username"], "admin@acme.test", "{view}");
    assert_eq!(view["users"][0]["would_revoke"]["id"].as_str(), Some(ids[0].as_str()), "{view}");
    let (cookie, _) = app.sign_in("admin_a").await;
    let form_check = app
        .http
        .get(format!("{}/connections/salesforce/approvals?consumer_key={OAUTH_KEY}", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    let answer: Value = form_check.json().await.expect("json");
    let warning = answer["warning"].as_str().expect("a warning");
    assert!(
        warning.contains("admin@acme.test") && warning.contains("Org view 1") && warning.contains("JWT"),
        "{warning}"
    );
    let (_, none) = app.call("admin_a", Method::GET, "/connections/approvals?consumer_key=another-app", None).await;
    assert_eq!(none["users"], json!([]));
    // Announced once, at the fifth sign-in (#18), naming the connection the next one costs.
    let (_, events) = app.call("admin_a", Method::GET, "/events", None).await;
    let full: Vec<&Value> = events
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "connection.approval_limit_reached")
        .collect();
    assert_eq!(full.len(), 1, "{events:#}");
    assert_eq!(full[0]["data"]["next_revoked"]["id"].as_str(), Some(ids[0].as_str()), "{events:#}");
    assert_eq!(full[0]["data"]["signed_in_for"]["id"].as_str(), Some(ids[4].as_str()), "{events:#}");
    assert_eq!(full[0]["data"]["connections"].as_array().map(Vec::len), Some(5));
    let (status, _) = app.call("viewer_a", Method::GET, &path, None).await;
    assert_eq!(status, 403);

    // The sixth: Salesforce revokes the oldest grant, and Lightbridge names it at once.
    ids.push(oauth_connection(&app, "Org view 6").await);
    let first = shown(&app, &ids[0]).await;
    assert_eq!(health(&first), ("Logged out", Some("approval_limit")), "{first}");
    assert!(first["health_detail"].as_str().expect("detail").contains("Org view 6"), "{first}");
    for id in &ids[1..] {
        assert_eq!(health(&shown(&app, id).await).0, "Logged in");
    }
    // Still at the limit after the sixth: announced again, naming the next one at risk.
    let (_, events) = app.call("admin_a", Method::GET, "/events", None).await;
    let full: Vec<&Value> = events
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "connection.approval_limit_reached")
        .collect();
    assert_eq!(full.len(), 2, "{events:#}");
    assert_eq!(full[0]["data"]["next_revoked"]["id"].as_str(), Some(ids[1].as_str()), "{events:#}");
    // Salesforce agrees: its refresh token is gone; a check keeps the better reason.
    app.em.expire_all_tokens();
    let (_, checked) = app.call("admin_a", Method::POST, &format!("/connections/{}/check", ids[0]), None).await;
    assert_eq!(health(&checked), ("Logged out", Some("approval_limit")), "{checked}");

    // Reconnecting the newest would now cost the oldest live one; the page says so. Reconnecting
    // the oldest live one costs nothing else (its own grant is the one replaced).
    let page = |id: String| {
        let (app, cookie, path) = (&app, &cookie, format!("/connections/salesforce/{id}"));
        async move { get(app, cookie, &path).await }
    };
    let (_, replacing) = app
        .call(
            "admin_a",
            Method::GET,
            &format!("/connections/approvals?consumer_key={OAUTH_KEY}&replacing={}", ids[5]),
            None,
        )
        .await;
    assert_eq!(replacing["users"][0]["would_revoke"]["id"].as_str(), Some(ids[1].as_str()), "{replacing}");
    let newest = page(ids[5].clone()).await;
    assert!(newest.contains("reconnect-warning") && newest.contains("Org view 2"), "{newest}");
    let oldest_live = page(ids[1].clone()).await;
    assert!(!oldest_live.contains("reconnect-warning"), "{oldest_live}");
}

#[tokio::test]
async fn health_checks_need_no_view_setup_and_configuration() {
    let app = spawn().await;
    let id = oauth_connection(&app, "Plain user").await;
    let change = UserChange { view_setup: Some(false), ..Default::default() };
    app.em.set_user("admin@acme.test", &change).expect("no View Setup");
    sweep(&app).await;
    assert_eq!(health(&shown(&app, &id).await), ("Logged in", None), "the check reads no /limits");
}

#[tokio::test]
async fn a_sixth_sign_in_marks_nothing_when_salesforce_kept_the_oldest_grant() {
    let app = spawn().await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(oauth_connection(&app, &format!("Counted {n}")).await);
    }
    // One grant ended at Salesforce without Lightbridge noticing (a user revoked it in their
    // OAuth usage page): Salesforce holds four, so a sixth sign-in revokes nothing.
    let svc: &service::Service = &app.state;
    let secrets = svc.store.secrets(&domain::ConnectionId::parse(&ids[2]).expect("id")).await.expect("secrets");
    let refresh = secrets.refresh_token.expect("refresh token").expose_secret().to_string();
    let revoked = app
        .http
        .post(format!("{}/services/oauth2/revoke", app.em.login_url()))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    ids.push(oauth_connection(&app, "Counted 6").await);
    // Lightbridge counted six, asked Salesforce about the oldest, and was told it lives.
    assert_eq!(health(&shown(&app, &ids[0]).await), ("Logged in", None));
}

/// An OAuth connection of the sandbox user admin@acme.test.uat: its id.
async fn sandbox_connection(app: &TestApp, name: &str) -> String {
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let body = json!({"name": name, "org_type": "sandbox", "login_host": "test",
                      "consumer_key": OAUTH_KEY, "consumer_secret": OAUTH_SECRET});
    let callback = app
        .oauth_through_salesforce(&cookie, &csrf, "/api/v1/connections/oauth/start", body, "admin@acme.test.uat")
        .await;
    let (status, saved) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!(status, 201, "{saved}");
    saved["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn reconnect_accepts_the_refreshed_copy_of_a_sandbox_and_still_refuses_another_org() {
    let app = spawn().await;
    let id = sandbox_connection(&app, "UAT").await;
    let old = app.em.org_id_of_user("admin@acme.test.uat").expect("org");
    let new = app.em.refresh_sandbox(&old).expect("refresh");
    sweep(&app).await;
    // The refresh token of the old copy is dead; Salesforce says no more than that.
    assert_eq!(health(&shown(&app, &id).await), ("Logged out", Some("refresh_token_invalid")));
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let reconnect = |username: &'static str| {
        let (cookie, csrf, id) = (cookie.clone(), csrf.clone(), id.clone());
        let app = &app;
        async move {
            let path = format!("/api/v1/connections/{id}/reconnect");
            let (status, started) = app.browser(&cookie, Some(&csrf), Method::POST, &path, None).await;
            assert_eq!(status, 200, "{started}");
            let url = started["authorize_url"].as_str().expect("url");
            let callback = emulator::testing::sign_in(url, username, "emulator", true).await.expect("sign-in");
            app.browser(&cookie, None, Method::GET, &callback, None).await
        }
    };
    // Another sandbox (another name) is still refused …
    let mut other = emulator::OrgSeed::new("Other UAT");
    other.sandbox = true;
    other.users = vec![emulator::UserSeed::new("admin@other.test.uat")];
    app.em.add_org(&other).expect("org");
    let (status, refused) = reconnect("admin@other.test.uat").await;
    assert_eq!(status, 409, "{refused}");
    // … the refreshed copy of the same sandbox is this connection's new copy.
    let (status, back) = reconnect("admin@acme.test.uat").await;
    assert_eq!(
        (status, back["org_id"].as_str(), back["health"].as_str()),
        (200, Some(new.as_str()), Some("Logged in")),
        "{back}"
    );
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=connection.reconnected", None).await;
    let detail = log["items"][0]["detail"].as_str().expect("detail");
    assert!(detail.contains("was refreshed") && detail.contains(&new), "{detail}");
}

#[tokio::test]
async fn a_jwt_connection_to_a_refreshed_sandbox_says_so_instead_of_publishing_to_the_new_copy() {
    let app = spawn().await;
    let body = json!({"name": "UAT JWT", "org_type": "sandbox", "login_host": "test",
                      "auth": {"method": "jwt", "consumer_key": KEY, "username": "admin@acme.test.uat",
                               "private_key": app.private_key}});
    let (status, saved) = app.call("admin_a", Method::POST, "/connections", Some(body)).await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().expect("id").to_string();
    let old = app.em.org_id_of_user("admin@acme.test.uat").expect("org");
    app.em.refresh_sandbox(&old).expect("refresh");
    sweep(&app).await;
    // JWT signs in again fine — to another org. That is named, not followed.
    let c = shown(&app, &id).await;
    assert_eq!(health(&c), ("Logged out", Some("sandbox_refreshed")), "{c}");
    assert_eq!(c["org_id"].as_str(), Some(old.as_str()), "still the org it was made for");
    assert!(c["health_fix"].as_str().expect("fix").contains("Reconnect"), "{c}");
}

/// The app with the emulator's host also allowed under the name `localhost` (where the tests
/// move an org's My Domain).
async fn app_allowing_localhost() -> TestApp {
    testkit::spawn_configured(None, |config| {
        let localhost = config.allowed_hosts[0].replace("127.0.0.1", "localhost");
        config.allowed_hosts.push(localhost);
    })
    .await
}

#[tokio::test]
async fn a_my_domain_change_is_followed_to_an_allowed_host_and_refused_otherwise() {
    let app = app_allowing_localhost().await;
    let oauth = oauth_connection(&app, "Prod").await;
    let prod = app.em.org_id_of_user("admin@acme.test").expect("org");
    let localhost = app.em.base_url().replace("127.0.0.1", "localhost");
    // Renamed: sessions end, the renewal names the new host, and Lightbridge follows it.
    app.em.change_my_domain(&prod, "localhost", false).expect("rename");
    sweep(&app).await;
    let c = shown(&app, &oauth).await;
    assert_eq!(health(&c), ("Logged in", None), "{c}");
    assert_eq!(c["instance_url"].as_str(), Some(localhost.as_str()), "{c}");
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=connection.instance_moved", None).await;
    let detail = log["items"][0]["detail"].as_str().expect("detail");
    assert!(detail.contains(app.em.base_url()) && detail.contains(&localhost), "{detail}");
    // A client-credentials connection signing in at the org's My Domain.
    let body = json!({"name": "At My Domain", "org_type": "production", "login_host": localhost,
                      "auth": {"method": "client_credentials", "consumer_key": KEY, "consumer_secret": SECRET}});
    let (status, saved) = app.call("admin_a", Method::POST, "/connections", Some(body)).await;
    assert_eq!(status, 201, "{saved}");
    let at_my_domain = saved["id"].as_str().expect("id").to_string();
    // Renamed again, to a host nobody allowed: localhost now redirects there. Neither
    // redirect is followed with credentials; each connection says what happened.
    app.em.change_my_domain(&prod, "acme-renamed.example", false).expect("rename");
    sweep(&app).await;
    let c = shown(&app, &oauth).await;
    assert_eq!(health(&c), ("Logged out", Some("instance_not_allowed")), "{c}");
    assert!(c["health_detail"].as_str().unwrap_or_default().contains("acme-renamed.example"), "{c}");
    let c = shown(&app, &at_my_domain).await;
    assert_eq!(health(&c), ("Logged out", Some("my_domain_changed")), "{c}");
    assert!(c["health_fix"].as_str().expect("fix").contains("login URL"), "{c}");
    // Both are dead until someone acts: they cost Salesforce nothing more.
    let seen = app.em.requests().len();
    sweep(&app).await;
    assert_eq!(app.em.requests().len(), seen, "no calls for dead connections");
}

/// Issue #15: the connection check asks for *Modify Metadata* only where the connection's
/// system deploys the loader, and names the fix.
#[tokio::test]
async fn the_check_asks_for_modify_metadata_only_where_the_system_uses_the_loader() {
    let app = spawn().await;
    let id = oauth_connection(&app, "Prod").await;
    let (_, system) = app.call("admin_a", Method::POST, "/systems", Some(json!({"name": "Sales"}))).await;
    let system = system["id"].as_str().expect("system").to_string();
    let (_, envs) = app.call("admin_a", Method::GET, "/environments", None).await;
    let env = envs[0]["id"].as_str().expect("env").to_string();
    let (status, _) =
        app.call("admin_a", Method::PUT, &format!("/systems/{system}/environments/{env}/connections/{id}"), None).await;
    assert_eq!(status, 204);
    let change = UserChange { modify_metadata: Some(false), ..UserChange::default() };
    app.em.set_user("admin@acme.test", &change).expect("change");
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let reconnect = || {
        let (cookie, csrf, id, app) = (cookie.clone(), csrf.clone(), id.clone(), &app);
        async move {
            let path = format!("/api/v1/connections/{id}/reconnect");
            let (status, started) = app.browser(&cookie, Some(&csrf), Method::POST, &path, None).await;
            assert_eq!(status, 200, "{started}");
            let url = started["authorize_url"].as_str().expect("url");
            let callback = emulator::testing::sign_in(url, "admin@acme.test", "emulator", true).await.expect("sign-in");
            app.browser(&cookie, None, Method::GET, &callback, None).await
        }
    };
    // No loader: the step is not part of the check.
    let (status, back) = reconnect().await;
    assert_eq!(status, 200, "{back}");
    // The system deploys the loader: the check needs the permission, and says how to give it.
    let settings = json!({"scripts": ["player.js"]});
    let (status, _) = app.call("admin_a", Method::PUT, &format!("/systems/{system}/loader"), Some(settings)).await;
    assert_eq!(status, 200);
    let (status, refused) = reconnect().await;
    assert_eq!(status, 422, "{refused}");
    let steps = refused["check"]["steps"].as_array().unwrap_or_else(|| panic!("steps: {refused}"));
    let step = steps.iter().find(|s| s["step"] == "modify_metadata").expect("the loader's step");
    assert_eq!(step["outcome"], "failed", "{refused}");
    assert!(step["fix"].as_str().expect("fix").contains("Modify Metadata Through Metadata API Functions"), "{step}");
    let change = UserChange { modify_metadata: Some(true), ..UserChange::default() };
    app.em.set_user("admin@acme.test", &change).expect("change");
    let (status, back) = reconnect().await;
    assert_eq!(status, 200, "{back}");
}
