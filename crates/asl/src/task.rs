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

/// Step Functions reports a function error with Error = errorType and Cause = the error JSON.
pub fn function_error(e: &FunctionError) -> StatesError {
    let cause = json!({"errorMessage": e.error_message, "errorType": e.error_type});
    StatesError::new(e.error_type.clone(), cause.to_string())
}
