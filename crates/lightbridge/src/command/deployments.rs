//! `lightbridge deployments`: a deployment's state, and a person's moves on a rollout in waves
//! (#17) — pause, resume, approve the next wave, abort, and overwrite or skip orgs held as
//! drifted — through a running server's API.

use super::connections::{client, print_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lightbridge's base URL.
    #[arg(long, env = "LIGHTBRIDGE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// API token (`lb_…`) of an editor, admin or owner.
    #[arg(long, env = "LIGHTBRIDGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// A deployment's status, waves and counts (`--json`: every org's outcome).
    Show(One),
    /// Pause: orgs publishing now finish, no other starts.
    Pause(One),
    /// Resume a paused deployment, or a halted rollout (its next wave starts anyway).
    Resume(One),
    /// Start the rollout's next wave now (it waited for approval or for its time).
    Approve(One),
    /// Abort: orgs not yet started are skipped.
    Abort(One),
    /// Publish over the changes made in the orgs held as drifted (all, or `--connection`s).
    Overwrite(Drifted),
    /// Leave the orgs held as drifted as they are (all, or `--connection`s).
    SkipDrifted(Drifted),
}

#[derive(Debug, clap::Args)]
struct Drifted {
    #[command(flatten)]
    one: One,
    /// Only this connection's target (con_…); repeat for more.
    #[arg(long = "connection", value_name = "ID")]
    connections: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct One {
    /// The deployment (dep_…).
    id: String,
    /// Print the deployment's JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = client(&args.server, args.token.clone())?;
    let (one, action) = match args.command {
        Command::Overwrite(d) => return resolve(&api, d, "overwrite").await,
        Command::SkipDrifted(d) => return resolve(&api, d, "skip").await,
        Command::Show(one) => (one, None),
        Command::Pause(one) => (one, Some("pause")),
        Command::Resume(one) => (one, Some("resume")),
        Command::Approve(one) => (one, Some("approve")),
        Command::Abort(one) => (one, Some("abort")),
    };
    let d = match action {
        None => api.deployment(&one.id).await?,
        Some(action) => api.control_deployment(&one.id, action).await?,
    };
    report(&d, one.json)
}

async fn resolve(api: &client::Client, d: Drifted, how: &str) -> anyhow::Result<()> {
    let only = (!d.connections.is_empty()).then_some(d.connections.as_slice());
    let deployment = api.resolve_drift(&d.one.id, how, only).await?;
    report(&deployment, d.one.json)
}

fn report(d: &client::Deployment, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&d);
    }
    let c = &d.counts;
    println!("{} {} — {}", d.id, d.resource_name, d.status);
    if let Some(waves) = d.rollout.as_ref().and_then(|r| r.get("waves")).and_then(|w| w.as_array()) {
        println!("wave {} of {} started", d.wave + 1, waves.len());
    }
    println!(
        "{} org(s): {} published, {} unchanged, {} failed, {} running or pending, {} not started, {} skipped, {} drifted",
        c.total,
        c.succeeded,
        c.unchanged,
        c.failed,
        c.running + c.pending,
        c.held,
        c.skipped,
        c.drifted
    );
    for t in d.targets.iter().flatten().filter(|t| t.status == "drifted") {
        println!(
            "drifted: {} ({}): {}",
            t.account_name.as_deref().unwrap_or_default(),
            t.connection_id,
            t.error.as_deref().unwrap_or_default()
        );
    }
    if let Some(note) = &d.note {
        println!("{note}");
    }
    Ok(())
}
