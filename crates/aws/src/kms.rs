//! [`Kms`] on AWS KMS: Encrypt/Decrypt under one symmetric key with an encryption context.

use crate::errors::{classify, map_sdk_error, to_rotor, Call};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::Client;
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{EncryptionContext, Kms};
use rotor_core::secret::SecretValue;

const SERVICE: &str = "KMS";

/// KMS Encrypt takes at most 4,096 bytes of plaintext.
pub use rotor_core::limits::MAX_KMS_PLAINTEXT_BYTES;

/// The KMS adapter: `key_id` (key id, key ARN, alias name or alias ARN) encrypts, and
/// Decrypt is asked to use that key only (AWS: `IncorrectKeyException` for a ciphertext of
/// another key).
#[derive(Debug, Clone)]
pub struct AwsKms {
    client: Client,
    key_id: String,
}

/// The context as it appears in messages: `{"SecretId":"app/key"}` (names, never a value).
fn show(context: &EncryptionContext) -> String {
    serde_json::to_string(context).unwrap_or_else(|_| format!("{context:?}"))
}

/// Overwrites a buffer that held plaintext.
fn wipe(mut bytes: Vec<u8>) {
    bytes.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&bytes);
}

impl AwsKms {
    pub fn new(config: &SdkConfig, key_id: impl Into<String>) -> Self {
        Self::from_client(Client::new(config), key_id)
    }

    pub fn from_client(client: Client, key_id: impl Into<String>) -> Self {
        AwsKms {
            client,
            key_id: key_id.into(),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn subject(&self) -> String {
        format!("KMS key {}", self.key_id)
    }
}

#[async_trait]
impl Kms for AwsKms {
    /// Encrypt(KeyId, Plaintext, EncryptionContext): the ciphertext blob. 1 to 4,096 bytes of
    /// plaintext, else `Input.Invalid` before any call.
    async fn encrypt(
        &self,
        plaintext: &SecretValue,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        if self.key_id.trim().is_empty() {
            return Err(RotorError::input(
                "no KMS key configured to encrypt with (a key id, key ARN or alias)",
            ));
        }
        rotor_core::limits::validate_kms_plaintext(plaintext)?;
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext.expose().as_bytes()))
            .set_encryption_context(Some(context.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| map_sdk_error(&e, Call::new(SERVICE, "Encrypt", &self.subject())))?;
        out.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| RotorError::internal("KMS Encrypt answered without a CiphertextBlob"))
    }

    /// Decrypt(CiphertextBlob, EncryptionContext, KeyId). Another context (or a tampered
    /// blob): `Candidate.Invalid` naming the context (InvalidCiphertextException); a blob of
    /// another key: `Candidate.Invalid` (IncorrectKeyException); plaintext that is not UTF-8:
    /// `Candidate.Invalid`. Never any plaintext in a message.
    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretValue> {
        let key_id = Some(self.key_id.clone()).filter(|k| !k.trim().is_empty());
        let out = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(context.clone().into_iter().collect()))
            .set_key_id(key_id)
            .send()
            .await
            .map_err(|e| {
                let f = classify(&e);
                match f.code() {
                    Some("InvalidCiphertextException") => RotorError::candidate(format!(
                        "the candidate's ciphertext does not decrypt under this secret's encryption context {} ({})",
                        show(context),
                        f.cause()
                    )),
                    Some("IncorrectKeyException") => RotorError::candidate(format!(
                        "the candidate was encrypted under another KMS key than {} ({})",
                        self.key_id,
                        f.cause()
                    )),
                    _ => to_rotor(&f, Call::new(SERVICE, "Decrypt", &self.subject())),
                }
            })?;
        let plain = out
            .plaintext
            .map(Blob::into_inner)
            .ok_or_else(|| RotorError::internal("KMS Decrypt answered without a Plaintext"))?;
        match String::from_utf8(plain) {
            Ok(s) => Ok(SecretValue::new(s)),
            Err(e) => {
                wipe(e.into_bytes());
                Err(RotorError::candidate(
                    "the candidate's plaintext is not valid UTF-8",
                ))
            }
        }
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

    #[test]
    fn a_context_shows_as_json() {
        assert_eq!(
            show(&candidate_context("app/key")),
            r#"{"SecretId":"app/key"}"#
        );
    }
}
