//! `rotor history` and `rotor audit`: what the store kept of past executions.

use crate::exit;
use crate::store;
use anyhow::{anyhow, bail, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct HistoryArgs {
    /// Only this secret's executions.
    #[arg(long, conflicts_with = "execution")]
    secret: Option<String>,
    /// One execution's events (its ARN or its name), as GetExecutionHistory gives them.
    #[arg(long)]
    execution: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct AuditArgs {
    #[arg(long)]
    secret: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn history(store_dir: Option<PathBuf>, args: HistoryArgs) -> Result<u8> {
    let store = store::open(store_dir)?;
    if let Some(wanted) = &args.execution {
        let all = store.list_executions(None).map_err(|e| anyhow!("{e}"))?;
        let Some(record) = all
            .into_iter()
            .find(|r| &r.execution_id == wanted || &r.name == wanted)
        else {
            bail!("no execution {wanted} in the store");
        };
        if args.json {
            println!(
                "{}",
                json!({"executionArn": record.execution_id, "events": record.events})
            );
        } else {
            println!(
                "execution {} ({} {}): {}",
                record.execution_id, record.action, record.secret_id, record.status
            );
            for e in &record.events {
                let ty = e["type"].as_str().unwrap_or_default();
                let name = e
                    .get("stateEnteredEventDetails")
                    .or_else(|| e.get("stateExitedEventDetails"))
                    .and_then(|d| d["name"].as_str())
                    .unwrap_or_default();
                println!(
                    "{:>5} {} {ty} {name}",
                    e["id"],
                    e["timestamp"].as_str().unwrap_or_default()
                );
            }
        }
        return Ok(exit::OK);
    }
    let records = store
        .list_executions(args.secret.as_deref())
        .map_err(|e| anyhow!("{e}"))?;
    if args.json {
        let list: Vec<_> = records
            .iter()
            .map(|r| {
                json!({
                    "execution_id": r.execution_id, "name": r.name, "secret_id": r.secret_id,
                    "action": r.action, "status": r.status, "started_at": r.started_at,
                    "finished_at": r.finished_at, "error": r.error,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for r in &records {
            println!(
                "{}  {:<8} {:<9} {:<50} {}  {}",
                r.started_at,
                r.action,
                r.status,
                r.secret_id,
                r.name,
                r.error.as_deref().unwrap_or("")
            );
        }
    }
    Ok(exit::OK)
}

pub fn audit(store_dir: Option<PathBuf>, args: AuditArgs) -> Result<u8> {
    let store = store::open(store_dir)?;
    let records = store
        .audit_records(args.secret.as_deref())
        .map_err(|e| anyhow!("{e}"))?;
    if args.json {
        println!("{}", serde_json::to_string(&records)?);
    } else {
        for r in &records {
            println!(
                "{}  {:<16} {:<50} by {:<20} old {} new {} {}",
                r.started_at,
                r.outcome,
                r.secret_id,
                r.requested_by.as_deref().unwrap_or("-"),
                r.old_version_id.as_deref().unwrap_or("-"),
                r.new_version_id.as_deref().unwrap_or("-"),
                r.error.as_deref().unwrap_or("")
            );
        }
    }
    Ok(exit::OK)
}
