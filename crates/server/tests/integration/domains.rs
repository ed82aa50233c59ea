//! Issue #13, B9: an account proves it owns an email domain with a DNS TXT record, against a
//! real DNS server (dnslib from PyPI) the test edits as the domain's owner edits their DNS;
//! then the domain leads to the account's single sign-on from `/signin` (through the real
//! OpenID Connect provider). Another account with its own claim on the domain gets it only by
//! its own record, and is told another account has it only once DNS proved its claim.

use reqwest::Method;
use serde_json::json;
use store::AccessStore;

use crate::dns_server::DnsServer;
use crate::oidc_provider::{CLIENT_SECRET, Person};
use crate::sso::{app_with_provider_configured, field};

const NAME: &str = "_lightbridge-challenge.corp.example";

#[tokio::test]
async fn an_owner_proves_a_domain_by_its_txt_record_and_its_people_then_sign_in_by_it() {
    let mut dns = DnsServer::start().await;
    let servers = vec![dns.address];
    let (app, provider) = app_with_provider_configured(|c| c.sso_dns_servers = servers).await;

    // Claiming: normalised, the record to publish named; claiming again gives the same record.
    let (status, claim) =
        app.call("owner_a", Method::POST, "/account/sso/domains", Some(json!({"domain": " @Corp.Example "}))).await;
    assert_eq!(status, 201, "{claim}");
    assert_eq!((claim["domain"].as_str(), claim["record_name"].as_str()), (Some("corp.example"), Some(NAME)));
    let value = claim["record_value"].as_str().expect("value").to_string();
    assert!(value.starts_with("lightbridge-verification=") && value.len() > 60, "{value}");
    let (_, again) =
        app.call("owner_a", Method::POST, "/account/sso/domains", Some(json!({"domain": "corp.example"}))).await;
    assert_eq!(again["record_value"], claim["record_value"]);

    // Only owners claim and check; admins may look.
    let (status, _) =
        app.call("admin_a", Method::POST, "/account/sso/domains", Some(json!({"domain": "x.example"}))).await;
    assert_eq!(status, 403);
    let (status, _) = app.call("admin_a", Method::POST, "/account/sso/domains/corp.example/check", None).await;
    assert_eq!(status, 403);
    let (status, listed) = app.call("admin_a", Method::GET, "/account/sso/domains", None).await;
    assert_eq!((status, listed["pending"][0]["domain"].as_str()), (200, Some("corp.example")), "{listed}");
    let (status, body) =
        app.call("owner_a", Method::POST, "/account/sso/domains", Some(json!({"domain": "not a domain"}))).await;
    assert_eq!((status, body["error"]["fields"][0]["field"].as_str()), (422, Some("domain")), "{body}");

    // No record yet; then a wrong one: pending, saying what DNS showed.
    let check = || app.call("owner_a", Method::POST, "/account/sso/domains/corp.example/check", None);
    let (status, result) = check().await;
    assert_eq!((status, result["status"].as_str()), (200, Some("pending")), "{result}");
    assert!(result["claim"]["last_result"].as_str().expect("result").contains("no TXT record"), "{result}");
    dns.set_txt(&[(NAME, "lightbridge-verification=someone-elses-token")]);
    let (_, result) = check().await;
    assert_eq!(result["status"], "pending");
    assert!(result["claim"]["last_result"].as_str().expect("result").contains("1 TXT record"), "{result}");
    let signin = sign_in_page_for(&app, "new.person@corp.example").await;
    assert!(signin.contains("No single sign-on is set up for that email"), "not routed while pending");

    // The right record (beside others at the name): proved, routed, the claim gone, audited.
    dns.set_txt(&[(NAME, "v=spf1 -all"), (NAME, &value)]);
    let (status, result) = check().await;
    assert_eq!(
        (status, result["status"].as_str(), result["domain"].as_str()),
        (200, Some("verified"), Some("corp.example"))
    );
    let (_, listed) = app.call("owner_a", Method::GET, "/account/sso/domains", None).await;
    let routed: Vec<(&str, &str)> = listed["routed"]
        .as_array()
        .expect("routed")
        .iter()
        .map(|d| (d["domain"].as_str().unwrap_or(""), d["verified_by"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(routed, [("acme.example", "operator"), ("corp.example", "dns")], "{listed}");
    assert_eq!(listed["pending"], json!([]));
    let (_, log) = app.call("owner_a", Method::GET, "/audit?action=account.sso_domain_verified", None).await;
    assert_eq!(log["items"][0]["target_label"], "corp.example", "{log}");

    // Its people now reach the provider from /signin, and the provider may sign them in.
    let person = Person::new();
    let target = continue_link(&sign_in_page_for_person(&person, &app, "new.person@corp.example").await);
    let done = person.sign_in(&target, "new.person@corp.example", &format!("{}/sso/callback", app.base)).await;
    assert_eq!(done.status, 303, "{}", done.body);

    // Account B (its owner is `admin_b`) claims the same domain: its own token, so A's record proves nothing for B …
    let settings = json!({"issuer": provider.proxy.issuer, "client_id": "lightbridge", "client_secret": CLIENT_SECRET});
    let (status, body) = app.call("admin_b", Method::PUT, "/account/sso", Some(settings)).await;
    assert_eq!(status, 200, "{body}");
    let (status, b_claim) =
        app.call("admin_b", Method::POST, "/account/sso/domains", Some(json!({"domain": "corp.example"}))).await;
    assert_eq!(status, 201, "claiming says nothing about other accounts: {b_claim}");
    assert_ne!(b_claim["record_value"], claim["record_value"]);
    let b_check = || app.call("admin_b", Method::POST, "/account/sso/domains/corp.example/check", None);
    let (_, result) = b_check().await;
    assert_eq!(result["status"], "pending", "{result}");
    // … and once DNS proves B's claim too, B is told another account has it; A keeps it.
    dns.set_txt(&[(NAME, b_claim["record_value"].as_str().expect("value"))]);
    let (status, body) = b_check().await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("another Lightbridge account"), "{body}");
    let svc: &service::Service = &app.state;
    let owner = svc.store.account_for_domain("corp.example").await.expect("lookup");
    assert_eq!(owner.as_ref(), Some(&app.accounts["A"]));

    // A DNS server that does not answer is named; the claim stays.
    dns.stop().await;
    let (status, result) = b_check().await;
    assert_eq!((status, result["status"].as_str()), (200, Some("pending")), "{result}");
    assert!(result["claim"]["last_result"].as_str().expect("result").contains("DNS lookup failed"), "{result}");

    // Withdrawing and un-routing; neither touches the other account.
    let (status, _) = app.call("admin_b", Method::DELETE, "/account/sso/domains/corp.example", None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call("admin_b", Method::DELETE, "/account/sso/domains/corp.example", None).await;
    assert_eq!(status, 404, "B has nothing left to remove");
    let (status, _) = app.call("owner_a", Method::DELETE, "/account/sso/domains/corp.example", None).await;
    assert_eq!(status, 204);
    assert_eq!(svc.store.account_for_domain("corp.example").await.expect("lookup"), None);
}

#[tokio::test]
async fn a_domain_is_claimed_and_checked_from_the_single_sign_on_page() {
    let dns = DnsServer::start().await;
    let servers = vec![dns.address];
    let (app, _provider) = app_with_provider_configured(|c| c.sso_dns_servers = servers).await;
    let (cookie, _) = app.sign_in("owner_a").await;
    let page = get(&app, &cookie, "/account/sso").await;
    assert!(page.contains("Add a domain your organization owns"), "{page}");
    let csrf = field(&page, "csrf");
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        let request = app.http.post(format!("{}{path}", app.base)).header("cookie", &cookie).form(&form);
        async move { request.send().await.expect("post") }
    };

    // A bad name is marked on the field, what was typed kept.
    let refused = post("/account/sso/domains", vec![("csrf", csrf.clone()), ("domain", "corp_example".into())]).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("page");
    assert!(page.contains(r#"id="domain-error""#) && page.contains(r#"value="corp_example""#), "{page}");

    // Claimed: the page shows the record to publish.
    let added = post("/account/sso/domains", vec![("csrf", csrf.clone()), ("domain", "corp.example".into())]).await;
    assert!(added.url().path().ends_with("/account/sso"), "{}", added.url());
    let page = added.text().await.expect("page");
    assert!(page.contains("waiting for its DNS record"), "{page}");
    let value = page
        .split(r#"<code class="record-value">"#)
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the record's value")
        .to_string();
    assert!(page.contains(&format!(r#"<code class="record-name">{NAME}</code>"#)), "{page}");

    // Checked too early: the page says what DNS showed.
    let early = post("/account/sso/domains/corp.example/check", vec![("csrf", csrf.clone())]).await;
    let page = early.text().await.expect("page");
    assert!(page.contains(": no TXT record at _lightbridge-challenge.corp.example yet"), "{page}");

    // A check without the form's CSRF token changes nothing.
    let forged = post("/account/sso/domains/corp.example/check", vec![("csrf", "forged".into())]).await;
    assert_eq!(forged.status(), 403);

    dns.set_txt(&[(NAME, &value)]);
    let proved = post("/account/sso/domains/corp.example/check", vec![("csrf", csrf)]).await;
    let page = proved.text().await.expect("page");
    assert!(!page.contains("waiting for its DNS record"), "{page}");
    assert!(page.contains("proved by your DNS record"), "{page}");
}

/// A console page as this session sees it (200 expected).
pub(crate) async fn get(app: &testkit::TestApp, cookie: &str, path: &str) -> String {
    let answer = app.http.get(format!("{}{path}", app.base)).header("cookie", cookie).send().await.expect("get");
    assert_eq!(answer.status(), 200, "{path}");
    answer.text().await.expect("page")
}

async fn sign_in_page_for(app: &testkit::TestApp, email: &str) -> String {
    sign_in_page_for_person(&Person::new(), app, email).await
}

/// What `/signin/sso` answers for this email, from the sign-in page.
async fn sign_in_page_for_person(person: &Person, app: &testkit::TestApp, email: &str) -> String {
    let page = person.http.get(format!("{}/signin", app.base)).send().await.expect("page").text().await.expect("text");
    let form = [("email", email.to_string()), ("csrf", field(&page, "csrf")), ("next", "/".into())];
    let answer = person.http.post(format!("{}/signin/sso", app.base)).form(&form).send().await.expect("post");
    answer.text().await.expect("text")
}

fn continue_link(page: &str) -> String {
    let target = page.split(r#"id="continue" href=""#).nth(1).and_then(|s| s.split('"').next()).expect(page);
    target.replace("&#38;", "&").replace("&amp;", "&")
}
