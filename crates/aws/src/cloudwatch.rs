//! [`AuditSink`] on CloudWatch.
//!
//! * `metric`: PutMetricData in the namespace `Rotor` (name, value, unit, dimensions,
//!   timestamp).
//! * `record`: one structured log line through `tracing` at target [`AUDIT_TARGET`]
//!   (`rotor::audit`), every field of the [`AuditRecord`] as a field of the event (ids, names,
//!   outcome; never a value), plus a PutMetricData `AuditRecords` (Count, dimensions `Outcome`
//!   and `Action`) so the record leaves a trace in CloudWatch metrics too (best effort: the
//!   log line is the record; a failed metric is logged as a warning, not an error). Writing the record
//!   to a CloudWatch Logs group of its own would need aws-sdk-cloudwatchlogs, which rotor does
//!   not take on: in a Lambda, the JSON subscriber of `rotor-lambda` writes the event as one
//!   JSON line to stdout, which Lambda ships to the function's log group (query it with Logs
//!   Insights: `filter target = "rotor::audit"`).
//!
//! Idempotence: the trait asks that recording an execution twice keeps one record. A log line
//! cannot be taken back, so `record` remembers the execution ids it logged in this process
//! (a warm Lambda retried by Step Functions logs once), and every line carries
//! `execution_id` so readers keep one line per execution across processes.

use crate::errors::{map_sdk_error, Call};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_cloudwatch::Client;
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{AuditRecord, AuditSink, Metric};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

const SERVICE: &str = "CloudWatch";

/// rotor's metric namespace.
pub const NAMESPACE: &str = "Rotor";
/// The `tracing` target of audit records.
pub const AUDIT_TARGET: &str = "rotor::audit";
/// The metric `record` puts for every audit record.
pub const AUDIT_METRIC: &str = "AuditRecords";

/// The CloudWatch adapter.
#[derive(Debug)]
pub struct CloudWatchAudit {
    client: Client,
    namespace: String,
    logged: Mutex<HashSet<String>>,
    /// See [`CloudWatchAudit::metrics_best_effort`].
    best_effort: bool,
}

/// Whether metrics are best effort for `config`: with a custom endpoint (moto, LocalStack),
/// which may not serve CloudWatch's protocol (moto 5.2.5 answers the SDK's PutMetricData with
/// 404), a metric that cannot be put is a warning, not a failed audit step. On AWS itself it
/// fails the step, which the state machine retries.
pub fn metrics_best_effort(config: &SdkConfig) -> bool {
    config.endpoint_url().is_some()
}

impl CloudWatchAudit {
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_client(Client::new(config))
    }

    pub fn from_client(client: Client) -> Self {
        CloudWatchAudit {
            client,
            namespace: NAMESPACE.to_string(),
            logged: Mutex::new(HashSet::new()),
            best_effort: false,
        }
    }

    /// The same adapter with metrics that are best effort (see [`metrics_best_effort`]): a
    /// failed PutMetricData is logged as a warning and `metric` succeeds.
    pub fn metrics_best_effort(mut self, best_effort: bool) -> Self {
        self.best_effort = best_effort;
        self
    }

    /// The same adapter putting metrics in another namespace (tests).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn put(&self, datum: MetricDatum, name: &str) -> Result<()> {
        self.client
            .put_metric_data()
            .namespace(&self.namespace)
            .metric_data(datum)
            .send()
            .await
            .map_err(|e| {
                map_sdk_error(
                    &e,
                    Call::new(
                        SERVICE,
                        "PutMetricData",
                        &format!("metric {}/{name}", self.namespace),
                    ),
                )
            })?;
        Ok(())
    }
}

/// A CloudWatch unit from its name (`Count`, `Seconds`, ...); anything else is `Input.Invalid`.
pub fn unit(name: &str) -> Result<StandardUnit> {
    if StandardUnit::values().contains(&name) {
        Ok(StandardUnit::from(name))
    } else {
        Err(RotorError::input(format!(
            "{name:?} is not a CloudWatch unit (one of {})",
            StandardUnit::values().join(", ")
        )))
    }
}

fn timestamp(text: &str) -> Result<AwsDateTime> {
    let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
        RotorError::input(format!("metric timestamp {text:?} is not RFC 3339: {e}"))
    })?;
    Ok(AwsDateTime::from_millis(t.timestamp_millis()))
}

fn datum(
    name: &str,
    value: f64,
    unit: StandardUnit,
    dimensions: &BTreeMap<String, String>,
    at: Option<AwsDateTime>,
) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(name)
        .value(value)
        .unit(unit)
        .set_dimensions(Some(
            dimensions
                .iter()
                .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                .collect(),
        ))
        .set_timestamp(at)
        .build()
}

/// Emits the record as one event at target `rotor::audit`.
pub fn log_record(record: &AuditRecord) {
    tracing::info!(
        target: "rotor::audit",
        execution_id = %record.execution_id,
        secret_id = %record.secret_id,
        kind = record.kind.as_deref(),
        action = %record.action,
        requested_by = record.requested_by.as_deref(),
        reason = record.reason.as_deref(),
        old_version_id = record.old_version_id.as_deref(),
        new_version_id = record.new_version_id.as_deref(),
        outcome = %record.outcome,
        error = record.error.as_deref(),
        started_at = %record.started_at,
        finished_at = %record.finished_at,
        "audit record"
    );
}

#[async_trait]
impl AuditSink for CloudWatchAudit {
    async fn record(&self, record: &AuditRecord) -> Result<()> {
        if record.execution_id.is_empty() {
            return Err(RotorError::input("an audit record needs an execution_id"));
        }
        let first = self
            .logged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.execution_id.clone());
        if !first {
            return Ok(());
        }
        log_record(record);
        let dims = BTreeMap::from([
            ("Outcome".to_string(), record.outcome.clone()),
            ("Action".to_string(), record.action.clone()),
        ]);
        let at = timestamp(&record.finished_at).ok();
        let put = self
            .put(
                datum(AUDIT_METRIC, 1.0, StandardUnit::Count, &dims, at),
                AUDIT_METRIC,
            )
            .await;
        if let Err(e) = put {
            // The record is the log line, and it is written: the metric is a by-product.
            tracing::warn!(
                target: "rotor::audit",
                execution_id = %record.execution_id,
                error = %e,
                "the audit record's metric was not put"
            );
        }
        Ok(())
    }

    async fn metric(&self, metric: &Metric) -> Result<()> {
        if metric.name.is_empty() {
            return Err(RotorError::input("a metric needs a name"));
        }
        let u = unit(&metric.unit)?;
        let at = timestamp(&metric.timestamp)?;
        let put = self
            .put(
                datum(&metric.name, metric.value, u, &metric.dimensions, Some(at)),
                &metric.name,
            )
            .await;
        match put {
            Err(e) if self.best_effort => {
                tracing::warn!(target: "rotor::audit", metric = %metric.name, error = %e, "the metric was not put (best effort against a custom endpoint)");
                Ok(())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_checked() {
        assert_eq!(unit("Count").unwrap(), StandardUnit::Count);
        assert_eq!(unit("Seconds").unwrap(), StandardUnit::Seconds);
        assert_eq!(unit("Parsecs").unwrap_err().asl_name(), "Input.Invalid");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(
            timestamp("2026-01-02T03:04:05.678Z")
                .unwrap()
                .to_millis()
                .unwrap(),
            1_767_323_045_678
        );
        assert_eq!(
            timestamp("yesterday").unwrap_err().asl_name(),
            "Input.Invalid"
        );
    }
}
