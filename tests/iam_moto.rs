//! IAM access key rotation against moto through the AWS adapters (IAM, STS, Secrets Manager),
//! with moto's request authentication ON, so that a deleted key is really rejected and the
//! invariant "AWSCURRENT's key authenticates" means something.
//!
//! moto's authentication switch (`POST /moto-api/reset-auth`) is global to a moto process, and
//! with it on every request needs credentials moto knows: the shared moto of `scripts/test`
//! (used in parallel by the other suites with the dummy `testing` credentials) must never see
//! it. So this binary starts its OWN moto (the venv's, `scripts/moto_launcher.py`, on a free
//! loopback port, stopped when the test ends), creates an admin user and key there while auth
//! is still off, turns auth on, and runs every scenario in one test, one after the other.
//!
//! What moto does and does not do (moto 5.2.5, read in its source):
//! * Every request signed with a known access key updates that key's LastUsedDate
//!   (`mark_account_as_visited`), whatever the key's status: a consumer still on the old key
//!   during the grace period shows up in GetAccessKeyLastUsed as on AWS.
//! * An Inactive key still authenticates (moto never checks key status): deactivation is
//!   asserted through ListAccessKeys' status, never through a rejected call.
//! * A new key is usable at once (no eventual consistency): "not ready for the first N probes"
//!   is a test wrapper around the real STS adapter that answers `Probe.NotReady` N times
//!   before delegating (what the adapter maps STS's InvalidClientTokenId to).
//!
//! The grace-period scenario runs the executor on the real clock with a 3-second grace: a
//! stand-in consumer, started when the history shows `WaitGracePeriod` entered, signs an
//! sts:GetCallerIdentity with the old (Inactive) key 1.5 s later, before DeleteOldKey runs.

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::config::Credentials;
use rotor_asl::executor::{Outcome, Status};
use rotor_aws::{AwsAdapters, AwsIam, Sts};
use rotor_core::error::{Result as RotorResult, RotorError};
use rotor_core::events::{Action, ExecutionInput};
use rotor_core::iam::KeyValue;
use rotor_core::ports::*;
use rotor_core::secret::{SecretValue, Version, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use rotor_runner::{load_rotation_definition, run_rotation, RunnerOptions};
use rotor_tests::moto::PrivateMoto;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ------------------------------------------------------------------------ a private moto

async fn config(endpoint: &str, creds: Credentials) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await
}

/// One moto user per function, named as the permission check's key of that function
/// (`rotor-fn-promote`), allowed everything (moto checks authentication, not permissions), with
/// one key each: created once per run, on the first World.
async fn function_configs(admin: &SdkConfig) -> BTreeMap<String, SdkConfig> {
    static KEYS: tokio::sync::OnceCell<BTreeMap<String, (String, String)>> =
        tokio::sync::OnceCell::const_new();
    let keys = KEYS
        .get_or_init(|| async {
            let raw = aws_sdk_iam::Client::new(admin);
            let mut keys = BTreeMap::new();
            for (_, function) in rotor_runner::FUNCTIONS {
                let user = rotor_tests::principals::function_key(function);
                raw.create_user().user_name(&user).send().await.unwrap();
                raw.put_user_policy()
                    .user_name(&user)
                    .policy_name("moto-authentication-only")
                    .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
                    .send()
                    .await
                    .unwrap();
                let key = raw
                    .create_access_key()
                    .user_name(&user)
                    .send()
                    .await
                    .unwrap()
                    .access_key
                    .unwrap();
                keys.insert(
                    function.to_string(),
                    (key.access_key_id, key.secret_access_key),
                );
            }
            keys
        })
        .await;
    let endpoint = admin.endpoint_url().expect("moto endpoint").to_string();
    let mut configs = BTreeMap::new();
    for (function, (id, secret)) in keys {
        let creds = Credentials::new(id, secret, None, None, "function");
        configs.insert(function.clone(), config(&endpoint, creds).await);
    }
    configs
}

// ------------------------------------------------------------------------ ports for the test

/// The audit sink (moto 5.2.5 cannot serve the CloudWatch SDK's protocol): keeps the records.
#[derive(Default)]
struct Recorder(Mutex<Vec<AuditRecord>>);

#[async_trait]
impl AuditSink for Recorder {
    async fn record(&self, record: &AuditRecord) -> RotorResult<()> {
        let mut r = self.0.lock().unwrap();
        r.retain(|x| x.execution_id != record.execution_id);
        r.push(record.clone());
        Ok(())
    }
    async fn metric(&self, _: &Metric) -> RotorResult<()> {
        Ok(())
    }
}

/// The real STS adapter, after `Probe.NotReady` for the first `n` calls (a new key's
/// propagation, which moto does not have).
struct NotReadyFirst {
    left: AtomicU32,
    inner: Sts,
}

#[async_trait]
impl CallerIdentity for NotReadyFirst {
    async fn caller_identity(&self, id: &str, secret: &SecretValue) -> RotorResult<Identity> {
        if self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(RotorError::ProbeNotReady(format!(
                "STS does not accept access key {id} (yet) (InvalidClientTokenId, simulated)"
            )));
        }
        CallerIdentity::caller_identity(&self.inner, id, secret).await
    }
    async fn permitted_call(
        &self,
        id: &str,
        secret: &SecretValue,
        action: ProbeAction,
    ) -> RotorResult<String> {
        CallerIdentity::permitted_call(&self.inner, id, secret, action).await
    }
}

// ------------------------------------------------------------------------ one scenario's world

struct World {
    adapters: AwsAdapters,
    /// Each function's configuration, signed with its own moto user's key.
    functions: BTreeMap<String, SdkConfig>,
    iam: AwsIam,
    sts: Sts,
    recorder: Arc<Recorder>,
    services: Services,
    user: String,
    secret_id: String,
    old: NewAccessKey,
    old_version: String,
    secrets: Mutex<Vec<String>>,
}

const POLICY_GET_USER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}"#;

impl World {
    async fn new(admin: &SdkConfig, label: &str, tags: &[(&str, &str)]) -> World {
        let adapters = AwsAdapters::from_config(admin.clone(), "alias/unused");
        let functions = function_configs(admin).await;
        let iam = AwsIam::new(admin);
        let sts = Sts::new(admin);
        let user = rotor_tests::contract::unique(&format!("iam-{label}"));
        let raw = aws_sdk_iam::Client::new(admin);
        raw.create_user().user_name(&user).send().await.unwrap();
        raw.put_user_policy()
            .user_name(&user)
            .policy_name("rotor-probe")
            .policy_document(POLICY_GET_USER)
            .send()
            .await
            .unwrap();
        let old = Iam::create_access_key(&iam, &user).await.unwrap();
        let secret_id = rotor_tests::contract::unique(&format!("iam-moto-{label}"));
        let mut all = BTreeMap::from([
            ("rotor:kind".to_string(), "iam-access-key".to_string()),
            ("rotor:iam-user".to_string(), user.clone()),
            ("rotor:wait-propagation-seconds".into(), "0".into()),
            ("rotor:wait-consumers-seconds".into(), "0".into()),
            ("rotor:grace-seconds".into(), "3".into()),
        ]);
        for (k, v) in tags {
            all.insert(k.to_string(), v.to_string());
        }
        let value = KeyValue {
            access_key_id: old.access_key_id.clone(),
            secret_access_key: old.secret_access_key.clone(),
            user_name: Some(user.clone()),
        }
        .to_value();
        let old_version = adapters
            .store
            .create_secret(&secret_id, &value, &all, None, None)
            .await
            .unwrap();
        let recorder = Arc::new(Recorder::default());
        let mut services = adapters.services().unwrap();
        services.audit = recorder.clone();
        let secrets = Mutex::new(vec![old.secret_access_key.expose().to_string()]);
        World {
            adapters,
            functions,
            iam,
            sts,
            recorder,
            services,
            user,
            secret_id,
            old,
            old_version,
            secrets,
        }
    }

    async fn run(
        &self,
        name: &str,
        real_time: bool,
        observer: Option<rotor_asl::history::Observer>,
    ) -> Outcome {
        let input = ExecutionInput {
            action: Action::Rotate,
            secret_id: self.secret_id.clone(),
            candidate_ciphertext: None,
            requested_by: Some("iam_moto".into()),
            reason: Some("acceptance".into()),
            target_version_id: None,
            force: false,
            recovery: None,
        };
        run_rotation(
            load_rotation_definition(),
            self.services.clone(),
            &input,
            &rotor_tests::contract::unique(name),
            RunnerOptions {
                seed: Some(3),
                real_time,
                observer,
                resume: None,
                interrupt: None,
                // Each function signed as its own role: scripts/permissions.py checks the calls.
                function_services: rotor_tests::principals::function_services_with(
                    &self.services,
                    |function| self.functions[function].clone(),
                    "alias/unused",
                    false,
                ),
                invoker: None,
            },
        )
        .await
    }

    async fn keys(&self) -> Vec<AccessKeyInfo> {
        Iam::list_access_keys(&self.iam, &self.user).await.unwrap()
    }

    async fn key_at(&self, stage: &str) -> Option<(String, KeyValue)> {
        let info = self.adapters.store.describe(&self.secret_id).await.unwrap();
        let v = info.version_with(stage)?.version_id.clone();
        let (_, value) = self
            .adapters
            .store
            .get_value(&self.secret_id, &Version::Id(v.clone()))
            .await
            .unwrap();
        let key = KeyValue::parse(&self.secret_id, &v, &value).unwrap();
        self.secrets
            .lock()
            .unwrap()
            .push(key.secret_access_key.expose().to_string());
        Some((v, key))
    }

    async fn invariants(&self, what: &str, outcome: &Outcome, previous: Option<&str>) {
        let keys = self.keys().await;
        assert!(keys.len() <= 2, "{what}: at most two keys: {keys:?}");
        let (_, current) = self.key_at(AWSCURRENT).await.expect("AWSCURRENT");
        let k = keys
            .iter()
            .find(|k| k.access_key_id == current.access_key_id)
            .unwrap_or_else(|| panic!("{what}: AWSCURRENT's key exists: {keys:?}"));
        assert_eq!(k.status, "Active", "{what}: AWSCURRENT's key is Active");
        let who = CallerIdentity::caller_identity(
            &self.sts,
            &current.access_key_id,
            &current.secret_access_key,
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: AWSCURRENT's key authenticates with STS: {e}"));
        assert_eq!(who.user_name.as_deref(), Some(self.user.as_str()), "{what}");
        match (self.key_at(AWSPREVIOUS).await, previous) {
            (Some((_, k)), Some(p)) => assert_eq!(k.access_key_id, p, "{what}: AWSPREVIOUS"),
            (None, None) => {}
            (got, want) => panic!(
                "{what}: AWSPREVIOUS holds {:?}, expected {want:?}",
                got.map(|(_, k)| k.access_key_id)
            ),
        }
        assert!(
            self.key_at(AWSPENDING).await.is_none(),
            "{what}: AWSPENDING left"
        );
        let text = format!(
            "{:?}{:?}{}{:?}",
            outcome.events,
            outcome.cause,
            outcome.output.clone().unwrap_or(Value::Null),
            self.recorder.0.lock().unwrap()
        );
        for s in self.secrets.lock().unwrap().iter() {
            assert!(!text.contains(s.as_str()), "{what}: a key secret leaked");
        }
    }

    fn audit(&self) -> AuditRecord {
        let r = self.recorder.0.lock().unwrap();
        assert_eq!(r.len(), 1, "one audit record: {r:?}");
        r[0].clone()
    }
}

fn new_key_of(outcome: &Outcome) -> String {
    outcome
        .events
        .iter()
        .find_map(|e| {
            let out = e.get("taskSucceededEventDetails")?["output"].as_str()?;
            let v: Value = serde_json::from_str(out).ok()?;
            v["Payload"]["iam"]["new_access_key_id"]
                .as_str()
                .map(str::to_string)
        })
        .expect("stage-pending's output names the new key")
}

fn ok(what: &str, outcome: &Outcome) {
    assert_eq!(
        outcome.status,
        Status::Succeeded,
        "{what}: {:?} {:?}",
        outcome.error,
        outcome.cause
    );
}

// ------------------------------------------------------------------------ the scenarios

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_key_rotation_on_moto_with_authentication_on() {
    let moto = tokio::task::spawn_blocking(|| PrivateMoto::start("iam"))
        .await
        .unwrap();
    // While auth is off: an admin user and key for everything the test itself does.
    let bootstrap = config(
        &moto.endpoint,
        Credentials::new("testing", "testing", None, None, "t"),
    )
    .await;
    let raw = aws_sdk_iam::Client::new(&bootstrap);
    raw.create_user()
        .user_name("rotor-test-admin")
        .send()
        .await
        .unwrap();
    raw.put_user_policy()
        .user_name("rotor-test-admin")
        .policy_name("admin")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let key = raw
        .create_access_key()
        .user_name("rotor-test-admin")
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let admin = config(
        &moto.endpoint,
        Credentials::new(
            key.access_key_id,
            key.secret_access_key,
            None,
            None,
            "admin",
        ),
    )
    .await;
    assert!(moto.post("/moto-api/reset-auth", "0").is_some());
    // Auth is on: an unknown key is refused now.
    let bogus = Sts::new(&bootstrap);
    assert!(
        bogus
            .caller_identity("AKIAUNKNOWNKEY000000", &SecretValue::new("x"))
            .await
            .is_err(),
        "moto's authentication is on"
    );

    // 1. Happy path, with a permitted probe action (the user's policy allows iam:GetUser).
    let w = World::new(
        &admin,
        "happy",
        &[("rotor:iam-probe-action", "iam:GetUser")],
    )
    .await;
    let outcome = w.run("iam-happy", false, None).await;
    ok("happy", &outcome);
    let new_id = new_key_of(&outcome);
    let keys = w.keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].access_key_id, new_id);
    let proof = outcome.output.clone().unwrap()["candidate_probe"]["proof"].to_string();
    assert!(proof.contains("iam:GetUser was permitted"), "{proof}");
    let gone = w
        .sts
        .caller_identity(&w.old.access_key_id, &w.old.secret_access_key)
        .await;
    assert!(gone.is_err(), "the deleted old key is rejected by STS");
    assert_eq!(w.audit().outcome, "rotated");
    w.invariants("happy", &outcome, Some(&w.old.access_key_id))
        .await;

    // A probe action the user is not permitted: Probe.Rejected, abandoned, new key gone.
    let w = World::new(
        &admin,
        "denied",
        &[("rotor:iam-probe-action", "secretsmanager:ListSecrets")],
    )
    .await;
    let outcome = w.run("iam-denied", false, None).await;
    assert_eq!(
        outcome.error.as_deref(),
        Some("Probe.Rejected"),
        "{:?}",
        outcome.cause
    );
    assert_eq!(
        w.keys().await.len(),
        1,
        "the new key was deleted on abandon"
    );
    w.invariants("denied", &outcome, None).await;

    // 2. The new key not ready for its first 3 probes, then ready.
    let mut w = World::new(&admin, "notready", &[]).await;
    w.services.sts = Arc::new(NotReadyFirst {
        left: AtomicU32::new(3),
        inner: Sts::new(&admin),
    });
    let outcome = w.run("iam-not-ready", false, None).await;
    ok("not ready", &outcome);
    let probes = outcome
        .events
        .iter()
        .filter(|e| e["type"] == "TaskFailed")
        .count();
    assert_eq!(probes, 3, "three Probe.NotReady, retried");
    w.invariants("not ready", &outcome, Some(&w.old.access_key_id))
        .await;

    // 3. Two keys, the other Inactive: deleted first, and audited.
    let w = World::new(&admin, "stale", &[]).await;
    let stale = Iam::create_access_key(&w.iam, &w.user).await.unwrap();
    w.secrets
        .lock()
        .unwrap()
        .push(stale.secret_access_key.expose().to_string());
    Iam::set_access_key_active(&w.iam, &w.user, &stale.access_key_id, false)
        .await
        .unwrap();
    let outcome = w.run("iam-stale", false, None).await;
    ok("stale", &outcome);
    assert!(w
        .keys()
        .await
        .iter()
        .all(|k| k.access_key_id != stale.access_key_id));
    assert_eq!(
        w.audit().iam.and_then(|i| i.deleted_stale_access_key_id),
        Some(stale.access_key_id.clone())
    );
    w.invariants("stale", &outcome, Some(&w.old.access_key_id))
        .await;

    // 4. Two Active keys, the other one in use (it signed a call, so GetAccessKeyLastUsed
    //    shows it: not an orphan of a lost CreateAccessKey answer, which nobody could use):
    //    Rotation.KeyLimit, nothing changed.
    let w = World::new(&admin, "limit", &[]).await;
    let other = Iam::create_access_key(&w.iam, &w.user).await.unwrap();
    w.secrets
        .lock()
        .unwrap()
        .push(other.secret_access_key.expose().to_string());
    CallerIdentity::caller_identity(&w.sts, &other.access_key_id, &other.secret_access_key)
        .await
        .expect("the other key signs a call");
    assert!(
        Iam::access_key_last_used(&w.iam, &other.access_key_id)
            .await
            .unwrap()
            .is_some(),
        "moto records the other key's use"
    );
    let keys_before = w.keys().await;
    // moto's ListSecretVersionIds reports every version's CreatedDate as the time of the call
    // (moto/secretsmanager/models.py, list_secret_version_ids), so creation times are left out
    // of the comparison: ids, labels and tags must be unchanged.
    let described = |mut info: rotor_core::secret::SecretInfo| {
        for v in info.versions.iter_mut() {
            v.created_at.clear();
        }
        info
    };
    let info_before = described(w.adapters.store.describe(&w.secret_id).await.unwrap());
    let outcome = w.run("iam-limit", false, None).await;
    assert_eq!(
        outcome.error.as_deref(),
        Some("Rotation.KeyLimit"),
        "{:?}",
        outcome.cause
    );
    assert_eq!(w.keys().await, keys_before);
    assert_eq!(
        described(w.adapters.store.describe(&w.secret_id).await.unwrap()),
        info_before
    );
    w.invariants("limit", &outcome, None).await;

    // 5. The old key used during the grace period: reverted.
    let w = World::new(&admin, "inuse", &[]).await;
    let consumer = Sts::new(&admin);
    let (old_id, old_secret) = (w.old.access_key_id.clone(), w.old.secret_access_key.clone());
    let calls: Arc<Mutex<Vec<tokio::task::JoinHandle<bool>>>> = Arc::default();
    let calls_in = calls.clone();
    let rt = tokio::runtime::Handle::current();
    let observer: rotor_asl::history::Observer = Arc::new(move |e: &Value| {
        if e["type"] == "WaitStateEntered"
            && e["stateEnteredEventDetails"]["name"] == "WaitGracePeriod"
        {
            let (sts, id, secret) = (consumer.clone(), old_id.clone(), old_secret.clone());
            calls_in.lock().unwrap().push(rt.spawn(async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                // moto accepts the Inactive key (it never checks status) and records the use.
                sts.caller_identity(&id, &secret).await.is_ok()
            }));
        }
    });
    let outcome = w.run("iam-in-use", true, Some(observer)).await;
    let handles: Vec<_> = calls.lock().unwrap().drain(..).collect();
    assert_eq!(handles.len(), 1, "the consumer ran during the grace period");
    for h in handles {
        assert!(h.await.unwrap(), "moto accepted the Inactive old key");
    }
    assert_eq!(
        outcome.error.as_deref(),
        Some("Rotation.RolledBack"),
        "{:?}",
        outcome.cause
    );
    assert!(outcome
        .cause
        .clone()
        .unwrap()
        .contains("Revoke.OldKeyStillInUse"));
    let new_id = new_key_of(&outcome);
    let (version, current) = w.key_at(AWSCURRENT).await.unwrap();
    assert_eq!(version, w.old_version);
    assert_eq!(current.access_key_id, w.old.access_key_id);
    let keys = w.keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(
        (keys[0].access_key_id.as_str(), keys[0].status.as_str()),
        (w.old.access_key_id.as_str(), "Active")
    );
    assert!(
        keys.iter().all(|k| k.access_key_id != new_id),
        "the new key is deleted"
    );
    // The revert put AWSPREVIOUS back where it was before the rotation (on no version): the
    // version that held the deleted new key keeps no label.
    w.invariants("in use", &outcome, None).await;

    // 6. Crash/re-run: every step invoked twice over the adapters creates one key, deletes once.
    let w = World::new(&admin, "twice", &[]).await;
    use rotor_core::events::*;
    use rotor_core::handlers;
    let req = StagePendingInput {
        execution_id: "arn:aws:states:us-east-1:123456789012:execution:rotation:iam-twice".into(),
        input: ExecutionInput {
            action: Action::Rotate,
            secret_id: w.secret_id.clone(),
            candidate_ciphertext: None,
            requested_by: None,
            reason: None,
            target_version_id: None,
            force: false,
            recovery: None,
        },
    };
    let staged = handlers::stage_pending(&w.services, req.clone())
        .await
        .unwrap();
    assert_eq!(
        handlers::stage_pending(&w.services, req).await.unwrap(),
        staged
    );
    assert_eq!(w.keys().await.len(), 2, "one new key, not two");
    let promote = PromoteInput {
        secret_id: w.secret_id.clone(),
        pending_version_id: staged.pending_version_id.clone(),
        previous_version_id: staged.previous_version_id.clone(),
    };
    let p1 = handlers::promote(&w.services, promote.clone())
        .await
        .unwrap();
    assert_eq!(handlers::promote(&w.services, promote).await.unwrap(), p1);
    let deact = RevokeInput {
        mode: RevokeMode::Deactivate,
        secret_id: w.secret_id.clone(),
        staged: staged.clone(),
        deactivated_at: None,
        consumers_redeployed: vec![],
    };
    let d1 = handlers::revoke_old_iam_key(&w.services, deact.clone())
        .await
        .unwrap();
    let d2 = handlers::revoke_old_iam_key(
        &w.services,
        RevokeInput {
            deactivated_at: d1.deactivated_at.clone(),
            ..deact
        },
    )
    .await
    .unwrap();
    assert_eq!(d1, d2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let del = RevokeInput {
        mode: RevokeMode::Delete,
        secret_id: w.secret_id.clone(),
        staged: staged.clone(),
        deactivated_at: d1.deactivated_at.clone(),
        consumers_redeployed: vec![],
    };
    let x1 = handlers::revoke_old_iam_key(&w.services, del.clone())
        .await
        .unwrap();
    assert_eq!(
        handlers::revoke_old_iam_key(&w.services, del)
            .await
            .unwrap(),
        x1
    );
    assert_eq!(w.keys().await.len(), 1);
    let (_, current) = w.key_at(AWSCURRENT).await.unwrap();
    w.sts
        .caller_identity(&current.access_key_id, &current.secret_access_key)
        .await
        .unwrap();
    drop(moto);
}
