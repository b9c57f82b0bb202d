//! Secrets Manager's own rules (names, tags, labels, sizes), enforced the same way by every
//! store: the local store because it stands in for Secrets Manager, the AWS adapter because moto
//! does not enforce all of them.

use crate::error::{Result, RotorError};
use crate::secret::{SecretValue, MAX_SECRET_BYTES};
use std::collections::BTreeMap;

pub const MAX_SECRET_ID_CHARS: usize = 512;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_KEY_CHARS: usize = 128;
pub const MAX_TAG_VALUE_CHARS: usize = 256;
pub const MAX_DESCRIPTION_CHARS: usize = 2048;
pub const MAX_STAGE_CHARS: usize = 256;
pub const MAX_STAGES_PER_VERSION: usize = 20;
pub const CLIENT_REQUEST_TOKEN_CHARS: std::ops::RangeInclusive<usize> = 32..=64;

pub fn validate_secret_id(id: &str) -> Result<()> {
    let n = id.chars().count();
    if n == 0 || n > MAX_SECRET_ID_CHARS {
        return Err(RotorError::input(format!(
            "secret id {id:?} must be 1 to {MAX_SECRET_ID_CHARS} characters, not {n}"
        )));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
    {
        return Err(RotorError::input(format!(
            "secret id {id:?} contains {c:?}: Secrets Manager allows only A-Z a-z 0-9 / _ + = . @ -"
        )));
    }
    Ok(())
}

pub fn validate_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in tags {
        let kn = k.chars().count();
        if kn == 0 || kn > MAX_TAG_KEY_CHARS {
            return Err(RotorError::input(format!(
                "tag key {k:?} must be 1 to {MAX_TAG_KEY_CHARS} characters"
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(RotorError::input(format!(
                "tag key {k:?}: the aws: prefix is reserved for AWS"
            )));
        }
        if v.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(RotorError::input(format!(
                "the value of tag {k:?} is longer than {MAX_TAG_VALUE_CHARS} characters"
            )));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(RotorError::input(format!(
            "a secret has at most {MAX_TAGS} tags, not {}",
            tags.len()
        )));
    }
    Ok(())
}

pub fn validate_stage(stage: &str) -> Result<()> {
    let n = stage.chars().count();
    if n == 0 || n > MAX_STAGE_CHARS {
        return Err(RotorError::input(format!(
            "staging label {stage:?} must be 1 to {MAX_STAGE_CHARS} characters"
        )));
    }
    Ok(())
}

/// A value Secrets Manager would store: not empty, at most 65,536 bytes. `make` builds the
/// error (Input.Invalid for a new secret, Candidate.Invalid for a candidate).
pub fn validate_value(value: &SecretValue, make: fn(String) -> RotorError) -> Result<()> {
    if value.is_empty() {
        return Err(make("the value is empty".into()));
    }
    if value.len() > MAX_SECRET_BYTES {
        return Err(make(format!(
            "the value is {} bytes; Secrets Manager accepts at most {MAX_SECRET_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

/// KMS Encrypt's plaintext bound (a candidate travels KMS-encrypted).
pub const MAX_KMS_PLAINTEXT_BYTES: usize = 4096;

/// A plaintext KMS Encrypt takes: 1 to 4,096 bytes (`Input.Invalid` otherwise).
pub fn validate_kms_plaintext(plaintext: &SecretValue) -> Result<()> {
    if plaintext.is_empty() || plaintext.len() > MAX_KMS_PLAINTEXT_BYTES {
        return Err(RotorError::input(format!(
            "KMS Encrypt takes 1 to {MAX_KMS_PLAINTEXT_BYTES} bytes of plaintext, not {} (ValidationException)",
            plaintext.len()
        )));
    }
    Ok(())
}

/// A ClientRequestToken Secrets Manager takes: 32 to 64 characters (`Input.Invalid` otherwise).
pub fn validate_client_request_token(token: &str) -> Result<()> {
    let n = token.chars().count();
    if !CLIENT_REQUEST_TOKEN_CHARS.contains(&n) {
        return Err(RotorError::input(format!(
            "ClientRequestToken {token:?} is {n} characters; Secrets Manager requires 32 to 64"
        )));
    }
    Ok(())
}

/// A candidate value Secrets Manager would store (`Candidate.Invalid` otherwise); with
/// `sealed`, also one KMS encrypts directly, as a candidate travels.
pub fn validate_candidate(value: &SecretValue, sealed: bool) -> Result<()> {
    if value.is_empty() {
        return Err(RotorError::candidate("the candidate is empty"));
    }
    if value.len() > MAX_SECRET_BYTES {
        return Err(RotorError::candidate(format!(
            "the candidate is {} bytes; Secrets Manager accepts at most {MAX_SECRET_BYTES}",
            value.len()
        )));
    }
    if sealed && value.len() > MAX_KMS_PLAINTEXT_BYTES {
        return Err(RotorError::candidate(format!(
            "the candidate is {} bytes; it travels KMS-encrypted and KMS encrypts at most {MAX_KMS_PLAINTEXT_BYTES} bytes directly",
            value.len()
        )));
    }
    Ok(())
}
