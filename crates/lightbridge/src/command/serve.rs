//! `lightbridge serve`: the HTTP server (API under /api/v1, /healthz, /readyz).

use anyhow::Context;
use server::Server;

use super::common::{ConfigArgs, app_state, open_store};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long)]
    listen: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load(args.listen.clone())?;
    let store = open_store(&config).await?;
    let state = app_state(&config, store)?;
    let health = server::spawn_health_checks(&state, config.health_check_interval);
    let worker = server::spawn_worker(&state, config.publish);
    let server =
        Server::bind(state, config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "Lightbridge is serving");
    println!("Lightbridge is serving on http://{addr} (API: http://{addr}/api/v1)");
    server.run(super::shutdown_signal()).await?;
    if let Some(task) = health {
        task.abort();
    }
    // Targets in flight keep their lease; whoever starts next picks them up after it.
    worker.abort();
    tracing::info!("stopped");
    Ok(())
}
