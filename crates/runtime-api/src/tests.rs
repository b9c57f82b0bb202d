//! The Runtime API against function processes written in bash (its `/dev/tcp`), so that each
//! behaviour of a function (answer, error, crash, hang) is one line of script.

use super::*;
use serde_json::json;

/// bash that speaks the Runtime API: `next` takes an invocation (`$id`, `$headers`, `$body`),
/// `answer KIND BODY` posts it to `.../$id/KIND`.
const PRELUDE: &str = r#"#!/usr/bin/env bash
set -u
host=${AWS_LAMBDA_RUNTIME_API%:*}; port=${AWS_LAMBDA_RUNTIME_API#*:}
next() {
    exec 3<>"/dev/tcp/$host/$port"
    printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
    id=""; headers=""
    while IFS= read -r line <&3; do
        line=${line%$'\r'}
        [[ -z $line ]] && break
        headers+="$line;"
        case ${line,,} in lambda-runtime-aws-request-id:*) id=${line#*: } ;; esac
    done
    body=$(cat <&3); exec 3<&-
}
answer() {
    exec 3<>"/dev/tcp/$host/$port"
    printf 'POST /2018-06-01/runtime/invocation/%s/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "$id" "$1" "${#2}" "$2" >&3
    cat <&3 >/dev/null; exec 3<&-
}
"#;

fn function(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("{PRELUDE}{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A directory of fake functions: `echo` answers `{"payload", "headers", "pid", "env"}`,
/// `fails` posts an error, `crashes` takes an invocation and exits 3, `hangs` takes one and
/// sleeps.
fn functions() -> (tempfile::TempDir, RuntimeApi) {
    let dir = tempfile::tempdir().unwrap();
    function(
        dir.path(),
        "echo",
        r#"while next; do
    esc=${headers//\"/}
    answer response "{\"payload\":$body,\"headers\":\"$esc\",\"pid\":$$,\"name\":\"$AWS_LAMBDA_FUNCTION_NAME\",\"extra\":\"${ROTOR_EXTRA:-}\"}"
done"#,
    );
    function(
        dir.path(),
        "fails",
        r#"while next; do answer error '{"errorType":"Probe.NotReady","errorMessage":"vendor answered 503"}'; done"#,
    );
    function(dir.path(), "crashes", "next; exit 3");
    function(dir.path(), "hangs", "next; sleep 30");
    function(
        dir.path(),
        "once",
        r#"next; answer response "{\"pid\":$$}"; exit 0"#,
    );
    std::fs::write(dir.path().join("README"), "not a function").unwrap();
    let mut options = Options::new(dir.path());
    options.timeout = Duration::from_millis(1500);
    options.logs = Logs::Discard;
    options.function_env.insert(
        "echo".into(),
        vec![("ROTOR_EXTRA".into(), "for echo".into())],
    );
    let api = RuntimeApi::new(options).unwrap();
    (dir, api)
}

#[tokio::test]
async fn a_function_answers_through_the_protocol_and_stays_warm() {
    let (_dir, api) = functions();
    assert_eq!(
        api.functions(),
        ["crashes", "echo", "fails", "hangs", "once"]
    );
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:rotor-prod-echo";
    let first = api.invoke(arn, json!({"secret_id": "s"})).await.unwrap();
    assert_eq!(first["payload"], json!({"secret_id": "s"}));
    assert_eq!(first["name"], "rotor-prod-echo");
    assert_eq!(first["extra"], "for echo");
    let headers = first["headers"].as_str().unwrap().to_ascii_lowercase();
    for header in [
        "lambda-runtime-aws-request-id: ",
        "lambda-runtime-deadline-ms: ",
        &format!("lambda-runtime-invoked-function-arn: {arn}"),
        "lambda-runtime-trace-id: root=1-",
    ] {
        assert!(headers.contains(header), "{header} in {headers}");
    }
    let second = api.invoke("echo", json!([1, 2])).await.unwrap();
    assert_eq!(second["payload"], json!([1, 2]));
    assert_eq!(second["pid"], first["pid"], "the same warm process");
    let reports = api.stop().await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].invocations, 2);
    assert!(reports[0].init_ms.is_some_and(|ms| ms > 0.0), "{reports:?}");
    assert!(
        reports[0].peak_rss_kib.is_some_and(|kib| kib > 0),
        "{reports:?}"
    );
    assert_eq!(reports[0].state, "stopped");
}

#[tokio::test]
async fn a_posted_error_is_the_functions_error_type_and_message() {
    let (_dir, api) = functions();
    let e = api.invoke("rotor-fails", json!({})).await.unwrap_err();
    assert_eq!(
        e,
        FunctionError {
            error_type: "Probe.NotReady".into(),
            error_message: "vendor answered 503".into()
        }
    );
    // An error is an answer: the process stays.
    api.invoke("rotor-fails", json!({})).await.unwrap_err();
    assert_eq!(api.reports().len(), 1);
}

#[tokio::test]
async fn a_process_that_exits_without_answering_is_runtime_exit_error_and_starts_again() {
    let (_dir, api) = functions();
    for _ in 0..2 {
        let e = api.invoke("crashes", json!({})).await.unwrap_err();
        assert_eq!(e.error_type, "Runtime.ExitError");
        assert!(
            e.error_message.starts_with("RequestId: ")
                && e.error_message
                    .ends_with(" Error: Runtime exited with error: exit status 3"),
            "{}",
            e.error_message
        );
    }
    let reports = api.reports();
    assert_eq!(reports.len(), 2, "a new process for the second invocation");
    assert!(reports.iter().all(|r| r.state == "exited"), "{reports:?}");
}

#[tokio::test]
async fn a_process_past_its_timeout_is_killed_as_sandbox_timedout() {
    let (_dir, api) = functions();
    let started = Instant::now();
    let e = api.invoke("hangs", json!({})).await.unwrap_err();
    assert_eq!(e.error_type, "Sandbox.Timedout");
    assert!(
        e.error_message
            .ends_with(" Error: Task timed out after 1.50 seconds"),
        "{}",
        e.error_message
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let reports = api.reports();
    assert_eq!(reports[0].state, "timed out");
}

#[tokio::test]
async fn unknown_functions_and_empty_directories_are_named() {
    let (dir, api) = functions();
    let e = api
        .invoke("rotor-prod-promote", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, "Lambda.ResourceNotFoundException");
    assert!(
        e.error_message.contains("crashes, echo, fails, hangs"),
        "{}",
        e.error_message
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = RuntimeApi::new(Options::new(&empty)).err().unwrap();
    assert!(e.to_string().contains("holds no executable file"), "{e}");
    let e = RuntimeApi::new(Options::new(dir.path().join("nope")))
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("cannot read the function directory"),
        "{e}"
    );
}

#[tokio::test]
async fn a_relative_directory_is_the_callers() {
    let (dir, _) = functions();
    let parent = dir.path().parent().unwrap();
    let relative = dir.path().file_name().unwrap();
    std::env::set_current_dir(parent).unwrap();
    let mut options = Options::new(relative);
    options.logs = Logs::Discard;
    let api = RuntimeApi::new(options).unwrap();
    let answer = api.invoke("echo", json!(1)).await.unwrap();
    assert_eq!(answer["payload"], 1);
}

#[tokio::test]
async fn a_process_that_exited_while_idle_is_replaced_for_the_next_invocation() {
    let (_dir, api) = functions();
    let first = api.invoke("once", json!({})).await.unwrap();
    // Give it the moment to exit after its answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while api.reports()[0].state == "running" && Instant::now() < deadline {
        let exited = {
            let instances = api.instances.lock().await;
            let i = instances.get("once").unwrap().clone();
            let done = matches!(i.child.lock().await.try_wait(), Ok(Some(_)));
            done
        };
        if exited {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = api.invoke("once", json!({})).await.unwrap();
    assert_ne!(second["pid"], first["pid"], "a new process");
    let reports = api.stop().await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(reports[0].state, "exited");
}
