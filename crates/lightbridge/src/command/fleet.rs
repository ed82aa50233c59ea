//! `lightbridge fleet` (#17): per system × environment, which release each org runs, which
//! orgs drifted or failed, and how long the last release took to reach them all; `scan` looks
//! at every org for changes made in Salesforce now (one query per org).

use anyhow::bail;
use serde_json::Value;

use super::connections::{client, print_json, table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lightbridge's base URL.
    #[arg(long, env = "LIGHTBRIDGE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// API token (`lb_…`); `scan` needs an editor, admin or owner.
    #[arg(long, env = "LIGHTBRIDGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Each org's state and release, per system × environment.
    Show(Show),
    /// Scan every org Lightbridge published to for drift, now.
    Scan {
        /// Print the scan's JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct Show {
    /// Only this system (sys_…).
    #[arg(long)]
    system: Option<String>,
    /// Only this environment (env_…).
    #[arg(long)]
    env: Option<String>,
    /// Only orgs in this state.
    #[arg(long, value_parser = ["current", "rolling", "behind", "drifted", "failed", "never"])]
    state: Option<String>,
    /// Print the fleet's JSON.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print one CSV line per org (system, environment, org, state, release, …).
    #[arg(long)]
    csv: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = client(&args.server, args.token.clone())?;
    match args.command {
        Command::Scan { json } => {
            let report = api.scan_drift().await?;
            if json {
                return print_json(&report);
            }
            let n = |k: &str| report[k].as_u64().unwrap_or_default();
            println!(
                "{} resource(s) in {} org(s) scanned with {} call(s): {} drifted",
                n("resources"),
                n("orgs"),
                n("calls"),
                n("drifted")
            );
            for f in report["failed"].as_array().into_iter().flatten() {
                println!("not scanned: {}: {}", text(&f["org_id"]), text(&f["error"]));
            }
            Ok(())
        }
        Command::Show(show) => {
            let mut query = Vec::new();
            if let Some(s) = &show.system {
                query.push(("system_id", s.as_str()));
            }
            if let Some(e) = &show.env {
                query.push(("environment_id", e.as_str()));
            }
            if let Some(s) = &show.state {
                query.push(("state", s.as_str()));
            }
            let fleet = api.fleet(&query).await?;
            if show.json {
                return print_json(&fleet);
            }
            let Some(slots) = fleet.as_array() else { bail!("the server's answer is not a fleet: {fleet}") };
            if show.csv {
                return write_csv(slots);
            }
            for slot in slots {
                println!("{} × {}", text(&slot["system_name"]), text(&slot["environment_name"]));
                println!("  {}", latest(&slot["latest"], slot["org_count"].as_u64().unwrap_or_default()));
                let rows: Vec<Vec<String>> = slot["orgs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| {
                        vec![
                            text(&o["org_name"]),
                            text(&o["connection_name"]),
                            text(&o["state"]),
                            text(&o["release"]),
                            o["sha256"].as_str().map(|s| s[..12.min(s.len())].to_string()).unwrap_or_default(),
                            detail(o),
                        ]
                    })
                    .collect();
                table(&["ORG", "CONNECTION", "STATE", "RELEASE", "SHA256", "DETAIL"], &rows);
                println!();
            }
            Ok(())
        }
    }
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

/// A cell a spreadsheet would not run as a formula: a leading `'` before `=`, `+`, `-`, `@`,
/// tab or CR (names and who-changed-it come from the orgs).
fn cell(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text }
}

/// Why an org is drifted or failed, in words.
fn detail(o: &Value) -> String {
    if let Some(d) = o["drift"].as_object() {
        let by = d.get("by").and_then(Value::as_str).map(|b| format!(" by {b}")).unwrap_or_default();
        let at =
            d.get("at").and_then(Value::as_i64).map(|t| format!(", {}", domain::format_utc(t))).unwrap_or_default();
        return format!("{}{by}{at}", d.get("what").and_then(Value::as_str).unwrap_or_default());
    }
    text(&o["error"])
}

/// The latest release and how far it got.
fn latest(l: &Value, orgs: u64) -> String {
    if l.is_null() {
        return "no release yet".into();
    }
    let reached = l["reached"].as_u64().unwrap_or_default();
    let took = match l["took_ms"].as_i64() {
        Some(ms) => format!(", reached every org in {:.1} s", ms as f64 / 1000.0),
        None => format!(", {reached} of {orgs} org(s) run it"),
    };
    format!("latest release {} ({}){took}", text(&l["deployment_id"]), text(&l["status"]))
}

fn write_csv(slots: &[Value]) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_writer(std::io::stdout());
    out.write_record([
        "system",
        "environment",
        "org",
        "org_id",
        "connection",
        "state",
        "release",
        "sha256",
        "published_at",
        "detail",
    ])?;
    for slot in slots {
        for o in slot["orgs"].as_array().into_iter().flatten() {
            out.write_record(
                [
                    text(&slot["system_name"]),
                    text(&slot["environment_name"]),
                    text(&o["org_name"]),
                    text(&o["org_id"]),
                    text(&o["connection_name"]),
                    text(&o["state"]),
                    text(&o["release"]),
                    text(&o["sha256"]),
                    o["published_at"].as_i64().map(domain::format_utc).unwrap_or_default(),
                    detail(o),
                ]
                .map(cell),
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
