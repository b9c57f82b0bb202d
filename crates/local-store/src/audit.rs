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

/// The status of an execution that has not ended (or whose process was killed).
pub const RUNNING: &str = "RUNNING";

/// A running execution's events are in `execution_events` until it ends.
fn with_running_events(tx: &rusqlite::Transaction<'_>, record: &mut ExecutionRecord) -> R<()> {
    if record.status != RUNNING {
        return Ok(());
    }
    let mut stmt = tx
        .prepare_cached("SELECT event FROM execution_events WHERE execution_id = ?1 ORDER BY id")?;
    let rows = stmt
        .query_map([&record.execution_id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut events = Vec::with_capacity(rows.len());
    for text in &rows {
        events.push(from_json("history event of", &record.execution_id, text)?);
    }
    record.events = events;
    Ok(())
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
        self.list_by_secret("audit_records", "audit record", secret)
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
        self.upsert_by_execution(
            "executions",
            "execution record",
            &record.execution_id,
            &record.secret_id,
            &record.started_at,
            record,
        )
    }

    /// Saves a finished (or interrupted) execution with its whole history, replacing its
    /// running record and the events written one by one, in one transaction.
    pub fn finish_execution(&self, record: &ExecutionRecord) -> Result<()> {
        let text = to_json("execution record", record)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO executions (execution_id, secret_id, started_at, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (execution_id) DO UPDATE SET
                   secret_id = excluded.secret_id, started_at = excluded.started_at, record = excluded.record",
                params![record.execution_id, record.secret_id, record.started_at, text],
            )?;
            tx.execute(
                "DELETE FROM execution_events WHERE execution_id = ?1",
                [&record.execution_id],
            )?;
            Ok(())
        })
    }

    /// Appends one history event of a running execution (its `id` orders them); written at
    /// once, so that a run killed at any moment leaves its history up to that event.
    pub fn append_execution_event(
        &self,
        execution_id: &str,
        event: &serde_json::Value,
    ) -> Result<()> {
        let id = event["id"]
            .as_i64()
            .ok_or_else(|| RotorError::internal("a history event needs a numeric id"))?;
        let text = to_json("history event", event)?;
        self.write_unsynced(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO execution_events (execution_id, id, event) VALUES (?1, ?2, ?3)",
                params![execution_id, id, text],
            )?;
            Ok(())
        })
    }

    /// The execution saved under `execution_id`, if any, with the events a running (or killed)
    /// execution has written so far.
    pub fn load_execution(&self, execution_id: &str) -> Result<Option<ExecutionRecord>> {
        self.read(|tx| {
            let text: Option<String> = tx
                .query_row(
                    "SELECT record FROM executions WHERE execution_id = ?1",
                    [execution_id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(text) = text else { return Ok(None) };
            let mut record: ExecutionRecord = from_json("execution", execution_id, &text)?;
            with_running_events(tx, &mut record)?;
            Ok(Some(record))
        })
    }

    /// Executions, oldest `started_at` first; only one secret's when `secret` is given. A
    /// running (or killed) execution carries the events it has written so far.
    pub fn list_executions(&self, secret: Option<&str>) -> Result<Vec<ExecutionRecord>> {
        let mut records: Vec<ExecutionRecord> =
            self.list_by_secret("executions", "execution", secret)?;
        if records.iter().any(|r| r.status == RUNNING) {
            self.read(|tx| {
                for r in records.iter_mut() {
                    with_running_events(tx, r)?;
                }
                Ok(())
            })?;
        }
        Ok(records)
    }

    /// The records of `table` (audit_records or executions: keyed by `execution_id`, listed by
    /// `secret_id`), oldest `started_at` first; only one secret's when `secret` is given. A stored
    /// record that does not parse is an error naming `what` and its `execution_id`.
    fn list_by_secret<T: for<'de> Deserialize<'de>>(
        &self,
        table: &'static str,
        what: &str,
        secret: Option<&str>,
    ) -> Result<Vec<T>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT execution_id, record FROM {table} WHERE ?1 IS NULL OR secret_id = ?1
                 ORDER BY started_at, execution_id"
            ))?;
            let rows = stmt
                .query_map([secret], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.iter()
                .map(|(id, text)| from_json(what, id, text))
                .collect()
        })
    }

    /// Saves `record` (an audit record or an execution record, as `what` names it) into `table`
    /// (audit_records or executions) under its keys, replacing an earlier save of the same
    /// `execution_id`, which must not be empty.
    fn upsert_by_execution<T: Serialize>(
        &self,
        table: &'static str,
        what: &str,
        execution_id: &str,
        secret_id: &str,
        started_at: &str,
        record: &T,
    ) -> Result<()> {
        if execution_id.is_empty() {
            return Err(RotorError::input(format!(
                "an {what} needs an execution_id"
            )));
        }
        let text = to_json(what, record)?;
        self.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO {table} (execution_id, secret_id, started_at, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (execution_id) DO UPDATE SET
                   secret_id = excluded.secret_id, started_at = excluded.started_at, record = excluded.record"
                ),
                params![execution_id, secret_id, started_at, text],
            )?;
            Ok(())
        })
    }
}

#[async_trait]
impl AuditSink for LocalStore {
    /// Upsert by `execution_id`: recording an execution again keeps one record (the latest).
    async fn record(&self, record: &AuditRecord) -> Result<()> {
        self.upsert_by_execution(
            "audit_records",
            "audit record",
            &record.execution_id,
            &record.secret_id,
            &record.started_at,
            record,
        )
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
