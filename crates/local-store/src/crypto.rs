//! Encryption at rest and the local KMS. One master key (`master.key`, 32 random bytes) never
//! encrypts anything itself: HKDF-SHA256 derives a value key (secret values, IAM secret access
//! keys, the key check) and a separate KMS data key. Every sealed blob is
//! `nonce (12 random bytes) || ChaCha20-Poly1305 ciphertext+tag`, with associated data that
//! names what the blob belongs to, so a blob copied to another row does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

pub(crate) const MASTER_KEY_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

/// The first byte of a local KMS ciphertext (format version 1).
pub(crate) const KMS_BLOB_VERSION: u8 = 0xA1;

const HKDF_SALT: &[u8] = b"rotor-local-store/v1";
const VALUE_KEY_INFO: &[u8] = b"rotor value encryption key";
const KMS_KEY_INFO: &[u8] = b"rotor local kms data key";

/// The two subkeys. Neither the keys nor the master key ever leave this struct.
pub(crate) struct Keys {
    value: ChaCha20Poly1305,
    kms: ChaCha20Poly1305,
}

impl Keys {
    pub(crate) fn derive(master: &[u8; MASTER_KEY_LEN]) -> Keys {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), master);
        let mut value = [0u8; 32];
        let mut kms = [0u8; 32];
        hk.expand(VALUE_KEY_INFO, &mut value)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        hk.expand(KMS_KEY_INFO, &mut kms)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        let keys = Keys {
            value: ChaCha20Poly1305::new(Key::from_slice(&value)),
            kms: ChaCha20Poly1305::new(Key::from_slice(&kms)),
        };
        value.fill(0);
        kms.fill(0);
        keys
    }

    /// Seals a stored value (secret value, IAM secret access key) under the value key.
    pub(crate) fn seal_value(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal(&self.value, aad, plaintext)
    }

    /// Opens what `seal_value` sealed with the same associated data; `None` on any mismatch.
    pub(crate) fn open_value(&self, aad: &[u8], blob: &[u8]) -> Option<Vec<u8>> {
        open(&self.value, aad, blob)
    }

    /// A local KMS ciphertext: `KMS_BLOB_VERSION || nonce || AEAD(plaintext)`, AAD = the
    /// canonical encryption context.
    pub(crate) fn kms_encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(KMS_BLOB_VERSION);
        out.extend_from_slice(&seal(&self.kms, aad, plaintext));
        out
    }

    pub(crate) fn kms_decrypt(&self, aad: &[u8], blob: &[u8]) -> Option<Vec<u8>> {
        match blob.split_first() {
            Some((&KMS_BLOB_VERSION, rest)) => open(&self.kms, aad, rest),
            _ => None,
        }
    }
}

fn seal(cipher: &ChaCha20Poly1305, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("ChaCha20-Poly1305 encryption of an in-memory buffer does not fail");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

fn open(cipher: &ChaCha20Poly1305, aad: &[u8], blob: &[u8]) -> Option<Vec<u8>> {
    if blob.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
        .ok()
}

/// Unambiguous associated data: a domain label, then each part length-prefixed.
pub(crate) fn aad(domain: &str, parts: &[&str]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(domain.len() + 1 + parts.iter().map(|p| p.len() + 4).sum::<usize>());
    out.extend_from_slice(domain.as_bytes());
    out.push(0);
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// AAD of a secret value: the secret id and the version id.
pub(crate) fn value_aad(secret_id: &str, version_id: &str) -> Vec<u8> {
    aad("rotor-secret-value/v1", &[secret_id, version_id])
}

/// AAD of an IAM secret access key: the user and the access key id.
pub(crate) fn iam_secret_aad(access_key_id: &str) -> Vec<u8> {
    aad("rotor-iam-secret-access-key/v1", &[access_key_id])
}

/// AAD and plaintext of the key check stored in the database: proves `master.key` is the key
/// the database was written with.
pub(crate) fn key_check_aad() -> Vec<u8> {
    aad("rotor-key-check/v1", &[])
}
pub(crate) const KEY_CHECK_PLAINTEXT: &[u8] = b"rotor local store key check";

/// Overwrites a buffer that held plaintext before it is freed.
pub(crate) fn wipe(mut bytes: Vec<u8>) {
    bytes.iter_mut().for_each(|b| *b = 0);
    drop(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(&[7u8; 32])
    }

    #[test]
    fn value_blobs_are_bound_to_their_row() {
        let k = keys();
        let blob = k.seal_value(&value_aad("s", "v1"), b"hello");
        assert_eq!(
            k.open_value(&value_aad("s", "v1"), &blob).as_deref(),
            Some(&b"hello"[..])
        );
        assert!(k.open_value(&value_aad("s", "v2"), &blob).is_none());
        assert!(k.open_value(&value_aad("t", "v1"), &blob).is_none());
        // length prefixes: ("ab","c") and ("a","bc") differ
        assert_ne!(value_aad("ab", "c"), value_aad("a", "bc"));
    }

    #[test]
    fn nonces_are_fresh_and_subkeys_differ() {
        let k = keys();
        let a = k.seal_value(b"x", b"same");
        let b = k.seal_value(b"x", b"same");
        assert_ne!(a, b);
        let blob = k.kms_encrypt(b"x", b"same");
        // a KMS blob does not open as a value and vice versa (different subkeys)
        assert!(k.open_value(b"x", &blob[1..]).is_none());
        assert!(k.kms_decrypt(b"x", &blob).is_some());
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.kms_decrypt(b"x", &tampered).is_none());
        assert!(k.kms_decrypt(b"x", &[]).is_none());
        assert!(Keys::derive(&[8u8; 32]).kms_decrypt(b"x", &blob).is_none());
    }
}
