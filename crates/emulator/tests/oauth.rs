//! OAuth flows of the emulator: success paths and each refusal Salesforce gives.

mod common;

use std::time::Duration;

use common::*;
use emulator::AppSeed;

#[tokio::test]
async fn code_flow_with_pkce_issues_tokens_with_a_valid_signature() {
    let em = start().await;
    let reply = sign_in(&em, "admin@prod.test").await;
    for key in ["access_token", "refresh_token", "signature", "scope", "instance_url", "id", "token_type", "issued_at"]
    {
        assert!(reply.get(key).is_some(), "token reply lacks {key}: {reply}");
    }
    let id = reply["id"].as_str().expect("id");
    let issued_at = reply["issued_at"].as_str().expect("issued_at is a string");
    assert_eq!(issued_at.len(), 13, "issued_at is in milliseconds");
    assert_eq!(reply["signature"], emulator_signature(WEB_SECRET, id, issued_at));
    assert!(id.starts_with(&format!("{}/id/00D", em.login_url())), "{id}");
    assert_eq!(reply["instance_url"], em.base_url());
    let token = access(&reply);
    assert!(token.starts_with(&id.split('/').nth_back(1).expect("org")[..15]), "token starts with the org id");
}

fn emulator_signature(secret: &str, id: &str, issued_at: &str) -> String {
    use aws_lc_rs::hmac;
    use base64::Engine;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()), format!("{id}{issued_at}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

async fn exchange(
    em: &emulator::Emulator,
    code: &str,
    secret: &str,
    verifier: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", WEB_KEY),
        ("client_secret", secret),
        ("redirect_uri", CALLBACK),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token(&em.login_url(), &form).await
}

#[tokio::test]
async fn a_pkce_verifier_that_does_not_match_is_refused() {
    let em = start().await;
    let (_, challenge) = pkce();
    let code = code_for(&em.login_url(), "admin@prod.test", &challenge).await;
    let (status, body) = exchange(&em, &code, WEB_SECRET, Some("not-the-verifier-at-all-0123456789-abcdefghijk")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
}

#[tokio::test]
async fn a_missing_pkce_verifier_is_refused() {
    let em = start().await;
    let (_, challenge) = pkce();
    let code = code_for(&em.login_url(), "admin@prod.test", &challenge).await;
    let (status, body) = exchange(&em, &code, WEB_SECRET, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn an_app_requiring_pkce_refuses_an_authorize_without_a_challenge() {
    let em = start().await;
    match authorize(&em.login_url(), WEB_KEY, "admin@prod.test", PASSWORD, None, true).await {
        Outcome::Callback(url) => {
            assert_eq!(query_param(&url, "error").as_deref(), Some("invalid_request"));
            assert_eq!(query_param(&url, "state").as_deref(), Some("st-123"));
        }
        other => panic!("expected a callback error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_code_works_once() {
    let em = start().await;
    let (verifier, challenge) = pkce();
    let code = code_for(&em.login_url(), "admin@prod.test", &challenge).await;
    assert_eq!(exchange(&em, &code, WEB_SECRET, Some(&verifier)).await.0, 200);
    let (status, body) = exchange(&em, &code, WEB_SECRET, Some(&verifier)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert_eq!(body["error_description"], "expired authorization code");
}

#[tokio::test]
async fn a_code_expires_after_fifteen_minutes() {
    let em = start().await;
    let (verifier, challenge) = pkce();
    let code = code_for(&em.login_url(), "admin@prod.test", &challenge).await;
    em.advance_clock(Duration::from_secs(16 * 60));
    let (status, body) = exchange(&em, &code, WEB_SECRET, Some(&verifier)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused() {
    let em = start().await;
    let (verifier, challenge) = pkce();
    let code = code_for(&em.login_url(), "admin@prod.test", &challenge).await;
    let (status, body) = exchange(&em, &code, "wrong-secret", Some(&verifier)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client")), "{body}");
    assert_eq!(body["error_description"], "invalid client credentials");
}

#[tokio::test]
async fn a_different_redirect_uri_at_the_token_endpoint_is_refused() {
    let em = start().await;
    let (verifier, challenge) = pkce();
    let code = code_for(&em.login_url(), "admin@prod.test", &challenge).await;
    let (status, body) = token(
        &em.login_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", WEB_KEY),
            ("client_secret", WEB_SECRET),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("redirect_uri_mismatch")), "{body}");
}

#[tokio::test]
async fn an_unregistered_callback_is_shown_on_salesforce_s_error_page_not_redirected_to() {
    let em = start().await;
    let r = client()
        .get(format!("{}/services/oauth2/authorize", em.login_url()))
        .query(&[("response_type", "code"), ("client_id", WEB_KEY), ("redirect_uri", "https://evil.example/cb")])
        .send()
        .await
        .expect("authorize");
    let loc = r.headers()["location"].to_str().expect("location").to_string();
    assert!(loc.contains("RemoteAccessErrorPage") && loc.contains("redirect_uri_mismatch"), "{loc}");
    let page = client().get(&loc).send().await.expect("error page");
    assert_eq!(page.status(), 400);
    assert!(page.text().await.expect("html").contains("redirect_uri must match configuration"));
}

#[tokio::test]
async fn an_unknown_client_id_is_refused() {
    let em = start().await;
    match authorize(&em.login_url(), "no-such-app", "admin@prod.test", PASSWORD, None, true).await {
        Outcome::Elsewhere(loc) => assert!(loc.contains("error=invalid_client_id"), "{loc}"),
        other => panic!("expected the error page, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_who_denies_access_comes_back_with_access_denied_and_the_state() {
    let em = start().await;
    let (_, challenge) = pkce();
    match authorize(&em.login_url(), WEB_KEY, "admin@prod.test", PASSWORD, Some(&challenge), false).await {
        Outcome::Callback(url) => {
            assert_eq!(query_param(&url, "error").as_deref(), Some("access_denied"));
            assert_eq!(query_param(&url, "state").as_deref(), Some("st-123"));
            assert_eq!(query_param(&url, "code"), None);
        }
        other => panic!("expected a callback, got {other:?}"),
    }
}

#[tokio::test]
async fn an_app_that_is_not_installed_cannot_be_authorized() {
    let em = start().await;
    match authorize(&em.login_url(), UNINSTALLED_KEY, "admin@prod.test", PASSWORD, None, true).await {
        Outcome::Callback(url) => {
            assert_eq!(query_param(&url, "error").as_deref(), Some("invalid_client"));
            assert_eq!(query_param(&url, "error_description").as_deref(), Some("app must be installed into org"));
        }
        other => panic!("expected a callback error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_password_shows_the_sign_in_page_again() {
    let em = start().await;
    let (_, challenge) = pkce();
    match authorize(&em.login_url(), WEB_KEY, "admin@prod.test", "wrong", Some(&challenge), true).await {
        Outcome::Page(200, html) => assert!(html.contains("Please check your username and password")),
        other => panic!("expected the sign-in page, got {other:?}"),
    }
}

#[tokio::test]
async fn a_sandbox_user_cannot_sign_in_at_the_production_host_but_can_at_the_sandbox_host() {
    let em = start().await;
    let (_, challenge) = pkce();
    match authorize(&em.login_url(), WEB_KEY, "admin@sandbox.test", PASSWORD, Some(&challenge), true).await {
        Outcome::Page(_, html) => assert!(html.contains("Please check your username and password")),
        other => panic!("sandbox user got through the production host: {other:?}"),
    }
    let reply = sign_in(&em, "admin@sandbox.test").await;
    assert!(reply["id"].as_str().expect("id").starts_with(&em.test_login_url()));
}

#[tokio::test]
async fn an_approved_app_skips_the_consent_page_next_time() {
    let em = start().await;
    sign_in(&em, "admin@prod.test").await;
    let (_, challenge) = pkce();
    let http = client();
    let r = http
        .get(format!("{}/services/oauth2/authorize", em.login_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", WEB_KEY),
            ("redirect_uri", CALLBACK),
            ("code_challenge", &challenge),
        ])
        .send()
        .await
        .expect("authorize");
    let txn = txn_of(&r.text().await.expect("page"));
    let r = http
        .post(format!("{}/services/oauth2/authorize/login", em.login_url()))
        .form(&[("txn", txn.as_str()), ("username", "admin@prod.test"), ("password", PASSWORD)])
        .send()
        .await
        .expect("login");
    let loc = r.headers()["location"].to_str().expect("straight back to the callback");
    assert!(query_param(loc, "code").is_some());
}

#[tokio::test]
async fn refresh_returns_a_new_access_token_and_keeps_the_refresh_token() {
    let em = start().await;
    let reply = sign_in(&em, "admin@prod.test").await;
    let refresh = reply["refresh_token"].as_str().expect("refresh token");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", WEB_KEY),
        ("client_secret", WEB_SECRET),
    ];
    let (status, body) = token(&em.login_url(), &form).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "no rotation: no new refresh token");
    assert_ne!(body["access_token"], reply["access_token"]);
    let (status, _) = token(&em.login_url(), &form).await;
    assert_eq!(status, 200, "the same refresh token works again");
    let (status, body) = token(
        &em.login_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", WEB_KEY),
            ("client_secret", "bad"),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client")), "a sent secret is checked");
}

#[tokio::test]
async fn with_rotation_a_replayed_refresh_token_answers_invalid_grant_and_revokes_its_successor() {
    let em = start().await;
    let (verifier, challenge) = pkce();
    let code = match authorize(&em.login_url(), ROTATING_KEY, "admin@prod.test", PASSWORD, Some(&challenge), true).await
    {
        Outcome::Callback(url) => query_param(&url, "code").expect("code"),
        other => panic!("{other:?}"),
    };
    let (_, first) = token(
        &em.login_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", ROTATING_KEY),
            ("client_secret", "rot-secret"),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    let old = first["refresh_token"].as_str().expect("refresh token").to_string();
    let (status, second) = token(
        &em.login_url(),
        &[("grant_type", "refresh_token"), ("refresh_token", &old), ("client_id", ROTATING_KEY)],
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let new = second["refresh_token"].as_str().expect("rotation returns a new refresh token");
    assert_ne!(new, old);
    let (status, body) = token(
        &em.login_url(),
        &[("grant_type", "refresh_token"), ("refresh_token", &old), ("client_id", ROTATING_KEY)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str(), body["error_description"].as_str()),
        (400, Some("invalid_grant"), Some("expired access/refresh token"))
    );
    // Replaying the retired token revoked its family: the successor is dead too (Salesforce:
    // reusing a rotated-out refresh token revokes the current one and its access tokens).
    let (status, body) =
        token(&em.login_url(), &[("grant_type", "refresh_token"), ("refresh_token", new), ("client_id", ROTATING_KEY)])
            .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let session = second["access_token"].as_str().expect("access token");
    let r = client()
        .get(format!("{}/services/data/v62.0/limits", em.base_url()))
        .bearer_auth(session)
        .send()
        .await
        .expect("call");
    assert_eq!(r.status(), 401, "the successor's access token is revoked with it");
}

#[tokio::test]
async fn a_refresh_token_with_a_lifetime_expires() {
    let em = start().await;
    em.add_app(&AppSeed {
        callback_urls: vec![CALLBACK.into()],
        refresh_token_ttl_secs: Some(3600),
        ..AppSeed::new("ttl-app", "ttl-secret")
    })
    .expect("app");
    let (verifier, challenge) = pkce();
    let code = match authorize(&em.login_url(), "ttl-app", "admin@prod.test", PASSWORD, Some(&challenge), true).await {
        Outcome::Callback(url) => query_param(&url, "code").expect("code"),
        other => panic!("{other:?}"),
    };
    let (_, reply) = token(
        &em.login_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "ttl-app"),
            ("client_secret", "ttl-secret"),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    em.advance_clock(Duration::from_secs(3601));
    let refresh = reply["refresh_token"].as_str().expect("refresh");
    let (status, body) = token(
        &em.login_url(),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "ttl-app")],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn jwt_bearer_issues_a_token_without_a_refresh_token() {
    let em = start().await;
    let key = em.private_key_pem(JWT_KEY).expect("generated key");
    let assertion = sign(&key, JWT_KEY, "admin@prod.test", "https://login.salesforce.com", now_secs() + 180);
    let (status, body) = jwt_token(&em.login_url(), &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    let (status, _, _) = get(&em, &access(&body), "/limits").await;
    assert_eq!(status, 200);
    // `aud` with a trailing slash and `exp` in milliseconds, as some clients send them.
    let assertion = sign(&key, JWT_KEY, "admin@prod.test", "https://login.salesforce.com/", (now_secs() + 180) * 1000);
    assert_eq!(jwt_token(&em.login_url(), &assertion).await.0, 200);
    // The sandbox user at the sandbox host, audience test.salesforce.com.
    let assertion = sign(&key, JWT_KEY, "admin@sandbox.test", "https://test.salesforce.com", now_secs() + 180);
    assert_eq!(jwt_token(&em.test_login_url(), &assertion).await.0, 200);
}

#[tokio::test]
async fn jwt_bearer_refusals_match_salesforce() {
    let em = start().await;
    let key = em.private_key_pem(JWT_KEY).expect("generated key");
    let (other_key, _) = emulator::tls::generate_jwt_certificate("someone else").expect("key");
    let prod = "https://login.salesforce.com";
    let soon = now_secs() + 180;
    let cases = [
        (
            "bad signature",
            sign(&other_key, JWT_KEY, "admin@prod.test", prod, soon),
            em.login_url(),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            "wrong aud",
            sign(&key, JWT_KEY, "admin@prod.test", "https://test.salesforce.com", soon),
            em.login_url(),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            "expired exp",
            sign(&key, JWT_KEY, "admin@prod.test", prod, now_secs() - 10),
            em.login_url(),
            "invalid_grant",
            "expired authorization code",
        ),
        (
            "not pre-authorized",
            sign(&key, JWT_KEY, "editor@prod.test", prod, soon),
            em.login_url(),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            "sandbox user at the production host",
            sign(&key, JWT_KEY, "admin@sandbox.test", prod, soon),
            em.login_url(),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            "unknown issuer",
            sign(&key, "nope", "admin@prod.test", prod, soon),
            em.login_url(),
            "invalid_client_id",
            "client identifier invalid",
        ),
        ("not a JWT", "abc.def".to_string(), em.login_url(), "invalid_grant", "invalid assertion"),
    ];
    for (what, assertion, host, error, description) in cases {
        let (status, body) = jwt_token(&host, &assertion).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], error, "{what}: {body}");
        assert_eq!(body["error_description"], description, "{what}: {body}");
    }
}

#[tokio::test]
async fn jwt_exp_is_checked_against_the_emulator_clock() {
    let em = start().await;
    let key = em.private_key_pem(JWT_KEY).expect("key");
    let assertion = sign(&key, JWT_KEY, "admin@prod.test", "https://login.salesforce.com", now_secs() + 60);
    em.advance_clock(Duration::from_secs(120));
    let (status, body) = jwt_token(&em.login_url(), &assertion).await;
    assert_eq!((status, body["error_description"].as_str()), (400, Some("expired authorization code")));
}

#[tokio::test]
async fn client_credentials_acts_as_the_run_as_user_and_only_on_my_domain() {
    let em = start().await;
    let (status, body) = token(
        em.base_url(),
        &[("grant_type", "client_credentials"), ("client_id", CC_KEY), ("client_secret", "cc-secret")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().expect("id").ends_with(&em.user_id("admin@prod.test").expect("user")));
    assert!(body.get("refresh_token").is_none());
    // HTTP Basic client authentication works too.
    let r = client()
        .post(format!("{}/services/oauth2/token", em.base_url()))
        .basic_auth(CC_KEY, Some("cc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    let (status, body) = token(
        &em.login_url(),
        &[("grant_type", "client_credentials"), ("client_id", CC_KEY), ("client_secret", "cc-secret")],
    )
    .await;
    assert_eq!((status, body["error_description"].as_str()), (400, Some("request not supported on this domain")));
    let (status, body) = token(
        em.base_url(),
        &[("grant_type", "client_credentials"), ("client_id", WEB_KEY), ("client_secret", WEB_SECRET)],
    )
    .await;
    assert_eq!((status, body["error_description"].as_str()), (400, Some("no client credentials user enabled")));
    let (status, body) =
        token(em.base_url(), &[("grant_type", "client_credentials"), ("client_id", CC_KEY), ("client_secret", "nope")])
            .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client")));
}

#[tokio::test]
async fn an_unknown_grant_type_is_refused() {
    let em = start().await;
    let (status, body) =
        token(em.base_url(), &[("grant_type", "password"), ("username", "x"), ("password", "y")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
}

#[tokio::test]
async fn revoking_a_refresh_token_also_revokes_its_access_tokens() {
    let em = start().await;
    let reply = sign_in(&em, "admin@prod.test").await;
    let (refresh, token_) = (reply["refresh_token"].as_str().expect("rt"), access(&reply));
    assert_eq!(get(&em, &token_, "/limits").await.0, 200);
    let r = client()
        .post(format!("{}/services/oauth2/revoke", em.login_url()))
        .form(&[("token", refresh)])
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 200);
    let (status, _, body) = get(&em, &token_, "/limits").await;
    assert_eq!((status, code(&body)), (401, "INVALID_SESSION_ID"));
    let (status, body) =
        token(&em.login_url(), &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", WEB_KEY)])
            .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let r = client()
        .post(format!("{}/services/oauth2/revoke", em.login_url()))
        .form(&[("token", refresh)])
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 400, "revoking twice is refused");
    let revoked =
        em.requests().into_iter().filter(|r| r.operation.as_deref() == Some("revoke") && r.status == 200).count();
    assert_eq!(revoked, 1, "the request log shows the revoke");
}

#[tokio::test]
async fn an_access_token_expires_after_the_session_timeout() {
    let em = start().await;
    let token_ = token_for(&em, "admin@prod.test").await;
    assert_eq!(get(&em, &token_, "/limits").await.0, 200);
    em.advance_clock(Duration::from_secs(7201));
    let (status, headers, body) = get(&em, &token_, "/limits").await;
    assert_eq!(status, 401);
    assert_eq!(body, serde_json::json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]));
    assert_eq!(headers["www-authenticate"], "Token");
}

#[tokio::test]
async fn activity_keeps_a_session_alive() {
    let em = start().await;
    let token_ = token_for(&em, "admin@prod.test").await;
    for _ in 0..4 {
        em.advance_clock(Duration::from_secs(3700));
        assert_eq!(get(&em, &token_, "/limits").await.0, 200, "used within the timeout, the session lives on");
    }
}

#[tokio::test]
async fn revoking_a_user_ends_their_sessions_and_refresh_tokens() {
    let em = start().await;
    let reply = sign_in(&em, "admin@prod.test").await;
    assert!(em.revoke_user("admin@prod.test").expect("user") >= 2);
    assert_eq!(get(&em, &access(&reply), "/limits").await.0, 401);
    let (status, _) = token(
        &em.login_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", reply["refresh_token"].as_str().expect("rt")),
            ("client_id", WEB_KEY),
        ],
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn userinfo_and_the_identity_url_describe_the_user() {
    let em = start().await;
    let reply = sign_in(&em, "admin@prod.test").await;
    let token_ = access(&reply);
    let id_url = reply["id"].as_str().expect("id");
    let r = client().get(id_url).bearer_auth(&token_).send().await.expect("identity");
    assert_eq!(r.status(), 200);
    let identity: serde_json::Value = r.json().await.expect("json");
    assert_eq!(identity["username"], "admin@prod.test");
    assert_eq!(identity["user_id"], em.user_id("admin@prod.test").expect("id"));
    assert!(identity["urls"]["rest"].as_str().expect("rest").contains("{version}"));
    // jsforce passes the token as a query parameter, with a version.
    let r =
        client().get(format!("{id_url}?format=json&version=60.0&oauth_token={token_}")).send().await.expect("identity");
    let identity: serde_json::Value = r.json().await.expect("json");
    assert!(identity["urls"]["rest"].as_str().expect("rest").contains("v60.0"));
    let r = client()
        .get(format!("{}/services/oauth2/userinfo", em.login_url()))
        .bearer_auth(&token_)
        .send()
        .await
        .expect("userinfo");
    let info: serde_json::Value = r.json().await.expect("json");
    assert_eq!(info["preferred_username"], "admin@prod.test");
    assert_eq!(info["organization_id"], em.org_id_of_user("admin@prod.test").expect("org"));
    let r = client().get(id_url).bearer_auth("00Dbogus!token").send().await.expect("identity");
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn the_token_endpoint_reads_only_a_form_body_so_json_is_an_unsupported_grant() {
    let em = start().await;
    let json_body =
        serde_json::json!({"grant_type": "client_credentials", "client_id": CC_KEY, "client_secret": WEB_SECRET});
    let response =
        client().post(format!("{}/services/oauth2/token", em.base_url())).json(&json_body).send().await.expect("token");
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        (body["error"].as_str(), body["error_description"].as_str()),
        (Some("unsupported_grant_type"), Some("grant type not supported"))
    );
    // Parameters in the query string are not read either.
    let url = format!("{}/services/oauth2/token?grant_type=client_credentials&client_id={CC_KEY}", em.base_url());
    let response = client().post(url).send().await.expect("token");
    assert_eq!(response.status(), 400);
}
