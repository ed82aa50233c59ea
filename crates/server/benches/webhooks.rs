//! The notifier at volume (issue #18): 10,000 events to 10 endpoints whose receivers take 50 ms
//! each — 100,000 deliveries — with the notifier stopped in the middle (its task dropped with
//! deliveries in flight, as a crash leaves them) and a new one started.
//!
//! Reports the time to deliver everything, each delivery's event-to-delivery latency (p50,
//! p95) for a steady stream below capacity and for the burst, and checks that no delivery is
//! lost and that every delivery of an event carries that event's one `webhook-id` (a delivery in
//! flight at the crash may arrive twice, under that same id).
//!
//! ```sh
//! cargo bench -p server --bench webhooks
//! cargo bench -p server --bench webhooks -- --events 10000 --endpoints 10 --receiver-ms 50 --concurrency 64
//! scripts/with-postgres cargo bench -p server --bench webhooks -- postgres
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use connections::{Clock, LoginUrls, SystemClock};
use domain::{AccountId, Event, EventType, Webhook, WebhookId};
use service::notify::{NotifierConfig, Sender};
use store::{CatalogStore, NotificationStore, PgStore, SqliteStore, Store};
use vault::{Keyring, MasterKey};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What the receivers saw: (endpoint, webhook-id) → the times it arrived.
#[derive(Default)]
struct Seen {
    arrivals: Mutex<HashMap<(usize, String), Vec<i64>>>,
    bad_signatures: Mutex<usize>,
}

#[derive(Clone)]
struct Receivers {
    seen: Arc<Seen>,
    secret: String,
    delay: Duration,
}

async fn receive(
    State(r): State<Receivers>,
    Path(n): Path<usize>,
    headers: HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    tokio::time::sleep(r.delay).await;
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (id, ts) = (header("webhook-id"), header("webhook-timestamp").parse::<i64>().unwrap_or(0));
    let expected = service::notify::sign(&r.secret, &id, ts, &body).unwrap_or_default();
    if !header("webhook-signature").split(' ').any(|s| s == expected) {
        *r.seen.bad_signatures.lock().expect("lock") += 1;
        return axum::http::StatusCode::BAD_REQUEST;
    }
    r.seen.arrivals.lock().expect("lock").entry((n, id)).or_default().push(SystemClock.now_ms());
    axum::http::StatusCode::NO_CONTENT
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    server::limit_malloc_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let events = arg("--events", 10_000);
    let endpoints = arg("--endpoints", 10);
    let receiver_ms = arg("--receiver-ms", 50) as u64;
    let concurrency = arg("--concurrency", NotifierConfig::default().concurrency);
    let steady = arg("--steady-events", 600);
    let rate = arg("--steady-rate", 20); // events per second: below capacity
    let postgres = std::env::args().any(|a| a == "postgres");

    let keys = Keyring::new(MasterKey::generate().expect("key"));
    let dir = std::env::temp_dir().join(format!("lightbridge-bench-webhooks-{}", domain::UserId::generate()));
    std::fs::create_dir_all(&dir).expect("dir");
    let store: Store = if postgres {
        let url = std::env::var("LIGHTBRIDGE_TEST_POSTGRES").expect("postgres needs scripts/with-postgres");
        PgStore::scratch(&url, keys).await.expect("postgres").into()
    } else {
        SqliteStore::open(&dir.join("bench.db"), keys).await.expect("sqlite").into()
    };
    let account = AccountId::generate();
    store.create_account(&account, "Webhooks", 0).await.expect("account");

    // The receivers: one server, an endpoint per path, each answering after `receiver_ms`.
    let secret = service::notify::new_secret().to_string();
    let seen = Arc::new(Seen::default());
    let receivers = Receivers { seen: seen.clone(), secret: secret.clone(), delay: Duration::from_millis(receiver_ms) };
    let app = axum::Router::new().route("/hook/{n}", axum::routing::post(receive)).with_state(receivers);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    for n in 0..endpoints {
        let w = Webhook {
            id: WebhookId::generate(),
            account_id: account.clone(),
            url: format!("http://127.0.0.1:{port}/hook/{n}"),
            description: String::new(),
            events: Vec::new(),
            enabled: true,
            disabled_reason: None,
            failing_since: None,
            created_at: 0,
            created_by: "bench".into(),
        };
        store.create_webhook(&w, &secret).await.expect("webhook");
    }
    let client = salesforce::Client::new(salesforce::HostPolicy::allowing(Vec::<String>::new()).expect("policy"))
        .expect("client");
    let urls = LoginUrls {
        login: "https://login.salesforce.com".parse().expect("url"),
        test: "https://test.salesforce.com".parse().expect("url"),
    };
    let svc = service::Service::new(store.clone(), client, urls, Arc::new(SystemClock))
        .with_webhooks(Sender::new(true, Duration::from_secs(10)));
    let config = NotifierConfig {
        concurrency,
        lease: Duration::from_secs(3),
        poll: Duration::from_millis(100),
        backoff_base: Duration::from_millis(200),
        backoff_max: Duration::from_secs(1),
        ..Default::default()
    };
    println!(
        "notifier on {}: {endpoints} endpoints answering in {receiver_ms} ms, {concurrency} deliveries in flight",
        store.kind()
    );
    let mut recorded_at: HashMap<String, i64> = HashMap::new();

    // 1. A steady stream below capacity: the latency a receiver sees when nothing is queued.
    let notifier = service::notify::spawn_notifier(&svc, config);
    let started = Instant::now();
    for i in 0..steady {
        let due = Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let event =
            Event::new(&account, EventType::ConnectionRecovered, SystemClock.now_ms(), serde_json::json!({"i": i}));
        store.record_event(&event).await.expect("event");
        recorded_at.insert(event.id.to_string(), event.at);
    }
    wait_until_delivered(&seen, recorded_at.len() * endpoints, Duration::from_secs(120)).await;
    let steady_latency = latencies(&seen, &recorded_at);
    println!(
        "steady: {steady} events at {rate}/s ({} deliveries/s): event-to-delivery p50 {} ms, p95 {} ms, max {} ms",
        rate * endpoints,
        percentile(&steady_latency, 0.5),
        percentile(&steady_latency, 0.95),
        steady_latency.last().copied().unwrap_or(0)
    );

    // 2. The burst: 10,000 events at once, the notifier stopped a third of the way through.
    seen.arrivals.lock().expect("lock").clear();
    recorded_at.clear();
    let burst_started = Instant::now();
    // The events go in while the notifier works, as changes would make them.
    let recording = tokio::spawn({
        let (store, account) = (store.clone(), account.clone());
        async move {
            let mut recorded_at = HashMap::new();
            for i in 0..events {
                let event = Event::new(
                    &account,
                    EventType::DeploymentSucceeded,
                    SystemClock.now_ms(),
                    serde_json::json!({"i": i}),
                );
                store.record_event(&event).await.expect("event");
                recorded_at.insert(event.id.to_string(), event.at);
            }
            (recorded_at, burst_started.elapsed().as_secs_f64())
        }
    });
    let total = events * endpoints;
    wait_until_delivered(&seen, total / 3, Duration::from_secs(600)).await;
    notifier.abort(); // the crash: claims held, attempts unrecorded
    let at_crash = count(&seen);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = service::notify::spawn_notifier(&svc, config);
    let (recorded, record_secs) = recording.await.expect("recording");
    recorded_at = recorded;
    wait_until_delivered(&seen, total, Duration::from_secs(1800)).await;
    let all_secs = burst_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(4)).await; // leases of the crash run out; repeats arrive
    second.abort();

    let (lost, repeated, foreign) = {
        let arrivals = seen.arrivals.lock().expect("lock");
        let mut lost = 0;
        let mut repeated = 0;
        for id in recorded_at.keys() {
            for n in 0..endpoints {
                match arrivals.get(&(n, id.clone())).map(Vec::len).unwrap_or(0) {
                    0 => lost += 1,
                    1 => {}
                    k => repeated += k - 1,
                }
            }
        }
        (lost, repeated, arrivals.keys().filter(|(_, id)| !recorded_at.contains_key(id)).count())
    };
    let burst_latency = latencies(&seen, &recorded_at);
    println!(
        "burst: {events} events recorded in {record_secs:.2} s; {total} deliveries done in {all_secs:.1} s ({:.0}/s), \
         the notifier stopped after {at_crash} and a new one started",
        total as f64 / all_secs
    );
    println!(
        "  event-to-delivery while backlogged: p50 {:.1} s, p95 {:.1} s",
        percentile(&burst_latency, 0.5) as f64 / 1000.0,
        percentile(&burst_latency, 0.95) as f64 / 1000.0
    );
    let bad = *seen.bad_signatures.lock().expect("lock");
    println!(
        "  lost: {lost}; repeated (in flight at the stop, same webhook-id): {repeated}; ids that were no event's: {foreign}; bad signatures: {bad}"
    );
    println!("  pending in the outbox after: {}", store.pending_deliveries().await.expect("pending"));
    let _ = std::fs::remove_dir_all(dir);
}

fn count(seen: &Seen) -> usize {
    seen.arrivals.lock().expect("lock").len()
}

async fn wait_until_delivered(seen: &Seen, n: usize, most: Duration) {
    let started = Instant::now();
    while count(seen) < n {
        assert!(started.elapsed() < most, "only {} of {n} delivered after {most:?}", count(seen));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each (endpoint, event)'s first arrival minus the event's time, sorted.
fn latencies(seen: &Seen, recorded_at: &HashMap<String, i64>) -> Vec<i64> {
    let arrivals = seen.arrivals.lock().expect("lock");
    let mut out: Vec<i64> =
        arrivals.iter().filter_map(|((_, id), times)| Some(times.iter().min()? - recorded_at.get(id)?)).collect();
    out.sort_unstable();
    out
}
