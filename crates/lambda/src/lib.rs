//! What every rotor Lambda shares, so each function's `main` stays a few lines:
//! JSON logs through `tracing`, the outside-world clients built once per cold start, and
//! errors leaving through lambda_runtime's `Diagnostic` with `error_type` = the ASL error name
//! (`Probe.NotReady`, `Rotation.InProgress`, ...) that the state machine's Retry/Catch match.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use rotor_core::ports::Services;
use rotor_core::RotorError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;

mod backend;
pub use backend::services_from_env;

/// A handler's error on its way out of the function.
#[derive(Debug)]
pub struct FunctionError(pub RotorError);

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Diagnostic {
        Diagnostic {
            error_type: e.0.asl_name().to_string(),
            error_message: e.0.to_string(),
        }
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

/// Runs `handler` as a Lambda function: services are built once (cold start), every invocation
/// decodes the event, calls the core handler and encodes its result.
pub async fn serve<I, O, F, Fut>(
    name: &'static str,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(Services, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = rotor_core::Result<O>> + Send,
{
    init_logging();
    let services = services_from_env()
        .await
        .map_err(|e| format!("{name}: cannot start: {e}"))?;
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<I>| {
        let services = services.clone();
        let handler = handler.clone();
        async move {
            let request_id = event.context.request_id.clone();
            match handler(services, event.payload).await {
                Ok(out) => {
                    tracing::info!(function = name, request_id, "ok");
                    Ok(out)
                }
                Err(e) => {
                    tracing::warn!(function = name, request_id, error = e.asl_name(), cause = %e, "failed");
                    Err(FunctionError(e))
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
        let d: Diagnostic =
            FunctionError(RotorError::ProbeNotReady("vendor answered 503".into())).into();
        assert_eq!(d.error_type, "Probe.NotReady");
        assert_eq!(d.error_message, "vendor answered 503");
    }
}
