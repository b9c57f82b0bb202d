//! Loading the AWS configuration once and building every client from it.
//!
//! Region: `--region` ([`AwsOptions::region`]) when given, else the default chain
//! (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile, IMDS). Endpoint: `--endpoint-url`
//! ([`AwsOptions::endpoint_url`]) when given, else the default chain, which honours
//! `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_SECRETS_MANAGER`, ...) and the
//! profile's `endpoint_url`. Credentials: always the default chain.
//!
//! Timeouts ([`Timeouts`]): every call has a connect timeout, a read timeout (for the first
//! byte of the answer) and the same bound for each attempt, and a bound for the whole
//! operation with the SDK's retries, so no peer can hang a rotation: a peer that accepts the
//! connection and never answers fails in bounded time as a timeout, which is `Aws.Throttled`
//! (transient, retried by the state machine). Defaults: connect 3.1 s, read and attempt 10 s,
//! operation 30 s; `ROTOR_AWS_CONNECT_TIMEOUT_SECONDS`, `ROTOR_AWS_READ_TIMEOUT_SECONDS` (also
//! the attempt bound) and `ROTOR_AWS_OPERATION_TIMEOUT_SECONDS` override them (seconds, decimals
//! allowed; anything that is not a positive number is ignored).

use crate::cloudwatch::CloudWatchAudit;
use crate::iam::AwsIam;
use crate::kms::AwsKms;
use crate::secretsmanager::SecretsManagerStore;
use crate::sts::Sts;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{Services, SystemClock};
use std::sync::Arc;
use std::time::Duration;

/// What the command line (or the Lambda's environment) may say about AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// `--endpoint-url`: one endpoint for every service (moto, LocalStack, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// `--region`.
    pub region: Option<String>,
}

/// `ROTOR_AWS_CONNECT_TIMEOUT_SECONDS`: overrides [`Timeouts::connect`].
pub const CONNECT_TIMEOUT_VAR: &str = "ROTOR_AWS_CONNECT_TIMEOUT_SECONDS";
/// `ROTOR_AWS_READ_TIMEOUT_SECONDS`: overrides [`Timeouts::read`].
pub const READ_TIMEOUT_VAR: &str = "ROTOR_AWS_READ_TIMEOUT_SECONDS";
/// `ROTOR_AWS_OPERATION_TIMEOUT_SECONDS`: overrides [`Timeouts::operation`].
pub const OPERATION_TIMEOUT_VAR: &str = "ROTOR_AWS_OPERATION_TIMEOUT_SECONDS";

/// The bounds of every AWS call (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP (and TLS) connection.
    pub connect: Duration,
    /// Waiting for the answer's first byte; also the bound of one attempt.
    pub read: Duration,
    /// The whole operation, every attempt and backoff included.
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_millis(3100),
            read: Duration::from_secs(10),
            operation: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// The defaults with the `ROTOR_AWS_*_TIMEOUT_SECONDS` variables on top.
    pub fn from_env() -> Timeouts {
        Timeouts::from_lookup(|name| std::env::var(name).ok())
    }

    /// The defaults with the variables `lookup` answers on top (testable without the
    /// process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Timeouts {
        let seconds = |name: &str| {
            lookup(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                .map(Duration::from_secs_f64)
        };
        let d = Timeouts::default();
        Timeouts {
            connect: seconds(CONNECT_TIMEOUT_VAR).unwrap_or(d.connect),
            read: seconds(READ_TIMEOUT_VAR).unwrap_or(d.read),
            operation: seconds(OPERATION_TIMEOUT_VAR).unwrap_or(d.operation),
        }
    }

    /// The SDK's timeout configuration: connect, read, attempt (= read) and operation.
    pub fn to_sdk(self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.read)
            .operation_attempt_timeout(self.read)
            .operation_timeout(self.operation)
            .build()
    }
}

/// The SDK configuration from the default chain with `opts` on top, with the timeouts of
/// [`Timeouts::from_env`].
pub async fn load(opts: &AwsOptions) -> SdkConfig {
    load_with(opts, Timeouts::from_env()).await
}

/// [`load`] with the given timeouts.
pub async fn load_with(opts: &AwsOptions, timeouts: Timeouts) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts.to_sdk());
    if let Some(url) = opts
        .endpoint_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        loader = loader.endpoint_url(url.trim());
    }
    if let Some(region) = opts.region.as_deref().filter(|r| !r.trim().is_empty()) {
        loader = loader.region(Region::new(region.trim().to_string()));
    }
    loader.load().await
}

/// Every adapter, each built once over one [`SdkConfig`] (one HTTP client, one credentials
/// cache): for a Lambda's cold start and for the CLI. Cheap to clone.
#[derive(Clone)]
pub struct AwsAdapters {
    pub config: SdkConfig,
    pub store: Arc<SecretsManagerStore>,
    pub kms: Arc<AwsKms>,
    pub iam: Arc<AwsIam>,
    pub audit: Arc<CloudWatchAudit>,
    pub sts: Sts,
    pub ecs: Arc<crate::AwsEcs>,
}

impl AwsAdapters {
    /// Builds every client from `config`. `kms_key_id` (key id, key ARN, alias name or alias
    /// ARN) is the key candidates are encrypted under.
    pub fn from_config(config: SdkConfig, kms_key_id: impl Into<String>) -> AwsAdapters {
        AwsAdapters {
            store: Arc::new(SecretsManagerStore::new(&config)),
            kms: Arc::new(AwsKms::new(&config, kms_key_id)),
            iam: Arc::new(AwsIam::new(&config)),
            audit: Arc::new(CloudWatchAudit::new(&config)),
            sts: Sts::new(&config),
            ecs: Arc::new(crate::AwsEcs::new(&config)),
            config,
        }
    }

    /// [`load`], then [`AwsAdapters::from_config`]. Without a region (none in `opts` nor in
    /// the default chain) every call would fail: that is `Input.Invalid` here, at once.
    pub async fn load(opts: &AwsOptions, kms_key_id: impl Into<String>) -> Result<AwsAdapters> {
        let config = load(opts).await;
        if config.region().is_none() {
            return Err(RotorError::input(
                "no AWS region: pass --region or set AWS_REGION (or a region in the AWS profile)",
            ));
        }
        Ok(AwsAdapters::from_config(config, kms_key_id))
    }

    /// The handlers' view: these adapters, rotor's HTTP prober and the system clock.
    pub fn services(&self) -> Result<Services> {
        let prober = rotor_probe_http::ReqwestProber::try_new(rotor_probe_http::DEFAULT_TIMEOUT)?;
        Ok(Services {
            store: self.store.clone(),
            kms: self.kms.clone(),
            iam: self.iam.clone(),
            sts: Arc::new(self.sts.clone()),
            audit: self.audit.clone(),
            prober: Arc::new(prober),
            clock: Arc::new(SystemClock),
            ecs: self.ecs.clone(),
            probe_hosts: rotor_core::probe_destination::ProbeHosts::from_env()?,
        })
    }
}

/// Every port on AWS, each client built once: Secrets Manager, KMS (`kms_key_id`), IAM,
/// CloudWatch, with `rotor_probe_http::ReqwestProber` (default timeout) and the system clock.
pub async fn services(opts: &AwsOptions, kms_key_id: impl Into<String>) -> Result<Services> {
    AwsAdapters::load(opts, kms_key_id).await?.services()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn options_override_the_default_chain() {
        let config = load(&AwsOptions {
            endpoint_url: Some("http://127.0.0.1:4566".into()),
            region: Some("eu-west-3".into()),
        })
        .await;
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-3"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:4566"));
    }

    #[tokio::test]
    async fn blank_options_are_ignored() {
        let config = load(&AwsOptions {
            endpoint_url: Some("  ".into()),
            region: Some(String::new()),
        })
        .await;
        assert_ne!(config.endpoint_url(), Some("  "));
        assert_ne!(config.region().map(|r| r.as_ref()), Some(""));
    }

    #[tokio::test]
    async fn every_call_has_timeouts() {
        let config = load_with(&AwsOptions::default(), Timeouts::default()).await;
        let t = config.timeout_config().expect("a timeout configuration");
        assert_eq!(t.connect_timeout(), Some(Duration::from_millis(3100)));
        assert_eq!(t.read_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn timeouts_come_from_the_environment_when_valid() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let t = Timeouts::from_lookup(env(&[
            (CONNECT_TIMEOUT_VAR, "0.5"),
            (READ_TIMEOUT_VAR, " 2 "),
            (OPERATION_TIMEOUT_VAR, "7"),
        ]));
        assert_eq!(
            t,
            Timeouts {
                connect: Duration::from_millis(500),
                read: Duration::from_secs(2),
                operation: Duration::from_secs(7),
            }
        );
        for bad in ["0", "-1", "soon", "", "NaN", "inf"] {
            let t = Timeouts::from_lookup(|_| Some(bad.to_string()));
            assert_eq!(t, Timeouts::default(), "{bad:?}");
        }
        assert_eq!(Timeouts::from_lookup(|_| None), Timeouts::default());
    }
}
