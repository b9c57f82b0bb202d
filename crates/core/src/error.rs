//! One error type for every handler. Each variant has a stable ASL error name: the state
//! machine's Retry/Catch match on it, on AWS (through lambda_runtime's `Diagnostic`) and locally.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RotorError {
    /// Another execution's candidate is staged (AWSPENDING) on this secret.
    #[error("secret {secret_id} has a rotation in flight: AWSPENDING is on version {version_id}, staged by another execution. If none is running: `rotor recover --secret {secret_id} --reason ...` finishes one interrupted on this machine, `rotor abort --secret {secret_id} --reason ...` clears one that ran elsewhere")]
    InProgress {
        secret_id: String,
        version_id: String,
    },
    /// AWSCURRENT moved since the candidate was staged.
    #[error("secret {secret_id}: AWSCURRENT is on version {found}, not on {expected} as when the candidate was staged")]
    Conflict {
        secret_id: String,
        expected: String,
        found: String,
    },
    /// The request names something that does not exist or is malformed.
    #[error("{0}")]
    InputInvalid(String),
    /// The candidate value itself is unusable (empty, too large, same as current, wrong context).
    #[error("{0}")]
    CandidateInvalid(String),
    /// The probe could not decide yet (429, 5xx, timeout, connection error, IAM key not yet
    /// visible): the state machine retries.
    #[error("{0}")]
    ProbeNotReady(String),
    /// The probe got a definite "no" (401/403, an error body, wrong IAM user).
    #[error("{0}")]
    ProbeRejected(String),
    /// An AWS API (or the local store standing in for it) throttled the call: retried.
    #[error("{0}")]
    Throttled(String),
    /// The IAM user already has two access keys, both in use.
    #[error("{0}")]
    KeyLimit(String),
    /// The old IAM key was used after it was deactivated.
    #[error("{0}")]
    OldKeyStillInUse(String),
    /// The secret's kind does not support this step yet.
    #[error("{0}")]
    Unsupported(String),
    /// A bug or an unexpected answer from a dependency.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = RotorError> = std::result::Result<T, E>;

/// Every ASL error name a handler can raise.
pub const ERROR_NAMES: &[&str] = &[
    "Rotation.InProgress",
    "Rotation.Conflict",
    "Input.Invalid",
    "Candidate.Invalid",
    "Probe.NotReady",
    "Probe.Rejected",
    "Aws.Throttled",
    "Rotation.KeyLimit",
    "Revoke.OldKeyStillInUse",
    "Rotation.Unsupported",
    "Rotor.Internal",
];

impl RotorError {
    /// The stable name the state machine's Retry/Catch match.
    pub fn asl_name(&self) -> &'static str {
        match self {
            RotorError::InProgress { .. } => "Rotation.InProgress",
            RotorError::Conflict { .. } => "Rotation.Conflict",
            RotorError::InputInvalid(_) => "Input.Invalid",
            RotorError::CandidateInvalid(_) => "Candidate.Invalid",
            RotorError::ProbeNotReady(_) => "Probe.NotReady",
            RotorError::ProbeRejected(_) => "Probe.Rejected",
            RotorError::Throttled(_) => "Aws.Throttled",
            RotorError::KeyLimit(_) => "Rotation.KeyLimit",
            RotorError::OldKeyStillInUse(_) => "Revoke.OldKeyStillInUse",
            RotorError::Unsupported(_) => "Rotation.Unsupported",
            RotorError::Internal(_) => "Rotor.Internal",
        }
    }

    pub fn input(message: impl Into<String>) -> Self {
        RotorError::InputInvalid(message.into())
    }

    pub fn candidate(message: impl Into<String>) -> Self {
        RotorError::CandidateInvalid(message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        RotorError::Internal(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_listed_name() {
        let all = [
            RotorError::InProgress {
                secret_id: "s".into(),
                version_id: "v".into(),
            },
            RotorError::Conflict {
                secret_id: "s".into(),
                expected: "a".into(),
                found: "b".into(),
            },
            RotorError::input("x"),
            RotorError::candidate("x"),
            RotorError::ProbeNotReady("x".into()),
            RotorError::ProbeRejected("x".into()),
            RotorError::Throttled("x".into()),
            RotorError::KeyLimit("x".into()),
            RotorError::OldKeyStillInUse("x".into()),
            RotorError::Unsupported("x".into()),
            RotorError::internal("x"),
        ];
        for e in &all {
            assert!(ERROR_NAMES.contains(&e.asl_name()), "{}", e.asl_name());
            assert!(
                !e.asl_name().starts_with("States."),
                "States.* names are reserved by AWS"
            );
        }
        assert_eq!(all.len(), ERROR_NAMES.len());
    }
}
