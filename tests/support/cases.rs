//! The ASL feature table in `tests/asl-cases/`: loading it and running a case on rotor.

use rotor_asl::definition::StateMachine;
use rotor_asl::executor::{execute, Outcome, RunOptions};
use rotor_asl::mock::MockTasks;
use rotor_asl::task::TaskHandler;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Case {
    pub name: String,
    pub definition: Value,
    pub input: Value,
    pub mocks: Option<Value>,
    pub expect: Value,
    /// How the case runs on moto: absent = compare status/output/error; see `moto_plan`.
    pub moto: Option<Value>,
}

pub fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("asl-cases")
}

/// `"GENERATED:N"` in an input stands for a string of N bytes (keeps big payloads out of git).
fn expand(v: Value) -> Value {
    match v {
        Value::String(s) => match s
            .strip_prefix("GENERATED:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => Value::String("x".repeat(n)),
            None => Value::String(s),
        },
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, expand(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(expand).collect()),
        other => other,
    }
}

pub fn load_cases() -> Vec<Case> {
    let mut paths: Vec<_> = std::fs::read_dir(cases_dir())
        .expect("tests/asl-cases exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            Case {
                name: p.file_stem().unwrap().to_string_lossy().into_owned(),
                definition: v["definition"].clone(),
                input: expand(v["input"].clone()),
                mocks: v.get("mocks").cloned(),
                expect: v["expect"].clone(),
                moto: v.get("moto").cloned(),
            }
        })
        .collect()
}

/// Runs a case on rotor's executor with a fixed clock start and seed; its Tasks answer from
/// the case's `mocks` (Step Functions Local's MockedResponses format, keyed by state name).
pub fn run_on_rotor(case: &Case) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run_case(case))
}

/// [`run_on_rotor`] for callers already inside a runtime.
pub async fn run_case(case: &Case) -> Outcome {
    run_case_with(case, Arc::new(mock_handler(case))).await
}

fn mock_handler(case: &Case) -> MockTasks {
    let mocks = case.mocks.clone().unwrap_or_else(|| json!({}));
    let states: serde_json::Map<String, Value> = mocks
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), json!(k)))
        .collect();
    let config = json!({
        "StateMachines": {"case": {"TestCases": {"default": states}}},
        "MockedResponses": mocks,
    });
    MockTasks::from_config(&config, Some("case"), "default", None).unwrap()
}

/// Runs a case with another task handler (same clock start and seed).
pub async fn run_case_with(case: &Case, handler: Arc<dyn TaskHandler>) -> Outcome {
    let machine = StateMachine::from_value(&case.definition)
        .unwrap_or_else(|d| panic!("{}: invalid definition: {d:?}", case.name));
    let mut options = RunOptions::new(format!("case-{}", case.name), handler);
    options.state_machine_name = case.name.clone();
    options.seed = Some(7);
    options.start_time = Some("2026-01-01T00:00:00Z".parse().unwrap());
    execute(&machine, case.input.clone(), options).await
}
