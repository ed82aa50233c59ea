//! `lightbridge webhooks` (#18): the account's webhook endpoints, a test delivery, the delivery
//! log, redelivery, secret rotation and the latest events. Admins and owners.

use anyhow::{Context, bail};
use client::Method;
use serde_json::{Value, json};

use super::connections::{client, print_json, table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lightbridge's base URL.
    #[arg(long, env = "LIGHTBRIDGE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// API token (`lb_…`) of an admin or owner.
    #[arg(long, env = "LIGHTBRIDGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The account's endpoints.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Adds an endpoint; prints its signing secret, once.
    Add {
        /// Where deliveries are POSTed (`https://…`, a public address).
        #[arg(long)]
        url: String,
        /// An event type to receive (repeat for several; none: every type). See `events --types`.
        #[arg(long = "event")]
        events: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Removes an endpoint and its delivery log.
    Remove { id: String },
    /// Turns an endpoint on (again: what waited is sent).
    Enable { id: String },
    /// Turns an endpoint off.
    Disable { id: String },
    /// A new signing secret (printed once); the previous one signs too for 24 hours.
    RotateSecret { id: String },
    /// Sends a `webhook.test` event to the endpoint and waits for its first attempt.
    Test { id: String },
    /// The endpoint's deliveries, newest first.
    Deliveries {
        id: String,
        #[arg(long, value_parser = ["pending", "delivered", "failed"])]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Sends one delivery again (`--delivery dlv_…`), or every failed one of the endpoint.
    Redeliver {
        id: String,
        #[arg(long)]
        delivery: Option<String>,
    },
    /// The account's latest events, or (`--types`) every event type.
    Events {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        types: bool,
        #[arg(long)]
        json: bool,
    },
}

/// An endpoint id, checked before it becomes part of a path.
fn webhook(id: &str) -> anyhow::Result<String> {
    Ok(domain::WebhookId::parse(id).with_context(|| format!("{id:?} is not a webhook id (wh_…)"))?.to_string())
}

/// A JSON value as a table cell: text as it is, null empty, anything else as JSON.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn when(v: &Value) -> String {
    v.as_i64().map(domain::format_utc).unwrap_or_default()
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let api = client(&args.server, args.token.clone())?;
    match args.command {
        Command::List { json } => {
            let list = api.json(Method::GET, "/webhooks", None).await?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|w| {
                    let events: Vec<String> = w["events"].as_array().into_iter().flatten().map(text).collect();
                    vec![
                        text(&w["id"]),
                        text(&w["url"]),
                        if events.is_empty() { "every event".into() } else { events.join(", ") },
                        match (w["enabled"].as_bool(), w["failing_since"].as_i64()) {
                            (Some(false), _) => format!("off {}", text(&w["disabled_reason"])).trim().to_string(),
                            (_, Some(since)) => format!("failing since {}", domain::format_utc(since)),
                            _ => "on".into(),
                        },
                    ]
                })
                .collect();
            table(&["ID", "URL", "EVENTS", "STATE"], &rows);
        }
        Command::Add { url, events, description } => {
            let body = json!({"url": url, "events": events, "description": description});
            let created = api.json(Method::POST, "/webhooks", Some(&body)).await?;
            println!("added {} → {}", text(&created["webhook"]["id"]), text(&created["webhook"]["url"]));
            println!("signing secret (shown once; give it to the receiver): {}", text(&created["secret"]));
        }
        Command::Remove { id } => {
            api.json(Method::DELETE, &format!("/webhooks/{}", webhook(&id)?), None).await?;
            println!("removed {id}");
        }
        Command::Enable { id } => {
            let w = api
                .json(Method::PATCH, &format!("/webhooks/{}", webhook(&id)?), Some(&json!({"enabled": true})))
                .await?;
            println!("{} is on", text(&w["id"]));
        }
        Command::Disable { id } => {
            let w = api
                .json(Method::PATCH, &format!("/webhooks/{}", webhook(&id)?), Some(&json!({"enabled": false})))
                .await?;
            println!("{} is off", text(&w["id"]));
        }
        Command::RotateSecret { id } => {
            let r = api.json(Method::POST, &format!("/webhooks/{}/rotate-secret", webhook(&id)?), None).await?;
            println!("new signing secret (shown once): {}", text(&r["secret"]));
            println!("the previous secret signs too until {}", when(&r["previous_valid_until"]));
        }
        Command::Test { id } => {
            let sent = api.json(Method::POST, &format!("/webhooks/{}/test", webhook(&id)?), None).await?;
            let delivery = text(&sent["delivery_id"]);
            domain::DeliveryId::parse(&delivery).context("the server's answer has no delivery id")?;
            let started = std::time::Instant::now();
            loop {
                let d = api.json(Method::GET, &format!("/deliveries/{delivery}"), None).await?;
                if let Some(a) = d["attempts"].as_array().and_then(|a| a.last()) {
                    let status = a["status"].as_u64().map(|s| s.to_string()).unwrap_or_else(|| "no answer".into());
                    println!(
                        "{delivery}: {} — {status} in {} ms: {}",
                        text(&d["delivery"]["status"]),
                        text(&a["latency_ms"]),
                        text(&a["response"])
                    );
                    if d["delivery"]["status"] != "delivered" {
                        bail!(
                            "the endpoint did not accept the test event (it is retried; see `webhooks deliveries {id}`)"
                        );
                    }
                    break;
                }
                if started.elapsed() > std::time::Duration::from_secs(30) {
                    bail!("{delivery} was not attempted within 30 s: is the server's notifier running?");
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        Command::Deliveries { id, status, limit, json } => {
            let mut path = format!("/webhooks/{}/deliveries?limit={limit}", webhook(&id)?);
            if let Some(s) = &status {
                path.push_str(&format!("&status={s}"));
            }
            let list = api.json(Method::GET, &path, None).await?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    vec![
                        text(&d["id"]),
                        text(&d["event_type"]),
                        text(&d["status"]),
                        text(&d["attempts"]),
                        d["last_status"].as_u64().map(|s| s.to_string()).unwrap_or_default(),
                        d["last_latency_ms"].as_i64().map(|ms| format!("{ms} ms")).unwrap_or_default(),
                        when(&d["created_at"]),
                        text(&d["last_response"]).chars().take(60).collect(),
                    ]
                })
                .collect();
            table(&["DELIVERY", "EVENT", "STATUS", "ATTEMPTS", "LAST", "LATENCY", "CREATED", "ANSWER"], &rows);
        }
        Command::Redeliver { id, delivery } => {
            let path = match &delivery {
                Some(d) => {
                    let d =
                        domain::DeliveryId::parse(d).with_context(|| format!("{d:?} is not a delivery id (dlv_…)"))?;
                    format!("/deliveries/{d}/redeliver")
                }
                None => format!("/webhooks/{}/redeliver", webhook(&id)?),
            };
            let r = api.json(Method::POST, &path, None).await?;
            println!("{} delivery(ies) queued again", text(&r["redelivered"]));
        }
        Command::Events { limit, types, json } => {
            let list = if types {
                api.json(Method::GET, "/event-types", None).await?
            } else {
                api.json(Method::GET, &format!("/events?limit={limit}"), None).await?
            };
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    if types {
                        vec![text(&e["name"]), text(&e["description"])]
                    } else {
                        vec![text(&e["id"]), text(&e["type"]), text(&e["timestamp"])]
                    }
                })
                .collect();
            if types {
                table(&["TYPE", "MEANING"], &rows);
            } else {
                table(&["EVENT", "TYPE", "AT"], &rows);
            }
        }
    }
    Ok(())
}
