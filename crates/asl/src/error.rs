//! Errors as Step Functions names them: an `Error` name plus a `Cause` string.

use std::fmt;

/// Names of the errors that Step Functions predefines.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    pub const RUNTIME: &str = "States.Runtime";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    pub const PERMISSIONS: &str = "States.Permissions";
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
}

/// A failure inside an execution: what a Catch or Retry matches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatesError {
    pub error: String,
    pub cause: String,
}

impl StatesError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new(names::RUNTIME, cause)
    }
    pub fn intrinsic(cause: impl Into<String>) -> Self {
        Self::new(names::INTRINSIC_FAILURE, cause)
    }
    pub fn parameter_path(cause: impl Into<String>) -> Self {
        Self::new(names::PARAMETER_PATH_FAILURE, cause)
    }
    /// True for errors that end the execution whatever Retry/Catch say. AWS documents
    /// States.Runtime as not retriable and States.DataLimitExceeded as a terminal error that
    /// States.ALL cannot catch (concepts-error-handling).
    pub fn is_terminal(&self) -> bool {
        self.error == names::RUNTIME || self.error == names::DATA_LIMIT_EXCEEDED
    }
    /// Whether an `ErrorEquals` entry matches this error, following the AWS rules:
    /// `States.ALL` matches every error that is not terminal; `States.TaskFailed` matches
    /// "any known error name except States.Timeout".
    pub fn matched_by(&self, name: &str) -> bool {
        if self.is_terminal() {
            return false;
        }
        match name {
            names::ALL => true,
            names::TASK_FAILED => self.error != names::TIMEOUT,
            other => other == self.error,
        }
    }
}

impl fmt::Display for StatesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

impl std::error::Error for StatesError {}
