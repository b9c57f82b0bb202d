//! Acceptance point "Idempotency: re-invoking each handler with the same input after it
//! succeeded changes nothing".
//!
//! Every handler runs over the real local store (a fresh SQLite store in a temp dir, which is
//! also the KMS and the audit/metrics sink), with rotor's real HTTP prober talking to the
//! loopback vendor stand-in and an application stand-in that reads AWSCURRENT from the store.
//! Each test calls a handler, takes a snapshot of everything observable (every secret's
//! versions, labels and tags, every version's value read by id, the audit records, the number
//! of metric samples per name), calls it again with the identical input, and requires the same
//! answer and the identical snapshot.
//!
//! Metrics: a re-invoked audit-log emits its metric samples again (one more `RotationSucceeded`
//! / `RotationFailed` / `RotationRolledBack` and one more `RotationDuration`). That is allowed
//! on purpose: CloudWatch's PutMetricData has no idempotency key, so a retried Lambda on AWS
//! does exactly the same, and the local store stands in for AWS rather than doing better than
//! it. Metrics are at-least-once; the audit RECORD is the exactly-once account of an execution
//! and must stay single. The audit-log test pins both: one record, and exactly one more sample
//! per metric name per re-invocation, nothing else.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rotor_core::events::*;
use rotor_core::handlers::{self, token_for};
use rotor_core::ports::{AuditRecord, CallerIdentity, Clock, Iam, SecretStore, Services};
use rotor_core::secret::{SecretInfo, SecretValue, Version, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use rotor_core::{Result, RotorError};
use rotor_local_store::LocalStore;
use rotor_probe_http::ReqwestProber;
use rotor_standins::{AppStandIn, BoxFuture, CurrentKey, VendorStandIn};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};

const VENDOR_SECRET: &str = "app/test/openai_api_key";
const GENERATED_SECRET: &str = "app/test/webhook_secret";
const IAM_SECRET: &str = "app/test/aws_access_key";
const IAM_USER: &str = "idem-bot";

fn execution(name: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:rotation:{name}")
}

/// The handlers' clock, held still unless a test moves it.
struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

/// A local store with two secrets, the vendor stand-in that issued the vendor secret's key, and
/// an application that uses that secret's AWSCURRENT.
struct World {
    _dir: tempfile::TempDir,
    store: LocalStore,
    vendor: VendorStandIn,
    app: AppStandIn,
    clock: Arc<TestClock>,
    svc: Services,
    /// The vendor secret's first version and value.
    first_id: String,
    first_key: String,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("store")).unwrap();
    let vendor = VendorStandIn::start().await;
    let app_store = store.clone();
    let current_key: CurrentKey = Arc::new(move || -> BoxFuture<'static, Option<String>> {
        let store = app_store.clone();
        Box::pin(async move {
            store
                .get_value(VENDOR_SECRET, &Version::current())
                .await
                .ok()
                .map(|(_, v)| v.expose().to_string())
        })
    });
    let app = AppStandIn::for_vendor(current_key, &vendor, "openai").await;
    let first_key = vendor.issue_key("openai");
    let tags = |pairs: &[(&str, String)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let first_id = store
        .create_secret(
            VENDOR_SECRET,
            &SecretValue::new(first_key.clone()),
            tags(&[
                ("rotor:kind", "vendor-api-key".into()),
                ("rotor:probe", "openai".into()),
                ("rotor:probe-url", vendor.probe_url("openai")),
                ("rotor:app-health-url", app.health_url()),
                ("rotor:wait-propagation-seconds", "1".into()),
                ("rotor:wait-consumers-seconds", "1".into()),
            ]),
            Some("idempotency test: vendor key".into()),
        )
        .unwrap();
    store
        .create_secret(
            GENERATED_SECRET,
            &SecretValue::new("initial-generated-value-0000000000000000"),
            tags(&[
                ("rotor:kind", "generated".into()),
                ("rotor:length", "48".into()),
                ("rotor:charset", "url-safe".into()),
            ]),
            None,
        )
        .unwrap();
    store.create_user(IAM_USER).unwrap();
    let key = Iam::create_access_key(&store, IAM_USER).await.unwrap();
    store
        .create_secret(
            IAM_SECRET,
            &rotor_core::iam::KeyValue {
                access_key_id: key.access_key_id.clone(),
                secret_access_key: key.secret_access_key.clone(),
                user_name: Some(IAM_USER.into()),
            }
            .to_value(),
            tags(&[
                ("rotor:kind", "iam-access-key".into()),
                ("rotor:iam-user", IAM_USER.into()),
                ("rotor:iam-probe-action", "iam:GetUser".into()),
            ]),
            None,
        )
        .unwrap();
    let clock = Arc::new(TestClock(Mutex::new(
        Utc.with_ymd_and_hms(2026, 11, 28, 9, 30, 0).unwrap(),
    )));
    let svc = Services {
        store: Arc::new(store.clone()),
        kms: Arc::new(store.clone()),
        iam: Arc::new(store.clone()),
        sts: Arc::new(store.clone()),
        prober: Arc::new(ReqwestProber::new(std::time::Duration::from_secs(5))),
        audit: Arc::new(store.clone()),
        clock: clock.clone(),
        ecs: Arc::new(store.clone()),
        probe_hosts: Default::default(),
    };
    World {
        _dir: dir,
        store,
        vendor,
        app,
        clock,
        svc,
        first_id,
        first_key,
    }
}

/// Everything a handler could change, as the store shows it.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    /// Every secret as DescribeSecret shows it, with every version's value read by id.
    secrets: Vec<(SecretInfo, Vec<(String, String)>)>,
    audit: Vec<AuditRecord>,
    /// Metric samples per metric name.
    metrics: BTreeMap<String, usize>,
    /// The IAM user's access keys (ids and status).
    iam_keys: Vec<rotor_core::ports::AccessKeyInfo>,
}

impl World {
    async fn snapshot(&self) -> Snapshot {
        let mut secrets = Vec::new();
        for info in self.store.list_secrets().unwrap() {
            let mut values = Vec::new();
            for v in &info.versions {
                let (id, value) = self
                    .store
                    .get_value(&info.id, &Version::Id(v.version_id.clone()))
                    .await
                    .unwrap();
                values.push((id, value.expose().to_string()));
            }
            secrets.push((info, values));
        }
        let mut metrics = BTreeMap::new();
        for m in self.store.metrics(None).unwrap() {
            *metrics.entry(m.name).or_insert(0) += 1;
        }
        Snapshot {
            secrets,
            audit: self.store.audit_records(None).unwrap(),
            metrics,
            iam_keys: Iam::list_access_keys(&self.store, IAM_USER).await.unwrap(),
        }
    }

    async fn info(&self, id: &str) -> SecretInfo {
        self.store.describe(id).await.unwrap()
    }

    /// The version carrying `stage`, checking that at most one does.
    async fn holder(&self, id: &str, stage: &str) -> Option<String> {
        let info = self.info(id).await;
        let holders: Vec<_> = info
            .versions
            .iter()
            .filter(|v| v.stages.iter().any(|s| s == stage))
            .map(|v| v.version_id.clone())
            .collect();
        assert!(holders.len() <= 1, "{stage} on several versions: {info:?}");
        holders.into_iter().next()
    }

    async fn value(&self, id: &str, version_id: &str) -> String {
        let (_, v) = self
            .store
            .get_value(id, &Version::Id(version_id.into()))
            .await
            .unwrap();
        v.expose().to_string()
    }

    /// A rotate input for the vendor secret whose candidate is a fresh key the vendor issued,
    /// encrypted with the store's KMS under the secret's candidate context.
    async fn vendor_rotation(&self, exec: &str) -> (ExecutionInput, String) {
        let key = self.vendor.issue_key("openai");
        let sealed = rotor_core::candidate::seal(
            &self.store,
            VENDOR_SECRET,
            exec,
            self.clock.now() + Duration::hours(1),
            &SecretValue::new(key.clone()),
        )
        .await
        .unwrap();
        let input = ExecutionInput {
            action: Action::Rotate,
            secret_id: VENDOR_SECRET.into(),
            candidate_ciphertext: Some(sealed),
            requested_by: Some("github:alice".into()),
            reason: Some("idempotency".into()),
            target_version_id: None,
            force: false,
            recovery: None,
        };
        (input, key)
    }

    async fn stage(&self, exec: &str, input: &ExecutionInput) -> StagePendingOutput {
        handlers::stage_pending(
            &self.svc,
            StagePendingInput {
                execution_id: execution(exec),
                input: input.clone(),
            },
        )
        .await
        .unwrap()
    }

    async fn promote(&self, staged: &StagePendingOutput) -> PromoteOutput {
        handlers::promote(&self.svc, promote_input(staged))
            .await
            .unwrap()
    }

    /// Exactly one AWSCURRENT (on `expected`), and it passes the real candidate probe against
    /// the vendor stand-in.
    async fn assert_current_works(&self, expected: &str) {
        assert_eq!(
            self.holder(VENDOR_SECRET, AWSCURRENT).await.as_deref(),
            Some(expected)
        );
        let probe = handlers::health_probe(
            &self.svc,
            HealthProbeInput {
                secret_id: VENDOR_SECRET.into(),
                version_id: expected.into(),
                target: ProbeTarget::Candidate,
            },
        )
        .await
        .expect("AWSCURRENT works");
        assert!(probe.valid && !probe.skipped);
    }
}

fn promote_input(staged: &StagePendingOutput) -> PromoteInput {
    PromoteInput {
        secret_id: staged.secret_id.clone(),
        pending_version_id: staged.pending_version_id.clone(),
        previous_version_id: staged.previous_version_id.clone(),
    }
}

fn rollback_input(
    mode: RollbackMode,
    exec: &str,
    staged: Option<&StagePendingOutput>,
) -> RollbackInput {
    RollbackInput {
        mode,
        secret_id: VENDOR_SECRET.into(),
        execution_id: execution(exec),
        staged: staged.cloned(),
        request: None,
    }
}

/// Calls `call` (which must succeed), snapshots, calls it again with the same input: the same
/// answer and the identical snapshot. Returns the answer.
async fn twice<T, F, Fut>(w: &World, what: &str, call: F) -> T
where
    T: PartialEq + Debug,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let first = call()
        .await
        .unwrap_or_else(|e| panic!("{what}: the first call failed: {e}"));
    let after_first = w.snapshot().await;
    let again = call()
        .await
        .unwrap_or_else(|e| panic!("{what}: the re-invocation failed: {e}"));
    assert_eq!(again, first, "{what}: a re-invocation answers the same");
    assert_eq!(
        w.snapshot().await,
        after_first,
        "{what}: a re-invocation changes nothing"
    );
    first
}

// ----------------------------------------------------------------------------- stage-pending

#[tokio::test]
async fn stage_pending_vendor_key_twice() {
    let w = world().await;
    let (input, key) = w.vendor_rotation("stage-vendor").await;
    let req = StagePendingInput {
        execution_id: execution("stage-vendor"),
        input,
    };
    let staged = twice(&w, "stage-pending (vendor-api-key)", || {
        handlers::stage_pending(&w.svc, req.clone())
    })
    .await;
    assert_eq!(staged.pending_version_id, token_for(&req.execution_id));
    assert_eq!(staged.previous_version_id, w.first_id);
    assert_eq!(staged.kind, "vendor-api-key");
    assert!(staged.app_probe);
    assert_eq!(
        w.holder(VENDOR_SECRET, AWSPENDING).await.as_deref(),
        Some(staged.pending_version_id.as_str())
    );
    assert_eq!(
        w.value(VENDOR_SECRET, &staged.pending_version_id).await,
        key
    );
    w.assert_current_works(&w.first_id).await;
}

#[tokio::test]
async fn stage_pending_generated_value_twice() {
    let w = world().await;
    let before = w.info(GENERATED_SECRET).await;
    let current = before.version_with(AWSCURRENT).unwrap().version_id.clone();
    let req = StagePendingInput {
        execution_id: execution("stage-generated"),
        input: ExecutionInput {
            action: Action::Rotate,
            secret_id: GENERATED_SECRET.into(),
            candidate_ciphertext: None,
            requested_by: None,
            reason: None,
            target_version_id: None,
            force: false,
            recovery: None,
        },
    };
    // A re-invocation must not generate (and try to stage) a second value.
    let staged = twice(&w, "stage-pending (generated)", || {
        handlers::stage_pending(&w.svc, req.clone())
    })
    .await;
    assert_eq!(staged.kind, "generated");
    assert_eq!(staged.previous_version_id, current);
    assert!(!staged.app_probe);
    let value = w.value(GENERATED_SECRET, &staged.pending_version_id).await;
    assert_eq!(value.len(), 48);
    assert!(value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_eq!(
        w.holder(GENERATED_SECRET, AWSPENDING).await,
        Some(staged.pending_version_id.clone())
    );
}

// ------------------------------------------------------------------------------ health-probe

#[tokio::test]
async fn health_probe_candidate_and_application_twice() {
    let w = world().await;
    let (input, _) = w.vendor_rotation("probe").await;
    let staged = w.stage("probe", &input).await;

    let seen = w.vendor.requests_seen_by("openai");
    let candidate = HealthProbeInput {
        secret_id: VENDOR_SECRET.into(),
        version_id: staged.pending_version_id.clone(),
        target: ProbeTarget::Candidate,
    };
    let out = twice(&w, "health-probe (candidate)", || {
        handlers::health_probe(&w.svc, candidate.clone())
    })
    .await;
    assert_eq!(
        (out.valid, out.skipped, out.proof.as_str()),
        (true, false, "openai accepted the key (HTTP 200)")
    );
    // Both calls really asked the vendor over HTTP.
    assert_eq!(w.vendor.requests_seen_by("openai"), seen + 2);

    w.promote(&staged).await;
    let checks = w.app.health_checks();
    let application = HealthProbeInput {
        target: ProbeTarget::Application,
        ..candidate
    };
    let out = twice(&w, "health-probe (application)", || {
        handlers::health_probe(&w.svc, application.clone())
    })
    .await;
    assert_eq!(
        (out.valid, out.skipped, out.proof.as_str()),
        (true, false, "application accepted the key (HTTP 200)")
    );
    assert_eq!(w.app.health_checks(), checks + 2);
}

// ----------------------------------------------------------------------------------- promote

#[tokio::test]
async fn promote_twice() {
    let w = world().await;
    let (input, key) = w.vendor_rotation("promote").await;
    let staged = w.stage("promote", &input).await;
    let req = promote_input(&staged);
    let out = twice(&w, "promote", || handlers::promote(&w.svc, req.clone())).await;
    assert_eq!(
        out,
        PromoteOutput {
            secret_id: VENDOR_SECRET.into(),
            current_version_id: staged.pending_version_id.clone(),
            previous_version_id: w.first_id.clone(),
            changed: true,
        }
    );
    w.assert_current_works(&staged.pending_version_id).await;
    assert_eq!(w.value(VENDOR_SECRET, &out.current_version_id).await, key);
    assert_eq!(
        w.holder(VENDOR_SECRET, AWSPREVIOUS).await,
        Some(w.first_id.clone())
    );
    assert_eq!(w.holder(VENDOR_SECRET, AWSPENDING).await, None);
}

// ---------------------------------------------------------------------------------- rollback

#[tokio::test]
async fn rollback_abandon_twice() {
    let w = world().await;
    let (input, _) = w.vendor_rotation("abandon").await;
    let staged = w.stage("abandon", &input).await;
    let versions_before = w.info(VENDOR_SECRET).await.versions;
    let req = rollback_input(RollbackMode::Abandon, "abandon", Some(&staged));
    let out = twice(&w, "rollback abandon", || {
        handlers::rollback(&w.svc, req.clone())
    })
    .await;
    assert_eq!(
        out,
        RollbackOutput {
            mode: RollbackMode::Abandon,
            secret_id: VENDOR_SECRET.into(),
            current_version_id: Some(w.first_id.clone()),
            undone_version_id: Some(staged.pending_version_id.clone()),
            changed: true,
            probe: false,
            consumers: vec![],
        }
    );
    // AWSPENDING is gone; the abandoned version stays, with no label.
    assert_eq!(w.holder(VENDOR_SECRET, AWSPENDING).await, None);
    let after = w.info(VENDOR_SECRET).await.versions;
    assert_eq!(after.len(), versions_before.len());
    assert!(after
        .iter()
        .find(|v| v.version_id == staged.pending_version_id)
        .is_some_and(|v| v.stages.is_empty()));
    w.assert_current_works(&w.first_id).await;
}

#[tokio::test]
async fn rollback_abandon_after_promote_went_through_twice() {
    // Promote succeeded but its answer was lost (the Task failed anyway): the state machine
    // abandons, and abandon must put AWSCURRENT back, once.
    let w = world().await;
    let (input, _) = w.vendor_rotation("abandon-late").await;
    let staged = w.stage("abandon-late", &input).await;
    w.promote(&staged).await;
    let req = rollback_input(RollbackMode::Abandon, "abandon-late", Some(&staged));
    let out = twice(&w, "rollback abandon after promote", || {
        handlers::rollback(&w.svc, req.clone())
    })
    .await;
    assert_eq!(out.current_version_id.as_deref(), Some(w.first_id.as_str()));
    assert_eq!(
        out.undone_version_id.as_deref(),
        Some(staged.pending_version_id.as_str())
    );
    assert!(out.changed);
    assert_eq!(w.holder(VENDOR_SECRET, AWSPENDING).await, None);
    // AWSPREVIOUS is back where it was before the rotation (on no version): the abandoned
    // candidate holds no label.
    assert_eq!(w.holder(VENDOR_SECRET, AWSPREVIOUS).await, None);
    w.assert_current_works(&w.first_id).await;
}

#[tokio::test]
async fn rollback_abandon_with_nothing_staged_twice() {
    // AbandonAfterStagingFailure: stage-pending never wrote, so there is nothing to undo.
    let w = world().await;
    let req = rollback_input(RollbackMode::Abandon, "never-staged", None);
    let before = w.snapshot().await;
    let out = twice(&w, "rollback abandon (nothing staged)", || {
        handlers::rollback(&w.svc, req.clone())
    })
    .await;
    assert_eq!(
        (out.changed, out.undone_version_id, out.current_version_id),
        (false, None, Some(w.first_id.clone()))
    );
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn rollback_revert_twice() {
    let w = world().await;
    let (input, _) = w.vendor_rotation("revert").await;
    let staged = w.stage("revert", &input).await;
    w.promote(&staged).await;
    let req = rollback_input(RollbackMode::Revert, "revert", Some(&staged));
    let out = twice(&w, "rollback revert", || {
        handlers::rollback(&w.svc, req.clone())
    })
    .await;
    assert_eq!(
        out,
        RollbackOutput {
            mode: RollbackMode::Revert,
            secret_id: VENDOR_SECRET.into(),
            current_version_id: Some(w.first_id.clone()),
            undone_version_id: Some(staged.pending_version_id.clone()),
            changed: true,
            probe: false,
            consumers: vec![],
        }
    );
    w.assert_current_works(&w.first_id).await;
    // AWSPREVIOUS is back where it was before the rotation (on no version): the rejected
    // candidate holds no label, so a later rollback cannot install it.
    assert_eq!(w.holder(VENDOR_SECRET, AWSPREVIOUS).await, None);
    assert_eq!(w.holder(VENDOR_SECRET, AWSPENDING).await, None);
}

#[tokio::test]
async fn rollback_manual_plan_and_move_twice() {
    let w = world().await;
    let (input, _) = w.vendor_rotation("rotate-first").await;
    let staged = w.stage("rotate-first", &input).await;
    w.promote(&staged).await;

    // PlanManualRollback only reads.
    let before = w.snapshot().await;
    let req = rollback_input(RollbackMode::Manual, "manual", None);
    let plan = twice(&w, "rollback manual (plan)", || {
        handlers::rollback(&w.svc, req.clone())
    })
    .await;
    assert_eq!(w.snapshot().await, before, "a plan writes nothing");
    assert_eq!(
        plan,
        RollbackOutput {
            mode: RollbackMode::Manual,
            secret_id: VENDOR_SECRET.into(),
            current_version_id: Some(w.first_id.clone()),
            undone_version_id: Some(staged.pending_version_id.clone()),
            changed: false,
            // Not forced and AWSCURRENT moves: the target is probed first.
            probe: true,
            consumers: vec![],
        }
    );

    // MoveCurrentBack: promote with the plan's versions, as the state machine builds it.
    let mv = PromoteInput {
        secret_id: plan.secret_id.clone(),
        pending_version_id: plan.current_version_id.clone().unwrap(),
        previous_version_id: plan.undone_version_id.clone().unwrap(),
    };
    let moved = twice(&w, "promote (MoveCurrentBack)", || {
        handlers::promote(&w.svc, mv.clone())
    })
    .await;
    assert!(moved.changed);
    w.assert_current_works(&w.first_id).await;
    assert_eq!(
        w.holder(VENDOR_SECRET, AWSPREVIOUS).await,
        Some(staged.pending_version_id.clone())
    );
    // A re-run of the plan now would plan the opposite move: the plan is per execution state,
    // and the state machine never re-plans after moving. The move itself is the CAS above.
}

// --------------------------------------------------------------------------------- audit-log

#[tokio::test]
async fn audit_log_twice_keeps_one_record() {
    let w = world().await;
    let (input, _) = w.vendor_rotation("audited").await;
    let staged = w.stage("audited", &input).await;
    w.promote(&staged).await;
    let req = AuditInput {
        execution_id: execution("audited"),
        started_at: "2026-11-28T09:29:00.000Z".into(),
        input: input.clone(),
        staged: Some(staged.clone()),
        outcome: "rotated".into(),
        error: None,
        rollback: None,
    };

    let first = handlers::audit_log(&w.svc, req.clone()).await.unwrap();
    let after_first = w.snapshot().await;
    assert_eq!(after_first.audit.len(), 1);
    assert_eq!(
        after_first.metrics,
        BTreeMap::from([
            ("RotationDuration".to_string(), 1),
            ("RotationSucceeded".to_string(), 1)
        ])
    );

    // The retry, at the same instant: the same answer; the record and the secrets as they
    // were; one more sample of each metric (at-least-once, as on CloudWatch).
    let again = handlers::audit_log(&w.svc, req.clone()).await.unwrap();
    assert_eq!(again, first);
    let after_again = w.snapshot().await;
    assert_eq!(after_again.secrets, after_first.secrets);
    assert_eq!(after_again.audit, after_first.audit);
    assert_eq!(
        after_again.metrics,
        BTreeMap::from([
            ("RotationDuration".to_string(), 2),
            ("RotationSucceeded".to_string(), 2)
        ])
    );

    // A retry a minute later (as a Step Functions retry would be): still one record for the
    // execution, with the same content; only the time it was (re)written may move.
    w.clock.advance(Duration::minutes(1));
    let later = handlers::audit_log(&w.svc, req.clone()).await.unwrap();
    assert_eq!(later, first);
    let records = w.store.audit_records(None).unwrap();
    assert_eq!(records.len(), 1, "one audit record per execution");
    let masked = |r: &AuditRecord| AuditRecord {
        finished_at: String::new(),
        ..r.clone()
    };
    assert_eq!(masked(&records[0]), masked(&after_first.audit[0]));
    let record = &records[0];
    assert_eq!(record.outcome, "rotated");
    assert_eq!(record.old_version_id.as_deref(), Some(w.first_id.as_str()));
    assert_eq!(
        record.new_version_id.as_deref(),
        Some(staged.pending_version_id.as_str())
    );
    assert_eq!(w.snapshot().await.secrets, after_first.secrets);
}

// ---------------------------------------------------------------- retries across the steps

/// Every step of a successful rotation re-invoked, in order, after the whole rotation
/// succeeded (a Step Functions retry of a step whose answer was lost, or a replay): each
/// answers what it answered the first time and changes nothing. This covers stage-pending
/// re-invoked after promote already happened and promote re-invoked after it succeeded.
#[tokio::test]
async fn every_step_of_a_finished_rotation_replays_as_a_no_op() {
    let w = world().await;
    let (input, key) = w.vendor_rotation("replayed").await;
    let exec = execution("replayed");
    let stage_req = StagePendingInput {
        execution_id: exec.clone(),
        input: input.clone(),
    };
    let staged = handlers::stage_pending(&w.svc, stage_req.clone())
        .await
        .unwrap();
    let candidate_req = HealthProbeInput {
        secret_id: VENDOR_SECRET.into(),
        version_id: staged.pending_version_id.clone(),
        target: ProbeTarget::Candidate,
    };
    let candidate = handlers::health_probe(&w.svc, candidate_req.clone())
        .await
        .unwrap();
    let promote_req = promote_input(&staged);
    let promoted = handlers::promote(&w.svc, promote_req.clone())
        .await
        .unwrap();
    let app_req = HealthProbeInput {
        target: ProbeTarget::Application,
        ..candidate_req.clone()
    };
    let app = handlers::health_probe(&w.svc, app_req.clone())
        .await
        .unwrap();
    let audit_req = AuditInput {
        execution_id: exec.clone(),
        started_at: "2026-11-28T09:29:00.000Z".into(),
        input: input.clone(),
        staged: Some(staged.clone()),
        outcome: "rotated".into(),
        error: None,
        rollback: None,
    };
    handlers::audit_log(&w.svc, audit_req.clone())
        .await
        .unwrap();
    let done = w.snapshot().await;

    assert_eq!(
        handlers::stage_pending(&w.svc, stage_req).await.unwrap(),
        staged,
        "stage-pending after promote"
    );
    assert_eq!(w.snapshot().await, done, "stage-pending after promote");
    assert_eq!(
        handlers::health_probe(&w.svc, candidate_req).await.unwrap(),
        candidate
    );
    assert_eq!(
        handlers::promote(&w.svc, promote_req).await.unwrap(),
        promoted,
        "promote after it succeeded"
    );
    assert_eq!(handlers::health_probe(&w.svc, app_req).await.unwrap(), app);
    assert_eq!(
        w.snapshot().await,
        done,
        "replaying the steps changed nothing"
    );

    w.assert_current_works(&staged.pending_version_id).await;
    assert_eq!(
        w.value(VENDOR_SECRET, &staged.pending_version_id).await,
        key
    );
    assert_eq!(w.holder(VENDOR_SECRET, AWSPENDING).await, None);
    assert_eq!(
        w.holder(VENDOR_SECRET, AWSPREVIOUS).await,
        Some(w.first_id.clone())
    );
    // The old key is still the vendor's (revoking it is the operator's or IAM's business).
    assert!(w.vendor.accepts("openai", &w.first_key));
}

/// The same for the generated kind: stage-pending re-invoked after promote must not generate
/// another value (and so must not be refused for a token reused with another value).
#[tokio::test]
async fn generated_stage_pending_after_promote_answers_the_same() {
    let w = world().await;
    let req = StagePendingInput {
        execution_id: execution("generated-replay"),
        input: ExecutionInput {
            action: Action::Rotate,
            secret_id: GENERATED_SECRET.into(),
            candidate_ciphertext: None,
            requested_by: None,
            reason: None,
            target_version_id: None,
            force: false,
            recovery: None,
        },
    };
    let staged = handlers::stage_pending(&w.svc, req.clone()).await.unwrap();
    handlers::promote(&w.svc, promote_input(&staged))
        .await
        .unwrap();
    let done = w.snapshot().await;
    assert_eq!(handlers::stage_pending(&w.svc, req).await.unwrap(), staged);
    assert_eq!(w.snapshot().await, done);
}

#[tokio::test]
async fn abandon_and_revert_replayed_after_the_audit() {
    // Abandon path: stage, the candidate probe fails, abandon, audit; then abandon again.
    let w = world().await;
    let (input, _) = w.vendor_rotation("abandoned").await;
    let staged = w.stage("abandoned", &input).await;
    let abandon = rollback_input(RollbackMode::Abandon, "abandoned", Some(&staged));
    let first = handlers::rollback(&w.svc, abandon.clone()).await.unwrap();
    handlers::audit_log(
        &w.svc,
        AuditInput {
            execution_id: execution("abandoned"),
            started_at: "2026-11-28T09:29:00.000Z".into(),
            input: input.clone(),
            staged: Some(staged.clone()),
            outcome: "abandoned".into(),
            error: Some(ErrorInfo {
                error: "Probe.Rejected".into(),
                cause: "openai answered HTTP 401".into(),
            }),
            rollback: Some(first.clone()),
        },
    )
    .await
    .unwrap();
    let done = w.snapshot().await;
    assert_eq!(handlers::rollback(&w.svc, abandon).await.unwrap(), first);
    assert_eq!(w.snapshot().await, done);
    w.assert_current_works(&w.first_id).await;

    // Revert path on the same secret: a second execution promotes, the app probe fails,
    // revert; then revert again.
    let (input, _) = w.vendor_rotation("reverted").await;
    let staged = w.stage("reverted", &input).await;
    w.promote(&staged).await;
    let revert = rollback_input(RollbackMode::Revert, "reverted", Some(&staged));
    let first = handlers::rollback(&w.svc, revert.clone()).await.unwrap();
    let done = w.snapshot().await;
    assert_eq!(handlers::rollback(&w.svc, revert).await.unwrap(), first);
    assert_eq!(w.snapshot().await, done);
    w.assert_current_works(&w.first_id).await;
}

// ---------------------------------------------------------------------------------- negative

#[tokio::test]
async fn a_second_execution_cannot_stage_while_the_first_is_pending() {
    let w = world().await;
    let (first_input, _) = w.vendor_rotation("first").await;
    let first = w.stage("first", &first_input).await;
    let before = w.snapshot().await;

    let (second_input, _) = w.vendor_rotation("second").await;
    let second = StagePendingInput {
        execution_id: execution("second"),
        input: second_input,
    };
    for attempt in 0..2 {
        let e = handlers::stage_pending(&w.svc, second.clone())
            .await
            .unwrap_err();
        assert_eq!(
            e,
            RotorError::InProgress {
                secret_id: VENDOR_SECRET.into(),
                version_id: first.pending_version_id.clone(),
            },
            "attempt {attempt}"
        );
        assert_eq!(w.snapshot().await, before, "attempt {attempt}");
    }

    // The store refuses on its own too (a second execution that raced past the handler's
    // check): nothing is written.
    let e = w
        .store
        .put_pending(
            VENDOR_SECRET,
            &token_for(&second.execution_id),
            &SecretValue::new("sk-raced-past-the-check"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.asl_name(), "Rotation.InProgress");
    assert_eq!(w.snapshot().await, before);

    // The first execution's own retry still answers as staged.
    assert_eq!(w.stage("first", &first_input).await, first);
    assert_eq!(w.snapshot().await, before);
    w.assert_current_works(&w.first_id).await;
}

// ----------------------------------------------------------------------------- IAM access keys

fn iam_input() -> ExecutionInput {
    ExecutionInput {
        action: Action::Rotate,
        secret_id: IAM_SECRET.into(),
        candidate_ciphertext: None,
        requested_by: Some("github:alice".into()),
        reason: Some("idempotency".into()),
        target_version_id: None,
        force: false,
        recovery: None,
    }
}

fn revoke(mode: RevokeMode, staged: &StagePendingOutput, at: Option<String>) -> RevokeInput {
    RevokeInput {
        mode,
        secret_id: IAM_SECRET.into(),
        staged: staged.clone(),
        deactivated_at: at,
        consumers_redeployed: vec![],
    }
}

impl World {
    async fn iam_key_at(&self, stage: &str) -> rotor_core::iam::KeyValue {
        let (v, value) = self
            .store
            .get_value(IAM_SECRET, &Version::Stage(stage.into()))
            .await
            .unwrap();
        rotor_core::iam::KeyValue::parse(IAM_SECRET, &v, &value).unwrap()
    }

    async fn iam_key_ids(&self) -> Vec<(String, String)> {
        Iam::list_access_keys(&self.store, IAM_USER)
            .await
            .unwrap()
            .into_iter()
            .map(|k| (k.access_key_id, k.status))
            .collect()
    }
}

/// Every step of an IAM key rotation, each invoked twice (as a crashed-and-retried Lambda
/// would be): the second invocation answers the same and changes nothing, no third key is
/// ever created, and the rotated key authenticates.
#[tokio::test]
async fn every_iam_step_twice_changes_nothing_twice() {
    let w = world().await;
    let old = w.iam_key_at(AWSCURRENT).await;
    let input = iam_input();
    let exec = execution("iam-twice");
    let staged = twice(&w, "iam stage-pending", || {
        handlers::stage_pending(
            &w.svc,
            StagePendingInput {
                execution_id: exec.clone(),
                input: input.clone(),
            },
        )
    })
    .await;
    let iam = staged.iam.clone().expect("staged.iam");
    assert_eq!(
        iam.old_access_key_id.as_deref(),
        Some(old.access_key_id.as_str())
    );
    assert_eq!(w.iam_key_ids().await.len(), 2, "one new key, not two");
    let probe = twice(&w, "iam health-probe", || {
        handlers::health_probe(
            &w.svc,
            HealthProbeInput {
                secret_id: IAM_SECRET.into(),
                version_id: staged.pending_version_id.clone(),
                target: ProbeTarget::Candidate,
            },
        )
    })
    .await;
    assert!(
        probe.proof.contains("iam:GetUser was permitted"),
        "{}",
        probe.proof
    );
    twice(&w, "iam promote", || {
        handlers::promote(&w.svc, promote_input(&staged))
    })
    .await;
    let deactivated = twice(&w, "deactivate", || {
        handlers::revoke_old_iam_key(&w.svc, revoke(RevokeMode::Deactivate, &staged, None))
    })
    .await;
    assert!(deactivated.changed);
    assert!(w
        .iam_key_ids()
        .await
        .contains(&(old.access_key_id.clone(), "Inactive".to_string())));
    w.clock.advance(Duration::hours(1));
    let at = deactivated.deactivated_at.clone();
    let deleted = twice(&w, "delete", || {
        handlers::revoke_old_iam_key(&w.svc, revoke(RevokeMode::Delete, &staged, at.clone()))
    })
    .await;
    assert!(deleted.changed);
    assert_eq!(
        w.iam_key_ids().await,
        [(iam.new_access_key_id.clone(), "Active".to_string())]
    );
    let current = w.iam_key_at(AWSCURRENT).await;
    assert_eq!(current.access_key_id, iam.new_access_key_id);
    CallerIdentity::caller_identity(&w.store, &current.access_key_id, &current.secret_access_key)
        .await
        .expect("the rotated key authenticates");
    // And stage-pending replayed after everything answers the same ids and creates nothing.
    let again = handlers::stage_pending(
        &w.svc,
        StagePendingInput {
            execution_id: exec.clone(),
            input: input.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(again, staged);
    assert_eq!(w.iam_key_ids().await.len(), 1);
}

#[tokio::test]
async fn iam_revert_and_abandon_twice() {
    let w = world().await;
    let old = w.iam_key_at(AWSCURRENT).await;
    let old_version = w.holder(IAM_SECRET, AWSCURRENT).await.unwrap();
    // Revert after the old key was deactivated and a consumer used it.
    let staged = handlers::stage_pending(
        &w.svc,
        StagePendingInput {
            execution_id: execution("iam-revert"),
            input: iam_input(),
        },
    )
    .await
    .unwrap();
    w.promote(&staged).await;
    handlers::revoke_old_iam_key(&w.svc, revoke(RevokeMode::Deactivate, &staged, None))
        .await
        .unwrap();
    let revert = RollbackInput {
        mode: RollbackMode::Revert,
        secret_id: IAM_SECRET.into(),
        execution_id: execution("iam-revert"),
        staged: Some(staged.clone()),
        request: None,
    };
    let out = twice(&w, "iam revert", || {
        handlers::rollback(&w.svc, revert.clone())
    })
    .await;
    assert!(out.changed);
    assert_eq!(w.holder(IAM_SECRET, AWSCURRENT).await, Some(old_version));
    assert_eq!(
        w.iam_key_ids().await,
        [(old.access_key_id.clone(), "Active".to_string())],
        "old key Active again, new key gone"
    );
    // Abandon before promote deletes the new key, once.
    let staged = handlers::stage_pending(
        &w.svc,
        StagePendingInput {
            execution_id: execution("iam-abandon"),
            input: iam_input(),
        },
    )
    .await
    .unwrap();
    assert_eq!(w.iam_key_ids().await.len(), 2);
    let abandon = RollbackInput {
        mode: RollbackMode::Abandon,
        secret_id: IAM_SECRET.into(),
        execution_id: execution("iam-abandon"),
        staged: Some(staged.clone()),
        request: None,
    };
    twice(&w, "iam abandon", || {
        handlers::rollback(&w.svc, abandon.clone())
    })
    .await;
    assert_eq!(
        w.iam_key_ids().await,
        [(old.access_key_id.clone(), "Active".to_string())]
    );
    assert_eq!(w.holder(IAM_SECRET, AWSPENDING).await, None);
    // Abandon with no staged output (stage-pending failed after writing): finds the key from
    // this execution's version.
    handlers::stage_pending(
        &w.svc,
        StagePendingInput {
            execution_id: execution("iam-abandon-2"),
            input: iam_input(),
        },
    )
    .await
    .unwrap();
    let abandon = RollbackInput {
        mode: RollbackMode::Abandon,
        secret_id: IAM_SECRET.into(),
        execution_id: execution("iam-abandon-2"),
        staged: None,
        request: None,
    };
    twice(&w, "iam abandon without staged", || {
        handlers::rollback(&w.svc, abandon.clone())
    })
    .await;
    assert_eq!(w.iam_key_ids().await.len(), 1);
}

#[tokio::test]
async fn iam_key_limit_and_stale_key_replays() {
    let w = world().await;
    let other = Iam::create_access_key(&w.store, IAM_USER).await.unwrap();
    // In use (it signed a call): not an orphan of a lost CreateAccessKey answer.
    CallerIdentity::caller_identity(&w.store, &other.access_key_id, &other.secret_access_key)
        .await
        .unwrap();
    let req = StagePendingInput {
        execution_id: execution("iam-limit"),
        input: iam_input(),
    };
    let before = w.snapshot().await;
    for _ in 0..2 {
        let e = handlers::stage_pending(&w.svc, req.clone())
            .await
            .unwrap_err();
        assert_eq!(e.asl_name(), "Rotation.KeyLimit");
        assert!(e.to_string().contains(&other.access_key_id));
        assert_eq!(w.snapshot().await, before, "nothing changed");
    }
    // The other key Inactive: deleted to make room, once; the replay answers the same ids.
    Iam::set_access_key_active(&w.store, IAM_USER, &other.access_key_id, false)
        .await
        .unwrap();
    let first = handlers::stage_pending(&w.svc, req.clone()).await.unwrap();
    assert_eq!(
        first
            .iam
            .as_ref()
            .unwrap()
            .deleted_stale_access_key_id
            .as_deref(),
        Some(other.access_key_id.as_str())
    );
    let after = w.snapshot().await;
    let again = handlers::stage_pending(&w.svc, req.clone()).await.unwrap();
    assert_eq!(w.snapshot().await, after);
    let mut expected = first.clone();
    // Only the run that deleted the stale key knows it did.
    expected.iam.as_mut().unwrap().deleted_stale_access_key_id = None;
    assert_eq!(again, expected);
    assert_eq!(w.iam_key_ids().await.len(), 2);
}

/// The store of `inner`, where another rotation finishes (stages, promotes, clears AWSPENDING)
/// just before the second DescribeSecret: what a concurrent execution does while stage-pending
/// decrypts and checks its candidate.
struct RacedStore {
    inner: LocalStore,
    describes: Mutex<usize>,
}

#[async_trait::async_trait]
impl SecretStore for RacedStore {
    async fn describe(&self, secret_id: &str) -> Result<SecretInfo> {
        let n = {
            let mut d = self.describes.lock().unwrap();
            *d += 1;
            *d
        };
        if n == 2 {
            let other = token_for(&execution("the-winner"));
            let before = self.inner.describe(secret_id).await?;
            let current = before.version_with(AWSCURRENT).unwrap().version_id.clone();
            self.inner
                .put_pending(secret_id, &other, &SecretValue::new("sk-the-winners-key"))
                .await?;
            self.inner
                .update_stage(secret_id, AWSCURRENT, Some(&other), Some(&current))
                .await?;
            self.inner
                .update_stage(secret_id, AWSPENDING, None, Some(&other))
                .await?;
        }
        self.inner.describe(secret_id).await
    }
    async fn get_value(&self, secret_id: &str, version: &Version) -> Result<(String, SecretValue)> {
        self.inner.get_value(secret_id, version).await
    }
    async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        value: &SecretValue,
    ) -> Result<String> {
        self.inner.put_pending(secret_id, token, value).await
    }
    async fn update_stage(
        &self,
        secret_id: &str,
        stage: &str,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<()> {
        self.inner
            .update_stage(secret_id, stage, move_to, remove_from)
            .await
    }
}

#[tokio::test]
async fn a_rotation_that_finished_meanwhile_is_a_conflict_and_nothing_is_staged() {
    let w = world().await;
    let (input, _) = w.vendor_rotation("the-loser").await;
    let mut svc = w.svc.clone();
    svc.store = Arc::new(RacedStore {
        inner: w.store.clone(),
        describes: Mutex::new(0),
    });
    let e = handlers::stage_pending(
        &svc,
        StagePendingInput {
            execution_id: execution("the-loser"),
            input,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.asl_name(), "Rotation.Conflict", "{e}");
    let winner = token_for(&execution("the-winner"));
    assert_eq!(
        w.holder(VENDOR_SECRET, AWSCURRENT).await.as_deref(),
        Some(winner.as_str())
    );
    assert_eq!(w.holder(VENDOR_SECRET, AWSPENDING).await, None);
    let info = w.store.describe(VENDOR_SECRET).await.unwrap();
    assert!(
        !info
            .versions
            .iter()
            .any(|v| v.version_id == token_for(&execution("the-loser"))),
        "the loser staged a version: {info:?}"
    );
}

// --------------------------------------------------------------------- a candidate is used once

async fn stage_err(w: &World, exec: &str, input: &ExecutionInput) -> rotor_core::RotorError {
    handlers::stage_pending(
        &w.svc,
        StagePendingInput {
            execution_id: execution(exec),
            input: input.clone(),
        },
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn a_candidate_is_opened_by_its_own_execution_only() {
    let w = world().await;
    let (input, _) = w.vendor_rotation("sealed-for-this-one").await;
    let before = w.snapshot().await;
    let e = stage_err(&w, "another-execution", &input).await;
    assert_eq!(e.asl_name(), "Candidate.Invalid");
    assert!(
        e.to_string()
            .contains("made for execution sealed-for-this-one, not another-execution"),
        "{e}"
    );
    assert_eq!(w.snapshot().await, before, "nothing staged");
}

#[tokio::test]
async fn a_candidate_past_its_deadline_is_refused() {
    let w = world().await;
    let (input, _) = w.vendor_rotation("late").await;
    let before = w.snapshot().await;
    w.clock.advance(Duration::hours(1) + Duration::seconds(1));
    let e = stage_err(&w, "late", &input).await;
    assert_eq!(e.asl_name(), "Candidate.Invalid");
    assert!(e.to_string().contains("expired at"), "{e}");
    assert_eq!(w.snapshot().await, before, "nothing staged");
}

/// Its execution staged it and then let it go (abandoned: the version keeps no label). Staged
/// again under the same execution (a replay that reused the name where names are not unique)
/// it is refused: the used candidate is recorded with the version.
#[tokio::test]
async fn a_used_candidate_is_not_staged_again() {
    let w = world().await;
    let (input, _) = w.vendor_rotation("used").await;
    let staged = w.stage("used", &input).await;
    handlers::rollback(
        &w.svc,
        rollback_input(RollbackMode::Abandon, "used", Some(&staged)),
    )
    .await
    .unwrap();
    let before = w.snapshot().await;
    let e = stage_err(&w, "used", &input).await;
    assert_eq!(e.asl_name(), "Candidate.Invalid");
    assert!(
        e.to_string().contains(&format!(
            "execution used already used its candidate: version {}",
            staged.pending_version_id
        )),
        "{e}"
    );
    assert_eq!(w.snapshot().await, before, "nothing staged");
    assert_eq!(w.holder(VENDOR_SECRET, AWSPENDING).await, None);
}
