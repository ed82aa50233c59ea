//! Real Salesforce client libraries against the emulator, unchanged: jsforce (npm) over HTTP
//! and simple-salesforce (PyPI) over HTTPS. The scripts live in `compat/`; `compat/install.sh`
//! installs the libraries (`.ci/run` calls it). Outside CI a missing install is reported and
//! the test passes; with `CI` set it fails, so CI can never skip it silently.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use emulator::{AppSeed, Emulator};

fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat")
}

/// Whether a tool is installed; `None` (and a note) when the suite must be skipped locally.
fn installed(what: &str, path: &Path) -> bool {
    if path.exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is not installed at {}: .ci/run must run compat/install.sh",
        path.display()
    );
    eprintln!("SKIPPED: {what} is not installed ({}); run compat/install.sh to include it", path.display());
    false
}

async fn emulator_for_clients() -> Emulator {
    let em = start().await;
    em.add_app(&AppSeed {
        callback_urls: vec![CALLBACK.into()],
        require_pkce: true,
        ..AppSeed::new("jsforce-app", "jsforce-secret")
    })
    .expect("jsforce app");
    em
}

fn run(mut command: Command, what: &str) {
    let output = tokio::task::block_in_place(|| command.output()).unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}", output.status);
    eprintln!("{what} passed:\n{stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsforce_signs_in_refreshes_queries_and_manages_static_resources() {
    let dir = compat_dir();
    if !installed("jsforce", &dir.join("node_modules/jsforce")) {
        return;
    }
    let em = emulator_for_clients().await;
    let mut node = Command::new("node");
    node.current_dir(&dir)
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg("jsforce.test.mjs")
        .env("EMULATOR_URL", em.base_url())
        .env("WEB_CLIENT_ID", "jsforce-app")
        .env("WEB_CLIENT_SECRET", "jsforce-secret")
        .env("WEB_CALLBACK", CALLBACK)
        .env("SF_USERNAME", "admin@prod.test")
        .env("SF_PASSWORD", PASSWORD);
    run(node, "jsforce suite");
    let log = em.requests();
    assert!(log.iter().any(|r| r.operation.as_deref() == Some("token:authorization_code") && r.status == 200));
    assert!(log.iter().any(|r| r.operation.as_deref() == Some("delete:StaticResource") && r.status == 204));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_signs_in_with_jwt_over_https_and_manages_static_resources() {
    let dir = compat_dir();
    let python = dir.join(".venv/bin/python");
    if !installed("simple-salesforce", &python) {
        return;
    }
    let em = emulator_for_clients().await;
    let mut py = Command::new(&python);
    py.current_dir(&dir)
        .arg("simple_salesforce_test.py")
        .env("EMULATOR_URL", em.base_url())
        .env("EMULATOR_HTTPS_URL", em.https_url().expect("HTTPS is served"))
        .env("REQUESTS_CA_BUNDLE", em.ca_file())
        .env("JWT_CLIENT_ID", JWT_KEY)
        .env("JWT_PRIVATE_KEY_FILE", em.private_key_file(JWT_KEY))
        .env("SF_USERNAME", "admin@prod.test");
    run(py, "simple-salesforce suite");
    let https_calls = em.requests().iter().filter(|r| r.operation.as_deref() == Some("create:StaticResource")).count();
    assert_eq!(https_calls, 1);
}
