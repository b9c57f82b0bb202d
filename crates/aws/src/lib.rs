//! rotor's AWS adapters: rotor-core's ports on Secrets Manager, KMS, IAM and CloudWatch, plus
//! an STS helper for IAM key probes, all over one `aws-config` default chain.
//!
//! | module | type | port |
//! |---|---|---|
//! | [`secretsmanager`] | [`SecretsManagerStore`] | `SecretStore` (+ `create_secret`, `list_secrets`) |
//! | [`kms`] | [`AwsKms`] | `Kms` |
//! | [`iam`] | [`AwsIam`] | `Iam` |
//! | [`cloudwatch`] | [`CloudWatchAudit`] | `AuditSink` |
//! | [`sts`] | [`Sts`] | GetCallerIdentity with given credentials |
//! | [`config`] | [`AwsOptions`], [`AwsAdapters`], [`services`] | clients built once |
//! | [`errors`] | [`map_sdk_error`] | SDK errors -> ASL error names |
//!
//! The adapters enforce on rotor's side what AWS enforces and an emulator may not (moto 5.2.5
//! does not): 65,536-byte values, label moves only to versions that exist and never leaving a
//! label half-moved, never two versions with AWSPENDING, the same ClientRequestToken with
//! another value refused; and they always read a secret with an explicit stage or version id.
//! See [`secretsmanager`].

pub mod cloudwatch;
pub mod config;
pub mod errors;
pub mod iam;
pub mod kms;
pub mod secretsmanager;
pub mod sts;

pub use cloudwatch::CloudWatchAudit;
pub use config::{load, services, AwsAdapters, AwsOptions};
pub use errors::map_sdk_error;
pub use iam::AwsIam;
pub use kms::AwsKms;
pub use secretsmanager::SecretsManagerStore;
pub use sts::{CallerIdentity, Sts};

use aws_smithy_types::DateTime as AwsDateTime;
use chrono::{DateTime, SecondsFormat, Utc};

/// An AWS timestamp as chrono's (`None` when out of range).
pub(crate) fn to_chrono(t: &AwsDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// An AWS timestamp as RFC 3339 with milliseconds, like the local store's.
pub(crate) fn to_rfc3339(t: &AwsDateTime) -> String {
    to_chrono(t)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}
