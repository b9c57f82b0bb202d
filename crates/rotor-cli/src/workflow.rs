//! `rotor rotate` and `rotor rollback`: start the rotation state machine on the embedded
//! executor, follow it, keep its history in the store (on the aws backend: the local store
//! directory, as a cache of what ran from this machine).

use crate::backend::{Backend, GlobalArgs, Need};
use crate::durable;
use crate::exit;
use crate::store;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use rotor_asl::executor::{Outcome, Status};
use rotor_core::events::{Action, ExecutionInput};
use rotor_core::policy::{Kind, Policy};
use rotor_core::ports::{Kms, SecretStore, Services};
use rotor_core::secret::SecretValue;

/// KMS Encrypt's plaintext limit: a candidate travels as one KMS ciphertext.
use rotor_local_store::LocalStore;
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
    /// Who asks (recorded in the audit trail; default: see `rotor rotate --help`).
    #[arg(long, value_parser = non_empty, help = REQUESTED_BY_HELP)]
    requested_by: Option<String>,
    /// Why (required; recorded in the audit trail).
    #[arg(long, value_parser = non_empty, required_unless_present = "input")]
    reason: Option<String>,
    /// Start with this raw execution input (JSON or @FILE) instead, as StartExecution would
    /// (it must carry a non-empty "reason").
    #[arg(long)]
    input: Option<String>,
    #[command(flatten)]
    run: RunFlags,
}

#[derive(Args)]
pub struct RollbackArgs {
    /// The secret to roll back.
    #[arg(long)]
    secret: String,
    /// The version to go back to (default: the version that was AWSCURRENT before the last
    /// rotation the audit trail records, else AWSPREVIOUS).
    #[arg(long, value_name = "VERSION_ID")]
    to_version: Option<String>,
    /// Move AWSCURRENT even if the target version fails its probe (Probe.Rejected).
    #[arg(long)]
    force: bool,
    /// Do not ask for confirmation on a terminal.
    #[arg(long, short = 'y')]
    yes: bool,
    #[command(flatten)]
    who: Who,
    #[command(flatten)]
    run: RunFlags,
}

/// Who asks and why: recorded in the audit trail of every execution that changes a secret.
#[derive(Args, Clone)]
pub struct Who {
    /// Who asks (recorded in the audit trail).
    #[arg(long, value_parser = non_empty, help = REQUESTED_BY_HELP)]
    pub requested_by: Option<String>,
    /// Why (required; recorded in the audit trail).
    #[arg(long, value_parser = non_empty)]
    pub reason: String,
}

pub const REQUESTED_BY_HELP: &str = "Who asks, recorded in the audit trail (default: github:$GITHUB_ACTOR in GitHub Actions, the caller's AWS identity (STS GetCallerIdentity ARN) on the aws backend, else local:<OS user>)";

/// A flag value that must say something.
pub fn non_empty(value: &str) -> std::result::Result<String, String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(value.to_string())
}

/// `--requested-by`, else who runs this: `github:$GITHUB_ACTOR` in GitHub Actions, the AWS
/// caller's ARN on the aws backend, else `local:<OS user>`.
pub async fn requester(backend: &Backend, given: Option<&str>) -> Result<String> {
    if let Some(who) = given {
        return Ok(who.to_string());
    }
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        if let Some(actor) = std::env::var("GITHUB_ACTOR").ok().filter(|a| !a.is_empty()) {
            return Ok(format!("github:{actor}"));
        }
    }
    if let Some(aws) = backend.aws() {
        let sts = aws_sdk_sts::Client::new(&aws.config);
        let me = sts.get_caller_identity().send().await.map_err(|e| {
            anyhow!(
                "cannot tell who you are for the audit trail (STS GetCallerIdentity: {}); pass --requested-by",
                rotor_aws::errors::classify(&e).cause()
            )
        })?;
        if let Some(arn) = me.arn.filter(|a| !a.is_empty()) {
            return Ok(arn);
        }
    }
    default_requester().ok_or_else(|| {
        anyhow!("cannot tell who you are for the audit trail (no $USER): pass --requested-by")
    })
}

#[derive(Args, Clone, Default)]
pub struct RunFlags {
    /// Print exactly one JSON document: execution id, status, outcome, error, cause, events.
    #[arg(long)]
    pub json: bool,
    /// Really wait for Waits and retry intervals (the same as --clock real).
    #[arg(long)]
    real_time: bool,
    /// Seed for retry jitter (repeatable runs).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    pub lambda: crate::functions::LambdaFlags,
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
    /// Stopped at a state boundary (SIGINT, SIGTERM): resumable.
    Interrupted,
}

impl Ending {
    pub fn exit_code(self) -> u8 {
        match self {
            Ending::Rotated | Ending::ManualRollback => exit::OK,
            Ending::Abandoned => exit::ABANDONED,
            Ending::RolledBack => exit::ROLLED_BACK,
            Ending::Failed => exit::FAILED,
            Ending::Interrupted => exit::INTERRUPTED,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Rotated => "rotated",
            Ending::ManualRollback => "rolled back (manual)",
            Ending::Abandoned => "abandoned, nothing changed",
            Ending::RolledBack => "rolled back after promote",
            Ending::Failed => "failed",
            Ending::Interrupted => "interrupted (resumable)",
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
        (Status::Aborted, _) => Ending::Interrupted,
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
    pub name: String,
    pub secret_id: String,
    pub outcome: Outcome,
    pub ending: Ending,
    pub error: Option<String>,
}

/// How an execution runs: the clock, the jitter seed, and who answers its Tasks (in-process,
/// or the function binaries of `--lambda-binaries` with `function_env`).
#[derive(Clone, Default)]
pub struct Run {
    pub real_time: bool,
    pub seed: Option<u64>,
    pub lambda: crate::functions::LambdaFlags,
    pub function_env: Vec<(String, String)>,
}

impl Run {
    /// `--clock` (or the backend's default), `--real-time` / `--seed` and `--lambda-*` of the
    /// command.
    pub fn from_flags(global: &GlobalArgs, flags: &RunFlags) -> Run {
        Run {
            real_time: flags.real_time || global.real_time(),
            seed: flags.seed,
            lambda: flags.lambda.clone(),
            function_env: Vec::new(),
        }
    }

    /// With `--lambda-binaries`, the environment the functions need to reach `backend` for a
    /// run on `secret_id` ([`Backend::function_env`]).
    pub async fn on(mut self, backend: &Backend, secret_id: &str, candidate: bool) -> Result<Run> {
        if self.lambda.lambda_binaries.is_some() {
            self.function_env = backend.function_env(secret_id, candidate).await?;
        }
        Ok(self)
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
    // A candidate names the one execution that may use it; an execution name starts once, as
    // on Step Functions (ExecutionAlreadyExists), so a candidate is used once here too.
    let name = match input
        .candidate_ciphertext
        .as_deref()
        .map(rotor_core::candidate::Sealed::parse)
    {
        Some(Ok(sealed)) => sealed.execution,
        // Not a sealed candidate: stage-pending refuses it (Candidate.Invalid, audited).
        _ => uuid::Uuid::new_v4().to_string(),
    };
    let arn = rotor_asl::executor::execution_arn(rotor_runner::STATE_MACHINE_NAME, &name);
    if records.load_execution(&arn)?.is_some() {
        bail!(
            "execution {name} already exists (ExecutionAlreadyExists): an execution name starts once, and a candidate is sealed to one execution name, so it is used once; encrypt the new value again (rotor encrypt, or give the value to rotor rotate)"
        );
    }
    run_durable(
        records,
        services,
        durable::Start::New { name, input },
        run,
        live,
        observer,
    )
    .await
}

/// Runs `start` durably (see [`durable`]), with the live event lines when `live`.
pub async fn run_durable(
    records: &LocalStore,
    services: Services,
    start: durable::Start,
    run: Run,
    live: bool,
    observer: Option<rotor_asl::executor::Observer>,
) -> Result<Finished> {
    let observer = match (live, observer) {
        (false, o) => o,
        (true, None) => Some(Arc::new(crate::output::print_event) as rotor_asl::executor::Observer),
        (true, Some(o)) => Some(Arc::new(move |e: &serde_json::Value| {
            crate::output::print_event(e);
            o(e);
        }) as rotor_asl::executor::Observer),
    };
    let functions = run.lambda.runtime(run.function_env.clone())?;
    let options = durable::Options {
        real_time: run.real_time,
        seed: run.seed,
        observer,
        invoker: functions
            .clone()
            .map(|f| f as Arc<dyn rotor_asl::task::FunctionInvoker>),
    };
    let binaries = functions.is_some();
    let ran = durable::run(records, services.clone(), start, options).await;
    if let Some(functions) = functions {
        functions.stop().await;
    }
    let (record, outcome) = ran?;
    if binaries {
        cache_audit_record(records, &services, &outcome).await;
    }
    let ending = ending(&outcome);
    let error = outcome.error.clone();
    Ok(Finished {
        execution_id: record.execution_id,
        name: record.name,
        secret_id: record.secret_id,
        outcome,
        ending,
        error,
    })
}

/// The audit sink of [`cache_audit_record`]: records only (the function put the metrics).
struct RecordOnly(LocalStore);

#[async_trait::async_trait]
impl rotor_core::ports::AuditSink for RecordOnly {
    async fn record(&self, record: &rotor_core::ports::AuditRecord) -> rotor_core::Result<()> {
        self.0.record(record).await
    }
    async fn metric(&self, _: &rotor_core::ports::Metric) -> rotor_core::Result<()> {
        Ok(())
    }
}

/// With `--lambda-binaries` the audit-log function writes the record where its backend keeps
/// them (on aws: CloudWatch), not into this machine's cache, which `rotor audit` and `rotor
/// rollback` read: record it there too, from the input the execution gave the function (the
/// audit sink is idempotent per execution, so on the local store it stays one record).
async fn cache_audit_record(records: &LocalStore, services: &Services, outcome: &Outcome) {
    let Some(input) = outcome.events.iter().rev().find_map(|e| {
        let d = e.get("taskScheduledEventDetails")?;
        let params: serde_json::Value = serde_json::from_str(d["parameters"].as_str()?).ok()?;
        let function = params["FunctionName"].as_str()?;
        (rotor_asl::task::resolve_function(function, ["audit-log"]) == Some("audit-log"))
            .then(|| params["Payload"].clone())
    }) else {
        return;
    };
    let Ok(input) = serde_json::from_value::<rotor_core::events::AuditInput>(input) else {
        return;
    };
    let mut local = services.clone();
    local.audit = Arc::new(RecordOnly(records.clone()));
    if let Err(e) = rotor_core::handlers::audit_log(&local, input).await {
        eprintln!("rotor: warning: the audit record could not be kept in the local cache: {e}");
    }
}

pub fn report(finished: &Finished, json: bool) -> Result<u8> {
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
        use crate::output::clean;
        println!("execution {}", clean(&finished.execution_id));
        println!("result: {}", finished.ending.as_str());
        if let Some(e) = &o.error {
            println!("error: {}", clean(e));
            println!("cause: {}", clean(o.cause.as_deref().unwrap_or("(none)")));
        }
        if finished.ending == Ending::Interrupted {
            println!(
                "to go on: rotor resume --execution {} --reason \"...\" (or rotor recover --secret {} --reason \"...\")",
                finished.name,
                clean(&finished.secret_id)
            );
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
    refuse_pending: bool,
) -> Result<Policy> {
    let info = store.describe(secret).await?;
    let policy = Policy::from_tags(secret, &info.tags)?;
    if refuse_pending {
        // One rotation at a time: refused before anything is encrypted or started (an
        // in-process rotate lets the state machine refuse it instead, audited).
        if let Some(p) = info.version_with(rotor_core::secret::AWSPENDING) {
            return Err(rotor_core::RotorError::InProgress {
                secret_id: info.id.clone(),
                version_id: p.version_id.clone(),
            }
            .into());
        }
    }
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
    Ok(rotor_core::limits::validate_candidate(value, true)?)
}

/// A new candidate for a rotation of `secret`: `value` sealed to a fresh execution name (see
/// `crate::start::candidate_execution_name`), valid for `valid_for` from now. Answers the
/// `candidate_ciphertext` and the execution name it is sealed for.
pub async fn seal_new_candidate(
    kms: &dyn Kms,
    secret: &str,
    valid_for: chrono::Duration,
    value: &SecretValue,
) -> Result<(String, String)> {
    let now = chrono::Utc::now();
    let name = crate::start::candidate_execution_name(secret, now);
    let text = rotor_core::candidate::seal(kms, secret, &name, now + valid_for, value)
        .await
        .map_err(|e| anyhow!(e))?;
    Ok((text, name))
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
                if input.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                    bail!("the execution input has no \"reason\": say why (it is recorded in the audit trail)");
                }
                secrets
                    .describe(&input.secret_id)
                    .await
                    .map_err(|e| anyhow!(e))?;
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
                    false,
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
                    Some(value) => Some(
                        seal_new_candidate(
                            services.kms.as_ref(),
                            secret,
                            rotor_core::candidate::IMMEDIATE_VALIDITY,
                            value,
                        )
                        .await?
                        .0,
                    ),
                    None => None,
                };
                let input = ExecutionInput {
                    action: Action::Rotate,
                    secret_id: secret.clone(),
                    candidate_ciphertext,
                    requested_by: Some(requester(&backend, args.requested_by.as_deref()).await?),
                    reason: args.reason.clone(),
                    target_version_id: None,
                    force: false,
                    recovery: None,
                };
                (input, services, records)
            }
            (None, None) => bail!("give --secret or --input"),
        };
        refuse_if_interrupted(&records, &input.secret_id)?;
        let candidate = input.candidate_ciphertext.is_some();
        let run = Run::from_flags(global, &args.run)
            .on(&backend, &input.secret_id, candidate)
            .await?;
        let finished = execute(&records, services, input, run, !args.run.json).await?;
        report(&finished, args.run.json)
    })
}

pub fn rollback(global: &GlobalArgs, args: RollbackArgs) -> Result<u8> {
    let rt = store::runtime()?;
    rt.block_on(async {
        let backend = Backend::open(global, Need::Existing).await?;
        let info = backend.secrets().describe(&args.secret).await?;
        let (services, records) = backend.services(&args.secret, false).await?;
        refuse_if_interrupted(&records, &info.id)?;
        let plan = rollback_plan(
            &info,
            &records.audit_records(Some(&args.secret))?,
            args.to_version.as_deref(),
        )?;
        let plan = match plan {
            RollbackPlan::Move(m) => Some(m),
            // The state machine refuses it, audited (AWSPENDING staged, nothing to go back to).
            RollbackPlan::Refuse => None,
            RollbackPlan::Nothing(why) => {
                if args.run.json {
                    println!(
                        "{}",
                        serde_json::json!({"execution_id": null, "status": null, "outcome": "nothing to do", "reason": why})
                    );
                } else {
                    println!("nothing to do: {why}");
                }
                return Ok(exit::OK);
            }
        };
        if let Some(plan) = &plan {
            if !args.run.json {
                println!(
                    "roll back {}: AWSCURRENT {} -> {} ({}){}",
                    crate::output::clean(&args.secret),
                    plan.from,
                    plan.to,
                    plan.why,
                    if args.force {
                        "; --force: the target is not probed"
                    } else {
                        "; the target is probed first"
                    }
                );
            }
            if !args.yes && !confirm("Proceed?")? {
                println!("not rolled back");
                return Ok(exit::FAILED);
            }
        }
        let input = ExecutionInput {
            action: Action::Rollback,
            secret_id: args.secret.clone(),
            candidate_ciphertext: None,
            requested_by: Some(requester(&backend, args.who.requested_by.as_deref()).await?),
            reason: Some(args.who.reason.clone()),
            target_version_id: plan.map(|p| p.to),
            force: args.force,
            recovery: None,
        };
        let run = Run::from_flags(global, &args.run)
            .on(&backend, &args.secret, false)
            .await?;
        let finished = execute(&records, services, input, run, !args.run.json).await?;
        report(&finished, args.run.json)
    })
}

/// Refuses to start on a secret with an interrupted execution here: it may have left an
/// unverified value live (stopped after Promote) or a candidate staged; `rotor recover`
/// finishes it first.
pub fn refuse_if_interrupted(records: &LocalStore, secret: &str) -> Result<()> {
    let interrupted = records
        .list_executions(Some(secret))?
        .into_iter()
        .find(|r| durable::is_interrupted(records, r));
    if let Some(r) = interrupted {
        let promoted = r.events.iter().any(|e| {
            e["type"] == "TaskStateExited" && e["stateExitedEventDetails"]["name"] == "Promote"
        });
        bail!(
            "secret {secret} has an interrupted execution, {} ({}): {}; finish it first with rotor recover --secret {secret} --reason \"...\"",
            r.name,
            r.status,
            if promoted {
                "it stopped after Promote, so its new value is live but the application was not proven with it"
            } else {
                "it stopped before Promote, and may have a candidate staged"
            }
        );
    }
    Ok(())
}

/// Asks on a terminal; anything but y/yes is no. Without a terminal (scripts, CI) the
/// command goes on: `--yes` is for terminals.
fn confirm(question: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Where a manual rollback goes, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackPlan {
    Move(Move),
    /// AWSCURRENT is already on the target: a second identical rollback changes nothing.
    Nothing(String),
    /// No rollback is possible now (a candidate is staged, or there is nothing to go back
    /// to): the state machine refuses it, with the named error, and audits the refusal.
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub from: String,
    pub to: String,
    pub why: String,
}

/// The version a manual rollback goes back to: `--to-version`, else the version that was
/// AWSCURRENT before the last rotation the audit trail records as `rotated` (it passed its
/// probes then), else AWSPREVIOUS. A revert never leaves its rejected candidate as either: it
/// is not `rotated` in the audit trail, and the revert puts AWSPREVIOUS back where it was.
pub fn rollback_plan(
    info: &rotor_core::secret::SecretInfo,
    audit: &[rotor_core::ports::AuditRecord],
    to_version: Option<&str>,
) -> Result<RollbackPlan> {
    use rotor_core::secret::{AWSCURRENT, AWSPENDING, AWSPREVIOUS};
    let id = &info.id;
    if info.version_with(AWSPENDING).is_some() {
        return Ok(RollbackPlan::Refuse);
    }
    let current = info
        .version_with(AWSCURRENT)
        .map(|v| v.version_id.clone())
        .ok_or_else(|| anyhow!("secret {id} has no AWSCURRENT version"))?;
    let (to, why) = match to_version {
        Some(v) => {
            if !info.versions.iter().any(|x| x.version_id == v) {
                bail!("secret {id} has no version {v} (see rotor secret show {id})");
            }
            (v.to_string(), format!("version {v}, as --to-version asks"))
        }
        None => {
            let last = audit
                .iter()
                .rev()
                .find(|r| r.outcome == "rotated" && r.old_version_id.is_some());
            match last {
                Some(r) => (
                    r.old_version_id.clone().unwrap_or_default(),
                    format!(
                        "the version before the rotation of {} by {} (execution {})",
                        r.finished_at,
                        crate::output::clean(r.requested_by.as_deref().unwrap_or("?")),
                        r.execution_id.rsplit(':').next().unwrap_or_default()
                    ),
                ),
                None => match info.version_with(AWSPREVIOUS) {
                    Some(p) => (
                        p.version_id.clone(),
                        "AWSPREVIOUS (no rotation of it is in this audit trail)".to_string(),
                    ),
                    None => return Ok(RollbackPlan::Refuse),
                },
            }
        }
    };
    if to == current {
        return Ok(RollbackPlan::Nothing(format!(
            "AWSCURRENT is already on {to}, {why}"
        )));
    }
    if !info.versions.iter().any(|x| x.version_id == to) {
        bail!("secret {id}: version {to} ({why}) no longer exists; name one with --to-version");
    }
    Ok(RollbackPlan::Move(Move {
        from: current,
        to,
        why,
    }))
}

/// `local:<user>` from the environment, so the audit trail names someone by default.
pub fn default_requester() -> Option<String> {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("USERNAME").ok())
        .filter(|u| !u.is_empty())
        .or_else(os_user)
        .map(|u| format!("local:{u}"))
}

/// The name of the process's user from the user database (no $USER in cron, containers, CI).
#[cfg(unix)]
fn os_user() -> Option<String> {
    // SAFETY: getpwuid returns a pointer into static storage or null; it is read at once, on
    // the one thread that asks.
    unsafe {
        let uid = libc::getuid();
        let pw = libc::getpwuid(uid);
        if pw.is_null() || (*pw).pw_name.is_null() {
            return Some(format!("uid-{uid}"));
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

#[cfg(not(unix))]
fn os_user() -> Option<String> {
    None
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
