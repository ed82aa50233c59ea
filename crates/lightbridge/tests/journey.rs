//! Issue #16: the outside walk's journey, in headless Chromium, on the demo as a newcomer
//! starts it — `lightbridge demo` on a port other than 8080 — at 1280 px and at 390 px: sign in
//! → Integration Center → add an OAuth connection whose test fails, then passes → save → find
//! the row → search → manage columns → export CSV and XLSX and compare them with the table →
//! edit → delete.

mod common;

use testkit::webdriver::{self, Browser};

const KEY: &str = "3MVG9LightbridgeDemoConsumerKey";
const SECRET: &str = "demo-consumer-secret-change-me";

/// On the emulator's Salesforce pages: sign in as `username`, then Allow.
async fn salesforce_sign_in(browser: &Browser, username: &str) {
    browser.wait_for_url(|u| u.contains("/services/oauth2/authorize")).await;
    browser.type_into("#username", username).await;
    browser.type_into("#password", "emulator").await;
    browser.click("#Login").await;
    browser.click("#oaapprove").await;
}

/// The table as shown: its column headers (without the select box and actions) and each
/// row's cells, read from the page's text (the same at any width).
async fn table(browser: &Browser) -> (Vec<String>, Vec<Vec<String>>) {
    let read = browser
        .script(
            "const text = e => e.textContent.replace(/\\s+/g, ' ').trim();\
             const label = th => { const c = th.cloneNode(true); c.querySelectorAll('[aria-hidden]').forEach(x => x.remove()); return text(c); };\
             return {headers: [...document.querySelectorAll('thead th[data-column]')].map(label),\
                     rows: [...document.querySelectorAll('tbody tr')].map(r =>\
                       [...r.querySelectorAll('td[data-column]')].map(td => td.dataset.column === 'connection_id' ? text(td.querySelector('code.id')) : text(td)))};",
        )
        .await;
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().expect("array").iter().map(|s| s.as_str().unwrap_or_default().to_string()).collect()
    };
    (strings(&read["headers"]), read["rows"].as_array().expect("rows").iter().map(strings).collect())
}

/// A date as the table shows it (`2026-11-26 19:50 UTC`) against an export's
/// (`2026-11-26 19:50:12`): the same minute.
fn same_cell(table: &str, export: &str) -> bool {
    table == export || (table.ends_with(" UTC") && export.starts_with(table.trim_end_matches(" UTC")))
}

async fn journey(width: u32) {
    let Some(browser) = webdriver::launch().await else { return };
    browser.set_width(width, 900).await;
    let (_demo, base, _, data) = common::start_demo(&format!("journey-{width}"));
    let name = format!("Acme OAuth {width}");

    // Sign in, as the demo says, and land on the Integration Center.
    browser.goto(&format!("{base}/")).await;
    browser.wait_for_url(|u| u.contains("/signin")).await;
    browser.type_into("#email", "owner@demo.example").await;
    browser.type_into("#password", "lightbridge-demo").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url(|u| u.ends_with("/integrations")).await;
    browser.click(".tile a.button").await;
    browser.wait_for_url(|u| u.ends_with("/connections/salesforce")).await;

    // Add an OAuth connection: the test fails for a user without Customize Application …
    browser.click("a.button.primary[href='/connections/salesforce/new']").await;
    browser.type_into("#name", &name).await;
    browser.click("input[name=org_type][value=production]").await;
    browser.click("input[name=login_host][value=login]").await;
    browser.click("input[name=method][value=oauth]").await;
    browser.type_into("#consumer_key", KEY).await;
    browser.type_into("#consumer_secret", SECRET).await;
    browser.click("button[name=action][value=test]").await;
    salesforce_sign_in(&browser, "editor@acme.example").await;
    let steps = browser.wait_for_text(".steps", |t| t.contains("Customize Application")).await;
    assert!(steps.contains("found a problem"), "{steps}");
    assert!(browser.text(".step-failed").await.contains("How to fix"));
    // … and passes for the admin; Save then needs no second sign-in.
    browser.click("button[name=action][value=test]").await;
    salesforce_sign_in(&browser, "admin@acme.example").await;
    let steps = browser.wait_for_text(".steps", |t| t.contains("passed")).await;
    assert!(steps.contains("Test Connection passed"), "{steps}");
    browser.click("button[name=action][value=save]").await;
    browser.wait_for_url(|u| u.contains("/connections/salesforce?highlight=conn_")).await;
    assert!(browser.text(".flash-success").await.contains("saved"));

    // Find the row: highlighted, on screen, with what the org told us.
    let row = browser.text("tr.highlight").await;
    assert!(row.contains(&name) && row.contains("Acme Corporation"), "{row}");
    let on_screen = browser
        .script("const r = document.querySelector('tr.highlight a.button.small').getBoundingClientRect(); return r.right <= window.innerWidth && r.left >= 0;")
        .await;
    assert_eq!(on_screen, true, "the row's actions are on screen at {width} px");
    let sideways = browser.script("return document.documentElement.scrollWidth <= window.innerWidth").await;
    assert_eq!(sideways, true, "no sideways scroll at {width} px");

    // Search narrows as it is typed, and finds the row again.
    browser.type_into("#search", "nobody@else").await;
    browser.wait_for_text("#results", |t| t.contains("No connection matches")).await;
    browser.type_into("#search", "admin@acme.example").await;
    browser.wait_for_text("#results", |t| t.contains(&name)).await;

    // Manage columns: hide "Created by".
    browser.click("details[data-columns] summary").await;
    browser.click("input[name=columns][value=created_by]").await;
    browser.click("details[data-columns] button.primary").await;
    browser.wait_for_text(".flash-success", |t| t.contains("Columns updated")).await;
    let (headers, rows) = table(&browser).await;
    assert!(!headers.iter().any(|h| h.contains("Created by")) && headers.len() == 8, "{headers:?}");
    assert_eq!(rows.len(), 1);

    // Export CSV and XLSX: the same columns and cells as the table.
    browser.click("details.menu:not([data-columns]) summary").await;
    browser.click("[data-export=csv]").await;
    let csv = std::fs::read_to_string(browser.downloaded(".csv").await).expect("csv");
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let csv_headers: Vec<String> = reader.headers().expect("headers").iter().map(str::to_string).collect();
    assert_eq!(csv_headers, headers, "the CSV's columns are the table's");
    let csv_rows: Vec<Vec<String>> =
        reader.records().map(|r| r.expect("record").iter().map(str::to_string).collect()).collect();
    assert_eq!(csv_rows.len(), rows.len());
    for (shown, exported) in rows[0].iter().zip(&csv_rows[0]) {
        assert!(same_cell(shown, exported), "table {shown:?} against CSV {exported:?}");
    }
    browser.click("details.menu:not([data-columns]) summary").await;
    browser.click("[data-export=xlsx]").await;
    let read = testkit::read_xlsx(&browser.downloaded(".xlsx").await);
    let xlsx_headers: Vec<String> = read["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| h.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(xlsx_headers, headers, "the XLSX's columns are the table's");
    let xlsx_row = read["rows"][0].as_array().expect("a row");
    for (shown, exported) in rows[0].iter().zip(xlsx_row) {
        let exported = exported.as_str().unwrap_or_default();
        assert!(same_cell(shown, exported), "table {shown:?} against XLSX {exported:?}");
    }

    // Edit: rename it.
    browser.click("tr.highlight a.button.small:not(.danger), tbody tr a.button.small:not(.danger)").await;
    browser.wait_for_url(|u| u.contains("/connections/salesforce/conn_")).await;
    browser.type_into("#name", &format!("{name} renamed")).await;
    browser.click("button[name=action][value=save]").await;
    browser.wait_for_text(".flash-success", |t| t.contains("saved")).await;
    assert!(browser.text("tr.highlight").await.contains(&format!("{name} renamed")));

    // Delete: one confirmation naming it, then revoked at Salesforce.
    browser.click("tr.highlight a.danger").await;
    let confirm = browser.text(".confirm").await;
    assert!(confirm.contains(&format!("{name} renamed")), "{confirm}");
    browser.click(".confirm button.danger").await;
    browser.wait_for_text(".flash", |t| t.contains("revoked")).await;
    assert!(browser.text("main").await.contains("No Salesforce connections yet"));
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test]
async fn the_journey_works_on_the_demo_at_1280_px() {
    journey(1280).await;
}

#[tokio::test]
async fn the_journey_works_on_the_demo_at_390_px() {
    journey(390).await;
}
