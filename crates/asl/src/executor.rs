//! Runs a [`StateMachine`](crate::definition::StateMachine).

use crate::history::HistoryEvent;
use crate::task::TaskHandler;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

/// Called with each history event as it is recorded (for live output).
pub type Observer = Arc<dyn Fn(&HistoryEvent) + Send + Sync>;

pub struct RunOptions {
    /// Execution name (`$$.Execution.Name`); also the last part of the execution ARN.
    pub name: String,
    /// State machine name (`$$.StateMachine.Name`).
    pub state_machine_name: String,
    pub handler: Arc<dyn TaskHandler>,
    /// Really sleep for Waits and retry intervals instead of advancing a virtual clock.
    pub real_time: bool,
    /// Seed for jitter, States.MathRandom without seed and States.UUID; random when `None`.
    pub seed: Option<u64>,
    /// Start time of the virtual clock; now when `None`.
    pub start_time: Option<DateTime<Utc>>,
    pub observer: Option<Observer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub events: Vec<HistoryEvent>,
}
