//! B1 against the emulator: single-flight renewal, rotation, Logged out and Not available.

use std::sync::Arc;

use connections::{KeeperError, LoginUrls, SystemClock, TokenKeeper};
use domain::{
    AccountId, AuthMethod, Connection, ConnectionId, ConnectionKind, ConnectionName, ConnectionStatus, LoginHost,
    OrgFacts, OrgType,
};
use emulator::{AppSeed, Emulator, FaultAction, FaultRule, OrgSeed, Seed, UserSeed};
use salesforce::oauth::authorize_url;
use salesforce::{Client, ClientCredentials, HostPolicy, Pkce, Session};
use store::{CatalogStore, ConnectionStore, NewSecrets, SqliteStore, TokenSet};
use url::Url;
use vault::{ClientSecret, JwtPrivateKey, Keyring, MasterKey};

const CALLBACK: &str = "http://127.0.0.1:9/oauth/callback";
const SECRET: &str = "keeper-secret";

struct World {
    em: Emulator,
    store: Arc<SqliteStore>,
    keeper: TokenKeeper<SqliteStore>,
    account: AccountId,
}

async fn world(rotate: bool) -> World {
    let mut org = OrgSeed::new("Keeper Org");
    org.users = vec![UserSeed::new("admin@keeper.test")];
    let app = AppSeed {
        callback_urls: vec![CALLBACK.into()],
        rotate_refresh_tokens: rotate,
        generate_certificate: true,
        pre_authorized: vec!["admin@keeper.test".into()],
        client_credentials_user: Some("admin@keeper.test".into()),
        ..AppSeed::new("keeper-app", SECRET)
    };
    let em = Emulator::start(Seed { orgs: vec![org], apps: vec![app] }).await.expect("emulator");
    let store =
        Arc::new(SqliteStore::in_memory(Keyring::new(MasterKey::generate().expect("key"))).await.expect("store"));
    let account = AccountId::generate();
    store.create_account(&account, "Keeper account", 0).await.expect("account");
    let client = Client::new(HostPolicy::allowing([em.base_url()]).expect("policy")).expect("client");
    let urls = LoginUrls {
        login: Url::parse(&em.login_url()).expect("url"),
        test: Url::parse(&em.test_login_url()).expect("url"),
    };
    let keeper = TokenKeeper::new(store.clone(), client, urls, Arc::new(SystemClock));
    World { em, store, keeper, account }
}

fn connection(world: &World, auth: AuthMethod, login_host: LoginHost) -> Connection {
    Connection {
        id: ConnectionId::generate(),
        account_id: world.account.clone(),
        kind: ConnectionKind::New {
            name: ConnectionName::parse(&format!("c-{}", ConnectionId::generate())).expect("name"),
        },
        org_type: OrgType::Production,
        login_host,
        auth,
        org: Some(OrgFacts {
            org_id: world.em.org_id_of_user("admin@keeper.test").expect("org"),
            org_name: "Keeper Org".into(),
            instance_url: world.em.base_url().into(),
            user_id: world.em.user_id("admin@keeper.test").expect("user"),
            username: "admin@keeper.test".into(),
            email: Some("admin@keeper.test".into()),
        }),
        status: ConnectionStatus::LoggedIn,
        status_detail: None,
        status_checked_at: None,
        created_at: 0,
        created_by: None,
        modified_at: 0,
        modified_by: None,
    }
}

/// An OAuth connection, signed in through the emulator's pages and stored with its tokens.
async fn oauth_connection(world: &World) -> Connection {
    let pkce = Pkce::generate().expect("pkce");
    let login = Url::parse(&world.em.login_url()).expect("url");
    let url = authorize_url(&login, "keeper-app", CALLBACK, "api refresh_token", "st", &pkce);
    let callback = Url::parse(
        &emulator::testing::sign_in(url.as_str(), "admin@keeper.test", "emulator", true).await.expect("sign in"),
    )
    .expect("url");
    let code = callback.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).expect("code");
    let app = ClientCredentials { consumer_key: "keeper-app".into(), consumer_secret: Some(ClientSecret::new(SECRET)) };
    let reply =
        world.keeper.client().exchange_code(&login, &app, &code, CALLBACK, &pkce.verifier).await.expect("exchange");
    let c = connection(world, AuthMethod::OAuth { consumer_key: "keeper-app".into() }, LoginHost::Login);
    let secrets = NewSecrets {
        consumer_secret: Some(ClientSecret::new(SECRET)),
        tokens: Some(TokenSet {
            access_token: reply.access_token,
            refresh_token: reply.refresh_token,
            instance_url: reply.instance_url.to_string(),
        }),
        ..Default::default()
    };
    world.store.insert(&c, &secrets).await.expect("insert");
    c
}

async fn org_name(keeper: &TokenKeeper<SqliteStore>, c: &Connection) -> Result<String, KeeperError> {
    keeper
        .with_session(c, |session: Session| async move {
            let client = keeper.client();
            let r = client.query::<serde_json::Value>(&session, "SELECT Name FROM Organization").await?;
            Ok(r.records[0]["Name"].as_str().unwrap_or_default().to_string())
        })
        .await
}

fn token_calls(em: &Emulator, grant: &str) -> usize {
    em.requests().iter().filter(|r| r.operation.as_deref() == Some(grant)).count()
}

#[tokio::test]
async fn a_live_token_is_used_as_is() {
    let w = world(false).await;
    let c = oauth_connection(&w).await;
    w.em.clear_requests();
    assert_eq!(org_name(&w.keeper, &c).await.expect("query"), "Keeper Org");
    assert_eq!(token_calls(&w.em, "token:refresh_token"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_on_an_expired_token_refresh_exactly_once() {
    let w = Arc::new(world(false).await);
    let c = Arc::new(oauth_connection(&w).await);
    w.em.expire_all_tokens();
    w.em.clear_requests();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (w, c) = (w.clone(), c.clone());
        tasks.push(tokio::spawn(async move { org_name(&w.keeper, &c).await }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task").expect("every call succeeds"), "Keeper Org");
    }
    assert_eq!(token_calls(&w.em, "token:refresh_token"), 1, "single flight: one refresh for a thousand callers");
    let stored = w.store.get(&w.account, &c.id).await.expect("get");
    assert_eq!(stored.status, ConnectionStatus::LoggedIn);
}

#[tokio::test]
async fn with_rotation_the_newest_refresh_token_is_always_the_stored_one() {
    let w = world(true).await;
    let c = oauth_connection(&w).await;
    for round in 0..3 {
        w.em.expire_all_tokens();
        assert_eq!(org_name(&w.keeper, &c).await.unwrap_or_else(|e| panic!("round {round}: {e}")), "Keeper Org");
    }
    assert_eq!(
        token_calls(&w.em, "token:refresh_token"),
        3,
        "each expiry rotated once and the rotated token kept working"
    );
}

#[tokio::test]
async fn a_revoked_refresh_token_marks_the_connection_logged_out() {
    let w = world(false).await;
    let c = oauth_connection(&w).await;
    w.em.revoke_user("admin@keeper.test").expect("revoke");
    let err = org_name(&w.keeper, &c).await.expect_err("logged out");
    assert!(matches!(err, KeeperError::LoggedOut(_)), "{err:?}");
    let stored = w.store.get(&w.account, &c.id).await.expect("get");
    assert_eq!(stored.status, ConnectionStatus::LoggedOut);
    assert!(stored.status_detail.as_deref().is_some_and(|d| d.contains("invalid_grant")), "{:?}", stored.status_detail);
}

#[tokio::test]
async fn an_unreachable_token_endpoint_marks_the_connection_not_available() {
    let w = world(false).await;
    let c = oauth_connection(&w).await;
    w.em.expire_all_tokens();
    w.em.add_fault(FaultRule { action: FaultAction::Drop, ..FaultRule::error("/services/oauth2/token", 1, 500, "x") });
    let err = org_name(&w.keeper, &c).await.expect_err("unavailable");
    assert!(matches!(err, KeeperError::Unavailable(_)), "{err:?}");
    assert_eq!(w.store.get(&w.account, &c.id).await.expect("get").status, ConnectionStatus::NotAvailable);
    // Once Salesforce answers again the next call renews and the connection is Logged in.
    assert_eq!(org_name(&w.keeper, &c).await.expect("recovered"), "Keeper Org");
    assert_eq!(w.store.get(&w.account, &c.id).await.expect("get").status, ConnectionStatus::LoggedIn);
}

#[tokio::test]
async fn jwt_and_client_credentials_connections_mint_new_tokens_when_needed() {
    let w = world(false).await;
    let jwt = connection(
        &w,
        AuthMethod::Jwt { consumer_key: "keeper-app".into(), username: "admin@keeper.test".into() },
        LoginHost::Login,
    );
    let key = JwtPrivateKey::new(w.em.private_key_pem("keeper-app").expect("key"));
    w.store.insert(&jwt, &NewSecrets { private_key: Some(key), ..Default::default() }).await.expect("insert");
    let cc = connection(
        &w,
        AuthMethod::ClientCredentials { consumer_key: "keeper-app".into() },
        LoginHost::MyDomain(w.em.base_url().into()),
    );
    w.store
        .insert(&cc, &NewSecrets { consumer_secret: Some(ClientSecret::new(SECRET)), ..Default::default() })
        .await
        .expect("insert");
    assert_eq!(org_name(&w.keeper, &jwt).await.expect("jwt"), "Keeper Org");
    assert_eq!(org_name(&w.keeper, &cc).await.expect("client credentials"), "Keeper Org");
    w.em.expire_all_tokens();
    assert_eq!(org_name(&w.keeper, &jwt).await.expect("jwt again"), "Keeper Org");
    assert_eq!(token_calls(&w.em, "token:jwt_bearer"), 2);
    assert_eq!(token_calls(&w.em, "token:client_credentials"), 1);
}

#[tokio::test]
async fn the_health_sweep_flags_idle_connections_and_recovers_them() {
    let w = world(false).await;
    let live = oauth_connection(&w).await;
    let every = std::time::Duration::from_secs(900);
    let summary = w.keeper.health_sweep(every, 100).await.expect("sweep");
    assert_eq!((summary.checked, summary.logged_in), (1, 1));
    assert!(w.store.get(&w.account, &live.id).await.expect("get").status_checked_at.is_some());
    assert_eq!(w.keeper.health_sweep(every, 100).await.expect("sweep").checked, 0, "checked recently: not due yet");

    // Salesforce goes away: the next sweep (forced with a zero interval) marks it Not available.
    w.em.add_fault(FaultRule { action: FaultAction::Drop, times: None, ..FaultRule::error("/limits", 0, 500, "x") });
    let summary = w.keeper.health_sweep(std::time::Duration::ZERO, 100).await.expect("sweep");
    assert_eq!(summary.not_available, 1);
    assert_eq!(w.store.get(&w.account, &live.id).await.expect("get").status, ConnectionStatus::NotAvailable);
    w.em.clear_faults();
    assert_eq!(
        w.keeper.health_sweep(std::time::Duration::ZERO, 100).await.expect("sweep").logged_in,
        1,
        "back once it answers"
    );

    // The user's tokens are revoked in Salesforce while nobody uses the connection.
    w.em.revoke_user("admin@keeper.test").expect("revoke");
    let summary = w.keeper.health_sweep(std::time::Duration::ZERO, 100).await.expect("sweep");
    assert_eq!(summary.logged_out, 1);
    let stored = w.store.get(&w.account, &live.id).await.expect("get");
    assert_eq!(stored.status, ConnectionStatus::LoggedOut);
}
