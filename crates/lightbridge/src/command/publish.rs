//! `lightbridge publish`: builds the bundle here (refusing a bad one before any call), uploads
//! it as a deployment to every connection bound to a system × environment, follows it with a
//! live progress bar and per-org outcomes, prints a summary, and exits 1 if any org failed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use super::connections::{Api, api_error, cell, table, urlencode};

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
    /// Print the finished deployment's JSON instead of progress and a table.
    #[arg(long)]
    json: bool,
    /// A folder, or a .zip file.
    path: PathBuf,
}

/// A multipart body by hand: the fields, then the bundle as `file`.
fn multipart(fields: &[(&str, &str)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("lightbridge-{}", domain::UserId::generate().as_str().trim_start_matches("user_"));
    let mut body = Vec::with_capacity(file.len() + 1024);
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bundle.zip\"\r\nContent-Type: application/zip\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let token = args.token.clone().context("an API token is needed: set LIGHTBRIDGE_TOKEN or pass --token")?;
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
    let api = Api { http: reqwest::Client::new(), base: args.server.clone(), token };
    let (content_type, body) = multipart(
        &[
            ("system_id", &args.system),
            ("environment_id", &args.env),
            ("resource_name", &args.name),
            ("cache_control", &args.cache_control),
        ],
        bundle.bytes(),
    );
    let url = format!("{}/api/v1/deployments", api.base.trim_end_matches('/'));
    let response = api
        .http
        .post(&url)
        .bearer_auth(&api.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach Lightbridge at {}", api.base))?;
    let status = response.status().as_u16();
    let created: Value = serde_json::from_str(&response.text().await?).unwrap_or(Value::Null);
    if status != 202 {
        return Err(api_error(status, &created));
    }
    let id = created["id"].as_str().context("the server did not say which deployment it started")?.to_string();
    let total = created["counts"]["total"].as_u64().unwrap_or(0);
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
        let (status, body) = api.send(reqwest::Method::GET, &format!("/deployments/{}", urlencode(&id)), None).await?;
        if status != 200 {
            return Err(api_error(status, &body));
        }
        for t in body["targets"].as_array().into_iter().flatten() {
            let state = t["status"].as_str().unwrap_or_default();
            let key = cell(&t["connection_id"]);
            if matches!(state, "succeeded" | "unchanged" | "failed") && reported.insert(key) {
                bar.inc(1);
                let org = cell(&t["account_name"]);
                let line = match state {
                    "failed" => format!("✗ {org}: {}", cell(&t["error"])),
                    _ => format!("✓ {org}: {} {}", cell(&t["action"]), cell(&t["url"])),
                };
                bar.println(line);
            }
        }
        if body["status"] != "running" {
            break body;
        }
        bar.set_message(format!("{} retrying", body["counts"]["retrying"].as_u64().unwrap_or(0)));
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    bar.finish_and_clear();
    if args.json {
        println!("{finished}");
    } else {
        let rows: Vec<Vec<String>> = finished["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let outcome = if t["status"] == "failed" { cell(&t["error"]) } else { cell(&t["url"]) };
                vec![
                    cell(&t["account_name"]),
                    cell(&t["connection_id"]),
                    cell(&t["status"]),
                    cell(&t["attempts"]),
                    outcome,
                ]
            })
            .collect();
        table(&["ORG", "CONNECTION", "OUTCOME", "ATTEMPTS", "URL / REASON"], &rows);
        let c = &finished["counts"];
        println!(
            "{}: {} published, {} unchanged, {} failed",
            cell(&finished["status"]),
            c["succeeded"].as_u64().unwrap_or(0),
            c["unchanged"].as_u64().unwrap_or(0),
            c["failed"].as_u64().unwrap_or(0)
        );
    }
    if finished["status"] == "failed" {
        bail!("the deployment failed for {} org(s)", finished["counts"]["failed"]);
    }
    Ok(())
}
