//! `rotor sfn` as a user runs it: exit codes, the --json document, human output, mocks.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rotor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rotor"))
        .args(args)
        .output()
        .expect("rotor runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rotor-sfn-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, file: &str, content: &[u8]) -> String {
    let p = dir.join(file);
    std::fs::write(&p, content).unwrap();
    p.to_string_lossy().into_owned()
}

fn counter() -> Value {
    json!({
        "Comment": "counts to $.limit",
        "StartAt": "Step",
        "States": {
            "Step": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)", "limit.$": "$.limit"}, "Next": "Loop"},
            "Loop": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThanPath": "$.limit", "Next": "Step"}], "Default": "Done"},
            "Done": {"Type": "Succeed"}
        }
    })
}

#[test]
fn validate_reports_codes_and_exit_status() {
    let dir = scratch("validate");
    let good = write(&dir, "good.asl.json", counter().to_string().as_bytes());
    let out = rotor(&["sfn", "validate", &good]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = json!({"StartAt": "Nowhere", "States": {"A": {"Type": "Pass", "Next": "Gone"}}});
    let bad = write(&dir, "bad.asl.json", bad.to_string().as_bytes());
    let out = rotor(&["sfn", "validate", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MISSING_TRANSITION_TARGET"), "{stderr}");
    assert!(stderr.contains("'A'"), "names the state: {stderr}");

    let out = rotor(&["sfn", "validate", &bad, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert!(doc["diagnostics"].as_array().unwrap().len() >= 2);
}

#[test]
fn jsonata_is_rejected_not_half_run() {
    let dir = scratch("jsonata");
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Output": "{% 1 + 1 %}", "End": true}}});
    let file = write(&dir, "jsonata.asl.json", def.to_string().as_bytes());
    for args in [
        vec!["sfn", "validate", &file],
        vec!["sfn", "run", &file, "--json"],
    ] {
        let out = rotor(&args);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("JSONata"), "{stderr}");
        assert!(
            out.stdout.is_empty(),
            "nothing ran: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn run_json_is_one_document_and_exit_codes_follow_status() {
    let dir = scratch("run");
    let file = write(&dir, "counter.asl.json", counter().to_string().as_bytes());
    let out = rotor(&[
        "sfn",
        "run",
        &file,
        "--input",
        r#"{"i": 0, "limit": 3}"#,
        "--name",
        "n1",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("exactly one JSON document");
    assert_eq!(doc["status"], "SUCCEEDED");
    assert_eq!(doc["output"], json!({"i": 3, "limit": 3}));
    assert_eq!(doc["error"], Value::Null);
    assert_eq!(doc["cause"], Value::Null);
    let events = doc["events"].as_array().unwrap();
    assert_eq!(events[0]["type"], "ExecutionStarted");
    assert_eq!(events.last().unwrap()["type"], "ExecutionSucceeded");

    let fail =
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E.x", "Cause": "c"}}});
    let ffile = write(&dir, "fail.asl.json", fail.to_string().as_bytes());
    let out = rotor(&["sfn", "run", &ffile, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "FAILED");
    assert!(doc.get("output").is_none(), "no output when failed");
    assert_eq!(doc["error"], "E.x");
    assert_eq!(doc["cause"], "c");
}

#[test]
fn bad_input_is_a_usage_error_naming_the_problem() {
    let dir = scratch("badinput");
    let file = write(&dir, "counter.asl.json", counter().to_string().as_bytes());
    let out = rotor(&["sfn", "run", &file, "--input", "{not json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--input is not valid JSON"));

    let bin = write(&dir, "input.bin", &[0x7b, 0xff, 0xfe, 0x7d]);
    let out = rotor(&["sfn", "run", &file, "--input", &format!("@{bin}")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid UTF-8"));

    let out = rotor(&["sfn", "run", &dir.join("missing.json").to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));

    let big = format!("{{\"b\": \"{}\"}}", "x".repeat(300_000));
    let bigf = write(&dir, "big.json", big.as_bytes());
    let out = rotor(&["sfn", "run", &file, "--input", &format!("@{bigf}")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("262144"));

    let out = rotor(&["sfn", "run", &file, "--test-case", "x"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--test-case needs --mock-config"
    );
}

#[test]
fn human_output_has_a_line_per_transition_then_the_result() {
    let dir = scratch("human");
    let file = write(&dir, "counter.asl.json", counter().to_string().as_bytes());
    let out = rotor(&["sfn", "run", &file, "--input", r#"{"i": 0, "limit": 2}"#]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("-> Step (Pass)").count(), 2, "{stdout}");
    assert_eq!(stdout.matches("-> Loop (Choice)").count(), 2, "{stdout}");
    assert!(stdout.contains("-> Done (Succeed)"));
    assert!(stdout.contains("status: SUCCEEDED"));
    assert!(stdout.contains("\"i\": 2"));
}

#[test]
fn mock_config_drives_retries_and_failures() {
    let dir = scratch("mock");
    let def = json!({
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${probe_arn}", "Payload.$": "$"},
                "Retry": [{"ErrorEquals": ["Probe.NotReady"], "IntervalSeconds": 5, "MaxAttempts": 3}],
                "Catch": [{"ErrorEquals": ["Probe.Rejected"], "ResultPath": "$.error", "Next": "Rejected"}],
                "OutputPath": "$.Payload",
                "End": true
            },
            "Rejected": {"Type": "Fail", "Error": "Candidate.Invalid"}
        }
    });
    let file = write(&dir, "rotation.asl.json", def.to_string().as_bytes());
    let config = json!({
        "StateMachines": {"rotation": {"TestCases": {
            "Flaky": {"Call": "NotReadyTwice"},
            "Bad": {"Call": "Rejected"}
        }}},
        "MockedResponses": {
            "NotReadyTwice": {
                "0-1": {"Throw": {"Error": "Probe.NotReady", "Cause": "503"}},
                "2": {"Return": {"StatusCode": 200, "Payload": {"valid": true}}}
            },
            "Rejected": {"0": {"Throw": {"Error": "Probe.Rejected", "Cause": "401"}}}
        }
    });
    let cfg = write(&dir, "mocks.json", config.to_string().as_bytes());
    let out = rotor(&[
        "sfn",
        "run",
        &file,
        "--mock-config",
        &cfg,
        "--test-case",
        "Flaky",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["output"], json!({"valid": true}));
    let failed = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "TaskFailed")
        .count();
    assert_eq!(failed, 2);

    let out = rotor(&[
        "sfn",
        "run",
        &file,
        "--mock-config",
        &cfg,
        "--test-case",
        "Bad",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"], "Candidate.Invalid");

    let out = rotor(&[
        "sfn",
        "run",
        &file,
        "--mock-config",
        &cfg,
        "--test-case",
        "Nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no test case \"Nope\""));
}

/// The README's example: keep it true.
#[test]
fn readme_example_runs_both_test_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachine/examples");
    let def = root.join("probe-with-retries.asl.json");
    let input = format!("@{}", root.join("probe-with-retries.input.json").display());
    let mocks = root.join("probe-with-retries.mocks.json");
    let run = |case: &str| {
        rotor(&[
            "sfn",
            "run",
            def.to_str().unwrap(),
            "--input",
            &input,
            "--mock-config",
            mocks.to_str().unwrap(),
            "--test-case",
            case,
            "--json",
        ])
    };
    let out = run("NotReadyThenValid");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["output"]["probe"], json!({"valid": true}));
    assert_eq!(doc["output"]["replicas"].as_array().unwrap().len(), 3);
    let out = run("Rejected");
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"], "Probe.Rejected");
    assert_eq!(doc["cause"], "vendor answered 401");
}

/// `rotor sfn validate` rejects each broken definition of the validator's corpus with its codes.
#[test]
fn validate_rejects_the_broken_corpus_with_the_right_codes() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../asl/tests/invalid");
    let dir = scratch("corpus");
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let file = write(
            &dir,
            path.file_name().unwrap().to_str().unwrap(),
            case["definition"].to_string().as_bytes(),
        );
        let out = rotor(&["sfn", "validate", &file, "--json"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{} must be rejected",
            path.display()
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let codes: Vec<&str> = doc["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["code"].as_str())
            .collect();
        for want in case["expect"].as_array().unwrap() {
            assert!(
                codes.contains(&want.as_str().unwrap()),
                "{}: expected {want}, got {codes:?}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "corpus too small: {checked}");
}
