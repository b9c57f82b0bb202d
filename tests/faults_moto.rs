//! rotor on a flaky AWS: the product's state machine (`rotor_runner::run_rotation`, virtual
//! clock) over the AWS adapters pointed at a fault-injecting proxy in front of moto
//! (`rotor_tests::faults`), and the adapters' answers to lost responses.
//!
//! * Lost answers, one at a time (each scenario fails on the code before its fix): a lost
//!   UpdateSecretVersionStage answer in Promote and in Revert, lost PutSecretValue answers, a
//!   lost DeleteAccessKey answer in DeleteOldKey, a lost CreateAccessKey answer in
//!   StagePending, an orphan key left by an earlier lost answer, and a label move that lost a
//!   race (`Rotation.Conflict`); a lost CreateSecret answer (safe through the SDK's own
//!   idempotency token) is pinned too.
//! * The fault suite: at 20% faults of every kind (500/503 with throttling bodies, resets,
//!   delays, black holes cut by the SDK timeouts, answers dropped after moto applied the
//!   call), rotations of vendor keys (some whose application rejects the new key, so they
//!   revert), generated secrets and IAM keys end consistent and correctly reported; the
//!   counts are printed.
//! * 10 concurrent rotations of one secret: exactly one wins, the rest are refused.
//!
//! Setup and every check talk to moto directly (no proxy, no faults); only the rotation's own
//! calls go through the proxy. The audit sink is an in-test recorder (moto 5.2.5 does not serve
//! the CloudWatch SDK's CBOR protocol). Every test uses its own secrets, users, KMS key and
//! stand-ins and never resets moto. Run with
//! `scripts/test -p rotor-tests --test faults_moto` (add `--no-capture` to see the counts).

use async_trait::async_trait;
use rotor_asl::executor::{Outcome, Status};
use rotor_aws::{AwsAdapters, AwsOptions, Timeouts};
use rotor_core::error::{Result as RotorResult, RotorError};
use rotor_core::events::{Action, ExecutionInput};
use rotor_core::handlers::token_for;
use rotor_core::iam::KeyValue;
use rotor_core::ports::{AuditRecord, AuditSink, Iam, Metric, SecretStore, Services};
use rotor_core::secret::{SecretValue, Version, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use rotor_runner::{load_rotation_definition, run_rotation, RunnerOptions, STATE_MACHINE_NAME};
use rotor_standins::{AppStandIn, CurrentKey, KeyChecker, VendorStandIn};
use rotor_tests::contract::{token, unique, AwsFixture};
use rotor_tests::faults::{Fault, FaultPlan, FaultProxy};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The SDK timeouts of the rotation's adapters here: short, so a black hole costs little.
fn suite_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(1),
        read: Duration::from_millis(1500),
        operation: Duration::from_secs(8),
    }
}

// ------------------------------------------------------------------------------- the audit sink

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

impl Recorder {
    fn of(&self, execution: &str) -> Vec<AuditRecord> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.execution_id == execution)
            .cloned()
            .collect()
    }
}

// ----------------------------------------------------------------------------------- the world

/// Adapters on moto directly (setup, checks) and through the proxy (the rotation), sharing one
/// KMS key; a vendor stand-in; the recorder.
struct Env {
    direct: AwsAdapters,
    proxy: FaultProxy,
    via: AwsAdapters,
    vendor: VendorStandIn,
    recorder: Arc<Recorder>,
}

impl Env {
    async fn new(plan: FaultPlan) -> Env {
        let fixture = AwsFixture::moto().await;
        let direct = fixture.adapters;
        let proxy = FaultProxy::start(plan);
        let config = rotor_aws::load_with(
            &AwsOptions {
                endpoint_url: Some(proxy.url()),
                region: Some(rotor_tests::moto::REGION.into()),
            },
            suite_timeouts(),
        )
        .await;
        let via = AwsAdapters::from_config(config, direct.kms.key_id().to_string());
        Env {
            direct,
            proxy,
            via,
            vendor: VendorStandIn::start().await,
            recorder: Arc::new(Recorder::default()),
        }
    }

    fn services(&self) -> Services {
        let mut services = self.via.services().expect("services");
        services.audit = self.recorder.clone();
        services
    }

    /// Each function's services signed as its own role (scripts/permissions.py checks them).
    fn function_services(&self) -> BTreeMap<String, Services> {
        rotor_tests::principals::function_services(
            &self.services(),
            &self.via.config,
            self.via.kms.key_id(),
            false,
        )
    }

    /// Runs one execution over the proxy; answers its outcome and ARN (the execution id).
    async fn run(&self, input: &ExecutionInput, label: &str, seed: u64) -> (Outcome, String) {
        let name = rotor_tests::candidates::execution_name(input, label);
        let outcome = run_rotation(
            load_rotation_definition(),
            self.services(),
            input,
            &name,
            RunnerOptions {
                seed: Some(seed),
                function_services: self.function_services(),
                ..Default::default()
            },
        )
        .await;
        let arn =
            format!("arn:aws:states:us-east-1:123456789012:execution:{STATE_MACHINE_NAME}:{name}");
        (outcome, arn)
    }

    /// The current value moto holds (direct).
    fn current_key_of(&self, secret_id: &str) -> CurrentKey {
        rotor_standins::current_key_from(self.direct.store.clone(), secret_id)
    }
}

/// What a subject's secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A vendor key whose application accepts any key the vendor accepts: rotates.
    Vendor,
    /// A vendor key whose application accepts only its first key: every rotation reverts.
    Reverting,
    /// A generated value, no probes.
    Generated,
    /// An IAM access key of its own user.
    Iam,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Reverting => "rolled-back",
            _ => "rotated",
        }
    }
}

const PRESET: &str = "openai";

/// One secret rotated again and again.
struct Subject {
    kind: Kind,
    secret_id: String,
    user: Option<String>,
    /// Keeps the application stand-in alive.
    _app: Option<AppStandIn>,
}

impl Subject {
    async fn new(env: &Env, kind: Kind, label: &str) -> Subject {
        let secret_id = unique(&format!("faults-{label}"));
        let mut tags = BTreeMap::from([
            (
                "rotor:wait-propagation-seconds".to_string(),
                "2".to_string(),
            ),
            ("rotor:wait-consumers-seconds".to_string(), "3".to_string()),
        ]);
        let mut app = None;
        let mut user = None;
        let value = match kind {
            Kind::Vendor | Kind::Reverting => {
                let first = env.vendor.issue_key(PRESET);
                let checker: KeyChecker = match kind {
                    Kind::Vendor => env.vendor.checker(PRESET),
                    _ => {
                        let only = first.clone();
                        Arc::new(move |k: &str| k == only)
                    }
                };
                let a = AppStandIn::start(env.current_key_of(&secret_id), checker).await;
                tags.insert("rotor:kind".into(), "vendor-api-key".into());
                tags.insert("rotor:probe".into(), PRESET.into());
                tags.insert("rotor:probe-url".into(), env.vendor.probe_url(PRESET));
                tags.insert("rotor:app-health-url".into(), a.health_url());
                app = Some(a);
                first
            }
            Kind::Generated => {
                tags.insert("rotor:kind".into(), "generated".into());
                tags.insert("rotor:length".into(), "40".into());
                tags.insert("rotor:charset".into(), "url-safe".into());
                "initial-generated-value-set-by-hand".to_string()
            }
            Kind::Iam => {
                let name = unique(&format!("faults-{label}"));
                env.direct
                    .iam
                    .client()
                    .create_user()
                    .user_name(&name)
                    .send()
                    .await
                    .expect("CreateUser on moto");
                let key = env.direct.iam.create_access_key(&name).await.unwrap();
                tags.insert("rotor:kind".into(), "iam-access-key".into());
                tags.insert("rotor:iam-user".into(), name.clone());
                tags.insert("rotor:wait-propagation-seconds".into(), "0".into());
                tags.insert("rotor:wait-consumers-seconds".into(), "0".into());
                tags.insert("rotor:grace-seconds".into(), "3".into());
                let v = KeyValue {
                    access_key_id: key.access_key_id,
                    secret_access_key: key.secret_access_key,
                    user_name: Some(name.clone()),
                }
                .to_value();
                user = Some(name);
                v.expose().to_string()
            }
        };
        env.direct
            .store
            .create_secret(
                &secret_id,
                &SecretValue::new(value),
                &tags,
                Some("rotor faults_moto"),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("CreateSecret {secret_id}: {e}"));
        Subject {
            kind,
            secret_id,
            user,
            _app: app,
        }
    }

    /// AWSCURRENT as moto holds it: (version id, value).
    async fn current(&self, env: &Env) -> (String, String) {
        let (v, value) = env
            .direct
            .store
            .get_value(&self.secret_id, &Version::current())
            .await
            .unwrap();
        (v, value.expose().to_string())
    }

    /// Which versions carry which labels, in moto.
    async fn labels(&self, env: &Env) -> BTreeMap<String, Vec<String>> {
        env.direct
            .store
            .describe(&self.secret_id)
            .await
            .unwrap()
            .versions
            .into_iter()
            .map(|v| (v.version_id, v.stages))
            .collect()
    }
}

/// One rotation's end as checked in moto.
#[derive(Debug)]
struct Checked {
    kind: Kind,
    /// The audit record's outcome (`?` when there is none).
    audited: String,
    error: Option<String>,
    violations: Vec<String>,
}

/// Rotates `subject` once over the proxy and checks everything in moto directly.
async fn rotate_and_check(env: &Env, subject: &Subject, label: &str, seed: u64) -> Checked {
    let id = &subject.secret_id;
    let (before_id, before_value) = subject.current(env).await;
    let candidate = match subject.kind {
        Kind::Vendor | Kind::Reverting => Some(env.vendor.issue_key(PRESET)),
        _ => None,
    };
    let candidate_ciphertext = match &candidate {
        None => None,
        Some(c) => Some(rotor_tests::candidates::sealed(env.direct.kms.as_ref(), id, c).await),
    };
    let input = ExecutionInput {
        action: Action::Rotate,
        secret_id: id.clone(),
        candidate_ciphertext,
        requested_by: Some("faults_moto".into()),
        reason: Some("fault suite".into()),
        target_version_id: None,
        force: false,
        recovery: None,
    };
    let (outcome, arn) = env.run(&input, label, seed).await;
    let token = token_for(&arn);
    let mut v = Vec::new();
    let what = format!("{label} ({:?} {id})", subject.kind);

    // Labels: exactly one AWSCURRENT, no AWSPENDING.
    let labels = subject.labels(env).await;
    let holders = |stage: &str| -> Vec<String> {
        labels
            .iter()
            .filter(|(_, s)| s.iter().any(|x| x == stage))
            .map(|(k, _)| k.clone())
            .collect()
    };
    if holders(AWSCURRENT).len() != 1 {
        v.push(format!("{what}: AWSCURRENT on {:?}", holders(AWSCURRENT)));
    }
    if !holders(AWSPENDING).is_empty() {
        v.push(format!(
            "{what}: AWSPENDING left on {:?}",
            holders(AWSPENDING)
        ));
    }
    let (now_id, now_value) = subject.current(env).await;
    let rotated = now_id == token;
    if rotated {
        if let Some(c) = &candidate {
            if &now_value != c {
                v.push(format!(
                    "{what}: AWSCURRENT is the new version but not the candidate"
                ));
            }
        }
        if holders(AWSPREVIOUS) != [before_id.clone()] {
            v.push(format!(
                "{what}: AWSPREVIOUS on {:?}, not the old version",
                holders(AWSPREVIOUS)
            ));
        }
    } else if now_id != before_id || now_value != before_value {
        v.push(format!(
            "{what}: AWSCURRENT is on {now_id}, neither the old version {before_id} nor the new {token}"
        ));
    }
    if matches!(subject.kind, Kind::Vendor | Kind::Reverting)
        && !env.vendor.accepts(PRESET, &now_value)
    {
        v.push(format!("{what}: the vendor does not accept AWSCURRENT"));
    }

    // Reported as it happened.
    let records = env.recorder.of(&arn);
    let audited = match records.as_slice() {
        [r] => r.outcome.clone(),
        _ => {
            v.push(format!("{what}: {} audit records", records.len()));
            "?".to_string()
        }
    };
    let succeeded = outcome.status == Status::Succeeded;
    if rotated != succeeded || rotated != (audited == "rotated") {
        v.push(format!(
            "{what}: AWSCURRENT {} but the execution {:?} ({:?}) and the audit says {audited}",
            if rotated {
                "moved to the new version"
            } else {
                "stayed on the old version"
            },
            outcome.status,
            outcome.error
        ));
    }
    if outcome.error.as_deref() == Some("Rotation.RevertFailed") && now_id == before_id {
        v.push(format!(
            "{what}: Rotation.RevertFailed although the revert happened"
        ));
    }
    if audited != subject.kind.expected() {
        v.push(format!(
            "{what}: expected {}, got {audited} ({:?}: {:?})",
            subject.kind.expected(),
            outcome.error,
            outcome.cause
        ));
    }

    // IAM: at most two keys, AWSCURRENT's Active, no other Active key.
    if let Some(user) = &subject.user {
        let keys = env.direct.iam.list_access_keys(user).await.unwrap();
        let current = KeyValue::parse(id, &now_id, &SecretValue::new(now_value.as_str()))
            .expect("AWSCURRENT is a key");
        if keys.len() > 2 {
            v.push(format!("{what}: {} keys", keys.len()));
        }
        match keys
            .iter()
            .find(|k| k.access_key_id == current.access_key_id)
        {
            Some(k) if k.status == "Active" => {}
            other => v.push(format!("{what}: AWSCURRENT's key is {other:?}")),
        }
        let extra: Vec<&str> = keys
            .iter()
            .filter(|k| k.access_key_id != current.access_key_id && k.status == "Active")
            .map(|k| k.access_key_id.as_str())
            .collect();
        if !extra.is_empty() {
            v.push(format!("{what}: other Active keys left: {extra:?}"));
        }
    }

    // No value anywhere in the history, the output or the audit record.
    let text = format!(
        "{} {:?} {:?} {:?} {:?}",
        serde_json::to_string(&outcome.events).unwrap(),
        outcome.output,
        outcome.error,
        outcome.cause,
        records
    );
    let mut values = vec![before_value.clone(), now_value.clone()];
    values.extend(candidate.clone());
    for value in values {
        for needle in secret_parts(&value) {
            if text.contains(&needle) {
                v.push(format!("{what}: a secret value leaked"));
            }
        }
    }
    Checked {
        kind: subject.kind,
        audited,
        error: outcome.error.clone(),
        violations: v,
    }
}

/// The parts of a value that must never appear: the value, or an IAM key's secret.
fn secret_parts(value: &str) -> Vec<String> {
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(json) => json
            .get("SecretAccessKey")
            .and_then(|s| s.as_str())
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
        Err(_) => vec![value.to_string()],
    }
}

fn assert_clean(c: &Checked) {
    assert!(c.violations.is_empty(), "{:#?}", c.violations);
}

// ------------------------------------------------------------------- lost answers, one by one

/// Promote's UpdateSecretVersionStage (AWSCURRENT to the candidate) is applied by moto, its
/// answer is lost, the SDK retries and meets InvalidParameterException: the adapter reads the
/// labels, sees the move done, and the rotation completes (before the fix: `Input.Invalid`, a
/// good candidate abandoned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_promote_answer_still_rotates() {
    let env = Env::new(FaultPlan::first(
        Fault::DropAfterApply,
        "UpdateSecretVersionStage",
        1,
    ))
    .await;
    let s = Subject::new(&env, Kind::Vendor, "lost-promote").await;
    let c = rotate_and_check(&env, &s, "lost-promote", 1).await;
    assert_eq!(
        env.proxy
            .counts()
            .faults_of(Fault::DropAfterApply, "UpdateSecretVersionStage"),
        1
    );
    assert_clean(&c);
}

/// Revert's UpdateSecretVersionStage (AWSCURRENT back) loses its answer: the rotation is
/// reported rolled back, not `Rotation.RevertFailed` (before the fix it said "start a
/// rollback", which would install the rejected candidate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_revert_answer_is_still_rolled_back() {
    // Promote moves AWSCURRENT (1) and takes AWSPENDING off (2); Revert moves it back (3).
    let env = Env::new(FaultPlan::nth(
        Fault::DropAfterApply,
        "UpdateSecretVersionStage",
        2,
        1,
    ))
    .await;
    let s = Subject::new(&env, Kind::Reverting, "lost-revert").await;
    let c = rotate_and_check(&env, &s, "lost-revert", 1).await;
    assert_eq!(env.proxy.counts().total_faults(), 1);
    assert_clean(&c);
}

/// Every attempt of PutSecretValue is applied and its answer lost: the adapter reads the
/// version back and answers as the write did (before the fix: `Aws.Throttled` after the SDK's
/// retries, and the handler's retry), and the rotation completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_put_secret_value_answers_are_staged() {
    let env = Env::new(FaultPlan::first(Fault::DropAfterApply, "PutSecretValue", 3)).await;
    let s = Subject::new(&env, Kind::Generated, "lost-put").await;
    let t = token();
    let value = SecretValue::new("a-value-written-three-times-answered-never");
    let staged = env.via.store.put_pending(&s.secret_id, &t, &value).await;
    assert_eq!(staged, Ok(t.clone()));
    assert_eq!(
        env.proxy
            .counts()
            .faults_of(Fault::DropAfterApply, "PutSecretValue"),
        3
    );
    let labels = s.labels(&env).await;
    assert_eq!(labels[&t], vec![AWSPENDING.to_string()], "{labels:?}");
}

/// CreateSecret is applied, its answer lost, the SDK retries: the retry carries the same
/// ClientRequestToken (the SDK fills it once per call), which moto (like AWS) answers as the
/// secret created, so the adapter answers it. A regression pin: no adapter code is needed for
/// it. A secret someone else created is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_secret_answer_is_created() {
    let env = Env::new(FaultPlan::first(Fault::DropAfterApply, "CreateSecret", 1)).await;
    let id = unique("faults-lost-create-secret");
    let version = env
        .via
        .store
        .create_secret(
            &id,
            &SecretValue::new("a-value-created-once-answered-never"),
            &BTreeMap::new(),
            None,
            None,
        )
        .await
        .expect("the lost answer's secret is ours");
    assert_eq!(env.proxy.counts().total_faults(), 1);
    let (current, _) = env
        .direct
        .store
        .get_value(&id, &Version::current())
        .await
        .unwrap();
    assert_eq!(current, version);
    let err = env
        .via
        .store
        .create_secret(
            &id,
            &SecretValue::new("another-value-0123456789"),
            &BTreeMap::new(),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.asl_name(), "Input.Invalid", "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");
}

/// DeleteOldKey's DeleteAccessKey is applied, its answer lost, the SDK's retry meets
/// NoSuchEntity: already deleted, and the rotation is `rotated` (before the fix:
/// `Input.Invalid`, Revert, `Rotation.RevertFailed` with an audit record saying rolled-back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_delete_access_key_answer_still_rotates() {
    let env = Env::new(FaultPlan::first(
        Fault::DropAfterApply,
        "DeleteAccessKey",
        1,
    ))
    .await;
    let s = Subject::new(&env, Kind::Iam, "lost-delete").await;
    let c = rotate_and_check(&env, &s, "lost-delete", 1).await;
    assert_eq!(env.proxy.counts().total_faults(), 1);
    assert_clean(&c);
    let keys = env
        .direct
        .iam
        .list_access_keys(s.user.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "the old key is gone: {keys:?}");
    // A first attempt that meets NoSuchEntity is still Input.Invalid (the port's contract).
    let err = env
        .via
        .iam
        .delete_access_key(s.user.as_deref().unwrap(), "AKIAGONEGONEGONEGONE")
        .await
        .unwrap_err();
    assert_eq!(err.asl_name(), "Input.Invalid", "{err}");
}

/// StagePending's CreateAccessKey is applied, its answer lost; the SDK's retry meets
/// LimitExceeded (the user has its key and the orphan): stage-pending deletes the orphan (no
/// version holds it), creates the key again and the rotation completes (before the fix:
/// `Rotation.KeyLimit`, refused, and every later rotation too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_access_key_answer_leaves_no_orphan() {
    let env = Env::new(FaultPlan::first(
        Fault::DropAfterApply,
        "CreateAccessKey",
        1,
    ))
    .await;
    let s = Subject::new(&env, Kind::Iam, "lost-create").await;
    let c = rotate_and_check(&env, &s, "lost-create", 1).await;
    assert_eq!(env.proxy.counts().total_faults(), 1);
    assert_clean(&c);
    let keys = env
        .direct
        .iam
        .list_access_keys(s.user.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "only AWSCURRENT's key is left: {keys:?}");
}

/// An Active key no version of the secret holds (an earlier lost CreateAccessKey answer, or a
/// crash before PutSecretValue) is deleted by the next rotation and named in its audit record;
/// a key a version holds (AWSPREVIOUS's, Active) is never deleted: `Rotation.KeyLimit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_key_is_deleted_and_a_held_one_never() {
    let env = Env::new(FaultPlan::none()).await;
    let s = Subject::new(&env, Kind::Iam, "orphan").await;
    let user = s.user.clone().unwrap();
    let orphan = env.direct.iam.create_access_key(&user).await.unwrap();
    let (outcome, arn) = env.run(&rotate_input(&s), "orphan", 1).await;
    assert_eq!(
        outcome.status,
        Status::Succeeded,
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    let record = env.recorder.of(&arn).pop().expect("an audit record");
    assert_eq!(record.outcome, "rotated");
    assert_eq!(
        record
            .iam
            .as_ref()
            .and_then(|i| i.deleted_stale_access_key_id.clone()),
        Some(orphan.access_key_id.clone()),
        "the audit record names the orphan"
    );

    // AWSCURRENT and AWSPREVIOUS both hold an Active key: neither may go.
    let (cur_id, cur_value) = s.current(&env).await;
    let held = env.direct.iam.create_access_key(&user).await.unwrap();
    let t = token();
    let value = KeyValue {
        access_key_id: held.access_key_id.clone(),
        secret_access_key: held.secret_access_key.clone(),
        user_name: Some(user.clone()),
    }
    .to_value();
    env.direct
        .store
        .put_pending(&s.secret_id, &t, &value)
        .await
        .unwrap();
    env.direct
        .store
        .update_stage(&s.secret_id, AWSCURRENT, Some(&t), Some(&cur_id))
        .await
        .unwrap();
    env.direct
        .store
        .update_stage(&s.secret_id, AWSPENDING, None, Some(&t))
        .await
        .unwrap();
    let previous_key = KeyValue::parse(&s.secret_id, &cur_id, &SecretValue::new(cur_value))
        .unwrap()
        .access_key_id;
    let (outcome, _) = env.run(&rotate_input(&s), "orphan-held", 2).await;
    assert_eq!(
        outcome.error.as_deref(),
        Some("Rotation.KeyLimit"),
        "{:?}",
        outcome.cause
    );
    let keys: Vec<String> = env
        .direct
        .iam
        .list_access_keys(&user)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.access_key_id)
        .collect();
    assert!(keys.contains(&held.access_key_id), "{keys:?}");
    assert!(
        keys.contains(&previous_key),
        "AWSPREVIOUS's key stays: {keys:?}"
    );
}

fn rotate_input(s: &Subject) -> ExecutionInput {
    ExecutionInput {
        action: Action::Rotate,
        secret_id: s.secret_id.clone(),
        candidate_ciphertext: None,
        requested_by: Some("faults_moto".into()),
        reason: Some("fault suite".into()),
        target_version_id: None,
        force: false,
        recovery: None,
    }
}

/// A label move that loses a race: between the adapter's check and its
/// UpdateSecretVersionStage, someone else moves AWSCURRENT to a third version; moto refuses
/// the move (InvalidParameterException) and the adapter reports `Rotation.Conflict` naming
/// where AWSCURRENT is, not `Input.Invalid`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_move_that_lost_a_race_is_a_conflict() {
    let env = Env::new(FaultPlan::none()).await;
    let s = Subject::new(&env, Kind::Generated, "race").await;
    let (v1, _) = s.current(&env).await;
    let ours = token();
    let theirs = token();
    for (t, value) in [
        (&theirs, "their-value-0123456789"),
        (&ours, "our-value-0123456789"),
    ] {
        env.direct
            .store
            .put_pending(&s.secret_id, t, &SecretValue::new(value))
            .await
            .unwrap();
        if t == &theirs {
            env.direct
                .store
                .update_stage(&s.secret_id, AWSPENDING, None, Some(t))
                .await
                .unwrap();
        }
    }
    // On our UpdateSecretVersionStage (before the proxy forwards it), the other writer moves
    // AWSCURRENT from v1 to theirs, on moto directly.
    let secret = s.secret_id.clone();
    let (v1c, theirs_c) = (v1.clone(), theirs.clone());
    let fired = Arc::new(Mutex::new(false));
    let f = fired.clone();
    env.proxy.set_hook(Box::new(move |_, op| {
        if !op.ends_with("UpdateSecretVersionStage")
            || std::mem::replace(&mut *f.lock().unwrap(), true)
        {
            return;
        }
        let (secret, v1, theirs) = (secret.clone(), v1c.clone(), theirs_c.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let client =
                        aws_sdk_secretsmanager::Client::new(&rotor_tests::moto::sdk_config().await);
                    client
                        .update_secret_version_stage()
                        .secret_id(&secret)
                        .version_stage(AWSCURRENT)
                        .move_to_version_id(&theirs)
                        .remove_from_version_id(&v1)
                        .send()
                        .await
                        .expect("the other writer's move");
                })
        })
        .join()
        .unwrap();
    }));
    let err = env
        .via
        .store
        .update_stage(&s.secret_id, AWSCURRENT, Some(&ours), Some(&v1))
        .await
        .unwrap_err();
    assert!(*fired.lock().unwrap());
    assert_eq!(
        err,
        RotorError::Conflict {
            secret_id: s.secret_id.clone(),
            expected: v1.clone(),
            found: theirs.clone(),
        },
        "{err}"
    );
    let labels = s.labels(&env).await;
    assert_eq!(labels[&theirs], vec![AWSCURRENT.to_string()], "{labels:?}");
    assert_eq!(labels[&ours], vec![AWSPENDING.to_string()], "{labels:?}");
}

// ------------------------------------------------------------------------------- the suite

/// At 20% faults of every kind, 45 rotations (12 vendor, 9 reverting vendor, 12 generated,
/// 12 IAM) end consistent and correctly reported. Secrets rotate in parallel, each one's
/// rotations one after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotations_at_twenty_percent_faults_end_consistent_and_correctly_reported() {
    let started = Instant::now();
    let env = Env::new(FaultPlan::mixed(20_261_202, 0.2)).await;
    let plan: Vec<(Kind, usize)> = vec![
        (Kind::Vendor, 4),
        (Kind::Vendor, 4),
        (Kind::Vendor, 4),
        (Kind::Reverting, 3),
        (Kind::Reverting, 3),
        (Kind::Reverting, 3),
        (Kind::Generated, 4),
        (Kind::Generated, 4),
        (Kind::Generated, 4),
        (Kind::Iam, 4),
        (Kind::Iam, 4),
        (Kind::Iam, 4),
    ];
    let mut subjects = Vec::new();
    for (i, (kind, _)) in plan.iter().enumerate() {
        subjects.push(Subject::new(&env, *kind, &format!("suite-{i}")).await);
    }
    let env = &env;
    let runs = plan
        .iter()
        .zip(&subjects)
        .enumerate()
        .map(|(i, ((_, n), s))| async move {
            let mut out = Vec::new();
            for r in 0..*n {
                out.push(
                    rotate_and_check(env, s, &format!("suite-{i}-{r}"), (i * 10 + r) as u64).await,
                );
            }
            out
        });
    let results: Vec<Checked> = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();

    let counts = env.proxy.counts();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for r in &results {
        *outcomes
            .entry(format!(
                "{:?} {} {}",
                r.kind,
                r.audited,
                r.error.as_deref().unwrap_or("-")
            ))
            .or_default() += 1;
    }
    let violations: Vec<&String> = results.iter().flat_map(|r| &r.violations).collect();
    println!(
        "fault suite: {} rotations in {:?}",
        results.len(),
        started.elapsed()
    );
    println!("proxy: {counts}");
    println!("outcomes (kind, audited outcome, error):");
    for (k, n) in &outcomes {
        println!("  {k}: {n}");
    }
    println!("invariant violations: {}", violations.len());
    for v in &violations {
        println!("  {v}");
    }
    assert!(results.len() >= 40);
    assert!(
        counts.total_faults() as f64 >= 0.1 * counts.requests as f64,
        "faults were injected: {counts}"
    );
    for kind in Fault::ALL {
        assert!(
            counts.faults.get(&kind).copied().unwrap_or(0) > 0,
            "{kind:?} injected: {counts}"
        );
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

/// 10 rotations of one secret started at once (no faults): exactly one wins, the rest are
/// refused (`Rotation.InProgress` or `Rotation.Conflict`), and the secret is consistent. The
/// rotation waits 2 s on the real clock for propagation, so all ten overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_rotations_of_one_secret_one_wins() {
    let env = Env::new(FaultPlan::none()).await;
    let s = Subject::new(&env, Kind::Vendor, "concurrent").await;
    let (before_id, _) = s.current(&env).await;
    let env = &env;
    let s = &s;
    let runs = (0..10).map(|i| async move {
        let candidate = env.vendor.issue_key(PRESET);
        let sealed =
            rotor_tests::candidates::sealed(env.direct.kms.as_ref(), &s.secret_id, &candidate)
                .await;
        let input = ExecutionInput {
            action: Action::Rotate,
            secret_id: s.secret_id.clone(),
            candidate_ciphertext: Some(sealed),
            requested_by: Some("faults_moto".into()),
            reason: Some("concurrency".into()),
            target_version_id: None,
            force: false,
            recovery: None,
        };
        let name = rotor_tests::candidates::execution_name(&input, &format!("concurrent-{i}"));
        let outcome = run_rotation(
            load_rotation_definition(),
            env.services(),
            &input,
            &name,
            RunnerOptions {
                seed: Some(i),
                real_time: true,
                function_services: env.function_services(),
                ..Default::default()
            },
        )
        .await;
        let arn =
            format!("arn:aws:states:us-east-1:123456789012:execution:{STATE_MACHINE_NAME}:{name}");
        (outcome, arn, candidate)
    });
    let results = futures::future::join_all(runs).await;
    let winners: Vec<&(Outcome, String, String)> = results
        .iter()
        .filter(|(o, _, _)| o.status == Status::Succeeded)
        .collect();
    let refused: BTreeMap<String, usize> = results
        .iter()
        .filter(|(o, _, _)| o.status != Status::Succeeded)
        .fold(BTreeMap::new(), |mut m, (o, _, _)| {
            *m.entry(o.error.clone().unwrap_or_default()).or_default() += 1;
            m
        });
    println!(
        "concurrent rotations: {} won, refused {refused:?}",
        winners.len()
    );
    assert_eq!(winners.len(), 1, "exactly one wins: refused {refused:?}");
    for (o, arn, _) in &results {
        if o.status != Status::Succeeded {
            assert!(
                matches!(
                    o.error.as_deref(),
                    Some("Rotation.InProgress" | "Rotation.Conflict")
                ),
                "{:?} {:?}",
                o.error,
                o.cause
            );
            let r = env.recorder.of(arn);
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].outcome, "refused");
        }
    }
    let (_, win_arn, win_key) = winners[0];
    let (now_id, now_value) = s.current(env).await;
    assert_eq!(now_id, token_for(win_arn));
    assert_eq!(&now_value, win_key);
    let labels = s.labels(env).await;
    let with = |stage: &str| {
        labels
            .values()
            .filter(|st| st.iter().any(|x| x == stage))
            .count()
    };
    assert_eq!(with(AWSCURRENT), 1, "{labels:?}");
    assert_eq!(with(AWSPENDING), 0, "{labels:?}");
    assert_eq!(
        labels[&before_id],
        vec![AWSPREVIOUS.to_string()],
        "{labels:?}"
    );
    assert!(env.vendor.accepts(PRESET, &now_value));
}
