//! `lightbridge publish`: builds the bundle here (refusing a bad one before any call), uploads
//! it as a deployment to every connection bound to a system × environment, follows it with a
//! live progress bar and per-org outcomes, prints a summary, and exits 1 if any org failed.
//! With `--canary` the release rolls out in waves (#17): the command follows it until it ends,
//! halts, or waits for an approval, and says which. An org whose resource someone changed in
//! Salesforce is held as drifted unless `--overwrite-drift` (#17).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use client::DeploymentUpload;

use super::connections::{client, print_json, table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lightbridge's base URL.
    #[arg(long, env = "LIGHTBRIDGE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// API token (`lb_…`) of an editor, admin or owner.
    #[arg(long, env = "LIGHTBRIDGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The system (sys_…).
    #[arg(long)]
    system: String,
    /// The environment (env_…).
    #[arg(long)]
    env: String,
    /// The static resource's name in each org (letters, digits, underscores).
    #[arg(long)]
    name: String,
    /// Private (default) or Public.
    #[arg(long, default_value = "private")]
    cache_control: String,
    /// Also deploy the system's loader into each org after the resource (its settings must be
    /// set: PUT /api/v1/systems/{id}/loader).
    #[arg(long)]
    with_loader: bool,
    /// Roll out in waves (#17): this many orgs first (a canary), then the rest.
    #[arg(long, value_name = "ORGS", conflicts_with = "canary_percent")]
    canary: Option<u32>,
    /// Roll out in waves: this share of the orgs first (1–100), then the rest.
    #[arg(long, value_name = "PERCENT")]
    canary_percent: Option<u32>,
    /// With a canary: the rest starts `auto` (when the canary passed) or after `approval`
    /// (`lightbridge deployments approve <id>`).
    #[arg(long, value_name = "GATE", default_value = "auto", value_parser = ["auto", "approval"])]
    then: String,
    /// With a canary: the share of a wave's orgs (0–1) that may fail before the rollout halts
    /// (default 0: any failure halts it).
    #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
    max_failure_rate: f64,
    /// Publish over a resource someone changed in an org since Lightbridge published it there
    /// (by default that org is held as drifted and left as it is).
    #[arg(long)]
    overwrite_drift: bool,
    /// Print the finished deployment's JSON instead of progress and a table.
    #[arg(long)]
    json: bool,
    /// A folder, or a .zip file.
    path: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = client(&args.server, args.token.clone())?;
    domain::ResourceName::parse(&args.name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let limits = publish::Limits::default();
    let bundle = if args.path.is_dir() {
        publish::Bundle::from_dir(&args.path, limits)
    } else {
        let bytes = std::fs::read(&args.path).with_context(|| format!("cannot read {}", args.path.display()))?;
        publish::Bundle::from_zip(&bytes, limits)
    }
    .map_err(|e| anyhow::anyhow!("{}: {e}", args.path.display()))?;
    if !args.json {
        eprintln!(
            "bundle: {} files, {:.1} KB, sha256 {}",
            bundle.files().len().max(1),
            bundle.bytes().len() as f64 / 1024.0,
            &bundle.sha256()[..12]
        );
    }
    let first = match (args.canary, args.canary_percent) {
        (Some(n), _) => Some(serde_json::json!({"count": n})),
        (_, Some(p)) => Some(serde_json::json!({"percent": p})),
        (None, None) => None,
    };
    let rollout = first.map(
        |first| serde_json::json!({"waves": [first, {"gate": args.then}], "max_failure_rate": args.max_failure_rate}),
    );
    let created = api
        .start_deployment(DeploymentUpload {
            system_id: args.system.clone(),
            environment_id: args.env.clone(),
            resource_name: args.name.clone(),
            cache_control: args.cache_control.clone(),
            with_loader: args.with_loader,
            rollout,
            overwrite_drift: args.overwrite_drift,
            zip: bundle.bytes().to_vec(),
        })
        .await?;
    let id = created.id.clone();
    let total = u64::from(created.counts.total);
    let bar = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        eprintln!("deployment {id}: {total} org(s)");
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} orgs {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    };
    let mut reported = std::collections::HashSet::new();
    let finished = loop {
        let deployment = api.deployment(&id).await?;
        for t in deployment.targets.iter().flatten() {
            if matches!(t.status.as_str(), "succeeded" | "unchanged" | "failed" | "drifted")
                && reported.insert(t.connection_id.clone())
            {
                bar.inc(1);
                let org = t.account_name.as_deref().unwrap_or_default();
                let line = match t.status.as_str() {
                    "failed" => format!("✗ {org}: {}", t.error.as_deref().unwrap_or_default()),
                    "drifted" => format!("! {org}: {}", t.error.as_deref().unwrap_or_default()),
                    _ => format!(
                        "✓ {org}: {} {}",
                        t.action.as_deref().unwrap_or_default(),
                        t.url.as_deref().unwrap_or_default()
                    ),
                };
                bar.println(line);
            }
        }
        if deployment.finished() {
            break deployment;
        }
        let retrying = deployment.targets.iter().flatten().filter(|t| t.status == "pending" && t.attempts > 0).count();
        bar.set_message(format!("{retrying} retrying"));
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    bar.finish_and_clear();
    if args.json {
        return print_json(&finished);
    }
    let rows: Vec<Vec<String>> = finished
        .targets
        .iter()
        .flatten()
        .map(|t| {
            let outcome =
                if matches!(t.status.as_str(), "failed" | "drifted") { t.error.clone() } else { t.url.clone() };
            vec![
                t.account_name.clone().unwrap_or_default(),
                t.connection_id.clone(),
                t.status.clone(),
                t.attempts.to_string(),
                outcome.unwrap_or_default(),
            ]
        })
        .collect();
    table(&["ORG", "CONNECTION", "OUTCOME", "ATTEMPTS", "URL / REASON"], &rows);
    let c = &finished.counts;
    println!(
        "{}: {} published, {} unchanged, {} failed{}",
        finished.status,
        c.succeeded,
        c.unchanged,
        c.failed,
        if c.held + c.skipped > 0 { format!(", {} not started", c.held + c.skipped) } else { String::new() }
    );
    if c.drifted > 0 {
        println!(
            "{} org(s) held as drifted (changed in the org since Lightbridge published there): \
             `lightbridge deployments overwrite {id}` publishes over the change, `lightbridge deployments skip-drifted {id}` leaves them",
            c.drifted
        );
    }
    if let Some(note) = &finished.note {
        println!("{note}");
    }
    match finished.status.as_str() {
        "failed" => bail!("the deployment failed for {} org(s)", c.failed),
        _ if c.drifted > 0 => {
            bail!("{} org(s) were left as they are (drifted): the release did not reach them", c.drifted)
        }
        "halted" => bail!("the rollout halted: `lightbridge deployments resume {id}` goes on anyway, `abort` stops it"),
        "aborted" => bail!("the deployment was aborted"),
        "waiting" => println!("approve the next wave with `lightbridge deployments approve {id}`"),
        "paused" => println!("resume it with `lightbridge deployments resume {id}`"),
        _ => {}
    }
    Ok(())
}
