//! Store selection and candidate size limits, through the binary.

use std::io::Write;
use std::process::{Command, Stdio};

fn rotor(store: &std::path::Path, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rotor-store-flags-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_mistyped_store_is_an_error_not_a_new_empty_store() {
    let dir = scratch("missing");
    for args in [
        vec!["secret", "list"],
        vec!["history"],
        vec!["audit"],
        vec!["rotate", "--reason", "test", "--secret", "x"],
    ] {
        let out = rotor(&dir, &args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("there is no rotor store at"),
            "{args:?}"
        );
        assert!(!dir.exists(), "{args:?} created the store");
    }
}

#[test]
fn a_candidate_over_the_kms_limit_is_refused_up_front() {
    let dir = scratch("kms-limit");
    let out = rotor(
        &dir,
        &[
            "secret",
            "create",
            "s",
            "--kind",
            "vendor-api-key",
            "--probe",
            "openai",
            "--value-stdin",
        ],
        Some(b"first-value-123"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let big = vec![b'k'; 4097];
    let out = rotor(
        &dir,
        &[
            "rotate",
            "--reason",
            "test",
            "--secret",
            "s",
            "--candidate-stdin",
        ],
        Some(&big),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("candidate is 4097 bytes") && stderr.contains("KMS"),
        "{stderr}"
    );
    let out = rotor(&dir, &["history", "--json"], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[]",
        "nothing ran"
    );
}

/// An AWS that cannot be reached is not the caller's mistake: exit 1 (try again later), not 2,
/// and the message keeps the error's name.
#[test]
fn an_unreachable_aws_is_a_failure_not_a_usage_error() {
    // A loopback port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = scratch("unreachable");
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .args([
            "--store",
            dir.to_str().unwrap(),
            "--backend",
            "aws",
            "--region",
            "us-east-1",
        ])
        .args(["--endpoint-url", &endpoint, "secret", "list"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("ROTOR_AWS_OPERATION_TIMEOUT_SECONDS", "3")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Aws.Throttled") && stderr.contains("ListSecrets"),
        "{stderr}"
    );
}
