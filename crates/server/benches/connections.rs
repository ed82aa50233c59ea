//! Issue #3's figures, measured side by side in one run:
//! 1. 1,000 concurrent calls on a connection whose token just expired: wall time and the
//!    number of token-endpoint calls (must be exactly 1);
//! 2. `GET /api/v1/connections` over 100,000 connections of one account: p50/p95 of the
//!    request as the client sees it on loopback (an upper bound for server time), for a plain
//!    page, a sorted page, a deep page and a search.
//!
//! `cargo bench -p server --bench connections` (`-- --rows 100000 --samples 200`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use connections::{LoginUrls, SystemClock, TokenKeeper};
use domain::{
    AccountId, AuthMethod, Connection, ConnectionId, ConnectionKind, ConnectionName, ConnectionStatus, LoginHost,
    OrgType, Role, User, UserId,
};
use emulator::{AppSeed, Emulator, OrgSeed, Seed, UserSeed};
use server::api::{hash_token, new_api_token};
use server::{AppState, Server};
use store::{AccessStore, CatalogStore, ConnectionStore, NewSecrets, SqliteStore};
use vault::{ClientSecret, Keyring, MasterKey};

#[path = "seed.rs"]
mod seed;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        single_flight().await;
        list_and_search(arg("--rows", 100_000), arg("--samples", 200)).await;
    });
}

async fn single_flight() {
    let mut org = OrgSeed::new("Bench Org");
    org.daily_api_limit = u64::MAX / 2;
    org.users = vec![UserSeed::new("bench@bench.test")];
    let app = AppSeed {
        client_credentials_user: Some("bench@bench.test".into()),
        ..AppSeed::new("bench-app", "bench-secret")
    };
    let em = Emulator::start(Seed { orgs: vec![org], apps: vec![app] }).await.expect("emulator");
    let store =
        Arc::new(SqliteStore::in_memory(Keyring::new(MasterKey::generate().expect("key"))).await.expect("store"));
    let account = AccountId::generate();
    store.create_account(&account, "Bench", 0).await.expect("account");
    let connection = Connection {
        id: ConnectionId::generate(),
        account_id: account,
        kind: ConnectionKind::New { name: ConnectionName::parse("bench").expect("name") },
        org_type: OrgType::Production,
        login_host: LoginHost::MyDomain(em.base_url().into()),
        auth: AuthMethod::ClientCredentials { consumer_key: "bench-app".into() },
        org: None,
        status: ConnectionStatus::NotAvailable,
        status_detail: None,
        status_reason: None,
        granted_at: None,
        status_checked_at: None,
        created_at: 0,
        created_by: None,
        modified_at: 0,
        modified_by: None,
    };
    store
        .insert(
            &connection,
            &NewSecrets { consumer_secret: Some(ClientSecret::new("bench-secret")), ..Default::default() },
        )
        .await
        .expect("insert");
    let client =
        salesforce::Client::new(salesforce::HostPolicy::allowing([em.base_url()]).expect("policy")).expect("client");
    let urls =
        LoginUrls { login: em.login_url().parse().expect("url"), test: em.test_login_url().parse().expect("url") };
    let keeper = Arc::new(TokenKeeper::new(store, client, urls, Arc::new(SystemClock)));
    let connection = Arc::new(connection);
    println!("single-flight renewal: 1,000 concurrent calls after the token expired (5 rounds)");
    println!("{:>6} {:>12} {:>14}", "round", "wall ms", "token calls");
    let mut walls = Vec::new();
    for round in 1..=5 {
        em.expire_all_tokens();
        em.clear_requests();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let (keeper, connection) = (keeper.clone(), connection.clone());
            tasks.push(tokio::spawn(async move {
                keeper
                    .with_session(&connection, |session| {
                        let keeper = keeper.clone();
                        async move {
                            keeper
                                .client()
                                .query::<serde_json::Value>(&session, "SELECT Id FROM Organization")
                                .await
                                .map(|_| ())
                        }
                    })
                    .await
            }));
        }
        for t in tasks {
            t.await.expect("task").expect("call");
        }
        let wall = started.elapsed();
        let calls =
            em.requests().iter().filter(|r| r.operation.as_deref().is_some_and(|o| o.starts_with("token:"))).count();
        println!("{round:>6} {:>12.1} {calls:>14}", wall.as_secs_f64() * 1000.0);
        walls.push(wall);
    }
    walls.sort();
    println!("median wall: {:.1} ms\n", walls[walls.len() / 2].as_secs_f64() * 1000.0);
}

async fn list_and_search(rows: usize, samples: usize) {
    let dir = std::env::temp_dir().join(format!("lightbridge-bench-{}", UserId::generate()));
    std::fs::create_dir_all(&dir).expect("dir");
    let store = SqliteStore::open(&dir.join("bench.db"), Keyring::new(MasterKey::generate().expect("key")))
        .await
        .expect("store");
    let account = AccountId::generate();
    store.create_account(&account, "Big", 0).await.expect("account");
    let user = User {
        id: UserId::generate(),
        account_id: Some(account.clone()),
        email: "bench@lightbridge.test".into(),
        name: "b".into(),
        role: Role::Owner,
    };
    store.create_user(&user, None, 0).await.expect("user");
    let token = new_api_token().expect("token");
    store.create_api_token("tok_bench", &user.id, "bench", &hash_token(token.expose_secret()), 0).await.expect("token");
    let seeding = Instant::now();
    let store = Arc::new(store);
    seed::connections(&store, &account, rows).await;
    println!("seeded {rows} connections in {:.1} s", seeding.elapsed().as_secs_f64());
    let client = salesforce::Client::new(salesforce::HostPolicy::salesforce_only()).expect("client");
    let state = AppState::new((*store).clone(), client, LoginUrls::salesforce(), Arc::new(SystemClock));
    let server = Server::bind(state, "127.0.0.1:0".parse().expect("addr")).await.expect("bind");
    let base = format!("http://{}/api/v1/connections", server.local_addr().expect("addr"));
    tokio::spawn(server.run(std::future::pending()));
    let http = reqwest::Client::new();
    println!("GET /api/v1/connections over {rows} rows, {samples} sequential requests each");
    println!("{:<44} {:>9} {:>9} {:>9}", "request", "p50 ms", "p95 ms", "matches");
    for (label, query) in [
        ("first page, 50 rows, newest first", "?per_page=50&order=desc".to_string()),
        ("sorted by account name, page 1", "?per_page=50&sort=account_name".to_string()),
        ("deep page (page 1000)", "?per_page=50&page=1000".to_string()),
        ("search by email substring", "?per_page=50&search=org4242.example".to_string()),
        ("search by account name substring", "?per_page=50&search=Org%20099".to_string()),
    ] {
        let url = format!("{base}{query}");
        let mut times = Vec::with_capacity(samples);
        let mut matches = 0;
        for _ in 0..samples {
            let started = Instant::now();
            let r = http.get(&url).bearer_auth(token.expose_secret()).send().await.expect("request");
            let body: serde_json::Value = r.json().await.expect("json");
            times.push(started.elapsed());
            matches = body["total"].as_u64().unwrap_or_default();
        }
        times.sort();
        println!(
            "{label:<44} {:>9.2} {:>9.2} {matches:>9}",
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.95).as_secs_f64() * 1000.0
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
