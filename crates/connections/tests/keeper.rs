//! B1 against the emulator: single-flight renewal, rotation, Logged out and Not available.

use std::sync::Arc;

use connections::{KeeperError, LoginUrls, SystemClock, TokenKeeper};
use domain::{
    AccountId, AuthMethod, Connection, ConnectionId, ConnectionKind, ConnectionName, ConnectionStatus, LoginHost,
    OrgFacts, OrgType, StatusReason,
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
    world_with_grace(rotate, connections::DEFAULT_GRACE).await
}

/// A world whose keeper turns a connection Not available after `grace` of transient failures.
async fn world_with_grace(rotate: bool, grace: std::time::Duration) -> World {
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
    let keeper = TokenKeeper::new(store.clone(), client, urls, Arc::new(SystemClock)).with_grace(grace);
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
        status_reason: None,
        granted_at: None,
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

async fn org_name<S: ConnectionStore + 'static>(
    keeper: &TokenKeeper<S>,
    c: &Connection,
) -> Result<String, KeeperError> {
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
async fn an_unreachable_token_endpoint_is_ridden_out_within_the_grace_period() {
    let w = world(false).await;
    let c = oauth_connection(&w).await;
    w.em.expire_all_tokens();
    w.em.add_fault(FaultRule { action: FaultAction::Drop, ..FaultRule::error("/services/oauth2/token", 1, 500, "x") });
    let err = org_name(&w.keeper, &c).await.expect_err("unavailable");
    assert!(matches!(err, KeeperError::Unavailable(_)), "{err:?}");
    let stored = w.store.get(&w.account, &c.id).await.expect("get");
    assert_eq!(stored.status, ConnectionStatus::LoggedIn, "one failed renewal is not an outage");
    assert!(
        stored.status_detail.as_deref().is_some_and(|d| d.contains("failing for 0 min")),
        "{:?}",
        stored.status_detail
    );
    // Once Salesforce answers again the next call renews, and the failure is forgotten.
    assert_eq!(org_name(&w.keeper, &c).await.expect("recovered"), "Keeper Org");
    let stored = w.store.get(&w.account, &c.id).await.expect("get");
    assert_eq!((stored.status, stored.status_detail), (ConnectionStatus::LoggedIn, None));
}

#[tokio::test]
async fn without_a_grace_period_an_unreachable_token_endpoint_is_not_available_at_once() {
    let w = world_with_grace(false, std::time::Duration::ZERO).await;
    let c = oauth_connection(&w).await;
    w.em.expire_all_tokens();
    w.em.add_fault(FaultRule { action: FaultAction::Drop, ..FaultRule::error("/services/oauth2/token", 1, 500, "x") });
    org_name(&w.keeper, &c).await.expect_err("unavailable");
    let stored = w.store.get(&w.account, &c.id).await.expect("get");
    assert_eq!(
        (stored.status, stored.status_reason),
        (ConnectionStatus::NotAvailable, Some(StatusReason::SalesforceUnreachable))
    );
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
    let w = world_with_grace(false, std::time::Duration::ZERO).await;
    let live = oauth_connection(&w).await;
    let every = std::time::Duration::from_secs(900);
    let summary = w.keeper.health_sweep(every, 100).await.expect("sweep");
    assert_eq!((summary.checked, summary.logged_in), (1, 1));
    assert!(w.store.get(&w.account, &live.id).await.expect("get").status_checked_at.is_some());
    assert_eq!(w.keeper.health_sweep(every, 100).await.expect("sweep").checked, 0, "checked recently: not due yet");

    // Salesforce goes away: the next sweep (forced with a zero interval) marks it Not available.
    w.em.add_fault(FaultRule {
        action: FaultAction::Drop,
        times: None,
        ..FaultRule::error("/services/data/v", 0, 500, "x")
    });
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
    assert_eq!(
        (stored.status, stored.status_reason),
        (ConnectionStatus::LoggedOut, Some(StatusReason::RefreshTokenInvalid))
    );
    // Logged out: later sweeps leave it alone (no token calls), until someone reconnects it.
    let calls = token_calls(&w.em, "token:refresh_token");
    let summary = w.keeper.health_sweep(std::time::Duration::ZERO, 100).await.expect("sweep");
    assert_eq!((summary.checked, token_calls(&w.em, "token:refresh_token")), (0, calls));
}

/// Three instances (three stores, three keepers) on one database: SQLite's file, and
/// PostgreSQL when `LIGHTBRIDGE_TEST_POSTGRES` names a server.
async fn three_instances(w: &World, path: &std::path::Path, key: &MasterKey) -> Vec<Arc<TokenKeeper<store::Store>>> {
    let pg = std::env::var("LIGHTBRIDGE_TEST_POSTGRES").ok().filter(|u| !u.is_empty());
    let mut stores: Vec<store::Store> = Vec::new();
    match pg {
        Some(url) => {
            let first = store::PgStore::scratch(&url, Keyring::new(key.clone())).await.expect("postgres");
            let database: String =
                sqlx::query_scalar("SELECT current_database()").fetch_one(first.pool()).await.expect("name");
            let same = url.rsplit_once('/').map(|(base, _)| format!("{base}/{database}")).expect("url");
            stores.push(first.into());
            for _ in 0..2 {
                stores.push(store::PgStore::open(&same, 8, Keyring::new(key.clone())).await.expect("open").into());
            }
        }
        None => {
            for _ in 0..3 {
                stores.push(SqliteStore::open(path, Keyring::new(key.clone())).await.expect("open").into());
            }
        }
    }
    let client = Client::new(HostPolicy::allowing([w.em.base_url()]).expect("policy")).expect("client");
    let urls = LoginUrls {
        login: Url::parse(&w.em.login_url()).expect("url"),
        test: Url::parse(&w.em.test_login_url()).expect("url"),
    };
    stores
        .into_iter()
        .map(|s| Arc::new(TokenKeeper::new(Arc::new(s), client.clone(), urls.clone(), Arc::new(SystemClock))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_database_refresh_once_and_keep_the_rotated_token() {
    // The emulator, the OAuth sign-in and the rotated tokens as in the tests above; the
    // connection then lives in a database three instances share.
    let w = world(true).await;
    let signed_in = oauth_connection(&w).await;
    let secrets = w.store.secrets(&signed_in.id).await.expect("secrets");
    let key = MasterKey::generate().expect("key");
    let dir = std::env::temp_dir().join(format!("lightbridge-keeper-{}", ConnectionId::generate()));
    std::fs::create_dir_all(&dir).expect("dir");
    let keepers = three_instances(&w, &dir.join("shared.db"), &key).await;
    let shared = keepers[0].store();
    shared.create_account(&w.account, "Keeper account", 0).await.expect("account");
    let c = Arc::new(signed_in);
    let copy = NewSecrets {
        consumer_secret: secrets.consumer_secret,
        tokens: Some(TokenSet {
            access_token: secrets.access_token.expect("access"),
            refresh_token: secrets.refresh_token,
            instance_url: secrets.instance_url.expect("instance"),
        }),
        ..Default::default()
    };
    shared.insert(&c, &copy).await.expect("insert");

    for round in 0..2 {
        w.em.expire_all_tokens();
        w.em.clear_requests();
        let mut tasks = Vec::new();
        for i in 0..1000 {
            let (keeper, c) = (keepers[i % 3].clone(), c.clone());
            tasks.push(tokio::spawn(async move { org_name(&keeper, &c).await }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("task").expect("every call succeeds"), "Keeper Org");
        }
        // Round 2 refreshes with the token round 1's rotation stored: it still works.
        assert_eq!(token_calls(&w.em, "token:refresh_token"), 1, "round {round}: one refresh across three instances");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_caller_giving_up_mid_renewal_cannot_leave_a_rotated_away_refresh_token_stored() {
    let w = world(true).await;
    let c = oauth_connection(&w).await;
    w.em.expire_all_tokens();
    // Salesforce is slow: the caller gives up while its refresh is in flight. Salesforce
    // rotates anyway; had the renewal been cancelled with the caller, the new refresh token
    // would be lost and the next renewal would present the retired one — and Salesforce
    // revokes the whole grant when a retired token comes back.
    let slow_reply = FaultAction::Delay { ms: 400 };
    w.em.add_fault(FaultRule { action: slow_reply, ..FaultRule::error("/services/oauth2/token", 1, 500, "x") });
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(100), org_name(&w.keeper, &c)).await;
    assert!(gave_up.is_err(), "the caller timed out mid-renewal");
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert_eq!(org_name(&w.keeper, &c).await.expect("still signed in"), "Keeper Org");
    assert_eq!(token_calls(&w.em, "token:refresh_token"), 1, "the abandoned renewal finished and was kept");
    let stored = w.store.get(&w.account, &c.id).await.expect("get");
    assert_eq!(stored.status, ConnectionStatus::LoggedIn);
}

#[tokio::test]
async fn a_crash_after_salesforce_rotated_ends_the_grant_once_and_says_so_without_retrying() {
    let w = world(true).await;
    let c = oauth_connection(&w).await;
    // A renewal reached Salesforce, which rotated the refresh token, and the process died
    // before the save (no client can close that gap): the stored token is now retired.
    let stored = w.store.secrets(&c.id).await.expect("secrets").refresh_token.expect("refresh token");
    let app = ClientCredentials { consumer_key: "keeper-app".into(), consumer_secret: Some(ClientSecret::new(SECRET)) };
    let login = Url::parse(&w.em.login_url()).expect("url");
    w.keeper.client().refresh(&login, &app, &stored).await.expect("the renewal that crashed");
    w.em.expire_all_tokens();
    w.em.clear_requests();
    // After the restart: one renewal with the retired token (Salesforce revokes the grant),
    // the connection Logged out with its reason, and no retries.
    assert!(matches!(org_name(&w.keeper, &c).await, Err(KeeperError::Salesforce(_) | KeeperError::LoggedOut(_))));
    let after = w.store.get(&w.account, &c.id).await.expect("get");
    assert_eq!(
        (after.status, after.status_reason),
        (ConnectionStatus::LoggedOut, Some(StatusReason::RefreshTokenInvalid))
    );
    for _ in 0..3 {
        assert!(matches!(org_name(&w.keeper, &after).await, Err(KeeperError::LoggedOut(_))));
    }
    assert_eq!(token_calls(&w.em, "token:refresh_token"), 1, "one token request, then none");
}
