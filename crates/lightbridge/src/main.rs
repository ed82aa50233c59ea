//! The `lightbridge` command: one file per subcommand under `command/`.

mod command;

use clap::{Parser, Subcommand};

/// Lightbridge publishes self-hosted web files into Salesforce orgs as static resources.
#[derive(Debug, Parser)]
#[command(name = "lightbridge", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local Salesforce org emulator (OAuth, REST, Tooling, static resources).
    Emulator(command::emulator::Args),
    /// Start everything a newcomer needs to try Lightbridge offline, seeded.
    Demo(command::demo::Args),
    /// Run the HTTP server (JSON API under /api/v1).
    Serve(command::serve::Args),
    /// Apply database migrations and exit.
    Migrate(command::admin::MigrateArgs),
    /// Print the effective configuration, secrets redacted.
    PrintConfig(command::admin::PrintConfigArgs),
    /// Master keys.
    #[command(subcommand)]
    Keys(command::admin::KeysCommand),
    /// Accounts (tenants).
    #[command(subcommand)]
    Accounts(command::admin::AccountsCommand),
    /// Users of the Admin Center and API.
    #[command(subcommand)]
    Users(command::admin::UsersCommand),
    /// API tokens for automation.
    #[command(subcommand)]
    Tokens(command::admin::TokensCommand),
    /// Salesforce connections, through a running server's API.
    Connections(command::connections::Args),
    /// Publish a folder or ZIP to every org bound to a system and environment (live progress).
    Publish(command::publish::Args),
    /// A deployment's state; pause, resume, approve or abort a rollout in waves; overwrite or
    /// skip orgs held as drifted.
    Deployments(command::deployments::Args),
    /// Each org's release per system × environment, drifted and failed orgs; a drift scan.
    Fleet(command::fleet::Args),
    /// Webhook endpoints: add, test, rotate a secret; the delivery log, redelivery; events.
    Webhooks(command::webhooks::Args),
    /// Which events you receive by e-mail (one mail each or a daily digest); your mails.
    Notifications(command::notifications::Args),
}

fn main() -> std::process::ExitCode {
    server::limit_malloc_arenas();
    let cli = Cli::parse();
    let filter = || tracing_subscriber::EnvFilter::try_from_env("LIGHTBRIDGE_LOG").unwrap_or_else(|_| "info".into());
    // LIGHTBRIDGE_LOG_FORMAT=json: one JSON object per line, for log collectors.
    if std::env::var("LIGHTBRIDGE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt().json().with_env_filter(filter()).with_writer(std::io::stderr).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Emulator(args) => command::emulator::run(args).await,
            Command::Demo(args) => command::demo::run(args).await,
            Command::Serve(args) => command::serve::run(args).await,
            Command::Migrate(args) => command::admin::migrate(args).await,
            Command::PrintConfig(args) => command::admin::print_config(args),
            Command::Keys(c) => command::admin::keys(c).await,
            Command::Accounts(c) => command::admin::accounts(c).await,
            Command::Users(c) => command::admin::users(c).await,
            Command::Tokens(c) => command::admin::tokens(c).await,
            Command::Connections(args) => command::connections::run(args).await,
            Command::Publish(args) => command::publish::run(args).await,
            Command::Deployments(args) => command::deployments::run(args).await,
            Command::Fleet(args) => command::fleet::run(args).await,
            Command::Webhooks(args) => command::webhooks::run(args).await,
            Command::Notifications(args) => command::notifications::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
