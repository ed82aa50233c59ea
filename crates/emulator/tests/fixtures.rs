//! The emulator's replies checked key for key against bodies recorded by independent
//! Salesforce client projects (restforce, simple-salesforce, the Salesforce CLI's plugin-data;
//! see fixtures/salesforce/README.md). Every key a fixture has must be in the emulator's
//! reply, with a value of the same JSON type, recursively; the emulator may add keys.
//!
//! Fixtures describing objects the emulator does not serve (restforce's custom `Whizbang`
//! object and its `sobject_find_success_response`, upserts by external id, aggregate and join
//! column metadata) are compared only where the shape is object-independent.

mod common;

use std::path::PathBuf;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn fixture(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/salesforce").join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Collects every place where `reply` lacks a key of `fixture` or has another type there.
/// Keys listed in `skip` (object-specific field names) are not compared.
fn differences(fixture: &Value, reply: &Value, at: &str, skip: &[&str], out: &mut Vec<String>) {
    match (fixture, reply) {
        (Value::Null, _) => {}
        (Value::Object(f), Value::Object(r)) => {
            for (key, fv) in f {
                if skip.contains(&key.as_str()) {
                    continue;
                }
                match r.get(key) {
                    None => out.push(format!("{at}.{key} is missing")),
                    Some(rv) if fv.is_null() || rv.is_null() => {}
                    Some(rv) => differences(fv, rv, &format!("{at}.{key}"), skip, out),
                }
            }
        }
        (Value::Array(f), Value::Array(r)) => {
            if let (Some(first), Some(got)) = (f.first(), r.first()) {
                differences(first, got, &format!("{at}[0]"), skip, out);
            } else if !f.is_empty() {
                out.push(format!("{at} is empty but the fixture has items"));
            }
        }
        (f, r) if kind(f) != kind(r) => out.push(format!("{at} is {} but the fixture has {}", kind(r), kind(f))),
        _ => {}
    }
}

#[track_caller]
fn assert_shape(name: &str, reply: &Value, skip: &[&str]) {
    let mut out = Vec::new();
    differences(&fixture(name), reply, "$", skip, &mut out);
    assert!(out.is_empty(), "{name}: {out:#?}\nreply: {reply:#}");
}

const WHIZBANG: &[&str] = &[
    "Checkbox_Label",
    "Text_Label",
    "Date_Label",
    "DateTime_Label",
    "Picklist_Multiselect_Label",
    "ParentWhizbang__r",
    "Whizbangs__r",
];

#[tokio::test]
async fn token_replies_match_recorded_bodies() {
    let em = start().await;
    let reply = sign_in(&em, "admin@prod.test").await;
    assert_shape("restforce/auth_success_response.json", &reply, &[]);
    assert_shape("restforce/reauth_success_response.json", &reply, &[]);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", reply["refresh_token"].as_str().expect("rt")),
        ("client_id", WEB_KEY),
    ];
    let (_, refreshed) = token(&em.login_url(), &form).await;
    assert_shape("restforce/refresh_success_response.json", &refreshed, &[]);
    let key = em.private_key_pem(JWT_KEY).expect("key");
    let (_, jwt) = jwt_token(
        &em.login_url(),
        &sign(&key, JWT_KEY, "admin@prod.test", "https://login.salesforce.com", now_secs() + 60),
    )
    .await;
    assert_shape("simple-salesforce/token_login_response_success.json", &jwt, &[]);
}

#[tokio::test]
async fn oauth_and_rest_errors_match_recorded_bodies() {
    let em = start().await;
    let (_, bad_refresh) = token(
        &em.login_url(),
        &[("grant_type", "refresh_token"), ("refresh_token", "5Aep861nope"), ("client_id", WEB_KEY)],
    )
    .await;
    assert_shape("restforce/refresh_error_response.json", &bad_refresh, &[]);
    assert_shape("restforce/auth_error_response.json", &bad_refresh, &[]);
    assert_eq!(bad_refresh["error_description"], fixture("restforce/refresh_error_response.json")["error_description"]);

    let (_, _, expired) = get(&em, "00Dxx0000001gPL!expired", "/limits").await;
    assert_eq!(expired, fixture("restforce/expired_session_response.json"), "byte-for-byte the same body");

    let token = admin_token(&em).await;
    let (_, _, invalid_field) = get(&em, &token, &q("SELECT Foo FROM StaticResource")).await;
    assert_shape("restforce/sobject/query_error_response.json", &invalid_field, &[]);
    assert_eq!(invalid_field[0]["errorCode"], "INVALID_FIELD");
    let (_, write_error) = send(
        &em,
        &token,
        Method::POST,
        "/sobjects/StaticResource",
        Some(json!({"Name": "x", "ContentType": "a", "Body": "", "foo": 1})),
    )
    .await;
    assert_shape("restforce/sobject/write_error_response.json", &write_error, &[]);
    assert_eq!(write_error[0]["errorCode"], "INVALID_FIELD");
    let (_, _, missing) = get(&em, &token, "/sobjects/StaticResource/081000000000000").await;
    for name in [
        "restforce/sobject/sobject_find_error_response.json",
        "restforce/sobject/delete_error_response.json",
        "restforce/sobject/upsert_error_response.json",
    ] {
        assert_shape(name, &missing, &[]);
    }
    assert_eq!(missing[0]["errorCode"], "NOT_FOUND");
    let (_, _, no_object) = get(&em, &token, "/sobjects/Whizbang/describe").await;
    assert_eq!(no_object, fixture("restforce/sobject/sobject_describe_error_response.json"));
}

#[tokio::test]
async fn rest_replies_match_recorded_bodies() {
    let em = start().await;
    let versions: Value = client()
        .get(format!("{}/services/data/", em.base_url()))
        .send()
        .await
        .expect("versions")
        .json()
        .await
        .expect("json");
    assert_shape("restforce/services_data_success_response.json", &versions, &[]);

    let token = admin_token(&em).await;
    let (_, _, limits) = get(&em, &token, "/limits/").await;
    assert_shape("simple-salesforce/organization_limits_response.json", &limits, &[]);

    let (_, created) = send(
        &em,
        &token,
        Method::POST,
        "/sobjects/StaticResource",
        Some(json!({"Name": "shape", "ContentType": "text/plain", "Body": "eA=="})),
    )
    .await;
    assert_shape("restforce/sobject/create_success_response.json", &created, &[]);
    assert_shape("restforce/sobject/upsert_created_success_response.json", &created, &[]);

    let (_, _, empty) = get(&em, &token, &q("SELECT Id FROM StaticResource WHERE Name = 'none'")).await;
    assert_eq!(empty, fixture("restforce/sobject/query_empty_response.json"));

    let (_, _, org) = get(&em, &token, &q("SELECT Id FROM Organization")).await;
    assert_shape("restforce/sobject/org_query_response.json", &org, &[]);

    let (_, _, found) = get(&em, &token, &q("SELECT Id, Name FROM StaticResource")).await;
    assert_shape("restforce/sobject/query_success_response.json", &found, WHIZBANG);

    for i in 0..201 {
        send(
            &em,
            &token,
            Method::POST,
            "/sobjects/StaticResource",
            Some(json!({"Name": format!("p{i}"), "ContentType": "text/plain", "Body": "eA=="})),
        )
        .await;
    }
    let first: Value = client()
        .get(format!("{}/services/data/v60.0{}", em.base_url(), q("SELECT Id, Name FROM StaticResource")))
        .bearer_auth(&token)
        .header("Sforce-Query-Options", "batchSize=200")
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert_shape("restforce/sobject/query_paginated_first_page_response.json", &first, WHIZBANG);
    let next = first["nextRecordsUrl"].as_str().expect("next");
    let last: Value = client()
        .get(format!("{}{next}", em.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("more")
        .json()
        .await
        .expect("json");
    assert_shape("restforce/sobject/query_paginated_last_page_response.json", &last, WHIZBANG);

    let (_, _, global) = get(&em, &token, "/sobjects").await;
    assert_shape("restforce/sobject/describe_sobjects_success_response.json", &global, &[]);

    let (_, _, columns) = get(&em, &token, &format!("{}&columns=true", q("SELECT Id, Name FROM StaticResource"))).await;
    assert_shape("plugin-data/query_columns_simpleQuery.json", &columns, &[]);
    assert_eq!(columns["columnMetadata"][0]["apexType"], "Id");
    assert_eq!(columns["columnMetadata"][1]["textType"], true);
}

#[test]
fn the_shape_check_itself_catches_a_missing_key_and_a_wrong_type() {
    let mut out = Vec::new();
    differences(&json!({"a": 1, "b": {"c": "x"}}), &json!({"a": "1", "b": {}}), "$", &[], &mut out);
    assert_eq!(out, vec!["$.a is string but the fixture has number".to_string(), "$.b.c is missing".to_string()]);
}
