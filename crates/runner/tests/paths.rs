//! The rotation state machine's paths.
//!
//! 1. Every test case of `statemachine/mocks/rotation.mocks.json` (Step Functions Local format)
//!    runs on rotor-asl with `MockTasks`: the states entered, the attempts per Task, the final
//!    status/error and the audit outcome are as designed, and every payload the definition
//!    builds is accepted by the rotor-core input type of the function it calls.
//! 2. The main paths run with the real handlers (`LocalFunctions`) over an in-memory secret
//!    store, KMS, audit sink and a fake vendor/application (`HttpProber`): after each run the
//!    secret has exactly one AWSCURRENT, and it works.

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use rotor_asl::definition::StateMachine;
use rotor_asl::executor::{execute, Outcome, RunOptions, Status};
use rotor_asl::mock::MockTasks;
use rotor_core::events::*;
use rotor_core::handlers;
use rotor_core::ports::*;
use rotor_core::secret::{
    SecretInfo, SecretValue, Version, VersionInfo, AWSCURRENT, AWSPENDING, AWSPREVIOUS,
};
use rotor_core::{Result as RotorResult, RotorError};
use rotor_runner::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

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

const ROTATE_TO_APP: [&str; 7] = [
    "CheckInput",
    "StagePending",
    "WaitForPropagation",
    "ProbeCandidate",
    "Promote",
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
    let reverted = with(&ROTATE_TO_APP, &["Revert", "AuditRolledBack", "RolledBack"]);
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
                "MoveCurrentBack",
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
// Real handlers over in-memory fakes

const SECRET: &str = "richesreach/development/openai_api_key";
const VENDOR: &str = "http://vendor.test";
const APP_HEALTH: &str = "http://app.test/health";

struct StoredVersion {
    id: String,
    value: String,
    stages: Vec<String>,
    created_at: String,
}

struct StoredSecret {
    tags: BTreeMap<String, String>,
    versions: Vec<StoredVersion>,
}

/// Secrets Manager's label rules, in memory.
#[derive(Default)]
struct MemStore {
    secrets: Mutex<BTreeMap<String, StoredSecret>>,
}

fn not_found(id: &str) -> RotorError {
    RotorError::input(format!("secret {id} does not exist"))
}

impl MemStore {
    fn create(&self, id: &str, tags: &[(&str, &str)], value: &str) {
        self.secrets.lock().unwrap().insert(
            id.to_string(),
            StoredSecret {
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                versions: vec![StoredVersion {
                    id: "00000000-0000-4000-8000-000000000000".into(),
                    value: value.into(),
                    stages: vec![AWSCURRENT.into()],
                    created_at: Utc::now().to_rfc3339(),
                }],
            },
        );
    }

    /// (version id, value) of every version with `stage`.
    fn with_stage(&self, id: &str, stage: &str) -> Vec<(String, String)> {
        let secrets = self.secrets.lock().unwrap();
        secrets[id]
            .versions
            .iter()
            .filter(|v| v.stages.iter().any(|s| s == stage))
            .map(|v| (v.id.clone(), v.value.clone()))
            .collect()
    }

    fn labels(&self, id: &str) -> Vec<(String, Vec<String>)> {
        let secrets = self.secrets.lock().unwrap();
        secrets[id]
            .versions
            .iter()
            .map(|v| (v.id.clone(), v.stages.clone()))
            .collect()
    }
}

#[async_trait]
impl SecretStore for MemStore {
    async fn describe(&self, secret_id: &str) -> RotorResult<SecretInfo> {
        let secrets = self.secrets.lock().unwrap();
        let s = secrets.get(secret_id).ok_or_else(|| not_found(secret_id))?;
        Ok(SecretInfo {
            id: secret_id.to_string(),
            description: None,
            tags: s.tags.clone(),
            versions: s
                .versions
                .iter()
                .map(|v| VersionInfo {
                    version_id: v.id.clone(),
                    stages: v.stages.clone(),
                    created_at: v.created_at.clone(),
                })
                .collect(),
        })
    }

    async fn get_value(
        &self,
        secret_id: &str,
        version: &Version,
    ) -> RotorResult<(String, SecretValue)> {
        let secrets = self.secrets.lock().unwrap();
        let s = secrets.get(secret_id).ok_or_else(|| not_found(secret_id))?;
        let v = s
            .versions
            .iter()
            .find(|v| match version {
                Version::Id(id) => &v.id == id,
                Version::Stage(stage) => v.stages.contains(stage),
            })
            .ok_or_else(|| {
                RotorError::input(format!("secret {secret_id} has no version {version:?}"))
            })?;
        Ok((v.id.clone(), SecretValue::new(v.value.clone())))
    }

    async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        value: &SecretValue,
    ) -> RotorResult<String> {
        let mut secrets = self.secrets.lock().unwrap();
        let s = secrets
            .get_mut(secret_id)
            .ok_or_else(|| not_found(secret_id))?;
        if let Some(v) = s.versions.iter().find(|v| v.id == token) {
            return if v.value == value.expose() {
                Ok(token.to_string())
            } else {
                Err(RotorError::input(format!(
                    "version {token} exists with another value"
                )))
            };
        }
        if let Some(p) = s
            .versions
            .iter()
            .find(|v| v.stages.iter().any(|x| x == AWSPENDING))
        {
            return Err(RotorError::InProgress {
                secret_id: secret_id.into(),
                version_id: p.id.clone(),
            });
        }
        s.versions.push(StoredVersion {
            id: token.into(),
            value: value.expose().into(),
            stages: vec![AWSPENDING.into()],
            created_at: Utc::now().to_rfc3339(),
        });
        Ok(token.to_string())
    }

    async fn update_stage(
        &self,
        secret_id: &str,
        stage: &str,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> RotorResult<()> {
        let mut secrets = self.secrets.lock().unwrap();
        let s = secrets
            .get_mut(secret_id)
            .ok_or_else(|| not_found(secret_id))?;
        let holder = s
            .versions
            .iter()
            .find(|v| v.stages.iter().any(|x| x == stage))
            .map(|v| v.id.clone());
        if let Some(from) = remove_from {
            if holder.as_deref() != Some(from) {
                return Err(RotorError::input(format!(
                    "{stage} is not on version {from}"
                )));
            }
        }
        if let Some(to) = move_to {
            if !s.versions.iter().any(|v| v.id == to) {
                return Err(RotorError::input(format!(
                    "secret {secret_id} has no version {to}"
                )));
            }
        } else if remove_from.is_none() {
            return Err(RotorError::input(
                "removing a stage needs RemoveFromVersionId",
            ));
        }
        for v in &mut s.versions {
            v.stages.retain(|x| x != stage);
        }
        if let Some(to) = move_to {
            s.versions
                .iter_mut()
                .find(|v| v.id == to)
                .unwrap()
                .stages
                .push(stage.into());
            if stage == AWSCURRENT {
                if let Some(old) = holder.filter(|h| h != to) {
                    for v in &mut s.versions {
                        v.stages.retain(|x| x != AWSPREVIOUS);
                    }
                    s.versions
                        .iter_mut()
                        .find(|v| v.id == old)
                        .unwrap()
                        .stages
                        .push(AWSPREVIOUS.into());
                }
            }
        }
        Ok(())
    }
}

/// Ciphertext is `fake-kms|<SecretId>|<plaintext>`: enough to check the encryption context.
struct FakeKms;

#[async_trait]
impl Kms for FakeKms {
    async fn encrypt(
        &self,
        plaintext: &SecretValue,
        context: &EncryptionContext,
    ) -> RotorResult<Vec<u8>> {
        Ok(format!("fake-kms|{}|{}", context["SecretId"], plaintext.expose()).into_bytes())
    }
    async fn decrypt(
        &self,
        ciphertext: &[u8],
        context: &EncryptionContext,
    ) -> RotorResult<SecretValue> {
        let text = String::from_utf8(ciphertext.to_vec())
            .map_err(|_| RotorError::candidate("not a ciphertext"))?;
        let mut parts = text.splitn(3, '|');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("fake-kms"), Some(id), Some(value))
                if context.get("SecretId").map(String::as_str) == Some(id) =>
            {
                Ok(SecretValue::new(value))
            }
            _ => Err(RotorError::candidate(
                "the candidate was encrypted for another context",
            )),
        }
    }
}

struct NoIam;

#[async_trait]
impl Iam for NoIam {
    async fn list_access_keys(&self, _: &str) -> RotorResult<Vec<AccessKeyInfo>> {
        Err(RotorError::Unsupported("no IAM here".into()))
    }
    async fn create_access_key(&self, _: &str) -> RotorResult<NewAccessKey> {
        Err(RotorError::Unsupported("no IAM here".into()))
    }
    async fn set_access_key_active(&self, _: &str, _: &str, _: bool) -> RotorResult<()> {
        Err(RotorError::Unsupported("no IAM here".into()))
    }
    async fn delete_access_key(&self, _: &str, _: &str) -> RotorResult<()> {
        Err(RotorError::Unsupported("no IAM here".into()))
    }
    async fn access_key_last_used(&self, _: &str) -> RotorResult<Option<chrono::DateTime<Utc>>> {
        Err(RotorError::Unsupported("no IAM here".into()))
    }
}

/// The vendor accepts the keys it issued; the application is healthy when the key it reads
/// (AWSCURRENT) is one the vendor accepts, unless it is told to be down.
struct World {
    store: Arc<MemStore>,
    vendor_keys: Mutex<HashSet<String>>,
    app_down: Mutex<Option<u16>>,
}

#[async_trait]
impl HttpProber for World {
    async fn send(&self, request: &ProbeRequest) -> RotorResult<ProbeAnswer> {
        let url = request.url.expose();
        let status = if url == APP_HEALTH {
            match *self.app_down.lock().unwrap() {
                Some(status) => status,
                None => {
                    let current = self.store.with_stage(SECRET, AWSCURRENT);
                    let works = current.len() == 1
                        && self.vendor_keys.lock().unwrap().contains(&current[0].1);
                    if works {
                        200
                    } else {
                        500
                    }
                }
            }
        } else if url.starts_with(VENDOR) {
            let key = request
                .headers
                .iter()
                .find(|(k, _)| k == "Authorization")
                .and_then(|(_, v)| v.expose().strip_prefix("Bearer ").map(str::to_string))
                .unwrap_or_default();
            if self.vendor_keys.lock().unwrap().contains(&key) {
                200
            } else {
                401
            }
        } else {
            return Err(RotorError::ProbeNotReady("connection refused".into()));
        };
        Ok(ProbeAnswer {
            status,
            body: "{}".into(),
        })
    }
}

#[derive(Default)]
struct MemAudit {
    records: Mutex<Vec<AuditRecord>>,
}

#[async_trait]
impl AuditSink for MemAudit {
    async fn record(&self, record: &AuditRecord) -> RotorResult<()> {
        let mut records = self.records.lock().unwrap();
        records.retain(|r| r.execution_id != record.execution_id);
        records.push(record.clone());
        Ok(())
    }
    async fn metric(&self, _: &Metric) -> RotorResult<()> {
        Ok(())
    }
}

struct Local {
    store: Arc<MemStore>,
    world: Arc<World>,
    audit: Arc<MemAudit>,
    services: Services,
}

const OLD_KEY: &str = "sk-old-0000000000000000";
const NEW_KEY: &str = "sk-new-1111111111111111";

fn local() -> Local {
    let store = Arc::new(MemStore::default());
    store.create(
        SECRET,
        &[
            ("rotor:kind", "vendor-api-key"),
            ("rotor:probe", "openai"),
            ("rotor:probe-url", VENDOR),
            ("rotor:app-health-url", APP_HEALTH),
            ("rotor:wait-propagation-seconds", "5"),
            ("rotor:wait-consumers-seconds", "30"),
        ],
        OLD_KEY,
    );
    let world = Arc::new(World {
        store: store.clone(),
        vendor_keys: Mutex::new(HashSet::from([OLD_KEY.to_string()])),
        app_down: Mutex::new(None),
    });
    let audit = Arc::new(MemAudit::default());
    let services = Services {
        store: store.clone(),
        kms: Arc::new(FakeKms),
        iam: Arc::new(NoIam),
        prober: world.clone(),
        audit: audit.clone(),
        clock: Arc::new(SystemClock),
    };
    Local {
        store,
        world,
        audit,
        services,
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Local {
    async fn rotate_input(&self, candidate: &str) -> ExecutionInput {
        let blob = FakeKms
            .encrypt(&SecretValue::new(candidate), &candidate_context(SECRET))
            .await
            .unwrap();
        ExecutionInput {
            action: Action::Rotate,
            secret_id: SECRET.into(),
            candidate_ciphertext: Some(base64(&blob)),
            requested_by: Some("github:alice".into()),
            reason: Some("test".into()),
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

    fn current(&self) -> (String, String) {
        let current = self.store.with_stage(SECRET, AWSCURRENT);
        assert_eq!(
            current.len(),
            1,
            "exactly one AWSCURRENT: {:?}",
            self.store.labels(SECRET)
        );
        current[0].clone()
    }

    /// Exactly one AWSCURRENT, no AWSPENDING, and the current version passes the real probe.
    async fn assert_one_working_current(&self) -> String {
        let (id, _) = self.current();
        assert!(
            self.store.with_stage(SECRET, AWSPENDING).is_empty(),
            "{:?}",
            self.store.labels(SECRET)
        );
        let probe = handlers::health_probe(
            &self.services,
            HealthProbeInput {
                secret_id: SECRET.into(),
                version_id: id.clone(),
                target: ProbeTarget::Candidate,
            },
        )
        .await
        .expect("AWSCURRENT works");
        assert!(probe.valid && !probe.skipped);
        id
    }

    fn audited(&self, name: &str) -> AuditRecord {
        let records = self.audit.records.lock().unwrap();
        records
            .iter()
            .find(|r| r.execution_id.ends_with(&format!(":{name}")))
            .cloned()
            .unwrap_or_else(|| panic!("no audit record for {name}: {records:?}"))
    }
}

fn entered(outcome: &Outcome) -> Vec<String> {
    trace(outcome).states
}

#[tokio::test]
async fn real_handlers_happy_rotation() {
    let l = local();
    l.world.vendor_keys.lock().unwrap().insert(NEW_KEY.into());
    let outcome = l.run(&l.rotate_input(NEW_KEY).await, "happy").await;
    assert_eq!(
        outcome.status,
        Status::Succeeded,
        "{:?} {:?} {:?}",
        outcome.error,
        outcome.cause,
        entered(&outcome)
    );
    let current = l.assert_one_working_current().await;
    assert_eq!(l.current().1, NEW_KEY);
    assert_eq!(
        current,
        handlers::token_for("arn:aws:states:us-east-1:123456789012:execution:rotation:happy")
    );
    assert_eq!(l.store.with_stage(SECRET, AWSPREVIOUS)[0].1, OLD_KEY);
    let out = outcome.output.clone().unwrap();
    assert_eq!(
        out["candidate_probe"]["proof"],
        "openai accepted the key (HTTP 200)"
    );
    assert_eq!(
        out["app_probe"]["proof"],
        "application accepted the key (HTTP 200)"
    );
    let record = l.audited("happy");
    assert_eq!(record.outcome, "rotated");
    assert_eq!(record.new_version_id.as_deref(), Some(current.as_str()));
    assert!(
        !format!("{outcome:?}{record:?}").contains(NEW_KEY),
        "a secret value leaked into the history"
    );
}

#[tokio::test]
async fn real_handlers_rejected_candidate_is_abandoned() {
    let l = local();
    let before = l.store.labels(SECRET);
    let outcome = l
        .run(
            &l.rotate_input("sk-not-issued-by-the-vendor").await,
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
    assert!(entered(&outcome).contains(&"Abandon".to_string()));
    assert!(!entered(&outcome).contains(&"Promote".to_string()));
    l.assert_one_working_current().await;
    assert_eq!(l.current().1, OLD_KEY);
    // The secret is unchanged: the staged version lost its only label.
    let after: Vec<_> = l
        .store
        .labels(SECRET)
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .collect();
    assert_eq!(after, before);
    assert_eq!(l.audited("rejected").outcome, "abandoned");
}

#[tokio::test]
async fn real_handlers_app_failure_after_promote_is_reverted() {
    let l = local();
    l.world.vendor_keys.lock().unwrap().insert(NEW_KEY.into());
    *l.world.app_down.lock().unwrap() = Some(503);
    let outcome = l.run(&l.rotate_input(NEW_KEY).await, "app-down").await;
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
    *l.world.app_down.lock().unwrap() = None;
    l.assert_one_working_current().await;
    assert_eq!(
        l.current().1,
        OLD_KEY,
        "AWSCURRENT is back on the old version"
    );
    assert_eq!(l.store.with_stage(SECRET, AWSPREVIOUS)[0].1, NEW_KEY);
    let record = l.audited("app-down");
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("rolled-back", Some("Probe.NotReady"))
    );
}

#[tokio::test]
async fn real_handlers_manual_rollback_after_rotation() {
    let l = local();
    l.world.vendor_keys.lock().unwrap().insert(NEW_KEY.into());
    let rotated = l.run(&l.rotate_input(NEW_KEY).await, "rotate-first").await;
    assert_eq!(rotated.status, Status::Succeeded, "{:?}", rotated.cause);
    let (new_id, _) = l.current();
    let input = ExecutionInput {
        action: Action::Rollback,
        secret_id: SECRET.into(),
        candidate_ciphertext: None,
        requested_by: Some("github:bob".into()),
        reason: Some("the vendor revoked the new key".into()),
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
            "MoveCurrentBack",
            "AuditManualRollback",
            "ManualRollbackDone"
        ]
    );
    let old_id = l.assert_one_working_current().await;
    assert_eq!(l.current().1, OLD_KEY);
    assert_eq!(l.store.with_stage(SECRET, AWSPREVIOUS)[0].0, new_id);
    let record = l.audited("manual");
    assert_eq!(record.outcome, "manual-rollback");
    assert_eq!(record.old_version_id.as_deref(), Some(new_id.as_str()));
    assert_eq!(record.new_version_id.as_deref(), Some(old_id.as_str()));
}

#[tokio::test]
async fn real_handlers_refuse_while_another_rotation_is_staged() {
    let l = local();
    l.store
        .put_pending(
            SECRET,
            "0d0d0d0d-0000-5000-8000-000000000009",
            &SecretValue::new("sk-someone-else"),
        )
        .await
        .unwrap();
    let outcome = l.run(&l.rotate_input(NEW_KEY).await, "second").await;
    assert_eq!(outcome.error.as_deref(), Some("Rotation.InProgress"));
    assert_eq!(
        entered(&outcome),
        ["CheckInput", "StagePending", "AuditRefused", "Refused"]
    );
    // The other execution's candidate is left alone.
    assert_eq!(
        l.store.with_stage(SECRET, AWSPENDING)[0].0,
        "0d0d0d0d-0000-5000-8000-000000000009"
    );
    assert_eq!(l.current().1, OLD_KEY);
    assert_eq!(l.audited("second").outcome, "refused");
}

#[tokio::test]
async fn local_functions_map_errors_like_the_lambda_runtime() {
    use rotor_asl::task::FunctionInvoker;
    let l = local();
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
    assert_eq!(e.error_type, "Rotation.Unsupported");
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
    let l = local();
    let input = l.rotate_input(NEW_KEY).await;
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
