//! The local KMS: one data key (derived from the master key, separate from the value key),
//! encryption contexts bound as associated data.

use crate::crypto;
use crate::LocalStore;
use async_trait::async_trait;
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{EncryptionContext, Kms};
use rotor_core::secret::SecretValue;

/// KMS Encrypt takes at most 4,096 bytes of plaintext.
pub use rotor_core::limits::MAX_KMS_PLAINTEXT_BYTES;

const WRONG_CONTEXT: &str =
    "the candidate's ciphertext does not decrypt under this secret's encryption context";

/// The associated data of a context: its JSON with keys sorted (a `BTreeMap` serializes in
/// key order), so equal contexts give equal bytes however they were built.
fn canonical(context: &EncryptionContext) -> Vec<u8> {
    serde_json::to_vec(context).expect("a map of strings serializes")
}

impl LocalStore {
    fn kms_encrypt_sync(
        &self,
        plaintext: &SecretValue,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        rotor_core::limits::validate_kms_plaintext(plaintext)?;
        Ok(self
            .inner
            .keys
            .kms_encrypt(&canonical(context), plaintext.expose().as_bytes()))
    }

    fn kms_decrypt_sync(
        &self,
        ciphertext: &[u8],
        context: &EncryptionContext,
    ) -> Result<SecretValue> {
        let plain = self
            .inner
            .keys
            .kms_decrypt(&canonical(context), ciphertext)
            .ok_or_else(|| RotorError::candidate(WRONG_CONTEXT))?;
        match String::from_utf8(plain) {
            Ok(s) => Ok(SecretValue::new(s)),
            Err(e) => {
                crypto::wipe(e.into_bytes());
                Err(RotorError::candidate(
                    "the candidate's plaintext is not valid UTF-8",
                ))
            }
        }
    }
}

#[async_trait]
impl Kms for LocalStore {
    /// A blob `0xA1 || nonce || ChaCha20-Poly1305(plaintext)` under the local KMS data key with
    /// the canonical context as associated data. Only this store (its `master.key`) opens it.
    async fn encrypt(
        &self,
        plaintext: &SecretValue,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        self.kms_encrypt_sync(plaintext, context)
    }

    /// Another context, a tampered or foreign blob: `Candidate.Invalid` (never any plaintext).
    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretValue> {
        self.kms_decrypt_sync(ciphertext, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    /// An encryption context naming `secret` (what these KMS checks need; candidates themselves
    /// are sealed by `rotor_core::candidate`).
    fn candidate_context(secret: &str) -> rotor_core::ports::EncryptionContext {
        std::collections::BTreeMap::from([("SecretId".to_string(), secret.to_string())])
    }
    use crate::test_util::TempDir;

    #[test]
    fn non_utf8_plaintext_is_candidate_invalid() {
        let dir = TempDir::new();
        let store = LocalStore::open(&dir.path().join("s")).unwrap();
        let ctx = candidate_context("app/key");
        let blob = store
            .inner
            .keys
            .kms_encrypt(&canonical(&ctx), &[0xff, 0xfe, 0x00]);
        let err = store.kms_decrypt_sync(&blob, &ctx).unwrap_err();
        assert_eq!(err.asl_name(), "Candidate.Invalid");
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    }

    #[test]
    fn the_context_is_canonical() {
        let a: EncryptionContext = [("b", "2"), ("a", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(canonical(&a), br#"{"a":"1","b":"2"}"#.to_vec());
    }
}
