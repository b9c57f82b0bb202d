//! `rotor resume`, `rotor recover` and `rotor abort`: nothing an interruption leaves behind
//! stays half-done.
//!
//! * `resume --execution NAME`: an interrupted execution (ABORTED by a signal, or RUNNING with
//!   its process gone) goes on from where it stopped, with the same input (Step Functions'
//!   redrive: completed states are not run again).
//! * `recover --secret ID`: every interrupted execution of the secret goes on by the rule the
//!   state machine already has: stopped before Promote, its candidate is abandoned; after
//!   Promote, it goes on with the application probe (and reverts on failure).
//! * `abort --secret ID`: an AWSPENDING that no execution known here owns (crashed elsewhere, a
//!   deployment's execution that was stopped) is cleared, and the new IAM key it held deleted.
//!
//! Each one is audited: resume and recover through the execution's own audit step (the record
//! names the original requester and, under `recovery`, who recovered it and why); abort writes
//! its own audit record.

use crate::backend::{Backend, GlobalArgs, Need};
use crate::durable::{self, RunLock};
use crate::exit;
use crate::store;
use crate::workflow::{self, report, requester, Run, RunFlags, Who};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use rotor_core::events::{ExecutionInput, Recovery};
use rotor_core::iam;
use rotor_core::policy::{Kind, Policy};
use rotor_core::ports::AuditRecord;
use rotor_core::secret::{AWSCURRENT, AWSPENDING};
use rotor_local_store::{ExecutionRecord, LocalStore};
use rotor_runner::{load_rotation_definition, recovery_plan, RecoveryMode};

#[derive(Args)]
pub struct ResumeArgs {
    /// The interrupted execution: its name or ARN (as `rotor history` shows it).
    #[arg(long)]
    execution: String,
    #[command(flatten)]
    who: Who,
    #[command(flatten)]
    run: RunFlags,
}

#[derive(Args)]
pub struct RecoverArgs {
    /// The secret whose interrupted executions are to be recovered.
    #[arg(long)]
    secret: String,
    /// aws backend: the deployed state machine, whose executions are searched for the one that
    /// staged AWSPENDING when none ran here (it is redriven if it stopped).
    #[arg(long, env = "ROTOR_STATE_MACHINE_ARN", value_name = "ARN")]
    state_machine: Option<String>,
    #[command(flatten)]
    who: Who,
    #[command(flatten)]
    run: RunFlags,
}

#[derive(Args)]
pub struct AbortArgs {
    /// The secret whose stale AWSPENDING is to be cleared.
    #[arg(long)]
    secret: String,
    #[command(flatten)]
    who: Who,
    /// Print one JSON document (the audit record).
    #[arg(long)]
    json: bool,
}

fn find_execution(records: &LocalStore, wanted: &str) -> Result<ExecutionRecord> {
    if let Some(r) = records.load_execution(wanted)? {
        return Ok(r);
    }
    records
        .list_executions(None)?
        .into_iter()
        .find(|r| r.name == wanted)
        .ok_or_else(|| {
            anyhow!(
                "no execution {wanted} in the store at {} (rotor history lists them)",
                records.dir().display()
            )
        })
}

fn parse_input(record: &ExecutionRecord) -> Result<ExecutionInput> {
    serde_json::from_value(record.input.clone()).map_err(|e| {
        anyhow!(
            "execution {}: its recorded input is not an execution input ({e})",
            record.name
        )
    })
}

/// Goes on with one interrupted execution, `mode` deciding where (see [`recovery_plan`]).
async fn go_on(
    backend: &Backend,
    record: ExecutionRecord,
    mode: RecoveryMode,
    recovery: Recovery,
    run: Run,
    live: bool,
) -> Result<workflow::Finished> {
    let (services, records) = backend.services(&record.secret_id, false).await?;
    let run = run.on(backend, &record.secret_id, false).await?;
    let mut input = parse_input(&record)?;
    let point = recovery_plan(
        load_rotation_definition(),
        &record.input,
        &record.events,
        mode,
    )
    .map_err(|e| anyhow!("execution {}: {e}", record.name))?;
    let mode_name = if point.state.starts_with("Abandon") {
        "abandon"
    } else {
        "resume"
    };
    input.recovery = Some(Recovery {
        mode: mode_name.into(),
        ..recovery
    });
    if live {
        println!(
            "execution {}: {} from state {}",
            record.name,
            if mode_name == "abandon" {
                "stopped before Promote; abandoning its candidate"
            } else {
                "going on"
            },
            point.state
        );
    }
    workflow::run_durable(
        &records,
        services,
        durable::Start::Resume {
            record: Box::new(record),
            input,
            state: point.state,
            state_input: point.input,
        },
        run,
        live,
        None,
    )
    .await
}

async fn recovery(backend: &Backend, who: &Who) -> Result<Recovery> {
    Ok(Recovery {
        requested_by: requester(backend, who.requested_by.as_deref()).await?,
        reason: who.reason.clone(),
        mode: String::new(),
        at: rotor_asl::executor::timestamp(chrono::Utc::now()),
    })
}

fn check_interrupted(records: &LocalStore, record: &ExecutionRecord) -> Result<()> {
    if durable::is_interrupted(records, record) {
        return Ok(());
    }
    if record.status == rotor_local_store::RUNNING {
        bail!(
            "execution {} is running in another rotor process: wait for it, or stop it (Ctrl-C) and resume it then",
            record.name
        );
    }
    bail!(
        "execution {} has ended ({}): there is nothing to resume",
        record.name,
        record.status
    )
}

pub fn resume(global: &GlobalArgs, args: ResumeArgs) -> Result<u8> {
    let rt = store::runtime()?;
    rt.block_on(async {
        let backend = Backend::open(global, Need::Existing).await?;
        let records = store::open_or_create(global.store.clone())?;
        let record = find_execution(&records, &args.execution)?;
        check_interrupted(&records, &record)?;
        let recovery = recovery(&backend, &args.who).await?;
        let run = Run::from_flags(global, &args.run);
        let finished = go_on(
            &backend,
            record,
            RecoveryMode::Resume,
            recovery,
            run,
            !args.run.json,
        )
        .await?;
        report(&finished, args.run.json)
    })
}

pub fn recover(global: &GlobalArgs, args: RecoverArgs) -> Result<u8> {
    let rt = store::runtime()?;
    rt.block_on(async {
        let backend = Backend::open(global, Need::Existing).await?;
        let info = backend.secrets().describe(&args.secret).await?;
        let records = store::open_or_create(global.store.clone())?;
        let interrupted: Vec<ExecutionRecord> = records
            .list_executions(Some(&info.id))?
            .into_iter()
            .filter(|r| durable::is_interrupted(&records, r))
            .collect();
        if interrupted.is_empty() {
            if let (Some(p), Some(aws), Some(sm)) = (
                info.version_with(AWSPENDING),
                backend.aws(),
                args.state_machine.as_deref(),
            ) {
                if let Some(code) = redrive_deployed(aws, sm, &info.id, &p.version_id).await? {
                    return Ok(code);
                }
            }
            if let Some(p) = info.version_with(AWSPENDING) {
                bail!(
                    "secret {}: AWSPENDING is on version {}, but no interrupted execution in the store at {} staged it (it may have run elsewhere, or be a deployment's execution that was stopped); clear it with: rotor abort --secret {} --reason \"...\"",
                    info.id,
                    p.version_id,
                    records.dir().display(),
                    info.id
                );
            }
            println!(
                "secret {}: no interrupted execution, nothing to recover",
                crate::output::clean(&info.id)
            );
            return Ok(exit::OK);
        }
        let recovery = recovery(&backend, &args.who).await?;
        let run = Run::from_flags(global, &args.run);
        let mut code = exit::OK;
        // Oldest first: the one that staged a candidate is dealt with before any later one.
        for record in interrupted {
            let finished = go_on(
                &backend,
                record,
                RecoveryMode::Abandon,
                recovery.clone(),
                run.clone(),
                !args.run.json,
            )
            .await?;
            let c = report(&finished, args.run.json)?;
            if code == exit::OK {
                code = c;
            }
        }
        Ok(code)
    })
}

pub fn abort(global: &GlobalArgs, args: AbortArgs) -> Result<u8> {
    let rt = store::runtime()?;
    rt.block_on(async {
        let backend = Backend::open(global, Need::Existing).await?;
        let secrets = backend.secrets();
        let info = secrets.describe(&args.secret).await?;
        let id = info.id.clone();
        let Some(pending) = info.version_with(AWSPENDING).map(|v| v.version_id.clone()) else {
            println!(
                "secret {}: no AWSPENDING, nothing to abort",
                crate::output::clean(&id)
            );
            return Ok(exit::OK);
        };
        let records = store::open_or_create(global.store.clone())?;
        // An execution known here that staged it: it is running, or `recover` finishes it
        // properly (with its own audit record).
        if let Some(owner) = records
            .list_executions(Some(&id))?
            .into_iter()
            .find(|r| rotor_core::handlers::token_for(&r.execution_id) == pending)
        {
            if owner.status == rotor_local_store::RUNNING && RunLock::is_held(records.dir(), &owner.name) {
                bail!(
                    "secret {id}: AWSPENDING belongs to execution {}, which is running: wait for it",
                    owner.name
                );
            }
            if durable::is_interrupted(&records, &owner) {
                bail!(
                    "secret {id}: AWSPENDING belongs to the interrupted execution {}: finish it with rotor recover --secret {id} --reason \"...\"",
                    owner.name
                );
            }
        }
        let (services, _) = backend.services(&id, false).await?;
        let who = requester(&backend, args.who.requested_by.as_deref()).await?;
        let started_at = rotor_asl::executor::timestamp(chrono::Utc::now());
        let current = info.version_with(AWSCURRENT).map(|v| v.version_id.clone());
        // An IAM access key rotation: the key the staged version holds goes too, unless it is
        // AWSCURRENT's key.
        let mut iam_note = None;
        if let Ok(policy) = Policy::from_tags(&id, &info.tags) {
            if policy.kind == Kind::IamAccessKey {
                let user = iam::user_of(&id, &policy)?.to_string();
                let staged = iam::key_of(&services, &id, &pending).await?;
                let current_key = match &current {
                    Some(c) => Some(iam::key_of(&services, &id, c).await?.access_key_id),
                    None => None,
                };
                if current_key.as_deref() != Some(staged.access_key_id.as_str()) {
                    iam::delete_new_key(&services, &id, &user, &staged.access_key_id).await?;
                    iam_note = Some(rotor_core::events::IamStaged {
                        user,
                        old_access_key_id: current_key,
                        new_access_key_id: staged.access_key_id,
                        deleted_stale_access_key_id: None,
                    });
                }
            }
        }
        // Only the label: the version itself stays, unlabelled, for the record.
        secrets
            .update_stage(&id, AWSPENDING, None, Some(&pending))
            .await?;
        let name = format!("abort-{}", uuid::Uuid::new_v4());
        let record = AuditRecord {
            execution_id: rotor_asl::executor::execution_arn("rotor-abort", &name),
            secret_id: id.clone(),
            kind: Policy::from_tags(&id, &info.tags)
                .ok()
                .map(|p| p.kind.as_str().to_string()),
            action: "abort".into(),
            requested_by: Some(who),
            reason: Some(args.who.reason.clone()),
            old_version_id: Some(pending.clone()),
            new_version_id: current,
            outcome: "aborted".into(),
            error: None,
            started_at: started_at.clone(),
            finished_at: rotor_asl::executor::timestamp(chrono::Utc::now()),
            iam: iam_note,
            recovery: None,
        };
        services.audit.record(&record).await?;
        if args.json {
            println!("{}", serde_json::to_string(&record)?);
        } else {
            println!(
                "secret {}: AWSPENDING taken off version {pending} (the version stays, unlabelled){}",
                crate::output::clean(&id),
                match &record.iam {
                    Some(i) => format!("; IAM access key {} of {} deleted", i.new_access_key_id, crate::output::clean(&i.user)),
                    None => String::new(),
                }
            );
            println!("audited as {}", record.execution_id);
        }
        Ok(exit::OK)
    })
}

/// The deployed state machine's execution that staged `pending` (its version id is derived from
/// the execution ARN, `token_for`): still running, it is left alone; stopped (FAILED, TIMED_OUT,
/// ABORTED), it is redriven with RedriveExecution, Step Functions' own "go on from the state that
/// did not succeed". `None` when no execution of `state_machine` staged it.
async fn redrive_deployed(
    aws: &crate::backend::Aws,
    state_machine: &str,
    secret: &str,
    pending: &str,
) -> Result<Option<u8>> {
    use rotor_aws::errors::Call;
    let sfn = aws.sfn();
    let mut next: Option<String> = None;
    // Bounded: at most 50 pages of 100 executions, newest first.
    for _ in 0..50 {
        let page = sfn
            .list_executions()
            .state_machine_arn(state_machine)
            .max_results(100)
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(|e| {
                crate::backend::sdk_error(
                    &e,
                    Call::new(
                        "Step Functions",
                        "ListExecutions",
                        &format!("state machine {state_machine}"),
                    ),
                )
            })?;
        for ex in page.executions() {
            let arn = ex.execution_arn();
            if rotor_core::handlers::token_for(arn) != pending {
                continue;
            }
            let status = crate::start::describe(&sfn, arn).await?.status;
            match status.as_str() {
                "RUNNING" | "PENDING_REDRIVE" => {
                    bail!(
                        "secret {secret}: AWSPENDING belongs to execution {arn}, which is {status} on Step Functions: wait for it (rotor --backend aws history --execution-arn {arn})"
                    );
                }
                "FAILED" | "TIMED_OUT" | "ABORTED" => {
                    let out = sfn
                        .redrive_execution()
                        .execution_arn(arn)
                        .send()
                        .await
                        .map_err(|e| {
                            crate::backend::sdk_error(
                                &e,
                                Call::new(
                                    "Step Functions",
                                    "RedriveExecution",
                                    &format!("execution {arn} ({status})"),
                                ),
                            )
                        })?;
                    println!(
                        "execution {arn} ({status}) staged AWSPENDING on {secret}: redriven at {}; follow it with rotor --backend aws history --execution-arn {arn}",
                        chrono::DateTime::from_timestamp(out.redrive_date().secs(), 0).map(|t| t.to_rfc3339()).unwrap_or_default()
                    );
                    return Ok(Some(exit::OK));
                }
                _ => return Ok(None),
            }
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    Ok(None)
}
