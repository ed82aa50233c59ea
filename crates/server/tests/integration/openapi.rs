//! B3: the OpenAPI document is built from the router's own route list, served at
//! `/api/v1/openapi.json`, and committed as `docs/openapi.json`. This test fails when the
//! committed copy drifts; `UPDATE_OPENAPI=1 cargo test -p server --test integration openapi::` rewrites it.

use serde_json::Value;

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = server::api::openapi_json();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date with the API: run `UPDATE_OPENAPI=1 cargo test -p server --test integration openapi::` and commit it"
    );
}

#[test]
fn the_document_describes_every_route_with_its_error_shape() {
    let doc: Value = serde_json::from_str(&server::api::openapi_json()).expect("json");
    assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in [
        ("/api/v1/connections", &["get", "post"][..]),
        ("/api/v1/connections/test", &["post"]),
        ("/api/v1/connections/{id}", &["get", "patch", "delete"]),
        ("/api/v1/connections/oauth/start", &["post"]),
        ("/api/v1/connections/{id}/reconnect", &["post"]),
        ("/api/v1/systems", &["get", "post"]),
        ("/api/v1/systems/{id}", &["get", "patch", "delete"]),
        ("/api/v1/systems/{id}/connectors", &["get", "post"]),
        ("/api/v1/environments", &["get", "post"]),
        ("/api/v1/environments/{id}", &["delete"]),
        ("/api/v1/users", &["get", "post"]),
        ("/api/v1/users/{id}", &["patch", "delete"]),
        ("/api/v1/tokens", &["get", "post"]),
        ("/api/v1/tokens/{id}", &["delete"]),
        ("/api/v1/me", &["get"]),
        ("/api/v1/me/password", &["put"]),
        ("/api/v1/accounts", &["get"]),
        ("/api/v1/accounts/{id}/connectors", &["put"]),
        ("/api/v1/audit", &["get"]),
        ("/api/v1/session", &["get", "post", "delete"]),
    ] {
        for method in methods {
            let op = &paths.get(path).unwrap_or_else(|| panic!("{path} is not documented"))[method];
            assert!(op.is_object(), "{method} {path} is not documented");
            assert!(op["summary"].is_string() || op["description"].is_string(), "{method} {path} has no description");
        }
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_token"].is_object());
}

#[tokio::test]
async fn the_server_serves_the_same_document() {
    let app = testkit::spawn().await;
    let served = app.http.get(format!("{}/api/v1/openapi.json", app.base)).send().await.expect("get");
    assert_eq!(served.status(), 200);
    assert_eq!(served.text().await.expect("body"), server::api::openapi_json());
}
