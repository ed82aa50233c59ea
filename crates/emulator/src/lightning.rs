//! A Lightning page stand-in (issue #15): enough of Lightning Experience to run an org's
//! background utility items the way Lightning would, so a broken loader fails here.
//!
//! - `GET /secur/frontdoor.jsp?sid=<access token>&retURL=/lightning/page/home` turns a live
//!   session into a browser session (a cookie), as Salesforce's frontdoor does.
//! - `GET /lightning/app/{app}` (`standard__LightningSales`, `MyApp` or the app's durable id)
//!   opens an app's home page; `GET /lightning/page/home` opens the org's default (first) app.
//!   The page instantiates the background items of the app's utility bar: each component its
//!   `Background` region names that is one of the org's Aura bundles implementing
//!   `lightning:backgroundUtilityItem` (an app without a utility bar runs none). For each, the
//!   `<ltng:require>` expression is
//!   evaluated — `$Resource.Name`, `+` with string literals, `join(',', …)` — and its style
//!   sheets and scripts load from the org's static resources in order, once; then the
//!   component's controller `loaded` action runs against a small shim (`component.get/set`,
//!   an empty event and helper).
//! - The page's Content-Security-Policy is built as Lightning's is: scripts only from the org
//!   itself, and each active CSP Trusted Site (context `All` or `LEX`) added to the directives
//!   it applies to — so a player calling an origin that is not trusted is blocked here too.
//!
//! Not modelled: Lightning Web Security's and Locker's sandboxes (a script here sees the real
//! `window`), LWC components, and the rest of Lightning's markup.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Shared;
use crate::flexipage::LightningApp;
use crate::metadata::{Component, Kind};
use crate::state::World;

const COOKIE: &str = "sid";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><p>{body}</p></body></html>"
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// `/secur/frontdoor.jsp`: a live access token becomes a browser session.
pub(crate) async fn frontdoor(State(shared): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    let Some(session) = q.get("sid").and_then(|sid| world.touch_session(sid, now)) else {
        return page(StatusCode::UNAUTHORIZED, "Session expired or invalid", "Sign in again to get a new session.");
    };
    let id = crate::ids::random_alnum(40);
    world.ui_sessions.insert(id.clone(), (session.org_id.clone(), session.user_id.clone()));
    // Only a path on this host: never a redirect elsewhere.
    let to = q
        .get("retURL")
        .filter(|r| r.starts_with('/') && !r.starts_with("//") && !r.contains('\\') && !r.chars().any(char::is_control))
        .cloned()
        .unwrap_or_else(|| "/lightning/page/home".into());
    let mut response = (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax")) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn signed_in(world: &World, headers: &HeaderMap) -> Option<(String, String)> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = cookies.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == COOKIE)?.1;
    world.ui_sessions.get(id).cloned()
}

/// The background utility items of an app's utility bar, in the bar's order.
fn background_items<'w>(world: &'w World, org: &str, app: &LightningApp) -> Vec<&'w Component> {
    let Some(xml) = app.utility_bar.as_deref().and_then(|bar| world.flexipage_xml(org, bar)) else {
        return Vec::new();
    };
    crate::flexipage::background_components(&xml)
        .iter()
        .filter_map(|name| crate::flexipage::own_component(name))
        .filter_map(|name| world.component(org, Kind::Aura, name))
        .filter(|c| markup(c).is_some_and(|m| m.contains("lightning:backgroundUtilityItem")))
        .collect()
}

fn markup(c: &Component) -> Option<String> {
    let path = format!("aura/{0}/{0}.cmp", c.full_name);
    c.files.get(&path).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// An attribute's value in a tag's markup (`name="value"`).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[at..].find('"')?;
    Some(tag[at..at + end].to_string())
}

/// Evaluates the subset of Aura expressions `<ltng:require>` takes here: `{!…}` holding
/// `$Resource.Name`, string literals, `+`, and `join(',', …)`. A resource the org lacks is an
/// error.
fn evaluate(world: &World, org: &str, expression: &str) -> Result<Vec<String>, String> {
    let inner = expression
        .trim()
        .strip_prefix("{!")
        .and_then(|e| e.strip_suffix('}'))
        .ok_or_else(|| format!("not an expression: {expression}"))?
        .trim();
    let parts: Vec<String> = match inner.strip_prefix("join(").and_then(|e| e.strip_suffix(')')) {
        Some(args) => {
            let args = split_top(args);
            let (separator, items) = args.split_first().ok_or("join() needs arguments")?;
            if separator.trim() != "','" {
                return Err(format!("join() separator {separator} is not ','"));
            }
            items.to_vec()
        }
        None => vec![inner.to_string()],
    };
    parts.iter().map(|p| concat(world, org, p)).collect()
}

/// Splits on commas outside quotes and parentheses.
fn split_top(text: &str) -> Vec<String> {
    let (mut out, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0, false);
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out
}

/// `$Resource.Name + '/path' + …` as a URL on this org.
fn concat(world: &World, org: &str, expression: &str) -> Result<String, String> {
    let mut url = String::new();
    for term in expression.split('+').map(str::trim) {
        if let Some(name) = term.strip_prefix("$Resource.") {
            let resource = world
                .org_resources(org)
                .find(|r| match &r.namespace_prefix {
                    Some(ns) => format!("{ns}__{}", r.name).eq_ignore_ascii_case(name),
                    None => r.name.eq_ignore_ascii_case(name),
                })
                .ok_or_else(|| format!("No STATIC_RESOURCE named {name} found"))?;
            let served = match &resource.namespace_prefix {
                Some(ns) => format!("{ns}__{}", resource.name),
                None => resource.name.clone(),
            };
            url.push_str(&format!("/resource/{}/{served}", resource.modified_ms));
        } else if let Some(literal) = term.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            url.push_str(literal);
        } else {
            return Err(format!("the emulator does not evaluate {term:?}"));
        }
    }
    Ok(url)
}

/// The page's Content-Security-Policy: the org itself, plus each active trusted site where it
/// applies.
fn policy(world: &World, org: &str) -> String {
    let mut sources: HashMap<&str, Vec<String>> = HashMap::new();
    for c in world.org_components(org, Kind::CspTrustedSite) {
        let Some(site) = c.csp.as_ref().filter(|s| s.is_active && (s.context == "All" || s.context == "LEX")) else {
            continue;
        };
        for (directive, on) in [
            ("connect-src", site.connect),
            ("img-src", site.img),
            ("media-src", site.media),
            ("style-src", site.style),
            ("font-src", site.font),
            ("frame-src", site.frame),
        ] {
            if on {
                sources.entry(directive).or_default().push(site.endpoint_url.clone());
            }
        }
    }
    let with = |directive: &str, base: &str| {
        let extra = sources.get(directive).map(|s| s.join(" ")).unwrap_or_default();
        format!("{directive} {base} {extra}").trim_end().to_string()
    };
    [
        "default-src 'self'".to_string(),
        "script-src 'self'".to_string(),
        with("style-src", "'self' 'unsafe-inline'"),
        with("connect-src", "'self'"),
        with("img-src", "'self' data:"),
        with("media-src", "'self'"),
        with("font-src", "'self'"),
        with("frame-src", "'self'"),
    ]
    .join("; ")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `/lightning/page/home`: the default app's home page.
pub(crate) async fn home(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    app_page(&shared, &headers, None)
}

/// `/lightning/app/{app}`: an app's home page.
pub(crate) async fn app(State(shared): State<Shared>, headers: HeaderMap, Path(app): Path<String>) -> Response {
    app_page(&shared, &headers, Some(&app))
}

/// An app's home page with its utility bar's background items running.
fn app_page(shared: &Shared, headers: &HeaderMap, wanted: Option<&str>) -> Response {
    let world = shared.world();
    let Some((org, user)) = signed_in(&world, headers) else {
        return page(
            StatusCode::UNAUTHORIZED,
            "Sign in to Salesforce",
            "Open /secur/frontdoor.jsp?sid=&lt;access token&gt;&amp;retURL=/lightning/page/home to start a session.",
        );
    };
    let apps = world.orgs.get(&org).map(|o| o.apps.clone()).unwrap_or_default();
    let chosen = match wanted {
        None => apps.first(),
        Some(w) => apps.iter().find(|a| a.full_name().eq_ignore_ascii_case(w) || a.durable_id == w),
    };
    let Some(app) = chosen.cloned() else {
        return page(
            StatusCode::NOT_FOUND,
            "Page not found",
            "This app does not exist or you do not have access to it.",
        );
    };
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for c in background_items(&world, &org, &app) {
        let Some(m) = markup(c) else { continue };
        let Some(start) = m.find("<ltng:require") else {
            items.push(json!({"name": c.full_name, "scripts": [], "styles": []}));
            continue;
        };
        let tag = &m[start..start + m[start..].find('>').map_or(m.len() - start, |e| e + 1)];
        let mut lists = Vec::new();
        for attr in ["scripts", "styles"] {
            match attribute(tag, attr).map(|e| evaluate(&world, &org, &e)) {
                Some(Ok(urls)) => lists.push(urls),
                Some(Err(e)) => {
                    errors.push(format!("{}: {e}", c.full_name));
                    lists.push(Vec::new());
                }
                None => lists.push(Vec::new()),
            }
        }
        let after = attribute(tag, "afterScriptsLoaded")
            .and_then(|a| a.strip_prefix("{!c.").and_then(|a| a.strip_suffix('}')).map(str::to_string));
        items.push(json!({"name": c.full_name, "scripts": lists[0], "styles": lists[1], "after": after}));
    }
    let user_name = world.users.get(&user).map(|u| u.display_name()).unwrap_or_default();
    let org_name = world.orgs.get(&org).map(|o| o.name.clone()).unwrap_or_default();
    let data = json!({"items": items, "errors": errors}).to_string().replace('<', "\\u003c");
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Home | {label} | {org} | Salesforce</title></head>\
         <body><header><strong>{org}</strong> · <span id=\"app\" data-app=\"{full}\">{label}</span> · {user}</header><main id=\"main\"><h1>Home</h1>\
         <p>A Lightning page stand-in: the background items of this app's utility bar run here.</p></main>\
         <script type=\"application/json\" id=\"aura-components\">{data}</script>\
         <script src=\"/lightning/shim.js\"></script></body></html>",
        org = escape(&org_name),
        user = escape(&user_name),
        label = escape(&app.label),
        full = escape(&app.full_name()),
    );
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    if let Ok(csp) = HeaderValue::from_str(&policy(&world, &org)) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// A background item's controller, as a script that registers it for the shim.
pub(crate) async fn controller(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(bundle): Path<String>,
) -> Response {
    let world = shared.world();
    let Some((org, _)) = signed_in(&world, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Some(c) = world.component(&org, Kind::Aura, &bundle) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let source = c
        .files
        .get(&format!("aura/{0}/{0}Controller.js", c.full_name))
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_else(|| "({})".into());
    let name = serde_json::to_string(&c.full_name).unwrap_or_default();
    let script =
        format!("(window.__auraControllers = window.__auraControllers || {{}})[{name}] = (\n{}\n);\n", source.trim());
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], script).into_response()
}

/// The shim: loads each item's style sheets and scripts in order (each URL once, as
/// `<ltng:require>` does), then runs its `afterScriptsLoaded` action.
pub(crate) async fn shim() -> Response {
    const SHIM: &str = r#"(function () {
  var data = JSON.parse(document.getElementById("aura-components").textContent);
  var loaded = {};
  var errors = data.errors.slice();
  function load(tag, url) {
    return new Promise(function (resolve, reject) {
      if (loaded[url]) { resolve(); return; }
      var el = document.createElement(tag);
      if (tag === "script") { el.src = url; } else { el.rel = "stylesheet"; el.href = url; }
      el.onload = function () { loaded[url] = true; resolve(); };
      el.onerror = function () { reject(new Error("could not load " + url)); };
      document.head.appendChild(el);
    });
  }
  function serially(tag, urls) {
    return urls.reduce(function (p, url) { return p.then(function () { return load(tag, url); }); }, Promise.resolve());
  }
  function component(name) {
    var attrs = {};
    return { getName: function () { return name; }, get: function (k) { return attrs[k]; },
             set: function (k, v) { attrs[k] = v; }, isValid: function () { return true; } };
  }
  var done = data.items.map(function (item) {
    return serially("link", item.styles)
      .then(function () { return serially("script", item.scripts); })
      .then(function () { return load("script", "/lightning/aura/" + encodeURIComponent(item.name) + "/controller.js"); })
      .then(function () {
        var controller = (window.__auraControllers || {})[item.name] || {};
        if (item.after && typeof controller[item.after] === "function") {
          controller[item.after](component(item.name), {}, {});
        }
      })
      .catch(function (e) { errors.push(item.name + ": " + e.message); });
  });
  Promise.all(done).then(function () {
    document.body.dataset.auraReady = "true";
    if (errors.length) { document.body.dataset.auraErrors = errors.join("; "); }
  });
})();
"#;
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SHIM).into_response()
}
