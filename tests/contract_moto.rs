//! The contract suite (`tests/support/contract.rs`) against moto through the AWS adapters, and
//! where moto 5.2.5 diverges from AWS: each `moto_*` test pins moto's own behaviour with the
//! raw SDK client (so an upgrade that changes it shows up here) and asserts AWS's documented
//! behaviour on the adapter's side.
//!
//! Run through `scripts/test` (it starts moto and sets `ROTOR_MOTO_ENDPOINT` and the test
//! credentials). Tests use unique names and never reset moto, so they run in parallel.

use rotor_core::ports::{AuditRecord, Metric};
use rotor_core::secret::{SecretValue, Version, AWSCURRENT, AWSPENDING, MAX_SECRET_BYTES};
use rotor_tests::contract::{assert_err, labels, token, unique, AwsFixture, Fixture};
use std::collections::BTreeMap;

/// An encryption context naming `secret` (what these KMS checks need; candidates themselves
/// are sealed by `rotor_core::candidate`).
fn candidate_context(secret: &str) -> rotor_core::ports::EncryptionContext {
    std::collections::BTreeMap::from([("SecretId".to_string(), secret.to_string())])
}

rotor_tests::contract_tests!(AwsFixture::moto());

fn value(s: &str) -> SecretValue {
    SecretValue::new(s)
}

async fn secret(f: &AwsFixture, prefix: &str, v: &str) -> (String, String) {
    let id = unique(&format!("contract/{prefix}"));
    let vid = f
        .create_secret(&id, &value(v), BTreeMap::new())
        .await
        .unwrap();
    (id, vid)
}

fn holders(info: &rotor_core::secret::SecretInfo, stage: &str) -> Vec<String> {
    let mut v: Vec<String> = info
        .versions
        .iter()
        .filter(|v| v.stages.iter().any(|s| s == stage))
        .map(|v| v.version_id.clone())
        .collect();
    v.sort();
    v
}

/// AWS: GetSecretValue without VersionStage/VersionId reads AWSCURRENT. moto 5.2.5 keeps
/// reading the version the secret was created (or last put as AWSCURRENT) with after a
/// promote by UpdateSecretVersionStage. The adapter always names the stage.
#[tokio::test]
async fn moto_stage_less_read_is_stale_after_a_promote() {
    let f = AwsFixture::moto().await;
    let (id, v1) = secret(&f, "stale-read", "old").await;
    let t = token();
    f.store().put_pending(&id, &t, &value("new")).await.unwrap();
    f.store()
        .update_stage(&id, AWSCURRENT, Some(&t), Some(&v1))
        .await
        .unwrap();

    let raw = f
        .adapters
        .store
        .client()
        .get_secret_value()
        .secret_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (raw.version_id(), raw.secret_string()),
        (Some(v1.as_str()), Some("old")),
        "moto 5.2.5 answers the old version to a stage-less read (AWS: the new one); if this fails, moto changed"
    );

    let (vid, v) = f.store().get_value(&id, &Version::current()).await.unwrap();
    assert_eq!((vid.as_str(), v.expose()), (t.as_str(), "new"));
}

/// AWS: the same ClientRequestToken with another value is ResourceExistsException. moto
/// 5.2.5 overwrites the value of a version that carries AWSPENDING. The adapter compares
/// first and refuses.
#[tokio::test]
async fn moto_overwrites_a_pending_version_with_the_same_token() {
    let f = AwsFixture::moto().await;
    let (id, _) = secret(&f, "same-token", "current").await;
    let t = token();
    f.store()
        .put_pending(&id, &t, &value("first"))
        .await
        .unwrap();

    f.adapters
        .store
        .client()
        .put_secret_value()
        .secret_id(&id)
        .secret_string("second")
        .client_request_token(&t)
        .version_stages(AWSPENDING)
        .send()
        .await
        .expect(
            "moto 5.2.5 accepts the same token with another value (AWS: ResourceExistsException)",
        );
    let (_, v) = f
        .store()
        .get_value(&id, &Version::Id(t.clone()))
        .await
        .unwrap();
    assert_eq!(v.expose(), "second", "moto overwrote the version's value");

    assert_err(
        f.store().put_pending(&id, &t, &value("third")).await,
        "Input.Invalid",
        &["ResourceExistsException", &t],
    );
    let (_, v) = f
        .store()
        .get_value(&id, &Version::Id(t.clone()))
        .await
        .unwrap();
    assert_eq!(v.expose(), "second", "the adapter wrote nothing");
}

/// AWS: moving a label to a version that does not exist fails and changes nothing. moto
/// 5.2.5 removes the label from RemoveFromVersionId first, then fails: the secret is left
/// without AWSCURRENT. The adapter checks the target exists before sending.
#[tokio::test]
async fn moto_half_moves_a_label_to_a_missing_version() {
    let f = AwsFixture::moto().await;
    let nowhere = token();

    let (broken, v1) = secret(&f, "half-move-raw", "v").await;
    let err = f
        .adapters
        .store
        .client()
        .update_secret_version_stage()
        .secret_id(&broken)
        .version_stage(AWSCURRENT)
        .move_to_version_id(&nowhere)
        .remove_from_version_id(&v1)
        .send()
        .await
        .expect_err("moto refuses the move");
    assert!(
        format!("{err:?}").contains("InvalidParameterException"),
        "{err:?}"
    );
    let info = f.store().describe(&broken).await.unwrap();
    assert_eq!(
        holders(&info, AWSCURRENT),
        Vec::<String>::new(),
        "moto 5.2.5 took AWSCURRENT off {v1} before failing; if this fails, moto changed"
    );

    let (id, v1) = secret(&f, "half-move", "v").await;
    assert_err(
        f.store()
            .update_stage(&id, AWSCURRENT, Some(&nowhere), Some(&v1))
            .await,
        "Input.Invalid",
        &[&nowhere, "no label changed"],
    );
    let info = f.store().describe(&id).await.unwrap();
    assert_eq!(holders(&info, AWSCURRENT), vec![v1]);
}

/// AWS: a label on another version moves only with RemoveFromVersionId
/// (InvalidParameterException otherwise). moto 5.2.5 adds it and leaves it where it was:
/// AWSPENDING on two versions. The adapter refuses the move, and refuses to work on a secret
/// left that way.
#[tokio::test]
async fn moto_leaves_awspending_on_two_versions() {
    let f = AwsFixture::moto().await;
    let (id, v1) = secret(&f, "two-pending", "current").await;
    let t = token();
    f.store()
        .put_pending(&id, &t, &value("candidate"))
        .await
        .unwrap();
    let before = labels(&f.store().describe(&id).await.unwrap());

    assert_err(
        f.store()
            .update_stage(&id, AWSPENDING, Some(&v1), None)
            .await,
        "Input.Invalid",
        &["RemoveFromVersionId"],
    );
    assert_eq!(labels(&f.store().describe(&id).await.unwrap()), before);

    f.adapters
        .store
        .client()
        .update_secret_version_stage()
        .secret_id(&id)
        .version_stage(AWSPENDING)
        .move_to_version_id(&v1)
        .send()
        .await
        .expect("moto 5.2.5 accepts the move without RemoveFromVersionId");
    let info = f.store().describe(&id).await.unwrap();
    let mut both = vec![v1.clone(), t.clone()];
    both.sort();
    assert_eq!(
        holders(&info, AWSPENDING),
        both,
        "moto 5.2.5 leaves AWSPENDING on both versions; if this fails, moto changed"
    );

    // On such a secret the adapter neither stages nor moves AWSPENDING.
    assert_eq!(
        f.store()
            .put_pending(&id, &token(), &value("another"))
            .await
            .unwrap_err()
            .asl_name(),
        "Rotation.InProgress"
    );
    assert_err(
        f.store()
            .update_stage(&id, AWSPENDING, None, Some(&t))
            .await,
        "Rotor.Internal",
        &["2 versions"],
    );
}

/// AWS: a value is at most 65,536 bytes. moto 5.2.5 stores any size. The adapter refuses
/// before calling.
#[tokio::test]
async fn moto_accepts_values_over_65536_bytes() {
    let f = AwsFixture::moto().await;
    let (id, _) = secret(&f, "big", "small").await;
    let big = "z".repeat(MAX_SECRET_BYTES + 1);
    f.adapters
        .store
        .client()
        .put_secret_value()
        .secret_id(&id)
        .secret_string(&big)
        .client_request_token(token())
        .version_stages("raw")
        .send()
        .await
        .expect("moto 5.2.5 stores 65,537 bytes (AWS: ValidationException)");

    assert_err(
        f.store().put_pending(&id, &token(), &value(&big)).await,
        "Candidate.Invalid",
        &["65537", "65536"],
    );
    assert_eq!(
        holders(&f.store().describe(&id).await.unwrap(), AWSPENDING),
        Vec::<String>::new()
    );
}

/// moto 5.2.5 does not serve CloudWatch's Smithy RPC v2 CBOR protocol (the only one
/// aws-sdk-cloudwatch speaks): PutMetricData answers 404. The adapter's requests are checked
/// against a loopback CloudWatch in `crates/aws/tests/loopback.rs`. `record` still succeeds: its
/// record is the `rotor::audit` log line; the metric is best effort.
#[tokio::test]
async fn moto_does_not_serve_cloudwatch_cbor() {
    let f = AwsFixture::moto().await;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_err(
        f.audit()
            .metric(&Metric {
                name: "RotationSucceeded".into(),
                value: 1.0,
                unit: "Count".into(),
                dimensions: BTreeMap::from([("SecretId".into(), "x".into())]),
                timestamp: now.clone(),
            })
            .await,
        "Rotor.Internal",
        &["PutMetricData", "404"],
    );
    f.audit()
        .record(&AuditRecord {
            execution_id: unique("moto-audit"),
            secret_id: "contract/audit".into(),
            kind: None,
            action: "rotate".into(),
            requested_by: None,
            reason: None,
            old_version_id: None,
            new_version_id: None,
            outcome: "rotated".into(),
            error: None,
            started_at: now.clone(),
            finished_at: now,
            iam: None,
            recovery: None,
        })
        .await
        .unwrap();
}

/// KMS plaintext that is not UTF-8 is not a candidate.
#[tokio::test]
async fn kms_non_utf8_plaintext_is_candidate_invalid() {
    let f = AwsFixture::moto().await;
    let ctx = candidate_context("contract/utf8");
    let blob = f
        .adapters
        .kms
        .client()
        .encrypt()
        .key_id(f.adapters.kms.key_id())
        .plaintext(aws_sdk_kms::primitives::Blob::new(vec![0xff, 0xfe, 0x00]))
        .set_encryption_context(Some(ctx.clone().into_iter().collect()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();
    assert_err(
        f.kms().decrypt(&blob, &ctx).await,
        "Candidate.Invalid",
        &["not valid UTF-8"],
    );
}

/// AWS: Decrypt with KeyId of a key other than the ciphertext's is IncorrectKeyException
/// (the adapter: Candidate.Invalid). moto 5.2.5 answers AccessDeniedException, which the
/// adapter cannot tell from a real denial: Rotor.Internal there.
#[tokio::test]
async fn moto_answers_access_denied_for_another_keys_ciphertext() {
    let f = AwsFixture::moto().await;
    let g = AwsFixture::moto().await;
    let ctx = candidate_context("contract/other-key");
    let blob = g.kms().encrypt(&value("sk"), &ctx).await.unwrap();
    assert_eq!(g.kms().decrypt(&blob, &ctx).await.unwrap().expose(), "sk");
    assert_err(
        f.kms().decrypt(&blob, &ctx).await,
        "Rotor.Internal",
        &["AccessDeniedException"],
    );
}

/// STS GetCallerIdentity signed with a new key names the key's user.
#[tokio::test]
async fn sts_caller_identity_with_a_new_key() {
    let f = AwsFixture::moto().await;
    let user = unique("sts");
    f.create_user(&user).await.unwrap();
    let key = f.iam().create_access_key(&user).await.unwrap();
    let who = f
        .adapters
        .sts
        .caller_identity(&key.access_key_id, &key.secret_access_key)
        .await
        .unwrap();
    assert_eq!(who.user_name(), Some(user.as_str()), "{who:?}");
    assert!(who.arn.ends_with(&format!(":user/{user}")), "{who:?}");
}

/// The non-trait helpers: create_secret with a description, list_secrets.
#[tokio::test]
async fn create_and_list_secrets() {
    let f = AwsFixture::moto().await;
    let id = unique("contract/listed");
    let tags = BTreeMap::from([("rotor:kind".to_string(), "generated".to_string())]);
    let v1 = f
        .adapters
        .store
        .create_secret(&id, &value("v"), &tags, Some("listed by the suite"), None)
        .await
        .unwrap();
    let all = f.adapters.store.list_secrets().await.unwrap();
    let info = all
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("{id} not in ListSecrets"));
    assert_eq!(info.description.as_deref(), Some("listed by the suite"));
    assert_eq!(info.tags, tags);
    assert_eq!(info.version_with(AWSCURRENT).unwrap().version_id, v1);
}

/// `AWS_ENDPOINT_URL` reaches the adapters through the default chain when no
/// `--endpoint-url` is given. The variable is set for a child process running this same test
/// (setting it in this process would race with the other tests' threads).
#[tokio::test]
async fn aws_endpoint_url_from_the_environment() {
    const CHILD: &str = "ROTOR_CONTRACT_ENDPOINT_CHILD";
    let endpoint = rotor_tests::moto::endpoint();
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "aws_endpoint_url_from_the_environment",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "the child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }

    let config = rotor_aws::load(&rotor_aws::AwsOptions {
        endpoint_url: None,
        region: Some(rotor_tests::moto::REGION.into()),
    })
    .await;
    assert_eq!(config.endpoint_url(), Some(endpoint.as_str()));

    let f = AwsFixture::moto().await;
    let (id, v1) = secret(&f, "env-endpoint", "v").await;
    let store = rotor_aws::SecretsManagerStore::new(&config);
    let info = rotor_core::ports::SecretStore::describe(&store, &id)
        .await
        .unwrap();
    assert_eq!(info.version_with(AWSCURRENT).unwrap().version_id, v1);
}

/// Two rotations racing past the "no AWSPENDING" check: Secrets Manager has no conditional
/// write, so the adapter looks again after its PutSecretValue. Here another writer stages
/// right after this adapter's write (an SDK interceptor runs it before the adapter's
/// re-check): AWSPENDING moves to the other candidate (AWS and moto both move it), and the
/// adapter reports Rotation.InProgress instead of success. Never both win.
#[tokio::test]
async fn racing_stagers_never_both_win() {
    use aws_sdk_secretsmanager::config::interceptors::BeforeSerializationInterceptorContextRef;
    use aws_sdk_secretsmanager::config::{ConfigBag, Intercept};
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretInput;
    use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueInput;
    use rotor_core::ports::SecretStore;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Debug)]
    struct RaceIn {
        put_sent: AtomicBool,
        fired: AtomicBool,
        secret_id: String,
        token: String,
    }

    impl Intercept for RaceIn {
        fn name(&self) -> &'static str {
            "contract::RaceIn"
        }
        fn read_before_execution(
            &self,
            context: &BeforeSerializationInterceptorContextRef<'_>,
            _cfg: &mut ConfigBag,
        ) -> Result<(), aws_sdk_secretsmanager::error::BoxError> {
            let input = context.input();
            if input.downcast_ref::<PutSecretValueInput>().is_some() {
                self.put_sent.store(true, Ordering::SeqCst);
            } else if input.downcast_ref::<DescribeSecretInput>().is_some()
                && self.put_sent.load(Ordering::SeqCst)
                && !self.fired.swap(true, Ordering::SeqCst)
            {
                // The other rotation stages now, on its own thread, runtime and HTTP client.
                let (id, token) = (self.secret_id.clone(), self.token.clone());
                std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(async {
                            let config = rotor_aws::load(&rotor_aws::AwsOptions {
                                endpoint_url: Some(rotor_tests::moto::endpoint()),
                                region: Some(rotor_tests::moto::REGION.into()),
                            })
                            .await;
                            aws_sdk_secretsmanager::Client::new(&config)
                                .put_secret_value()
                                .secret_id(id)
                                .secret_string("the other candidate")
                                .client_request_token(token)
                                .version_stages(AWSPENDING)
                                .send()
                                .await
                                .expect("the racing PutSecretValue");
                        })
                })
                .join()
                .expect("the racing writer");
            }
            Ok(())
        }
    }

    let f = AwsFixture::moto().await;
    let (id, _) = secret(&f, "race", "current").await;
    let theirs = token();
    let ours = token();
    let race = RaceIn {
        put_sent: AtomicBool::new(false),
        fired: AtomicBool::new(false),
        secret_id: id.clone(),
        token: theirs.clone(),
    };
    let client = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&f.adapters.config)
            .interceptor(race)
            .build(),
    );
    let racing = rotor_aws::SecretsManagerStore::from_client(client);

    match racing
        .put_pending(&id, &ours, &value("our candidate"))
        .await
    {
        Err(rotor_core::RotorError::InProgress {
            secret_id,
            version_id,
        }) => assert_eq!((secret_id, version_id), (id.clone(), theirs.clone())),
        other => panic!("expected Rotation.InProgress, got {other:?}"),
    }
    let info = f.store().describe(&id).await.unwrap();
    assert_eq!(holders(&info, AWSPENDING), vec![theirs]);
    // Our version stays, unlabelled (AWS deprecates it).
    assert_eq!(labels(&info)[&ours], Vec::<String>::new());
}
