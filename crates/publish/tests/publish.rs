//! Bundles and publishing to one org, against the emulator (issue #5's first slice).

use domain::ResourceName;
use emulator::{AppSeed, Emulator, OrgSeed, Seed, UserSeed};
use publish::{Bundle, BundleError, Limits, PublishAction, publish_to_org};
use salesforce::{Client, ClientCredentials, HostPolicy, Session};
use vault::ClientSecret;

fn folder(files: &[(&str, &[u8])]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lightbridge-bundle-{}", domain::UserId::generate()));
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, content).expect("write");
    }
    dir
}

async fn org() -> (Emulator, Client, Session, String) {
    let mut org = OrgSeed::new("Acme Production");
    org.users = vec![UserSeed::new("admin@acme.test")];
    let app =
        AppSeed { client_credentials_user: Some("admin@acme.test".into()), ..AppSeed::new("3MVG9Pub", "pub-secret") };
    let em = Emulator::start(Seed { orgs: vec![org], apps: vec![app] }).await.expect("emulator");
    let client = Client::new(HostPolicy::allowing([em.base_url()]).expect("policy")).expect("client");
    let app =
        ClientCredentials { consumer_key: "3MVG9Pub".into(), consumer_secret: Some(ClientSecret::new("pub-secret")) };
    let token = client.client_credentials(&em.base_url().parse().expect("url"), &app).await.expect("token");
    let org_id = em.org_ids()[0].clone();
    (em, client, Session { instance_url: token.instance_url, access_token: token.access_token }, org_id)
}

#[test]
fn the_same_files_always_give_the_same_bytes() {
    let a = folder(&[("player.js", b"console.log(1)"), ("css/site.css", b"body{}"), ("data/x.json", b"{}")]);
    let b = folder(&[("data/x.json", b"{}"), ("player.js", b"console.log(1)"), ("css/site.css", b"body{}")]);
    let one = Bundle::from_dir(&a, Limits::default()).expect("bundle");
    let two = Bundle::from_dir(&b, Limits::default()).expect("bundle");
    assert_eq!(one.sha256(), two.sha256(), "order and timestamps do not matter");
    assert_eq!(one.bytes(), two.bytes());
    assert_eq!(one.files(), ["css/site.css", "data/x.json", "player.js"]);
    // An uploaded ZIP of the same files rebuilds to the same bundle.
    assert_eq!(Bundle::from_zip(one.bytes(), Limits::default()).expect("zip").sha256(), one.sha256());
    std::fs::write(a.join("player.js"), b"console.log(2)").expect("change");
    assert_ne!(Bundle::from_dir(&a, Limits::default()).expect("bundle").sha256(), one.sha256());
}

#[test]
fn bad_bundles_are_refused_before_any_api_call() {
    let small = Limits { max_bundle_bytes: 1024, ..Limits::default() };
    let noise: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let big = folder(&[("noise.bin", &noise)]);
    let err = Bundle::from_dir(&big, small).expect_err("too large");
    assert!(matches!(err, BundleError::TooLarge { limit: 1024, .. }), "{err}");
    assert!(err.to_string().contains("5 MB"), "{err}");
    let empty = folder(&[]);
    std::fs::create_dir_all(&empty).expect("dir");
    assert_eq!(Bundle::from_dir(&empty, Limits::default()).err(), Some(BundleError::Empty));
    // ZIPs with an escaping path, a duplicate entry, or a bomb.
    let zip_of = |entries: &[(&str, Vec<u8>)]| {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, content) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).expect("entry");
            w.write_all(content).expect("write");
        }
        w.finish().expect("zip").into_inner()
    };
    let escaping = zip_of(&[("../../etc/passwd", b"x".to_vec())]);
    assert!(matches!(Bundle::from_zip(&escaping, Limits::default()), Err(BundleError::Escapes { .. })));
    let absolute = zip_of(&[("/etc/passwd", b"x".to_vec())]);
    assert!(matches!(Bundle::from_zip(&absolute, Limits::default()), Err(BundleError::Escapes { .. })));
    let bomb = zip_of(&[("zeros.bin", vec![0u8; 50 * 1024 * 1024])]);
    let err = Bundle::from_zip(&bomb, Limits::default()).expect_err("bomb");
    assert!(matches!(err, BundleError::Bomb { .. }), "{err}");
    assert!(matches!(Bundle::from_zip(b"not a zip", Limits::default()), Err(BundleError::NotZip(_))));
    // Two entries of one name: ZIP writers refuse to make that, so rename one in the bytes
    // (local header and central directory; the names are the same length, the CRCs cover data).
    let mut twice = zip_of(&[("a.js", b"1".to_vec()), ("b.js", b"2".to_vec())]);
    let mut renamed = 0;
    for i in 0..twice.len() - 4 {
        if &twice[i..i + 4] == b"b.js" {
            twice[i] = b'a';
            renamed += 1;
        }
    }
    assert_eq!(renamed, 2, "local header and central directory");
    let err = Bundle::from_zip(&twice, Limits::default()).expect_err("duplicate");
    assert!(matches!(&err, BundleError::Duplicate { path } if path == "a.js"), "{err}");
    #[cfg(unix)]
    {
        let linked = folder(&[("real.js", b"1")]);
        std::os::unix::fs::symlink("/etc/passwd", linked.join("link.js")).expect("symlink");
        assert!(matches!(Bundle::from_dir(&linked, Limits::default()), Err(BundleError::Link { .. })));
    }
}

#[tokio::test]
async fn first_publish_creates_then_updates_in_place_and_an_unchanged_one_uploads_nothing() {
    let (em, client, session, org_id) = org().await;
    let name = ResourceName::parse("Lightbridge_Player").expect("name");
    let files = folder(&[("player.js", b"window.player = 1;"), ("css/site.css", b"body{color:red}")]);
    let first = Bundle::from_dir(&files, Limits::default()).expect("bundle");
    let created = publish_to_org(&client, &session, &name, &first, "rel_1", "Private").await.expect("publish");
    assert_eq!(created.action, PublishAction::Created);
    // The org serves the file out of the ZIP at /resource/<timestamp>/<Name>/<path>.
    let served = reqwest_get(&format!("{}{}/player.js", em.base_url(), created.resource.url_path())).await;
    assert_eq!(served, b"window.player = 1;");
    let info = em.resources(&org_id).into_iter().find(|r| r.name == "Lightbridge_Player").expect("resource");
    assert_eq!((info.content_type.as_str(), info.cache_control.as_str()), ("application/zip", "Private"));

    std::fs::write(files.join("player.js"), b"window.player = 2;").expect("change");
    let second = Bundle::from_dir(&files, Limits::default()).expect("bundle");
    let updated = publish_to_org(&client, &session, &name, &second, "rel_2", "Private").await.expect("publish");
    assert_eq!(updated.action, PublishAction::Updated);
    assert_eq!(updated.resource.id, created.resource.id, "the same resource, updated in place");
    assert_ne!(updated.resource.url_path(), created.resource.url_path(), "a new URL busts caches");
    let served = reqwest_get(&format!("{}{}/player.js", em.base_url(), updated.resource.url_path())).await;
    assert_eq!(served, b"window.player = 2;");

    em.clear_requests();
    let again = publish_to_org(&client, &session, &name, &second, "rel_3", "Private").await.expect("publish");
    assert_eq!(again.action, PublishAction::Unchanged);
    let writes = em.requests().into_iter().filter(|r| r.method != "GET").count();
    assert_eq!(writes, 0, "an unchanged bundle uploads nothing");
}

#[tokio::test]
async fn uploads_go_as_multipart_and_fall_back_to_base64_json_when_refused() {
    let (em, client, session, _) = org().await;
    let name = ResourceName::parse("Blob_Form").expect("name");
    let files = folder(&[("app.js", b"let form = 'multipart';")]);
    let bundle = Bundle::from_dir(&files, Limits::default()).expect("bundle");
    let first = publish_to_org(&client, &session, &name, &bundle, "rel_1", "Private").await.expect("publish");
    let create =
        em.requests().into_iter().find(|r| r.method == "POST" && r.path.contains("StaticResource")).expect("create");
    assert_eq!((create.path.contains("/tooling/"), create.status), (false, 201), "REST API, multipart: {create:?}");
    let served = reqwest_get(&format!("{}{}/app.js", em.base_url(), first.resource.url_path())).await;
    assert_eq!(served, b"let form = 'multipart';", "the raw bytes arrived intact");

    // An org that refuses the multipart form: one 415, then base64 JSON, remembered after.
    em.set_multipart_blobs(false);
    em.clear_requests();
    std::fs::write(files.join("app.js"), b"let form = 'json';").expect("change");
    let changed = Bundle::from_dir(&files, Limits::default()).expect("bundle");
    let second = publish_to_org(&client, &session, &name, &changed, "rel_2", "Private").await.expect("publish");
    assert_eq!((second.action, &second.resource.id), (PublishAction::Updated, &first.resource.id));
    let writes: Vec<(bool, u16)> = em
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.path.contains("/tooling/"), r.status))
        .collect();
    assert_eq!(writes, [(false, 415), (true, 204)]);
    let served = reqwest_get(&format!("{}{}/app.js", em.base_url(), second.resource.url_path())).await;
    assert_eq!(served, b"let form = 'json';");
    em.clear_requests();
    let other = ResourceName::parse("Blob_Form_Two").expect("name");
    publish_to_org(&client, &session, &other, &changed, "rel_3", "Private").await.expect("publish");
    let creates: Vec<(bool, u16)> = em
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("StaticResource"))
        .map(|r| (r.path.contains("/tooling/"), r.status))
        .collect();
    assert_eq!(creates, [(true, 201)], "no second multipart attempt");

    // A client that has not met the refusal yet creates as multipart first too: the refused form
    // (415 only answers multipart bodies), then JSON.
    let fresh = Client::new(HostPolicy::allowing([em.base_url()]).expect("policy")).expect("client");
    em.clear_requests();
    let third = ResourceName::parse("Blob_Form_Three").expect("name");
    publish_to_org(&fresh, &session, &third, &changed, "rel_4", "Private").await.expect("publish");
    let creates: Vec<(bool, u16)> = em
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("StaticResource"))
        .map(|r| (r.path.contains("/tooling/"), r.status))
        .collect();
    assert_eq!(creates, [(false, 415), (true, 201)], "create tries the multipart form first");
}

async fn reqwest_get(url: &str) -> Vec<u8> {
    let response = reqwest::get(url).await.expect("get");
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.expect("body").to_vec()
}

#[tokio::test]
async fn two_publishers_racing_into_one_org_end_with_one_resource_and_no_error() {
    let (em, client, session, org_id) = org().await;
    let name = ResourceName::parse("Raced").expect("name");
    let bundle = Bundle::from_dir(&folder(&[("a.js", b"1")]), Limits::default()).expect("bundle");
    let (one, two) = tokio::join!(
        publish_to_org(&client, &session, &name, &bundle, "r1", "Private"),
        publish_to_org(&client, &session, &name, &bundle, "r1", "Private"),
    );
    let mut actions = vec![one.expect("first").action, two.expect("second").action];
    actions.sort_by_key(|a| format!("{a:?}"));
    assert!(actions.contains(&PublishAction::Created), "{actions:?}");
    assert_eq!(em.resources(&org_id).iter().filter(|r| r.name == "Raced").count(), 1);
    let creates: Vec<u16> = em
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("StaticResource"))
        .map(|r| r.status)
        .collect();
    assert_eq!(creates.len(), 2, "both raced to create: {creates:?}");
    assert!(creates.contains(&400), "one met DUPLICATE_VALUE and recovered: {creates:?}");
}

/// Two orgs, each with its own client-credentials app; one client for both.
async fn two_orgs() -> (Emulator, Client, Vec<(Session, String)>) {
    let mut first = OrgSeed::new("Acme Production");
    first.users = vec![UserSeed::new("admin@acme.test")];
    let mut second = OrgSeed::new("Other Corp");
    second.users = vec![UserSeed::new("admin@other.test")];
    let apps = vec![
        AppSeed { client_credentials_user: Some("admin@acme.test".into()), ..AppSeed::new("3MVG9One", "one-secret") },
        AppSeed { client_credentials_user: Some("admin@other.test".into()), ..AppSeed::new("3MVG9Two", "two-secret") },
    ];
    let em = Emulator::start(Seed { orgs: vec![first, second], apps }).await.expect("emulator");
    let client = Client::new(HostPolicy::allowing([em.base_url()]).expect("policy")).expect("client");
    let mut sessions = Vec::new();
    for (key, secret) in [("3MVG9One", "one-secret"), ("3MVG9Two", "two-secret")] {
        let app = ClientCredentials { consumer_key: key.into(), consumer_secret: Some(ClientSecret::new(secret)) };
        let token = client.client_credentials(&em.base_url().parse().expect("url"), &app).await.expect("token");
        let org_id = token.org_id.clone();
        sessions.push((Session { instance_url: token.instance_url, access_token: token.access_token }, org_id));
    }
    (em, client, sessions)
}

/// (Tooling API?, status) of each static-resource write of `method` since the log was cleared.
fn writes(em: &Emulator, method: &str) -> Vec<(bool, u16)> {
    em.requests()
        .into_iter()
        .filter(|r| r.method == method && r.path.contains("StaticResource"))
        .map(|r| (r.path.contains("/tooling/"), r.status))
        .collect()
}

#[tokio::test]
async fn an_org_that_refuses_multipart_with_any_client_error_gets_json_and_only_that_org_is_remembered() {
    // Found by an independent Salesforce stand-in (#14 fix 1): an org may answer a multipart
    // body with `400 JSON_PARSER_ERROR` rather than 415.
    let (em, client, orgs) = two_orgs().await;
    let (refusing, other) = (&orgs[0], &orgs[1]);
    em.add_fault(emulator::FaultRule {
        method: None,
        path_contains: Some(format!("/data/v{}/sobjects/StaticResource", salesforce::API_VERSION)),
        org_id: Some(refusing.1.clone()),
        times: None,
        percent: None,
        action: emulator::FaultAction::Error {
            status: 400,
            error_code: "JSON_PARSER_ERROR".into(),
            message: Some("Unexpected character ('-' (code 45)) in numeric value".into()),
        },
    });
    let bundle = Bundle::from_dir(&folder(&[("a.js", b"per org")]), Limits::default()).expect("bundle");
    let name = ResourceName::parse("Per_Org").expect("name");
    em.clear_requests();
    let done = publish_to_org(&client, &refusing.0, &name, &bundle, "r1", "Private").await.expect("falls back");
    assert_eq!(done.action, PublishAction::Created);
    assert_eq!(writes(&em, "POST"), [(false, 400), (true, 201)], "multipart refused, then base64 JSON");

    // The other org still gets the multipart form: the refusal is that org's, not the process's.
    em.clear_requests();
    publish_to_org(&client, &other.0, &name, &bundle, "r1", "Private").await.expect("publish");
    assert_eq!(writes(&em, "POST"), [(false, 201)]);

    // The refusing org is remembered: JSON straight away, for creates and updates.
    em.clear_requests();
    let second = ResourceName::parse("Per_Org_Two").expect("name");
    publish_to_org(&client, &refusing.0, &second, &bundle, "r1", "Private").await.expect("publish");
    let changed = Bundle::from_dir(&folder(&[("a.js", b"per org, changed")]), Limits::default()).expect("bundle");
    publish_to_org(&client, &refusing.0, &name, &changed, "r2", "Private").await.expect("publish");
    assert_eq!((writes(&em, "POST"), writes(&em, "PATCH")), (vec![(true, 201)], vec![(true, 204)]));

    em.clear_requests();
    publish_to_org(&client, &other.0, &name, &changed, "r2", "Private").await.expect("publish");
    assert_eq!(writes(&em, "PATCH"), [(false, 204)], "the other org's update is multipart too");
}

#[tokio::test]
async fn a_change_of_cache_control_alone_is_published_and_applied_to_the_existing_resource() {
    let (em, client, session, _) = org().await;
    let name = ResourceName::parse("Cached").expect("name");
    let bundle = Bundle::from_dir(&folder(&[("a.js", b"cache me")]), Limits::default()).expect("bundle");
    let first = publish_to_org(&client, &session, &name, &bundle, "r1", "Private").await.expect("publish");
    assert_eq!(first.resource.cache_control.as_deref(), Some("Private"));

    // The same bytes, now Public: not "unchanged" (#14 fix 6), and the update sets it (fix 3).
    let public = publish_to_org(&client, &session, &name, &bundle, "r1", "Public").await.expect("publish");
    assert_eq!((public.action, &public.resource.id), (PublishAction::Updated, &first.resource.id));
    assert_eq!(public.resource.cache_control.as_deref(), Some("Public"));
    let served = reqwest::get(format!("{}{}/a.js", em.base_url(), public.resource.url_path())).await.expect("get");
    let header = served.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(header.starts_with("public"), "the org serves it publicly: {header}");

    // Asked again, it is unchanged; and back to Private is published again.
    let again = publish_to_org(&client, &session, &name, &bundle, "r1", "Public").await.expect("publish");
    assert_eq!(again.action, PublishAction::Unchanged);
    let private = publish_to_org(&client, &session, &name, &bundle, "r1", "Private").await.expect("publish");
    assert_eq!((private.action, private.resource.cache_control.as_deref()), (PublishAction::Updated, Some("Private")));
}

#[tokio::test]
async fn a_managed_packages_resource_of_the_same_name_is_never_touched() {
    let (em, client, session, org_id) = org().await;
    let managed = emulator::ManagedResourceSeed {
        namespace: "acmepkg".into(),
        name: "Lightbridge_Player".into(),
        content_type: "text/javascript".into(),
        body: "managed();".into(),
    };
    let managed_id = em.install_managed_resource(&org_id, &managed).expect("install");
    let name = ResourceName::parse("Lightbridge_Player").expect("name");
    let files = folder(&[("player.js", b"window.player = 1;")]);
    let bundle = Bundle::from_dir(&files, Limits::default()).expect("bundle");
    // Published beside it (not over it), updated in place, and the package's stays as it was.
    let created = publish_to_org(&client, &session, &name, &bundle, "rel_1", "Public").await.expect("publish");
    assert_eq!(created.action, PublishAction::Created);
    assert_ne!(created.resource.id, managed_id);
    std::fs::write(files.join("player.js"), b"window.player = 2;").expect("change");
    let second = Bundle::from_dir(&files, Limits::default()).expect("bundle");
    let updated = publish_to_org(&client, &session, &name, &second, "rel_2", "Public").await.expect("publish");
    assert_eq!((updated.action, updated.resource.id.as_str()), (PublishAction::Updated, created.resource.id.as_str()));
    let resources = em.resources(&org_id);
    let package = resources.iter().find(|r| r.namespace_prefix.as_deref() == Some("acmepkg")).expect("managed");
    assert_eq!((package.id.as_str(), package.body_length), (managed_id.as_str(), "managed();".len()));
    let touched = em.requests().iter().filter(|r| r.path.contains(&managed_id[..15])).count();
    assert_eq!(touched, 0, "no request ever names the package's resource");
}

/// What a publish left in the org, as the worker records it.
fn baseline_of(published: &publish::Published, bundle: &Bundle) -> publish::drift::Expected {
    publish::drift::Expected {
        sha256: bundle.sha256().to_string(),
        content_type: publish::CONTENT_TYPE.into(),
        cache_control: "Private".into(),
        body_length: published.resource.body_length,
        modstamp_ms: published.resource.modstamp_ms,
    }
}

#[tokio::test]
async fn drift_is_a_person_s_change_never_lightbridge_s_own_upload() {
    // #17: the org's copy compared with what Lightbridge left there — and with the release
    // about to go out, so an upload whose outcome was never recorded is not taken for a person's.
    let (em, client, session, org_id) = org().await;
    let name = ResourceName::parse("Player").expect("name");
    let v1 = Bundle::from_dir(&folder(&[("player.js", b"v1")]), Limits::default()).expect("bundle");
    let v2 = Bundle::from_dir(&folder(&[("player.js", b"v2 is longer")]), Limits::default()).expect("bundle");
    let first = publish_to_org(&client, &session, &name, &v1, "r1", "Private").await.expect("publish");
    let baseline = baseline_of(&first, &v1);
    let release = |b: &Bundle, r: &str| publish::Release::new(&name, b, r, "Private").expect("release");
    let guard =
        |overwrite: bool| publish::Guard { reserve: 0.0, baseline: (!overwrite).then_some(&baseline), overwrite };
    // v2 went out, but its outcome was lost: the retry finds v2 there — unchanged, not drift.
    publish_to_org(&client, &session, &name, &v2, "r2", "Private").await.expect("publish");
    let retried = publish::publish_within(&client, &session, &release(&v2, "r2"), &guard(false)).await.expect("retry");
    assert!(matches!(&retried, publish::Budgeted::Published(p) if p.action == PublishAction::Unchanged), "{retried:?}");
    // Another release finds the same copy changed since the baseline: that is drift (v2 is
    // not what Lightbridge recorded, and not the release going out).
    let v3 = Bundle::from_dir(&folder(&[("player.js", b"v3")]), Limits::default()).expect("bundle");
    let held = publish::publish_within(&client, &session, &release(&v3, "r3"), &guard(false)).await.expect("v3");
    assert!(matches!(&held, publish::Budgeted::Drifted(d) if d.what == "its body changed"), "{held:?}");
    // A person edits the body in Setup and leaves the Description naming r2; putting r2 back
    // "over the change" must upload, not trust the Description.
    let edit = emulator::ResourceEdit { body: Some("hotfix".into()), ..Default::default() };
    em.edit_resource(&org_id, "Player", "admin@acme.test", &edit).expect("edit");
    em.clear_requests();
    let put_back = publish::publish_within(&client, &session, &release(&v2, "r2"), &guard(true)).await.expect("r2");
    assert!(matches!(&put_back, publish::Budgeted::Published(p) if p.action == PublishAction::Updated), "{put_back:?}");
    assert_eq!(em.resource_body(&org_id, "Player").expect("body"), v2.bytes());
}
