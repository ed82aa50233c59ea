//! E-mail notifications (B8, issue #18) against a real SMTP server: aiosmtpd from PyPI
//! (`scripts/smtp-server/serve.py`, installed into `compat/.venv` by `compat/install.sh`),
//! requiring STARTTLS and a sign-in, each message read back by Python's own `email` package:
//! the headers, both bodies, the digest, retries, and the owner of an endpoint turned off.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::webhook_receiver::Receiver;

const USER: &str = "lightbridge-mailer";
const PASSWORD: &str = "smtp-password-for-tests";
const FROM: &str = "Lightbridge <notifications@lightbridge.test>";

/// A running aiosmtpd and the folder its messages land in.
struct MailServer {
    port: u16,
    dir: PathBuf,
    ca: PathBuf,
    _child: tokio::process::Child,
}

struct Options {
    starttls: bool,
    /// The first this many messages to this address get a 451.
    fail: Option<(u32, String)>,
}

impl MailServer {
    async fn start(options: Options) -> MailServer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join("compat/.venv/bin/python");
        assert!(python.exists(), "the SMTP server's Python is not installed: run compat/install.sh (.ci/run does)");
        let dir = std::env::temp_dir().join(format!("lightbridge-smtp-{}", domain::EventId::generate()));
        std::fs::create_dir_all(&dir).expect("mail folder");
        let (ca_pem, cert_pem, key_pem) = emulator::tls::generate_server_pem().expect("certificates");
        let (ca, cert, key) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
        for (path, pem) in [(&ca, &ca_pem), (&cert, &cert_pem), (&key, &key_pem)] {
            std::fs::write(path, pem).expect("pem");
        }
        let mut command = tokio::process::Command::new(python);
        command.arg(root.join("scripts/smtp-server/serve.py")).arg("--dir").arg(&dir);
        if options.starttls {
            command.arg("--cert").arg(&cert).arg("--key").arg(&key).args(["--user", USER, "--password", PASSWORD]);
        }
        if let Some((times, to)) = &options.fail {
            command.args(["--fail-first", &times.to_string(), "--fail-to", to]);
        }
        let (child, port) = crate::process::start_listening(command, "the SMTP server").await;
        MailServer { port, dir, ca, _child: child }
    }

    /// Lightbridge's `[mail]` for this server: STARTTLS required, signed in, retries in tenths
    /// of a second.
    fn config(&self) -> server::config::MailConfig {
        server::config::MailConfig {
            smtp: outbound::mail::SmtpConfig {
                host: "127.0.0.1".into(),
                port: self.port,
                security: outbound::mail::Security::StartTls,
                username: Some(USER.into()),
                password: Some(zeroize::Zeroizing::new(PASSWORD.into())),
                from: FROM.into(),
                ca_pem: Some(std::fs::read(&self.ca).expect("ca")),
                timeout: Duration::from_secs(10),
            },
            ca_file: Some(self.ca.clone()),
            mailer: service::mail::MailerConfig {
                poll: Duration::from_millis(100),
                backoff_base: Duration::from_millis(200),
                backoff_max: Duration::from_millis(400),
                ..Default::default()
            },
        }
    }

    /// Every message accepted so far, in order.
    fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("mail folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names.iter().map(|p| serde_json::from_slice(&std::fs::read(p).expect("message")).expect("json")).collect()
    }

    /// Waits (up to 20 s) for a message to `to` whose subject contains `subject`.
    async fn wait_for(&self, to: &str, subject: &str) -> Value {
        let started = std::time::Instant::now();
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| {
                m["rcpt_tos"].as_array().is_some_and(|r| r.iter().any(|a| a == to))
                    && header(m, "subject").contains(subject)
            }) {
                return m;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no mail {subject:?} to {to}: {:#?}", self.summary());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The messages turned away with a 451, in order.
    fn deferred(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("mail folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "deferred"))
            .collect();
        names.sort();
        names.iter().map(|p| serde_json::from_slice(&std::fs::read(p).expect("deferred")).expect("json")).collect()
    }

    fn summary(&self) -> Vec<(Value, String)> {
        self.messages().iter().map(|m| (m["rcpt_tos"].clone(), header(m, "subject"))).collect()
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A header's first value ("" when absent).
fn header(m: &Value, name: &str) -> String {
    m["headers"][name][0].as_str().unwrap_or_default().to_string()
}

fn address(label: &str) -> String {
    format!("{label}@lightbridge.test")
}

/// Adds a JWT connection named `name` for the emulator's admin user; its id.
async fn connection(app: &testkit::TestApp, name: &str) -> String {
    let (status, created) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt(name, "admin@acme.test"))).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_string()
}

/// Deactivates the emulator's admin user, so each connection's next check finds it logged out.
async fn log_out(app: &testkit::TestApp, ids: &[&str]) {
    app.em
        .set_user("admin@acme.test", &emulator::UserChange { active: Some(false), ..Default::default() })
        .expect("user");
    for id in ids {
        let (_, checked) = app.call("admin_a", Method::POST, &format!("/connections/{id}/check"), None).await;
        assert_eq!(checked["health"], "Logged out", "{checked}");
    }
}

/// Waits (up to 20 s) until `who`'s latest mails satisfy `done`; them.
async fn mails_until(app: &testkit::TestApp, who: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let (status, mails) = app.call(who, Method::GET, "/me/mails", None).await;
        assert_eq!(status, 200, "{mails}");
        let mails = mails.as_array().cloned().unwrap_or_default();
        if done(&mails) {
            return mails;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{who}'s mails never got there: {mails:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_logged_out_connection_is_mailed_to_admins_with_both_bodies_over_starttls() {
    let smtp = MailServer::start(Options { starttls: true, fail: None }).await;
    let mail = smtp.config();
    let app = testkit::spawn_configured(None, |c| c.mail = Some(mail)).await;
    let (_, prefs) = app.call("editor_a", Method::GET, "/me/notifications", None).await;
    assert_eq!((prefs["email_enabled"].as_bool(), prefs["saved"].as_bool()), (Some(true), Some(false)), "{prefs}");
    assert_eq!(prefs["events"], json!([]), "editors receive nothing until they choose: {prefs}");
    let (_, prefs) = app.call("admin_a", Method::GET, "/me/notifications", None).await;
    assert!(prefs["events"].as_array().expect("events").iter().any(|e| e == "connection.logged_out"), "{prefs}");

    let id = connection(&app, "Prod").await;
    log_out(&app, &[&id]).await;

    let message = smtp.wait_for(&address("admin_a"), "logged out").await;
    // The connection: STARTTLS first, then the sign-in (aiosmtpd refuses AUTH before TLS).
    assert_eq!((message["tls"].as_bool(), message["login"].as_str()), (Some(true), Some(USER)), "{message:#}");
    assert_eq!(message["mail_from"], "notifications@lightbridge.test");
    // The headers, as Python's email package reads them.
    assert_eq!(header(&message, "from"), FROM);
    assert_eq!(header(&message, "to"), format!("admin_a <{}>", address("admin_a")));
    assert_eq!(header(&message, "subject"), "Lightbridge (A): Connection \u{201c}Prod\u{201d} logged out");
    assert!(!header(&message, "date").is_empty(), "{message:#}");
    let message_id = header(&message, "message-id");
    assert!(message_id.starts_with("<evt_") && message_id.ends_with("@lightbridge.test>"), "{message_id}");
    assert_eq!(header(&message, "auto-submitted"), "auto-generated");
    assert_eq!(header(&message, "x-lightbridge-event"), "connection.logged_out");
    assert_eq!(message["content_type"], "multipart/alternative");
    // Both bodies: what happened, the fix, and the link to the connection's page.
    let link = format!("{}/connections/salesforce/{id}", app.base);
    let (_, events) = app.call("admin_a", Method::GET, "/events", None).await;
    let event = events
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "connection.logged_out")
        .expect("event")
        .clone();
    let fix = event["data"]["reason"]["fix"].as_str().expect("fix");
    let text = message["text"].as_str().expect("plain-text body");
    assert!(
        text.contains("Salesforce no longer accepts the sign-in") && text.contains(fix) && text.contains(&link),
        "{text}"
    );
    let html = message["html"].as_str().expect("HTML body");
    assert!(html.contains(&format!("href=\"{link}\"")) && html.contains("What to do:"), "{html}");
    let escaped = fix
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    assert!(html.contains(&escaped), "{html}");
    // Owners too (their role's default); editors and viewers never chose, so nothing.
    smtp.wait_for(&address("owner_a"), "logged out").await;
    let sent = mails_until(&app, "admin_a", |m| m.iter().any(|m| m["status"] == "sent")).await;
    assert_eq!(sent[0]["event_id"], event["id"], "{sent:#?}");
    assert!(!smtp.messages().iter().any(|m| m["rcpt_tos"][0] == address("editor_a")), "{:#?}", smtp.summary());
    let (_, none) = app.call("editor_a", Method::GET, "/me/mails", None).await;
    assert_eq!(none, json!([]));
    // Account B's people hear nothing of account A: the mail server got nothing for them.
    let to_b: Vec<(Value, String)> = smtp
        .summary()
        .into_iter()
        .filter(|(to, _)| to.to_string().to_ascii_lowercase().contains("b.test") || to.to_string().contains("_b@"))
        .collect();
    assert!(to_b.is_empty(), "{to_b:#?}");
    let (_, other) = app.call("admin_b", Method::GET, "/me/mails", None).await;
    assert_eq!(other, json!([]));
}

#[tokio::test]
async fn a_digest_reader_gets_one_mail_listing_the_day_s_events_at_their_hour() {
    let smtp = MailServer::start(Options { starttls: true, fail: None }).await;
    let mail = smtp.config();
    let app = testkit::spawn_configured(None, |c| c.mail = Some(mail)).await;
    let (status, saved) = app
        .call(
            "admin_a",
            Method::PUT,
            "/me/notifications",
            Some(json!({"events": ["connection.logged_out"], "digest": true, "digest_hour": 7})),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        (saved["digest"].as_bool(), saved["digest_hour"].as_u64(), saved["saved"].as_bool()),
        (Some(true), Some(7), Some(true))
    );
    // A wrong choice is refused whole, naming each field.
    let (status, refused) = app
        .call(
            "admin_a",
            Method::PUT,
            "/me/notifications",
            Some(json!({"events": ["webhook.test", "nope"], "digest_hour": 24})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    let fields: Vec<&str> =
        refused["error"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    assert!(fields.contains(&"events") && fields.contains(&"digest_hour"), "{refused}");

    let (first, second) = (connection(&app, "Prod").await, connection(&app, "Staging").await);
    log_out(&app, &[&first, &second]).await;
    // The owner (one mail per event, by default) hears at once; the digest reader waits.
    smtp.wait_for(&address("owner_a"), "\u{201c}Staging\u{201d} logged out").await;
    let waiting = mails_until(&app, "admin_a", |m| m.len() == 2).await;
    assert!(waiting.iter().all(|m| m["digest"] == true && m["status"] == "pending"), "{waiting:#?}");
    let next = waiting[0]["next_at"].as_i64().expect("next_at");
    assert_eq!(next % 86_400_000, 7 * 3_600_000, "at 07:00 UTC: {waiting:#?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!smtp.messages().iter().any(|m| m["rcpt_tos"][0] == address("admin_a")), "{:#?}", smtp.summary());

    // At its hour: one mail with both events.
    app.clock.advance(Duration::from_millis((next - domain::Clock::now_ms(&*app.clock)).max(0) as u64 + 1000));
    let digest = smtp.wait_for(&address("admin_a"), "daily digest").await;
    assert_eq!(header(&digest, "subject"), "Lightbridge daily digest: 2 events");
    assert_eq!(header(&digest, "x-lightbridge-event"), "digest");
    assert!(header(&digest, "message-id").starts_with("<digest."), "{digest:#}");
    let text = digest["text"].as_str().expect("text");
    assert!(text.contains("\u{201c}Prod\u{201d}") && text.contains("\u{201c}Staging\u{201d}"), "{text}");
    for id in [&first, &second] {
        assert!(text.contains(&format!("{}/connections/salesforce/{id}", app.base)), "{text}");
        assert!(
            digest["html"].as_str().expect("html").contains(&format!("/connections/salesforce/{id}\"")),
            "{digest:#}"
        );
    }
    let sent = mails_until(&app, "admin_a", |m| m.iter().all(|m| m["status"] == "sent")).await;
    assert_eq!(sent.len(), 2);
    let to_admin = smtp.messages().iter().filter(|m| m["rcpt_tos"][0] == address("admin_a")).count();
    assert_eq!(to_admin, 1, "one digest, not one mail per event: {:#?}", smtp.summary());
}

#[tokio::test]
async fn a_mail_the_server_defers_is_sent_again_and_a_server_without_starttls_gets_nothing() {
    // 451 for the first message: tried again, then accepted, under the same Message-ID.
    let smtp = MailServer::start(Options { starttls: true, fail: Some((1, address("admin_a"))) }).await;
    let mail = smtp.config();
    let app = testkit::spawn_configured(None, |c| c.mail = Some(mail)).await;
    let (status, _) = app.call("owner_a", Method::PUT, "/me/notifications", Some(json!({"events": []}))).await;
    assert_eq!(status, 200);
    let id = connection(&app, "Prod").await;
    log_out(&app, &[&id]).await;
    let accepted = smtp.wait_for(&address("admin_a"), "logged out").await;
    let sent = mails_until(&app, "admin_a", |m| m.first().is_some_and(|m| m["status"] == "sent")).await;
    assert_eq!(sent[0]["attempts"], 2, "{sent:#?}");
    let deferred = smtp.deferred();
    assert_eq!(deferred.len(), 1, "{deferred:#?}");
    assert_eq!(
        deferred[0]["message_id"].as_str(),
        Some(header(&accepted, "message-id").as_str()),
        "one mail, one Message-ID"
    );
    assert!(sent[0]["last_error"].is_null(), "{sent:#?}");
    let to = |who: &str| smtp.messages().iter().filter(|m| m["rcpt_tos"][0] == address(who)).count();
    assert_eq!((to("admin_a"), to("owner_a")), (1, 0), "accepted once; the owner chose no mail: {:#?}", smtp.summary());

    // STARTTLS required, and this server does not offer it: nothing is sent in the clear.
    let plain = MailServer::start(Options { starttls: false, fail: None }).await;
    let mail = plain.config();
    let app = testkit::spawn_configured(None, |c| c.mail = Some(mail)).await;
    let id = connection(&app, "Prod").await;
    log_out(&app, &[&id]).await;
    let tried = mails_until(&app, "admin_a", |m| m.first().is_some_and(|m| m["attempts"].as_u64() >= Some(1))).await;
    assert_eq!(tried[0]["status"], "pending", "{tried:#?}");
    let error = tried[0]["last_error"].as_str().expect("error");
    assert!(error.to_ascii_lowercase().contains("tls"), "{error}");
    assert!(plain.messages().is_empty(), "{:#?}", plain.summary());
}

#[tokio::test]
async fn the_creator_of_an_endpoint_turned_off_is_told_whatever_they_chose() {
    let smtp = MailServer::start(Options { starttls: true, fail: None }).await;
    let mail = smtp.config();
    let app = testkit::spawn_configured(None, |c| c.mail = Some(mail)).await;
    // admin_a wants no mail at all; the owner wants only deployments.
    for (who, events) in [("admin_a", json!([])), ("owner_a", json!(["deployment.failed"]))] {
        let (status, _) = app.call(who, Method::PUT, "/me/notifications", Some(json!({"events": events}))).await;
        assert_eq!(status, 200);
    }
    let receiver = Receiver::start(&[]).await;
    receiver.fail(1000).await;
    let (status, created) = app.call("admin_a", Method::POST, "/webhooks", Some(json!({"url": receiver.url}))).await;
    assert_eq!(status, 201, "{created}");
    let webhook = created["webhook"]["id"].as_str().expect("id").to_string();
    let (status, _) = app.call("admin_a", Method::POST, &format!("/webhooks/{webhook}/test"), None).await;
    assert_eq!(status, 202);
    // Failing since the first attempt; five days later the next failure turns it off.
    let started = std::time::Instant::now();
    loop {
        let (_, w) = app.call("admin_a", Method::GET, &format!("/webhooks/{webhook}"), None).await;
        if w["failing_since"].is_i64() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never failing: {w}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.clock.advance(Duration::from_secs(5 * 24 * 3600 + 60));
    let (_, _) = app.call("admin_a", Method::POST, &format!("/webhooks/{webhook}/redeliver"), None).await;
    let told = smtp.wait_for(&address("admin_a"), "was turned off").await;
    assert_eq!(header(&told, "x-lightbridge-event"), "webhook.disabled");
    let text = told["text"].as_str().expect("text");
    assert!(text.contains(&receiver.url) && text.contains(&format!("{}/webhooks/{webhook}", app.base)), "{text}");
    // Once, and not to the owner, who chose deployments only (the account's first owner, who
    // never chose, gets it by default).
    smtp.wait_for("first@A.test", "was turned off").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to = |who: &str| smtp.messages().iter().filter(|m| m["rcpt_tos"][0] == who).count();
    assert_eq!((to(&address("admin_a")), to(&address("owner_a"))), (1, 0), "{:#?}", smtp.summary());
}

#[tokio::test]
async fn the_notifications_page_saves_a_choice_and_lists_the_mails() {
    let app = testkit::spawn().await;
    let (cookie, _) = app.sign_in("editor_a").await;
    let page = |cookie: String| {
        let http = app.http.clone();
        let url = format!("{}/account/notifications", app.base);
        async move {
            let r = http.get(url).header("cookie", cookie).send().await.expect("page");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    let (status, body) = page(cookie.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("data-mail-off"), "this server has no [mail]: the page says so");
    let csrf = body.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).expect("csrf").to_string();
    let post = |form: Vec<(&'static str, String)>| {
        let http = app.http.clone();
        let url = format!("{}/account/notifications", app.base);
        let cookie = cookie.clone();
        async move {
            let r = http.post(url).header("cookie", cookie).form(&form).send().await.expect("post");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    // Without the form's token: refused.
    let (status, _) = post(vec![("event", "drift.found".into())]).await;
    assert_eq!(status, 403);
    // A refused hour: the page again, the boxes as they were sent.
    let (status, body) = post(vec![
        ("csrf", csrf.clone()),
        ("event", "drift.found".into()),
        ("delivery", "digest".into()),
        ("hour", "soon".into()),
    ])
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("value=\"drift.found\" checked"), "{body}");
    let (status, body) = post(vec![
        ("csrf", csrf.clone()),
        ("event", "drift.found".into()),
        ("event", "deployment.failed".into()),
        ("delivery", "digest".into()),
        ("hour", "18".into()),
    ])
    .await;
    // Saved, then the page again (the 303 followed).
    assert_eq!(status, 200, "{body}");
    let (_, prefs) = app.call("editor_a", Method::GET, "/me/notifications", None).await;
    assert_eq!(prefs["events"], json!(["deployment.failed", "drift.found"]), "{prefs}");
    assert_eq!((prefs["digest"].as_bool(), prefs["digest_hour"].as_u64()), (Some(true), Some(18)));
    let (_, audit) = app.call("admin_a", Method::GET, "/audit?action=notifications.preferences_changed", None).await;
    assert!(audit.to_string().contains("editor_a@lightbridge.test"), "{audit}");
}
