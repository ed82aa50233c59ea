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

/// Text that XML and spreadsheets treat specially: markup, quotes, what reads as an `_xHHHH_`
/// escape, spaces at both ends, a tab, a line break, a control character and an emoji.
const AWKWARD: &str = "  Smith & <Sons> \"Ltd\" 'n' _x0041_ tab\there\nline \u{7}bell 🚀 ";

/// #17: a view of a few thousand rows (many of the XLSX writer's batches, many chunks of the
/// download) reads back in LibreOffice Calc cell for cell as the CSV export has it, dates shown
/// as dates, and openpyxl reads the same rows.
#[tokio::test]
async fn a_streamed_xlsx_reads_back_in_calc_as_the_csv_has_it() {
    let app = spawn().await;
    let rows = 2_000;
    for i in 0..rows {
        let mut c =
            testkit::seeded_connection(&app.accounts["A"], i, domain::ConnectionStatus::LoggedIn, i % 3 == 0, false);
        if let Some(org) = c.org.as_mut() {
            org.org_name = if i % 2 == 0 { format!("{AWKWARD}{i}") } else { format!("Org {i} of {}", i * 7919 % 1000) };
        }
        // Dates from November 2025, a minute and a second apart.
        c.created_at = 1_764_000_000_000 + i * 61_000;
        c.modified_at = c.created_at + 3_600_000;
        store::ConnectionStore::insert(&*app.state.store, &c, &store::NewSecrets::default()).await.expect("seed");
    }
    let (cookie, _) = app.sign_in("viewer_a").await;
    let (_, csv) = export(&app, &cookie, "csv").await;
    let csv: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.strip_prefix("\u{feff}".as_bytes()).expect("a byte-order mark"))
        .records()
        .map(|r| r.expect("record").iter().map(str::to_string).collect())
        .collect();
    assert!(csv.len() > rows as usize, "the header and every row: {}", csv.len());

    let (_, xlsx) = export(&app, &cookie, "xlsx").await;
    assert!(xlsx.len() > 2 * 64 * 1024, "large enough to be sent in many chunks: {} bytes", xlsx.len());
    let path = std::env::temp_dir().join(format!("lightbridge-export-{}.xlsx", domain::UserId::generate()));
    std::fs::write(&path, &xlsx).expect("write");
    let calc = testkit::read_xlsx_in_calc(&path);
    assert_eq!(calc.len(), csv.len(), "Calc reads every row");
    let mut dates = 0;
    for (n, (ours, theirs)) in csv.iter().zip(&calc).enumerate() {
        assert_eq!(ours.len(), theirs.len(), "row {n}: {ours:?} against {theirs:?}");
        for (a, b) in ours.iter().zip(theirs) {
            // A date: the CSV to the second, Calc shows the sheet's `yyyy-mm-dd hh:mm`.
            if n > 0 && a.len() == 19 && a.as_bytes()[4] == b'-' && a.as_bytes()[13] == b':' {
                assert_eq!(&a[..16], b, "row {n}: a date shown as a date");
                dates += 1;
            } else {
                assert_eq!(a, b, "row {n}");
            }
        }
    }
    assert!(dates >= rows as usize, "dates were compared: {dates}");
    assert!(calc.iter().any(|r| r.iter().any(|c| c.starts_with(AWKWARD))), "the awkward text survived");

    // openpyxl reads every row too, dates as dates (it leaves `_xHHHH_` escapes in inline
    // strings as they are written, so the awkward cells are compared in Calc only).
    let read = read_xlsx(&path);
    assert_eq!(read["rows"].as_array().expect("rows").len() + 1, csv.len(), "openpyxl reads every row");
    assert!(read["types"].as_array().expect("types").iter().any(|t| t == "datetime"), "{}", read["types"]);
    let _ = std::fs::remove_file(path);
}
