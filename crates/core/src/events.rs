//! The execution input and every handler's input and output. They carry ids, names and KMS
//! ciphertext only, never a secret value.
//!
//! Execution input (what `rotor rotate`, the schedule or GitHub Actions start the state machine with):
//! ```json
//! {"action": "rotate", "secret_id": "richesreach/development/openai_api_key",
//!  "candidate_ciphertext": "rotor1.rotate-...-0a1b2c3d.2026-12-03T13:00:00Z.AQICAHh...base64 KMS blob...",
//!  "requested_by": "github:alice", "reason": "quarterly"}
//! ```
//! `action` is `rotate` or `rollback`; `candidate_ciphertext` is required for vendor keys only,
//! sealed to the execution of that name until that time (see [`crate::candidate`]).
//!
//! stage-pending: `{"execution_id": "arn:...:execution:rotation:x", "input": <execution input>}` ->
//! ```json
//! {"secret_id": "...", "kind": "vendor-api-key", "pending_version_id": "6f1c...", "previous_version_id": "a2b9...",
//!  "waits": {"propagation_seconds": 10, "consumers_seconds": 60, "grace_seconds": 3600}, "app_probe": true,
//!  "consumers": [{"name": "ecs:prod/backend", "kind": "ecs", "cluster": "prod", "service": "backend", "poll_seconds": 15, "max_polls": 60}]}
//! ```
//! health-probe: `{"secret_id": "...", "version_id": "6f1c...", "target": "candidate"}` ->
//! `{"target": "candidate", "valid": true, "skipped": false, "proof": "openai accepted the key (HTTP 200)"}`
//!
//! promote: `{"secret_id": "...", "pending_version_id": "6f1c...", "previous_version_id": "a2b9..."}` ->
//! `{"secret_id": "...", "current_version_id": "6f1c...", "previous_version_id": "a2b9...", "changed": true}`
//!
//! rollback: `{"mode": "abandon" | "revert" | "manual", "secret_id": "...", "execution_id": "...", "staged": <stage-pending output, when there is one>}` ->
//! `{"mode": "revert", "secret_id": "...", "current_version_id": "a2b9...", "changed": true}`
//!
//! audit-log: `{"execution_id": "...", "started_at": "...", "input": <execution input>, "staged": ..., "outcome": "rotated", "error": {"Error": "...", "Cause": "..."}}` ->
//! `{"execution_id": "...", "outcome": "rotated"}`

use crate::policy::Waits;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Rotate,
    Rollback,
}

impl Action {
    /// The name the execution input, history and audit records use.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Rotate => "rotate",
            Action::Rollback => "rollback",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionInput {
    pub action: Action,
    pub secret_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_ciphertext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rollback: the version AWSCURRENT goes back to (`rotor rollback` names the version the
    /// audit trail shows was current before the last rotation, or `--to-version`); absent:
    /// AWSPREVIOUS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version_id: Option<String>,
    /// Rollback: move AWSCURRENT without probing the target version first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// Set when an interrupted execution was resumed or recovered: who did it and why (the
    /// audit record carries it beside the original requester).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
}

/// Who resumed or recovered an interrupted execution, why, how and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    pub requested_by: String,
    pub reason: String,
    /// `resume` (went on where it stopped) or `abandon` (an interrupted rotation that had not
    /// promoted: its candidate was dropped).
    pub mode: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagePendingInput {
    pub execution_id: String,
    pub input: ExecutionInput,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamStaged {
    pub user: String,
    /// The key AWSCURRENT held when the rotation started (`None`: it held no key of the user).
    pub old_access_key_id: Option<String>,
    /// The key this execution created; its secret is only in the AWSPENDING version.
    pub new_access_key_id: String,
    /// An Inactive key (not AWSCURRENT's) that stage-pending deleted because the user already
    /// had two keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_stale_access_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePendingOutput {
    pub secret_id: String,
    pub kind: String,
    pub pending_version_id: String,
    pub previous_version_id: String,
    /// The version AWSPREVIOUS was on when the rotation started: a revert puts AWSPREVIOUS
    /// back there, so the rejected candidate keeps no label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_previous_version_id: Option<String>,
    pub waits: Waits,
    /// Whether an application health URL is configured (else the app probe is skipped).
    pub app_probe: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<IamStaged>,
    /// What the state machine redeploys after promotion and again after a revert
    /// (`rotor:consumers`; empty: nothing to redeploy).
    #[serde(default)]
    pub consumers: Vec<crate::consumers::Consumer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeTarget {
    /// The staged version, against the vendor, before promotion.
    Candidate,
    /// The application's health endpoint, after promotion.
    Application,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthProbeInput {
    pub secret_id: String,
    pub version_id: String,
    pub target: ProbeTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthProbeOutput {
    pub target: ProbeTarget,
    pub valid: bool,
    pub skipped: bool,
    pub proof: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteInput {
    pub secret_id: String,
    pub pending_version_id: String,
    pub previous_version_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoteOutput {
    pub secret_id: String,
    pub current_version_id: String,
    pub previous_version_id: String,
    pub changed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackMode {
    /// Before promote: drop AWSPENDING (only this execution's) and undo what was created.
    Abandon,
    /// After promote: AWSCURRENT back to the version it left.
    Revert,
    /// Operator-requested: AWSCURRENT back to AWSPREVIOUS.
    Manual,
    /// After a revert of an IAM key rotation with consumers, once they run on the old key again:
    /// delete the new key (revert keeps it while the consumers' running tasks may still sign
    /// with it).
    DiscardNewKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackInput {
    pub mode: RollbackMode,
    pub secret_id: String,
    pub execution_id: String,
    #[serde(default)]
    pub staged: Option<StagePendingOutput>,
    /// Manual: the execution input (its `target_version_id` and `force`).
    #[serde(default)]
    pub request: Option<ExecutionInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackOutput {
    pub mode: RollbackMode,
    pub secret_id: String,
    pub current_version_id: Option<String>,
    /// The version AWSCURRENT left (revert/manual) or the AWSPENDING version dropped (abandon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_version_id: Option<String>,
    pub changed: bool,
    /// Manual: whether the target version is to be probed before AWSCURRENT moves (not when
    /// forced, nor when AWSCURRENT is already on it).
    #[serde(default)]
    pub probe: bool,
    /// Manual: the consumers to redeploy once AWSCURRENT moved (`rotor:consumers`; none when
    /// nothing moves).
    #[serde(default)]
    pub consumers: Vec<crate::consumers::Consumer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevokeMode {
    Deactivate,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeInput {
    pub mode: RevokeMode,
    pub secret_id: String,
    pub staged: StagePendingOutput,
    /// When the old key was deactivated (set by the deactivate step, read by delete).
    #[serde(default)]
    pub deactivated_at: Option<String>,
    /// The secret's consumers as the state machine redeployed them on the new key (empty when
    /// it declares none): deactivate first checks the old key was not used after the last of
    /// them completed.
    #[serde(default)]
    pub consumers_redeployed: Vec<RedeployedConsumer>,
}

/// One consumer running on the new value (the state machine's `ConsumerRedeployed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeployedConsumer {
    /// As `rotor:consumers` names it (`ecs:prod/backend`).
    pub name: String,
    pub deployment_id: String,
    /// When ECS saw the deployment complete (its `UpdatedAt`): RFC 3339, or epoch seconds.
    pub completed_at: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeOutput {
    pub mode: RevokeMode,
    pub access_key_id: Option<String>,
    pub deactivated_at: Option<String>,
    pub changed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditInput {
    pub execution_id: String,
    pub started_at: String,
    pub input: ExecutionInput,
    #[serde(default)]
    pub staged: Option<StagePendingOutput>,
    /// `rotated`, `abandoned`, `rolled-back`, `manual-rollback` or `refused`.
    pub outcome: String,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    /// The rollback step's output, when there was one (manual rollback's versions).
    #[serde(default)]
    pub rollback: Option<RollbackOutput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOutput {
    pub execution_id: String,
    pub outcome: String,
}
