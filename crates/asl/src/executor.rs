//! Runs a [`StateMachine`] the way Step Functions does.
//!
//! Each concurrent line of execution (the top level, a Parallel branch, a Map iteration) carries
//! its own clock reading, so that a virtual clock gives branches the timing they would have on
//! AWS (a Parallel ends when its slowest branch ends). The history is sorted by time at the end.

use crate::definition::{
    Catcher, IoPath, Kind, ResultPath, Source, State, StateMachine, Text, Wait,
};
use crate::error::{names, StatesError};
use crate::history::{EventLog, HistoryEvent};
use crate::task::{TaskHandler, TaskRequest};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::future::{join_all, BoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};

/// Step Functions' payload quota: 256 KiB per state input, output or task result.
pub const MAX_PAYLOAD_BYTES: usize = 262_144;
/// Step Functions' quota of history events per execution.
pub const MAX_HISTORY_EVENTS: usize = 25_000;
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

pub use crate::history::Observer;

pub struct RunOptions {
    /// Execution name (`$$.Execution.Name`); also the last part of the execution ARN.
    pub name: String,
    /// State machine name (`$$.StateMachine.Name`).
    pub state_machine_name: String,
    pub handler: Arc<dyn TaskHandler>,
    /// Really sleep for Waits and retry intervals instead of advancing a virtual clock.
    pub real_time: bool,
    /// Seed for jitter, States.MathRandom without seed and States.UUID; random when `None`.
    pub seed: Option<u64>,
    /// Start time of the virtual clock; now when `None`.
    pub start_time: Option<DateTime<Utc>>,
    pub observer: Option<Observer>,
    /// Continue an interrupted execution (redrive) instead of starting at `StartAt`.
    pub resume: Option<Resume>,
    /// Asked at every top-level state boundary (and during Waits and retry intervals): once it
    /// is set, the execution stops there as ABORTED, resumable with [`Resume`].
    pub interrupt: Option<Arc<Interrupt>>,
}

/// Where a redriven execution continues: the state to enter and its input (see
/// [`crate::redrive::resume_point`]), the history so far, and the original start time.
#[derive(Debug, Clone)]
pub struct Resume {
    pub state: String,
    pub input: Value,
    pub events: Vec<HistoryEvent>,
    pub start_time: DateTime<Utc>,
    /// `$$.Execution.RedriveCount` of this run (1 for the first redrive).
    pub redrive_count: u32,
}

/// A request to stop at the next state boundary (SIGINT, SIGTERM), with the cause recorded in
/// the ExecutionAborted event.
#[derive(Default)]
pub struct Interrupt {
    cause: Mutex<Option<String>>,
    notify: tokio::sync::Notify,
}

impl Interrupt {
    pub fn new() -> Arc<Interrupt> {
        Arc::new(Interrupt::default())
    }

    /// Asks the execution to stop; the first cause given is kept.
    pub fn request(&self, cause: impl Into<String>) {
        let mut c = self.cause.lock().unwrap();
        if c.is_none() {
            *c = Some(cause.into());
        }
        drop(c);
        self.notify.notify_waiters();
    }

    pub fn requested(&self) -> Option<String> {
        self.cause.lock().unwrap().clone()
    }
}

impl RunOptions {
    pub fn new(name: impl Into<String>, handler: Arc<dyn TaskHandler>) -> Self {
        RunOptions {
            name: name.into(),
            state_machine_name: "StateMachine".into(),
            handler,
            real_time: false,
            seed: None,
            start_time: None,
            observer: None,
            resume: None,
            interrupt: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub events: Vec<HistoryEvent>,
}

/// The error an interrupted (ABORTED) execution reports.
pub const ABORTED_ERROR: &str = "Execution.Interrupted";

pub fn state_machine_arn(name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}")
}

pub fn execution_arn(state_machine: &str, name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{state_machine}:{name}")
}

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Why a line of execution stopped early.
#[derive(Debug, Clone)]
enum Stop {
    Failed(StatesError),
    TimedOut,
    /// Interrupted before entering the named state (or during its wait), with the cause.
    Aborted(String),
}

impl From<StatesError> for Stop {
    fn from(e: StatesError) -> Self {
        Stop::Failed(e)
    }
}

/// A line of execution: its clock reading and its last event (for `previousEventId`).
#[derive(Debug, Clone, Copy)]
struct Line {
    now: DateTime<Utc>,
    last: u64,
}

struct Run {
    handler: Arc<dyn TaskHandler>,
    real_time: bool,
    log: EventLog,
    rng: Mutex<ChaCha8Rng>,
    /// `$$.Execution` and `$$.StateMachine`, shared by every state's context object.
    execution: Value,
    state_machine: Value,
    deadline: Option<DateTime<Utc>>,
    interrupt: Option<Arc<Interrupt>>,
}

/// Runs an execution to its end and returns its outcome and history.
pub async fn execute(machine: &StateMachine, input: Value, options: RunOptions) -> Outcome {
    let resume = options.resume;
    let start = resume
        .as_ref()
        .map(|r| r.start_time)
        .or(options.start_time)
        .unwrap_or_else(Utc::now);
    let exec_arn = execution_arn(&options.state_machine_name, &options.name);
    let sm_arn = state_machine_arn(&options.state_machine_name);
    let rng = match options.seed {
        Some(s) => ChaCha8Rng::seed_from_u64(s),
        None => ChaCha8Rng::from_entropy(),
    };
    let run = Run {
        handler: options.handler,
        real_time: options.real_time,
        log: match &resume {
            Some(r) => EventLog::resume(MAX_HISTORY_EVENTS, options.observer, r.events.clone()),
            None => EventLog::new(MAX_HISTORY_EVENTS, options.observer),
        },
        rng: Mutex::new(rng),
        execution: json!({
            "Id": exec_arn,
            "Input": input,
            "Name": options.name,
            "RoleArn": format!("arn:aws:iam::{ACCOUNT}:role/rotor-local"),
            "StartTime": timestamp(start),
            "RedriveCount": resume.as_ref().map_or(0, |r| r.redrive_count),
        }),
        state_machine: json!({"Id": sm_arn, "Name": options.state_machine_name}),
        deadline: machine
            .timeout_seconds
            .map(|s| start + Duration::seconds(s as i64)),
        interrupt: options.interrupt,
    };
    let (result, mut end) = match resume {
        None => {
            let mut line = Line {
                now: start,
                last: 0,
            };
            let input_text = input.to_string();
            // ExecutionStartedEventDetails has no state machine ARN (service model: input,
            // inputDetails, roleArn and the alias/version ARNs).
            let _ = run.emit(
                &mut line,
                "ExecutionStarted",
                json!({
                    "input": input_text,
                    "inputDetails": {"truncated": false},
                    "roleArn": run.execution["RoleArn"],
                }),
            );
            // As in histories recorded on AWS, the first state's entry has previousEventId 0.
            line.last = 0;
            run.run_graph(machine, &machine.start_at, input, line, true)
                .await
        }
        Some(r) => {
            // The virtual clock goes on from the last recorded event; the real one from now.
            let last_at = r
                .events
                .last()
                .and_then(|e| e["timestamp"].as_str())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(start);
            let mut line = Line {
                now: if run.real_time { Utc::now() } else { last_at },
                last: r.events.len() as u64,
            };
            let _ = run.emit(
                &mut line,
                "ExecutionRedriven",
                json!({"redriveCount": r.redrive_count}),
            );
            run.run_graph(machine, &r.state, r.input, line, true).await
        }
    };
    if run.real_time {
        end.now = Utc::now();
    }
    let (status, output, error, cause) = match result {
        Ok(out) => {
            run.log.push_final(
                end.now,
                end.last,
                "ExecutionSucceeded",
                json!({
                    "output": out.to_string(), "outputDetails": {"truncated": false}
                }),
            );
            (Status::Succeeded, Some(out), None, None)
        }
        Err(Stop::TimedOut) => {
            let (e, c) = (
                names::TIMEOUT.to_string(),
                "The execution timed out.".to_string(),
            );
            run.log.push_final(
                end.now,
                end.last,
                "ExecutionTimedOut",
                json!({"error": e, "cause": c}),
            );
            (Status::TimedOut, None, Some(e), Some(c))
        }
        Err(Stop::Aborted(cause)) => {
            let e = ABORTED_ERROR.to_string();
            run.log.push_final(
                end.now,
                end.last,
                "ExecutionAborted",
                json!({"error": e, "cause": cause}),
            );
            (Status::Aborted, None, Some(e), Some(cause))
        }
        Err(Stop::Failed(e)) => {
            let mut details = Map::new();
            if !e.error.is_empty() {
                details.insert("error".into(), json!(e.error));
            }
            if !e.cause.is_empty() {
                details.insert("cause".into(), json!(e.cause));
            }
            run.log
                .push_final(end.now, end.last, "ExecutionFailed", Value::Object(details));
            let non_empty = |s: String| if s.is_empty() { None } else { Some(s) };
            (Status::Failed, None, non_empty(e.error), non_empty(e.cause))
        }
    };
    Outcome {
        status,
        output,
        error,
        cause,
        events: run.log.finish(),
    }
}

/// Where a state goes after it ran.
struct Transition {
    next: Option<String>,
    output: Value,
    /// False for a state that records no "Exited" event (none today: Fail ends the line
    /// with an error, and a state whose Catcher took over still exits with the Catcher's
    /// output, as histories recorded on AWS show).
    exited: bool,
}

fn check_size(what: &str, state: &str, text_len: usize) -> Result<(), StatesError> {
    if text_len > MAX_PAYLOAD_BYTES {
        return Err(StatesError::new(
            names::DATA_LIMIT_EXCEEDED,
            format!("The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit ({what} is {text_len} bytes, the limit is {MAX_PAYLOAD_BYTES})."),
        ));
    }
    Ok(())
}

fn apply_io_path(
    path: &IoPath,
    value: Value,
    field: &str,
    context: &Value,
) -> Result<Value, StatesError> {
    match path {
        IoPath::Whole => Ok(value),
        IoPath::Null => Ok(Value::Object(Map::new())),
        IoPath::Path(p) => p.select(&value, context).ok_or_else(|| {
            StatesError::runtime(format!(
                "An error occurred while executing the state. Invalid path '{}' : No results for path: {} ({field})",
                p.text, p.text
            ))
        }),
    }
}

fn apply_result_path(
    path: &ResultPath,
    raw_input: &Value,
    result: Value,
) -> Result<Value, StatesError> {
    match path {
        ResultPath::Whole => Ok(result),
        ResultPath::Discard => Ok(raw_input.clone()),
        ResultPath::Path(p) => {
            let mut out = raw_input.clone();
            p.set(&mut out, result).map_err(|e| {
                StatesError::new(
                    names::RESULT_PATH_MATCH_FAILURE,
                    format!(
                        "Unable to apply ResultPath '{}' to input '{raw_input}': {e}",
                        p.text
                    ),
                )
            })?;
            Ok(out)
        }
    }
}

/// ResourceType/Resource as history shows them for service integrations.
fn resource_parts(resource: &str) -> (String, String) {
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::") {
        // An AWS SDK integration is typed by its service: `aws-sdk:ecs` / `updateService`.
        if rest.starts_with("aws-sdk:") {
            if let Some((ty, res)) = rest.rsplit_once(':') {
                return (ty.to_string(), res.to_string());
            }
        }
        let mut parts = rest.splitn(2, ':');
        let ty = parts.next().unwrap_or_default().to_string();
        let res = parts.next().unwrap_or_default().to_string();
        return (ty, res);
    }
    let mut parts = resource.split(':');
    let ty = parts.nth(2).unwrap_or("unknown").to_string();
    (ty, resource.to_string())
}

fn is_bare_lambda(resource: &str) -> bool {
    resource.starts_with("arn:aws:lambda:")
        || (resource.starts_with("arn:")
            && resource.contains(":lambda:")
            && resource.contains(":function:"))
}

impl Run {
    fn emit(&self, line: &mut Line, ty: &str, details: Value) -> Result<(), Stop> {
        let now = if self.real_time { Utc::now() } else { line.now };
        line.now = now;
        line.last = self
            .log
            .push(now, line.last, ty, details)
            .map_err(Stop::Failed)?;
        Ok(())
    }

    fn context(&self, state: &str, entered: DateTime<Utc>, retry_count: u32) -> Value {
        json!({
            "Execution": self.execution,
            "State": {"EnteredTime": timestamp(entered), "Name": state, "RetryCount": retry_count},
            "StateMachine": self.state_machine,
        })
    }

    fn now(&self, line: &Line) -> DateTime<Utc> {
        if self.real_time {
            Utc::now()
        } else {
            line.now
        }
    }

    /// Lets `seconds` pass on this line's clock, or times the execution out.
    async fn sleep(&self, line: &mut Line, seconds: f64) -> Result<(), Stop> {
        let seconds = seconds.max(0.0);
        let until = self.now(line) + Duration::milliseconds((seconds * 1000.0).round() as i64);
        if let Some(deadline) = self.deadline {
            if until > deadline {
                if self.real_time {
                    if let Ok(d) = (deadline - Utc::now()).to_std() {
                        tokio::time::sleep(d).await;
                    }
                }
                line.now = deadline;
                return Err(Stop::TimedOut);
            }
        }
        if self.real_time {
            if let Ok(d) = (until - Utc::now()).to_std() {
                match &self.interrupt {
                    Some(i) => {
                        let notified = i.notify.notified();
                        tokio::pin!(notified);
                        notified.as_mut().enable();
                        if i.requested().is_none() {
                            tokio::select! {
                                _ = tokio::time::sleep(d) => {}
                                _ = notified => {}
                            }
                        }
                        if let Some(cause) = i.requested() {
                            line.now = Utc::now();
                            return Err(Stop::Aborted(format!("{cause} (while waiting)")));
                        }
                    }
                    None => tokio::time::sleep(d).await,
                }
            }
            line.now = Utc::now();
        } else {
            line.now = until;
        }
        Ok(())
    }

    /// Runs `graph` from the state `from`; `top` for the execution's own states (only there
    /// does an interrupt stop it: a branch or iteration always runs to its end).
    fn run_graph<'a>(
        &'a self,
        graph: &'a StateMachine,
        from: &'a str,
        input: Value,
        mut line: Line,
        top: bool,
    ) -> BoxFuture<'a, (Result<Value, Stop>, Line)> {
        Box::pin(async move {
            let mut name = from;
            let mut data = input;
            loop {
                if top {
                    if let Some(cause) = self.interrupt.as_ref().and_then(|i| i.requested()) {
                        return (
                            Err(Stop::Aborted(format!("{cause} before state {name}"))),
                            line,
                        );
                    }
                }
                let Some(state) = graph.states.get(name) else {
                    return (
                        Err(StatesError::runtime(format!("no state named '{name}'")).into()),
                        line,
                    );
                };
                match self.run_state(state, data, &mut line).await {
                    Ok(t) => match t.next {
                        Some(n) => {
                            name = graph
                                .states
                                .get_key_value(n.as_str())
                                .map(|(k, _)| k.as_str())
                                .unwrap_or("");
                            if name.is_empty() {
                                return (
                                    Err(StatesError::runtime(format!("no state named '{n}'"))
                                        .into()),
                                    line,
                                );
                            }
                            data = t.output;
                        }
                        None => return (Ok(t.output), line),
                    },
                    Err(stop) => return (Err(stop), line),
                }
            }
        })
    }

    async fn run_state(
        &self,
        state: &State,
        raw: Value,
        line: &mut Line,
    ) -> Result<Transition, Stop> {
        if let Some(deadline) = self.deadline {
            if self.now(line) > deadline {
                return Err(Stop::TimedOut);
            }
        }
        let ty = state.type_name();
        let raw_text = raw.to_string();
        self.emit(
            line,
            &format!("{ty}StateEntered"),
            json!({
                "name": state.name, "input": raw_text, "inputDetails": {"truncated": false}
            }),
        )?;
        let entered = self.now(line);
        let ctx = self.context(&state.name, entered, 0);
        let transition = match &state.kind {
            Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map { .. } => {
                self.run_with_handling(state, &raw, line, entered).await?
            }
            _ => {
                let (output, chosen) = self.run_simple(state, &raw, line, &ctx).await?;
                Transition {
                    next: chosen.or_else(|| state.next.clone()),
                    output,
                    exited: true,
                }
            }
        };
        if transition.exited {
            let text = transition.output.to_string();
            check_size("the state output", &state.name, text.len())?;
            self.emit(
                line,
                &format!("{ty}StateExited"),
                json!({
                    "name": state.name, "output": text, "outputDetails": {"truncated": false}
                }),
            )?;
        }
        Ok(transition)
    }

    /// Pass, Choice, Wait, Succeed and Fail: they have no Retry or Catch. Returns the output and,
    /// for a Choice, the state it chose.
    async fn run_simple(
        &self,
        state: &State,
        raw: &Value,
        line: &mut Line,
        ctx: &Value,
    ) -> Result<(Value, Option<String>), Stop> {
        let effective = apply_io_path(&state.input_path, raw.clone(), "InputPath", ctx)?;
        match &state.kind {
            Kind::Pass { result } => {
                let result = match (result, &state.parameters) {
                    (Some(r), _) => r.clone(),
                    (None, Some(p)) => self.render(p, &effective, ctx)?,
                    (None, None) => effective,
                };
                let out = apply_result_path(&state.result_path, raw, result)?;
                Ok((
                    apply_io_path(&state.output_path, out, "OutputPath", ctx)?,
                    None,
                ))
            }
            Kind::Choice { choices, default } => {
                let mut chosen = None;
                for branch in choices {
                    if branch.rule.eval(&effective, ctx)? {
                        chosen = Some(branch.next.clone());
                        break;
                    }
                }
                let Some(next) = chosen.or_else(|| default.clone()) else {
                    return Err(StatesError::new(
                        names::NO_CHOICE_MATCHED,
                        format!("No Matches! The Choice state '{}' found no rule matching its input and has no Default.", state.name),
                    )
                    .into());
                };
                Ok((
                    apply_io_path(&state.output_path, effective, "OutputPath", ctx)?,
                    Some(next),
                ))
            }
            Kind::Wait(wait) => {
                let now = self.now(line);
                let seconds = match wait {
                    Wait::Seconds(Source::Fixed(s)) => *s as f64,
                    Wait::Seconds(Source::Path(p)) => {
                        let v = p.select(&effective, ctx);
                        match v.as_ref().and_then(Value::as_u64) {
                            Some(s) => s as f64,
                            None => return Err(StatesError::runtime(format!(
                                "The SecondsPath parameter '{}' does not reference a valid non-negative integer: {}",
                                p.text, v.map(|v| v.to_string()).unwrap_or_else(|| "no value".into())
                            )).into()),
                        }
                    }
                    Wait::Timestamp(src) => {
                        let text = match src {
                            Source::Fixed(t) => t.clone(),
                            Source::Path(p) => p.select(&effective, ctx).and_then(|v| v.as_str().map(str::to_string)).ok_or_else(|| {
                                StatesError::runtime(format!("The TimestampPath parameter '{}' does not reference a timestamp string", p.text))
                            })?,
                        };
                        let until = DateTime::parse_from_rfc3339(&text)
                            .map_err(|e| {
                                StatesError::runtime(format!(
                                    "The timestamp '{text}' is not valid ISO-8601: {e}"
                                ))
                            })?
                            .with_timezone(&Utc);
                        ((until - now).num_milliseconds().max(0) as f64) / 1000.0
                    }
                };
                self.sleep(line, seconds).await?;
                Ok((
                    apply_io_path(&state.output_path, effective, "OutputPath", ctx)?,
                    None,
                ))
            }
            Kind::Succeed => Ok((
                apply_io_path(&state.output_path, effective, "OutputPath", ctx)?,
                None,
            )),
            Kind::Fail { error, cause } => {
                let mut rng = self.rng.lock().unwrap();
                let mut text = |t: &Option<Text>| -> Result<String, StatesError> {
                    Ok(match t {
                        None => String::new(),
                        Some(Text::Fixed(s)) => s.clone(),
                        Some(Text::Path(p)) => match p.select(raw, ctx) {
                            Some(Value::String(s)) => s,
                            Some(other) => {
                                return Err(StatesError::runtime(format!(
                                    "The path '{}' must select a string, found {other}",
                                    p.text
                                )))
                            }
                            None => {
                                return Err(StatesError::runtime(format!(
                                    "Invalid path '{}': no value in the input",
                                    p.text
                                )))
                            }
                        },
                        Some(Text::Intrinsic(f)) => match f.eval(raw, ctx, &mut *rng)? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        },
                    })
                };
                let error = text(error)?;
                let cause = text(cause)?;
                Err(StatesError::new(error, cause).into())
            }
            Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map { .. } => {
                unreachable!("handled with Retry/Catch")
            }
        }
    }

    fn render(
        &self,
        t: &crate::template::Template,
        data: &Value,
        ctx: &Value,
    ) -> Result<Value, StatesError> {
        let mut rng = self.rng.lock().unwrap();
        t.render(data, ctx, &mut *rng)
    }

    /// Task, Parallel and Map: run, retry as the Retriers say, then catch or fail.
    async fn run_with_handling(
        &self,
        state: &State,
        raw: &Value,
        line: &mut Line,
        entered: DateTime<Utc>,
    ) -> Result<Transition, Stop> {
        let mut attempts = vec![0u32; state.handling.retry.len()];
        let mut retry_count = 0u32;
        loop {
            let ctx = self.context(&state.name, entered, retry_count);
            let error = match self.attempt(state, raw, line, &ctx).await {
                Ok(output) => {
                    return Ok(Transition {
                        next: state.next.clone(),
                        output,
                        exited: true,
                    })
                }
                Err(Stop::TimedOut) => return Err(Stop::TimedOut),
                Err(Stop::Aborted(c)) => return Err(Stop::Aborted(c)),
                Err(Stop::Failed(e)) => e,
            };
            if error.is_terminal() {
                return Err(error.into());
            }
            let retrier = state
                .handling
                .retry
                .iter()
                .position(|r| r.error_equals.iter().any(|n| error.matched_by(n)));
            if let Some(i) = retrier {
                let r = &state.handling.retry[i];
                if attempts[i] < r.max_attempts {
                    let mut delay = r.interval_seconds * r.backoff_rate.powi(attempts[i] as i32);
                    if let Some(max) = r.max_delay_seconds {
                        delay = delay.min(max);
                    }
                    if r.full_jitter {
                        delay = self.rng.lock().unwrap().gen_range(0.0..=delay);
                    }
                    attempts[i] += 1;
                    retry_count += 1;
                    self.sleep(line, delay).await?;
                    continue;
                }
            }
            return match state
                .handling
                .catch
                .iter()
                .find(|c| c.error_equals.iter().any(|n| error.matched_by(n)))
            {
                Some(catcher) => self.catch(catcher, raw, &error),
                None => Err(error.into()),
            };
        }
    }

    fn catch(
        &self,
        catcher: &Catcher,
        raw: &Value,
        error: &StatesError,
    ) -> Result<Transition, Stop> {
        let error_output = json!({"Error": error.error, "Cause": error.cause});
        let output = apply_result_path(&catcher.result_path, raw, error_output)?;
        Ok(Transition {
            next: Some(catcher.next.clone()),
            output,
            exited: true,
        })
    }

    /// One attempt of a Task/Parallel/Map: input processing, the work, output processing.
    async fn attempt(
        &self,
        state: &State,
        raw: &Value,
        line: &mut Line,
        ctx: &Value,
    ) -> Result<Value, Stop> {
        let effective = apply_io_path(&state.input_path, raw.clone(), "InputPath", ctx)?;
        let result = match &state.kind {
            Kind::Map { .. } => self.run_map(state, effective, line, ctx).await?,
            _ => {
                let effective = match &state.parameters {
                    Some(p) => self.render(p, &effective, ctx)?,
                    None => effective,
                };
                let text = effective.to_string();
                check_size("the state input after Parameters", &state.name, text.len())?;
                match &state.kind {
                    Kind::Task {
                        resource,
                        timeout,
                        heartbeat,
                    } => {
                        // TimeoutSecondsPath/HeartbeatSecondsPath read the state's input, as
                        // the AWS docs word it and LocalStack (tested against AWS) does.
                        let timeout = self.seconds_from(timeout, raw, "TimeoutSeconds")?;
                        let heartbeat = self.seconds_from(heartbeat, raw, "HeartbeatSeconds")?;
                        self.run_task(
                            state, resource, effective, text, timeout, heartbeat, line, ctx,
                        )
                        .await?
                    }
                    Kind::Parallel { branches } => {
                        self.run_parallel(branches, effective, line).await?
                    }
                    _ => unreachable!(),
                }
            }
        };
        let result = match &state.result_selector {
            Some(t) => self.render(t, &result, ctx)?,
            None => result,
        };
        let out = apply_result_path(&state.result_path, raw, result)?;
        Ok(apply_io_path(&state.output_path, out, "OutputPath", ctx)?)
    }

    fn seconds_from(
        &self,
        src: &Option<Source<u64>>,
        data: &Value,
        field: &str,
    ) -> Result<Option<u64>, StatesError> {
        match src {
            None => Ok(None),
            Some(Source::Fixed(n)) => Ok(Some(*n)),
            Some(Source::Path(p)) => match p
                .select(data, &Value::Null)
                .as_ref()
                .and_then(Value::as_u64)
            {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(StatesError::runtime(format!(
                    "The {field}Path '{}' does not reference a positive integer",
                    p.text
                ))),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_task(
        &self,
        state: &State,
        resource: &str,
        parameters: Value,
        parameters_text: String,
        timeout: Option<u64>,
        heartbeat: Option<u64>,
        line: &mut Line,
        ctx: &Value,
    ) -> Result<Value, Stop> {
        let bare = is_bare_lambda(resource);
        let (rtype, rname) = resource_parts(resource);
        if bare {
            let mut d = json!({"resource": resource, "input": parameters_text, "inputDetails": {"truncated": false}});
            if let Some(t) = timeout {
                d["timeoutInSeconds"] = json!(t);
            }
            self.emit(line, "LambdaFunctionScheduled", d)?;
            self.emit(line, "LambdaFunctionStarted", Value::Null)?;
        } else {
            let mut d = json!({"resourceType": rtype, "resource": rname, "region": REGION, "parameters": parameters_text});
            if let Some(t) = timeout {
                d["timeoutInSeconds"] = json!(t);
            }
            if let Some(h) = heartbeat {
                d["heartbeatInSeconds"] = json!(h);
            }
            self.emit(line, "TaskScheduled", d)?;
            self.emit(
                line,
                "TaskStarted",
                json!({"resourceType": rtype, "resource": rname}),
            )?;
        }
        let request = TaskRequest {
            state_name: state.name.clone(),
            resource: resource.to_string(),
            parameters,
            retry_count: ctx["State"]["RetryCount"].as_u64().unwrap_or(0) as u32,
            context: ctx.clone(),
        };
        let call = self.handler.call(request);
        // A heartbeat is never sent by an in-process handler, so a heartbeat bound acts as a time bound.
        let limit = match (timeout, heartbeat) {
            (Some(t), Some(h)) => Some((t.min(h), h < t)),
            (Some(t), None) => Some((t, false)),
            (None, Some(h)) => Some((h, true)),
            (None, None) => None,
        };
        let result = match limit {
            None => call.await,
            Some((secs, is_heartbeat)) => {
                match tokio::time::timeout(std::time::Duration::from_secs(secs), call).await {
                    Ok(r) => r,
                    Err(_) => {
                        let error = if is_heartbeat {
                            names::HEARTBEAT_TIMEOUT
                        } else {
                            names::TIMEOUT
                        };
                        if !self.real_time {
                            line.now += Duration::seconds(secs as i64);
                        }
                        // As recorded on AWS: the timed-out event names the error but has no
                        // cause, and the error a Catcher sees has an empty Cause.
                        let (ty, d) = if bare {
                            ("LambdaFunctionTimedOut", json!({"error": error}))
                        } else {
                            (
                                "TaskTimedOut",
                                json!({"resourceType": rtype, "resource": rname, "error": error}),
                            )
                        };
                        self.emit(line, ty, d)?;
                        return Err(StatesError::new(error, "").into());
                    }
                }
            }
        };
        match result {
            Ok(value) => {
                let text = value.to_string();
                if bare {
                    self.emit(
                        line,
                        "LambdaFunctionSucceeded",
                        json!({"output": text, "outputDetails": {"truncated": false}}),
                    )?;
                } else {
                    self.emit(line, "TaskSucceeded", json!({
                        "resourceType": rtype, "resource": rname, "output": text, "outputDetails": {"truncated": false}
                    }))?;
                }
                check_size("the task result", &state.name, text.len())?;
                Ok(value)
            }
            Err(e) => {
                if bare {
                    self.emit(
                        line,
                        "LambdaFunctionFailed",
                        json!({"error": e.error, "cause": e.cause}),
                    )?;
                } else {
                    self.emit(line, "TaskFailed", json!({
                        "resourceType": rtype, "resource": rname, "error": e.error, "cause": e.cause
                    }))?;
                }
                Err(e.into())
            }
        }
    }

    async fn run_parallel(
        &self,
        branches: &[StateMachine],
        input: Value,
        line: &mut Line,
    ) -> Result<Value, Stop> {
        self.emit(line, "ParallelStateStarted", Value::Null)?;
        let start = *line;
        let runs = branches
            .iter()
            .map(|b| self.run_graph(b, &b.start_at, input.clone(), start, false));
        let ends = join_all(runs).await;
        self.join_lines(line, ends.iter().map(|(_, l)| *l));
        let mut outputs = Vec::with_capacity(ends.len());
        let mut first_failure: Option<(DateTime<Utc>, Stop)> = None;
        for (result, end) in ends {
            match result {
                Ok(v) => outputs.push(v),
                Err(stop) => {
                    if first_failure.as_ref().is_none_or(|(t, _)| end.now < *t) {
                        first_failure = Some((end.now, stop));
                    }
                }
            }
        }
        if let Some((_, stop)) = first_failure {
            self.emit(line, "ParallelStateFailed", Value::Null)?;
            return Err(stop);
        }
        self.emit(line, "ParallelStateSucceeded", Value::Null)?;
        Ok(Value::Array(outputs))
    }

    /// After concurrent lines end, the parent continues from the one that ended last: its
    /// clock reading and its last event (on a tie in time, the event recorded last).
    fn join_lines(&self, line: &mut Line, ends: impl Iterator<Item = Line>) {
        let latest = ends.max_by_key(|end| (end.now, end.last));
        if let Some(end) = latest {
            if end.now > line.now {
                line.now = end.now;
            }
            line.last = end.last;
        }
    }

    async fn run_map(
        &self,
        state: &State,
        effective: Value,
        line: &mut Line,
        ctx: &Value,
    ) -> Result<Value, Stop> {
        let Kind::Map {
            processor,
            items_path,
            item_selector,
            max_concurrency,
        } = &state.kind
        else {
            unreachable!()
        };
        let items = match apply_io_path(items_path, effective.clone(), "ItemsPath", ctx)? {
            Value::Array(items) => items,
            other => {
                return Err(StatesError::runtime(format!(
                    "Map state '{}': the items must be a JSON array, found {}",
                    state.name,
                    crate::path::kind_name(&other)
                ))
                .into())
            }
        };
        let limit = match max_concurrency {
            Source::Fixed(n) => *n as usize,
            Source::Path(p) => p
                .select(&effective, ctx)
                .and_then(|v| v.as_u64())
                .ok_or_else(|| {
                    StatesError::runtime(format!(
                        "MaxConcurrencyPath '{}' does not reference a non-negative integer",
                        p.text
                    ))
                })? as usize,
        };
        self.emit(line, "MapStateStarted", json!({"length": items.len()}))?;
        let mut inputs = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let input = match item_selector {
                Some(t) => {
                    let mut item_ctx = ctx.clone();
                    item_ctx["Map"] = json!({"Item": {"Index": i, "Value": item}});
                    self.render(t, &effective, &item_ctx)?
                }
                None => item,
            };
            inputs.push(input);
        }
        let width = if limit == 0 {
            inputs.len().max(1)
        } else {
            limit
        };
        let start = *line;
        let mut outputs: Vec<Option<Value>> = vec![None; inputs.len()];
        let mut failure: Option<Stop> = None;
        let run_item = |i: usize, input: Value, mut l: Line| {
            let name = state.name.clone();
            async move {
                if let Err(e) = self.emit(
                    &mut l,
                    "MapIterationStarted",
                    json!({"name": name, "index": i}),
                ) {
                    return (i, Err(e), l);
                }
                let (r, mut end) = self
                    .run_graph(processor, &processor.start_at, input, l, false)
                    .await;
                let ty = if r.is_ok() {
                    "MapIterationSucceeded"
                } else {
                    "MapIterationFailed"
                };
                let r = match self.emit(&mut end, ty, json!({"name": name, "index": i})) {
                    Ok(()) => r,
                    Err(e) => Err(e),
                };
                (i, r, end)
            }
        };
        // At most `width` iterations run at once; in item order, each takes the slot that
        // frees first. On a virtual clock an iteration may only start once no running
        // iteration could still free a slot earlier (each running one ends no earlier than it
        // started), so the clock shows what AWS would: iterations without Waits or retries
        // still run together, since they all end when they start.
        let mut free = vec![start; width.min(inputs.len()).max(1)];
        let mut running_since: Vec<(usize, DateTime<Utc>)> = Vec::new();
        let mut running = FuturesUnordered::new();
        let mut pending = inputs.into_iter().enumerate().peekable();
        loop {
            while failure.is_none() && pending.peek().is_some() && !free.is_empty() {
                let (slot, _) = free
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, l)| (l.now, l.last))
                    .expect("a free slot");
                let mut l = free[slot];
                if l.now < start.now {
                    l.now = start.now;
                }
                if !self.real_time && running_since.iter().any(|(_, since)| *since < l.now) {
                    break;
                }
                free.swap_remove(slot);
                let (i, input) = pending.next().expect("a pending item");
                running_since.push((i, l.now));
                running.push(run_item(i, input, l));
            }
            let Some((i, r, end)) = running.next().await else {
                break;
            };
            running_since.retain(|(j, _)| *j != i);
            free.push(end);
            match r {
                Ok(v) => outputs[i] = Some(v),
                Err(stop) => {
                    if failure.is_none() {
                        failure = Some(stop);
                    }
                }
            }
        }
        self.join_lines(line, free.into_iter());
        if let Some(stop) = failure {
            self.emit(line, "MapStateFailed", Value::Null)?;
            return Err(stop);
        }
        self.emit(line, "MapStateSucceeded", Value::Null)?;
        Ok(Value::Array(
            outputs.into_iter().map(Option::unwrap_or_default).collect(),
        ))
    }
}
