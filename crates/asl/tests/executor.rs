//! Executor behaviours the ASL case table (`tests/asl-cases`) cannot show: real task timeouts,
//! Lambda result shaping, the exact shape and order of the history, the virtual clock, seeded
//! jitter, quotas, mock configs and the live observer.
//!
//! AWS sources relied on:
//! - History event shapes: the Step Functions service model (`HistoryEvent` and its
//!   `*EventDetails` structures, botocore `stepfunctions/2016-11-23/service-2.json`).
//! - Event sequences: histories recorded on AWS in LocalStack's snapshot tests
//!   (`tests/aws/services/stepfunctions/v2/error_handling/test_task_service_lambda.snapshot.json`,
//!   `tests/aws/services/stepfunctions/v2/scenarios/test_base_scenarios.snapshot.json`).
//! - Lambda integration result: https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rotor_asl::definition::StateMachine;
use rotor_asl::error::StatesError;
use rotor_asl::executor::{execute, Outcome, RunOptions, Status, MAX_HISTORY_EVENTS};
use rotor_asl::history::details_key;
use rotor_asl::mock::MockTasks;
use rotor_asl::task::{
    FunctionError, FunctionInvoker, LambdaTasks, TaskHandler, TaskRequest, LAMBDA_INVOKE,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn machine(definition: &Value) -> StateMachine {
    StateMachine::from_value(definition)
        .unwrap_or_else(|e| panic!("invalid definition {definition}: {e:?}"))
}

fn t0() -> DateTime<Utc> {
    "2024-01-01T00:00:00Z".parse().unwrap()
}

fn options(handler: Arc<dyn TaskHandler>) -> RunOptions {
    let mut o = RunOptions::new("exec", handler);
    o.start_time = Some(t0());
    o.seed = Some(7);
    o
}

async fn run(definition: Value, input: Value, handler: Arc<dyn TaskHandler>) -> Outcome {
    execute(&machine(&definition), input, options(handler)).await
}

/// A task handler from a closure.
struct FnHandler<F>(F);

#[async_trait]
impl<F> TaskHandler for FnHandler<F>
where
    F: Fn(&TaskRequest) -> Result<Value, StatesError> + Send + Sync,
{
    async fn call(&self, request: TaskRequest) -> Result<Value, StatesError> {
        (self.0)(&request)
    }
}

fn handler(
    f: impl Fn(&TaskRequest) -> Result<Value, StatesError> + Send + Sync + 'static,
) -> Arc<dyn TaskHandler> {
    Arc::new(FnHandler(f))
}

fn echo() -> Arc<dyn TaskHandler> {
    handler(|r| Ok(r.parameters.clone()))
}

/// Takes `millis` of real time before answering.
struct Sleeper(u64);

#[async_trait]
impl TaskHandler for Sleeper {
    async fn call(&self, _request: TaskRequest) -> Result<Value, StatesError> {
        tokio::time::sleep(Duration::from_millis(self.0)).await;
        Ok(json!({"late": true}))
    }
}

fn types(o: &Outcome) -> Vec<&str> {
    o.events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

fn events_of<'a>(o: &'a Outcome, ty: &str) -> Vec<&'a Value> {
    o.events.iter().filter(|e| e["type"] == ty).collect()
}

fn time_of(e: &Value) -> DateTime<Utc> {
    e["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap_or_else(|err| panic!("bad timestamp in {e}: {err}"))
}

/// Seconds after [`t0`] on the virtual clock.
fn offset(e: &Value) -> f64 {
    (time_of(e) - t0()).num_milliseconds() as f64 / 1000.0
}

fn offsets(o: &Outcome, ty: &str) -> Vec<f64> {
    events_of(o, ty).into_iter().map(offset).collect()
}

/// The event of type `ty` whose details name `state`.
fn named<'a>(o: &'a Outcome, ty: &str, state: &str) -> &'a Value {
    let key = details_key(ty);
    o.events
        .iter()
        .find(|e| e["type"] == ty && e[&key]["name"] == state)
        .unwrap_or_else(|| panic!("no {ty} for {state} in {:?}", types(o)))
}

fn by_id(o: &Outcome, id: u64) -> &Value {
    &o.events[id as usize - 1]
}

/// The members of each details structure, as in the Step Functions service model:
/// (details key, required members, every member).
const DETAILS: &[(&str, &[&str], &[&str])] = &[
    (
        "executionStartedEventDetails",
        &["input", "inputDetails", "roleArn"],
        &[
            "input",
            "inputDetails",
            "roleArn",
            "stateMachineAliasArn",
            "stateMachineVersionArn",
        ],
    ),
    (
        "executionSucceededEventDetails",
        &["output", "outputDetails"],
        &["output", "outputDetails"],
    ),
    ("executionFailedEventDetails", &[], &["error", "cause"]),
    (
        "executionTimedOutEventDetails",
        &["error"],
        &["error", "cause"],
    ),
    (
        "stateEnteredEventDetails",
        &["name", "input", "inputDetails"],
        &["name", "input", "inputDetails"],
    ),
    (
        "stateExitedEventDetails",
        &["name", "output", "outputDetails"],
        &[
            "name",
            "output",
            "outputDetails",
            "assignedVariables",
            "assignedVariablesDetails",
        ],
    ),
    (
        "taskScheduledEventDetails",
        &["resourceType", "resource", "region", "parameters"],
        &[
            "resourceType",
            "resource",
            "region",
            "parameters",
            "timeoutInSeconds",
            "heartbeatInSeconds",
            "taskCredentials",
        ],
    ),
    (
        "taskStartedEventDetails",
        &["resourceType", "resource"],
        &["resourceType", "resource"],
    ),
    (
        "taskSucceededEventDetails",
        &["resourceType", "resource", "output", "outputDetails"],
        &["resourceType", "resource", "output", "outputDetails"],
    ),
    (
        "taskFailedEventDetails",
        &["resourceType", "resource", "error"],
        &["resourceType", "resource", "error", "cause"],
    ),
    (
        "taskTimedOutEventDetails",
        &["resourceType", "resource", "error"],
        &["resourceType", "resource", "error", "cause"],
    ),
    (
        "lambdaFunctionScheduledEventDetails",
        &["resource", "input", "inputDetails"],
        &[
            "resource",
            "input",
            "inputDetails",
            "timeoutInSeconds",
            "taskCredentials",
        ],
    ),
    (
        "lambdaFunctionSucceededEventDetails",
        &["output", "outputDetails"],
        &["output", "outputDetails"],
    ),
    (
        "lambdaFunctionFailedEventDetails",
        &["error"],
        &["error", "cause"],
    ),
    (
        "lambdaFunctionTimedOutEventDetails",
        &["error"],
        &["error", "cause"],
    ),
    ("mapStateStartedEventDetails", &["length"], &["length"]),
    (
        "mapIterationStartedEventDetails",
        &["name", "index"],
        &["name", "index"],
    ),
    (
        "mapIterationSucceededEventDetails",
        &["name", "index"],
        &["name", "index"],
    ),
    (
        "mapIterationFailedEventDetails",
        &["name", "index"],
        &["name", "index"],
    ),
];

/// Event types that carry no details structure in the service model.
const NO_DETAILS: &[&str] = &[
    "LambdaFunctionStarted",
    "ParallelStateStarted",
    "ParallelStateSucceeded",
    "ParallelStateFailed",
    "MapStateSucceeded",
    "MapStateFailed",
];

/// Checks every event against `GetExecutionHistory`'s shape: ids 1..n in time order,
/// `previousEventId` pointing at an earlier event, an RFC 3339 timestamp and exactly the
/// details structure its type has on AWS. Returns the details keys seen.
fn check_history_shape(o: &Outcome) -> Vec<String> {
    let mut seen = Vec::new();
    let mut last_time = None;
    for (i, e) in o.events.iter().enumerate() {
        let obj = e
            .as_object()
            .unwrap_or_else(|| panic!("event {e} is no object"));
        assert_eq!(e["id"], json!(i as u64 + 1), "ids must run 1..n: {e}");
        let prev = e["previousEventId"]
            .as_u64()
            .unwrap_or_else(|| panic!("no previousEventId in {e}"));
        let ty = e["type"].as_str().unwrap();
        if prev == 0 {
            assert!(
                i == 0 || (i == 1 && ty.ends_with("StateEntered")),
                "only ExecutionStarted and the first state have no previous event: {e}"
            );
        } else {
            assert!(prev <= i as u64, "previousEventId must be earlier: {e}");
            assert!(
                time_of(by_id(o, prev)) <= time_of(e),
                "previous event later: {e}"
            );
        }
        let ts = e["timestamp"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && ts.len() == "2024-01-01T00:00:00.000Z".len(),
            "timestamp {ts} is not RFC 3339 UTC with milliseconds"
        );
        let t = time_of(e);
        if let Some(l) = last_time {
            assert!(l <= t, "history not sorted by time at {e}");
        }
        last_time = Some(t);
        let extra: Vec<&String> = obj
            .keys()
            .filter(|k| !["id", "previousEventId", "timestamp", "type"].contains(&k.as_str()))
            .collect();
        if NO_DETAILS.contains(&ty) {
            assert!(extra.is_empty(), "{ty} has no details on AWS: {e}");
            continue;
        }
        let key = details_key(ty);
        assert_eq!(extra, vec![&key], "{ty} must carry exactly {key}: {e}");
        let (_, required, allowed) = DETAILS
            .iter()
            .find(|(k, _, _)| *k == key)
            .unwrap_or_else(|| panic!("event type {ty} ({key}) is not in the table"));
        let details = e[&key].as_object().unwrap();
        for r in *required {
            assert!(details.contains_key(*r), "{key} lacks {r}: {e}");
        }
        for k in details.keys() {
            assert!(
                allowed.contains(&k.as_str()),
                "{key} has no member {k}: {e}"
            );
        }
        for k in ["input", "output", "parameters"] {
            if let Some(v) = details.get(k) {
                let text = v
                    .as_str()
                    .unwrap_or_else(|| panic!("{key}.{k} must be a JSON string: {e}"));
                serde_json::from_str::<Value>(text)
                    .unwrap_or_else(|err| panic!("{key}.{k} is not JSON text ({err}): {e}"));
            }
        }
        for k in ["inputDetails", "outputDetails"] {
            if let Some(v) = details.get(k) {
                assert_eq!(v, &json!({"truncated": false}), "{e}");
            }
        }
        if !seen.contains(&key) {
            seen.push(key);
        }
    }
    seen
}

fn lambda_task(extra: Value) -> Value {
    let mut t =
        json!({"Type": "Task", "Resource": LAMBDA_INVOKE, "Parameters": {"FunctionName": "f"}});
    t.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    t
}

// ---------------------------------------------------------------------------------------------
// 1. Task timeouts (real time)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn timeout_seconds_stops_a_slow_task_with_states_timeout() {
    let def = json!({"StartAt": "Slow", "States": {"Slow": lambda_task(json!({"TimeoutSeconds": 1, "End": true}))}});
    let began = Instant::now();
    let o = run(def, json!({}), Arc::new(Sleeper(3000))).await;
    let took = began.elapsed();
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.error.as_deref(), Some("States.Timeout"));
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "the timeout fired after {took:?}"
    );
    assert_eq!(
        types(&o),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskTimedOut",
            "ExecutionFailed"
        ]
    );
    let scheduled = &events_of(&o, "TaskScheduled")[0]["taskScheduledEventDetails"];
    assert_eq!(scheduled["timeoutInSeconds"], 1);
    let timed_out = events_of(&o, "TaskTimedOut")[0];
    // As recorded on AWS: resourceType, resource and error, no cause.
    assert_eq!(
        timed_out["taskTimedOutEventDetails"],
        json!({"resourceType": "lambda", "resource": "invoke", "error": "States.Timeout"})
    );
    // On the virtual clock the task ran for exactly its timeout.
    assert_eq!(offset(timed_out), 1.0);
    check_history_shape(&o);
}

#[tokio::test]
async fn timeout_seconds_path_reads_the_timeout_from_the_input() {
    let def = json!({"StartAt": "Slow", "States": {"Slow": {
        "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
        "TimeoutSecondsPath": "$.limit", "End": true
    }}});
    let began = Instant::now();
    let o = run(def, json!({"limit": 1}), Arc::new(Sleeper(3000))).await;
    assert!(began.elapsed() < Duration::from_millis(2500));
    assert_eq!(o.error.as_deref(), Some("States.Timeout"), "{:?}", o.cause);
    let scheduled = &events_of(&o, "TaskScheduled")[0]["taskScheduledEventDetails"];
    assert_eq!(scheduled["timeoutInSeconds"], 1);
    assert_eq!(scheduled["resourceType"], "ecs");
    assert_eq!(scheduled["resource"], "runTask.sync");
    assert_eq!(events_of(&o, "TaskTimedOut").len(), 1);
}

#[tokio::test]
async fn timeout_seconds_path_reads_the_state_input_not_the_parameters() {
    let def = json!({"StartAt": "Slow", "States": {"Slow": {
        "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
        "Parameters": {"cluster": "c"},
        "TimeoutSecondsPath": "$.limit", "End": true
    }}});
    let o = run(def, json!({"limit": 1}), Arc::new(Sleeper(3000))).await;
    assert_eq!(o.error.as_deref(), Some("States.Timeout"), "{:?}", o.cause);
}

#[tokio::test]
async fn heartbeat_seconds_without_heartbeats_is_states_heartbeat_timeout() {
    let def = json!({"StartAt": "Slow", "States": {"Slow": lambda_task(json!({
        "TimeoutSeconds": 30, "HeartbeatSeconds": 1, "End": true
    }))}});
    let began = Instant::now();
    let o = run(def, json!({}), Arc::new(Sleeper(3000))).await;
    assert!(began.elapsed() < Duration::from_millis(2500));
    assert_eq!(o.error.as_deref(), Some("States.HeartbeatTimeout"));
    let scheduled = &events_of(&o, "TaskScheduled")[0]["taskScheduledEventDetails"];
    assert_eq!(scheduled["timeoutInSeconds"], 30);
    assert_eq!(scheduled["heartbeatInSeconds"], 1);
    let timed_out = events_of(&o, "TaskTimedOut")[0];
    assert_eq!(
        timed_out["taskTimedOutEventDetails"]["error"],
        "States.HeartbeatTimeout"
    );
    check_history_shape(&o);
}

#[tokio::test]
async fn a_bare_function_arn_times_out_with_lambda_function_timed_out() {
    let def = json!({"StartAt": "Slow", "States": {"Slow": {
        "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:slow",
        "TimeoutSeconds": 1, "End": true
    }}});
    let o = run(def, json!({}), Arc::new(Sleeper(3000))).await;
    assert_eq!(o.error.as_deref(), Some("States.Timeout"));
    assert_eq!(
        types(&o)[2..],
        [
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionTimedOut",
            "ExecutionFailed"
        ]
    );
    assert_eq!(
        events_of(&o, "LambdaFunctionScheduled")[0]["lambdaFunctionScheduledEventDetails"]
            ["timeoutInSeconds"],
        1
    );
    assert_eq!(
        events_of(&o, "LambdaFunctionTimedOut")[0]["lambdaFunctionTimedOutEventDetails"],
        json!({"error": "States.Timeout"})
    );
    check_history_shape(&o);
}

#[tokio::test]
async fn a_states_timeout_catcher_catches_a_real_timeout_and_task_failed_does_not() {
    let def = json!({"StartAt": "Slow", "States": {
        "Slow": lambda_task(json!({
            "TimeoutSeconds": 1,
            "Catch": [
                {"ErrorEquals": ["States.TaskFailed"], "Next": "Wrong"},
                {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Handled"}
            ],
            "End": true
        })),
        "Wrong": {"Type": "Fail", "Error": "WrongCatcher"},
        "Handled": {"Type": "Pass", "End": true}
    }});
    let o = run(def, json!({"k": 1}), Arc::new(Sleeper(3000))).await;
    assert_eq!(o.status, Status::Succeeded, "{:?} {:?}", o.error, o.cause);
    // As on AWS, a timeout has an empty Cause.
    assert_eq!(
        o.output,
        Some(json!({"k": 1, "error": {"Error": "States.Timeout", "Cause": ""}}))
    );
    assert_eq!(
        types(&o),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskTimedOut",
            "TaskStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Lambda
// ---------------------------------------------------------------------------------------------

/// Functions: "ok" echoes, "boom" always fails, "flaky" fails twice then echoes.
#[derive(Default)]
struct FakeLambda {
    calls: Mutex<Vec<(String, Value)>>,
    flaky: AtomicUsize,
}

struct Invoker(Arc<FakeLambda>);

#[async_trait]
impl FunctionInvoker for Invoker {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError> {
        self.0
            .calls
            .lock()
            .unwrap()
            .push((function.to_string(), payload.clone()));
        let name = function.rsplit(':').next().unwrap();
        match name {
            "boom" => Err(FunctionError {
                error_type: "CustomError".into(),
                error_message: "went \"wrong\"".into(),
            }),
            "flaky" if self.0.flaky.fetch_add(1, Ordering::SeqCst) < 2 => Err(FunctionError {
                error_type: "Transient".into(),
                error_message: "try again".into(),
            }),
            _ => Ok(json!({"echo": payload})),
        }
    }
}

fn lambda() -> (Arc<FakeLambda>, Arc<dyn TaskHandler>) {
    let fake = Arc::new(FakeLambda::default());
    let tasks = LambdaTasks {
        invoker: Invoker(fake.clone()),
    };
    (fake, Arc::new(tasks))
}

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

#[tokio::test]
async fn lambda_invoke_wraps_the_payload_as_step_functions_does() {
    let (fake, h) = lambda();
    let def = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": "ok", "Payload": {"who.$": "$.name", "n": 1}},
        "ResultPath": "$.result",
        "Next": "Select"
    }, "Select": {
        "Type": "Task", "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": "ok", "Payload.$": "$.result.Payload"},
        "ResultSelector": {
            "body.$": "$.Payload",
            "requestId.$": "$.SdkResponseMetadata.RequestId",
            "status.$": "$.SdkHttpMetadata.HttpStatusCode"
        },
        "End": true
    }}});
    let o = run(def.clone(), json!({"name": "x"}), h).await;
    assert_eq!(o.status, Status::Succeeded, "{:?} {:?}", o.error, o.cause);
    assert_eq!(
        fake.calls.lock().unwrap()[0],
        ("ok".to_string(), json!({"who": "x", "n": 1}))
    );

    let result = &o
        .events
        .iter()
        .find(|e| e["type"] == "TaskSucceeded")
        .unwrap()["taskSucceededEventDetails"]["output"];
    let result: Value = serde_json::from_str(result.as_str().unwrap()).unwrap();
    let keys: Vec<&String> = result.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "ExecutedVersion",
            "Payload",
            "SdkHttpMetadata",
            "SdkResponseMetadata",
            "StatusCode"
        ]
    );
    assert_eq!(result["ExecutedVersion"], "$LATEST");
    assert_eq!(result["StatusCode"], 200);
    assert_eq!(result["Payload"], json!({"echo": {"who": "x", "n": 1}}));
    let meta = &result["SdkHttpMetadata"];
    assert_eq!(meta["HttpStatusCode"], 200);
    let request_id = result["SdkResponseMetadata"]["RequestId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
    assert_eq!(meta["HttpHeaders"]["x-amzn-RequestId"], request_id);
    assert_eq!(meta["HttpHeaders"]["X-Amz-Executed-Version"], "$LATEST");
    assert_eq!(meta["HttpHeaders"]["Content-Type"], "application/json");
    assert_eq!(
        meta["AllHttpHeaders"]["x-amzn-RequestId"],
        json!([request_id])
    );

    // The second call received the first one's Payload, and ResultSelector found every field.
    let out = o.output.clone().unwrap();
    assert_eq!(out["body"], json!({"echo": {"echo": {"who": "x", "n": 1}}}));
    assert_eq!(out["status"], 200);
    assert!(uuid::Uuid::parse_str(out["requestId"].as_str().unwrap()).is_ok());
    assert_ne!(
        out["requestId"], request_id,
        "each invocation has its own request id"
    );

    // Request ids are derived, not random: a seeded run is reproducible.
    let (_, h2) = lambda();
    let again = run(def, json!({"name": "x"}), h2).await;
    assert_eq!(again.events, o.events);

    let scheduled = &events_of(&o, "TaskScheduled")[0]["taskScheduledEventDetails"];
    assert_eq!(scheduled["resourceType"], "lambda");
    assert_eq!(scheduled["resource"], "invoke");
    assert_eq!(scheduled["region"], "us-east-1");
    let params: Value = serde_json::from_str(scheduled["parameters"].as_str().unwrap()).unwrap();
    assert_eq!(
        params,
        json!({"FunctionName": "ok", "Payload": {"who": "x", "n": 1}})
    );
    check_history_shape(&o);
}

#[tokio::test]
async fn a_bare_function_arn_gets_the_raw_result_and_lambda_events() {
    let (fake, h) = lambda();
    let arn = format!("{FUNCTION_ARN}ok");
    let def = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": arn, "TimeoutSeconds": 30, "End": true
    }}});
    let o = run(def, json!({"a": 1}), h).await;
    assert_eq!(o.status, Status::Succeeded);
    assert_eq!(o.output, Some(json!({"echo": {"a": 1}})));
    assert_eq!(
        fake.calls.lock().unwrap()[0],
        (arn.clone(), json!({"a": 1}))
    );
    assert_eq!(
        types(&o),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    let scheduled = &events_of(&o, "LambdaFunctionScheduled")[0];
    assert_eq!(
        scheduled["lambdaFunctionScheduledEventDetails"],
        json!({"resource": arn, "input": "{\"a\":1}", "inputDetails": {"truncated": false}, "timeoutInSeconds": 30})
    );
    assert_eq!(
        events_of(&o, "LambdaFunctionSucceeded")[0]["lambdaFunctionSucceededEventDetails"]
            ["output"],
        "{\"echo\":{\"a\":1}}"
    );
    check_history_shape(&o);
}

#[tokio::test]
async fn a_function_error_is_error_type_with_the_error_json_as_cause() {
    let expected_cause = r#"{"errorMessage":"went \"wrong\"","errorType":"CustomError"}"#;
    // Bare ARN.
    let (_, h) = lambda();
    let def = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": format!("{FUNCTION_ARN}boom"), "End": true
    }}});
    let o = run(def, json!({}), h).await;
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.error.as_deref(), Some("CustomError"));
    assert_eq!(o.cause.as_deref(), Some(expected_cause));
    assert_eq!(
        events_of(&o, "LambdaFunctionFailed")[0]["lambdaFunctionFailedEventDetails"],
        json!({"error": "CustomError", "cause": expected_cause})
    );
    assert_eq!(
        types(&o)[2..],
        [
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionFailed",
            "ExecutionFailed"
        ]
    );
    assert_eq!(
        o.events.last().unwrap()["executionFailedEventDetails"],
        json!({"error": "CustomError", "cause": expected_cause})
    );
    check_history_shape(&o);

    // Optimized integration.
    let (_, h) = lambda();
    let def = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": LAMBDA_INVOKE, "Parameters": {"FunctionName": "boom"}, "End": true
    }}});
    let o = run(def, json!({}), h).await;
    assert_eq!(o.error.as_deref(), Some("CustomError"));
    assert_eq!(o.cause.as_deref(), Some(expected_cause));
    assert_eq!(
        events_of(&o, "TaskFailed")[0]["taskFailedEventDetails"],
        json!({"resourceType": "lambda", "resource": "invoke", "error": "CustomError", "cause": expected_cause})
    );
}

#[tokio::test]
async fn retry_on_the_function_error_type() {
    let (fake, h) = lambda();
    let def = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": format!("{FUNCTION_ARN}flaky"),
        "Retry": [
            {"ErrorEquals": ["Other"], "MaxAttempts": 5},
            {"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 3}
        ],
        "End": true
    }}});
    let o = run(def, json!({"x": 1}), h).await;
    assert_eq!(o.status, Status::Succeeded, "{:?}", o.cause);
    assert_eq!(o.output, Some(json!({"echo": {"x": 1}})));
    assert_eq!(fake.calls.lock().unwrap().len(), 3);
    assert_eq!(offsets(&o, "LambdaFunctionScheduled"), [0.0, 1.0, 4.0]);
    assert_eq!(events_of(&o, "LambdaFunctionFailed").len(), 2);

    // One attempt too few: the error type surfaces.
    let (_, h) = lambda();
    let def = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": format!("{FUNCTION_ARN}flaky"),
        "Retry": [{"ErrorEquals": ["Transient"], "MaxAttempts": 1}],
        "End": true
    }}});
    let o = run(def, json!({}), h).await;
    assert_eq!(o.error.as_deref(), Some("Transient"));
}

// ---------------------------------------------------------------------------------------------
// 3. History shape and event sequences
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn pass_then_succeed() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Result": {"v": 1}, "Next": "S"},
        "S": {"Type": "Succeed"}
    }});
    let o = run(def, json!({"in": true}), echo()).await;
    assert_eq!(
        types(&o),
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ]
    );
    let prev: Vec<u64> = o
        .events
        .iter()
        .map(|e| e["previousEventId"].as_u64().unwrap())
        .collect();
    // As recorded on AWS, the first state's entry has no previous event.
    assert_eq!(prev, [0, 0, 2, 3, 4, 5]);
    let started = &o.events[0]["executionStartedEventDetails"];
    assert_eq!(started["input"], "{\"in\":true}");
    assert_eq!(
        started["roleArn"],
        "arn:aws:iam::123456789012:role/rotor-local"
    );
    assert_eq!(
        o.events[1]["stateEnteredEventDetails"],
        json!({"name": "P", "input": "{\"in\":true}", "inputDetails": {"truncated": false}})
    );
    assert_eq!(
        o.events[2]["stateExitedEventDetails"],
        json!({"name": "P", "output": "{\"v\":1}", "outputDetails": {"truncated": false}})
    );
    assert_eq!(
        o.events[5]["executionSucceededEventDetails"],
        json!({"output": "{\"v\":1}", "outputDetails": {"truncated": false}})
    );
    check_history_shape(&o);
}

#[tokio::test]
async fn task_with_one_retry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let h = handler(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(StatesError::new("Busy", "later"))
        } else {
            Ok(json!({"done": true}))
        }
    });
    let def = json!({"StartAt": "T", "States": {"T": lambda_task(json!({
        "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 2}], "End": true
    }))}});
    let o = run(def, json!({}), h).await;
    assert_eq!(
        types(&o),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskFailed",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(offsets(&o, "TaskScheduled"), [0.0, 2.0]);
    assert_eq!(
        events_of(&o, "TaskFailed")[0]["taskFailedEventDetails"],
        json!({"resourceType": "lambda", "resource": "invoke", "error": "Busy", "cause": "later"})
    );
    let seen = check_history_shape(&o);
    for k in [
        "taskScheduledEventDetails",
        "taskStartedEventDetails",
        "taskFailedEventDetails",
        "taskSucceededEventDetails",
    ] {
        assert!(seen.contains(&k.to_string()), "{k} missing from {seen:?}");
    }
}

/// AWS records the Task's exit with the Catcher's output (LambdaFunction/Task snapshot
/// `test_raise_exception_catch` recorded on AWS; moto does the same).
#[tokio::test]
async fn a_caught_task_failure_exits_the_task_with_the_catcher_output() {
    let h = handler(|_| Err(StatesError::new("Boom", "it broke")));
    let def = json!({"StartAt": "T", "States": {
        "T": lambda_task(json!({
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "H"}],
            "End": true
        })),
        "H": {"Type": "Pass", "End": true}
    }});
    let o = run(def, json!({"k": 1}), h).await;
    assert_eq!(
        types(&o),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskFailed",
            "TaskStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    let exited = named(&o, "TaskStateExited", "T");
    let output: Value = serde_json::from_str(
        exited["stateExitedEventDetails"]["output"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        output,
        json!({"k": 1, "err": {"Error": "Boom", "Cause": "it broke"}})
    );
    assert_eq!(exited["previousEventId"], 5);
    check_history_shape(&o);
}

#[tokio::test]
async fn parallel_with_two_branches() {
    let def = json!({"StartAt": "Par", "States": {"Par": {
        "Type": "Parallel",
        "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "a", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": "b", "End": true}}}
        ],
        "End": true
    }}});
    let o = run(def, json!({}), echo()).await;
    assert_eq!(o.output, Some(json!(["a", "b"])));
    let t = types(&o);
    assert_eq!(
        t[..3],
        [
            "ExecutionStarted",
            "ParallelStateEntered",
            "ParallelStateStarted"
        ]
    );
    let mut inner = t[3..7].to_vec();
    inner.sort();
    assert_eq!(
        inner,
        [
            "PassStateEntered",
            "PassStateEntered",
            "PassStateExited",
            "PassStateExited"
        ]
    );
    assert_eq!(
        t[7..],
        [
            "ParallelStateSucceeded",
            "ParallelStateExited",
            "ExecutionSucceeded"
        ]
    );
    // Each branch starts from ParallelStateStarted.
    assert_eq!(named(&o, "PassStateEntered", "A")["previousEventId"], 3);
    assert_eq!(named(&o, "PassStateEntered", "B")["previousEventId"], 3);
    check_history_shape(&o);
}

#[tokio::test]
async fn map_with_two_items() {
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map",
        "ItemProcessor": {"StartAt": "Each", "States": {"Each": {"Type": "Pass", "End": true}}},
        "MaxConcurrency": 1,
        "End": true
    }}});
    let o = run(def, json!([10, 20]), echo()).await;
    assert_eq!(o.output, Some(json!([10, 20])));
    assert_eq!(
        types(&o),
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapIterationStarted",
            "PassStateEntered",
            "PassStateExited",
            "MapIterationSucceeded",
            "MapIterationStarted",
            "PassStateEntered",
            "PassStateExited",
            "MapIterationSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(
        o.events[2]["mapStateStartedEventDetails"],
        json!({"length": 2})
    );
    assert_eq!(
        o.events[3]["mapIterationStartedEventDetails"],
        json!({"name": "M", "index": 0})
    );
    assert_eq!(
        o.events[6]["mapIterationSucceededEventDetails"],
        json!({"name": "M", "index": 0})
    );
    assert_eq!(
        o.events[10]["mapIterationSucceededEventDetails"],
        json!({"name": "M", "index": 1})
    );
    let seen = check_history_shape(&o);
    assert!(seen.contains(&"mapIterationSucceededEventDetails".to_string()));
}

#[tokio::test]
async fn a_failing_map_iteration_records_map_iteration_failed() {
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map",
        "ItemProcessor": {"StartAt": "Each", "States": {"Each": {"Type": "Fail", "Error": "Bad"}}},
        "End": true
    }}});
    let o = run(def, json!([1]), echo()).await;
    assert_eq!(o.error.as_deref(), Some("Bad"));
    assert_eq!(
        types(&o),
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapIterationStarted",
            "FailStateEntered",
            "MapIterationFailed",
            "MapStateFailed",
            "ExecutionFailed"
        ]
    );
    assert_eq!(
        o.events[5]["mapIterationFailedEventDetails"],
        json!({"name": "M", "index": 0})
    );
    check_history_shape(&o);
}

#[tokio::test]
async fn a_fail_state_has_no_exit() {
    let def =
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "C"}}});
    let o = run(def, json!({}), echo()).await;
    assert_eq!(
        types(&o),
        ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]
    );
    assert_eq!(
        o.events[2]["executionFailedEventDetails"],
        json!({"error": "E", "cause": "C"})
    );
    assert_eq!(o.events[2]["previousEventId"], 2);
    check_history_shape(&o);
}

#[tokio::test]
async fn execution_started_carries_only_the_documented_members() {
    let o = run(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
        json!({"x": [1, 2]}),
        echo(),
    )
    .await;
    let details = o.events[0]["executionStartedEventDetails"]
        .as_object()
        .unwrap();
    let keys: Vec<&str> = details.keys().map(String::as_str).collect();
    assert_eq!(keys, ["input", "inputDetails", "roleArn"]);
}

#[tokio::test]
async fn execution_timeout_shape() {
    let def = json!({"TimeoutSeconds": 3, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 10, "End": true}}});
    let o = run(def, json!({}), echo()).await;
    assert_eq!(o.status, Status::TimedOut);
    assert_eq!(
        types(&o),
        ["ExecutionStarted", "WaitStateEntered", "ExecutionTimedOut"]
    );
    assert_eq!(offset(o.events.last().unwrap()), 3.0);
    check_history_shape(&o);
}

// ---------------------------------------------------------------------------------------------
// 4. Virtual clock
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn parallel_ends_with_its_slowest_branch_and_history_is_sorted() {
    let def = json!({"StartAt": "Par", "States": {
        "Par": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Slow", "States": {"Slow": {"Type": "Wait", "Seconds": 5, "End": true}}},
                {"StartAt": "Fast", "States": {"Fast": {"Type": "Wait", "Seconds": 2, "End": true}}}
            ],
            "Next": "After"
        },
        "After": {"Type": "Pass", "End": true}
    }});
    let o = run(def, json!({}), echo()).await;
    assert_eq!(o.status, Status::Succeeded);
    assert_eq!(offset(named(&o, "ParallelStateExited", "Par")), 5.0);
    assert_eq!(offset(named(&o, "PassStateEntered", "After")), 5.0);
    // The fast branch's exit (+2) comes before the slow one's (+5) although it was recorded later.
    let slow_exit = named(&o, "WaitStateExited", "Slow");
    let fast_exit = named(&o, "WaitStateExited", "Fast");
    assert_eq!((offset(fast_exit), offset(slow_exit)), (2.0, 5.0));
    assert!(fast_exit["id"].as_u64() < slow_exit["id"].as_u64());
    // The branches' entries point at ParallelStateStarted, whatever their new ids.
    let started = &events_of(&o, "ParallelStateStarted")[0]["id"];
    assert_eq!(
        &named(&o, "WaitStateEntered", "Slow")["previousEventId"],
        started
    );
    assert_eq!(
        &named(&o, "WaitStateEntered", "Fast")["previousEventId"],
        started
    );
    assert_eq!(
        &named(&o, "WaitStateExited", "Fast")["previousEventId"],
        &named(&o, "WaitStateEntered", "Fast")["id"]
    );
    // The Parallel continues from the branch that ended last.
    let succeeded = events_of(&o, "ParallelStateSucceeded")[0];
    assert_eq!(succeeded["previousEventId"], slow_exit["id"]);
    check_history_shape(&o);
}

fn waiting_map(max_concurrency: u64) -> Value {
    json!({"StartAt": "M", "States": {
        "M": {
            "Type": "Map",
            "MaxConcurrency": max_concurrency,
            "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": true}}},
            "Next": "After"
        },
        "After": {"Type": "Pass", "End": true}
    }})
}

fn iteration_starts(o: &Outcome) -> Vec<f64> {
    let mut starts: Vec<(u64, f64)> = events_of(o, "MapIterationStarted")
        .into_iter()
        .map(|e| {
            (
                e["mapIterationStartedEventDetails"]["index"]
                    .as_u64()
                    .unwrap(),
                offset(e),
            )
        })
        .collect();
    starts.sort_by_key(|s| s.0);
    starts.into_iter().map(|s| s.1).collect()
}

#[tokio::test]
async fn map_max_concurrency_on_the_virtual_clock() {
    let items = json!([{"s": 2}, {"s": 2}, {"s": 2}]);
    let o = run(waiting_map(1), items.clone(), echo()).await;
    assert_eq!(offset(named(&o, "MapStateExited", "M")), 6.0);
    assert_eq!(iteration_starts(&o), [0.0, 2.0, 4.0]);
    check_history_shape(&o);

    let o = run(waiting_map(0), items.clone(), echo()).await;
    assert_eq!(offset(named(&o, "MapStateExited", "M")), 2.0);
    assert_eq!(offset(named(&o, "PassStateEntered", "After")), 2.0);
    assert_eq!(iteration_starts(&o), [0.0, 0.0, 0.0]);
    check_history_shape(&o);
}

/// An iteration starts as soon as any running one ends, in item order.
#[tokio::test]
async fn map_iterations_take_the_first_free_slot() {
    let o = run(
        waiting_map(2),
        json!([{"s": 5}, {"s": 1}, {"s": 1}, {"s": 1}]),
        echo(),
    )
    .await;
    assert_eq!(iteration_starts(&o), [0.0, 0.0, 1.0, 2.0]);
    assert_eq!(offset(named(&o, "MapStateExited", "M")), 5.0);
    check_history_shape(&o);

    let o = run(
        waiting_map(2),
        json!([{"s": 1}, {"s": 3}, {"s": 1}, {"s": 1}, {"s": 4}]),
        echo(),
    )
    .await;
    // Slots: [0-1][1-2][2-3][3-7] and [0-3][3-4].
    assert_eq!(iteration_starts(&o), [0.0, 0.0, 1.0, 2.0, 3.0]);
    assert_eq!(offset(named(&o, "MapStateExited", "M")), 7.0);
    check_history_shape(&o);
}

#[tokio::test]
async fn context_times_follow_the_virtual_clock() {
    let def = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 90, "Next": "P"},
        "P": {"Type": "Pass", "Parameters": {
            "entered.$": "$$.State.EnteredTime",
            "start.$": "$$.Execution.StartTime"
        }, "Next": "T"},
        "T": {"Type": "Task", "Resource": LAMBDA_INVOKE, "Parameters": {"FunctionName": "f"},
              "Retry": [{"ErrorEquals": ["Again"], "IntervalSeconds": 30}],
              "ResultPath": "$.task", "End": true}
    }});
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let h = handler(move |r| {
        s.lock().unwrap().push(r.context["State"].clone());
        if r.retry_count == 0 {
            Err(StatesError::new("Again", ""))
        } else {
            Ok(json!(1))
        }
    });
    let o = run(def, json!({}), h).await;
    let out = o.output.clone().unwrap();
    assert_eq!(out["entered"], "2024-01-01T00:01:30.000Z");
    assert_eq!(out["start"], "2024-01-01T00:00:00.000Z");
    let seen = seen.lock().unwrap();
    // EnteredTime stays the state's entry; only the retry count moves.
    assert_eq!(seen[0]["EnteredTime"], "2024-01-01T00:01:30.000Z");
    assert_eq!(seen[1]["EnteredTime"], "2024-01-01T00:01:30.000Z");
    assert_eq!(
        (seen[0]["RetryCount"].clone(), seen[1]["RetryCount"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(offsets(&o, "TaskScheduled"), [90.0, 120.0]);
    assert_eq!(o.events[0]["timestamp"], "2024-01-01T00:00:00.000Z");
}

#[tokio::test]
async fn real_time_really_sleeps_and_stamps_the_real_clock() {
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true}}});
    let mut opts = RunOptions::new("real", echo());
    opts.real_time = true;
    let before = Utc::now();
    let began = Instant::now();
    let o = execute(&machine(&def), json!({}), opts).await;
    let took = began.elapsed();
    let after = Utc::now();
    assert_eq!(o.status, Status::Succeeded);
    assert!(took >= Duration::from_secs(1), "{took:?}");
    let first = time_of(&o.events[0]);
    let last = time_of(o.events.last().unwrap());
    // Timestamps have millisecond precision: allow the truncation.
    let slack = chrono::Duration::milliseconds(1);
    assert!(
        first + slack >= before && last <= after,
        "{first} {last} not within {before}..{after}"
    );
    let waited =
        time_of(named(&o, "WaitStateExited", "W")) - time_of(named(&o, "WaitStateEntered", "W"));
    assert!(waited >= chrono::Duration::milliseconds(999), "{waited}");
    check_history_shape(&o);
}

// ---------------------------------------------------------------------------------------------
// 5. Jitter
// ---------------------------------------------------------------------------------------------

fn jitter_machine() -> Value {
    json!({"StartAt": "T", "States": {"T": lambda_task(json!({
        "Retry": [{
            "ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 3,
            "MaxDelaySeconds": 10, "MaxAttempts": 5, "JitterStrategy": "FULL"
        }],
        "End": true
    }))}})
}

async fn jitter_run(seed: u64) -> Outcome {
    let mut opts = options(handler(|_| Err(StatesError::new("Down", "no"))));
    opts.seed = Some(seed);
    execute(&machine(&jitter_machine()), json!({}), opts).await
}

fn gaps(o: &Outcome) -> Vec<f64> {
    offsets(o, "TaskScheduled")
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect()
}

#[tokio::test]
async fn same_seed_same_history_other_seed_other_gaps() {
    let a = jitter_run(42).await;
    let b = jitter_run(42).await;
    assert_eq!(a.events, b.events);
    assert_eq!(gaps(&a).len(), 5);
    let c = jitter_run(43).await;
    assert_ne!(gaps(&a), gaps(&c));
}

#[tokio::test]
async fn every_jittered_gap_is_within_the_capped_backoff() {
    let caps = [2.0, 6.0, 10.0, 10.0, 10.0];
    let mut below_cap = 0;
    for seed in 0..20 {
        let o = jitter_run(seed).await;
        let g = gaps(&o);
        assert_eq!(g.len(), caps.len(), "seed {seed}");
        for (gap, cap) in g.iter().zip(caps) {
            assert!(
                (0.0..=cap).contains(gap),
                "seed {seed}: gap {gap} outside [0, {cap}]"
            );
            if *gap < cap {
                below_cap += 1;
            }
        }
    }
    assert!(
        below_cap > 50,
        "jitter hardly moved the delays: {below_cap}/100 below the cap"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Quotas
// ---------------------------------------------------------------------------------------------

/// `{"blob": "xx…"}` whose JSON text is exactly `len` bytes.
fn blob(len: usize) -> Value {
    let v = json!({"blob": "x".repeat(len - "{\"blob\":\"\"}".len())});
    assert_eq!(v.to_string().len(), len);
    v
}

#[tokio::test]
async fn a_task_result_over_256_kib_is_data_limit_exceeded_and_not_caught() {
    let def = json!({"StartAt": "T", "States": {
        "T": lambda_task(json!({
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            "End": true
        })),
        "Caught": {"Type": "Succeed"}
    }});
    let o = run(def.clone(), json!({}), handler(|_| Ok(blob(262_145)))).await;
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.error.as_deref(), Some("States.DataLimitExceeded"));
    assert!(!types(&o).contains(&"SucceedStateEntered"));
    assert_eq!(types(&o).last(), Some(&"ExecutionFailed"));

    // Exactly at the quota is fine.
    let o = run(def, json!({}), handler(|_| Ok(blob(262_144)))).await;
    assert_eq!(o.status, Status::Succeeded, "{:?}", o.cause);
    assert_eq!(o.output.unwrap().to_string().len(), 262_144);
}

#[tokio::test]
async fn execution_input_at_the_quota_is_fine() {
    let input = blob(262_144);
    let o = run(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
        input.clone(),
        echo(),
    )
    .await;
    assert_eq!(o.status, Status::Succeeded, "{:?}", o.cause);
    assert_eq!(o.output, Some(input));
}

/// A loop of `iterations` Pass+Choice rounds (4 events each), optionally behind one Task
/// (5 events): `4 * iterations + 4` events, plus 5 with the Task.
fn event_loop(with_task: bool) -> Value {
    let mut states = json!({
        "Step": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)", "limit.$": "$.limit"}, "Next": "Loop"},
        "Loop": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThanPath": "$.limit", "Next": "Step"}], "Default": "Done"},
        "Done": {"Type": "Succeed"}
    });
    if with_task {
        states["Extra"] = json!({"Type": "Task", "Resource": LAMBDA_INVOKE, "Parameters": {"FunctionName": "f"}, "ResultPath": null, "Next": "Step"});
    }
    json!({"StartAt": if with_task { "Extra" } else { "Step" }, "States": states})
}

#[tokio::test]
async fn the_history_event_quota_boundary() {
    // 4 * 6249 + 4 = 25,000 events: exactly the quota, so it succeeds.
    let o = run(event_loop(false), json!({"i": 0, "limit": 6249}), echo()).await;
    assert_eq!(o.status, Status::Succeeded, "{:?}", o.cause);
    assert_eq!(o.events.len(), MAX_HISTORY_EVENTS);
    assert_eq!(MAX_HISTORY_EVENTS, 25_000);

    // 4 * 6248 + 4 + 5 = 25,001 events: one too many.
    let o = run(event_loop(true), json!({"i": 0, "limit": 6248}), echo()).await;
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.error.as_deref(), Some("States.Runtime"));
    assert!(
        o.cause.as_deref().unwrap().contains("25000"),
        "{:?}",
        o.cause
    );
    assert_eq!(o.events.len(), MAX_HISTORY_EVENTS);
    let last = o.events.last().unwrap();
    assert_eq!(last["type"], "ExecutionFailed");
    assert_eq!(last["id"], 25_000);
    assert_eq!(last["previousEventId"], 24_999);

    // 24,997 events with the Task: fine.
    let o = run(event_loop(true), json!({"i": 0, "limit": 6247}), echo()).await;
    assert_eq!(o.status, Status::Succeeded);
    assert_eq!(o.events.len(), 24_997);
}

// ---------------------------------------------------------------------------------------------
// 7. Mock configs
// ---------------------------------------------------------------------------------------------

fn mock_machine() -> Value {
    json!({"StartAt": "A", "States": {
        "A": lambda_task(json!({
            "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 1, "MaxAttempts": 1}],
            "ResultPath": "$.a", "Next": "Loop"
        })),
        "Loop": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThan": 2, "Next": "Inc"}], "Default": "B"},
        "Inc": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "A"},
        "B": lambda_task(json!({"Catch": [{"ErrorEquals": ["E"], "ResultPath": null, "Next": "C"}], "Next": "C"})),
        "C": lambda_task(json!({"End": true}))
    }})
}

fn mock_config() -> Value {
    json!({
        "StateMachines": {"M": {"TestCases": {
            "Case": {"A": "Flaky", "B": "Flaky"},
            "Short": {"A": "Once"}
        }}},
        "MockedResponses": {
            "Flaky": {
                "0": {"Throw": {"Error": "E", "Cause": "c0"}},
                "1-2": {"Return": {"r": 12}},
                "3": {"Return": {"r": 3}}
            },
            "Once": {"0": {"Return": {"r": 0}}}
        }
    })
}

#[tokio::test]
async fn mocks_count_invocations_per_state_and_fall_back_for_unmocked_states() {
    let fallback_calls = Arc::new(Mutex::new(Vec::new()));
    let f = fallback_calls.clone();
    let fallback = handler(move |r| {
        f.lock().unwrap().push(r.state_name.clone());
        Ok(json!({"fallback": true}))
    });
    let mocks = MockTasks::from_config(&mock_config(), Some("M"), "Case", Some(fallback)).unwrap();
    let o = run(mock_machine(), json!({"i": 0}), Arc::new(mocks)).await;
    assert_eq!(o.status, Status::Succeeded, "{:?} {:?}", o.error, o.cause);
    assert_eq!(o.output, Some(json!({"fallback": true})));
    // A: invocation 0 throws and is retried, 1 and 2 come from "1-2", 3 from "3".
    // B: its own invocation 0 throws again (a shared count would be at 4, which has no answer).
    let outputs: Vec<Value> = events_of(&o, "TaskSucceeded")
        .into_iter()
        .map(|e| {
            serde_json::from_str(e["taskSucceededEventDetails"]["output"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(
        outputs,
        [
            json!({"r": 12}),
            json!({"r": 12}),
            json!({"r": 3}),
            json!({"fallback": true})
        ]
    );
    let failed: Vec<&Value> = events_of(&o, "TaskFailed")
        .into_iter()
        .map(|e| &e["taskFailedEventDetails"]["cause"])
        .collect();
    assert_eq!(failed, [&json!("c0"), &json!("c0")]);
    assert_eq!(*fallback_calls.lock().unwrap(), ["C"]);
}

#[tokio::test]
async fn a_missing_mock_response_names_the_mock_and_the_invocation() {
    let mocks = MockTasks::from_config(&mock_config(), Some("M"), "Short", None).unwrap();
    let o = run(mock_machine(), json!({"i": 0}), Arc::new(mocks)).await;
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.error.as_deref(), Some("States.Runtime"));
    let cause = o.cause.unwrap();
    assert!(
        cause.contains("\"Once\"") && cause.contains("invocation 1") && cause.contains("'A'"),
        "{cause}"
    );
}

#[tokio::test]
async fn an_unmocked_state_without_fallback_fails_clearly() {
    let mocks = MockTasks::from_config(&mock_config(), Some("M"), "Case", None).unwrap();
    let o = run(mock_machine(), json!({"i": 0}), Arc::new(mocks)).await;
    assert_eq!(o.error.as_deref(), Some("States.Runtime"));
    assert!(o.cause.unwrap().contains("'C' is not mocked"));
}

// ---------------------------------------------------------------------------------------------
// 8. Observer
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_observer_sees_each_event_as_it_is_recorded() {
    let observed = Arc::new(Mutex::new(Vec::<Value>::new()));
    let seen_at_call = Arc::new(Mutex::new(Vec::new()));
    let (obs, at_call) = (observed.clone(), seen_at_call.clone());
    let h = handler(move |_| {
        at_call.lock().unwrap().push(obs.lock().unwrap().len());
        Ok(json!({}))
    });
    let def = json!({"StartAt": "Par", "States": {"Par": {
        "Type": "Parallel",
        "Branches": [
            {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3, "End": true}}},
            {"StartAt": "T", "States": {"T": lambda_task(json!({"End": true}))}}
        ],
        "End": true
    }}});
    let mut opts = options(h);
    let o2 = observed.clone();
    opts.observer = Some(Arc::new(move |e: &Value| {
        o2.lock().unwrap().push(e.clone())
    }));
    let o = execute(&machine(&def), json!({}), opts).await;
    let observed = observed.lock().unwrap();
    assert_eq!(observed.len(), o.events.len());
    let mut a: Vec<&str> = observed
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let mut b = types(&o);
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // The Task ran after its TaskStarted had been observed, long before the end.
    let at_call = seen_at_call.lock().unwrap();
    assert_eq!(at_call.len(), 1);
    let t_started = observed
        .iter()
        .position(|e| e["type"] == "TaskStarted")
        .unwrap();
    assert_eq!(at_call[0], t_started + 1);
}

/// With the real clock, a bounded Map really runs `MaxConcurrency` iterations at once.
#[tokio::test]
async fn real_time_map_runs_max_concurrency_iterations_at_once() {
    let mut opts = RunOptions::new("real-map", echo());
    opts.real_time = true;
    let items = json!([{"s": 1}, {"s": 1}, {"s": 1}, {"s": 1}]);
    let began = Instant::now();
    let o = execute(&machine(&waiting_map(2)), items, opts).await;
    let took = began.elapsed();
    assert_eq!(o.status, Status::Succeeded);
    assert!(
        took >= Duration::from_millis(1950) && took < Duration::from_millis(3500),
        "{took:?}"
    );
    check_history_shape(&o);
}
