//! Loading the AWS configuration once and building every client from it.
//!
//! Region: `--region` ([`AwsOptions::region`]) when given, else the default chain
//! (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile, IMDS). Endpoint: `--endpoint-url`
//! ([`AwsOptions::endpoint_url`]) when given, else the default chain, which honours
//! `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_SECRETS_MANAGER`, ...) and the
//! profile's `endpoint_url`. Credentials: always the default chain.

use crate::cloudwatch::CloudWatchAudit;
use crate::iam::AwsIam;
use crate::kms::AwsKms;
use crate::secretsmanager::SecretsManagerStore;
use crate::sts::Sts;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{Services, SystemClock};
use std::sync::Arc;

/// What the command line (or the Lambda's environment) may say about AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// `--endpoint-url`: one endpoint for every service (moto, LocalStack, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// `--region`.
    pub region: Option<String>,
}

/// The SDK configuration from the default chain with `opts` on top.
pub async fn load(opts: &AwsOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
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
}
