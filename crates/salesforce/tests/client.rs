//! The Salesforce client against the emulator: every grant, the connection check and its
//! failures, error mapping and the host policy.

use emulator::{AppSeed, Emulator, OrgSeed, Seed, UserSeed};
use salesforce::checks::{self, Outcome, Step};
use salesforce::oauth::{authorize_url, random_state};
use salesforce::{Client, ClientCredentials, HostPolicy, OrgType, Pkce, SalesforceError, Session};
use url::Url;
use vault::{ClientSecret, JwtPrivateKey};

const CALLBACK: &str = "http://127.0.0.1:9/oauth/callback";
const KEY: &str = "3MVG9LightbridgeTest";
const SECRET: &str = "lightbridge-test-secret";

async fn emulator() -> Emulator {
    let user = |name: &str, customize: bool, api: bool| UserSeed {
        customize_application: customize,
        api_enabled: api,
        ..UserSeed::new(name)
    };
    let mut prod = OrgSeed::new("Acme Production");
    prod.users = vec![
        user("admin@acme.test", true, true),
        user("editor@acme.test", false, true),
        user("noapi@acme.test", true, false),
    ];
    let mut sandbox = OrgSeed::new("Acme UAT");
    sandbox.sandbox = true;
    sandbox.users = vec![user("admin@acme.test.uat", true, true)];
    let app = AppSeed {
        callback_urls: vec![CALLBACK.into()],
        require_pkce: true,
        generate_certificate: true,
        pre_authorized: vec!["admin@acme.test".into(), "editor@acme.test".into()],
        client_credentials_user: Some("admin@acme.test".into()),
        ..AppSeed::new(KEY, SECRET)
    };
    Emulator::start(Seed { orgs: vec![prod, sandbox], apps: vec![app] }).await.expect("emulator")
}

fn client(em: &Emulator) -> Client {
    Client::new(HostPolicy::allowing([em.base_url()]).expect("policy")).expect("client")
}

fn app() -> ClientCredentials {
    ClientCredentials { consumer_key: KEY.into(), consumer_secret: Some(ClientSecret::new(SECRET)) }
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("url")
}

/// The whole code flow: authorize URL → emulator pages → callback → exchange.
async fn connect(em: &Emulator, login: &str, username: &str) -> Result<salesforce::TokenResponse, SalesforceError> {
    let pkce = Pkce::generate().expect("pkce");
    let state = random_state().expect("state");
    let authorize = authorize_url(&url(login), KEY, CALLBACK, "api refresh_token id", &state, &pkce);
    let callback = emulator::testing::sign_in(authorize.as_str(), username, "emulator", true).await.expect("signed in");
    let callback = url(&callback);
    let pairs: std::collections::HashMap<String, String> = callback.query_pairs().into_owned().collect();
    assert_eq!(pairs.get("state"), Some(&state), "state comes back unchanged");
    let code = pairs.get("code").expect("code");
    client(em).exchange_code(&url(login), &app(), code, CALLBACK, &pkce.verifier).await
}

#[tokio::test]
async fn the_code_flow_signs_in_and_every_check_passes_for_an_admin() {
    let em = emulator().await;
    let token = connect(&em, &em.login_url(), "admin@acme.test").await.expect("token");
    assert!(token.refresh_token.is_some());
    assert_eq!(token.user_id, em.user_id("admin@acme.test").expect("user"));
    let report = checks::run(&client(&em), &token, OrgType::Production).await;
    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.steps.len(), Step::ALL.len());
    let org = report.org.expect("facts");
    assert_eq!(
        (org.org_name.as_str(), org.is_sandbox, org.username.as_str()),
        ("Acme Production", false, "admin@acme.test")
    );
    assert_eq!(org.email.as_deref(), Some("admin@acme.test"));
}

#[tokio::test]
async fn a_user_without_customize_application_fails_that_step_and_is_told_what_to_add() {
    let em = emulator().await;
    let token = connect(&em, &em.login_url(), "editor@acme.test").await.expect("token");
    let report = checks::run(&client(&em), &token, OrgType::Production).await;
    let failure = report.failure().expect("a step fails");
    assert_eq!(failure.step, Step::CustomizeApplication);
    let fix = failure.fix.as_deref().expect("a fix");
    assert!(fix.contains("Customize Application") && fix.contains("editor@acme.test"), "{fix}");
    assert!(
        report
            .steps
            .iter()
            .skip_while(|s| s.step != Step::CustomizeApplication)
            .skip(1)
            .all(|s| s.outcome == Outcome::Skipped)
    );
    assert!(report.org.is_none());
}

#[tokio::test]
async fn a_user_without_api_enabled_fails_that_step() {
    let em = emulator().await;
    let token = connect(&em, &em.login_url(), "noapi@acme.test").await.expect("token");
    let report = checks::run(&client(&em), &token, OrgType::Production).await;
    let failure = report.failure().expect("a step fails");
    assert_eq!(failure.step, Step::ApiEnabled);
    assert!(failure.fix.as_deref().is_some_and(|f| f.contains("API Enabled")));
}

#[tokio::test]
async fn a_sandbox_connected_as_production_fails_the_org_type_step() {
    let em = emulator().await;
    let token = connect(&em, &em.test_login_url(), "admin@acme.test.uat").await.expect("token");
    let report = checks::run(&client(&em), &token, OrgType::Production).await;
    let failure = report.failure().expect("a step fails");
    assert_eq!(failure.step, Step::OrgTypeMatches);
    assert!(failure.detail.contains("sandbox"), "{}", failure.detail);
    assert!(checks::run(&client(&em), &token, OrgType::Sandbox).await.passed());
}

#[tokio::test]
async fn refresh_gives_a_working_token_and_a_revoked_one_reads_as_logged_out() {
    let em = emulator().await;
    let c = client(&em);
    let login = url(&em.login_url());
    let token = connect(&em, &em.login_url(), "admin@acme.test").await.expect("token");
    let refresh = token.refresh_token.clone().expect("refresh token");
    em.expire_all_tokens();
    let session = Session { instance_url: token.instance_url.clone(), access_token: token.access_token.clone() };
    let expired = c.query::<serde_json::Value>(&session, "SELECT Id FROM Organization").await;
    assert!(matches!(expired, Err(SalesforceError::SessionExpired)), "{expired:?}");
    let fresh = c.refresh(&login, &app(), &refresh).await.expect("refresh");
    let session = Session { instance_url: fresh.instance_url.clone(), access_token: fresh.access_token.clone() };
    assert_eq!(
        c.query::<serde_json::Value>(&session, "SELECT Id FROM Organization").await.expect("query").total_size,
        1
    );
    c.revoke(&login, refresh.expose_secret()).await.expect("revoke");
    c.revoke(&login, refresh.expose_secret()).await.expect("revoking a dead token is fine");
    let err = c.refresh(&login, &app(), &refresh).await.expect_err("revoked");
    assert!(err.is_logged_out(), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn jwt_bearer_signs_in_pre_authorized_users_and_explains_the_rest() {
    let em = emulator().await;
    let c = client(&em);
    let key = JwtPrivateKey::new(em.private_key_pem(KEY).expect("key"));
    salesforce::jwt::validate_private_key(&key).expect("valid key");
    let token =
        c.jwt_bearer(&url(&em.login_url()), OrgType::Production, KEY, "admin@acme.test", &key).await.expect("jwt");
    assert!(token.refresh_token.is_none());
    assert!(checks::run(&c, &token, OrgType::Production).await.passed());
    let err = c
        .jwt_bearer(&url(&em.login_url()), OrgType::Production, KEY, "noapi@acme.test", &key)
        .await
        .expect_err("not pre-authorized");
    let report = checks::Report::token_failed(&err);
    assert_eq!(report.failure().map(|f| f.step), Some(Step::TokenObtained));
    assert!(
        report.failure().and_then(|f| f.fix.as_deref()).is_some_and(|f| f.contains("pre-authorized")),
        "{report:#?}"
    );
    // A sandbox user through the production login host.
    let err = c
        .jwt_bearer(&url(&em.login_url()), OrgType::Production, KEY, "admin@acme.test.uat", &key)
        .await
        .expect_err("wrong host");
    assert!(matches!(err, SalesforceError::OAuth { ref error, .. } if error == "invalid_grant"), "{err:?}");
}

#[tokio::test]
async fn client_credentials_work_against_my_domain() {
    let em = emulator().await;
    let token = client(&em).client_credentials(&url(em.base_url()), &app()).await.expect("token");
    assert_eq!(token.user_id, em.user_id("admin@acme.test").expect("run-as user"));
    let wrong = ClientCredentials { consumer_key: KEY.into(), consumer_secret: Some(ClientSecret::new("nope")) };
    let err = client(&em).client_credentials(&url(em.base_url()), &wrong).await.expect_err("bad secret");
    assert!(matches!(err, SalesforceError::OAuth { ref error, .. } if error == "invalid_client"));
}

#[tokio::test]
async fn a_wrong_consumer_secret_fails_the_code_exchange() {
    let em = emulator().await;
    let pkce = Pkce::generate().expect("pkce");
    let authorize = authorize_url(&url(&em.login_url()), KEY, CALLBACK, "api refresh_token", "s", &pkce);
    let callback = url(&emulator::testing::sign_in(authorize.as_str(), "admin@acme.test", "emulator", true)
        .await
        .expect("sign-in"));
    let code = callback.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).expect("code");
    let wrong = ClientCredentials { consumer_key: KEY.into(), consumer_secret: Some(ClientSecret::new("wrong")) };
    let err = client(&em)
        .exchange_code(&url(&em.login_url()), &wrong, &code, CALLBACK, &pkce.verifier)
        .await
        .expect_err("refused");
    let fix = checks::Report::token_failed(&err).failure().and_then(|f| f.fix.clone()).expect("fix");
    assert!(fix.contains("consumer secret"), "{fix}");
}

#[tokio::test]
async fn tokens_are_never_sent_to_hosts_outside_the_policy() {
    let em = emulator().await;
    let strict = Client::new(HostPolicy::salesforce_only()).expect("client");
    let err = strict.client_credentials(&url(em.base_url()), &app()).await.expect_err("refused");
    assert!(matches!(err, SalesforceError::HostNotAllowed(_)), "{err:?}");
    assert!(em.requests().iter().all(|r| r.path != "/services/oauth2/token"), "nothing reached the emulator");
}

#[tokio::test]
async fn an_unreachable_org_is_transient_and_says_where() {
    let c = Client::new(HostPolicy::allowing(["http://127.0.0.1:9"]).expect("policy")).expect("client");
    let err = c.client_credentials(&url("http://127.0.0.1:9"), &app()).await.expect_err("nothing listens on port 9");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:9"));
}

#[tokio::test]
async fn rest_errors_keep_salesforce_s_codes() {
    let em = emulator().await;
    let c = client(&em);
    let token = c.client_credentials(&url(em.base_url()), &app()).await.expect("token");
    let session = Session { instance_url: token.instance_url, access_token: token.access_token };
    match c.query::<serde_json::Value>(&session, "SELECT Nope FROM StaticResource").await {
        Err(SalesforceError::Api { status: 400, code, .. }) => assert_eq!(code, "INVALID_FIELD"),
        other => panic!("{other:?}"),
    }
    em.add_fault(emulator::FaultRule::error("/query", 1, 503, "SERVER_UNAVAILABLE"));
    let err = c.query::<serde_json::Value>(&session, "SELECT Id FROM Organization").await.expect_err("fault");
    assert!(err.is_transient());
}

/// A clock fixed at one instant (milliseconds since the epoch).
#[derive(Debug)]
struct At(i64);

impl domain::Clock for At {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

/// The JWT assertion's expiry comes from the client's (injected) clock: a client whose clock is
/// ten minutes behind the emulator's signs an assertion that has already expired, and moving the
/// emulator's clock back in step with it makes the same assertion acceptable.
#[tokio::test]
async fn jwt_assertions_expire_by_the_injected_clock() {
    let em = emulator().await;
    let key = JwtPrivateKey::new(em.private_key_pem(KEY).expect("key"));
    let now = domain::Clock::now_ms(&domain::SystemClock);
    let behind = client(&em).with_clock(std::sync::Arc::new(At(now - 10 * 60 * 1000)));
    let err = behind
        .jwt_bearer(&url(&em.login_url()), OrgType::Production, KEY, "admin@acme.test", &key)
        .await
        .expect_err("an assertion that expired before it was sent");
    assert!(matches!(err, SalesforceError::OAuth { ref error, .. } if error == "invalid_grant"), "{err:?}");
    let ahead = client(&em).with_clock(std::sync::Arc::new(At(now + 60 * 60 * 1000)));
    em.advance_clock(std::time::Duration::from_secs(60 * 60));
    ahead
        .jwt_bearer(&url(&em.login_url()), OrgType::Production, KEY, "admin@acme.test", &key)
        .await
        .expect("both clocks moved an hour: the assertion is fresh");
}

#[tokio::test]
async fn the_check_works_without_the_id_scope_and_names_the_scopes_when_even_api_is_missing() {
    // Found by an independent Salesforce stand-in (#14 fix 2): the check silently required the
    // `id` scope (the identity URL). Without it, the same facts come from the token reply and
    // the user's own User record (the `api` scope).
    let em = emulator().await;
    let narrow = |key: &str, scopes: &[&str]| AppSeed {
        callback_urls: vec![CALLBACK.into()],
        client_credentials_user: Some("admin@acme.test".into()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..AppSeed::new(key, SECRET)
    };
    em.add_app(&narrow("3MVG9ApiOnly", &["api", "refresh_token"])).expect("app");
    let app =
        ClientCredentials { consumer_key: "3MVG9ApiOnly".into(), consumer_secret: Some(ClientSecret::new(SECRET)) };
    let token = client(&em).client_credentials(&url(em.base_url()), &app).await.expect("token");
    let session = Session { instance_url: token.instance_url.clone(), access_token: token.access_token.clone() };
    assert!(client(&em).identity(&session, &token.id).await.is_err(), "the identity URL refuses this token");
    let report = checks::run(&client(&em), &token, OrgType::Production).await;
    assert!(report.passed(), "{report:#?}");
    let org = report.org.expect("facts");
    assert_eq!((org.username.as_str(), org.email.as_deref()), ("admin@acme.test", Some("admin@acme.test")));
    assert_eq!(org.user_id, em.user_id("admin@acme.test").expect("user"));

    // Neither `id` nor `api`: the step fails and says which scopes to add.
    em.add_app(&narrow("3MVG9WebOnly", &["web"])).expect("app");
    let app =
        ClientCredentials { consumer_key: "3MVG9WebOnly".into(), consumer_secret: Some(ClientSecret::new(SECRET)) };
    let token = client(&em).client_credentials(&url(em.base_url()), &app).await.expect("token");
    let report = checks::run(&client(&em), &token, OrgType::Production).await;
    let failure = report.failure().expect("fails");
    assert_eq!(failure.step, Step::IdentityRead);
    let fix = failure.fix.as_deref().expect("fix");
    assert!(fix.contains("(api)") && fix.contains("id, profile"), "{fix}");
}
