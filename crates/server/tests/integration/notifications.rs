//! Notifications (B8, issue #18): webhook endpoints, signed deliveries verified by the official
//! Standard Webhooks library, retries, secret rotation, events recorded with the change that
//! caused them, and the address policy.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use store::NotificationStore;
use testkit::spawn;

use crate::webhook_receiver::Receiver;

/// A new endpoint for `url` in account A; its id and secret.
async fn endpoint(app: &testkit::TestApp, url: &str, events: Value) -> (String, String) {
    let (status, created) =
        app.call("admin_a", Method::POST, "/webhooks", Some(json!({"url": url, "events": events}))).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (created["webhook"]["id"].as_str().expect("id").to_string(), secret)
}

/// Sends a test event to the endpoint; its delivery id and event id.
async fn test_event(app: &testkit::TestApp, webhook: &str) -> (String, String) {
    let (status, sent) = app.call("admin_a", Method::POST, &format!("/webhooks/{webhook}/test"), None).await;
    assert_eq!(status, 202, "{sent}");
    let delivery = sent["delivery_id"].as_str().expect("delivery").to_string();
    let (_, detail) = app.call("admin_a", Method::GET, &format!("/deliveries/{delivery}"), None).await;
    (delivery, detail["delivery"]["event_id"].as_str().expect("event").to_string())
}

/// Waits (up to 20 s) for a delivery to reach `status`; its detail.
async fn delivery_reaches(app: &testkit::TestApp, delivery: &str, status: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let (_, detail) = app.call("admin_a", Method::GET, &format!("/deliveries/{delivery}"), None).await;
        if detail["delivery"]["status"] == status {
            return detail;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never {status}: {detail:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 20 s) until a delivery's first attempt is recorded; its detail.
async fn attempted(app: &testkit::TestApp, delivery: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let (_, detail) = app.call("admin_a", Method::GET, &format!("/deliveries/{delivery}"), None).await;
        if detail["delivery"]["attempts"].as_u64().unwrap_or(0) >= 1 {
            return detail;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never tried: {detail:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn deliveries_verify_with_the_official_library_and_replays_are_caught() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]).await;
    let (webhook, secret) = endpoint(&app, &receiver.url, json!([])).await;
    receiver.set_secrets(&[&secret]).await;
    let (delivery, event) = test_event(&app, &webhook).await;
    assert!(event.starts_with("evt_"), "{event}");

    // Valid: accepted by standardwebhooks' Webhook.verify, under the event's id.
    let accepted = receiver.wait_for(Some(&event), "accepted").await;
    assert_eq!(accepted["type"], "webhook.test");
    let body: Value = serde_json::from_str(accepted["body"].as_str().expect("body")).expect("json");
    assert_eq!((body["id"].as_str(), body["type"].as_str()), (Some(event.as_str()), Some("webhook.test")));
    assert_eq!(body["account_id"], app.accounts["A"].as_str());
    let detail = delivery_reaches(&app, &delivery, "delivered").await;
    assert_eq!(detail["delivery"]["attempts"], 1, "{detail}");
    assert_eq!(detail["attempts"][0]["status"], 200, "{detail}");
    assert!(detail["attempts"][0]["response"].as_str().expect("excerpt").contains("accepted"), "{detail}");

    // A replay within the library's five minutes verifies; the receiver's webhook-id
    // deduplication is what catches it.
    let headers = accepted["headers"].clone();
    let text = accepted["body"].as_str().expect("body");
    assert_eq!(receiver.replay(&headers, text).await["verdict"], "duplicate");

    // Re-timestamped: the signature no longer matches.
    let mut moved = headers.clone();
    let ts: i64 = headers["webhook-timestamp"].as_str().expect("ts").parse().expect("number");
    moved["webhook-timestamp"] = json!((ts + 60).to_string());
    let refused = receiver.replay(&moved, text).await;
    assert_eq!(refused["verdict"], "rejected", "{refused}");
    assert!(refused["error"].as_str().expect("error").contains("No matching signature"), "{refused}");

    // Captured six minutes ago, replayed now: outside the library's tolerance.
    let old = ts - 360;
    let mut stale = headers.clone();
    stale["webhook-timestamp"] = json!(old.to_string());
    stale["webhook-id"] = json!(format!("{event}-captured"));
    stale["webhook-signature"] =
        json!(service::notify::sign(&secret, &format!("{event}-captured"), old, text).expect("sign"));
    let refused = receiver.replay(&stale, text).await;
    assert_eq!(refused["verdict"], "rejected", "{refused}");
    assert!(refused["error"].as_str().expect("error").contains("too old"), "{refused}");

    // Another account sees neither the endpoint nor the delivery.
    let (status, _) = app.call("admin_b", Method::GET, &format!("/webhooks/{webhook}"), None).await;
    assert_eq!(status, 404);
    let (status, _) = app.call("admin_b", Method::GET, &format!("/deliveries/{delivery}"), None).await;
    assert_eq!(status, 404);
    // Viewers and editors do not manage endpoints.
    let (status, _) = app.call("editor_a", Method::GET, "/webhooks", None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_receiver_failing_five_times_gets_the_delivery_once_it_recovers() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]).await;
    let (webhook, secret) = endpoint(&app, &receiver.url, json!([])).await;
    receiver.set_secrets(&[&secret]).await;
    receiver.fail(5).await;
    let (delivery, event) = test_event(&app, &webhook).await;
    receiver.wait_for(Some(&event), "accepted").await;
    let detail = delivery_reaches(&app, &delivery, "delivered").await;
    let statuses: Vec<i64> =
        detail["attempts"].as_array().expect("attempts").iter().map(|a| a["status"].as_i64().unwrap_or(0)).collect();
    assert_eq!(statuses, [500, 500, 500, 500, 500, 200], "{detail:#}");
    // One event id throughout, accepted once.
    let log = receiver.log().await;
    assert!(log.iter().all(|e| e["id"] == event.as_str()), "{log:#?}");
    assert_eq!(log.iter().filter(|e| e["verdict"] == "accepted").count(), 1, "{log:#?}");
    // The endpoint is not failing any more.
    let (_, listed) = app.call("admin_a", Method::GET, &format!("/webhooks/{webhook}"), None).await;
    assert_eq!(listed["failing_since"], Value::Null, "{listed}");
    let (_, failed) =
        app.call("admin_a", Method::GET, &format!("/webhooks/{webhook}/deliveries?status=failed"), None).await;
    assert_eq!(failed, json!([]));
}

#[tokio::test]
async fn both_secrets_verify_during_a_rotation_and_the_old_one_stops_after_it() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]).await;
    let (webhook, old) = endpoint(&app, &receiver.url, json!([])).await;
    let (status, rotated) =
        app.call("admin_a", Method::POST, &format!("/webhooks/{webhook}/rotate-secret"), None).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().expect("secret").to_string();
    assert_ne!(old, new);

    // A receiver still on the old secret, and one already on the new: both verify.
    for secret in [&old, &new] {
        receiver.set_secrets(&[secret]).await;
        let (delivery, event) = test_event(&app, &webhook).await;
        receiver.wait_for(Some(&event), "accepted").await;
        delivery_reaches(&app, &delivery, "delivered").await;
    }

    // A day later the old secret no longer signs.
    app.clock.advance(Duration::from_secs(25 * 3600));
    receiver.set_secrets(&[&old]).await;
    let (delivery, event) = test_event(&app, &webhook).await;
    let refused = receiver.wait_for(Some(&event), "rejected").await;
    assert!(refused["error"].as_str().expect("error").contains("No matching signature"), "{refused}");
    let detail = attempted(&app, &delivery).await;
    assert_eq!(detail["delivery"]["status"], "pending", "{detail}");
    assert_eq!(detail["attempts"][0]["status"], 400, "{detail}");
    // The receiver switches: the retry gets through.
    receiver.set_secrets(&[&new]).await;
    delivery_reaches(&app, &delivery, "delivered").await;
}

#[tokio::test]
async fn a_logged_out_connection_is_announced_with_its_reason_and_fix() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]).await;
    let (webhook, secret) = endpoint(&app, &receiver.url, json!(["connection.logged_out"])).await;
    receiver.set_secrets(&[&secret]).await;
    let (_, listed) = app.call("admin_a", Method::GET, "/event-types", None).await;
    assert!(listed.as_array().expect("types").iter().any(|t| t["name"] == "drift.found"), "{listed}");

    let (status, created) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt("Prod", "admin@acme.test"))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    // The user is deactivated in Setup: the next check finds the connection logged out.
    app.em
        .set_user("admin@acme.test", &emulator::UserChange { active: Some(false), ..Default::default() })
        .expect("user");
    let (_, checked) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
    assert_eq!(checked["health"], "Logged out", "{checked}");
    let (_, events) = app.call("admin_a", Method::GET, "/events", None).await;
    let event = events
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "connection.logged_out")
        .unwrap_or_else(|| panic!("no logged_out event: {events:#}"))
        .clone();
    assert_eq!(event["data"]["connection"]["id"], id, "{event}");
    assert!(event["data"]["reason"]["fix"].as_str().is_some_and(|f| !f.is_empty()), "{event}");
    let accepted = receiver.wait_for(event["id"].as_str(), "accepted").await;
    assert_eq!(accepted["type"], "connection.logged_out");
    // Subscribed to that type only: the webhook.test-less log holds nothing else.
    let log = receiver.log().await;
    assert_eq!(log.len(), 1, "{log:#?}");
    let _ = webhook;
}

#[tokio::test]
async fn deliveries_reach_public_addresses_only_checked_when_connecting() {
    let app = testkit::spawn_configured(None, |c| c.webhook_allow_private = false).await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://127.1/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest",
        "https://[::ffff:127.0.0.1]/hook",
    ] {
        let (status, refused) = app.call("admin_a", Method::POST, "/webhooks", Some(json!({"url": url}))).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("invalid")), "{url}: {refused}");
    }
    // A name that passed when saved but now resolves to this machine (DNS rebinding): the
    // address is refused when the connection is made, and nothing reaches the receiver.
    let receiver = Receiver::start(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).await;
    let rebound = receiver.url.replace("127.0.0.1", "localhost");
    let account = app.accounts["A"].clone();
    let webhook = domain::Webhook {
        id: domain::WebhookId::generate(),
        account_id: account.clone(),
        url: rebound,
        description: String::new(),
        events: Vec::new(),
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        created_at: 0,
        created_by: "test".into(),
    };
    app.state.store.create_webhook(&webhook, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").await.expect("webhook");
    let (delivery, _) = test_event(&app, webhook.id.as_str()).await;
    let detail = attempted(&app, &delivery).await;
    assert_eq!(detail["attempts"][0]["status"], Value::Null, "{detail:#}");
    let why = detail["attempts"][0]["response"].as_str().expect("why");
    assert!(why.contains("not public"), "{why}");
    assert_eq!(receiver.log().await, Vec::<Value>::new());
}

#[tokio::test]
async fn three_notifiers_on_one_database_deliver_each_event_once() {
    // Three instances' notifiers, each on its own connections to the same database (SQLite, or
    // PostgreSQL when the suite runs there): every delivery is claimed by one of them.
    let app = spawn().await;
    let receiver = Receiver::start(&[]).await;
    let (webhook, secret) = endpoint(&app, &receiver.url, json!(["connection.recovered"])).await;
    receiver.set_secrets(&[&secret]).await;
    let mut notifiers = Vec::new();
    for _ in 0..2 {
        let store: store::Store = match &*app.state.store {
            store::Store::Sqlite(_) => {
                store::SqliteStore::open(&app.db, app.keys.clone()).await.expect("sqlite").into()
            }
            store::Store::Postgres(pg) => {
                let name: String =
                    sqlx::query_scalar("SELECT current_database()").fetch_one(pg.pool()).await.expect("name");
                let url = std::env::var("LIGHTBRIDGE_TEST_POSTGRES").expect("the suite's PostgreSQL");
                let url = format!("{}/{name}", url.rsplit_once('/').expect("url").0);
                store::PgStore::open(&url, 8, app.keys.clone()).await.expect("postgres").into()
            }
        };
        let svc = service::Service::new(store, app.state.client.clone(), app.state.urls.clone(), app.clock.clone())
            .with_webhooks(service::notify::Sender::new(true, Duration::from_secs(10)));
        // Retries in tenths of a second, as the app's own (a receiver slow under a loaded
        // machine must not push a retry past the test's minute).
        let config = service::notify::NotifierConfig {
            poll: Duration::from_millis(20),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(400),
            ..Default::default()
        };
        notifiers.push(service::notify::spawn_notifier(&svc, config));
    }
    let account = app.accounts["A"].clone();
    const EVENTS: usize = 300;
    for i in 0..EVENTS {
        let at = domain::Clock::now_ms(&*app.clock) + i as i64;
        let event = domain::Event::new(&account, domain::EventType::ConnectionRecovered, at, json!({"n": i}));
        app.state.store.record_event(&event).await.expect("event");
    }
    let started = std::time::Instant::now();
    loop {
        let log = receiver.log().await;
        if log.iter().filter(|e| e["verdict"] != "rejected").count() >= EVENTS {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{} of {EVENTS} delivered", log.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // a second delivery, were there one
    let log = receiver.log().await;
    let mut ids: Vec<&str> = log.iter().filter_map(|e| e["id"].as_str()).collect();
    let mut verdicts = std::collections::BTreeMap::new();
    for e in &log {
        *verdicts.entry(e["verdict"].to_string()).or_insert(0) += 1;
    }
    assert_eq!(log.iter().filter(|e| e["verdict"] == "accepted").count(), EVENTS, "{verdicts:?}");
    assert!(!log.iter().any(|e| e["verdict"] == "duplicate"), "delivered twice: {log:#?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), EVENTS, "one webhook-id per event");
    // Each answer is recorded by the notifier that got it, a moment after the receiver logged it.
    let started = std::time::Instant::now();
    let delivered = loop {
        let (_, delivered) = app
            .call("admin_a", Method::GET, &format!("/webhooks/{webhook}/deliveries?status=delivered&limit=500"), None)
            .await;
        let delivered = delivered.as_array().expect("deliveries").clone();
        if delivered.len() == EVENTS {
            break delivered;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{} of {EVENTS} recorded as delivered", delivered.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(delivered.iter().all(|d| d["attempts"] == 1), "each attempted once");
    for n in notifiers {
        n.abort();
    }
}

async fn page(app: &testkit::TestApp, cookie: &str, path: &str) -> (u16, String) {
    let r = app.http.get(format!("{}{path}", app.base)).header("cookie", cookie).send().await.expect("get");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// Posts a form; the status and the page (or the flash of a redirect).
async fn post(app: &testkit::TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    if status == 303 {
        let flash = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("lb_flash="))
            .and_then(|v| {
                let raw = v.split(';').next().unwrap_or_default();
                url::form_urlencoded::parse(format!("f={raw}").as_bytes()).next().map(|(_, t)| t.into_owned())
            })
            .unwrap_or_default();
        // "kind|text": the text.
        return (status, flash.split_once('|').map(|(_, t)| t.to_string()).unwrap_or(flash));
    }
    (status, r.text().await.expect("body"))
}

#[tokio::test]
async fn the_webhooks_pages_add_test_rotate_and_redeliver() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]).await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let (status, html) = page(&app, &cookie, "/webhooks").await;
    assert_eq!(status, 200);
    assert!(html.contains("data-empty") && html.contains("value=\"drift.found\""), "{html}");

    // Refused with the reason, the form kept.
    let form = [("csrf", csrf.as_str()), ("url", "ftp://example.com/x"), ("event", "drift.found")];
    let (status, html) = post(&app, &cookie, "/webhooks", &form).await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("Use an https:// URL") && html.contains("value=\"ftp://example.com/x\""), "{html}");
    assert!(html.contains("value=\"drift.found\" checked"), "the boxes stay ticked: {html}");
    // A forged form does nothing.
    let forged = [("csrf", "forged"), ("url", receiver.url.as_str())];
    assert_eq!(post(&app, &cookie, "/webhooks", &forged).await.0, 403);

    // Added: the secret is on the page once, and works with the official library.
    let form = [("csrf", csrf.as_str()), ("url", receiver.url.as_str()), ("description", "Ops pager")];
    let (status, html) = post(&app, &cookie, "/webhooks", &form).await;
    assert_eq!(status, 200, "{html}");
    let secret = html.split("data-webhook-secret>").nth(1).and_then(|s| s.split('<').next()).expect("the secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.set_secrets(&[secret]).await;
    let (_, html) = page(&app, &cookie, "/webhooks").await;
    assert!(!html.contains(secret), "shown once only");
    let (_, listed) = app.call("admin_a", Method::GET, "/webhooks", None).await;
    let id = listed[0]["id"].as_str().expect("id").to_string();
    assert_eq!(listed[0]["description"], "Ops pager");

    // A test event from the page reaches the receiver; the delivery log shows it.
    let (status, flash) = post(&app, &cookie, &format!("/webhooks/{id}/test"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303, "{flash}");
    assert!(flash.contains("test event is on its way"), "{flash}");
    receiver.wait_for(None, "accepted").await;
    let started = std::time::Instant::now();
    loop {
        let (_, html) = page(&app, &cookie, &format!("/webhooks/{id}")).await;
        if html.contains("data-status=\"delivered\"") {
            assert!(html.contains("webhook.test") && html.contains("accepted"), "{html}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{html}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Redeliver it: the receiver sees the same webhook-id again (and deduplicates it).
    let (_, deliveries) = app.call("admin_a", Method::GET, &format!("/webhooks/{id}/deliveries"), None).await;
    let delivery = deliveries[0]["id"].as_str().expect("delivery").to_string();
    let (status, flash) =
        post(&app, &cookie, &format!("/webhooks/{id}/redeliver"), &[("csrf", &csrf), ("delivery", &delivery)]).await;
    assert_eq!((status, flash.as_str()), (303, "The delivery is sent again now."));
    receiver.wait_for(None, "duplicate").await;

    // A new secret, shown once; turned off; removed.
    let (status, html) = post(&app, &cookie, &format!("/webhooks/{id}/rotate"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 200);
    let rotated = html.split("data-webhook-secret>").nth(1).and_then(|s| s.split('<').next()).expect("new secret");
    assert_ne!(rotated, secret);
    let (status, flash) =
        post(&app, &cookie, &format!("/webhooks/{id}/enabled"), &[("csrf", &csrf), ("enabled", "false")]).await;
    assert_eq!(status, 303);
    assert!(flash.contains("is off"), "{flash}");
    let (_, shown) = app.call("admin_a", Method::GET, &format!("/webhooks/{id}"), None).await;
    assert_eq!(shown["enabled"], false);
    // Editors do not see the page; another account's endpoint is not found.
    let (editor, _) = app.sign_in("editor_a").await;
    assert_eq!(page(&app, &editor, "/webhooks").await.0, 403);
    let (other, other_csrf) = app.sign_in("admin_b").await;
    assert_eq!(page(&app, &other, &format!("/webhooks/{id}")).await.0, 404);
    assert_eq!(post(&app, &other, &format!("/webhooks/{id}/delete"), &[("csrf", &other_csrf)]).await.0, 404);
    assert_eq!(page(&app, &other, &format!("/webhooks/{id}/delete")).await.0, 404);
    // Remove asks first, saying what goes with the endpoint.
    let (status, confirm) = page(&app, &cookie, &format!("/webhooks/{id}/delete")).await;
    assert_eq!(status, 200, "{confirm}");
    assert!(confirm.contains("Remove the endpoint") && confirm.contains("delivery log goes with it"), "{confirm}");
    let (_, listed) = page(&app, &cookie, "/webhooks").await;
    assert!(listed.contains(&format!("href=\"/webhooks/{id}/delete\"")), "Remove is a link to the question");
    let (status, flash) = post(&app, &cookie, &format!("/webhooks/{id}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert!(flash.contains("is removed"), "{flash}");
    assert_eq!(app.call("admin_a", Method::GET, "/webhooks", None).await.1, json!([]));
}
