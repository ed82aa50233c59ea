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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIGHTBRIDGE_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
