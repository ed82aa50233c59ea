//! Issue #16: every page the router serves to a signed-in person, checked in headless
//! Chromium by axe-core (from npm, injected into the page): no serious or critical violation
//! of WCAG 2.x A/AA or axe's best practices, and no page scrolls sideways at 1280 px (nor at
//! 390 px, a phone).

use reqwest::Method;
use serde_json::json;
use testkit::webdriver::{self, Browser};
use testkit::{OAUTH_KEY, OAUTH_SECRET, TestApp, deploy, finished, spawn};

async fn sign_in(browser: &Browser, app: &TestApp, label: &str) {
    browser.goto(&format!("{}/signin", app.base)).await;
    browser.type_into("#email", &format!("{label}@lightbridge.test")).await;
    browser.type_into("#password", &format!("password-{label}")).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url(|u| !u.contains("/signin")).await;
}

/// Checks the page the browser is on: axe-core ran its rules and found nothing serious, and
/// nothing is wider than the window at either width. Returns what failed, if anything.
async fn check_page(browser: &Browser, what: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for width in [1280, 390] {
        browser.set_width(width, 900).await;
        let sideways = browser.script("return [document.documentElement.scrollWidth, window.innerWidth]").await;
        let (scroll, inner) = (sideways[0].as_u64().unwrap_or(0), sideways[1].as_u64().unwrap_or(0));
        // A table scrolling inside its frame at 1280 px counts too (#16 item 2).
        let frames = browser
            .script("return [...document.querySelectorAll('.table-wrap')].filter(w => w.scrollWidth > w.clientWidth + 1).length")
            .await;
        if width == 1280 && frames.as_u64() != Some(0) {
            problems.push(format!("{what} at {width} px: a table scrolls sideways inside its frame"));
        }
        if scroll > inner {
            // Name the widest elements that run past the window's edge.
            let wide = browser
                .script(
                    "return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > window.innerWidth)\
                       .slice(-3).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ' ' + Math.round(e.getBoundingClientRect().right))",
                )
                .await;
            problems.push(format!("{what} at {width} px scrolls sideways: {scroll} > {inner} ({wide})"));
        }
    }
    browser.set_width(1280, 900).await;
    let report = browser.axe().await;
    assert!(report.engine.starts_with("axe-core "), "{what}: the checker ran ({})", report.engine);
    assert!(report.passes > 10, "{what}: axe-core ran its rules ({} passed)", report.passes);
    for v in &report.violations {
        problems.push(format!("{what}: {} ({}) — {} at {}", v["id"], v["impact"], v["help"], v["nodes"]));
    }
    problems
}

#[tokio::test]
async fn every_signed_in_page_passes_axe_core_and_fits_the_window() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;
    let account = app.accounts["A"].to_string();

    // Something on every page: connections (one of them Logged out), a legacy connector, a
    // system bound to an environment, a finished deployment, a person to remove.
    let (status, created) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt("Accessible JWT", "admin@acme.test"))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let (status, other) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt("Soon logged out", "admin@acme.test"))).await;
    assert_eq!(status, 201, "{other}");
    let other = other["id"].as_str().expect("id").to_string();
    store::ConnectionStore::observe(
        &*app.state.store,
        &domain::ConnectionId::parse(&other).expect("id"),
        &store::Observation::Dead {
            reason: domain::StatusReason::RefreshTokenInvalid,
            detail: "revoked in Setup".into(),
        },
        None,
        domain::Clock::now_ms(&*app.clock),
    )
    .await
    .expect("observe");
    let (_, system) = app.call("admin_a", Method::POST, "/systems", Some(json!({"name": "Web"}))).await;
    let system = system["id"].as_str().expect("system").to_string();
    let (_, envs) = app.call("admin_a", Method::GET, "/environments", None).await;
    let env = envs[0]["id"].as_str().expect("env").to_string();
    let (status, _) =
        app.call("admin_a", Method::PUT, &format!("/systems/{system}/environments/{env}/connections/{id}"), None).await;
    assert_eq!(status, 204);
    let started = deploy(&app, "admin_a", &system, &env, "web_app", &[("index.js", b"console.log(1)")]).await;
    let deployment = started["id"].as_str().expect("deployment").to_string();
    finished(&app, "admin_a", &deployment).await;
    // A release in waves that holds the org as drifted (#17): the deployment page then shows
    // the rollout's controls and the drifted org's answers, and the fleet matrix a drifted cell.
    let org = app.em.org_id_of_user("admin@acme.test").expect("org");
    let edit = emulator::ResourceEdit { body: Some("changed in Setup".into()), ..Default::default() };
    app.em.edit_resource(&org, "web_app", "admin@acme.test", &edit).expect("edit");
    let waves = json!({"waves": [{"count": 1}, {"gate": "approval"}], "max_failure_rate": 0.0});
    let held = testkit::deploy_in_waves(
        &app,
        "admin_a",
        (&system, &env, "web_app"),
        &[("index.js", b"console.log(2)")],
        waves,
    )
    .await;
    let held = held["id"].as_str().expect("deployment").to_string();
    let read = finished(&app, "admin_a", &held).await;
    assert_eq!(read["counts"]["drifted"], 1, "{read}");
    app.call("operator", Method::PUT, &format!("/accounts/{account}/connectors"), Some(json!({"enabled": true}))).await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let callback = app
        .oauth_through_salesforce(
            &cookie,
            &csrf,
            &format!("/api/v1/systems/{system}/connectors"),
            json!({"environment_id": envs[1]["id"], "org_type": "production", "login_host": "login",
                   "consumer_key": OAUTH_KEY, "consumer_secret": OAUTH_SECRET}),
            "admin@acme.test",
        )
        .await;
    let (status, legacy) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!(status, 201, "{legacy}");
    let legacy = legacy["id"].as_str().expect("legacy").to_string();
    let (_, people) = app.call("owner_a", Method::GET, "/users", None).await;
    let viewer = people
        .as_array()
        .expect("people")
        .iter()
        .find(|u| u["email"] == "viewer_a@lightbridge.test")
        .and_then(|u| u["id"].as_str())
        .expect("viewer")
        .to_string();
    // A webhook endpoint with a delivery (#18).
    let (status, webhook) =
        app.call("admin_a", Method::POST, "/webhooks", Some(json!({"url": "https://hooks.example.com/in"}))).await;
    assert_eq!(status, 201, "{webhook}");
    let webhook = webhook["webhook"]["id"].as_str().expect("webhook").to_string();
    app.call("admin_a", Method::POST, &format!("/webhooks/{webhook}/test"), None).await;

    let mut problems = Vec::new();
    let mut checked = Vec::new();
    // The checker finds what it should: an image without a text alternative is critical.
    sign_in(&browser, &app, "owner_a").await;
    browser.script("document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=\"/x.png\">')").await;
    let planted = browser.axe().await;
    assert!(
        planted.violations.iter().any(|v| v["id"] == "image-alt"),
        "axe-core reports a planted fault: {:?}",
        planted.violations
    );
    let _ = browser.script("document.querySelector('form[action=\"/signout\"]')?.submit()").await;
    browser.wait_for_url(|u| u.contains("/signin")).await;
    browser.goto(&format!("{}/signin", app.base)).await;
    problems.extend(check_page(&browser, "/signin").await);
    sign_in(&browser, &app, "owner_a").await;
    let pages: Vec<String> = vec![
        "/integrations".into(),
        "/connections/salesforce".into(),
        "/connections/salesforce?status=logged_out".into(),
        "/connections/salesforce?kind=legacy&search=nothing-matches".into(),
        "/connections/salesforce/new".into(),
        format!("/connections/salesforce/{id}"),
        format!("/connections/salesforce/{legacy}"),
        format!("/connections/salesforce/{other}/delete"),
        "/connections/salesforce/conn_0000000000000000000000000000dead".into(),
        "/systems".into(),
        format!("/systems/{system}/connectors"),
        format!("/systems/{system}/publishing"),
        format!("/systems/{system}/loader"),
        "/deployments".into(),
        format!("/deployments/{deployment}"),
        format!("/deployments/{held}"),
        "/fleet".into(),
        "/fleet?state=drifted".into(),
        "/webhooks".into(),
        format!("/webhooks/{webhook}"),
        format!("/webhooks/{webhook}/delete"),
        "/users".into(),
        format!("/users/{viewer}/remove"),
        "/audit".into(),
        "/account".into(),
        "/account/sso".into(),
        "/account/two-factor".into(),
        "/account/notifications".into(),
    ];
    for path in &pages {
        browser.goto(&format!("{}{path}", app.base)).await;
        browser.find("main").await;
        problems.extend(check_page(&browser, path).await);
        checked.push(path.clone());
    }
    // The screenshots of #16's pages: the filtered table, a connection's activity.
    browser.set_width(1280, 900).await;
    browser.goto(&format!("{}/connections/salesforce?environment=production&sort=account_name", app.base)).await;
    browser.click(&format!("input[data-select][value='{id}']")).await;
    browser.screenshot("connections-filters-bulk").await;
    browser.goto(&format!("{}/connections/salesforce/{id}", app.base)).await;
    browser.script("document.getElementById('activity-title').scrollIntoView()").await;
    let timeline = browser.text(".timeline").await;
    assert!(timeline.contains("publishes for Web × Production"), "names, not ids: {timeline}");
    browser.screenshot("connection-activity").await;
    browser.set_width(390, 900).await;
    browser.goto(&format!("{}/connections/salesforce/{id}", app.base)).await;
    browser.script("document.getElementById('activity-title').scrollIntoView()").await;
    browser.screenshot("connection-activity-390px").await;
    browser.set_width(1280, 900).await;
    // #17's pages: the fleet matrix, and a deployment holding a drifted org.
    browser.goto(&format!("{}/fleet", app.base)).await;
    browser.find("td[data-state=drifted]").await;
    browser.screenshot("fleet").await;
    browser.goto(&format!("{}/deployments/{held}", app.base)).await;
    browser.find("#drifted-head").await;
    browser.screenshot("deployment-drifted").await;
    // #18's page: an endpoint's delivery log.
    browser.goto(&format!("{}/webhooks/{webhook}", app.base)).await;
    browser.find("table.deliveries").await;
    browser.screenshot("webhook-deliveries").await;
    // The bulk-delete confirmation: rows ticked with the header's box, then Delete….
    browser.goto(&format!("{}/connections/salesforce", app.base)).await;
    browser.click("input[data-select-all]").await;
    assert_eq!(browser.text("[data-bulk-count]").await, "3 selected");
    browser.click("#bulk button[value=delete]").await;
    browser.wait_for_text("h1", |t| t.starts_with("Delete 3 connections")).await;
    browser.screenshot("bulk-delete").await;
    problems.extend(check_page(&browser, "bulk delete confirmation").await);
    checked.push("bulk delete confirmation".into());

    // The operator's page, as the operator.
    let _ = browser.script("document.querySelector('form[action=\"/signout\"]')?.submit()").await;
    browser.wait_for_url(|u| u.contains("/signin")).await;
    sign_in(&browser, &app, "operator").await;
    browser.goto(&format!("{}/operator/accounts", app.base)).await;
    browser.find("main").await;
    problems.extend(check_page(&browser, "/operator/accounts").await);
    checked.push("/operator/accounts".into());

    assert!(problems.is_empty(), "{} problems on {} pages:\n{}", problems.len(), checked.len(), problems.join("\n"));
}
