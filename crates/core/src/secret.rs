//! Secret values and what the store says about a secret. A value never prints: its `Debug` and
//! `Display` are redacted, and it has no `Serialize`.

use std::collections::BTreeMap;
use std::fmt;

/// Staging labels, as Secrets Manager names them.
pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// Secrets Manager's limit on a secret value.
pub const MAX_SECRET_BYTES: usize = 65_536;

/// A secret value. Only the store, KMS and the probes look inside.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }
    /// The plaintext. Every call site is a place where a value may leak: keep them few.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted, {} bytes>)", self.0.len())
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocation is freed.
        // SAFETY: writing zero bytes keeps the string valid UTF-8.
        unsafe { self.0.as_bytes_mut().iter_mut().for_each(|b| *b = 0) };
    }
}

/// One version of a secret and the labels on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionInfo {
    pub version_id: String,
    pub stages: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// What DescribeSecret says: never a value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub versions: Vec<VersionInfo>,
}

impl SecretInfo {
    /// The version carrying `stage`, if any.
    pub fn version_with(&self, stage: &str) -> Option<&VersionInfo> {
        self.versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }
}

/// Which version to read: always explicit (moto returns a stale value for a stage-less read,
/// and a rotation must say what it means on AWS too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Stage(String),
    Id(String),
}

impl Version {
    pub fn current() -> Self {
        Version::Stage(AWSCURRENT.into())
    }
    pub fn pending() -> Self {
        Version::Stage(AWSPENDING.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_never_formats() {
        let v = SecretValue::new("sk-live-123");
        assert!(!format!("{v:?}").contains("sk-live"));
        assert!(!format!("{v}").contains("sk-live"));
        assert_eq!(v.expose(), "sk-live-123");
    }
}
