//! Systems, environments and legacy connectors (F4) through the API, against the emulator.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{OAUTH_KEY, OAUTH_SECRET, TestApp, spawn};

async fn system(app: &TestApp, name: &str) -> String {
    let (status, created) = app.call("admin_a", Method::POST, "/systems", Some(json!({"name": name}))).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_string()
}

async fn environment_id(app: &TestApp, name: &str) -> String {
    let (_, envs) = app.call("admin_a", Method::GET, "/environments", None).await;
    envs.as_array()
        .expect("list")
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["id"].as_str())
        .expect("environment")
        .to_string()
}

fn connector_body(environment_id: &str) -> Value {
    json!({"environment_id": environment_id, "org_type": "production", "login_host": "login",
           "consumer_key": OAUTH_KEY, "consumer_secret": OAUTH_SECRET})
}

#[tokio::test]
async fn systems_and_environments_are_kept_per_account_with_clear_refusals() {
    let app = spawn().await;
    let (_, envs) = app.call("viewer_a", Method::GET, "/environments", None).await;
    let names: Vec<_> = envs.as_array().expect("list").iter().map(|e| e["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["Production", "Test", "Sandbox"], "every account starts with the three built-in ones");
    let id = system(&app, "Sales Cloud (Lightning)").await;
    let (status, dup) =
        app.call("admin_a", Method::POST, "/systems", Some(json!({"name": "sales cloud (LIGHTNING)"}))).await;
    assert_eq!((status, dup["error"]["code"].as_str()), (409, Some("conflict")), "{dup}");
    let (status, bad) = app.call("admin_a", Method::POST, "/systems", Some(json!({"name": "  "}))).await;
    assert_eq!((status, bad["error"]["fields"][0]["field"].as_str()), (422, Some("name")), "{bad}");
    let (status, renamed) =
        app.call("admin_a", Method::PATCH, &format!("/systems/{id}"), Some(json!({"name": "Service Cloud"}))).await;
    assert_eq!((status, renamed["name"].as_str()), (200, Some("Service Cloud")), "{renamed}");
    let (status, uat) = app.call("admin_a", Method::POST, "/environments", Some(json!({"name": "UAT"}))).await;
    assert_eq!(status, 201, "{uat}");
    let (status, refused) = app
        .call("admin_a", Method::DELETE, &format!("/environments/{}", environment_id(&app, "Production").await), None)
        .await;
    assert_eq!(status, 409, "built-in environments stay: {refused}");
    let (status, _) =
        app.call("admin_a", Method::DELETE, &format!("/environments/{}", uat["id"].as_str().expect("id")), None).await;
    assert_eq!(status, 204);
    // Viewers look but do not change; another account sees nothing.
    let (status, _) = app.call("viewer_a", Method::POST, "/systems", Some(json!({"name": "Nope"}))).await;
    assert_eq!(status, 403);
    let (_, listed) = app.call("viewer_a", Method::GET, "/systems", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let (_, theirs) = app.call("admin_b", Method::GET, "/systems", None).await;
    assert_eq!(theirs.as_array().map(Vec::len), Some(0));
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=system.renamed", None).await;
    assert_eq!(log["items"][0]["detail"], "renamed from \"Sales Cloud (Lightning)\"");
}

#[tokio::test]
async fn connectors_stay_off_until_the_operator_enables_them_for_the_account() {
    let app = spawn().await;
    let sys = system(&app, "Sales Cloud").await;
    let production = environment_id(&app, "Production").await;
    let (_, tab) = app.call("admin_a", Method::GET, &format!("/systems/{sys}/connectors"), None).await;
    assert_eq!((tab["enabled"].as_bool(), tab["rows"].as_array().map(Vec::len)), (Some(false), Some(0)), "{tab}");
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let (status, off) = app
        .browser(
            &cookie,
            Some(&csrf),
            Method::POST,
            &format!("/api/v1/systems/{sys}/connectors"),
            Some(connector_body(&production)),
        )
        .await;
    assert_eq!((status, off["error"]["code"].as_str()), (403, Some("connectors_disabled")), "{off}");
    // Only the operator flips the switch.
    let account = app.accounts["A"].to_string();
    let path = format!("/accounts/{account}/connectors");
    let (status, _) = app.call("owner_a", Method::PUT, &path, Some(json!({"enabled": true}))).await;
    assert_eq!(status, 403, "account owners cannot enable it themselves");
    let (status, switched) = app.call("operator", Method::PUT, &path, Some(json!({"enabled": true}))).await;
    assert_eq!((status, switched["connectors_enabled"].as_bool()), (200, Some(true)), "{switched}");
    let (_, accounts) = app.call("operator", Method::GET, "/accounts", None).await;
    assert_eq!(accounts.as_array().map(Vec::len), Some(2));
    let (status, _) = app.call("admin_a", Method::GET, "/accounts", None).await;
    assert_eq!(status, 403);
    let (_, me) = app.call("viewer_a", Method::GET, "/me", None).await;
    assert_eq!(me["connectors_enabled"], true);
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=account.connectors_enabled", None).await;
    assert_eq!(log["items"][0]["actor"], "operator@lightbridge.test", "the account's log shows the operator's change");
}

#[tokio::test]
async fn the_connectors_tab_binds_a_legacy_connector_to_an_environment_and_manages_it() {
    let app = spawn().await;
    let account = app.accounts["A"].to_string();
    app.call("operator", Method::PUT, &format!("/accounts/{account}/connectors"), Some(json!({"enabled": true}))).await;
    let sys = system(&app, "Sales Cloud").await;
    let test_env = environment_id(&app, "Test").await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let start = format!("/api/v1/systems/{sys}/connectors");
    let callback =
        app.oauth_through_salesforce(&cookie, &csrf, &start, connector_body(&test_env), "admin@acme.test").await;
    let (status, saved) = app.browser(&cookie, None, Method::GET, &callback, None).await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(
        (saved["legacy"].as_bool(), saved["system_id"].as_str(), saved["environment_id"].as_str()),
        (Some(true), Some(sys.as_str()), Some(test_env.as_str()))
    );
    assert_eq!(
        (saved["connection_status"].as_str(), saved["activity_status"].as_str()),
        (Some("Logged in"), Some("Active"))
    );
    assert_eq!(saved["created_at"], Value::Null, "new-only columns are empty on legacy rows (F6)");
    let id = saved["id"].as_str().expect("id").to_string();

    // The tab: one row per environment, the connector on its own.
    let (_, tab) = app.call("viewer_a", Method::GET, &format!("/systems/{sys}/connectors"), None).await;
    let rows = tab["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    let bound: Vec<_> = rows.iter().filter(|r| r["connector"].is_object()).collect();
    assert_eq!((bound.len(), bound[0]["environment"]["name"].as_str()), (1, Some("Test")));

    // One connector per system × environment.
    let (status, taken) =
        app.browser(&cookie, Some(&csrf), Method::POST, &start, Some(connector_body(&test_env))).await;
    assert_eq!(status, 409, "{taken}");
    // Deactivate without deleting; then the system cannot go while its connector exists.
    let (status, off) =
        app.call("admin_a", Method::PATCH, &format!("/connections/{id}"), Some(json!({"active": false}))).await;
    assert_eq!((status, off["activity_status"].as_str()), (200, Some("Inactive")), "{off}");
    let (status, named) =
        app.call("admin_a", Method::PATCH, &format!("/connections/{id}"), Some(json!({"name": "x"}))).await;
    assert_eq!(status, 422, "legacy connectors have no name: {named}");
    let (status, _) = app.call("admin_a", Method::DELETE, &format!("/systems/{sys}"), None).await;
    assert_eq!(status, 409);
    // Remove: revoked at Salesforce, the slot is free again, and so is the system.
    let (status, removed) = app.call("admin_a", Method::DELETE, &format!("/connections/{id}"), None).await;
    assert_eq!((status, removed["revoked"].as_bool()), (200, Some(true)), "{removed}");
    let (status, _) = app.call("admin_a", Method::DELETE, &format!("/systems/{sys}"), None).await;
    assert_eq!(status, 204);
}

/// Issue #15: a system's loader settings — on, changed, refused with every fault named, kept
/// in the account, off.
#[tokio::test]
async fn a_systems_loader_settings_are_set_by_admins_with_every_fault_named() {
    let app = spawn().await;
    let sys = system(&app, "Sales Cloud").await;
    let path = format!("/systems/{sys}/loader");
    let (status, off) = app.call("viewer_a", Method::GET, &path, None).await;
    assert_eq!((status, off["enabled"].as_bool()), (200, Some(false)), "{off}");
    let bad = json!({"scripts": ["../escape.js", "ok.js"], "trusted_sites": ["http://api.example.com", "https://x.example/path"], "apps": ["Sales App"]});
    let (status, refused) = app.call("admin_a", Method::PUT, &path, Some(bad)).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("invalid")), "{refused}");
    let fields: Vec<&str> =
        refused["error"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    assert_eq!(fields, ["apps", "scripts", "trusted_sites", "trusted_sites"], "every fault, by field: {refused}");
    let good = json!({"scripts": ["player.js", " js/extra.js "], "styles": ["css/p.css"], "trusted_sites": ["https://api.example.com"]});
    let (status, on) = app.call("admin_a", Method::PUT, &path, Some(good.clone())).await;
    assert_eq!((status, on["enabled"].as_bool()), (200, Some(true)), "{on}");
    assert_eq!(on["scripts"], json!(["player.js", "js/extra.js"]), "trimmed");
    assert_eq!(on["apps"], json!(["standard__LightningSales"]), "no app named: the standard Sales app");
    let (_, two) = app
        .call(
            "admin_a",
            Method::PUT,
            &path,
            Some(json!({"scripts": ["player.js"], "apps": ["standard__LightningSales", "Field_Ops"]})),
        )
        .await;
    assert_eq!(two["apps"], json!(["standard__LightningSales", "Field_Ops"]), "{two}");
    assert_eq!(on["updated_by"], "admin_a@lightbridge.test");
    let (status, _) = app.call("editor_a", Method::PUT, &path, Some(good.clone())).await;
    assert_eq!(status, 403, "admins and owners only");
    let (status, _) = app.call("admin_b", Method::GET, &path, None).await;
    assert_eq!(status, 404, "another account's system");
    let (status, _) = app.call("admin_b", Method::PUT, &path, Some(good)).await;
    assert_eq!(status, 404);
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=loader.turned_on", None).await;
    assert!(log["items"][0]["detail"].as_str().expect("detail").contains("https://api.example.com"), "{log}");
    let (status, _) = app.call("admin_a", Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call("admin_a", Method::DELETE, &path, None).await;
    assert_eq!(status, 404, "already off");
    let (_, off) = app.call("admin_a", Method::GET, &path, None).await;
    assert_eq!(off["enabled"], false);
}

/// Issue #16 (item 8): the operator signs in to an accounts page (not "Not allowed"): each
/// account's connections, people and last sign-in, and its Connectors switch, which needed the
/// CLI before. Nobody else sees it.
#[tokio::test]
async fn the_operator_lands_on_the_accounts_page_and_switches_connectors_there() {
    let app = spawn().await;
    app.call("admin_a", Method::POST, "/connections", Some(app.jwt("Acme JWT", "admin@acme.test"))).await;
    let (cookie, csrf) = app.sign_in("operator").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let get = |path: &str, cookie: &str| http.get(format!("{}{path}", app.base)).header("cookie", cookie).send();
    let home = get("/integrations", &cookie).await.expect("home");
    assert_eq!((home.status().as_u16(), home.headers()["location"].to_str().ok()), (303, Some("/operator/accounts")));
    let page = get("/operator/accounts", &cookie).await.expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let a = app.accounts["A"].to_string();
    let row =
        html.split(&format!("data-account=\"{a}\"")).nth(1).and_then(|r| r.split("</tr>").next()).expect("A's row");
    assert!(
        row.contains("<td>1</td>") && row.contains("<td>5</td>") && row.contains(">Off<"),
        "1 connection, 5 people: {row}"
    );
    assert!(html.contains("data-account=\"") && html.matches("data-account=").count() >= 2, "every account");
    assert!(
        html.contains(">Accounts</a>") && !html.contains("href=\"/connections/salesforce\""),
        "the operator's own nav"
    );
    // Connectors on for A, from the page.
    let switched = http
        .post(format!("{}/operator/accounts/{a}/connectors", app.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("enabled", "true")])
        .send()
        .await
        .expect("switch");
    assert_eq!(switched.status(), 303);
    let html = get("/operator/accounts", &cookie).await.expect("page").text().await.expect("html");
    let row =
        html.split(&format!("data-account=\"{a}\"")).nth(1).and_then(|r| r.split("</tr>").next()).expect("A's row");
    assert!(row.contains(">On<"), "{row}");
    let (_, log) = app.call("admin_a", Method::GET, "/audit?action=account.connectors_enabled", None).await;
    assert_eq!(log["items"].as_array().map(Vec::len), Some(1), "the account's own log says so: {log}");
    // Without the CSRF token nothing changes; nobody but the operator sees the page.
    let forged = http
        .post(format!("{}/operator/accounts/{a}/connectors", app.base))
        .header("cookie", &cookie)
        .form(&[("csrf", "nope"), ("enabled", "false")])
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status(), 403);
    let (owner, owner_csrf) = app.sign_in("owner_a").await;
    assert_eq!(get("/operator/accounts", &owner).await.expect("page").status(), 403);
    let refused = http
        .post(format!("{}/operator/accounts/{a}/connectors", app.base))
        .header("cookie", &owner)
        .form(&[("csrf", owner_csrf.as_str()), ("enabled", "false")])
        .send()
        .await
        .expect("owner");
    assert_eq!(refused.status(), 403);
}
