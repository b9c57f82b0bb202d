//! The typed form of a definition, built after [`validate`](crate::validate) found no problem.

use crate::choice::Branch;
use crate::intrinsic::Intrinsic;
use crate::path::Path;
use crate::template::Template;
use crate::validate::{validate, Diagnostic};
use serde_json::Value;
use std::collections::HashMap;

/// A state machine or one of its nested graphs (a Parallel branch, a Map's ItemProcessor).
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub start_at: String,
    pub states: HashMap<String, State>,
    pub timeout_seconds: Option<u64>,
}

/// An optional path where `null` has its own meaning (InputPath/OutputPath: `{}`).
#[derive(Debug, Clone)]
pub enum IoPath {
    Whole,
    Null,
    Path(Path),
}

/// ResultPath: replace the input (`$`), discard the result (`null`) or write at a path.
#[derive(Debug, Clone)]
pub enum ResultPath {
    Whole,
    Discard,
    Path(Path),
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub full_jitter: bool,
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub result_path: ResultPath,
    pub next: String,
}

/// Error handling shared by Task, Parallel and Map.
#[derive(Debug, Clone, Default)]
pub struct Handling {
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

/// Where a number or a timestamp comes from: the definition or a path.
#[derive(Debug, Clone)]
pub enum Source<T> {
    Fixed(T),
    Path(Path),
}

/// Fail's Error/Cause: a literal, a path or an intrinsic function.
#[derive(Debug, Clone)]
pub enum Text {
    Fixed(String),
    Path(Path),
    Intrinsic(Box<Intrinsic>),
}

#[derive(Debug, Clone)]
pub enum Wait {
    Seconds(Source<u64>),
    Timestamp(Source<String>),
}

#[derive(Debug, Clone)]
pub enum Kind {
    Pass {
        result: Option<Value>,
    },
    Task {
        resource: String,
        timeout: Option<Source<u64>>,
        heartbeat: Option<Source<u64>>,
    },
    Choice {
        choices: Vec<Branch>,
        default: Option<String>,
    },
    Wait(Wait),
    Succeed,
    Fail {
        error: Option<Text>,
        cause: Option<Text>,
    },
    Parallel {
        branches: Vec<StateMachine>,
    },
    Map {
        processor: Box<StateMachine>,
        items_path: IoPath,
        item_selector: Option<Template>,
        max_concurrency: Source<u64>,
    },
}

#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub kind: Kind,
    pub input_path: IoPath,
    pub output_path: IoPath,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub result_path: ResultPath,
    pub handling: Handling,
    /// `None` for End states and for Choice/Succeed/Fail.
    pub next: Option<String>,
}

impl State {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Pass { .. } => "Pass",
            Kind::Task { .. } => "Task",
            Kind::Choice { .. } => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel { .. } => "Parallel",
            Kind::Map { .. } => "Map",
        }
    }
}

impl StateMachine {
    /// Parses and validates a definition's JSON text.
    pub fn from_json(text: &str) -> Result<StateMachine, Vec<Diagnostic>> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            vec![Diagnostic {
                code: "INVALID_JSON_DESCRIPTION".into(),
                state: None,
                location: "/".into(),
                message: format!("the definition is not valid JSON: {e}"),
            }]
        })?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<StateMachine, Vec<Diagnostic>> {
        let problems = validate(value);
        if !problems.is_empty() {
            return Err(problems);
        }
        build_graph(value, "").map_err(|(state, location, message)| {
            vec![Diagnostic {
                code: "SCHEMA_VALIDATION_FAILED".into(),
                state,
                location,
                message,
            }]
        })
    }
}

type BuildError = (Option<String>, String, String);

fn build_graph(v: &Value, at: &str) -> Result<StateMachine, BuildError> {
    let err = |m: String| (None, at.to_string(), m);
    let start_at = v
        .get("StartAt")
        .and_then(Value::as_str)
        .ok_or_else(|| err("StartAt is missing".into()))?;
    let states_v = v
        .get("States")
        .and_then(Value::as_object)
        .ok_or_else(|| err("States is missing".into()))?;
    let mut states = HashMap::with_capacity(states_v.len());
    for (name, sv) in states_v {
        let loc = format!("{at}/States/{name}");
        let state =
            build_state(name, sv, &loc).map_err(|m| (Some(name.clone()), loc.clone(), m))?;
        states.insert(name.clone(), state);
    }
    Ok(StateMachine {
        start_at: start_at.to_string(),
        states,
        timeout_seconds: v.get("TimeoutSeconds").and_then(Value::as_u64),
    })
}

fn io_path(v: &Value, field: &str) -> Result<IoPath, String> {
    match v.get(field) {
        None => Ok(IoPath::Whole),
        Some(Value::Null) => Ok(IoPath::Null),
        Some(Value::String(s)) => Ok(IoPath::Path(
            Path::parse(s).map_err(|e| format!("{field}: {e}"))?,
        )),
        Some(_) => Err(format!("{field} must be a string or null")),
    }
}

fn result_path(v: &Value) -> Result<ResultPath, String> {
    match v.get("ResultPath") {
        None => Ok(ResultPath::Whole),
        Some(Value::Null) => Ok(ResultPath::Discard),
        Some(Value::String(s)) if s == "$" => Ok(ResultPath::Whole),
        Some(Value::String(s)) => Ok(ResultPath::Path(
            Path::parse_reference(s).map_err(|e| format!("ResultPath: {e}"))?,
        )),
        Some(_) => Err("ResultPath must be a string or null".into()),
    }
}

fn template(v: &Value, field: &str) -> Result<Option<Template>, String> {
    v.get(field)
        .map(|t| Template::parse(t).map_err(|e| format!("{field}: {e}")))
        .transpose()
}

fn string_list(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn handling(v: &Value) -> Result<Handling, String> {
    let mut h = Handling::default();
    for r in v
        .get("Retry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        h.retry.push(Retrier {
            error_equals: string_list(r, "ErrorEquals"),
            interval_seconds: r
                .get("IntervalSeconds")
                .and_then(Value::as_f64)
                .unwrap_or(1.0),
            max_attempts: r.get("MaxAttempts").and_then(Value::as_u64).unwrap_or(3) as u32,
            backoff_rate: r.get("BackoffRate").and_then(Value::as_f64).unwrap_or(2.0),
            max_delay_seconds: r.get("MaxDelaySeconds").and_then(Value::as_f64),
            full_jitter: r.get("JitterStrategy").and_then(Value::as_str) == Some("FULL"),
        });
    }
    for c in v
        .get("Catch")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        h.catch.push(Catcher {
            error_equals: string_list(c, "ErrorEquals"),
            result_path: result_path(c)?,
            next: c
                .get("Next")
                .and_then(Value::as_str)
                .ok_or("a Catcher has no Next")?
                .to_string(),
        });
    }
    Ok(h)
}

fn number_source(v: &Value, field: &str) -> Result<Option<Source<u64>>, String> {
    if let Some(n) = v.get(field) {
        return Ok(Some(Source::Fixed(n.as_u64().ok_or_else(|| {
            format!("{field} must be a non-negative integer")
        })?)));
    }
    let pf = format!("{field}Path");
    if let Some(p) = v.get(&pf).and_then(Value::as_str) {
        return Ok(Some(Source::Path(
            Path::parse_reference(p).map_err(|e| format!("{pf}: {e}"))?,
        )));
    }
    Ok(None)
}

fn text(v: &Value, field: &str) -> Result<Option<Text>, String> {
    if let Some(s) = v.get(field).and_then(Value::as_str) {
        return Ok(Some(Text::Fixed(s.to_string())));
    }
    let pf = format!("{field}Path");
    match v.get(&pf).and_then(Value::as_str) {
        Some(s) if Intrinsic::looks_like_call(s) => Ok(Some(Text::Intrinsic(Box::new(
            Intrinsic::parse(s).map_err(|e| format!("{pf}: {e}"))?,
        )))),
        Some(s) => Ok(Some(Text::Path(
            Path::parse(s).map_err(|e| format!("{pf}: {e}"))?,
        ))),
        None => Ok(None),
    }
}

fn build_state(name: &str, v: &Value, loc: &str) -> Result<State, String> {
    let ty = v.get("Type").and_then(Value::as_str).unwrap_or("");
    let kind = match ty {
        "Pass" => Kind::Pass {
            result: v.get("Result").cloned(),
        },
        "Task" => Kind::Task {
            resource: v
                .get("Resource")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            timeout: number_source(v, "TimeoutSeconds")?,
            heartbeat: number_source(v, "HeartbeatSeconds")?,
        },
        "Choice" => Kind::Choice {
            choices: v
                .get("Choices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(Branch::parse)
                .collect::<Result<_, _>>()?,
            default: v.get("Default").and_then(Value::as_str).map(str::to_string),
        },
        "Wait" => Kind::Wait(if let Some(s) = number_source(v, "Seconds")? {
            Wait::Seconds(s)
        } else if let Some(t) = v.get("Timestamp").and_then(Value::as_str) {
            Wait::Timestamp(Source::Fixed(t.to_string()))
        } else {
            let p = v
                .get("TimestampPath")
                .and_then(Value::as_str)
                .ok_or("Wait needs Seconds, SecondsPath, Timestamp or TimestampPath")?;
            Wait::Timestamp(Source::Path(Path::parse_reference(p)?))
        }),
        "Succeed" => Kind::Succeed,
        "Fail" => Kind::Fail {
            error: text(v, "Error")?,
            cause: text(v, "Cause")?,
        },
        "Parallel" => Kind::Parallel {
            branches: v
                .get("Branches")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, b)| build_graph(b, &format!("{loc}/Branches/{i}")).map_err(|e| e.2))
                .collect::<Result<_, _>>()?,
        },
        "Map" => {
            let (field, p) = match v.get("ItemProcessor") {
                Some(p) => ("ItemProcessor", p),
                None => (
                    "Iterator",
                    v.get("Iterator").ok_or("Map needs ItemProcessor")?,
                ),
            };
            Kind::Map {
                processor: Box::new(build_graph(p, &format!("{loc}/{field}")).map_err(|e| e.2)?),
                items_path: io_path(v, "ItemsPath")?,
                // Before ItemSelector existed, a Map's Parameters selected each item.
                item_selector: match template(v, "ItemSelector")? {
                    Some(t) => Some(t),
                    None => template(v, "Parameters")?,
                },
                max_concurrency: number_source(v, "MaxConcurrency")?.unwrap_or(Source::Fixed(0)),
            }
        }
        other => return Err(format!("unknown state Type {other:?}")),
    };
    let is_map = matches!(kind, Kind::Map { .. });
    Ok(State {
        name: name.to_string(),
        input_path: io_path(v, "InputPath")?,
        output_path: io_path(v, "OutputPath")?,
        parameters: if is_map {
            None
        } else {
            template(v, "Parameters")?
        },
        result_selector: template(v, "ResultSelector")?,
        result_path: result_path(v)?,
        handling: handling(v)?,
        next: if v.get("End").and_then(Value::as_bool) == Some(true) {
            None
        } else {
            v.get("Next").and_then(Value::as_str).map(str::to_string)
        },
        kind,
    })
}
