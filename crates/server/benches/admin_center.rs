//! Issues #4's and #16's figures, measured in one run over one seeded database:
//! 1. the Salesforce Connections page (50 rows) with 100,000 connections stored: p50/p95 of the
//!    whole request as a client on loopback sees it (an upper bound for server time), for the
//!    first page, sorted pages, keyset pages from the
//!    middle and the end, a search, the filters, and filters with a search (#16's goal: p95
//!    ≤ 50 ms);
//! 2. exporting all 100,000 rows as CSV and as XLSX: time to the last byte, size, and the
//!    process's peak resident memory during the export above what it held before.
//!
//! 3. (#17) short searches (1–2 characters, by prefix, counted up to 1,000), deep keyset pages
//!    as the table's links reach them, and the CSV export against the database's own client
//!    (`sqlite3 -csv`, `psql \copy … csv`) dumping the same columns of the same rows, and the
//!    XLSX export against that CSV in the same rounds.
//!
//! `cargo bench -p server --bench admin_center` (`-- --rows 100000 --samples 200 --exports 3`);
//! on PostgreSQL: `scripts/with-postgres cargo bench -p server --bench admin_center -- postgres`;
//! `--keep` leaves the SQLite database in place to look at its plans.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use connections::{LoginUrls, SystemClock};
use domain::{AccountId, Role, User, UserId};
use server::api::hash_token;
use server::{AppState, Server};
use store::{AccessStore, CatalogStore, ConnectionStore, PgStore, SqliteStore, Store};
use vault::{Keyring, MasterKey};

#[path = "seed.rs"]
mod seed;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Resident memory now, in KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run(arg("--rows", 100_000), arg("--samples", 200), arg("--exports", 3)));
}

async fn run(rows: usize, samples: usize, exports: usize) {
    let dir = std::env::temp_dir().join(format!("lightbridge-bench-console-{}", UserId::generate()));
    std::fs::create_dir_all(&dir).expect("dir");
    // SQLite in a file, or (`-- postgres`, through scripts/with-postgres) a new PostgreSQL database.
    let db_file = dir.join("bench.db");
    let postgres_url = std::env::args()
        .any(|a| a == "postgres")
        .then(|| std::env::var("LIGHTBRIDGE_TEST_POSTGRES").expect("`-- postgres` needs scripts/with-postgres"));
    let (store, database): (Arc<Store>, String) = match &postgres_url {
        Some(url) => {
            let pg = PgStore::scratch(url, Keyring::new(MasterKey::generate().expect("key"))).await.expect("postgres");
            let name: String =
                sqlx::query_scalar("SELECT current_database()").fetch_one(pg.pool()).await.expect("name");
            (Arc::new(pg.into()), format!("{}/{name}", url.rsplit_once('/').expect("url").0))
        }
        None => {
            let sqlite =
                SqliteStore::open(&db_file, Keyring::new(MasterKey::generate().expect("key"))).await.expect("store");
            (Arc::new(sqlite.into()), db_file.display().to_string())
        }
    };
    println!("store: {}", store.kind());
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
    let now = domain::Clock::now_ms(&domain::SystemClock);
    let session = store::NewSession {
        id_hash: hash_token("bench-session"),
        handle: "ses_bench".into(),
        user: user.id.clone(),
        csrf_token: "csrf".into(),
        created_at: now,
        expires_at: now + 3_600_000,
        remote_addr: None,
        user_agent: None,
        via_sso: false,
        account: None,
    };
    store.create_session(&session).await.expect("session");
    let seeding = Instant::now();
    seed::connections(&store, &account, rows).await;
    println!("seeded {rows} connections in {:.1} s", seeding.elapsed().as_secs_f64());

    // Where an export's time goes: reading the rows alone, one driver round trip per row
    // (`stream`, whole connections) against chunks of 2,000 (`table_chunks`, what exports use).
    {
        use futures_util::StreamExt;
        let (mut per_row, mut chunked) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let started = Instant::now();
            assert_eq!(store.stream(&account, &store::ListQuery::default()).count().await, rows);
            per_row.push(started.elapsed());
            let started = Instant::now();
            let n: usize = store
                .table_chunks(&account, &store::ListQuery::default())
                .map(|c| c.expect("chunk").len())
                .fold(0, |a, b| async move { a + b })
                .await;
            assert_eq!(n, rows);
            chunked.push(started.elapsed());
        }
        per_row.sort();
        chunked.sort();
        println!(
            "reading {rows} rows: stream (row by row) median {:.3} s, table_chunks (2,000 a chunk) median {:.3} s",
            per_row[1].as_secs_f64(),
            chunked[1].as_secs_f64()
        );
    }
    let client = salesforce::Client::new(salesforce::HostPolicy::salesforce_only()).expect("client");
    let state = AppState::new((*store).clone(), client, LoginUrls::salesforce(), Arc::new(SystemClock));
    let server = Server::bind(state, "127.0.0.1:0".parse().expect("addr")).await.expect("bind");
    let base = format!("http://{}", server.local_addr().expect("addr"));
    tokio::spawn(server.run(std::future::pending()));
    let http = reqwest::Client::new();
    let cookie = "lb_session=bench-session";

    println!("\nGET /connections/salesforce (the page, 50 rows) over {rows} rows, {samples} sequential requests each");
    println!("{:<44} {:>9} {:>9} {:>10}", "page", "p50 ms", "p95 ms", "bytes");
    // A keyset page from the middle of the table: the page after the 50,000th row (oldest first).
    let middle = store
        .list(&account, &store::ListQuery { offset: (rows / 2) as u32, limit: 1, ..Default::default() })
        .await
        .expect("middle")
        .rows[0]
        .id
        .to_string();
    // A deep page as the table's Next link reaches it (the position in the link, #17): the page
    // after the row 100 from the end — page 20,000 of a million rows at 50 a page.
    let deep_at = rows.saturating_sub(100);
    let deep = store
        .list(&account, &store::ListQuery { offset: deep_at as u32, limit: 1, ..Default::default() })
        .await
        .expect("deep")
        .rows[0]
        .id
        .to_string();
    let pages: Vec<(&str, String)> = vec![
        ("first page, newest first", "?order=desc".into()),
        ("keyset page after the middle row, linked", format!("?after={middle}&at={}", rows / 2 + 1)),
        ("deep keyset page (100 rows from the end)", format!("?after={deep}&at={}", deep_at + 1)),
        ("short search, 1 character (o)", "?search=o".into()),
        ("short search, 2 characters (ad)", "?search=ad".into()),
        ("short search, no match (zq)", "?search=zq".into()),
        ("short search + filter: Logged out, o", "?status=logged_out&search=o".into()),
        ("short search, by created by desc", "?search=ad&sort=created_by&order=desc".into()),
        ("sorted by account name", "?sort=account_name".into()),
        ("sorted by created by", "?sort=created_by".into()),
        ("sorted by connection status", "?sort=connection_status".into()),
        ("keyset page after the middle row, counted", format!("?after={middle}")),
        ("last page", "?last=1".into()),
        ("search by email substring", "?search=org4242.example".into()),
        ("filter: Logged out", "?status=logged_out".into()),
        ("filter: new, sandbox, OAuth", "?kind=new&environment=sandbox&auth=oauth".into()),
        ("filter + search: Logged out, org42", "?status=logged_out&search=org42".into()),
        ("filter + search: sandbox, org4242.example", "?environment=sandbox&search=org4242.example".into()),
        (
            "filter + search, by account name desc",
            "?status=logged_out&search=org42&sort=account_name&order=desc".into(),
        ),
    ];
    for (label, query) in &pages {
        let url = format!("{base}/connections/salesforce{query}");
        let mut times = Vec::with_capacity(samples);
        let mut bytes = 0;
        for _ in 0..samples {
            let started = Instant::now();
            let r = http.get(&url).header("cookie", cookie).send().await.expect("request");
            assert_eq!(r.status(), 200);
            bytes = r.bytes().await.expect("body").len();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "{label:<44} {:>9.2} {:>9.2} {bytes:>10}",
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.95).as_secs_f64() * 1000.0
        );
    }

    println!("\nExport of all {rows} rows, {exports} runs each (time to the last byte; peak RSS above the baseline)");
    println!("{:<26} {:>10} {:>10} {:>10} {:>12} {:>14}", "format", "median s", "min s", "max s", "MiB", "peak +MiB");
    for (format, filter) in [("csv", ""), ("xlsx", ""), ("csv", "&status=logged_out&search=org42")] {
        let url = format!("{base}/connections/salesforce/export?format={format}{filter}");
        let format = if filter.is_empty() { format.to_string() } else { format!("{format} (filter + search)") };
        let mut times = Vec::new();
        let mut size = 0;
        let mut peaks = Vec::new();
        for _ in 0..exports {
            let baseline = rss_kib();
            let peak = Arc::new(AtomicU64::new(baseline));
            let done = Arc::new(AtomicBool::new(false));
            let sampler = {
                let (peak, done) = (peak.clone(), done.clone());
                std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        peak.fetch_max(rss_kib(), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
            };
            let started = Instant::now();
            let r = http.get(&url).header("cookie", cookie).send().await.expect("request");
            assert_eq!(r.status(), 200);
            let mut stream = r;
            let mut received = 0usize;
            while let Some(chunk) = stream.chunk().await.expect("chunk") {
                received += chunk.len();
            }
            times.push(started.elapsed());
            done.store(true, Ordering::Relaxed);
            sampler.join().expect("sampler");
            size = received;
            peaks.push(peak.load(Ordering::Relaxed).saturating_sub(baseline));
        }
        times.sort();
        peaks.sort();
        println!(
            "{format:<26} {:>10.3} {:>10.3} {:>10.3} {:>12.1} {:>14.1}",
            times[times.len() / 2].as_secs_f64(),
            times[0].as_secs_f64(),
            times[times.len() - 1].as_secs_f64(),
            size as f64 / 1_048_576.0,
            peaks[peaks.len() / 2] as f64 / 1024.0
        );
    }

    // The floor (#17): the database's own command-line client dumping the same columns of the
    // same rows as CSV, side by side with Lightbridge's CSV export, alternating, `exports` runs.
    let columns = "id, legacy, org_type, org_name, created_at, created_by, modified_at, modified_by, status, active";
    let select =
        format!("SELECT {columns} FROM connections WHERE account_id = '{}' ORDER BY created_at, id", account.as_str());
    let floor_command = || -> std::process::Command {
        match &postgres_url {
            Some(_) => {
                let mut c = std::process::Command::new("psql");
                c.args([database.as_str(), "-q", "-c", &format!("\\copy ({select}) TO '/dev/null' csv")]);
                c
            }
            None => {
                let mut c = std::process::Command::new("sqlite3");
                c.args(["-csv", database.as_str(), &select]).stdout(std::process::Stdio::null());
                c
            }
        }
    };
    let tool = if postgres_url.is_some() { "psql \\copy … csv" } else { "sqlite3 -csv" };
    // And the XLSX against that CSV (#17: within 3×), in the same rounds.
    let download = |format: &'static str| {
        let (http, url) = (http.clone(), format!("{base}/connections/salesforce/export?format={format}"));
        async move {
            let started = Instant::now();
            let mut r = http.get(&url).header("cookie", cookie).send().await.expect("request");
            assert_eq!(r.status(), 200);
            while r.chunk().await.expect("chunk").is_some() {}
            started.elapsed()
        }
    };
    let (mut ours, mut floors, mut sheets) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..exports.max(3) {
        let started = Instant::now();
        let status = floor_command().status().expect("the database's command-line client");
        assert!(status.success(), "{tool} failed");
        floors.push(started.elapsed());
        ours.push(download("csv").await);
        if rows < 1_048_576 {
            sheets.push(download("xlsx").await);
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64()
    };
    let (ours, floor) = (median(&mut ours), median(&mut floors));
    println!(
        "\nCSV of all {rows} rows: Lightbridge {ours:.3} s, {tool} {floor:.3} s (medians, alternating) → {:.2}× the floor (goal ≤ 1.5×)",
        ours / floor
    );
    if !sheets.is_empty() {
        let sheet = median(&mut sheets);
        println!(
            "XLSX of all {rows} rows: {sheet:.3} s, in the same rounds → {:.2}× Lightbridge's CSV (goal ≤ 3×)",
            sheet / ours
        );
    }
    // `--keep`: the database stays, to look at its plans afterwards.
    if std::env::args().any(|a| a == "--keep") {
        println!("\nkept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}
