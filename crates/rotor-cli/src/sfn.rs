//! `rotor sfn validate|run`: the local ASL executor on the command line.

use crate::exit;
use crate::output::clean;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use rotor_asl::definition::StateMachine;
use rotor_asl::error::StatesError;
use rotor_asl::executor::{execute, Outcome, RunOptions, Status, MAX_PAYLOAD_BYTES};
use rotor_asl::mock::MockTasks;
use rotor_asl::task::{LambdaTasks, TaskHandler, TaskRequest};
use rotor_asl::validate::{validate, Diagnostic};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum SfnCommand {
    /// Check a definition; exit 0 when valid, 2 when not.
    Validate {
        file: PathBuf,
        /// Print `{"valid": bool, "diagnostics": [...]}`.
        #[arg(long)]
        json: bool,
    },
    /// Run a definition locally on a virtual clock.
    Run(RunArgs),
}

#[derive(Args)]
pub struct RunArgs {
    file: PathBuf,
    /// Execution input: JSON text, or @FILE to read it from a file.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Execution name (default: a random UUID, as Step Functions does).
    #[arg(long)]
    name: Option<String>,
    /// A Step Functions Local mock config file.
    #[arg(long, requires = "test_case", conflicts_with = "lambda_binaries")]
    mock_config: Option<PathBuf>,
    /// The test case of the mock config to use.
    #[arg(long, requires = "mock_config")]
    test_case: Option<String>,
    /// Really wait for Waits and retry intervals instead of advancing a virtual clock (the same
    /// as --clock real).
    #[arg(long)]
    real_time: bool,
    /// Seed for retry jitter and random intrinsics (default: random).
    #[arg(long)]
    seed: Option<u64>,
    /// Print exactly one JSON document: status, output, error, cause, events.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    lambda: crate::functions::LambdaFlags,
}

/// `--clock real` / ROTOR_CLOCK=real is the same as `run --real-time`; the other global
/// options reach the functions of `--lambda-binaries`.
pub fn run(cmd: SfnCommand, global: &crate::backend::GlobalArgs) -> Result<u8> {
    match cmd {
        SfnCommand::Validate { file, json } => validate_file(&file, json),
        SfnCommand::Run(mut args) => {
            args.real_time |= global.clock == Some(crate::backend::ClockKind::Real);
            let env = crate::functions::global_env(global);
            run_file(args, env)
        }
    }
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    String::from_utf8(bytes)
        .map_err(|e| anyhow!("{what} {} is not valid UTF-8: {e}", path.display()))
}

fn load_definition(path: &Path) -> Result<Value> {
    let text = read_text(path, "definition")?;
    serde_json::from_str(&text)
        .with_context(|| format!("definition {} is not valid JSON", path.display()))
}

/// The definition file's path as a line may show it.
fn shown(file: &Path) -> String {
    clean(&file.display().to_string()).into_owned()
}

fn print_diagnostics(file: &Path, diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        // State names, locations and messages echo the definition.
        let state = d
            .state
            .as_deref()
            .map(|s| format!(" in state '{}'", clean(s)))
            .unwrap_or_default();
        eprintln!(
            "{}: {}{state} at {}: {}",
            shown(file),
            clean(&d.code),
            clean(&d.location),
            clean(&d.message)
        );
    }
}

fn validate_file(file: &Path, as_json: bool) -> Result<u8> {
    let definition = load_definition(file)?;
    let diagnostics = validate(&definition);
    if as_json {
        println!(
            "{}",
            json!({"valid": diagnostics.is_empty(), "diagnostics": diagnostics})
        );
    } else if diagnostics.is_empty() {
        println!("{}: valid", shown(file));
    } else {
        print_diagnostics(file, &diagnostics);
        eprintln!("{}: {} problem(s)", shown(file), diagnostics.len());
    }
    Ok(if diagnostics.is_empty() {
        exit::OK
    } else {
        exit::USAGE
    })
}

fn parse_input(arg: &str) -> Result<Value> {
    let (text, origin) = match arg.strip_prefix('@') {
        Some(path) => (
            read_text(Path::new(path), "input file")?,
            format!("input file {path}"),
        ),
        None => (arg.to_string(), "--input".to_string()),
    };
    if text.len() > MAX_PAYLOAD_BYTES {
        bail!(
            "{origin} is {} bytes; Step Functions accepts at most {MAX_PAYLOAD_BYTES}",
            text.len()
        );
    }
    serde_json::from_str(&text).with_context(|| format!("{origin} is not valid JSON"))
}

/// Without a mock for it, a Task has nothing to call: fail it with a message that says so.
struct NoTasks;

#[async_trait::async_trait]
impl TaskHandler for NoTasks {
    async fn call(&self, request: TaskRequest) -> std::result::Result<Value, StatesError> {
        Err(StatesError::new(
            "States.TaskFailed",
            format!(
                "no handler for resource '{}' of state '{}': give --mock-config/--test-case to mock it",
                request.resource, request.state_name
            ),
        ))
    }
}

/// The mock config names state machines; a definition file `rotation.asl.json` is `rotation`.
fn machine_name(file: &Path) -> String {
    let stem = file
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("StateMachine");
    stem.split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("StateMachine")
        .to_string()
}

fn run_file(args: RunArgs, function_env: Vec<(String, String)>) -> Result<u8> {
    let definition = load_definition(&args.file)?;
    let machine = match StateMachine::from_value(&definition) {
        Ok(m) => m,
        Err(diagnostics) => {
            print_diagnostics(&args.file, &diagnostics);
            bail!(
                "{} is not a valid state machine ({} problem(s))",
                args.file.display(),
                diagnostics.len()
            );
        }
    };
    let input = parse_input(&args.input)?;
    let machine_name = machine_name(&args.file);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The Runtime API's servers run on this runtime.
    let functions = {
        let _entered = runtime.enter();
        args.lambda.runtime(function_env)?
    };
    let handler: Arc<dyn TaskHandler> = match (&args.mock_config, &args.test_case) {
        _ if functions.is_some() => Arc::new(LambdaTasks {
            invoker: functions.clone().expect("checked"),
        }),
        (Some(path), Some(case)) => {
            let text = read_text(path, "mock config")?;
            let config: Value = serde_json::from_str(&text)
                .with_context(|| format!("mock config {} is not valid JSON", path.display()))?;
            Arc::new(
                MockTasks::from_config(&config, Some(&machine_name), case, None)
                    .map_err(|e| anyhow!("mock config {}: {e}", path.display()))?,
            )
        }
        _ => Arc::new(NoTasks),
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if name.is_empty() || name.len() > 80 {
        bail!("--name must be 1 to 80 characters, got {}", name.len());
    }
    let mut options = RunOptions::new(name, handler);
    options.state_machine_name = machine_name;
    options.real_time = args.real_time;
    options.seed = args.seed;
    if !args.json {
        options.observer = Some(Arc::new(crate::output::print_event));
    }
    let outcome = runtime.block_on(async {
        let outcome = execute(&machine, input, options).await;
        if let Some(functions) = &functions {
            functions.stop().await;
        }
        outcome
    });
    if args.json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else {
        print_outcome(&outcome);
    }
    Ok(if outcome.status == Status::Succeeded {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn print_outcome(outcome: &Outcome) {
    let status = serde_json::to_value(outcome.status).ok();
    println!(
        "status: {}",
        status.as_ref().and_then(Value::as_str).unwrap_or_default()
    );
    match &outcome.output {
        Some(output) => println!(
            "output: {}",
            serde_json::to_string_pretty(output).unwrap_or_default()
        ),
        None => {
            // A Fail state's or a Task's error and cause: from the definition or the input.
            println!(
                "error: {}",
                clean(outcome.error.as_deref().unwrap_or("(none)"))
            );
            println!(
                "cause: {}",
                clean(outcome.cause.as_deref().unwrap_or("(none)"))
            );
        }
    }
}
