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

/// Who an access key belongs to, as sts:GetCallerIdentity signed with it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub account: String,
    /// e.g. `arn:aws:iam::123456789012:user/ci-bot`.
    pub arn: String,
    /// The IAM user name when the ARN is a user's (`...:user/path/name` -> `name`).
    pub user_name: Option<String>,
}

impl Identity {
    /// The user name of an IAM user ARN (`arn:aws:iam::1:user/path/name` -> `name`).
    pub fn user_name_of(arn: &str) -> Option<String> {
        let resource = arn.split(':').nth(5)?;
        let rest = resource.strip_prefix("user/")?;
        rest.rsplit('/').next().map(str::to_string)
    }
}

/// The read-only calls an IAM key probe may make, besides sts:GetCallerIdentity, to prove the
/// key is also *permitted* something (`rotor:iam-probe-action`). A fixed set: rotor knows how
/// to make each one and none changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeAction {
    /// `iam:GetUser` on the key's own user.
    #[serde(rename = "iam:GetUser")]
    IamGetUser,
    /// `secretsmanager:ListSecrets` (one page of at most one secret).
    #[serde(rename = "secretsmanager:ListSecrets")]
    SecretsManagerListSecrets,
    /// `kms:ListKeys` (one page of at most one key).
    #[serde(rename = "kms:ListKeys")]
    KmsListKeys,
}

impl ProbeAction {
    pub const ALL: [ProbeAction; 3] = [
        ProbeAction::IamGetUser,
        ProbeAction::SecretsManagerListSecrets,
        ProbeAction::KmsListKeys,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProbeAction::IamGetUser => "iam:GetUser",
            ProbeAction::SecretsManagerListSecrets => "secretsmanager:ListSecrets",
            ProbeAction::KmsListKeys => "kms:ListKeys",
        }
    }

    pub fn parse(text: &str) -> Option<ProbeAction> {
        ProbeAction::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// STS (and the few read-only calls of [`ProbeAction`]) signed with a given access key: how an
/// IAM key is proven. Errors name the access key id, never its secret.
#[async_trait]
pub trait CallerIdentity: Send + Sync {
    /// sts:GetCallerIdentity signed with the key. A key the service does not know (yet):
    /// `Probe.NotReady` (IAM is eventually consistent: a new key takes seconds to be usable;
    /// the state machine retries with backoff up to a bound). A definite "no" (signature does
    /// not match, expired, denied): `Probe.Rejected`.
    async fn caller_identity(
        &self,
        access_key_id: &str,
        secret_access_key: &SecretValue,
    ) -> Result<Identity>;

    /// Makes `action` signed with the key; `Ok(proof)` when it was permitted. Not yet
    /// authenticated: `Probe.NotReady`; denied: `Probe.Rejected`.
    async fn permitted_call(
        &self,
        access_key_id: &str,
        secret_access_key: &SecretValue,
        action: ProbeAction,
    ) -> Result<String>;
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
    /// `rotated`, `abandoned`, `rolled-back`, `manual-rollback`, `refused` or `aborted` (an
    /// AWSPENDING cleared by `rotor abort`).
    pub outcome: String,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    /// IAM access key rotations: the user and the key ids (old, new, and a stale inactive key
    /// stage-pending deleted to make room), never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<crate::events::IamStaged>,
    /// Who resumed or recovered the execution after an interruption, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<crate::events::Recovery>,
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
    /// STS signed with a given key (IAM key probes).
    pub sts: Arc<dyn CallerIdentity>,
    pub prober: Arc<dyn HttpProber>,
    pub audit: Arc<dyn AuditSink>,
    pub clock: Arc<dyn Clock>,
    /// The consumers' platform. No handler calls it: the state machine's ECS integrations
    /// do (answered by it when rotor's executor runs the definition).
    pub ecs: Arc<dyn crate::consumers::Ecs>,
    /// Where a candidate probe may go besides the presets' own hosts and loopback (the
    /// deployment's allow-list, [`crate::probe_destination`]).
    pub probe_hosts: crate::probe_destination::ProbeHosts,
}
