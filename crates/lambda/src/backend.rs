//! Which outside world the functions talk to, chosen once per cold start.
//!
//! * `aws` (the default: these binaries run on Lambda): Secrets Manager, KMS, IAM, STS and
//!   CloudWatch through `rotor-aws`, region and credentials from the Lambda environment,
//!   `ROTOR_KMS_KEY_ID` for the candidate key (default `alias/rotor-candidates`).
//! * `local`: the local store (`ROTOR_STORE`, default `./.rotor`), so `cargo lambda watch` can
//!   run the real functions on a laptop against the store `rotor` uses. Only with the
//!   `local-store` feature (the default; `scripts/package` builds without it).

use rotor_core::ports::Services;
use rotor_core::RotorError;
use std::sync::Arc;

/// The candidate key when `ROTOR_KMS_KEY_ID` is not set.
pub const DEFAULT_KMS_KEY: &str = "alias/rotor-candidates";

pub async fn services_from_env() -> Result<Services, RotorError> {
    services_for(&std::env::var("ROTOR_BACKEND").unwrap_or_else(|_| "aws".into())).await
}

pub async fn services_for(backend: &str) -> Result<Services, RotorError> {
    match backend {
        "aws" => {
            let key = std::env::var("ROTOR_KMS_KEY_ID").unwrap_or_else(|_| DEFAULT_KMS_KEY.into());
            let adapters =
                rotor_aws::AwsAdapters::load(&rotor_aws::config::AwsOptions::default(), key)
                    .await?;
            let mut services = adapters.services()?;
            let best_effort = rotor_aws::cloudwatch::metrics_best_effort(&adapters.config);
            services.audit = Arc::new(
                rotor_aws::CloudWatchAudit::new(&adapters.config).metrics_best_effort(best_effort),
            );
            Ok(services)
        }
        #[cfg(not(feature = "local-store"))]
        "local" => Err(RotorError::input(
            "ROTOR_BACKEND=local: this build has no local store (packaged for AWS without the local-store feature); build the function with its default features to run it on a laptop",
        )),
        #[cfg(feature = "local-store")]
        "local" => {
            let store = rotor_local_store::LocalStore::open_default()?;
            Ok(Services {
                store: Arc::new(store.clone()),
                kms: Arc::new(store.clone()),
                iam: Arc::new(store.clone()),
                sts: Arc::new(store.clone()),
                audit: Arc::new(store.clone()),
                prober: Arc::new(rotor_probe_http::ReqwestProber::default()),
                clock: Arc::new(rotor_core::ports::SystemClock),
                ecs: Arc::new(store.clone()),
                probe_hosts: rotor_core::probe_destination::ProbeHosts::from_env()?,
            })
        }
        other => Err(RotorError::input(format!(
            "ROTOR_BACKEND={other:?} is not supported (supported: aws, local)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_backend_names_the_supported_ones() {
        let e = services_for("gcp").await.err().expect("refused");
        assert_eq!(e.asl_name(), "Input.Invalid");
        assert!(e.to_string().contains("aws, local"), "{e}");
    }
}
