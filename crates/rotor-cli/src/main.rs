//! `rotor`: safe, audited rotation of API keys and IAM access keys.

mod demo;
mod output;
mod records;
mod secret;
mod sfn;
mod store;
mod workflow;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rotor",
    version,
    about = "Safe, audited rotation of API keys and AWS IAM access keys"
)]
struct Cli {
    /// The local store (default: $ROTOR_STORE, else ./.rotor).
    #[arg(long, global = true, value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate and run Amazon States Language state machines locally.
    #[command(subcommand)]
    Sfn(sfn::SfnCommand),
    /// Create, list and inspect secrets in the local store (values are never printed but by `get --reveal`).
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Rotate a secret through the rotation state machine.
    Rotate(workflow::RotateArgs),
    /// Roll a secret back to its previous version (AWSPREVIOUS) through the state machine.
    Rollback(workflow::RollbackArgs),
    /// Executions and their histories (events as in GetExecutionHistory).
    History(records::HistoryArgs),
    /// Audit records: who rotated what, when, with which outcome.
    Audit(records::AuditArgs),
    /// Seed demo secrets, start local vendor and app stand-ins, and run every scenario.
    Demo(demo::DemoArgs),
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
}

fn main() -> ExitCode {
    // `rotor history --json | head` should end quietly, as other Unix tools do, not panic.
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let store = cli.store;
    let result = match cli.command {
        Command::Sfn(cmd) => sfn::run(cmd),
        Command::Secret(cmd) => secret::run(store, cmd),
        Command::Rotate(args) => workflow::rotate(store, args),
        Command::Rollback(args) => workflow::rollback(store, args),
        Command::History(args) => records::history(store, args),
        Command::Audit(args) => records::audit(store, args),
        Command::Demo(args) => demo::run(store, args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rotor: error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}
