//! An independent check of the definitions rotor accepts: every definition in the feature
//! table, the validator's valid corpus and `statemachine/` must also pass asl-validator (npm,
//! installed by `scripts/test`), so rotor's validator is never the only judge of what is ASL.

use rotor_asl::validate::validate;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.to_string_lossy().ends_with(".json") {
            out.push(p);
        }
    }
}

/// The definitions to check: a case file holds one under "definition"; other files are one.
fn definitions() -> Vec<(String, Value)> {
    let mut files = Vec::new();
    json_files(&repo().join("tests/asl-cases"), &mut files);
    json_files(&repo().join("crates/asl/tests/valid"), &mut files);
    json_files(&repo().join("statemachine"), &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let def = v.get("definition").cloned().unwrap_or(v);
            // Mock configs and inputs next to state machines are not definitions.
            def.get("States")
                .is_some()
                .then(|| (p.strip_prefix(repo()).unwrap().display().to_string(), def))
        })
        .collect()
}

#[test]
fn every_definition_rotor_accepts_passes_asl_validator() {
    let validator = std::env::var("ROTOR_ASL_VALIDATOR")
        .expect("ROTOR_ASL_VALIDATOR is not set: run the tests with scripts/test, which installs asl-validator");
    let defs = definitions();
    assert!(defs.len() >= 30, "found only {} definitions", defs.len());
    let dir = std::env::temp_dir().join(format!("rotor-asl-validator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One asl-validator process for all files: node starts slowly. Its report names each file.
    let mut command = Command::new(&validator);
    for (name, def) in &defs {
        assert!(
            validate(def).is_empty(),
            "{name}: rotor rejects it: {:?}",
            validate(def)
        );
        let file = dir.join(name.replace('/', "__"));
        std::fs::write(&file, def.to_string()).unwrap();
        command.arg("--json-path").arg(&file);
    }
    let out = command.output().expect("asl-validator runs");
    assert!(
        out.status.success(),
        "asl-validator rejects:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
