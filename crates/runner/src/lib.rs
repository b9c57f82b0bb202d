//! rotor-runner: runs the product's state machine (`statemachine/rotation.asl.json`) on a laptop.
//!
//! The definition names its functions with Terraform placeholders (`${stage_pending_arn}`, ...).
//! [`render_definition`] fills them as Terraform's `templatefile` does, [`local_arns`] gives each
//! placeholder a local Lambda ARN, and [`LocalFunctions`] answers those functions in-process with
//! rotor-core's handlers, shaping results and errors exactly as the Lambda binaries do through
//! `lambda_runtime` (a handler error becomes a function error whose `errorType` is the error's
//! ASL name). [`run_rotation`] puts it all together on rotor-asl's executor.

pub mod ecs_tasks;

use async_trait::async_trait;
use rotor_asl::definition::StateMachine;
use rotor_asl::executor::{
    execute, Interrupt, Outcome, Resume, RunOptions, Status, ABORTED_ERROR, ACCOUNT, REGION,
};
use rotor_asl::history::Observer;
use rotor_asl::redrive::{resume_point, ResumePoint};
use rotor_asl::task::{FunctionError, FunctionInvoker, LambdaTasks};
use rotor_core::events::ExecutionInput;
use rotor_core::ports::Services;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The definition's placeholders and the function each one names (as deployed by Terraform):
/// (placeholder, local function name) of each of `rotor_core::dispatch::FUNCTIONS`, in its
/// order (a test checks that they are the same six).
pub const FUNCTIONS: [(&str, &str); 6] = [
    ("stage_pending_arn", "rotor-stage-pending"),
    ("health_probe_arn", "rotor-health-probe"),
    ("promote_arn", "rotor-promote"),
    ("revoke_old_iam_key_arn", "rotor-revoke-old-iam-key"),
    ("rollback_arn", "rotor-rollback"),
    ("audit_log_arn", "rotor-audit-log"),
];

/// The state machine's name: the definition file's name up to the first dot, as in the mock
/// configs (`statemachine/mocks/rotation.mocks.json`).
pub const STATE_MACHINE_NAME: &str = "rotation";

/// The error a run reports when the definition cannot be rendered or is not valid ASL (on AWS
/// such a definition is refused when the state machine is created, so no execution exists).
pub const DEFINITION_INVALID: &str = "Definition.Invalid";

/// The product's definition, with its `${...}` placeholders.
pub fn load_rotation_definition() -> &'static str {
    include_str!("../../../statemachine/rotation.asl.json")
}

/// Each placeholder mapped to a local Lambda ARN:
/// `arn:aws:lambda:us-east-1:123456789012:function:rotor-stage-pending`, ...
pub fn local_arns() -> BTreeMap<String, String> {
    FUNCTIONS
        .iter()
        .map(|(placeholder, function)| {
            (
                placeholder.to_string(),
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"),
            )
        })
        .collect()
}

/// Fills `${name}` placeholders as Terraform's `templatefile` does: `${ name }` may have spaces
/// inside, `$${` is a literal `${` and `%%{` a literal `%{`. A placeholder that is not in
/// `functions` is an error naming it (Terraform: "vars map does not contain key"); template
/// expressions other than a plain name and `%{...}` directives are refused, since a state
/// machine definition has no use for them.
pub fn render_definition(
    text: &str,
    functions: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest = text;
    loop {
        let Some(i) = rest.find(['$', '%']) else {
            out.push_str(rest);
            return Ok(out);
        };
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("%%{") {
            out.push_str("%{");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or_else(|| {
                format!(
                    "unterminated template interpolation at byte {i}: {:?}",
                    preview(tail)
                )
            })?;
            let name = after[..end].trim();
            let is_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !is_name {
                return Err(format!(
                    "unsupported template expression ${{{}}}: only ${{name}} placeholders are filled",
                    &after[..end]
                ));
            }
            let value = functions.get(name).ok_or_else(|| {
                format!(
                    "the definition uses the placeholder ${{{name}}}, which has no value (known: {})",
                    functions.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            out.push_str(value);
            rest = &after[end + 1..];
        } else if tail.starts_with("%{") {
            return Err(format!(
                "template directives are not supported: {:?}",
                preview(tail)
            ));
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
}

fn preview(text: &str) -> String {
    text.chars().take(40).collect()
}

pub use rotor_asl::task::function_name;

/// The six functions, answered in-process by rotor-core's handlers over `services`, or over a
/// function's own entry in `per_function` (keyed by its local name, `rotor-promote`): on AWS
/// each function runs with its own role, and this lets a run do the same (each function's
/// clients signed with that role's credentials).
#[derive(Clone)]
pub struct LocalFunctions {
    pub services: Services,
    pub per_function: BTreeMap<String, Services>,
}

impl LocalFunctions {
    pub fn new(services: Services) -> Self {
        LocalFunctions {
            services,
            per_function: BTreeMap::new(),
        }
    }

    /// The services `function` (a local name) runs with.
    pub fn services_for(&self, function: &str) -> &Services {
        self.per_function.get(function).unwrap_or(&self.services)
    }
}

/// A function's failure as the executor's Task sees it (what Lambda's `errorType` and
/// `errorMessage` become).
fn function_error(f: rotor_core::dispatch::Failure) -> FunctionError {
    FunctionError {
        error_type: f.error_type,
        error_message: f.error_message,
    }
}

#[async_trait]
impl FunctionInvoker for LocalFunctions {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError> {
        // A local name (`rotor-promote`) or a deployed one (`rotor-prod-promote`, an ARN); the
        // dispatch the Lambda binaries use (rotor_core::dispatch): the same decoding, the same
        // error names.
        let short = rotor_asl::task::resolve_function(function, rotor_core::dispatch::FUNCTIONS);
        let found = match short {
            Some(short) => {
                let svc = self.services_for(&format!("rotor-{short}"));
                rotor_core::dispatch::invoke(svc, short, payload).await
            }
            None => None,
        };
        match found {
            Some(answer) => answer.map_err(function_error),
            None => Err(FunctionError {
                // What Lambda answers for a function that does not exist.
                error_type: "Lambda.ResourceNotFoundException".into(),
                error_message: format!(
                    "Function not found: {function} (the local functions are {})",
                    FUNCTIONS.map(|(_, f)| f).join(", ")
                ),
            }),
        }
    }
}

/// How [`run_rotation`] runs.
#[derive(Clone, Default)]
pub struct RunnerOptions {
    /// Seed for retry jitter (repeatable runs); random when `None`.
    pub seed: Option<u64>,
    /// Really wait (Wait states, retry intervals) instead of advancing a virtual clock.
    pub real_time: bool,
    /// Called with each history event as it is recorded.
    pub observer: Option<Observer>,
    /// Continue an interrupted execution (see [`recovery_plan`]).
    pub resume: Option<Resume>,
    /// Stop at the next state boundary when asked (SIGINT, SIGTERM).
    pub interrupt: Option<Arc<Interrupt>>,
    /// Services of single functions (by local name, `rotor-stage-pending`) instead of the
    /// run's: see [`LocalFunctions`].
    pub function_services: BTreeMap<String, Services>,
    /// Who answers the Tasks instead of [`LocalFunctions`]: the real function binaries through
    /// a loopback Lambda Runtime API (`rotor_runtime_api::RuntimeApi`), for example.
    pub invoker: Option<Arc<dyn FunctionInvoker>>,
}

/// How an interrupted rotation is recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Go on where it stopped (redrive): after Promote (the application probe, and the revert
    /// on failure), or a rollback, or only its audit left.
    Resume,
    /// It stopped before Promote: drop its candidate and audit the rotation as abandoned, by
    /// the definition's own abandon states.
    Abandon,
}

/// The states before Promote: a rotation interrupted in one of them (or on its way into
/// Promote) is abandoned by `rotor recover` (its candidate was never made current).
pub const BEFORE_PROMOTE: [&str; 4] = [
    "CheckInput",
    "StagePending",
    "WaitForPropagation",
    "ProbeCandidate",
];

/// Where an interrupted execution of the product's definition goes on, and how: the redrive
/// point of its history (`rotor_asl::redrive`), or for [`RecoveryMode::Abandon`] the
/// definition's abandon branch (`Abandon` once a candidate was staged, else
/// `AbandonAfterStagingFailure`) with `Execution.Interrupted` as the error it records.
pub fn recovery_plan(
    definition_text: &str,
    execution_input: &Value,
    events: &[Value],
    mode: RecoveryMode,
) -> Result<ResumePoint, String> {
    let text = render_definition(definition_text, &local_arns())?;
    let machine = StateMachine::from_json(&text).map_err(|problems| {
        problems
            .iter()
            .map(|d| format!("{}: {}", d.code, d.message))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let point = resume_point(&machine, execution_input, events)?;
    // Abandoned only while Promote was never entered: once it was, AWSCURRENT may have moved,
    // and the candidate had passed its probe, so the rotation goes on (Promote is a
    // compare-and-swap, safe to run again) and reverts if the application fails.
    let promote_entered = events.iter().any(|e| {
        e["type"] == "TaskStateEntered" && e["stateEnteredEventDetails"]["name"] == "Promote"
    });
    let before = BEFORE_PROMOTE.contains(&point.state.as_str()) || point.state == "Promote";
    if mode == RecoveryMode::Resume || promote_entered || !before {
        return Ok(point);
    }
    let error = serde_json::json!({
        "Error": ABORTED_ERROR,
        "Cause": format!("the execution was interrupted in state {} before Promote; rotor recover abandoned its candidate", point.state),
    });
    let staged = point.input.get("staged").filter(|s| s.is_object()).cloned();
    Ok(match staged {
        Some(staged) => ResumePoint {
            state: "Abandon".into(),
            input: serde_json::json!({"staged": staged, "error": error}),
        },
        None => ResumePoint {
            state: "AbandonAfterStagingFailure".into(),
            input: serde_json::json!({"error": error}),
        },
    })
}

/// Runs `definition_text` (placeholders filled with [`local_arns`]) as execution `name` of the
/// state machine `rotation`, with `input`, every Task answered by [`LocalFunctions`] over
/// `services`. A definition that cannot be rendered or is invalid gives a FAILED outcome with
/// error [`DEFINITION_INVALID`] and no events.
pub async fn run_rotation(
    definition_text: &str,
    services: Services,
    input: &ExecutionInput,
    name: &str,
    options: RunnerOptions,
) -> Outcome {
    match serde_json::to_value(input) {
        Ok(input) => run_rotation_json(definition_text, services, input, name, options).await,
        Err(e) => definition_invalid(format!("the execution input does not serialise: {e}")),
    }
}

/// A FAILED outcome with error [`DEFINITION_INVALID`] and no events.
fn definition_invalid(cause: String) -> Outcome {
    Outcome {
        status: Status::Failed,
        output: None,
        error: Some(DEFINITION_INVALID.into()),
        cause: Some(cause),
        events: Vec::new(),
    }
}

/// [`run_rotation`] with the execution input as any JSON, as StartExecution takes it (an
/// unknown field or a value of the wrong type is the definition's and the functions' to refuse).
pub async fn run_rotation_json(
    definition_text: &str,
    services: Services,
    input: Value,
    name: &str,
    options: RunnerOptions,
) -> Outcome {
    let text = match render_definition(definition_text, &local_arns()) {
        Ok(t) => t,
        Err(e) => return definition_invalid(e),
    };
    let machine = match StateMachine::from_json(&text) {
        Ok(m) => m,
        Err(problems) => {
            return definition_invalid(
                problems
                    .iter()
                    .map(|d| format!("{} at {:?}: {}", d.code, d.location, d.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        }
    };
    let invoker: Arc<dyn FunctionInvoker> = match options.invoker {
        Some(invoker) => invoker,
        None => Arc::new(LocalFunctions {
            services: services.clone(),
            per_function: options.function_services,
        }),
    };
    // The definition's ECS Tasks go to the consumers' platform (the local store's services, or
    // ECS through the SDK), every other Task to the functions.
    let handler = Arc::new(ecs_tasks::Tasks {
        ecs: services.ecs.clone(),
        lambda: Arc::new(LambdaTasks { invoker }),
    });
    let mut run = RunOptions::new(name, handler);
    run.state_machine_name = STATE_MACHINE_NAME.into();
    run.seed = options.seed;
    run.real_time = options.real_time;
    run.observer = options.observer;
    run.resume = options.resume;
    run.interrupt = options.interrupt;
    execute(&machine, input, run).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_functions_are_the_dispatchs_six_in_its_order() {
        for (i, (placeholder, local)) in FUNCTIONS.iter().enumerate() {
            let f = rotor_core::dispatch::FUNCTIONS[i];
            assert_eq!(*local, format!("rotor-{f}"));
            assert_eq!(*placeholder, format!("{}_arn", f.replace('-', "_")));
        }
    }

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("a".to_string(), "A".to_string()),
            ("b_c".to_string(), "BC".to_string()),
        ])
    }

    #[test]
    fn renders_like_templatefile() {
        assert_eq!(
            render_definition("x ${a} ${ b_c } $.y $$.z", &vars()).unwrap(),
            "x A BC $.y $$.z"
        );
        assert_eq!(
            render_definition("$${a} %%{x} 100%", &vars()).unwrap(),
            "${a} %{x} 100%"
        );
        assert_eq!(
            render_definition("no placeholders", &vars()).unwrap(),
            "no placeholders"
        );
        assert_eq!(render_definition("ünï ${a}ß", &vars()).unwrap(), "ünï Aß");
    }

    #[test]
    fn refuses_what_it_cannot_fill() {
        let e = render_definition("{\"f\": \"${nope}\"}", &vars()).unwrap_err();
        assert!(e.contains("${nope}") && e.contains("a, b_c"), "{e}");
        assert!(render_definition("${a", &vars())
            .unwrap_err()
            .contains("unterminated"));
        assert!(render_definition("${var.a}", &vars())
            .unwrap_err()
            .contains("unsupported"));
        assert!(render_definition("%{ if x }", &vars())
            .unwrap_err()
            .contains("directives"));
    }

    #[test]
    fn local_arns_name_every_function() {
        let arns = local_arns();
        assert_eq!(arns.len(), FUNCTIONS.len());
        assert_eq!(
            arns["stage_pending_arn"],
            "arn:aws:lambda:us-east-1:123456789012:function:rotor-stage-pending"
        );
        for (placeholder, function) in FUNCTIONS {
            assert_eq!(function_name(&arns[placeholder]), function);
        }
    }

    #[test]
    fn the_product_definition_renders_completely() {
        let text = render_definition(load_rotation_definition(), &local_arns()).unwrap();
        assert!(!text.contains("${"));
        let def: Value = serde_json::from_str(&text).unwrap();
        let problems = rotor_asl::validate::validate(&def);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
