//! The whole rotation workflow against moto through the AWS adapters: the scenarios of
//! `rotor demo` (a vendor key rotated, a generated secret rotated, a bad candidate abandoned, an
//! application failing after promote reverted, a manual rollback), each checked afterwards by
//! reading the staging labels in moto directly with the raw `aws-sdk-secretsmanager` client.
//!
//! What runs where:
//!
//! * The state machine is the product's `statemachine/rotation.asl.json`, run by rotor's local
//!   executor (`rotor_runner::run_rotation`, virtual clock): there is no Docker, and moto cannot
//!   run Lambdas, so the Tasks are the real handlers in process.
//! * The handlers' ports are the AWS adapters (`rotor_aws::AwsAdapters`) pointed at moto:
//!   Secrets Manager, KMS (a key of its own per test, created in moto) and IAM. Secrets are
//!   created with `SecretsManagerStore::create_secret` and their `rotor:*` tags; vendor
//!   candidates are sealed with the adapter's KMS as `rotor start` seals them (`rotor_tests::candidates`).
//! * Probes go over real HTTP (`rotor_probe_http::ReqwestProber`, from
//!   `AwsAdapters::services`) to a loopback `VendorStandIn`, and to an `AppStandIn` whose
//!   current key is AWSCURRENT read through the `SecretsManagerStore` adapter, i.e. from moto.
//! * The audit sink is NOT the CloudWatch adapter: moto 5.2.5 does not serve the Smithy RPC v2
//!   CBOR protocol the current aws-sdk-cloudwatch speaks (PutMetricData answers 404, pinned in
//!   `tests/contract_moto.rs`), so the audit-log step would fail on its metrics. A small
//!   in-test [`Recorder`] takes the audit records and metrics instead, so the tests can read
//!   them back.
//!
//! After every scenario: neither the execution history (every event, the output, error and
//! cause) nor the audit records and metrics contain any key value involved (old key, new key,
//! rejected candidate, generated value).
//!
//! * Consumers (`rotor:consumers`): the ECS calls are the real `aws-sdk-ecs` client
//!   (`rotor_aws::AwsEcs`) against moto's ECS. moto runs no tasks, so a deployment would stay
//!   `IN_PROGRESS` for ever: the test plays the rollout openly by tagging its service
//!   `rotor-play:rollout=COMPLETED`, which `scripts/moto_launcher.py` (`_play_ecs_rollouts`)
//!   reads to settle each forced deployment on its second DescribeServices. What that does not
//!   prove: that real tasks start and read the new value (the local store's ECS-like services and
//!   the app stand-in play that, `crates/runner/tests/paths/consumers.rs`).
//!
//! Run through `scripts/test -p rotor-tests --test workflow_moto` (it starts moto and sets
//! `ROTOR_MOTO_ENDPOINT` and the test credentials). Every test uses its own secret, KMS key,
//! stand-ins and execution names, and never resets moto: they run in parallel with each other
//! and with the other moto suites.

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use rotor_asl::executor::{Outcome, Status};
use rotor_core::error::Result as RotorResult;
use rotor_core::events::{Action, ExecutionInput};
use rotor_core::handlers::token_for;
use rotor_core::policy::{
    Charset, TAG_APP_HEALTH_URL, TAG_CHARSET, TAG_KIND, TAG_LENGTH, TAG_PROBE, TAG_PROBE_URL,
    TAG_WAIT_CONSUMERS, TAG_WAIT_PROPAGATION,
};
use rotor_core::ports::{AuditRecord, AuditSink, Metric, Services};
use rotor_core::secret::{SecretValue, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use rotor_runner::{load_rotation_definition, run_rotation, RunnerOptions, STATE_MACHINE_NAME};
use rotor_standins::{AppStandIn, VendorStandIn};
use rotor_tests::contract::{unique, AwsFixture};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

// ------------------------------------------------------------------------------- the audit sink

/// The audit sink of these tests: keeps every record (one per execution, as the port requires:
/// a second record for the same execution replaces the first) and every metric.
#[derive(Default)]
struct Recorder {
    records: Mutex<Vec<AuditRecord>>,
    metrics: Mutex<Vec<Metric>>,
}

#[async_trait]
impl AuditSink for Recorder {
    async fn record(&self, record: &AuditRecord) -> RotorResult<()> {
        let mut records = self.records.lock().unwrap();
        records.retain(|r| r.execution_id != record.execution_id);
        records.push(record.clone());
        Ok(())
    }
    async fn metric(&self, metric: &Metric) -> RotorResult<()> {
        self.metrics.lock().unwrap().push(metric.clone());
        Ok(())
    }
}

// --------------------------------------------------------------------------------- the fixture

/// What kind of secret a scenario rotates.
enum Secret {
    /// `vendor-api-key` probed with `preset` on the vendor stand-in; `app`: with an
    /// `rotor:app-health-url` pointing at the app stand-in.
    Vendor { preset: &'static str, app: bool },
    /// `generated` with this length and charset; no probe, no application.
    Generated {
        length: usize,
        charset: &'static str,
    },
}

/// One scenario's world: the adapters on moto (own KMS key), a raw Secrets Manager client for
/// the checks, the stand-ins, the recorder, and one secret created through the adapter.
struct World {
    fixture: AwsFixture,
    /// The raw SDK client the label checks use (not the adapter).
    raw: aws_sdk_secretsmanager::Client,
    vendor: VendorStandIn,
    app: AppStandIn,
    recorder: Arc<Recorder>,
    services: Services,
    secret_id: String,
    /// The secret's first version (AWSCURRENT at creation) and its value.
    old_id: String,
    old_value: String,
}

impl World {
    async fn new(label: &str, secret: Secret) -> World {
        let fixture = AwsFixture::moto().await;
        let adapters = &fixture.adapters;
        let raw = aws_sdk_secretsmanager::Client::new(&adapters.config);
        let secret_id = unique(&format!("workflow-{label}"));

        let vendor = VendorStandIn::start().await;
        // The application reads AWSCURRENT through the Secrets Manager adapter, from moto.
        let current_key = rotor_standins::current_key_from(adapters.store.clone(), &secret_id);
        let preset = match secret {
            Secret::Vendor { preset, .. } => preset,
            Secret::Generated { .. } => "openai",
        };
        let app = AppStandIn::for_vendor(current_key, &vendor, preset).await;

        let mut tags = BTreeMap::from([
            (TAG_WAIT_PROPAGATION.to_string(), "2".to_string()),
            (TAG_WAIT_CONSUMERS.to_string(), "3".to_string()),
        ]);
        let old_value = match secret {
            Secret::Vendor {
                preset,
                app: with_app,
            } => {
                tags.insert(TAG_KIND.into(), "vendor-api-key".into());
                tags.insert(TAG_PROBE.into(), preset.into());
                tags.insert(TAG_PROBE_URL.into(), vendor.probe_url(preset));
                if with_app {
                    tags.insert(TAG_APP_HEALTH_URL.into(), app.health_url());
                }
                vendor.issue_key(preset)
            }
            Secret::Generated { length, charset } => {
                tags.insert(TAG_KIND.into(), "generated".into());
                tags.insert(TAG_LENGTH.into(), length.to_string());
                tags.insert(TAG_CHARSET.into(), charset.into());
                "initial-generated-value-set-by-hand".to_string()
            }
        };
        let old_id = adapters
            .store
            .create_secret(
                &secret_id,
                &SecretValue::new(old_value.clone()),
                &tags,
                Some("rotor workflow_moto scenario"),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("CreateSecret {secret_id} on moto: {e}"));

        let recorder = Arc::new(Recorder::default());
        let mut services = adapters.services().expect("the adapters' services");
        services.audit = recorder.clone();
        World {
            raw,
            vendor,
            app,
            recorder,
            services,
            secret_id,
            old_id,
            old_value,
            fixture,
        }
    }

    /// A rotate request; `candidate`: encrypted with the adapter's KMS (moto) under the
    /// secret's candidate context and base64-encoded, as `rotor rotate` sends it.
    async fn rotate_input(&self, candidate: Option<&str>) -> ExecutionInput {
        let candidate_ciphertext = match candidate {
            None => None,
            Some(c) => Some(
                rotor_tests::candidates::sealed(
                    self.fixture.adapters.kms.as_ref(),
                    &self.secret_id,
                    c,
                )
                .await,
            ),
        };
        ExecutionInput {
            action: Action::Rotate,
            secret_id: self.secret_id.clone(),
            candidate_ciphertext,
            requested_by: Some("workflow_moto".into()),
            reason: Some("acceptance test".into()),
            target_version_id: None,
            force: false,
            recovery: None,
        }
    }

    fn rollback_input(&self) -> ExecutionInput {
        ExecutionInput {
            action: Action::Rollback,
            secret_id: self.secret_id.clone(),
            candidate_ciphertext: None,
            requested_by: Some("workflow_moto".into()),
            reason: Some("manual rollback".into()),
            target_version_id: None,
            force: false,
            recovery: None,
        }
    }

    /// Runs the product's state machine on the local executor over the adapters; returns the
    /// outcome and the execution's ARN (`$$.Execution.Id`).
    async fn run(&self, input: &ExecutionInput, name: &str) -> (Outcome, String) {
        let name = rotor_tests::candidates::execution_name(input, name);
        let outcome = run_rotation(
            load_rotation_definition(),
            self.services.clone(),
            input,
            &name,
            RunnerOptions {
                seed: Some(7),
                real_time: false,
                observer: None,
                resume: None,
                interrupt: None,
                // Each function signed as its own role: scripts/permissions.py checks the calls.
                function_services: rotor_tests::principals::function_services(
                    &self.services,
                    &self.fixture.adapters.config,
                    self.fixture.adapters.kms.key_id(),
                    false,
                ),
                invoker: None,
            },
        )
        .await;
        let arn =
            format!("arn:aws:states:us-east-1:123456789012:execution:{STATE_MACHINE_NAME}:{name}");
        (outcome, arn)
    }

    // ------------------------------------------------------------- moto, read directly

    /// ListSecretVersionIds(IncludeDeprecated=true), every page: each version moto keeps and
    /// its labels (sorted), by version id.
    async fn moto_labels(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .raw
                .list_secret_version_ids()
                .secret_id(&self.secret_id)
                .include_deprecated(true)
                .set_next_token(next.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("ListSecretVersionIds {}: {e:?}", self.secret_id));
            for v in page.versions() {
                let mut stages = v.version_stages().to_vec();
                stages.sort();
                let id = v
                    .version_id()
                    .expect("a version without VersionId")
                    .to_owned();
                assert!(
                    out.insert(id.clone(), stages).is_none(),
                    "version {id} listed twice"
                );
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) if Some(t) != next.as_deref() => next = Some(t.to_owned()),
                _ => break,
            }
        }
        out
    }

    /// GetSecretValue with an explicit VersionStage: `(version id, value)`, or `None` when moto
    /// answers ResourceNotFoundException (no version carries the label).
    async fn moto_read(&self, stage: &str) -> Option<(String, String)> {
        match self
            .raw
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await
        {
            Ok(out) => Some((
                out.version_id().expect("VersionId").to_owned(),
                out.secret_string().expect("SecretString").to_owned(),
            )),
            Err(e) if e.code() == Some("ResourceNotFoundException") => None,
            Err(e) => panic!("GetSecretValue {} {stage}: {e:?}", self.secret_id),
        }
    }

    /// In moto: exactly one AWSCURRENT, on `current`, holding `current_value`; AWSPREVIOUS on
    /// `previous` (when given) holding `previous_value`; AWSPENDING nowhere (neither listed
    /// nor readable).
    async fn assert_moto_labels(
        &self,
        current: (&str, &str),
        previous: Option<(&str, &str)>,
    ) -> BTreeMap<String, Vec<String>> {
        let labels = self.moto_labels().await;
        let holders = |stage: &str| -> Vec<&str> {
            labels
                .iter()
                .filter(|(_, s)| s.iter().any(|x| x == stage))
                .map(|(v, _)| v.as_str())
                .collect()
        };
        assert_eq!(holders(AWSCURRENT), [current.0], "AWSCURRENT: {labels:?}");
        assert_eq!(
            self.moto_read(AWSCURRENT).await,
            Some((current.0.to_owned(), current.1.to_owned())),
            "GetSecretValue(AWSCURRENT)"
        );
        match previous {
            Some((id, value)) => {
                assert_eq!(holders(AWSPREVIOUS), [id], "AWSPREVIOUS: {labels:?}");
                assert_eq!(
                    self.moto_read(AWSPREVIOUS).await,
                    Some((id.to_owned(), value.to_owned())),
                    "GetSecretValue(AWSPREVIOUS)"
                );
            }
            None => {
                assert!(holders(AWSPREVIOUS).is_empty(), "AWSPREVIOUS: {labels:?}");
                assert_eq!(self.moto_read(AWSPREVIOUS).await, None);
            }
        }
        assert!(holders(AWSPENDING).is_empty(), "AWSPENDING: {labels:?}");
        assert_eq!(
            self.moto_read(AWSPENDING).await,
            None,
            "GetSecretValue(AWSPENDING)"
        );
        labels
    }

    // ------------------------------------------------------------- audit and leaks

    /// The one audit record of `execution`.
    fn audited(&self, execution: &str) -> AuditRecord {
        let records = self.recorder.records.lock().unwrap();
        let mine: Vec<&AuditRecord> = records
            .iter()
            .filter(|r| r.execution_id == execution)
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "one audit record for {execution}: {records:?}"
        );
        mine[0].clone()
    }

    /// No value in `values` appears in the execution's history (events, output, error, cause),
    /// in any audit record or in any metric.
    fn assert_no_value_leaked(&self, outcome: &Outcome, values: &[&str]) {
        let history = serde_json::to_string(&outcome.events).unwrap();
        let output = serde_json::to_string(&outcome.output).unwrap();
        let ending = format!("{:?} {:?}", outcome.error, outcome.cause);
        let records = serde_json::to_string(&*self.recorder.records.lock().unwrap()).unwrap();
        let metrics = serde_json::to_string(&*self.recorder.metrics.lock().unwrap()).unwrap();
        assert!(!outcome.events.is_empty(), "the execution has a history");
        assert!(records.len() > 2, "there is an audit record");
        for value in values {
            assert!(
                value.len() >= 16,
                "too short to search for: {}",
                value.len()
            );
            for (what, text) in [
                ("the execution history", &history),
                ("the execution output", &output),
                ("the execution's error/cause", &ending),
                ("the audit records", &records),
                ("the metrics", &metrics),
            ] {
                assert!(
                    !text.contains(value),
                    "a key value ({} bytes) leaked into {what}",
                    value.len()
                );
            }
        }
    }
}

/// The states an execution entered, in order.
fn entered(outcome: &Outcome) -> Vec<String> {
    outcome
        .events
        .iter()
        .filter_map(|e| e.get("stateEnteredEventDetails"))
        .filter_map(|d| d["name"].as_str().map(str::to_owned))
        .collect()
}

fn describe(outcome: &Outcome) -> String {
    format!(
        "{:?} {:?} {:?} via {:?}",
        outcome.status,
        outcome.error,
        outcome.cause,
        entered(outcome)
    )
}

/// A vendor rotation that must succeed; returns (new version id, new key, outcome, execution
/// ARN). `revoke_old`: the vendor stops accepting the old key before the run, so the
/// application probe passes only if the app reads the new AWSCURRENT from moto.
async fn rotate_vendor(
    w: &World,
    preset: &str,
    name: &str,
    revoke_old: bool,
) -> (String, String, Outcome, String) {
    let new_key = w.vendor.issue_key(preset);
    if revoke_old {
        assert!(w.vendor.revoke_key(&w.old_value));
    }
    let input = w.rotate_input(Some(&new_key)).await;
    let (outcome, arn) = w.run(&input, name).await;
    assert_eq!(outcome.status, Status::Succeeded, "{}", describe(&outcome));
    (token_for(&arn), new_key, outcome, arn)
}

// ---------------------------------------------------------------------------------- scenarios

/// 1. A vendor key (openai preset, with an application) rotated to a key the vendor issued:
///    SUCCEEDED through every step; in moto AWSCURRENT is on the new version (this execution's
///    token) holding the new key, AWSPREVIOUS on the old one holding the old key, no AWSPENDING;
///    audit record `rotated`. The vendor revokes the old key before the run, so the application
///    probe passes only because the app read the new AWSCURRENT from moto through the adapter.
#[tokio::test]
async fn vendor_rotation_promotes_the_new_key_in_moto() {
    let w = World::new(
        "vendor",
        Secret::Vendor {
            preset: "openai",
            app: true,
        },
    )
    .await;
    let (new_id, new_key, outcome, arn) = rotate_vendor(&w, "openai", "vendor-rotate", true).await;
    assert_eq!(
        entered(&outcome),
        [
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
            "AuditRotated",
            "Rotated"
        ]
    );
    let out = outcome.output.clone().expect("output");
    assert_eq!(
        out["candidate_probe"]["proof"],
        "openai accepted the key (HTTP 200)"
    );
    assert_eq!(
        out["app_probe"]["proof"],
        "application accepted the key (HTTP 200)"
    );
    assert_eq!(out["promoted"]["changed"], true);
    assert_eq!(w.vendor.requests_seen_by("openai"), 1);
    assert_eq!(w.app.health_checks(), 1);

    let labels = w
        .assert_moto_labels((&new_id, &new_key), Some((&w.old_id, &w.old_value)))
        .await;
    assert_eq!(labels.len(), 2, "{labels:?}");

    let record = w.audited(&arn);
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("rotated", None)
    );
    assert_eq!(record.kind.as_deref(), Some("vendor-api-key"));
    assert_eq!(record.old_version_id.as_deref(), Some(w.old_id.as_str()));
    assert_eq!(record.new_version_id.as_deref(), Some(new_id.as_str()));
    let metrics = w.recorder.metrics.lock().unwrap().clone();
    assert!(
        metrics.iter().any(|m| m.name == "RotationSucceeded"),
        "{metrics:?}"
    );
    w.assert_no_value_leaked(&outcome, &[&w.old_value, &new_key]);
}

/// 2. A generated secret (no probe, no application) rotated: SUCCEEDED with both probes
///    reported skipped; in moto the new AWSCURRENT value has the policy's length and charset and
///    differs from the old one, AWSPREVIOUS holds the old value, no AWSPENDING.
#[tokio::test]
async fn generated_rotation_writes_a_value_of_the_policy_to_moto() {
    const LENGTH: usize = 48;
    let w = World::new(
        "generated",
        Secret::Generated {
            length: LENGTH,
            charset: "url-safe",
        },
    )
    .await;
    let input = w.rotate_input(None).await;
    let (outcome, arn) = w.run(&input, "generated-rotate").await;
    assert_eq!(outcome.status, Status::Succeeded, "{}", describe(&outcome));
    let out = outcome.output.clone().expect("output");
    assert_eq!(out["candidate_probe"]["skipped"], true);
    assert_eq!(out["app_probe"]["skipped"], true);
    assert_eq!(w.vendor.requests_seen(), BTreeMap::new(), "nothing probed");

    let new_id = token_for(&arn);
    let (current_id, new_value) = w.moto_read(AWSCURRENT).await.expect("AWSCURRENT");
    assert_eq!(current_id, new_id);
    assert_ne!(new_value, w.old_value);
    assert_eq!(new_value.len(), LENGTH);
    let alphabet = Charset::UrlSafe.alphabet();
    assert!(
        new_value.bytes().all(|b| alphabet.contains(&b)),
        "the generated value has characters outside url-safe"
    );
    let labels = w
        .assert_moto_labels((&new_id, &new_value), Some((&w.old_id, &w.old_value)))
        .await;
    assert_eq!(labels.len(), 2, "{labels:?}");

    let record = w.audited(&arn);
    assert_eq!(
        (record.outcome.as_str(), record.kind.as_deref()),
        ("rotated", Some("generated"))
    );
    assert_eq!(record.new_version_id.as_deref(), Some(new_id.as_str()));
    w.assert_no_value_leaked(&outcome, &[&w.old_value, &new_value]);
}

/// 3. A candidate the vendor never issued (polygon preset): the candidate probe gets HTTP 401,
///    the execution FAILS with Probe.Rejected through Abandon without reaching Promote; audit
///    `abandoned`. In moto nothing changed: the same AWSCURRENT version and value, no
///    AWSPENDING, and the staged version (moto keeps it) carries no label.
#[tokio::test]
async fn bad_candidate_is_abandoned_and_moto_is_unchanged() {
    let w = World::new(
        "bad-candidate",
        Secret::Vendor {
            preset: "polygon",
            app: false,
        },
    )
    .await;
    let before = w.moto_labels().await;
    // Shaped like a polygon key, never issued by the stand-in.
    let bogus = "NotIssuedByTheVendor0123456789ab";
    let input = w.rotate_input(Some(bogus)).await;
    let (outcome, arn) = w.run(&input, "bad-candidate").await;
    assert_eq!(outcome.status, Status::Failed, "{}", describe(&outcome));
    assert_eq!(
        outcome.error.as_deref(),
        Some("Probe.Rejected"),
        "{}",
        describe(&outcome)
    );
    assert!(
        outcome.cause.as_deref().unwrap_or("").contains("HTTP 401"),
        "{:?}",
        outcome.cause
    );
    let states = entered(&outcome);
    assert!(states.iter().any(|s| s == "Abandon"), "{states:?}");
    assert!(!states.iter().any(|s| s == "Promote"), "{states:?}");
    assert_eq!(w.vendor.requests_seen_by("polygon"), 1, "not retried");

    let after = w.assert_moto_labels((&w.old_id, &w.old_value), None).await;
    let staged = token_for(&arn);
    let others: BTreeMap<_, _> = after
        .iter()
        .filter(|(id, _)| **id != staged)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(others, before, "the other versions' labels are unchanged");
    // The abandoned version stays, without any label (AWS: a deprecated version, listed only
    // with IncludeDeprecated; moto 5.2.5 keeps it too and never purges it).
    assert_eq!(
        after.get(&staged),
        Some(&Vec::new()),
        "the abandoned version {staged}: {after:?}"
    );
    // moto 5.2.5 divergences met here, pinned so an upgrade shows: AWS leaves a version without
    // labels out of ListSecretVersionIds unless IncludeDeprecated=true, and out of
    // DescribeSecret's VersionIdsToStages; moto lists it in both, with no labels. (The adapter
    // always asks with IncludeDeprecated=true, so it sees the same on both.)
    let listed = w
        .raw
        .list_secret_version_ids()
        .secret_id(&w.secret_id)
        .send()
        .await
        .unwrap();
    assert!(
        listed
            .versions()
            .iter()
            .any(|v| v.version_id() == Some(staged.as_str()) && v.version_stages().is_empty()),
        "moto 5.2.5 lists the unlabelled version without IncludeDeprecated (AWS does not); \
         if this fails, moto changed: {listed:?}"
    );
    let described = w
        .raw
        .describe_secret()
        .secret_id(&w.secret_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described
            .version_ids_to_stages()
            .and_then(|m| m.get(&staged))
            .map(Vec::len),
        Some(0),
        "moto 5.2.5 puts the unlabelled version in VersionIdsToStages (AWS does not); \
         if this fails, moto changed"
    );

    let record = w.audited(&arn);
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("abandoned", Some("Probe.Rejected"))
    );
    assert_eq!(record.old_version_id.as_deref(), Some(w.old_id.as_str()));
    assert_eq!(record.new_version_id, None);
    w.assert_no_value_leaked(&outcome, &[&w.old_value, bogus]);
}

/// 4. The application fails after promote (AppStandIn set broken: HTTP 500 = Probe.NotReady,
///    retried 4 times, then Revert): FAILED with Rotation.RolledBack; audit `rolled-back`. In
///    moto AWSCURRENT is back on the original version with the old key, AWSPREVIOUS on the
///    reverted version, no AWSPENDING.
#[tokio::test]
async fn app_failing_after_promote_is_reverted_in_moto() {
    let w = World::new(
        "app-fails",
        Secret::Vendor {
            preset: "openai",
            app: true,
        },
    )
    .await;
    let new_key = w.vendor.issue_key("openai");
    let input = w.rotate_input(Some(&new_key)).await;
    w.app.set_broken(true);
    let (outcome, arn) = w.run(&input, "app-fails").await;
    w.app.set_broken(false);
    assert_eq!(outcome.status, Status::Failed, "{}", describe(&outcome));
    assert_eq!(
        outcome.error.as_deref(),
        Some("Rotation.RolledBack"),
        "{}",
        describe(&outcome)
    );
    let states = entered(&outcome);
    for state in ["Promote", "ProbeApplication", "Revert"] {
        assert!(states.iter().any(|s| s == state), "{state}: {states:?}");
    }
    assert_eq!(w.app.health_checks(), 5, "1 + 4 Probe.NotReady retries");
    assert!(
        outcome
            .cause
            .as_deref()
            .unwrap_or("")
            .contains(&format!("AWSCURRENT is on version {} again", w.old_id)),
        "{:?}",
        outcome.cause
    );

    // AWSPREVIOUS is back where it was before the rotation (on no version): the rejected
    // candidate stays as a version without a label.
    let new_id = token_for(&arn);
    let labels = w.assert_moto_labels((&w.old_id, &w.old_value), None).await;
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert_eq!(labels[&new_id], Vec::<String>::new(), "{labels:?}");
    let _ = new_key;

    let record = w.audited(&arn);
    assert_eq!(
        (record.outcome.as_str(), record.error.as_deref()),
        ("rolled-back", Some("Probe.NotReady"))
    );
    w.assert_no_value_leaked(&outcome, &[&w.old_value, &new_key]);
}

/// 5. A manual rollback after a successful rotation (finnhub preset): SUCCEEDED through
///    PlanManualRollback and MoveCurrentBack; audit `manual-rollback` from the rotated version to
///    the original. In moto AWSCURRENT is back on the original version with the old key and
///    AWSPREVIOUS on the rotated one with the new key, no AWSPENDING.
#[tokio::test]
async fn manual_rollback_moves_awscurrent_back_in_moto() {
    let w = World::new(
        "rollback",
        Secret::Vendor {
            preset: "finnhub",
            app: false,
        },
    )
    .await;
    let (new_id, new_key, rotated, _) =
        rotate_vendor(&w, "finnhub", "rollback-rotate", false).await;
    w.assert_moto_labels((&new_id, &new_key), Some((&w.old_id, &w.old_value)))
        .await;

    let (outcome, arn) = w.run(&w.rollback_input(), "rollback-manual").await;
    assert_eq!(outcome.status, Status::Succeeded, "{}", describe(&outcome));
    assert_eq!(
        entered(&outcome),
        [
            "CheckInput",
            "PlanManualRollback",
            "CheckRollbackProbe",
            "ProbeRollbackTarget",
            "MoveCurrentBack",
            "HasConsumersAfterRollback",
            "AuditManualRollback",
            "ManualRollbackDone"
        ]
    );
    let labels = w
        .assert_moto_labels((&w.old_id, &w.old_value), Some((&new_id, &new_key)))
        .await;
    assert_eq!(labels.len(), 2, "{labels:?}");

    let record = w.audited(&arn);
    assert_eq!(
        (record.outcome.as_str(), record.action.as_str()),
        ("manual-rollback", "rollback")
    );
    assert_eq!(record.old_version_id.as_deref(), Some(new_id.as_str()));
    assert_eq!(record.new_version_id.as_deref(), Some(w.old_id.as_str()));
    w.assert_no_value_leaked(&rotated, &[&w.old_value, &new_key]);
    w.assert_no_value_leaked(&outcome, &[&w.old_value, &new_key]);
}

/// 6. A vendor key with an ECS consumer (`rotor:consumers`): after Promote the state machine
///    forces a new deployment of the service (UpdateService on moto's ECS) and polls
///    DescribeServices until it is COMPLETED (rollout played by the launcher, see the module
///    documentation); the rotation succeeds, and moto's service ends with a newer deployment,
///    COMPLETED, with every desired task running, started after AWSCURRENT moved.
#[tokio::test]
async fn vendor_rotation_redeploys_its_ecs_consumer_in_moto() {
    let w = World::new(
        "consumer",
        Secret::Vendor {
            preset: "openai",
            app: false,
        },
    )
    .await;
    let ecs = aws_sdk_ecs::Client::new(&w.fixture.adapters.config);
    let cluster = unique("rotor-cluster");
    let service = "backend";
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let secret_arn = w
        .raw
        .describe_secret()
        .secret_id(&w.secret_id)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let container = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name("backend")
        .image("public.ecr.aws/example/backend:1")
        .memory(512)
        .secrets(
            aws_sdk_ecs::types::Secret::builder()
                .name("OPENAI_API_KEY")
                .value_from(&secret_arn)
                .build()
                .unwrap(),
        )
        .build();
    let family = unique("backend");
    ecs.register_task_definition()
        .family(&family)
        .container_definitions(container)
        .send()
        .await
        .unwrap();
    let created = ecs
        .create_service()
        .cluster(&cluster)
        .service_name(service)
        .task_definition(&family)
        .desired_count(2)
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("rotor-play:rollout")
                .value("COMPLETED")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let first_deployment = created.service().unwrap().deployments()[0]
        .id()
        .unwrap()
        .to_string();
    w.raw
        .tag_resource()
        .secret_id(&w.secret_id)
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("rotor:consumers")
                .value(format!("ecs:{cluster}/{service}"))
                .build(),
        )
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("rotor:consumer-poll-seconds")
                .value("5")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let (new_id, new_key, outcome, arn) =
        rotate_vendor(&w, "openai", "consumer-rotate", false).await;
    let states = entered(&outcome);
    let at = |s: &str| {
        states
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} not entered: {states:?}"))
    };
    assert!(at("Promote") < at("UpdateService"), "{states:?}");
    assert!(
        at("ConsumersRedeployed") < at("ProbeApplication"),
        "{states:?}"
    );
    let looks = states.iter().filter(|s| *s == "DescribeService").count();
    assert_eq!(looks, 2, "DescribeServices until COMPLETED: {states:?}");
    let scheduled: Vec<String> = outcome
        .events
        .iter()
        .filter(|e| e["type"] == "TaskScheduled")
        .filter(|e| e["taskScheduledEventDetails"]["resourceType"] == "aws-sdk:ecs")
        .map(|e| {
            e["taskScheduledEventDetails"]["resource"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        scheduled,
        ["updateService", "describeServices", "describeServices"]
    );

    w.assert_moto_labels((&new_id, &new_key), Some((&w.old_id, &w.old_value)))
        .await;
    let described = ecs
        .describe_services()
        .cluster(&cluster)
        .services(service)
        .send()
        .await
        .unwrap();
    let newest = &described.services()[0].deployments()[0];
    assert_ne!(
        newest.id(),
        Some(first_deployment.as_str()),
        "a new deployment"
    );
    assert_eq!(
        newest.rollout_state(),
        Some(&aws_sdk_ecs::types::DeploymentRolloutState::Completed)
    );
    assert_eq!(newest.running_count(), newest.desired_count());
    assert_eq!(w.audited(&arn).outcome, "rotated");
    w.assert_no_value_leaked(&outcome, &[&w.old_value, &new_key]);
}
