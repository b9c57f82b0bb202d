//! What every rotor Lambda shares, so each function's `main` stays a few lines:
//! JSON logs through `tracing`, the outside-world clients built once per cold start, and
//! errors leaving through lambda_runtime's `Diagnostic` with `error_type` = the ASL error name
//! (`Probe.NotReady`, `Rotation.InProgress`, ...) that the state machine's Retry/Catch match.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use rotor_core::dispatch::Failure;
use serde_json::Value;

mod backend;
pub use backend::services_from_env;

/// A function's failure on its way out: `error_type` is the ASL error name the state machine's
/// Retry/Catch match.
fn diagnostic(f: Failure) -> Diagnostic {
    Diagnostic {
        error_type: f.error_type,
        error_message: f.error_message,
    }
}

/// JSON logs on stdout (CloudWatch), level from `RUST_LOG` (default info). Never log values:
/// handlers only see ids, and `SecretValue` redacts itself.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .try_init();
}

/// Runs the function `name` (one of `rotor_core::dispatch::FUNCTIONS`) as a Lambda function:
/// services are built once (cold start); every invocation hands its payload, as JSON, to the
/// dispatch the in-process runner uses too, so a payload that does not fit is `Input.Invalid`
/// here as there (lambda_runtime's own decoding would name a Rust type instead).
pub async fn serve(name: &'static str) -> Result<(), lambda_runtime::Error> {
    init_logging();
    if !rotor_core::dispatch::FUNCTIONS.contains(&name) {
        return Err(format!("{name} is not one of rotor's functions").into());
    }
    let services = services_from_env()
        .await
        .map_err(|e| format!("{name}: cannot start: {e}"))?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let services = services.clone();
        async move {
            let request_id = event.context.request_id.clone();
            let answer = rotor_core::dispatch::invoke(&services, name, event.payload)
                .await
                .expect("checked at start: a function of the dispatch");
            match answer {
                Ok(out) => {
                    tracing::info!(function = name, request_id, "ok");
                    Ok(out)
                }
                Err(f) => {
                    tracing::warn!(function = name, request_id, error = %f.error_type, cause = %f.error_message, "failed");
                    Err(diagnostic(f))
                }
            }
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_carry_the_asl_name() {
        let d = diagnostic(Failure::from(&rotor_core::RotorError::ProbeNotReady(
            "vendor answered 503".into(),
        )));
        assert_eq!(d.error_type, "Probe.NotReady");
        assert_eq!(d.error_message, "vendor answered 503");
    }
}
