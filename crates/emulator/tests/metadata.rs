//! The Metadata API's REST deploy (issue #15): deploys with a ZIP, their status and details,
//! `checkOnly`, `rollbackOnError`, removal, cancel, the permission it needs, and the deployed
//! components read back through queries.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use emulator::{Emulator, UserChange};
use serde_json::{Value, json};

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, text) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default()).expect("entry");
            zip.write_all(text.as_bytes()).expect("write");
        }
        zip.finish().expect("finish");
    }
    out.into_inner()
}

fn package(types: &[(&str, &str)]) -> String {
    let body: String =
        types.iter().map(|(t, m)| format!("<types><members>{m}</members><name>{t}</name></types>")).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Package xmlns=\"http://soap.sforce.com/2006/04/metadata\">{body}<version>60.0</version></Package>"
    )
}

const CMP: &str = "<aura:component implements=\"lightning:backgroundUtilityItem\">\n  <ltng:require scripts=\"{!$Resource.Player + '/player.js'}\" afterScriptsLoaded=\"{!c.loaded}\"/>\n</aura:component>";
const CMP_META: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><AuraDefinitionBundle xmlns=\"http://soap.sforce.com/2006/04/metadata\"><apiVersion>60.0</apiVersion><description>lightbridge loader v1 sha256:abc</description></AuraDefinitionBundle>";
const CSP: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CspTrustedSite xmlns=\"http://soap.sforce.com/2006/04/metadata\"><context>LEX</context><description>lightbridge v1</description><endpointUrl>https://api.example.com</endpointUrl><isActive>true</isActive><isApplicableToConnectSrc>true</isApplicableToConnectSrc></CspTrustedSite>";

fn loader_zip(with_resource: bool) -> Vec<u8> {
    let mut types = vec![("AuraDefinitionBundle", "lbLoader"), ("CspTrustedSite", "Lightbridge_Api")];
    let mut files = vec![
        ("aura/lbLoader/lbLoader.cmp", CMP.to_string()),
        ("aura/lbLoader/lbLoader.cmp-meta.xml", CMP_META.to_string()),
        ("aura/lbLoader/lbLoaderController.js", "({ loaded: function () {} })".to_string()),
        ("cspTrustedSites/Lightbridge_Api.cspTrustedSite", CSP.to_string()),
    ];
    if with_resource {
        types.push(("StaticResource", "Player"));
        files.push(("staticresources/Player.resource", "PK-not-really".to_string()));
        files.push((
            "staticresources/Player.resource-meta.xml",
            "<StaticResource><cacheControl>Public</cacheControl><contentType>application/zip</contentType></StaticResource>"
                .to_string(),
        ));
    }
    let manifest = package(&types);
    files.push(("package.xml", manifest));
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    zip_of(&refs)
}

async fn deploy(em: &Emulator, token: &str, options: Value, zip: Vec<u8>) -> (u16, Value) {
    let boundary = "----lightbridge-test";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"json\"\r\nContent-Type: application/json\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"deploy.zip\"\r\nContent-Type: application/zip\r\n\r\n",
        json!({"deployOptions": options})
    )
    .into_bytes();
    body.extend_from_slice(&zip);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = client()
        .post(format!("{}/services/data/v60.0/metadata/deployRequest", em.base_url()))
        .bearer_auth(token)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .expect("deploy");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn status(em: &Emulator, token: &str, id: &str) -> Value {
    let (code, _, body) = get(em, token, &format!("/metadata/deployRequest/{id}?includeDetails=true")).await;
    assert_eq!(code, 200, "{body}");
    body["deployResult"].clone()
}

async fn tooling(em: &Emulator, token: &str, soql: &str) -> Value {
    let (code, _, body) = get(em, token, &format!("/tooling{}", q(soql))).await;
    assert_eq!(code, 200, "{body}");
    body
}

fn started(em: &Emulator) {
    // A minute: far longer than any real time a test takes between two steps, so the
    // emulated clock alone decides when a deploy is done.
    em.set_deploy_time(Duration::from_secs(60));
}

#[tokio::test]
async fn a_deploy_runs_on_the_emulators_clock_and_its_components_read_back() {
    let em = start().await;
    started(&em);
    let token = admin_token(&em).await;
    let (code, created) =
        deploy(&em, &token, json!({"rollbackOnError": true, "singlePackage": true}), loader_zip(true)).await;
    assert_eq!(code, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("0Af"), "{id}");
    assert_eq!(
        (created["deployResult"]["status"].as_str(), created["deployResult"]["done"].as_bool()),
        (Some("Pending"), Some(false))
    );
    em.advance_clock(Duration::from_secs(30));
    assert_eq!(status(&em, &token, &id).await["status"], "InProgress");
    let none = tooling(&em, &token, "SELECT Id FROM AuraDefinitionBundle").await;
    assert_eq!(none["totalSize"], 0, "nothing until the deploy is done");
    em.advance_clock(Duration::from_millis(30_100));
    let done = status(&em, &token, &id).await;
    assert_eq!(
        (done["status"].as_str(), done["success"].as_bool(), done["done"].as_bool()),
        (Some("Succeeded"), Some(true), Some(true)),
        "{done}"
    );
    assert_eq!(done["numberComponentsDeployed"], 3);
    let names: Vec<&str> = done["details"]["componentSuccesses"]
        .as_array()
        .expect("successes")
        .iter()
        .filter_map(|s| s["fullName"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let aura = tooling(&em, &token, "SELECT Id, DeveloperName, Description, ApiVersion, NamespacePrefix FROM AuraDefinitionBundle WHERE DeveloperName = 'lbLoader'").await;
    assert_eq!(aura["records"][0]["Description"], "lightbridge loader v1 sha256:abc", "{aura}");
    assert!(aura["records"][0]["Id"].as_str().expect("id").starts_with("0Ab"));
    let site =
        tooling(&em, &token, "SELECT EndpointUrl, Context, IsActive, IsApplicableToConnectSrc FROM CspTrustedSite")
            .await;
    assert_eq!(site["records"][0]["EndpointUrl"], "https://api.example.com", "{site}");
    assert_eq!(site["records"][0]["IsApplicableToConnectSrc"], true);
    let (code, _, data) = get(&em, &token, &q("SELECT DeveloperName FROM CspTrustedSite")).await;
    assert_eq!((code, data["totalSize"].as_u64()), (200, Some(1)), "the data API reads CSP Trusted Sites too");
    assert!(em.resource_body(&em.org_id_of_user("admin@prod.test").expect("org"), "Player").is_some());
    // Without details the answer leaves them out.
    let (_, _, plain) = get(&em, &token, &format!("/metadata/deployRequest/{id}")).await;
    assert!(plain["deployResult"]["details"].is_null(), "{plain}");
}

#[tokio::test]
async fn failures_name_the_component_and_roll_everything_back_and_check_only_changes_nothing() {
    let em = start().await;
    started(&em);
    let token = admin_token(&em).await;
    // The bundle loads a static resource the org does not have.
    let (_, created) = deploy(&em, &token, json!({"rollbackOnError": true}), loader_zip(false)).await;
    let id = created["id"].as_str().expect("id").to_string();
    let running = status(&em, &token, &id).await;
    assert_eq!(
        running["details"]["componentFailures"][0]["problem"], "No STATIC_RESOURCE named Player found",
        "failures show while it runs: {running}"
    );
    em.advance_clock(Duration::from_secs(61));
    let failed = status(&em, &token, &id).await;
    assert_eq!((failed["status"].as_str(), failed["success"].as_bool()), (Some("Failed"), Some(false)), "{failed}");
    let failure = &failed["details"]["componentFailures"][0];
    assert_eq!(
        (failure["componentType"].as_str(), failure["fullName"].as_str(), failure["fileName"].as_str()),
        (Some("AuraDefinitionBundle"), Some("lbLoader"), Some("aura/lbLoader/lbLoader.cmp"))
    );
    assert_eq!(tooling(&em, &token, "SELECT Id FROM CspTrustedSite").await["totalSize"], 0, "rolled back");
    // Without rollbackOnError the rest is deployed: SucceededPartial.
    let (_, partial) = deploy(&em, &token, json!({"rollbackOnError": false}), loader_zip(false)).await;
    em.advance_clock(Duration::from_secs(61));
    let partial = status(&em, &token, partial["id"].as_str().expect("id")).await;
    assert_eq!(partial["status"], "SucceededPartial", "{partial}");
    assert_eq!(tooling(&em, &token, "SELECT Id FROM CspTrustedSite").await["totalSize"], 1);
    // checkOnly: validated, nothing saved.
    let (_, check) = deploy(&em, &token, json!({"checkOnly": true, "rollbackOnError": true}), loader_zip(true)).await;
    em.advance_clock(Duration::from_secs(61));
    let check = status(&em, &token, check["id"].as_str().expect("id")).await;
    assert_eq!((check["status"].as_str(), check["checkOnly"].as_bool()), (Some("Succeeded"), Some(true)), "{check}");
    assert_eq!(
        tooling(&em, &token, "SELECT Id FROM AuraDefinitionBundle").await["totalSize"],
        0,
        "validation saves nothing"
    );
    // Bad packages: no package.xml, an unknown type, a type the emulator does not model.
    for (files, problem) in [
        (vec![("aura/x/x.cmp", CMP)], "No package.xml found"),
        (
            vec![("package.xml", "<Package><types><members>x</members><name>Gizmo</name></types></Package>")],
            "Unknown type name 'Gizmo' specified in package.xml",
        ),
        (
            vec![(
                "package.xml",
                "<Package><types><members>lbLoader</members><name>AuraDefinitionBundle</name></types></Package>",
            )],
            "An object 'lbLoader' of type AuraDefinitionBundle was named in package.xml, but was not found in zipped directory",
        ),
    ] {
        let (_, d) = deploy(&em, &token, json!({}), zip_of(&files)).await;
        let d = status(&em, &token, d["id"].as_str().expect("id")).await;
        assert_eq!(d["details"]["componentFailures"][0]["problem"], problem, "{d}");
    }
}

#[tokio::test]
async fn removal_cancel_permission_and_test_levels_answer_as_salesforce_does() {
    let em = start().await;
    started(&em);
    let token = admin_token(&em).await;
    let (_, first) = deploy(&em, &token, json!({"rollbackOnError": true}), loader_zip(true)).await;
    em.advance_clock(Duration::from_secs(61));
    assert_eq!(status(&em, &token, first["id"].as_str().expect("id")).await["status"], "Succeeded");
    // Removal: destructiveChanges.xml beside an empty package.xml; a missing member is a warning.
    let destructive = package(&[("AuraDefinitionBundle", "lbLoader"), ("CspTrustedSite", "Not_There")]);
    let (_, removal) = deploy(
        &em,
        &token,
        json!({"rollbackOnError": true}),
        zip_of(&[("package.xml", &package(&[])), ("destructiveChanges.xml", &destructive)]),
    )
    .await;
    em.advance_clock(Duration::from_secs(61));
    let removal = status(&em, &token, removal["id"].as_str().expect("id")).await;
    assert_eq!(removal["status"], "Succeeded", "{removal}");
    assert_eq!(removal["details"]["componentFailures"][0]["problemType"], "Warning");
    assert_eq!(tooling(&em, &token, "SELECT Id FROM AuraDefinitionBundle").await["totalSize"], 0);
    assert_eq!(tooling(&em, &token, "SELECT Id FROM CspTrustedSite").await["totalSize"], 1, "only what was listed");
    // Cancel before it is done: nothing happens.
    let (_, again) = deploy(&em, &token, json!({"rollbackOnError": true}), loader_zip(true)).await;
    let id = again["id"].as_str().expect("id");
    let canceled = client()
        .patch(format!("{}/services/data/v60.0/metadata/deployRequest/{id}", em.base_url()))
        .bearer_auth(&token)
        .json(&json!({"deployResult": {"status": "Canceling"}}))
        .send()
        .await
        .expect("cancel");
    assert_eq!(canceled.status(), 202);
    em.advance_clock(Duration::from_secs(61));
    assert_eq!(status(&em, &token, id).await["status"], "Canceled");
    assert_eq!(tooling(&em, &token, "SELECT Id FROM AuraDefinitionBundle").await["totalSize"], 0);
    // NoTestRun is refused in production.
    let (code, body) = deploy(&em, &token, json!({"testLevel": "NoTestRun"}), loader_zip(true)).await;
    assert_eq!((code, code_of(&body)), (400, "INVALID_OPERATION"), "{body}");
    // Without Modify Metadata (nor Modify All Data): refused before any deploy, and the
    // caller's permissions say so beforehand.
    let change =
        UserChange { modify_metadata: Some(false), customize_application: Some(false), ..UserChange::default() };
    em.set_user("admin@prod.test", &change).expect("change");
    let (_, _, perms) =
        get(&em, &token, &q("SELECT PermissionsModifyAllData, PermissionsModifyMetadata FROM UserPermissionAccess"))
            .await;
    assert_eq!(perms["records"][0]["PermissionsModifyMetadata"], false, "{perms}");
    let (code, body) = deploy(&em, &token, json!({}), loader_zip(true)).await;
    assert_eq!((code, code_of(&body)), (403, "INSUFFICIENT_ACCESS"), "{body}");
    // Another org's deploy is not found.
    let other = token_for(&em, "admin@sandbox.test").await;
    let (code, _, _) = get(&em, &other, &format!("/metadata/deployRequest/{id}")).await;
    assert_eq!(code, 404);
}

fn code_of(body: &Value) -> &str {
    body[0]["errorCode"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn the_lightning_page_stand_in_needs_a_session_and_builds_its_policy_from_trusted_sites() {
    let em = start().await;
    started(&em);
    let token = admin_token(&em).await;
    let (_, d) = deploy(&em, &token, json!({"rollbackOnError": true}), loader_zip(true)).await;
    em.advance_clock(Duration::from_secs(61));
    assert_eq!(status(&em, &token, d["id"].as_str().expect("id")).await["status"], "Succeeded");
    let page = sales_bar(&["c:lbLoader"]);
    let manifest = package(&[("FlexiPage", "LightningSales_UtilityBar")]);
    let zip = zip_of(&[("flexipages/LightningSales_UtilityBar.flexipage", &page), ("package.xml", &manifest)]);
    assert_eq!(finished(&em, &token, zip, json!({})).await["status"], "Succeeded");
    let front = |sid: &str, ret: &str| {
        client().get(format!("{}/secur/frontdoor.jsp?sid={sid}&retURL={ret}", em.base_url())).send()
    };
    assert_eq!(front("not-a-session", "/lightning/page/home").await.expect("front").status(), 401);
    // Only a path on this host: an absolute URL is not followed.
    let signed = front(&token, "https://elsewhere.example/").await.expect("front");
    assert_eq!(signed.status(), 302);
    assert_eq!(signed.headers()["location"], "/lightning/page/home");
    let tabbed = front(&token, "/%09/elsewhere.example").await.expect("front");
    assert_eq!(tabbed.headers()["location"], "/lightning/page/home", "a control character is no path");
    let cookie = signed.headers()["set-cookie"].to_str().expect("cookie").split(';').next().expect("pair").to_string();
    let home = format!("{}/lightning/page/home", em.base_url());
    assert_eq!(client().get(&home).send().await.expect("home").status(), 401, "no session, no page");
    let page = client().get(&home).header("cookie", &cookie).send().await.expect("home");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().expect("csp").to_string();
    assert!(csp.contains("script-src 'self';") && csp.contains("connect-src 'self' https://api.example.com"), "{csp}");
    let html = page.text().await.expect("html");
    assert!(html.contains("lbLoader") && html.contains("/resource/") && html.contains("/Player/player.js"), "{html}");
    let controller = client()
        .get(format!("{}/lightning/aura/lbLoader/controller.js", em.base_url()))
        .header("cookie", &cookie)
        .send();
    assert!(controller.await.expect("controller").text().await.expect("js").contains("loaded: function"));
}

/// The seeded Sales utility bar with `extra` added to its background region.
fn sales_bar(extra: &[&str]) -> String {
    let background: String = extra
        .iter()
        .map(|c| {
            format!(
                "<itemInstances><componentInstance><componentName>{c}</componentName><identifier>{}</identifier></componentInstance></itemInstances>",
                c.replace(':', "_")
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><FlexiPage xmlns=\"http://soap.sforce.com/2006/04/metadata\"><flexiPageRegions><itemInstances><componentInstance><componentName>notes:utilityBarNoteList</componentName><identifier>notes_utilityBarNoteList</identifier></componentInstance></itemInstances><name>utilityItems</name><type>Region</type></flexiPageRegions><flexiPageRegions>{background}<name>backgroundComponents</name><type>Background</type></flexiPageRegions><masterLabel>Sales UtilityBar</masterLabel><template><name>one:utilityBarTemplateDesktop</name></template><type>UtilityBar</type></FlexiPage>"
    )
}

async fn finished(em: &Emulator, token: &str, zip: Vec<u8>, options: Value) -> Value {
    let (code, d) = deploy(em, token, options, zip).await;
    assert_eq!(code, 201, "{d}");
    em.advance_clock(Duration::from_secs(61));
    status(em, token, d["id"].as_str().expect("id")).await
}

fn problems(result: &Value) -> String {
    result["details"]["componentFailures"].to_string()
}

#[tokio::test]
async fn apps_utility_bars_decide_where_background_items_run_and_what_can_be_deleted() {
    let em = start().await;
    started(&em);
    let token = admin_token(&em).await;
    // The org's apps, as AppDefinition shows them: Sales has a utility bar, Service none.
    let (code, _, apps) =
        get(&em, &token, &q("SELECT DeveloperName, NamespacePrefix, Label, UtilityBar FROM AppDefinition")).await;
    assert_eq!(code, 200, "{apps}");
    let rows: Vec<(String, String)> = apps["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| (r["DeveloperName"].as_str().unwrap_or("").to_string(), r["UtilityBar"].to_string()))
        .collect();
    assert_eq!(
        rows,
        [
            ("LightningSales".to_string(), "\"LightningSales_UtilityBar\"".to_string()),
            ("LightningService".to_string(), "null".to_string())
        ]
    );
    assert_eq!(apps["records"][0]["NamespacePrefix"], "standard");
    // The admin API adds an app with its bar; bad names and unknown orgs are refused.
    let (_, _, org) = get(&em, &token, &q("SELECT Id FROM Organization")).await;
    let org = org["records"][0]["Id"].as_str().expect("org").to_string();
    let add = |org: String, body: Value| {
        client().post(format!("{}/__emulator/orgs/{org}/lightning-apps", em.base_url())).json(&body).send()
    };
    let field_ops = json!({"developer_name": "Field_Ops", "label": "Field Ops", "utility_bar": "Field_Ops_UtilityBar"});
    assert_eq!(add(org.clone(), field_ops.clone()).await.expect("add").status(), 201);
    assert_eq!(add(org.clone(), field_ops).await.expect("twice").status(), 400, "listed twice");
    assert_eq!(add(org.clone(), json!({"developer_name": "Bad Name", "label": "x"})).await.expect("bad").status(), 400);
    assert_eq!(
        add("00D000000000000AAA".into(), json!({"developer_name": "X", "label": "x"})).await.expect("none").status(),
        404
    );
    let (_, _, apps) =
        get(&em, &token, &q("SELECT DeveloperName, UtilityBar FROM AppDefinition WHERE DeveloperName = 'Field_Ops'"))
            .await;
    assert_eq!(apps["records"][0]["UtilityBar"], "Field_Ops_UtilityBar", "{apps}");
    // Tooling reads a page's Metadata one record at a time.
    let (code, _, many) = get(&em, &token, &format!("/tooling{}", q("SELECT Metadata FROM FlexiPage"))).await;
    let (code2, _, _) = get(&em, &token, &format!("/tooling{}", q("SELECT Id FROM FlexiPage"))).await;
    assert_eq!((code, code_of(&many), code2), (400, "MALFORMED_QUERY", 200), "two pages: one row at a time ({many})");
    let bar = tooling(
        &em,
        &token,
        "SELECT Id, DeveloperName, Type, Metadata FROM FlexiPage WHERE DeveloperName = 'LightningSales_UtilityBar'",
    )
    .await;
    let metadata = &bar["records"][0]["Metadata"];
    assert_eq!(
        (bar["records"][0]["Type"].as_str(), metadata["type"].as_str()),
        (Some("UtilityBar"), Some("UtilityBar"))
    );
    assert_eq!(metadata["flexiPageRegions"][1]["type"], "Background");

    // A page naming a component the org lacks is refused; with the component in the deploy it
    // goes in, and the loader then runs in Sales and not in Service.
    let bar_only = |extra: &[&str]| {
        let page = sales_bar(extra);
        zip_of(&[
            ("flexipages/LightningSales_UtilityBar.flexipage", &page),
            ("package.xml", &package(&[("FlexiPage", "LightningSales_UtilityBar")])),
        ])
    };
    let refused = finished(&em, &token, bar_only(&["c:lbLoader"]), json!({})).await;
    assert_eq!(refused["status"], "Failed");
    assert!(problems(&refused).contains("c:lbLoader"), "{}", problems(&refused));
    let loaded = finished(&em, &token, loader_zip(true), json!({})).await;
    assert_eq!(loaded["status"], "Succeeded", "{}", problems(&loaded));
    let placed = finished(&em, &token, bar_only(&["c:lbLoader"]), json!({})).await;
    assert_eq!(placed["status"], "Succeeded", "{}", problems(&placed));
    let signed = client()
        .get(format!(
            "{}/secur/frontdoor.jsp?sid={token}&retURL=/lightning/app/standard__LightningService",
            em.base_url()
        ))
        .send()
        .await
        .expect("front");
    assert_eq!(signed.headers()["location"], "/lightning/app/standard__LightningService");
    let cookie = signed.headers()["set-cookie"].to_str().expect("cookie").split(';').next().expect("pair").to_string();
    let open = |path: &str| client().get(format!("{}{path}", em.base_url())).header("cookie", &cookie).send();
    let sales = open("/lightning/app/standard__LightningSales").await.expect("sales").text().await.expect("html");
    let service = open("/lightning/app/standard__LightningService").await.expect("service").text().await.expect("html");
    let home = open("/lightning/page/home").await.expect("home").text().await.expect("html");
    assert!(sales.contains("\"lbLoader\"") && home.contains("\"lbLoader\""), "{sales}");
    assert!(!service.contains("\"lbLoader\""), "Service has no utility bar: {service}");
    assert_eq!(open("/lightning/app/NoSuchApp").await.expect("none").status(), 404);

    // The bar still names the bundle: deleting it alone is refused; dropping it from the bar in
    // the same deploy, with the deletion after the additions, works.
    let destructive = package(&[("AuraDefinitionBundle", "lbLoader")]);
    let empty = package(&[]);
    let refused =
        finished(&em, &token, zip_of(&[("destructiveChanges.xml", &destructive), ("package.xml", &empty)]), json!({}))
            .await;
    assert_eq!(refused["status"], "Failed");
    assert!(problems(&refused).contains("LightningSales_UtilityBar"), "{}", problems(&refused));
    let page = sales_bar(&[]);
    let manifest = package(&[("FlexiPage", "LightningSales_UtilityBar")]);
    let pre = finished(
        &em,
        &token,
        zip_of(&[
            ("destructiveChangesPre.xml", &destructive),
            ("flexipages/LightningSales_UtilityBar.flexipage", &page),
            ("package.xml", &manifest),
        ]),
        json!({"rollbackOnError": true}),
    )
    .await;
    assert_eq!(pre["status"], "Failed", "a pre-deletion runs before the page changes");
    let post = finished(
        &em,
        &token,
        zip_of(&[
            ("destructiveChangesPost.xml", &destructive),
            ("flexipages/LightningSales_UtilityBar.flexipage", &page),
            ("package.xml", &manifest),
        ]),
        json!({}),
    )
    .await;
    assert_eq!(post["status"], "Succeeded", "{}", problems(&post));
    assert_eq!(tooling(&em, &token, "SELECT Id FROM AuraDefinitionBundle").await["totalSize"], 0);
    // A page an app uses as its utility bar cannot be deleted.
    let bar_gone = package(&[("FlexiPage", "LightningSales_UtilityBar")]);
    let refused =
        finished(&em, &token, zip_of(&[("destructiveChanges.xml", &bar_gone), ("package.xml", &empty)]), json!({}))
            .await;
    assert!(problems(&refused).contains("utility bar of the app(s) Sales"), "{}", problems(&refused));
}
