//! `lightbridge connections …`: the connections API from the command line (B3). Talks to a
//! running server with an API token; human tables by default, `--json` for scripts.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

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
    fn body(&self) -> anyhow::Result<Value> {
        let auth = if self.client_credentials {
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
            json!({"method": "client_credentials", "consumer_key": self.consumer_key, "consumer_secret": secret})
        } else {
            let (Some(username), Some(path)) = (&self.username, &self.private_key_file) else {
                bail!(
                    "choose an auth method: --username with --private-key-file (JWT bearer), or --client-credentials"
                );
            };
            let key = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the private key {}", path.display()))?;
            json!({"method": "jwt", "consumer_key": self.consumer_key, "username": username, "private_key": key})
        };
        Ok(json!({"name": self.name, "org_type": self.org_type, "login_host": self.login_host, "auth": auth}))
    }
}

pub(super) struct Api {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) token: String,
}

impl Api {
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}/api/v1{path}", self.base.trim_end_matches('/'));
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request.send().await.with_context(|| format!("cannot reach Lightbridge at {}", self.base))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }
}

/// Turns the API's error shape into a message (with every field error).
pub(super) fn api_error(status: u16, body: &Value) -> anyhow::Error {
    let error = &body["error"];
    let mut message = format!("{} ({status})", error["message"].as_str().unwrap_or("request failed"));
    if let Some(fields) = error["fields"].as_array() {
        for f in fields {
            message.push_str(&format!(
                "\n  {}: {}",
                f["field"].as_str().unwrap_or("?"),
                f["message"].as_str().unwrap_or("")
            ));
        }
    }
    if let Some(id) = error["request_id"].as_str() {
        message.push_str(&format!("\n  (request id {id})"));
    }
    anyhow::anyhow!(message)
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

fn print_report(report: &Value) {
    for step in report["steps"].as_array().into_iter().flatten() {
        let mark = match step["outcome"].as_str() {
            Some("passed") => "ok  ",
            Some("failed") => "FAIL",
            _ => "skip",
        };
        println!("{mark}  {:<34} {}", cell(&step["title"]), cell(&step["detail"]));
        if let Some(fix) = step["fix"].as_str() {
            println!("      fix: {fix}");
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let token = args.token.clone().context(
        "an API token is needed: set LIGHTBRIDGE_TOKEN or pass --token (lightbridge tokens create makes one)",
    )?;
    let api = Api { http: reqwest::Client::new(), base: args.server.clone(), token };
    match args.command {
        Command::List { search, sort, desc, page, per_page } => {
            let mut query = vec![("sort", sort), ("page", page.to_string()), ("per_page", per_page.to_string())];
            if desc {
                query.push(("order", "desc".into()));
            }
            if let Some(s) = search {
                query.push(("search", s));
            }
            let qs: String = query.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
            let (status, body) = api.send(reqwest::Method::GET, &format!("/connections?{qs}"), None).await?;
            if status != 200 {
                return Err(api_error(status, &body));
            }
            if args.json {
                println!("{body}");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let id = if c["legacy"] == true { format!("{} [Legacy]", cell(&c["id"])) } else { cell(&c["id"]) };
                    vec![
                        id,
                        cell(&c["name"]),
                        cell(&c["environment"]),
                        cell(&c["account_name"]),
                        cell(&c["created_by"]),
                        cell(&c["auth_method"]),
                        cell(&c["health"]),
                    ]
                })
                .collect();
            table(&["CONNECTION ID", "NAME", "ENVIRONMENT", "ACCOUNT NAME", "CREATED BY", "AUTH", "HEALTH"], &rows);
            println!("{} of {} (page {})", rows.len(), body["total"], body["page"]);
        }
        Command::Show { id } => {
            let (status, body) =
                api.send(reqwest::Method::GET, &format!("/connections/{}", urlencode(&id)), None).await?;
            if status != 200 {
                return Err(api_error(status, &body));
            }
            if args.json {
                println!("{body}");
            } else if let Some(map) = body.as_object() {
                for (k, v) in map {
                    println!("{k:<18} {}", cell(v));
                }
            }
        }
        Command::Test(settings) => {
            let (status, body) = api.send(reqwest::Method::POST, "/connections/test", Some(&settings.body()?)).await?;
            if status != 200 {
                return Err(api_error(status, &body));
            }
            if args.json {
                println!("{body}");
            } else {
                print_report(&body);
            }
            if body["passed"] != true {
                bail!("the connection check failed");
            }
        }
        Command::Create(settings) => {
            let (status, body) = api.send(reqwest::Method::POST, "/connections", Some(&settings.body()?)).await?;
            if status == 422 && body["check"].is_object() {
                if args.json {
                    println!("{body}");
                } else {
                    print_report(&body["check"]);
                }
                bail!("not saved: the connection check failed");
            }
            if status != 201 {
                return Err(api_error(status, &body));
            }
            if args.json {
                println!("{body}");
            } else {
                println!(
                    "created {} ({}, {})",
                    cell(&body["id"]),
                    cell(&body["account_name"]),
                    cell(&body["environment"])
                );
            }
        }
        Command::Rename { id, name } => {
            let path = format!("/connections/{}", urlencode(&id));
            let (status, body) = api.send(reqwest::Method::PATCH, &path, Some(&json!({"name": name}))).await?;
            if status != 200 {
                return Err(api_error(status, &body));
            }
            if args.json {
                println!("{body}");
            } else {
                println!("renamed {} to {}", cell(&body["id"]), cell(&body["name"]));
            }
        }
        Command::Check { id } => {
            let path = format!("/connections/{}/check", urlencode(&id));
            let (status, body) = api.send(reqwest::Method::POST, &path, None).await?;
            if status != 200 {
                return Err(api_error(status, &body));
            }
            if args.json {
                println!("{body}");
            } else {
                match body["health_detail"].as_str() {
                    Some(detail) => println!("{}: {} ({detail})", cell(&body["id"]), cell(&body["health"])),
                    None => println!("{}: {}", cell(&body["id"]), cell(&body["health"])),
                }
            }
            if body["health"] != "Logged in" {
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
            let (status, body) =
                api.send(reqwest::Method::DELETE, &format!("/connections/{}", urlencode(&id)), None).await?;
            if status != 200 {
                return Err(api_error(status, &body));
            }
            if args.json {
                println!("{body}");
            } else {
                println!("{}", cell(&body["message"]));
            }
        }
    }
    Ok(())
}

pub(super) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
