//! Issue #13, B9: single sign-on through an account's own OpenID Connect provider — a real,
//! certified one (`oidc-provider` from npm) started by the test, behind a proxy that can make
//! it misbehave. People are found by their email's domain or through the account's own sign-in
//! address, created on first sign-in in the role a claim names, and found again after; an ID
//! token that is tampered with, for another application, replayed into another sign-in or
//! from a provider that is down never signs anyone in; "SSO only" refuses passwords but the
//! break-glass owner's.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::TestApp;

use crate::oidc_provider::{CLIENT_SECRET, Ended, Mode, OTHER_SECRET, Person, Provider, Proxy};

/// The app with a provider allowed at the proxy's plain-HTTP address, the provider, and
/// account A's single sign-on set to it (role from `lightbridge_role`), `acme.example` routed.
pub(crate) async fn app_with_provider() -> (TestApp, Provider) {
    app_with_provider_configured(|_| {}).await
}

/// [`app_with_provider`], the configuration changed further by `customize`.
pub(crate) async fn app_with_provider_configured(customize: impl FnOnce(&mut server::Config)) -> (TestApp, Provider) {
    let proxy = Proxy::start().await;
    let issuer = proxy.issuer.clone();
    let app = testkit::spawn_configured(None, |c| {
        c.sso_allowed_hosts = vec![issuer.clone()];
        customize(c);
    })
    .await;
    let provider = Provider::start(proxy, &format!("{}/sso/callback", app.base)).await;
    let settings = json!({"issuer": issuer, "client_id": "lightbridge", "client_secret": CLIENT_SECRET,
                          "role_claim": "lightbridge_role", "default_role": "viewer"});
    let (status, body) = app.call("owner_a", Method::PUT, "/account/sso", Some(settings)).await;
    assert_eq!(status, 200, "{body}");
    let svc: &service::Service = &app.state;
    service::sso::add_domain(svc, &service::Actor::cli(), app.accounts["A"].as_str(), "acme.example")
        .await
        .expect("domain");
    (app, provider)
}

fn address(app: &TestApp, account: &str) -> String {
    format!("{}/sso/{}", app.base, app.accounts[account])
}

/// The value of `name="<field>" value="…"` on a page.
pub(crate) fn field(page: &str, name: &str) -> String {
    page.split(&format!(r#"name="{name}" value=""#)).nth(1).and_then(|s| s.split('"').next()).expect(name).to_string()
}

/// From the account's own sign-in address: its page, its button, and the page of ours that
/// goes on to the provider; returns the provider URL it goes to.
async fn start_at_address(person: &Person, app: &TestApp, account: &str) -> String {
    let page = person.http.get(address(app, account)).send().await.expect("get").text().await.expect("page");
    let form = [("csrf", field(&page, "csrf")), ("next", field(&page, "next"))];
    let answer = person.http.post(address(app, account)).form(&form).send().await.expect("post");
    assert_eq!(answer.status(), 200);
    let page = answer.text().await.expect("page");
    let target = page.split(r#"id="continue" href=""#).nth(1).and_then(|s| s.split('"').next()).expect("link");
    target.replace("&#38;", "&").replace("&amp;", "&")
}

async fn sign_in_to(app: &TestApp, account: &str, login: &str) -> Ended {
    let person = Person::new();
    let target = start_at_address(&person, app, account).await;
    person.sign_in(&target, login, &format!("{}/sso/callback", app.base)).await
}

async fn sign_in(app: &TestApp, login: &str) -> Ended {
    sign_in_to(app, "A", login).await
}

async fn who(app: &TestApp, cookie: &str) -> Value {
    let (status, body) = app.browser(cookie, None, Method::GET, "/api/v1/session", None).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn a_new_person_signs_in_by_their_email_domain_in_the_role_the_claim_names_and_is_found_again() {
    let (app, _provider) = app_with_provider().await;
    // From the sign-in page: the email's domain leads to the provider.
    let person = Person::new();
    let page = person.http.get(format!("{}/signin", app.base)).send().await.expect("page").text().await.expect("text");
    let csrf = page.split(r#"name="csrf" value=""#).nth(1).and_then(|s| s.split('"').next()).expect("csrf");
    let form = [("email", "admin.ada@acme.example"), ("csrf", csrf), ("next", "/connections")];
    let answer = person.http.post(format!("{}/signin/sso", app.base)).form(&form).send().await.expect("post");
    assert_eq!(answer.status(), 200, "a page of ours goes on to the provider");
    let page = answer.text().await.expect("text");
    let target = page.split(r#"id="continue" href=""#).nth(1).and_then(|s| s.split('"').next()).expect("link");
    let target = target.replace("&#38;", "&").replace("&amp;", "&");
    assert!(target.contains("code_challenge_method=S256") && target.contains("nonce="), "{target}");
    assert!(target.contains("login_hint=admin.ada%40acme.example"), "{target}");
    let done = person.sign_in(&target, "admin.ada@acme.example", &format!("{}/sso/callback", app.base)).await;
    assert_eq!((done.status, done.location.as_deref()), (303, Some("/connections")), "{}", done.body);
    let cookie = done.session_cookie.expect("signed in");
    let me = who(&app, &cookie).await;
    assert_eq!((me["email"].as_str(), me["role"].as_str()), (Some("admin.ada@acme.example"), Some("admin")), "{me}");
    assert_eq!(me["account_id"].as_str(), Some(app.accounts["A"].as_str()));

    // Found again by the provider's subject: the same person, not a second one.
    let again = sign_in(&app, "admin.ada@acme.example").await;
    assert_eq!(again.status, 303, "{}", again.body);
    let (_, people) = app.call("owner_a", Method::GET, "/users", None).await;
    let named: Vec<&Value> =
        people.as_array().expect("people").iter().filter(|p| p["email"] == "admin.ada@acme.example").collect();
    assert_eq!(named.len(), 1, "{people}");

    // A claim naming no role gives the default one; the audit log says how each was added.
    let other = sign_in(&app, "nobody.ned@acme.example").await;
    let me = who(&app, &other.session_cookie.expect("signed in")).await;
    assert_eq!(me["role"], "viewer", "{me}");
    let (_, log) = app.call("owner_a", Method::GET, "/audit?action=user.created", None).await;
    let details: Vec<&str> =
        log["items"].as_array().expect("items").iter().filter_map(|e| e["detail"].as_str()).collect();
    assert!(
        details.contains(&"by single sign-on, as admin") && details.contains(&"by single sign-on, as viewer"),
        "{log}"
    );

    // An email domain no account routes is told so, with the way forward.
    let form = [("email", "someone@elsewhere.example"), ("csrf", csrf), ("next", "/")];
    let answer = person.http.post(format!("{}/signin/sso", app.base)).form(&form).send().await.expect("post");
    let page = answer.text().await.expect("text");
    assert!(page.contains("No single sign-on is set up for that email"), "{page}");
}

#[tokio::test]
async fn an_id_token_tampered_for_another_audience_or_replayed_signs_no_one_in() {
    let (app, provider) = app_with_provider().await;
    let proxy = &provider.proxy;
    let refused = |done: &Ended, reason: &str| {
        assert_eq!(done.status, 401, "{reason}: {}", done.body);
        assert!(done.session_cookie.is_none(), "{reason}: no session");
        assert!(done.body.contains(reason), "expected {reason:?} in {}", done.body);
    };

    // Tampered: one character of the signature changed.
    proxy.set(Mode::TamperSignature);
    refused(&sign_in(&app, "editor.eve@acme.example").await, "signature does not verify");

    // A genuine ID token, but issued to another application (account B's client at the same provider).
    proxy.set(Mode::Pass);
    let settings = json!({"issuer": proxy.issuer, "client_id": "other-app", "client_secret": OTHER_SECRET});
    let (status, body) = app.call("admin_b", Method::PUT, "/account/sso", Some(settings)).await;
    assert_eq!(status, 200, "{body}");
    let svc: &service::Service = &app.state;
    service::sso::add_domain(svc, &service::Actor::cli(), app.accounts["B"].as_str(), "b.example")
        .await
        .expect("domain");
    let b = sign_in_to(&app, "B", "bob@b.example").await;
    assert_eq!(b.status, 303, "B's own sign-in works: {}", b.body);
    let for_b = proxy.id_tokens().last().expect("B's token").clone();
    proxy.set(Mode::Replace(for_b));
    refused(&sign_in(&app, "editor.eve@acme.example").await, "for another application (audience)");

    // A genuine ID token of an earlier sign-in, replayed into a new one: its nonce is not this one's.
    proxy.set(Mode::Pass);
    let first = sign_in(&app, "editor.eve@acme.example").await;
    assert_eq!(first.status, 303, "{}", first.body);
    let earlier = proxy.id_tokens().last().expect("token").clone();
    proxy.set(Mode::Replace(earlier));
    refused(&sign_in(&app, "editor.eve@acme.example").await, "issued for another sign-in (nonce)");

    // The callback itself replayed: its state works once, even with the browser's cookie.
    proxy.set(Mode::Pass);
    let done = sign_in(&app, "editor.eve@acme.example").await;
    assert_eq!(done.status, 303);
    let state = reqwest::Url::parse(&done.callback)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.to_string())
        .expect("state");
    let replay = app
        .http
        .get(&done.callback)
        .header("cookie", format!("lb_sso={state}"))
        .send()
        .await
        .expect("replay")
        .text()
        .await
        .expect("text");
    assert!(replay.contains("expired or was already used"), "{replay}");
    // A callback this browser did not start (a link someone sent) is refused.
    let stranger = app.http.get(&done.callback).send().await.expect("send").text().await.expect("text");
    assert!(stranger.contains("not started in this browser"), "{stranger}");
}

#[tokio::test]
async fn a_provider_that_is_down_or_not_there_is_named_and_nothing_is_saved() {
    let (app, provider) = app_with_provider().await;
    provider.proxy.set(Mode::Down);
    let person = Person::new();
    let page = person.http.get(address(&app, "A")).send().await.expect("get").text().await.expect("page");
    let form = [("csrf", field(&page, "csrf")), ("next", "/".to_string())];
    let answer = person.http.post(address(&app, "A")).form(&form).send().await.expect("post");
    assert_eq!(answer.status(), 401);
    let page = answer.text().await.expect("text");
    assert!(page.contains("discovery document answered 503"), "{page}");

    // Setting a provider that does not answer, or one over plain HTTP the operator did not allow.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    };
    let settings = json!({"issuer": provider.proxy.issuer, "client_id": "lightbridge", "client_secret": "x"});
    let (status, body) = app.call("owner_a", Method::PUT, "/account/sso", Some(settings)).await;
    assert_eq!(status, 409, "down: {body}");
    let settings = json!({"issuer": closed, "client_id": "lightbridge", "client_secret": "x"});
    let (status, body) = app.call("owner_a", Method::PUT, "/account/sso", Some(settings)).await;
    assert_eq!(status, 422, "not allowed: {body}");
    assert!(body.to_string().contains("not HTTPS"), "{body}");
    let (_, kept) = app.call("owner_a", Method::GET, "/account/sso", None).await;
    assert_eq!(kept["client_id"], "lightbridge", "the working settings stay: {kept}");
    assert!(!kept.to_string().contains(CLIENT_SECRET), "the secret is never shown");
    let (status, _) =
        app.call("admin_a", Method::PUT, "/account/sso", Some(json!({"issuer": closed, "client_id": "x"}))).await;
    assert_eq!(status, 403, "only the owner");
}

#[tokio::test]
async fn sso_only_refuses_passwords_except_the_break_glass_owner() {
    let (app, _provider) = app_with_provider().await;
    let settings = json!({"issuer": _provider.proxy.issuer, "client_id": "lightbridge", "sso_only": true,
                          "role_claim": "lightbridge_role"});
    let (status, body) = app.call("owner_a", Method::PUT, "/account/sso", Some(settings)).await;
    assert_eq!((status, body["sso_only"].as_bool()), (200, Some(true)), "{body}");
    let password = |label: &str| {
        let body = json!({"email": format!("{label}@lightbridge.test"), "password": format!("password-{label}")});
        let http = app.http.clone();
        let url = format!("{}/api/v1/session", app.base);
        async move {
            let r = http.post(url).json(&body).send().await.expect("send");
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default())
        }
    };
    let (status, body) = password("admin_a").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("sso_required")), "{body}");
    assert_eq!(password("owner_a").await.0, 403, "no break-glass owner named yet");
    assert_eq!(password("admin_b").await.0, 200, "another account is not affected");
    let svc: &service::Service = &app.state;
    let account = app.accounts["A"].to_string();
    let not_owner =
        service::sso::set_break_glass(svc, &service::Actor::cli(), &account, Some("admin_a@lightbridge.test")).await;
    assert!(matches!(not_owner, Err(service::ServiceError::Invalid(_))), "only an owner");
    service::sso::set_break_glass(svc, &service::Actor::cli(), &account, Some("owner_a@lightbridge.test"))
        .await
        .expect("break glass");
    assert_eq!(password("owner_a").await.0, 200, "the break-glass owner");
    assert_eq!(password("admin_a").await.0, 403);
    // A wrong password is still just wrong: SSO-only says nothing about whether the email exists.
    let r = app
        .http
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"email": "admin_a@lightbridge.test", "password": "wrong"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    // The provider still signs people in.
    assert_eq!(sign_in(&app, "admin.ada@acme.example").await.status, 303);
}

#[tokio::test]
async fn no_link_can_start_a_sign_in_and_a_provider_speaks_only_for_the_accounts_domains() {
    let (app, _provider) = app_with_provider().await;
    // Login CSRF: the account's address is a page with a button, never a redirect with a cookie.
    let answer = Person::new().http.get(address(&app, "A")).send().await.expect("get");
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap_or_default().starts_with("lb_sso=")),
        "no flow is started by a GET"
    );
    let forged = Person::new().http.post(address(&app, "A")).form(&[("csrf", "guess")]).send().await.expect("post");
    assert_eq!(forged.status(), 401, "a POST without the page's CSRF pair starts nothing");

    // An email outside the domains the operator routed to this account.
    let outside = sign_in(&app, "eve@evil.example").await;
    assert_eq!(outside.status, 401);
    assert!(outside.body.contains("not in an email domain"), "{}", outside.body);
    assert!(outside.session_cookie.is_none());

    // A person with a password here is not taken over by email, even inside a routed domain...
    let svc: &service::Service = &app.state;
    service::sso::add_domain(svc, &service::Actor::cli(), app.accounts["A"].as_str(), "lightbridge.test")
        .await
        .expect("domain");
    let takeover = sign_in(&app, "admin_a@lightbridge.test").await;
    assert_eq!(takeover.status, 401);
    assert!(takeover.body.contains("signs in here with a password"), "{}", takeover.body);

    // ...they link it themselves, signed in, and then single sign-on signs them in as themselves.
    let person = Person::new();
    let page = person.http.get(format!("{}/signin", app.base)).send().await.expect("get").text().await.expect("page");
    let form = [
        ("email", "admin_a@lightbridge.test".to_string()),
        ("password", "password-admin_a".to_string()),
        ("csrf", field(&page, "csrf")),
        ("next", "/account".to_string()),
    ];
    let signed = person.http.post(format!("{}/signin", app.base)).form(&form).send().await.expect("sign in");
    assert_eq!(signed.status(), 303);
    let page = person.http.get(format!("{}/account", app.base)).send().await.expect("get").text().await.expect("page");
    assert!(page.contains("Link my organization sign-in"), "the account page offers it");
    let csrf =
        page.split(r#"action="/account/sso/link""#).nth(1).map(|rest| field(rest, "csrf")).expect("the link form");
    let answer =
        person.http.post(format!("{}/account/sso/link", app.base)).form(&[("csrf", csrf)]).send().await.expect("link");
    let page = answer.text().await.expect("page");
    let target = page.split(r#"id="continue" href=""#).nth(1).and_then(|s| s.split('"').next()).expect("link");
    let target = target.replace("&#38;", "&").replace("&amp;", "&");
    let linked = person.sign_in(&target, "admin_a@lightbridge.test", &format!("{}/sso/callback", app.base)).await;
    assert_eq!((linked.status, linked.location.as_deref()), (303, Some("/account")), "{}", linked.body);
    let again = sign_in(&app, "admin_a@lightbridge.test").await;
    assert_eq!(again.status, 303, "linked: {}", again.body);
    let me = who(&app, &again.session_cookie.expect("session")).await;
    assert_eq!((me["email"].as_str(), me["role"].as_str()), (Some("admin_a@lightbridge.test"), Some("admin")));

    // A provider's free text is never shown on our page.
    let url = format!("{}/sso/callback?error=access_denied&error_description=Call+0800-SCAM+now", app.base);
    let page = app.http.get(url).send().await.expect("get").text().await.expect("page");
    assert!(page.contains("cancelled or refused") && !page.contains("SCAM"), "{page}");
}

#[tokio::test]
async fn a_single_sign_on_session_is_not_sent_to_set_up_lightbridges_own_second_factor() {
    let (app, _provider) = app_with_provider().await;
    crate::two_factor::enrol(&app, "owner_a").await;
    let (status, body) =
        app.call("owner_a", Method::PUT, "/account/sign-in", Some(json!({"two_factor_required": true}))).await;
    assert_eq!(status, 200, "{body}");
    let done = sign_in(&app, "editor.ed@acme.example").await;
    let cookie = done.session_cookie.expect("signed in");
    let (status, body) = app.browser(&cookie, None, Method::GET, "/api/v1/connections", None).await;
    assert_eq!(status, 200, "the provider answers for the second factor: {body}");
}

#[tokio::test]
async fn the_owner_sets_single_sign_on_on_its_admin_center_page() {
    let (app, provider) = app_with_provider().await;
    let (cookie, _) = app.sign_in("owner_a").await;
    let (admin, _) = app.sign_in("admin_a").await;
    let page = app.http.get(format!("{}/account/sso", app.base)).header("cookie", &cookie).send().await.expect("get");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("page");
    assert!(page.contains(&format!("{}/sso/callback", app.base)), "the redirect URI to register");
    assert!(page.contains(&provider.proxy.issuer) && page.contains("acme.example"), "the settings and domains");
    assert!(!page.contains(CLIENT_SECRET), "never the secret");
    let csrf = field(&page, "csrf");
    let post = |form: Vec<(&'static str, String)>| {
        let request = app.http.post(format!("{}/account/sso", app.base)).header("cookie", &cookie).form(&form);
        async move { request.send().await.expect("post") }
    };
    // A provider not allowed: the field is marked, nothing changes.
    let refused = post(vec![
        ("csrf", csrf.clone()),
        ("issuer", "http://idp.internal.example".into()),
        ("client_id", "lightbridge".into()),
        ("default_role", "viewer".into()),
    ])
    .await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.expect("page").contains("not HTTPS"));
    // The secret left empty keeps the stored one; the rest changes.
    let saved = post(vec![
        ("csrf", csrf),
        ("issuer", provider.proxy.issuer.clone()),
        ("client_id", "lightbridge".into()),
        ("role_claim", "".into()),
        ("default_role", "editor".into()),
        ("sso_only", "on".into()),
    ])
    .await;
    assert!(saved.url().path().ends_with("/account/sso"), "{}", saved.url());
    let (_, view) = app.call("owner_a", Method::GET, "/account/sso", None).await;
    assert_eq!((view["default_role"].as_str(), view["sso_only"].as_bool()), (Some("editor"), Some(true)), "{view}");
    assert_eq!(view["role_claim"], Value::Null);
    assert_eq!(sign_in(&app, "new.hire@acme.example").await.status, 303, "the kept secret still works");
    // Admins see it, without the form.
    let page = app.http.get(format!("{}/account/sso", app.base)).header("cookie", &admin).send().await.expect("get");
    assert!(page.text().await.expect("page").contains("Only owners change single sign-on"));
}
