//! The outside world, as traits: the secret store (Secrets Manager or the local store), KMS,
//! IAM, an HTTP client for probes, the audit/metrics sink and the clock. Handlers only see these.

use crate::error::Result;
use crate::secret::{SecretInfo, SecretValue, Version};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// DescribeSecret: tags and versions with their labels. Unknown secret: `Input.Invalid`.
    async fn describe(&self, secret_id: &str) -> Result<SecretInfo>;
    /// GetSecretValue with an explicit stage or version id; returns the version id too.
    async fn get_value(&self, secret_id: &str, version: &Version) -> Result<(String, SecretValue)>;
    /// PutSecretValue(VersionStages=[AWSPENDING], ClientRequestToken=token): the token becomes
    /// the version id; the same token with the same value changes nothing; the same token with
    /// another value is refused. Never two versions with AWSPENDING: while another version
    /// carries it, the call fails with `Rotation.InProgress` and writes nothing (checked in the
    /// same transaction as the write where the store can, so racing rotations cannot both stage).
    async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        value: &SecretValue,
    ) -> Result<String>;
    /// UpdateSecretVersionStage: moves `stage` to `move_to` (removing it from `remove_from`,
    /// which must be where it is now), or removes it when `move_to` is `None`. Moving
    /// AWSCURRENT puts AWSPREVIOUS on the version it left.
    async fn update_stage(
        &self,
        secret_id: &str,
        stage: &str,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<()>;
}

pub type EncryptionContext = BTreeMap<String, String>;

/// The encryption context a candidate travels under: `{"SecretId": <id>}`.
pub fn candidate_context(secret_id: &str) -> EncryptionContext {
    BTreeMap::from([("SecretId".to_string(), secret_id.to_string())])
}

#[async_trait]
pub trait Kms: Send + Sync {
    async fn encrypt(
        &self,
        plaintext: &SecretValue,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>>;
    /// Fails with `Candidate.Invalid` when the context differs from the one used to encrypt.
    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretValue>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyInfo {
    pub access_key_id: String,
    /// `Active` or `Inactive`.
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct NewAccessKey {
    pub access_key_id: String,
    pub secret_access_key: SecretValue,
}

#[async_trait]
pub trait Iam: Send + Sync {
    async fn list_access_keys(&self, user: &str) -> Result<Vec<AccessKeyInfo>>;
    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey>;
    async fn set_access_key_active(
        &self,
        user: &str,
        access_key_id: &str,
        active: bool,
    ) -> Result<()>;
    async fn delete_access_key(&self, user: &str, access_key_id: &str) -> Result<()>;
    async fn access_key_last_used(&self, access_key_id: &str) -> Result<Option<DateTime<Utc>>>;
}

/// One HTTP request of a probe. The URL and header values may carry the secret (several
/// vendors take the key as a query parameter), so they are secret values too.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub method: &'static str,
    pub url: SecretValue,
    pub headers: Vec<(String, SecretValue)>,
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub status: u16,
    pub body: String,
}

#[async_trait]
pub trait HttpProber: Send + Sync {
    /// Sends the request. A transport failure (refused, reset, timeout) is `Probe.NotReady`;
    /// its message never contains the URL.
    async fn send(&self, request: &ProbeRequest) -> Result<ProbeAnswer>;
}

/// One audit record per execution: ids, names and outcome, never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub execution_id: String,
    pub secret_id: String,
    pub kind: Option<String>,
    pub action: String,
    pub requested_by: Option<String>,
    pub reason: Option<String>,
    pub old_version_id: Option<String>,
    pub new_version_id: Option<String>,
    /// `rotated`, `abandoned`, `rolled-back`, `manual-rollback` or `refused`.
    pub outcome: String,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub dimensions: BTreeMap<String, String>,
    pub timestamp: String,
}

#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Idempotent per execution: recording the same execution twice keeps one record.
    async fn record(&self, record: &AuditRecord) -> Result<()>;
    async fn metric(&self, metric: &Metric) -> Result<()>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Everything a handler may touch.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn SecretStore>,
    pub kms: Arc<dyn Kms>,
    pub iam: Arc<dyn Iam>,
    pub prober: Arc<dyn HttpProber>,
    pub audit: Arc<dyn AuditSink>,
    pub clock: Arc<dyn Clock>,
}
