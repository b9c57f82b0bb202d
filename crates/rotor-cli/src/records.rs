//! `rotor history` and `rotor audit`: what the store kept of past executions.

use crate::backend::{Backend, BackendKind, GlobalArgs, Need};
use crate::exit;
use crate::output::clean;
use crate::store;
use anyhow::{anyhow, bail, Result};
use clap::Args;
use rotor_local_store::LocalStore;
use serde_json::{json, Value};

#[derive(Args)]
pub struct HistoryArgs {
    /// Only this secret's executions.
    #[arg(long, conflicts_with_all = ["execution", "execution_arn"])]
    secret: Option<String>,
    /// One execution's events (its ARN or its name), as GetExecutionHistory gives them, from
    /// the store (on the aws backend: the local cache of rotate/rollback run from here).
    #[arg(long, conflicts_with = "execution_arn")]
    execution: Option<String>,
    /// One execution's events read from Step Functions (GetExecutionHistory) on the aws
    /// backend, e.g. one `rotor start` began; on the local backend, the same as --execution.
    #[arg(long, value_name = "ARN")]
    execution_arn: Option<String>,
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

/// The store history and audit read: the local store, or on the aws backend the local cache of
/// what rotate/rollback ran from this machine (`None`: nothing ran here yet).
fn records_store(global: &GlobalArgs) -> Result<Option<LocalStore>> {
    match global.backend() {
        BackendKind::Local => Ok(Some(store::open(global.store.clone())?)),
        BackendKind::Aws => {
            let dir = rotor_local_store::resolve_dir(global.store.as_deref());
            if dir.join(rotor_local_store::DB_FILE).exists() {
                Ok(Some(store::open(global.store.clone())?))
            } else {
                Ok(None)
            }
        }
    }
}

/// One execution's events, as `rotor history --execution ... [--json]` prints them.
pub fn print_execution(
    arn: &str,
    action: &str,
    secret_id: &str,
    status: &str,
    events: &[Value],
    json: bool,
) {
    if json {
        println!("{}", json!({"executionArn": arn, "events": events}));
        return;
    }
    println!(
        "execution {} ({} {}): {}",
        clean(arn),
        clean(action),
        clean(secret_id),
        clean(status)
    );
    for e in events {
        let ty = e["type"].as_str().unwrap_or_default();
        let name = e
            .get("stateEnteredEventDetails")
            .or_else(|| e.get("stateExitedEventDetails"))
            .and_then(|d| d["name"].as_str())
            .unwrap_or_default();
        // The id is a JSON number; any other JSON prints as JSON (escaped by serde).
        println!(
            "{:>5} {} {} {}",
            e["id"],
            clean(e["timestamp"].as_str().unwrap_or_default()),
            clean(ty),
            clean(name)
        );
    }
}

pub fn history(global: &GlobalArgs, args: HistoryArgs) -> Result<u8> {
    if let (Some(arn), BackendKind::Aws) = (&args.execution_arn, global.backend()) {
        let rt = store::runtime()?;
        return rt.block_on(async {
            let backend = Backend::open(global, Need::Existing).await?;
            let aws = backend.aws().expect("the aws backend");
            let sfn = aws.sfn();
            let described = crate::start::describe(&sfn, arn).await?;
            let events = crate::start::execution_history(&sfn, arn).await?;
            let input: Value = described
                .input
                .as_deref()
                .and_then(|i| serde_json::from_str(i).ok())
                .unwrap_or(Value::Null);
            print_execution(
                arn,
                input["action"].as_str().unwrap_or("-"),
                input["secret_id"].as_str().unwrap_or("-"),
                &described.status,
                &events,
                args.json,
            );
            Ok(exit::OK)
        });
    }
    let store = records_store(global)?;
    if let Some(wanted) = args.execution.as_ref().or(args.execution_arn.as_ref()) {
        let all = match &store {
            Some(store) => store.list_executions(None).map_err(|e| anyhow!(e))?,
            None => Vec::new(),
        };
        let Some(record) = all
            .into_iter()
            .find(|r| &r.execution_id == wanted || &r.name == wanted)
        else {
            match global.backend() {
                BackendKind::Local => bail!("no execution {wanted} in the store"),
                BackendKind::Aws => bail!(
                    "no execution {wanted} in the local cache of executions run from here (for one on Step Functions, give --execution-arn)"
                ),
            }
        };
        print_execution(
            &record.execution_id,
            &record.action,
            &record.secret_id,
            &record.status,
            &record.events,
            args.json,
        );
        return Ok(exit::OK);
    }
    let Some(store) = store else {
        if args.json {
            println!("[]");
        }
        return Ok(exit::OK);
    };
    let records = store
        .list_executions(args.secret.as_deref())
        .map_err(|e| anyhow!(e))?;
    if args.json {
        let list: Vec<_> = records
            .iter()
            .map(|r| {
                json!({
                    "execution_id": r.execution_id, "name": r.name, "secret_id": r.secret_id,
                    "action": r.action, "status": r.status, "started_at": r.started_at,
                    "finished_at": r.finished_at, "error": r.error, "cause": r.cause,
                    "event_count": r.events.len(),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for r in &records {
            println!(
                "{}  {:<8} {:<9} {:<50} {}  {}",
                clean(&r.started_at),
                clean(&r.action),
                clean(&r.status),
                clean(&r.secret_id),
                clean(&r.name),
                clean(r.error.as_deref().unwrap_or(""))
            );
        }
    }
    Ok(exit::OK)
}

pub fn audit(global: &GlobalArgs, args: AuditArgs) -> Result<u8> {
    let records = match records_store(global)? {
        Some(store) => store
            .audit_records(args.secret.as_deref())
            .map_err(|e| anyhow!(e))?,
        None => Vec::new(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&records)?);
    } else {
        for r in &records {
            println!(
                "{}  {:<16} {:<50} by {:<20} old {} new {} {}",
                clean(&r.started_at),
                clean(&r.outcome),
                clean(&r.secret_id),
                clean(r.requested_by.as_deref().unwrap_or("-")),
                clean(r.old_version_id.as_deref().unwrap_or("-")),
                clean(r.new_version_id.as_deref().unwrap_or("-")),
                clean(r.error.as_deref().unwrap_or(""))
            );
        }
    }
    Ok(exit::OK)
}
