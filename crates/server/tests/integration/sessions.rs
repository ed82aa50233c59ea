//! Issue #13: a person sees where they are signed in and ends one session or every other,
//! through the API and on the Admin Center's account page, where they also change their
//! password. Another person's session cannot be named, let alone ended.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{TestApp, spawn};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// Signs `label` in from a browser that names itself `agent`; returns its cookie and CSRF token.
async fn sign_in_with(app: &TestApp, label: &str, password: &str, agent: Option<&str>) -> (String, String) {
    let mut request = app
        .http
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"email": format!("{label}@lightbridge.test"), "password": password}));
    if let Some(agent) = agent {
        request = request.header("user-agent", agent);
    }
    let r = request.send().await.expect("sign in");
    assert_eq!(r.status(), 200, "sign-in as {label}");
    let cookie = r.headers()["set-cookie"].to_str().expect("cookie").split(';').next().expect("pair").to_string();
    let body: Value = r.json().await.expect("json");
    (cookie, body["csrf_token"].as_str().expect("csrf").to_string())
}

async fn alive(app: &TestApp, cookie: &str) -> bool {
    app.browser(cookie, None, Method::GET, "/api/v1/session", None).await.0 == 200
}

#[tokio::test]
async fn people_list_their_sessions_and_end_one_or_every_other() {
    let app = spawn().await;
    let (a, a_csrf) = sign_in_with(&app, "editor_a", "password-editor_a", Some(FIREFOX)).await;
    let (b, _) = sign_in_with(&app, "editor_a", "password-editor_a", Some(CHROME)).await;
    let (c, _) = sign_in_with(&app, "editor_a", "password-editor_a", None).await;
    let (v, v_csrf) = sign_in_with(&app, "viewer_a", "password-viewer_a", None).await;

    let (status, listed) = app.browser(&a, None, Method::GET, "/api/v1/me/sessions", None).await;
    assert_eq!(status, 200, "{listed}");
    let sessions = listed.as_array().expect("list");
    assert_eq!(sessions.len(), 3, "only editor_a's own: {listed}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{listed}");
    assert_eq!(current[0]["user_agent"], FIREFOX);
    assert_eq!(current[0]["remote_addr"], "127.0.0.1");
    assert!(current[0]["handle"].as_str().is_some_and(|h| h.starts_with("ses_")), "{listed}");
    let handle_of = |agent: Option<&str>| {
        sessions
            .iter()
            .find(|s| s["user_agent"].as_str() == agent)
            .and_then(|s| s["handle"].as_str())
            .expect("session")
            .to_string()
    };
    let b_handle = handle_of(Some(CHROME));
    assert!(!listed.to_string().contains(a.trim_start_matches("lb_session=")), "the session id is never shown");

    // Through an API token the list is the same, none of it "current".
    let (_, by_token) = app.call("editor_a", Method::GET, "/me/sessions", None).await;
    assert_eq!(by_token.as_array().map(Vec::len), Some(3));
    assert!(by_token.as_array().expect("list").iter().all(|s| s["current"] == false));

    // Another person can neither see nor end them.
    let (_, theirs) = app.browser(&v, None, Method::GET, "/api/v1/me/sessions", None).await;
    assert_eq!(theirs.as_array().map(Vec::len), Some(1), "{theirs}");
    let path = format!("/api/v1/me/sessions/{b_handle}");
    let (status, _) = app.browser(&v, Some(&v_csrf), Method::DELETE, &path, None).await;
    assert_eq!(status, 404, "another person's session is not found");
    assert!(alive(&app, &b).await);

    // A change needs the session's CSRF token.
    let (status, _) = app.browser(&a, None, Method::DELETE, &path, None).await;
    assert_eq!(status, 403);
    assert!(alive(&app, &b).await);

    let (status, _) = app.browser(&a, Some(&a_csrf), Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert!(!alive(&app, &b).await, "the ended session no longer works");
    assert!(alive(&app, &c).await && alive(&app, &a).await);

    let (status, ended) = app.browser(&a, Some(&a_csrf), Method::DELETE, "/api/v1/me/sessions", None).await;
    assert_eq!((status, ended["ended"].as_u64()), (200, Some(1)), "{ended}");
    assert!(!alive(&app, &c).await, "every other session ended");
    assert!(alive(&app, &a).await, "this one stays");
    assert!(alive(&app, &v).await, "another person's sessions are untouched");

    let (_, log) = app.call("owner_a", Method::GET, "/audit?limit=50", None).await;
    let actions: Vec<&str> =
        log["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"session.ended") && actions.contains(&"session.ended_elsewhere"), "{actions:?}");
}

/// A client that shows redirects instead of following them (to read the page's flash).
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Posts a form as a browser would; returns the status and the flash message it set.
pub(crate) async fn post_form(app: &TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = no_redirects()
        .post(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let flash = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("lb_flash="))
        .map(|v| {
            let raw = v.split(';').next().unwrap_or_default();
            url::form_urlencoded::parse(format!("f={raw}").as_bytes())
                .next()
                .map(|(_, t)| t.into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    (status, flash)
}

#[tokio::test]
async fn the_account_page_lists_sessions_signs_them_out_and_changes_the_password() {
    let app = spawn().await;
    let (a, csrf) = sign_in_with(&app, "editor_a", "password-editor_a", Some(FIREFOX)).await;
    let (b, _) = sign_in_with(&app, "editor_a", "password-editor_a", Some(CHROME)).await;

    let page = app.http.get(format!("{}/account", app.base)).header("cookie", &a).send().await.expect("get");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("Where you are signed in") && html.contains("Change your password"), "{html}");
    assert_eq!(html.matches("data-session=").count(), 2, "{html}");
    assert_eq!(html.matches("data-current").count(), 1);
    assert!(html.contains("Firefox on Linux") && html.contains("Chrome on Windows"), "{html}");

    // Without the session's CSRF token nothing happens.
    let (status, _) = post_form(&app, &a, "/account/sessions/end-others", &[("csrf", "forged")]).await;
    assert_eq!(status, 403);
    let (status, _) = post_form(&app, &a, "/account/sessions/end-others", &[]).await;
    assert_eq!(status, 422, "a form without the token is refused too");
    assert!(alive(&app, &b).await);
    let (status, flash) = post_form(&app, &a, "/account/sessions/end-others", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert!(flash.contains("Signed out of 1 other session"), "{flash}");
    assert!(!alive(&app, &b).await && alive(&app, &a).await);

    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        let csrf = csrf.clone();
        let a = a.clone();
        let app = &app;
        async move {
            let form = [
                ("csrf", csrf.as_str()),
                ("current_password", current),
                ("new_password", new),
                ("confirm_password", confirm),
            ];
            post_form(app, &a, "/account/password", &form).await
        }
    };
    let (_, flash) = change("password-editor_a", "tangerine-harbour-velvet-42", "tangerine-harbour-velvet-43").await;
    assert!(flash.starts_with("error|") && flash.contains("differ"), "{flash}");
    let (_, flash) = change("not-my-password", "tangerine-harbour-velvet-42", "tangerine-harbour-velvet-42").await;
    assert!(flash.starts_with("error|") && flash.contains("not your current password"), "{flash}");
    let (_, flash) = change("password-editor_a", "password1234", "password1234").await;
    assert!(flash.starts_with("error|"), "a guessable password is refused with the reason: {flash}");
    let (c, _) = sign_in_with(&app, "editor_a", "password-editor_a", None).await;
    let (status, flash) =
        change("password-editor_a", "tangerine-harbour-velvet-42", "tangerine-harbour-velvet-42").await;
    assert_eq!(status, 303);
    assert!(flash.starts_with("success|") && flash.contains("1 other session(s) were signed out"), "{flash}");
    assert!(alive(&app, &a).await && !alive(&app, &c).await);
    sign_in_with(&app, "editor_a", "tangerine-harbour-velvet-42", None).await;
    let old = app
        .http
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"email": "editor_a@lightbridge.test", "password": "password-editor_a"}))
        .send()
        .await
        .expect("post");
    assert_eq!(old.status(), 401, "the old password no longer works");

    // Signing out this browser from the list ends it.
    let (_, listed) = app.browser(&a, None, Method::GET, "/api/v1/me/sessions", None).await;
    let mine = listed.as_array().expect("list").iter().find(|s| s["current"] == true).expect("current");
    let path = format!("/account/sessions/{}/end", mine["handle"].as_str().expect("handle"));
    let (status, _) = post_form(&app, &a, &path, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert!(!alive(&app, &a).await);
}
