//! [`Ecs`] on Amazon ECS: UpdateService and DescribeServices, for the state machine's consumer
//! refresh when rotor's executor runs it against AWS (or moto). On AWS itself Step Functions
//! makes these calls (`arn:aws:states:::aws-sdk:ecs:*`).

use crate::errors::{classify, Failure};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ecs::types::{Deployment, Service};
use aws_sdk_ecs::Client;
use rotor_core::consumers::{Ecs, EcsDeployment, EcsError, EcsFailure, EcsService};

#[derive(Clone, Debug)]
pub struct AwsEcs {
    client: Client,
}

impl AwsEcs {
    pub fn new(config: &SdkConfig) -> AwsEcs {
        AwsEcs {
            client: Client::new(config),
        }
    }
}

/// The error code a Step Functions SDK integration would name (`Ecs.<code>`): the service's,
/// or for a request that never got an answer the SDK's client error.
fn ecs_error(failure: Failure, operation: &str) -> EcsError {
    match &failure {
        Failure::Service { code, .. } => EcsError::new(
            code.as_deref().unwrap_or("UnknownError"),
            format!("ECS {operation}: {}", failure.cause()),
        ),
        _ => EcsError::new(
            "SdkClientException",
            format!("ECS {operation}: {}", failure.cause()),
        ),
    }
}

fn deployment(d: &Deployment) -> EcsDeployment {
    let time =
        |t: Option<&aws_smithy_types::DateTime>| t.map(crate::to_rfc3339).unwrap_or_default();
    EcsDeployment {
        id: d.id().unwrap_or_default().to_string(),
        status: d.status().unwrap_or_default().to_string(),
        rollout_state: d
            .rollout_state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        rollout_state_reason: d.rollout_state_reason().unwrap_or_default().to_string(),
        desired_count: d.desired_count(),
        running_count: d.running_count(),
        pending_count: d.pending_count(),
        failed_tasks: d.failed_tasks(),
        task_definition: d.task_definition().unwrap_or_default().to_string(),
        created_at: time(d.created_at()),
        updated_at: time(d.updated_at()),
    }
}

fn service(s: &Service) -> EcsService {
    EcsService {
        service_arn: s.service_arn().unwrap_or_default().to_string(),
        service_name: s.service_name().unwrap_or_default().to_string(),
        cluster_arn: s.cluster_arn().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        desired_count: s.desired_count(),
        running_count: s.running_count(),
        pending_count: s.pending_count(),
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        deployments: s.deployments().iter().map(deployment).collect(),
    }
}

#[async_trait]
impl Ecs for AwsEcs {
    async fn update_service(
        &self,
        cluster: &str,
        service_name: &str,
        force_new_deployment: bool,
    ) -> Result<EcsService, EcsError> {
        let out = self
            .client
            .update_service()
            .cluster(cluster)
            .service(service_name)
            .force_new_deployment(force_new_deployment)
            .send()
            .await
            .map_err(|e| ecs_error(classify(&e), "UpdateService"))?;
        out.service().map(service).ok_or_else(|| {
            EcsError::new(
                "SdkClientException",
                "ECS UpdateService answered without a service",
            )
        })
    }

    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<(Vec<EcsService>, Vec<EcsFailure>), EcsError> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .set_services(Some(services.to_vec()))
            .send()
            .await
            .map_err(|e| ecs_error(classify(&e), "DescribeServices"))?;
        Ok((
            out.services().iter().map(service).collect(),
            out.failures()
                .iter()
                .map(|f| EcsFailure {
                    arn: f.arn().unwrap_or_default().to_string(),
                    reason: f.reason().unwrap_or_default().to_string(),
                })
                .collect(),
        ))
    }
}
