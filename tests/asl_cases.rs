//! The table of ASL features (`tests/asl-cases/*.json`) run on rotor's executor.
//! Each case names one feature, its input, its expected status/output/error and, where timing
//! matters, the virtual-clock offsets its history must show.

use rotor_asl::executor::Status;
use rotor_tests::cases::{load_cases, run_on_rotor, Case};
use serde_json::Value;

fn offsets(events: &[Value], types: &[&str]) -> Vec<f64> {
    let times: Vec<chrono::DateTime<chrono::Utc>> = events
        .iter()
        .filter(|e| types.contains(&e["type"].as_str().unwrap_or_default()))
        .map(|e| e["timestamp"].as_str().unwrap().parse().unwrap())
        .collect();
    times
        .iter()
        .map(|t| (*t - times[0]).num_milliseconds() as f64 / 1000.0)
        .collect()
}

fn elapsed(events: &[Value]) -> f64 {
    let t = |e: &Value| {
        e["timestamp"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    (t(events.last().unwrap()) - t(&events[0])).num_milliseconds() as f64 / 1000.0
}

fn check(case: &Case) -> Result<(), String> {
    let outcome = run_on_rotor(case);
    let expect = &case.expect;
    let status = serde_json::to_value(outcome.status).unwrap();
    let fail = |what: String| {
        Err(format!(
            "{}: {what}\noutcome: status={status} output={:?} error={:?} cause={:?}",
            case.name, outcome.output, outcome.error, outcome.cause
        ))
    };
    if status != expect["status"] {
        return fail(format!("status {status}, expected {}", expect["status"]));
    }
    if let Some(out) = expect.get("output") {
        if outcome.output.as_ref() != Some(out) {
            return fail(format!("output differs, expected {out}"));
        }
    }
    if let Some(fields) = expect.get("output_fields").and_then(Value::as_object) {
        for (k, v) in fields {
            if outcome.output.as_ref().and_then(|o| o.get(k)) != Some(v) {
                return fail(format!("output field {k} is not {v}"));
            }
        }
    }
    for (key, actual) in [("error", &outcome.error), ("cause", &outcome.cause)] {
        if let Some(e) = expect.get(key) {
            if actual.as_deref() != e.as_str() {
                return fail(format!("{key} is {actual:?}, expected {e}"));
            }
        }
    }
    if let Some(part) = expect.get("cause_contains").and_then(Value::as_str) {
        if !outcome.cause.as_deref().unwrap_or_default().contains(part) {
            return fail(format!("cause does not contain {part:?}"));
        }
    }
    if outcome.status == Status::Succeeded && outcome.output.is_none() {
        return fail("succeeded without output".into());
    }
    if let Some(secs) = expect.get("elapsed_seconds").and_then(Value::as_f64) {
        let got = elapsed(&outcome.events);
        if (got - secs).abs() > 0.001 {
            return fail(format!(
                "elapsed {got} s on the virtual clock, expected {secs}"
            ));
        }
    }
    let scheduled = offsets(
        &outcome.events,
        &["TaskScheduled", "LambdaFunctionScheduled"],
    );
    if let Some(want) = expect.get("scheduled_offsets").and_then(Value::as_array) {
        let want: Vec<f64> = want.iter().filter_map(Value::as_f64).collect();
        if scheduled != want {
            return fail(format!(
                "tasks scheduled at {scheduled:?} s, expected {want:?}"
            ));
        }
    }
    if let Some(bounds) = expect.get("retry_gaps_at_most").and_then(Value::as_array) {
        let gaps: Vec<f64> = scheduled.windows(2).map(|w| w[1] - w[0]).collect();
        if gaps.len() != bounds.len() {
            return fail(format!("{} retries, expected {}", gaps.len(), bounds.len()));
        }
        for (g, b) in gaps.iter().zip(bounds) {
            if *g < 0.0 || *g > b.as_f64().unwrap() {
                return fail(format!("retry gap {g} s outside [0, {b}]"));
            }
        }
    }
    Ok(())
}

#[test]
fn every_case_behaves_as_aws_documents() {
    let cases = load_cases();
    assert!(
        cases.len() >= 25,
        "the case table is incomplete: {} cases",
        cases.len()
    );
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
