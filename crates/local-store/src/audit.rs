//! The audit log, metrics (CloudWatch's stand-in) and execution histories. None of them holds a
//! value: the workflow carries ids only.

use crate::db::R;
use crate::LocalStore;
use async_trait::async_trait;
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{AuditRecord, AuditSink, Metric};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// One execution of the rotation workflow as the local executor ran it: its input, output or
/// error, and its history events (shaped like GetExecutionHistory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub execution_id: String,
    pub name: String,
    pub secret_id: String,
    pub action: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub input: serde_json::Value,
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub events: Vec<serde_json::Value>,
}

fn to_json<T: Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| RotorError::internal(format!("cannot encode the {what}: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(what: &str, key: &str, text: &str) -> R<T> {
    serde_json::from_str(text).map_err(|e| {
        RotorError::internal(format!("the stored {what} {key} is not valid: {e}")).into()
    })
}

impl LocalStore {
    /// Audit records, oldest `started_at` first; only one secret's when `secret` is given.
    pub fn audit_records(&self, secret: Option<&str>) -> Result<Vec<AuditRecord>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT execution_id, record FROM audit_records WHERE ?1 IS NULL OR secret_id = ?1
                 ORDER BY started_at, execution_id",
            )?;
            let rows = stmt
                .query_map([secret], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.iter()
                .map(|(id, text)| from_json("audit record", id, text))
                .collect()
        })
    }

    /// Metrics in the order they were put; only those named `name` when given.
    pub fn metrics(&self, name: Option<&str>) -> Result<Vec<Metric>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, metric FROM metrics WHERE ?1 IS NULL OR name = ?1 ORDER BY seq",
            )?;
            let rows = stmt
                .query_map([name], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.iter()
                .map(|(seq, text)| from_json("metric", &seq.to_string(), text))
                .collect()
        })
    }

    /// Saves an execution, replacing an earlier save of the same `execution_id`.
    pub fn save_execution(&self, record: &ExecutionRecord) -> Result<()> {
        if record.execution_id.is_empty() {
            return Err(RotorError::input(
                "an execution record needs an execution_id",
            ));
        }
        let text = to_json("execution record", record)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO executions (execution_id, secret_id, started_at, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (execution_id) DO UPDATE SET
                   secret_id = excluded.secret_id, started_at = excluded.started_at, record = excluded.record",
                params![record.execution_id, record.secret_id, record.started_at, text],
            )?;
            Ok(())
        })
    }

    /// The execution saved under `execution_id`, if any.
    pub fn load_execution(&self, execution_id: &str) -> Result<Option<ExecutionRecord>> {
        self.read(|tx| {
            let text: Option<String> = tx
                .query_row(
                    "SELECT record FROM executions WHERE execution_id = ?1",
                    [execution_id],
                    |r| r.get(0),
                )
                .optional()?;
            text.map(|t| from_json("execution", execution_id, &t))
                .transpose()
        })
    }

    /// Executions, oldest `started_at` first; only one secret's when `secret` is given.
    pub fn list_executions(&self, secret: Option<&str>) -> Result<Vec<ExecutionRecord>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT execution_id, record FROM executions WHERE ?1 IS NULL OR secret_id = ?1
                 ORDER BY started_at, execution_id",
            )?;
            let rows = stmt
                .query_map([secret], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.iter()
                .map(|(id, text)| from_json("execution", id, text))
                .collect()
        })
    }
}

#[async_trait]
impl AuditSink for LocalStore {
    /// Upsert by `execution_id`: recording an execution again keeps one record (the latest).
    async fn record(&self, record: &AuditRecord) -> Result<()> {
        if record.execution_id.is_empty() {
            return Err(RotorError::input("an audit record needs an execution_id"));
        }
        let text = to_json("audit record", record)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO audit_records (execution_id, secret_id, started_at, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (execution_id) DO UPDATE SET
                   secret_id = excluded.secret_id, started_at = excluded.started_at, record = excluded.record",
                params![record.execution_id, record.secret_id, record.started_at, text],
            )?;
            Ok(())
        })
    }

    /// PutMetricData: appended.
    async fn metric(&self, metric: &Metric) -> Result<()> {
        if !metric.value.is_finite() {
            return Err(RotorError::input(format!(
                "metric {}: the value must be a finite number",
                metric.name
            )));
        }
        let text = to_json("metric", metric)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO metrics (name, timestamp, metric) VALUES (?1, ?2, ?3)",
                params![metric.name, metric.timestamp, text],
            )?;
            Ok(())
        })
    }
}
