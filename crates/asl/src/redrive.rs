//! Where an interrupted execution goes on: Step Functions' redrive rule ("restart from the state
//! that did not succeed; completed states are not re-run") read off a recorded history.
//!
//! The history is the one the executor writes (GetExecutionHistory-shaped). The point is found
//! from the execution's last top-level `*StateEntered` event:
//!
//! * the state never exited: it is entered again with the input it had (a Task's work may have
//!   been done: Tasks run again must be idempotent, as they must be under Retry anyway);
//! * it exited: the next state is entered with its output. For a Task, Parallel or Map that
//!   failed into a Catcher, "next" is the Catcher's `Next` (the error is in the last failure
//!   event); a Choice or Pass is entered again instead, since it has no effect and choosing again
//!   from the same input gives the same answer; so is a state that ends the execution (Succeed,
//!   Fail, `End`), which then writes the execution's closing event.

use crate::definition::{Kind, StateMachine};
use crate::error::StatesError;
use crate::history::HistoryEvent;
use serde_json::Value;

/// The state to enter and its raw input.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumePoint {
    pub state: String,
    pub input: Value,
}

/// Event types that close an execution: such an execution cannot be redriven here.
const FINAL: &[&str] = &["ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut"];

fn text_field(event: &HistoryEvent, key: &str, field: &str) -> Option<String> {
    event.get(key)?.get(field)?.as_str().map(str::to_string)
}

fn parse(text: Option<String>, what: &str) -> Result<Value, String> {
    let text = text.ok_or_else(|| format!("the history has no {what}"))?;
    serde_json::from_str(&text).map_err(|e| format!("the recorded {what} is not JSON: {e}"))
}

/// The failure a Task/Parallel/Map state ended with before it exited, if it did: the error of
/// the last `*Failed`/`*TimedOut` event after its entry, unless a success came after it (a
/// retried attempt that worked).
fn caught_error(events: &[HistoryEvent]) -> Option<StatesError> {
    for e in events.iter().rev() {
        let ty = e["type"].as_str().unwrap_or_default();
        if ty.ends_with("Succeeded") {
            return None;
        }
        if ty.ends_with("Failed") || ty.ends_with("TimedOut") {
            let details = e
                .as_object()?
                .iter()
                .find(|(k, _)| k.ends_with("EventDetails"))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            let error = details["error"].as_str().unwrap_or_default();
            let error = if error.is_empty() && ty.ends_with("TimedOut") {
                crate::error::names::TIMEOUT
            } else {
                error
            };
            return Some(StatesError::new(
                error,
                details["cause"].as_str().unwrap_or_default(),
            ));
        }
    }
    None
}

/// Where `events` (an execution of `machine` started with `execution_input`) goes on.
pub fn resume_point(
    machine: &StateMachine,
    execution_input: &Value,
    events: &[HistoryEvent],
) -> Result<ResumePoint, String> {
    if let Some(e) = events
        .iter()
        .find(|e| FINAL.contains(&e["type"].as_str().unwrap_or_default()))
    {
        return Err(format!(
            "the execution has ended ({}): there is nothing to resume",
            e["type"].as_str().unwrap_or_default()
        ));
    }
    let entered = events.iter().enumerate().rev().find(|(_, e)| {
        e["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("StateEntered"))
            && text_field(e, "stateEnteredEventDetails", "name")
                .is_some_and(|n| machine.states.contains_key(&n))
    });
    let Some((at, entered)) = entered else {
        return Ok(ResumePoint {
            state: machine.start_at.clone(),
            input: execution_input.clone(),
        });
    };
    let name = text_field(entered, "stateEnteredEventDetails", "name").unwrap_or_default();
    let state = &machine.states[&name];
    let again = || -> Result<ResumePoint, String> {
        Ok(ResumePoint {
            state: name.clone(),
            input: parse(
                text_field(entered, "stateEnteredEventDetails", "input"),
                &format!("input of state {name}"),
            )?,
        })
    };
    let after = &events[at + 1..];
    let exited = after.iter().position(|e| {
        e["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("StateExited"))
            && text_field(e, "stateExitedEventDetails", "name").as_deref() == Some(&name)
    });
    let Some(exit) = exited else {
        return again();
    };
    let output = parse(
        text_field(&after[exit], "stateExitedEventDetails", "output"),
        &format!("output of state {name}"),
    )?;
    let next = match &state.kind {
        // No effect: entered again, it decides (or ends the execution) the same way.
        Kind::Choice { .. } | Kind::Pass { .. } | Kind::Succeed | Kind::Fail { .. } => {
            return again()
        }
        Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map { .. } => {
            match caught_error(&after[..exit]) {
                Some(error) => state
                    .handling
                    .catch
                    .iter()
                    .find(|c| c.error_equals.iter().any(|n| error.matched_by(n)))
                    .map(|c| c.next.clone())
                    .ok_or_else(|| {
                        format!(
                            "state {name} exited after {} but no Catcher takes it",
                            error.error
                        )
                    })?,
                // An end state that exited: entered again, it ends the execution.
                None => match state.next.clone() {
                    Some(n) => n,
                    None => return again(),
                },
            }
        }
        _ => match state.next.clone() {
            Some(n) => n,
            None => return again(),
        },
    };
    Ok(ResumePoint {
        state: next,
        input: output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn machine() -> StateMachine {
        StateMachine::from_json(
            &json!({
                "StartAt": "Work",
                "States": {
                    "Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                             "Catch": [{"ErrorEquals": ["Bad"], "Next": "Undo"}], "Next": "Pause"},
                    "Pause": {"Type": "Wait", "Seconds": 5, "Next": "Pick"},
                    "Pick": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Done"}], "Default": "Undo"},
                    "Undo": {"Type": "Pass", "End": true},
                    "Done": {"Type": "Succeed"}
                }
            })
            .to_string(),
        )
        .unwrap()
    }

    fn entered(name: &str, input: Value) -> Value {
        json!({"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name, "input": input.to_string()}})
    }

    fn exited(name: &str, output: Value) -> Value {
        json!({"type": "TaskStateExited", "stateExitedEventDetails": {"name": name, "output": output.to_string()}})
    }

    fn point(events: &[Value]) -> Result<ResumePoint, String> {
        resume_point(&machine(), &json!({"x": 1}), events)
    }

    #[test]
    fn nothing_entered_starts_at_the_start() {
        let p = point(&[json!({"type": "ExecutionStarted"})]).unwrap();
        assert_eq!((p.state.as_str(), p.input), ("Work", json!({"x": 1})));
    }

    #[test]
    fn a_state_that_did_not_exit_is_entered_again_with_its_input() {
        let p = point(&[
            entered("Work", json!({"x": 1})),
            json!({"type": "TaskScheduled"}),
        ])
        .unwrap();
        assert_eq!((p.state.as_str(), p.input), ("Work", json!({"x": 1})));
    }

    #[test]
    fn a_completed_task_is_not_run_again() {
        let events = [
            entered("Work", json!({"x": 1})),
            json!({"type": "TaskSucceeded"}),
            exited("Work", json!({"x": 1, "done": true})),
        ];
        let p = point(&events).unwrap();
        assert_eq!(
            (p.state.as_str(), p.input),
            ("Pause", json!({"x": 1, "done": true}))
        );
    }

    #[test]
    fn a_caught_failure_goes_to_its_catcher() {
        let events = [
            entered("Work", json!({"x": 1})),
            json!({"type": "TaskFailed", "taskFailedEventDetails": {"error": "Bad", "cause": "c"}}),
            exited("Work", json!({"Error": "Bad"})),
        ];
        assert_eq!(point(&events).unwrap().state, "Undo");
        // A failure that a retry then overcame is not a catch.
        let events = [
            entered("Work", json!({"x": 1})),
            json!({"type": "TaskFailed", "taskFailedEventDetails": {"error": "Bad"}}),
            json!({"type": "TaskSucceeded"}),
            exited("Work", json!({"x": 1})),
        ];
        assert_eq!(point(&events).unwrap().state, "Pause");
    }

    #[test]
    fn a_choice_chooses_again_and_an_end_state_ends_again() {
        let events = [
            entered("Pick", json!({"x": 1})),
            exited("Pick", json!({"x": 1})),
        ];
        assert_eq!(point(&events).unwrap().state, "Pick");
        let events = [entered("Undo", json!({})), exited("Undo", json!({}))];
        assert_eq!(point(&events).unwrap().state, "Undo");
    }

    #[test]
    fn an_ended_execution_is_not_resumed() {
        let e = point(&[json!({"type": "ExecutionSucceeded"})]).unwrap_err();
        assert!(e.contains("has ended"), "{e}");
    }
}
