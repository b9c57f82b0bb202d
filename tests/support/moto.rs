//! Helpers for tests that run against moto, the AWS emulator that
//! `scripts/test` starts (with its real Step Functions interpreter switched on).
//!
//! * [`endpoint`] — moto's URL from `ROTOR_MOTO_ENDPOINT`; panics when unset
//!   (tests never skip: run them through `scripts/test`).
//! * [`sfn_client`] — a real `aws_sdk_sfn::Client` pointed at moto.
//! * [`run_on_moto`] — create a state machine, run one execution to its end,
//!   return status, output, error/cause and the history events as JSON.
//! * [`reset`] — wipe all of moto's state (see its warning).
//!
//! # Concurrency
//!
//! cargo-nextest runs each test in its own process, several at once, all
//! against the same moto. Tests therefore must not depend on moto being empty:
//! [`run_on_moto`] gives every state machine and execution a unique name, so
//! any number of them can run side by side. **Never call [`reset`] from a test
//! that may run concurrently with others** — it deletes every other test's
//! state machines and executions mid-flight. Use it only in a test binary whose
//! tests are serialised (e.g. a nextest test group with `max-threads = 1`),
//! or not at all.
//!
//! # What moto 5.2.5's interpreter does (pinned in `tests/moto_smoke.rs`)
//!
//! * Pass/Choice/Succeed/Fail/Retry/Catch run; `Wait` and Retry intervals
//!   really sleep (wall clock).
//! * A failed execution has `error`/`cause` in DescribeExecution and an
//!   `ExecutionFailed` event in the history; [`run_on_moto`] reads DescribeExecution
//!   and falls back to the event.
//! * Task states that call Lambda always fail (no Docker, no function); see
//!   `tests/moto_smoke.rs` for the exact error names.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::Value;

/// Environment variable that `scripts/test` sets to moto's base URL.
pub const ENDPOINT_VAR: &str = "ROTOR_MOTO_ENDPOINT";

/// Role ARN given to every state machine (moto does not check it).
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/sfn";

/// moto's region for these tests.
pub const REGION: &str = "us-east-1";

/// How long [`run_on_moto`] waits for an execution to leave RUNNING.
pub const EXECUTION_TIMEOUT: Duration = Duration::from_secs(120);

/// How often [`run_on_moto`] polls DescribeExecution.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// moto's base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
///
/// # Panics
///
/// When `ROTOR_MOTO_ENDPOINT` is unset: these tests need the moto server that
/// `scripts/test` starts, and must fail rather than silently skip.
pub fn endpoint() -> String {
    match std::env::var(ENDPOINT_VAR) {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
        _ => panic!(
            "{ENDPOINT_VAR} is not set: this test needs the moto server. \
             Run the tests with `scripts/test` (e.g. `scripts/test -p rotor-tests`), \
             which installs and starts moto and sets {ENDPOINT_VAR}."
        ),
    }
}

/// The moto-api switch that turns on moto's ASL interpreter (without it,
/// executions stay RUNNING forever with a canned history).
pub const SFN_INTERPRETER_CONFIG: &str = r#"{"stepfunctions":{"execute_state_machine":true}}"#;

/// POST `body` (JSON) to `path` on moto (e.g. `/moto-api/reset`) with a
/// minimal HTTP/1.1 client on `std::net::TcpStream`; returns the response body.
///
/// Only for moto's own `/moto-api/` endpoints: AWS APIs go through the SDK.
///
/// # Panics
///
/// On connection errors and on a non-2xx status.
pub fn moto_api_post(path: &str, body: &str) -> String {
    let base = endpoint();
    let authority = base
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{ENDPOINT_VAR}={base} must start with http://"));
    let mut stream = TcpStream::connect(authority).unwrap_or_else(|e| {
        panic!("cannot connect to moto at {base}: {e} (is scripts/test's moto still running?)")
    });
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set_read_timeout");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("POST {base}{path}: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("POST {base}{path}: reading response: {e}"));
    let text = String::from_utf8_lossy(&raw);
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("POST {base}{path}: malformed response: {head:?}"));
    assert!(
        (200..300).contains(&status),
        "POST {base}{path} answered {status}: {payload}"
    );
    payload.to_owned()
}

/// Turn on moto's Step Functions interpreter (idempotent; `scripts/test`
/// already did it once).
pub async fn enable_sfn_interpreter() {
    let _ = blocking(|| moto_api_post("/moto-api/config", SFN_INTERPRETER_CONFIG)).await;
}

/// Wipe all of moto's state (`POST /moto-api/reset`), then re-apply the Step
/// Functions interpreter switch.
///
/// moto 5.2.5 keeps that switch in a process-wide dict that reset does not
/// touch, but we re-post it so a future moto that does clear it still works.
///
/// **Do not call this from tests that run concurrently with other moto tests**
/// (nextest's default): it deletes their state machines and executions.
pub async fn reset() {
    blocking(|| {
        moto_api_post("/moto-api/reset", "");
        moto_api_post("/moto-api/config", SFN_INTERPRETER_CONFIG);
    })
    .await;
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The SDK configuration for moto: region us-east-1, static test credentials,
/// endpoint from [`endpoint`].
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "rotor-tests",
        ))
        .load()
        .await
}

/// A Step Functions client for moto ([`sdk_config`]).
pub async fn sfn_client() -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&sdk_config().await)
}

/// An IAM client for moto ([`sdk_config`]).
pub async fn iam_client() -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk_config().await)
}

/// The end of one execution on moto.
#[derive(Debug, Clone)]
pub struct MotoOutcome {
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    /// The execution's output (parsed JSON), when it succeeded.
    pub output: Option<Value>,
    /// The error name of a failed execution.
    pub error: Option<String>,
    /// The cause of a failed execution.
    pub cause: Option<String>,
    /// GetExecutionHistory's events exactly as moto sent them on the wire
    /// (AWS JSON shape: `id`, `previousEventId`, `timestamp` in epoch seconds,
    /// `type`, `<type>EventDetails`...), oldest first.
    pub history: Vec<Value>,
    /// The execution's ARN.
    pub execution_arn: String,
    /// Wall-clock time from StartExecution until DescribeExecution first
    /// reported a terminal status (includes up to one poll interval).
    pub elapsed: Duration,
}

impl MotoOutcome {
    /// The `type` of every history event, in order.
    pub fn event_types(&self) -> Vec<&str> {
        self.history
            .iter()
            .map(|e| e.get("type").and_then(Value::as_str).unwrap_or("?"))
            .collect()
    }

    /// The history events of the given `type`.
    pub fn events_of(&self, event_type: &str) -> Vec<&Value> {
        self.history
            .iter()
            .filter(|e| e.get("type").and_then(Value::as_str) == Some(event_type))
            .collect()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique across processes and calls: `<prefix>-<pid>-<n>-<nanos>`,
/// restricted to `[A-Za-z0-9_-]` and 80 characters.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    let suffix = format!(
        "-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(80 - suffix.len())
        .collect();
    clean + &suffix
}

/// Run `definition` once on moto with `input` and wait for the end.
///
/// Creates a STANDARD state machine named after `name` (made unique, so
/// concurrent tests don't collide), starts an execution, polls
/// DescribeExecution every 100 ms until it leaves RUNNING (at most 120 s),
/// then collects output, error/cause and the full history.
///
/// # Panics
///
/// On any API error, and when the execution is still RUNNING after 120 s
/// (it is stopped first).
pub async fn run_on_moto(definition: &Value, input: &Value, name: &str) -> MotoOutcome {
    let client = sfn_client().await;
    let sm_name = unique_name(name);

    let created = client
        .create_state_machine()
        .name(&sm_name)
        .definition(definition.to_string())
        .role_arn(ROLE_ARN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStateMachine {sm_name}: {e:?}"));
    let sm_arn = created.state_machine_arn().to_owned();

    let started = Instant::now();
    let execution_arn = client
        .start_execution()
        .state_machine_arn(&sm_arn)
        .name(&sm_name)
        .input(input.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("StartExecution on {sm_arn}: {e:?}"))
        .execution_arn()
        .to_owned();

    let described = loop {
        let d = client
            .describe_execution()
            .execution_arn(&execution_arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeExecution {execution_arn}: {e:?}"));
        if *d.status() != ExecutionStatus::Running {
            break d;
        }
        if started.elapsed() > EXECUTION_TIMEOUT {
            let _ = client
                .stop_execution()
                .execution_arn(&execution_arn)
                .send()
                .await;
            panic!(
                "execution {execution_arn} still RUNNING after {EXECUTION_TIMEOUT:?} \
                 (moto log: target/moto.log)"
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let elapsed = started.elapsed();

    let history = execution_history(&client, &execution_arn).await;

    let failed_details = history
        .iter()
        .rev()
        .find_map(|e| {
            [
                "executionFailedEventDetails",
                "executionAbortedEventDetails",
                "executionTimedOutEventDetails",
            ]
            .iter()
            .find_map(|k| e.get(*k))
        })
        .cloned();
    let from_event = |field: &str| {
        failed_details
            .as_ref()
            .and_then(|d| d.get(field))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };

    // moto 5.2.5 returns a string output unquoted (`beta`, not `"beta"`); AWS returns JSON text.
    let output = described
        .output()
        .map(|s| serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned())));

    MotoOutcome {
        status: described.status().as_str().to_owned(),
        output,
        error: described
            .error()
            .map(str::to_owned)
            .or_else(|| from_event("error")),
        cause: described
            .cause()
            .map(str::to_owned)
            .or_else(|| from_event("cause")),
        history,
        execution_arn,
        elapsed,
    }
}

/// All history events of an execution, oldest first, as the JSON moto sent
/// (`rotor_aws::sfn::execution_history`, the CLI's own).
pub async fn execution_history(client: &aws_sdk_sfn::Client, execution_arn: &str) -> Vec<Value> {
    rotor_aws::sfn::execution_history(client, execution_arn)
        .await
        .unwrap_or_else(|e| panic!("GetExecutionHistory {execution_arn}: {e}"))
}

// ------------------------------------------------------------------------ a private moto

/// A moto of the test's own (the venv's, through `scripts/moto_launcher.py`, on a free loopback
/// port), for a test that changes process-wide moto state (authentication) or deploys names
/// other suites also use. Killed on drop; its log is `target/moto-<label>-<port>.log`.
pub struct PrivateMoto {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PrivateMoto {
    /// Starts it and waits (60 s at most) until it answers. Blocking.
    pub fn start(label: &str) -> PrivateMoto {
        use std::process::{Command, Stdio};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run the tests with scripts/test, which creates .venv with moto",
            python.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log =
            std::fs::File::create(root.join(format!("target/moto-{label}-{port}.log"))).unwrap();
        let child = Command::new(python)
            .arg(root.join("scripts/moto_launcher.py"))
            .arg(port.to_string())
            .env("MOTO_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the private moto");
        let moto = PrivateMoto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && moto.post("/moto-api/reset", "").is_some()
            {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the private moto on port {port} did not answer within 60 s");
    }

    /// A raw HTTP request to it (moto's own API, or S3 without signing: auth is off by
    /// default); the response when the status is 2xx.
    pub fn request(&self, method: &str, path: &str, body: &str) -> Option<String> {
        use std::io::{Read, Write};
        let authority = self.endpoint.strip_prefix("http://").unwrap();
        let mut s = std::net::TcpStream::connect(authority).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        raw.starts_with("HTTP/1.1 2").then_some(raw)
    }

    /// [`PrivateMoto::request`] with POST.
    pub fn post(&self, path: &str, body: &str) -> Option<String> {
        self.request("POST", path, body)
    }
}
