//! IAM access key rotation end to end on the local store: the rotation state machine with the
//! real handlers (`LocalFunctions`) over the store's IAM and its local STS
//! (`CallerIdentity for LocalStore`, which authenticates keys and records their use).
//!
//! Scenarios: happy path (with a permitted probe action); a new key not usable for its first
//! N authentications (IAM's eventual consistency, simulated by
//! `LocalStore::set_key_propagation`), retried by the state machine; the two-key limit with an
//! Inactive stale key (deleted, audited) and with two Active keys (`Rotation.KeyLimit`,
//! nothing changed); the old key used during the grace period (a stand-in consumer, hooked on
//! the history's `WaitGracePeriod` entry, records a use after deactivation) -> reverted.
//! After every scenario the invariants hold: at most two keys; AWSCURRENT's key exists, is
//! Active and authenticates; AWSPREVIOUS (when present) is the old key; no key secret in the
//! history, the output or the audit log.

use rotor_asl::executor::{Outcome, Status};
use rotor_core::events::{Action, ExecutionInput};
use rotor_core::iam::KeyValue;
use rotor_core::ports::*;
use rotor_core::secret::{Version, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use rotor_local_store::LocalStore;
use rotor_probe_http::ReqwestProber;
use rotor_runner::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const SECRET: &str = "richesreach/development/aws_access_key";
const USER: &str = "richesreach-app";

struct World {
    _dir: tempfile::TempDir,
    store: LocalStore,
    services: Services,
    old: NewAccessKey,
    old_version: String,
    /// Every secret access key the test has seen: none may appear in any output.
    secrets: Mutex<Vec<String>>,
}

async fn world(extra_tags: &[(&str, &str)]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("store")).unwrap();
    store.create_user(USER).unwrap();
    let old = Iam::create_access_key(&store, USER).await.unwrap();
    let mut tags: BTreeMap<String, String> = [
        ("rotor:kind", "iam-access-key"),
        ("rotor:iam-user", USER),
        ("rotor:wait-propagation-seconds", "10"),
        ("rotor:wait-consumers-seconds", "60"),
        ("rotor:grace-seconds", "3600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra_tags {
        tags.insert(k.to_string(), v.to_string());
    }
    let value = KeyValue {
        access_key_id: old.access_key_id.clone(),
        secret_access_key: old.secret_access_key.clone(),
        user_name: Some(USER.into()),
    }
    .to_value();
    let old_version = store.create_secret(SECRET, &value, tags, None).unwrap();
    let services = Services {
        store: Arc::new(store.clone()),
        kms: Arc::new(store.clone()),
        iam: Arc::new(store.clone()),
        sts: Arc::new(store.clone()),
        prober: Arc::new(ReqwestProber::new(std::time::Duration::from_secs(5))),
        audit: Arc::new(store.clone()),
        clock: Arc::new(SystemClock),
        ecs: Arc::new(store.clone()),
        probe_hosts: Default::default(),
    };
    let secrets = Mutex::new(vec![old.secret_access_key.expose().to_string()]);
    World {
        _dir: dir,
        store,
        services,
        old,
        old_version,
        secrets,
    }
}

fn input() -> ExecutionInput {
    ExecutionInput {
        action: Action::Rotate,
        secret_id: SECRET.into(),
        candidate_ciphertext: None,
        requested_by: Some("test:iam".into()),
        reason: Some("iam key rotation".into()),
        target_version_id: None,
        force: false,
        recovery: None,
    }
}

fn arn(name: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:{STATE_MACHINE_NAME}:{name}")
}

fn entered(outcome: &Outcome) -> Vec<String> {
    outcome
        .events
        .iter()
        .filter_map(|e| e.get("stateEnteredEventDetails"))
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

fn attempts(outcome: &Outcome, state: &str) -> usize {
    let mut current = String::new();
    let mut n = 0;
    for e in &outcome.events {
        if let Some(d) = e.get("stateEnteredEventDetails") {
            current = d["name"].as_str().unwrap().to_string();
        }
        if e["type"] == "TaskScheduled" && current == state {
            n += 1;
        }
    }
    n
}

impl World {
    async fn run(&self, name: &str, observer: Option<rotor_asl::history::Observer>) -> Outcome {
        let options = RunnerOptions {
            seed: Some(5),
            observer,
            ..Default::default()
        };
        run_rotation(
            load_rotation_definition(),
            self.services.clone(),
            &input(),
            name,
            options,
        )
        .await
    }

    async fn keys(&self) -> Vec<AccessKeyInfo> {
        Iam::list_access_keys(&self.store, USER).await.unwrap()
    }

    async fn key_at(&self, stage: &str) -> Option<(String, KeyValue)> {
        let info = self.store.describe(SECRET).await.unwrap();
        let v = info.version_with(stage)?.version_id.clone();
        let (_, value) = self
            .store
            .get_value(SECRET, &Version::Id(v.clone()))
            .await
            .unwrap();
        let key = KeyValue::parse(SECRET, &v, &value).unwrap();
        self.secrets
            .lock()
            .unwrap()
            .push(key.secret_access_key.expose().to_string());
        Some((v, key))
    }

    /// The invariants every scenario ends with. `previous`: the key AWSPREVIOUS must hold.
    async fn invariants(&self, outcome: &Outcome, previous: Option<&str>) {
        let keys = self.keys().await;
        assert!(keys.len() <= 2, "at most two keys: {keys:?}");
        let (_, current) = self.key_at(AWSCURRENT).await.expect("an AWSCURRENT");
        let k = keys
            .iter()
            .find(|k| k.access_key_id == current.access_key_id)
            .unwrap_or_else(|| panic!("AWSCURRENT's key exists: {keys:?}"));
        assert_eq!(k.status, "Active", "AWSCURRENT's key is Active");
        let who = CallerIdentity::caller_identity(
            &self.store,
            &current.access_key_id,
            &current.secret_access_key,
        )
        .await
        .expect("AWSCURRENT's key authenticates");
        assert_eq!(who.user_name.as_deref(), Some(USER));
        match (self.key_at(AWSPREVIOUS).await, previous) {
            (Some((_, k)), Some(p)) => assert_eq!(k.access_key_id, p, "AWSPREVIOUS"),
            (None, None) => {}
            (got, want) => panic!(
                "AWSPREVIOUS holds {:?}, expected {want:?}",
                got.map(|(_, k)| k.access_key_id)
            ),
        }
        assert!(
            self.key_at(AWSPENDING).await.is_none(),
            "no AWSPENDING left"
        );
        let text = format!(
            "{:?}{}{:?}",
            outcome.events,
            outcome.output.clone().unwrap_or(Value::Null),
            self.store.audit_records(None).unwrap()
        );
        for s in self.secrets.lock().unwrap().iter() {
            assert!(!text.contains(s.as_str()), "a key secret leaked");
        }
    }

    fn audited(&self, name: &str) -> AuditRecord {
        self.store
            .audit_records(Some(SECRET))
            .unwrap()
            .into_iter()
            .find(|r| r.execution_id == arn(name))
            .unwrap_or_else(|| panic!("no audit record for {name}"))
    }
}

const ROTATED: &[&str] = &[
    "CheckInput",
    "StagePending",
    "WaitForPropagation",
    "ProbeCandidate",
    "Promote",
    "HasConsumers",
    "NoConsumersToRedeploy",
    "WaitForConsumers",
    "ProbeApplication",
    "IsIamAccessKey",
    "DeactivateOldKey",
    "WaitGracePeriod",
    "DeleteOldKey",
    "AuditRotated",
    "Rotated",
];

#[tokio::test]
async fn happy_path_creates_proves_promotes_deactivates_and_deletes() {
    let w = world(&[("rotor:iam-probe-action", "iam:GetUser")]).await;
    let outcome = w.run("iam-happy", None).await;
    assert_eq!(
        outcome.status,
        Status::Succeeded,
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    assert_eq!(entered(&outcome), ROTATED);
    let (_, new) = w.key_at(AWSCURRENT).await.unwrap();
    assert_ne!(new.access_key_id, w.old.access_key_id);
    let keys = w.keys().await;
    assert_eq!(keys.len(), 1, "the old key was deleted: {keys:?}");
    let out = outcome.output.clone().unwrap();
    assert_eq!(out["staged"]["iam"]["new_access_key_id"], new.access_key_id);
    assert_eq!(
        out["staged"]["iam"]["old_access_key_id"],
        w.old.access_key_id
    );
    let proof = out["candidate_probe"]["proof"].as_str().unwrap();
    assert!(proof.contains("sts:GetCallerIdentity"), "{proof}");
    assert!(proof.contains("iam:GetUser was permitted"), "{proof}");
    assert_eq!(out["old_key_deactivated"]["changed"], true);
    assert_eq!(out["old_key_deleted"]["changed"], true);
    let record = w.audited("iam-happy");
    assert_eq!(record.outcome, "rotated");
    let iam = record.iam.expect("the audit record names the keys");
    assert_eq!(iam.new_access_key_id, new.access_key_id);
    assert_eq!(
        iam.old_access_key_id.as_deref(),
        Some(w.old.access_key_id.as_str())
    );
    w.invariants(&outcome, Some(&w.old.access_key_id)).await;
}

#[tokio::test]
async fn a_new_key_not_ready_for_its_first_probes_is_retried_then_promoted() {
    let w = world(&[]).await;
    w.store.set_key_propagation(3);
    let outcome = w.run("iam-not-ready", None).await;
    assert_eq!(
        outcome.status,
        Status::Succeeded,
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    assert_eq!(entered(&outcome), ROTATED);
    assert_eq!(
        attempts(&outcome, "ProbeCandidate"),
        4,
        "3 NotReady, then ready"
    );
    let failures: Vec<&Value> = outcome
        .events
        .iter()
        .filter(|e| e["type"] == "TaskFailed")
        .collect();
    assert_eq!(failures.len(), 3);
    for f in failures {
        assert_eq!(f["taskFailedEventDetails"]["error"], "Probe.NotReady");
    }
    w.invariants(&outcome, Some(&w.old.access_key_id)).await;
}

#[tokio::test]
async fn two_keys_with_an_inactive_stale_one_deletes_it_and_audits_it() {
    let w = world(&[]).await;
    let stale = Iam::create_access_key(&w.store, USER).await.unwrap();
    w.secrets
        .lock()
        .unwrap()
        .push(stale.secret_access_key.expose().to_string());
    Iam::set_access_key_active(&w.store, USER, &stale.access_key_id, false)
        .await
        .unwrap();
    let outcome = w.run("iam-stale", None).await;
    assert_eq!(
        outcome.status,
        Status::Succeeded,
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    let keys = w.keys().await;
    assert!(
        keys.iter().all(|k| k.access_key_id != stale.access_key_id),
        "{keys:?}"
    );
    let record = w.audited("iam-stale");
    assert_eq!(
        record
            .iam
            .and_then(|i| i.deleted_stale_access_key_id)
            .as_deref(),
        Some(stale.access_key_id.as_str()),
        "the stale key's deletion is audited"
    );
    w.invariants(&outcome, Some(&w.old.access_key_id)).await;
}

#[tokio::test]
async fn two_active_keys_is_key_limit_and_nothing_changes() {
    let w = world(&[]).await;
    let other = Iam::create_access_key(&w.store, USER).await.unwrap();
    w.secrets
        .lock()
        .unwrap()
        .push(other.secret_access_key.expose().to_string());
    // In use (it signed a call): not an orphan of a lost CreateAccessKey answer.
    CallerIdentity::caller_identity(&w.store, &other.access_key_id, &other.secret_access_key)
        .await
        .unwrap();
    let info_before = w.store.describe(SECRET).await.unwrap();
    let keys_before = w.keys().await;
    let outcome = w.run("iam-limit", None).await;
    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(outcome.error.as_deref(), Some("Rotation.KeyLimit"));
    assert_eq!(
        entered(&outcome),
        ["CheckInput", "StagePending", "AuditRefused", "Refused"]
    );
    assert!(outcome
        .cause
        .as_deref()
        .unwrap()
        .contains(&other.access_key_id));
    assert_eq!(w.store.describe(SECRET).await.unwrap(), info_before);
    assert_eq!(w.keys().await, keys_before);
    let record = w.audited("iam-limit");
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("refused", Some("Rotation.KeyLimit"))
    );
    w.invariants(&outcome, None).await;
}

#[tokio::test]
async fn the_old_key_used_during_grace_reverts_the_rotation() {
    let w = world(&[]).await;
    // A consumer still on the old key: it signs a request while the old key is Inactive,
    // during the grace period (the store records the use, as IAM's last-used tracking does).
    let consumer_store = w.store.clone();
    let old_id = w.old.access_key_id.clone();
    let used = Arc::new(Mutex::new(false));
    let used_in = used.clone();
    let observer: rotor_asl::history::Observer = Arc::new(move |e: &Value| {
        if e["type"] == "WaitStateEntered"
            && e["stateEnteredEventDetails"]["name"] == "WaitGracePeriod"
        {
            // Strictly after the deactivation (times are kept to the millisecond).
            std::thread::sleep(std::time::Duration::from_millis(3));
            consumer_store.record_key_use(&old_id).unwrap();
            *used_in.lock().unwrap() = true;
        }
    });
    let outcome = w.run("iam-in-use", Some(observer)).await;
    assert!(
        *used.lock().unwrap(),
        "the consumer ran during the grace period"
    );
    assert_eq!(outcome.status, Status::Failed);
    assert_eq!(outcome.error.as_deref(), Some("Rotation.RolledBack"));
    let cause = outcome.cause.clone().unwrap();
    assert!(cause.contains("Revoke.OldKeyStillInUse"), "{cause}");
    assert_eq!(
        entered(&outcome)[ROTATED.len() - 2..],
        [
            "Revert",
            "HasConsumersToRestore",
            "AuditRolledBack",
            "RolledBack"
        ]
    );
    let staged_new = outcome.events.iter().find_map(|e| {
        let out = e.get("taskSucceededEventDetails")?["output"].as_str()?;
        let v: Value = serde_json::from_str(out).ok()?;
        v["Payload"]["iam"]["new_access_key_id"]
            .as_str()
            .map(str::to_string)
    });
    let new_id = staged_new.expect("stage-pending's output names the new key");
    let (version, current) = w.key_at(AWSCURRENT).await.unwrap();
    assert_eq!(
        version, w.old_version,
        "AWSCURRENT is the old version again"
    );
    assert_eq!(current.access_key_id, w.old.access_key_id);
    let keys = w.keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].access_key_id, w.old.access_key_id);
    assert_eq!(keys[0].status, "Active", "the old key is Active again");
    assert!(
        keys.iter().all(|k| k.access_key_id != new_id),
        "new key gone"
    );
    let record = w.audited("iam-in-use");
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("rolled-back", Some("Revoke.OldKeyStillInUse"))
    );
    // AWSPREVIOUS is back where it was before the rotation (on no version): the version that
    // held the (now deleted) new key keeps no label, so no rollback can go back to it.
    let previous = w.key_at(AWSPREVIOUS).await.map(|(_, k)| k.access_key_id);
    assert_eq!(previous, None);
    w.invariants(&outcome, None).await;
}

#[tokio::test]
async fn a_consumer_still_on_the_old_key_after_its_redeploy_reverts_before_deactivation() {
    // The key's consumer is an ECS-like service: it is redeployed on the new key and its
    // deployment completes; then something still signs with the old key (a consumer rotor
    // was not told about, or one that cached it). AWS's order: GetAccessKeyLastUsed on the
    // old key before deactivating it, so the rotation reverts with the old key never touched.
    let w = world(&[
        ("rotor:consumers", "ecs:ci/deployer"),
        ("rotor:consumer-poll-seconds", "5"),
    ])
    .await;
    w.store
        .create_service(&rotor_local_store::ServiceSpec {
            cluster: "ci".into(),
            service: "deployer".into(),
            desired_count: 1,
            secrets: vec![SECRET.into()],
            crash_on_new_value: false,
        })
        .unwrap();
    let consumer_store = w.store.clone();
    let old_id = w.old.access_key_id.clone();
    let used = Arc::new(Mutex::new(false));
    let used_in = used.clone();
    let keys_during_redeploy = Arc::new(Mutex::new(None));
    let keys_seen = keys_during_redeploy.clone();
    let key_store = w.store.clone();
    let observer: rotor_asl::history::Observer = Arc::new(move |e: &Value| {
        if e["type"] == "TaskStateEntered"
            && e["stateEnteredEventDetails"]["name"] == "UpdateServiceOnOldValue"
        {
            // The local store answers at once: no runtime needed to wait for it.
            let n = futures::executor::block_on(Iam::list_access_keys(&key_store, USER))
                .unwrap()
                .len();
            *keys_seen.lock().unwrap() = Some(n);
        }
        if e["type"] == "PassStateEntered"
            && e["stateEnteredEventDetails"]["name"] == "ConsumersRedeployed"
        {
            // Strictly after the deployment completed (times are kept to the millisecond).
            std::thread::sleep(std::time::Duration::from_millis(3));
            consumer_store.record_key_use(&old_id).unwrap();
            *used_in.lock().unwrap() = true;
        }
    });
    let outcome = w.run("iam-consumer-old-key", Some(observer)).await;
    assert!(
        *used.lock().unwrap(),
        "the old key was used after the redeploy"
    );
    assert_eq!(outcome.error.as_deref(), Some("Rotation.RolledBack"));
    let cause = outcome.cause.clone().unwrap();
    assert!(
        cause.contains("Revoke.OldKeyStillInUse") && cause.contains("the last, ecs:ci/deployer"),
        "{cause}"
    );
    let states = entered(&outcome);
    assert!(states.contains(&"UpdateService".to_string()), "{states:?}");
    assert!(
        !states.contains(&"WaitGracePeriod".to_string()),
        "{states:?}"
    );
    let after: Vec<&str> = states
        .iter()
        .map(String::as_str)
        .skip_while(|s| *s != "DeactivateOldKey")
        .filter(|s| !s.ends_with("OnOldValue") || *s == "RedeployConsumersOnOldValue")
        .collect();
    assert_eq!(
        after,
        [
            "DeactivateOldKey",
            "Revert",
            "HasConsumersToRestore",
            "RedeployConsumersOnOldValue",
            "IsNewIamKeyToDiscard",
            "DiscardNewKey",
            "AuditRolledBack",
            "RolledBack"
        ]
    );
    assert_eq!(
        *keys_during_redeploy.lock().unwrap(),
        Some(2),
        "the new key was kept while the service was redeployed on the old one"
    );
    // The old key is Active (it was never deactivated), AWSCURRENT holds it, the new key is
    // gone, and the service runs on the old key again.
    let (version, current) = w.key_at(AWSCURRENT).await.unwrap();
    assert_eq!(version, w.old_version);
    assert_eq!(current.access_key_id, w.old.access_key_id);
    let keys = w.keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].access_key_id, w.old.access_key_id);
    assert_eq!(keys[0].status, "Active");
    assert_eq!(
        w.store.serving_version("ci", "deployer", SECRET).unwrap(),
        Some(w.old_version.clone())
    );
    let record = w.audited("iam-consumer-old-key");
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("rolled-back", Some("Revoke.OldKeyStillInUse"))
    );
    w.invariants(&outcome, None).await;
}
