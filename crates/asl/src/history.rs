//! History events shaped like `GetExecutionHistory`.

use crate::error::{names, StatesError};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// One event: `{"id", "previousEventId", "timestamp", "type", "<kind>EventDetails": {...}}`.
pub type HistoryEvent = Value;

/// Called with each history event as it is recorded (for live output).
pub type Observer = Arc<dyn Fn(&HistoryEvent) + Send + Sync>;

/// The key AWS uses for an event type's details.
pub fn details_key(event_type: &str) -> String {
    if event_type.ends_with("StateEntered") {
        return "stateEnteredEventDetails".into();
    }
    if event_type.ends_with("StateExited") {
        return "stateExitedEventDetails".into();
    }
    let mut key = String::with_capacity(event_type.len() + 12);
    let mut chars = event_type.chars();
    if let Some(c) = chars.next() {
        key.push(c.to_ascii_lowercase());
    }
    key.extend(chars);
    key.push_str("EventDetails");
    key
}

struct Recorded {
    at: DateTime<Utc>,
    event: Value,
}

/// The events of one execution, with the history-size quota enforced as they are added.
pub struct EventLog {
    limit: usize,
    events: Mutex<Vec<Recorded>>,
    observer: Option<Observer>,
}

impl EventLog {
    pub fn new(limit: usize, observer: Option<Observer>) -> Self {
        EventLog {
            limit,
            events: Mutex::new(Vec::with_capacity(64)),
            observer,
        }
    }

    fn record(
        &self,
        events: &mut Vec<Recorded>,
        at: DateTime<Utc>,
        previous: u64,
        ty: &str,
        details: Value,
    ) -> u64 {
        let id = events.len() as u64 + 1;
        let mut e = Map::with_capacity(5);
        e.insert("id".into(), id.into());
        e.insert("previousEventId".into(), previous.into());
        e.insert("timestamp".into(), crate::executor::timestamp(at).into());
        e.insert("type".into(), ty.into());
        if !details.is_null() {
            e.insert(details_key(ty), details);
        }
        let event = Value::Object(e);
        if let Some(observer) = &self.observer {
            observer(&event);
        }
        events.push(Recorded { at, event });
        id
    }

    /// Adds an event; fails once the execution would exceed the quota (one slot stays free for
    /// the final ExecutionFailed event, as on AWS).
    pub fn push(
        &self,
        at: DateTime<Utc>,
        previous: u64,
        ty: &str,
        details: Value,
    ) -> Result<u64, StatesError> {
        let mut events = self.events.lock().unwrap();
        if events.len() + 1 >= self.limit {
            return Err(StatesError::new(
                names::RUNTIME,
                format!(
                    "The execution reached the maximum number of history events ({}).",
                    self.limit
                ),
            ));
        }
        Ok(self.record(&mut events, at, previous, ty, details))
    }

    /// Adds the execution's closing event, which the quota always leaves room for.
    pub fn push_final(&self, at: DateTime<Utc>, previous: u64, ty: &str, details: Value) {
        let mut events = self.events.lock().unwrap();
        self.record(&mut events, at, previous, ty, details);
    }

    /// A log that continues `earlier` (a redriven execution's history so far): new events get
    /// the next ids; the observer sees only the new ones.
    pub fn resume(limit: usize, observer: Option<Observer>, earlier: Vec<HistoryEvent>) -> Self {
        let log = EventLog::new(limit, observer);
        {
            let mut events = log.events.lock().unwrap();
            for event in earlier {
                let at = event["timestamp"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_else(Utc::now);
                events.push(Recorded { at, event });
            }
        }
        log
    }

    pub fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events in time order (concurrent branches on a virtual clock can record out of
    /// order), renumbered so ids rise with time and `previousEventId` still points right.
    pub fn finish(self) -> Vec<HistoryEvent> {
        let mut recorded = self.events.into_inner().unwrap();
        let sorted = recorded.windows(2).all(|w| w[0].at <= w[1].at);
        if sorted {
            return recorded.into_iter().map(|r| r.event).collect();
        }
        recorded.sort_by_key(|r| r.at);
        let mut new_id = vec![0u64; recorded.len() + 1];
        for (i, r) in recorded.iter().enumerate() {
            let old = r.event["id"].as_u64().unwrap_or(0) as usize;
            new_id[old] = i as u64 + 1;
        }
        recorded
            .into_iter()
            .map(|mut r| {
                let id = r.event["id"].as_u64().unwrap_or(0) as usize;
                let prev = r.event["previousEventId"].as_u64().unwrap_or(0) as usize;
                r.event["id"] = new_id[id].into();
                r.event["previousEventId"] = new_id[prev].into();
                r.event
            })
            .collect()
    }
}
