//! Issue #6's figures: the API's table queries over 100,000 connections of one account on
//! SQLite and on PostgreSQL, side by side in one run: throughput with 8 clients at once, and
//! each request's latency (p50/p95) as the clients see it on loopback.
//!
//! `scripts/with-postgres cargo bench -p server --bench stores` (`-- --rows 100000 --seconds 5`).
//! Without `LIGHTBRIDGE_TEST_POSTGRES` only SQLite is measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use connections::{LoginUrls, SystemClock};
use domain::{AccountId, Role, User, UserId};
use server::api::{hash_token, new_api_token};
use server::{AppState, Server};
use store::{AccessStore, CatalogStore, PgStore, SqliteStore, Store};
use vault::{Keyring, MasterKey};

#[path = "seed.rs"]
mod seed;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

const QUERIES: [(&str, &str); 5] = [
    ("first page (newest first)", "/api/v1/connections?per_page=50"),
    ("page 1,000 (deep)", "/api/v1/connections?per_page=50&page=1000"),
    ("sorted by account name", "/api/v1/connections?per_page=50&sort=account_name"),
    ("search, 8 characters", "/api/v1/connections?per_page=50&search=org%2004217"),
    ("search, 2 characters", "/api/v1/connections?per_page=50&search=42"),
];

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let rows = arg("--rows", 100_000);
        let seconds = arg("--seconds", 5) as u64;
        let dir = std::env::temp_dir().join(format!("lightbridge-bench-stores-{}", UserId::generate()));
        std::fs::create_dir_all(&dir).expect("dir");
        let keys = || Keyring::new(MasterKey::from_bytes([7u8; 32]));
        let mut stores: Vec<(&str, Store)> =
            vec![("SQLite", SqliteStore::open(&dir.join("bench.db"), keys()).await.expect("sqlite").into())];
        match std::env::var("LIGHTBRIDGE_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => {
                stores.push(("PostgreSQL", PgStore::scratch(&url, keys()).await.expect("postgres").into()));
            }
            _ => println!("PostgreSQL: skipped (run through scripts/with-postgres)"),
        }
        let mut results = Vec::new();
        for (name, store) in stores {
            let seeded = Instant::now();
            let (base, token) = serve(store, rows).await;
            println!("{name}: {rows} connections seeded in {:.1} s", seeded.elapsed().as_secs_f64());
            for (label, path) in QUERIES {
                let (rps, p50, p95) = measure(&base, &token, path, Duration::from_secs(seconds)).await;
                println!("  {label:<28} {rps:>7.0} req/s   p50 {:>6.2} ms   p95 {:>6.2} ms", ms(p50), ms(p95));
                results.push((name, label, rps, p50, p95));
            }
        }
        if results.iter().any(|r| r.0 == "PostgreSQL") {
            println!("\nPostgreSQL / SQLite (throughput; p95):");
            for (label, _) in QUERIES {
                let of = |n: &str| results.iter().find(|r| r.0 == n && r.1 == label).expect("row");
                let (s, p) = (of("SQLite"), of("PostgreSQL"));
                println!("  {label:<28} {:.2}×   {:.2}×", p.2 / s.2, ms(p.4) / ms(s.4));
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Seeds `rows` connections and an API token into the store and serves it on a free port.
async fn serve(store: Store, rows: usize) -> (String, String) {
    let account = AccountId::generate();
    store.create_account(&account, "Bench", 0).await.expect("account");
    let user = User {
        id: UserId::generate(),
        account_id: Some(account.clone()),
        email: format!("viewer-{}@bench.test", UserId::generate()),
        name: "Viewer".into(),
        role: Role::Viewer,
    };
    store.create_user(&user, None, 0).await.expect("user");
    let token = new_api_token().expect("token");
    let token_id = format!("tok_{}", UserId::generate());
    store.create_api_token(&token_id, &user.id, "bench", &hash_token(token.expose_secret()), 0).await.expect("token");
    let store = Arc::new(store);
    seed::connections(&store, &account, rows).await;
    let client = salesforce::Client::new(salesforce::HostPolicy::allowing(Vec::<String>::new()).expect("policy"))
        .expect("client");
    let state = AppState::new((*store).clone(), client, LoginUrls::salesforce(), Arc::new(SystemClock));
    let server = Server::bind(state, "127.0.0.1:0".parse().expect("addr")).await.expect("bind");
    let base = format!("http://{}", server.local_addr().expect("addr"));
    tokio::spawn(server.run(std::future::pending()));
    (base, token.expose_secret().to_string())
}

/// Eight clients asking `path` over and over for `span`: requests per second, p50, p95.
async fn measure(base: &str, token: &str, path: &str, span: Duration) -> (f64, Duration, Duration) {
    let http = reqwest::Client::new();
    let url = format!("{base}{path}");
    // Warm up (caches, prepared statements).
    for _ in 0..5 {
        let r = http.get(&url).bearer_auth(token).send().await.expect("get");
        assert_eq!(r.status(), 200, "{path}");
        r.bytes().await.expect("body");
    }
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (http, url, token) = (http.clone(), url.clone(), token.to_string());
        clients.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while started.elapsed() < span {
                let t = Instant::now();
                let r = http.get(&url).bearer_auth(&token).send().await.expect("get");
                assert_eq!(r.status(), 200);
                r.bytes().await.expect("body");
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.expect("client"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let at = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize];
    (all.len() as f64 / elapsed, at(0.5), at(0.95))
}
