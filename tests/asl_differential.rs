//! Differential tests: every case of the ASL feature table also runs on moto 5.2.5's
//! Step Functions interpreter (started by `scripts/test`), and the two must agree on status,
//! output and error name. A case may say otherwise only with a `moto` entry that cites AWS
//! documentation showing moto is wrong (`{"expect": {...}, "why": "..."}`: moto must still
//! give exactly that, so a fixed moto is noticed) or cannot run it (`{"skip": "..."}`).
//!
//! Moto cannot run a Lambda function here (it needs Docker): every Task fails on moto with
//! `Lambda.ResourceNotFoundException` (optimized `lambda:invoke`) or `Exception` (bare function
//! ARN). For cases with Tasks, rotor runs a second time with a handler that fails the same way,
//! and that run is compared with moto's, so Retry/Catch/ResultPath handling is still checked
//! against an independent interpreter. Causes carry moto's random request ids, so they are not
//! compared.

use rotor_asl::error::StatesError;
use rotor_asl::executor::Outcome;
use rotor_asl::task::{TaskHandler, TaskRequest, LAMBDA_INVOKE};
use rotor_tests::cases::{load_cases, run_case, run_case_with, Case};
use rotor_tests::moto::{enable_sfn_interpreter, run_on_moto, MotoOutcome};
use serde_json::Value;
use std::sync::Arc;

fn compare(case: &Case, ours: &Outcome, moto: &MotoOutcome) -> Result<(), String> {
    let plan = case.moto.clone().unwrap_or(Value::Null);
    let our_status = serde_json::to_value(ours.status).unwrap();
    let describe = format!(
        "{}:\n  rotor: status={our_status} output={:?} error={:?}\n  moto:  status={} output={:?} error={:?} cause={:?}",
        case.name, ours.output, ours.error, moto.status, moto.output, moto.error, moto.cause
    );
    if let Some(expect) = plan.get("expect") {
        assert!(
            plan.get("why")
                .and_then(Value::as_str)
                .is_some_and(|w| w.contains("docs.aws.amazon.com")),
            "{}: a known moto divergence must cite AWS documentation in \"why\"",
            case.name
        );
        let matches = expect
            .get("status")
            .is_none_or(|s| s == moto.status.as_str())
            && expect
                .get("error")
                .is_none_or(|e| e.as_str() == moto.error.as_deref())
            && expect
                .get("output")
                .is_none_or(|o| Some(o) == moto.output.as_ref());
        return if matches {
            Ok(())
        } else {
            Err(format!("moto no longer diverges as recorded; {describe}"))
        };
    }
    let fields: Vec<String> = plan
        .get("compare")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| {
            let mut all = vec!["status".to_string(), "output".into(), "error".into()];
            if case.mocks.is_some() {
                all.push("task_attempts".into());
            }
            all
        });
    for field in &fields {
        let same = match field.as_str() {
            "status" => our_status == moto.status.as_str(),
            "output" => without_causes(&ours.output) == without_causes(&moto.output),
            "task_attempts" => task_attempts(&ours.events) == task_attempts(&moto.history),
            "error" => ours.error == moto.error,
            "output_fields" => case.expect["output_fields"]
                .as_object()
                .unwrap()
                .keys()
                .all(|k| {
                    ours.output.as_ref().and_then(|o| o.get(k))
                        == moto.output.as_ref().and_then(|o| o.get(k))
                }),
            other => panic!("{}: unknown comparison {other:?}", case.name),
        };
        if !same {
            return Err(format!("{field} differs; {describe}"));
        }
    }
    Ok(())
}

/// Fails every Task exactly as moto 5.2.5 does when it cannot run a function.
struct FailLikeMoto;

#[async_trait::async_trait]
impl TaskHandler for FailLikeMoto {
    async fn call(&self, request: TaskRequest) -> Result<Value, StatesError> {
        if request.resource == LAMBDA_INVOKE {
            let function = request.parameters["FunctionName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Err(StatesError::new(
                "Lambda.ResourceNotFoundException",
                format!("Function not found: {function}"),
            ))
        } else {
            Err(StatesError::new(
                "Exception",
                format!("Function not found: {}", request.resource),
            ))
        }
    }
}

/// Error causes differ between rotor and moto (request ids): blank them before comparing.
fn without_causes(v: &Option<Value>) -> Option<Value> {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), if k == "Cause" { Value::Null } else { strip(v) }))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    v.as_ref().map(strip)
}

fn task_attempts(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(
                e["type"].as_str(),
                Some("TaskScheduled" | "LambdaFunctionScheduled")
            )
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotor_and_moto_agree_on_every_case() {
    enable_sfn_interpreter().await;
    let cases = load_cases();
    let runnable: Vec<&Case> = cases
        .iter()
        .filter(|c| {
            let skip = c
                .moto
                .as_ref()
                .and_then(|m| m.get("skip"))
                .and_then(Value::as_str);
            if let Some(reason) = skip {
                assert!(
                    reason.contains("docs.aws.amazon.com") || reason.contains("moto"),
                    "{}: say why",
                    c.name
                );
            }
            skip.is_none()
        })
        .collect();
    assert!(
        runnable.len() * 4 >= cases.len() * 3,
        "most cases must run on moto: {} of {}",
        runnable.len(),
        cases.len()
    );
    // Moto really sleeps for Waits and retries: run the cases side by side.
    let runs = runnable.iter().map(|c| async move {
        let outcome = run_on_moto(&c.definition, &c.input, &c.name).await;
        let ours = match c.mocks {
            Some(_) => run_case_with(c, Arc::new(FailLikeMoto)).await,
            None => run_case(c).await,
        };
        (*c, ours, outcome)
    });
    let results = futures::future::join_all(runs).await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(case, ours, moto)| compare(case, ours, moto).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n\n")
    );
}
