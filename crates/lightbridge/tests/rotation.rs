//! Issue #6: `lightbridge keys rotate` re-seals every secret of 10,000 connections under a new
//! master key while a server keeps answering requests that open those secrets — no request
//! fails, and afterwards the old key opens nothing.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{http, lightbridge, new_key, start_emulator, start_serve};
use domain::{
    AccountId, AuthMethod, Connection, ConnectionId, ConnectionKind, ConnectionName, ConnectionStatus, LoginHost,
    OrgFacts, OrgType,
};
use serde_json::Value;
use store::{ConnectionStore, NewSecrets, SqliteStore, StoreError, TokenSet};
use vault::{AccessToken, Binding, ClientSecret, Keyring, MasterKey, RefreshToken, Sealed};

const CONNECTIONS: usize = 10_000;

/// A connection's id and its four sealed columns, as stored.
type SealedRow = (String, Option<String>, Option<String>, Option<String>, Option<String>);

fn seeded(account: &AccountId, i: usize) -> Connection {
    Connection {
        id: ConnectionId::generate(),
        account_id: account.clone(),
        kind: ConnectionKind::New { name: ConnectionName::parse(&format!("Seeded {i:05}")).expect("name") },
        org_type: OrgType::Production,
        login_host: LoginHost::Login,
        auth: AuthMethod::OAuth { consumer_key: "3MVG9Seeded".into() },
        org: Some(OrgFacts {
            org_id: format!("00D{i:012}AAA"),
            org_name: format!("Seeded Org {i:05}"),
            instance_url: "https://seeded.my.salesforce.com".into(),
            user_id: format!("005{i:012}AAA"),
            username: format!("admin{i}@seeded.example"),
            email: Some(format!("admin{i}@seeded.example")),
        }),
        status: ConnectionStatus::LoggedIn,
        status_detail: None,
        status_reason: None,
        granted_at: None,
        status_checked_at: Some(0),
        created_at: i as i64,
        created_by: Some("seed".into()),
        modified_at: i as i64,
        modified_by: Some("seed".into()),
    }
}

#[test]
fn keys_rotate_under_load_fails_no_request_and_retires_the_old_key() {
    let data = std::env::temp_dir().join(format!("lightbridge-rotation-{}", std::process::id()));
    let (_emulator, emulator_url, key_file) = start_emulator(&data.join("emulator"));
    let old_key = new_key();
    let new_key = new_key();
    let account = lightbridge(&data, &old_key, &["accounts", "create", "--name", "Acme"]);
    lightbridge(
        &data,
        &old_key,
        &["users", "create", "--account", &account, "--email", "admin@acme.test", "--role", "admin"],
    );
    let token = lightbridge(&data, &old_key, &["tokens", "create", "--email", "admin@acme.test"]);

    // A real JWT connection (its key and session sealed under the old key), made through the API.
    let (first, base) = start_serve(&data, &old_key, &emulator_url, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["connections", "create", "--json", "--name", "Prod", "--username", "admin@acme.example"])
        .args(["--consumer-key", "3MVG9LightbridgeDemoConsumerKey", "--private-key-file", &key_file])
        .env("LIGHTBRIDGE_SERVER", &base)
        .env("LIGHTBRIDGE_TOKEN", &token)
        .output()
        .expect("create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let real: Value = serde_json::from_slice(&out.stdout).expect("json");
    let real = real["id"].as_str().expect("id").to_string();
    drop(first);

    // 10,000 more, each with a sealed secret and tokens, straight into the database.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let db = data.join("lightbridge.db");
    let old_master = MasterKey::from_base64(&old_key).expect("key");
    let seeded_ids = runtime.block_on(async {
        let store = SqliteStore::open(&db, Keyring::new(old_master.clone())).await.expect("store");
        let account = AccountId::parse(&account).expect("account");
        let mut ids = Vec::new();
        for i in 0..CONNECTIONS {
            let c = seeded(&account, i);
            let secrets = NewSecrets {
                consumer_secret: Some(ClientSecret::new(format!("secret-{i}"))),
                tokens: Some(TokenSet {
                    access_token: AccessToken::new(format!("00D!access-{i}")),
                    refresh_token: Some(RefreshToken::new(format!("5Aep!refresh-{i}"))),
                    instance_url: "https://seeded.my.salesforce.com".into(),
                }),
                ..Default::default()
            };
            store.insert(&c, &secrets).await.expect("insert");
            ids.push(c.id.to_string());
        }
        ids
    });

    // Rolling restart onto the new key, the old one kept to open what is not re-sealed yet.
    let both = [("LIGHTBRIDGE_PREVIOUS_MASTER_KEYS", old_key.as_str())];
    let (_server, base) = start_serve(&data, &new_key, &emulator_url, &both);

    // Load: four clients reading the table, single connections and checking the real one (which
    // opens its sealed key and session) until the rotation is over.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..4)
        .map(|n| {
            let (stop, ok, failed, failures) = (stop.clone(), ok.clone(), failed.clone(), failures.clone());
            let (base, token, real, ids) = (base.clone(), token.clone(), real.clone(), seeded_ids.clone());
            std::thread::spawn(move || {
                let mut i = n;
                while !stop.load(Ordering::Relaxed) {
                    let (method, path) = match i % 3 {
                        0 => ("GET", format!("/api/v1/connections?per_page=50&page={}", 1 + i % 200)),
                        1 => ("GET", format!("/api/v1/connections/{}", ids[(i * 7919) % ids.len()])),
                        _ => ("POST", format!("/api/v1/connections/{real}/check")),
                    };
                    let (status, body) = http(&base, method, &path, Some(&token), None);
                    if status / 100 == 2 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        failures.lock().expect("lock").push(format!("{method} {path}: {status} {body}"));
                    }
                    i += 4;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let rotate = Command::new(env!("CARGO_BIN_EXE_lightbridge"))
        .args(["keys", "rotate", "--batch", "700"])
        .env("LIGHTBRIDGE_DATA_DIR", &data)
        .env("LIGHTBRIDGE_MASTER_KEY", &new_key)
        .env("LIGHTBRIDGE_PREVIOUS_MASTER_KEYS", &old_key)
        .env_remove("LIGHTBRIDGE_CONFIG")
        .output()
        .expect("rotate");
    let during = ok.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    assert!(rotate.status.success(), "rotate failed: {}", String::from_utf8_lossy(&rotate.stderr));
    let said = String::from_utf8_lossy(&rotate.stdout);
    assert!(said.contains("re-sealed") && said.contains("Remove the old key"), "{said}");
    let failures = failures.lock().expect("lock");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests, the first: {:?}",
        &failures[..failures.len().min(3)]
    );
    assert!(during > 20, "the server was under load during the rotation ({during} requests)");

    // The old key opens nothing: every sealed value names the new key, and the old one alone is
    // refused at open and cannot open a single value.
    let new_master = MasterKey::from_base64(&new_key).expect("key");
    runtime.block_on(async {
        let refused = SqliteStore::open(&db, Keyring::new(old_master.clone())).await.expect_err("old key");
        assert!(matches!(refused, StoreError::KeyMismatch { .. }), "{refused}");
        let store = SqliteStore::open(&db, Keyring::new(new_master.clone())).await.expect("the new key alone opens");
        let rows: Vec<SealedRow> =
            sqlx::query_as("SELECT id, consumer_secret, private_key, access_token, refresh_token FROM connections")
                .fetch_all(store.pool())
                .await
                .expect("rows");
        assert_eq!(rows.len(), CONNECTIONS + 1);
        let old_only = Keyring::new(old_master.clone());
        let mut values = 0;
        for (id, secret, private_key, access, refresh) in rows {
            for (column, value) in [
                ("consumer_secret", secret),
                ("private_key", private_key),
                ("access_token", access),
                ("refresh_token", refresh),
            ] {
                let Some(value) = value else { continue };
                let sealed = Sealed::from_stored(value);
                assert_eq!(sealed.key_id(), Some(new_master.id()), "{id}.{column}");
                assert!(old_only.open(&sealed, Binding::new(&id, column)).is_err(), "{id}.{column}");
                values += 1;
            }
        }
        assert!(values >= CONNECTIONS * 3, "{values} sealed values checked");
        let secrets = store.secrets(&ConnectionId::parse(&real).expect("id")).await.expect("the real one opens");
        assert!(secrets.private_key.is_some());
    });
    let _ = std::fs::remove_dir_all(data);
}
