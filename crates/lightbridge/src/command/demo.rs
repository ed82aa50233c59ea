//! `lightbridge demo`: everything a newcomer needs to try Lightbridge offline — the Salesforce
//! org emulator with its demo seed, and the Lightbridge server on an embedded SQLite database
//! with a seeded account, owner and API token. State lives in `--data-dir` (default
//! `.lightbridge/demo`); the master key is generated there on first run.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use connections::{LoginUrls, SystemClock};
use domain::{ActorKind, Role};
use emulator::{Config as EmulatorConfig, Emulator, Seed};
use server::{AppState, Server};
use service::{Actor, Service, accounts, catalog, users};
use store::{AccessStore, CatalogStore, SqliteStore};
use vault::{Keyring, MasterKey};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lightbridge's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Emulator HTTP port on 127.0.0.1.
    #[arg(long, default_value_t = 8181)]
    emulator_port: u16,
    /// Emulator HTTPS port on 127.0.0.1.
    #[arg(long, default_value_t = 8443)]
    emulator_https_port: u16,
    /// Folder for the demo's database, master key, CA file and keys.
    #[arg(long, default_value = ".lightbridge/demo")]
    data_dir: PathBuf,
}

const OWNER: &str = "owner@demo.example";
/// The demo owner's Admin Center password (a demo only: real users set their own).
const OWNER_PASSWORD: &str = "lightbridge-demo";

pub async fn run(args: Args) -> anyhow::Result<()> {
    store::create_private_dir(&args.data_dir).context("cannot prepare the demo folder")?;
    // Bind Lightbridge first, so the connected app registers the callback this run really
    // serves (any --listen, port 0 included), not a fixed port.
    let listen: std::net::SocketAddr =
        args.listen.parse().with_context(|| format!("--listen {:?} is not an address", args.listen))?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = browser_address(listener.local_addr()?);
    let mut seed = Seed::demo();
    for app in &mut seed.apps {
        app.callback_urls = demo_callbacks(addr);
    }
    let emulator = Emulator::start_with(EmulatorConfig {
        seed: seed.clone(),
        http_port: args.emulator_port,
        https_port: Some(args.emulator_https_port),
        state_dir: Some(args.data_dir.join("emulator")),
    })
    .await
    .context("cannot start the Salesforce org emulator for the demo")?;

    let key = demo_master_key(&args.data_dir)?;
    let store = SqliteStore::open(&args.data_dir.join("lightbridge.db"), Keyring::new(key))
        .await
        .context("cannot open the demo database (delete the demo folder to start over)")?;
    let client = salesforce::Client::new(salesforce::HostPolicy::allowing([emulator.base_url()])?)?;
    let urls = LoginUrls { login: emulator.login_url().parse()?, test: emulator.test_login_url().parse()? };
    let public_url = format!("http://{addr}/").parse()?;
    let mut state = AppState::new(store, client, urls, Arc::new(SystemClock)).with_public_url(public_url);
    // Webhook receivers on this machine are allowed: the demo is offline (#18).
    let notifier = service::notify::NotifierConfig::default();
    state.service.webhooks = service::notify::Sender::new(true, notifier.timeout);
    let token = seed_account(&state.service).await?;
    let publish_target = demo_publish_target(&state.service).await?;
    // Check every minute so the demo shows a revoked user's connection turn Logged out quickly;
    // renew OAuth connections daily (the keep-alive).
    let day = std::time::Duration::from_secs(24 * 3600);
    let _health = server::spawn_health_checks(&state, std::time::Duration::from_secs(60), day);
    let _worker = server::spawn_worker(&state, server::WorkerConfig::default());
    // As `lightbridge serve` runs them: rollouts' next waves, the drift scan, webhook deliveries.
    let _rollouts = service::rollout::spawn_keeper(&state, std::time::Duration::from_millis(250));
    let _drift = service::drift::spawn_scanner(&state, server::WorkerConfig::default().drift_scan);
    let _notifier = service::notify::spawn_notifier(&state, notifier);
    let server = Server::with_listener(state, listener);

    super::emulator::print_summary(&emulator, &seed, false);
    let app = &seed.apps[0];
    println!();
    println!("Lightbridge is serving on http://{addr} (SQLite in {}).", args.data_dir.display());
    println!();
    println!("Admin Center: open http://{addr}/ and sign in as {OWNER} with the password {OWNER_PASSWORD}.");
    println!(
        "  Add a connection with OAuth, consumer key {} and secret {}; on the emulator's Salesforce page sign in as admin@acme.example (password emulator). Try editor@acme.example to see a check fail.",
        app.consumer_key, app.consumer_secret
    );
    println!();
    println!("Demo account owner: {OWNER}. API token for this run (shown once):");
    println!("  export LIGHTBRIDGE_TOKEN={}", token.expose_secret());
    println!();
    println!("Add a connection to the emulated production org (the check runs first), then list it:");
    println!(
        "  curl -s -H \"Authorization: Bearer $LIGHTBRIDGE_TOKEN\" -H 'content-type: application/json' http://{addr}/api/v1/connections -d '{{\"name\":\"Acme production\",\"org_type\":\"production\",\"login_host\":\"{}\",\"auth\":{{\"method\":\"client_credentials\",\"consumer_key\":\"{}\",\"consumer_secret\":\"{}\"}}}}'",
        emulator.base_url(),
        app.consumer_key,
        app.consumer_secret
    );
    println!("  curl -s -H \"Authorization: Bearer $LIGHTBRIDGE_TOKEN\" http://{addr}/api/v1/connections");
    println!();
    println!(
        "Or with the CLI (in another terminal, after the export above). See a check fail on a missing permission:"
    );
    let key_file = emulator.private_key_file(&app.consumer_key);
    let exe = std::env::args().next().unwrap_or_else(|| "lightbridge".into());
    println!(
        "  LIGHTBRIDGE_SERVER=http://{addr} {exe} connections test --name Editor --consumer-key {} --username editor@acme.example --private-key-file {}",
        app.consumer_key,
        key_file.display()
    );
    if let Some((system, env)) = publish_target.as_ref() {
        println!();
        println!("Publish a folder to Sales Cloud (Lightning) × Production (after adding a connection and binding it");
        println!("on Systems → Sales Cloud (Lightning) → Publishing; or use the Deployments page):");
        println!(
            "  LIGHTBRIDGE_SERVER=http://{addr} {exe} publish --system {system} --env {env} --name Demo_Player ./my-files"
        );
    }
    println!("Press Ctrl-C to stop.");
    server.run(super::shutdown_signal()).await?;
    emulator.shutdown();
    Ok(())
}

/// Where a browser on this machine reaches an address Lightbridge listens on (an unspecified
/// address such as 0.0.0.0 is reached through loopback).
fn browser_address(bound: std::net::SocketAddr) -> std::net::SocketAddr {
    match bound.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => (std::net::Ipv4Addr::LOCALHOST, bound.port()).into(),
        ip if ip.is_unspecified() => (std::net::Ipv6Addr::LOCALHOST, bound.port()).into(),
        _ => bound,
    }
}

/// The callback URLs the demo's connected app accepts: the address this run serves, and the
/// same port on `localhost` for a browser that was given that name.
fn demo_callbacks(addr: std::net::SocketAddr) -> Vec<String> {
    let mut callbacks = vec![format!("http://{addr}/oauth/callback")];
    if addr.ip().is_loopback() {
        callbacks.push(format!("http://localhost:{}/oauth/callback", addr.port()));
    }
    callbacks
}

/// The demo's master key: read from `master.key` in the data folder, or made there on first
/// run (never do this in production: keep the key apart from the data it protects).
fn demo_master_key(dir: &std::path::Path) -> anyhow::Result<MasterKey> {
    let path = dir.join("master.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(MasterKey::from_base64(&text)?);
    }
    let key = MasterKey::generate()?;
    std::fs::write(&path, key.expose_base64().as_str()).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    eprintln!(
        "demo: generated a master key in {} (the demo keeps it beside its data; a real deployment must not)",
        path.display()
    );
    Ok(key)
}

/// The demo system and its Production environment, for the printed publish command.
async fn demo_publish_target(svc: &Service) -> anyhow::Result<Option<(String, String)>> {
    let Some(account) = svc.store.user_by_email(OWNER).await?.account_id else { return Ok(None) };
    let system = svc.store.systems(&account).await?.into_iter().next();
    let env = svc.store.environments(&account).await?.into_iter().next();
    Ok(system.zip(env).map(|(s, e)| (s.id.to_string(), e.id.to_string())))
}

/// Creates the demo account and owner once, and a fresh API token every run — through the
/// same actions the operator's commands, the API and the Admin Center use.
async fn seed_account(svc: &Service) -> anyhow::Result<vault::ApiToken> {
    let operator = Actor::cli();
    let failed = |e: service::ServiceError| anyhow::anyhow!("cannot seed the demo account: {e}");
    if svc.store.user_by_email(OWNER).await.is_err() {
        let account = accounts::create(svc, &operator, "Demo account").await.map_err(failed)?;
        // The demo shows legacy Connectors (F4) too: on, with one system to bind them to.
        accounts::set_connectors(svc, &operator, account.as_str(), true).await.map_err(failed)?;
        let owner = users::create_user(svc, &operator, Some(account), OWNER, "Demo Owner", Role::Owner)
            .await
            .map_err(failed)?;
        users::set_password(svc, &operator, OWNER, vault::Password::new(OWNER_PASSWORD)).await.map_err(failed)?;
        let as_owner = Actor::new(owner, ActorKind::Cli, None);
        catalog::create_system(svc, &as_owner, "Sales Cloud (Lightning)").await.map_err(failed)?;
    }
    let created = users::create_token_for(svc, &operator, OWNER, "demo").await.map_err(failed)?;
    Ok(created.token)
}
