//! Test helpers for crates that talk to the emulator (feature `testing`): sign in through the
//! emulator's own pages as a browser would, without a browser.

/// Follows an authorize URL through the sign-in page (and the approve page, allowing or
/// denying) and returns the URL Salesforce redirected to — the app's callback with `code`
/// and `state`, or with `error`. A sign-in the emulator refuses returns its message as `Err`.
pub async fn sign_in(authorize_url: &str, username: &str, password: &str, allow: bool) -> Result<String, String> {
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(|e| e.to_string())?;
    let first = http.get(authorize_url).send().await.map_err(|e| e.to_string())?;
    if let Some(location) = first.headers().get("location") {
        return Ok(location.to_str().map_err(|e| e.to_string())?.to_string());
    }
    let page = first.text().await.map_err(|e| e.to_string())?;
    let txn = hidden(&page, "txn").ok_or("the authorize page has no sign-in form")?;
    let action = form_action(&page).ok_or("the sign-in page has no form action")?;
    let origin = origin_of(authorize_url);
    let login = http
        .post(format!("{origin}{action}"))
        .form(&[("txn", txn.as_str()), ("username", username), ("password", password)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if let Some(location) = login.headers().get("location") {
        return Ok(location.to_str().map_err(|e| e.to_string())?.to_string());
    }
    let page = login.text().await.map_err(|e| e.to_string())?;
    if !page.contains("name=\"decision\"") {
        let message =
            page.split("role=\"alert\">").nth(1).and_then(|m| m.split('<').next()).unwrap_or("sign-in refused");
        return Err(message.to_string());
    }
    let action = form_action(&page).ok_or("the approve page has no form action")?;
    let decision = if allow { "allow" } else { "deny" };
    let approve = http
        .post(format!("{origin}{action}"))
        .form(&[("txn", txn.as_str()), ("decision", decision)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    approve
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| "the approve page did not redirect".to_string())
}

fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    page[start..].split('"').next().map(str::to_string)
}

fn form_action(page: &str) -> Option<String> {
    let start = page.find("action=\"")? + 8;
    page[start..].split('"').next().map(str::to_string)
}

fn origin_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
    url[..end].to_string()
}
