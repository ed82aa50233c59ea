//! F8 exports end to end: what a spreadsheet would run as a formula arrives neutralized in
//! both formats, dates are real dates in XLSX, and an account exports only its own rows.

use emulator::{AppSeed, OrgSeed, UserSeed};
use reqwest::Method;
use serde_json::json;
use testkit::{TestApp, read_xlsx, spawn};

const FORMULA_ORG: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";

async fn export(app: &TestApp, cookie: &str, format: &str) -> (String, Vec<u8>) {
    let r = app
        .http
        .get(format!("{}/connections/salesforce/export?format={format}", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"].to_str().expect("header").to_string();
    (disposition, r.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn exports_neutralize_formulas_keep_dates_and_stay_in_the_account() {
    let app = spawn().await;
    // An org whose name is a spreadsheet formula, reached with a JWT connection.
    let mut org = OrgSeed::new(FORMULA_ORG);
    org.users = vec![UserSeed::new("formula@evil.test")];
    app.em.add_org(&org).expect("org");
    app.em
        .add_app(&AppSeed {
            generate_certificate: true,
            pre_authorized: vec!["formula@evil.test".into()],
            ..AppSeed::new("3MVG9Formula", "formula-secret")
        })
        .expect("app");
    let key = app.em.private_key_pem("3MVG9Formula").expect("key");
    let body = json!({"name": "+Evil", "org_type": "production", "login_host": "login",
                      "auth": {"method": "jwt", "consumer_key": "3MVG9Formula", "username": "formula@evil.test", "private_key": key}});
    let (status, created) = app.call("admin_a", Method::POST, "/connections", Some(body)).await;
    assert_eq!(status, 201, "{created}");

    let (cookie, _) = app.sign_in("viewer_a").await;
    let (disposition, csv) = export(&app, &cookie, "csv").await;
    assert!(
        disposition.starts_with("attachment; filename=\"salesforce-connections-") && disposition.ends_with(".csv\"")
    );
    let csv = String::from_utf8(csv).expect("utf-8");
    assert!(csv.starts_with('\u{feff}'), "a byte-order mark for Excel");
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(!csv.contains(",=HYPERLINK") && !csv.contains(",\"=HYPERLINK"), "never a bare formula: {csv}");
    let (_, xlsx) = export(&app, &cookie, "xlsx").await;
    let path = std::env::temp_dir().join(format!("lightbridge-export-{}.xlsx", domain::UserId::generate()));
    std::fs::write(&path, &xlsx).expect("write");
    let read = read_xlsx(&path);
    assert_eq!(read["rows"][0][2], format!("'{FORMULA_ORG}"), "{read}");
    assert_eq!(read["types"][3], "datetime", "{read}");
    let _ = std::fs::remove_file(path);

    // Another account's export has the header and nothing of account A.
    let (cookie_b, _) = app.sign_in("admin_b").await;
    let (_, csv_b) = export(&app, &cookie_b, "csv").await;
    let csv_b = String::from_utf8(csv_b).expect("utf-8");
    assert_eq!(csv_b.trim_start_matches('\u{feff}').lines().count(), 1, "{csv_b}");
    // An unknown format is refused with a clear page, not a 500.
    let r = app
        .http
        .get(format!("{}/connections/salesforce/export?format=pdf", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), 422);
    assert!(r.text().await.expect("body").contains("not csv or xlsx"));
}
