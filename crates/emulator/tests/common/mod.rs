//! Helpers shared by the emulator's integration tests.
#![allow(dead_code)]

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use emulator::{AppSeed, Emulator, OrgSeed, Seed, UserSeed};
use serde_json::Value;

pub const CALLBACK: &str = "http://127.0.0.1:9/oauth/callback";
pub const WEB_KEY: &str = "3MVG9WebAppKey";
pub const WEB_SECRET: &str = "web-secret-0123456789";
pub const JWT_KEY: &str = "3MVG9JwtAppKey";
pub const ROTATING_KEY: &str = "3MVG9RotatingKey";
pub const CC_KEY: &str = "3MVG9ClientCredentialsKey";
pub const UNINSTALLED_KEY: &str = "3MVG9NotInstalledKey";
pub const PASSWORD: &str = "emulator";

pub fn seed() -> Seed {
    let user = |name: &str, customize: bool, api: bool| UserSeed {
        customize_application: customize,
        api_enabled: api,
        ..UserSeed::new(name)
    };
    let mut prod = OrgSeed::new("Prod Org");
    prod.users = vec![
        user("admin@prod.test", true, true),
        user("editor@prod.test", false, true),
        user("noapi@prod.test", true, false),
    ];
    let mut sandbox = OrgSeed::new("Sandbox Org");
    sandbox.sandbox = true;
    sandbox.users = vec![user("admin@sandbox.test", true, true)];
    let web = AppSeed { callback_urls: vec![CALLBACK.into()], require_pkce: true, ..AppSeed::new(WEB_KEY, WEB_SECRET) };
    let jwt = AppSeed {
        generate_certificate: true,
        pre_authorized: vec!["admin@prod.test".into(), "admin@sandbox.test".into()],
        ..AppSeed::new(JWT_KEY, "jwt-secret")
    };
    let rotating = AppSeed {
        callback_urls: vec![CALLBACK.into()],
        rotate_refresh_tokens: true,
        ..AppSeed::new(ROTATING_KEY, "rot-secret")
    };
    let cc = AppSeed { client_credentials_user: Some("admin@prod.test".into()), ..AppSeed::new(CC_KEY, "cc-secret") };
    let uninstalled =
        AppSeed { callback_urls: vec![CALLBACK.into()], installed: false, ..AppSeed::new(UNINSTALLED_KEY, "x") };
    Seed { orgs: vec![prod, sandbox], apps: vec![web, jwt, rotating, cc, uninstalled] }
}

pub async fn start() -> Emulator {
    Emulator::start(seed()).await.expect("emulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("v{}", emulator::ids::random_alnum(60));
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref());
    (verifier, challenge)
}

/// The value of a hidden `txn` input in an emulator page.
pub fn txn_of(html: &str) -> String {
    let start = html.find("name=\"txn\" value=\"").expect("page has a txn") + 18;
    html[start..].split('"').next().expect("txn value").to_string()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// What an authorize attempt ended with.
#[derive(Debug)]
pub enum Outcome {
    /// A redirect to the callback (its full URL).
    Callback(String),
    /// An HTML page (status, body), e.g. the sign-in page again with an error.
    Page(u16, String),
    /// A redirect somewhere other than the callback (Salesforce's error page).
    Elsewhere(String),
}

/// Signs in and approves (or denies) through the emulator's pages, as a browser would.
pub async fn authorize(
    login_base: &str,
    client_id: &str,
    username: &str,
    password: &str,
    challenge: Option<&str>,
    allow: bool,
) -> Outcome {
    let http = client();
    let mut params =
        vec![("response_type", "code"), ("client_id", client_id), ("redirect_uri", CALLBACK), ("state", "st-123")];
    if let Some(c) = challenge {
        params.push(("code_challenge", c));
    }
    let r = http.get(format!("{login_base}/services/oauth2/authorize")).query(&params).send().await.expect("authorize");
    if let Some(loc) = r.headers().get("location") {
        let loc = loc.to_str().expect("location").to_string();
        return if loc.starts_with(CALLBACK) { Outcome::Callback(loc) } else { Outcome::Elsewhere(loc) };
    }
    let page = r.text().await.expect("login page");
    let txn = txn_of(&page);
    let r = http
        .post(format!("{login_base}/services/oauth2/authorize/login"))
        .form(&[("txn", txn.as_str()), ("username", username), ("password", password)])
        .send()
        .await
        .expect("login");
    if let Some(loc) = r.headers().get("location") {
        return Outcome::Callback(loc.to_str().expect("location").to_string());
    }
    let status = r.status().as_u16();
    let page = r.text().await.expect("page");
    if !page.contains("Allow access?") {
        return Outcome::Page(status, page);
    }
    let decision = if allow { "allow" } else { "deny" };
    let r = http
        .post(format!("{login_base}/services/oauth2/authorize/approve"))
        .form(&[("txn", txn.as_str()), ("decision", decision)])
        .send()
        .await
        .expect("approve");
    match r.headers().get("location") {
        Some(loc) => Outcome::Callback(loc.to_str().expect("location").to_string()),
        None => {
            let status = r.status().as_u16();
            Outcome::Page(status, r.text().await.expect("page"))
        }
    }
}

/// Signs in as `username` with the web app and returns an authorization code.
pub async fn code_for(login_base: &str, username: &str, challenge: &str) -> String {
    match authorize(login_base, WEB_KEY, username, PASSWORD, Some(challenge), true).await {
        Outcome::Callback(url) => query_param(&url, "code").unwrap_or_else(|| panic!("no code in {url}")),
        other => panic!("sign-in did not reach the callback: {other:?}"),
    }
}

pub async fn token(base: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client().post(format!("{base}/services/oauth2/token")).form(form).send().await.expect("token call");
    let status = r.status().as_u16();
    (status, r.json().await.expect("token JSON"))
}

/// A full code flow for `username` through the production login host; returns the token reply.
pub async fn sign_in(em: &Emulator, username: &str) -> Value {
    let (verifier, challenge) = pkce();
    let login = if username.contains("sandbox") { em.test_login_url() } else { em.login_url() };
    let code = code_for(&login, username, &challenge).await;
    let (status, body) = token(
        &login,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", WEB_KEY),
            ("client_secret", WEB_SECRET),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

pub fn access(reply: &Value) -> String {
    reply["access_token"].as_str().expect("access_token").to_string()
}

/// Client-credentials token for admin@prod.test (no browser needed).
pub async fn admin_token(em: &Emulator) -> String {
    let (status, body) = token(
        em.base_url(),
        &[("grant_type", "client_credentials"), ("client_id", CC_KEY), ("client_secret", "cc-secret")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    access(&body)
}

/// An access token for any seeded user, through the browser sign-in of the web app.
pub async fn token_for(em: &Emulator, username: &str) -> String {
    access(&sign_in(em, username).await)
}

/// The machine's time, as a client signing a JWT reads it (the emulator checks it against its own).
#[allow(clippy::disallowed_methods)]
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() as i64
}

pub fn sign(private_key_pem: &str, iss: &str, sub: &str, aud: &str, exp: i64) -> String {
    emulator::jwt::sign(&serde_json::json!({"iss": iss, "sub": sub, "aud": aud, "exp": exp}), private_key_pem)
        .expect("sign")
}

pub async fn jwt_token(base: &str, assertion: &str) -> (u16, Value) {
    token(base, &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)]).await
}

/// GET a REST path (relative to `/services/data/v60.0`) with a bearer token.
pub async fn get(em: &Emulator, token: &str, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = client()
        .get(format!("{}/services/data/v60.0{path}", em.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub async fn send(
    em: &Emulator,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, format!("{}/services/data/v60.0{path}", em.base_url())).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}

/// The `errorCode` of a REST error body.
pub fn code(body: &Value) -> &str {
    body[0]["errorCode"].as_str().unwrap_or("<none>")
}

pub fn q(soql: &str) -> String {
    format!("/query?q={}", form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>())
}
