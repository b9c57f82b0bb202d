//! The definition's ECS Tasks (`arn:aws:states:::aws-sdk:ecs:updateService` and
//! `...:describeServices`), answered as Step Functions' AWS SDK integration answers them:
//! PascalCase parameters in, the API's response with PascalCase field names out, and an ECS
//! error as `Ecs.<code>` (`Ecs.ServiceNotFoundException`). Every other Task goes to Lambda.

use async_trait::async_trait;
use rotor_asl::error::StatesError;
use rotor_asl::task::{TaskHandler, TaskRequest};
use rotor_core::consumers::{Ecs, EcsDeployment, EcsError, EcsService};
use serde_json::{json, Value};
use std::sync::Arc;

pub const UPDATE_SERVICE: &str = "arn:aws:states:::aws-sdk:ecs:updateService";
pub const DESCRIBE_SERVICES: &str = "arn:aws:states:::aws-sdk:ecs:describeServices";
const AWS_SDK: &str = "arn:aws:states:::aws-sdk:";

/// ECS Tasks to `ecs`, everything else to `lambda`.
pub struct Tasks {
    pub lambda: Arc<dyn TaskHandler>,
    pub ecs: Arc<dyn Ecs>,
}

fn invalid(request: &TaskRequest, what: &str) -> StatesError {
    StatesError::new(
        "Ecs.InvalidParameterException",
        format!(
            "The state '{}' calls {} with {what}",
            request.state_name, request.resource
        ),
    )
}

fn string_param(request: &TaskRequest, name: &str) -> Result<String, StatesError> {
    request
        .parameters
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| invalid(request, &format!("no string parameter {name}")))
}

fn states_error(e: EcsError) -> StatesError {
    StatesError::new(format!("Ecs.{}", e.code), e.message)
}

fn deployment_json(d: &EcsDeployment) -> Value {
    json!({
        "Id": d.id,
        "Status": d.status,
        "RolloutState": d.rollout_state,
        "RolloutStateReason": d.rollout_state_reason,
        "DesiredCount": d.desired_count,
        "RunningCount": d.running_count,
        "PendingCount": d.pending_count,
        "FailedTasks": d.failed_tasks,
        "TaskDefinition": d.task_definition,
        "CreatedAt": d.created_at,
        "UpdatedAt": d.updated_at,
    })
}

fn service_json(s: &EcsService) -> Value {
    json!({
        "ServiceArn": s.service_arn,
        "ServiceName": s.service_name,
        "ClusterArn": s.cluster_arn,
        "Status": s.status,
        "DesiredCount": s.desired_count,
        "RunningCount": s.running_count,
        "PendingCount": s.pending_count,
        "TaskDefinition": s.task_definition,
        "Deployments": s.deployments.iter().map(deployment_json).collect::<Vec<_>>(),
    })
}

#[async_trait]
impl TaskHandler for Tasks {
    async fn call(&self, request: TaskRequest) -> Result<Value, StatesError> {
        match request.resource.as_str() {
            UPDATE_SERVICE => {
                let cluster = string_param(&request, "Cluster")?;
                let service = string_param(&request, "Service")?;
                let force = match request.parameters.get("ForceNewDeployment") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        return Err(invalid(&request, "a ForceNewDeployment that is not a boolean"))
                    }
                };
                let s = self
                    .ecs
                    .update_service(&cluster, &service, force)
                    .await
                    .map_err(states_error)?;
                Ok(json!({"Service": service_json(&s)}))
            }
            DESCRIBE_SERVICES => {
                let cluster = string_param(&request, "Cluster")?;
                let services: Vec<String> = request
                    .parameters
                    .get("Services")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect())
                    .ok_or_else(|| invalid(&request, "no Services parameter (an array of strings)"))?;
                let (found, failures) = self
                    .ecs
                    .describe_services(&cluster, &services)
                    .await
                    .map_err(states_error)?;
                Ok(json!({
                    "Services": found.iter().map(service_json).collect::<Vec<_>>(),
                    "Failures": failures.iter().map(|f| json!({"Arn": f.arn, "Reason": f.reason})).collect::<Vec<_>>(),
                }))
            }
            other if other.starts_with(AWS_SDK) => Err(StatesError::runtime(format!(
                "The state '{}' calls {other}: rotor's executor answers the AWS SDK integrations {UPDATE_SERVICE} and {DESCRIBE_SERVICES} only",
                request.state_name
            ))),
            _ => self.lambda.call(request).await,
        }
    }
}
