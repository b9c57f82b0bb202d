//! Runs the validator over the definitions in `tests/invalid` and `tests/valid`.
//!
//! An invalid case is `{"expect": ["CODE", ...], "definition": ...}`: every expected code must be
//! reported (others may be too). A valid case is a plain definition that must give no diagnostic.
//! Every diagnostic must also be well formed: a documented code, a non-empty message, a
//! location that is a JSON Pointer into the definition, and a state name whenever the location
//! is inside a state.

use rotor_asl::validate::{validate, Diagnostic, CODES};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

fn cases(dir: &str) -> Vec<(String, Value)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir);
    let mut out = Vec::new();
    for entry in fs::read_dir(&root).unwrap_or_else(|e| panic!("reading {}: {e}", root.display())) {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        out.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            value,
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Problems with the shape of one diagnostic, if any.
fn malformed(definition: &Value, d: &Diagnostic) -> Option<String> {
    if !CODES.contains(&d.code.as_str()) {
        return Some(format!("undocumented code {}", d.code));
    }
    if d.message.trim().is_empty() {
        return Some("empty message".into());
    }
    if definition.pointer(&d.location).is_none() {
        return Some(format!(
            "location {:?} does not point into the definition",
            d.location
        ));
    }
    if d.location.starts_with("/States/") && d.state.is_none() {
        return Some(format!(
            "location {:?} is inside a state but no state is named",
            d.location
        ));
    }
    if let Some(state) = &d.state {
        let needle = format!("/States/{}", escape(state));
        let inside = d.location.match_indices(&needle).any(|(i, _)| {
            let rest = &d.location[i + needle.len()..];
            rest.is_empty() || rest.starts_with('/')
        });
        if !inside {
            return Some(format!(
                "state {state:?} but location {:?} is not inside it",
                d.location
            ));
        }
    }
    None
}

fn show(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| {
            format!(
                "    {} [{}] {}: {}",
                d.code,
                d.state.as_deref().unwrap_or("-"),
                d.location,
                d.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn invalid_definitions_report_the_expected_codes() {
    let cases = cases("invalid");
    assert!(cases.len() >= 25, "only {} invalid cases", cases.len());
    let mut failures = Vec::new();
    for (file, case) in &cases {
        let expect: Vec<&str> = case["expect"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no \"expect\" array"))
            .iter()
            .map(|c| c.as_str().expect("codes are strings"))
            .collect();
        assert!(!expect.is_empty(), "{file}: \"expect\" is empty");
        let definition = case
            .get("definition")
            .unwrap_or_else(|| panic!("{file}: no \"definition\""));
        let diags = validate(definition);
        for code in &expect {
            assert!(
                CODES.contains(code),
                "{file}: expects undocumented code {code}"
            );
            if !diags.iter().any(|d| d.code == *code) {
                failures.push(format!("{file}: expected {code}, got:\n{}", show(&diags)));
            }
        }
        for d in &diags {
            if let Some(problem) = malformed(definition, d) {
                failures.push(format!("{file}: {problem}: {d:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_definitions_have_no_diagnostics() {
    let cases = cases("valid");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for (file, definition) in &cases {
        let diags = validate(definition);
        if !diags.is_empty() {
            failures.push(format!("{file}:\n{}", show(&diags)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_corpus_covers_every_code() {
    let mut expected = BTreeSet::new();
    for (_, case) in cases("invalid") {
        for c in case["expect"].as_array().into_iter().flatten() {
            expected.insert(c.as_str().unwrap_or_default().to_string());
        }
    }
    let missing: Vec<&str> = CODES
        .iter()
        .copied()
        .filter(|c| !expected.contains(*c))
        .collect();
    assert!(missing.is_empty(), "no invalid case expects {missing:?}");
}

#[test]
fn breaking_a_valid_machine_reports_each_break() {
    // Every problem is reported, so breaking a valid machine in one place yields exactly the
    // diagnostics of that place: a single bad field must not hide or multiply others.
    let valid = cases("valid");
    let (_, base) = valid
        .iter()
        .find(|(f, _)| f == "rotation_all_states.json")
        .expect("base machine");
    let mut broken = base.clone();
    broken["States"]["CreateSecret"]["Retry"][0]["BackoffRate"] = serde_json::json!(0.5);
    broken["States"]["WaitABit"]["Seconds"] = serde_json::json!(-3);
    broken["States"]["SetAndTest"]["Branches"][0]["States"]["SetSecret"]["Next"] =
        serde_json::json!("Rotated");
    let diags = validate(&broken);
    let summary: Vec<(&str, Option<&str>)> = diags
        .iter()
        .map(|d| (d.code.as_str(), d.state.as_deref()))
        .collect();
    assert!(
        summary.contains(&("INVALID_VALUE", Some("CreateSecret"))),
        "{}",
        show(&diags)
    );
    assert!(
        summary.contains(&("INVALID_VALUE", Some("WaitABit"))),
        "{}",
        show(&diags)
    );
    assert!(
        summary.contains(&("MUTUALLY_EXCLUSIVE_FIELDS", Some("SetSecret"))),
        "{}",
        show(&diags)
    );
    assert!(
        summary.contains(&("MISSING_TRANSITION_TARGET", Some("SetSecret"))),
        "{}",
        show(&diags)
    );
    assert_eq!(diags.len(), 4, "{}", show(&diags));
}
