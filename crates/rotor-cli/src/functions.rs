//! `--lambda-binaries DIR`: a run's Tasks answered by the real function binaries through a
//! loopback Lambda Runtime API (`rotor-runtime-api`) instead of in-process.

use anyhow::{bail, Result};
use clap::Args;
use rotor_runtime_api::{Logs, Options, RuntimeApi};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The flags of `sfn run`, `rotate`, `rollback` and `recover`/`resume`.
#[derive(Args, Clone, Debug, Default)]
pub struct LambdaFlags {
    /// Run each Task's Lambda function as its real binary from DIR (one executable per
    /// function, named as in functions/: stage-pending, health-probe, promote,
    /// revoke-old-iam-key, rollback, audit-log; a Task's FunctionName or function ARN names
    /// the one it ends with, so a deployed definition's `rotor-prod-promote` runs DIR/promote),
    /// started once and kept warm behind a loopback Lambda Runtime API, as on Lambda. The
    /// functions get rotor's environment (ROTOR_*, AWS_*). Default: in-process.
    #[arg(long, value_name = "DIR")]
    pub lambda_binaries: Option<PathBuf>,
    /// With --lambda-binaries: each invocation's timeout in seconds (the deployed functions'
    /// default is 30); past it the process is killed and the Task fails with Sandbox.Timedout.
    #[arg(long, value_name = "SECONDS", requires = "lambda_binaries")]
    pub lambda_timeout: Option<f64>,
    /// With --lambda-binaries: append each function's output (its logs, which CloudWatch Logs
    /// keeps on AWS) to DIR/<function>.log instead of standard error.
    #[arg(long, value_name = "DIR", requires = "lambda_binaries")]
    pub lambda_logs: Option<PathBuf>,
}

impl LambdaFlags {
    /// The function binaries to run, with `env` added to rotor's own environment; `None`
    /// without --lambda-binaries.
    pub fn runtime(&self, env: Vec<(String, String)>) -> Result<Option<Arc<RuntimeApi>>> {
        let Some(dir) = &self.lambda_binaries else {
            return Ok(None);
        };
        let mut options = Options::new(dir);
        if let Some(seconds) = self.lambda_timeout {
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 900.0) {
                bail!("--lambda-timeout must be more than 0 and at most 900 seconds (Lambda's bound), got {seconds}");
            }
            options.timeout = Duration::from_secs_f64(seconds);
        }
        if let Some(logs) = &self.lambda_logs {
            options.logs = Logs::Dir(logs.clone());
        }
        options.env = env;
        Ok(Some(Arc::new(RuntimeApi::new(options)?)))
    }
}

/// What `rotor sfn run --lambda-binaries` passes to the functions from its global options, on
/// top of its environment: the flags that stand for environment variables, and the store as an
/// absolute path (the functions run in their own directory, where `./.rotor` is another).
pub fn global_env(global: &crate::backend::GlobalArgs) -> Vec<(String, String)> {
    let mut env = Vec::new();
    // Always the backend rotor runs on (its default too): a function must not fall back to
    // another one because the flag was left out.
    let name = match global.backend() {
        crate::backend::BackendKind::Local => "local",
        crate::backend::BackendKind::Aws => "aws",
    };
    env.push(("ROTOR_BACKEND".to_string(), name.to_string()));
    let store = global
        .store
        .clone()
        .unwrap_or_else(rotor_local_store::default_dir);
    let store = std::path::absolute(&store).unwrap_or(store);
    env.push((
        rotor_local_store::STORE_ENV.to_string(),
        store.display().to_string(),
    ));
    let flags = [
        ("AWS_ENDPOINT_URL", &global.endpoint_url),
        ("AWS_REGION", &global.region),
        ("ROTOR_KMS_KEY_ID", &global.kms_key_id),
    ];
    for (name, value) in flags {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            env.push((name.to_string(), v.trim().to_string()));
        }
    }
    env
}
