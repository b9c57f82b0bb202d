//! IAM users and access keys.

use crate::crypto::{self, iam_secret_aad};
use crate::db::R;
use crate::{rfc3339, LocalStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::Rng;
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{AccessKeyInfo, CallerIdentity, Iam, Identity, NewAccessKey, ProbeAction};
use rotor_core::secret::SecretValue;
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::HashMap;

/// The account id in the local store's ARNs.
pub const LOCAL_ACCOUNT: &str = "123456789012";

/// IAM's eventual consistency, simulated (see [`LocalStore::set_key_propagation`]).
#[derive(Debug, Default)]
pub(crate) struct Propagation {
    /// Failed authentications every key created from now on goes through.
    delay: u32,
    /// Failures left, per new key.
    left: HashMap<String, u32>,
}

/// IAM allows two access keys per user.
pub const MAX_KEYS_PER_USER: usize = 2;

const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

fn validate_user_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0
        || n > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    {
        return Err(RotorError::input(format!(
            "IAM user name {name:?} must be 1 to 64 characters of A-Z a-z 0-9 + = , . @ _ - (ValidationError)"
        )));
    }
    Ok(())
}

fn require_user(tx: &Transaction<'_>, user: &str) -> R<()> {
    let found: Option<i64> = tx
        .query_row("SELECT 1 FROM iam_users WHERE name = ?1", [user], |r| {
            r.get(0)
        })
        .optional()?;
    match found {
        Some(_) => Ok(()),
        None => {
            Err(RotorError::input(format!("IAM user {user} does not exist (NoSuchEntity)")).into())
        }
    }
}

/// The key must exist and belong to `user`.
fn require_key(tx: &Transaction<'_>, user: &str, access_key_id: &str) -> R<()> {
    require_user(tx, user)?;
    let owner: Option<String> = tx
        .query_row(
            "SELECT user_name FROM iam_access_keys WHERE access_key_id = ?1",
            [access_key_id],
            |r| r.get(0),
        )
        .optional()?;
    match owner {
        Some(o) if o.eq_ignore_ascii_case(user) => Ok(()),
        _ => Err(RotorError::input(format!(
            "IAM user {user} has no access key {access_key_id} (NoSuchEntity)"
        ))
        .into()),
    }
}

fn unknown_key(access_key_id: &str) -> RotorError {
    RotorError::input(format!(
        "access key {access_key_id} does not exist (NoSuchEntity)"
    ))
}

impl LocalStore {
    /// Simulates IAM's eventual consistency: every access key created from now on (by this
    /// `LocalStore` and its clones) fails its first `failures` authentications with
    /// `Probe.NotReady` (as STS's InvalidClientTokenId right after creation), then works.
    /// 0 (the default) turns it off. Failures are counted per call, not per second, so the
    /// state machine's virtual clock does not matter.
    pub fn set_key_propagation(&self, failures: u32) {
        let mut p = self
            .inner
            .propagation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.delay = failures;
    }

    fn not_yet_propagated(&self, access_key_id: &str) -> bool {
        let mut p = self
            .inner
            .propagation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match p.left.get_mut(access_key_id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// CreateUser, idempotent: an existing user (IAM names are case-insensitive) is left as it is.
    pub fn create_user(&self, name: &str) -> Result<()> {
        validate_user_name(name)?;
        let now = self.now_rfc3339();
        self.write(|tx| {
            tx.execute("INSERT INTO iam_users (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING", [name, &now])?;
            Ok(())
        })
    }

    /// A consumer (or a local STS) used the key now: GetAccessKeyLastUsed reports it. Recorded
    /// whatever the key's status, so a test can play a consumer still holding a deactivated key.
    pub fn record_key_use(&self, access_key_id: &str) -> Result<()> {
        self.record_key_use_at(access_key_id, self.now())
    }

    /// [`record_key_use`](Self::record_key_use) at a given time.
    pub fn record_key_use_at(&self, access_key_id: &str, at: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE iam_access_keys SET last_used_at = ?2 WHERE access_key_id = ?1",
                [access_key_id, &rfc3339(at)],
            )?;
            if n == 0 {
                return Err(unknown_key(access_key_id).into());
            }
            Ok(())
        })
    }

    /// A local sts:GetCallerIdentity: the user owning an active key whose secret matches, and
    /// the use is recorded. Unknown or inactive key: `Probe.Rejected` (InvalidClientTokenId);
    /// wrong secret: `Probe.Rejected` (SignatureDoesNotMatch).
    pub fn authenticate(
        &self,
        access_key_id: &str,
        secret_access_key: &SecretValue,
    ) -> Result<String> {
        let now = self.now_rfc3339();
        self.write(|tx| {
            let row: Option<(String, String, Vec<u8>)> = tx
                .query_row(
                    "SELECT user_name, status, sealed_secret FROM iam_access_keys WHERE access_key_id = ?1",
                    [access_key_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let invalid = || {
                RotorError::ProbeRejected(format!(
                    "the security token included in the request is invalid: access key {access_key_id} is unknown or inactive (InvalidClientTokenId)"
                ))
            };
            let Some((user, status, sealed)) = row else {
                return Err(invalid().into());
            };
            if status != "Active" {
                return Err(invalid().into());
            }
            let stored = self.inner.keys.open_value(&iam_secret_aad(access_key_id), &sealed).ok_or_else(|| {
                RotorError::internal(format!(
                    "the stored secret of access key {access_key_id} does not decrypt under {}/master.key",
                    self.dir().display()
                ))
            })?;
            let matches = stored.len() == secret_access_key.len()
                && stored.iter().zip(secret_access_key.expose().as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
            crypto::wipe(stored);
            if !matches {
                return Err(RotorError::ProbeRejected(format!(
                    "the request signature does not match for access key {access_key_id} (SignatureDoesNotMatch)"
                ))
                .into());
            }
            tx.execute("UPDATE iam_access_keys SET last_used_at = ?2 WHERE access_key_id = ?1", [access_key_id, &now])?;
            Ok(user)
        })
    }

    fn list_access_keys_sync(&self, user: &str) -> Result<Vec<AccessKeyInfo>> {
        self.read(|tx| {
            require_user(tx, user)?;
            let mut stmt = tx.prepare_cached(
                "SELECT access_key_id, status, created_at FROM iam_access_keys WHERE user_name = ?1 ORDER BY created_at, rowid",
            )?;
            let keys = stmt
                .query_map([user], |r| Ok(AccessKeyInfo { access_key_id: r.get(0)?, status: r.get(1)?, created_at: r.get(2)? }))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(keys)
        })
    }

    fn create_access_key_sync(&self, user: &str) -> Result<NewAccessKey> {
        let now = self.now_rfc3339();
        self.write(|tx| {
            require_user(tx, user)?;
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM iam_access_keys WHERE user_name = ?1", [user], |r| r.get(0))?;
            if n as usize >= MAX_KEYS_PER_USER {
                return Err(RotorError::KeyLimit(format!(
                    "user {user} already has {MAX_KEYS_PER_USER} access keys (LimitExceeded)"
                ))
                .into());
            }
            let secret = SecretValue::new(random_from(SECRET_ALPHABET, 40));
            loop {
                let id = format!("AKIA{}", random_from(KEY_ID_ALPHABET, 16));
                let sealed = self.inner.keys.seal_value(&iam_secret_aad(&id), secret.expose().as_bytes());
                let inserted = tx.execute(
                    "INSERT INTO iam_access_keys (access_key_id, user_name, status, sealed_secret, created_at)
                     VALUES (?1, ?2, 'Active', ?3, ?4) ON CONFLICT (access_key_id) DO NOTHING",
                    params![id, user, sealed, now],
                )?;
                if inserted == 1 {
                    return Ok(NewAccessKey { access_key_id: id, secret_access_key: secret });
                }
            }
        })
        .inspect(|key| {
            let mut p = self.inner.propagation.lock().unwrap_or_else(|e| e.into_inner());
            if p.delay > 0 {
                let delay = p.delay;
                p.left.insert(key.access_key_id.clone(), delay);
            }
        })
    }

    fn set_access_key_active_sync(
        &self,
        user: &str,
        access_key_id: &str,
        active: bool,
    ) -> Result<()> {
        self.write(|tx| {
            require_key(tx, user, access_key_id)?;
            let status = if active { "Active" } else { "Inactive" };
            tx.execute(
                "UPDATE iam_access_keys SET status = ?2 WHERE access_key_id = ?1",
                [access_key_id, status],
            )?;
            Ok(())
        })
    }

    fn delete_access_key_sync(&self, user: &str, access_key_id: &str) -> Result<()> {
        self.write(|tx| {
            require_key(tx, user, access_key_id)?;
            tx.execute(
                "DELETE FROM iam_access_keys WHERE access_key_id = ?1",
                [access_key_id],
            )?;
            Ok(())
        })
    }

    fn access_key_last_used_sync(&self, access_key_id: &str) -> Result<Option<DateTime<Utc>>> {
        let last: Option<Option<String>> = self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT last_used_at FROM iam_access_keys WHERE access_key_id = ?1",
                    [access_key_id],
                    |r| r.get(0),
                )
                .optional()?)
        })?;
        match last {
            None => Err(unknown_key(access_key_id)),
            Some(None) => Ok(None),
            Some(Some(t)) => DateTime::parse_from_rfc3339(&t)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| RotorError::internal(format!("access key {access_key_id}: stored last-used time {t:?} is not RFC 3339: {e}"))),
        }
    }
}

#[async_trait]
impl Iam for LocalStore {
    /// ListAccessKeys, oldest first. Unknown user: `Input.Invalid`.
    async fn list_access_keys(&self, user: &str) -> Result<Vec<AccessKeyInfo>> {
        self.list_access_keys_sync(user)
    }

    /// CreateAccessKey: `AKIA` + 16 of A-Z 0-9, a 40-character secret (stored sealed, returned
    /// only here). Unknown user: `Input.Invalid`; a third key: `Rotation.KeyLimit`.
    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey> {
        self.create_access_key_sync(user)
    }

    async fn set_access_key_active(
        &self,
        user: &str,
        access_key_id: &str,
        active: bool,
    ) -> Result<()> {
        self.set_access_key_active_sync(user, access_key_id, active)
    }

    async fn delete_access_key(&self, user: &str, access_key_id: &str) -> Result<()> {
        self.delete_access_key_sync(user, access_key_id)
    }

    /// GetAccessKeyLastUsed: `None` when never used. Unknown key: `Input.Invalid`.
    async fn access_key_last_used(&self, access_key_id: &str) -> Result<Option<DateTime<Utc>>> {
        self.access_key_last_used_sync(access_key_id)
    }
}

/// A local STS: GetCallerIdentity (and the probe actions) authenticate the key against the
/// store's IAM ([`LocalStore::authenticate`], which records the use). A key still
/// "propagating" ([`LocalStore::set_key_propagation`]): `Probe.NotReady`.
#[async_trait]
impl CallerIdentity for LocalStore {
    async fn caller_identity(
        &self,
        access_key_id: &str,
        secret_access_key: &SecretValue,
    ) -> Result<Identity> {
        if self.not_yet_propagated(access_key_id) {
            return Err(RotorError::ProbeNotReady(format!(
                "the security token included in the request is invalid: access key {access_key_id} is not usable yet (InvalidClientTokenId; a new key takes a moment to propagate)"
            )));
        }
        let user = self.authenticate(access_key_id, secret_access_key)?;
        let arn = format!("arn:aws:iam::{LOCAL_ACCOUNT}:user/{user}");
        Ok(Identity {
            account: LOCAL_ACCOUNT.into(),
            user_name: Identity::user_name_of(&arn),
            arn,
        })
    }

    /// The local store has no IAM policies: every authenticated key is permitted the probe
    /// actions, and the proof says so.
    async fn permitted_call(
        &self,
        access_key_id: &str,
        secret_access_key: &SecretValue,
        action: ProbeAction,
    ) -> Result<String> {
        let who = self
            .caller_identity(access_key_id, secret_access_key)
            .await?;
        Ok(format!(
            "the local store authenticated {} for {} (it has no IAM policies to deny it)",
            who.arn,
            action.as_str()
        ))
    }
}
