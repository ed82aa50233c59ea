//! Emulator throughput on authenticated REST calls (issue #2's goal: >= 5,000 calls/s on 2
//! cores, so the emulator is never the bottleneck of a publish benchmark).
//!
//! `cargo bench -p emulator --bench throughput` (optionally `-- --seconds 3 --runs 5
//! --concurrency 32`). The load generator (reqwest) runs in the same process and on the same
//! two cores as the emulator, so the figures are a lower bound for the emulator alone. Each
//! workload runs `runs` times; the median calls/s is reported, with the spread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use emulator::{AppSeed, Emulator, OrgSeed, Seed, UserSeed};

struct Options {
    seconds: f64,
    runs: usize,
    concurrency: usize,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Options {
        seconds: value("--seconds", 3.0),
        runs: value("--runs", 5.0) as usize,
        concurrency: value("--concurrency", 32.0) as usize,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let opts = options();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(run(opts));
}

async fn run(opts: Options) {
    let mut org = OrgSeed::new("Bench Org");
    org.daily_api_limit = u64::MAX / 2;
    org.users = vec![UserSeed::new("bench@bench.test")];
    let app =
        AppSeed { client_credentials_user: Some("bench@bench.test".into()), ..AppSeed::new("bench", "bench-secret") };
    let em = Emulator::start(Seed { orgs: vec![org], apps: vec![app] }).await.expect("emulator");
    let http = reqwest::Client::builder().pool_max_idle_per_host(opts.concurrency).build().expect("client");
    let reply: serde_json::Value = http
        .post(format!("{}/services/oauth2/token", em.base_url()))
        .form(&[("grant_type", "client_credentials"), ("client_id", "bench"), ("client_secret", "bench-secret")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = reply["access_token"].as_str().expect("token").to_string();
    let created: serde_json::Value = http
        .post(format!("{}/services/data/v60.0/sobjects/StaticResource", em.base_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"Name": "bench_bundle", "ContentType": "application/zip", "CacheControl": "Private", "Body": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    let base = em.base_url().to_string();
    let lookup = format!(
        "{base}/services/data/v60.0/tooling/query?q={}",
        form_urlencoded_q(
            "SELECT Id, Name, BodyLength, LastModifiedDate FROM StaticResource WHERE Name = 'bench_bundle' AND NamespacePrefix = null"
        )
    );
    let workloads: Vec<(&str, String)> = vec![
        ("GET /limits", format!("{base}/services/data/v60.0/limits")),
        ("GET sobjects/StaticResource/{id}", format!("{base}/services/data/v60.0/sobjects/StaticResource/{id}")),
        ("GET tooling/query (resource by Name)", lookup),
    ];
    println!(
        "emulator throughput: {} concurrent clients, {} runs x {:.1} s per workload, 2 worker threads",
        opts.concurrency, opts.runs, opts.seconds
    );
    println!("{:<40} {:>12} {:>12} {:>12} {:>8}", "workload", "median/s", "min/s", "max/s", "errors");
    for (name, url) in workloads {
        let mut rates = Vec::new();
        let mut errors = 0;
        for _ in 0..opts.runs {
            let (rate, errs) =
                measure(&http, &url, &token, opts.concurrency, Duration::from_secs_f64(opts.seconds)).await;
            rates.push(rate);
            errors += errs;
        }
        let (min, max) = (rates.iter().copied().fold(f64::MAX, f64::min), rates.iter().copied().fold(0.0, f64::max));
        println!("{name:<40} {:>12.0} {min:>12.0} {max:>12.0} {errors:>8}", median(rates.clone()));
        em.clear_requests();
    }
}

fn form_urlencoded_q(soql: &str) -> String {
    soql.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Calls/s over `duration` with `concurrency` tasks each looping on one GET.
async fn measure(http: &reqwest::Client, url: &str, token: &str, concurrency: usize, duration: Duration) -> (f64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, token, ok, failed) =
            (http.clone(), url.to_string(), token.to_string(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match http.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    (ok.load(Ordering::Relaxed) as f64 / elapsed, failed.load(Ordering::Relaxed))
}
