//! The loader (issue #15) against the emulator's Metadata API: validated then deployed and
//! read back; skipped when the org holds the same version; a refusal that leaves the org
//! untouched and names the component; the permission; removal; one org of three failing.

use std::time::Duration;

use domain::ResourceName;
use emulator::{AppSeed, Emulator, LightningAppSeed, OrgSeed, Seed, UserChange, UserSeed};
use publish::loader::{
    LoaderFailure, LoaderOutcome, LoaderPackage, LoaderSettings, Polling, deploy_loader, remove_loader,
};
use publish::{Bundle, Limits, publish_to_org};
use salesforce::{Client, ClientCredentials, HostPolicy, Session};
use vault::ClientSecret;

const POLL: Polling = Polling { every: Duration::from_millis(40), timeout: Duration::from_secs(20) };

async fn fleet(orgs: usize) -> (Emulator, Client, Vec<Session>) {
    let seeds: Vec<OrgSeed> = (0..orgs)
        .map(|i| {
            let mut org = OrgSeed::new(format!("Loader Org {i}"));
            org.users = vec![UserSeed::new(format!("admin@loader{i}.test"))];
            org
        })
        .collect();
    let apps: Vec<AppSeed> = (0..orgs)
        .map(|i| AppSeed {
            client_credentials_user: Some(format!("admin@loader{i}.test")),
            ..AppSeed::new(format!("3MVG9Loader{i}"), "loader-secret")
        })
        .collect();
    let em = Emulator::start(Seed { orgs: seeds, apps }).await.expect("emulator");
    em.set_deploy_time(Duration::from_millis(150));
    let client = Client::new(HostPolicy::allowing([em.base_url()]).expect("policy")).expect("client");
    let mut sessions = Vec::new();
    for i in 0..orgs {
        let app = ClientCredentials {
            consumer_key: format!("3MVG9Loader{i}"),
            consumer_secret: Some(ClientSecret::new("loader-secret")),
        };
        let token = client.client_credentials(&em.base_url().parse().expect("url"), &app).await.expect("token");
        sessions.push(Session { instance_url: token.instance_url, access_token: token.access_token });
    }
    (em, client, sessions)
}

fn settings() -> LoaderSettings {
    LoaderSettings {
        resource: ResourceName::parse("Player_Prod").expect("name"),
        scripts: vec!["player.js".into()],
        styles: Vec::new(),
        trusted_sites: vec!["https://api.example.com".into()],
        apps: vec!["standard__LightningSales".into()],
    }
}

async fn publish_player(client: &Client, session: &Session) {
    let zip = {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("player.js", zip::write::SimpleFileOptions::default()).expect("entry");
        w.write_all(b"window.player = true;").expect("write");
        w.finish().expect("zip").into_inner()
    };
    let bundle = Bundle::from_zip(&zip, Limits::default()).expect("bundle");
    let name = ResourceName::parse("Player_Prod").expect("name");
    publish_to_org(client, session, &name, &bundle, "r1", "Private").await.expect("publish");
}

fn deploys(em: &Emulator) -> usize {
    em.requests().iter().filter(|r| r.operation.as_deref() == Some("deploy:create")).count()
}

#[tokio::test]
async fn the_loader_is_validated_deployed_read_back_and_then_skipped_while_unchanged() {
    let (em, client, sessions) = fleet(1).await;
    let session = &sessions[0];
    publish_player(&client, session).await;
    let package = LoaderPackage::build("sys/prod", &settings()).expect("package");
    let outcome = deploy_loader(&client, session, &package, POLL).await.expect("deploy");
    assert!(matches!(outcome, LoaderOutcome::Deployed { .. }), "{outcome:?}");
    assert_eq!(deploys(&em), 2, "a validation, then the deploy");
    // The same version again: nothing is sent.
    em.clear_requests();
    assert_eq!(deploy_loader(&client, session, &package, POLL).await.expect("again"), LoaderOutcome::Unchanged);
    assert_eq!(deploys(&em), 0);
    // A change of settings is a new version, deployed over the old.
    let mut changed = settings();
    changed.trusted_sites.push("https://cdn.example.com".into());
    let newer = LoaderPackage::build("sys/prod", &changed).expect("package");
    assert!(matches!(
        deploy_loader(&client, session, &newer, POLL).await.expect("update"),
        LoaderOutcome::Deployed { .. }
    ));
    // Dropping an origin removes its trusted site: it is no longer trusted.
    let fewer = LoaderPackage::build("sys/prod", &settings()).expect("package");
    assert!(matches!(
        deploy_loader(&client, session, &fewer, POLL).await.expect("back"),
        LoaderOutcome::Deployed { .. }
    ));
    let all: Vec<&str> = newer.sites.iter().map(String::as_str).collect();
    let left = client.deployed_components(session, "CspTrustedSite", &all).await.expect("query");
    assert_eq!(left.iter().map(|c| c.developer_name.as_str()).collect::<Vec<_>>(), [newer.sites[0].as_str()]);
    // Removal takes every component out.
    assert!(matches!(
        remove_loader(&client, session, &newer, POLL).await.expect("remove"),
        LoaderOutcome::Removed { .. }
    ));
    let left =
        client.deployed_components(session, "AuraDefinitionBundle", &[newer.bundle.as_str()]).await.expect("query");
    assert!(left.is_empty(), "{left:?}");
    let sites: Vec<&str> = newer.sites.iter().map(String::as_str).collect();
    assert!(client.deployed_components(session, "CspTrustedSite", &sites).await.expect("query").is_empty());
}

#[tokio::test]
async fn a_refused_validation_deploys_nothing_and_names_the_component() {
    let (em, client, sessions) = fleet(1).await;
    // The environment's resource was never published to this org.
    let package = LoaderPackage::build("sys/prod", &settings()).expect("package");
    let failure = deploy_loader(&client, &sessions[0], &package, POLL).await.expect_err("refused");
    let LoaderFailure::Rejected { validation, problems, .. } = &failure else { panic!("{failure}") };
    assert!(validation, "refused at validation");
    assert_eq!(problems[0].full_name, package.bundle);
    assert_eq!(problems[0].problem, "No STATIC_RESOURCE named Player_Prod found");
    assert!(failure.to_string().contains("nothing was deployed"), "{failure}");
    assert_eq!(deploys(&em), 1, "no deploy after a refused validation");
    let sites: Vec<&str> = package.sites.iter().map(String::as_str).collect();
    assert!(client.deployed_components(&sessions[0], "CspTrustedSite", &sites).await.expect("query").is_empty());
}

#[tokio::test]
async fn without_modify_metadata_nothing_is_sent_and_the_fix_is_named() {
    let (em, client, sessions) = fleet(1).await;
    let change =
        UserChange { modify_metadata: Some(false), customize_application: Some(false), ..UserChange::default() };
    em.set_user("admin@loader0.test", &change).expect("change");
    let package = LoaderPackage::build("sys/prod", &settings()).expect("package");
    let failure = deploy_loader(&client, &sessions[0], &package, POLL).await.expect_err("refused");
    assert!(matches!(failure, LoaderFailure::Permission), "{failure}");
    assert!(failure.to_string().contains("Modify Metadata Through Metadata API Functions"));
    assert_eq!(deploys(&em), 0);
}

#[tokio::test]
async fn one_org_of_three_failing_leaves_the_other_two_in_place() {
    let (_em, client, sessions) = fleet(3).await;
    publish_player(&client, &sessions[0]).await;
    publish_player(&client, &sessions[2]).await;
    let package = LoaderPackage::build("sys/prod", &settings()).expect("package");
    let results =
        futures_util::future::join_all(sessions.iter().map(|s| deploy_loader(&client, s, &package, POLL))).await;
    assert!(matches!(results[0], Ok(LoaderOutcome::Deployed { .. })), "{:?}", results[0]);
    assert!(matches!(results[1], Err(LoaderFailure::Rejected { .. })), "{:?}", results[1]);
    assert!(matches!(results[2], Ok(LoaderOutcome::Deployed { .. })), "{:?}", results[2]);
}

/// Which of the org's background items a utility bar names.
fn background(em: &Emulator, org: &str, bar: &str) -> Vec<String> {
    let xml = em.flexipage_xml(org, bar).expect("the bar");
    emulator::flexipage::background_components(&xml)
}

#[tokio::test]
async fn the_loader_goes_into_the_chosen_apps_utility_bars_beside_the_customers_items() {
    let (em, client, sessions) = fleet(1).await;
    let session = &sessions[0];
    let org = em.org_ids()[0].clone();
    em.add_lightning_app(
        &org,
        &LightningAppSeed {
            namespace: None,
            developer_name: "Field_Ops".into(),
            label: "Field Ops".into(),
            utility_bar: Some("Field_Ops_UtilityBar".into()),
            utility_items: vec!["c:fieldNotes".into(), "console:history".into()],
        },
    )
    .expect("app");
    publish_player(&client, session).await;
    let mut both = settings();
    both.apps = vec!["standard__LightningSales".into(), "Field_Ops".into()];
    let package = LoaderPackage::build("sys/prod", &both).expect("package");
    let component = package.component_name();
    // Field Ops' bar names a component of the org's own that is not there: Salesforce would
    // refuse to save the page, and so the validation refuses — naming the page.
    let failure = deploy_loader(&client, session, &package, POLL).await.expect_err("refused");
    assert!(
        failure.to_string().contains("Field_Ops_UtilityBar") && failure.to_string().contains("c:fieldNotes"),
        "{failure}"
    );
    em.add_lightning_app(
        &org,
        &LightningAppSeed {
            namespace: None,
            developer_name: "Field_Ops2".into(),
            label: "Field Ops 2".into(),
            utility_bar: Some("Field_Ops2_UtilityBar".into()),
            utility_items: vec!["console:history".into(), "notes:utilityBarNoteList".into()],
        },
    )
    .expect("app");
    both.apps = vec!["standard__LightningSales".into(), "Field_Ops2".into()];
    let package = LoaderPackage::build("sys/prod", &both).expect("package");
    assert!(matches!(
        deploy_loader(&client, session, &package, POLL).await.expect("deploy"),
        LoaderOutcome::Deployed { .. }
    ));
    assert_eq!(background(&em, &org, "LightningSales_UtilityBar"), [component.as_str()]);
    assert_eq!(background(&em, &org, "Field_Ops2_UtilityBar"), [component.as_str()]);
    let field = em.flexipage_xml(&org, "Field_Ops2_UtilityBar").expect("bar");
    let items = emulator::flexipage::component_names(&field);
    assert_eq!(
        items,
        ["console:history", "notes:utilityBarNoteList", component.as_str()],
        "the customer's items stay, in order"
    );
    // Someone takes it out of the Sales bar in the org: the same version is deployed again
    // (the bar is not as chosen), putting it back.
    let stripped = emulator::flexipage::utility_bar_xml("Sales UtilityBar", &["notes:utilityBarNoteList".to_string()]);
    let manifest = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Package xmlns=\"http://soap.sforce.com/2006/04/metadata\"><types><members>LightningSales_UtilityBar</members><name>FlexiPage</name></types><version>60.0</version></Package>";
    let zip = {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (path, text) in
            [("flexipages/LightningSales_UtilityBar.flexipage", stripped.as_str()), ("package.xml", manifest)]
        {
            w.start_file(path, zip::write::SimpleFileOptions::default()).expect("entry");
            w.write_all(text.as_bytes()).expect("write");
        }
        w.finish().expect("zip").into_inner()
    };
    let by_hand = client.deploy(session, &zip, salesforce::metadata::DeployMode::Deploy).await.expect("by hand");
    em.advance_clock(Duration::from_secs(1));
    assert!(client.deploy_status(session, &by_hand).await.expect("status").succeeded());
    assert!(background(&em, &org, "LightningSales_UtilityBar").is_empty());
    assert!(matches!(
        deploy_loader(&client, session, &package, POLL).await.expect("repair"),
        LoaderOutcome::Deployed { .. }
    ));
    assert_eq!(background(&em, &org, "LightningSales_UtilityBar"), [component.as_str()]);
    assert_eq!(deploy_loader(&client, session, &package, POLL).await.expect("again"), LoaderOutcome::Unchanged);
    // Dropping an app takes the loader out of its bar only.
    let only_sales = LoaderPackage::build("sys/prod", &settings()).expect("package");
    assert!(matches!(
        deploy_loader(&client, session, &only_sales, POLL).await.expect("deploy"),
        LoaderOutcome::Deployed { .. }
    ));
    assert_eq!(background(&em, &org, "LightningSales_UtilityBar"), [component.as_str()]);
    assert!(background(&em, &org, "Field_Ops2_UtilityBar").is_empty());
    assert_eq!(
        emulator::flexipage::component_names(&em.flexipage_xml(&org, "Field_Ops2_UtilityBar").expect("bar")),
        ["console:history", "notes:utilityBarNoteList"]
    );
    // Removal takes it out of every bar, then deletes it (which the bar would otherwise block).
    assert!(matches!(
        remove_loader(&client, session, &only_sales, POLL).await.expect("remove"),
        LoaderOutcome::Removed { .. }
    ));
    assert!(background(&em, &org, "LightningSales_UtilityBar").is_empty());
    assert!(
        client
            .deployed_components(session, "AuraDefinitionBundle", &[only_sales.bundle.as_str()])
            .await
            .expect("query")
            .is_empty()
    );
}

#[tokio::test]
async fn an_app_without_a_utility_bar_or_missing_is_refused_with_the_fix_and_nothing_is_sent() {
    let (em, client, sessions) = fleet(1).await;
    publish_player(&client, &sessions[0]).await;
    let mut service = settings();
    service.apps = vec!["standard__LightningService".into()];
    let failure = deploy_loader(&client, &sessions[0], &LoaderPackage::build("sys/prod", &service).expect("p"), POLL)
        .await
        .expect_err("no bar");
    assert!(matches!(failure, LoaderFailure::NoUtilityBar { .. }), "{failure}");
    assert!(failure.to_string().contains("App Manager, edit Service"), "{failure}");
    let mut missing = settings();
    missing.apps = vec!["Nope".into()];
    let failure = deploy_loader(&client, &sessions[0], &LoaderPackage::build("sys/prod", &missing).expect("p"), POLL)
        .await
        .expect_err("no app");
    assert!(failure.to_string().contains("standard__LightningSales, standard__LightningService"), "{failure}");
    assert_eq!(deploys(&em), 0, "refused before any deploy");
}
