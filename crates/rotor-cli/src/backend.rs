//! Where secrets live and what runs rotations: the local store (the default) or AWS.
//!
//! * `local`: the local store stands in for Secrets Manager, KMS, IAM and CloudWatch; execution
//!   records and audit records are kept in it.
//! * `aws`: Secrets Manager, KMS, IAM and CloudWatch through `rotor-aws` (endpoint, region and
//!   credentials from `--endpoint-url` / `--region` and the AWS default chain). `rotor rotate` and
//!   `rotor rollback` still run the state machine in-process on rotor's executor; their execution
//!   records and audit records are also kept in the local store directory, as a cache of what ran
//!   from this machine (`rotor history` and `rotor audit` read it). `rotor start` runs the deployed
//!   state machine on Step Functions instead.

use crate::store;
use anyhow::{anyhow, bail, Result};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sfn::config::http::HttpResponse;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use clap::{Args, ValueEnum};
use rotor_aws::errors::Call;
use rotor_aws::{AwsAdapters, AwsOptions, CloudWatchAudit, SecretsManagerStore};
use rotor_core::ports::{AuditRecord, AuditSink, Metric, SecretStore, Services};
use rotor_local_store::LocalStore;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The KMS key candidates are encrypted under when neither `--kms-key-id` nor the secret names one.
pub const DEFAULT_CANDIDATE_KEY: &str = "alias/rotor-candidates";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The local store (./.rotor, --store or ROTOR_STORE).
    #[default]
    Local,
    /// AWS Secrets Manager, KMS, IAM, CloudWatch and Step Functions.
    Aws,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClockKind {
    /// Waits and retry intervals advance a virtual clock: a rotation takes seconds.
    Virtual,
    /// Waits and retry intervals really wait.
    Real,
}

/// Flags every command accepts, before or after the subcommand.
#[derive(Args, Clone, Debug, Default)]
pub struct GlobalArgs {
    /// The local store; on the aws backend, where rotate/rollback keep their execution and audit
    /// records (a cache of what ran from this machine) (default: $ROTOR_STORE, else ./.rotor).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub store: Option<PathBuf>,
    /// Where secrets live: local (default) or aws.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ROTOR_BACKEND",
        value_enum,
        value_name = "BACKEND"
    )]
    pub backend: Option<BackendKind>,
    /// aws backend: one endpoint for every AWS service (moto, LocalStack, a VPC endpoint);
    /// default: the AWS default chain (AWS_ENDPOINT_URL, the profile).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "URL"
    )]
    pub endpoint_url: Option<String>,
    /// aws backend: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "REGION"
    )]
    pub region: Option<String>,
    /// The clock executions run on: virtual (default on the local backend) or real (default on
    /// the aws backend).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ROTOR_CLOCK",
        value_enum,
        value_name = "CLOCK"
    )]
    pub clock: Option<ClockKind>,
    /// aws backend: the KMS key candidates are encrypted under (key id, key ARN, alias name or
    /// alias ARN); default: the secret's own KMS key, else alias/rotor-candidates.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ROTOR_KMS_KEY_ID",
        value_name = "KEY"
    )]
    pub kms_key_id: Option<String>,
}

impl GlobalArgs {
    pub fn backend(&self) -> BackendKind {
        self.backend.unwrap_or_default()
    }

    /// Whether executions really wait: `--clock`/ROTOR_CLOCK, else real on aws, virtual locally.
    pub fn real_time(&self) -> bool {
        match self.clock {
            Some(ClockKind::Real) => true,
            Some(ClockKind::Virtual) => false,
            None => self.backend() == BackendKind::Aws,
        }
    }

    fn aws_options(&self) -> AwsOptions {
        AwsOptions {
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
        }
    }
}

/// What a command needs of the local store on the local backend.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// It must exist (a mistyped --store must not silently create an empty one).
    Existing,
    /// It is created when missing (commands that add to it).
    CreateIfMissing,
}

/// The AWS side: the SDK configuration (loaded once) and the Secrets Manager adapter.
pub struct Aws {
    pub config: SdkConfig,
    pub secrets: Arc<SecretsManagerStore>,
    kms_key_flag: Option<String>,
    store_dir: Option<PathBuf>,
}

/// Where a command's secrets live.
pub enum Backend {
    Local(LocalStore),
    Aws(Box<Aws>),
}

impl Backend {
    /// Opens the backend the global flags name. On aws this loads the AWS configuration; a
    /// missing region is an error here, before any call.
    pub async fn open(global: &GlobalArgs, need: Need) -> Result<Backend> {
        match global.backend() {
            BackendKind::Local => Ok(Backend::Local(match need {
                Need::Existing => store::open(global.store.clone())?,
                Need::CreateIfMissing => store::open_or_create(global.store.clone())?,
            })),
            BackendKind::Aws => {
                let config = rotor_aws::load(&global.aws_options()).await;
                if config.region().is_none() {
                    bail!("no AWS region: pass --region or set AWS_REGION (or a region in the AWS profile)");
                }
                Ok(Backend::Aws(Box::new(Aws {
                    secrets: Arc::new(SecretsManagerStore::new(&config)),
                    config,
                    kms_key_flag: global.kms_key_id.clone().filter(|k| !k.trim().is_empty()),
                    store_dir: global.store.clone(),
                })))
            }
        }
    }

    /// The secret store: the local store, or Secrets Manager.
    pub fn secrets(&self) -> Arc<dyn SecretStore> {
        match self {
            Backend::Local(store) => Arc::new(store.clone()),
            Backend::Aws(aws) => aws.secrets.clone(),
        }
    }

    pub fn aws(&self) -> Option<&Aws> {
        match self {
            Backend::Aws(aws) => Some(aws),
            Backend::Local(_) => None,
        }
    }

    /// The services a rotation of `secret_id` runs on, built once, and the local store its
    /// execution record is kept in (on aws: the cache directory, created when missing).
    /// `candidate` says whether a candidate will be encrypted or decrypted: on aws the KMS key
    /// is then resolved ([`Aws::candidate_key`]) and checked, else the key is never used.
    /// What the function binaries of a run on `secret_id` (`--lambda-binaries`) need on top of
    /// rotor's environment to talk to the same world as an in-process run: the backend, the
    /// store (absolute: they run in their own directory), and on aws the candidate key, the
    /// endpoint and the region rotor resolved.
    pub async fn function_env(
        &self,
        secret_id: &str,
        candidate: bool,
    ) -> Result<Vec<(String, String)>> {
        let absolute = |dir: &std::path::Path| {
            std::path::absolute(dir)
                .unwrap_or_else(|_| dir.to_path_buf())
                .display()
                .to_string()
        };
        match self {
            Backend::Local(store) => Ok(vec![
                ("ROTOR_BACKEND".into(), "local".into()),
                (rotor_local_store::STORE_ENV.into(), absolute(store.dir())),
            ]),
            Backend::Aws(aws) => {
                let mut env = vec![
                    ("ROTOR_BACKEND".into(), "aws".into()),
                    (
                        "ROTOR_KMS_KEY_ID".into(),
                        aws.run_key(secret_id, candidate).await?,
                    ),
                ];
                if let Some(url) = aws.config.endpoint_url() {
                    env.push(("AWS_ENDPOINT_URL".into(), url.to_string()));
                }
                if let Some(region) = aws.config.region() {
                    env.push(("AWS_REGION".into(), region.to_string()));
                }
                Ok(env)
            }
        }
    }

    pub async fn services(
        &self,
        secret_id: &str,
        candidate: bool,
    ) -> Result<(Services, LocalStore)> {
        match self {
            Backend::Local(store) => Ok((store::services(store)?, store.clone())),
            Backend::Aws(aws) => {
                let key = aws.run_key(secret_id, candidate).await?;
                let cache = store::open_or_create(aws.store_dir.clone())?;
                let adapters = AwsAdapters::from_config(aws.config.clone(), key);
                let mut services = adapters.services().map_err(|e| anyhow!(e))?;
                services.audit = Arc::new(AwsAudit {
                    cloudwatch: adapters.audit.clone(),
                    cache: cache.clone(),
                    metrics_best_effort: rotor_aws::cloudwatch::metrics_best_effort(&aws.config),
                    endpoint: aws.config.endpoint_url().unwrap_or_default().to_string(),
                    warned: AtomicBool::new(false),
                });
                Ok((services, cache))
            }
        }
    }
}

impl Aws {
    /// The candidate key of a run on `secret_id`: the secret's (see [`Aws::candidate_key`])
    /// when the run decrypts a candidate, else `--kms-key-id` or alias/rotor-candidates.
    async fn run_key(&self, secret_id: &str, candidate: bool) -> Result<String> {
        if candidate {
            self.candidate_key(secret_id).await
        } else {
            Ok(self
                .kms_key_flag
                .clone()
                .unwrap_or_else(|| DEFAULT_CANDIDATE_KEY.to_string()))
        }
    }

    /// The key `rotor encrypt` uses: `--kms-key-id` / ROTOR_KMS_KEY_ID as given (no call but
    /// the Encrypt itself, which names the key if it is wrong), else [`Aws::candidate_key`].
    pub async fn encrypt_key(&self, secret_id: &str) -> Result<String> {
        match &self.kms_key_flag {
            Some(k) => Ok(k.clone()),
            None => self.candidate_key(secret_id).await,
        }
    }

    /// The KMS key a candidate for `secret_id` is encrypted under: `--kms-key-id` /
    /// ROTOR_KMS_KEY_ID, else the secret's own KMS key (DescribeSecret's KmsKeyId), else
    /// alias/rotor-candidates. The key must exist (DescribeKey); the error names the key tried.
    pub async fn candidate_key(&self, secret_id: &str) -> Result<String> {
        let (key, from) = match &self.kms_key_flag {
            Some(k) => (k.clone(), "from --kms-key-id / ROTOR_KMS_KEY_ID"),
            None => {
                let described = self
                    .secrets
                    .client()
                    .describe_secret()
                    .secret_id(secret_id)
                    .send()
                    .await
                    .map_err(|e| {
                        sdk_error(
                            &e,
                            Call::new(
                                "Secrets Manager",
                                "DescribeSecret",
                                &format!("secret {secret_id}"),
                            ),
                        )
                    })?;
                // DescribeSecret omits the AWS managed key aws/secretsmanager, which only Secrets
                // Manager itself may use; skip it should it appear.
                let own = described
                    .kms_key_id
                    .filter(|k| !k.trim().is_empty() && !k.ends_with("alias/aws/secretsmanager"));
                match own {
                    Some(k) => (k, "the secret's own KMS key"),
                    None => (DEFAULT_CANDIDATE_KEY.to_string(), "the default"),
                }
            }
        };
        let kms = rotor_aws::AwsKms::new(&self.config, key.clone());
        match kms.client().describe_key().key_id(&key).send().await {
            Ok(_) => Ok(key),
            Err(e) => {
                let failure = rotor_aws::errors::classify(&e);
                if failure.code() == Some("NotFoundException") {
                    bail!(
                        "KMS key {key} ({from}) was not found: create it, or name another key with --kms-key-id or ROTOR_KMS_KEY_ID ({})",
                        failure.cause()
                    );
                }
                bail!(
                    "cannot use KMS key {key} ({from}): {}",
                    rotor_aws::errors::to_rotor(
                        &failure,
                        rotor_aws::errors::Call::new(
                            "KMS",
                            "DescribeKey",
                            &format!("KMS key {key}")
                        )
                    )
                )
            }
        }
    }

    /// A Step Functions client on the same configuration.
    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.config)
    }
}

/// A failed AWS SDK call as rotor words it ([`rotor_aws::map_sdk_error`]), for the calls the CLI
/// makes itself.
pub fn sdk_error<E>(err: &SdkError<E, HttpResponse>, call: Call<'_>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // The RotorError itself, so that `main` decides the exit code from it (Aws.Throttled: 1).
    anyhow::Error::from(rotor_aws::map_sdk_error(err, call))
}

/// The audit sink of in-process rotations on the aws backend: every record goes to CloudWatch
/// (a `rotor::audit` log line and a metric) and into the local cache, so `rotor audit` shows what
/// ran from this machine. On real AWS a metric that cannot be put fails the audit step, as in the
/// deployed Lambda; against a custom endpoint (`--endpoint-url`, AWS_ENDPOINT_URL: moto,
/// LocalStack) metrics are best effort, with one warning on stderr.
struct AwsAudit {
    cloudwatch: Arc<CloudWatchAudit>,
    cache: LocalStore,
    metrics_best_effort: bool,
    endpoint: String,
    warned: AtomicBool,
}

#[async_trait]
impl AuditSink for AwsAudit {
    /// CloudWatch Logs holds the record of truth; the local cache is a copy for `rotor audit`,
    /// so a full or read-only cache directory warns instead of failing the audit step.
    async fn record(&self, record: &AuditRecord) -> rotor_core::error::Result<()> {
        self.cloudwatch.record(record).await?;
        if let Err(e) = self.cache.record(record).await {
            eprintln!(
                "rotor: warning: the audit record of {} is in CloudWatch Logs but not in the local cache ({e})",
                record.execution_id
            );
        }
        Ok(())
    }

    async fn metric(&self, metric: &Metric) -> rotor_core::error::Result<()> {
        match self.cloudwatch.metric(metric).await {
            Err(e) if self.metrics_best_effort => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "rotor: warning: CloudWatch metrics are not written at {} (best effort against a custom endpoint): {e}",
                        self.endpoint
                    );
                }
                Ok(())
            }
            other => other,
        }
    }
}
