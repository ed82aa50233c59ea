//! Issue #6's operations surface: `/metrics` for Prometheus (behind its scrape token, labelled
//! by route pattern, never by id) and `/readyz` following the database.

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
