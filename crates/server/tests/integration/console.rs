//! The Admin Center's pages without a browser: every page needs a session, every form its
//! CSRF token, and another account's ids are not found — the same rules as the API.

use reqwest::Method;
use testkit::spawn;

#[tokio::test]
async fn pages_need_a_session_forms_need_the_csrf_token_and_accounts_stay_apart() {
    let app = spawn().await;
    let (_, created) = app.call("admin_a", Method::POST, "/connections", Some(app.jwt("A's", "admin@acme.test"))).await;
    let id = created["id"].as_str().expect("id").to_string();
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");

    // No session: every page redirects to the sign-in page.
    for path in [
        "/integrations",
        "/connections/salesforce",
        &format!("/connections/salesforce/{id}"),
        "/audit",
        "/users",
        "/systems",
    ] {
        let r = no_redirects.get(format!("{}{path}", app.base)).send().await.expect("get");
        assert_eq!(r.status(), 303, "{path}");
        assert!(r.headers()["location"].to_str().expect("location").starts_with("/signin?next="), "{path}");
    }
    let (cookie_b, csrf_b) = app.sign_in("admin_b").await;
    let (cookie_a, csrf_a) = app.sign_in("admin_a").await;
    let page = |cookie: &str, path: &str| {
        no_redirects
            .get(format!("{}{path}", app.base))
            .header("cookie", cookie.to_string())
            .header("accept", "text/html")
            .send()
    };
    // Account B, with A's ids: not found, on pages and on forms.
    for path in [format!("/connections/salesforce/{id}"), format!("/connections/salesforce/{id}/delete")] {
        let r = page(&cookie_b, &path).await.expect("get");
        assert_eq!(r.status(), 404, "{path}");
        assert!(r.text().await.expect("body").contains("belongs to another account"), "{path}");
    }
    let r = no_redirects
        .post(format!("{}/connections/salesforce/{id}/delete", app.base))
        .header("cookie", &cookie_b)
        .form(&[("csrf", csrf_b.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 404);
    // A's own form without (or with B's) CSRF token: refused, nothing deleted.
    for token in ["", csrf_b.as_str()] {
        let r = no_redirects
            .post(format!("{}/connections/salesforce/{id}/delete", app.base))
            .header("cookie", &cookie_a)
            .form(&[("csrf", token)])
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 403, "csrf {token:?}");
    }
    let (status, _) = app.call("admin_a", Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(status, 200, "still there");
    // With the right token it goes (and says whether Salesforce confirmed the revoke).
    let r = no_redirects
        .post(format!("{}/connections/salesforce/{id}/delete", app.base))
        .header("cookie", &cookie_a)
        .form(&[("csrf", csrf_a.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303);
    let (status, _) = app.call("admin_a", Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(status, 404);
    // Sign-in refuses a form whose CSRF cookie is missing (login CSRF), and an unknown page is a page.
    let r = no_redirects
        .post(format!("{}/signin", app.base))
        .form(&[("email", "admin_a@lightbridge.test"), ("password", "password-admin_a"), ("csrf", "guess")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 422);
    assert!(r.headers().get("set-cookie").is_some_and(|c| !c.to_str().unwrap_or_default().starts_with("lb_session")));
    let r = page(&cookie_a, "/no/such/page").await.expect("get");
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str().expect("type").starts_with("text/html"));
}

/// The outside probe's findings on sign-in: `next` must never send a browser off-site
/// (`/\t/evil.example` is `//evil.example` to a browser) and CR/LF in it is no server error.
#[tokio::test]
async fn sign_in_never_redirects_off_site_and_survives_control_characters_in_next() {
    let app = spawn().await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    for next in ["%2F%09%2Fevil.example", "%2F%0D%0ASet-Cookie:%20x=1", "%2F%5Cevil.example", "%2F%2Fevil.example"] {
        let r = no_redirects.get(format!("{}/signin?next={next}", app.base)).send().await.expect("get");
        assert_eq!(r.status(), 200, "{next}");
        let cookie = r.headers()["set-cookie"].to_str().expect("cookie").split(';').next().expect("pair").to_string();
        let page = r.text().await.expect("body");
        assert!(!page.contains("evil.example") && !page.contains("Set-Cookie"), "{next}: the form keeps no such next");
        let csrf = cookie.split_once('=').expect("pair").1.to_string();
        let decoded: String = url::form_urlencoded::parse(format!("n={next}").as_bytes()).next().expect("n").1.into();
        let r = no_redirects
            .post(format!("{}/signin", app.base))
            .header("cookie", &cookie)
            .form(&[
                ("email", "admin_a@lightbridge.test"),
                ("password", "password-admin_a"),
                ("csrf", csrf.as_str()),
                ("next", decoded.as_str()),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 303, "{next}");
        assert_eq!(r.headers()["location"], "/integrations", "{next}");
    }
    // A path of this site is kept.
    let r = no_redirects.get(format!("{}/signin?next=%2Faudit%3Fq%3Dx", app.base)).send().await.expect("get");
    assert!(r.text().await.expect("body").contains("value=\"/audit?q=x\""));
}

/// Every answer tells browsers not to sniff types or leak the address; pages may post forms
/// only to this site and to the hosts OAuth sends the browser to, never to any http(s) target.
#[tokio::test]
async fn pages_and_api_answers_carry_the_security_headers() {
    let app = spawn().await;
    let (cookie, _) = app.sign_in("admin_a").await;
    for (path, html) in
        [("/integrations", true), ("/signin", true), ("/api/v1/connections", false), ("/healthz", false)]
    {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .header("cookie", &cookie)
            .header("authorization", format!("Bearer {}", app.tokens["admin_a"]))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        if html {
            let csp = h["content-security-policy"].to_str().expect("csp");
            let form_action =
                csp.split(';').map(str::trim).find(|d| d.starts_with("form-action")).expect("form-action");
            let sources: Vec<&str> = form_action.split_whitespace().skip(1).collect();
            assert!(!sources.contains(&"http:") && !sources.contains(&"https:"), "{path}: {form_action}");
            assert!(sources.contains(&"'self'") && sources.contains(&"https://*.salesforce.com"), "{form_action}");
            assert!(sources.contains(&app.em.base_url()), "the allowed emulator origin: {form_action}");
            assert_eq!(h["x-frame-options"], "DENY");
        }
    }
}

/// Issue #16 item 9: a viewer who opens the audit log or the users page is told what those pages
/// need, not that they cannot change connections; so is an API caller.
#[tokio::test]
async fn a_viewer_refused_the_audit_log_or_the_people_is_told_why() {
    let app = spawn().await;
    let (cookie, _) = app.sign_in("viewer_a").await;
    for (path, says) in [("/audit", "read the audit log"), ("/users", "see the account&#39;s people")] {
        let r = app.http.get(format!("{}{path}", app.base)).header("cookie", &cookie).send().await.expect("get");
        assert_eq!(r.status(), 403, "{path}");
        let html = r.text().await.expect("body");
        assert!(html.contains(says) && !html.contains("Salesforce connections</"), "{path}: {html}");
        assert!(!html.contains("change Salesforce connections"), "{path}");
    }
    let (status, body) = app.call("viewer_a", Method::GET, "/audit", None).await;
    assert_eq!(status, 403);
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("audit log")), "{body}");
    let (status, body) = app.call("viewer_a", Method::GET, "/users", None).await;
    assert_eq!(status, 403);
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("people")), "{body}");
}

#[tokio::test]
async fn after_saving_the_table_opens_on_the_page_with_the_new_row() {
    // #16 item 3: with more than 50 connections (oldest first), the new row was on a later page.
    let app = testkit::spawn().await;
    let account = app.accounts["A"].clone();
    let store: &store::Store = &app.state.store;
    for i in 0..60 {
        let c = domain::Connection {
            id: domain::ConnectionId::generate(),
            account_id: account.clone(),
            kind: domain::ConnectionKind::New {
                name: domain::ConnectionName::parse(&format!("Old {i:02}")).expect("name"),
            },
            org_type: domain::OrgType::Production,
            login_host: domain::LoginHost::Login,
            auth: domain::AuthMethod::Jwt { consumer_key: testkit::KEY.into(), username: "admin@acme.test".into() },
            org: None,
            status: domain::ConnectionStatus::LoggedIn,
            status_detail: None,
            status_reason: None,
            granted_at: None,
            status_checked_at: None,
            created_at: i,
            created_by: Some("seed@acme.test".into()),
            modified_at: i,
            modified_by: Some("seed@acme.test".into()),
        };
        store::ConnectionStore::insert(store, &c, &store::NewSecrets::default()).await.expect("seed");
    }
    let (status, created) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Brand new", "admin@acme.test"))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    let (cookie, _) = app.sign_in("admin_a").await;
    let page = app
        .http
        .get(format!("{}/connections/salesforce?highlight={id}", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("table")
        .text()
        .await
        .expect("page");
    assert!(page.contains(&format!(r#"data-id="{id}" class="highlight""#)), "the new row is on the page shown");
    assert!(page.contains("Brand new"));
}

#[tokio::test]
async fn removing_a_person_asks_first() {
    // #16 item 7: Remove user acted without confirmation.
    let app = testkit::spawn().await;
    let (_, people) = app.call("owner_a", reqwest::Method::GET, "/users", None).await;
    let viewer =
        people.as_array().expect("people").iter().find(|u| u["email"] == "viewer_a@lightbridge.test").expect("viewer")
            ["id"]
            .as_str()
            .expect("id")
            .to_string();
    let (cookie, _) = app.sign_in("owner_a").await;
    let get = |path: String, cookie: String| {
        let request = app.http.get(format!("{}{path}", app.base)).header("cookie", cookie);
        async move {
            let r = request.send().await.expect("get");
            (r.status().as_u16(), r.text().await.expect("text"))
        }
    };
    let (status, page) = get("/users".into(), cookie.clone()).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!(r#"href="/users/{viewer}/remove""#)), "a link to the confirmation, not a form");
    let (status, page) = get(format!("/users/{viewer}/remove"), cookie.clone()).await;
    assert_eq!(status, 200);
    assert!(page.contains("Remove viewer_a@lightbridge.test from A?") && page.contains("Cancel"), "{page}");
    let (status, _) = app.call("viewer_a", reqwest::Method::GET, "/connections", None).await;
    assert_eq!(status, 200, "nothing removed by looking");
    let (b_owner, _) = app.sign_in("admin_b").await;
    let (status, _) = get(format!("/users/{viewer}/remove"), b_owner).await;
    assert_eq!(status, 404, "another account's person");
}
