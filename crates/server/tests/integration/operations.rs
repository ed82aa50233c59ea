//! Issue #6's operations surface: `/metrics` for Prometheus (behind its scrape token, labelled
//! by route pattern, never by id), `/readyz` following the database, and what a broken
//! database does to a change.

use reqwest::Method;
use testkit::{METRICS_TOKEN, spawn};

#[tokio::test]
async fn metrics_need_the_scrape_token_and_count_requests_by_route_and_connections_by_status() {
    let app = spawn().await;
    let (status, created) =
        app.call("admin_a", reqwest::Method::POST, "/connections", Some(app.jwt("Acme prod", "admin@acme.test"))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(app.call("viewer_a", reqwest::Method::GET, &format!("/connections/{id}"), None).await.0, 200);

    let metrics = format!("{}/metrics", app.base);
    let anonymous = app.http.get(&metrics).send().await.expect("get");
    assert_eq!(anonymous.status(), 401);
    let wrong = app.http.get(&metrics).bearer_auth("not-the-scrape-token").send().await.expect("get");
    assert_eq!(wrong.status(), 401);
    // An account's API token is not a scrape token either.
    let user = app.http.get(&metrics).bearer_auth(&app.tokens["admin_a"]).send().await.expect("get");
    assert_eq!(user.status(), 401);
    let scraped = app.http.get(&metrics).bearer_auth(METRICS_TOKEN).send().await.expect("get");
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.expect("body");
    for expected in [
        "lightbridge_http_requests_total{method=\"GET\",route=\"/api/v1/connections/{id}\",status=\"200\"}",
        "lightbridge_http_requests_total{method=\"POST\",route=\"/api/v1/connections\",status=\"201\"}",
        "lightbridge_http_request_duration_seconds_bucket",
        "lightbridge_connections{status=\"logged_in\"}",
        "lightbridge_database_up{kind=",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(!text.contains(&id), "no ids in labels");
    assert!(!text.contains(&app.tokens["admin_a"]), "no tokens");
}

#[tokio::test]
async fn readyz_follows_the_database() {
    let app = spawn().await;
    let ready = app.http.get(format!("{}/readyz", app.base)).send().await.expect("get");
    assert_eq!(ready.status(), 200);
    app.state.store.close().await;
    let gone = app.http.get(format!("{}/readyz", app.base)).send().await.expect("get");
    assert_eq!(gone.status(), 503);
    assert_eq!(app.http.get(format!("{}/healthz", app.base)).send().await.expect("get").status(), 200, "alive still");
}

/// Makes every write to the audit log fail, as a full disk or a revoked grant would.
async fn break_the_audit_log(app: &testkit::TestApp) {
    match app.state.store.as_ref() {
        store::Store::Sqlite(s) => {
            sqlx::query(
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END",
            )
            .execute(s.writer())
            .await
            .expect("trigger");
        }
        store::Store::Postgres(s) => {
            sqlx::raw_sql(
                "CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$; \
                 CREATE TRIGGER audit_down BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_down();",
            )
            .execute(s.pool())
            .await
            .expect("trigger");
        }
    }
}

/// A change commits with its audit entry (B4): when the entry cannot be written, the change is
/// not made and the caller is told, instead of an unaudited change.
#[tokio::test]
async fn a_change_whose_audit_entry_cannot_be_written_is_not_made() {
    let app = spawn().await;
    let (status, kept) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt("Kept", "admin@acme.test"))).await;
    assert_eq!(status, 201, "{kept}");
    let kept_id = kept["id"].as_str().expect("id").to_string();
    break_the_audit_log(&app).await;

    let (status, body) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt("Lost", "admin@acme.test"))).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "internal", "{body}");
    let (_, list) = app.call("admin_a", Method::GET, "/connections", None).await;
    let names: Vec<&str> = list["items"].as_array().expect("items").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["Kept"], "the unaudited connection was not created");

    let (status, body) = app.call("admin_a", Method::DELETE, &format!("/connections/{kept_id}"), None).await;
    assert_eq!(status, 500, "{body}");
    let (status, _) = app.call("admin_a", Method::GET, &format!("/connections/{kept_id}"), None).await;
    assert_eq!(status, 200, "the unaudited delete was undone");
}
