//! Benchmark: a Pass+Choice counter loop on rotor's executor and on moto 5.2.5's Step Functions
//! interpreter, same definition and input, compared within one run.
//!
//! ```text
//! scripts/bench                                   # prepares + starts moto, runs this, stops moto
//! cargo bench -p rotor-tests --bench sfn_counter  # the same, with ROTOR_MOTO_ENDPOINT set by hand
//! ```
//!
//! The loop: `Step` (Pass, `i = States.MathAdd($.i, 1)`) -> `Loop` (Choice: `$.i < $.limit` ->
//! `Step`, else `Done`) -> `Done` (Succeed), input `{"i": 0, "limit": N}`. N = 5,000 gives
//! 10,001 state transitions and 20,004 history events (under the 25,000-event quota).
//!
//! Transitions are counted, on each side, as the `*StateEntered` events of that side's own
//! history; the benchmark refuses to print a ratio unless both executions SUCCEEDED with the
//! same output and the same sequence of entered states, and moto's history holds every event
//! (ids 1..=4N+4, no gaps).
//!
//! * rotor: one warm-up run, then `ROTOR_BENCH_ROTOR_RUNS` (default 11) timed runs of
//!   `executor::execute` (virtual clock, fixed seed); the table shows the median.
//! * moto: one run (it takes tens of seconds); seconds = StartExecution until DescribeExecution
//!   first reports a terminal status (polled, at most 0.5 s late). Fetching the history
//!   afterwards is not timed.
//!
//! Knobs (environment): `ROTOR_BENCH_ITERATIONS` (default 5000, at most 6249 to stay under the
//! history quota), `ROTOR_BENCH_ROTOR_RUNS` (default 11), `ROTOR_BENCH_MOTO_SMALL` (iterations
//! of an extra, smaller moto run reported on its own line; off by default),
//! `ROTOR_BENCH_MOTO_TIMEOUT_SECS` (default 3600).
//!
//! Run by `cargo test --benches`/`--all-targets` (no `--bench` argument) it only checks the
//! rotor side on a 50-iteration loop, so test runs stay fast and need no moto.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_sfn::types::ExecutionStatus;
use rotor_asl::definition::StateMachine;
use rotor_asl::error::StatesError;
use rotor_asl::executor::{execute, RunOptions, Status, MAX_HISTORY_EVENTS};
use rotor_asl::task::{TaskHandler, TaskRequest};
use rotor_tests::moto::{
    enable_sfn_interpreter, endpoint, execution_history, sfn_client, unique_name, ROLE_ARN,
};
use serde_json::{json, Value};

const DEFAULT_ITERATIONS: u64 = 5_000;
const DEFAULT_ROTOR_RUNS: usize = 11;
const DEFAULT_MOTO_TIMEOUT_SECS: u64 = 3_600;
const SMOKE_ITERATIONS: u64 = 50;

fn definition() -> Value {
    json!({
        "Comment": "rotor benchmark: counter loop",
        "StartAt": "Step",
        "States": {
            "Step": {
                "Type": "Pass",
                "Parameters": {"i.$": "States.MathAdd($.i, 1)", "limit.$": "$.limit"},
                "Next": "Loop"
            },
            "Loop": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.i", "NumericLessThanPath": "$.limit", "Next": "Step"}],
                "Default": "Done"
            },
            "Done": {"Type": "Succeed"}
        }
    })
}

fn input(iterations: u64) -> Value {
    json!({"i": 0, "limit": iterations})
}

/// History events of one successful run: ExecutionStarted, 4 per iteration (Pass and Choice
/// entered/exited), SucceedStateEntered/Exited, ExecutionSucceeded.
fn expected_events(iterations: u64) -> usize {
    4 * iterations as usize + 4
}

/// The loop has no Task state; any call is a bug.
struct NoTasks;

#[async_trait]
impl TaskHandler for NoTasks {
    async fn call(&self, request: TaskRequest) -> Result<Value, StatesError> {
        Err(StatesError::runtime(format!(
            "the benchmark loop has no Task state, but one was called: {request:?}"
        )))
    }
}

/// What one execution did, from its own history.
struct Run {
    status: String,
    output: Option<Value>,
    /// Names of the entered states, in order (one per state transition).
    entered: Vec<String>,
    events: usize,
    seconds: f64,
}

impl Run {
    fn transitions(&self) -> usize {
        self.entered.len()
    }

    fn per_second(&self) -> f64 {
        self.transitions() as f64 / self.seconds
    }
}

fn entered_states(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .filter(|e| {
            e.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("StateEntered"))
        })
        .map(|e| {
            e.pointer("/stateEnteredEventDetails/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

async fn run_rotor(machine: &StateMachine, iterations: u64, run: usize) -> Run {
    let mut options = RunOptions::new(format!("bench-{run}"), Arc::new(NoTasks));
    options.state_machine_name = "sfn_counter".into();
    options.seed = Some(7);
    options.start_time = Some("2026-01-01T00:00:00Z".parse().expect("timestamp"));
    let input = input(iterations);
    let started = Instant::now();
    let outcome = execute(machine, input, options).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = match outcome.status {
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED_OUT",
        Status::Aborted => "ABORTED",
    };
    assert_eq!(
        outcome.status,
        Status::Succeeded,
        "rotor did not succeed: error={:?} cause={:?}",
        outcome.error,
        outcome.cause
    );
    Run {
        status: status.to_owned(),
        output: outcome.output,
        entered: entered_states(&outcome.events),
        events: outcome.events.len(),
        seconds,
    }
}

/// One execution on moto, timed from StartExecution to the first terminal DescribeExecution.
async fn run_moto(iterations: u64, timeout: Duration) -> Run {
    let client = sfn_client().await;
    let name = unique_name(&format!("bench-counter-{iterations}"));
    let sm_arn = client
        .create_state_machine()
        .name(&name)
        .definition(definition().to_string())
        .role_arn(ROLE_ARN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStateMachine {name}: {e:?}"))
        .state_machine_arn()
        .to_owned();

    let started = Instant::now();
    let execution_arn = client
        .start_execution()
        .state_machine_arn(&sm_arn)
        .name(&name)
        .input(input(iterations).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("StartExecution on {sm_arn}: {e:?}"))
        .execution_arn()
        .to_owned();
    // Poll gently: moto runs the interpreter in a thread of the same Python process, so every
    // DescribeExecution competes with it for the GIL.
    let mut poll = Duration::from_millis(20);
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
        if started.elapsed() > timeout {
            let _ = client
                .stop_execution()
                .execution_arn(&execution_arn)
                .send()
                .await;
            panic!(
                "moto execution {execution_arn} still RUNNING after {} s",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(Duration::from_millis(500));
    };
    let seconds = started.elapsed().as_secs_f64();

    let fetch = Instant::now();
    let history = execution_history(&client, &execution_arn).await;
    eprintln!(
        "sfn_counter: moto {iterations} iterations: {:.1} s to finish, {:.1} s to fetch {} history events",
        seconds,
        fetch.elapsed().as_secs_f64(),
        history.len()
    );
    let ids: Vec<u64> = history
        .iter()
        .map(|e| e.get("id").and_then(Value::as_u64).unwrap_or(0))
        .collect();
    assert!(
        ids.iter().copied().eq(1..=history.len() as u64),
        "moto's history is not the complete event list 1..={} (ids {:?}...{:?})",
        history.len(),
        ids.first(),
        ids.last()
    );
    let status = described.status().as_str().to_owned();
    assert_eq!(
        status,
        "SUCCEEDED",
        "moto did not succeed: error={:?} cause={:?}",
        described.error(),
        described.cause()
    );
    Run {
        status,
        output: described.output().map(|s| {
            serde_json::from_str(s).unwrap_or_else(|e| panic!("moto output is not JSON: {e}: {s}"))
        }),
        entered: entered_states(&history),
        events: history.len(),
        seconds,
    }
}

/// The checks that make the two sides comparable: same work, same result.
fn check(side: &str, run: &Run, iterations: u64) {
    assert_eq!(run.status, "SUCCEEDED", "{side}: status");
    assert_eq!(
        run.output,
        Some(json!({"i": iterations, "limit": iterations})),
        "{side}: final output"
    );
    assert_eq!(
        run.events,
        expected_events(iterations),
        "{side}: history length"
    );
    assert_eq!(
        run.transitions(),
        2 * iterations as usize + 1,
        "{side}: state transitions"
    );
    assert_eq!(
        run.entered.last().map(String::as_str),
        Some("Done"),
        "{side}: last state"
    );
}

fn env_number<T: std::str::FromStr>(var: &str, default: T) -> T {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a number")),
        _ => default,
    }
}

/// Peak resident set size of this process (VmHWM from /proc/self/status), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn row(executor: &str, iterations: u64, run: &Run) {
    println!(
        "{executor:<9} {iterations:>10} {:>11} {:>7} {:>10.4} {:>14.1}",
        run.transitions(),
        run.events,
        run.seconds,
        run.per_second()
    );
}

async fn bench() {
    let iterations: u64 = env_number("ROTOR_BENCH_ITERATIONS", DEFAULT_ITERATIONS);
    let runs: usize = env_number("ROTOR_BENCH_ROTOR_RUNS", DEFAULT_ROTOR_RUNS).max(1);
    let small: u64 = env_number("ROTOR_BENCH_MOTO_SMALL", 0);
    let timeout = Duration::from_secs(env_number(
        "ROTOR_BENCH_MOTO_TIMEOUT_SECS",
        DEFAULT_MOTO_TIMEOUT_SECS,
    ));
    assert!(
        iterations >= 1 && expected_events(iterations) < MAX_HISTORY_EVENTS,
        "ROTOR_BENCH_ITERATIONS={iterations}: the history ({} events) must stay under the \
         {MAX_HISTORY_EVENTS}-event quota",
        expected_events(iterations)
    );
    // Fail fast, before the rotor runs, when moto is not there.
    let moto_endpoint = endpoint();

    let machine = StateMachine::from_value(&definition())
        .unwrap_or_else(|d| panic!("invalid benchmark definition: {d:?}"));

    // ------------------------------------------------------------------ rotor
    // Each timed run is checked against the warm-up, then only its time is kept (so the peak
    // RSS below is one execution's history, not eleven).
    let warm_up = run_rotor(&machine, iterations, 0).await;
    check("rotor", &warm_up, iterations);
    let mut secs = Vec::with_capacity(runs);
    for n in 1..=runs {
        let run = run_rotor(&machine, iterations, n).await;
        check("rotor", &run, iterations);
        assert_eq!(run.entered, warm_up.entered, "rotor runs differ");
        secs.push(run.seconds);
    }
    let rotor_median = median(&mut secs);
    let (rotor_min, rotor_max) = (secs[0], secs[secs.len() - 1]);
    let rss = peak_rss_kib();
    let rotor = Run {
        seconds: rotor_median,
        ..warm_up
    };

    // ------------------------------------------------------------------ moto
    eprintln!("sfn_counter: running {iterations} iterations on moto at {moto_endpoint} (one run; takes a while)");
    enable_sfn_interpreter().await;
    let moto = run_moto(iterations, timeout).await;
    check("moto", &moto, iterations);
    assert_eq!(
        rotor.output, moto.output,
        "rotor and moto reached different outputs"
    );
    assert_eq!(
        rotor.entered, moto.entered,
        "rotor and moto entered different state sequences"
    );
    let moto_small = if small > 0 && small != iterations {
        let run = run_moto(small, timeout).await;
        check("moto", &run, small);
        Some(run)
    } else {
        None
    };

    // ------------------------------------------------------------------ report
    println!();
    println!(
        "sfn_counter: Pass+Choice counter loop, input {} (same definition on both)",
        input(iterations)
    );
    println!(
        "{:<9} {:>10} {:>11} {:>7} {:>10} {:>14}",
        "executor", "iterations", "transitions", "events", "seconds", "transitions/s"
    );
    row("rotor", iterations, &rotor);
    row("moto", iterations, &moto);
    if let Some(run) = &moto_small {
        row("moto", small, run);
    }
    println!(
        "ratio rotor/moto: {:.1}x",
        rotor.per_second() / moto.per_second()
    );
    println!(
        "rotor: median of {runs} runs after 1 warm-up (min {rotor_min:.4} s, max {rotor_max:.4} s)"
    );
    match rss {
        Some(kib) => println!(
            "peak RSS (VmHWM) after the rotor runs: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS (VmHWM) after the rotor runs: unavailable"),
    }
    println!(
        "moto: one run, StartExecution to terminal DescribeExecution; both SUCCEEDED with output {}",
        moto.output.as_ref().unwrap_or(&Value::Null)
    );
}

/// `cargo test --benches`: a quick rotor-only check that the benchmark's loop still works.
async fn smoke() {
    let machine = StateMachine::from_value(&definition())
        .unwrap_or_else(|d| panic!("invalid benchmark definition: {d:?}"));
    let run = run_rotor(&machine, SMOKE_ITERATIONS, 0).await;
    check("rotor", &run, SMOKE_ITERATIONS);
    println!(
        "sfn_counter: smoke check passed ({SMOKE_ITERATIONS} iterations on rotor); \
         run the benchmark with scripts/bench"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        // A test lister (e.g. cargo-nextest): this target holds no tests.
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if args.iter().any(|a| a == "--bench") {
        runtime.block_on(bench());
    } else {
        runtime.block_on(smoke());
    }
}
