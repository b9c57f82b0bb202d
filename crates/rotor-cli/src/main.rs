//! `rotor`: safe, audited rotation of API keys and IAM access keys.

mod sfn;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rotor",
    version,
    about = "Safe, audited rotation of API keys and AWS IAM access keys"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate and run Amazon States Language state machines locally.
    #[command(subcommand)]
    Sfn(sfn::SfnCommand),
}

/// Exit codes shared by every command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sfn(cmd) => sfn::run(cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rotor: error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}
