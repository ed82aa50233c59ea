//! Drift (#17): a resource someone changed in the org since Lightbridge published it is held,
//! not overwritten, unless asked; the fleet scan finds such changes at one query per org; the
//! fleet view shows each org's release and state.

use emulator::ResourceEdit;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::{TestApp, deploy, finished, spawn};

use super::deployments::{bound, targets, until};
use super::sessions::post_form;

fn target_of<'a>(d: &'a Value, org: &str) -> &'a Value {
    targets(d).iter().find(|t| t["account_name"] == org).unwrap_or_else(|| panic!("no target in {org}: {d}"))
}

/// Uploads (POST or PATCH of a static resource) the emulator saw in this org.
fn uploads(app: &TestApp, org_id: &str) -> usize {
    app.em
        .requests()
        .iter()
        .filter(|r| r.org_id.as_deref() == Some(org_id))
        .filter(|r| r.path.contains("/sobjects/StaticResource") && matches!(r.method.as_str(), "POST" | "PATCH"))
        .count()
}

/// The fleet's one slot's orgs by org name.
async fn fleet_orgs(app: &TestApp, query: &str) -> (Value, Vec<Value>) {
    let (status, fleet) = app.call("admin_a", Method::GET, &format!("/fleet{query}"), None).await;
    assert_eq!(status, 200, "{fleet}");
    let slot = fleet[0].clone();
    let orgs = slot["orgs"].as_array().cloned().unwrap_or_default();
    (slot, orgs)
}

fn org<'a>(orgs: &'a [Value], name: &str) -> &'a Value {
    orgs.iter().find(|o| o["org_name"] == name).unwrap_or_else(|| panic!("no {name} in {orgs:?}"))
}

#[tokio::test]
async fn a_resource_changed_in_the_org_is_held_as_drifted_and_overwritten_on_request() {
    let app = spawn().await;
    let (system, env, _) = bound(&app, 2).await;
    let org1 = app.em.org_id_of_user("publisher1@org1.test").expect("org");
    let d1 = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    let d1 = finished(&app, "admin_a", d1["id"].as_str().expect("id")).await;
    assert_eq!(d1["status"], "succeeded", "{d1}");
    // Org 1's admin edits the resource in Setup.
    let edit = ResourceEdit { body: Some("console.log('hotfix')".into()), ..Default::default() };
    app.em.edit_resource(&org1, "Player", "ada@org1.test", &edit).expect("edit");
    let before = uploads(&app, &org1);
    let d2 = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v2")]).await;
    let id = d2["id"].as_str().expect("id").to_string();
    let held = finished(&app, "admin_a", &id).await;
    // Org 2 got v2; org 1 is held, not failed, and nothing was uploaded there.
    assert_eq!(held["status"], "running", "drifted targets wait for a person: {held}");
    assert_eq!(
        (held["counts"]["succeeded"].as_u64(), held["counts"]["drifted"].as_u64()),
        (Some(1), Some(1)),
        "{held}"
    );
    assert_eq!(held["counts"]["failed"], 0);
    let one = target_of(&held, "Fanout Org 1");
    assert_eq!(one["status"], "drifted", "{one}");
    assert_eq!(one["drift_by"], "Ada Admin 1", "who changed it, from LastModifiedBy.Name: {one}");
    assert!(one["drift_at"].as_i64().is_some_and(|t| t > 0), "{one}");
    let reason = one["error"].as_str().expect("reason");
    assert!(reason.starts_with("drifted: its body changed (by Ada Admin 1, "), "{reason}");
    assert_eq!(uploads(&app, &org1), before, "nothing uploaded over the org's change");
    assert_eq!(app.em.resource_body(&org1, "Player").expect("body"), b"console.log('hotfix')");
    // One drift.found event (#18), naming the deployment that found it and who changed what.
    let (_, events) = app.call("admin_a", Method::GET, "/events", None).await;
    let found: Vec<&Value> = events.as_array().expect("events").iter().filter(|e| e["type"] == "drift.found").collect();
    assert_eq!(found.len(), 1, "{events:#}");
    assert_eq!(found[0]["data"]["deployment_id"], id.as_str(), "{events:#}");
    assert_eq!(found[0]["data"]["changed_by"], "Ada Admin 1");
    assert_eq!(found[0]["data"]["org_id"], org1.as_str());
    // The fleet view shows it.
    let (slot, orgs) = fleet_orgs(&app, "").await;
    assert_eq!(org(&orgs, "Fanout Org 1")["state"], "drifted", "{slot}");
    assert_eq!(org(&orgs, "Fanout Org 1")["drift"]["by"], "Ada Admin 1", "{slot}");
    assert_eq!(org(&orgs, "Fanout Org 2")["state"], "current", "{slot}");
    assert_eq!(slot["latest"]["reached"], 1);
    assert!(slot["latest"]["took_ms"].is_null(), "not every org runs it yet: {slot}");
    let (_, only) = fleet_orgs(&app, "?state=drifted").await;
    assert_eq!(only.len(), 1, "{only:?}");
    // A person chooses to publish over it.
    let (status, resolved) = app
        .call("admin_a", Method::POST, &format!("/deployments/{id}/drift"), Some(json!({"resolve": "overwrite"})))
        .await;
    assert_eq!(status, 200, "{resolved}");
    let done = finished(&app, "admin_a", &id).await;
    assert_eq!((done["status"].as_str(), done["counts"]["succeeded"].as_u64()), (Some("succeeded"), Some(2)), "{done}");
    assert_eq!(uploads(&app, &org1), before + 1);
    let (slot, orgs) = fleet_orgs(&app, "").await;
    assert!(orgs.iter().all(|o| o["state"] == "current" && o["drift"].is_null()), "{slot}");
    assert!(slot["latest"]["took_ms"].as_i64().is_some_and(|t| t >= 0), "{slot}");
    // Nothing left to answer: 409.
    let (status, _) =
        app.call("admin_a", Method::POST, &format!("/deployments/{id}/drift"), Some(json!({"resolve": "skip"}))).await;
    assert_eq!(status, 409);
    // The audit log names the choice.
    let (_, audit) = app.call("admin_a", Method::GET, "/audit?action=deployment.drift_overwritten", None).await;
    assert!(audit.to_string().contains("1 drifted org(s) to be published over"), "{audit}");
}

#[tokio::test]
async fn drifted_orgs_can_be_skipped_and_a_deployment_may_overwrite_from_the_start() {
    let app = spawn().await;
    let (system, env, _) = bound(&app, 2).await;
    let org2 = app.em.org_id_of_user("publisher2@org2.test").expect("org");
    let first = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    finished(&app, "admin_a", first["id"].as_str().expect("id")).await;
    let edit = ResourceEdit { cache_control: Some("Public".into()), ..Default::default() };
    app.em.edit_resource(&org2, "Player", "ada@org2.test", &edit).expect("edit");
    // Skipped: the org keeps its change; the deployment ends.
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v2")]).await;
    let id = d["id"].as_str().expect("id").to_string();
    let held = finished(&app, "admin_a", &id).await;
    let two = target_of(&held, "Fanout Org 2");
    assert!(
        two["error"].as_str().is_some_and(|e| e.contains("its cache control changed from Private to Public")),
        "{two}"
    );
    let (status, skipped) =
        app.call("admin_a", Method::POST, &format!("/deployments/{id}/drift"), Some(json!({"resolve": "skip"}))).await;
    assert_eq!(status, 200, "{skipped}");
    let done = finished(&app, "admin_a", &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(target_of(&done, "Fanout Org 2")["status"], "skipped");
    // A deployment that says so publishes over the change at once.
    let zip = testkit::bundle_zip(&[("player.js", b"v3")]);
    let fields = [
        ("system_id", system.as_str()),
        ("environment_id", env.as_str()),
        ("resource_name", "Player"),
        ("overwrite_drift", "true"),
    ];
    let (status, d) = testkit::upload(&app, "admin_a", &fields, &zip).await;
    assert_eq!(status, 202, "{d}");
    assert_eq!(d["overwrite_drift"], true);
    let done = finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    assert_eq!((done["status"].as_str(), done["counts"]["succeeded"].as_u64()), (Some("succeeded"), Some(2)), "{done}");
    let resource = app.em.resources(&org2).into_iter().find(|r| r.name == "Player").expect("resource");
    assert_eq!(resource.cache_control, "Private", "published over the change");
}

#[tokio::test]
async fn a_record_saved_without_a_change_is_not_drift() {
    // The modstamp moves when someone saves the record; the body, content type and cache
    // control are what count.
    let app = spawn().await;
    let (system, env, _) = bound(&app, 1).await;
    let org1 = app.em.org_id_of_user("publisher1@org1.test").expect("org");
    let first = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    finished(&app, "admin_a", first["id"].as_str().expect("id")).await;
    let edit = ResourceEdit { description: Some("touched by an admin".into()), ..Default::default() };
    app.em.edit_resource(&org1, "Player", "ada@org1.test", &edit).expect("edit");
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v2")]).await;
    let done = finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
}

#[tokio::test]
async fn the_drift_scan_costs_one_query_per_org_and_finds_changes() {
    let app = spawn().await;
    let (system, env, _) = bound(&app, 3).await;
    for name in ["Player", "Styles"] {
        let d = deploy(&app, "admin_a", &system, &env, name, &[("a.js", b"v1")]).await;
        finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    }
    let orgs: Vec<String> =
        (1..=3).map(|i| app.em.org_id_of_user(&format!("publisher{i}@org{i}.test")).expect("org")).collect();
    let sf_calls = |app: &TestApp| {
        app.em.requests().iter().filter(|r| r.org_id.as_ref().is_some_and(|o| orgs.contains(o))).count()
    };
    // Nothing changed: three orgs, two resources each, three calls.
    app.em.clear_requests();
    let (status, report) = app.call("admin_a", Method::POST, "/drift/scan", None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["orgs"].as_u64(), report["resources"].as_u64(), report["drifted"].as_u64(), report["calls"].as_u64()),
        (Some(3), Some(6), Some(0), Some(3)),
        "{report}"
    );
    assert_eq!(sf_calls(&app), 3, "one query per org: {:?}", app.em.requests());
    // Org 2's admin replaces the body of one resource.
    let edit = ResourceEdit { body: Some("a much longer body than before".into()), ..Default::default() };
    app.em.edit_resource(&orgs[1], "Styles", "ada@org2.test", &edit).expect("edit");
    app.em.clear_requests();
    let (_, report) = app.call("admin_a", Method::POST, "/drift/scan", None).await;
    assert_eq!((report["drifted"].as_u64(), report["calls"].as_u64()), (Some(1), Some(3)), "{report}");
    assert_eq!(sf_calls(&app), 3);
    // The fleet view names it (Styles is the latest release of the slot).
    let (slot, list) = fleet_orgs(&app, "").await;
    let two = org(&list, "Fanout Org 2");
    assert_eq!((two["state"].as_str(), two["drift"]["by"].as_str()), (Some("drifted"), Some("Ada Admin 2")), "{slot}");
    assert_eq!(two["drift"]["what"], "its body changed");
    assert_eq!(org(&list, "Fanout Org 1")["state"], "current");
    // The next release holds that org without asking it twice.
    let d = deploy(&app, "admin_a", &system, &env, "Styles", &[("a.js", b"v2")]).await;
    let held = finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    assert_eq!(target_of(&held, "Fanout Org 2")["status"], "drifted", "{held}");
    // Scans go in the audit log.
    let (_, audit) = app.call("admin_a", Method::GET, "/audit?action=drift.scanned", None).await;
    assert!(audit.to_string().contains("6 resource(s) in 3 org(s): 1 drifted"), "{audit}");
}

#[tokio::test]
async fn drift_is_scanned_on_a_schedule() {
    let app = testkit::spawn_configured(None, |c| c.publish.drift_scan = std::time::Duration::from_secs(60)).await;
    let (system, env, _) = bound(&app, 1).await;
    let org1 = app.em.org_id_of_user("publisher1@org1.test").expect("org");
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    let edit = ResourceEdit { body: Some("changed in Setup".into()), ..Default::default() };
    app.em.edit_resource(&org1, "Player", "ada@org1.test", &edit).expect("edit");
    // Not yet due: nothing noticed.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, orgs) = fleet_orgs(&app, "").await;
    assert_eq!(orgs[0]["state"], "current", "not scanned before its time: {orgs:?}");
    // An interval later, the scanner (which looks every second here) finds it.
    app.clock.advance(std::time::Duration::from_secs(61));
    let started = std::time::Instant::now();
    loop {
        let (_, orgs) = fleet_orgs(&app, "").await;
        if orgs[0]["state"] == "drifted" {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "no scheduled scan: {orgs:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, audit) = app.call("admin_a", Method::GET, "/audit?action=drift.scanned", None).await;
    assert!(audit.to_string().contains("scheduled: 1 resource(s) in 1 org(s): 1 drifted"), "{audit}");
}

#[tokio::test]
async fn instances_sharing_a_database_ask_each_org_once_per_interval() {
    // #17: a second instance's scanner beside the app's, on the same database. Each org's query
    // takes longer than the scanners' look for due accounts (every second here), so without a
    // claim both would scan the account they both find due.
    let every = std::time::Duration::from_secs(60);
    let app = testkit::spawn_configured(None, |c| c.publish.drift_scan = every).await;
    let second = service::drift::spawn_scanner(&app.state, every);
    let (system, env, _) = bound(&app, 1).await;
    let org1 = app.em.org_id_of_user("publisher1@org1.test").expect("org");
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    app.em.set_latency(emulator::Latency { fixed_ms: 1500, jitter_ms: 0 });
    app.em.clear_requests();
    let queries = || {
        app.em
            .requests()
            .iter()
            .filter(|r| r.org_id.as_deref() == Some(org1.as_str()) && r.path.ends_with("/query"))
            .count()
    };
    app.clock.advance(every + std::time::Duration::from_secs(1));
    let started = std::time::Instant::now();
    while queries() == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "no scheduled scan");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Both scanners look at least twice more while the first scan is under way, and after.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    second.abort();
    assert_eq!(queries(), 1, "one instance asked the org; the other left the account to it");
}

#[tokio::test]
async fn a_rollout_counts_drifted_orgs_apart_from_failures() {
    // A canary wave whose only org drifted passes its gate (no failure), and the rest goes on.
    let app = spawn().await;
    let (system, env, connections) = bound(&app, 3).await;
    let org1 = app.em.org_id_of_user("publisher1@org1.test").expect("org");
    let first = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    finished(&app, "admin_a", first["id"].as_str().expect("id")).await;
    let edit = ResourceEdit { body: Some("x".into()), ..Default::default() };
    app.em.edit_resource(&org1, "Player", "ada@org1.test", &edit).expect("edit");
    let rollout = json!({"waves": [{"connections": [connections[0]]}, {}], "max_failure_rate": 0.0});
    let d =
        testkit::deploy_in_waves(&app, "admin_a", (&system, &env, "Player"), &[("player.js", b"v2")], rollout).await;
    let id = d["id"].as_str().expect("id").to_string();
    let done = until(&app, &id, "the second wave ran", |d| d["counts"]["succeeded"] == 2).await;
    assert_eq!((done["status"].as_str(), done["counts"]["drifted"].as_u64()), (Some("running"), Some(1)), "{done}");
    assert_eq!(done["wave"], 1, "the canary's drifted org did not halt the rollout: {done}");
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String, Vec<u8>) {
    let r = app.http.get(format!("{}{path}", app.base)).header("cookie", cookie).send().await.expect("get");
    let status = r.status().as_u16();
    let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, kind, r.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn the_fleet_page_shows_the_matrix_filters_exports_and_scans() {
    let app = spawn().await;
    let (system, env, _) = bound(&app, 2).await;
    let org2 = app.em.org_id_of_user("publisher2@org2.test").expect("org");
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    let edit = ResourceEdit { body: Some("changed in Setup".into()), ..Default::default() };
    app.em.edit_resource(&org2, "Player", "ada@org2.test", &edit).expect("edit");
    let (cookie, csrf) = app.sign_in("admin_a").await;
    // The scan, from the page: CSRF-protected, and it says what it found.
    let (status, _) = post_form(&app, &cookie, "/fleet/scan", &[("csrf", "forged")]).await;
    assert_eq!(status, 403, "a forged form is refused");
    let (status, flash) = post_form(&app, &cookie, "/fleet/scan", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert!(flash.contains("Scanned 2 resource(s) in 2 org(s) with 2 Salesforce call(s): 1 drifted"), "{flash}");
    let (status, _, html) = page(&app, &cookie, "/fleet").await;
    let html = String::from_utf8(html).expect("utf-8");
    assert_eq!(status, 200);
    assert!(html.contains("Sales Cloud × Production"), "the slot's column");
    assert!(html.contains("data-state=\"drifted\"") && html.contains("data-state=\"current\""), "{html}");
    assert!(html.contains("its body changed (by Ada Admin 2"), "who changed it: {html}");
    let (_, _, only) = page(&app, &cookie, "/fleet?state=drifted").await;
    let only = String::from_utf8(only).expect("utf-8");
    assert!(only.contains("Fanout 2") && !only.contains(">Fanout 1<"), "filtered to the drifted org");
    assert!(only.contains("/fleet/export?format=csv&amp;state=drifted"), "the export keeps the filter");
    // The exports: the same rows, as CSV and as an XLSX a spreadsheet opens.
    let (status, kind, csv) = page(&app, &cookie, "/fleet/export?format=csv").await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let headers = reader.headers().expect("headers").clone();
    assert_eq!(&headers[5], "State");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 2);
    let drifted = rows.iter().find(|r| &r[5] == "Drifted").expect("the drifted org");
    assert_eq!(&drifted[3], "Fanout Org 2");
    assert!(drifted[10].starts_with("its body changed (by Ada Admin 2"), "{drifted:?}");
    let (_, _, filtered) = page(&app, &cookie, "/fleet/export?format=csv&state=current").await;
    assert_eq!(csv::Reader::from_reader(filtered.as_slice()).records().count(), 1, "the filter applies to the export");
    let (status, _, xlsx) = page(&app, &cookie, "/fleet/export?format=xlsx").await;
    assert_eq!(status, 200);
    let file = std::env::temp_dir().join(format!("lightbridge-fleet-{}.xlsx", std::process::id()));
    std::fs::write(&file, &xlsx).expect("write");
    let sheet = testkit::read_xlsx(&file);
    let _ = std::fs::remove_file(&file);
    assert_eq!(sheet["headers"][5], "State");
    assert_eq!(sheet["rows"].as_array().map(Vec::len), Some(2), "{sheet}");
    // The next release holds org 2; the deployment page answers it.
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v2")]).await;
    let id = d["id"].as_str().expect("id").to_string();
    let held = finished(&app, "admin_a", &id).await;
    assert_eq!(held["counts"]["drifted"], 1, "{held}");
    let (_, _, html) = page(&app, &cookie, &format!("/deployments/{id}")).await;
    let html = String::from_utf8(html).expect("utf-8");
    assert!(html.contains("1 org(s) held as drifted") && !html.contains("http-equiv=\"refresh\""), "{html}");
    let connection = target_of(&held, "Fanout Org 2")["connection_id"].as_str().expect("id").to_string();
    let (status, flash) = post_form(
        &app,
        &cookie,
        &format!("/deployments/{id}/drift"),
        &[("csrf", &csrf), ("resolve", "overwrite"), ("connection", &connection)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(flash, "success|Publishing over the changes made in 1 org(s).");
    let done = finished(&app, "admin_a", &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(app.em.resource_body(&org2, "Player").map(|b| b.len() > 100), Some(true), "the release, not the edit");
}

#[tokio::test]
async fn a_newer_release_supersedes_one_that_holds_orgs_as_drifted() {
    // An older release waiting on a drifted org must not come back over a newer one by an
    // overwrite; a release of another resource leaves it alone.
    let app = spawn().await;
    let (system, env, _) = bound(&app, 2).await;
    let org1 = app.em.org_id_of_user("publisher1@org1.test").expect("org");
    let d = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v1")]).await;
    finished(&app, "admin_a", d["id"].as_str().expect("id")).await;
    let edit = ResourceEdit { body: Some("changed in Setup".into()), ..Default::default() };
    app.em.edit_resource(&org1, "Player", "ada@org1.test", &edit).expect("edit");
    let old = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v2")]).await;
    let old = old["id"].as_str().expect("id").to_string();
    assert_eq!(finished(&app, "admin_a", &old).await["counts"]["drifted"], 1);
    let other = deploy(&app, "admin_a", &system, &env, "Styles", &[("site.css", b"a")]).await;
    finished(&app, "admin_a", other["id"].as_str().expect("id")).await;
    let (_, still) = app.call("admin_a", Method::GET, &format!("/deployments/{old}"), None).await;
    assert_eq!(still["status"], "running", "another resource does not end it: {still}");
    let new = deploy(&app, "admin_a", &system, &env, "Player", &[("player.js", b"v3")]).await;
    let new = new["id"].as_str().expect("id").to_string();
    let (_, superseded) = app.call("admin_a", Method::GET, &format!("/deployments/{old}"), None).await;
    assert_eq!(superseded["status"], "aborted", "{superseded}");
    assert_eq!(superseded["counts"]["skipped"], 1, "its drifted org is skipped: {superseded}");
    let (status, _) = app
        .call("admin_a", Method::POST, &format!("/deployments/{old}/drift"), Some(json!({"resolve": "overwrite"})))
        .await;
    assert_eq!(status, 409, "an old release cannot come back by an overwrite");
    let held = finished(&app, "admin_a", &new).await;
    assert_eq!(target_of(&held, "Fanout Org 1")["status"], "drifted", "still the person's change: {held}");
}
