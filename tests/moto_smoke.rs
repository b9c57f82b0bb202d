//! Smoke tests for the moto harness, and a record of what moto 5.2.5's Step
//! Functions interpreter does where it matters for differential tests.
//!
//! Observed with `moto[server]==5.2.5`, no Docker, no Lambda functions created:
//!
//! | case | status | error | cause |
//! | --- | --- | --- | --- |
//! | Fail state | FAILED | its `Error` | its `Cause` |
//! | Task `arn:aws:lambda:…:function:f` | FAILED | `Exception` | `Function not found: arn:aws:lambda:us-east-1:123456789012:function:f` |
//! | Task `arn:aws:states:::lambda:invoke` | FAILED | `Lambda.ResourceNotFoundException` | `Function not found: <arn> (Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException; Request ID: <random>; Proxy: null)` |
//! | Choice, no match, no Default | FAILED | `States.Runtime` (AWS: `States.NoChoiceMatched`) | `RuntimeError(('No branching option reached in state %s', 'C'))` |
//!
//! Retry and Catch match these names (`States.ALL`, `States.TaskFailed`, the
//! exact name); retry intervals and Wait states really sleep (wall clock),
//! with BackoffRate 2.0 by default.
//!
//! These tests use unique names and never reset moto, so they run in parallel.

use std::time::Duration;

use rotor_tests::moto::{run_on_moto, sfn_client, MotoOutcome};
use serde_json::{json, Value};

const LAMBDA_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";
const NOT_FOUND: &str = "Function not found: arn:aws:lambda:us-east-1:123456789012:function:f";

fn lambda_arn_task() -> Value {
    json!({"Type": "Task", "Resource": LAMBDA_ARN})
}

fn lambda_invoke_task() -> Value {
    json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": LAMBDA_ARN, "Payload.$": "$"}
    })
}

fn with(mut state: Value, extra: Value) -> Value {
    let obj = state.as_object_mut().unwrap();
    for (k, v) in extra.as_object().unwrap() {
        obj.insert(k.clone(), v.clone());
    }
    state
}

/// Event `timestamp`s (epoch seconds) of the events of `event_type`.
fn timestamps(o: &MotoOutcome, event_type: &str) -> Vec<f64> {
    o.events_of(event_type)
        .iter()
        .map(|e| e["timestamp"].as_f64().expect("numeric timestamp"))
        .collect()
}

fn assert_failed(o: &MotoOutcome, error: &str, cause: &str) {
    assert_eq!(o.status, "FAILED", "{o:#?}");
    assert_eq!(o.error.as_deref(), Some(error), "{o:#?}");
    assert_eq!(o.cause.as_deref(), Some(cause), "{o:#?}");
    assert_eq!(o.output, None);
    let last = o.history.last().expect("history");
    assert_eq!(last["type"], "ExecutionFailed");
    assert_eq!(
        last["executionFailedEventDetails"],
        json!({"error": error, "cause": cause})
    );
}

#[tokio::test]
async fn pass_choice_succeed() {
    let definition = json!({
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.p", "Next": "C"},
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.p.x", "NumericEquals": 1, "Next": "S"}],
                "Default": "F"
            },
            "S": {"Type": "Succeed"},
            "F": {"Type": "Fail", "Error": "Wrong"}
        }
    });
    let o = run_on_moto(&definition, &json!({"a": "b"}), "smoke-pcs").await;

    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_eq!(o.output, Some(json!({"a": "b", "p": {"x": 1}})));
    assert_eq!((o.error.as_deref(), o.cause.as_deref()), (None, None));
    assert_eq!(
        o.event_types(),
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ChoiceStateEntered",
            "ChoiceStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded",
        ]
    );
    // Events carry AWS's wire shape.
    let ids: Vec<u64> = o
        .history
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (1..=8).collect::<Vec<_>>());
    assert_eq!(o.history[2]["stateExitedEventDetails"]["name"], "P");
    assert_eq!(
        o.history[2]["stateExitedEventDetails"]["output"],
        r#"{"a":"b","p":{"x":1}}"#
    );
}

#[tokio::test]
async fn fail_state_reports_error_and_cause() {
    let definition = json!({
        "StartAt": "F",
        "States": {"F": {"Type": "Fail", "Error": "MyError", "Cause": "my cause"}}
    });
    let o = run_on_moto(&definition, &json!({}), "smoke-fail").await;
    assert_failed(&o, "MyError", "my cause");
    assert_eq!(
        o.event_types(),
        ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]
    );
}

#[tokio::test]
async fn lambda_arn_task_fails_with_plain_exception() {
    let definition =
        json!({"StartAt": "T", "States": {"T": with(lambda_arn_task(), json!({"End": true}))}});
    let o = run_on_moto(&definition, &json!({"k": 1}), "smoke-lambda-arn").await;

    assert_failed(&o, "Exception", NOT_FOUND);
    assert_eq!(
        o.event_types(),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionFailed",
            "ExecutionFailed",
        ]
    );
    assert_eq!(
        o.events_of("LambdaFunctionFailed")[0]["lambdaFunctionFailedEventDetails"],
        json!({"error": "Exception", "cause": NOT_FOUND})
    );
}

#[tokio::test]
async fn lambda_invoke_task_fails_with_resource_not_found() {
    let definition =
        json!({"StartAt": "T", "States": {"T": with(lambda_invoke_task(), json!({"End": true}))}});
    let o = run_on_moto(&definition, &json!({"k": 1}), "smoke-lambda-invoke").await;

    assert_eq!(o.status, "FAILED", "{o:#?}");
    assert_eq!(o.error.as_deref(), Some("Lambda.ResourceNotFoundException"));
    // The Request ID inside the cause is random.
    let cause = o.cause.clone().unwrap();
    let prefix = format!(
        "{NOT_FOUND} (Service: AWSLambda; Status Code: 404; \
         Error Code: ResourceNotFoundException; Request ID: "
    );
    assert!(cause.starts_with(&prefix), "{cause}");
    assert!(cause.ends_with("; Proxy: null)"), "{cause}");
    assert_eq!(
        o.event_types(),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskFailed",
            "ExecutionFailed",
        ]
    );
    let failed = &o.events_of("TaskFailed")[0]["taskFailedEventDetails"];
    assert_eq!(failed["resourceType"], "lambda");
    assert_eq!(failed["resource"], "invoke");
    assert_eq!(failed["error"], "Lambda.ResourceNotFoundException");
    assert_eq!(failed["cause"], cause.as_str());
}

#[tokio::test]
async fn choice_without_match_is_states_runtime_not_no_choice_matched() {
    let definition = json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "S"}]},
            "S": {"Type": "Succeed"}
        }
    });
    let o = run_on_moto(&definition, &json!({"x": 2}), "smoke-nomatch").await;
    // AWS: States.NoChoiceMatched. moto (LocalStack's interpreter): States.Runtime.
    assert_failed(
        &o,
        "States.Runtime",
        "RuntimeError(('No branching option reached in state %s', 'C'))",
    );
    assert_eq!(
        o.event_types(),
        ["ExecutionStarted", "ChoiceStateEntered", "ExecutionFailed"]
    );
}

/// Retry States.ALL (MaxAttempts 2, IntervalSeconds 1, default BackoffRate 2)
/// then Catch -> Pass: three attempts, sleeping 1 s then 2 s, then SUCCEEDED.
#[tokio::test]
async fn retry_then_catch_on_lambda_failure_really_sleeps() {
    let task = with(
        lambda_arn_task(),
        json!({
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "H"}],
            "End": true
        }),
    );
    let definition =
        json!({"StartAt": "T", "States": {"T": task, "H": {"Type": "Pass", "End": true}}});
    let o = run_on_moto(&definition, &json!({"k": 1}), "smoke-retry-catch").await;

    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_eq!(
        o.output,
        Some(json!({"k": 1, "err": {"Error": "Exception", "Cause": NOT_FOUND}}))
    );
    let scheduled = timestamps(&o, "LambdaFunctionScheduled");
    let failed = timestamps(&o, "LambdaFunctionFailed");
    assert_eq!(
        (scheduled.len(), failed.len()),
        (3, 3),
        "{:?}",
        o.event_types()
    );
    // Wall-clock sleeps between a failure and the next attempt: 1 s, then 2 s.
    let gap1 = scheduled[1] - failed[0];
    let gap2 = scheduled[2] - failed[1];
    assert!((0.95..1.9).contains(&gap1), "first retry interval {gap1}");
    assert!((1.95..3.5).contains(&gap2), "second retry interval {gap2}");
    assert!(o.elapsed >= Duration::from_secs(3), "{:?}", o.elapsed);
    assert!(o.elapsed < Duration::from_secs(20), "{:?}", o.elapsed);
    assert_eq!(
        o.event_types()[11..],
        [
            "TaskStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
}

/// Retry and Catch also match moto's exact error names and States.TaskFailed.
#[tokio::test]
async fn retry_and_catch_match_exact_names_and_task_failed() {
    // lambda:invoke integration: Lambda.ResourceNotFoundException by name.
    let task = with(
        lambda_invoke_task(),
        json!({
            "Retry": [{"ErrorEquals": ["Lambda.ResourceNotFoundException"], "MaxAttempts": 1, "IntervalSeconds": 1}],
            "Catch": [{"ErrorEquals": ["Lambda.ResourceNotFoundException"], "ResultPath": "$.err", "Next": "H"}],
            "End": true
        }),
    );
    let definition =
        json!({"StartAt": "T", "States": {"T": task, "H": {"Type": "Pass", "End": true}}});
    let o = run_on_moto(&definition, &json!({"k": 1}), "smoke-retry-name").await;
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_eq!(o.events_of("TaskFailed").len(), 2);
    let err = &o.output.as_ref().unwrap()["err"];
    assert_eq!(err["Error"], "Lambda.ResourceNotFoundException");
    assert!(err["Cause"].as_str().unwrap().starts_with(NOT_FOUND));

    // Lambda ARN resource: error "Exception" is caught by States.TaskFailed.
    let task = with(
        lambda_arn_task(),
        json!({"Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "H"}], "End": true}),
    );
    let definition =
        json!({"StartAt": "T", "States": {"T": task, "H": {"Type": "Pass", "End": true}}});
    let o = run_on_moto(&definition, &json!({"k": 1}), "smoke-catch-taskfailed").await;
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    // Catch without ResultPath: the error object replaces the input.
    assert_eq!(
        o.output,
        Some(json!({"Error": "Exception", "Cause": NOT_FOUND}))
    );
}

#[tokio::test]
async fn wait_state_really_sleeps() {
    let definition = json!({
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true}}
    });
    let o = run_on_moto(&definition, &json!({"k": 1}), "smoke-wait").await;
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_eq!(o.output, Some(json!({"k": 1})));
    let gap = timestamps(&o, "WaitStateExited")[0] - timestamps(&o, "WaitStateEntered")[0];
    assert!(gap >= 0.95, "Wait lasted {gap} s");
    assert!(o.elapsed >= Duration::from_millis(950), "{:?}", o.elapsed);
}

/// The two operations scripts/moto_launcher.py adds for Terraform.
#[tokio::test]
async fn launcher_adds_operations_terraform_needs() {
    let client = sfn_client().await;
    let definition =
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}).to_string();

    let v = client
        .validate_state_machine_definition()
        .definition(&definition)
        .send()
        .await
        .expect("ValidateStateMachineDefinition");
    assert_eq!(v.result().as_str(), "OK");
    assert!(v.diagnostics().is_empty());

    let arn = client
        .create_state_machine()
        .name(rotor_tests::moto::unique_name("smoke-versions"))
        .definition(definition)
        .role_arn(rotor_tests::moto::ROLE_ARN)
        .send()
        .await
        .expect("CreateStateMachine")
        .state_machine_arn()
        .to_owned();
    let versions = client
        .list_state_machine_versions()
        .state_machine_arn(arn)
        .send()
        .await
        .expect("ListStateMachineVersions");
    assert!(versions.state_machine_versions().is_empty());
}
