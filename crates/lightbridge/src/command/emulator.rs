//! `lightbridge emulator`: the Salesforce org emulator on its own.

use std::path::PathBuf;

use anyhow::Context;
use emulator::{Config, Emulator, Seed};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plain HTTP port on 127.0.0.1 (0 picks a free port).
    #[arg(long, default_value_t = 8181, env = "LIGHTBRIDGE_EMULATOR_PORT")]
    port: u16,
    /// HTTPS port on 127.0.0.1 (0 picks a free port). The CA file to trust is printed at start.
    #[arg(long, default_value_t = 8443, env = "LIGHTBRIDGE_EMULATOR_HTTPS_PORT")]
    https_port: u16,
    /// Do not serve HTTPS.
    #[arg(long)]
    no_https: bool,
    /// Seed file (TOML or JSON) with orgs, users and apps; the built-in demo seed when absent.
    #[arg(long, env = "LIGHTBRIDGE_EMULATOR_SEED")]
    seed: Option<PathBuf>,
    /// Folder for the CA certificate and generated JWT keys (default: a temporary folder).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Print the start-up summary as JSON on one line (for scripts).
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let seed = match &args.seed {
        Some(path) => Seed::from_file(path)?,
        None => Seed::demo(),
    };
    let emulator = Emulator::start_with(Config {
        seed: seed.clone(),
        http_port: args.port,
        https_port: (!args.no_https).then_some(args.https_port),
        state_dir: args.state_dir.clone(),
    })
    .await
    .context("cannot start the emulator")?;
    print_summary(&emulator, &seed, args.json);
    if !args.json {
        println!("Press Ctrl-C to stop.");
    }
    super::shutdown_signal().await;
    emulator.shutdown();
    Ok(())
}

pub fn print_summary(emulator: &Emulator, seed: &Seed, json: bool) {
    let keys: Vec<_> = seed
        .apps
        .iter()
        .filter(|a| a.generate_certificate)
        .map(|a| (a.consumer_key.clone(), emulator.private_key_file(&a.consumer_key)))
        .collect();
    if json {
        let summary = serde_json::json!({
            "instance_url": emulator.base_url(),
            "https_url": emulator.https_url(),
            "login_url": emulator.login_url(),
            "test_login_url": emulator.test_login_url(),
            "ca_file": emulator.ca_file(),
            "admin_url": format!("{}/__emulator", emulator.base_url()),
            "jwt_private_keys": keys.iter().map(|(k, p)| serde_json::json!({"consumer_key": k, "file": p})).collect::<Vec<_>>(),
        });
        println!("{summary}");
        return;
    }
    println!("Salesforce org emulator is running.");
    println!("  instance (My Domain) host  {}", emulator.base_url());
    if let Some(https) = emulator.https_url() {
        println!("  over HTTPS                 {https}   (trust {})", emulator.ca_file().display());
    }
    println!("  production login host      {}", emulator.login_url());
    println!("  sandbox login host         {}", emulator.test_login_url());
    println!("  admin API                  {}/__emulator", emulator.base_url());
    for org in &seed.orgs {
        let kind = if org.sandbox { "sandbox" } else { "production" };
        println!("  org  {} ({kind})", org.name);
        for user in &org.users {
            let mut missing = Vec::new();
            if !user.api_enabled {
                missing.push("no API Enabled");
            }
            if !user.customize_application {
                missing.push("no Customize Application");
            }
            let note = if missing.is_empty() { String::new() } else { format!("  [{}]", missing.join(", ")) };
            println!("       {}  password: {}{note}", user.username, user.password);
        }
    }
    for app in &seed.apps {
        println!("  app  {}  consumer key {}", app.name, app.consumer_key);
    }
    for (key, path) in &keys {
        println!("  JWT private key for {key}: {}", path.display());
    }
}
