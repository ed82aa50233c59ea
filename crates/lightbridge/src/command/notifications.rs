//! `lightbridge notifications` (#18): which events you receive by e-mail (one mail per event,
//! or a daily digest), and the mails sent to you. Every user, for themselves.

use client::Method;
use serde_json::{Value, json};

use super::connections::{client, print_json, table};
use super::webhooks::text;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lightbridge's base URL.
    #[arg(long, env = "LIGHTBRIDGE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Your API token (`lb_…`).
    #[arg(long, env = "LIGHTBRIDGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// What you receive by e-mail, and whether this server sends e-mail.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Chooses what you receive: the event types (repeat `--event`; `--none` for no mail), one
    /// mail per event or `--digest` (daily, at `--hour` UTC).
    Set {
        /// An event type to receive by e-mail (see `lightbridge webhooks events --types`).
        #[arg(long = "event", required_unless_present = "none")]
        events: Vec<String>,
        /// No notification e-mail at all.
        #[arg(long, conflicts_with = "events")]
        none: bool,
        /// A daily digest instead of one mail per event.
        #[arg(long)]
        digest: bool,
        /// The digest's hour, UTC (0–23).
        #[arg(long)]
        hour: Option<i64>,
    },
    /// The mails sent (or to be sent) to you, newest first.
    Mails {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

fn describe(p: &Value) {
    let events: Vec<String> = p["events"].as_array().into_iter().flatten().map(text).collect();
    if !p["email_enabled"].as_bool().unwrap_or(false) {
        println!("This server does not send e-mail yet (its operator sets up [mail]); your choice is kept.");
    }
    println!("To: {}", text(&p["to"]));
    if events.is_empty() {
        println!("Events: none");
    } else {
        println!("Events: {}", events.join(", "));
    }
    if p["digest"].as_bool().unwrap_or(false) {
        println!("How: a daily digest at {:02}:00 UTC", p["digest_hour"].as_u64().unwrap_or(8));
    } else {
        println!("How: one mail per event");
    }
    if !p["saved"].as_bool().unwrap_or(false) {
        println!("(Never chosen: the defaults of your role apply.)");
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = client(&args.server, args.token.clone())?;
    match args.command {
        Command::Show { json } => {
            let p = api.json(Method::GET, "/me/notifications", None).await?;
            if json {
                return print_json(&p);
            }
            describe(&p);
        }
        Command::Set { events, none, digest, hour } => {
            let events = if none { Vec::new() } else { events };
            let body = json!({"events": events, "digest": digest, "digest_hour": hour});
            let p = api.json(Method::PUT, "/me/notifications", Some(&body)).await?;
            println!("Saved.");
            describe(&p);
        }
        Command::Mails { limit, json } => {
            let list = api.json(Method::GET, &format!("/me/mails?limit={limit}"), None).await?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    vec![
                        text(&m["event_type"]),
                        format!(
                            "{}{}",
                            text(&m["status"]),
                            if m["digest"].as_bool() == Some(true) { " (digest)" } else { "" }
                        ),
                        m["sent_at"].as_i64().or(m["next_at"].as_i64()).map(domain::format_utc).unwrap_or_default(),
                        text(&m["last_error"]),
                    ]
                })
                .collect();
            table(&["EVENT", "STATUS", "WHEN", "MAIL SERVER'S ANSWER"], &rows);
        }
    }
    Ok(())
}
