//! Consumers: what must pick up a secret's new value after a rotation promotes it, and the
//! platform that runs them (ECS, as far as rotor knows one yet).
//!
//! A secret names its consumers in the tag [`TAG_CONSUMERS`], comma-separated, each as
//! `<kind>:<target>`. The one kind today is `ecs:<cluster>/<service>` (names, a cluster ARN in
//! place of the cluster name, or a service ARN alone): an ECS service whose task definition
//! reads the secret with `secrets[].valueFrom`. ECS reads such a secret once, when a task
//! starts, so a rotation is only done when the service runs new tasks on the new value: the
//! state machine forces a new deployment (`UpdateService`) and polls `DescribeServices` until
//! that deployment is `COMPLETED` (see statemachine/rotation.asl.json, `RedeployConsumers`).
//!
//! [`Ecs`] is the platform as a port: the state machine's AWS SDK integrations
//! (`arn:aws:states:::aws-sdk:ecs:*`) are answered by it when rotor's own executor runs the
//! definition (the local store's services, or ECS through the SDK); on AWS Step Functions
//! calls ECS itself.

use crate::error::{Result, RotorError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const TAG_CONSUMERS: &str = "rotor:consumers";
/// How long one consumer's redeployment may take before the rotation is reverted.
pub const TAG_CONSUMER_TIMEOUT: &str = "rotor:consumer-timeout-seconds";
/// How long the state machine waits between two looks at a redeployment.
pub const TAG_CONSUMER_POLL: &str = "rotor:consumer-poll-seconds";

pub const DEFAULT_TIMEOUT_SECONDS: u64 = 900;
pub const DEFAULT_POLL_SECONDS: u64 = 15;
/// At most this many looks per redeployment: each is about ten history events, and an
/// execution has 25,000.
pub const MAX_POLLS: u64 = 1000;

/// One consumer as the state machine iterates over them (`$.staged.consumers[*]`): where it
/// is, and how often and how long to look at its redeployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    /// As the tag wrote it: `ecs:prod/backend`.
    pub name: String,
    /// `ecs`.
    pub kind: String,
    /// The cluster's name or ARN.
    pub cluster: String,
    /// The service's name or ARN.
    pub service: String,
    pub poll_seconds: u64,
    /// Looks at the redeployment before it counts as timed out (the timeout over the poll
    /// interval, rounded up).
    pub max_polls: u64,
}

fn seconds(tags: &BTreeMap<String, String>, key: &str, default: u64, min: u64) -> Result<u64> {
    match tags.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=86_400).contains(n))
            .ok_or_else(|| {
                RotorError::input(format!(
                    "tag {key} is {v:?}; expected a whole number of seconds ({min} to 86400)"
                ))
            }),
    }
}

/// `arn:aws:ecs:<region>:<account>:<kind>/<rest>` -> `<rest>`.
fn ecs_arn_resource<'a>(text: &'a str, kind: &str) -> Option<&'a str> {
    let mut parts = text.splitn(6, ':');
    let (arn, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (_region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    if arn != "arn" || service != "ecs" {
        return None;
    }
    resource.strip_prefix(kind)?.strip_prefix('/')
}

fn is_name(text: &str) -> bool {
    // ECS cluster and service names: up to 255 letters, digits, hyphens and underscores.
    !text.is_empty()
        && text.len() <= 255
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `ecs:<cluster>/<service>`, `ecs:<cluster ARN>/<service>` or `ecs:<service ARN>` ->
/// (cluster, service).
fn parse_ecs(target: &str) -> Option<(String, String)> {
    if let Some(rest) = ecs_arn_resource(target, "service") {
        // The long service ARN names its cluster: service/<cluster>/<service>.
        let (cluster, service) = rest.split_once('/')?;
        return (is_name(cluster) && is_name(service))
            .then(|| (cluster.to_string(), target.to_string()));
    }
    let (cluster, service) = target.rsplit_once('/')?;
    let cluster_ok = is_name(cluster) || ecs_arn_resource(cluster, "cluster").is_some_and(is_name);
    (cluster_ok && is_name(service)).then(|| (cluster.to_string(), service.to_string()))
}

/// The consumers the tags declare (none without [`TAG_CONSUMERS`]); every problem names the tag.
pub fn from_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Consumer>> {
    let timeout = seconds(tags, TAG_CONSUMER_TIMEOUT, DEFAULT_TIMEOUT_SECONDS, 1)?;
    let poll = seconds(tags, TAG_CONSUMER_POLL, DEFAULT_POLL_SECONDS, 0)?;
    let max_polls = timeout.div_ceil(poll.max(1)).max(1);
    if max_polls > MAX_POLLS {
        return Err(RotorError::input(format!(
            "tags {TAG_CONSUMER_TIMEOUT} ({timeout}) and {TAG_CONSUMER_POLL} ({poll}) make {max_polls} looks at each redeployment; at most {MAX_POLLS} fit in an execution's history (poll less often)"
        )));
    }
    let Some(value) = tags.get(TAG_CONSUMERS) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Consumer> = Vec::new();
    for entry in value.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(RotorError::input(format!(
                "tag {TAG_CONSUMERS} is {value:?}: it has an empty entry; expected ecs:<cluster>/<service>, comma-separated"
            )));
        }
        let (kind, target) = entry.split_once(':').unwrap_or((entry, ""));
        let (cluster, service) = match kind {
            "ecs" => parse_ecs(target).ok_or_else(|| {
                RotorError::input(format!(
                    "tag {TAG_CONSUMERS}: {entry:?} is not an ECS service; expected ecs:<cluster>/<service> (names of letters, digits, - and _; or a cluster ARN and a service name; or a service ARN)"
                ))
            })?,
            other => {
                return Err(RotorError::input(format!(
                    "tag {TAG_CONSUMERS}: {entry:?} has kind {other:?}; the kinds rotor can redeploy are: ecs (as ecs:<cluster>/<service>)"
                )))
            }
        };
        if out.iter().any(|c| c.name == entry) {
            return Err(RotorError::input(format!(
                "tag {TAG_CONSUMERS} names {entry:?} twice"
            )));
        }
        out.push(Consumer {
            name: entry.to_string(),
            kind: kind.to_string(),
            cluster,
            service,
            poll_seconds: poll,
            max_polls,
        });
    }
    Ok(out)
}

/// One deployment of an ECS service, as DescribeServices answers it (the fields rotor reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsDeployment {
    pub id: String,
    /// `PRIMARY` (the newest), `ACTIVE` (older ones still running tasks), `INACTIVE`.
    pub status: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`.
    pub rollout_state: String,
    pub rollout_state_reason: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub failed_tasks: i32,
    pub task_definition: String,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsService {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub task_definition: String,
    /// Newest first, as ECS lists them.
    pub deployments: Vec<EcsDeployment>,
}

/// A service DescribeServices could not describe (`reason` `MISSING`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsFailure {
    pub arn: String,
    pub reason: String,
}

/// An ECS API error: its code as the service names it (`ServiceNotFoundException`,
/// `ClusterNotFoundException`, `ThrottlingException`...), which a Step Functions SDK
/// integration reports as `Ecs.<code>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsError {
    pub code: String,
    pub message: String,
}

impl EcsError {
    pub fn new(code: &str, message: impl Into<String>) -> EcsError {
        EcsError {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// The ECS calls a consumer refresh makes.
#[async_trait]
pub trait Ecs: Send + Sync {
    /// UpdateService(cluster, service, forceNewDeployment): answers the service with its new
    /// PRIMARY deployment.
    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        force_new_deployment: bool,
    ) -> std::result::Result<EcsService, EcsError>;

    /// DescribeServices(cluster, services).
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> std::result::Result<(Vec<EcsService>, Vec<EcsFailure>), EcsError>;
}

/// A platform without ECS (a store that keeps no services): every call is
/// `ClusterNotFoundException`, naming the cluster.
pub struct NoEcs;

#[async_trait]
impl Ecs for NoEcs {
    async fn update_service(
        &self,
        cluster: &str,
        _service: &str,
        _force: bool,
    ) -> std::result::Result<EcsService, EcsError> {
        Err(EcsError::new(
            "ClusterNotFoundException",
            format!("Cluster not found: {cluster} (this backend keeps no ECS services)"),
        ))
    }

    async fn describe_services(
        &self,
        cluster: &str,
        _services: &[String],
    ) -> std::result::Result<(Vec<EcsService>, Vec<EcsFailure>), EcsError> {
        Err(EcsError::new(
            "ClusterNotFoundException",
            format!("Cluster not found: {cluster} (this backend keeps no ECS services)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_tag_no_consumers() {
        assert_eq!(from_tags(&tags(&[])).unwrap(), vec![]);
    }

    #[test]
    fn reads_names_and_arns_with_their_rollout_bounds() {
        let c = from_tags(&tags(&[
            (
                TAG_CONSUMERS,
                "ecs:prod/backend, ecs:arn:aws:ecs:us-east-1:123456789012:cluster/prod/worker,ecs:arn:aws:ecs:us-east-1:123456789012:service/prod/api",
            ),
            (TAG_CONSUMER_TIMEOUT, "100"),
            (TAG_CONSUMER_POLL, "30"),
        ]))
        .unwrap();
        let got: Vec<_> = c
            .iter()
            .map(|c| (c.cluster.as_str(), c.service.as_str(), c.max_polls))
            .collect();
        assert_eq!(
            got,
            [
                ("prod", "backend", 4),
                (
                    "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
                    "worker",
                    4
                ),
                (
                    "prod",
                    "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
                    4
                )
            ]
        );
        assert_eq!(c[0].name, "ecs:prod/backend");
        assert_eq!(c[0].poll_seconds, 30);
        let d = from_tags(&tags(&[(TAG_CONSUMERS, "ecs:a/b")])).unwrap();
        assert_eq!((d[0].poll_seconds, d[0].max_polls), (15, 60));
    }

    #[test]
    fn problems_name_the_tag_and_the_entry() {
        for (value, says) in [
            ("ecs:prod", "\"ecs:prod\" is not an ECS service"),
            ("ecs:prod/", "is not an ECS service"),
            ("ecs:pr od/x", "is not an ECS service"),
            ("lambda:f", "has kind \"lambda\""),
            ("ecs:a/b,,ecs:c/d", "an empty entry"),
            ("ecs:a/b,ecs:a/b", "twice"),
            (
                "ecs:arn:aws:ecs:us-east-1:1:service/x",
                "is not an ECS service",
            ),
        ] {
            let e = from_tags(&tags(&[(TAG_CONSUMERS, value)])).unwrap_err();
            assert_eq!(e.asl_name(), "Input.Invalid");
            let m = e.to_string();
            assert!(
                m.contains(TAG_CONSUMERS) && m.contains(says),
                "{value}: {m}"
            );
        }
        let e = from_tags(&tags(&[(TAG_CONSUMER_TIMEOUT, "0")])).unwrap_err();
        assert!(e.to_string().contains(TAG_CONSUMER_TIMEOUT), "{e}");
        let e = from_tags(&tags(&[(TAG_CONSUMER_POLL, "soon")])).unwrap_err();
        assert!(e.to_string().contains(TAG_CONSUMER_POLL), "{e}");
        let e = from_tags(&tags(&[
            (TAG_CONSUMER_TIMEOUT, "3000"),
            (TAG_CONSUMER_POLL, "1"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("at most 1000"), "{e}");
    }
}
