//! STS GetCallerIdentity signed with given credentials: proves an access key authenticates
//! (and says whose it is). For the IAM key probes.
//!
//! GetCallerIdentity needs no permission, so it proves authentication only; a probe should
//! also make one call the key is meant to be allowed.

use crate::errors::{classify, to_rotor, Call, Failure};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sts::config::Credentials;
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{Identity, ProbeAction};
use rotor_core::secret::SecretValue;

const SERVICE: &str = "STS";

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    /// e.g. `arn:aws:iam::123456789012:user/ci-bot`.
    pub arn: String,
    pub user_id: String,
}

impl CallerIdentity {
    /// The IAM user name when the ARN is a user's (`...:user/path/name` -> `name`).
    pub fn user_name(&self) -> Option<&str> {
        let resource = self.arn.split(':').nth(5)?;
        let rest = resource.strip_prefix("user/")?;
        rest.rsplit('/').next()
    }
}

/// Builds a one-off STS client per call (the credentials differ per call) over the shared
/// configuration: same region, endpoint and HTTP client.
#[derive(Debug, Clone)]
pub struct Sts {
    config: SdkConfig,
}

fn credentials(access_key_id: &str, secret_access_key: &SecretValue) -> Credentials {
    Credentials::new(
        access_key_id,
        secret_access_key.expose(),
        None,
        None,
        "rotor-iam-probe",
    )
}

/// A probe call's failure: a key the service does not know (yet) is `Probe.NotReady`, a
/// definite "no" is `Probe.Rejected`, anything else the common mapping.
fn probe_failure(f: &Failure, access_key_id: &str, call: Call<'_>) -> RotorError {
    let rejected = || {
        RotorError::ProbeRejected(format!(
            "{} {} rejected access key {access_key_id} ({})",
            call.service,
            call.operation,
            f.cause()
        ))
    };
    match f.code() {
        Some("InvalidClientTokenId" | "UnrecognizedClientException" | "InvalidAccessKeyId") => {
            RotorError::ProbeNotReady(format!(
                "{} {} does not accept access key {access_key_id} (yet) ({}): a new key takes a few seconds to propagate",
                call.service, call.operation, f.cause()
            ))
        }
        Some(
            "SignatureDoesNotMatch"
            | "InvalidSignatureException"
            | "ExpiredToken"
            | "AccessDenied"
            | "AccessDeniedException",
        ) => rejected(),
        // A denial without a code (moto answers some denials with a bare HTTP 403).
        _ if matches!(f, Failure::Service { status: Some(403), .. }) => rejected(),
        _ => to_rotor(f, call),
    }
}

impl Sts {
    pub fn new(config: &SdkConfig) -> Self {
        Sts {
            config: config.clone(),
        }
    }

    /// One read-only call of [`ProbeAction`] signed with the key: `Ok(proof)` when permitted.
    pub async fn permitted_call(
        &self,
        access_key_id: &str,
        secret_access_key: &SecretValue,
        action: ProbeAction,
    ) -> Result<String> {
        let creds = credentials(access_key_id, secret_access_key);
        let subject = format!("access key {access_key_id}");
        match action {
            ProbeAction::IamGetUser => {
                let config = aws_sdk_iam::config::Builder::from(&self.config)
                    .credentials_provider(creds)
                    .build();
                let out = aws_sdk_iam::Client::from_conf(config)
                    .get_user()
                    .send()
                    .await
                    .map_err(|e| {
                        probe_failure(
                            &classify(&e),
                            access_key_id,
                            Call::new("IAM", "GetUser", &subject),
                        )
                    })?;
                let name = out.user.map(|u| u.user_name).unwrap_or_default();
                Ok(format!("iam:GetUser answered user {name}"))
            }
            ProbeAction::SecretsManagerListSecrets => {
                let config = aws_sdk_secretsmanager::config::Builder::from(&self.config)
                    .credentials_provider(creds)
                    .build();
                aws_sdk_secretsmanager::Client::from_conf(config)
                    .list_secrets()
                    .max_results(1)
                    .send()
                    .await
                    .map_err(|e| {
                        probe_failure(
                            &classify(&e),
                            access_key_id,
                            Call::new("Secrets Manager", "ListSecrets", &subject),
                        )
                    })?;
                Ok("secretsmanager:ListSecrets answered".into())
            }
            ProbeAction::KmsListKeys => {
                let config = aws_sdk_kms::config::Builder::from(&self.config)
                    .credentials_provider(creds)
                    .build();
                aws_sdk_kms::Client::from_conf(config)
                    .list_keys()
                    .limit(1)
                    .send()
                    .await
                    .map_err(|e| {
                        probe_failure(
                            &classify(&e),
                            access_key_id,
                            Call::new("KMS", "ListKeys", &subject),
                        )
                    })?;
                Ok("kms:ListKeys answered".into())
            }
        }
    }

    /// GetCallerIdentity signed with `access_key_id` / `secret_access_key`.
    ///
    /// * `InvalidClientTokenId` (the key is unknown to STS): `Probe.NotReady` — a new key takes
    ///   seconds to become usable everywhere, so the state machine retries; a deleted key ends
    ///   up rejected after the retries.
    /// * `SignatureDoesNotMatch`, `ExpiredToken`, `AccessDenied`: `Probe.Rejected`.
    /// * Anything else: the common mapping (throttling and network failures are retried).
    pub async fn caller_identity(
        &self,
        access_key_id: &str,
        secret_access_key: &SecretValue,
    ) -> Result<CallerIdentity> {
        let config = aws_sdk_sts::config::Builder::from(&self.config)
            .credentials_provider(credentials(access_key_id, secret_access_key))
            .build();
        let client = aws_sdk_sts::Client::from_conf(config);
        let subject = format!("access key {access_key_id}");
        let out = client.get_caller_identity().send().await.map_err(|e| {
            let f = classify(&e);
            match f.code() {
                Some("InvalidClientTokenId") => RotorError::ProbeNotReady(format!(
                    "STS does not accept access key {access_key_id} (yet) ({}): a new key takes a few seconds to propagate",
                    f.cause()
                )),
                Some(
                    "SignatureDoesNotMatch" | "ExpiredToken" | "AccessDenied"
                    | "AccessDeniedException",
                ) => RotorError::ProbeRejected(format!(
                    "STS rejected access key {access_key_id} ({})",
                    f.cause()
                )),
                _ => to_rotor(&f, Call::new(SERVICE, "GetCallerIdentity", &subject)),
            }
        })?;
        Ok(CallerIdentity {
            account: out.account.unwrap_or_default(),
            arn: out.arn.unwrap_or_default(),
            user_id: out.user_id.unwrap_or_default(),
        })
    }
}

/// The port: [`Sts::caller_identity`] and [`Sts::permitted_call`].
#[async_trait]
impl rotor_core::ports::CallerIdentity for Sts {
    async fn caller_identity(
        &self,
        access_key_id: &str,
        secret_access_key: &SecretValue,
    ) -> Result<Identity> {
        let who = Sts::caller_identity(self, access_key_id, secret_access_key).await?;
        Ok(Identity {
            user_name: who.user_name().map(str::to_string),
            account: who.account,
            arn: who.arn,
        })
    }

    async fn permitted_call(
        &self,
        access_key_id: &str,
        secret_access_key: &SecretValue,
        action: ProbeAction,
    ) -> Result<String> {
        Sts::permitted_call(self, access_key_id, secret_access_key, action).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_name_from_arn() {
        let id = |arn: &str| CallerIdentity {
            account: "123456789012".into(),
            arn: arn.into(),
            user_id: "AIDA".into(),
        };
        assert_eq!(
            id("arn:aws:iam::123456789012:user/ci-bot").user_name(),
            Some("ci-bot")
        );
        assert_eq!(
            id("arn:aws:iam::123456789012:user/team/ci-bot").user_name(),
            Some("ci-bot")
        );
        assert_eq!(
            id("arn:aws:sts::123456789012:assumed-role/r/s").user_name(),
            None
        );
    }
}
