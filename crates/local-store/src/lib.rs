//! rotor's local store: the embedded default that stands in for Secrets Manager, KMS, IAM,
//! CloudWatch metrics and the audit log on a laptop.
//!
//! One directory (default `./.rotor/`, or `ROTOR_STORE`, or the CLI's `--store DIR`) holds
//! `rotor.db` (SQLite in WAL mode) and `master.key` (32 random bytes, mode 0600).
//!
//! * Secret values and IAM secret access keys are stored only sealed with ChaCha20-Poly1305
//!   under a subkey of the master key, with a random 96-bit nonce per value and associated data
//!   naming the row (secret id + version id; access key id), so a row copied elsewhere does not
//!   decrypt. No plaintext value ever reaches SQLite, so none is in `rotor.db`, its WAL or its
//!   shared-memory file.
//! * Every write runs in a `BEGIN IMMEDIATE` transaction with a 10 s busy timeout: two
//!   processes (or two `LocalStore`s in one process) serialize instead of failing with
//!   "database is locked"; a write that still cannot get the lock is `Aws.Throttled`.
//! * The schema is versioned with `PRAGMA user_version`; a store written by a newer rotor is
//!   refused with a clear message.
//!
//! [`LocalStore`] implements [`SecretStore`](rotor_core::ports::SecretStore),
//! [`Kms`](rotor_core::ports::Kms), [`Iam`](rotor_core::ports::Iam),
//! [`CallerIdentity`](rotor_core::ports::CallerIdentity) (a local STS) and
//! [`AuditSink`](rotor_core::ports::AuditSink) and [`Ecs`](rotor_core::consumers::Ecs) (ECS-like
//! services, the consumers a rotation redeploys), plus the extra methods the CLI needs
//! (creating secrets and IAM users, listing audit records, metrics and execution histories).

mod audit;
mod crypto;
mod db;
mod ecs;
mod iam;
mod kms;
mod secrets;

pub use audit::{ExecutionRecord, RUNNING};
pub use ecs::{ServiceSpec, LOCAL_REGION};
pub use iam::{LOCAL_ACCOUNT, MAX_KEYS_PER_USER};
pub use kms::MAX_KMS_PLAINTEXT_BYTES;
pub use rotor_core::limits::{
    CLIENT_REQUEST_TOKEN_CHARS, MAX_DESCRIPTION_CHARS, MAX_SECRET_ID_CHARS, MAX_STAGES_PER_VERSION,
    MAX_STAGE_CHARS, MAX_TAGS, MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS,
};

use chrono::{DateTime, Utc};
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{Clock, SystemClock};
use rusqlite::Connection;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The environment variable naming the store directory.
pub const STORE_ENV: &str = "ROTOR_STORE";
/// The store directory when neither `--store` nor `ROTOR_STORE` is given (relative to the
/// working directory).
pub const DEFAULT_DIR: &str = ".rotor";
/// The database file inside the store directory.
pub const DB_FILE: &str = "rotor.db";
/// The master key file inside the store directory.
pub const KEY_FILE: &str = "master.key";
/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 3;

/// `ROTOR_STORE` when set and not empty, else `./.rotor`.
pub fn default_dir() -> PathBuf {
    dir_from_env(std::env::var_os(STORE_ENV))
}

fn dir_from_env(value: Option<std::ffi::OsString>) -> PathBuf {
    match value {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_DIR),
    }
}

/// The store directory for a command line: `--store DIR` when given, else [`default_dir`].
pub fn resolve_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf).unwrap_or_else(default_dir)
}

/// The local store. Cheap to clone: clones share one SQLite connection. Open one per process
/// (or several: they serialize through SQLite's locks like separate processes do).
#[derive(Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
    clock: Arc<dyn Clock>,
}

struct Inner {
    dir: PathBuf,
    db_path: PathBuf,
    conn: Mutex<Connection>,
    keys: crypto::Keys,
    /// IAM's eventual consistency, simulated: how many authentications a new key fails
    /// (`Probe.NotReady`) before it works, and the failures left per key.
    propagation: Mutex<iam::Propagation>,
}

impl fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl LocalStore {
    /// Opens the store in `dir`, creating the directory (mode 0700), `master.key` and
    /// `rotor.db` as needed. Errors name the path that is wrong (not writable, not a
    /// database, written by a newer rotor, master key missing or not matching).
    pub fn open(dir: &Path) -> Result<LocalStore> {
        let (conn, keys, db_path) = db::open(dir)?;
        Ok(LocalStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                db_path,
                conn: Mutex::new(conn),
                keys,
                propagation: Mutex::new(iam::Propagation::default()),
            }),
            clock: Arc::new(SystemClock),
        })
    }

    /// Opens the store in [`default_dir`].
    pub fn open_default() -> Result<LocalStore> {
        LocalStore::open(&default_dir())
    }

    /// The same store with timestamps (version and key creation, key use) taken from `clock`,
    /// e.g. the executor's virtual clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> LocalStore {
        self.clock = clock;
        self
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn now_rfc3339(&self) -> String {
        rfc3339(self.now())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock drops its transaction, which rolls back: the
        // connection is still usable.
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction: committed when `f` succeeds, rolled back
    /// (nothing changes) when it fails.
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> db::R<T>) -> Result<T> {
        let mut conn = self.conn();
        db::in_transaction(&mut conn, rusqlite::TransactionBehavior::Immediate, f)
            .map_err(|e| e.into_rotor(&self.inner.db_path))
    }

    /// [`Self::write`] without waiting for the disk: committed to the WAL (so it survives the
    /// process being killed at any moment) but fsynced only with the next ordinary write or
    /// checkpoint (so a power cut may lose it). For the events of a running execution, written
    /// one by one: a rotation writes ~50, and an fsync each would multiply its time.
    fn write_unsynced<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> db::R<T>,
    ) -> Result<T> {
        let mut conn = self.conn();
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        let result = db::in_transaction(&mut conn, rusqlite::TransactionBehavior::Immediate, f)
            .map_err(|e| e.into_rotor(&self.inner.db_path));
        // Back to FULL for everything else (see db::configure).
        let _ = conn.pragma_update(None, "synchronous", "FULL");
        result
    }

    /// Runs `f` in a read transaction (one consistent snapshot).
    fn read<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> db::R<T>) -> Result<T> {
        let mut conn = self.conn();
        db::in_transaction(&mut conn, rusqlite::TransactionBehavior::Deferred, f)
            .map_err(|e| e.into_rotor(&self.inner.db_path))
    }
}

pub(crate) use rotor_core::rfc3339;

pub(crate) fn not_found(secret_id: &str) -> RotorError {
    RotorError::input(format!(
        "secret {secret_id} does not exist (ResourceNotFoundException)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotor_store_overrides_the_default_dir() {
        assert_eq!(dir_from_env(None), PathBuf::from(".rotor"));
        assert_eq!(dir_from_env(Some("".into())), PathBuf::from(".rotor"));
        assert_eq!(
            dir_from_env(Some("/srv/rotor".into())),
            PathBuf::from("/srv/rotor")
        );
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(tempfile::TempDir);

    impl TempDir {
        pub(crate) fn new() -> TempDir {
            TempDir(tempfile::tempdir().unwrap())
        }
        pub(crate) fn path(&self) -> &std::path::Path {
            self.0.path()
        }
    }
}
