//! How a Task state reaches the outside world.
//!
//! The executor hands each Task invocation to a [`TaskHandler`] with its resource ARN and the
//! effective parameters (after InputPath/Parameters). [`LambdaTasks`] turns a plain function
//! invoker into a handler that shapes results exactly as Step Functions does for the optimized
//! `arn:aws:states:::lambda:invoke` integration and for a bare Lambda ARN.

use crate::error::StatesError;
use async_trait::async_trait;
use serde_json::{json, Value};

/// One invocation of a Task state.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    pub state_name: String,
    pub resource: String,
    /// The state's effective input after InputPath and Parameters.
    pub parameters: Value,
    /// 0 on the first attempt, then the retry count (`$$.State.RetryCount`).
    pub retry_count: u32,
    /// The context object at the time of the call.
    pub context: Value,
}

#[async_trait]
pub trait TaskHandler: Send + Sync {
    async fn call(&self, request: TaskRequest) -> Result<Value, StatesError>;
}

/// A Lambda function's error as the Lambda service reports it (`errorType`, `errorMessage`).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionError {
    pub error_type: String,
    pub error_message: String,
}

/// Invokes a function by name or ARN with a JSON payload.
#[async_trait]
pub trait FunctionInvoker: Send + Sync {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError>;
}

pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// The function a name, a partial ARN or an ARN (with or without a version or alias) names:
/// `rotor-promote`, `123456789012:function:rotor-promote`,
/// `arn:aws:lambda:us-east-1:123456789012:function:rotor-promote:live`.
pub fn function_name(function: &str) -> &str {
    match function.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => function,
    }
}

/// Which of `known` (short function names: `promote`, `stage-pending`) the function `function`
/// (a name or an ARN, see [`function_name`]) is: the one it is, or the longest one it ends with
/// after a dash, as deployments prefix their functions (`rotor-prod-promote` is `promote`).
pub fn resolve_function<'a>(
    function: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let name = function_name(function);
    known
        .into_iter()
        .filter(|k| {
            !k.is_empty()
                && (name == *k
                    || name
                        .strip_suffix(*k)
                        .is_some_and(|head| head.ends_with('-')))
        })
        .max_by_key(|k| k.len())
}

/// Adapts a [`FunctionInvoker`] to the two ways a state machine calls Lambda.
pub struct LambdaTasks<I> {
    pub invoker: I,
}

#[async_trait]
impl<I: FunctionInvoker> TaskHandler for LambdaTasks<I> {
    async fn call(&self, request: TaskRequest) -> Result<Value, StatesError> {
        let optimized = request.resource == LAMBDA_INVOKE
            || request.resource.starts_with(&format!("{LAMBDA_INVOKE}."));
        let (function, payload) = if optimized {
            let function = request
                .parameters
                .get("FunctionName")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    StatesError::runtime(format!(
                        "The state '{}' calls {LAMBDA_INVOKE} without a string FunctionName parameter",
                        request.state_name
                    ))
                })?
                .to_string();
            let payload = request
                .parameters
                .get("Payload")
                .cloned()
                .unwrap_or(Value::Null);
            (function, payload)
        } else {
            (request.resource.clone(), request.parameters.clone())
        };
        match self.invoker.invoke(&function, payload).await {
            Ok(result) if optimized => Ok(invoke_result(result, &request_id(&request))),
            Ok(result) => Ok(result),
            Err(e) => Err(function_error(&e)),
        }
    }
}

/// The result of the optimized `lambda:invoke` integration: the function's output under
/// `Payload`, wrapped in the Lambda Invoke response metadata, as the Step Functions developer
/// guide shows it ("Invoke Lambda with Step Functions": `ExecutedVersion`, `Payload`,
/// `SdkHttpMetadata` {`HttpHeaders`, `HttpStatusCode`}, `SdkResponseMetadata` {`RequestId`},
/// `StatusCode`). Recent executions also carry `AllHttpHeaders` (each header as a list).
pub fn invoke_result(payload: Value, request_id: &str) -> Value {
    let headers = [
        ("Connection", "keep-alive".to_string()),
        ("Content-Length", payload.to_string().len().to_string()),
        ("Content-Type", "application/json".to_string()),
        ("X-Amz-Executed-Version", "$LATEST".to_string()),
        ("x-amzn-Remapped-Content-Length", "0".to_string()),
        ("x-amzn-RequestId", request_id.to_string()),
    ];
    let all: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!([v])))
        .collect();
    let single: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": all,
            "HttpHeaders": single,
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    })
}

/// A request id for one invocation: a UUID derived from the execution, the state, its entry
/// time, the attempt and the parameters, so that a seeded run is reproducible.
fn request_id(request: &TaskRequest) -> String {
    let key = format!(
        "{}|{}|{}|{}|{}",
        request.context["Execution"]["Id"],
        request.state_name,
        request.context["State"]["EnteredTime"],
        request.retry_count,
        request.parameters
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes()).to_string()
}

/// Lets a shared invoker (`Arc<dyn FunctionInvoker>`) serve as one.
#[async_trait]
impl<T: FunctionInvoker + ?Sized> FunctionInvoker for std::sync::Arc<T> {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError> {
        (**self).invoke(function, payload).await
    }
}

/// Step Functions reports a function error with Error = errorType and Cause = the error JSON.
pub fn function_error(e: &FunctionError) -> StatesError {
    let cause = json!({"errorMessage": e.error_message, "errorType": e.error_type});
    StatesError::new(e.error_type.clone(), cause.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_names_and_arns() {
        assert_eq!(function_name("rotor-promote"), "rotor-promote");
        assert_eq!(
            function_name("123456789012:function:rotor-promote"),
            "rotor-promote"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:rotor-promote:live"),
            "rotor-promote"
        );
    }

    #[test]
    fn a_deployed_name_resolves_to_the_function_it_ends_with() {
        let known = ["stage-pending", "pending", "promote", "rollback"];
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:rotor-m1f-stage-pending";
        assert_eq!(resolve_function(arn, known), Some("stage-pending"));
        assert_eq!(resolve_function("promote", known), Some("promote"));
        assert_eq!(resolve_function("rotor-promote:live", known), None);
        assert_eq!(
            resolve_function("123456789012:function:rotor-rollback:live", known),
            Some("rollback")
        );
        assert_eq!(resolve_function("rotor-mypromote", known), None);
        assert_eq!(resolve_function("rotor-revert", known), None);
    }
}
