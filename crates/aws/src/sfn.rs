//! Step Functions' reads that rotor makes on an execution: DescribeExecution and every page of
//! GetExecutionHistory, as the service sent them. One place for the CLI (`rotor start --wait`,
//! `history --execution-arn`, `recover`) and the moto harness.

use crate::errors::{map_sdk_error, Call};
use aws_sdk_sfn::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_sfn::config::{ConfigBag, Intercept, RuntimeComponents};
use rotor_core::error::{Result, RotorError};
use serde_json::Value;
use std::sync::{Arc, Mutex};

const SERVICE: &str = "Step Functions";

/// What DescribeExecution says.
#[derive(Debug, Clone)]
pub struct Described {
    pub name: String,
    pub status: String,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// DescribeExecution of `arn`.
pub async fn describe(client: &aws_sdk_sfn::Client, arn: &str) -> Result<Described> {
    let d = client
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| {
            map_sdk_error(
                &e,
                Call::new(SERVICE, "DescribeExecution", &format!("execution {arn}")),
            )
        })?;
    Ok(Described {
        name: d.name().map(str::to_string).unwrap_or_default(),
        status: d.status().as_str().to_string(),
        input: d.input().map(str::to_string),
        output: d.output().map(str::to_string),
        error: d.error().map(str::to_string),
        cause: d.cause().map(str::to_string),
    })
}

/// Every event of an execution, oldest first, exactly as GetExecutionHistory sent them (with
/// execution data).
///
/// The SDK's `HistoryEvent` has no serde support and a conversion by hand would drop whatever
/// it does not know, so each page's raw response body is kept by an interceptor (the SDK still
/// signs, sends and checks the call, and the raw and parsed answers must agree).
pub async fn execution_history(client: &aws_sdk_sfn::Client, arn: &str) -> Result<Vec<Value>> {
    let mut events = Vec::new();
    let mut next: Option<String> = None;
    let unreadable = |what: String| {
        RotorError::internal(format!(
            "Step Functions GetExecutionHistory for {arn}: {what}"
        ))
    };
    loop {
        let capture = CaptureBody::default();
        let page = client
            .get_execution_history()
            .execution_arn(arn)
            .include_execution_data(true)
            .max_results(1000)
            .set_next_token(next.clone())
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
            .map_err(|e| {
                map_sdk_error(
                    &e,
                    Call::new(SERVICE, "GetExecutionHistory", &format!("execution {arn}")),
                )
            })?;
        let body = capture
            .take()
            .ok_or_else(|| unreadable("the response body was not kept".into()))?;
        let json: Value = serde_json::from_slice(&body)
            .map_err(|e| unreadable(format!("the answer is not JSON: {e}")))?;
        let Some(Value::Array(raw)) = json.get("events") else {
            return Err(unreadable("the answer has no events list".into()));
        };
        if raw.len() != page.events().len() {
            return Err(unreadable("the raw and the parsed answers disagree".into()));
        }
        events.extend(raw.iter().cloned());
        match page.next_token().filter(|t| !t.is_empty()) {
            Some(t) if Some(t) != next.as_deref() => next = Some(t.to_string()),
            _ => return Ok(events),
        }
    }
}

/// Keeps the body of the HTTP response it sees.
#[derive(Debug, Clone, Default)]
struct CaptureBody(Arc<Mutex<Option<Vec<u8>>>>);

impl CaptureBody {
    fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Intercept for CaptureBody {
    fn name(&self) -> &'static str {
        "rotor::CaptureBody"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(bytes) = context.response().body().bytes() {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes.to_vec());
        }
        Ok(())
    }
}
