//! The rotation state machine's paths.
//!
//! 1. Every test case of `statemachine/mocks/rotation.mocks.json` (Step Functions Local format)
//!    runs on rotor-asl with `MockTasks`: the states entered, the attempts per Task, the final
//!    status/error and the audit outcome are as designed, and every payload the definition
//!    builds is accepted by the rotor-core input type of the function it calls.
//! 2. The main paths run with the real handlers (`LocalFunctions`) over the real local store
//!    (SQLite in a temp dir: Secrets Manager, KMS and the audit sink), probing over real HTTP
//!    (`ReqwestProber`) a loopback vendor stand-in and an application stand-in that reads
//!    AWSCURRENT from the store: after each run the secret has exactly one AWSCURRENT, and it
//!    works (the real health-probe passes against the stand-ins).
//! 3. Every test case of the mock config runs again with only its injected failures mocked
//!    (through `MockTasks`, with `LocalFunctions` as the fallback), everything else real over
//!    the local store: the execution takes the same branch as in 1, and after it the secret has
//!    exactly one AWSCURRENT, which works.

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use rotor_asl::definition::StateMachine;
use rotor_asl::error::StatesError;
use rotor_asl::executor::{execute, Outcome, RunOptions, Status};
use rotor_asl::mock::MockTasks;
use rotor_asl::task::{LambdaTasks, TaskHandler, TaskRequest};
use rotor_core::events::*;
use rotor_core::handlers;
use rotor_core::ports::*;
use rotor_core::secret::{SecretValue, Version, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use rotor_local_store::LocalStore;
use rotor_probe_http::ReqwestProber;
use rotor_runner::*;
use rotor_standins::{AppStandIn, BoxFuture, CurrentKey, VendorStandIn};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[path = "paths/consumers.rs"]
mod consumers;

const MOCKS: &str = include_str!("../../../statemachine/mocks/rotation.mocks.json");

fn definition() -> StateMachine {
    let text = render_definition(load_rotation_definition(), &local_arns()).unwrap();
    StateMachine::from_json(&text).unwrap_or_else(|d| panic!("{d:#?}"))
}

// ---------------------------------------------------------------------------------------------
// Definition checks

#[test]
fn the_definition_is_valid_and_renders_completely() {
    let raw: Value = serde_json::from_str(load_rotation_definition()).unwrap();
    assert_eq!(
        rotor_asl::validate::validate(&raw),
        vec![],
        "with placeholders"
    );
    let text = render_definition(load_rotation_definition(), &local_arns()).unwrap();
    assert!(!text.contains("${"), "a placeholder is left");
    let rendered: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rotor_asl::validate::validate(&rendered), vec![], "rendered");
    // Every placeholder the definition uses is one of FUNCTIONS, and every function is used.
    let used: HashSet<&str> = FUNCTIONS
        .iter()
        .filter(|(p, _)| load_rotation_definition().contains(&format!("${{{p}}}")))
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(
        used.len(),
        FUNCTIONS.len(),
        "unused: {FUNCTIONS:?} vs {used:?}"
    );
}

#[test]
fn every_state_has_a_comment_and_every_task_retries_lambda_errors() {
    let raw: Value = serde_json::from_str(load_rotation_definition()).unwrap();
    assert!(raw["Comment"].as_str().is_some_and(|c| c.len() > 40));
    let lambda = [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ];
    for (name, state) in raw["States"].as_object().unwrap() {
        assert!(
            state["Comment"].as_str().is_some_and(|c| c.len() > 30),
            "{name} needs a Comment an auditor can read"
        );
        if state["Type"] != "Task" {
            continue;
        }
        assert_eq!(state["Resource"], rotor_asl::task::LAMBDA_INVOKE, "{name}");
        let retry = state["Retry"].as_array().unwrap();
        let names: Vec<&str> = retry
            .iter()
            .flat_map(|r| r["ErrorEquals"].as_array().unwrap())
            .map(|v| v.as_str().unwrap())
            .collect();
        for l in lambda.iter().chain(["Aws.Throttled"].iter()) {
            assert!(names.contains(l), "{name} does not retry {l}");
        }
        assert!(
            state["Catch"].as_array().is_some_and(|c| !c.is_empty()),
            "{name} has no Catch"
        );
    }
    let probe = &raw["States"]["ProbeCandidate"]["Retry"];
    let not_ready = probe
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ErrorEquals"] == json!(["Probe.NotReady"]))
        .expect("ProbeCandidate retries Probe.NotReady");
    for field in [
        "IntervalSeconds",
        "BackoffRate",
        "MaxAttempts",
        "MaxDelaySeconds",
    ] {
        assert!(not_ready[field].is_number(), "{field}");
    }
    assert_eq!(not_ready["JitterStrategy"], "FULL");
}

// ---------------------------------------------------------------------------------------------
// Mocked paths

fn rotate_input() -> Value {
    json!({"action": "rotate", "secret_id": "richesreach/development/openai_api_key",
           "candidate_ciphertext": "AQICAHhmockciphertext==", "requested_by": "github:alice", "reason": "quarterly"})
}

fn rollback_input() -> Value {
    json!({"action": "rollback", "secret_id": "richesreach/development/openai_api_key",
           "requested_by": "github:bob", "reason": "vendor outage after rotation"})
}

fn iam_input() -> Value {
    json!({"action": "rotate", "secret_id": "richesreach/development/deploy_bot_access_key"})
}

/// What one execution did, read from its history.
struct Trace {
    states: Vec<String>,
    /// (state, parameters) of every TaskScheduled, in order.
    calls: Vec<(String, Value)>,
}

fn trace(outcome: &Outcome) -> Trace {
    let mut states = Vec::new();
    let mut calls = Vec::new();
    for e in &outcome.events {
        if let Some(d) = e.get("stateEnteredEventDetails") {
            states.push(d["name"].as_str().unwrap().to_string());
        }
        if e["type"] == "TaskScheduled" {
            let params: Value = serde_json::from_str(
                e["taskScheduledEventDetails"]["parameters"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
            calls.push((states.last().unwrap().clone(), params));
        }
    }
    Trace { states, calls }
}

impl Trace {
    fn attempts(&self, state: &str) -> usize {
        self.calls.iter().filter(|(s, _)| s == state).count()
    }
}

/// Every payload must be what the called function's rotor-core input type accepts.
fn check_payload(state: &str, params: &Value) -> Option<AuditInput> {
    let function = function_name(params["FunctionName"].as_str().unwrap()).to_string();
    let payload = params["Payload"].clone();
    let fail = |e: serde_json::Error| -> ! { panic!("{state} -> {function}: {e}: {payload}") };
    match function.as_str() {
        "rotor-stage-pending" => {
            serde_json::from_value::<StagePendingInput>(payload.clone())
                .unwrap_or_else(|e| fail(e));
        }
        "rotor-health-probe" => {
            serde_json::from_value::<HealthProbeInput>(payload.clone()).unwrap_or_else(|e| fail(e));
        }
        "rotor-promote" => {
            serde_json::from_value::<PromoteInput>(payload.clone()).unwrap_or_else(|e| fail(e));
        }
        "rotor-rollback" => {
            serde_json::from_value::<RollbackInput>(payload.clone()).unwrap_or_else(|e| fail(e));
        }
        "rotor-revoke-old-iam-key" => {
            let r =
                serde_json::from_value::<RevokeInput>(payload.clone()).unwrap_or_else(|e| fail(e));
            assert!(
                r.staged.iam.is_some(),
                "{state}: the revoke step needs staged.iam"
            );
        }
        "rotor-audit-log" => {
            return Some(
                serde_json::from_value::<AuditInput>(payload.clone()).unwrap_or_else(|e| fail(e)),
            )
        }
        other => panic!("{state} calls an unknown function {other}"),
    }
    None
}

struct Case {
    name: &'static str,
    input: Value,
    states: &'static [&'static str],
    status: Status,
    error: Option<&'static str>,
    /// Tasks whose number of attempts is checked (retries included).
    attempts: &'static [(&'static str, usize)],
    /// The audit outcome and error name the audit step was called with.
    audit: Option<(&'static str, Option<&'static str>)>,
    cause_contains: &'static [&'static str],
}

const ROTATE_TO_APP: [&str; 9] = [
    "CheckInput",
    "StagePending",
    "WaitForPropagation",
    "ProbeCandidate",
    "Promote",
    "HasConsumers",
    "NoConsumersToRedeploy",
    "WaitForConsumers",
    "ProbeApplication",
];

fn with(prefix: &[&'static str], rest: &[&'static str]) -> &'static [&'static str] {
    Box::leak([prefix, rest].concat().into_boxed_slice())
}

fn cases() -> Vec<Case> {
    let happy = with(
        &ROTATE_TO_APP,
        &["IsIamAccessKey", "AuditRotated", "Rotated"],
    );
    let to_probe = &ROTATE_TO_APP[..4];
    let to_promote = &ROTATE_TO_APP[..5];
    let reverted = with(
        &ROTATE_TO_APP,
        &[
            "Revert",
            "HasConsumersToRestore",
            "AuditRolledBack",
            "RolledBack",
        ],
    );
    vec![
        Case {
            name: "HappyVendor",
            input: rotate_input(),
            states: happy,
            status: Status::Succeeded,
            error: None,
            attempts: &[
                ("StagePending", 1),
                ("ProbeCandidate", 1),
                ("Promote", 1),
                ("ProbeApplication", 1),
                ("AuditRotated", 1),
            ],
            audit: Some(("rotated", None)),
            cause_contains: &[],
        },
        Case {
            name: "CandidateNotReadyTwiceThenValid",
            input: rotate_input(),
            states: happy,
            status: Status::Succeeded,
            error: None,
            attempts: &[("ProbeCandidate", 3), ("Promote", 1)],
            audit: Some(("rotated", None)),
            cause_contains: &[],
        },
        Case {
            name: "CandidateRejected",
            input: rotate_input(),
            states: with(to_probe, &["Abandon", "AuditAbandoned", "Abandoned"]),
            status: Status::Failed,
            error: Some("Probe.Rejected"),
            attempts: &[("ProbeCandidate", 1), ("Promote", 0), ("Abandon", 1)],
            audit: Some(("abandoned", Some("Probe.Rejected"))),
            cause_contains: &["HTTP 401"],
        },
        Case {
            name: "PromoteConflict",
            input: rotate_input(),
            states: with(to_promote, &["Abandon", "AuditAbandoned", "Abandoned"]),
            status: Status::Failed,
            error: Some("Rotation.Conflict"),
            attempts: &[("Promote", 1), ("Abandon", 1), ("Revert", 0)],
            audit: Some(("abandoned", Some("Rotation.Conflict"))),
            cause_contains: &["AWSCURRENT is on version"],
        },
        Case {
            name: "AppProbeFails",
            input: rotate_input(),
            states: reverted,
            status: Status::Failed,
            error: Some("Rotation.RolledBack"),
            // The application probe's NotReady retrier: 1 + 4 attempts.
            attempts: &[("ProbeApplication", 5), ("Revert", 1), ("Abandon", 0)],
            audit: Some(("rolled-back", Some("Probe.NotReady"))),
            cause_contains: &[
                "Probe.NotReady failed after",
                "a2b9c8d7-0000-4000-8000-000000000002 again",
            ],
        },
        Case {
            name: "StagePendingInProgress",
            input: rotate_input(),
            states: &["CheckInput", "StagePending", "AuditRefused", "Refused"],
            status: Status::Failed,
            error: Some("Rotation.InProgress"),
            attempts: &[("StagePending", 1), ("AbandonAfterStagingFailure", 0)],
            audit: Some(("refused", Some("Rotation.InProgress"))),
            cause_contains: &["rotation in flight"],
        },
        Case {
            name: "CandidateInvalid",
            input: rotate_input(),
            states: &["CheckInput", "StagePending", "AuditRefused", "Refused"],
            status: Status::Failed,
            error: Some("Candidate.Invalid"),
            attempts: &[("StagePending", 1)],
            audit: Some(("refused", Some("Candidate.Invalid"))),
            cause_contains: &["nothing would rotate"],
        },
        Case {
            name: "StagePendingThrottled",
            input: rotate_input(),
            states: &[
                "CheckInput",
                "StagePending",
                "AbandonAfterStagingFailure",
                "AuditRefused",
                "Refused",
            ],
            status: Status::Failed,
            error: Some("Aws.Throttled"),
            // The throttling retrier: 1 + 5 attempts.
            attempts: &[("StagePending", 6), ("AbandonAfterStagingFailure", 1)],
            audit: Some(("refused", Some("Aws.Throttled"))),
            cause_contains: &["Rate exceeded"],
        },
        Case {
            name: "ManualRollback",
            input: rollback_input(),
            states: &[
                "CheckInput",
                "PlanManualRollback",
                "CheckRollbackProbe",
                "ProbeRollbackTarget",
                "MoveCurrentBack",
                "HasConsumersAfterRollback",
                "AuditManualRollback",
                "ManualRollbackDone",
            ],
            status: Status::Succeeded,
            error: None,
            attempts: &[
                ("PlanManualRollback", 1),
                ("MoveCurrentBack", 1),
                ("StagePending", 0),
            ],
            audit: Some(("manual-rollback", None)),
            cause_contains: &[],
        },
        Case {
            name: "ManualRollbackRefused",
            input: rollback_input(),
            states: &[
                "CheckInput",
                "PlanManualRollback",
                "AuditRefused",
                "Refused",
            ],
            status: Status::Failed,
            error: Some("Rotation.InProgress"),
            attempts: &[("PlanManualRollback", 1), ("MoveCurrentBack", 0)],
            audit: Some(("refused", Some("Rotation.InProgress"))),
            cause_contains: &[],
        },
        Case {
            name: "LambdaServiceExceptionRetried",
            input: rotate_input(),
            states: happy,
            status: Status::Succeeded,
            error: None,
            attempts: &[("Promote", 3)],
            audit: Some(("rotated", None)),
            cause_contains: &[],
        },
        Case {
            name: "AuditFails",
            input: rotate_input(),
            states: happy,
            status: Status::Succeeded,
            error: None,
            // Retried (1 + 3), then the execution goes on to its end anyway.
            attempts: &[("AuditRotated", 4)],
            audit: Some(("rotated", None)),
            cause_contains: &[],
        },
        Case {
            name: "AuditFailsAfterAbandon",
            input: rotate_input(),
            states: with(to_probe, &["Abandon", "AuditAbandoned", "Abandoned"]),
            status: Status::Failed,
            error: Some("Probe.Rejected"),
            attempts: &[("AuditAbandoned", 4)],
            audit: Some(("abandoned", Some("Probe.Rejected"))),
            cause_contains: &["HTTP 401"],
        },
        Case {
            name: "AbandonFails",
            input: rotate_input(),
            states: with(to_probe, &["Abandon", "AuditAbandoned", "Abandoned"]),
            status: Status::Failed,
            error: Some("Probe.Rejected"),
            attempts: &[("Abandon", 1)],
            audit: Some(("abandoned", Some("Probe.Rejected"))),
            cause_contains: &[],
        },
        Case {
            name: "RevertFails",
            input: rotate_input(),
            states: with(
                &ROTATE_TO_APP,
                &["Revert", "AuditRevertFailed", "RevertFailed"],
            ),
            status: Status::Failed,
            error: Some("Rotation.RevertFailed"),
            attempts: &[("Revert", 1)],
            audit: Some(("rolled-back", Some("Rotation.RevertFailed"))),
            cause_contains: &[
                "Probe.NotReady failed after",
                "revert then failed with Rotation.Conflict",
            ],
        },
        Case {
            name: "HappyIam",
            input: iam_input(),
            states: with(
                &ROTATE_TO_APP,
                &[
                    "IsIamAccessKey",
                    "DeactivateOldKey",
                    "WaitGracePeriod",
                    "DeleteOldKey",
                    "AuditRotated",
                    "Rotated",
                ],
            ),
            status: Status::Succeeded,
            error: None,
            attempts: &[("DeactivateOldKey", 1), ("DeleteOldKey", 1)],
            audit: Some(("rotated", None)),
            cause_contains: &[],
        },
        Case {
            name: "IamOldKeyStillInUse",
            input: iam_input(),
            states: with(
                &ROTATE_TO_APP,
                &[
                    "IsIamAccessKey",
                    "DeactivateOldKey",
                    "WaitGracePeriod",
                    "DeleteOldKey",
                    "Revert",
                    "HasConsumersToRestore",
                    "AuditRolledBack",
                    "RolledBack",
                ],
            ),
            status: Status::Failed,
            error: Some("Rotation.RolledBack"),
            attempts: &[("DeleteOldKey", 1), ("Revert", 1)],
            audit: Some(("rolled-back", Some("Revoke.OldKeyStillInUse"))),
            cause_contains: &["Revoke.OldKeyStillInUse failed after"],
        },
        Case {
            name: "IamKeyLimit",
            input: iam_input(),
            states: &["CheckInput", "StagePending", "AuditRefused", "Refused"],
            status: Status::Failed,
            error: Some("Rotation.KeyLimit"),
            attempts: &[("StagePending", 1), ("AbandonAfterStagingFailure", 0)],
            audit: Some(("refused", Some("Rotation.KeyLimit"))),
            cause_contains: &["already has 2 access keys"],
        },
        Case {
            name: "IamKeyNotReadyTwiceThenValid",
            input: iam_input(),
            states: with(
                &ROTATE_TO_APP,
                &[
                    "IsIamAccessKey",
                    "DeactivateOldKey",
                    "WaitGracePeriod",
                    "DeleteOldKey",
                    "AuditRotated",
                    "Rotated",
                ],
            ),
            status: Status::Succeeded,
            error: None,
            attempts: &[("ProbeCandidate", 3), ("Promote", 1), ("DeleteOldKey", 1)],
            audit: Some(("rotated", None)),
            cause_contains: &[],
        },
        Case {
            name: "UnknownAction",
            input: json!({"action": "rotate-now", "secret_id": "richesreach/development/openai_api_key"}),
            states: &["CheckInput", "InputInvalid"],
            status: Status::Failed,
            error: Some("Input.Invalid"),
            attempts: &[("StagePending", 0)],
            audit: None,
            cause_contains: &["rotate"],
        },
    ]
}

async fn run_mocked(machine: &StateMachine, case: &str, input: Value) -> Outcome {
    let config: Value = serde_json::from_str(MOCKS).unwrap();
    let mocks = MockTasks::from_config(&config, Some(STATE_MACHINE_NAME), case, None).unwrap();
    let mut options = RunOptions::new(format!("test-{case}"), Arc::new(mocks));
    options.state_machine_name = STATE_MACHINE_NAME.into();
    options.seed = Some(7);
    options.start_time = Some(Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap());
    execute(machine, input, options).await
}

#[tokio::test]
async fn every_mocked_path_takes_the_right_branch() {
    let machine = definition();
    let config: Value = serde_json::from_str(MOCKS).unwrap();
    let in_config: HashSet<String> = config["StateMachines"][STATE_MACHINE_NAME]["TestCases"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let cases = cases();
    let tested: HashSet<String> = cases.iter().map(|c| c.name.to_string()).collect();
    assert_eq!(
        in_config, tested,
        "every test case in the mock config has expectations here"
    );
    for case in &cases {
        let outcome = run_mocked(&machine, case.name, case.input.clone()).await;
        let t = trace(&outcome);
        let ctx = format!(
            "case {}: status {:?} error {:?} cause {:?}\nstates {:?}",
            case.name, outcome.status, outcome.error, outcome.cause, t.states
        );
        assert_eq!(t.states, case.states, "{ctx}");
        assert_eq!(outcome.status, case.status, "{ctx}");
        assert_eq!(outcome.error.as_deref(), case.error, "{ctx}");
        for (state, n) in case.attempts {
            assert_eq!(t.attempts(state), *n, "{ctx}\nattempts of {state}");
        }
        for part in case.cause_contains {
            assert!(
                outcome.cause.as_deref().unwrap_or_default().contains(part),
                "{ctx}\ncause lacks {part:?}"
            );
        }
        let mut audits = Vec::new();
        for (state, params) in &t.calls {
            if let Some(a) = check_payload(state, params) {
                audits.push(a);
            }
        }
        match case.audit {
            None => assert!(audits.is_empty(), "{ctx}"),
            Some((outcome_name, error)) => {
                assert!(!audits.is_empty(), "{ctx}\nno audit call");
                for a in &audits {
                    assert_eq!(a.outcome, outcome_name, "{ctx}");
                    assert_eq!(a.error.as_ref().map(|e| e.error.as_str()), error, "{ctx}");
                    assert_eq!(a.started_at, "2026-11-28T09:00:00.000Z", "{ctx}");
                    assert_eq!(
                        a.input,
                        serde_json::from_value(case.input.clone()).unwrap(),
                        "{ctx}"
                    );
                    if outcome_name == "manual-rollback" {
                        let r = a
                            .rollback
                            .as_ref()
                            .expect("the manual rollback's plan is audited");
                        assert!(
                            r.current_version_id.is_some() && r.undone_version_id.is_some(),
                            "{ctx}"
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn probe_retries_back_off_within_the_cap() {
    let machine = definition();
    let outcome = run_mocked(&machine, "CandidateNotReadyTwiceThenValid", rotate_input()).await;
    let times: Vec<chrono::DateTime<Utc>> = outcome
        .events
        .iter()
        .filter(|e| e["type"] == "TaskScheduled")
        .skip(1) // StagePending
        .take(3) // ProbeCandidate's three attempts
        .map(|e| e["timestamp"].as_str().unwrap().parse().unwrap())
        .collect();
    // Full jitter: each wait is at most IntervalSeconds * BackoffRate^n (3 s, then 6 s).
    let first = (times[1] - times[0]).num_milliseconds();
    let second = (times[2] - times[1]).num_milliseconds();
    assert!((0..=3000).contains(&first), "{first} ms");
    assert!((0..=6000).contains(&second), "{second} ms");
}

// ---------------------------------------------------------------------------------------------
// Real handlers over the real local store, probing loopback stand-ins over real HTTP

const SECRET: &str = "richesreach/development/openai_api_key";
const IAM_SECRET: &str = "richesreach/development/deploy_bot_access_key";
const IAM_USER: &str = "deploy-bot";

/// An iam-access-key secret's value.
fn iam_value(key: &NewAccessKey) -> SecretValue {
    rotor_core::iam::KeyValue {
        access_key_id: key.access_key_id.clone(),
        secret_access_key: key.secret_access_key.clone(),
        user_name: Some(IAM_USER.into()),
    }
    .to_value()
}

/// (access key id, secret) of the IAM secret's AWSCURRENT.
async fn iam_current(store: &LocalStore) -> (String, SecretValue) {
    let (version, value) = store
        .get_value(IAM_SECRET, &Version::current())
        .await
        .unwrap();
    let key = rotor_core::iam::KeyValue::parse(IAM_SECRET, &version, &value).unwrap();
    (key.access_key_id, key.secret_access_key)
}

/// A local store (temp dir) holding the vendor secret, the vendor stand-in that issued its
/// keys, and an application stand-in that uses the secret's AWSCURRENT.
struct Local {
    _dir: tempfile::TempDir,
    store: LocalStore,
    vendor: VendorStandIn,
    app: AppStandIn,
    services: Services,
    /// The secret's first version and its value (a key the vendor issued).
    old_id: String,
    old_key: String,
}

async fn local() -> Local {
    local_with(None).await
}

/// [`local`], or with `consumer` (the ECS-like service `prod/backend` whose tasks read the
/// secret, declared in `rotor:consumers`; `true`: its new tasks crash on a new value) the app
/// stand-in is that service's task: it holds the version its deployment started on.
async fn local_with(consumer: Option<bool>) -> Local {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("store")).unwrap();
    let vendor = VendorStandIn::start().await;
    let app_store = store.clone();
    let current_key: CurrentKey = match consumer {
        None => Arc::new(move || -> BoxFuture<'static, Option<String>> {
            let store = app_store.clone();
            Box::pin(async move {
                store
                    .get_value(SECRET, &Version::current())
                    .await
                    .ok()
                    .map(|(_, v)| v.expose().to_string())
            })
        }),
        Some(_) => {
            let serving = app_store.clone();
            rotor_standins::task_key_from(
                Arc::new(app_store),
                SECRET,
                Arc::new(move || {
                    serving
                        .serving_version(consumers::CLUSTER, consumers::SERVICE, SECRET)
                        .unwrap()
                }),
            )
        }
    };
    let app = AppStandIn::for_vendor(current_key, &vendor, "openai").await;
    let old_key = vendor.issue_key("openai");
    let mut tags: BTreeMap<String, String> = [
        ("rotor:kind", "vendor-api-key".to_string()),
        ("rotor:probe", "openai".to_string()),
        ("rotor:probe-url", vendor.probe_url("openai")),
        ("rotor:app-health-url", app.health_url()),
        ("rotor:wait-propagation-seconds", "5".to_string()),
        ("rotor:wait-consumers-seconds", "30".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if consumer.is_some() {
        tags.insert(
            "rotor:consumers".into(),
            format!("ecs:{}/{}", consumers::CLUSTER, consumers::SERVICE),
        );
        tags.insert("rotor:consumer-poll-seconds".into(), "10".into());
    }
    let old_id = store
        .create_secret(SECRET, &SecretValue::new(old_key.clone()), tags, None)
        .unwrap();
    if let Some(crash_on_new_value) = consumer {
        store
            .create_service(&rotor_local_store::ServiceSpec {
                cluster: consumers::CLUSTER.into(),
                service: consumers::SERVICE.into(),
                desired_count: 2,
                secrets: vec![SECRET.into()],
                crash_on_new_value,
            })
            .unwrap();
    }
    let services = Services {
        store: Arc::new(store.clone()),
        kms: Arc::new(store.clone()),
        iam: Arc::new(store.clone()),
        sts: Arc::new(store.clone()),
        prober: Arc::new(ReqwestProber::new(std::time::Duration::from_secs(5))),
        audit: Arc::new(store.clone()),
        clock: Arc::new(SystemClock),
        ecs: Arc::new(store.clone()),
        probe_hosts: Default::default(),
    };
    Local {
        _dir: dir,
        store,
        vendor,
        app,
        services,
        old_id,
        old_key,
    }
}

fn execution_arn(name: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:{STATE_MACHINE_NAME}:{name}")
}

impl Local {
    /// A rotate input whose candidate is sealed with the store's KMS for the execution `name`,
    /// as `rotor rotate` sends it.
    async fn rotate_input(&self, name: &str, candidate: &str) -> ExecutionInput {
        let sealed = rotor_core::candidate::seal(
            &self.store,
            SECRET,
            name,
            Utc::now() + chrono::Duration::hours(1),
            &SecretValue::new(candidate),
        )
        .await
        .unwrap();
        ExecutionInput {
            action: Action::Rotate,
            secret_id: SECRET.into(),
            candidate_ciphertext: Some(sealed),
            requested_by: Some("github:alice".into()),
            reason: Some("test".into()),
            target_version_id: None,
            force: false,
            recovery: None,
        }
    }

    async fn run(&self, input: &ExecutionInput, name: &str) -> Outcome {
        let options = RunnerOptions {
            seed: Some(3),
            ..Default::default()
        };
        run_rotation(
            load_rotation_definition(),
            self.services.clone(),
            input,
            name,
            options,
        )
        .await
    }

    /// (version id, labels) of every version, oldest first.
    async fn labels(&self) -> Vec<(String, Vec<String>)> {
        self.store
            .describe(SECRET)
            .await
            .unwrap()
            .versions
            .into_iter()
            .map(|v| (v.version_id, v.stages))
            .collect()
    }

    /// (version id, value) of every version carrying `stage`.
    async fn with_stage(&self, stage: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (id, stages) in self.labels().await {
            if stages.iter().any(|s| s == stage) {
                let (_, value) = self
                    .store
                    .get_value(SECRET, &Version::Id(id.clone()))
                    .await
                    .unwrap();
                out.push((id, value.expose().to_string()));
            }
        }
        out
    }

    /// (version id, value) of the one AWSCURRENT version.
    async fn current(&self) -> (String, String) {
        let current = self.with_stage(AWSCURRENT).await;
        assert_eq!(
            current.len(),
            1,
            "exactly one AWSCURRENT: {:?}",
            self.labels().await
        );
        current[0].clone()
    }

    /// Exactly one AWSCURRENT, and it works: the real health-probe passes for it against the
    /// vendor stand-in (candidate target, by version id) and the application stand-in, which
    /// reads AWSCURRENT from the store, is healthy (application target). Returns its id.
    async fn assert_current_works(&self) -> String {
        let (id, _) = self.current().await;
        for target in [ProbeTarget::Candidate, ProbeTarget::Application] {
            let probe = handlers::health_probe(
                &self.services,
                HealthProbeInput {
                    secret_id: SECRET.into(),
                    version_id: id.clone(),
                    target,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("AWSCURRENT {id} does not work ({target:?}): {e}"));
            assert!(probe.valid && !probe.skipped, "{probe:?}");
        }
        id
    }

    /// [`Local::assert_current_works`], and no AWSPENDING is left.
    async fn assert_one_working_current(&self) -> String {
        let id = self.assert_current_works().await;
        assert!(
            self.with_stage(AWSPENDING).await.is_empty(),
            "{:?}",
            self.labels().await
        );
        id
    }

    async fn with_iam_stage(&self, stage: &str) -> Option<String> {
        self.store
            .describe(IAM_SECRET)
            .await
            .unwrap()
            .version_with(stage)
            .map(|v| v.version_id.clone())
    }

    fn audit_record(&self, name: &str) -> Option<AuditRecord> {
        let records = self.store.audit_records(None).unwrap();
        let mine: Vec<_> = records
            .into_iter()
            .filter(|r| r.execution_id == execution_arn(name))
            .collect();
        assert!(mine.len() <= 1, "one audit record per execution: {mine:?}");
        mine.into_iter().next()
    }

    fn audited(&self, name: &str) -> AuditRecord {
        self.audit_record(name)
            .unwrap_or_else(|| panic!("no audit record for {name}"))
    }
}

fn entered(outcome: &Outcome) -> Vec<String> {
    trace(outcome).states
}

#[tokio::test]
async fn real_handlers_happy_rotation() {
    let l = local().await;
    let new_key = l.vendor.issue_key("openai");
    let outcome = l
        .run(&l.rotate_input("happy", &new_key).await, "happy")
        .await;
    assert_eq!(
        outcome.status,
        Status::Succeeded,
        "{:?} {:?} {:?}",
        outcome.error,
        outcome.cause,
        entered(&outcome)
    );
    let current = l.assert_one_working_current().await;
    assert_eq!(l.current().await.1, new_key);
    assert_eq!(current, handlers::token_for(&execution_arn("happy")));
    assert_eq!(
        l.with_stage(AWSPREVIOUS).await,
        [(l.old_id.clone(), l.old_key.clone())]
    );
    let out = outcome.output.clone().unwrap();
    assert_eq!(
        out["candidate_probe"]["proof"],
        "openai accepted the key (HTTP 200)"
    );
    assert_eq!(
        out["app_probe"]["proof"],
        "application accepted the key (HTTP 200)"
    );
    assert_eq!(out["promoted"]["changed"], true);
    let record = l.audited("happy");
    assert_eq!(record.outcome, "rotated");
    assert_eq!(record.old_version_id.as_deref(), Some(l.old_id.as_str()));
    assert_eq!(record.new_version_id.as_deref(), Some(current.as_str()));
    assert_eq!(l.store.metrics(Some("RotationSucceeded")).unwrap().len(), 1);
    let records = format!("{:?}", l.store.audit_records(None).unwrap());
    assert!(
        !format!("{outcome:?}{records}").contains(&new_key),
        "a secret value leaked into the history or the audit log"
    );
}

#[tokio::test]
async fn real_handlers_rejected_candidate_is_abandoned() {
    let l = local().await;
    let before = l.labels().await;
    let outcome = l
        .run(
            &l.rotate_input("rejected", "sk-proj-not-issued-by-the-vendor")
                .await,
            "rejected",
        )
        .await;
    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(
        outcome.error.as_deref(),
        Some("Probe.Rejected"),
        "{:?}",
        entered(&outcome)
    );
    assert!(outcome.cause.as_deref().unwrap().contains("HTTP 401"));
    assert!(entered(&outcome).contains(&"Abandon".to_string()));
    assert!(!entered(&outcome).contains(&"Promote".to_string()));
    let current = l.assert_one_working_current().await;
    assert_eq!(current, l.old_id);
    assert_eq!(l.current().await.1, l.old_key);
    // The secret is unchanged: the staged version stays, without any label.
    let after = l.labels().await;
    let staged = handlers::token_for(&execution_arn("rejected"));
    assert_eq!(
        after
            .iter()
            .filter(|(id, _)| *id != staged)
            .cloned()
            .collect::<Vec<_>>(),
        before
    );
    assert!(after.iter().any(|(id, s)| *id == staged && s.is_empty()));
    let record = l.audited("rejected");
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("abandoned", Some("Probe.Rejected"))
    );
}

#[tokio::test]
async fn real_handlers_app_failure_after_promote_is_reverted() {
    let l = local().await;
    let new_key = l.vendor.issue_key("openai");
    l.app.set_broken(true);
    let outcome = l
        .run(&l.rotate_input("app-down", &new_key).await, "app-down")
        .await;
    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(
        outcome.error.as_deref(),
        Some("Rotation.RolledBack"),
        "{:?}",
        entered(&outcome)
    );
    let states = entered(&outcome);
    assert!(
        states.contains(&"Promote".to_string()) && states.contains(&"Revert".to_string()),
        "{states:?}"
    );
    // The application probe's Probe.NotReady retrier: 1 + 4 real requests.
    assert_eq!(l.app.health_checks(), 5);
    assert!(
        outcome
            .cause
            .as_deref()
            .unwrap()
            .contains(&format!("AWSCURRENT is on version {} again", l.old_id)),
        "{:?}",
        outcome.cause
    );
    l.app.set_broken(false);
    let current = l.assert_one_working_current().await;
    assert_eq!(current, l.old_id, "AWSCURRENT is back on the old version");
    assert_eq!(l.current().await.1, l.old_key);
    // AWSPREVIOUS is back where it was before the rotation (on no version): the rejected
    // candidate keeps no label.
    let new_id = handlers::token_for(&execution_arn("app-down"));
    assert_eq!(
        l.with_stage(AWSPREVIOUS).await,
        Vec::<(String, String)>::new()
    );
    let _ = new_key;
    assert!(
        l.store
            .describe(SECRET)
            .await
            .unwrap()
            .versions
            .iter()
            .any(|v| v.version_id == new_id && v.stages.is_empty()),
        "the rejected candidate stays as an unlabelled version"
    );
    let record = l.audited("app-down");
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("rolled-back", Some("Probe.NotReady"))
    );
}

#[tokio::test]
async fn real_handlers_manual_rollback_after_rotation() {
    let l = local().await;
    let new_key = l.vendor.issue_key("openai");
    let rotated = l
        .run(
            &l.rotate_input("rotate-first", &new_key).await,
            "rotate-first",
        )
        .await;
    assert_eq!(rotated.status, Status::Succeeded, "{:?}", rotated.cause);
    let (new_id, _) = l.current().await;
    let input = ExecutionInput {
        action: Action::Rollback,
        secret_id: SECRET.into(),
        candidate_ciphertext: None,
        requested_by: Some("github:bob".into()),
        reason: Some("the vendor revoked the new key".into()),
        target_version_id: None,
        force: false,
        recovery: None,
    };
    let outcome = l.run(&input, "manual").await;
    assert_eq!(
        outcome.status,
        Status::Succeeded,
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    assert_eq!(
        entered(&outcome),
        [
            "CheckInput",
            "PlanManualRollback",
            "CheckRollbackProbe",
            "ProbeRollbackTarget",
            "MoveCurrentBack",
            "HasConsumersAfterRollback",
            "AuditManualRollback",
            "ManualRollbackDone"
        ]
    );
    let old_id = l.assert_one_working_current().await;
    assert_eq!(old_id, l.old_id);
    assert_eq!(l.current().await.1, l.old_key);
    assert_eq!(l.with_stage(AWSPREVIOUS).await[0].0, new_id);
    let record = l.audited("manual");
    assert_eq!(record.outcome, "manual-rollback");
    assert_eq!(record.old_version_id.as_deref(), Some(new_id.as_str()));
    assert_eq!(record.new_version_id.as_deref(), Some(old_id.as_str()));
}

#[tokio::test]
async fn real_handlers_refuse_while_another_rotation_is_staged() {
    let l = local().await;
    let other = "0d0d0d0d-0000-5000-8000-000000000009";
    l.store
        .put_pending(SECRET, other, &SecretValue::new("sk-someone-else"))
        .await
        .unwrap();
    let before = l.labels().await;
    let new_key = l.vendor.issue_key("openai");
    let outcome = l
        .run(&l.rotate_input("second", &new_key).await, "second")
        .await;
    assert_eq!(outcome.error.as_deref(), Some("Rotation.InProgress"));
    assert_eq!(
        entered(&outcome),
        ["CheckInput", "StagePending", "AuditRefused", "Refused"]
    );
    // Nothing was written; the other execution's candidate is left alone.
    assert_eq!(l.labels().await, before);
    assert_eq!(
        l.with_stage(AWSPENDING).await,
        [(other.to_string(), "sk-someone-else".to_string())]
    );
    assert_eq!(l.assert_current_works().await, l.old_id);
    assert_eq!(l.current().await.1, l.old_key);
    let record = l.audited("second");
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("refused", Some("Rotation.InProgress"))
    );
}

#[tokio::test]
async fn local_functions_map_errors_like_the_lambda_runtime() {
    use rotor_asl::task::FunctionInvoker;
    let l = local().await;
    let f = LocalFunctions::new(l.services.clone());
    let e = f
        .invoke("rotor-promote", json!({"secret_id": SECRET}))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, "Input.Invalid");
    assert!(
        e.error_message.contains("pending_version_id"),
        "{}",
        e.error_message
    );
    let arn = &local_arns()["promote_arn"];
    let e = f
        .invoke(
            arn,
            json!({"secret_id": SECRET, "pending_version_id": "nope", "previous_version_id": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.error_type, "Input.Invalid");
    assert!(e.error_message.contains("has no version nope"));
    let revoke = json!({"mode": "deactivate", "secret_id": SECRET, "staged": {
        "secret_id": SECRET, "kind": "iam-access-key", "pending_version_id": "p", "previous_version_id": "q",
        "waits": {"propagation_seconds": 1, "consumers_seconds": 1, "grace_seconds": 1}, "app_probe": false}});
    let e = f
        .invoke(&local_arns()["revoke_old_iam_key_arn"], revoke)
        .await
        .unwrap_err();
    // No staged.iam: not an IAM rotation's stage-pending output.
    assert_eq!(e.error_type, "Input.Invalid");
    assert!(
        e.error_message.contains("staged.iam"),
        "{}",
        e.error_message
    );
    let e = f.invoke("rotor-nope", json!({})).await.unwrap_err();
    assert_eq!(e.error_type, "Lambda.ResourceNotFoundException");
    let ok = f
        .invoke(
            "rotor-rollback",
            json!({"mode": "manual", "secret_id": SECRET, "execution_id": "arn:x"}),
        )
        .await;
    // No AWSPREVIOUS yet: nothing to roll back to.
    assert_eq!(ok.unwrap_err().error_type, "Input.Invalid");
}

#[tokio::test]
async fn an_invalid_definition_is_reported_not_run() {
    let l = local().await;
    let input = l.rotate_input("x", "sk-proj-whatever").await;
    let o = run_rotation(
        "{\"StartAt\": \"${nope}\"}",
        l.services.clone(),
        &input,
        "x",
        RunnerOptions::default(),
    )
    .await;
    assert_eq!(o.error.as_deref(), Some(DEFINITION_INVALID));
    assert!(o.cause.unwrap().contains("${nope}"));
    let o = run_rotation(
        "{\"StartAt\": \"A\", \"States\": {}}",
        l.services.clone(),
        &input,
        "x",
        RunnerOptions::default(),
    )
    .await;
    assert_eq!(o.error.as_deref(), Some(DEFINITION_INVALID));
    assert!(o.events.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The mock config's failures, injected into executions over the real local store

/// A test case's injected failures: its mocked responses reduced to their `Throw` entries.
/// States whose mocked responses only `Return` are left out, so they run for real.
struct Faults {
    /// A Step Functions Local mock config holding just this test case's failures.
    config: Value,
    /// Per faulted state, how many of its first invocations throw.
    throws: HashMap<String, u32>,
}

fn faults(case: &str) -> Faults {
    let config: Value = serde_json::from_str(MOCKS).unwrap();
    let states = config["StateMachines"][STATE_MACHINE_NAME]["TestCases"][case]
        .as_object()
        .unwrap_or_else(|| panic!("no test case {case}"));
    let mut test_case = serde_json::Map::new();
    let mut responses = serde_json::Map::new();
    let mut throws = HashMap::new();
    for (state, mock) in states {
        let mock = mock.as_str().unwrap();
        let mut kept = serde_json::Map::new();
        let mut ranges = Vec::new();
        for (key, response) in config["MockedResponses"][mock].as_object().unwrap() {
            if response.get("Throw").is_none() {
                continue;
            }
            let (first, last) = match key.split_once('-') {
                Some((a, b)) => (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap()),
                None => (key.parse().unwrap(), key.parse().unwrap()),
            };
            ranges.push((first, last));
            kept.insert(key.clone(), response.clone());
        }
        if kept.is_empty() {
            continue;
        }
        // Injected failures come first (then the real function answers): a mocked success
        // before a failure could not be answered by the real handler meaningfully.
        ranges.sort();
        let mut next = 0;
        for (first, last) in ranges {
            assert_eq!(first, next, "{case}: {mock} throws after succeeding");
            next = last + 1;
        }
        throws.insert(state.clone(), next);
        let name = format!("{mock}.Faults");
        test_case.insert(state.clone(), json!(name));
        responses.insert(name, Value::Object(kept));
    }
    Faults {
        config: json!({
            "StateMachines": {STATE_MACHINE_NAME: {"TestCases": {case: test_case}}},
            "MockedResponses": responses,
        }),
        throws,
    }
}

/// The injected failures through `MockTasks`, whose fallback (the real `LocalFunctions`)
/// answers every state the failures do not name; a state whose failures are used up (a
/// mocked "throw twice, then succeed") is answered by the real function too.
struct FaultsThenReal {
    mocks: MockTasks,
    real: Arc<dyn TaskHandler>,
    throws: HashMap<String, u32>,
    calls: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl TaskHandler for FaultsThenReal {
    async fn call(&self, request: TaskRequest) -> Result<Value, StatesError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let c = calls.entry(request.state_name.clone()).or_insert(0);
            *c += 1;
            *c - 1
        };
        match self.throws.get(&request.state_name) {
            Some(throws) if n >= *throws => self.real.call(request).await,
            _ => self.mocks.call(request).await,
        }
    }
}

/// Where the secret must be after a test case's execution over the real store.
#[derive(Debug, PartialEq)]
enum End {
    /// The candidate is AWSCURRENT.
    Rotated,
    /// AWSCURRENT is where it was before the execution.
    Unchanged,
    /// AWSCURRENT is back on the version before that (AWSPREVIOUS before the execution).
    RolledBack,
}

#[tokio::test]
async fn every_mocked_failure_over_the_real_store_leaves_one_working_current() {
    let machine = definition();
    for case in cases() {
        let iam = case.input["secret_id"] == IAM_SECRET;
        let l = local().await;
        // The secret was rotated once before, so a manual rollback has somewhere to go back
        // to: AWSPREVIOUS is the first version, AWSCURRENT a second key the vendor issued.
        let earlier_key = l.vendor.issue_key("openai");
        let earlier = "0e0e0e0e-0000-5000-8000-000000000001";
        l.store
            .put_pending(SECRET, earlier, &SecretValue::new(earlier_key.clone()))
            .await
            .unwrap();
        l.store
            .update_stage(SECRET, AWSCURRENT, Some(earlier), Some(&l.old_id))
            .await
            .unwrap();
        l.store
            .update_stage(SECRET, AWSPENDING, None, Some(earlier))
            .await
            .unwrap();
        // The IAM key secret: a real user and key in the store's IAM.
        l.store.create_user(IAM_USER).unwrap();
        let old_key = Iam::create_access_key(&l.store, IAM_USER).await.unwrap();
        let old_iam_version = l
            .store
            .create_secret(
                IAM_SECRET,
                &iam_value(&old_key),
                BTreeMap::from([
                    ("rotor:kind".to_string(), "iam-access-key".to_string()),
                    ("rotor:iam-user".to_string(), IAM_USER.to_string()),
                    ("rotor:grace-seconds".to_string(), "600".to_string()),
                ]),
                None,
            )
            .unwrap();
        if case.name == "IamKeyLimit" {
            // A second Active key: the (mocked) refusal is what the real handler answers too.
            Iam::create_access_key(&l.store, IAM_USER).await.unwrap();
        }
        let iam_before = l.store.describe(IAM_SECRET).await.unwrap();
        let keys_before = Iam::list_access_keys(&l.store, IAM_USER).await.unwrap();

        let candidate_key = l.vendor.issue_key("openai");
        let input = if case.input["action"] == "rotate" && case.input["secret_id"] == SECRET {
            serde_json::to_value(
                l.rotate_input(&format!("real-{}", case.name), &candidate_key)
                    .await,
            )
            .unwrap()
        } else {
            case.input.clone()
        };
        let Faults { config, throws } = faults(case.name);
        let real: Arc<dyn TaskHandler> = Arc::new(LambdaTasks {
            invoker: LocalFunctions::new(l.services.clone()),
        });
        let mocks = MockTasks::from_config(
            &config,
            Some(STATE_MACHINE_NAME),
            case.name,
            Some(real.clone()),
        )
        .unwrap();
        let handler = FaultsThenReal {
            mocks,
            real,
            throws: throws.clone(),
            calls: Mutex::new(HashMap::new()),
        };
        let name = format!("real-{}", case.name);
        let mut options = RunOptions::new(name.clone(), Arc::new(handler));
        options.state_machine_name = STATE_MACHINE_NAME.into();
        options.seed = Some(7);
        options.start_time = Some(Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap());
        let outcome = execute(&machine, input.clone(), options).await;
        let t = trace(&outcome);
        let ctx = format!(
            "case {} (faults {throws:?}): status {:?} error {:?} cause {:?}\nstates {:?}",
            case.name, outcome.status, outcome.error, outcome.cause, t.states
        );

        // The branch: the one the fully mocked run takes.
        assert_eq!(t.states, case.states, "{ctx}");
        assert_eq!(outcome.status, case.status, "{ctx}");
        assert_eq!(outcome.error.as_deref(), case.error, "{ctx}");
        for (state, n) in case.attempts {
            assert_eq!(t.attempts(state), *n, "{ctx}\nattempts of {state}");
        }
        if iam {
            // The IAM secret and the user's keys: rotated (the old key deleted), or unchanged
            // (refused: nothing touched; reverted: the old key Active and AWSCURRENT again,
            // the new key gone).
            let keys = Iam::list_access_keys(&l.store, IAM_USER).await.unwrap();
            assert!(keys.len() <= 2, "{ctx}\n{keys:?}");
            let current = iam_current(&l.store).await;
            if case.status == Status::Succeeded {
                assert_ne!(current.0, old_key.access_key_id, "{ctx}");
                assert_eq!(keys.len(), 1, "{ctx}\n{keys:?}");
                assert_eq!(keys[0].access_key_id, current.0, "{ctx}");
            } else {
                assert_eq!(current.0, old_key.access_key_id, "{ctx}");
                assert_eq!(keys, keys_before, "{ctx}");
                if case.name == "IamKeyLimit" {
                    assert_eq!(l.store.describe(IAM_SECRET).await.unwrap(), iam_before);
                }
                let info = l.store.describe(IAM_SECRET).await.unwrap();
                assert_eq!(
                    info.version_with(AWSCURRENT).unwrap().version_id,
                    old_iam_version,
                    "{ctx}"
                );
            }
            assert!(keys
                .iter()
                .any(|k| k.access_key_id == current.0 && k.status == "Active"));
            let who = CallerIdentity::caller_identity(&l.store, &current.0, &current.1)
                .await
                .unwrap_or_else(|e| panic!("{ctx}\nAWSCURRENT's key does not authenticate: {e}"));
            assert_eq!(who.user_name.as_deref(), Some(IAM_USER));
            assert!(l.with_iam_stage(AWSPENDING).await.is_none(), "{ctx}");
            let history = format!("{:?}", outcome);
            assert!(
                !history.contains(old_key.secret_access_key.expose()),
                "{ctx}"
            );
            assert!(!history.contains(current.1.expose()), "{ctx}");
        }
        for (state, params) in &t.calls {
            check_payload(state, params);
        }

        // The audit log: the real audit-log wrote one record, unless its failure was injected.
        let audit_faulted = throws.keys().any(|s| s.starts_with("Audit"));
        match (l.audit_record(&name), case.audit) {
            (None, _) if audit_faulted => {}
            (Some(record), Some((outcome_name, error))) if !audit_faulted => {
                assert_eq!(record.outcome, outcome_name, "{ctx}");
                assert_eq!(record.error.as_deref(), error, "{ctx}");
            }
            (None, None) => {}
            (record, expected) => panic!("{ctx}\naudit record {record:?}, expected {expected:?}"),
        }

        // The secret: exactly one AWSCURRENT, the right one, and it works.
        let end = match case.name {
            "HappyVendor"
            | "CandidateNotReadyTwiceThenValid"
            | "LambdaServiceExceptionRetried"
            | "AuditFails"
            // The revert's failure was injected: AWSCURRENT stays on the new version, as the
            // RevertFailed cause tells the operator.
            | "RevertFails" => End::Rotated,
            "ManualRollback" => End::RolledBack,
            _ => End::Unchanged,
        };
        let current = l.assert_current_works().await;
        let (expected_id, expected_key) = match end {
            End::Rotated => (handlers::token_for(&execution_arn(&name)), candidate_key),
            End::Unchanged => (earlier.to_string(), earlier_key),
            End::RolledBack => (l.old_id.clone(), l.old_key.clone()),
        };
        assert_eq!(current, expected_id, "{ctx}");
        assert_eq!(l.current().await.1, expected_key, "{ctx}");
        let pending = l.with_stage(AWSPENDING).await;
        if case.name == "AbandonFails" {
            // The abandon's failure was injected: this execution's candidate is still staged
            // (the next rotation is refused with Rotation.InProgress until it is cleared).
            assert_eq!(
                pending.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
                [handlers::token_for(&execution_arn(&name))],
                "{ctx}"
            );
        } else {
            assert!(pending.is_empty(), "{ctx}\nAWSPENDING left: {pending:?}");
        }
    }
}
