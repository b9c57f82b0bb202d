//! History events shaped like `GetExecutionHistory`.

use serde_json::Value;

/// One event: `{"id", "previousEventId", "timestamp", "type", "<type>EventDetails": {...}}`.
pub type HistoryEvent = Value;
