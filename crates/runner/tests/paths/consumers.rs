//! Consumers follow the rotation: a secret whose `rotor:consumers` names an ECS-like service of
//! the local store (whose tasks read the secret once, when they start) is only rotated when
//! that service was redeployed on the new value and is healthy; a service that fails to start
//! on it is redeployed on the old value after the revert.

use super::*;
use rotor_core::consumers::{Ecs, EcsDeployment};

pub const CLUSTER: &str = "prod";
pub const SERVICE: &str = "backend";

impl Local {
    /// The version and value the service's running tasks hold (what the app stand-in uses).
    async fn task_key(&self) -> (String, String) {
        let version = self
            .store
            .serving_version(CLUSTER, SERVICE, SECRET)
            .unwrap()
            .expect("the service runs tasks that read the secret");
        let (_, value) = self
            .store
            .get_value(SECRET, &Version::Id(version.clone()))
            .await
            .unwrap();
        (version, value.expose().to_string())
    }

    /// The service's deployments as DescribeServices shows them, newest first.
    async fn deployments(&self) -> Vec<EcsDeployment> {
        let (found, failures) = self
            .store
            .describe_services(CLUSTER, &[SERVICE.to_string()])
            .await
            .unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        found[0].deployments.clone()
    }
}

/// (state, resource) of every ECS call the execution scheduled.
fn ecs_calls(outcome: &Outcome) -> Vec<(String, String)> {
    let mut state = String::new();
    let mut out = Vec::new();
    for e in &outcome.events {
        if let Some(d) = e.get("stateEnteredEventDetails") {
            state = d["name"].as_str().unwrap().to_string();
        }
        if e["type"] == "TaskScheduled"
            && e["taskScheduledEventDetails"]["resourceType"] == "aws-sdk:ecs"
        {
            let resource = e["taskScheduledEventDetails"]["resource"].as_str().unwrap();
            out.push((state.clone(), resource.to_string()));
        }
    }
    out
}

fn completed_on_every_task(d: &EcsDeployment) -> bool {
    d.status == "PRIMARY" && d.rollout_state == "COMPLETED" && d.running_count == d.desired_count
}

#[tokio::test]
async fn a_consumer_is_redeployed_on_the_new_key_before_the_app_is_probed() {
    let l = local_with(Some(false)).await;
    assert_eq!(l.task_key().await, (l.old_id.clone(), l.old_key.clone()));
    let candidate = l.vendor.issue_key("openai");
    let input = l.rotate_input("consumer-happy", &candidate).await;
    let outcome = l.run(&input, "consumer-happy").await;
    assert_eq!(outcome.status, Status::Succeeded, "{:?}", outcome.cause);
    let states = entered(&outcome);
    let at = |s: &str| {
        states
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} not entered: {states:?}"))
    };
    assert!(at("Promote") < at("RedeployConsumers"));
    assert!(at("ConsumersRedeployed") < at("ProbeApplication"));
    // UpdateService once, then DescribeServices until the deployment completed: the local
    // service settles on the second look, so two polls.
    assert_eq!(
        ecs_calls(&outcome),
        [
            ("UpdateService".to_string(), "updateService".to_string()),
            (
                "DescribeService".to_string(),
                "describeServices".to_string()
            ),
            (
                "DescribeService".to_string(),
                "describeServices".to_string()
            ),
        ]
    );
    assert_eq!(states.iter().filter(|s| *s == "WaitForRollout").count(), 2);
    // AWSCURRENT moved, and the service's newest deployment, started after it moved, holds it.
    let current = l.assert_one_working_current().await;
    assert_ne!(current, l.old_id);
    let deployments = l.deployments().await;
    assert_eq!(
        deployments.len(),
        1,
        "the old deployment was drained: {deployments:?}"
    );
    assert!(completed_on_every_task(&deployments[0]), "{deployments:?}");
    assert_eq!(l.task_key().await, (current, candidate));
    assert_eq!(l.audited("consumer-happy").outcome, "rotated");
}

#[tokio::test]
async fn without_the_redeploy_step_the_task_keeps_the_old_key() {
    // The same definition with its consumer branch cut (HasConsumers always takes its Default):
    // AWSCURRENT moves, the application probe still passes (the vendor accepts the old key
    // too), and the running tasks still hold the old key. So the step is what changes it.
    let l = local_with(Some(false)).await;
    let mut raw: Value = serde_json::from_str(load_rotation_definition()).unwrap();
    raw["States"]["HasConsumers"]["Choices"] = json!([{
        "Variable": "$.staged.secret_id", "StringEquals": "no secret has this id", "Next": "RedeployConsumers"
    }]);
    let candidate = l.vendor.issue_key("openai");
    let input = l.rotate_input("consumer-skipped", &candidate).await;
    let outcome = run_rotation(
        &raw.to_string(),
        l.services.clone(),
        &input,
        "consumer-skipped",
        RunnerOptions {
            seed: Some(3),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(outcome.status, Status::Succeeded, "{:?}", outcome.cause);
    assert!(ecs_calls(&outcome).is_empty());
    let (current, value) = l.current().await;
    assert_eq!(value, candidate);
    assert_eq!(l.task_key().await, (l.old_id.clone(), l.old_key.clone()));
    assert_ne!(current, l.old_id);
}

#[tokio::test]
async fn a_consumer_that_fails_on_the_new_key_is_reverted_and_redeployed_on_the_old_one() {
    let l = local_with(Some(true)).await;
    let candidate = l.vendor.issue_key("openai");
    let input = l.rotate_input("consumer-crash", &candidate).await;
    let outcome = l.run(&input, "consumer-crash").await;
    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(outcome.error.as_deref(), Some("Rotation.RolledBack"));
    let cause = outcome.cause.clone().unwrap();
    for part in [
        "Consumer.RolloutFailed failed after the new version",
        "ECS service backend of cluster prod (rotor:consumers ecs:prod/backend)",
        "FAILED: ECS deployment circuit breaker: tasks failed to start",
    ] {
        assert!(cause.contains(part), "{part:?} not in {cause}");
    }
    let states = entered(&outcome);
    let tail: Vec<&str> = states
        .iter()
        .skip_while(|s| *s != "ConsumerRolloutFailed")
        .map(String::as_str)
        .filter(|s| {
            !s.ends_with("OnOldValue")
                || s.starts_with("Redeploy")
                || s.starts_with("ConsumerRedeployed")
        })
        .collect();
    assert_eq!(
        tail,
        [
            "ConsumerRolloutFailed",
            "Revert",
            "HasConsumersToRestore",
            "RedeployConsumersOnOldValue",
            "ConsumerRedeployedOnOldValue",
            "IsNewIamKeyToDiscard",
            "AuditRolledBack",
            "RolledBack"
        ],
        "{states:?}"
    );
    // Redeployed twice: on the new value (failed) and on the old one (completed).
    let calls = ecs_calls(&outcome);
    assert_eq!(
        calls.iter().filter(|(_, r)| r == "updateService").count(),
        2,
        "{calls:?}"
    );
    // AWSCURRENT is back on the old version, and the service runs on it, healthy.
    assert_eq!(l.assert_one_working_current().await, l.old_id);
    let deployments = l.deployments().await;
    assert!(completed_on_every_task(&deployments[0]), "{deployments:?}");
    assert_eq!(l.task_key().await, (l.old_id.clone(), l.old_key.clone()));
    let record = l.audited("consumer-crash");
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("rolled-back", Some("Consumer.RolloutFailed"))
    );
}

#[tokio::test]
async fn a_redeploy_that_does_not_complete_in_time_reverts() {
    // One look allowed (timeout 1 s, poll 10 s): the local rollout needs two, so it times out,
    // and so does the redeploy on the old value: an operator is needed.
    let l = local_with(Some(false)).await;
    l.store
        .tag_secret(
            SECRET,
            &BTreeMap::from([(
                "rotor:consumer-timeout-seconds".to_string(),
                "1".to_string(),
            )]),
        )
        .unwrap();
    let candidate = l.vendor.issue_key("openai");
    let input = l.rotate_input("consumer-slow", &candidate).await;
    let outcome = l.run(&input, "consumer-slow").await;
    assert_eq!(outcome.error.as_deref(), Some("Rotation.RevertFailed"));
    let states = entered(&outcome);
    assert!(
        states.contains(&"ConsumerRolloutTimedOut".to_string()),
        "{states:?}"
    );
    assert!(
        states.contains(&"ConsumerRolloutTimedOutOnOldValue".to_string()),
        "{states:?}"
    );
    assert!(outcome
        .cause
        .unwrap()
        .contains("a consumer may not run on the old one"));
    // The labels were reverted all the same.
    assert_eq!(l.current().await.0, l.old_id);
    let record = l.audited("consumer-slow");
    assert_eq!(record.error.as_deref(), Some("Rotation.RevertFailed"));
}

#[tokio::test]
async fn a_bad_consumers_tag_is_refused_before_anything_changes() {
    let l = local_with(None).await;
    l.store
        .tag_secret(
            SECRET,
            &BTreeMap::from([("rotor:consumers".to_string(), "ecs:prod".to_string())]),
        )
        .unwrap();
    let candidate = l.vendor.issue_key("openai");
    let input = l.rotate_input("consumer-bad-tag", &candidate).await;
    let outcome = l.run(&input, "consumer-bad-tag").await;
    assert_eq!(outcome.error.as_deref(), Some("Input.Invalid"));
    let cause = outcome.cause.unwrap();
    assert!(
        cause.contains("tag rotor:consumers: ") && cause.contains("ecs:prod"),
        "{cause}"
    );
    assert_eq!(
        l.labels().await,
        [(l.old_id.clone(), vec![AWSCURRENT.to_string()])]
    );
}

#[test]
fn the_redeploy_after_a_revert_is_the_same_loop_as_after_promotion() {
    // State names are unique in a whole definition, so the revert's copy of the loop carries
    // a suffix; apart from the names the two must not drift apart.
    let raw: Value = serde_json::from_str(load_rotation_definition()).unwrap();
    let promoted = raw["States"]["RedeployConsumers"].clone();
    let names = promoted["ItemProcessor"]["States"].as_object().unwrap();
    for (copy, suffix) in [
        ("RedeployConsumersOnOldValue", "OnOldValue"),
        ("RedeployConsumersAfterRollback", "AfterRollback"),
    ] {
        let other = raw["States"][copy].clone();
        let text = serde_json::to_string(&other["ItemProcessor"]).unwrap();
        let unsuffixed: Value =
            serde_json::from_str(&text.replace(&format!("{suffix}\""), "\"")).unwrap();
        assert_eq!(unsuffixed, promoted["ItemProcessor"], "{copy}");
        assert_eq!(other["ItemSelector"], promoted["ItemSelector"], "{copy}");
        assert!(
            names
                .keys()
                .all(|n| text.contains(&format!("\"{n}{suffix}\""))),
            "{copy}"
        );
    }
    // Every state of the loop says what it does.
    for (name, state) in names {
        assert!(
            state["Comment"].as_str().is_some_and(|c| c.len() > 30),
            "{name} needs a Comment an auditor can read"
        );
    }
}

#[tokio::test]
async fn a_manual_rollback_redeploys_the_consumers_on_the_version_it_restores() {
    let l = local_with(Some(false)).await;
    let candidate = l.vendor.issue_key("openai");
    let rotated = l
        .run(
            &l.rotate_input("consumer-first", &candidate).await,
            "consumer-first",
        )
        .await;
    assert_eq!(rotated.status, Status::Succeeded, "{:?}", rotated.cause);
    let (new_id, _) = l.current().await;
    assert_eq!(l.task_key().await.0, new_id);
    let input = ExecutionInput {
        action: Action::Rollback,
        secret_id: SECRET.into(),
        candidate_ciphertext: None,
        requested_by: Some("github:bob".into()),
        reason: Some("the vendor revoked the new key".into()),
        target_version_id: None,
        force: false,
        recovery: None,
    };
    let outcome = l.run(&input, "consumer-manual").await;
    assert_eq!(outcome.status, Status::Succeeded, "{:?}", outcome.cause);
    let states = entered(&outcome);
    let at = |s: &str| {
        states
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s}: {states:?}"))
    };
    assert!(at("MoveCurrentBack") < at("RedeployConsumersAfterRollback"));
    assert!(at("ConsumerRedeployedAfterRollback") < at("AuditManualRollback"));
    assert_eq!(l.assert_one_working_current().await, l.old_id);
    assert!(completed_on_every_task(&l.deployments().await[0]));
    assert_eq!(l.task_key().await, (l.old_id.clone(), l.old_key.clone()));
    assert_eq!(l.audited("consumer-manual").outcome, "manual-rollback");
}
