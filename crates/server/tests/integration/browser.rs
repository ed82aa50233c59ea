//! The Admin Center in a real browser (issue #4): headless Chromium, driven through
//! chromedriver, against the app and the Salesforce org emulator on port 0. The screenshots
//! in `docs/screenshots/` come from these tests (`UPDATE_SCREENSHOTS=1`).

use testkit::webdriver::{self, Browser};
use testkit::{OAUTH_KEY, OAUTH_SECRET, TestApp, read_xlsx, spawn};

async fn sign_in(browser: &Browser, app: &TestApp, label: &str) {
    browser.goto(&format!("{}/", app.base)).await;
    browser.wait_for_url(|u| u.contains("/signin")).await;
    browser.type_into("#email", &format!("{label}@lightbridge.test")).await;
    browser.type_into("#password", &format!("password-{label}")).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url(|u| u.contains("/integrations")).await;
}

/// On the emulator's Salesforce pages: sign in as `username`, then Allow.
async fn salesforce_sign_in(browser: &Browser, username: &str) {
    browser.wait_for_url(|u| u.contains("/services/oauth2/authorize")).await;
    browser.type_into("#username", username).await;
    browser.type_into("#password", "emulator").await;
    browser.click("#Login").await;
    browser.click("#oaapprove").await;
}

async fn fill_oauth_form(browser: &Browser, name: &str) {
    browser.type_into("#name", name).await;
    browser.click("input[name=org_type][value=production]").await;
    browser.click("input[name=login_host][value=login]").await;
    browser.click("input[name=method][value=oauth]").await;
    browser.type_into("#consumer_key", OAUTH_KEY).await;
    browser.type_into("#consumer_secret", OAUTH_SECRET).await;
}

#[tokio::test]
async fn an_admin_connects_an_org_tests_saves_searches_and_deletes_in_the_browser() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;

    // Sign-in page, then the Integration Center offers Setup while there is no connection (F5).
    browser.goto(&format!("{}/signin", app.base)).await;
    browser.find("#email").await;
    browser.screenshot("signin").await;
    sign_in(&browser, &app, "admin_a").await;
    let tile = browser.text(".tile").await;
    assert!(tile.contains("Salesforce") && tile.contains("Setup"), "{tile}");
    browser.screenshot("integration-center").await;
    browser.click(".tile a.button").await;
    browser.wait_for_url(|u| u.ends_with("/connections/salesforce")).await;
    assert!(browser.text(".empty-state").await.contains("No Salesforce connections yet"));

    // F11: Test Connection through Salesforce's sign-in, as a user without Customize Application.
    browser.click("a.button.primary[href='/connections/salesforce/new']").await;
    fill_oauth_form(&browser, "Acme via OAuth").await;
    browser.screenshot("connection-page").await;
    // The OAuth sentence only while OAuth is chosen (#16 item 7: the JWT form said it too).
    let shown = "return getComputedStyle(document.querySelector('p.help .oauth-only')).display";
    assert_ne!(browser.script(shown).await, "none");
    browser.click("input[name=method][value=jwt]").await;
    assert_eq!(browser.script(shown).await, "none");
    browser.click("input[name=method][value=oauth]").await;
    browser.click("button[name=action][value=test]").await;
    salesforce_sign_in(&browser, "editor@acme.test").await;
    let steps = browser.wait_for_text(".steps", |t| t.contains("Customize Application")).await;
    assert!(steps.contains("found a problem"), "{steps}");
    let failed = browser.text(".step-failed").await;
    assert!(failed.contains("Customize Application permission") && failed.contains("How to fix"), "{failed}");
    assert_eq!(
        browser.script("return document.getElementById('name').value").await,
        "Acme via OAuth",
        "what was typed stays"
    );
    browser.screenshot("test-connection-failed").await;

    // The admin passes every step; nothing has been saved yet.
    browser.click("button[name=action][value=test]").await;
    salesforce_sign_in(&browser, "admin@acme.test").await;
    let steps = browser.wait_for_text(".steps", |t| t.contains("passed")).await;
    assert!(steps.contains("Test Connection passed") && !steps.contains("failed"), "{steps}");
    let (_, listed) = app.call("admin_a", reqwest::Method::GET, "/connections", None).await;
    assert_eq!(listed["total"], 0, "Test Connection saves nothing");

    // Save right after the passing test keeps its sign-in (#16 item 6): no second trip to
    // Salesforce, straight back to the table with the new row highlighted (F6, F10).
    assert!(browser.text(".tested-grant").await.contains("no second sign-in"));
    let authorizations =
        || app.em.requests().into_iter().filter(|r| r.path.contains("/services/oauth2/authorize")).count();
    let before = authorizations();
    browser.click("button[name=action][value=save]").await;
    browser.wait_for_url(|u| u.contains("/connections/salesforce?highlight=conn_")).await;
    assert_eq!(authorizations(), before, "Save did not sign in again");
    assert!(browser.text(".flash-success").await.contains("saved"));
    let row = browser.text("tr.highlight").await;
    for expected in ["Acme via OAuth", "conn_", "Production", "Acme Production", "admin@acme.test"] {
        assert!(row.contains(expected), "{expected} missing from the row: {row}");
    }
    let headers = browser.texts("thead th").await;
    assert_eq!(headers.len(), 11, "the select box, nine columns and the actions: {headers:?}");
    browser.screenshot("connections-table").await;

    // F9 Manage columns: hide "Created by"; the table and both exports leave it out.
    browser.click("details[data-columns] summary").await;
    browser.screenshot("manage-columns").await;
    browser.click("input[name=columns][value=created_by]").await;
    browser.click("details[data-columns] button.primary").await;
    browser.wait_for_text(".flash-success", |t| t.contains("Columns updated")).await;
    let headers = browser.texts("thead th").await;
    assert!(!headers.iter().any(|h| h.contains("Created by")) && headers.len() == 10, "{headers:?}");
    // F8 Export: CSV and XLSX of what the table shows.
    let csv_url = browser.script("return document.querySelector('[data-export=csv]').href").await;
    assert!(csv_url.as_str().unwrap_or_default().contains("format=csv"));
    browser.click("details.menu:not([data-columns]) summary").await;
    browser.click("[data-export=csv]").await;
    let csv = std::fs::read_to_string(browser.downloaded(".csv").await).expect("csv");
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("Connection ID,Environment,Account name,Creation date") && !header.contains("Created by"),
        "{header}"
    );
    let first = lines.next().expect("a row");
    assert!(first.contains("Production") && first.contains("Acme Production"), "{first}");
    browser.click("details.menu:not([data-columns]) summary").await;
    browser.click("[data-export=xlsx]").await;
    let xlsx = browser.downloaded(".xlsx").await;
    let read = read_xlsx(&xlsx);
    assert_eq!(read["headers"][2], "Account name", "{read}");
    assert_eq!(read["rows"][0][2], "Acme Production", "{read}");
    assert_eq!(read["types"][3], "datetime", "creation date is a real date: {read}");
    assert!(!read["headers"].to_string().contains("Created by"), "{read}");

    // F7: search by email narrows as you type, and the URL keeps it.
    browser.type_into("#search", "nobody@else").await;
    browser.wait_for_text("#results", |t| t.contains("No connection matches")).await;
    assert!(browser.url().await.contains("search=nobody"));
    browser.type_into("#search", "ADMIN@acme").await;
    browser.wait_for_text("#results", |t| t.contains("Acme via OAuth")).await;

    // F11: the name is checked as it is typed; bad input keeps what was typed and marks each field.
    browser.goto(&format!("{}/connections/salesforce/new", app.base)).await;
    browser.type_into("#name", "ACME VIA OAUTH").await;
    browser.wait_for_text("#name-error", |t| t.contains("already has this name")).await;
    browser.type_into("#name", "Acme JWT").await;
    browser.wait_for_text("#name-error", str::is_empty).await;
    browser.click("input[name=method][value=jwt]").await;
    browser.type_into("#consumer_key", "3MVG9Something").await;
    browser.type_into("#username", "admin@acme.test").await;
    browser.type_into("#private_key", "not a key").await;
    browser.click("input[name=login_host][value=mydomain]").await;
    browser.type_into("#my_domain", "https://acme.my.salesforce.com/some/path").await;
    browser.click("button[name=action][value=save]").await;
    browser.wait_for_text(".flash-error", |t| t.contains("need a fix")).await;
    let invalid = browser.texts(".field.invalid").await;
    assert!(
        invalid.iter().any(|t| t.contains("Private key")) && invalid.iter().any(|t| t.contains("Login host")),
        "{invalid:?}"
    );
    assert_eq!(browser.script("return document.getElementById('username').value").await, "admin@acme.test");
    assert_eq!(browser.script("return document.getElementById('private_key').value").await, "not a key");
    browser.screenshot("bad-input").await;
    browser.goto(&format!("{}/connections/salesforce?search=admin%40acme", app.base)).await;

    // F10 Delete: a confirmation naming the connection, then the revoke at Salesforce.
    app.em.clear_requests();
    browser.click("tr.highlight a.danger, tbody tr a.danger").await;
    let confirm = browser.text(".confirm").await;
    assert!(confirm.contains("Acme via OAuth") && confirm.contains("revoke"), "{confirm}");
    browser.click(".confirm button.danger").await;
    browser.wait_for_text(".flash", |t| t.contains("revoked")).await;
    assert!(
        app.em.requests().iter().any(|r| r.path.ends_with("/services/oauth2/revoke") && r.status == 200),
        "the emulator saw the revoke"
    );
    assert!(browser.text("main").await.contains("No Salesforce connections yet"));
}

#[tokio::test]
async fn viewers_see_no_changing_controls_and_pages_need_a_session() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;
    app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Acme JWT", "admin@acme.test"))).await;
    // Without a session every page sends the browser to sign in, and back afterwards.
    browser.goto(&format!("{}/connections/salesforce", app.base)).await;
    browser.wait_for_url(|u| u.contains("/signin?next=%2Fconnections%2Fsalesforce")).await;
    browser.type_into("#email", "viewer_a@lightbridge.test").await;
    browser.type_into("#password", "password-viewer_a").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url(|u| u.ends_with("/connections/salesforce")).await;
    let main = browser.text("main").await;
    assert!(main.contains("Acme JWT"), "{main}");
    assert!(browser.try_find("a[href='/connections/salesforce/new']").await.is_none(), "no Add for viewers");
    assert!(browser.try_find("a.danger").await.is_none(), "no Delete for viewers");
    assert!(browser.try_find("tbody a.button").await.is_some(), "View stays");
    // At 390 px the rows are cards (#16 item 2): nothing scrolls sideways, the table's frame
    // included, each value is beside its column's name, and the row's button is on screen.
    browser.set_width(390, 844).await;
    let fits = browser
        .script(
            "const w = document.querySelector('.table-wrap'); const b = document.querySelector('tbody a.button');\
             return document.documentElement.scrollWidth <= window.innerWidth + 1 && w.scrollWidth <= w.clientWidth + 1\
               && b.getBoundingClientRect().right <= window.innerWidth;",
        )
        .await;
    assert_eq!(fits, true, "no sideways scrolling at 390 px, and the row's actions on screen");
    let label = browser
        .script(
            "return getComputedStyle(document.querySelector('tbody td[data-column=environment]'), '::before').content",
        )
        .await;
    assert_eq!(label, "\"Environment\"", "each value beside its column's name");
    // The filters fold behind one button on a phone (#16), so the rows start high on the page.
    let shown = "return getComputedStyle(document.getElementById('table-filters')).display";
    assert_eq!(browser.script(shown).await, "none");
    browser.screenshot("connections-table-390px").await;
    browser.click("[data-filters-toggle]").await;
    assert_ne!(browser.script(shown).await, "none");
    assert_eq!(
        browser.script("return document.querySelector('[data-filters-toggle]').getAttribute('aria-expanded')").await,
        "true"
    );
}

/// Issue #16 (item 2): the connections table fits 1280 px with the default columns — new and
/// legacy rows, dates, ids and the row actions — without scrolling sideways.
#[tokio::test]
async fn the_connections_table_fits_1280_px() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;
    let names = ["Acme Production JWT for the EMEA content platform rollout", "Acme UAT"];
    for (name, user) in names.iter().map(|n| (*n, "admin@acme.test")) {
        let (status, _) = app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt(name, user))).await;
        assert_eq!(status, 201);
    }
    sign_in(&browser, &app, "admin_a").await;
    browser.set_width(1280, 900).await;
    browser.goto(&format!("{}/connections/salesforce", app.base)).await;
    let widths = browser
        .script(
            "const w = document.querySelector('.table-wrap');\
             return [w.scrollWidth, w.clientWidth, document.documentElement.scrollWidth, window.innerWidth];",
        )
        .await;
    let w: Vec<i64> = widths.as_array().expect("widths").iter().filter_map(serde_json::Value::as_i64).collect();
    assert!(w[0] <= w[1] && w[2] <= w[3], "table {} px in a {} px frame; page {} px in {} px", w[0], w[1], w[2], w[3]);
    browser.screenshot("connections-table-1280px").await;
}

/// Issue #16 (item 7): a long name without spaces wraps inside its cell instead of running
/// over the next one.
#[tokio::test]
async fn a_long_unbroken_name_stays_inside_its_cell() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;
    let long = format!("Acme{}", "X".repeat(70));
    let (status, _) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt(&long, "admin@acme.test"))).await;
    assert_eq!(status, 201);
    sign_in(&browser, &app, "admin_a").await;
    browser.set_width(1440, 900).await;
    browser.goto(&format!("{}/connections/salesforce", app.base)).await;
    let overflow = browser
        .script(
            "const a = document.querySelector('tbody a.name'); const td = a.closest('td');\
             return Math.round(a.getBoundingClientRect().right - td.getBoundingClientRect().right);",
        )
        .await;
    assert!(overflow.as_i64().is_some_and(|px| px <= 0), "the name runs {overflow} px past its cell");
}

#[tokio::test]
async fn the_connectors_tab_binds_a_legacy_connector_that_logs_out_and_reconnects_with_the_same_id() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;
    sign_in(&browser, &app, "admin_a").await;
    // A system, added on the Systems page.
    browser.goto(&format!("{}/systems", app.base)).await;
    browser.type_into("#system-name", "Sales Cloud (Lightning)").await;
    browser.click("form[action='/systems'] button").await;
    browser.wait_for_text(".flash-success", |t| t.contains("Sales Cloud (Lightning)")).await;
    browser.click("a[href$='/connectors']").await;
    // Off until the operator enables it: the tab says so and offers nothing else (F4).
    let off = browser.text("main").await;
    assert!(off.contains("Connectors are not enabled"), "{off}");
    assert!(
        browser.try_find("tbody").await.is_none() && browser.try_find("a[href*='connect=']").await.is_none(),
        "nothing else"
    );
    let account = app.accounts["A"].to_string();
    let (status, _) = app
        .call(
            "operator",
            reqwest::Method::PUT,
            &format!("/accounts/{account}/connectors"),
            Some(serde_json::json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    browser.goto(&browser.url().await).await;
    let environments = browser.texts("tbody th[scope=row]").await;
    assert_eq!(environments, ["Production", "Test", "Sandbox"]);
    browser.click("tr[data-environment=Production] a.button.primary").await;
    browser.type_into("#consumer_key", OAUTH_KEY).await;
    browser.type_into("#consumer_secret", OAUTH_SECRET).await;
    browser.click("#connect button.primary").await;
    salesforce_sign_in(&browser, "admin@acme.test").await;
    // Back on the tab it was connected from (item 10 of #16), the connector in its row.
    browser.wait_for_url(|u| u.ends_with("/connectors")).await;
    assert!(browser.text(".flash-success").await.contains("saved"));
    let bound = browser.text("tr[data-environment=Production]").await;
    assert!(bound.contains("Logged in") && bound.contains("Active"), "{bound}");
    let id = browser
        .script("return document.querySelector('tr[data-environment=Production] code.id').textContent")
        .await
        .as_str()
        .expect("id")
        .to_string();
    assert!(id.starts_with("conn_"), "{id}");
    let tab = browser.url().await;
    // Deactivate and activate again: the tab stays.
    browser.click("tr[data-environment=Production] form[action$='/activity'] button").await;
    browser.wait_for_text(".flash-success", |t| t.contains("deactivated")).await;
    assert_eq!(browser.url().await, tab);
    assert!(browser.text("tr[data-environment=Production]").await.contains("Inactive"));
    browser.click("tr[data-environment=Production] form[action$='/activity'] button").await;
    browser.wait_for_text(".flash-success", |t| t.starts_with("Connector activated")).await;
    assert_eq!(browser.url().await, tab);
    // In the table: a legacy row, Logged in and Active, without a creation date.
    browser.goto(&format!("{}/connections/salesforce", app.base)).await;
    let row = browser.text(&format!("tr[data-id='{id}']")).await;
    assert!(row.to_lowercase().contains("legacy") && row.contains("Logged in") && row.contains("Active"), "{row}");
    assert!(row.contains("Sales Cloud (Lightning) × Production"), "named by its system and environment: {row}");
    let created = browser.text(&format!("tr[data-id='{id}'] td[data-column=created_at]")).await;
    assert!(created.is_empty(), "creation date is for new connections only: {created:?}");
    browser.goto(&tab).await;
    browser.screenshot("connectors-tab").await;

    // Salesforce revokes the user's tokens: the next check shows Logged out (product.md §4).
    app.em.revoke_user("admin@acme.test").expect("revoke");
    browser.goto(&format!("{}/connections/salesforce/{id}", app.base)).await;
    browser.click("form[action$='/check'] button").await;
    browser.wait_for_text(".flash", |t| t.contains("Logged out")).await;
    // Messages name a legacy connector by its system × environment, not by its id (#16 item 10).
    let said = browser.text(".flash").await;
    assert!(said.starts_with("Sales Cloud (Lightning) × Production connector: Logged out"), "{said}");
    browser.goto(&format!("{}/connections/salesforce", app.base)).await;
    let row = browser.text(&format!("tr[data-id='{id}']")).await;
    assert!(row.contains("Logged out"), "{row}");
    browser.screenshot("legacy-logged-out").await;

    // F10 Reconnect from the table: the same sign-in, the same connection id, Logged in again.
    browser.click(&format!("tr[data-id='{id}'] form[action$='/reconnect'] button")).await;
    salesforce_sign_in(&browser, "admin@acme.test").await;
    browser.wait_for_url(|u| u.contains(&format!("highlight={id}"))).await;
    assert!(browser.text(".flash-success").await.contains("Reconnected"));
    let row = browser.text("tr.highlight").await;
    assert!(row.contains(&id) && row.contains("Logged in"), "{row}");
    let (_, listed) = app.call("admin_a", reqwest::Method::GET, "/connections", None).await;
    assert_eq!(listed["total"], 1, "still one connection");
    // Reconnect from the Connectors tab comes back to the tab (#16 item 10).
    browser.goto(&tab).await;
    browser.click("tr[data-environment=Production] form[action$='/reconnect'] button").await;
    salesforce_sign_in(&browser, "admin@acme.test").await;
    browser.wait_for_url(|u| u.ends_with("/connectors")).await;
    assert_eq!(browser.url().await, tab);
    let said = browser.text(".flash-success").await;
    assert!(said.contains("Reconnected “Sales Cloud (Lightning) × Production connector”"), "{said}");
}

#[tokio::test]
async fn an_owner_adds_a_person_who_signs_in_and_the_audit_log_shows_and_exports_it() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;
    sign_in(&browser, &app, "owner_a").await;
    browser.click("nav a[href='/users']").await;
    browser.type_into("#new-email", "new.person@a.example").await;
    browser.script("document.getElementById('new-role').value = 'editor'").await;
    browser.click(".add-user button.primary").await;
    let link = browser.text("[data-invitation-link]").await;
    assert!(link.contains("/invitations/"), "{link}");
    assert!(browser.text("tr[data-invited='new.person@a.example']").await.contains("editor"));
    browser.screenshot("users").await;
    // The signed-in owner is marked in the list.
    let owner_row = "tr[data-email='owner_a@lightbridge.test']";
    assert!(browser.text(owner_row).await.contains("(you)"));

    // The audit log shows who added whom, filters by action, and exports it.
    browser.click("nav a[href='/audit']").await;
    let log = browser.text("tbody").await;
    assert!(
        log.contains("user.invited")
            && log.contains("new.person@a.example")
            && log.contains("owner_a@lightbridge.test"),
        "{log}"
    );
    browser.script("document.getElementById('action').value = 'session.signed_in'").await;
    browser.click(".filters button.primary").await;
    browser.wait_for_url(|u| u.contains("action=session.signed_in")).await;
    let filtered = browser.text("tbody").await;
    assert!(filtered.contains("session.signed_in") && !filtered.contains("user.invited"), "{filtered}");
    browser.screenshot("audit-log").await;
    browser.click(".page-head a[download]").await;
    let csv = std::fs::read_to_string(browser.downloaded("audit-log.csv").await).expect("csv");
    assert!(csv.contains("When (UTC),Who,Via,Action,Target,Detail,From") && csv.contains("session.signed_in"), "{csv}");

    // The new person opens the link, chooses their own password and is in, as an editor.
    browser.click(".who button.link").await;
    browser.wait_for_url(|u| u.contains("/signin")).await;
    browser.goto(&link).await;
    browser.type_into("#name", "New Person").await;
    browser.type_into("#password", "plum-lantern-orbit-77").await;
    browser.type_into("#confirm", "plum-lantern-orbit-77").await;
    browser.click(".new-person button[type=submit]").await;
    browser.wait_for_url(|u| u.contains("/integrations")).await;
    assert!(browser.text(".who").await.contains("editor"));
    // They change it on their account page, which lists this browser.
    browser.click(".who a.user").await;
    browser.wait_for_url(|u| u.ends_with("/account")).await;
    assert!(browser.text("tr[data-current]").await.contains("this browser"));
    browser.type_into("#current-password", "plum-lantern-orbit-77").await;
    browser.type_into("#new-password", "tangerine-harbour-velvet-42").await;
    browser.type_into("#confirm-password", "tangerine-harbour-velvet-42").await;
    browser.click(".change-password button[type=submit]").await;
    browser.wait_for_text(".flash-success", |t| t.contains("password is changed")).await;
    browser.screenshot("account").await;
    assert!(browser.try_find("nav a[href='/users']").await.is_none(), "editors do not manage people");
    browser.goto(&format!("{}/users", app.base)).await;
    assert!(browser.text("main").await.contains("Not allowed"));
}

#[tokio::test]
async fn a_release_is_published_from_the_deployments_page_followed_live_and_rolled_back() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;
    let (_, created) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Acme JWT", "admin@acme.test"))).await;
    let connection = created["id"].as_str().expect("id").to_string();
    let (_, system) =
        app.call("admin_a", reqwest::Method::POST, "/systems", Some(serde_json::json!({"name": "Sales Cloud"}))).await;
    let system = system["id"].as_str().expect("system").to_string();
    let (_, envs) = app.call("admin_a", reqwest::Method::GET, "/environments", None).await;
    let env = envs[0]["id"].as_str().expect("env").to_string();
    let zip = testkit::bundle_zip(&[("player.js", b"window.player = 1;")]);
    let zip_path = std::env::temp_dir().join(format!("lightbridge-release-{}.zip", domain::UserId::generate()));
    std::fs::write(&zip_path, zip).expect("zip");
    let _ = env;

    // An admin binds the connection to Sales Cloud × Production on the system's Publishing tab.
    sign_in(&browser, &app, "admin_a").await;
    browser.goto(&format!("{}/systems/{system}/publishing", app.base)).await;
    browser.click("tr[data-environment=Production] .bind-form button").await;
    browser.wait_for_text(".flash-success", |t| t.contains("publishes here now")).await;
    assert!(browser.text("tr[data-environment=Production]").await.contains("Acme JWT"));
    browser.screenshot("publishing-tab").await;
    browser.click(".who button.link").await;
    browser.wait_for_url(|u| u.contains("/signin")).await;

    // An editor publishes.
    browser.type_into("#email", "editor_a@lightbridge.test").await;
    browser.type_into("#password", "password-editor_a").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url(|u| u.contains("/integrations")).await;
    browser.click("nav a[href='/deployments']").await;
    browser.type_into("#resource_name", "Player_Assets").await;
    browser.type_into("#file", &zip_path.display().to_string()).await;
    browser.click(".publish-form button.primary").await;
    browser.wait_for_url(|u| u.contains("/deployments/dep_")).await;
    // The page follows the deployment until it is done.
    browser.wait_for_text("[data-status]", |t| t == "succeeded").await;
    let row = browser.text(&format!("tr[data-connection='{connection}']")).await;
    assert!(
        row.contains("Acme JWT")
            && row.contains("Acme Production · admin@acme.test")
            && row.contains("created")
            && row.contains("/resource/"),
        "the connection, its org and user: {row}"
    );
    browser.screenshot("deployment").await;
    let served = browser.script("return document.querySelector('td a[href*=\"/resource/\"]').href").await;
    let served = served.as_str().expect("url").to_string();
    assert_eq!(
        reqwest::get(format!("{served}/player.js")).await.expect("get").text().await.expect("body"),
        "window.player = 1;"
    );

    // The environment's only release: nothing to roll back to.
    assert!(browser.try_find("form[action$='/rollback']").await.is_none(), "no rollback on the current release");
    let first = browser.url().await;
    // A second release, then back to the first: a new deployment, nothing to upload.
    let second = testkit::bundle_zip(&[("player.js", b"window.player = 2;")]);
    std::fs::write(&zip_path, second).expect("zip");
    browser.click("a[href='/deployments']").await;
    browser.type_into("#resource_name", "Player_Assets").await;
    browser.type_into("#file", &zip_path.display().to_string()).await;
    browser.click(".publish-form button.primary").await;
    browser.wait_for_url(|u| u.contains("/deployments/dep_") && u != first).await;
    browser.wait_for_text("[data-status]", |t| t == "succeeded").await;
    browser.goto(&first).await;
    browser.click("form[action$='/rollback'] button").await;
    browser.wait_for_text(".flash-success", |t| t.contains("Rolling back")).await;
    browser.wait_for_text("[data-status]", |t| t == "succeeded").await;
    assert!(browser.text(&format!("tr[data-connection='{connection}']")).await.contains("updated"));
    browser.click("a[href='/deployments']").await;
    let history = browser.texts("tbody tr").await;
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(
        history[0].to_lowercase().contains("rollback") && history[0].contains("editor_a@lightbridge.test"),
        "{history:?}"
    );
    // Linked from the connection's page (which shows an editor no changing controls).
    browser.goto(&format!("{}/connections/salesforce/{connection}", app.base)).await;
    assert!(browser.try_find("button[value=save]").await.is_none() && browser.try_find("a.danger").await.is_none());
    browser.click(&format!("a[href='/deployments?connection={connection}']")).await;
    browser.wait_for_url(|u| u.contains("connection=conn_")).await;

    browser.goto(&format!("{}/deployments?connection={connection}", app.base)).await;
    assert_eq!(browser.texts("tbody tr").await.len(), 3);
    let _ = std::fs::remove_file(zip_path);
}

/// The code an authenticator app shows for a base32 secret at the server's time: made by an
/// independent RFC 6238 implementation, not the server's.
fn authenticator_code(app: &TestApp, secret: &str) -> String {
    let key = data_encoding::BASE32_NOPAD.decode(secret.trim().as_bytes()).expect("base32");
    let now = u64::try_from(domain::Clock::now_ms(&*app.clock) / 1000).expect("time");
    totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, &key, now)
}

/// Reads a QR code out of a PNG with an independent decoder (`rqrr`).
fn decode_qr(png_bytes: &[u8]) -> String {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes)).read_info().expect("png");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("frame");
    let channels = info.color_type.samples();
    let (width, height) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        let at = (y * info.line_size) + x * channels;
        pixels[at]
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the picture");
    grids[0].decode().expect("decodes").1
}

#[tokio::test]
async fn a_person_sets_up_two_factor_by_the_qr_code_and_signs_in_with_a_code_and_a_recovery_code() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;
    sign_in(&browser, &app, "editor_a").await;
    browser.click(".who a.user").await;
    browser.wait_for_url(|u| u.ends_with("/account")).await;
    assert!(browser.text(".two-factor").await.contains("Off."));
    browser.click(".two-factor a.button").await;
    browser.wait_for_url(|u| u.ends_with("/account/two-factor")).await;
    browser.click("form[action='/account/two-factor/start'] button").await;
    let secret = browser.text("#totp-secret").await;
    // What a phone would scan: the QR code as drawn, read by a decoder that is not ours.
    let scanned = decode_qr(&browser.element_png("figure.qr svg").await);
    assert!(scanned.starts_with("otpauth://totp/Lightbridge:editor_a%40lightbridge.test?"), "{scanned}");
    assert!(scanned.contains(&format!("secret={secret}")), "{scanned} holds {secret}");
    browser.screenshot("two-factor-setup").await;
    browser.type_into("#code", &authenticator_code(&app, &secret)).await;
    browser.click("form[action='/account/two-factor/confirm'] button").await;
    browser.wait_for_text(".flash-success", |t| t.contains("Two-factor sign-in is on")).await;
    let codes = browser.texts(".recovery-codes code").await;
    assert_eq!(codes.len(), 10, "{codes:?}");

    // Signing in now asks for a code after the password.
    browser.click(".who button.link").await;
    browser.wait_for_url(|u| u.contains("/signin")).await;
    browser.type_into("#email", "editor_a@lightbridge.test").await;
    browser.type_into("#password", "password-editor_a").await;
    browser.click("button[type=submit]").await;
    browser.find("#code").await;
    browser.type_into("#code", "000000").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text(".flash-error", |t| t.contains("wrong")).await;
    app.clock.advance(std::time::Duration::from_secs(30));
    browser.type_into("#code", &authenticator_code(&app, &secret)).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url(|u| u.contains("/integrations")).await;

    // A recovery code works in its place, once.
    browser.click(".who button.link").await;
    browser.wait_for_url(|u| u.contains("/signin")).await;
    browser.type_into("#email", "editor_a@lightbridge.test").await;
    browser.type_into("#password", "password-editor_a").await;
    browser.click("button[type=submit]").await;
    browser.type_into("#code", &codes[0]).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url(|u| u.contains("/integrations")).await;
    browser.click(".who a.user").await;
    assert!(browser.text(".two-factor").await.contains("9 recovery code(s) left"));
}

#[tokio::test]
async fn a_person_signs_in_with_single_sign_on_through_the_providers_own_login_page() {
    let Some(browser) = webdriver::launch().await else { return };
    let (app, _provider) = crate::sso::app_with_provider().await;
    browser.goto(&format!("{}/signin?next=%2Faccount", app.base)).await;
    browser.type_into("#sso-email", "editor.eli@acme.example").await;
    browser.click("form.sso button[type=submit]").await;
    // The provider's own pages (oidc-provider's), not ours: wait for the browser to get there
    // first (our sign-in page has a field named `password` too, which a quick look would find).
    let issuer = _provider.proxy.issuer.clone();
    browser.wait_for_url(|u| u.starts_with(&issuer)).await;
    browser.find("input[name=password]").await;
    assert_eq!(
        browser.script("return document.querySelector('input[name=login]').value").await,
        "editor.eli@acme.example"
    );
    browser.type_into("input[name=password]", "anything").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("button[type=submit]", |t| t.contains("Continue")).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url(|u| u.ends_with("/account")).await;
    let who = browser.text(".who").await;
    assert!(who.contains("editor.eli@acme.example") && who.contains("editor"), "{who}");
}

/// Issue #14: before a sixth sign-in of the same Salesforce user through the same app, both
/// sign-in forms — a new connection's and a legacy connector's first — say which connection
/// Salesforce would revoke.
#[tokio::test]
async fn both_sign_in_forms_warn_before_a_sixth_approval_of_the_same_user_and_app() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    for n in 1..=5 {
        let body = serde_json::json!({"name": format!("Org view {n}"), "org_type": "production", "login_host": "login",
                                      "consumer_key": OAUTH_KEY, "consumer_secret": OAUTH_SECRET});
        let callback = app
            .oauth_through_salesforce(&cookie, &csrf, "/api/v1/connections/oauth/start", body, "admin@acme.test")
            .await;
        let (status, saved) = app.browser(&cookie, None, reqwest::Method::GET, &callback, None).await;
        assert_eq!(status, 201, "{saved}");
    }
    sign_in(&browser, &app, "admin_a").await;
    browser.goto(&format!("{}/connections/salesforce/new", app.base)).await;
    browser.click("input[name=method][value=oauth]").await;
    browser.type_into("#consumer_key", OAUTH_KEY).await;
    let warning = browser.wait_for_text("#approval-warning", |t| t.contains("Org view 1")).await;
    assert!(warning.contains("admin@acme.test"), "{warning}");

    let account = app.accounts["A"].to_string();
    let path = format!("/accounts/{account}/connectors");
    let (status, _) =
        app.call("operator", reqwest::Method::PUT, &path, Some(serde_json::json!({"enabled": true}))).await;
    assert_eq!(status, 200);
    browser.goto(&format!("{}/systems", app.base)).await;
    browser.type_into("#system-name", "Service Cloud").await;
    browser.click("form[action='/systems'] button").await;
    browser.wait_for_text(".flash-success", |t| t.contains("Service Cloud")).await;
    browser.click("a[href$='/connectors']").await;
    browser.click("tr[data-environment=Production] a.button.primary").await;
    browser.type_into("#consumer_key", OAUTH_KEY).await;
    let warning = browser.wait_for_text("#approval-warning", |t| t.contains("Org view 1")).await;
    assert!(warning.contains("JWT"), "and how to avoid it: {warning}");
}

/// A server on 127.0.0.1 the player calls back to: answers `pong` to anyone (CORS allowed).
async fn callback_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let reply = "HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\npong";
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    origin
}

/// The page's body attribute `name` once the stand-in has run every item (15 s at most).
async fn body_data(browser: &Browser, name: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let ready = browser.script("return document.body ? document.body.dataset.auraReady || '' : ''").await;
        let value = browser.script(&format!("return document.body.dataset.{name} || ''")).await;
        let value = value.as_str().unwrap_or_default().to_string();
        if ready == "true" && (!value.is_empty() || started.elapsed() > std::time::Duration::from_secs(3)) {
            return value;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "the page never finished loading");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Issue #15's acceptance: the published player runs in the emulator's Lightning page only
/// once the loader is deployed, and its call-back works only through a CSP Trusted Site.
#[tokio::test]
async fn the_loader_runs_the_published_player_on_a_lightning_page_and_its_trusted_site_lets_it_call_back() {
    let Some(browser) = webdriver::launch().await else { return };
    let app = spawn().await;
    app.em.set_deploy_time(std::time::Duration::from_millis(100));
    let origin = callback_server().await;
    let body = serde_json::json!({"name": "Acme (client credentials)", "org_type": "production", "login_host": app.em.base_url(),
        "auth": {"method": "client_credentials", "consumer_key": testkit::KEY, "consumer_secret": testkit::SECRET}});
    let (status, saved) = app.call("admin_a", reqwest::Method::POST, "/connections", Some(body)).await;
    assert_eq!(status, 201, "{saved}");
    let connection = saved["id"].as_str().expect("id").to_string();
    let (_, system) =
        app.call("admin_a", reqwest::Method::POST, "/systems", Some(serde_json::json!({"name": "Sales Cloud"}))).await;
    let system = system["id"].as_str().expect("system").to_string();
    let (_, envs) = app.call("admin_a", reqwest::Method::GET, "/environments", None).await;
    let env = envs[0]["id"].as_str().expect("env").to_string();
    let bind = format!("/systems/{system}/environments/{env}/connections/{connection}");
    assert_eq!(app.call("admin_a", reqwest::Method::PUT, &bind, None).await.0, 204);
    let player = format!(
        "document.body.insertAdjacentHTML('beforeend', '<p id=\"player-marker\">Player loaded</p>');\n\
         fetch('{origin}/ping').then(function (r) {{ return r.text(); }})\n\
           .then(function (t) {{ document.body.dataset.callback = 'ok:' + t;\n\
             document.body.insertAdjacentHTML('beforeend', '<p>Call-back to {origin} answered: ' + t + '</p>'); }})\n\
           .catch(function () {{ document.body.dataset.callback = 'blocked'; }});\n"
    );
    let files: Vec<(&str, &[u8])> = vec![("player.js", player.as_bytes())];
    let publish = |with_loader: bool| {
        let (app, system, env, files) = (&app, system.clone(), env.clone(), files.clone());
        async move {
            let started = if with_loader {
                testkit::deploy_with_loader(app, "admin_a", &system, &env, "Player", &files).await
            } else {
                testkit::deploy(app, "admin_a", &system, &env, "Player", &files).await
            };
            let done = testkit::finished(app, "admin_a", started["id"].as_str().expect("id")).await;
            assert_eq!(done["status"], "succeeded", "{done}");
        }
    };
    let token = {
        let form =
            [("grant_type", "client_credentials"), ("client_id", testkit::KEY), ("client_secret", testkit::SECRET)];
        let reply: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/services/oauth2/token", app.em.base_url()))
            .form(&form)
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        reply["access_token"].as_str().expect("access token").to_string()
    };
    let home = format!("{}/secur/frontdoor.jsp?sid={token}&retURL=/lightning/page/home", app.em.base_url());

    // The resource alone: Lightning never runs it.
    publish(false).await;
    browser.goto(&home).await;
    browser.wait_for_url(|u| u.ends_with("/lightning/page/home")).await;
    assert_eq!(body_data(&browser, "callback").await, "", "no loader, no player");
    assert!(browser.try_find("#player-marker").await.is_none());

    // The loader with the player's origin trusted: it runs, and its call-back gets through.
    let settings = serde_json::json!({"scripts": ["player.js"], "trusted_sites": [origin.clone()]});
    let path = format!("/systems/{system}/loader");
    assert_eq!(app.call("admin_a", reqwest::Method::PUT, &path, Some(settings)).await.0, 200);
    publish(true).await;
    browser.goto(&home).await;
    assert_eq!(body_data(&browser, "callback").await, "ok:pong");
    assert_eq!(browser.text("#player-marker").await, "Player loaded");
    browser.screenshot("lightning-loader").await;
    // Only in the chosen apps: Service (no utility bar, not chosen) never runs it.
    let service = format!("{}/lightning/app/standard__LightningService", app.em.base_url());
    browser.goto(&service).await;
    browser.wait_for_url(|u| u.ends_with("/lightning/app/standard__LightningService")).await;
    assert_eq!(browser.text("#app").await, "Service");
    assert_eq!(body_data(&browser, "callback").await, "", "not in an app the loader is not in");
    assert!(browser.try_find("#player-marker").await.is_none());

    // Without the trusted site, the page's policy blocks the call-back, as Lightning's would.
    let settings = serde_json::json!({"scripts": ["player.js"], "trusted_sites": []});
    assert_eq!(app.call("admin_a", reqwest::Method::PUT, &path, Some(settings)).await.0, 200);
    publish(true).await;
    browser.goto(&home).await;
    assert_eq!(body_data(&browser, "callback").await, "blocked");
    assert_eq!(browser.text("#player-marker").await, "Player loaded");

    // The Loader tab on a phone: the form and the orgs' table fit (the table scrolls in its
    // frame, the page does not).
    sign_in(&browser, &app, "admin_a").await;
    browser.set_width(390, 844).await;
    browser.goto(&format!("{}/systems/{system}/loader", app.base)).await;
    assert!(browser.text("main").await.contains("In place"));
    let overflow = browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1").await;
    assert_eq!(overflow, true, "the Loader tab does not scroll sideways at 390 px");
    browser.screenshot("loader-tab-390px").await;
}
