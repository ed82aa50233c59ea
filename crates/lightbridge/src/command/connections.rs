//! `lightbridge connections …`: the connections API from the command line (B3). Talks to a
//! running server with an API token; human tables by default, `--json` for scripts.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use client::{ApiError, Client, ConnectionInput, ListOptions};
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lightbridge's base URL.
    #[arg(long, global = true, env = "LIGHTBRIDGE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// API token (`lb_…`); from `lightbridge tokens create`.
    #[arg(long, global = true, env = "LIGHTBRIDGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List connections (F6), optionally searched by account name or email (F7).
    List {
        #[arg(long)]
        search: Option<String>,
        /// created_at, account_name or last_modified_at.
        #[arg(long, default_value = "created_at")]
        sort: String,
        /// Newest / last first.
        #[arg(long)]
        desc: bool,
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 50)]
        per_page: u32,
    },
    /// Show one connection.
    Show { id: String },
    /// Run every check step for these settings without saving (F11). Exits 1 if a step fails.
    Test(Settings),
    /// Check, then save the connection if every step passed.
    Create(Settings),
    /// Rename a new connection (records who and when).
    Rename {
        id: String,
        #[arg(long)]
        name: String,
    },
    /// Check a stored connection now: one authenticated call (renewing its session if needed);
    /// prints and records Logged in / Logged out / Not available. Exits 1 unless Logged in.
    Check { id: String },
    /// Revoke the connection's tokens at Salesforce and delete it.
    Delete {
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, clap::Args)]
struct Settings {
    /// A unique name for the connection.
    #[arg(long)]
    name: String,
    /// production or sandbox.
    #[arg(long, default_value = "production")]
    org_type: String,
    /// login, test, or your My Domain URL (client credentials need the My Domain).
    #[arg(long, default_value = "login")]
    login_host: String,
    /// The connected app's consumer key.
    #[arg(long)]
    consumer_key: String,
    /// JWT bearer: the Salesforce username to act as.
    #[arg(long, conflicts_with = "client_credentials", requires = "private_key_file")]
    username: Option<String>,
    /// JWT bearer: the PEM private key whose certificate is on the connected app.
    #[arg(long, conflicts_with = "client_credentials")]
    private_key_file: Option<PathBuf>,
    /// Client credentials flow; the secret comes from LIGHTBRIDGE_CONSUMER_SECRET or --consumer-secret-file.
    #[arg(long)]
    client_credentials: bool,
    /// File holding the consumer secret (for client credentials).
    #[arg(long)]
    consumer_secret_file: Option<PathBuf>,
}

impl Settings {
    fn input(&self) -> anyhow::Result<ConnectionInput> {
        if self.client_credentials {
            let secret = match (&self.consumer_secret_file, std::env::var("LIGHTBRIDGE_CONSUMER_SECRET")) {
                (Some(path), _) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .trim()
                    .to_string(),
                (None, Ok(secret)) => secret,
                (None, Err(_)) => bail!(
                    "client credentials need the consumer secret: set LIGHTBRIDGE_CONSUMER_SECRET or pass --consumer-secret-file"
                ),
            };
            return Ok(ConnectionInput::client_credentials(
                &self.name,
                &self.org_type,
                &self.login_host,
                &self.consumer_key,
                &secret,
            ));
        }
        let (Some(username), Some(path)) = (&self.username, &self.private_key_file) else {
            bail!("choose an auth method: --username with --private-key-file (JWT bearer), or --client-credentials");
        };
        let key =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the private key {}", path.display()))?;
        Ok(ConnectionInput::jwt(&self.name, &self.org_type, &self.login_host, &self.consumer_key, username, &key))
    }
}

/// The client for `--server` with `--token` (or `LIGHTBRIDGE_TOKEN`).
pub(super) fn client(server: &str, token: Option<String>) -> anyhow::Result<Client> {
    let token = token.context(
        "an API token is needed: set LIGHTBRIDGE_TOKEN or pass --token (lightbridge tokens create makes one)",
    )?;
    Ok(Client::new(server, token))
}

/// Prints a typed answer as the JSON the server sent (the client's types carry every field).
pub(super) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

pub(super) fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| rows.iter().map(|r| r[i].chars().count()).chain([h.len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<String>| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    println!("{}", line(headers.iter().map(|h| h.to_string()).collect()));
    for r in rows {
        println!("{}", line(r.clone()));
    }
}

fn print_report(steps: &[client::Step]) {
    for step in steps {
        let mark = match step.outcome.as_str() {
            "passed" => "ok  ",
            "failed" => "FAIL",
            _ => "skip",
        };
        println!("{mark}  {:<34} {}", step.title, step.detail);
        if let Some(fix) = &step.fix {
            println!("      fix: {fix}");
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = client(&args.server, args.token.clone())?;
    match args.command {
        Command::List { search, sort, desc, page, per_page } => {
            let options = ListOptions {
                search,
                sort: Some(sort),
                order: desc.then(|| "desc".to_string()),
                page: Some(page),
                per_page: Some(per_page),
            };
            let found = api.connections(&options).await?;
            if args.json {
                return print_json(&found);
            }
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            let rows: Vec<Vec<String>> = found
                .items
                .iter()
                .map(|c| {
                    let id = if c.legacy { format!("{} [Legacy]", c.id) } else { c.id.clone() };
                    vec![
                        id,
                        text(&c.name),
                        c.environment.clone(),
                        text(&c.account_name),
                        text(&c.created_by),
                        c.auth_method.clone(),
                        c.health.clone(),
                    ]
                })
                .collect();
            table(&["CONNECTION ID", "NAME", "ENVIRONMENT", "ACCOUNT NAME", "CREATED BY", "AUTH", "HEALTH"], &rows);
            println!("{} of {} (page {})", rows.len(), found.total, found.page);
        }
        Command::Show { id } => {
            let connection = api.connection(&id).await?;
            if args.json {
                return print_json(&connection);
            }
            if let Value::Object(map) = serde_json::to_value(&connection)? {
                for (k, v) in map {
                    println!("{k:<18} {}", cell(&v));
                }
            }
        }
        Command::Test(settings) => {
            let report = api.test_connection(&settings.input()?).await?;
            if args.json {
                print_json(&report)?;
            } else {
                print_report(&report.steps);
            }
            if !report.passed {
                bail!("the connection check failed");
            }
        }
        Command::Create(settings) => {
            let created = match api.create_connection(&settings.input()?).await {
                Ok(created) => created,
                Err(client::Error::Api(e)) => match *e {
                    ApiError { check: Some(report), .. } => {
                        if args.json {
                            print_json(&report)?;
                        } else {
                            print_report(&report.steps);
                        }
                        bail!("not saved: the connection check failed");
                    }
                    other => return Err(client::Error::Api(Box::new(other)).into()),
                },
                Err(e) => return Err(e.into()),
            };
            if args.json {
                return print_json(&created);
            }
            println!(
                "created {} ({}, {})",
                created.id,
                created.account_name.as_deref().unwrap_or_default(),
                created.environment
            );
        }
        Command::Rename { id, name } => {
            let renamed = api.rename_connection(&id, &name).await?;
            if args.json {
                return print_json(&renamed);
            }
            println!("renamed {} to {}", renamed.id, renamed.name.as_deref().unwrap_or_default());
        }
        Command::Check { id } => {
            let checked = api.check_connection(&id).await?;
            if args.json {
                print_json(&checked)?;
            } else {
                match &checked.health_detail {
                    Some(detail) => println!("{}: {} ({detail})", checked.id, checked.health),
                    None => println!("{}: {}", checked.id, checked.health),
                }
                if let (Some(reason), Some(fix)) = (&checked.health_reason, &checked.health_fix) {
                    println!("reason: {reason}\nfix: {fix}");
                }
            }
            if checked.health != "Logged in" {
                bail!("the connection is not logged in");
            }
        }
        Command::Delete { id, yes } => {
            if !yes {
                if !std::io::stdin().is_terminal() {
                    bail!("refusing to delete without confirmation: pass --yes");
                }
                print!("Delete {id}? Its tokens will be revoked at Salesforce. [y/N] ");
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    bail!("not deleted");
                }
            }
            let deleted = api.delete_connection(&id).await?;
            if args.json {
                return print_json(&deleted);
            }
            println!("{}", deleted.message);
        }
    }
    Ok(())
}
