//! One contract suite for rotor's ports, run against the local store (`tests/contract_local.rs`)
//! and against moto through the AWS adapters (`tests/contract_moto.rs`).
//!
//! Every check is an `async fn` over a [`Fixture`]: the ports as `&dyn SecretStore`,
//! `&dyn Kms`, `&dyn Iam`, `&dyn AuditSink`, plus the setup no port covers (create a secret with
//! tags, create an IAM user). [`contract_tests!`](crate::contract_tests) turns the list into
//! `#[tokio::test]`s for one fixture, so both backends run exactly the same checks.
//!
//! The suite asserts AWS's documented behaviour. Where moto 5.2.5 does otherwise, the
//! assertion carries a `moto:` comment: the AWS adapter enforces AWS's behaviour on its side,
//! and `tests/contract_moto.rs` also pins moto's own behaviour with the raw SDK client, so a
//! moto upgrade that changes it shows up.
//!
//! Names are unique per test (tests run in parallel against one moto, which is never reset).

use async_trait::async_trait;
use rotor_aws::{AwsAdapters, AwsOptions};
use rotor_core::error::{Result, RotorError};
use rotor_core::events::PromoteInput;
use rotor_core::ports::{
    AuditRecord, AuditSink, HttpProber, Iam, Kms, Metric, ProbeAnswer, ProbeRequest, SecretStore,
    Services, SystemClock,
};
use rotor_core::secret::{
    SecretInfo, SecretValue, Version, AWSCURRENT, AWSPENDING, AWSPREVIOUS, MAX_SECRET_BYTES,
};
use rotor_local_store::LocalStore;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A backend under test: its ports and the setup the ports do not cover.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// "local" or "moto", for messages.
    fn backend(&self) -> &'static str;
    fn store(&self) -> &dyn SecretStore;
    fn kms(&self) -> &dyn Kms;
    fn iam(&self) -> &dyn Iam;
    fn audit(&self) -> &dyn AuditSink;
    /// The handlers' view of this backend (prober: refuses every request).
    fn services(&self) -> Services;
    /// CreateSecret: the first version carries AWSCURRENT; returns its version id.
    async fn create_secret(
        &self,
        id: &str,
        value: &SecretValue,
        tags: BTreeMap<String, String>,
    ) -> Result<String>;
    /// CreateUser.
    async fn create_user(&self, name: &str) -> Result<()>;
}

/// A prober for suites that never probe.
pub struct NoProber;

#[async_trait]
impl HttpProber for NoProber {
    async fn send(&self, _request: &ProbeRequest) -> Result<ProbeAnswer> {
        Err(RotorError::internal("the contract suite does not probe"))
    }
}

/// The local store in a fresh temporary directory.
pub struct LocalFixture {
    pub store: LocalStore,
    _dir: tempfile::TempDir,
}

impl LocalFixture {
    pub fn new() -> LocalFixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::open(&dir.path().join("store")).expect("open the local store");
        LocalFixture { store, _dir: dir }
    }
}

impl Default for LocalFixture {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Fixture for LocalFixture {
    fn backend(&self) -> &'static str {
        "local"
    }
    fn store(&self) -> &dyn SecretStore {
        &self.store
    }
    fn kms(&self) -> &dyn Kms {
        &self.store
    }
    fn iam(&self) -> &dyn Iam {
        &self.store
    }
    fn audit(&self) -> &dyn AuditSink {
        &self.store
    }
    fn services(&self) -> Services {
        Services {
            store: Arc::new(self.store.clone()),
            kms: Arc::new(self.store.clone()),
            iam: Arc::new(self.store.clone()),
            sts: Arc::new(self.store.clone()),
            audit: Arc::new(self.store.clone()),
            prober: Arc::new(NoProber),
            clock: Arc::new(SystemClock),
            ecs: Arc::new(self.store.clone()),
            probe_hosts: Default::default(),
        }
    }
    async fn create_secret(
        &self,
        id: &str,
        value: &SecretValue,
        tags: BTreeMap<String, String>,
    ) -> Result<String> {
        self.store.create_secret(id, value, tags, None)
    }
    async fn create_user(&self, name: &str) -> Result<()> {
        self.store.create_user(name)
    }
}

/// The AWS adapters pointed at moto (`--endpoint-url` = [`crate::moto::endpoint`], region
/// us-east-1, credentials from the environment `scripts/test` sets), with a KMS key of its
/// own created at setup.
pub struct AwsFixture {
    pub adapters: AwsAdapters,
}

impl AwsFixture {
    pub async fn moto() -> AwsFixture {
        let opts = AwsOptions {
            endpoint_url: Some(crate::moto::endpoint()),
            region: Some(crate::moto::REGION.into()),
        };
        let config = rotor_aws::load(&opts).await;
        let kms = aws_sdk_kms::Client::new(&config);
        let key = kms
            .create_key()
            .description(crate::moto::unique_name("rotor-contract"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("KMS CreateKey on moto: {e:?}"));
        let key_id = key
            .key_metadata
            .expect("CreateKey answers KeyMetadata")
            .key_id;
        AwsFixture {
            adapters: AwsAdapters::from_config(config, key_id),
        }
    }
}

#[async_trait]
impl Fixture for AwsFixture {
    fn backend(&self) -> &'static str {
        "moto"
    }
    fn store(&self) -> &dyn SecretStore {
        self.adapters.store.as_ref()
    }
    fn kms(&self) -> &dyn Kms {
        self.adapters.kms.as_ref()
    }
    fn iam(&self) -> &dyn Iam {
        self.adapters.iam.as_ref()
    }
    fn audit(&self) -> &dyn AuditSink {
        self.adapters.audit.as_ref()
    }
    fn services(&self) -> Services {
        let mut services = self.adapters.services().expect("services");
        services.prober = Arc::new(NoProber);
        services
    }
    async fn create_secret(
        &self,
        id: &str,
        value: &SecretValue,
        tags: BTreeMap<String, String>,
    ) -> Result<String> {
        self.adapters
            .store
            .create_secret(id, value, &tags, Some("rotor contract suite"), None)
            .await
    }
    async fn create_user(&self, name: &str) -> Result<()> {
        self.adapters
            .iam
            .client()
            .create_user()
            .user_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| RotorError::internal(format!("IAM CreateUser {name}: {e:?}")))
    }
}

// ------------------------------------------------------------------ helpers

/// A unique secret id / user name for this test.
pub fn unique(prefix: &str) -> String {
    crate::moto::unique_name(prefix)
}

/// A fresh ClientRequestToken (36 characters).
pub fn token() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn value(s: &str) -> SecretValue {
    SecretValue::new(s)
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Asserts the error's ASL name and that its message contains every fragment.
#[track_caller]
pub fn assert_err<T: std::fmt::Debug>(result: Result<T>, asl_name: &str, fragments: &[&str]) {
    match result {
        Ok(v) => panic!("expected {asl_name}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.asl_name(), asl_name, "{e}");
            for f in fragments {
                assert!(e.to_string().contains(f), "{e:?} should mention {f:?}");
            }
        }
    }
}

/// version id -> its labels.
pub fn labels(info: &SecretInfo) -> BTreeMap<String, Vec<String>> {
    info.versions
        .iter()
        .map(|v| {
            let mut s = v.stages.clone();
            s.sort();
            (v.version_id.clone(), s)
        })
        .collect()
}

fn stages(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn read(f: &dyn Fixture, id: &str, version: Version) -> (String, String) {
    let (vid, v) = f
        .store()
        .get_value(id, &version)
        .await
        .unwrap_or_else(|e| panic!("{}: GetSecretValue {id} {version:?}: {e}", f.backend()));
    (vid, v.expose().to_string())
}

async fn describe(f: &dyn Fixture, id: &str) -> SecretInfo {
    f.store()
        .describe(id)
        .await
        .unwrap_or_else(|e| panic!("{}: describe {id}: {e}", f.backend()))
}

/// A secret with one version (AWSCURRENT): (id, version id).
async fn new_secret(f: &dyn Fixture, prefix: &str, v: &str) -> (String, String) {
    let id = unique(&format!("contract/{prefix}"));
    let vid = f
        .create_secret(&id, &value(v), tags(&[("rotor:kind", "generated")]))
        .await
        .unwrap_or_else(|e| panic!("{}: create {id}: {e}", f.backend()));
    (id, vid)
}

// ------------------------------------------------------------------ the suite

/// DescribeSecret: tags and versions; reads by stage and by id; unknown secrets.
pub async fn describe_tags_and_reads(f: &dyn Fixture) {
    let id = unique("contract/tags");
    let t = tags(&[
        ("rotor:kind", "vendor-api-key"),
        ("rotor:probe", "openai"),
        ("team", "platform"),
    ]);
    let v1 = f
        .create_secret(&id, &value("sk-one"), t.clone())
        .await
        .unwrap();

    let info = describe(f, &id).await;
    assert_eq!(info.id, id);
    assert_eq!(info.tags, t);
    assert_eq!(
        labels(&info),
        BTreeMap::from([(v1.clone(), stages(&[AWSCURRENT]))])
    );
    assert_eq!(info.version_with(AWSCURRENT).unwrap().version_id, v1);
    assert!(!info.versions[0].created_at.is_empty());

    assert_eq!(
        read(f, &id, Version::current()).await,
        (v1.clone(), "sk-one".into())
    );
    assert_eq!(
        read(f, &id, Version::Id(v1.clone())).await,
        (v1.clone(), "sk-one".into())
    );

    // No AWSPENDING yet; no such version; no such secret: Input.Invalid naming the secret.
    assert_err(
        f.store().get_value(&id, &Version::pending()).await,
        "Input.Invalid",
        &[&id],
    );
    assert_err(
        f.store().get_value(&id, &Version::Id(token())).await,
        "Input.Invalid",
        &[&id],
    );
    let missing = unique("contract/missing");
    assert_err(
        f.store().describe(&missing).await,
        "Input.Invalid",
        &[&missing, "does not exist", "ResourceNotFoundException"],
    );
    assert_err(
        f.store().get_value(&missing, &Version::current()).await,
        "Input.Invalid",
        &[&missing],
    );
    assert_err(
        f.store().put_pending(&missing, &token(), &value("x")).await,
        "Input.Invalid",
        &[&missing],
    );
    assert_err(
        f.store()
            .update_stage(&missing, AWSPENDING, None, Some(&v1))
            .await,
        "Input.Invalid",
        &[&missing],
    );

    // An existing id cannot be created again.
    assert_err(
        f.create_secret(&id, &value("sk-two"), BTreeMap::new())
            .await,
        "Input.Invalid",
        &[&id, "already exists"],
    );
}

/// PutSecretValue with ClientRequestToken: the token is the version id; the same token with the
/// same value is a no-op; the same token with another value is refused.
pub async fn staging_with_tokens(f: &dyn Fixture) {
    let (id, v1) = new_secret(f, "tokens", "old-value").await;
    let t = token();

    let staged = f
        .store()
        .put_pending(&id, &t, &value("new-value"))
        .await
        .unwrap();
    assert_eq!(staged, t);
    let info = describe(f, &id).await;
    assert_eq!(
        labels(&info),
        BTreeMap::from([
            (v1.clone(), stages(&[AWSCURRENT])),
            (t.clone(), stages(&[AWSPENDING])),
        ])
    );
    assert_eq!(
        read(f, &id, Version::pending()).await,
        (t.clone(), "new-value".into())
    );
    assert_eq!(
        read(f, &id, Version::current()).await,
        (v1.clone(), "old-value".into())
    );

    // Same token, same value: nothing changes.
    assert_eq!(
        f.store()
            .put_pending(&id, &t, &value("new-value"))
            .await
            .unwrap(),
        t
    );
    assert_eq!(labels(&describe(f, &id).await), labels(&info));

    // Same token, another value: refused (AWS: ResourceExistsException).
    // moto: silently overwrites the AWSPENDING version's value; the adapter refuses first.
    assert_err(
        f.store().put_pending(&id, &t, &value("other-value")).await,
        "Input.Invalid",
        &[&t, "ResourceExistsException"],
    );
    assert_eq!(read(f, &id, Version::Id(t.clone())).await.1, "new-value");
    assert_eq!(labels(&describe(f, &id).await), labels(&info));

    // After promotion the token still names its version: same value is still a no-op (labels
    // untouched: AWSPENDING does not come back), another value is still refused.
    f.store()
        .update_stage(&id, AWSCURRENT, Some(&t), Some(&v1))
        .await
        .unwrap();
    f.store()
        .update_stage(&id, AWSPENDING, None, Some(&t))
        .await
        .unwrap();
    let promoted = labels(&describe(f, &id).await);
    assert_eq!(
        f.store()
            .put_pending(&id, &t, &value("new-value"))
            .await
            .unwrap(),
        t
    );
    assert_eq!(labels(&describe(f, &id).await), promoted);
    assert_err(
        f.store().put_pending(&id, &t, &value("third-value")).await,
        "Input.Invalid",
        &["ResourceExistsException"],
    );

    // Secrets Manager's token length is 32 to 64 characters.
    assert_err(
        f.store().put_pending(&id, "short", &value("v")).await,
        "Input.Invalid",
        &["ClientRequestToken"],
    );
    assert_err(
        f.store()
            .put_pending(&id, &"x".repeat(65), &value("v"))
            .await,
        "Input.Invalid",
        &["ClientRequestToken"],
    );
}

/// Never two versions with AWSPENDING: staging while another version holds it is refused
/// with Rotation.InProgress and writes nothing.
pub async fn never_two_pending(f: &dyn Fixture) {
    let (id, v1) = new_secret(f, "pending", "current").await;
    let first = token();
    let second = token();
    f.store()
        .put_pending(&id, &first, &value("candidate-1"))
        .await
        .unwrap();

    // AWS would move AWSPENDING to the new version (dropping the other rotation's candidate);
    // rotor refuses. moto: same as AWS, so the adapter checks before writing.
    match f
        .store()
        .put_pending(&id, &second, &value("candidate-2"))
        .await
    {
        Err(RotorError::InProgress {
            secret_id,
            version_id,
        }) => {
            assert_eq!(secret_id, id);
            assert_eq!(version_id, first);
        }
        other => panic!(
            "{}: expected Rotation.InProgress, got {other:?}",
            f.backend()
        ),
    }
    let info = describe(f, &id).await;
    assert_eq!(
        labels(&info),
        BTreeMap::from([
            (v1.clone(), stages(&[AWSCURRENT])),
            (first.clone(), stages(&[AWSPENDING])),
        ]),
        "nothing written for the refused candidate"
    );
    assert_eq!(read(f, &id, Version::pending()).await.1, "candidate-1");

    // Once AWSPENDING is cleared, the next candidate stages.
    f.store()
        .update_stage(&id, AWSPENDING, None, Some(&first))
        .await
        .unwrap();
    f.store()
        .put_pending(&id, &second, &value("candidate-2"))
        .await
        .unwrap();
    let info = describe(f, &id).await;
    assert_eq!(info.version_with(AWSPENDING).unwrap().version_id, second);
    assert_eq!(
        info.versions
            .iter()
            .filter(|v| v.stages.iter().any(|s| s == AWSPENDING))
            .count(),
        1
    );
    // The abandoned candidate's version stays, without a label, readable by id.
    assert_eq!(labels(&info)[&first], Vec::<String>::new());
    assert_eq!(
        read(f, &id, Version::Id(first.clone())).await.1,
        "candidate-1"
    );
}

/// UpdateSecretVersionStage: AWSCURRENT moves and AWSPREVIOUS follows; reads by stage see the
/// move at once.
pub async fn label_moves_with_previous_following(f: &dyn Fixture) {
    let (id, v1) = new_secret(f, "moves", "value-1").await;

    // Rotation 1.
    let t2 = token();
    f.store()
        .put_pending(&id, &t2, &value("value-2"))
        .await
        .unwrap();
    f.store()
        .update_stage(&id, AWSCURRENT, Some(&t2), Some(&v1))
        .await
        .unwrap();
    assert_eq!(
        labels(&describe(f, &id).await),
        BTreeMap::from([
            (v1.clone(), stages(&[AWSPREVIOUS])),
            (t2.clone(), stages(&[AWSCURRENT, AWSPENDING])),
        ])
    );
    // moto: a GetSecretValue without a stage would return value-1 here; reads always name one.
    assert_eq!(
        read(f, &id, Version::current()).await,
        (t2.clone(), "value-2".into())
    );
    assert_eq!(
        read(f, &id, Version::Stage(AWSPREVIOUS.into())).await.1,
        "value-1"
    );
    f.store()
        .update_stage(&id, AWSPENDING, None, Some(&t2))
        .await
        .unwrap();

    // Rotation 2: AWSPREVIOUS leaves v1 (now unlabelled) for t2.
    let t3 = token();
    f.store()
        .put_pending(&id, &t3, &value("value-3"))
        .await
        .unwrap();
    f.store()
        .update_stage(&id, AWSCURRENT, Some(&t3), Some(&t2))
        .await
        .unwrap();
    f.store()
        .update_stage(&id, AWSPENDING, None, Some(&t3))
        .await
        .unwrap();
    let info = describe(f, &id).await;
    assert_eq!(
        labels(&info),
        BTreeMap::from([
            (v1.clone(), vec![]),
            (t2.clone(), stages(&[AWSPREVIOUS])),
            (t3.clone(), stages(&[AWSCURRENT])),
        ])
    );
    assert_eq!(read(f, &id, Version::current()).await.1, "value-3");
    assert_eq!(read(f, &id, Version::Id(v1.clone())).await.1, "value-1");

    // Rollback: AWSCURRENT back to t2; AWSPREVIOUS follows onto t3.
    f.store()
        .update_stage(&id, AWSCURRENT, Some(&t2), Some(&t3))
        .await
        .unwrap();
    assert_eq!(
        labels(&describe(f, &id).await),
        BTreeMap::from([
            (v1.clone(), vec![]),
            (t2.clone(), stages(&[AWSCURRENT])),
            (t3.clone(), stages(&[AWSPREVIOUS])),
        ])
    );
    assert_eq!(read(f, &id, Version::current()).await.1, "value-2");

    // Moving a label to where it already is changes nothing.
    f.store()
        .update_stage(&id, AWSCURRENT, Some(&t2), Some(&t2))
        .await
        .unwrap();
    f.store()
        .update_stage(&id, "custom", Some(&t3), None)
        .await
        .unwrap();
    f.store()
        .update_stage(&id, "custom", Some(&t3), None)
        .await
        .unwrap();
    assert_eq!(
        labels(&describe(f, &id).await)[&t3],
        stages(&[AWSPREVIOUS, "custom"])
    );
}

/// Label moves that AWS refuses are refused whole: no label changes.
pub async fn refused_label_moves_change_nothing(f: &dyn Fixture) {
    let (id, v1) = new_secret(f, "refused", "value-1").await;
    let t = token();
    f.store()
        .put_pending(&id, &t, &value("value-2"))
        .await
        .unwrap();
    let before = labels(&describe(f, &id).await);
    let nowhere = token();

    // To a version that does not exist. moto: takes AWSCURRENT off v1 first, then fails,
    // leaving the secret without AWSCURRENT; the adapter checks the target exists first.
    assert_err(
        f.store()
            .update_stage(&id, AWSCURRENT, Some(&nowhere), Some(&v1))
            .await,
        "Input.Invalid",
        &[&nowhere],
    );
    assert_eq!(labels(&describe(f, &id).await), before);
    assert_err(
        f.store()
            .update_stage(&id, AWSPENDING, Some(&nowhere), Some(&t))
            .await,
        "Input.Invalid",
        &[&nowhere],
    );
    assert_eq!(labels(&describe(f, &id).await), before);

    // AWSPENDING is on t: moving it without RemoveFromVersionId is refused (AWS:
    // InvalidParameterException). moto: adds it to v1 and leaves it on t too.
    assert_err(
        f.store()
            .update_stage(&id, AWSPENDING, Some(&v1), None)
            .await,
        "Input.Invalid",
        &["RemoveFromVersionId"],
    );
    assert_eq!(labels(&describe(f, &id).await), before);
    assert_err(
        f.store()
            .update_stage(&id, AWSCURRENT, Some(&t), None)
            .await,
        "Input.Invalid",
        &["RemoveFromVersionId"],
    );
    assert_eq!(labels(&describe(f, &id).await), before);

    // RemoveFromVersionId must name the version carrying the label.
    assert_err(
        f.store()
            .update_stage(&id, AWSCURRENT, Some(&t), Some(&t))
            .await,
        "Input.Invalid",
        &["RemoveFromVersionId"],
    );
    assert_err(
        f.store()
            .update_stage(&id, AWSPENDING, None, Some(&v1))
            .await,
        "Input.Invalid",
        &[AWSPENDING],
    );
    assert_eq!(labels(&describe(f, &id).await), before);

    // AWSCURRENT can be moved, never removed.
    assert_err(
        f.store()
            .update_stage(&id, AWSCURRENT, None, Some(&v1))
            .await,
        "Input.Invalid",
        &[AWSCURRENT],
    );
    assert_eq!(labels(&describe(f, &id).await), before);
}

/// Conflict detection: a promote whose AWSCURRENT moved since staging is Rotation.Conflict
/// (the promote handler over this backend), and a label move naming a stale
/// RemoveFromVersionId is refused without a change.
pub async fn conflict_detection(f: &dyn Fixture) {
    let (id, v1) = new_secret(f, "conflict", "value-1").await;
    let t = token();
    f.store()
        .put_pending(&id, &t, &value("value-2"))
        .await
        .unwrap();

    // Someone else rotates AWSCURRENT to another version meanwhile.
    f.store()
        .update_stage(&id, AWSPENDING, None, Some(&t))
        .await
        .unwrap();
    let other = token();
    f.store()
        .put_pending(&id, &other, &value("value-3"))
        .await
        .unwrap();
    f.store()
        .update_stage(&id, AWSCURRENT, Some(&other), Some(&v1))
        .await
        .unwrap();
    f.store()
        .update_stage(&id, AWSPENDING, None, Some(&other))
        .await
        .unwrap();
    f.store()
        .update_stage(&id, AWSPENDING, Some(&t), None)
        .await
        .unwrap();
    let before = labels(&describe(f, &id).await);

    // The store: a move from where AWSCURRENT no longer is.
    assert_err(
        f.store()
            .update_stage(&id, AWSCURRENT, Some(&t), Some(&v1))
            .await,
        "Input.Invalid",
        &[&v1, &other],
    );
    assert_eq!(labels(&describe(f, &id).await), before);

    // The handler: Rotation.Conflict, nothing promoted.
    let services = f.services();
    let result = rotor_core::handlers::promote(
        &services,
        PromoteInput {
            secret_id: id.clone(),
            pending_version_id: t.clone(),
            previous_version_id: v1.clone(),
        },
    )
    .await;
    match result {
        Err(RotorError::Conflict {
            secret_id,
            expected,
            found,
        }) => {
            assert_eq!(
                (secret_id, expected, found),
                (id.clone(), v1.clone(), other.clone())
            );
        }
        other => panic!("{}: expected Rotation.Conflict, got {other:?}", f.backend()),
    }
    assert_eq!(labels(&describe(f, &id).await), before);
    assert_eq!(read(f, &id, Version::current()).await.1, "value-3");
}

/// 65,536 bytes: the limit is accepted, one byte more is refused, nothing written.
pub async fn size_limit(f: &dyn Fixture) {
    let (id, v1) = new_secret(f, "size", "small").await;
    let too_big = value(&"x".repeat(MAX_SECRET_BYTES + 1));

    // moto: stores any size; the adapter refuses before calling.
    assert_err(
        f.store().put_pending(&id, &token(), &too_big).await,
        "Candidate.Invalid",
        &["65536"],
    );
    assert_eq!(
        labels(&describe(f, &id).await),
        BTreeMap::from([(v1.clone(), stages(&[AWSCURRENT]))])
    );
    // Multi-byte characters count in bytes: 21,846 x 3 bytes = 65,538 bytes.
    assert_err(
        f.store()
            .put_pending(&id, &token(), &value(&"€".repeat(21_846)))
            .await,
        "Candidate.Invalid",
        &["65538"],
    );
    assert_err(
        f.store().put_pending(&id, &token(), &value("")).await,
        "Candidate.Invalid",
        &["empty"],
    );

    let t = token();
    let at_limit = "y".repeat(MAX_SECRET_BYTES);
    f.store()
        .put_pending(&id, &t, &value(&at_limit))
        .await
        .unwrap();
    assert_eq!(read(f, &id, Version::pending()).await, (t, at_limit));

    let big_id = unique("contract/size-create");
    assert_err(
        f.create_secret(&big_id, &too_big, BTreeMap::new()).await,
        "Input.Invalid",
        &["65536"],
    );
    assert_err(
        f.store().describe(&big_id).await,
        "Input.Invalid",
        &["does not exist"],
    );
}

/// A candidate's encryption context for `secret` (one execution, one deadline).
fn candidate_context(secret: &str) -> rotor_core::ports::EncryptionContext {
    rotor_core::candidate::context(secret, "contract-execution", deadline())
}

fn deadline() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// KMS: a candidate decrypts under the context it was encrypted with, and only under it.
pub async fn kms_encryption_context(f: &dyn Fixture) {
    let a = unique("contract/kms-a");
    let b = unique("contract/kms-b");
    let secret = value("sk-candidate-é");
    let blob = f
        .kms()
        .encrypt(&secret, &candidate_context(&a))
        .await
        .unwrap();
    assert!(!blob.is_empty());
    assert!(
        !blob.windows(12).any(|w| w == b"sk-candidate"),
        "the ciphertext must not contain the plaintext"
    );
    assert_eq!(
        f.kms()
            .decrypt(&blob, &candidate_context(&a))
            .await
            .unwrap(),
        secret
    );

    // Another secret's context, another execution, another deadline: refused, naming the
    // encryption context (what makes a candidate's execution and deadline unforgeable).
    for other in [
        candidate_context(&b),
        rotor_core::candidate::context(&a, "another-execution", deadline()),
        rotor_core::candidate::context(
            &a,
            "contract-execution",
            deadline() + chrono::Duration::days(1),
        ),
    ] {
        assert_err(
            f.kms().decrypt(&blob, &other).await,
            "Candidate.Invalid",
            &["encryption context"],
        );
    }
    assert_err(
        f.kms().decrypt(&blob, &BTreeMap::new()).await,
        "Candidate.Invalid",
        &["encryption context"],
    );
    // A tampered blob.
    let mut tampered = blob.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert_err(
        f.kms().decrypt(&tampered, &candidate_context(&a)).await,
        "Candidate.Invalid",
        &[],
    );
    // KMS takes 1 to 4,096 bytes of plaintext.
    assert_err(
        f.kms()
            .encrypt(&value(&"k".repeat(4097)), &candidate_context(&a))
            .await,
        "Input.Invalid",
        &["4096"],
    );
}

/// IAM: two keys per user; status changes; deletion; last use; unknown users and keys.
pub async fn iam_two_key_limit(f: &dyn Fixture) {
    let user = unique("ck");
    f.create_user(&user).await.unwrap();
    assert_eq!(f.iam().list_access_keys(&user).await.unwrap(), vec![]);

    let k1 = f.iam().create_access_key(&user).await.unwrap();
    let k2 = f.iam().create_access_key(&user).await.unwrap();
    assert_ne!(k1.access_key_id, k2.access_key_id);
    assert!(k1.access_key_id.starts_with("AKIA"), "{}", k1.access_key_id);
    assert_eq!(k1.secret_access_key.len(), 40);
    assert_err(
        f.iam().create_access_key(&user).await,
        "Rotation.KeyLimit",
        &[&user, "LimitExceeded"],
    );

    let listed = f.iam().list_access_keys(&user).await.unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|k| k.access_key_id.as_str()).collect();
    ids.sort();
    let mut want = vec![k1.access_key_id.as_str(), k2.access_key_id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert!(listed.iter().all(|k| k.status == "Active"), "{listed:?}");
    assert!(
        listed.iter().all(|k| !k.created_at.is_empty()),
        "{listed:?}"
    );

    f.iam()
        .set_access_key_active(&user, &k1.access_key_id, false)
        .await
        .unwrap();
    let status = |keys: &[rotor_core::ports::AccessKeyInfo], id: &str| {
        keys.iter()
            .find(|k| k.access_key_id == id)
            .map(|k| k.status.clone())
    };
    let listed = f.iam().list_access_keys(&user).await.unwrap();
    assert_eq!(
        status(&listed, &k1.access_key_id).as_deref(),
        Some("Inactive")
    );
    assert_eq!(
        status(&listed, &k2.access_key_id).as_deref(),
        Some("Active")
    );
    // An inactive key still counts toward the limit.
    assert_err(
        f.iam().create_access_key(&user).await,
        "Rotation.KeyLimit",
        &[],
    );

    assert_eq!(
        f.iam()
            .access_key_last_used(&k1.access_key_id)
            .await
            .unwrap(),
        None,
        "a key nobody used"
    );

    f.iam()
        .delete_access_key(&user, &k1.access_key_id)
        .await
        .unwrap();
    let k3 = f.iam().create_access_key(&user).await.unwrap();
    let listed = f.iam().list_access_keys(&user).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(status(&listed, &k3.access_key_id).is_some());
    assert!(status(&listed, &k1.access_key_id).is_none());

    // Unknown user, unknown or deleted key: Input.Invalid naming them.
    let ghost = unique("ghost");
    assert_err(
        f.iam().list_access_keys(&ghost).await,
        "Input.Invalid",
        &[&ghost],
    );
    assert_err(
        f.iam().create_access_key(&ghost).await,
        "Input.Invalid",
        &[&ghost],
    );
    assert_err(
        f.iam().delete_access_key(&user, &k1.access_key_id).await,
        "Input.Invalid",
        &[&k1.access_key_id],
    );
    assert_err(
        f.iam()
            .set_access_key_active(&user, &k1.access_key_id, true)
            .await,
        "Input.Invalid",
        &[&k1.access_key_id],
    );
    assert_err(
        f.iam().access_key_last_used(&k1.access_key_id).await,
        "Input.Invalid",
        &[&k1.access_key_id],
    );
    // Another user's key is not this user's to change.
    let other = unique("ck-other");
    f.create_user(&other).await.unwrap();
    assert_err(
        f.iam().delete_access_key(&other, &k2.access_key_id).await,
        "Input.Invalid",
        &[&k2.access_key_id],
    );
    assert_eq!(f.iam().list_access_keys(&user).await.unwrap().len(), 2);
}

/// The audit sink takes a record (twice: idempotent) and a metric.
pub async fn audit_record_and_metric(f: &dyn Fixture) {
    let execution_id = unique("contract-exec");
    let record = AuditRecord {
        execution_id: execution_id.clone(),
        secret_id: "contract/audit".into(),
        kind: Some("generated".into()),
        action: "rotate".into(),
        requested_by: Some("contract-suite".into()),
        reason: Some("contract".into()),
        old_version_id: Some(token()),
        new_version_id: Some(token()),
        outcome: "rotated".into(),
        error: None,
        started_at: "2026-01-02T03:04:05.000Z".into(),
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        iam: None,
        recovery: None,
    };
    f.audit().record(&record).await.unwrap();
    f.audit().record(&record).await.unwrap();
    let metric = Metric {
        name: "RotationSucceeded".into(),
        value: 1.0,
        unit: "Count".into(),
        dimensions: BTreeMap::from([("SecretId".into(), "contract/audit".into())]),
        timestamp: record.finished_at.clone(),
    };
    f.audit().metric(&metric).await.unwrap();
}

/// Generates one `#[tokio::test]` per check of the store, KMS and IAM suite, each with a fresh
/// fixture from `$make` (an expression evaluating to a future of a [`Fixture`]).
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@tests $make;
            describe_tags_and_reads,
            staging_with_tokens,
            never_two_pending,
            label_moves_with_previous_following,
            refused_label_moves_change_nothing,
            conflict_detection,
            size_limit,
            kms_encryption_context,
            iam_two_key_limit,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let fixture = $make.await;
                $crate::contract::$name(&fixture).await;
            }
        )*
    };
}

/// The audit sink's checks, as [`contract_tests!`](crate::contract_tests) does. Not run on
/// moto 5.2.5: the CloudWatch SDK speaks Smithy RPC v2 CBOR, which that moto does not serve
/// (`tests/contract_moto.rs` pins it; `crates/aws/tests/loopback.rs` checks the adapter's
/// requests against a loopback CloudWatch).
#[macro_export]
macro_rules! audit_contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@tests $make; audit_record_and_metric);
    };
}
