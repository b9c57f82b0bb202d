//! `CloudWatchAudit::record` writes one JSON line at target `rotor::audit` (and puts a
//! metric). Its own test binary: a thread-scoped `tracing` subscriber misses events when other
//! tests in the same process touch the same callsites without one.

mod common;

use aws_config::retry::RetryConfig;
use common::{cbor_ok, config, Loopback};
use rotor_aws::CloudWatchAudit;
use rotor_core::ports::{AuditRecord, AuditSink};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn record_is_one_json_line_at_rotor_audit_and_a_metric() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = Loopback::start(cbor_ok()).await;
    let audit = CloudWatchAudit::new(&config(&server.endpoint, RetryConfig::disabled()).await);
    let record = AuditRecord {
        execution_id: "arn:aws:states:us-east-1:123456789012:execution:rotation:e1".into(),
        secret_id: "prod/openai".into(),
        kind: Some("vendor-api-key".into()),
        action: "rotate".into(),
        requested_by: Some("github:alice".into()),
        reason: None,
        old_version_id: Some("v-old".into()),
        new_version_id: Some("v-new".into()),
        outcome: "rotated".into(),
        error: None,
        started_at: "2026-01-02T03:04:05.000Z".into(),
        finished_at: "2026-01-02T03:05:05.000Z".into(),
        iam: None,
        recovery: None,
    };
    audit.record(&record).await.unwrap();
    audit.record(&record).await.unwrap();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| v["target"] == "rotor::audit")
        .collect();
    assert_eq!(lines.len(), 1, "one line per execution: {text}");
    let fields = &lines[0]["fields"];
    assert_eq!(fields["message"], "audit record");
    assert_eq!(fields["execution_id"], record.execution_id.as_str());
    assert_eq!(fields["secret_id"], "prod/openai");
    assert_eq!(fields["outcome"], "rotated");
    assert_eq!(fields["new_version_id"], "v-new");
    assert_eq!(fields["requested_by"], "github:alice");
    assert!(fields.get("reason").is_none(), "absent fields are left out");

    let seen = server.seen();
    assert_eq!(seen.len(), 1, "one AuditRecords metric");
    for text in [
        "Rotor",
        "AuditRecords",
        "Outcome",
        "rotated",
        "Action",
        "rotate",
    ] {
        assert!(
            seen[0].body_has(text),
            "the CBOR body should carry {text:?}"
        );
    }
}
