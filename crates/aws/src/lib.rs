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
//! | [`sfn`] | `describe`, `execution_history` | DescribeExecution, GetExecutionHistory as sent |
//! | [`ecs`] | [`AwsEcs`] | `Ecs` (the consumers' UpdateService, DescribeServices) |
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
pub mod ecs;
pub mod errors;
pub mod iam;
pub mod kms;
pub mod secretsmanager;
pub mod sfn;
pub mod sts;

pub use cloudwatch::CloudWatchAudit;
pub use config::{load, load_with, services, AwsAdapters, AwsOptions, Timeouts};
pub use ecs::AwsEcs;
pub use errors::map_sdk_error;
pub use iam::AwsIam;
pub use kms::AwsKms;
pub use secretsmanager::SecretsManagerStore;
pub use sts::{CallerIdentity, Sts};

use aws_smithy_types::DateTime as AwsDateTime;
use chrono::{DateTime, Utc};

/// An AWS timestamp as chrono's (`None` when out of range).
pub(crate) fn to_chrono(t: &AwsDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// An AWS timestamp as RFC 3339 with milliseconds, like the local store's.
pub(crate) fn to_rfc3339(t: &AwsDateTime) -> String {
    to_chrono(t).map(rotor_core::rfc3339).unwrap_or_default()
}

/// A creation date as the order key (milliseconds; 0 when unknown) and the RFC 3339 text
/// (empty when unknown) of a listed item.
pub(crate) fn created(t: Option<&AwsDateTime>) -> (i64, String) {
    match t {
        Some(d) => (d.to_millis().unwrap_or(0), to_rfc3339(d)),
        None => (0, String::new()),
    }
}

/// The items in the order of their keys ([`created`]'s milliseconds): oldest first. Stable:
/// equal times keep the service's order.
pub(crate) fn oldest_first<T>(mut items: Vec<(i64, T)>) -> Vec<T> {
    items.sort_by_key(|(millis, _)| *millis);
    items.into_iter().map(|(_, item)| item).collect()
}

/// The page token to ask with next, `None` on the last page: the service's token unless it is
/// missing, empty (moto answers an empty one on the last page) or the one just asked with.
pub(crate) fn next_page(token: Option<String>, asked: &Option<String>) -> Option<String> {
    token.filter(|t| !t.is_empty() && Some(t) != asked.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_stops_on_a_missing_empty_or_repeated_token() {
        let asked = Some("p2".to_string());
        assert_eq!(next_page(Some("p3".into()), &asked), Some("p3".into()));
        assert_eq!(next_page(Some("p1".into()), &None), Some("p1".into()));
        assert_eq!(next_page(None, &asked), None);
        assert_eq!(next_page(Some(String::new()), &asked), None);
        assert_eq!(next_page(Some("p2".into()), &asked), None);
    }

    #[test]
    fn listed_items_come_oldest_first() {
        let at = AwsDateTime::from_millis(1_767_323_045_678);
        assert_eq!(
            created(Some(&at)),
            (1_767_323_045_678, "2026-01-02T03:04:05.678Z".to_string())
        );
        assert_eq!(created(None), (0, String::new()));
        assert_eq!(
            oldest_first(vec![(2, "b"), (1, "a"), (2, "c"), (0, "z")]),
            vec!["z", "a", "b", "c"]
        );
    }
}
