//! A small W3C WebDriver client for the browser tests: Debian's `chromedriver` driving
//! headless `chromium` (never a browser a test tool downloads). Waits poll the page until a
//! condition holds or a deadline passes; nothing sleeps a fixed time.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    pub downloads: std::path::PathBuf,
    _profile: std::path::PathBuf,
}

#[derive(Debug, Clone)]
pub struct Element(String);

/// What axe-core found on a page: the engine that ran, the rules that passed, and the serious
/// or critical violations.
#[derive(Debug, Clone)]
pub struct Axe {
    pub engine: String,
    pub passes: u64,
    pub violations: Vec<Value>,
}

/// axe-core's browser build, read once.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat/node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("axe-core is needed for the accessibility checks: run compat/install.sh ({}: {e})", path.display())
        })
    })
}

fn find(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
}

/// `Some(browser)` when chromium and chromedriver are installed. In CI their absence is an
/// error (`.ci/run` installs them); elsewhere the test says it skipped.
pub async fn launch() -> Option<Browser> {
    let (Some(chromium), Some(driver)) = (find("chromium"), find("chromedriver")) else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "chromium and chromedriver are required in CI: .ci/run installs them (apt-get install chromium chromium-driver)"
            );
        }
        eprintln!("SKIPPED: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let driver = Command::new(driver)
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = Instant::now();
    while http.get(format!("{base}/status")).send().await.is_err() {
        assert!(ready.elapsed() < Duration::from_secs(20), "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = domain::UserId::generate();
    let profile = std::env::temp_dir().join(format!("lightbridge-chromium-{id}"));
    let downloads = profile.join("downloads");
    std::fs::create_dir_all(&downloads).expect("profile dir");
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                     "--window-size=1280,900", format!("--user-data-dir={}", profile.display())],
            "prefs": {"download.default_directory": downloads, "download.prompt_for_download": false}
        }
    }}});
    let reply: Value =
        http.post(format!("{base}/session")).json(&caps).send().await.expect("session").json().await.expect("json");
    let session = reply["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {reply}")).to_string();
    let browser = Browser { http, base, session, driver, downloads, _profile: profile };
    // Let downloads land in our folder in headless mode too.
    browser
        .command("POST", "/goog/cdp/execute", json!({"cmd": "Browser.setDownloadBehavior", "params": {"behavior": "allow", "downloadPath": browser.downloads}}))
        .await;
    Some(browser)
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session (chromedriver closes Chromium), synchronously: Drop cannot await.
        use std::io::{Read, Write};
        let address = self.base.trim_start_matches("http://").to_string();
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n",
                self.session
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

impl Browser {
    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let reply: Value = request.send().await.expect("webdriver").json().await.expect("webdriver json");
        reply["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.command("POST", "/url", json!({"url": url})).await;
    }

    pub async fn url(&self) -> String {
        self.command("GET", "/url", json!({})).await.as_str().unwrap_or_default().to_string()
    }

    pub async fn source(&self) -> String {
        self.command("GET", "/source", json!({})).await.as_str().unwrap_or_default().to_string()
    }

    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let v = self.command("POST", "/element", json!({"using": "css selector", "value": css})).await;
        v[ELEMENT].as_str().map(|id| Element(id.to_string()))
    }

    /// Waits (up to 15 s) for an element to appear.
    pub async fn find(&self, css: &str) -> Element {
        let start = Instant::now();
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            assert!(start.elapsed() < Duration::from_secs(15), "no element {css} on {}", self.url().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.command("POST", "/elements", json!({"using": "css selector", "value": css})).await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str())
            .map(|id| Element(id.to_string()))
            .collect()
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.command("POST", &format!("/element/{}/click", e.0), json!({})).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.command("POST", &format!("/element/{}/clear", e.0), json!({})).await;
        self.command("POST", &format!("/element/{}/value", e.0), json!({"text": text})).await;
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.command("GET", &format!("/element/{}/text", e.0), json!({})).await.as_str().unwrap_or_default().to_string()
    }

    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.find_all(css).await {
            let t = self.command("GET", &format!("/element/{}/text", e.0), json!({})).await;
            out.push(t.as_str().unwrap_or_default().to_string());
        }
        out
    }

    pub async fn script(&self, script: &str) -> Value {
        self.command("POST", "/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Runs a script that finishes by calling its last argument (a callback) with the result.
    pub async fn script_async(&self, script: &str) -> Value {
        self.command("POST", "/execute/async", json!({"script": script, "args": []})).await
    }

    /// Runs axe-core (from npm, `compat/install.sh`) on the page as it is: injected, then
    /// `axe.run` with every rule of WCAG 2.0/2.1/2.2 A and AA and best practice. Returns the
    /// serious and critical violations (rule, impact, the first elements), and how many rules
    /// passed (so a caller can tell the checker really ran).
    pub async fn axe(&self) -> Axe {
        let source = axe_source();
        // Defines `window.axe`: the script is the library's own UMD file.
        self.command(
            "POST",
            "/execute/sync",
            json!({"script": format!("{source}\nreturn typeof window.axe;"), "args": []}),
        )
        .await;
        let report = self
            .script_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})\
                   .then(r => done({engine: r.testEngine.name, version: r.testEngine.version, passes: r.passes.length,\
                     violations: r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
                       .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))}))\
                   .catch(e => done({error: String(e)}));",
            )
            .await;
        assert!(report["error"].is_null(), "axe-core failed: {report}");
        Axe {
            engine: format!(
                "{} {}",
                report["engine"].as_str().unwrap_or_default(),
                report["version"].as_str().unwrap_or_default()
            ),
            passes: report["passes"].as_u64().unwrap_or_default(),
            violations: report["violations"].as_array().cloned().unwrap_or_default(),
        }
    }

    /// Waits (up to 15 s) until `check` holds for the page's text.
    pub async fn wait_for_text(&self, css: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(e) = self.try_find(css).await {
                let t = self.command("GET", &format!("/element/{}/text", e.0), json!({})).await;
                let t = t.as_str().unwrap_or_default().to_string();
                if check(&t) {
                    return t;
                }
                if start.elapsed() > Duration::from_secs(15) {
                    panic!("{css} never matched; last text: {t}");
                }
            } else if start.elapsed() > Duration::from_secs(15) {
                panic!("no {css} on {}", self.url().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 15 s) until the URL satisfies `check`.
    pub async fn wait_for_url(&self, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let url = self.url().await;
            if check(&url) {
                return url;
            }
            assert!(start.elapsed() < Duration::from_secs(15), "the browser stayed at {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn set_width(&self, width: u32, height: u32) {
        self.command("POST", "/window/rect", json!({"width": width, "height": height})).await;
    }

    /// A PNG of the viewport (or, with `full`, the whole page) — saved under
    /// `docs/screenshots/` when `UPDATE_SCREENSHOTS` is set, else in the temp folder.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        use base64::Engine;
        // Grow the window to the page's height so the picture shows all of it.
        let height =
            self.script("return Math.min(document.documentElement.scrollHeight, 2400);").await.as_u64().unwrap_or(900);
        let width = self.script("return window.outerWidth;").await.as_u64().unwrap_or(1280);
        self.set_width(width as u32, (height as u32).max(600) + 120).await;
        let png = self.command("GET", "/screenshot", json!({})).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default()).expect("png");
        let dir = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
        } else {
            std::env::temp_dir().join("lightbridge-screenshots")
        };
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("write screenshot");
        self.set_width(width as u32, 900).await;
        path
    }

    /// A PNG of one element as the browser drew it.
    pub async fn element_png(&self, css: &str) -> Vec<u8> {
        use base64::Engine;
        let element = self.find(css).await;
        let png = self.command("GET", &format!("/element/{}/screenshot", element.0), json!({})).await;
        base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default()).expect("png")
    }

    /// Waits (up to 20 s) for a finished download whose name ends with `suffix`.
    pub async fn downloaded(&self, suffix: &str) -> std::path::PathBuf {
        let start = Instant::now();
        loop {
            let found = std::fs::read_dir(&self.downloads)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(suffix));
            if let Some(path) = found {
                return path;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no {suffix} download in {}", self.downloads.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
