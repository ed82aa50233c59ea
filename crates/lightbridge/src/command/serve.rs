//! `lightbridge serve`: the HTTP server (API under /api/v1, /healthz, /readyz).

use super::common::ConfigArgs;

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
    let started = server::app::start(&config).await?;
    let addr = started.local_addr()?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "Lightbridge is serving");
    println!("Lightbridge is serving on http://{addr} (API: http://{addr}/api/v1)");
    started.run(super::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
