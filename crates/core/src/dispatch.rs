//! One dispatch for every way a function runs: the Lambda binaries (`rotor_lambda::serve`) and
//! the in-process runner (`rotor_runner::LocalFunctions`) both hand a function's name and its
//! JSON payload here, so a payload is decoded, a handler chosen and an error named the same
//! way in both (a payload that does not fit is `Input.Invalid`, naming what serde found wrong,
//! never a Rust type name).

use crate::handlers;
use crate::ports::Services;
use crate::RotorError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;

/// The six functions, by the name of their crate under `functions/` (the Lambda function is
/// `<name>-<environment>-<function>` on AWS, `rotor-<function>` locally). The one list: the
/// runner, the Terraform test helpers and the permission check are checked against it.
pub const FUNCTIONS: [&str; 6] = [
    "stage-pending",
    "health-probe",
    "promote",
    "revoke-old-iam-key",
    "rollback",
    "audit-log",
];

/// A function's failure as Lambda reports it: `errorType` (an ASL error name) and
/// `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error_type: String,
    pub error_message: String,
}

impl From<&RotorError> for Failure {
    fn from(e: &RotorError) -> Failure {
        Failure {
            error_type: e.asl_name().to_string(),
            error_message: e.to_string(),
        }
    }
}

async fn call<I, O, Fut>(
    function: &str,
    payload: Value,
    handler: impl FnOnce(I) -> Fut,
) -> Result<Value, Failure>
where
    I: DeserializeOwned,
    O: Serialize,
    Fut: Future<Output = crate::Result<O>>,
{
    let input: I = serde_json::from_value(payload).map_err(|e| {
        Failure::from(&RotorError::input(format!(
            "{function}: the payload does not match the function's input: {e}"
        )))
    })?;
    let output = handler(input).await.map_err(|e| Failure::from(&e))?;
    serde_json::to_value(output).map_err(|e| {
        Failure::from(&RotorError::internal(format!(
            "{function}: the output does not serialise: {e}"
        )))
    })
}

/// Runs `function` (one of [`FUNCTIONS`]) on `payload` over `svc`; `None` when no function
/// has that name (the caller says so the way its platform does).
pub async fn invoke(
    svc: &Services,
    function: &str,
    payload: Value,
) -> Option<Result<Value, Failure>> {
    Some(match function {
        "stage-pending" => call(function, payload, |i| handlers::stage_pending(svc, i)).await,
        "health-probe" => call(function, payload, |i| handlers::health_probe(svc, i)).await,
        "promote" => call(function, payload, |i| handlers::promote(svc, i)).await,
        "revoke-old-iam-key" => {
            call(function, payload, |i| handlers::revoke_old_iam_key(svc, i)).await
        }
        "rollback" => call(function, payload, |i| handlers::rollback(svc, i)).await,
        "audit-log" => call(function, payload, |i| handlers::audit_log(svc, i)).await,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::PromoteInput;

    async fn never(_: PromoteInput) -> crate::Result<Value> {
        unreachable!("a payload that does not decode reaches no handler")
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_payload_that_does_not_fit_is_input_invalid_naming_what_is_wrong() {
        let ok = serde_json::json!({"secret_id": "s", "pending_version_id": "p", "previous_version_id": "q"});
        for (payload, says) in [
            (
                serde_json::json!({"secret_id": 7}),
                "invalid type: integer `7`",
            ),
            (serde_json::json!("text"), "invalid type: string"),
            (
                {
                    let mut p = ok.clone();
                    p["colour"] = "red".into();
                    p
                },
                "unknown field `colour`",
            ),
        ] {
            let f = run(call("promote", payload, never)).unwrap_err();
            assert_eq!(f.error_type, "Input.Invalid");
            assert!(
                f.error_message
                    .starts_with("promote: the payload does not match the function's input: ")
                    && f.error_message.contains(says),
                "{}",
                f.error_message
            );
        }
    }

    #[test]
    fn a_handler_error_keeps_its_asl_name() {
        let ok = serde_json::json!({"secret_id": "s", "pending_version_id": "p", "previous_version_id": "q"});
        let f = run(call("promote", ok, |_: PromoteInput| async {
            Err::<Value, _>(RotorError::ProbeNotReady("vendor answered 503".into()))
        }))
        .unwrap_err();
        assert_eq!(
            f,
            Failure {
                error_type: "Probe.NotReady".into(),
                error_message: "vendor answered 503".into()
            }
        );
    }
}
