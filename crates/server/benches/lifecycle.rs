//! Issue #14's simulation at full size: 1,000 connections for 90 days of emulated time (both
//! clocks moved together, no real waiting), with a schedule drawn from a fixed seed. Prints the
//! report docs/benchmarks.md keeps, and exits non-zero when a goal is missed.
//!
//! `cargo bench -p server --bench lifecycle` (`-- --connections 1000 --days 90 --seed 14`).

use testkit::lifecycle::{SimConfig, simulate};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let full = SimConfig::full();
    let config = SimConfig {
        connections: arg("--connections", full.connections as u64) as usize,
        days: arg("--days", u64::from(full.days)) as u32,
        seed: arg("--seed", full.seed),
        ..full
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let report = runtime.block_on(simulate(config.clone()));
    println!("{}", report.markdown());
    let problems = report.problems(config.min_events);
    if !problems.is_empty() {
        eprintln!("goals missed:\n{}", problems.join("\n"));
        std::process::exit(1);
    }
}
