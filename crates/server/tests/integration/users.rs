//! Users, roles and API tokens through the API: owners manage people, everyone manages their
//! own tokens, and an account always keeps an owner.

use reqwest::Method;
use serde_json::json;
use testkit::spawn;

/// Opens an invitation link as a browser would: its page, and the form's CSRF cookie and field.
async fn open_invitation(app: &testkit::TestApp, link: &str) -> (u16, String, String) {
    let page = app.http.get(link).send().await.expect("get");
    let status = page.status().as_u16();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lb_signin="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let body = page.text().await.expect("page");
    (status, cookie, body)
}

fn csrf_of(page: &str) -> String {
    page.split(r#"name="csrf" value=""#).nth(1).and_then(|s| s.split('"').next()).expect("csrf").to_string()
}

#[tokio::test]
async fn an_owner_invites_a_new_person_who_chooses_their_password_and_is_in() {
    let app = spawn().await;
    let (status, invited) =
        app.call("owner_a", Method::POST, "/users", Some(json!({"email": "new@a.example", "role": "editor"}))).await;
    assert_eq!(status, 201, "{invited}");
    let link = invited["accept_url"].as_str().expect("shown once").to_string();
    assert!(link.starts_with(&format!("{}/invitations/", app.base)), "{link}");
    let (_, listed) = app.call("owner_a", Method::GET, "/invitations", None).await;
    assert_eq!(listed[0]["email"], "new@a.example");
    assert!(listed[0].get("accept_url").is_none(), "the link is shown only once");

    // The person opens the link, chooses a password (refused when guessable, with the reason).
    let (status, cookie, page) = open_invitation(&app, &link).await;
    assert_eq!(status, 200);
    assert!(page.contains("Join A") && page.contains("Choose a password"), "{page}");
    let form = |password: &str| {
        [
            ("csrf", csrf_of(&page)),
            ("name", "New Person".into()),
            ("password", password.into()),
            ("confirm", password.into()),
        ]
    };
    let weak = app.http.post(&link).header("cookie", &cookie).form(&form("password1234")).send().await.expect("post");
    assert!(weak.text().await.expect("page").contains("flash-error"), "a guessable password is refused");
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let joined = browser
        .post(&link)
        .header("cookie", &cookie)
        .form(&form("tangerine-harbour-velvet-42"))
        .send()
        .await
        .expect("post");
    assert_eq!(joined.status(), 303);
    assert_eq!(joined.headers()["location"], "/integrations");
    assert!(
        joined
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap_or_default().starts_with("lb_session=")),
        "signed in"
    );

    // They sign in with it, as an editor of A; the link works once.
    let r = app
        .http
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"email": "new@a.example", "password": "tangerine-harbour-velvet-42"}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.expect("json");
    assert_eq!((me["role"].as_str(), me["account_id"].as_str()), (Some("editor"), Some(app.accounts["A"].as_str())));
    let (status, _, page) = open_invitation(&app, &link).await;
    assert_eq!(status, 404);
    assert!(page.contains("does not work"), "{page}");

    let (status, _) =
        app.call("admin_a", Method::POST, "/users", Some(json!({"email": "x@a.example", "role": "viewer"}))).await;
    assert_eq!(status, 403, "only owners invite");
    let (status, bad) =
        app.call("owner_a", Method::POST, "/users", Some(json!({"email": "nope", "role": "operator"}))).await;
    assert_eq!((status, bad["error"]["fields"].as_array().map(Vec::len)), (422, Some(2)), "{bad}");
    let (status, dup) =
        app.call("owner_a", Method::POST, "/users", Some(json!({"email": "NEW@a.example", "role": "viewer"}))).await;
    assert_eq!(status, 409, "already in this account: {dup}");
}

#[tokio::test]
async fn inviting_reveals_nothing_of_other_accounts_and_a_person_joins_a_second_account() {
    let app = spawn().await;
    // The probe's finding: adding an email another account uses answered "already exists".
    let (status_known, known) = app
        .call("owner_a", Method::POST, "/users", Some(json!({"email": "admin_b@lightbridge.test", "role": "editor"})))
        .await;
    let (status_new, unknown) = app
        .call("owner_a", Method::POST, "/users", Some(json!({"email": "nobody@else.example", "role": "editor"})))
        .await;
    assert_eq!((status_known, status_new), (201, 201), "{known} {unknown}");
    let keys = |v: &serde_json::Value| v.as_object().expect("object").keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&known), keys(&unknown), "the same answer either way");

    // The B owner opens the link: they sign in with what they have, then join.
    let link = known["accept_url"].as_str().expect("link").to_string();
    let (_, _, page) = open_invitation(&app, &link).await;
    assert!(page.contains("Sign in to join") && !page.contains("Choose a password"), "{page}");
    let (cookie, _) = app.sign_in("admin_b").await;
    let page = app.http.get(&link).header("cookie", &cookie).send().await.expect("get").text().await.expect("page");
    let joined = app
        .http
        .post(format!("{link}/accept"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .expect("accept");
    assert!(joined.url().path().starts_with("/integrations"), "{}", joined.url());
    let (_, session) = app.browser(&cookie, None, Method::GET, "/api/v1/session", None).await;
    assert_eq!(
        (session["account_id"].as_str(), session["role"].as_str()),
        (Some(app.accounts["A"].as_str()), Some("editor"))
    );
    let (_, accounts) = app.browser(&cookie, None, Method::GET, "/api/v1/me/accounts", None).await;
    assert_eq!(accounts.as_array().map(Vec::len), Some(2), "{accounts}");

    // Switching back to B: owner there; A's people are not B's.
    let csrf = session["csrf_token"].as_str().expect("csrf").to_string();
    let body = json!({"account_id": app.accounts["B"].as_str()});
    let (status, switched) =
        app.browser(&cookie, Some(&csrf), Method::PUT, "/api/v1/session/account", Some(body)).await;
    assert_eq!((status, switched["role"].as_str()), (200, Some("owner")), "{switched}");
    let (_, people) = app.browser(&cookie, None, Method::GET, "/api/v1/users", None).await;
    assert!(!people.to_string().contains("owner_a@"), "B's people only: {people}");
    // Not a member: not found.
    let body = json!({"account_id": "acct_00000000000000000000000000000000"});
    let (status, _) = app.browser(&cookie, Some(&csrf), Method::PUT, "/api/v1/session/account", Some(body)).await;
    assert_eq!(status, 404);
    // Signing in straight into A.
    let r = app
        .http
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"email": "admin_b@lightbridge.test", "password": "password-admin_b", "account_id": app.accounts["A"].as_str()}))
        .send()
        .await
        .expect("sign in");
    let me: serde_json::Value = r.json().await.expect("json");
    assert_eq!(me["account_id"].as_str(), Some(app.accounts["A"].as_str()));

    // A's owner removes them from A: A is gone from their accounts, B stays.
    let (_, people) = app.call("owner_a", Method::GET, "/users", None).await;
    let id = people
        .as_array()
        .expect("people")
        .iter()
        .find(|u| u["email"] == "admin_b@lightbridge.test")
        .expect("member")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (status, _) = app.call("owner_a", Method::DELETE, &format!("/users/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call("admin_b", Method::GET, "/connections", None).await;
    assert_eq!(status, 200, "their B token still works");
    let (_, accounts) = app.call("admin_b", Method::GET, "/me/accounts", None).await;
    assert_eq!(accounts.as_array().map(Vec::len), Some(1), "{accounts}");
}

#[tokio::test]
async fn roles_change_but_the_last_owner_stays_and_removed_users_lose_their_tokens() {
    let app = spawn().await;
    let (_, users) = app.call("owner_a", Method::GET, "/users", None).await;
    let id_of = |email: &str| {
        users.as_array().expect("users").iter().find(|u| u["email"] == email).expect(email)["id"]
            .as_str()
            .expect("id")
            .to_string()
    };
    let (first, owner, viewer) =
        (id_of("first@A.test"), id_of("owner_a@lightbridge.test"), id_of("viewer_a@lightbridge.test"));
    let (status, changed) =
        app.call("owner_a", Method::PATCH, &format!("/users/{first}"), Some(json!({"role": "admin"}))).await;
    assert_eq!((status, changed["role"].as_str()), (200, Some("admin")), "{changed}");
    let (status, last) =
        app.call("owner_a", Method::PATCH, &format!("/users/{owner}"), Some(json!({"role": "viewer"}))).await;
    assert_eq!(status, 409, "the only owner cannot step down: {last}");
    let (status, _) = app.call("owner_a", Method::DELETE, &format!("/users/{owner}"), None).await;
    assert_eq!(status, 409);
    // Another account's owner cannot touch A's users, even knowing their ids.
    let (status, _) =
        app.call("admin_b", Method::PATCH, &format!("/users/{viewer}"), Some(json!({"role": "owner"}))).await;
    assert_eq!(status, 404);
    let (status, _) = app.call("viewer_a", Method::GET, "/connections", None).await;
    assert_eq!(status, 200);
    let (status, _) = app.call("owner_a", Method::DELETE, &format!("/users/{viewer}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call("viewer_a", Method::GET, "/connections", None).await;
    assert_eq!(status, 401, "a removed user's API token stops working");
}

#[tokio::test]
async fn everyone_creates_and_revokes_their_own_api_tokens() {
    let app = spawn().await;
    let (status, created) = app.call("viewer_a", Method::POST, "/tokens", Some(json!({"name": "laptop"}))).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("token").to_string();
    let id = created["id"].as_str().expect("id").to_string();
    let works = app.http.get(format!("{}/api/v1/me", app.base)).bearer_auth(&token).send().await.expect("me");
    assert_eq!(works.status(), 200);
    let (_, listed) = app.call("viewer_a", Method::GET, "/tokens", None).await;
    assert!(listed.to_string().contains("laptop") && !listed.to_string().contains(&token), "listed, never shown again");
    let (status, _) = app.call("admin_b", Method::DELETE, &format!("/tokens/{id}"), None).await;
    assert_eq!(status, 404, "someone else's token");
    let (status, _) = app.call("viewer_a", Method::DELETE, &format!("/tokens/{id}"), None).await;
    assert_eq!(status, 204);
    let revoked = app.http.get(format!("{}/api/v1/me", app.base)).bearer_auth(&token).send().await.expect("me");
    assert_eq!(revoked.status(), 401);
}

/// Issue #13: a password change ends the user's other sessions (whoever signed in with the old
/// password is out) and keeps the one that made the change; an operator's reset ends them all.
#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_keeps_this_one() {
    let app = spawn().await;
    let (here, csrf) = app.sign_in("editor_a").await;
    let (elsewhere, _) = app.sign_in("editor_a").await;
    let session = |cookie: String| {
        let request = app.http.get(format!("{}/api/v1/session", app.base)).header("cookie", cookie);
        async move { request.send().await.expect("get").status().as_u16() }
    };
    assert_eq!((session(here.clone()).await, session(elsewhere.clone()).await), (200, 200));
    let (status, body) = app
        .browser(
            &here,
            Some(&csrf),
            Method::PUT,
            "/api/v1/me/password",
            Some(json!({"current_password": "password-editor_a", "new_password": "a brand new passphrase"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(session(here.clone()).await, 200, "the session that changed it stays");
    assert_eq!(session(elsewhere).await, 401, "the other session ended");
    let (_, audit) = app.call("admin_a", Method::GET, "/audit?action=user.password_changed", None).await;
    assert_eq!(audit["items"][0]["detail"], "1 other session(s) ended", "{audit}");
}

/// Issue #13: argon2 work runs on the bounded blocking pool, never on the async workers — a
/// burst of sign-ins goes through it at most `limit` at a time (counted, not timed), and the
/// server keeps answering meanwhile.
#[tokio::test]
async fn sign_in_bursts_hash_on_the_bounded_blocking_pool() {
    let app = spawn().await;
    let pool = app.state.cpu.clone();
    let before = pool.done();
    // Two people, each from six addresses, a third of the passwords wrong: inside every sign-in
    // throttle, so all twelve reach the password check at once.
    let burst: Vec<_> = (0..12)
        .map(|i| {
            let who = if i % 2 == 0 { "viewer_a" } else { "editor_a" };
            let client = reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, 0, 2 + i / 2]))
                .build()
                .expect("client");
            let request = client.post(format!("{}/api/v1/session", app.base)).json(&json!({
                "email": format!("{who}@lightbridge.test"),
                "password": if i % 3 == 0 { "a wrong password".to_string() } else { format!("password-{who}") },
            }));
            tokio::spawn(async move { request.send().await.expect("sign in").status().as_u16() })
        })
        .collect();
    let health = app.http.get(format!("{}/healthz", app.base)).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    let mut statuses = Vec::new();
    for task in burst {
        statuses.push(task.await.expect("task"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 8, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 4, "{statuses:?}");
    assert!(pool.done() - before >= 12, "every check went through the pool: {} of 12", pool.done() - before);
    assert!(pool.peak() <= pool.limit(), "at most {} at once, saw {}", pool.limit(), pool.peak());
}

/// Issue #13: `password1234` and its kind are refused, with the reason, and nothing changes.
#[tokio::test]
async fn a_guessable_new_password_is_refused_with_the_reason() {
    let app = spawn().await;
    for weak in ["password1234", "editor_a@lightbridge.test", "qwertyuiop12"] {
        let (status, body) = app
            .call(
                "editor_a",
                Method::PUT,
                "/me/password",
                Some(json!({"current_password": "password-editor_a", "new_password": weak})),
            )
            .await;
        assert_eq!(status, 422, "{weak}: {body}");
        let field = &body["error"]["fields"][0];
        assert_eq!(field["field"], "new_password", "{body}");
        assert!(field["message"].as_str().is_some_and(|m| m.contains("too easy to guess")), "{weak}: {body}");
    }
    let (cookie, _) = app.sign_in("editor_a").await;
    assert!(cookie.starts_with("lb_session="), "the old password still works: nothing changed");
}
