//! Issue #14: a token's life after day one, as docs/salesforce-behaviour.md records it —
//! refresh token policies driven by the emulator's clock, the five-approval limit, IP
//! restrictions, blocked apps, frozen and deactivated users — each switchable while running,
//! in process and through the admin API.

mod common;

use std::time::Duration;

use common::*;
use emulator::{AppChange, AppSeed, Emulator, IpRelaxation, OrgChange, RefreshTokenPolicy, UserChange};
use serde_json::{Value, json};

const APP: &str = "3MVG9LifeApp";
const SECRET: &str = "life-secret";
const DAY: u64 = 24 * 3600;

async fn with_app(policy: RefreshTokenPolicy) -> Emulator {
    let em = start().await;
    let app = AppSeed {
        callback_urls: vec![CALLBACK.into()],
        refresh_token_policy: policy,
        client_credentials_user: Some("admin@prod.test".into()),
        ..AppSeed::new(APP, SECRET)
    };
    em.add_app(&app).expect("app");
    em
}

/// A web-server sign-in of `username` through `APP`: its token reply.
async fn sign_in_app(em: &Emulator, username: &str) -> Value {
    let (verifier, challenge) = pkce();
    let code = match authorize(&em.login_url(), APP, username, PASSWORD, Some(&challenge), true).await {
        Outcome::Callback(url) => query_param(&url, "code").unwrap_or_else(|| panic!("no code: {url}")),
        other => panic!("{other:?}"),
    };
    let (status, reply) = token(
        &em.login_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", APP),
            ("client_secret", SECRET),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    reply
}

fn refresh_of(reply: &Value) -> String {
    reply["refresh_token"].as_str().expect("refresh token").to_string()
}

async fn refresh(em: &Emulator, token: &str) -> (u16, Value) {
    refresh_at(&em.login_url(), token).await
}

async fn refresh_at(login: &str, token: &str) -> (u16, Value) {
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", APP), ("client_secret", SECRET)];
    common::token(login, &form).await
}

fn refused(reply: &(u16, Value)) -> (u16, Option<&str>, Option<&str>) {
    (reply.0, reply.1["error"].as_str(), reply.1["error_description"].as_str())
}

const EXPIRED: (u16, Option<&str>, Option<&str>) = (400, Some("invalid_grant"), Some("expired access/refresh token"));

/// A REST call with an access token: its status.
async fn call(em: &Emulator, access: &str) -> u16 {
    let url = format!("{}/services/data/v{}.0/", em.base_url(), emulator::LATEST_API_VERSION);
    client().get(url).bearer_auth(access).send().await.expect("call").status().as_u16()
}

#[tokio::test]
async fn a_refresh_token_valid_until_revoked_outlives_a_year_of_disuse() {
    let em = with_app(RefreshTokenPolicy::ValidUntilRevoked).await;
    let token = refresh_of(&sign_in_app(&em, "admin@prod.test").await);
    em.advance_clock(Duration::from_secs(400 * DAY));
    assert_eq!(refresh(&em, &token).await.0, 200);
}

#[tokio::test]
async fn immediately_expire_makes_every_refresh_fail() {
    let em = with_app(RefreshTokenPolicy::ImmediatelyExpire).await;
    let reply = sign_in_app(&em, "admin@prod.test").await;
    assert_eq!(call(&em, &access(&reply)).await, 200, "the access token itself works");
    assert_eq!(refused(&refresh(&em, &refresh_of(&reply)).await), EXPIRED);
}

#[tokio::test]
async fn expire_after_counts_from_the_sign_in_whatever_the_use() {
    let em = with_app(RefreshTokenPolicy::ExpireAfter { seconds: 30 * DAY }).await;
    let token = refresh_of(&sign_in_app(&em, "admin@prod.test").await);
    for _ in 0..4 {
        em.advance_clock(Duration::from_secs(7 * DAY));
        assert_eq!(refresh(&em, &token).await.0, 200, "used weekly, within 30 days");
    }
    em.advance_clock(Duration::from_secs(2 * DAY + 1));
    assert_eq!(refused(&refresh(&em, &token).await), EXPIRED, "30 days after the sign-in, used or not");
}

#[tokio::test]
async fn expire_if_unused_is_kept_alive_by_use_and_ends_after_an_idle_period() {
    let em = with_app(RefreshTokenPolicy::ExpireIfUnused { seconds: 30 * DAY }).await;
    let token = refresh_of(&sign_in_app(&em, "admin@prod.test").await);
    for _ in 0..10 {
        em.advance_clock(Duration::from_secs(29 * DAY));
        assert_eq!(refresh(&em, &token).await.0, 200, "used every 29 days: alive for 290");
    }
    em.advance_clock(Duration::from_secs(30 * DAY));
    assert_eq!(refused(&refresh(&em, &token).await), EXPIRED, "30 idle days");
    assert_eq!(refused(&refresh(&em, &token).await), EXPIRED, "and it stays dead");
}

#[tokio::test]
async fn a_policy_changed_while_running_applies_to_tokens_already_issued() {
    let em = with_app(RefreshTokenPolicy::ValidUntilRevoked).await;
    let token = refresh_of(&sign_in_app(&em, "admin@prod.test").await);
    em.advance_clock(Duration::from_secs(10 * DAY));
    let change = AppChange {
        refresh_token_policy: Some(RefreshTokenPolicy::ExpireIfUnused { seconds: 7 * DAY }),
        ..AppChange::default()
    };
    em.set_app(APP, &change).expect("change");
    assert_eq!(refused(&refresh(&em, &token).await), EXPIRED);
}

#[tokio::test]
async fn a_sixth_web_server_approval_revokes_the_users_oldest_and_jwt_does_not_count() {
    let em = with_app(RefreshTokenPolicy::ValidUntilRevoked).await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(refresh_of(&sign_in_app(&em, "admin@prod.test").await));
    }
    assert_eq!(em.approvals("admin@prod.test", APP), 5);
    // Another user's sign-ins and another app's are counted apart.
    sign_in_app(&em, "editor@prod.test").await;
    sign_in(&em, "admin@prod.test").await;
    assert_eq!(em.approvals("admin@prod.test", APP), 5);
    for t in &tokens {
        assert_eq!(refresh(&em, t).await.0, 200);
    }
    let sixth = sign_in_app(&em, "admin@prod.test").await;
    assert_eq!(refused(&refresh(&em, &tokens[0]).await), EXPIRED, "the oldest approval is revoked");
    for t in tokens.iter().skip(1).chain([&refresh_of(&sixth)]) {
        assert_eq!(refresh(&em, t).await.0, 200, "the other five live");
    }
    assert_eq!(em.approvals("admin@prod.test", APP), 5);
    assert_eq!(em.approvals("editor@prod.test", APP), 1);
    // JWT bearer issues no refresh token: it is no approval.
    assert_eq!(jwt_for(&em, "admin@prod.test").await.0, 200);
    assert_eq!(em.approvals("admin@prod.test", JWT_KEY), 0);
}

#[tokio::test]
async fn rotation_keeps_the_approval_and_the_five_count_approvals_not_rotations() {
    let em = with_app(RefreshTokenPolicy::ValidUntilRevoked).await;
    em.set_app(APP, &AppChange { rotate_refresh_tokens: Some(true), ..AppChange::default() }).expect("rotate");
    let mut current = refresh_of(&sign_in_app(&em, "admin@prod.test").await);
    for _ in 0..8 {
        let (status, reply) = refresh(&em, &current).await;
        assert_eq!(status, 200, "{reply}");
        current = refresh_of(&reply);
    }
    assert_eq!(em.approvals("admin@prod.test", APP), 1, "eight rotations are still one approval");
}

#[tokio::test]
async fn ip_restrictions_answer_as_the_apps_relaxation_says() {
    let em = with_app(RefreshTokenPolicy::ValidUntilRevoked).await;
    let reply = sign_in_app(&em, "admin@prod.test").await;
    let token = refresh_of(&reply);
    let prod = em.org_id_of_user("admin@prod.test").expect("org");
    // The profile allows only 10.0.0.0/8; the tests come from 127.0.0.1.
    em.set_org(&prod, &OrgChange { login_ip_ranges: Some(vec!["10.0.0.0/8".into()]) }).expect("ranges");
    let relax = |r: IpRelaxation| AppChange { ip_relaxation: Some(r), ..AppChange::default() };
    let restricted = (400, Some("invalid_grant"), Some("ip restricted"));

    // Enforced (the default): refresh refused, and the session is not valid from here either.
    assert_eq!(refused(&refresh(&em, &token).await), restricted);
    assert_eq!(call(&em, &access(&reply)).await, 401);
    // Enforced but relaxed for refreshed tokens: the refresh works, a sign-in does not.
    em.set_app(APP, &relax(IpRelaxation::EnforceRelaxRefresh)).expect("relax refresh");
    assert_eq!(refresh(&em, &token).await.0, 200);
    let cc = [("grant_type", "client_credentials"), ("client_id", APP), ("client_secret", SECRET)];
    assert_eq!(refused(&common::token(em.base_url(), &cc).await), restricted);
    // Relaxed: everything works from anywhere …
    em.set_app(APP, &relax(IpRelaxation::Relax)).expect("relax");
    let (status, fresh) = refresh(&em, &token).await;
    assert_eq!(status, 200);
    assert_eq!(call(&em, &access(&fresh)).await, 200);
    // … but JWT bearer always enforces the profile's ranges.
    let (status, body) = jwt_for(&em, "admin@prod.test").await;
    assert_eq!((status, body["error_description"].as_str()), (400, Some("ip restricted")), "{body}");
    // An External Client App's refresh-token allowlist refuses whatever the relaxation.
    em.set_org(&prod, &OrgChange { login_ip_ranges: Some(Vec::new()) }).expect("no ranges");
    let allowlist = AppChange { refresh_token_ip_allowlist: Some(vec!["192.0.2.0/24".into()]), ..AppChange::default() };
    em.set_app(APP, &allowlist).expect("allowlist");
    assert_eq!(
        refused(&refresh(&em, &token).await),
        (400, Some("invalid_grant"), Some("ip restricted by app developer"))
    );
    let allowlist = AppChange { refresh_token_ip_allowlist: Some(vec!["127.0.0.1".into()]), ..AppChange::default() };
    em.set_app(APP, &allowlist).expect("allowlist");
    assert_eq!(refresh(&em, &token).await.0, 200);
}

/// A JWT bearer token request for the common seed's JWT app.
async fn jwt_for(em: &Emulator, username: &str) -> (u16, Value) {
    let key = em.private_key_pem(JWT_KEY).expect("generated key");
    let assertion = sign(&key, JWT_KEY, username, "https://login.salesforce.com", now_secs() + 180);
    jwt_token(&em.login_url(), &assertion).await
}

#[tokio::test]
async fn blocking_an_app_ends_its_tokens_in_that_org_and_refuses_sign_ins_until_unblocked() {
    let em = with_app(RefreshTokenPolicy::ValidUntilRevoked).await;
    let prod_reply = sign_in_app(&em, "admin@prod.test").await;
    let prod = em.org_id_of_user("admin@prod.test").expect("org");
    em.set_app(APP, &AppChange { block_in: Some(prod.clone()), ..AppChange::default() }).expect("block");
    assert_eq!(refused(&refresh(&em, &refresh_of(&prod_reply)).await), EXPIRED, "its refresh tokens ended");
    assert_eq!(call(&em, &access(&prod_reply)).await, 401, "and its sessions");
    let cc = [("grant_type", "client_credentials"), ("client_id", APP), ("client_secret", SECRET)];
    let reply = common::token(em.base_url(), &cc).await;
    assert_eq!(refused(&reply), (400, Some("invalid_client"), Some("OAUTH_APP_BLOCKED")));
    match authorize(&em.login_url(), APP, "admin@prod.test", PASSWORD, None, true).await {
        Outcome::Callback(url) => assert_eq!(query_param(&url, "error").as_deref(), Some("OAUTH_APP_BLOCKED"), "{url}"),
        other => panic!("{other:?}"),
    }
    em.set_app(APP, &AppChange { unblock_in: Some(prod), ..AppChange::default() }).expect("unblock");
    assert_eq!(common::token(em.base_url(), &cc).await.0, 200);
}

#[tokio::test]
async fn a_frozen_or_deactivated_user_loses_their_sessions_and_refreshes_say_so_until_restored() {
    let em = with_app(RefreshTokenPolicy::ValidUntilRevoked).await;
    let reply = sign_in_app(&em, "admin@prod.test").await;
    let token = refresh_of(&reply);

    em.set_user("admin@prod.test", &UserChange { frozen: Some(true), ..UserChange::default() }).expect("freeze");
    assert_eq!(call(&em, &access(&reply)).await, 401, "sessions end");
    assert_eq!(refused(&refresh(&em, &token).await), (400, Some("invalid_grant"), Some("authentication failure")));
    em.set_user("admin@prod.test", &UserChange { frozen: Some(false), ..UserChange::default() }).expect("unfreeze");
    assert_eq!(refresh(&em, &token).await.0, 200, "the refresh token survived the freeze");

    em.set_user("admin@prod.test", &UserChange { active: Some(false), ..UserChange::default() }).expect("deactivate");
    assert_eq!(refused(&refresh(&em, &token).await), (400, Some("invalid_grant"), Some("inactive user")));
    em.set_user("admin@prod.test", &UserChange { active: Some(true), ..UserChange::default() }).expect("reactivate");
    assert_eq!(refresh(&em, &token).await.0, 200);
}

#[tokio::test]
async fn the_admin_api_changes_apps_orgs_and_users_over_http() {
    let em = with_app(RefreshTokenPolicy::ValidUntilRevoked).await;
    let token = refresh_of(&sign_in_app(&em, "admin@prod.test").await);
    let admin = |path: &str| format!("{}/__emulator{path}", em.base_url());
    let http = client();
    let patch = |path: String, body: Value| {
        let request = http.patch(path).json(&body);
        async move { request.send().await.expect("admin").status().as_u16() }
    };
    let policy = json!({"refresh_token_policy": {"kind": "expire_if_unused", "seconds": 3600}});
    assert_eq!(patch(admin(&format!("/apps/{APP}")), policy).await, 204);
    em.advance_clock(Duration::from_secs(3601));
    assert_eq!(refused(&refresh(&em, &token).await), EXPIRED);
    assert_eq!(patch(admin("/apps/nope"), json!({"installed": false})).await, 404);
    assert_eq!(patch(admin(&format!("/apps/{APP}")), json!({"ip_relaxation": "sometimes"})).await, 400);
    let prod = em.org_id_of_user("admin@prod.test").expect("org");
    assert_eq!(patch(admin(&format!("/orgs/{prod}")), json!({"login_ip_ranges": ["not an ip"]})).await, 400);
    assert_eq!(patch(admin(&format!("/orgs/{prod}")), json!({"login_ip_ranges": ["10.0.0.0/8"]})).await, 204);
    assert_eq!(patch(admin("/users/editor@prod.test"), json!({"frozen": true})).await, 204);
}

#[tokio::test]
async fn the_limits_resource_needs_view_setup_and_configuration() {
    let em = start().await;
    let token = admin_token(&em).await;
    let (status, _, _) = get(&em, &token, "/limits").await;
    assert_eq!(status, 200);
    em.set_user("admin@prod.test", &UserChange { view_setup: Some(false), ..UserChange::default() }).expect("change");
    let (status, _, body) = get(&em, &token, "/limits").await;
    assert_eq!((status, code(&body)), (403, "INSUFFICIENT_ACCESS"), "{body}");
    assert_eq!(call(&em, &token).await, 200, "the version root needs no such permission");
}

#[tokio::test]
async fn a_refreshed_sandbox_is_a_new_org_whose_old_tokens_are_dead_and_whose_users_carry_over() {
    let em = start().await;
    let reply = sign_in(&em, "admin@sandbox.test").await;
    let old = em.org_id_of_user("admin@sandbox.test").expect("org");
    let new = em.refresh_sandbox(&old).expect("refresh");
    assert_ne!(new, old);
    assert_eq!(em.org_id_of_user("admin@sandbox.test").as_deref(), Some(new.as_str()), "usernames carry over");
    // Every token of the old copy is dead.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", reply["refresh_token"].as_str().expect("refresh")),
        ("client_id", WEB_KEY),
        ("client_secret", WEB_SECRET),
    ];
    assert_eq!(refused(&common::token(&em.test_login_url(), &form).await), EXPIRED);
    assert_eq!(call(&em, &access(&reply)).await, 401);
    // The app carries over: a JWT sign-in (pre-authorized) lands in the new copy.
    let key = em.private_key_pem(JWT_KEY).expect("generated key");
    let assertion = sign(&key, JWT_KEY, "admin@sandbox.test", "https://test.salesforce.com", now_secs() + 180);
    let (status, body) = jwt_token(&em.test_login_url(), &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().expect("id").contains(&new), "{body}");
    // Only sandboxes are refreshed.
    let prod = em.org_id_of_user("admin@prod.test").expect("org");
    assert!(em.refresh_sandbox(&prod).is_err());
    let refreshed =
        client().post(format!("{}/__emulator/orgs/{new}/refresh-sandbox", em.base_url())).send().await.expect("admin");
    assert_eq!(refreshed.status(), 200, "and through the admin API");
}

#[tokio::test]
async fn an_app_introspects_its_own_tokens_and_a_dead_or_foreign_one_is_inactive() {
    let em = with_app(RefreshTokenPolicy::ValidUntilRevoked).await;
    let reply = sign_in_app(&em, "admin@prod.test").await;
    let introspect = |token: String, id: &'static str, secret: &'static str| {
        let url = format!("{}/services/oauth2/introspect", em.login_url());
        async move {
            let form = [("token", token.as_str()), ("client_id", id), ("client_secret", secret)];
            let r = client().post(url).form(&form).send().await.expect("introspect");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        }
    };
    let (status, access_info) = introspect(access(&reply), APP, SECRET).await;
    assert_eq!(status, 200, "{access_info}");
    assert_eq!(
        (access_info["active"].as_bool(), access_info["token_type"].as_str(), access_info["username"].as_str()),
        (Some(true), Some("access_token"), Some("admin@prod.test")),
        "{access_info}"
    );
    assert!(access_info["exp"].as_i64() > access_info["iat"].as_i64(), "{access_info}");
    let (_, refresh_info) = introspect(refresh_of(&reply), APP, SECRET).await;
    assert_eq!(
        (refresh_info["active"].as_bool(), refresh_info["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    // Another app sees nothing of this app's tokens; a wrong secret is refused.
    let (_, foreign) = introspect(access(&reply), WEB_KEY, WEB_SECRET).await;
    assert_eq!(foreign, json!({"active": false}));
    let (status, refused) = introspect(access(&reply), APP, "wrong").await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_client")));
    // Revoked: inactive.
    em.revoke_user("admin@prod.test").expect("revoke");
    assert_eq!(introspect(refresh_of(&reply), APP, SECRET).await.1, json!({"active": false}));
}

#[tokio::test]
async fn a_my_domain_change_ends_sessions_names_the_new_host_and_redirects_the_old_one() {
    let em = start().await;
    let reply = sign_in(&em, "admin@prod.test").await;
    assert_eq!(reply["instance_url"], em.base_url(), "no My Domain of its own yet");
    let prod = em.org_id_of_user("admin@prod.test").expect("org");
    let port = em.base_url().rsplit(':').next().expect("port").to_string();
    em.change_my_domain(&prod, "localhost", false).expect("change");
    // Sessions end; the refresh token lives on and names the new host.
    assert_eq!(call(&em, &access(&reply)).await, 401);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", reply["refresh_token"].as_str().expect("refresh")),
        ("client_id", WEB_KEY),
        ("client_secret", WEB_SECRET),
    ];
    let (status, renewed) = common::token(&em.login_url(), &form).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["instance_url"], format!("http://localhost:{port}"));
    let at_new_host = format!("http://localhost:{port}/services/data/v{}.0/", emulator::LATEST_API_VERSION);
    let answer = client().get(&at_new_host).bearer_auth(access(&renewed)).send().await.expect("call");
    assert_eq!(answer.status(), 200, "the new host serves the org");
    // Another org's other sessions are untouched; a host can be one org's only.
    let other = sign_in(&em, "admin@sandbox.test").await;
    let sandbox = em.org_id_of_user("admin@sandbox.test").expect("org");
    assert!(em.change_my_domain(&sandbox, "LOCALHOST", false).is_err(), "localhost is prod's");
    // A second change: the previous host redirects to the current one, 301 for reads and 307
    // (method and body kept) for the rest, until the next change.
    em.change_my_domain(&prod, "acme-new.example", false).expect("change");
    let old = |method: reqwest::Method, path: &str| {
        client().request(method, format!("{}{path}", em.base_url())).header("host", format!("localhost:{port}"))
    };
    let moved = old(reqwest::Method::GET, "/services/data/v62.0/limits?x=1").send().await.expect("get");
    assert_eq!(moved.status(), 301);
    let location = moved.headers()["location"].to_str().expect("location").to_string();
    assert_eq!(location, format!("http://acme-new.example:{port}/services/data/v62.0/limits?x=1"));
    let posted = old(reqwest::Method::POST, "/services/oauth2/token").send().await.expect("post");
    assert_eq!(posted.status(), 307);
    // The emulator's own host is never redirected: other orgs live there.
    assert_eq!(call(&em, &access(&other)).await, 200);
    // Every refresh token can end with the change, when asked (through the admin API).
    let url = format!("{}/__emulator/orgs/{prod}/my-domain", em.base_url());
    let changed = client()
        .post(&url)
        .json(&json!({"host": "localhost", "end_refresh_tokens": true}))
        .send()
        .await
        .expect("admin");
    assert_eq!(changed.status(), 204);
    assert_eq!(refused(&common::token(&em.login_url(), &form).await), EXPIRED);
    let bad = client().post(&url).json(&json!({"host": "https://x.example:1"})).send().await.expect("admin");
    assert_eq!(bad.status(), 400, "a host name, not a URL");
}
