//! REST and Tooling: versions, limits, queries, StaticResource CRUD and validation,
//! permissions, faults, request log and resource serving.

mod common;

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use emulator::{FaultAction, FaultRule, Latency};
use reqwest::Method;
use serde_json::{Value, json};

fn resource(name: &str, body: &[u8]) -> Value {
    json!({"Name": name, "ContentType": "application/zip", "CacheControl": "Private", "Description": "release r1", "Body": STANDARD.encode(body)})
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, bytes) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default()).expect("entry");
            zip.write_all(bytes).expect("write");
        }
        zip.finish().expect("finish");
    }
    out.into_inner()
}

#[tokio::test]
async fn versions_are_listed_without_auth_and_retired_ones_answer_410() {
    let em = start().await;
    for path in ["/services/data", "/services/data/"] {
        let list: Vec<Value> =
            client().get(format!("{}{path}", em.base_url())).send().await.expect("GET").json().await.expect("json");
        assert!(list.iter().any(|v| v["version"] == "50.0"), "jsforce's default is served");
        assert!(list.iter().any(|v| v["version"] == "59.0"), "simple-salesforce's default is served");
        assert_eq!(list.last().expect("newest")["url"], format!("/services/data/v{}.0", emulator::LATEST_API_VERSION));
    }
    let token = admin_token(&em).await;
    let r = client()
        .get(format!("{}/services/data/v20.0/limits", em.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 410);
    let r = client()
        .get(format!("{}/services/data/v99.0/limits", em.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    let r = client()
        .get(format!("{}/services/data/latest/limits", em.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200, "`latest` is an alias of the newest version");
}

#[tokio::test]
async fn the_version_root_links_the_identity_url() {
    let em = start().await;
    let token = admin_token(&em).await;
    let (status, _, body) = get(&em, &token, "").await;
    assert_eq!(status, 200);
    let identity = body["identity"].as_str().expect("identity");
    assert!(
        identity.starts_with("http://") && identity.ends_with(&em.user_id("admin@prod.test").expect("user")),
        "{identity}"
    );
    assert_eq!(body["sobjects"], "/services/data/v60.0/sobjects");
}

#[tokio::test]
async fn every_rest_answer_counts_against_the_daily_allowance() {
    let em = start().await;
    let token = admin_token(&em).await;
    let (_, headers, body) = get(&em, &token, "/limits").await;
    assert_eq!(headers["sforce-limit-info"], "api-usage=1/100000");
    assert_eq!(body["DailyApiRequests"], json!({"Max": 100000, "Remaining": 99999}));
    let (_, headers, _) = get(&em, &token, &q("SELECT Id FROM Organization")).await;
    assert_eq!(headers["sforce-limit-info"], "api-usage=2/100000");
    let org = em.org_id_of_user("admin@prod.test").expect("org");
    em.set_api_usage(&org, 100, 100).expect("org");
    let (status, _, body) = get(&em, &token, "/limits").await;
    assert_eq!((status, code(&body)), (403, "REQUEST_LIMIT_EXCEEDED"));
    assert_eq!(body[0]["message"], "TotalRequests Limit exceeded.");
}

#[tokio::test]
async fn a_user_without_api_enabled_gets_api_currently_disabled_on_every_call() {
    let em = start().await;
    let token = token_for(&em, "noapi@prod.test").await;
    let (status, _, body) =
        get(&em, &token, &q("SELECT PermissionsCustomizeApplication FROM UserPermissionAccess")).await;
    assert_eq!((status, code(&body)), (403, "API_CURRENTLY_DISABLED"));
    // The identity URL is not the REST API and still answers.
    let r = client()
        .get(format!("{}/services/oauth2/userinfo", em.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn queries_answer_organization_user_and_permission_questions() {
    let em = start().await;
    let token = admin_token(&em).await;
    let (status, _, body) = get(
        &em,
        &token,
        &q("SELECT Name, InstanceName, IsSandbox, TrialExpirationDate, OrganizationType FROM Organization"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalSize"], 1);
    let org = &body["records"][0];
    assert_eq!((org["Name"].as_str(), org["IsSandbox"].as_bool()), (Some("Prod Org"), Some(false)));
    assert_eq!(org["attributes"]["type"], "Organization");
    let keys: Vec<&String> = org.as_object().expect("record").keys().collect();
    assert_eq!(
        keys,
        ["attributes", "Name", "InstanceName", "IsSandbox", "TrialExpirationDate", "OrganizationType"],
        "fields in the order asked"
    );

    let (_, _, body) =
        get(&em, &token, &q("SELECT PermissionsCustomizeApplication, PermissionsApiEnabled FROM UserPermissionAccess"))
            .await;
    assert_eq!(body["records"][0]["PermissionsCustomizeApplication"], true);
    let editor = token_for(&em, "editor@prod.test").await;
    let (_, _, body) = get(&em, &editor, &q("select permissionscustomizeapplication from userpermissionaccess")).await;
    assert_eq!(body["records"][0]["PermissionsCustomizeApplication"], false, "{body}");

    let user_id = em.user_id("editor@prod.test").expect("user");
    let (_, _, body) =
        get(&em, &token, &q(&format!("SELECT Id, Username, Email FROM User WHERE Id = '{user_id}'"))).await;
    assert_eq!(body["records"][0]["Username"], "editor@prod.test");
    let (status, _, body) = get(&em, &token, &format!("/sobjects/User/{user_id}")).await;
    assert_eq!((status, body["Email"].as_str()), (200, Some("editor@prod.test")));
}

#[tokio::test]
async fn bad_queries_get_salesforce_s_errors() {
    let em = start().await;
    let token = admin_token(&em).await;
    let cases = [
        ("SELECT Id FORM StaticResource", "MALFORMED_QUERY"),
        ("SELECT Id, Bogus FROM StaticResource", "INVALID_FIELD"),
        ("SELECT Id FROM Account", "INVALID_TYPE"),
        ("SELECT Id FROM StaticResource WHERE", "MALFORMED_QUERY"),
    ];
    for (soql, expected) in cases {
        let (status, _, body) = get(&em, &token, &q(soql)).await;
        assert_eq!((status, code(&body)), (400, expected), "{soql}: {body}");
        assert!(body[0]["message"].as_str().expect("message").contains("ERROR at Row:1:Column:"), "{body}");
    }
    let (status, _, body) = get(&em, &token, "/tooling/query?q=SELECT+Id+FROM+UserPermissionAccess").await;
    assert_eq!((status, code(&body)), (400, "INVALID_TYPE"), "UserPermissionAccess is not a Tooling object");
}

#[tokio::test]
async fn static_resources_can_be_created_found_updated_read_and_deleted() {
    let em = start().await;
    let token = admin_token(&em).await;
    let (status, created) =
        send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource("walkme_lightning", b"v1"))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["success"], true);
    let id = created["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("081") && id.len() == 18);

    let lookup = "SELECT Id, Name, NamespacePrefix, BodyLength, ContentType, CacheControl, LastModifiedDate, SystemModstamp FROM StaticResource WHERE Name = 'walkme_lightning' AND NamespacePrefix = null";
    for path in [q(lookup), format!("/tooling{}", q(lookup))] {
        let (status, _, body) = get(&em, &token, &path).await;
        assert_eq!((status, body["totalSize"].as_u64()), (200, Some(1)), "{path}: {body}");
        assert_eq!(body["records"][0]["Id"], id);
        assert_eq!(body["records"][0]["BodyLength"], 2);
        assert!(body["records"][0]["LastModifiedDate"].as_str().expect("date").ends_with("+0000"));
    }

    let (status, body) = send(
        &em,
        &token,
        Method::PATCH,
        &format!("/sobjects/StaticResource/{id}"),
        Some(json!({"Body": STANDARD.encode(b"version 2")})),
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    let r = client()
        .get(format!("{}/services/data/v60.0/sobjects/StaticResource/{id}/Body", em.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("body");
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), b"version 2");
    let (status, _, record) = get(&em, &token, &format!("/sobjects/StaticResource/{}", &id[..15])).await;
    assert_eq!((status, record["BodyLength"].as_u64()), (200, Some(9)), "a 15-character id works too");
    assert!(record["Body"].as_str().expect("body url").ends_with("/Body"));
    let (_, _, some) = get(&em, &token, &format!("/sobjects/StaticResource/{id}?fields=Name,CacheControl")).await;
    assert_eq!(some.as_object().expect("record").len(), 3, "attributes + the two fields: {some}");

    // Tooling update and delete work on the same record.
    let (status, _) = send(
        &em,
        &token,
        Method::PATCH,
        &format!("/tooling/sobjects/StaticResource/{id}"),
        Some(json!({"Description": "r2"})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(&em, &token, Method::DELETE, &format!("/tooling/sobjects/StaticResource/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _, body) = get(&em, &token, &format!("/sobjects/StaticResource/{id}")).await;
    assert_eq!((status, code(&body)), (404, "NOT_FOUND"));
    let (_, _, body) = get(&em, &token, &q(lookup)).await;
    assert_eq!(body["totalSize"], 0);
}

#[tokio::test]
async fn a_query_reads_who_last_changed_a_resource_through_its_parent() {
    // SOQL's relationship fields: `LastModifiedBy.Name` comes back nested under `LastModifiedBy`
    // with the parent's attributes, as Salesforce nests parent records (#17).
    let em = start().await;
    let token = admin_token(&em).await;
    let (status, created) =
        send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource("Player", b"v1"))).await;
    assert_eq!(status, 201, "{created}");
    let org = em.org_id_of_user("admin@prod.test").expect("org");
    let edit = emulator::ResourceEdit { body: Some("v2, from Setup".into()), ..Default::default() };
    em.edit_resource(&org, "Player", "editor@prod.test", &edit).expect("edit");
    let soql = "SELECT Id, Name, LastModifiedDate, LastModifiedBy.Name, LastModifiedBy.Username, CreatedBy.Name FROM StaticResource WHERE Name IN ('Player', 'Other')";
    let (status, _, body) = get(&em, &token, &format!("/tooling{}", q(soql))).await;
    assert_eq!((status, body["totalSize"].as_u64()), (200, Some(1)), "{body}");
    let record = &body["records"][0];
    let by = &record["LastModifiedBy"];
    assert_eq!(by["attributes"]["type"], "User", "{record}");
    assert_eq!(by["Username"], "editor@prod.test");
    assert!(by["Name"].is_string(), "{record}");
    assert!(record.get("LastModifiedBy.Name").is_none(), "never flat: {record}");
    assert_eq!(record["CreatedBy"]["attributes"]["type"], "User");
    assert_ne!(record["CreatedBy"]["attributes"]["url"], by["attributes"]["url"], "created by someone else");
    let (_, _, body) = get(&em, &token, &q("SELECT Id, Owner.Name FROM StaticResource")).await;
    assert_eq!(code(&body), "INVALID_FIELD", "{body}");
    assert!(em.edit_resource(&org, "Nothing", "editor@prod.test", &edit).is_err());
    assert!(em.edit_resource(&org, "Player", "admin@sandbox.test", &edit).is_err(), "not a user of that org");
}

#[tokio::test]
async fn static_resource_validation_matches_salesforce() {
    let em = start().await;
    let token = admin_token(&em).await;
    assert_eq!(send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource("taken", b"x"))).await.0, 201);
    let big = vec![7u8; 5 * 1024 * 1024 + 1];
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("duplicate name", "/sobjects/StaticResource", resource("Taken", b"y"), "DUPLICATE_VALUE"),
        ("name with a space", "/sobjects/StaticResource", resource("bad name", b"y"), "FIELD_INTEGRITY_EXCEPTION"),
        (
            "name with a double underscore",
            "/sobjects/StaticResource",
            resource("a__b", b"y"),
            "FIELD_INTEGRITY_EXCEPTION",
        ),
        (
            "name ending in an underscore",
            "/sobjects/StaticResource",
            resource("ab_", b"y"),
            "FIELD_INTEGRITY_EXCEPTION",
        ),
        ("name starting with a digit", "/sobjects/StaticResource", resource("1ab", b"y"), "FIELD_INTEGRITY_EXCEPTION"),
        ("name over 255 characters", "/sobjects/StaticResource", resource(&"a".repeat(256), b"y"), "STRING_TOO_LONG"),
        ("over 5 MB", "/sobjects/StaticResource", resource("big", &big), "FIELD_INTEGRITY_EXCEPTION"),
        (
            "no body",
            "/sobjects/StaticResource",
            json!({"Name": "nobody", "ContentType": "text/plain"}),
            "REQUIRED_FIELD_MISSING",
        ),
        (
            "tooling without CacheControl",
            "/tooling/sobjects/StaticResource",
            json!({"Name": "t1", "ContentType": "text/plain", "Body": "eA=="}),
            "REQUIRED_FIELD_MISSING",
        ),
        (
            "tooling without ContentType",
            "/tooling/sobjects/StaticResource",
            json!({"Name": "t2", "CacheControl": "Public", "Body": "eA=="}),
            "REQUIRED_FIELD_MISSING",
        ),
        (
            "bad CacheControl",
            "/sobjects/StaticResource",
            json!({"Name": "cc", "ContentType": "text/plain", "CacheControl": "Sometimes", "Body": "eA=="}),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        (
            "read-only field",
            "/sobjects/StaticResource",
            json!({"Name": "ro", "ContentType": "text/plain", "Body": "eA==", "BodyLength": 1}),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        (
            "unknown field",
            "/sobjects/StaticResource",
            json!({"Name": "uf", "ContentType": "text/plain", "Body": "eA==", "Colour": "red"}),
            "INVALID_FIELD",
        ),
        (
            "bad base64",
            "/sobjects/StaticResource",
            json!({"Name": "b64", "ContentType": "text/plain", "Body": "***"}),
            "JSON_PARSER_ERROR",
        ),
    ];
    for (what, path, body, expected) in cases {
        let (status, reply) = send(&em, &token, Method::POST, path, Some(body)).await;
        assert_eq!((status, code(&reply)), (400, expected), "{what}: {reply}");
    }
    let (_, reply) = send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource("big", &big))).await;
    assert_eq!(reply[0]["message"], "static resource cannot exceed 5MB");
    let (_, reply) = send(
        &em,
        &token,
        Method::POST,
        "/tooling/sobjects/StaticResource",
        Some(json!({"Name": "t1", "ContentType": "text/plain", "Body": "eA=="})),
    )
    .await;
    assert_eq!(reply[0]["fields"], json!(["CacheControl"]));
    let exactly_5mb = vec![1u8; 5 * 1024 * 1024];
    assert_eq!(
        send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource("five_mb", &exactly_5mb))).await.0,
        201
    );
}

#[tokio::test]
async fn without_customize_application_static_resources_are_read_only() {
    let em = start().await;
    let admin = admin_token(&em).await;
    let (_, created) =
        send(&em, &admin, Method::POST, "/sobjects/StaticResource", Some(resource("shared", b"x"))).await;
    let id = created["id"].as_str().expect("id");
    let editor = token_for(&em, "editor@prod.test").await;
    let (status, body) =
        send(&em, &editor, Method::POST, "/sobjects/StaticResource", Some(resource("mine", b"x"))).await;
    assert_eq!((status, code(&body)), (400, "INSUFFICIENT_ACCESS_OR_READONLY"));
    let (status, body) = send(
        &em,
        &editor,
        Method::PATCH,
        &format!("/tooling/sobjects/StaticResource/{id}"),
        Some(json!({"Body": "eQ=="})),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "INSUFFICIENT_ACCESS_OR_READONLY"));
    let (status, body) = send(&em, &editor, Method::DELETE, &format!("/sobjects/StaticResource/{id}"), None).await;
    assert_eq!((status, code(&body)), (400, "INSUFFICIENT_ACCESS_OR_READONLY"));
    let (status, _, body) = get(&em, &editor, &q("SELECT Id FROM StaticResource")).await;
    assert_eq!((status, body["totalSize"].as_u64()), (200, Some(1)), "reading still works");
}

#[tokio::test]
async fn orgs_never_see_each_other_s_resources() {
    let em = start().await;
    let prod = admin_token(&em).await;
    let (_, created) =
        send(&em, &prod, Method::POST, "/sobjects/StaticResource", Some(resource("private_one", b"x"))).await;
    let id = created["id"].as_str().expect("id");
    let sandbox = token_for(&em, "admin@sandbox.test").await;
    let (_, _, body) = get(&em, &sandbox, &q("SELECT Id FROM StaticResource")).await;
    assert_eq!(body["totalSize"], 0);
    let (status, _, _) = get(&em, &sandbox, &format!("/sobjects/StaticResource/{id}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        send(&em, &sandbox, Method::POST, "/sobjects/StaticResource", Some(resource("private_one", b"y"))).await.0,
        201,
        "names are unique per org only"
    );
}

#[tokio::test]
async fn large_results_page_through_next_records_url() {
    let em = start().await;
    let token = admin_token(&em).await;
    for i in 0..250 {
        assert_eq!(
            send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource(&format!("r{i:03}"), b"x")))
                .await
                .0,
            201
        );
    }
    let r = client()
        .get(format!("{}/services/data/v60.0{}", em.base_url(), q("SELECT Id, Name FROM StaticResource ORDER BY Name")))
        .bearer_auth(&token)
        .header("Sforce-Query-Options", "batchSize=200")
        .send()
        .await
        .expect("query");
    let first: Value = r.json().await.expect("json");
    assert_eq!((first["totalSize"].as_u64(), first["done"].as_bool()), (Some(250), Some(false)));
    assert_eq!(first["records"].as_array().expect("records").len(), 200);
    let next = first["nextRecordsUrl"].as_str().expect("nextRecordsUrl");
    let r = client().get(format!("{}{next}", em.base_url())).bearer_auth(&token).send().await.expect("more");
    let last: Value = r.json().await.expect("json");
    assert_eq!((last["done"].as_bool(), last["records"].as_array().map(Vec::len)), (Some(true), Some(50)));
    assert_eq!(last["records"][49]["Name"], "r249");
    let (_, _, count) = get(&em, &token, &q("SELECT COUNT() FROM StaticResource")).await;
    assert_eq!(count["totalSize"], 250);
}

#[tokio::test]
async fn a_published_zip_is_served_at_its_resource_url() {
    let em = start().await;
    let token = admin_token(&em).await;
    let bundle = zip_of(&[("player/walkme.js", b"console.log('hi')"), ("style.css", b"body{}")]);
    let (_, created) =
        send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource("walkme", &bundle))).await;
    assert!(created["success"].as_bool().expect("success"));
    let org = em.org_id_of_user("admin@prod.test").expect("org");
    let info = em.resources(&org).into_iter().find(|r| r.name == "walkme").expect("listed");
    let r = client().get(format!("{}{}/player/walkme.js", em.base_url(), info.url_path)).send().await.expect("served");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/javascript");
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), b"console.log('hi')");
    let r = client().get(format!("{}{}/style.css", em.base_url(), info.url_path)).send().await.expect("served");
    assert_eq!(r.headers()["content-type"], "text/css");
    let r = client().get(format!("{}{}/missing.js", em.base_url(), info.url_path)).send().await.expect("served");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn injected_errors_hit_the_next_n_matching_calls_then_stop() {
    let em = start().await;
    let token = admin_token(&em).await;
    em.add_fault(FaultRule::error("/sobjects/StaticResource", 2, 503, "SERVER_UNAVAILABLE"));
    for _ in 0..2 {
        let (status, body) =
            send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource("flaky", b"x"))).await;
        assert_eq!((status, code(&body)), (503, "SERVER_UNAVAILABLE"));
    }
    assert_eq!(send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource("flaky", b"x"))).await.0, 201);
    let faults: Vec<_> = em.requests().into_iter().filter(|r| r.fault.is_some()).collect();
    assert_eq!(faults.len(), 2);
    // OAuth paths get OAuth-shaped errors.
    em.add_fault(FaultRule::error("/services/oauth2/token", 1, 400, "invalid_grant"));
    let (status, body) = token_(&em).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

async fn token_(em: &emulator::Emulator) -> (u16, Value) {
    token(em.base_url(), &[("grant_type", "client_credentials"), ("client_id", CC_KEY), ("client_secret", "cc-secret")])
        .await
}

#[tokio::test]
async fn a_percentage_fault_fails_about_that_share_of_calls() {
    let em = start().await;
    let token = admin_token(&em).await;
    em.add_fault(FaultRule {
        percent: Some(50.0),
        times: None,
        ..FaultRule::error("/limits", 0, 500, "UNKNOWN_EXCEPTION")
    });
    let mut failed = 0;
    for _ in 0..200 {
        if get(&em, &token, "/limits").await.0 == 500 {
            failed += 1;
        }
    }
    assert!((60..=140).contains(&failed), "about half of 200 calls fail, got {failed}");
}

#[tokio::test]
async fn a_drop_fault_closes_the_connection_without_an_answer() {
    let em = start().await;
    let token = admin_token(&em).await;
    em.add_fault(FaultRule {
        times: Some(1),
        ..FaultRule { action: FaultAction::Drop, ..FaultRule::error("/limits", 1, 500, "x") }
    });
    let err = client()
        .get(format!("{}/services/data/v60.0/limits", em.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect_err("the connection is dropped");
    assert!(err.is_request() || err.is_connect() || err.to_string().contains("connection"), "{err:?}");
    assert_eq!(get(&em, &token, "/limits").await.0, 200, "the next call is answered");
}

#[tokio::test]
async fn faults_can_target_one_org() {
    let em = start().await;
    let prod = admin_token(&em).await;
    let sandbox = token_for(&em, "admin@sandbox.test").await;
    let sandbox_org = em.org_id_of_user("admin@sandbox.test").expect("org");
    em.add_fault(FaultRule {
        org_id: Some(sandbox_org),
        times: None,
        ..FaultRule::error("/limits", 0, 403, "REQUEST_LIMIT_EXCEEDED")
    });
    assert_eq!(get(&em, &prod, "/limits").await.0, 200);
    let (status, _, body) = get(&em, &sandbox, "/limits").await;
    assert_eq!((status, code(&body)), (403, "REQUEST_LIMIT_EXCEEDED"));
}

#[tokio::test]
async fn latency_is_added_to_each_call() {
    let em = start().await;
    let token = admin_token(&em).await;
    em.set_latency(Latency { fixed_ms: 120, jitter_ms: 0 });
    let started = std::time::Instant::now();
    assert_eq!(get(&em, &token, "/limits").await.0, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(120), "the call waited for the injected latency");
    let last = em.requests().pop().expect("logged");
    assert!(last.duration_us >= 120_000, "the log records the delay");
}

#[tokio::test]
async fn the_request_log_records_operations_without_secrets() {
    let em = start().await;
    let reply = sign_in(&em, "admin@prod.test").await;
    let token = access(&reply);
    send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource("logged", b"x"))).await;
    let log = em.requests();
    let ops: Vec<&str> = log.iter().filter_map(|r| r.operation.as_deref()).collect();
    for expected in [
        "authorize:login_page",
        "authorize:approve_page",
        "authorize:code",
        "token:authorization_code",
        "create:StaticResource",
    ] {
        assert!(ops.contains(&expected), "{expected} missing from {ops:?}");
    }
    let create = log.iter().find(|r| r.operation.as_deref() == Some("create:StaticResource")).expect("create");
    assert_eq!(create.org_id, em.org_id_of_user("admin@prod.test"));
    let dump = serde_json::to_string(&log).expect("json");
    assert!(!dump.contains(&token), "no access token in the log");
    assert!(!dump.contains(reply["refresh_token"].as_str().expect("rt")), "no refresh token in the log");
    // The admin API serves the same log.
    let over_http: Vec<Value> = client()
        .get(format!("{}/__emulator/requests", em.base_url()))
        .send()
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    assert_eq!(over_http.len(), log.len());
}

#[tokio::test]
async fn chunked_request_bodies_are_accepted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let em = start().await;
    let body = "grant_type=client_credentials&client_id=3MVG9ClientCredentialsKey&client_secret=cc-secret";
    let mut request = "POST /services/oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_string();
    for chunk in body.as_bytes().chunks(7) {
        request.push_str(&format!("{:x}\r\n{}\r\n", chunk.len(), std::str::from_utf8(chunk).expect("ascii")));
    }
    request.push_str("0\r\n\r\n");
    let addr = em.base_url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.expect("read");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("access_token"));
}

#[tokio::test]
async fn the_admin_api_controls_the_emulator_over_http() {
    let em = start().await;
    let admin = format!("{}/__emulator", em.base_url());
    let http = client();
    let r = http
        .post(format!("{admin}/orgs"))
        .json(&json!({"name": "Added Org", "users": [{"username": "new@added.test"}]}))
        .send()
        .await
        .expect("add org");
    assert_eq!(r.status(), 201);
    let org: Value = r.json().await.expect("json");
    assert!(org["id"].as_str().expect("id").starts_with("00D"));
    let r = http
        .post(format!("{admin}/orgs"))
        .json(&json!({"name": "Dup", "users": [{"username": "new@added.test"}]}))
        .send()
        .await
        .expect("dup");
    assert_eq!(r.status(), 400, "a duplicate username is refused");
    let token = token_for(&em, "new@added.test").await;
    assert_eq!(get(&em, &token, "/limits").await.0, 200);
    let r = http.post(format!("{admin}/users/new@added.test/revoke")).send().await.expect("revoke");
    assert_eq!(r.status(), 200);
    assert_eq!(get(&em, &token, "/limits").await.0, 401);
    let r = http.post(format!("{admin}/faults")).json(&json!({"path_contains": "/limits", "times": 1, "action": {"kind": "error", "status": 500, "error_code": "UNKNOWN_EXCEPTION"}})).send().await.expect("fault");
    assert_eq!(r.status(), 201);
    let fresh = token_for(&em, "new@added.test").await;
    assert_eq!(get(&em, &fresh, "/limits").await.0, 500);
    assert_eq!(get(&em, &fresh, "/limits").await.0, 200);
    let r = http.post(format!("{admin}/tokens/expire")).send().await.expect("expire");
    assert_eq!(r.status(), 200);
    assert_eq!(get(&em, &fresh, "/limits").await.0, 401);
    let r = http.put(format!("{admin}/latency")).json(&json!({"fixed_ms": 5})).send().await.expect("latency");
    assert_eq!(r.status(), 204);
    let r = http
        .patch(format!("{admin}/users/new@added.test"))
        .json(&json!({"api_enabled": false}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 204);
    let r = http
        .patch(format!("{admin}/users/nobody@nowhere"))
        .json(&json!({"api_enabled": false}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 404);
    let r = http
        .post(format!("{admin}/faults"))
        .json(&json!({"action": {"kind": "explode"}}))
        .send()
        .await
        .expect("bad fault");
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_managed_packages_resource_shares_the_name_and_no_api_call_touches_it() {
    let em = start().await;
    let token = admin_token(&em).await;
    let prod = em.org_id_of_user("admin@prod.test").expect("org");
    let managed = emulator::ManagedResourceSeed {
        namespace: "acmepkg".into(),
        name: "walkme_lightning".into(),
        content_type: "text/javascript".into(),
        body: "managed();".into(),
    };
    let managed_id = em.install_managed_resource(&prod, &managed).expect("install");
    assert!(em.install_managed_resource(&prod, &managed).is_err(), "once per namespace");
    // Lookups that say `NamespacePrefix = null` see only the org's own.
    let own = "SELECT Id FROM StaticResource WHERE Name = 'walkme_lightning' AND NamespacePrefix = null";
    let (_, _, body) = get(&em, &token, &q(own)).await;
    assert_eq!(body["totalSize"], 0, "{body}");
    let (_, _, body) = get(&em, &token, &q("SELECT Id, NamespacePrefix FROM StaticResource")).await;
    assert_eq!(body["records"][0]["NamespacePrefix"], "acmepkg", "{body}");
    // The same name is free outside the package's namespace.
    let (status, created) =
        send(&em, &token, Method::POST, "/sobjects/StaticResource", Some(resource("WalkMe_Lightning", b"own"))).await;
    assert_eq!(status, 201, "{created}");
    let (_, _, body) = get(&em, &token, &q(own)).await;
    assert_eq!(body["records"][0]["Id"], created["id"], "{body}");
    // The package's resource cannot be changed or deleted, through either API.
    let path = format!("/sobjects/StaticResource/{managed_id}");
    for prefix in ["", "/tooling"] {
        let patch = Some(json!({"Body": STANDARD.encode(b"hijacked")}));
        let (status, body) = send(&em, &token, Method::PATCH, &format!("{prefix}{path}"), patch).await;
        assert_eq!((status, code(&body)), (400, "CANNOT_MODIFY_MANAGED_OBJECT"), "{body}");
        assert!(body[0]["message"].as_str().expect("message").contains("entity=StaticResource"), "{body}");
        let (status, body) = send(&em, &token, Method::DELETE, &format!("{prefix}{path}"), None).await;
        assert_eq!((status, code(&body)), (400, "CANNOT_DELETE_MANAGED_OBJECT"), "{body}");
    }
    // Served under its namespaced name, unchanged.
    let served =
        client().get(format!("{}/resource/1/acmepkg__walkme_lightning", em.base_url())).send().await.expect("serve");
    assert_eq!(served.text().await.expect("text"), "managed();");
    // And through the admin API.
    let url = format!("{}/__emulator/orgs/{prod}/managed-resources", em.base_url());
    let installed = client()
        .post(&url)
        .json(&json!({"namespace": "otherpkg", "name": "walkme_lightning"}))
        .send()
        .await
        .expect("admin");
    assert_eq!(installed.status(), 201);
    let bad =
        client().post(&url).json(&json!({"namespace": "two__underscores", "name": "x"})).send().await.expect("admin");
    assert_eq!(bad.status(), 400);
}

/// A raw write: its status and Salesforce's error code.
async fn write_raw(
    em: &emulator::Emulator,
    token: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let mut request =
        client().post(format!("{}/services/data/v60.0{path}", em.base_url())).bearer_auth(token).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.expect("write");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, code(&body).to_string())
}

fn multipart_body(boundary: &str, fields_part_name: Option<&str>) -> Vec<u8> {
    let disposition = match fields_part_name {
        Some(name) => format!("form-data; name=\"{name}\""),
        None => "form-data".to_string(),
    };
    format!(
        "--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: application/json\r\n\r\n\
         {{\"Name\":\"Strict\",\"ContentType\":\"application/zip\",\"CacheControl\":\"Private\"}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"Body\"; filename=\"b.zip\"\r\n\
         Content-Type: application/zip\r\n\r\nPK\r\n--{boundary}--\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn writes_take_json_or_multipart_form_data_on_rest_and_anything_else_answers_415() {
    let em = start().await;
    let token = admin_token(&em).await;
    let json_body = serde_json::to_vec(&resource("Strict", b"PK")).expect("json");
    let objects = "/sobjects/StaticResource";
    let tooling = "/tooling/sobjects/StaticResource";
    for (content_type, path) in
        [(Some("text/plain"), objects), (Some("application/x-www-form-urlencoded"), tooling), (None, objects)]
    {
        let (status, code) = write_raw(&em, &token, path, content_type, json_body.clone()).await;
        assert_eq!((status, code.as_str()), (415, "UNSUPPORTED_MEDIA_TYPE"), "{content_type:?} on {path}");
    }
    // Multipart is the REST API's form for blobs: not Tooling's, and only form-data.
    let form = "multipart/form-data; boundary=b0";
    let (status, code) = write_raw(&em, &token, tooling, Some(form), multipart_body("b0", Some("entity"))).await;
    assert_eq!((status, code.as_str()), (415, "UNSUPPORTED_MEDIA_TYPE"), "Tooling takes no multipart");
    let related = "multipart/related; boundary=b0";
    let (status, code) = write_raw(&em, &token, objects, Some(related), multipart_body("b0", Some("entity"))).await;
    assert_eq!((status, code.as_str()), (415, "UNSUPPORTED_MEDIA_TYPE"), "nforce#74's multipart/related");
    let (status, code) = write_raw(&em, &token, objects, Some(form), multipart_body("b0", None)).await;
    assert_eq!((status, code.as_str()), (400, "MALFORMED_REQUEST"), "the fields part has a name");
    let (status, _) =
        write_raw(&em, &token, objects, Some(form), multipart_body("b0", Some("entity_staticresource"))).await;
    assert_eq!(status, 201);
    let (status, _) = write_raw(&em, &token, tooling, Some("application/json; charset=UTF-8"), {
        serde_json::to_vec(&resource("Strict_Two", b"PK")).expect("json")
    })
    .await;
    assert_eq!(status, 201, "JSON with parameters is JSON");
}
