//! Static checks of a definition, reported like ValidateStateMachineDefinition.
//!
//! [`validate`] walks the whole definition (nested Parallel branches and Map processors
//! included, each as its own graph) and reports *every* problem it finds, not just the first.
//! Each [`Diagnostic`] carries a stable code, the state it is in (when it is in one) and a
//! JSON Pointer to the place in the definition (`/States/Foo/Retry/0/BackoffRate`; a missing
//! field points at the object that lacks it). An empty list means rotor can run the definition.
//!
//! # Codes
//!
//! Where ValidateStateMachineDefinition has a specific code for a problem, the same code is
//! used (marked *AWS*). AWS reports most other problems under the catch-all
//! `SCHEMA_VALIDATION_FAILED`; rotor splits those into the finer codes below (AWS equivalent in
//! parentheses). rotor-only codes describe definitions AWS accepts but rotor cannot run.
//!
//! | code | meaning |
//! |---|---|
//! | `MISSING_DESCRIPTION` | *AWS.* The definition is `null`. |
//! | `INVALID_DEFINITION` | The definition is not a JSON object (`SCHEMA_VALIDATION_FAILED`). |
//! | `MISSING_REQUIRED_FIELD` | A required field is absent: `StartAt`, `States`, `Type`, `Resource`, `Choices`, `Branches`, `ItemProcessor`, `ErrorEquals`, a Catcher's or Choice rule's `Next`, a Wait's duration (`SCHEMA_VALIDATION_FAILED`). |
//! | `EMPTY_FIELD` | `States`, `Choices`, `Branches` or `ErrorEquals` is empty (`SCHEMA_VALIDATION_FAILED`). |
//! | `INVALID_FIELD_TYPE` | A field has the wrong JSON type (`SCHEMA_VALIDATION_FAILED`). |
//! | `FIELD_NOT_SUPPORTED` | A field this state type (or the top level, a branch, a Retrier, a Catcher) does not have, e.g. `Retry` on Pass, `Next` on Succeed; also the JSONata-only `Arguments`/`Output` (`SCHEMA_VALIDATION_FAILED`). |
//! | `MUTUALLY_EXCLUSIVE_FIELDS` | Fields that exclude each other: `Next` + `End`, `X` + `XPath` (TimeoutSeconds, HeartbeatSeconds, Error, Cause, MaxConcurrency, ...), more than one Wait duration, `ItemProcessor` + `Iterator`, `ItemSelector` + `Parameters` (`SCHEMA_VALIDATION_FAILED`). |
//! | `INVALID_VALUE` | A value out of range or not one of the allowed values: Retrier numbers and `JitterStrategy`, negative `MaxConcurrency`, non-positive timeouts, `HeartbeatSeconds` >= `TimeoutSeconds`, a `Timestamp` that is not RFC 3339, an unknown `QueryLanguage`, ... (`SCHEMA_VALIDATION_FAILED`). |
//! | `INVALID_STATE_TYPE` | `Type` is not one of the eight state types (`SCHEMA_VALIDATION_FAILED`). |
//! | `INVALID_STATE_NAME` | *AWS.* A state name is empty or longer than 80 characters. |
//! | `DUPLICATE_STATE_NAME` | *AWS.* Two states share a name anywhere in the definition, nested graphs included. |
//! | `MISSING_TRANSITION_TARGET` | *AWS.* `StartAt`, `Next`, `Default`, a Choice rule's or a Catcher's `Next` names no state of its own graph (a transition may not leave or enter a branch); and, as AWS reports it, a state no transition reaches ("is not reachable"). |
//! | `MISSING_END_STATE` | *AWS.* A graph (the machine, a branch, a Map processor) has no terminal state. |
//! | `MISSING_NEXT_OR_END` | A Pass/Task/Wait/Parallel/Map state has neither `Next` nor `"End": true` (`SCHEMA_VALIDATION_FAILED`). |
//! | `INVALID_STATES_ALL` | `States.ALL` is not alone in its `ErrorEquals` or not in the last Retrier/Catcher (`SCHEMA_VALIDATION_FAILED`). |
//! | `INVALID_PATH` | A path field, a Choice `Variable`/`...Path` operand or a `.$` template value is not a valid JSONPath, or not a reference path where one is required (`ResultPath`, `SecondsPath`, ...) (`SCHEMA_VALIDATION_FAILED`). |
//! | `INVALID_INTRINSIC` | A `.$` template value, `ErrorPath` or `CausePath` looks like an intrinsic function call but does not parse as one (`SCHEMA_VALIDATION_FAILED`). |
//! | `INVALID_CHOICE_RULE` | A Choice rule that does not parse (operators, operand types, nesting) (`SCHEMA_VALIDATION_FAILED`). |
//! | `INVALID_RESOURCE` | *AWS.* A Task's `Resource` is not an ARN. Terraform-style `${...}` placeholders are accepted. |
//! | `UNSUPPORTED_QUERY_LANGUAGE` | rotor only. `QueryLanguage: "JSONata"` (top level or on a state): rotor's executor only runs JSONPath. States in JSONata mode get only graph checks. |
//! | `UNSUPPORTED_FEATURE` | rotor only. A valid ASL field rotor's executor does not implement: `Assign` (workflow variables), `ItemReader`, `ResultWriter`, `ItemBatcher`, `ToleratedFailure...` on Map. |
//!
//! The list is also available as [`CODES`]. AWS's warnings (`NO_DOLLAR`, `NO_PATH`,
//! `PASS_RESULT_IS_STATIC`) are not reported: a diagnostic here always means "will not run".
//! Duplicate keys inside one JSON object cannot be seen here (the parser keeps the last one).

use crate::path::{kind_name, Path};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};

/// One problem found in a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Stable code, e.g. `MISSING_TRANSITION_TARGET` (see the module documentation).
    pub code: String,
    /// The state the problem is in, when it is in one (nested states use their own name; a
    /// problem of a nested graph itself, such as a branch without `StartAt`, names the
    /// Parallel or Map state that holds it).
    pub state: Option<String>,
    /// Where in the definition, as a JSON Pointer, e.g. `/States/Foo/Retry/0/BackoffRate`.
    /// A missing field points at the object that should hold it; `""` is the whole definition.
    pub location: String,
    pub message: String,
}

pub const MISSING_DESCRIPTION: &str = "MISSING_DESCRIPTION";
pub const INVALID_DEFINITION: &str = "INVALID_DEFINITION";
pub const MISSING_REQUIRED_FIELD: &str = "MISSING_REQUIRED_FIELD";
pub const EMPTY_FIELD: &str = "EMPTY_FIELD";
pub const INVALID_FIELD_TYPE: &str = "INVALID_FIELD_TYPE";
pub const FIELD_NOT_SUPPORTED: &str = "FIELD_NOT_SUPPORTED";
pub const MUTUALLY_EXCLUSIVE_FIELDS: &str = "MUTUALLY_EXCLUSIVE_FIELDS";
pub const INVALID_VALUE: &str = "INVALID_VALUE";
pub const INVALID_STATE_TYPE: &str = "INVALID_STATE_TYPE";
pub const INVALID_STATE_NAME: &str = "INVALID_STATE_NAME";
pub const DUPLICATE_STATE_NAME: &str = "DUPLICATE_STATE_NAME";
pub const MISSING_TRANSITION_TARGET: &str = "MISSING_TRANSITION_TARGET";
pub const MISSING_END_STATE: &str = "MISSING_END_STATE";
pub const MISSING_NEXT_OR_END: &str = "MISSING_NEXT_OR_END";
pub const INVALID_STATES_ALL: &str = "INVALID_STATES_ALL";
pub const INVALID_PATH: &str = "INVALID_PATH";
pub const INVALID_INTRINSIC: &str = "INVALID_INTRINSIC";
pub const INVALID_CHOICE_RULE: &str = "INVALID_CHOICE_RULE";
pub const INVALID_RESOURCE: &str = "INVALID_RESOURCE";
pub const UNSUPPORTED_QUERY_LANGUAGE: &str = "UNSUPPORTED_QUERY_LANGUAGE";
pub const UNSUPPORTED_FEATURE: &str = "UNSUPPORTED_FEATURE";

/// Every code [`validate`] can report.
pub const CODES: &[&str] = &[
    MISSING_DESCRIPTION,
    INVALID_DEFINITION,
    MISSING_REQUIRED_FIELD,
    EMPTY_FIELD,
    INVALID_FIELD_TYPE,
    FIELD_NOT_SUPPORTED,
    MUTUALLY_EXCLUSIVE_FIELDS,
    INVALID_VALUE,
    INVALID_STATE_TYPE,
    INVALID_STATE_NAME,
    DUPLICATE_STATE_NAME,
    MISSING_TRANSITION_TARGET,
    MISSING_END_STATE,
    MISSING_NEXT_OR_END,
    INVALID_STATES_ALL,
    INVALID_PATH,
    INVALID_INTRINSIC,
    INVALID_CHOICE_RULE,
    INVALID_RESOURCE,
    UNSUPPORTED_QUERY_LANGUAGE,
    UNSUPPORTED_FEATURE,
];

/// Every problem in the definition; empty when it is valid.
pub fn validate(definition: &Value) -> Vec<Diagnostic> {
    let mut v = Validator {
        out: Vec::new(),
        all_names: HashSet::new(),
        seen: HashMap::new(),
    };
    match definition {
        Value::Null => v.push(
            MISSING_DESCRIPTION,
            None,
            "",
            "the definition is null".into(),
        ),
        Value::Object(_) => {
            collect_names(definition, &mut v.all_names);
            v.graph(definition, "", None, Lang::JsonPath, Graph::Top);
        }
        other => v.push(
            INVALID_DEFINITION,
            None,
            "",
            format!(
                "the definition must be a JSON object, not {}",
                kind_name(other)
            ),
        ),
    }
    v.out
}

const STATE_TYPES: &[&str] = &[
    "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
];

/// Fields every state may have.
const COMMON_FIELDS: &[&str] = &["Type", "Comment", "QueryLanguage"];

/// Fields of a state type (JSONPath query language), besides [`COMMON_FIELDS`].
#[rustfmt::skip]
fn type_fields(ty: &str) -> &'static [&'static str] {
    match ty {
        "Pass" => &["InputPath", "OutputPath", "Next", "End", "ResultPath", "Parameters", "Result", "Assign"],
        "Task" => &[
            "InputPath", "OutputPath", "Next", "End", "ResultPath", "Parameters", "ResultSelector", "Retry",
            "Catch", "Resource", "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds",
            "HeartbeatSecondsPath", "Credentials", "Assign",
        ],
        "Choice" => &["InputPath", "OutputPath", "Choices", "Default", "Assign"],
        "Wait" => &[
            "InputPath", "OutputPath", "Next", "End", "Seconds", "SecondsPath", "Timestamp", "TimestampPath",
            "Assign",
        ],
        "Succeed" => &["InputPath", "OutputPath"],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &[
            "InputPath", "OutputPath", "Next", "End", "ResultPath", "Parameters", "ResultSelector", "Retry",
            "Catch", "Branches", "Assign",
        ],
        "Map" => &[
            "InputPath", "OutputPath", "Next", "End", "ResultPath", "Parameters", "ResultSelector", "Retry",
            "Catch", "ItemProcessor", "Iterator", "ItemsPath", "ItemSelector", "MaxConcurrency",
            "MaxConcurrencyPath", "ItemReader", "ResultWriter", "ItemBatcher", "ToleratedFailureCount",
            "ToleratedFailureCountPath", "ToleratedFailurePercentage", "ToleratedFailurePercentagePath",
            "Label", "Assign",
        ],
        _ => &[],
    }
}

/// Fields that only exist in the JSONata query language.
const JSONATA_ONLY: &[&str] = &["Arguments", "Output"];

/// Valid ASL fields that rotor's executor does not implement.
const UNSUPPORTED_FIELDS: &[(&str, &str)] = &[
    (
        "Assign",
        "workflow variables (Assign) are not implemented by rotor's executor",
    ),
    (
        "ItemReader",
        "a Map ItemReader (distributed map reading from S3) is not implemented by rotor's executor",
    ),
    (
        "ResultWriter",
        "a Map ResultWriter (distributed map writing to S3) is not implemented by rotor's executor",
    ),
    (
        "ItemBatcher",
        "Map item batching (ItemBatcher) is not implemented by rotor's executor",
    ),
    (
        "ToleratedFailureCount",
        "Map failure tolerance is not implemented by rotor's executor",
    ),
    (
        "ToleratedFailureCountPath",
        "Map failure tolerance is not implemented by rotor's executor",
    ),
    (
        "ToleratedFailurePercentage",
        "Map failure tolerance is not implemented by rotor's executor",
    ),
    (
        "ToleratedFailurePercentagePath",
        "Map failure tolerance is not implemented by rotor's executor",
    ),
];

/// AWS's largest value for most integer fields (seconds, attempts).
const MAX_INT: i64 = 99_999_999;
/// AWS's largest MaxDelaySeconds (366 days).
const MAX_DELAY: i64 = 31_622_400;
/// AWS's longest state name, in characters.
const MAX_STATE_NAME: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    JsonPath,
    JsonAta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Graph {
    Top,
    Branch,
    ItemProcessor,
    Iterator,
}

impl Graph {
    fn describe(self) -> &'static str {
        match self {
            Graph::Top => "the state machine",
            Graph::Branch => "this Parallel branch",
            Graph::ItemProcessor => "this Map ItemProcessor",
            Graph::Iterator => "this Map Iterator",
        }
    }
}

/// A transition out of a state: its target name, where it is written and which field it is.
struct Target {
    name: String,
    location: String,
    field: &'static str,
}

#[derive(Default)]
struct StateInfo {
    targets: Vec<Target>,
    terminal: bool,
}

struct Validator {
    out: Vec<Diagnostic>,
    /// Every state name in the definition, nested graphs included.
    all_names: HashSet<String>,
    /// First location of each state name, to report duplicates.
    seen: HashMap<String, String>,
}

/// Escapes a key for a JSON Pointer (RFC 6901).
fn esc(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn at(loc: &str, key: &str) -> String {
    format!("{loc}/{}", esc(key))
}

fn at_index(loc: &str, i: usize) -> String {
    format!("{loc}/{i}")
}

/// Collects every state name, nested graphs included (for "a transition may not leave a branch").
fn collect_names(graph: &Value, names: &mut HashSet<String>) {
    let Some(states) = graph.get("States").and_then(Value::as_object) else {
        return;
    };
    for (name, state) in states {
        names.insert(name.clone());
        if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
            for b in branches {
                collect_names(b, names);
            }
        }
        for field in ["ItemProcessor", "Iterator"] {
            if let Some(p) = state.get(field) {
                collect_names(p, names);
            }
        }
    }
}

/// Whether a `.$` value, ErrorPath or CausePath is meant as an intrinsic function call.
fn looks_like_intrinsic(text: &str) -> bool {
    crate::intrinsic::Intrinsic::looks_like_call(text)
}

fn parse_intrinsic(text: &str) -> Result<(), String> {
    crate::intrinsic::Intrinsic::parse(text).map(|_| ())
}

/// Whether a Task's Resource is acceptable: an ARN (`arn:partition:service:region:account:rest`)
/// or a string holding a Terraform-style `${...}` placeholder, resolved before deployment.
fn resource_ok(resource: &str) -> Result<(), String> {
    if resource.contains("${") {
        return Ok(());
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    if parts.len() < 6
        || parts[0] != "arn"
        || parts[1].is_empty()
        || parts[2].is_empty()
        || parts[5].is_empty()
    {
        return Err(format!(
            "Resource {resource:?} is not an ARN (arn:partition:service:region:account:resource)"
        ));
    }
    Ok(())
}

impl Validator {
    fn push(&mut self, code: &str, state: Option<&str>, location: &str, message: String) {
        self.out.push(Diagnostic {
            code: code.to_string(),
            state: state.map(str::to_string),
            location: location.to_string(),
            message,
        });
    }

    // ----- graphs -----------------------------------------------------------------------

    /// Checks a state machine or a nested graph. `owner` is the Parallel/Map state holding a
    /// nested graph (`None` at the top level).
    fn graph(&mut self, g: &Value, loc: &str, owner: Option<&str>, lang: Lang, kind: Graph) {
        let Some(obj) = g.as_object() else {
            let msg = match kind {
                Graph::Branch => {
                    format!("a Parallel branch must be an object, not {}", kind_name(g))
                }
                Graph::ItemProcessor | Graph::Iterator => {
                    format!("a Map processor must be an object, not {}", kind_name(g))
                }
                Graph::Top => format!("the definition must be a JSON object, not {}", kind_name(g)),
            };
            let code = if kind == Graph::Top {
                INVALID_DEFINITION
            } else {
                INVALID_FIELD_TYPE
            };
            self.push(code, owner, loc, msg);
            return;
        };
        let allowed: &[&str] = match kind {
            Graph::Top => &[
                "Comment",
                "StartAt",
                "States",
                "TimeoutSeconds",
                "Version",
                "QueryLanguage",
            ],
            Graph::Branch | Graph::Iterator => &["Comment", "StartAt", "States"],
            Graph::ItemProcessor => &["Comment", "StartAt", "States", "ProcessorConfig"],
        };
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                self.push(
                    FIELD_NOT_SUPPORTED,
                    owner,
                    &at(loc, key),
                    format!("field {key:?} is not supported in {}", kind.describe()),
                );
            }
        }
        let mut lang = lang;
        if kind == Graph::Top {
            lang = self.query_language(obj, loc, None, lang);
            self.string_field(obj, "Version", loc, None);
            if obj.contains_key("TimeoutSeconds") {
                self.int_field(obj, "TimeoutSeconds", loc, None, 1, MAX_INT);
            }
        }
        self.string_field(obj, "Comment", loc, owner);
        if kind == Graph::ItemProcessor {
            if let Some(pc) = obj.get("ProcessorConfig") {
                self.processor_config(pc, &at(loc, "ProcessorConfig"), owner);
            }
        }

        let states_loc = at(loc, "States");
        let states = match obj.get("States") {
            None => {
                self.push(
                    MISSING_REQUIRED_FIELD,
                    owner,
                    loc,
                    format!("{} has no \"States\"", kind.describe()),
                );
                None
            }
            Some(Value::Object(m)) => {
                if m.is_empty() {
                    self.push(
                        EMPTY_FIELD,
                        owner,
                        &states_loc,
                        format!("\"States\" of {} is empty", kind.describe()),
                    );
                }
                Some(m)
            }
            Some(other) => {
                self.push(
                    INVALID_FIELD_TYPE,
                    owner,
                    &states_loc,
                    format!("\"States\" must be an object, not {}", kind_name(other)),
                );
                None
            }
        };
        let start = match obj.get("StartAt") {
            None => {
                self.push(
                    MISSING_REQUIRED_FIELD,
                    owner,
                    loc,
                    format!("{} has no \"StartAt\"", kind.describe()),
                );
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                self.push(
                    INVALID_FIELD_TYPE,
                    owner,
                    &at(loc, "StartAt"),
                    format!("\"StartAt\" must be a string, not {}", kind_name(other)),
                );
                None
            }
        };
        let Some(states) = states else { return };

        let mut start_ok = false;
        if let Some(start) = start {
            if states.contains_key(start) {
                start_ok = true;
            } else {
                let msg = self.missing_target_message("StartAt", start, kind);
                self.push(MISSING_TRANSITION_TARGET, owner, &at(loc, "StartAt"), msg);
            }
        }

        let mut infos: Vec<(&String, StateInfo)> = Vec::with_capacity(states.len());
        for (name, state) in states {
            let state_loc = at(&states_loc, name);
            self.state_name(name, &state_loc);
            let info = self.state(name, state, &state_loc, lang);
            infos.push((name, info));
        }

        for (name, info) in &infos {
            for t in &info.targets {
                if !states.contains_key(&t.name) {
                    let msg = self.missing_target_message(t.field, &t.name, kind);
                    self.push(MISSING_TRANSITION_TARGET, Some(name), &t.location, msg);
                }
            }
        }

        if start_ok {
            let start = start.expect("start_ok");
            let edges: HashMap<&str, &StateInfo> =
                infos.iter().map(|(n, i)| (n.as_str(), i)).collect();
            let mut reached: HashSet<&str> = HashSet::new();
            let mut queue = VecDeque::from([start]);
            reached.insert(start);
            while let Some(n) = queue.pop_front() {
                for t in edges
                    .get(n)
                    .map(|i| i.targets.as_slice())
                    .unwrap_or_default()
                {
                    if let Some((name, _)) = states.get_key_value(&t.name) {
                        if reached.insert(name.as_str()) {
                            queue.push_back(name.as_str());
                        }
                    }
                }
            }
            for (name, _) in &infos {
                if !reached.contains(name.as_str()) {
                    self.push(
                        MISSING_TRANSITION_TARGET,
                        Some(name),
                        &at(&states_loc, name),
                        format!("state {name:?} is not reachable from \"StartAt\" ({start:?})"),
                    );
                }
            }
        }

        if !states.is_empty() && !infos.iter().any(|(_, i)| i.terminal) {
            self.push(
                MISSING_END_STATE,
                owner,
                &states_loc,
                format!(
                    "{} has no terminal state (End: true, Succeed or Fail)",
                    kind.describe()
                ),
            );
        }
    }

    fn missing_target_message(&self, field: &str, target: &str, kind: Graph) -> String {
        if self.all_names.contains(target) {
            format!(
                "{field:?} target {target:?} is not a state of {}: a transition may not leave or enter a Parallel branch or Map processor",
                kind.describe()
            )
        } else {
            format!("{field:?} target {target:?} names no state")
        }
    }

    fn state_name(&mut self, name: &str, loc: &str) {
        let len = name.chars().count();
        if len == 0 {
            self.push(
                INVALID_STATE_NAME,
                Some(name),
                loc,
                "a state name must not be empty".into(),
            );
        } else if len > MAX_STATE_NAME {
            self.push(
                INVALID_STATE_NAME,
                Some(name),
                loc,
                format!("state name is {len} characters long, the most is {MAX_STATE_NAME}"),
            );
        }
        if let Some(first) = self.seen.get(name) {
            let msg = format!("state name {name:?} is already used at {first}; names must be unique in the whole definition");
            self.push(DUPLICATE_STATE_NAME, Some(name), loc, msg);
        } else {
            self.seen.insert(name.to_string(), loc.to_string());
        }
    }

    fn processor_config(&mut self, pc: &Value, loc: &str, owner: Option<&str>) {
        let Some(obj) = self.object(pc, "\"ProcessorConfig\"", loc, owner) else {
            return;
        };
        for (key, value) in obj {
            let allowed: &[&str] = match key.as_str() {
                "Mode" => &["INLINE", "DISTRIBUTED"],
                "ExecutionType" => &["STANDARD", "EXPRESS"],
                _ => {
                    self.push(
                        FIELD_NOT_SUPPORTED,
                        owner,
                        &at(loc, key),
                        format!("field {key:?} is not supported in ProcessorConfig"),
                    );
                    continue;
                }
            };
            self.enum_value(value, key, allowed, &at(loc, key), owner);
        }
    }

    fn query_language(
        &mut self,
        obj: &Map<String, Value>,
        loc: &str,
        state: Option<&str>,
        inherited: Lang,
    ) -> Lang {
        let Some(v) = obj.get("QueryLanguage") else {
            return inherited;
        };
        let l = at(loc, "QueryLanguage");
        match v {
            Value::String(s) if s == "JSONPath" => Lang::JsonPath,
            Value::String(s) if s == "JSONata" => {
                let whom = if state.is_some() {
                    "this state"
                } else {
                    "the state machine"
                };
                self.push(
                    UNSUPPORTED_QUERY_LANGUAGE,
                    state,
                    &l,
                    format!("{whom} uses QueryLanguage \"JSONata\", but rotor's executor only runs the JSONPath query language"),
                );
                Lang::JsonAta
            }
            Value::String(s) => {
                self.push(
                    INVALID_VALUE,
                    state,
                    &l,
                    format!("QueryLanguage {s:?} is neither \"JSONPath\" nor \"JSONata\""),
                );
                inherited
            }
            other => {
                self.push(
                    INVALID_FIELD_TYPE,
                    state,
                    &l,
                    format!(
                        "\"QueryLanguage\" must be a string, not {}",
                        kind_name(other)
                    ),
                );
                inherited
            }
        }
    }

    // ----- states -----------------------------------------------------------------------

    fn state(&mut self, name: &str, st: &Value, loc: &str, inherited: Lang) -> StateInfo {
        let mut info = StateInfo::default();
        let Some(obj) = self.object(st, "a state", loc, Some(name)) else {
            return info;
        };
        let s = Some(name);
        let lang = self.query_language(obj, loc, s, inherited);
        let ty = match obj.get("Type") {
            None => {
                self.push(
                    MISSING_REQUIRED_FIELD,
                    s,
                    loc,
                    "the state has no \"Type\"".into(),
                );
                None
            }
            Some(Value::String(t)) if STATE_TYPES.contains(&t.as_str()) => Some(t.as_str()),
            Some(Value::String(t)) => {
                self.push(
                    INVALID_STATE_TYPE,
                    s,
                    &at(loc, "Type"),
                    format!(
                        "unknown state Type {t:?} (expected one of {})",
                        STATE_TYPES.join(", ")
                    ),
                );
                None
            }
            Some(other) => {
                self.push(
                    INVALID_STATE_TYPE,
                    s,
                    &at(loc, "Type"),
                    format!("\"Type\" must be a string, not {}", kind_name(other)),
                );
                None
            }
        };

        let Some(ty) = ty else {
            // Unknown type: only collect transitions, so reachability stays meaningful.
            self.loose_targets(obj, loc, &mut info);
            return info;
        };

        // Next / End.
        match ty {
            "Succeed" | "Fail" => info.terminal = true,
            "Choice" => {}
            _ => {
                let end = match obj.get("End") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        self.push(
                            INVALID_FIELD_TYPE,
                            s,
                            &at(loc, "End"),
                            format!("\"End\" must be a boolean, not {}", kind_name(other)),
                        );
                        false
                    }
                };
                let next = match obj.get("Next") {
                    None => None,
                    Some(Value::String(n)) => Some(n),
                    Some(other) => {
                        self.push(
                            INVALID_FIELD_TYPE,
                            s,
                            &at(loc, "Next"),
                            format!("\"Next\" must be a string, not {}", kind_name(other)),
                        );
                        None
                    }
                };
                match (obj.contains_key("Next"), end) {
                    (false, false) => self.push(
                        MISSING_NEXT_OR_END,
                        s,
                        loc,
                        format!("a {ty} state needs either \"Next\" or \"End\": true"),
                    ),
                    (true, true) => self.push(
                        MUTUALLY_EXCLUSIVE_FIELDS,
                        s,
                        loc,
                        "\"Next\" and \"End\": true cannot both be set".into(),
                    ),
                    _ => {}
                }
                info.terminal = end;
                if let Some(n) = next {
                    info.targets.push(Target {
                        name: n.clone(),
                        location: at(loc, "Next"),
                        field: "Next",
                    });
                }
            }
        }

        if lang == Lang::JsonAta {
            // Field rules differ in JSONata; keep to the graph so the report stays meaningful.
            if ty == "Choice" {
                self.loose_targets(obj, loc, &mut info);
            } else {
                self.list_targets(obj, "Catch", loc, &mut info);
            }
            self.nested_graphs(name, obj, loc, lang, ty);
            return info;
        }

        // Fields allowed for the type.
        let fields = type_fields(ty);
        for key in obj.keys() {
            let k = key.as_str();
            if COMMON_FIELDS.contains(&k) {
                continue;
            }
            if !fields.contains(&k) {
                let msg = if JSONATA_ONLY.contains(&k) {
                    format!("field {k:?} only exists in the JSONata query language; this state uses JSONPath")
                } else {
                    format!("field {k:?} is not supported on a {ty} state")
                };
                self.push(FIELD_NOT_SUPPORTED, s, &at(loc, k), msg);
            } else if let Some((_, why)) = UNSUPPORTED_FIELDS.iter().find(|(f, _)| *f == k) {
                self.push(UNSUPPORTED_FEATURE, s, &at(loc, k), (*why).to_string());
            }
        }

        self.string_field(obj, "Comment", loc, s);
        for field in ["InputPath", "OutputPath"] {
            if fields.contains(&field) {
                self.io_path(obj, field, loc, s);
            }
        }
        if fields.contains(&"ResultPath") {
            if let Some(v) = obj.get("ResultPath") {
                self.result_path(v, &at(loc, "ResultPath"), s);
            }
        }
        if fields.contains(&"Parameters") {
            if let Some(v) = obj.get("Parameters") {
                self.template(v, &at(loc, "Parameters"), name);
            }
        }
        if fields.contains(&"ResultSelector") {
            self.object_template(obj, "ResultSelector", loc, name);
        }
        if fields.contains(&"Retry") {
            if let Some(v) = obj.get("Retry") {
                self.retriers(v, &at(loc, "Retry"), name);
            }
        }
        if fields.contains(&"Catch") {
            if let Some(v) = obj.get("Catch") {
                self.catchers(v, &at(loc, "Catch"), name, &mut info);
            }
        }

        match ty {
            "Task" => self.task(obj, loc, name),
            "Choice" => self.choice(obj, loc, name, &mut info),
            "Wait" => self.wait(obj, loc, name),
            "Fail" => self.fail(obj, loc, name),
            "Map" => self.map(obj, loc, name),
            _ => {}
        }
        self.nested_graphs(name, obj, loc, lang, ty);
        info
    }

    /// Collects Next, Default, Choices[].Next and Catch[].Next without judging the fields.
    fn loose_targets(&mut self, obj: &Map<String, Value>, loc: &str, info: &mut StateInfo) {
        for field in ["Next", "Default"] {
            if info.targets.iter().any(|t| t.field == field) {
                continue;
            }
            if let Some(n) = obj.get(field).and_then(Value::as_str) {
                info.targets.push(Target {
                    name: n.to_string(),
                    location: at(loc, field),
                    field,
                });
            }
        }
        self.list_targets(obj, "Choices", loc, info);
        self.list_targets(obj, "Catch", loc, info);
        if obj.get("End") == Some(&Value::Bool(true)) {
            info.terminal = true;
        }
    }

    /// Collects the `Next` of each entry of `list` (`Choices` or `Catch`) without judging it.
    fn list_targets(
        &mut self,
        obj: &Map<String, Value>,
        list: &str,
        loc: &str,
        info: &mut StateInfo,
    ) {
        if let Some(items) = obj.get(list).and_then(Value::as_array) {
            for (i, c) in items.iter().enumerate() {
                if let Some(n) = c.get("Next").and_then(Value::as_str) {
                    let l = at(&at_index(&at(loc, list), i), "Next");
                    info.targets.push(Target {
                        name: n.to_string(),
                        location: l,
                        field: "Next",
                    });
                }
            }
        }
    }

    /// Parallel branches and Map processors, each checked as its own graph.
    fn nested_graphs(
        &mut self,
        name: &str,
        obj: &Map<String, Value>,
        loc: &str,
        lang: Lang,
        ty: &str,
    ) {
        let s = Some(name);
        match ty {
            "Parallel" => {
                if let Some(branches) =
                    self.required_array(obj, "Branches", loc, s, "a Parallel state")
                {
                    let l = at(loc, "Branches");
                    for (i, b) in branches.iter().enumerate() {
                        self.graph(b, &at_index(&l, i), s, lang, Graph::Branch);
                    }
                }
            }
            "Map" => {
                let processor = obj.get("ItemProcessor");
                let iterator = obj.get("Iterator");
                match (processor, iterator) {
                    (None, None) => self.push(
                        MISSING_REQUIRED_FIELD,
                        s,
                        loc,
                        "a Map state needs \"ItemProcessor\" (or the older \"Iterator\")".into(),
                    ),
                    (Some(_), Some(_)) => self.push(
                        MUTUALLY_EXCLUSIVE_FIELDS,
                        s,
                        loc,
                        "\"ItemProcessor\" and \"Iterator\" cannot both be set".into(),
                    ),
                    _ => {}
                }
                if let Some(p) = processor {
                    self.graph(p, &at(loc, "ItemProcessor"), s, lang, Graph::ItemProcessor);
                }
                if let Some(p) = iterator {
                    self.graph(p, &at(loc, "Iterator"), s, lang, Graph::Iterator);
                }
            }
            _ => {}
        }
    }

    fn task(&mut self, obj: &Map<String, Value>, loc: &str, name: &str) {
        let s = Some(name);
        match obj.get("Resource") {
            None => self.push(
                MISSING_REQUIRED_FIELD,
                s,
                loc,
                "a Task state needs \"Resource\"".into(),
            ),
            Some(Value::String(r)) => {
                if let Err(e) = resource_ok(r) {
                    self.push(INVALID_RESOURCE, s, &at(loc, "Resource"), e);
                }
            }
            Some(other) => self.push(
                INVALID_FIELD_TYPE,
                s,
                &at(loc, "Resource"),
                format!("\"Resource\" must be a string, not {}", kind_name(other)),
            ),
        }
        let timeout = self.number_or_path(obj, "TimeoutSeconds", loc, s, 1);
        let heartbeat = self.number_or_path(obj, "HeartbeatSeconds", loc, s, 1);
        if let (Some(t), Some(h)) = (timeout, heartbeat) {
            if h >= t {
                self.push(
                    INVALID_VALUE,
                    s,
                    &at(loc, "HeartbeatSeconds"),
                    format!("HeartbeatSeconds ({h}) must be smaller than TimeoutSeconds ({t})"),
                );
            }
        }
        self.object_template(obj, "Credentials", loc, name);
    }

    /// `X` (an integer >= `min`) or `XPath` (a reference path), not both. Returns the literal.
    fn number_or_path(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        loc: &str,
        s: Option<&str>,
        min: i64,
    ) -> Option<i64> {
        let path_field = self.field_or_path(obj, field, loc, s);
        if let Some(v) = obj.get(&path_field) {
            self.reference_path(v, &path_field, &at(loc, &path_field), s);
        }
        if obj.contains_key(field) {
            self.int_field(obj, field, loc, s, min, MAX_INT)
        } else {
            None
        }
    }

    fn wait(&mut self, obj: &Map<String, Value>, loc: &str, name: &str) {
        let s = Some(name);
        let present: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
            .into_iter()
            .filter(|f| obj.contains_key(*f))
            .collect();
        match present.len() {
            0 => self.push(
                MISSING_REQUIRED_FIELD,
                s,
                loc,
                "a Wait state needs one of \"Seconds\", \"SecondsPath\", \"Timestamp\", \"TimestampPath\"".into(),
            ),
            1 => {}
            _ => self.push(
                MUTUALLY_EXCLUSIVE_FIELDS,
                s,
                loc,
                format!("a Wait state takes exactly one of Seconds, SecondsPath, Timestamp, TimestampPath; found {}", present.join(", ")),
            ),
        }
        if obj.contains_key("Seconds") {
            self.int_field(obj, "Seconds", loc, s, 0, MAX_INT);
        }
        for field in ["SecondsPath", "TimestampPath"] {
            if let Some(v) = obj.get(field) {
                self.reference_path(v, field, &at(loc, field), s);
            }
        }
        match obj.get("Timestamp") {
            None => {}
            Some(Value::String(t)) if crate::choice::parse_timestamp(t).is_none() => self.push(
                INVALID_VALUE,
                s,
                &at(loc, "Timestamp"),
                format!("Timestamp {t:?} is not an RFC 3339 timestamp (e.g. 2016-03-14T01:59:00Z: uppercase T and Z)"),
            ),
            Some(Value::String(_)) => {}
            Some(other) => self.push(
                INVALID_FIELD_TYPE,
                s,
                &at(loc, "Timestamp"),
                format!("\"Timestamp\" must be a string, not {}", kind_name(other)),
            ),
        }
    }

    fn fail(&mut self, obj: &Map<String, Value>, loc: &str, name: &str) {
        let s = Some(name);
        for field in ["Error", "Cause"] {
            let path_field = self.field_or_path(obj, field, loc, s);
            self.string_field(obj, field, loc, s);
            match obj.get(&path_field) {
                None => {}
                Some(Value::String(text)) if looks_like_intrinsic(text) => {
                    if let Err(e) = parse_intrinsic(text) {
                        self.push(
                            INVALID_INTRINSIC,
                            s,
                            &at(loc, &path_field),
                            format!("{path_field}: {e}"),
                        );
                    }
                }
                Some(v) => self.reference_path(v, &path_field, &at(loc, &path_field), s),
            }
        }
    }

    fn map(&mut self, obj: &Map<String, Value>, loc: &str, name: &str) {
        let s = Some(name);
        self.io_path(obj, "ItemsPath", loc, s);
        self.object_template(obj, "ItemSelector", loc, name);
        if obj.contains_key("ItemSelector") && obj.contains_key("Parameters") {
            self.push(
                MUTUALLY_EXCLUSIVE_FIELDS,
                s,
                loc,
                "\"ItemSelector\" and \"Parameters\" (its older name on Map) cannot both be set"
                    .into(),
            );
        }
        self.number_or_path(obj, "MaxConcurrency", loc, s, 0);
        self.number_or_path(obj, "ToleratedFailureCount", loc, s, 0);
        let pct = "ToleratedFailurePercentage";
        let pct_path = self.field_or_path(obj, pct, loc, s);
        if let Some(v) = obj.get(&pct_path) {
            self.reference_path(v, &pct_path, &at(loc, &pct_path), s);
        }
        if let Some(v) = obj.get(pct) {
            match v.as_f64() {
                Some(p) if (0.0..=100.0).contains(&p) => {}
                Some(p) => self.push(
                    INVALID_VALUE,
                    s,
                    &at(loc, pct),
                    format!("{pct} must be between 0 and 100, not {p}"),
                ),
                None => self.push(
                    INVALID_FIELD_TYPE,
                    s,
                    &at(loc, pct),
                    format!("{pct} must be a number, not {}", kind_name(v)),
                ),
            }
        }
        for field in ["ItemReader", "ResultWriter", "ItemBatcher"] {
            if let Some(v) = obj.get(field) {
                self.object(v, &format!("\"{field}\""), &at(loc, field), s);
            }
        }
        self.string_field(obj, "Label", loc, s);
    }

    fn choice(&mut self, obj: &Map<String, Value>, loc: &str, name: &str, info: &mut StateInfo) {
        let s = Some(name);
        match obj.get("Default") {
            None => {}
            Some(Value::String(d)) => info.targets.push(Target {
                name: d.clone(),
                location: at(loc, "Default"),
                field: "Default",
            }),
            Some(other) => self.push(
                INVALID_FIELD_TYPE,
                s,
                &at(loc, "Default"),
                format!("\"Default\" must be a string, not {}", kind_name(other)),
            ),
        }
        let Some(rules) = self.required_array(obj, "Choices", loc, s, "a Choice state") else {
            return;
        };
        let l = at(loc, "Choices");
        for (i, rule) in rules.iter().enumerate() {
            let rl = at_index(&l, i);
            let before = self.out.len();
            let Some(r) = self.object(rule, "a Choice rule", &rl, s) else {
                continue;
            };
            match r.get("Next") {
                None => self.push(
                    MISSING_REQUIRED_FIELD,
                    s,
                    &rl,
                    "a Choice rule needs \"Next\"".into(),
                ),
                Some(Value::String(n)) => {
                    info.targets.push(Target {
                        name: n.clone(),
                        location: at(&rl, "Next"),
                        field: "Next",
                    });
                    if n.is_empty() {
                        // Reported as a missing target; keep Branch::parse from repeating it.
                        self.push(
                            MISSING_TRANSITION_TARGET,
                            s,
                            &at(&rl, "Next"),
                            "\"Next\" is empty".into(),
                        );
                        info.targets.pop();
                    }
                }
                Some(other) => self.push(
                    INVALID_FIELD_TYPE,
                    s,
                    &at(&rl, "Next"),
                    format!("\"Next\" must be a string, not {}", kind_name(other)),
                ),
            }
            self.rule_paths(r, &rl, s);
            if self.out.len() == before {
                if let Err(e) = crate::choice::Branch::parse(rule) {
                    self.push(INVALID_CHOICE_RULE, s, &rl, e);
                }
            }
        }
    }

    /// The `Variable` and `...Path` operands of a rule and its nested rules (reference paths).
    fn rule_paths(&mut self, rule: &Map<String, Value>, loc: &str, s: Option<&str>) {
        for (key, value) in rule {
            let l = at(loc, key);
            match (key.as_str(), value) {
                ("Variable", Value::String(p)) => self.reference_text(p, "Variable", &l, s),
                (k, Value::String(p)) if k.ends_with("Path") => self.reference_text(p, k, &l, s),
                ("And" | "Or", Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(o) = item.as_object() {
                            self.rule_paths(o, &at_index(&l, i), s);
                        }
                    }
                }
                ("Not", Value::Object(o)) => self.rule_paths(o, &l, s),
                _ => {}
            }
        }
    }

    // ----- Retry / Catch ----------------------------------------------------------------

    fn retriers(&mut self, v: &Value, loc: &str, name: &str) {
        let s = Some(name);
        let Some(list) = self.array(v, "Retry", loc, s) else {
            return;
        };
        for (i, r) in list.iter().enumerate() {
            let rl = at_index(loc, i);
            let Some(obj) = self.object(r, "a Retrier", &rl, s) else {
                continue;
            };
            const FIELDS: &[&str] = &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ];
            for key in obj.keys() {
                if !FIELDS.contains(&key.as_str()) {
                    self.push(
                        FIELD_NOT_SUPPORTED,
                        s,
                        &at(&rl, key),
                        format!("field {key:?} is not supported in a Retrier"),
                    );
                }
            }
            self.error_equals(obj, &rl, s, i + 1 == list.len(), "Retrier");
            self.string_field(obj, "Comment", &rl, s);
            if obj.contains_key("IntervalSeconds") {
                self.int_field(obj, "IntervalSeconds", &rl, s, 1, MAX_INT);
            }
            if obj.contains_key("MaxAttempts") {
                self.int_field(obj, "MaxAttempts", &rl, s, 0, MAX_INT);
            }
            if obj.contains_key("MaxDelaySeconds") {
                self.int_field(obj, "MaxDelaySeconds", &rl, s, 1, MAX_DELAY);
            }
            if let Some(b) = obj.get("BackoffRate") {
                let bl = at(&rl, "BackoffRate");
                match b.as_f64() {
                    Some(x) if x >= 1.0 => {}
                    Some(x) => self.push(
                        INVALID_VALUE,
                        s,
                        &bl,
                        format!("BackoffRate must be at least 1.0, not {x}"),
                    ),
                    None => self.push(
                        INVALID_FIELD_TYPE,
                        s,
                        &bl,
                        format!("BackoffRate must be a number, not {}", kind_name(b)),
                    ),
                }
            }
            if let Some(j) = obj.get("JitterStrategy") {
                self.enum_value(
                    j,
                    "JitterStrategy",
                    &["FULL", "NONE"],
                    &at(&rl, "JitterStrategy"),
                    s,
                );
            }
        }
    }

    fn catchers(&mut self, v: &Value, loc: &str, name: &str, info: &mut StateInfo) {
        let s = Some(name);
        let Some(list) = self.array(v, "Catch", loc, s) else {
            return;
        };
        for (i, c) in list.iter().enumerate() {
            let cl = at_index(loc, i);
            let Some(obj) = self.object(c, "a Catcher", &cl, s) else {
                continue;
            };
            for key in obj.keys() {
                match key.as_str() {
                    "ErrorEquals" | "Next" | "ResultPath" | "Comment" => {}
                    "Assign" => self.push(
                        UNSUPPORTED_FEATURE,
                        s,
                        &at(&cl, key),
                        "workflow variables (Assign) are not implemented by rotor's executor"
                            .into(),
                    ),
                    _ => self.push(
                        FIELD_NOT_SUPPORTED,
                        s,
                        &at(&cl, key),
                        format!("field {key:?} is not supported in a Catcher"),
                    ),
                }
            }
            self.error_equals(obj, &cl, s, i + 1 == list.len(), "Catcher");
            self.string_field(obj, "Comment", &cl, s);
            if let Some(rp) = obj.get("ResultPath") {
                self.result_path(rp, &at(&cl, "ResultPath"), s);
            }
            match obj.get("Next") {
                None => self.push(
                    MISSING_REQUIRED_FIELD,
                    s,
                    &cl,
                    "a Catcher needs \"Next\"".into(),
                ),
                Some(Value::String(n)) => info.targets.push(Target {
                    name: n.clone(),
                    location: at(&cl, "Next"),
                    field: "Next",
                }),
                Some(other) => self.push(
                    INVALID_FIELD_TYPE,
                    s,
                    &at(&cl, "Next"),
                    format!("\"Next\" must be a string, not {}", kind_name(other)),
                ),
            }
        }
    }

    fn error_equals(
        &mut self,
        obj: &Map<String, Value>,
        loc: &str,
        s: Option<&str>,
        last: bool,
        what: &str,
    ) {
        let Some(list) = self.required_array(obj, "ErrorEquals", loc, s, &format!("a {what}"))
        else {
            return;
        };
        let l = at(loc, "ErrorEquals");
        for (j, e) in list.iter().enumerate() {
            let el = at_index(&l, j);
            match e {
                Value::String(name) if name == crate::error::names::ALL => {
                    if list.len() > 1 {
                        self.push(
                            INVALID_STATES_ALL,
                            s,
                            &el,
                            "\"States.ALL\" must appear alone in its \"ErrorEquals\"".into(),
                        );
                    }
                    if !last {
                        self.push(
                            INVALID_STATES_ALL,
                            s,
                            &el,
                            format!("\"States.ALL\" must be in the last {what}"),
                        );
                    }
                }
                Value::String(_) => {}
                other => self.push(
                    INVALID_FIELD_TYPE,
                    s,
                    &el,
                    format!("an error name must be a string, not {}", kind_name(other)),
                ),
            }
        }
    }

    // ----- values -----------------------------------------------------------------------

    /// A payload template: every `.$` key (at any depth) must hold a path or an intrinsic call.
    fn template(&mut self, v: &Value, loc: &str, name: &str) {
        match v {
            Value::Object(m) => {
                for (key, val) in m {
                    let l = at(loc, key);
                    if key.ends_with(".$") {
                        match val {
                            Value::String(text) => self.dynamic_value(text, key, &l, Some(name)),
                            other => self.push(
                                INVALID_FIELD_TYPE,
                                Some(name),
                                &l,
                                format!("the value of {key:?} must be a path or intrinsic function string, not {}", kind_name(other)),
                            ),
                        }
                    } else {
                        self.template(val, &l, name);
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.template(item, &at_index(loc, i), name);
                }
            }
            _ => {}
        }
    }

    fn dynamic_value(&mut self, text: &str, key: &str, loc: &str, s: Option<&str>) {
        if looks_like_intrinsic(text) {
            if let Err(e) = parse_intrinsic(text) {
                self.push(INVALID_INTRINSIC, s, loc, format!("{key:?}: {e}"));
            }
        } else if let Err(e) = Path::parse(text) {
            self.push(
                INVALID_PATH,
                s,
                loc,
                format!("{key:?} is neither a valid path nor an intrinsic function: {e}"),
            );
        }
    }

    /// InputPath / OutputPath / ItemsPath: null or any path.
    fn io_path(&mut self, obj: &Map<String, Value>, field: &str, loc: &str, s: Option<&str>) {
        let l = at(loc, field);
        match obj.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(p)) => {
                if let Err(e) = Path::parse(p) {
                    self.push(INVALID_PATH, s, &l, format!("{field}: {e}"));
                }
            }
            Some(other) => self.push(
                INVALID_FIELD_TYPE,
                s,
                &l,
                format!(
                    "\"{field}\" must be a string or null, not {}",
                    kind_name(other)
                ),
            ),
        }
    }

    /// ResultPath: null or a reference path into the state's data (never the context object).
    fn result_path(&mut self, v: &Value, loc: &str, s: Option<&str>) {
        match v {
            Value::Null => {}
            Value::String(p) => {
                if p.starts_with("$$") {
                    self.push(
                        INVALID_PATH,
                        s,
                        loc,
                        format!("ResultPath {p:?} cannot write into the context object"),
                    );
                } else if let Err(e) = Path::parse_reference(p) {
                    self.push(INVALID_PATH, s, loc, format!("ResultPath: {e}"));
                }
            }
            other => self.push(
                INVALID_FIELD_TYPE,
                s,
                loc,
                format!(
                    "\"ResultPath\" must be a string or null, not {}",
                    kind_name(other)
                ),
            ),
        }
    }

    fn reference_path(&mut self, v: &Value, field: &str, loc: &str, s: Option<&str>) {
        match v {
            Value::String(p) => self.reference_text(p, field, loc, s),
            other => self.push(
                INVALID_FIELD_TYPE,
                s,
                loc,
                format!(
                    "\"{field}\" must be a string path, not {}",
                    kind_name(other)
                ),
            ),
        }
    }

    fn reference_text(&mut self, p: &str, field: &str, loc: &str, s: Option<&str>) {
        if let Err(e) = Path::parse_reference(p) {
            self.push(
                INVALID_PATH,
                s,
                loc,
                format!("{field} must be a reference path: {e}"),
            );
        }
    }

    /// `v` as an object; otherwise reports "`what` must be an object" (`what`: "a Retrier",
    /// "\"Credentials\"", ...) at `loc`.
    fn object<'a>(
        &mut self,
        v: &'a Value,
        what: &str,
        loc: &str,
        s: Option<&str>,
    ) -> Option<&'a Map<String, Value>> {
        let obj = v.as_object();
        if obj.is_none() {
            self.push(
                INVALID_FIELD_TYPE,
                s,
                loc,
                format!("{what} must be an object, not {}", kind_name(v)),
            );
        }
        obj
    }

    /// A payload template that must be an object: ResultSelector, Credentials, ItemSelector.
    fn object_template(&mut self, obj: &Map<String, Value>, field: &str, loc: &str, name: &str) {
        if let Some(v) = obj.get(field) {
            let l = at(loc, field);
            self.object(v, &format!("\"{field}\""), &l, Some(name));
            self.template(v, &l, name);
        }
    }

    /// `v` (the value of `field`, at `loc`) as an array; otherwise reports its type.
    fn array<'a>(
        &mut self,
        v: &'a Value,
        field: &str,
        loc: &str,
        s: Option<&str>,
    ) -> Option<&'a Vec<Value>> {
        let list = v.as_array();
        if list.is_none() {
            self.push(
                INVALID_FIELD_TYPE,
                s,
                loc,
                format!("\"{field}\" must be an array, not {}", kind_name(v)),
            );
        }
        list
    }

    /// A required, non-empty array field (`whose` needs it: "a Choice state", "a Retrier", ...).
    /// Returns the array when it is one, even an empty one (that is reported).
    fn required_array<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        field: &str,
        loc: &str,
        s: Option<&str>,
        whose: &str,
    ) -> Option<&'a Vec<Value>> {
        let Some(v) = obj.get(field) else {
            self.push(
                MISSING_REQUIRED_FIELD,
                s,
                loc,
                format!("{whose} needs \"{field}\""),
            );
            return None;
        };
        let l = at(loc, field);
        let list = self.array(v, field, &l, s)?;
        if list.is_empty() {
            self.push(EMPTY_FIELD, s, &l, format!("\"{field}\" must not be empty"));
        }
        Some(list)
    }

    /// `X` and `XPath` exclude each other; returns the name `XPath`.
    fn field_or_path(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        loc: &str,
        s: Option<&str>,
    ) -> String {
        let path_field = format!("{field}Path");
        if obj.contains_key(field) && obj.contains_key(&path_field) {
            self.push(
                MUTUALLY_EXCLUSIVE_FIELDS,
                s,
                loc,
                format!("\"{field}\" and \"{path_field}\" cannot both be set"),
            );
        }
        path_field
    }

    fn string_field(&mut self, obj: &Map<String, Value>, field: &str, loc: &str, s: Option<&str>) {
        if let Some(v) = obj.get(field) {
            if !v.is_string() {
                self.push(
                    INVALID_FIELD_TYPE,
                    s,
                    &at(loc, field),
                    format!("\"{field}\" must be a string, not {}", kind_name(v)),
                );
            }
        }
    }

    fn enum_value(&mut self, v: &Value, field: &str, allowed: &[&str], loc: &str, s: Option<&str>) {
        match v {
            Value::String(x) if allowed.contains(&x.as_str()) => {}
            Value::String(x) => self.push(
                INVALID_VALUE,
                s,
                loc,
                format!("{field} {x:?} is not one of {}", allowed.join(", ")),
            ),
            other => self.push(
                INVALID_FIELD_TYPE,
                s,
                loc,
                format!("\"{field}\" must be a string, not {}", kind_name(other)),
            ),
        }
    }

    /// An integer field within `min..=max`; returns it when valid.
    fn int_field(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        loc: &str,
        s: Option<&str>,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let v = obj.get(field)?;
        let l = at(loc, field);
        let Value::Number(n) = v else {
            self.push(
                INVALID_FIELD_TYPE,
                s,
                &l,
                format!("\"{field}\" must be an integer, not {}", kind_name(v)),
            );
            return None;
        };
        let Some(x) = n.as_i64().or_else(|| n.as_u64().map(|_| i64::MAX)) else {
            self.push(
                INVALID_VALUE,
                s,
                &l,
                format!("{field} must be an integer, not {n}"),
            );
            return None;
        };
        if x < min {
            self.push(
                INVALID_VALUE,
                s,
                &l,
                format!("{field} must be at least {min}, not {x}"),
            );
            None
        } else if x > max {
            self.push(
                INVALID_VALUE,
                s,
                &l,
                format!("{field} must be at most {max}, not {n}"),
            );
            None
        } else {
            Some(x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(def: &Value) -> Vec<(String, Option<String>, String)> {
        validate(def)
            .into_iter()
            .map(|d| (d.code, d.state, d.location))
            .collect()
    }

    fn one(code: &str, state: Option<&str>, location: &str) -> (String, Option<String>, String) {
        (
            code.to_string(),
            state.map(str::to_string),
            location.to_string(),
        )
    }

    /// "CODE /location" of each diagnostic, in order.
    fn code_locations(def: &Value) -> Vec<String> {
        validate(def)
            .into_iter()
            .map(|d| format!("{} {}", d.code, d.location))
            .collect()
    }

    fn machine(states: Value) -> Value {
        let start = states.as_object().unwrap().keys().next().unwrap().clone();
        json!({"StartAt": start, "States": states})
    }

    const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";

    #[test]
    fn valid_minimal_machine() {
        assert!(validate(&machine(json!({"A": {"Type": "Pass", "End": true}}))).is_empty());
    }

    #[test]
    fn every_independent_problem_is_reported_once() {
        let def = machine(json!({
            "A": {"Type": "Pass", "InputPath": "nope", "Retry": [], "Next": "B"},
            "B": {"Type": "Wait", "Seconds": 1, "End": true, "Timestamp": "x"},
            "C": {"Type": "Succeed"}
        }));
        let mut got = codes(&def);
        got.sort();
        let mut want = vec![
            one(FIELD_NOT_SUPPORTED, Some("A"), "/States/A/Retry"),
            one(INVALID_PATH, Some("A"), "/States/A/InputPath"),
            one(MUTUALLY_EXCLUSIVE_FIELDS, Some("B"), "/States/B"),
            one(INVALID_VALUE, Some("B"), "/States/B/Timestamp"),
            one(MISSING_TRANSITION_TARGET, Some("C"), "/States/C"),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn locations_escape_state_names_as_json_pointers() {
        let def =
            json!({"StartAt": "a/b~c", "States": {"a/b~c": {"Type": "Pass", "Next": "gone"}}});
        let diags = validate(&def);
        let d = diags
            .iter()
            .find(|d| d.code == MISSING_TRANSITION_TARGET)
            .unwrap();
        assert_eq!(d.location, "/States/a~1b~0c/Next");
        assert_eq!(d.state.as_deref(), Some("a/b~c"));
        assert_eq!(def.pointer(&d.location), Some(&json!("gone")));
    }

    #[test]
    fn transitions_may_not_leave_or_enter_a_branch() {
        let def = json!({"StartAt": "P", "States": {
            "P": {"Type": "Parallel", "Next": "Inner", "Branches": [
                {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "Next": "Done"}}}
            ]},
            "Done": {"Type": "Succeed"}
        }});
        let diags = validate(&def);
        let leave = diags
            .iter()
            .find(|d| d.location == "/States/P/Branches/0/States/Inner/Next")
            .unwrap();
        assert_eq!(leave.code, MISSING_TRANSITION_TARGET);
        assert!(leave.message.contains("may not leave"), "{}", leave.message);
        let enter = diags
            .iter()
            .find(|d| d.location == "/States/P/Next")
            .unwrap();
        assert_eq!(enter.code, MISSING_TRANSITION_TARGET);
        assert_eq!(enter.state.as_deref(), Some("P"));
        // The branch has no terminal state either, and Done is unreachable from P.
        assert!(diags
            .iter()
            .any(|d| d.code == MISSING_END_STATE && d.state.as_deref() == Some("P")));
        assert!(diags
            .iter()
            .any(|d| d.code == MISSING_TRANSITION_TARGET && d.location == "/States/Done"));
    }

    #[test]
    fn nested_graphs_are_checked_like_the_top_level() {
        let def = machine(json!({
            "M": {"Type": "Map", "End": true, "Iterator": {
                "StartAt": "I", "Extra": 1,
                "States": {"I": {"Type": "Task", "Resource": LAMBDA, "End": true,
                                 "Retry": [{"ErrorEquals": ["States.ALL"], "BackoffRate": 0}]}}
            }}
        }));
        let mut got = codes(&def);
        got.sort();
        assert_eq!(
            got,
            vec![
                one(FIELD_NOT_SUPPORTED, Some("M"), "/States/M/Iterator/Extra"),
                one(
                    INVALID_VALUE,
                    Some("I"),
                    "/States/M/Iterator/States/I/Retry/0/BackoffRate"
                ),
            ]
        );
    }

    #[test]
    fn duplicate_names_across_graphs() {
        let def = machine(json!({
            "Work": {"Type": "Map", "End": true, "ItemProcessor": {
                "StartAt": "Work", "States": {"Work": {"Type": "Pass", "End": true}}}}
        }));
        let diags = validate(&def);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].code, DUPLICATE_STATE_NAME);
        assert_eq!(diags[0].location, "/States/Work/ItemProcessor/States/Work");
    }

    #[test]
    fn no_reachability_noise_when_start_at_is_wrong() {
        let def = json!({"StartAt": "X", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Succeed"}}});
        assert_eq!(
            codes(&def),
            vec![one(MISSING_TRANSITION_TARGET, None, "/StartAt")]
        );
    }

    #[test]
    fn catch_next_makes_a_state_reachable() {
        let def = machine(json!({
            "T": {"Type": "Task", "Resource": LAMBDA, "End": true,
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handle", "ResultPath": "$.err"}]},
            "Handle": {"Type": "Fail", "Error": "Failed"}
        }));
        assert!(validate(&def).is_empty(), "{:?}", validate(&def));
    }

    #[test]
    fn states_all_rules() {
        let ok = machine(json!({
            "T": {"Type": "Task", "Resource": LAMBDA, "End": true,
                  "Retry": [{"ErrorEquals": ["A", "B"]}, {"ErrorEquals": ["States.ALL"]}]}
        }));
        assert!(validate(&ok).is_empty());
        let bad = machine(json!({
            "T": {"Type": "Task", "Resource": LAMBDA, "End": true,
                  "Retry": [{"ErrorEquals": ["States.ALL", "A"]}, {"ErrorEquals": ["B"]}]}
        }));
        // Not alone and not last: two findings on the same entry.
        assert_eq!(
            codes(&bad),
            vec![
                one(
                    INVALID_STATES_ALL,
                    Some("T"),
                    "/States/T/Retry/0/ErrorEquals/0"
                ),
                one(
                    INVALID_STATES_ALL,
                    Some("T"),
                    "/States/T/Retry/0/ErrorEquals/0"
                ),
            ]
        );
    }

    #[test]
    fn retrier_bounds() {
        let ok = machine(json!({
            "T": {"Type": "Task", "Resource": LAMBDA, "End": true, "Retry": [{
                "ErrorEquals": ["E"], "IntervalSeconds": 1, "MaxAttempts": 0, "BackoffRate": 1,
                "MaxDelaySeconds": 31622400, "JitterStrategy": "NONE"}]}
        }));
        assert!(validate(&ok).is_empty(), "{:?}", validate(&ok));
        let bad = machine(json!({
            "T": {"Type": "Task", "Resource": LAMBDA, "End": true, "Retry": [{
                "ErrorEquals": ["E"], "IntervalSeconds": 2.0, "MaxAttempts": 100000000,
                "MaxDelaySeconds": 31622401, "JitterStrategy": "full", "BackoffRate": "2"}]}
        }));
        let got = code_locations(&bad);
        assert_eq!(
            got,
            vec![
                "INVALID_VALUE /States/T/Retry/0/IntervalSeconds",
                "INVALID_VALUE /States/T/Retry/0/MaxAttempts",
                "INVALID_VALUE /States/T/Retry/0/MaxDelaySeconds",
                "INVALID_FIELD_TYPE /States/T/Retry/0/BackoffRate",
                "INVALID_VALUE /States/T/Retry/0/JitterStrategy",
            ]
        );
    }

    #[test]
    fn resources_with_terraform_placeholders_are_accepted() {
        for r in [
            "${lambda_arn}",
            "arn:aws:lambda:${region}:${account_id}:function:rotate",
            "arn:aws:states:::lambda:invoke",
            "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f:live",
        ] {
            let def = machine(json!({"T": {"Type": "Task", "Resource": r, "End": true}}));
            assert!(validate(&def).is_empty(), "{r}: {:?}", validate(&def));
        }
        for r in [
            "rotate",
            "arn:aws:lambda",
            "arn::lambda:::f",
            "lambda:invoke",
        ] {
            let def = machine(json!({"T": {"Type": "Task", "Resource": r, "End": true}}));
            assert_eq!(
                codes(&def),
                vec![one(INVALID_RESOURCE, Some("T"), "/States/T/Resource")],
                "{r}"
            );
        }
    }

    #[test]
    fn dollar_keys_need_a_path_or_an_intrinsic_at_any_depth() {
        let def = machine(json!({
            "P": {"Type": "Pass", "End": true, "Parameters": {
                "ok.$": "$.a",
                "ctx.$": "$$.Execution.Id",
                "fmt.$": "States.Format('{}-{}', $.a, $.b)",
                "nested": {"list": [{"bad.$": "a.b"}, {"call.$": "States.NoSuchFunction($.a)"}]},
                "literal": "$.not-dynamic-without-dollar-suffix"
            }}
        }));
        let got = code_locations(&def);
        assert_eq!(
            got,
            vec![
                "INVALID_PATH /States/P/Parameters/nested/list/0/bad.$",
                "INVALID_INTRINSIC /States/P/Parameters/nested/list/1/call.$",
            ]
        );
    }

    #[test]
    fn error_and_cause_paths_take_intrinsics() {
        let ok = machine(json!({"F": {"Type": "Fail",
            "ErrorPath": "States.Format('E{}', $.code)", "CausePath": "$.cause"}}));
        assert!(validate(&ok).is_empty(), "{:?}", validate(&ok));
        let bad = machine(json!({"F": {"Type": "Fail",
            "ErrorPath": "States.Format('E{}', $.code", "CausePath": "$.causes[*]"}}));
        assert_eq!(
            codes(&bad),
            vec![
                one(INVALID_INTRINSIC, Some("F"), "/States/F/ErrorPath"),
                one(INVALID_PATH, Some("F"), "/States/F/CausePath"),
            ]
        );
    }

    #[test]
    fn result_path_is_a_reference_into_the_data() {
        for (rp, ok) in [
            (json!("$"), true),
            (json!(null), true),
            (json!("$.a['b c'][0]"), true),
            (json!("$.a[*]"), false),
            (json!("$$.Task.Token"), false),
            (json!("a"), false),
        ] {
            let def = machine(json!({"P": {"Type": "Pass", "ResultPath": rp, "End": true}}));
            assert_eq!(validate(&def).is_empty(), ok, "{rp}: {:?}", validate(&def));
        }
    }

    #[test]
    fn timestamps_follow_rfc_3339_as_aws_does() {
        for (t, ok) in [
            ("2026-03-14T01:59:00Z", true),
            ("2026-03-14T01:59:00.123+02:00", true),
            ("2026-03-14t01:59:00Z", false),
            ("2026-03-14T01:59:00z", false),
            ("2026-03-14", false),
            ("tomorrow", false),
        ] {
            let def = machine(json!({"W": {"Type": "Wait", "Timestamp": t, "End": true}}));
            assert_eq!(validate(&def).is_empty(), ok, "{t}");
        }
    }

    #[test]
    fn task_timeouts() {
        let ok = machine(
            json!({"T": {"Type": "Task", "Resource": LAMBDA, "End": true,
            "TimeoutSecondsPath": "$.t", "HeartbeatSeconds": 500}}),
        );
        assert!(
            validate(&ok).is_empty(),
            "a path timeout cannot be compared statically"
        );
        let bad = machine(
            json!({"T": {"Type": "Task", "Resource": LAMBDA, "End": true,
            "TimeoutSeconds": 0, "HeartbeatSeconds": 5, "HeartbeatSecondsPath": "$.h"}}),
        );
        let got = code_locations(&bad);
        assert_eq!(
            got,
            vec![
                "INVALID_VALUE /States/T/TimeoutSeconds",
                "MUTUALLY_EXCLUSIVE_FIELDS /States/T",
            ]
        );
    }

    #[test]
    fn choice_rules_report_paths_once_and_parse_errors_otherwise() {
        let def = machine(json!({
            "C": {"Type": "Choice", "Default": "D", "Choices": [
                {"Not": {"Variable": "$.a[*]", "IsPresent": true}, "Next": "D"},
                {"Variable": "$.a", "StringEquals": "x", "Next": "D", "Extra": 1},
                {"Variable": "$.a", "NumericLessThan": 3, "Next": "D"}
            ]},
            "D": {"Type": "Succeed"}
        }));
        let got = code_locations(&def);
        assert_eq!(
            got,
            vec![
                "INVALID_PATH /States/C/Choices/0/Not/Variable",
                "INVALID_CHOICE_RULE /States/C/Choices/1",
            ]
        );
    }

    #[test]
    fn jsonata_states_get_graph_checks_only() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": LAMBDA, "Arguments": {"x": "{% $states.input %}"},
                  "Output": "{% $states.result %}", "Next": "Nowhere"}
        }});
        let mut got = codes(&def);
        got.sort();
        assert_eq!(
            got,
            vec![
                one(MISSING_END_STATE, None, "/States"),
                one(MISSING_TRANSITION_TARGET, Some("T"), "/States/T/Next"),
                one(UNSUPPORTED_QUERY_LANGUAGE, None, "/QueryLanguage"),
            ]
        );
        let msg = &validate(&def)
            .into_iter()
            .find(|d| d.code == UNSUPPORTED_QUERY_LANGUAGE)
            .unwrap()
            .message;
        assert!(msg.contains("only runs the JSONPath"), "{msg}");
        // A JSONPath state inside is checked normally again.
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Pass", "QueryLanguage": "JSONPath", "InputPath": "x", "End": true}
        }});
        assert_eq!(
            codes(&def),
            vec![
                one(UNSUPPORTED_QUERY_LANGUAGE, None, "/QueryLanguage"),
                one(INVALID_PATH, Some("P"), "/States/P/InputPath"),
            ]
        );
    }

    #[test]
    fn map_fields() {
        let processor = json!({"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}});
        let ok = machine(
            json!({"M": {"Type": "Map", "End": true, "ItemsPath": "$.items",
            "Parameters": {"v.$": "$$.Map.Item.Value"}, "MaxConcurrency": 0, "Iterator": processor}}),
        );
        assert!(validate(&ok).is_empty(), "{:?}", validate(&ok));
        let bad = machine(
            json!({"M": {"Type": "Map", "End": true, "ItemProcessor": processor.clone(),
            "Iterator": processor, "ItemSelector": {"v.$": "$$.Map.Item.Value"}, "Parameters": {},
            "MaxConcurrency": 1, "MaxConcurrencyPath": "$.n"}}),
        );
        let diags = validate(&bad);
        let got: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(
            got.iter()
                .filter(|c| **c == MUTUALLY_EXCLUSIVE_FIELDS)
                .count(),
            3,
            "{got:?}"
        );
        assert!(
            got.contains(&DUPLICATE_STATE_NAME),
            "the same processor twice repeats state I"
        );
    }

    #[test]
    fn wrong_shapes_do_not_panic() {
        for def in [
            json!({"StartAt": 1, "States": []}),
            json!({"StartAt": "A", "States": {"A": 5}}),
            json!({"StartAt": "A", "States": {"A": {"Type": "Parallel", "Branches": [1, {"States": 2}], "End": true}}}),
            json!({"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [1, {"Next": 2}], "Default": []}}}),
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": 1, "Catch": [1, {"ErrorEquals": "x", "Next": 1}], "End": true}}}),
            json!({"StartAt": "A", "States": {"A": {"Type": "Map", "ItemProcessor": [], "ItemSelector": 1, "End": true}}}),
            json!("text"),
            json!(7),
        ] {
            let diags = validate(&def);
            assert!(!diags.is_empty(), "{def}");
            for d in diags {
                assert!(CODES.contains(&d.code.as_str()));
                assert!(def.pointer(&d.location).is_some(), "{def}: {d:?}");
            }
        }
    }
}
