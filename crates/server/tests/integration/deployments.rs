//! Publishing through the API (issue #5): a deployment reaches every org bound to a system ×
//! environment; a changed bundle updates the same resource in place; an unchanged one uploads
//! nothing; rollback publishes an earlier release again; transient faults are retried,
//! permanent ones fail with the reason; an expired session is renewed once per connection.

use emulator::{AppSeed, FaultAction, FaultRule, OrgSeed, UserSeed};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{TestApp, deploy, finished, spawn};

const FANOUT_KEY: &str = "3MVG9Fanout";

/// Three orgs, a JWT connection to each, all bound to "Sales Cloud" × Production.
pub(crate) async fn bound(app: &TestApp, orgs: usize) -> (String, String, Vec<String>) {
    let users: Vec<String> = (1..=orgs).map(|i| format!("publisher{i}@org{i}.test")).collect();
    for (i, user) in users.iter().enumerate() {
        let mut org = OrgSeed::new(format!("Fanout Org {}", i + 1));
        // The org's own admin, who may change a resource in Setup (drift, #17).
        let admin = UserSeed {
            first_name: Some("Ada".into()),
            last_name: Some(format!("Admin {}", i + 1)),
            ..UserSeed::new(format!("ada@org{}.test", i + 1))
        };
        org.users = vec![UserSeed::new(user), admin];
        app.em.add_org(&org).expect("org");
    }
    app.em
        .add_app(&AppSeed {
            generate_certificate: true,
            pre_authorized: users.clone(),
            ..AppSeed::new(FANOUT_KEY, "fanout-secret")
        })
        .expect("app");
    let key = app.em.private_key_pem(FANOUT_KEY).expect("key");
    let (_, system) = app.call("admin_a", Method::POST, "/systems", Some(json!({"name": "Sales Cloud"}))).await;
    let system = system["id"].as_str().expect("system").to_string();
    let (_, envs) = app.call("admin_a", Method::GET, "/environments", None).await;
    let env = envs[0]["id"].as_str().expect("env").to_string();
    let mut connections = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let body = json!({"name": format!("Fanout {}", i + 1), "org_type": "production", "login_host": "login",
                          "auth": {"method": "jwt", "consumer_key": FANOUT_KEY, "username": user, "private_key": key}});
        let (status, created) = app.call("admin_a", Method::POST, "/connections", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_string();
        let (status, _) = app
            .call("admin_a", Method::PUT, &format!("/systems/{system}/environments/{env}/connections/{id}"), None)
            .await;
        assert_eq!(status, 204);
        connections.push(id);
    }
    (system, env, connections)
}

async fn served(app: &TestApp, url: &str, file: &str) -> Vec<u8> {
    let r = reqwest::get(format!("{}{url}/{file}", app.em.base_url())).await.expect("get");
    assert_eq!(r.status(), 200, "{url}/{file}");
    r.bytes().await.expect("body").to_vec()
}

pub(crate) fn targets(d: &Value) -> &Vec<Value> {
    d["targets"].as_array().expect("targets")
}

fn uploads(app: &TestApp) -> usize {
    app.em
        .requests()
        .iter()
        .filter(|r| r.path.contains("/sobjects/StaticResource") && (r.method == "POST" || r.method == "PATCH"))
        .count()
}

#[tokio::test]
async fn a_release_reaches_every_bound_org_updates_in_place_skips_unchanged_and_rolls_back() {
    let app = spawn().await;
    let (system, env, _) = bound(&app, 3).await;
    let first =
        deploy(&app, "editor_a", &system, &env, "Player", &[("player.js", b"v1"), ("css/site.css", b"a{}")]).await;
    assert_eq!((first["status"].as_str(), first["counts"]["total"].as_u64()), (Some("running"), Some(3)), "{first}");
    let first = finished(&app, "editor_a", first["id"].as_str().expect("id")).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    for t in targets(&first) {
        assert_eq!((t["status"].as_str(), t["action"].as_str()), (Some("succeeded"), Some("created")), "{t}");
        assert_eq!(served(&app, t["url"].as_str().expect("url"), "player.js").await, b"v1");
    }

    let second =
        deploy(&app, "editor_a", &system, &env, "Player", &[("player.js", b"v2"), ("css/site.css", b"a{}")]).await;
    let second = finished(&app, "editor_a", second["id"].as_str().expect("id")).await;
    for (before, after) in targets(&first).iter().zip(targets(&second)) {
        assert_eq!(after["action"], "updated", "{after}");
        assert_eq!(after["resource_id"], before["resource_id"], "the same resource, updated in place");
        assert_eq!(served(&app, after["url"].as_str().expect("url"), "player.js").await, b"v2");
    }

    app.em.clear_requests();
    let same =
        deploy(&app, "editor_a", &system, &env, "Player", &[("css/site.css", b"a{}"), ("player.js", b"v2")]).await;
    let same = finished(&app, "editor_a", same["id"].as_str().expect("id")).await;
    assert_eq!(same["counts"]["unchanged"], 3, "{same}");
    assert_eq!(uploads(&app), 0, "an unchanged release uploads nothing");

    // Rollback: the first release again, in one call.
    let (status, rollback) = app
        .call("editor_a", Method::POST, &format!("/deployments/{}/rollback", first["id"].as_str().expect("id")), None)
        .await;
    assert_eq!(status, 202, "{rollback}");
    let rollback = finished(&app, "editor_a", rollback["id"].as_str().expect("id")).await;
    assert_eq!(rollback["redeploy_of"], first["id"]);
    for t in targets(&rollback) {
        assert_eq!(served(&app, t["url"].as_str().expect("url"), "player.js").await, b"v1");
    }
    let (_, history) = app.call("viewer_a", Method::GET, &format!("/deployments?system_id={system}"), None).await;
    let history = history.as_array().expect("history");
    assert_eq!(history.len(), 4);
    assert_eq!(history[0]["id"], rollback["id"], "newest first");
    assert_eq!(history[0]["created_by"], "editor_a@lightbridge.test");
    let (status, _) = app
        .call("viewer_a", Method::POST, &format!("/deployments/{}/rollback", first["id"].as_str().expect("id")), None)
        .await;
    assert_eq!(status, 403, "viewers do not publish");
}

#[tokio::test]
async fn transient_faults_are_retried_and_permanent_failures_say_why() {
    let app = spawn().await;
    let (system, env, _) = bound(&app, 3).await;
    // Two 503s and a dropped connection on uploads: retried with backoff, then published.
    app.em.add_fault(FaultRule {
        method: Some("POST".into()),
        ..FaultRule::error("/sobjects/StaticResource", 2, 503, "SERVER_UNAVAILABLE")
    });
    app.em.add_fault(FaultRule {
        action: FaultAction::Drop,
        method: Some("POST".into()),
        ..FaultRule::error("/sobjects/StaticResource", 1, 500, "x")
    });
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    let d = finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    let attempts: u64 = targets(&d).iter().map(|t| t["attempts"].as_u64().unwrap_or(0)).sum();
    assert_eq!(attempts, 6, "three faults, three extra attempts: {d}");

    // Org 1's user loses Customize Application: that org fails at once with the reason; org 2
    // has used up its daily API allowance: retried up to the limit, then failed with the reason.
    let change = emulator::UserChange { customize_application: Some(false), ..Default::default() };
    app.em.set_user("publisher1@org1.test", &change).expect("user");
    let org2 = app.em.org_id_of_user("publisher2@org2.test").expect("org");
    app.em.set_api_usage(&org2, 1_000, 1_000).expect("allowance");
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v2")]).await;
    let d = finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    assert_eq!(d["status"], "failed", "{d}");
    let by_org = |name: &str| targets(&d).iter().find(|t| t["account_name"] == name).cloned().expect(name);
    let one = by_org("Fanout Org 1");
    assert_eq!((one["status"].as_str(), one["attempts"].as_u64()), (Some("failed"), Some(1)), "{one}");
    assert!(one["error"].as_str().expect("error").contains("Customize Application"), "{one}");
    let two = by_org("Fanout Org 2");
    assert_eq!(two["status"], "failed");
    assert!(
        two["error"].as_str().expect("error").contains("gave up after 6 attempts")
            && two["error"].as_str().expect("e").contains("REQUEST_LIMIT_EXCEEDED"),
        "{two}"
    );
    assert_eq!(by_org("Fanout Org 3")["action"], "updated");
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_per_connection_mid_deployment() {
    let app = spawn().await;
    let (system, env, connections) = bound(&app, 3).await;
    app.em.expire_all_tokens();
    app.em.clear_requests();
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    let d = finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    let grants =
        app.em.requests().iter().filter(|r| r.operation.as_deref().is_some_and(|o| o.starts_with("token:"))).count();
    assert_eq!(grants, connections.len(), "one new session per connection");
}

fn refs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_runs() {
    let app = spawn().await;
    let (system, env, _) = bound(&app, 1).await;
    let zip = testkit::bundle_zip(&[("a.js", b"1")]);
    let fields = |name: &'static str| {
        vec![("system_id", system.clone()), ("environment_id", env.clone()), ("resource_name", name.to_string())]
    };

    let bad_name = fields("bad name__");
    let (status, body) = testkit::upload(&app, "admin_a", &refs(&bad_name), &zip).await;
    assert_eq!((status, body["error"]["fields"][0]["field"].as_str()), (422, Some("resource_name")), "{body}");
    let good = fields("Player");
    let (status, body) = testkit::upload(&app, "admin_a", &refs(&good), b"not a zip").await;
    assert_eq!((status, body["error"]["fields"][0]["field"].as_str()), (422, Some("file")), "{body}");
    // Nothing bound to Test: nothing to publish to, said plainly.
    let (_, envs) = app.call("admin_a", Method::GET, "/environments", None).await;
    let test_env = envs[1]["id"].as_str().expect("test").to_string();
    let unbound =
        vec![("system_id", system.clone()), ("environment_id", test_env), ("resource_name", "Player".to_string())];
    let (status, body) = testkit::upload(&app, "admin_a", &refs(&unbound), &zip).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("bind a connection"), "{body}");
    let (_, listed) = app.call("admin_a", Method::GET, "/deployments", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "nothing was started");
    assert_eq!(
        app.em.requests().iter().filter(|r| r.path.contains("StaticResource")).count(),
        0,
        "no call reached an org"
    );
}

/// Issue #15: a deployment with the loader deploys it into each org after the resource,
/// records what happened per org, fails only the org that refuses (with the fix), and skips
/// the loader where the org already holds the same version.
#[tokio::test]
async fn a_deployment_with_the_loader_deploys_it_per_org_and_names_the_one_that_refuses() {
    let app = spawn().await;
    app.em.set_deploy_time(std::time::Duration::from_millis(100));
    let (system, env, connections) = bound(&app, 3).await;
    let files: &[(&str, &[u8])] = &[("player.js", b"window.player = 1;")];
    // Asking for the loader without settings, or with a file the bundle lacks, is refused.
    let fields = [
        ("system_id", system.as_str()),
        ("environment_id", env.as_str()),
        ("resource_name", "Player"),
        ("with_loader", "true"),
    ];
    let zip = testkit::bundle_zip(files);
    let (status, refused) = testkit::upload(&app, "editor_a", &fields, &zip).await;
    assert_eq!((status, refused["error"]["fields"][0]["field"].as_str()), (422, Some("with_loader")), "{refused}");
    let settings = json!({"scripts": ["player.js"], "trusted_sites": ["https://api.example.com"]});
    let (status, _) = app.call("admin_a", Method::PUT, &format!("/systems/{system}/loader"), Some(settings)).await;
    assert_eq!(status, 200);
    let (status, refused) =
        testkit::upload(&app, "editor_a", &fields, &testkit::bundle_zip(&[("other.js", b"x")])).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["error"]["fields"][0]["message"].as_str().expect("message").contains("player.js"), "{refused}");
    // The second org's user may not deploy metadata.
    let change = emulator::UserChange { modify_metadata: Some(false), ..Default::default() };
    app.em.set_user("publisher2@org2.test", &change).expect("change");
    let started = testkit::deploy_with_loader(&app, "editor_a", &system, &env, "Player", files).await;
    assert_eq!(started["with_loader"], true, "{started}");
    let done = finished(&app, "editor_a", started["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "failed", "{done}");
    let by_connection = |id: &str| targets(&done).iter().find(|t| t["connection_id"] == id).cloned().expect("target");
    for ok in [&connections[0], &connections[2]] {
        let t = by_connection(ok);
        assert_eq!(t["status"], "succeeded", "{t}");
        assert!(t["loader"].as_str().expect("loader").starts_with("deployed "), "{t}");
    }
    let refused = by_connection(&connections[1]);
    assert_eq!(refused["status"], "failed", "{refused}");
    let error = refused["error"].as_str().expect("error");
    assert!(
        error.contains("the resource is published; the loader is not")
            && error.contains("Modify Metadata Through Metadata API Functions"),
        "{error}"
    );
    // Deploying the loader alone would publish this failed release again: refused.
    let (status, refused) =
        app.call("editor_a", Method::POST, &format!("/systems/{system}/environments/{env}/loader/deploy"), None).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.to_string().contains("did not succeed in every org"), "{refused}");
    // Fixed in the org, published again: the loader is unchanged where it was in place, and
    // deployed where it was missing.
    let change = emulator::UserChange { modify_metadata: Some(true), ..Default::default() };
    app.em.set_user("publisher2@org2.test", &change).expect("change");
    let again = testkit::deploy_with_loader(&app, "editor_a", &system, &env, "Player", files).await;
    let again = finished(&app, "editor_a", again["id"].as_str().expect("id")).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    let loaders: Vec<&str> = targets(&again).iter().filter_map(|t| t["loader"].as_str()).collect();
    assert_eq!(loaders.iter().filter(|l| l.starts_with("unchanged ")).count(), 2, "{loaders:?}");
    assert_eq!(loaders.iter().filter(|l| l.starts_with("deployed ")).count(), 1, "{loaders:?}");
}

/// Issue #15: the system's Loader tab — settings with every fault shown beside its field and
/// the typed text kept, then each org's state: in place after a deployment with the loader,
/// outdated once the settings change.
#[tokio::test]
async fn the_loader_tab_keeps_what_was_typed_and_shows_each_orgs_state() {
    let app = spawn().await;
    app.em.set_deploy_time(std::time::Duration::from_millis(100));
    let (system, env, connections) = bound(&app, 2).await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let page = |cookie: String| {
        let (http, url) = (http.clone(), format!("{}/systems/{system}/loader", app.base));
        async move { http.get(url).header("cookie", cookie).send().await.expect("get").text().await.expect("body") }
    };
    let before = page(cookie.clone()).await;
    assert!(
        before.contains("Turn the loader on") && before.contains("aria-selected=\"true\" href=\"/systems/"),
        "{before}"
    );
    let post = |fields: Vec<(&'static str, String)>| {
        let (http, url, cookie) = (http.clone(), format!("{}/systems/{system}/loader", app.base), cookie.clone());
        async move { http.post(url).header("cookie", cookie).form(&fields).send().await.expect("post") }
    };
    let bad = post(vec![
        ("csrf", csrf.clone()),
        ("scripts", "player.js\n../secret.js".into()),
        ("trusted_sites", "ftp://files.example".into()),
    ])
    .await;
    assert_eq!(bad.status(), 422);
    let bad = bad.text().await.expect("body");
    assert!(
        bad.contains("../secret.js") && bad.contains("is not a path inside the resource"),
        "the typed text and its fault"
    );
    assert!(bad.contains("ftp://files.example") && bad.contains("is not an origin"), "every field's fault");
    let saved =
        post(vec![("csrf", csrf.clone()), ("scripts", "player.js".into()), ("trusted_sites", String::new())]).await;
    assert_eq!(saved.status(), 303, "{:?}", saved.text().await);
    let missing = page(cookie.clone()).await;
    assert_eq!(missing.matches("data-state=\"Missing\"").count(), 2, "{missing}");
    let deploy_path = format!("/systems/{system}/environments/{env}/loader/deploy");
    let (status, refused) = app.call("editor_a", Method::POST, &deploy_path, None).await;
    assert_eq!(status, 422, "nothing published to the environment yet: {refused}");
    assert!(refused.to_string().contains("nothing has been published"), "{refused}");
    let started = testkit::deploy_with_loader(&app, "editor_a", &system, &env, "Player", &[("player.js", b"x")]).await;
    finished(&app, "editor_a", started["id"].as_str().expect("id")).await;
    let in_place = page(cookie.clone()).await;
    assert_eq!(in_place.matches("data-state=\"In place\"").count(), 2, "{in_place}");
    assert!(in_place.contains(&connections[0]) && in_place.contains("editor_a@lightbridge.test"), "{in_place}");
    let changed =
        post(vec![("csrf", csrf.clone()), ("scripts", "player.js".into()), ("styles", "site.css".into())]).await;
    assert_eq!(changed.status(), 303);
    let outdated = page(cookie.clone()).await;
    assert_eq!(outdated.matches("data-state=\"Outdated\"").count(), 2, "{outdated}");
    // Announced (#18): the two orgs now run an earlier version (not at the first save, when
    // no org had one).
    let (_, events) = app.call("admin_a", Method::GET, "/events", None).await;
    let loader: Vec<&Value> =
        events.as_array().expect("events").iter().filter(|e| e["type"] == "loader.outdated").collect();
    assert_eq!(loader.len(), 1, "{events:#}");
    assert_eq!(
        (loader[0]["data"]["outdated"].as_u64(), loader[0]["data"]["system"]["id"].as_str()),
        (Some(2), Some(system.as_str()))
    );
    // Deploy the new version from the tab, without a new release: the resource is unchanged in
    // each org and only the loader moves.
    assert!(outdated.contains("Deploy the loader to "), "{outdated}");
    let deploy = || {
        let (http, url, cookie) =
            (http.clone(), format!("{}/systems/{system}/loader/deploy", app.base), cookie.clone());
        let form = [("csrf", csrf.clone()), ("environment_id", env.clone())];
        async move {
            let r = http.post(url).header("cookie", cookie).form(&form).send().await.expect("post");
            assert_eq!(r.status(), 303);
            let flash = r.headers().get("set-cookie").and_then(|c| c.to_str().ok()).unwrap_or("").to_string();
            (r.headers()["location"].to_str().expect("location").to_string(), flash)
        }
    };
    // The release lacks the new style sheet: refused, back on the tab, saying which file.
    let (back, flash) = deploy().await;
    assert_eq!(back, format!("/systems/{system}/loader"));
    assert!(flash.contains("Not+deployed") && flash.contains("site.css"), "{flash}");
    let changed = post(vec![
        ("csrf", csrf.clone()),
        ("scripts", "player.js".into()),
        ("trusted_sites", "https://cdn.example.com".into()),
    ])
    .await;
    assert_eq!(changed.status(), 303);
    let (to, _) = deploy().await;
    let id = to.strip_prefix("/deployments/").expect("the deployment's page").to_string();
    let done = finished(&app, "editor_a", &id).await;
    let targets = done["targets"].as_array().expect("targets");
    assert!(targets.iter().all(|t| t["status"] == "unchanged"), "the resource stays: {done}");
    assert!(targets.iter().all(|t| t["loader"].as_str().is_some_and(|l| l.starts_with("deployed "))), "{done}");
    let again = page(cookie.clone()).await;
    assert_eq!(again.matches("data-state=\"In place\"").count(), 2, "{again}");
    // Through the API, again: every org already holds it.
    let (status, started) = app.call("editor_a", Method::POST, &deploy_path, None).await;
    assert_eq!(status, 202, "{started}");
    let done = finished(&app, "editor_a", started["id"].as_str().expect("id")).await;
    assert!(
        done["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .all(|t| t["loader"].as_str().is_some_and(|l| l.starts_with("unchanged "))),
        "{done}"
    );
    let (status, _) = app.call("viewer_a", Method::POST, &deploy_path, None).await;
    assert_eq!(status, 403, "viewers do not publish");
    // A viewer reads it; without the CSRF token nothing changes.
    let (viewer, _) = app.sign_in("viewer_a").await;
    let read_only = page(viewer).await;
    assert!(read_only.contains("https://cdn.example.com") && !read_only.contains("<textarea"), "{read_only}");
    let forged = post(vec![("csrf", "nope".into()), ("scripts", "evil.js".into())]).await;
    assert_eq!(forged.status(), 403);
}

/// Issue #15: the loader comes out of an org on request — through the API, or when a binding
/// goes on the Publishing tab — and the Loader tab says so.
#[tokio::test]
async fn the_loader_is_removed_from_an_org_through_the_api_or_with_an_unbind() {
    let app = spawn().await;
    app.em.set_deploy_time(std::time::Duration::from_millis(100));
    let (system, env, connections) = bound(&app, 2).await;
    let settings = json!({"scripts": ["player.js"], "trusted_sites": ["https://api.example.com"]});
    assert_eq!(app.call("admin_a", Method::PUT, &format!("/systems/{system}/loader"), Some(settings)).await.0, 200);
    let started = testkit::deploy_with_loader(&app, "editor_a", &system, &env, "Player", &[("player.js", b"x")]).await;
    finished(&app, "editor_a", started["id"].as_str().expect("id")).await;
    // Through the API: an editor may not; an admin removes it; Salesforce did it.
    let path = format!("/systems/{system}/environments/{env}/connections/{}/loader/remove", connections[0]);
    assert_eq!(app.call("editor_a", Method::POST, &path, None).await.0, 403);
    let (status, removed) = app.call("admin_a", Method::POST, &path, None).await;
    assert_eq!(status, 200, "{removed}");
    assert!(removed["removed"].as_str().expect("words").starts_with("removed by deploy 0Af"), "{removed}");
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=loader.removed", None).await;
    assert_eq!(log["items"].as_array().expect("items").len(), 1, "{log}");
    // The deployment's history stays as it was: the removal is recorded beside it.
    let (_, history) =
        app.call("admin_a", Method::GET, &format!("/deployments/{}", started["id"].as_str().expect("id")), None).await;
    assert!(
        targets(&history).iter().all(|t| t["loader"].as_str().is_some_and(|l| l.starts_with("deployed "))),
        "{history}"
    );
    // On the Publishing tab: unbind, and remove the loader from the org with it.
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let unbind = http
        .post(format!("{}/systems/{system}/publishing", app.base))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "unbind"),
            ("environment_id", env.as_str()),
            ("connection_id", connections[1].as_str()),
            ("remove_loader", "on"),
        ])
        .send()
        .await
        .expect("unbind");
    assert_eq!(unbind.status(), 303);
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=loader.removed", None).await;
    assert_eq!(log["items"].as_array().expect("items").len(), 2, "{log}");
    // The Loader tab: the still-bound org shows the loader gone.
    let page = http
        .get(format!("{}/systems/{system}/loader", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("removed from the org") && page.contains("data-state=\"Missing\""), "{page}");
    // Salesforce holds none of it in either org.
    for org in 1..=2 {
        let username = format!("publisher{org}@org{org}.test");
        let deploys = app
            .em
            .requests()
            .iter()
            .filter(|r| r.operation.as_deref() == Some("deploy:create"))
            .filter(|r| r.org_id == app.em.org_id_of_user(&username))
            .count();
        assert_eq!(deploys, 3, "validation, deploy, removal in org {org}");
    }
}

/// Issue #15: a loader turned off stays listed on the Loader tab in the orgs that hold it, each
/// with its Remove button, until it is removed there.
#[tokio::test]
async fn a_loader_turned_off_is_listed_where_it_was_left_and_removed_from_the_tab() {
    let app = spawn().await;
    app.em.set_deploy_time(std::time::Duration::from_millis(100));
    let (system, env, connections) = bound(&app, 2).await;
    let path = format!("/systems/{system}/loader");
    assert_eq!(app.call("admin_a", Method::PUT, &path, Some(json!({"scripts": ["player.js"]}))).await.0, 200);
    let started = testkit::deploy_with_loader(&app, "editor_a", &system, &env, "Player", &[("player.js", b"x")]).await;
    finished(&app, "editor_a", started["id"].as_str().expect("id")).await;
    // A later deployment fails in one org (its user lost the permission): that org still
    // holds the version the first one put there.
    let change = emulator::UserChange { modify_metadata: Some(false), ..Default::default() };
    app.em.set_user("publisher2@org2.test", &change).expect("change");
    let settings = json!({"scripts": ["player.js"], "trusted_sites": ["https://cdn.example.com"]});
    assert_eq!(app.call("admin_a", Method::PUT, &path, Some(settings)).await.0, 200);
    let again = testkit::deploy_with_loader(&app, "editor_a", &system, &env, "Player", &[("player.js", b"x")]).await;
    let done = finished(&app, "editor_a", again["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(app.call("admin_a", Method::DELETE, &path, None).await.0, 204);
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let tab = || {
        let (http, url, cookie) = (http.clone(), format!("{}/systems/{system}/loader", app.base), cookie.clone());
        async move { http.get(url).header("cookie", cookie).send().await.expect("get").text().await.expect("html") }
    };
    let off = tab().await;
    assert_eq!(off.matches("data-state=\"Left behind\"").count(), 2, "{off}");
    assert_eq!(off.matches("Remove from this org").count(), 2, "{off}");
    assert!(!off.contains("Deploy the loader to"), "nothing to deploy while it is off: {off}");
    let removed = http
        .post(format!("{}/systems/{system}/loader/remove", app.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("environment_id", env.as_str()), ("connection_id", connections[0].as_str())])
        .send()
        .await
        .expect("remove");
    assert_eq!(removed.status(), 303);
    let after = tab().await;
    assert_eq!(after.matches("data-state=\"Left behind\"").count(), 1, "{after}");
    assert!(
        after.contains(&connections[1]) && !after.contains(&format!("data-connection=\"{}\"", connections[0])),
        "{after}"
    );
}

/// Issue #15: deleting a connection whose org holds a system's loader offers to take the
/// loader out first, while the connection can still sign in.
#[tokio::test]
async fn deleting_a_connection_offers_to_remove_the_loader_from_its_org_first() {
    let app = spawn().await;
    app.em.set_deploy_time(std::time::Duration::from_millis(100));
    let (system, env, connections) = bound(&app, 1).await;
    let settings = json!({"scripts": ["player.js"]});
    assert_eq!(app.call("admin_a", Method::PUT, &format!("/systems/{system}/loader"), Some(settings)).await.0, 200);
    let started = testkit::deploy_with_loader(&app, "editor_a", &system, &env, "Player", &[("player.js", b"x")]).await;
    finished(&app, "editor_a", started["id"].as_str().expect("id")).await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let url = format!("{}/connections/salesforce/{}/delete", app.base, connections[0]);
    let confirm = http.get(&url).header("cookie", &cookie).send().await.expect("get").text().await.expect("html");
    assert!(confirm.contains("name=\"remove_loader\"") && confirm.contains("1 system"), "{confirm}");
    let deleted = http
        .post(&url)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("remove_loader", "on")])
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 303);
    let removals = app.em.requests().iter().filter(|r| r.operation.as_deref() == Some("deploy:create")).count();
    assert_eq!(removals, 3, "validation, deploy, then the removal before the revoke");
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=loader.removed", None).await;
    assert_eq!(log["items"].as_array().expect("items").len(), 1, "{log}");
    assert_eq!(app.call("admin_a", Method::GET, &format!("/connections/{}", connections[0]), None).await.0, 404);
}

/// A multipart body as the Deployments page's form sends it.
fn publish_form(fields: &[(&str, &str)], file: Option<&[u8]>) -> (String, Vec<u8>) {
    let boundary = "publish-form-test";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"release.zip\"\r\nContent-Type: application/zip\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(file.unwrap_or_default());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Issue #16 (item 7): a refused publish form comes back as typed — the system, environment,
/// name and options, and the file kept as a checked bundle — with every fault of the name.
#[tokio::test]
async fn a_refused_publish_form_keeps_what_was_sent_and_names_every_fault() {
    let app = spawn().await;
    let (system, env, _) = bound(&app, 1).await;
    let (cookie, csrf) = app.sign_in("editor_a").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let send = |fields: Vec<(&'static str, String)>, file: Option<Vec<u8>>| {
        let (http, url, cookie) = (http.clone(), format!("{}/deployments", app.base), cookie.clone());
        async move {
            let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (content_type, body) = publish_form(&refs, file.as_deref());
            http.post(url)
                .header("cookie", cookie)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("post")
        }
    };
    let zip = testkit::bundle_zip(&[("player.js", b"window.player = 1;")]);
    let base = |name: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("system_id", system.clone()),
            ("environment_id", env.clone()),
            ("resource_name", name.to_string()),
            ("cache_control", "Public".to_string()),
        ]
    };
    let refused = send(base("9 bad__name_"), Some(zip.clone())).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("html");
    for fault in
        ["must start with a letter", "found &#39; &#39;", "two underscores in a row", "must not end with an underscore"]
    {
        assert!(page.contains(fault), "{fault}: {page}");
    }
    assert!(page.contains("value=\"9 bad__name_\""), "the name as typed");
    assert!(page.contains("<option value=\"Public\" selected>"), "the options as chosen");
    assert!(page.contains(&format!("<option value=\"{env}\" selected>")), "the environment as chosen");
    assert!(page.contains("The file you chose is kept: 1 file(s)"), "{page}");
    let kept = page.split("name=\"bundle_id\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("bundle id");
    assert!(kept.starts_with("bun_"), "{kept}");
    // Fixed, sent with the kept file and no new one: published.
    let mut fixed = base("Player_Assets");
    fixed.push(("bundle_id", kept.to_string()));
    let started = send(fixed, None).await;
    assert_eq!(started.status(), 303, "{:?}", started.text().await);
    assert!(started.headers()["location"].to_str().expect("location").starts_with("/deployments/dep_"));
    // No file and nothing kept: the file is asked for, the rest kept.
    let missing = send(base("Player_Assets"), None).await;
    assert_eq!(missing.status(), 422);
    let page = missing.text().await.expect("html");
    assert!(page.contains("Choose a ZIP file to publish.") && page.contains("value=\"Player_Assets\""), "{page}");
    // A file that is not a ZIP and a bad name: both said at once.
    let both = send(base("_x"), Some(b"not a zip".to_vec())).await;
    assert_eq!(both.status(), 422);
    let page = both.text().await.expect("html");
    assert!(
        page.contains("must start with a letter")
            && !page.contains("id=\"file-error\" class=\"error\" aria-live=\"polite\"></span>"),
        "{page}"
    );
    assert!(!page.contains("bundle_id"), "nothing kept from a bad file");
}

/// Polls a deployment until `check` holds (10 s at most): the rollout keeper decides within
/// a quarter of a second.
pub(crate) async fn until(app: &TestApp, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    loop {
        let (_, d) = app.call("admin_a", Method::GET, &format!("/deployments/{id}"), None).await;
        if check(&d) {
            return d;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{what}: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Requests of any kind the emulator saw from these orgs (by their publishers).
fn calls_from(app: &TestApp, users: &[&str]) -> usize {
    let orgs: Vec<String> = users.iter().map(|u| app.em.org_id_of_user(u).expect("org")).collect();
    app.em.requests().iter().filter(|r| r.org_id.as_ref().is_some_and(|o| orgs.contains(o))).count()
}

#[tokio::test]
async fn a_canary_over_the_threshold_halts_the_rollout_and_later_waves_never_start() {
    // #17: the canary (org 1, chosen by connection) fails — its user lost Customize
    // Application — so the rollout halts before wave 2: nothing is uploaded to orgs 2 and 3.
    let app = spawn().await;
    let (system, env, connections) = bound(&app, 3).await;
    let change = emulator::UserChange { customize_application: Some(false), ..Default::default() };
    app.em.set_user("publisher1@org1.test", &change).expect("user");
    let later = ["publisher2@org2.test", "publisher3@org3.test"];
    let before = calls_from(&app, &later);
    let rollout = json!({"waves": [{"connections": [connections[0]]}, {}], "max_failure_rate": 0.0});
    let d =
        testkit::deploy_in_waves(&app, "admin_a", (&system, &env, "Player"), &[("player.js", b"v1")], rollout).await;
    let id = d["id"].as_str().expect("id").to_string();
    assert_eq!((d["counts"]["pending"].as_u64(), d["counts"]["held"].as_u64()), (Some(1), Some(2)), "{d}");
    let halted = until(&app, &id, "halted", |d| d["status"] == "halted").await;
    let note = halted["note"].as_str().expect("note");
    assert!(note.contains("wave 1 of 2 ended with 1 of 1 orgs failed (100 %)") && note.contains("0 %"), "{note}");
    assert_eq!(halted["counts"]["held"], 2, "{halted}");
    assert_eq!(halted["finished_at"], Value::Null, "a halted rollout waits for a person");
    let held: Vec<&Value> = targets(&halted).iter().filter(|t| t["status"] == "held").collect();
    assert!(held.iter().all(|t| t["attempts"] == 0), "never tried: {halted}");
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=deployment.halted", None).await;
    assert_eq!(log["items"].as_array().map(Vec::len), Some(1), "{log}");
    // Still halted a while later: the keeper does not start wave 2 by itself.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let (_, still) = app.call("admin_a", Method::GET, &format!("/deployments/{id}"), None).await;
    assert_eq!(still["status"], "halted");
    // Approve is not the move for a halted rollout; abort skips the rest and ends it.
    let (status, refused) = app.call("admin_a", Method::POST, &format!("/deployments/{id}/approve"), None).await;
    assert_eq!(status, 409, "{refused}");
    let (status, viewer) = app.call("viewer_a", Method::POST, &format!("/deployments/{id}/abort"), None).await;
    assert_eq!(status, 403, "viewers do not steer rollouts: {viewer}");
    let (status, aborted) = app.call("admin_a", Method::POST, &format!("/deployments/{id}/abort"), None).await;
    assert_eq!(status, 200, "{aborted}");
    assert_eq!((aborted["status"].as_str(), aborted["counts"]["skipped"].as_u64()), (Some("aborted"), Some(2)));
    assert!(aborted["finished_at"].is_i64());
    let (status, _) = app.call("admin_a", Method::POST, &format!("/deployments/{id}/resume"), None).await;
    assert_eq!(status, 409, "an ended deployment does not resume");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(calls_from(&app, &later), before, "orgs 2 and 3 were never called for this deployment");
}

#[tokio::test]
async fn a_halted_rollout_resumed_anyway_runs_its_next_wave() {
    let app = spawn().await;
    let (system, env, connections) = bound(&app, 3).await;
    let change = emulator::UserChange { customize_application: Some(false), ..Default::default() };
    app.em.set_user("publisher1@org1.test", &change).expect("user");
    let rollout = json!({"waves": [{"connections": [connections[0]]}, {}], "max_failure_rate": 0.5});
    let d =
        testkit::deploy_in_waves(&app, "admin_a", (&system, &env, "Player"), &[("player.js", b"v1")], rollout).await;
    let id = d["id"].as_str().expect("id").to_string();
    until(&app, &id, "halted", |d| d["status"] == "halted").await;
    let (status, resumed) = app.call("admin_a", Method::POST, &format!("/deployments/{id}/resume"), None).await;
    assert_eq!((status, resumed["wave"].as_u64()), (200, Some(1)), "{resumed}");
    let done = finished(&app, "admin_a", &id).await;
    assert_eq!(done["status"], "failed", "one org failed: {done}");
    assert_eq!((done["counts"]["succeeded"].as_u64(), done["counts"]["failed"].as_u64()), (Some(2), Some(1)));
    assert_eq!(done["rollout"]["waves"][1]["counts"]["succeeded"], 2, "{done}");
}

#[tokio::test]
async fn approval_and_time_gates_hold_the_next_wave_and_pause_resume_keep_it() {
    let app = spawn().await;
    let (system, env, _) = bound(&app, 3).await;
    // A canary of one, then the rest after approval.
    let rollout = json!({"waves": [{"count": 1}, {"gate": "approval"}], "max_failure_rate": 0.1});
    let d =
        testkit::deploy_in_waves(&app, "admin_a", (&system, &env, "Player"), &[("player.js", b"v1")], rollout).await;
    let id = d["id"].as_str().expect("id").to_string();
    let waiting = until(&app, &id, "waiting for approval", |d| d["status"] == "waiting").await;
    assert!(waiting["note"].as_str().expect("note").contains("wave 2 of 2 waits for approval"), "{waiting}");
    assert_eq!((waiting["counts"]["succeeded"].as_u64(), waiting["counts"]["held"].as_u64()), (Some(1), Some(2)));
    assert_eq!(uploads(&app), 1, "the canary only");
    // Paused while waiting: approve is refused, resume goes back to waiting (the gate still holds).
    let (status, paused) = app.call("admin_a", Method::POST, &format!("/deployments/{id}/pause"), None).await;
    assert_eq!((status, paused["status"].as_str()), (200, Some("paused")), "{paused}");
    let (status, _) = app.call("admin_a", Method::POST, &format!("/deployments/{id}/approve"), None).await;
    assert_eq!(status, 409);
    let (status, _) = app.call("admin_a", Method::POST, &format!("/deployments/{id}/resume"), None).await;
    assert_eq!(status, 200);
    until(&app, &id, "waiting again", |d| d["status"] == "waiting").await;
    assert_eq!(uploads(&app), 1);
    // Approved: the rest go out, and the deployment ends.
    let (status, approved) = app.call("admin_a", Method::POST, &format!("/deployments/{id}/approve"), None).await;
    assert_eq!((status, approved["wave"].as_u64()), (200, Some(1)), "{approved}");
    let done = finished(&app, "admin_a", &id).await;
    assert_eq!((done["status"].as_str(), done["counts"]["succeeded"].as_u64()), (Some("succeeded"), Some(3)), "{done}");
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=deployment.approved", None).await;
    assert_eq!(log["items"][0]["actor"], "admin_a@lightbridge.test");

    // A time gate: the next wave waits for its time, then starts by itself.
    let at = domain::Clock::now_ms(&*app.clock) + 3_600_000;
    let rollout = json!({"waves": [{"percent": 34}, {"start_at": at}], "max_failure_rate": 0.0});
    let d =
        testkit::deploy_in_waves(&app, "admin_a", (&system, &env, "Player"), &[("player.js", b"v2")], rollout).await;
    let id = d["id"].as_str().expect("id").to_string();
    let waiting = until(&app, &id, "waiting for its time", |d| d["status"] == "waiting").await;
    assert!(waiting["note"].as_str().expect("note").contains("starts at"), "{waiting}");
    assert_eq!(waiting["counts"]["held"], 1, "34 % of 3 orgs, rounded up: 2 in the first wave: {waiting}");
    app.clock.advance(std::time::Duration::from_secs(3_601));
    let done = finished(&app, "admin_a", &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    // Bad plans are refused before anything runs, every fault named.
    let bad = json!({"waves": [{"count": 0, "percent": 200}, {"gate": "sometime"}], "max_failure_rate": 2});
    let (status, body) = testkit::upload(
        &app,
        "admin_a",
        &[("system_id", &system), ("environment_id", &env), ("resource_name", "Player"), ("rollout", &bad.to_string())],
        &testkit::bundle_zip(&[("player.js", b"v3")]),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    assert!(text.contains("rollout.waves[1].gate"), "{text}");
    // A plan that reads but cannot run: every fault of it at once.
    let bad = json!({"waves": [{"count": 0, "percent": 200, "gate": "approval"}], "max_failure_rate": 2});
    let (status, body) = testkit::upload(
        &app,
        "admin_a",
        &[("system_id", &system), ("environment_id", &env), ("resource_name", "Player"), ("rollout", &bad.to_string())],
        &testkit::bundle_zip(&[("player.js", b"v3")]),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    for field in
        ["rollout.max_failure_rate", "rollout.waves[0].count", "rollout.waves[0].percent", "rollout.waves[0].gate"]
    {
        assert!(text.contains(field), "{field}: {text}");
    }
}

#[tokio::test]
async fn a_target_failing_for_now_after_an_abort_is_skipped_not_tried_again() {
    // #17: abort while an org's upload is under way; the upload then fails for now (503). The
    // target ends skipped: it is not tried again for an aborted deployment.
    let app = spawn().await;
    let (system, env, _) = bound(&app, 1).await;
    app.em.set_latency(emulator::Latency { fixed_ms: 400, jitter_ms: 0 });
    app.em.add_fault(FaultRule {
        method: Some("POST".into()),
        ..FaultRule::error("/sobjects/StaticResource", 1, 503, "SERVER_UNAVAILABLE")
    });
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    let id = d["id"].as_str().expect("id").to_string();
    until(&app, &id, "running", |d| targets(d).iter().any(|t| t["status"] == "running")).await;
    let (status, aborted) = app.call("admin_a", Method::POST, &format!("/deployments/{id}/abort"), None).await;
    assert_eq!((status, aborted["status"].as_str()), (200, Some("aborted")), "{aborted}");
    let ended =
        until(&app, &id, "the running target ended", |d| targets(d).iter().all(|t| t["status"] != "running")).await;
    assert_eq!(targets(&ended)[0]["status"], "skipped", "{ended}");
    app.em.set_latency(emulator::Latency { fixed_ms: 0, jitter_ms: 0 });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, later) = app.call("admin_a", Method::GET, &format!("/deployments/{id}"), None).await;
    let target = &targets(&later)[0];
    assert_eq!((target["status"].as_str(), target["attempts"].as_u64()), (Some("skipped"), Some(1)), "{later}");
    assert_eq!(uploads(&app), 1, "the one upload that failed; none after the abort");
}

#[tokio::test]
async fn a_newer_release_supersedes_an_open_rollout_to_the_same_environment() {
    // #17: a rollout waiting for approval would put its older release back over a newer one
    // when approved; the newer deployment ends it.
    let app = spawn().await;
    let (system, env, _) = bound(&app, 2).await;
    let rollout = json!({"waves": [{"count": 1}, {"gate": "approval"}]});
    let old =
        testkit::deploy_in_waves(&app, "admin_a", (&system, &env, "Player"), &[("player.js", b"old")], rollout).await;
    let old = old["id"].as_str().expect("id").to_string();
    until(&app, &old, "waiting", |d| d["status"] == "waiting").await;
    let new = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"new")]).await;
    let new = new["id"].as_str().expect("id").to_string();
    let (_, superseded) = app.call("admin_a", Method::GET, &format!("/deployments/{old}"), None).await;
    assert_eq!(superseded["status"], "aborted", "{superseded}");
    assert!(superseded["note"].as_str().expect("note").contains(&format!("Superseded by {new}")), "{superseded}");
    let (status, _) = app.call("admin_a", Method::POST, &format!("/deployments/{old}/approve"), None).await;
    assert_eq!(status, 409, "an old release cannot come back by approval");
    let done = finished(&app, "admin_a", &new).await;
    assert_eq!(done["status"], "succeeded");
}

#[tokio::test]
async fn the_publish_form_rolls_out_a_canary_and_the_deployment_page_steers_it() {
    // #17 in the Admin Center: "A canary first, then the rest after my approval"; the page
    // shows the waves and why it waits, and its buttons approve, pause, resume and abort.
    let app = spawn().await;
    let (system, env, _) = bound(&app, 3).await;
    let (cookie, csrf) = app.sign_in("editor_a").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let zip = testkit::bundle_zip(&[("player.js", b"window.player = 2;")]);
    let form = |canary: &str, gate: &str, percent: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("system_id", system.clone()),
            ("environment_id", env.clone()),
            ("resource_name", "Player_Assets".to_string()),
            ("cache_control", "Private".to_string()),
            ("rollout", "canary".to_string()),
            ("canary_count", canary.to_string()),
            ("rest_gate", gate.to_string()),
            ("max_failure_percent", percent.to_string()),
        ]
    };
    let send = |fields: Vec<(&'static str, String)>| {
        let (http, url, cookie, zip) = (http.clone(), format!("{}/deployments", app.base), cookie.clone(), zip.clone());
        async move {
            let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (content_type, body) = publish_form(&refs, Some(&zip));
            http.post(url)
                .header("cookie", cookie)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("post")
        }
    };
    // A canary that is not a number, and a share over 100: both said, the choices kept.
    let refused = send(form("one", "approval", "150")).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("html");
    assert!(
        page.contains("The canary is a whole number of orgs") && page.contains("a percentage from 0 to 100"),
        "{page}"
    );
    assert!(
        page.contains(r#"value="canary" checked"#) && page.contains(r#"<option value="approval" selected>"#),
        "{page}"
    );
    let started = send(form("1", "approval", "10")).await;
    assert_eq!(started.status(), 303);
    let to = started.headers()["location"].to_str().expect("location").to_string();
    let id = to.trim_start_matches("/deployments/").to_string();
    until(&app, &id, "waiting for approval", |d| d["status"] == "waiting").await;
    let get = |path: String| {
        let request = http.get(format!("{}{path}", app.base)).header("cookie", &cookie);
        async move { request.send().await.expect("get").text().await.expect("html") }
    };
    let page = get(to.clone()).await;
    assert!(page.contains("wave 2 of 2 waits for approval"), "{page}");
    assert!(page.contains(r#"data-wave="1""#) && page.contains(r#"data-wave="2""#), "{page}");
    assert!(page.contains(&format!(r#"action="/deployments/{id}/approve""#)), "{page}");
    assert!(page.contains(&format!(r#"action="/deployments/{id}/abort""#)), "{page}");
    let press = |control: &str| {
        let request = http
            .post(format!("{}/deployments/{id}/{control}", app.base))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())]);
        async move { request.send().await.expect("post") }
    };
    let r = press("pause").await;
    assert_eq!(r.status(), 303);
    assert!(get(to.clone()).await.contains(&format!(r#"action="/deployments/{id}/resume""#)));
    // A move the state does not allow comes back with the reason, not an error page.
    let r = press("approve").await;
    assert_eq!(r.status(), 303);
    let said = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lb_flash="))
        .map(str::to_string)
        .expect("a message");
    assert!(said.starts_with("lb_flash=error") && said.contains("approval"), "{said}");
    let r = press("resume").await;
    assert_eq!(r.status(), 303);
    until(&app, &id, "waiting again", |d| d["status"] == "waiting").await;
    let r = press("approve").await;
    assert_eq!(r.status(), 303);
    let done = finished(&app, "editor_a", &id).await;
    assert_eq!((done["status"].as_str(), done["counts"]["succeeded"].as_u64()), (Some("succeeded"), Some(3)));
    // Without the form's token: refused; an unknown move: not found.
    let r = http
        .post(format!("{}/deployments/{id}/pause", app.base))
        .header("cookie", &cookie)
        .form(&[("csrf", "x")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let r = press("explode").await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn an_org_at_its_api_reserve_is_deferred_and_resumes_when_the_allowance_allows() {
    // #17: org 2 has used 85,000 of its 100,000 daily API requests; Lightbridge leaves 20 %,
    // so its target is deferred — pending with the reason, no attempt counted, nothing
    // uploaded — while the others publish. When the org's allowance is back and the deferral
    // has passed, it goes on.
    let app = spawn().await;
    let (system, env, _) = bound(&app, 3).await;
    let org2 = app.em.org_id_of_user("publisher2@org2.test").expect("org");
    app.em.set_api_usage(&org2, 85_000, 100_000).expect("usage");
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    let id = d["id"].as_str().expect("id").to_string();
    let deferred = until(&app, &id, "two published, one deferred", |d| {
        d["counts"]["succeeded"] == 2
            && targets(d).iter().any(|t| t["error"].as_str().is_some_and(|e| e.starts_with("deferred")))
    })
    .await;
    assert_eq!(deferred["status"], "running", "a deferred target is no failure: {deferred}");
    let two = targets(&deferred).iter().find(|t| t["account_name"] == "Fanout Org 2").cloned().expect("org 2");
    assert_eq!((two["status"].as_str(), two["attempts"].as_u64()), (Some("pending"), Some(0)), "{two}");
    let reason = two["error"].as_str().expect("reason");
    assert!(reason.contains("85,001 of its 100,000 daily API requests") && reason.contains("20 %"), "{reason}");
    let org2_uploads = || {
        app.em
            .requests()
            .iter()
            .filter(|r| r.org_id.as_deref() == Some(org2.as_str()))
            .filter(|r| r.path.contains("/sobjects/StaticResource") && matches!(r.method.as_str(), "POST" | "PATCH"))
            .count()
    };
    assert_eq!(org2_uploads(), 0, "nothing uploaded to the org at its reserve");
    // The allowance comes back; after the deferral the target runs and succeeds.
    app.em.set_api_usage(&org2, 1_000, 100_000).expect("usage");
    app.clock.advance(std::time::Duration::from_secs(601));
    let done = finished(&app, "admin_a", &id).await;
    assert_eq!((done["status"].as_str(), done["counts"]["succeeded"].as_u64()), (Some("succeeded"), Some(3)), "{done}");
    assert_eq!(org2_uploads(), 1);
}

#[tokio::test]
async fn the_loader_waits_for_the_api_reserve_too() {
    // #17: the loader's deploy (a validation, the deploy, their polls and a read back) is held
    // back like the resource upload. The resource is already in both orgs; org 2 has used 85 %
    // of its allowance: the resource costs one query there, the loader's checks a few more,
    // and the target waits — pending, no attempt, no deploy request — until the org has room.
    let app = spawn().await;
    app.em.set_deploy_time(std::time::Duration::from_millis(100));
    let (system, env, _) = bound(&app, 2).await;
    let files: &[(&str, &[u8])] = &[("player.js", b"window.player = 1;")];
    let plain = deploy(&app, "admin_a", &system, &env, "Player", files).await;
    assert_eq!(finished(&app, "admin_a", plain["id"].as_str().expect("id")).await["status"], "succeeded");
    let settings = json!({"scripts": ["player.js"]});
    let (status, _) = app.call("admin_a", Method::PUT, &format!("/systems/{system}/loader"), Some(settings)).await;
    assert_eq!(status, 200);
    let org2 = app.em.org_id_of_user("publisher2@org2.test").expect("org");
    app.em.set_api_usage(&org2, 85_000, 100_000).expect("usage");
    let deploys = || {
        app.em
            .requests()
            .iter()
            .filter(|r| r.org_id.as_deref() == Some(org2.as_str()))
            .filter(|r| r.path.ends_with("/metadata/deployRequest") && r.method == "POST")
            .count()
    };
    let d = testkit::deploy_with_loader(&app, "admin_a", &system, &env, "Player", files).await;
    let id = d["id"].as_str().expect("id").to_string();
    let waiting = until(&app, &id, "org 1 done, org 2's loader deferred", |d| {
        d["counts"]["unchanged"] == 1
            && targets(d).iter().any(|t| t["error"].as_str().is_some_and(|e| e.starts_with("deferred")))
    })
    .await;
    let two = targets(&waiting).iter().find(|t| t["account_name"] == "Fanout Org 2").cloned().expect("org 2");
    assert_eq!((two["status"].as_str(), two["attempts"].as_u64()), (Some("pending"), Some(0)), "{two}");
    let reason = two["error"].as_str().expect("reason");
    assert!(reason.contains("the loader waits") && reason.contains("of its 100,000 daily API requests"), "{reason}");
    assert_eq!(deploys(), 0, "no deploy started in the org at its reserve");
    // Room again: after the deferral the loader goes in.
    app.em.set_api_usage(&org2, 1_000, 100_000).expect("usage");
    app.clock.advance(std::time::Duration::from_secs(601));
    let done = finished(&app, "admin_a", &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let two = targets(&done).iter().find(|t| t["account_name"] == "Fanout Org 2").cloned().expect("org 2");
    assert!(two["loader"].as_str().is_some_and(|l| l.starts_with("deployed ")), "{two}");
    assert_eq!(deploys(), 2, "a validation and the deploy");
}

#[tokio::test]
async fn an_org_that_pushes_back_gets_fewer_targets_at_once() {
    // #17: two uploads into one org meet UNABLE_TO_LOCK_ROW; the org's limit halves twice (4 →
    // 2 → 1). Before, several of its targets ran at once; once the targets already under way
    // have finished (each has at most two more calls: 300 ms here, a second allowed), every
    // request has the org to itself — and every deployment still succeeds.
    let app = spawn().await;
    let (system, env, _) = bound(&app, 1).await;
    app.em.set_latency(emulator::Latency { fixed_ms: 150, jitter_ms: 0 });
    app.em.add_fault(FaultRule {
        method: Some("POST".into()),
        ..FaultRule::error("/sobjects/StaticResource", 2, 400, "UNABLE_TO_LOCK_ROW")
    });
    app.em.clear_requests();
    let mut ids = Vec::new();
    for i in 0..6 {
        let d = deploy(&app, "admin_a", &system, &env, &format!("Player_{i}"), &[("player.js", b"v1")]).await;
        ids.push(d["id"].as_str().expect("id").to_string());
    }
    for id in &ids {
        let d = finished(&app, "admin_a", id).await;
        assert_eq!(d["status"], "succeeded", "{d}");
    }
    let org = app.em.org_id_of_user("publisher1@org1.test").expect("org");
    let requests: Vec<(i64, i64, bool)> = app
        .em
        .requests()
        .iter()
        .filter(|r| r.org_id.as_deref() == Some(org.as_str()) && r.path.contains("/services/data/"))
        .map(|r| (r.at_ms, r.at_ms + (r.duration_us / 1000) as i64, r.fault.is_some()))
        .collect();
    let refusals: Vec<i64> = requests.iter().filter(|r| r.2).map(|r| r.1).collect();
    assert_eq!(refusals.len(), 2, "{requests:?}");
    let pushed_back = refusals.iter().max().copied().expect("refusals");
    let company = |r: &(i64, i64, bool)| requests.iter().filter(|o| o.0 < r.1 && r.0 < o.1 && *o != r).count();
    assert!(requests.iter().filter(|r| r.1 <= pushed_back).any(|r| company(r) >= 2), "at first, several at once");
    // A second's slack for the targets already under way, however busy the machine.
    let after: Vec<&(i64, i64, bool)> = requests.iter().filter(|r| r.0 > pushed_back + 1_000).collect();
    assert!(after.len() >= 3, "uploads and reads came after the refusals: {requests:?}");
    for r in &after {
        assert_eq!(company(r), 0, "a request started after the org pushed back had company: {r:?} in {requests:?}");
    }
}

#[tokio::test]
async fn a_rollback_rolls_out_in_waves_when_asked() {
    // #17: rollback goes through the same machinery: a canary first, then the rest on approval.
    let app = spawn().await;
    let (system, env, _) = bound(&app, 2).await;
    let v1 = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    let v1 = v1["id"].as_str().expect("id").to_string();
    finished(&app, "admin_a", &v1).await;
    let v2 = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v2")]).await;
    finished(&app, "admin_a", v2["id"].as_str().expect("id")).await;
    let (status, refused) = app
        .call("admin_a", Method::POST, &format!("/deployments/{v1}/rollback"), Some(json!({"rollout": {"waves": []}})))
        .await;
    assert_eq!(status, 422, "{refused}");
    let body = json!({"rollout": {"waves": [{"count": 1}, {"gate": "approval"}]}});
    let (status, back) = app.call("admin_a", Method::POST, &format!("/deployments/{v1}/rollback"), Some(body)).await;
    assert_eq!(status, 202, "{back}");
    assert_eq!((back["redeploy_of"].as_str(), back["counts"]["held"].as_u64()), (Some(v1.as_str()), Some(1)), "{back}");
    let id = back["id"].as_str().expect("id").to_string();
    until(&app, &id, "waiting for approval", |d| d["status"] == "waiting").await;
    let (status, _) = app.call("admin_a", Method::POST, &format!("/deployments/{id}/approve"), None).await;
    assert_eq!(status, 200);
    let done = finished(&app, "admin_a", &id).await;
    assert_eq!((done["status"].as_str(), done["counts"]["succeeded"].as_u64()), (Some("succeeded"), Some(2)), "{done}");
}
