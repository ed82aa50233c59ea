//! `lightbridge demo`: everything a newcomer needs to try Lightbridge offline.
//!
//! Today that is the Salesforce org emulator with the demo seed, so the OAuth sign-in,
//! REST and Tooling calls and static-resource serving can be tried by hand or with any
//! Salesforce client. The Admin Center and publishing join this command as they land.

use std::path::PathBuf;

use anyhow::Context;
use emulator::{Config, Emulator, Seed};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Emulator HTTP port on 127.0.0.1.
    #[arg(long, default_value_t = 8181)]
    emulator_port: u16,
    /// Emulator HTTPS port on 127.0.0.1.
    #[arg(long, default_value_t = 8443)]
    emulator_https_port: u16,
    /// Folder for demo state (CA file, generated keys).
    #[arg(long, default_value = ".lightbridge/demo")]
    state_dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let seed = Seed::demo();
    let emulator = Emulator::start_with(Config {
        seed: seed.clone(),
        http_port: args.emulator_port,
        https_port: Some(args.emulator_https_port),
        state_dir: Some(args.state_dir.clone()),
    })
    .await
    .context("cannot start the Salesforce org emulator for the demo")?;
    super::emulator::print_summary(&emulator, &seed, false);
    let app = &seed.apps[0];
    println!();
    println!("Try the OAuth sign-in by hand: open this in a browser and sign in as admin@acme.example / emulator");
    println!(
        "  {}/services/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&state=demo&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        emulator.login_url(),
        app.consumer_key,
        app.callback_urls[0]
    );
    println!("  (the redirect to {} fails until the Admin Center lands; the code is in its URL)", app.callback_urls[0]);
    super::shutdown_signal().await;
    emulator.shutdown();
    Ok(())
}
