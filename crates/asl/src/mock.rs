//! AWS Step Functions Local's mock configuration format, so any Task can be driven without a
//! function:
//!
//! ```json
//! {"StateMachines": {"rotation": {"TestCases": {"BadCandidate": {"ProbeCandidate": "Rejected"}}}},
//!  "MockedResponses": {"Rejected": {"0": {"Throw": {"Error": "Probe.Rejected", "Cause": "401"}}},
//!                      "Flaky": {"0-1": {"Throw": {"Error": "Probe.NotReady", "Cause": "503"}},
//!                                "2": {"Return": {"StatusCode": 200, "Payload": {"ok": true}}}}}}
//! ```
//!
//! Responses are indexed by how many times the state has been invoked in this execution
//! (retries included), starting at 0. A mocked `Return` is the whole task result, as in
//! Step Functions Local (for `lambda:invoke` that includes `StatusCode` and `Payload`).
//! States the test case does not name go to the fallback handler, when there is one.

use crate::error::StatesError;
use crate::task::{TaskHandler, TaskRequest};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
enum Response {
    Return(Value),
    Throw(StatesError),
}

#[derive(Debug, Clone)]
struct Mock {
    /// (first, last) invocation index, inclusive.
    ranges: Vec<(u32, u32, Response)>,
}

pub struct MockTasks {
    by_state: HashMap<String, (String, Mock)>,
    calls: Mutex<HashMap<String, u32>>,
    fallback: Option<Arc<dyn TaskHandler>>,
}

impl MockTasks {
    /// Reads a mock config for one state machine and test case. `machine` may be `None` when
    /// the config holds exactly one state machine.
    pub fn from_config(
        config: &Value,
        machine: Option<&str>,
        test_case: &str,
        fallback: Option<Arc<dyn TaskHandler>>,
    ) -> Result<MockTasks, String> {
        let machines = config
            .get("StateMachines")
            .and_then(Value::as_object)
            .ok_or("the mock config has no \"StateMachines\" object")?;
        let (machine_name, machine_cfg) = match machine {
            Some(m) if machines.contains_key(m) => (m.to_string(), &machines[m]),
            _ if machines.len() == 1 => {
                let (k, v) = machines.iter().next().unwrap();
                (k.clone(), v)
            }
            Some(m) => {
                return Err(format!(
                    "the mock config has no state machine {m:?} (it has: {})",
                    machines.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            }
            None => return Err("the mock config holds several state machines: name one".into()),
        };
        let cases = machine_cfg
            .get("TestCases")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("state machine {machine_name:?} has no \"TestCases\" object"))?;
        let case = cases
            .get(test_case)
            .and_then(Value::as_object)
            .ok_or_else(|| {
                format!(
                    "state machine {machine_name:?} has no test case {test_case:?} (it has: {})",
                    cases.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
        let responses = config
            .get("MockedResponses")
            .and_then(Value::as_object)
            .ok_or("the mock config has no \"MockedResponses\" object")?;
        let mut by_state = HashMap::new();
        for (state, mock_name) in case {
            let mock_name = mock_name.as_str().ok_or_else(|| {
                format!("test case {test_case:?}: state {state:?} must name a mocked response")
            })?;
            let spec = responses
                .get(mock_name)
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    format!("test case {test_case:?}: no mocked response named {mock_name:?}")
                })?;
            let mut ranges = Vec::new();
            for (key, r) in spec {
                let (first, last) = parse_range(key).ok_or_else(|| {
                    format!("mocked response {mock_name:?}: {key:?} is not an invocation index like \"0\" or \"1-2\"")
                })?;
                ranges.push((
                    first,
                    last,
                    parse_response(r)
                        .map_err(|e| format!("mocked response {mock_name:?}[{key}]: {e}"))?,
                ));
            }
            by_state.insert(state.clone(), (mock_name.to_string(), Mock { ranges }));
        }
        Ok(MockTasks {
            by_state,
            calls: Mutex::new(HashMap::new()),
            fallback,
        })
    }
}

fn parse_range(key: &str) -> Option<(u32, u32)> {
    match key.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => {
            let n = key.trim().parse().ok()?;
            Some((n, n))
        }
    }
}

fn parse_response(r: &Value) -> Result<Response, String> {
    if let Some(v) = r.get("Return") {
        return Ok(Response::Return(v.clone()));
    }
    if let Some(t) = r.get("Throw") {
        let field = |k: &str| {
            t.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        return Ok(Response::Throw(StatesError::new(
            field("Error"),
            field("Cause"),
        )));
    }
    Err("expected {\"Return\": ...} or {\"Throw\": {\"Error\", \"Cause\"}}".into())
}

#[async_trait]
impl TaskHandler for MockTasks {
    async fn call(&self, request: TaskRequest) -> Result<Value, StatesError> {
        let Some((mock_name, mock)) = self.by_state.get(&request.state_name) else {
            return match &self.fallback {
                Some(f) => f.call(request).await,
                None => Err(StatesError::runtime(format!(
                    "the state '{}' is not mocked in this test case and no other task handler is configured",
                    request.state_name
                ))),
            };
        };
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let c = calls.entry(request.state_name.clone()).or_insert(0);
            let n = *c;
            *c += 1;
            n
        };
        match mock.ranges.iter().find(|(a, b, _)| (*a..=*b).contains(&n)) {
            Some((_, _, Response::Return(v))) => Ok(v.clone()),
            Some((_, _, Response::Throw(e))) => Err(e.clone()),
            None => Err(StatesError::runtime(format!(
                "mocked response {mock_name:?} has no answer for invocation {n} of state '{}'",
                request.state_name
            ))),
        }
    }
}
