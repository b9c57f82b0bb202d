//! `rotor rotate` and `rotor rollback`: start the rotation state machine on the embedded
//! executor, follow it, keep its history in the store (on the aws backend: the local store
//! directory, as a cache of what ran from this machine).

use crate::backend::{Backend, GlobalArgs, Need};
use crate::exit;
use crate::store;
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use clap::Args;
use rotor_asl::executor::{execution_arn, timestamp, Outcome, Status};
use rotor_core::events::{Action, ExecutionInput};
use rotor_core::policy::{Kind, Policy};
use rotor_core::ports::{candidate_context, Kms, SecretStore, Services};
use rotor_core::secret::{SecretValue, MAX_SECRET_BYTES};

/// KMS Encrypt's plaintext limit: a candidate travels as one KMS ciphertext.
const MAX_KMS_PLAINTEXT: usize = 4096;
use rotor_local_store::{ExecutionRecord, LocalStore};
use rotor_runner::{load_rotation_definition, run_rotation, RunnerOptions, STATE_MACHINE_NAME};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct RotateArgs {
    /// The secret to rotate.
    #[arg(long, required_unless_present = "input", conflicts_with = "input")]
    secret: Option<String>,
    /// The new value (vendor keys), from a file; one trailing newline is dropped.
    #[arg(long, conflicts_with = "candidate_stdin")]
    candidate_file: Option<PathBuf>,
    /// The new value (vendor keys), from standard input.
    #[arg(long)]
    candidate_stdin: bool,
    /// Who asks (recorded in the audit trail).
    #[arg(long)]
    requested_by: Option<String>,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    reason: Option<String>,
    /// Start with this raw execution input (JSON or @FILE) instead, as StartExecution would.
    #[arg(long)]
    input: Option<String>,
    #[command(flatten)]
    run: RunFlags,
}

#[derive(Args)]
pub struct RollbackArgs {
    #[arg(long)]
    secret: String,
    #[arg(long)]
    requested_by: Option<String>,
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    run: RunFlags,
}

#[derive(Args, Clone, Default)]
pub struct RunFlags {
    /// Print exactly one JSON document: execution id, status, outcome, error, cause, events.
    #[arg(long)]
    json: bool,
    /// Really wait for Waits and retry intervals (the same as --clock real).
    #[arg(long)]
    real_time: bool,
    /// Seed for retry jitter (repeatable runs).
    #[arg(long)]
    seed: Option<u64>,
}

/// How an execution ended, from what the workflow recorded in its audit step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Rotated,
    ManualRollback,
    /// Refused or abandoned before promote: nothing changed.
    Abandoned,
    RolledBack,
    Failed,
}

impl Ending {
    pub fn exit_code(self) -> u8 {
        match self {
            Ending::Rotated | Ending::ManualRollback => exit::OK,
            Ending::Abandoned => exit::ABANDONED,
            Ending::RolledBack => exit::ROLLED_BACK,
            Ending::Failed => exit::FAILED,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Rotated => "rotated",
            Ending::ManualRollback => "rolled back (manual)",
            Ending::Abandoned => "abandoned, nothing changed",
            Ending::RolledBack => "rolled back after promote",
            Ending::Failed => "failed",
        }
    }
}

/// The outcome the workflow handed to its audit step, if it got there.
fn audited_outcome(events: &[Value]) -> Option<String> {
    events.iter().rev().find_map(|e| {
        let params = e
            .get("taskScheduledEventDetails")?
            .get("parameters")?
            .as_str()?;
        let params: Value = serde_json::from_str(params).ok()?;
        if !params["FunctionName"].as_str()?.ends_with("audit-log") {
            return None;
        }
        params["Payload"]["outcome"].as_str().map(str::to_string)
    })
}

pub fn ending(outcome: &Outcome) -> Ending {
    let audited = audited_outcome(&outcome.events);
    match (outcome.status, audited.as_deref()) {
        (Status::Succeeded, Some("manual-rollback")) => Ending::ManualRollback,
        (Status::Succeeded, _) => Ending::Rotated,
        // The revert itself failed: AWSCURRENT may be on the new version; an operator must look.
        _ if outcome.error.as_deref() == Some("Rotation.RevertFailed") => Ending::Failed,
        (_, Some("rolled-back")) => Ending::RolledBack,
        (_, _) if outcome.error.as_deref() == Some("Rotation.RolledBack") => Ending::RolledBack,
        (_, Some("abandoned" | "refused")) => Ending::Abandoned,
        _ => Ending::Failed,
    }
}

pub struct Finished {
    pub execution_id: String,
    pub outcome: Outcome,
    pub ending: Ending,
    pub error: Option<String>,
}

/// How an in-process execution runs: the clock and the jitter seed.
#[derive(Clone, Copy, Default)]
pub struct Run {
    pub real_time: bool,
    pub seed: Option<u64>,
}

impl Run {
    /// `--clock` (or the backend's default) and `--real-time` / `--seed` of the command.
    pub fn from_flags(global: &GlobalArgs, flags: &RunFlags) -> Run {
        Run {
            real_time: flags.real_time || global.real_time(),
            seed: flags.seed,
        }
    }
}

/// Runs one execution of the rotation state machine over `services` and keeps its record in
/// `records` (the local store; on the aws backend, the local cache of what ran from here).
pub async fn execute(
    records: &LocalStore,
    services: Services,
    input: ExecutionInput,
    run: Run,
    live: bool,
) -> Result<Finished> {
    execute_observed(records, services, input, run, live, None).await
}

/// [`execute`], with `observer` also seeing every history event as it is recorded (the demo's
/// stand-in consumers hook on it).
pub async fn execute_observed(
    records: &LocalStore,
    services: Services,
    input: ExecutionInput,
    run: Run,
    live: bool,
    observer: Option<rotor_asl::executor::Observer>,
) -> Result<Finished> {
    let name = uuid::Uuid::new_v4().to_string();
    let execution_id = execution_arn(STATE_MACHINE_NAME, &name);
    let started_at = timestamp(chrono::Utc::now());
    let observer = match (live, observer) {
        (false, o) => o,
        (true, None) => Some(Arc::new(crate::output::print_event) as rotor_asl::executor::Observer),
        (true, Some(o)) => Some(Arc::new(move |e: &serde_json::Value| {
            crate::output::print_event(e);
            o(e);
        }) as rotor_asl::executor::Observer),
    };
    let options = RunnerOptions {
        seed: run.seed,
        real_time: run.real_time,
        observer,
    };
    let input_json = serde_json::to_value(&input)?;
    let outcome = run_rotation(load_rotation_definition(), services, &input, &name, options).await;
    let ending = ending(&outcome);
    let status = serde_json::to_value(outcome.status)?
        .as_str()
        .unwrap_or_default()
        .to_string();
    records
        .save_execution(&ExecutionRecord {
            execution_id: execution_id.clone(),
            name,
            secret_id: input.secret_id.clone(),
            action: match input.action {
                Action::Rotate => "rotate".into(),
                Action::Rollback => "rollback".into(),
            },
            status,
            started_at,
            finished_at: Some(timestamp(chrono::Utc::now())),
            input: input_json,
            output: outcome.output.clone(),
            error: outcome.error.clone(),
            cause: outcome.cause.clone(),
            events: outcome.events.clone(),
        })
        .map_err(|e| anyhow!("{e}"))?;
    let error = outcome.error.clone();
    Ok(Finished {
        execution_id,
        outcome,
        ending,
        error,
    })
}

fn report(finished: &Finished, json: bool) -> Result<u8> {
    let o = &finished.outcome;
    if json {
        let status = serde_json::to_value(o.status)?;
        println!(
            "{}",
            serde_json::json!({
                "execution_id": finished.execution_id,
                "status": status,
                "outcome": finished.ending.as_str(),
                "output": o.output,
                "error": o.error,
                "cause": o.cause,
                "events": o.events,
            })
        );
    } else {
        println!("execution {}", finished.execution_id);
        println!("result: {}", finished.ending.as_str());
        if let Some(e) = &o.error {
            println!("error: {e}");
            println!("cause: {}", o.cause.as_deref().unwrap_or("(none)"));
        }
    }
    Ok(finished.ending.exit_code())
}

/// Checks what can be checked before starting, so a bad request changes nothing and says why.
/// `how` names the flags that give a candidate.
pub async fn preflight(
    store: &dyn SecretStore,
    secret: &str,
    has_candidate: bool,
    how: &str,
) -> Result<Policy> {
    let info = store.describe(secret).await.map_err(|e| anyhow!("{e}"))?;
    let policy = Policy::from_tags(secret, &info.tags).map_err(|e| anyhow!("{e}"))?;
    match policy.kind {
        Kind::VendorApiKey if !has_candidate => {
            bail!("{secret} is a vendor-api-key: give the new key with {how}")
        }
        Kind::Generated | Kind::IamAccessKey if has_candidate => {
            bail!("{secret} is of kind {}: rotor makes the new value itself, a candidate is not accepted", policy.kind.as_str())
        }
        _ => Ok(policy),
    }
}

/// Refuses a candidate Secrets Manager or KMS would refuse, before anything is sent.
pub fn check_candidate(value: &SecretValue) -> Result<()> {
    if value.is_empty() {
        bail!("the candidate is empty");
    }
    if value.len() > MAX_SECRET_BYTES {
        bail!(
            "the candidate is {} bytes; Secrets Manager accepts at most {MAX_SECRET_BYTES}",
            value.len()
        );
    }
    if value.len() > MAX_KMS_PLAINTEXT {
        bail!(
            "the candidate is {} bytes; it travels KMS-encrypted and KMS encrypts at most {MAX_KMS_PLAINTEXT} bytes directly",
            value.len()
        );
    }
    Ok(())
}

/// The candidate as the execution input carries it: base64 of its KMS ciphertext under the
/// encryption context `{"SecretId": <secret>}`.
pub async fn encrypt_candidate(kms: &dyn Kms, secret: &str, value: &SecretValue) -> Result<String> {
    let blob = kms
        .encrypt(value, &candidate_context(secret))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(blob))
}

fn parse_input(arg: &str) -> Result<ExecutionInput> {
    let text = match arg.strip_prefix('@') {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read input file {path}"))?;
            String::from_utf8(bytes).map_err(|_| anyhow!("input file {path} is not valid UTF-8"))?
        }
        None => arg.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| anyhow!("the execution input is not valid: {e}"))
}

pub fn rotate(global: &GlobalArgs, args: RotateArgs) -> Result<u8> {
    let rt = store::runtime()?;
    rt.block_on(async {
        let backend = Backend::open(global, Need::Existing).await?;
        let secrets = backend.secrets();
        let (input, services, records) = match (&args.input, &args.secret) {
            (Some(raw), _) => {
                let input = parse_input(raw)?;
                secrets
                    .describe(&input.secret_id)
                    .await
                    .map_err(|e| anyhow!("{e}"))?;
                // A candidate in the input is decrypted under the key `rotor start` would use.
                let candidate = input.candidate_ciphertext.is_some();
                let (services, records) = backend.services(&input.secret_id, candidate).await?;
                (input, services, records)
            }
            (None, Some(secret)) => {
                let has_candidate = args.candidate_file.is_some() || args.candidate_stdin;
                preflight(
                    secrets.as_ref(),
                    secret,
                    has_candidate,
                    "--candidate-file or --candidate-stdin",
                )
                .await?;
                let candidate = if has_candidate {
                    let value = crate::secret::read_value(
                        args.candidate_file.as_deref(),
                        args.candidate_stdin,
                        "candidate",
                    )?;
                    check_candidate(&value)?;
                    Some(value)
                } else {
                    None
                };
                let (services, records) = backend.services(secret, candidate.is_some()).await?;
                let candidate_ciphertext = match &candidate {
                    Some(value) => {
                        Some(encrypt_candidate(services.kms.as_ref(), secret, value).await?)
                    }
                    None => None,
                };
                let input = ExecutionInput {
                    action: Action::Rotate,
                    secret_id: secret.clone(),
                    candidate_ciphertext,
                    requested_by: args.requested_by.clone().or_else(default_requester),
                    reason: args.reason.clone(),
                };
                (input, services, records)
            }
            (None, None) => bail!("give --secret or --input"),
        };
        let run = Run::from_flags(global, &args.run);
        let finished = execute(&records, services, input, run, !args.run.json).await?;
        report(&finished, args.run.json)
    })
}

pub fn rollback(global: &GlobalArgs, args: RollbackArgs) -> Result<u8> {
    let rt = store::runtime()?;
    rt.block_on(async {
        let backend = Backend::open(global, Need::Existing).await?;
        backend
            .secrets()
            .describe(&args.secret)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let (services, records) = backend.services(&args.secret, false).await?;
        let input = ExecutionInput {
            action: Action::Rollback,
            secret_id: args.secret.clone(),
            candidate_ciphertext: None,
            requested_by: args.requested_by.clone().or_else(default_requester),
            reason: args.reason.clone(),
        };
        let run = Run::from_flags(global, &args.run);
        let finished = execute(&records, services, input, run, !args.run.json).await?;
        report(&finished, args.run.json)
    })
}

/// `local:<user>` from the environment, so the audit trail names someone by default.
pub fn default_requester() -> Option<String> {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("USERNAME").ok())
        .map(|u| format!("local:{u}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(status: Status, error: Option<&str>, audited: Option<&str>) -> Outcome {
        let events = audited
            .map(|o| {
                let params = json!({"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:rotor-audit-log", "Payload": {"outcome": o}});
                vec![json!({"type": "TaskScheduled", "taskScheduledEventDetails": {"parameters": params.to_string()}})]
            })
            .unwrap_or_default();
        Outcome {
            status,
            output: None,
            error: error.map(str::to_string),
            cause: None,
            events,
        }
    }

    #[test]
    fn endings_follow_what_the_workflow_audited() {
        assert_eq!(
            ending(&outcome(Status::Succeeded, None, Some("rotated"))),
            Ending::Rotated
        );
        assert_eq!(
            ending(&outcome(Status::Succeeded, None, Some("manual-rollback"))),
            Ending::ManualRollback
        );
        assert_eq!(
            ending(&outcome(
                Status::Failed,
                Some("Probe.Rejected"),
                Some("abandoned")
            )),
            Ending::Abandoned
        );
        assert_eq!(
            ending(&outcome(
                Status::Failed,
                Some("Rotation.InProgress"),
                Some("refused")
            )),
            Ending::Abandoned
        );
        assert_eq!(
            ending(&outcome(
                Status::Failed,
                Some("Rotation.RolledBack"),
                Some("rolled-back")
            )),
            Ending::RolledBack
        );
        assert_eq!(
            ending(&outcome(
                Status::Failed,
                Some("Rotation.RevertFailed"),
                Some("rolled-back")
            )),
            Ending::Failed
        );
        assert_eq!(
            ending(&outcome(Status::Failed, Some("States.Runtime"), None)),
            Ending::Failed
        );
        assert_eq!(Ending::Abandoned.exit_code(), 3);
        assert_eq!(Ending::RolledBack.exit_code(), 4);
    }
}
