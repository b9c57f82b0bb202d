//! `rotor start`: start the deployed rotation state machine on AWS Step Functions (what CI
//! uses), and reading executions back from Step Functions (`rotor history --execution-arn`).
//!
//! The execution input carries the candidate only as KMS ciphertext sealed to this execution
//! (encryption context `{"SecretId", "Execution", "NotAfter"}`), never its value.
//!
//! Execution names are deterministic and unique:
//! `<action>-<secret slug>-<UTC yyyymmddThhmmss>-<hash>`, where the slug is the secret id with
//! every character outside `[A-Za-z0-9_-]` replaced by `-` (runs collapsed, cut to fit) and the
//! hash is the first 8 hex digits of the SHA-256 of the JSON array
//! `[secret_id, action, requested_by, reason, start time in RFC 3339 with milliseconds]`.
//! 1 to 80 characters of `[A-Za-z0-9_-]`, as Step Functions requires; the same request in the
//! same millisecond gets the same name, which Step Functions refuses to start twice.
//!
//! A rotation with a candidate is named by its candidate instead: the candidate is sealed to
//! one execution name (see `rotor_core::candidate`), `rotate-<slug>-<stamp>-<8 random hex>`,
//! made when the value is encrypted (here, or earlier by `rotor encrypt`).

use crate::backend::{sdk_error, Backend, BackendKind, GlobalArgs, Need};
use crate::exit;
use crate::store;
use crate::workflow::{self, Ending};
use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use rotor_asl::executor::{timestamp, Outcome, Status};
use rotor_aws::errors::Call;
use rotor_core::candidate::Sealed;
use rotor_core::events::{Action, ExecutionInput};
use rotor_core::secret::SecretValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SERVICE: &str = "Step Functions";

/// Step Functions' execution name limit.
pub const MAX_NAME_CHARS: usize = 80;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActionArg {
    Rotate,
    Rollback,
}

#[derive(Args)]
pub struct StartArgs {
    /// The secret (Secrets Manager name or ARN).
    #[arg(long)]
    secret: String,
    /// rotate (default) or rollback (AWSCURRENT back to AWSPREVIOUS).
    #[arg(long, value_enum, default_value = "rotate")]
    action: ActionArg,
    /// The new value (vendor keys) from this environment variable (never printed; one trailing
    /// newline is dropped).
    #[arg(long, value_name = "VAR", conflicts_with_all = ["candidate_file", "candidate_ciphertext_env"])]
    candidate_env: Option<String>,
    /// The new value (vendor keys) from a file; one trailing newline is dropped.
    #[arg(long, value_name = "FILE", conflicts_with = "candidate_ciphertext_env")]
    candidate_file: Option<PathBuf>,
    /// The candidate already encrypted by `rotor encrypt --secret ID`, from this environment
    /// variable: the execution takes the name it was sealed for. rotor never sees the value.
    #[arg(long, value_name = "VAR")]
    candidate_ciphertext_env: Option<String>,
    #[command(flatten)]
    who: workflow::Who,
    /// The deployed rotation state machine.
    #[arg(long, env = "ROTOR_STATE_MACHINE_ARN", value_name = "ARN")]
    state_machine: Option<String>,
    /// Wait for the execution to end and print its outcome (exit 0 succeeded, 3 abandoned,
    /// 4 rolled back, 1 otherwise).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up waiting after this many seconds (the execution goes on; exit 1).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    timeout: u64,
    /// Print one JSON document: executionArn, name, status, output, error, cause.
    #[arg(long)]
    json: bool,
}

/// A deterministic, unique execution name (see the module documentation).
pub fn execution_name(
    action: &str,
    secret_id: &str,
    requested_by: Option<&str>,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> String {
    let fields = json!([secret_id, action, requested_by, reason, timestamp(at)]);
    let digest = Sha256::digest(fields.to_string().as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    name_ending(action, secret_id, at, &hash)
}

/// The name of the one execution a new candidate is sealed for: as [`execution_name`], with 8
/// random hex digits (the nonce) for the hash: the name exists before the request does
/// (`rotor encrypt` makes it, the workflow's `rotor start` uses it).
pub fn candidate_execution_name(secret_id: &str, at: DateTime<Utc>) -> String {
    let nonce: u32 = rand::random();
    name_ending("rotate", secret_id, at, &format!("{nonce:08x}"))
}

/// `<action>-<secret slug>-<UTC yyyymmddThhmmss>-<tail>`, within Step Functions' limits.
fn name_ending(action: &str, secret_id: &str, at: DateTime<Utc>, tail: &str) -> String {
    let stamp = at.format("%Y%m%dT%H%M%S").to_string();
    let budget = MAX_NAME_CHARS - action.len() - stamp.len() - tail.len() - 3;
    let mut slug = String::new();
    for c in secret_id.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if c == '-' && (slug.is_empty() || slug.ends_with('-')) {
            continue;
        }
        slug.push(c);
    }
    slug.truncate(budget);
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "secret" } else { slug };
    format!("{action}-{slug}-{stamp}-{tail}")
}

/// The candidate from an environment variable: missing or empty is a usage error naming it.
fn candidate_from_env(var: &str) -> Result<SecretValue> {
    from_env(var, "--candidate-env")
}

/// `var`'s value (`flag` names where it came from): missing, empty or not UTF-8 is a usage
/// error naming both; one trailing newline is dropped.
pub fn from_env(var: &str, flag: &str) -> Result<SecretValue> {
    let value = match std::env::var_os(var) {
        None => bail!("the environment variable {var} ({flag}) is not set"),
        Some(v) if v.is_empty() => {
            bail!("the environment variable {var} ({flag}) is empty")
        }
        Some(v) => v
            .into_string()
            .map_err(|_| anyhow!("the environment variable {var} ({flag}) is not valid UTF-8"))?,
    };
    let mut text = value;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(SecretValue::new(text))
}

/// A candidate `rotor encrypt` made, from `var`: refused here already when it is not one or
/// has expired (stage-pending checks again, and decrypts it only for its own execution).
fn sealed_from_env(var: &str) -> Result<Sealed> {
    let text = from_env(var, "--candidate-ciphertext-env")?;
    Sealed::parse(text.expose())
        .and_then(|sealed| sealed.check(&sealed.execution, Utc::now()).map(|()| sealed))
        .map_err(|e| anyhow!("the environment variable {var} (--candidate-ciphertext-env): {e}"))
}

pub use rotor_aws::sfn::{describe, Described};

/// Every event of an execution, oldest first, shaped as rotor's local history: the JSON
/// GetExecutionHistory answers (`id`, `previousEventId`, `type`, `<type>EventDetails` in
/// camelCase, exactly as sent) with `timestamp` as an RFC 3339 string with milliseconds.
pub async fn execution_history(client: &aws_sdk_sfn::Client, arn: &str) -> Result<Vec<Value>> {
    let events = rotor_aws::sfn::execution_history(client, arn).await?;
    Ok(events.into_iter().map(local_shape).collect())
}

/// An event as GetExecutionHistory sent it, with its epoch-seconds `timestamp` as RFC 3339 and
/// its fields in the local history's order (`id`, `previousEventId`, `timestamp`, `type`, then
/// the rest as sent).
fn local_shape(event: Value) -> Value {
    let Value::Object(mut fields) = event else {
        return event;
    };
    if let Some(t) = fields.get_mut("timestamp") {
        if let Some(secs) = t.as_f64() {
            if let Some(at) = DateTime::from_timestamp_millis((secs * 1000.0).round() as i64) {
                *t = Value::String(timestamp(at));
            }
        }
    }
    let mut shaped = serde_json::Map::with_capacity(fields.len());
    for key in ["id", "previousEventId", "timestamp", "type"] {
        if let Some(v) = fields.shift_remove(key) {
            shaped.insert(key.to_string(), v);
        }
    }
    shaped.extend(fields);
    Value::Object(shaped)
}

fn status(name: &str) -> Status {
    match name {
        "SUCCEEDED" => Status::Succeeded,
        "TIMED_OUT" => Status::TimedOut,
        "ABORTED" => Status::Aborted,
        _ => Status::Failed,
    }
}

/// The error and cause of a failed execution: DescribeExecution's, else its last
/// Execution{Failed,Aborted,TimedOut} event's.
fn failure(described: &Described, events: &[Value]) -> (Option<String>, Option<String>) {
    let details = events.iter().rev().find_map(|e| {
        [
            "executionFailedEventDetails",
            "executionAbortedEventDetails",
            "executionTimedOutEventDetails",
        ]
        .iter()
        .find_map(|k| e.get(*k))
    });
    let field = |f: &str| {
        details
            .and_then(|d| d.get(f))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    (
        described.error.clone().or_else(|| field("error")),
        described.cause.clone().or_else(|| field("cause")),
    )
}

fn parse_output(output: Option<&str>) -> Value {
    match output {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into())),
    }
}

fn print_document(
    arn: &str,
    name: &str,
    status: &str,
    output: &Value,
    error: Option<&str>,
    cause: Option<&str>,
) {
    println!(
        "{}",
        json!({
            "executionArn": arn,
            "name": name,
            "status": status,
            "output": output,
            "error": error,
            "cause": cause,
        })
    );
}

pub fn start(global: &GlobalArgs, args: StartArgs) -> Result<u8> {
    if global.backend() != BackendKind::Aws {
        bail!(
            "rotor start starts the deployed state machine on AWS Step Functions: give --backend aws (or ROTOR_BACKEND=aws); on the local backend use rotor rotate / rotor rollback"
        );
    }
    let Some(state_machine) = args.state_machine.clone().filter(|s| !s.trim().is_empty()) else {
        bail!("no state machine to start: give --state-machine ARN or set ROTOR_STATE_MACHINE_ARN");
    };
    let candidate = match (&args.candidate_env, &args.candidate_file) {
        (Some(var), _) => Some(candidate_from_env(var)?),
        (None, Some(file)) => Some(crate::secret::read_value(Some(file), false, "candidate")?),
        (None, None) => None,
    };
    let sealed = match &args.candidate_ciphertext_env {
        Some(var) => Some(sealed_from_env(var)?),
        None => None,
    };
    if (candidate.is_some() || sealed.is_some()) && args.action == ActionArg::Rollback {
        bail!("a rollback takes no candidate (it moves AWSCURRENT back to AWSPREVIOUS)");
    }
    if let Some(value) = &candidate {
        workflow::check_candidate(value)?;
    }
    let rt = store::runtime()?;
    rt.block_on(async {
        let backend = Backend::open(global, Need::Existing).await?;
        let aws = backend.aws().expect("the aws backend");
        let secrets = backend.secrets();
        let (action, action_name) = match args.action {
            ActionArg::Rotate => {
                workflow::preflight(
                    secrets.as_ref(),
                    &args.secret,
                    candidate.is_some() || sealed.is_some(),
                    "--candidate-env, --candidate-file or --candidate-ciphertext-env",
                    true,
                )
                .await?;
                (Action::Rotate, "rotate")
            }
            ActionArg::Rollback => {
                secrets.describe(&args.secret).await?;
                (Action::Rollback, "rollback")
            }
        };
        // A candidate names its execution (the name it is sealed for); otherwise the request does.
        let now = Utc::now();
        let (candidate_ciphertext, sealed_for) = match (&candidate, &sealed) {
            (Some(value), _) => {
                let key = aws.candidate_key(&args.secret).await?;
                let kms = rotor_aws::AwsKms::new(&aws.config, key);
                let (text, name) = workflow::seal_new_candidate(
                    &kms,
                    &args.secret,
                    rotor_core::candidate::IMMEDIATE_VALIDITY,
                    value,
                )
                .await?;
                (Some(text), Some(name))
            }
            (None, Some(s)) => (Some(s.encode()), Some(s.execution.clone())),
            (None, None) => (None, None),
        };
        drop(candidate);
        let input = ExecutionInput {
            action,
            secret_id: args.secret.clone(),
            candidate_ciphertext,
            requested_by: Some(
                workflow::requester(&backend, args.who.requested_by.as_deref()).await?,
            ),
            reason: Some(args.who.reason.clone()),
            target_version_id: None,
            force: false,
            recovery: None,
        };
        let name = sealed_for.unwrap_or_else(|| {
            execution_name(
                action_name,
                &args.secret,
                input.requested_by.as_deref(),
                input.reason.as_deref(),
                now,
            )
        });
        let sfn = aws.sfn();
        let started = sfn
            .start_execution()
            .state_machine_arn(&state_machine)
            .name(&name)
            .input(serde_json::to_string(&input)?)
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    &e,
                    Call::new(
                        SERVICE,
                        "StartExecution",
                        &format!("state machine {state_machine}"),
                    ),
                )
            })?;
        let arn = started.execution_arn().to_string();
        if !args.wait {
            if args.json {
                print_document(&arn, &name, "RUNNING", &Value::Null, None, None);
            } else {
                println!("{arn}");
            }
            return Ok(exit::OK);
        }
        wait(
            &sfn,
            &arn,
            &name,
            Duration::from_secs(args.timeout),
            args.json,
        )
        .await
    })
}

/// Polls DescribeExecution until the execution is no longer running, then prints the outcome.
async fn wait(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    name: &str,
    timeout: Duration,
    json: bool,
) -> Result<u8> {
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(500);
    let described = loop {
        let d = describe(sfn, arn).await?;
        if d.status != "RUNNING" && d.status != "PENDING_REDRIVE" {
            break d;
        }
        if Instant::now() >= deadline {
            if json {
                print_document(arn, name, &d.status, &Value::Null, None, None);
            } else {
                println!("execution {arn}");
                println!("status: {}", d.status);
            }
            eprintln!(
                "rotor: execution {arn} is still {} after {}s; it goes on (rotor history --execution-arn {arn})",
                d.status,
                timeout.as_secs()
            );
            return Ok(exit::FAILED);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(interval.min(left)).await;
        interval = (interval * 2).min(Duration::from_secs(5));
    };
    let events = execution_history(sfn, arn).await?;
    let (error, cause) = failure(&described, &events);
    let output = parse_output(described.output.as_deref());
    let ending = workflow::ending(&Outcome {
        status: status(&described.status),
        output: Some(output.clone()).filter(|o| !o.is_null()),
        error: error.clone(),
        cause: cause.clone(),
        events,
    });
    if json {
        print_document(
            arn,
            &described.name,
            &described.status,
            &output,
            error.as_deref(),
            cause.as_deref(),
        );
    } else {
        println!("execution {arn}");
        println!("status: {}", described.status);
        println!("result: {}", ending.as_str());
        let promoted = &output["promoted"];
        if let Some(old) = promoted["previous_version_id"].as_str() {
            println!("old version: {old}");
        }
        if let Some(new) = promoted["current_version_id"].as_str() {
            println!("new version: {new}");
        }
        if let Some(e) = &error {
            println!("error: {e}");
            println!("cause: {}", cause.as_deref().unwrap_or("(none)"));
        }
    }
    Ok(match described.status.as_str() {
        "SUCCEEDED" | "FAILED" => ending.exit_code(),
        _ if ending == Ending::Abandoned || ending == Ending::RolledBack => ending.exit_code(),
        _ => exit::FAILED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 9, 5, 7).unwrap()
    }

    fn valid(name: &str) -> bool {
        (1..=MAX_NAME_CHARS).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn names_are_deterministic_and_follow_the_request() {
        let a = execution_name(
            "rotate",
            "prod/openai",
            Some("github:alice"),
            Some("r"),
            at(),
        );
        assert_eq!(
            a,
            execution_name(
                "rotate",
                "prod/openai",
                Some("github:alice"),
                Some("r"),
                at()
            )
        );
        assert!(a.starts_with("rotate-prod-openai-20261128T090507-"), "{a}");
        assert_eq!(a.len(), "rotate-prod-openai-20261128T090507-".len() + 8);
        assert!(valid(&a));
        for other in [
            execution_name(
                "rollback",
                "prod/openai",
                Some("github:alice"),
                Some("r"),
                at(),
            ),
            execution_name("rotate", "prod/openai", Some("github:bob"), Some("r"), at()),
            execution_name("rotate", "prod/openai", Some("github:alice"), None, at()),
            execution_name(
                "rotate",
                "prod/openai",
                Some("github:alice"),
                Some("r"),
                at() + chrono::Duration::milliseconds(1),
            ),
        ] {
            assert_ne!(a, other);
            assert!(valid(&other), "{other}");
        }
    }

    #[test]
    fn names_fit_step_functions_limits() {
        let long = "a/".repeat(100);
        for secret in [
            long.as_str(),
            "///",
            "ünïcode/ß",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/x-AbCdEf",
        ] {
            for action in ["rotate", "rollback"] {
                let n = execution_name(action, secret, None, None, at());
                assert!(valid(&n), "{n}");
                assert!(!n.contains("--"), "{n}");
            }
        }
        assert!(execution_name("rotate", "///", None, None, at()).starts_with("rotate-secret-"));
    }

    #[test]
    fn history_timestamps_become_rfc3339() {
        let e =
            local_shape(json!({"id": 1, "timestamp": 1764320707.123, "type": "ExecutionStarted"}));
        assert_eq!(e["timestamp"], "2025-11-28T09:05:07.123Z");
        assert_eq!(e["id"], 1);
    }
}
