//! `rotor`: safe, audited rotation of API keys and IAM access keys.

mod backend;
mod demo;
mod durable;
mod ecs;
mod encrypt;
mod functions;
mod output;
mod records;
mod recover;
mod secret;
mod sfn;
mod start;
mod store;
mod workflow;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rotor",
    version,
    about = "Safe, audited rotation of API keys and AWS IAM access keys",
    after_help = "Backends: local (default) keeps secrets, KMS, audit and execution records in the local store \
(--store, ROTOR_STORE, else ./.rotor). aws (--backend aws or ROTOR_BACKEND=aws) uses Secrets Manager, KMS, \
CloudWatch and Step Functions; rotate and rollback still run the state machine in-process, and keep their \
execution and audit records in the local store directory as a cache of what ran from this machine \
(rotor history and rotor audit read that cache; rotor history --execution-arn reads Step Functions)."
)]
struct Cli {
    #[command(flatten)]
    global: backend::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate and run Amazon States Language state machines locally.
    #[command(subcommand)]
    Sfn(sfn::SfnCommand),
    /// Create, list and inspect secrets in the local store or Secrets Manager (values are never printed but by `get --reveal`).
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Rotate a secret through the rotation state machine, run in-process (on the aws backend
    /// over Secrets Manager and KMS; the execution record is kept in the local store directory,
    /// a cache of what ran from this machine).
    Rotate(workflow::RotateArgs),
    /// Roll a secret back to its previous version (AWSPREVIOUS) through the state machine, run
    /// in-process (on the aws backend the record is kept in the local cache, as for rotate).
    Rollback(workflow::RollbackArgs),
    /// Go on with an interrupted execution (killed, or stopped by Ctrl-C) from where it stopped,
    /// with the same input; completed states are not run again.
    Resume(recover::ResumeArgs),
    /// Recover every interrupted execution of a secret: abandon its candidate if it stopped
    /// before Promote, else go on with the application probe (and revert on failure).
    Recover(recover::RecoverArgs),
    /// Clear an AWSPENDING that no execution known here owns (audited); an IAM key it holds is
    /// deleted.
    Abort(recover::AbortArgs),
    /// Encrypt a new value (read from stdin) for its rotation, ahead of time: prints only the
    /// candidate (KMS ciphertext sealed to one execution and a deadline), for `rotor start
    /// --candidate-ciphertext-env` or the rotate workflow's candidate_ciphertext input.
    Encrypt(encrypt::EncryptArgs),
    /// Start the deployed rotation state machine on AWS Step Functions (aws backend; what CI uses).
    Start(start::StartArgs),
    /// Executions and their histories (events as in GetExecutionHistory); on the aws backend the
    /// local cache of what ran from here, or one Step Functions execution with --execution-arn.
    History(records::HistoryArgs),
    /// Audit records: who rotated what, when, with which outcome (on the aws backend: of the
    /// rotations run from this machine, from the local cache).
    Audit(records::AuditArgs),
    /// Seed demo secrets, start local vendor and app stand-ins, and run every scenario (local backend).
    Demo(demo::DemoArgs),
    /// The local store's ECS-like services: the consumers a rotation redeploys
    /// (rotor:consumers) on a laptop (local backend).
    #[command(subcommand)]
    Ecs(ecs::EcsCommand),
}

/// Exit codes shared by every command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    /// Rotation abandoned before promote: nothing changed.
    pub const ABANDONED: u8 = 3;
    /// Rotation rolled back after promote.
    pub const ROLLED_BACK: u8 = 4;
    /// The execution was interrupted (SIGINT, SIGTERM) at a state boundary: resumable.
    pub const INTERRUPTED: u8 = 5;
}

fn main() -> ExitCode {
    // `rotor history --json | head` should end quietly, as other Unix tools do, not panic.
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // An empty ROTOR_BACKEND or ROTOR_CLOCK means "not set", as it does for the other variables.
    for var in ["ROTOR_BACKEND", "ROTOR_CLOCK"] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(var);
        }
    }
    let cli = Cli::parse();
    let global = cli.global;
    let result = match cli.command {
        Command::Sfn(cmd) => sfn::run(cmd, &global),
        Command::Secret(cmd) => secret::run(&global, cmd),
        Command::Rotate(args) => workflow::rotate(&global, args),
        Command::Rollback(args) => workflow::rollback(&global, args),
        Command::Resume(args) => recover::resume(&global, args),
        Command::Recover(args) => recover::recover(&global, args),
        Command::Abort(args) => recover::abort(&global, args),
        Command::Encrypt(args) => encrypt::encrypt(&global, args),
        Command::Start(args) => start::start(&global, args),
        Command::History(args) => records::history(&global, args),
        Command::Audit(args) => records::audit(&global, args),
        Command::Demo(_) if global.backend() == backend::BackendKind::Aws => {
            Err(anyhow::anyhow!("rotor demo runs on the local backend only (it seeds the local store and starts loopback stand-ins)"))
        }
        Command::Demo(args) => demo::run(global.store, args),
        Command::Ecs(cmd) => ecs::run(&global, cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A rotor error keeps its stable ASL name in the message, as in histories and audit.
            let named = e
                .chain()
                .find_map(|c| c.downcast_ref::<rotor_core::RotorError>())
                .map(|r| format!("{}: ", r.asl_name()))
                .unwrap_or_default();
            eprintln!("rotor: error: {named}{}", output::clean(&format!("{e:#}")));
            ExitCode::from(error_code(&e))
        }
    }
}

/// The exit code of a command that failed before it could report an outcome: 2 for a bad
/// request (usage, bad input: nothing was changed), 1 for a failure that is not the caller's
/// (AWS throttled or unreachable, an internal error), which trying again later may cure.
fn error_code(e: &anyhow::Error) -> u8 {
    use rotor_core::RotorError;
    match e.chain().find_map(|c| c.downcast_ref::<RotorError>()) {
        Some(RotorError::Throttled(_) | RotorError::Internal(_) | RotorError::ProbeNotReady(_)) => {
            exit::FAILED
        }
        // Refused before it started, as the state machine would refuse it: nothing changed.
        Some(RotorError::InProgress { .. } | RotorError::Conflict { .. }) => exit::ABANDONED,
        _ => exit::USAGE,
    }
}
