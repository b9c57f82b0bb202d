//! The adapters through the real SDK clients against a loopback HTTP server that answers what
//! moto cannot: throttling, server faults, denials, dropped connections, and CloudWatch's
//! Smithy RPC v2 CBOR protocol (which moto 5.2.5 does not serve). No network, no moto.

mod common;

use aws_config::retry::RetryConfig;
use common::{cbor_ok, config, http, json_error, Loopback};
use rotor_aws::{CloudWatchAudit, SecretsManagerStore};
use rotor_core::ports::{AuditRecord, AuditSink, Metric, SecretStore};
use rotor_core::secret::Version;
use std::collections::BTreeMap;
use std::time::Duration;

async fn store_against(response: Vec<u8>) -> (Loopback, SecretsManagerStore) {
    let server = Loopback::start(response).await;
    let store = SecretsManagerStore::new(&config(&server.endpoint, RetryConfig::disabled()).await);
    (server, store)
}

#[tokio::test]
async fn throttling_is_aws_throttled_with_the_service_message() {
    let (server, store) = store_against(json_error(
        "400 Bad Request",
        "ThrottlingException",
        "Rate exceeded",
    ))
    .await;
    let err = store.describe("app/key").await.unwrap_err();
    assert_eq!(err.asl_name(), "Aws.Throttled", "{err}");
    let text = err.to_string();
    assert!(text.contains("DescribeSecret"), "{text}");
    assert!(text.contains("secret app/key"), "{text}");
    assert!(
        text.contains("ThrottlingException: Rate exceeded"),
        "{text}"
    );
    assert_eq!(server.seen().len(), 1);
    assert!(server.seen()[0]
        .header("x-amz-target")
        .is_some_and(|t| t == "secretsmanager.DescribeSecret"));
}

#[tokio::test]
async fn the_sdk_retries_throttling_before_rotor_sees_it() {
    let server = Loopback::start(json_error(
        "400 Bad Request",
        "ThrottlingException",
        "Rate exceeded",
    ))
    .await;
    let retry = RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1));
    let store = SecretsManagerStore::new(&config(&server.endpoint, retry).await);
    let err = store
        .get_value("app/key", &Version::current())
        .await
        .unwrap_err();
    assert_eq!(err.asl_name(), "Aws.Throttled");
    assert_eq!(server.seen().len(), 3, "three attempts, then the error");
    // Every attempt named the stage: never a stage-less read.
    for seen in server.seen() {
        assert!(seen.body_has(r#""VersionStage":"AWSCURRENT""#), "{seen:?}");
    }
}

#[tokio::test]
async fn not_found_is_input_invalid_naming_the_secret() {
    // moto answers 404 where AWS answers 400: the code decides, not the status.
    for status in ["400 Bad Request", "404 Not Found"] {
        let (_server, store) = store_against(json_error(
            status,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        ))
        .await;
        let err = store.describe("prod/openai").await.unwrap_err();
        assert_eq!(err.asl_name(), "Input.Invalid");
        assert_eq!(
            err.to_string(),
            "secret prod/openai does not exist (ResourceNotFoundException: Secrets Manager can't find the specified secret.)"
        );
    }
}

#[tokio::test]
async fn server_faults_are_retried_and_denials_are_not() {
    let (_s, store) = store_against(json_error(
        "500 Internal Server Error",
        "InternalServiceError",
        "oops",
    ))
    .await;
    assert_eq!(
        store.describe("a").await.unwrap_err().asl_name(),
        "Aws.Throttled"
    );
    let (_s, store) = store_against(json_error(
        "400 Bad Request",
        "AccessDeniedException",
        "User is not authorized to perform secretsmanager:DescribeSecret",
    ))
    .await;
    let err = store.describe("a").await.unwrap_err();
    assert_eq!(err.asl_name(), "Rotor.Internal");
    assert!(err.to_string().contains("not authorized"), "{err}");
}

#[tokio::test]
async fn a_refused_connection_is_a_transient_network_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let store = SecretsManagerStore::new(&config(&endpoint, RetryConfig::disabled()).await);
    let err = store.describe("app/key").await.unwrap_err();
    assert_eq!(err.asl_name(), "Aws.Throttled", "{err}");
    assert!(
        err.to_string().contains("transient network failure"),
        "{err}"
    );
}

#[tokio::test]
async fn a_dropped_answer_is_a_transient_network_failure() {
    // The server reads the request and hangs up without answering.
    let (_s, store) = store_against(Vec::new()).await;
    let err = store.describe("app/key").await.unwrap_err();
    assert_eq!(err.asl_name(), "Aws.Throttled", "{err}");
}

#[tokio::test]
async fn metric_is_put_metric_data_in_the_rotor_namespace() {
    let server = Loopback::start(cbor_ok()).await;
    let audit = CloudWatchAudit::new(&config(&server.endpoint, RetryConfig::disabled()).await);
    assert_eq!(audit.namespace(), "Rotor");
    audit
        .metric(&Metric {
            name: "RotationSucceeded".into(),
            value: 1.0,
            unit: "Count".into(),
            dimensions: BTreeMap::from([("SecretId".into(), "prod/openai".into())]),
            timestamp: "2026-01-02T03:04:05.000Z".into(),
        })
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert!(
        r.request_line
            .starts_with("POST /service/GraniteServiceVersion20100801/operation/PutMetricData "),
        "{r:?}"
    );
    assert_eq!(r.header("smithy-protocol").as_deref(), Some("rpc-v2-cbor"));
    for text in [
        "Rotor",
        "RotationSucceeded",
        "SecretId",
        "prod/openai",
        "Count",
    ] {
        assert!(r.body_has(text), "the CBOR body should carry {text:?}");
    }

    let err = audit
        .metric(&Metric {
            name: "X".into(),
            value: 1.0,
            unit: "Parsecs".into(),
            dimensions: BTreeMap::new(),
            timestamp: "2026-01-02T03:04:05.000Z".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.asl_name(), "Input.Invalid");
    assert_eq!(server.seen().len(), 1, "nothing sent for a bad unit");
}

#[tokio::test]
async fn record_survives_a_failing_metric() {
    let server = Loopback::start(http("500 Internal Server Error", &[], b"")).await;
    let audit = CloudWatchAudit::new(&config(&server.endpoint, RetryConfig::disabled()).await);
    let record = AuditRecord {
        execution_id: "e2".into(),
        secret_id: "s".into(),
        kind: None,
        action: "rotate".into(),
        requested_by: None,
        reason: None,
        old_version_id: None,
        new_version_id: None,
        outcome: "abandoned".into(),
        error: Some("Probe.Rejected".into()),
        started_at: "2026-01-02T03:04:05.000Z".into(),
        finished_at: "2026-01-02T03:04:06.000Z".into(),
        iam: None,
        recovery: None,
    };
    audit.record(&record).await.unwrap();
    assert_eq!(server.seen().len(), 1);
}
