//! Sign-in throttling (issue #13): a guess from one address gets a handful of tries and then
//! waits longer and longer; a guess spread over many addresses hits the per-email ceiling; the
//! real user is never locked out of a browser they signed in with before, and gets in from
//! anywhere once the back-off has passed. Time moves on the server's clock, not by sleeping.

use reqwest::Method;
use serde_json::json;
use testkit::spawn;

const EMAIL: &str = "editor_a@lightbridge.test";
const PASSWORD: &str = "password-editor_a";

/// A client whose connections come from `127.0.0.<last>` (every 127/8 address is loopback).
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, last])).build().expect("client")
}

async fn sign_in(http: &reqwest::Client, base: &str, password: &str, device: Option<&str>) -> reqwest::Response {
    let mut request = http.post(format!("{base}/api/v1/session")).json(&json!({"email": EMAIL, "password": password}));
    if let Some(device) = device {
        request = request.header("cookie", format!("lb_device={device}"));
    }
    request.send().await.expect("sign in")
}

/// The `lb_device` token a successful sign-in gave the browser.
fn device_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("lb_device="))
        .and_then(|c| c.split(';').next())
        .expect("a device cookie")
        .to_string()
}

#[tokio::test]
async fn fifty_guesses_from_one_address_get_nowhere_and_the_real_user_gets_in_after_the_back_off() {
    let app = spawn().await;
    let attacker = client_from(1);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..50 {
        let r = sign_in(&attacker, &app.base, &format!("guess number {i}"), None).await;
        if r.status() == 429 {
            retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
            let body: serde_json::Value = r.json().await.expect("json");
            assert_eq!(body["error"]["code"], "too_many_attempts", "{body}");
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 6, "only a handful of the 50 guesses were even checked: {statuses:?}");
    assert_eq!(checked + statuses.iter().filter(|s| **s == 429).count(), 50, "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)), "Retry-After says how long");
    // The right password from the same address is refused too while the lock lasts...
    assert_eq!(sign_in(&attacker, &app.base, PASSWORD, None).await.status(), 429);
    // ...and works once the back-off has passed (at most 15 minutes).
    app.clock.advance(std::time::Duration::from_secs(15 * 60 + 1));
    assert_eq!(sign_in(&attacker, &app.base, PASSWORD, None).await.status(), 200);
    // Every checked failure is in the account's audit log (and nothing for the refused ones,
    // which cost the attacker nothing and must not flood the log).
    let (_, audit) = app.call("admin_a", Method::GET, "/audit?action=session.sign_in_failed&limit=500", None).await;
    let failures = audit["items"].as_array().expect("items").len();
    assert_eq!(failures, checked, "one audit entry per checked failure: {audit}");
}

/// Guesses sent all at once are refused from the moment the free ones are used up: the attempt
/// is taken before the (slow) password check, not counted after it.
#[tokio::test]
async fn a_concurrent_burst_of_guesses_gets_no_more_checks_than_a_sequential_one() {
    let app = spawn().await;
    let attacker = client_from(1);
    let pool = app.state.cpu.clone();
    let before = pool.done();
    let burst: Vec<_> = (0..40)
        .map(|i| {
            let (http, base) = (attacker.clone(), app.base.clone());
            tokio::spawn(
                async move { sign_in(&http, &base, &format!("burst guess {i}"), None).await.status().as_u16() },
            )
        })
        .collect();
    let mut statuses = Vec::new();
    for task in burst {
        statuses.push(task.await.expect("task"));
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 5, "three free, one that sets the lock, a second at most if the lock ran out: {statuses:?}");
    assert_eq!(checked + statuses.iter().filter(|s| **s == 429).count(), 40, "{statuses:?}");
    assert_eq!(pool.done() - before, checked as u64, "a refused guess costs no password check");
}

/// Behind one address (a NAT, a proxy) an attacker's guesses lock that address for the person,
/// but not the browser they signed in with before.
#[tokio::test]
async fn guesses_from_the_user_s_own_address_do_not_lock_their_remembered_browser() {
    let app = spawn().await;
    let shared = client_from(1);
    let first = sign_in(&shared, &app.base, PASSWORD, None).await;
    let device = device_cookie(&first);
    for i in 0..8 {
        sign_in(&shared, &app.base, &format!("nat guess {i}"), None).await;
    }
    assert_eq!(sign_in(&shared, &app.base, PASSWORD, None).await.status(), 429, "the address is locked");
    assert_eq!(sign_in(&shared, &app.base, PASSWORD, Some(&device)).await.status(), 200, "the browser is not");
}

#[tokio::test]
async fn a_guess_spread_over_many_addresses_hits_the_email_ceiling_but_not_a_browser_the_user_signed_in_with() {
    let app = spawn().await;
    let user = client_from(1);
    let first = sign_in(&user, &app.base, PASSWORD, None).await;
    assert_eq!(first.status(), 200);
    let device = device_cookie(&first);
    // Eleven addresses, one guess each: no address is throttled, but the email's ceiling (ten
    // free failures) locks after the eleventh.
    for last in 2..13 {
        let status = sign_in(&client_from(last), &app.base, "a wrong guess", None).await.status();
        assert_eq!(status, 401, "each address's own first guess is checked");
    }
    assert_eq!(sign_in(&client_from(20), &app.base, PASSWORD, None).await.status(), 429, "a new browser waits");
    assert_eq!(sign_in(&user, &app.base, PASSWORD, None).await.status(), 429, "without its cookie too");
    let r = sign_in(&user, &app.base, PASSWORD, Some(&device)).await;
    assert_eq!(r.status(), 200, "the browser that signed in before is never locked out");
    // A made-up device cookie is no way around the ceiling.
    assert_eq!(sign_in(&client_from(21), &app.base, PASSWORD, Some("made-up")).await.status(), 429);
}

/// Holding someone's session or token is no way to guess their current password at speed: the
/// password change's check is throttled like a sign-in from one address.
#[tokio::test]
async fn guessing_the_current_password_through_a_password_change_is_throttled() {
    let app = spawn().await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        let (status, _) = app
            .call(
                "editor_a",
                Method::PUT,
                "/me/password",
                Some(json!({"current_password": format!("guess {i}"), "new_password": "a brand new passphrase"})),
            )
            .await;
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 4, "three free and the one that locks: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 6, "{statuses:?}");
    app.clock.advance(std::time::Duration::from_secs(15 * 60 + 1));
    let (status, body) = app
        .call(
            "editor_a",
            Method::PUT,
            "/me/password",
            Some(json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"})),
        )
        .await;
    assert_eq!(status, 204, "the owner of the password, once the lock has passed: {body}");
}
