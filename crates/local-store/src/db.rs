//! Opening the store: directory, master key, SQLite settings, schema; transactions and the
//! mapping of SQLite errors to rotor errors that name the database.

use crate::crypto::{self, Keys, MASTER_KEY_LEN};
use crate::{DB_FILE, KEY_FILE, SCHEMA_VERSION};
use rotor_core::error::{Result, RotorError};
use rusqlite::{
    params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior,
};
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a connection waits for another one's lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure inside a transaction: SQLite's, or a rotor error decided by the store's rules.
#[derive(Debug)]
pub(crate) enum Fail {
    Sql(rusqlite::Error),
    Rotor(RotorError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<RotorError> for Fail {
    fn from(e: RotorError) -> Self {
        Fail::Rotor(e)
    }
}

pub(crate) type R<T> = std::result::Result<T, Fail>;

impl Fail {
    pub(crate) fn into_rotor(self, db_path: &Path) -> RotorError {
        match self {
            Fail::Rotor(e) => e,
            Fail::Sql(e) => sql_error(db_path, &e),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked)
    )
}

/// A SQLite error as a rotor error naming the database file.
pub(crate) fn sql_error(db_path: &Path, e: &rusqlite::Error) -> RotorError {
    let path = db_path.display();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => RotorError::Throttled(format!(
            "the local store {path} is busy: another process held its write lock for more than {} s ({e})",
            BUSY_TIMEOUT.as_secs()
        )),
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => RotorError::internal(format!(
            "the local store database {path} is damaged or is not a rotor store ({e}); move it aside to start afresh"
        )),
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
            RotorError::internal(format!("cannot write the local store database {path}: {e} (is its directory writable?)"))
        }
        Some(ErrorCode::DiskFull) => RotorError::internal(format!("the disk holding the local store {path} is full ({e})")),
        _ => RotorError::internal(format!("local store {path}: {e}")),
    }
}

pub(crate) fn in_transaction<T>(
    conn: &mut Connection,
    behavior: TransactionBehavior,
    f: impl FnOnce(&Transaction<'_>) -> R<T>,
) -> R<T> {
    let tx = conn.transaction_with_behavior(behavior)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> RotorError {
    let hint = match e.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            " (the local store directory must be writable)"
        }
        _ => "",
    };
    RotorError::internal(format!("cannot {what} {}: {e}{hint}", path.display()))
}

/// Opens (creating as needed) the store in `dir`.
pub(crate) fn open(dir: &Path) -> Result<(Connection, Keys, PathBuf)> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_error("create the local store directory", dir, &e))?;
    } else if !dir.is_dir() {
        return Err(RotorError::internal(format!(
            "the local store {} is not a directory",
            dir.display()
        )));
    }
    let db_path = dir.join(DB_FILE);
    let key_path = dir.join(KEY_FILE);
    let db_has_data = fs::metadata(&db_path).map(|m| m.len() > 0).unwrap_or(false);
    if db_has_data && !key_path.exists() {
        return Err(RotorError::internal(format!(
            "the local store {} has a database but no master key {}: its values cannot be decrypted (restore master.key, or move the directory aside to start afresh)",
            dir.display(),
            key_path.display()
        )));
    }
    let keys = load_or_create_master_key(&key_path)?;
    // Create the database file ourselves so it (and so its -wal and -shm, which SQLite gives
    // the database's mode) is 0600. Only ever a new file: opening and closing a handle on an
    // existing database would drop every POSIX lock this process holds on it, including those
    // of another connection already open here, and SQLite would then lose that one's WAL.
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&db_path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_error("create the local store database", &db_path, &e)),
    }
    let mut conn = Connection::open(&db_path).map_err(|e| sql_error(&db_path, &e))?;
    retry_busy(|| configure(&mut conn, &keys, &db_path)).map_err(|e| e.into_rotor(&db_path))?;
    Ok((conn, keys, db_path))
}

/// Retries while another connection holds a lock this step needs (the busy handler covers most
/// waits; a few, like switching to WAL, can answer "busy" at once).
fn retry_busy<T>(mut f: impl FnMut() -> R<T>) -> R<T> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(Fail::Sql(e)) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn configure(conn: &mut Connection, keys: &Keys, db_path: &Path) -> R<()> {
    let path = db_path.display();
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(RotorError::internal(format!(
            "the local store database {path} could not switch to WAL mode (journal_mode is {mode}); is it on a network file system?"
        ))
        .into());
    }
    // FULL: a committed write survives a power cut too (in WAL mode NORMAL could lose the last
    // transactions, and a rotation must not forget a version it reported as staged).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    in_transaction(conn, TransactionBehavior::Immediate, |tx| {
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(RotorError::internal(format!(
                "the local store database {path} has schema version {version}, written by a newer rotor; this rotor understands up to version {SCHEMA_VERSION}: upgrade rotor"
            ))
            .into());
        }
        if version == 0 {
            tx.execute_batch(SCHEMA_V1)?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2)?;
        }
        if version < 3 {
            tx.execute_batch(crate::ecs::SCHEMA_V3)?;
        }
        if version < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        check_key(tx, keys, db_path)
    })
}

/// Stores a key check on first use; afterwards proves `master.key` is the key the database was
/// written with.
fn check_key(tx: &Transaction<'_>, keys: &Keys, db_path: &Path) -> R<()> {
    let stored: Option<Vec<u8>> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'key_check'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    match stored {
        None => {
            let blob = keys.seal_value(&crypto::key_check_aad(), crypto::KEY_CHECK_PLAINTEXT);
            tx.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?1)", params![blob])?;
            Ok(())
        }
        Some(blob) => match keys.open_value(&crypto::key_check_aad(), &blob) {
            Some(p) if p == crypto::KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(RotorError::internal(format!(
                "{KEY_FILE} does not match the local store database {} (it was written with another master key): restore the original {KEY_FILE}",
                db_path.display()
            ))
            .into()),
        },
    }
}

/// Reads `master.key`, creating it first when absent. Creation is atomic: the key is written
/// and synced to a private temporary file, then hard-linked to `master.key`, which fails if
/// another process got there first; the loser then reads the winner's key.
fn load_or_create_master_key(path: &Path) -> Result<Keys> {
    if !path.exists() {
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{KEY_FILE}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let mut key = [0u8; MASTER_KEY_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        let written = (|| -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&key)?;
            f.sync_all()
        })();
        key.fill(0);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_error("create the master key in", dir, &e));
        }
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Ok(d) = fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error("create the master key", path, &e)),
        }
    }
    read_master_key(path)
}

fn read_master_key(path: &Path) -> Result<Keys> {
    let mut bytes = Vec::with_capacity(MASTER_KEY_LEN + 1);
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io_error("read the master key", path, &e))?;
    if bytes.len() != MASTER_KEY_LEN {
        let n = bytes.len();
        crypto::wipe(bytes);
        return Err(RotorError::internal(format!(
            "the master key {} is {n} bytes, not {MASTER_KEY_LEN}: it is damaged",
            path.display()
        )));
    }
    let mut key = [0u8; MASTER_KEY_LEN];
    key.copy_from_slice(&bytes);
    crypto::wipe(bytes);
    let keys = Keys::derive(&key);
    key.fill(0);
    Ok(keys)
}

const SCHEMA_V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE secrets (
    id          TEXT PRIMARY KEY,
    description TEXT,
    created_at  TEXT NOT NULL
);
CREATE TABLE secret_tags (
    secret_id TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (secret_id, key)
);
-- sealed = nonce || ChaCha20-Poly1305(value), AAD = secret id + version id
CREATE TABLE versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_id  TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    version_id TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (secret_id, version_id)
);
-- one row per label: a label is on at most one version by construction
CREATE TABLE stages (
    secret_id  TEXT NOT NULL,
    stage      TEXT NOT NULL,
    version_id TEXT NOT NULL,
    PRIMARY KEY (secret_id, stage),
    FOREIGN KEY (secret_id, version_id) REFERENCES versions(secret_id, version_id) ON DELETE CASCADE
);
CREATE INDEX stages_by_version ON stages (secret_id, version_id);
CREATE TABLE iam_users (
    name       TEXT PRIMARY KEY COLLATE NOCASE,
    created_at TEXT NOT NULL
);
CREATE TABLE iam_access_keys (
    access_key_id TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL COLLATE NOCASE REFERENCES iam_users(name) ON DELETE CASCADE,
    status        TEXT NOT NULL CHECK (status IN ('Active', 'Inactive')),
    sealed_secret BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
);
CREATE INDEX iam_access_keys_by_user ON iam_access_keys (user_name);
CREATE TABLE audit_records (
    execution_id TEXT PRIMARY KEY,
    secret_id    TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    record       TEXT NOT NULL
);
CREATE INDEX audit_records_by_secret ON audit_records (secret_id, started_at);
CREATE TABLE metrics (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    metric    TEXT NOT NULL
);
CREATE INDEX metrics_by_name ON metrics (name, seq);
CREATE TABLE executions (
    execution_id TEXT PRIMARY KEY,
    secret_id    TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    record       TEXT NOT NULL
);
CREATE INDEX executions_by_secret ON executions (secret_id, started_at);
"#;

/// Version 2: the events of a running execution, each written as it happens (so a killed run
/// leaves its history so far); folded into the execution's record when it ends.
const SCHEMA_V2: &str = r#"
CREATE TABLE execution_events (
    execution_id TEXT NOT NULL,
    id           INTEGER NOT NULL,
    event        TEXT NOT NULL,
    PRIMARY KEY (execution_id, id)
);
"#;
