//! Every transient failure of every service, in each protocol the SDK speaks, classifies as
//! `Aws.Throttled` (retried by the state machine), through the real SDK clients against a
//! loopback server: HTTP 500 and 503 with the protocol's throttling body (awsJson1_1 for Secrets
//! Manager and KMS, awsQuery XML for IAM and STS, Smithy RPC v2 CBOR for CloudWatch), connection
//! resets, and a peer that accepts the connection and never answers (cut by the timeouts of
//! `rotor_aws::load_with`). No network, no moto.

mod common;

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use common::{cbor_error, config, json_error, query_error, Behaviour, Loopback};
use rotor_aws::{AwsIam, AwsKms, AwsOptions, CloudWatchAudit, SecretsManagerStore, Sts, Timeouts};
use rotor_core::error::RotorError;
use rotor_core::ports::{Iam, Kms, Metric, SecretStore};
use rotor_core::secret::SecretValue;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// An encryption context naming `secret` (what these KMS checks need; candidates themselves
/// are sealed by `rotor_core::candidate`).
fn candidate_context(secret: &str) -> rotor_core::ports::EncryptionContext {
    std::collections::BTreeMap::from([("SecretId".to_string(), secret.to_string())])
}

/// Every call of every adapter the rotation makes, one per service and protocol.
async fn each_service(config: &SdkConfig) -> Vec<(&'static str, Result<(), RotorError>)> {
    let store = SecretsManagerStore::new(config);
    let kms = AwsKms::new(config, "alias/rotor-candidates");
    let iam = AwsIam::new(config);
    let sts = Sts::new(config);
    let audit = CloudWatchAudit::new(config);
    vec![
        (
            "Secrets Manager DescribeSecret (awsJson1_1)",
            store.describe("app/key").await.map(|_| ()),
        ),
        (
            "KMS Encrypt (awsJson1_1)",
            kms.encrypt(&SecretValue::new("v"), &candidate_context("app/key"))
                .await
                .map(|_| ()),
        ),
        (
            "IAM ListAccessKeys (awsQuery)",
            iam.list_access_keys("ci-bot").await.map(|_| ()),
        ),
        (
            "STS GetCallerIdentity (awsQuery)",
            sts.caller_identity("AKIDPROBE", &SecretValue::new("probe-secret"))
                .await
                .map(|_| ()),
        ),
        (
            "CloudWatch PutMetricData (rpc-v2-cbor)",
            rotor_core::ports::AuditSink::metric(
                &audit,
                &Metric {
                    name: "RotationSucceeded".into(),
                    value: 1.0,
                    unit: "Count".into(),
                    dimensions: BTreeMap::new(),
                    timestamp: "2026-01-02T03:04:05.000Z".into(),
                },
            )
            .await,
        ),
    ]
}

fn assert_throttled(what: &str, results: Vec<(&'static str, Result<(), RotorError>)>) {
    for (call, result) in results {
        let err = result.expect_err(&format!("{what}: {call} must fail"));
        assert_eq!(err.asl_name(), "Aws.Throttled", "{what}: {call}: {err}");
    }
}

/// The answer of `status` with each protocol's throttling body, chosen by the request (the
/// real SDK clients all talk to the one loopback endpoint).
fn throttling_answers(status: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "json",
            json_error(status, "ThrottlingException", "Rate exceeded"),
        ),
        ("query", query_error(status, "Throttling", "Rate exceeded")),
        (
            "cbor",
            cbor_error(status, "ThrottlingException", "Rate exceeded"),
        ),
    ]
}

#[tokio::test]
async fn server_faults_with_throttling_bodies_are_aws_throttled_in_every_protocol() {
    for status in ["500 Internal Server Error", "503 Service Unavailable"] {
        for (protocol, answer) in throttling_answers(status) {
            let server = Loopback::start(answer).await;
            let config = config(&server.endpoint, RetryConfig::disabled()).await;
            assert_throttled(
                &format!("{status}, {protocol} body"),
                each_service(&config).await,
            );
        }
    }
    // The services' own throttling codes at 400, in their own protocol.
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "json 400 ThrottlingException",
            json_error("400 Bad Request", "ThrottlingException", "Rate exceeded"),
        ),
        (
            "query 400 Throttling",
            query_error("400 Bad Request", "Throttling", "Rate exceeded"),
        ),
        (
            "cbor 400 ThrottlingException",
            cbor_error("400 Bad Request", "ThrottlingException", "Rate exceeded"),
        ),
        (
            "query 500 ServiceUnavailable",
            query_error("500 Internal Server Error", "ServiceUnavailable", "busy"),
        ),
        (
            "cbor 500 InternalServiceFault",
            cbor_error("500 Internal Server Error", "InternalServiceFault", "oops"),
        ),
    ];
    for (what, answer) in cases {
        let server = Loopback::start(answer).await;
        let config = config(&server.endpoint, RetryConfig::disabled()).await;
        let results = each_service(&config).await;
        // Each service reads its own protocol; the other protocols' bodies are at least not
        // mistaken for a definite answer at 5xx. At 400 only the matching protocol is asserted.
        for (call, result) in results {
            let own = (what.starts_with("json") && call.contains("awsJson1_1"))
                || (what.starts_with("query") && call.contains("awsQuery"))
                || (what.starts_with("cbor") && call.contains("cbor"));
            if own || what.contains(" 500 ") {
                let err = result.expect_err(call);
                assert_eq!(err.asl_name(), "Aws.Throttled", "{what}: {call}: {err}");
            }
        }
    }
}

#[tokio::test]
async fn the_service_message_is_kept() {
    let server = Loopback::start(query_error(
        "503 Service Unavailable",
        "Throttling",
        "Rate exceeded",
    ))
    .await;
    let cfg = config(&server.endpoint, RetryConfig::disabled()).await;
    let err = AwsIam::new(&cfg)
        .list_access_keys("ci-bot")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ListAccessKeys"), "{text}");
    assert!(text.contains("IAM user ci-bot"), "{text}");
    assert!(text.contains("Throttling: Rate exceeded"), "{text}");

    let server = Loopback::start(cbor_error(
        "503 Service Unavailable",
        "ThrottlingException",
        "Rate exceeded",
    ))
    .await;
    let cfg = config(&server.endpoint, RetryConfig::disabled()).await;
    let err = rotor_core::ports::AuditSink::metric(
        &CloudWatchAudit::new(&cfg),
        &Metric {
            name: "X".into(),
            value: 1.0,
            unit: "Count".into(),
            dimensions: BTreeMap::new(),
            timestamp: "2026-01-02T03:04:05.000Z".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("ThrottlingException: Rate exceeded"),
        "{err}"
    );
}

#[tokio::test]
async fn connection_resets_are_aws_throttled_in_every_protocol() {
    let server = Loopback::start_with(Behaviour::Reset).await;
    let config = config(&server.endpoint, RetryConfig::disabled()).await;
    assert_throttled("connection reset", each_service(&config).await);
    assert!(!server.seen().is_empty());
}

/// The SDK configuration `rotor_aws::load_with` builds (the product's timeouts), with the
/// loopback's test credentials on each client instead of the default chain's.
async fn product_config(endpoint: &str, timeouts: Timeouts) -> SdkConfig {
    let loaded = rotor_aws::load_with(
        &AwsOptions {
            endpoint_url: Some(endpoint.to_string()),
            region: Some("us-east-1".into()),
        },
        timeouts,
    )
    .await;
    let creds = aws_sdk_secretsmanager::config::Credentials::new(
        "AKIDLOOPBACK",
        "loopback-secret",
        None,
        None,
        "loopback",
    );
    loaded
        .into_builder()
        .credentials_provider(aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(creds))
        .build()
}

#[tokio::test]
async fn a_peer_that_never_answers_fails_in_bounded_time_as_aws_throttled() {
    let server = Loopback::start_with(Behaviour::BlackHole).await;
    let timeouts = Timeouts {
        connect: Duration::from_millis(500),
        read: Duration::from_millis(300),
        operation: Duration::from_millis(1500),
    };
    let config = product_config(&server.endpoint, timeouts).await;
    let started = Instant::now();
    // Bounded by the test too: without timeouts the calls would hang forever.
    let results = tokio::time::timeout(Duration::from_secs(30), each_service(&config))
        .await
        .expect("every call must end within its timeouts, not hang");
    let elapsed = started.elapsed();
    assert_throttled("black hole", results);
    // Five calls, each at most the operation timeout (1.5 s) plus scheduling slack.
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    assert!(
        server.seen().len() >= 5,
        "every call reached the peer: {}",
        server.seen().len()
    );
}
