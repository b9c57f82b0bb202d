//! The deployment's principals, played in the moto suites by the credentials their calls are
//! signed with.
//!
//! moto enforces no IAM, so every suite's calls succeed whoever makes them. To prove the
//! permissions call by call (scripts/permissions.py), each call a deployed principal would make
//! is signed with an access key id that names that principal: moto's launcher records every
//! call with its key id (ROTOR_CALL_LOG_DIR), and the check evaluates each recorded call
//! against the policies of that principal as Terraform deployed them. Calls signed with the
//! harness's own key ([`HARNESS_KEY`], moto's "testing") are the test's set-up and the
//! operator's laptop: not a deployed principal, not checked.

use aws_sdk_sfn::config::{Credentials, SharedCredentialsProvider};
use rotor_aws::AwsAdapters;
use rotor_core::ports::Services;
use std::collections::BTreeMap;

/// The key of the tests' own calls (set-up, the operator's `rotor rotate` on a laptop).
pub const HARNESS_KEY: &str = "testing";

/// The key of ci-rotate: `rotor start` and `rotor history --execution-arn` from GitHub.
pub const CI_ROTATE_KEY: &str = "rotor-ci-rotate";

/// The prefix of a function role's key: `rotor-fn-stage-pending`.
pub const FUNCTION_KEY_PREFIX: &str = "rotor-fn-";

/// The key of the function `function` (local name `rotor-promote` or bare `promote`).
pub fn function_key(function: &str) -> String {
    let bare = function.strip_prefix("rotor-").unwrap_or(function);
    format!("{FUNCTION_KEY_PREFIX}{bare}")
}

/// An SDK configuration like `config` whose calls are signed with access key id `key`.
pub fn signed_as(config: &aws_config::SdkConfig, key: &str) -> aws_config::SdkConfig {
    let credentials = Credentials::new(key, "testing", None, None, "rotor-principals");
    config
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

/// For each of the six functions, `base` with its AWS clients (Secrets Manager, KMS, IAM and,
/// with `cloudwatch_audit`, the audit-log function's CloudWatch) signed as that function's role:
/// for `RunnerOptions::function_services`. `config` is the suite's SDK configuration (moto, or
/// a fault proxy in front of it); `kms_key_id` the candidates' key.
pub fn function_services(
    base: &Services,
    config: &aws_config::SdkConfig,
    kms_key_id: &str,
    cloudwatch_audit: bool,
) -> BTreeMap<String, Services> {
    function_services_with(
        base,
        |function| signed_as(config, &function_key(function)),
        kms_key_id,
        cloudwatch_audit,
    )
}

/// [`function_services`] with each function's SDK configuration from `config_of` (local name
/// in): for a moto with authentication on, where each role is a moto user of its own.
pub fn function_services_with(
    base: &Services,
    config_of: impl Fn(&str) -> aws_config::SdkConfig,
    kms_key_id: &str,
    cloudwatch_audit: bool,
) -> BTreeMap<String, Services> {
    rotor_runner::FUNCTIONS
        .iter()
        .map(|(_, function)| {
            let adapters = AwsAdapters::from_config(config_of(function), kms_key_id);
            let mut services = base.clone();
            services.store = adapters.store.clone();
            services.kms = adapters.kms.clone();
            services.iam = adapters.iam.clone();
            if cloudwatch_audit && *function == "rotor-audit-log" {
                services.audit = adapters.audit.clone();
            }
            (function.to_string(), services)
        })
        .collect()
}
