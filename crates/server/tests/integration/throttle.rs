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
    // Every failure is in the account's audit log.
    let (_, audit) = app.call("admin_a", Method::GET, "/audit?action=session.sign_in_failed&limit=500", None).await;
    let failures = audit["items"].as_array().expect("items").len();
    assert!(failures >= checked, "{failures} audit entries for {checked} checked failures");
}

#[tokio::test]
async fn a_guess_spread_over_many_addresses_hits_the_email_ceiling_but_not_a_browser_the_user_signed_in_with() {
    let app = spawn().await;
    let user = client_from(1);
    let first = sign_in(&user, &app.base, PASSWORD, None).await;
    assert_eq!(first.status(), 200);
    let device = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("lb_device="))
        .and_then(|c| c.split(';').next())
        .expect("a device cookie")
        .to_string();
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
