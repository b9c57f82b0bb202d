//! Behaviour of the local store: Secrets Manager, KMS, IAM, audit, executions, at-rest
//! encryption, opening errors, and several processes at once.

use rotor_core::error::RotorError;
use rotor_core::handlers::token_for;
use rotor_core::ports::{AuditRecord, AuditSink, Iam, Kms, Metric, SecretStore};
use rotor_core::secret::{SecretInfo, SecretValue, Version, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use rotor_local_store::{
    default_dir, resolve_dir, ExecutionRecord, LocalStore, DB_FILE, KEY_FILE, STORE_ENV,
};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// An encryption context naming `secret` (what these KMS checks need; candidates themselves
/// are sealed by `rotor_core::candidate`).
fn candidate_context(secret: &str) -> rotor_core::ports::EncryptionContext {
    std::collections::BTreeMap::from([("SecretId".to_string(), secret.to_string())])
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new() -> TempDir {
        TempDir(tempfile::tempdir().unwrap())
    }
    /// The store directory (not yet created: `open` creates it).
    fn store_dir(&self) -> PathBuf {
        self.0.path().join("store")
    }
}

fn new_store() -> (TempDir, LocalStore) {
    let tmp = TempDir::new();
    let store = LocalStore::open(&tmp.store_dir()).unwrap();
    (tmp, store)
}

fn v(s: &str) -> SecretValue {
    SecretValue::new(s)
}

fn tok(name: &str) -> String {
    token_for(name)
}

fn no_tags() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn stages_of(info: &SecretInfo, version_id: &str) -> Vec<String> {
    let mut s = info
        .versions
        .iter()
        .find(|v| v.version_id == version_id)
        .expect("version listed")
        .stages
        .clone();
    s.sort();
    s
}

fn holder(info: &SecretInfo, stage: &str) -> Option<String> {
    let holders: Vec<_> = info
        .versions
        .iter()
        .filter(|v| v.stages.iter().any(|s| s == stage))
        .collect();
    assert!(holders.len() <= 1, "{stage} on {} versions", holders.len());
    holders.first().map(|v| v.version_id.clone())
}

fn assert_err(
    r: Result<impl std::fmt::Debug, RotorError>,
    name: &str,
    contains: &str,
) -> RotorError {
    let e = r.expect_err("expected an error");
    assert_eq!(e.asl_name(), name, "{e}");
    assert!(
        e.to_string().contains(contains),
        "{e:?} does not contain {contains:?}"
    );
    e
}

async fn value_of(store: &LocalStore, id: &str, version: Version) -> (String, String) {
    let (vid, val) = store.get_value(id, &version).await.unwrap();
    (vid, val.expose().to_string())
}

// ---------------------------------------------------------------------------------- opening

#[test]
fn open_creates_a_private_dir_a_wal_database_and_a_master_key() {
    let tmp = TempDir::new();
    let dir = tmp.store_dir().join("nested");
    let store = LocalStore::open(&dir).unwrap();
    assert_eq!(store.dir(), dir);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
    assert_eq!(std::fs::read(dir.join(KEY_FILE)).unwrap().len(), 32);
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, rotor_local_store::SCHEMA_VERSION);
    // no temporary key files left behind
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn reopening_keeps_the_key_and_the_data() {
    let tmp = TempDir::new();
    let dir = tmp.store_dir();
    let key = {
        let store = LocalStore::open(&dir).unwrap();
        store
            .create_secret("app/key", &v("first"), no_tags(), None)
            .unwrap();
        std::fs::read(dir.join(KEY_FILE)).unwrap()
    };
    let store = LocalStore::open(&dir).unwrap();
    assert_eq!(std::fs::read(dir.join(KEY_FILE)).unwrap(), key);
    assert_eq!(
        value_of(&store, "app/key", Version::current()).await.1,
        "first"
    );
}

const EXPECT_DIR_ENV: &str = "ROTOR_LOCAL_STORE_TEST_EXPECT_DIR";

/// Run as a child process (so no test mutates this process's environment).
#[test]
fn child_default_dir() {
    let Ok(expected) = std::env::var(EXPECT_DIR_ENV) else {
        return;
    };
    assert_eq!(default_dir(), PathBuf::from(&expected));
    assert_eq!(resolve_dir(None), PathBuf::from(&expected));
    assert_eq!(resolve_dir(Some(Path::new("flag"))), PathBuf::from("flag"));
}

#[test]
fn the_default_dir_is_dot_rotor_unless_rotor_store_is_set() {
    if std::env::var(EXPECT_DIR_ENV).is_ok() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for (store_env, expected) in [
        (Some("/tmp/elsewhere"), "/tmp/elsewhere"),
        (Some(""), ".rotor"),
        (None, ".rotor"),
    ] {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["--exact", "child_default_dir", "--test-threads", "1"])
            .env(EXPECT_DIR_ENV, expected);
        match store_env {
            Some(v) => cmd.env(STORE_ENV, v),
            None => cmd.env_remove(STORE_ENV),
        };
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "ROTOR_STORE={store_env:?}:\n{stdout}"
        );
    }
}

#[test]
fn a_newer_schema_is_refused_clearly() {
    let tmp = TempDir::new();
    let dir = tmp.store_dir();
    drop(LocalStore::open(&dir).unwrap());
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let e = assert_err(
        LocalStore::open(&dir),
        "Rotor.Internal",
        "schema version 99",
    );
    assert!(e.to_string().contains("newer rotor"), "{e}");
    assert!(
        e.to_string()
            .contains(&dir.join(DB_FILE).display().to_string()),
        "{e}"
    );
}

#[test]
fn a_corrupt_database_is_refused_naming_the_file() {
    let tmp = TempDir::new();
    let dir = tmp.store_dir();
    drop(LocalStore::open(&dir).unwrap());
    for f in ["rotor.db-wal", "rotor.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    std::fs::write(dir.join(DB_FILE), vec![b'x'; 8192]).unwrap();
    let e = assert_err(
        LocalStore::open(&dir),
        "Rotor.Internal",
        &dir.join(DB_FILE).display().to_string(),
    );
    assert!(
        e.to_string().contains("damaged or is not a rotor store"),
        "{e}"
    );
}

#[test]
fn an_unwritable_location_is_refused_naming_the_path() {
    let tmp = TempDir::new();
    // A regular file where a directory should be: no one (not even root) can create below it.
    let file = tmp.0.path().join("a-file");
    std::fs::write(&file, b"not a dir").unwrap();
    let e = assert_err(
        LocalStore::open(&file.join("store")),
        "Rotor.Internal",
        &file.display().to_string(),
    );
    assert!(
        e.to_string()
            .contains("cannot create the local store directory"),
        "{e}"
    );
    let e = assert_err(
        LocalStore::open(&file),
        "Rotor.Internal",
        "is not a directory",
    );
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");
}

#[tokio::test]
async fn a_replaced_or_missing_master_key_is_refused() {
    let tmp = TempDir::new();
    let dir = tmp.store_dir();
    LocalStore::open(&dir)
        .unwrap()
        .create_secret("s", &v("x"), no_tags(), None)
        .unwrap();
    let key = std::fs::read(dir.join(KEY_FILE)).unwrap();
    std::fs::write(dir.join(KEY_FILE), [9u8; 32]).unwrap();
    assert_err(
        LocalStore::open(&dir),
        "Rotor.Internal",
        "does not match the local store database",
    );
    std::fs::write(dir.join(KEY_FILE), &key[..10]).unwrap();
    assert_err(
        LocalStore::open(&dir),
        "Rotor.Internal",
        "is 10 bytes, not 32",
    );
    std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
    assert_err(LocalStore::open(&dir), "Rotor.Internal", "no master key");
    assert!(
        !dir.join(KEY_FILE).exists(),
        "a missing key must not be silently replaced"
    );
    std::fs::write(dir.join(KEY_FILE), &key).unwrap();
    let store = LocalStore::open(&dir).unwrap();
    assert_eq!(value_of(&store, "s", Version::current()).await.1, "x");
}

// ---------------------------------------------------------------------------------- secrets

#[tokio::test]
async fn create_secret_puts_awscurrent_on_the_first_version() {
    let (_t, store) = new_store();
    let tags = BTreeMap::from([("rotor:kind".to_string(), "generated".to_string())]);
    let vid = store
        .create_secret(
            "app/db-password",
            &v("hunter2"),
            tags.clone(),
            Some("the db".into()),
        )
        .unwrap();
    let info = store.describe("app/db-password").await.unwrap();
    assert_eq!(info.id, "app/db-password");
    assert_eq!(info.tags, tags);
    assert_eq!(info.description.as_deref(), Some("the db"));
    assert_eq!(info.versions.len(), 1);
    assert_eq!(info.versions[0].version_id, vid);
    assert_eq!(info.versions[0].stages, vec![AWSCURRENT.to_string()]);
    chrono::DateTime::parse_from_rfc3339(&info.versions[0].created_at)
        .expect("created_at is RFC 3339");
    assert_eq!(
        value_of(&store, "app/db-password", Version::current()).await,
        (vid.clone(), "hunter2".into())
    );
    assert_eq!(
        value_of(&store, "app/db-password", Version::Id(vid.clone()))
            .await
            .1,
        "hunter2"
    );
    assert_err(
        store.create_secret("app/db-password", &v("other"), no_tags(), None),
        "Input.Invalid",
        "already exists",
    );
    // the failed create changed nothing
    assert_eq!(store.describe("app/db-password").await.unwrap(), info);
}

#[test]
fn secret_ids_follow_secrets_manager_rules() {
    let (_t, store) = new_store();
    let longest = "a".repeat(512);
    for ok in ["A-z0-9/_+=.@-", longest.as_str()] {
        store.create_secret(ok, &v("x"), no_tags(), None).unwrap();
    }
    let too_long = "a".repeat(513);
    for bad in ["", too_long.as_str(), "has space", "hash#", "quote'", "é"] {
        assert_err(
            store.create_secret(bad, &v("x"), no_tags(), None),
            "Input.Invalid",
            "secret id",
        );
    }
    assert_err(
        store.create_secret("empty", &v(""), no_tags(), None),
        "Input.Invalid",
        "empty",
    );
    assert_err(
        store.create_secret("big", &v(&"x".repeat(65_537)), no_tags(), None),
        "Input.Invalid",
        "65536",
    );
    store
        .create_secret("max", &v(&"x".repeat(65_536)), no_tags(), None)
        .unwrap();
}

#[tokio::test]
async fn unknown_secrets_versions_and_stages_are_input_invalid() {
    let (_t, store) = new_store();
    assert_err(
        store.describe("nope").await,
        "Input.Invalid",
        "secret nope does not exist",
    );
    assert_err(
        store.get_value("nope", &Version::current()).await,
        "Input.Invalid",
        "secret nope does not exist",
    );
    assert_err(
        store.put_pending("nope", &tok("e"), &v("x")).await,
        "Input.Invalid",
        "secret nope does not exist",
    );
    assert_err(
        store
            .update_stage("nope", AWSPENDING, None, Some("x"))
            .await,
        "Input.Invalid",
        "secret nope does not exist",
    );
    store.create_secret("s", &v("x"), no_tags(), None).unwrap();
    assert_err(
        store.get_value("s", &Version::pending()).await,
        "Input.Invalid",
        "AWSPENDING",
    );
    assert_err(
        store.get_value("s", &Version::Id("v-missing".into())).await,
        "Input.Invalid",
        "no version v-missing",
    );
}

#[tokio::test]
async fn put_pending_uses_the_token_as_version_id_and_is_idempotent() {
    let (_t, store) = new_store();
    let v1 = store
        .create_secret("s", &v("old"), no_tags(), None)
        .unwrap();
    let t = tok("exec-1");
    assert_eq!(store.put_pending("s", &t, &v("new")).await.unwrap(), t);
    let before = store.describe("s").await.unwrap();
    assert_eq!(stages_of(&before, &t), vec![AWSPENDING]);
    assert_eq!(stages_of(&before, &v1), vec![AWSCURRENT]);
    assert_eq!(
        value_of(&store, "s", Version::pending()).await,
        (t.clone(), "new".into())
    );

    // same token, same value: nothing changes
    assert_eq!(store.put_pending("s", &t, &v("new")).await.unwrap(), t);
    assert_eq!(store.describe("s").await.unwrap(), before);

    // same token, another value: ResourceExistsException, nothing changes
    let e = assert_err(
        store.put_pending("s", &t, &v("different")).await,
        "Input.Invalid",
        &format!("a version with ClientRequestToken {t} already exists with a different value"),
    );
    assert!(e.to_string().contains("ResourceExistsException"));
    assert!(
        !e.to_string().contains("different\"") && !e.to_string().contains("new"),
        "no value in {e}"
    );
    assert_eq!(store.describe("s").await.unwrap(), before);
    assert_eq!(value_of(&store, "s", Version::Id(t.clone())).await.1, "new");

    // same token after the label moved on: still a no-op (labels untouched, as on AWS)
    store
        .update_stage("s", AWSPENDING, None, Some(&t))
        .await
        .unwrap();
    let unlabelled = store.describe("s").await.unwrap();
    assert_eq!(store.put_pending("s", &t, &v("new")).await.unwrap(), t);
    assert_eq!(store.describe("s").await.unwrap(), unlabelled);
}

#[tokio::test]
async fn put_pending_refuses_bad_values_and_tokens() {
    let (_t, store) = new_store();
    store
        .create_secret("s", &v("old"), no_tags(), None)
        .unwrap();
    let max = "x".repeat(65_536);
    let t = tok("max");
    assert_eq!(store.put_pending("s", &t, &v(&max)).await.unwrap(), t);
    assert_eq!(
        value_of(&store, "s", Version::pending()).await.1.len(),
        65_536
    );
    let e = assert_err(
        store
            .put_pending("s", &tok("over"), &v(&"x".repeat(65_537)))
            .await,
        "Candidate.Invalid",
        "65537 bytes",
    );
    assert!(e.to_string().contains("65536"));
    assert_err(
        store.put_pending("s", &tok("empty"), &v("")).await,
        "Candidate.Invalid",
        "empty",
    );
    assert_err(
        store.put_pending("s", "short", &v("x")).await,
        "Input.Invalid",
        "32 to 64",
    );
    assert_err(
        store.put_pending("s", &"t".repeat(65), &v("x")).await,
        "Input.Invalid",
        "32 to 64",
    );
    // none of the refused calls left a version
    assert_eq!(store.describe("s").await.unwrap().versions.len(), 2);
}

#[tokio::test]
async fn put_pending_refuses_while_another_version_is_pending() {
    // AWS would move AWSPENDING to the new version; rotor refuses in the same transaction so
    // that two racing rotations cannot both stage.
    let (_t, store) = new_store();
    store
        .create_secret("s", &v("old"), no_tags(), None)
        .unwrap();
    let a = store.put_pending("s", &tok("a"), &v("A")).await.unwrap();
    let e = store
        .put_pending("s", &tok("b"), &v("B"))
        .await
        .unwrap_err();
    assert_eq!(e.asl_name(), "Rotation.InProgress", "{e}");
    let info = store.describe("s").await.unwrap();
    assert_eq!(holder(&info, AWSPENDING), Some(a.clone()));
    assert_eq!(
        info.versions.len(),
        2,
        "no version was written for the refused candidate"
    );
    assert_eq!(
        store.put_pending("s", &tok("a"), &v("A")).await.unwrap(),
        a,
        "the holder's own retry is still a no-op"
    );
}

#[tokio::test]
async fn awsprevious_follows_awscurrent() {
    let (_t, store) = new_store();
    let v1 = store
        .create_secret("s", &v("one"), no_tags(), None)
        .unwrap();
    let v2 = store
        .put_pending("s", &tok("two"), &v("two"))
        .await
        .unwrap();
    store
        .update_stage("s", AWSCURRENT, Some(&v2), Some(&v1))
        .await
        .unwrap();
    let info = store.describe("s").await.unwrap();
    assert_eq!(stages_of(&info, &v1), vec![AWSPREVIOUS]);
    assert_eq!(stages_of(&info, &v2), vec![AWSCURRENT, AWSPENDING]);
    store
        .update_stage("s", AWSPENDING, None, Some(&v2))
        .await
        .unwrap();

    let v3 = store
        .put_pending("s", &tok("three"), &v("three"))
        .await
        .unwrap();
    store
        .update_stage("s", AWSCURRENT, Some(&v3), Some(&v2))
        .await
        .unwrap();
    store
        .update_stage("s", AWSPENDING, None, Some(&v3))
        .await
        .unwrap();
    let info = store.describe("s").await.unwrap();
    assert_eq!(stages_of(&info, &v3), vec![AWSCURRENT]);
    assert_eq!(stages_of(&info, &v2), vec![AWSPREVIOUS]);
    assert!(
        stages_of(&info, &v1).is_empty(),
        "AWSPREVIOUS left v1; v1 stays, deprecated"
    );
    assert_eq!(
        info.versions
            .iter()
            .map(|x| x.version_id.clone())
            .collect::<Vec<_>>(),
        vec![v1.clone(), v2.clone(), v3.clone()]
    );
    assert_eq!(value_of(&store, "s", Version::Id(v1)).await.1, "one");
    assert_eq!(
        value_of(&store, "s", Version::Stage(AWSPREVIOUS.into())).await,
        (v2.clone(), "two".into())
    );

    // revert: AWSCURRENT back onto the AWSPREVIOUS version swaps the two
    store
        .update_stage("s", AWSCURRENT, Some(&v2), Some(&v3))
        .await
        .unwrap();
    let info = store.describe("s").await.unwrap();
    assert_eq!(stages_of(&info, &v2), vec![AWSCURRENT]);
    assert_eq!(stages_of(&info, &v3), vec![AWSPREVIOUS]);
}

#[tokio::test]
async fn moving_a_label_to_a_missing_version_changes_nothing() {
    let (_t, store) = new_store();
    let v1 = store
        .create_secret("s", &v("one"), no_tags(), None)
        .unwrap();
    let v2 = store
        .put_pending("s", &tok("two"), &v("two"))
        .await
        .unwrap();
    let before = store.describe("s").await.unwrap();
    assert_err(
        store
            .update_stage("s", AWSCURRENT, Some("missing"), Some(&v1))
            .await,
        "Input.Invalid",
        "no version missing",
    );
    assert_err(
        store
            .update_stage("s", AWSCURRENT, Some(&v2), Some("missing"))
            .await,
        "Input.Invalid",
        "no version missing",
    );
    assert_err(
        store
            .update_stage("s", AWSPENDING, Some("missing"), Some(&v2))
            .await,
        "Input.Invalid",
        "no label changed",
    );
    assert_eq!(store.describe("s").await.unwrap(), before);
}

#[tokio::test]
async fn removing_a_label_from_the_wrong_version_fails() {
    let (_t, store) = new_store();
    let v1 = store
        .create_secret("s", &v("one"), no_tags(), None)
        .unwrap();
    let v2 = store
        .put_pending("s", &tok("two"), &v("two"))
        .await
        .unwrap();
    let before = store.describe("s").await.unwrap();
    // remove AWSPENDING from v1, where it is not
    let e = assert_err(
        store.update_stage("s", AWSPENDING, None, Some(&v1)).await,
        "Input.Invalid",
        "InvalidParameterException",
    );
    assert!(
        e.to_string().contains(&format!("it is on version {v2}")),
        "{e}"
    );
    // move AWSCURRENT naming the wrong origin
    assert_err(
        store
            .update_stage("s", AWSCURRENT, Some(&v2), Some(&v2))
            .await,
        "Input.Invalid",
        "not on version",
    );
    // move AWSCURRENT without saying where it is
    assert_err(
        store.update_stage("s", AWSCURRENT, Some(&v2), None).await,
        "Input.Invalid",
        "needs RemoveFromVersionId",
    );
    // AWSCURRENT can only move
    assert_err(
        store.update_stage("s", AWSCURRENT, None, Some(&v1)).await,
        "Input.Invalid",
        "can't be completely removed",
    );
    // a label on no version cannot be removed from one
    assert_err(
        store.update_stage("s", "CUSTOM", None, Some(&v1)).await,
        "Input.Invalid",
        "it is on no version",
    );
    assert_err(
        store
            .update_stage("s", "CUSTOM", Some(&v2), Some(&v1))
            .await,
        "Input.Invalid",
        "it is on no version",
    );
    // neither target
    assert_err(
        store.update_stage("s", "CUSTOM", None, None).await,
        "Input.Invalid",
        "MoveToVersionId",
    );
    assert_err(
        store.update_stage("s", "", Some(&v1), None).await,
        "Input.Invalid",
        "staging label",
    );
    assert_eq!(store.describe("s").await.unwrap(), before);

    // already where asked: a no-op, with or without naming it
    store
        .update_stage("s", AWSCURRENT, Some(&v1), None)
        .await
        .unwrap();
    store
        .update_stage("s", AWSCURRENT, Some(&v1), Some(&v1))
        .await
        .unwrap();
    assert_eq!(store.describe("s").await.unwrap(), before);

    // custom labels move without touching AWSPREVIOUS
    store
        .update_stage("s", "CUSTOM", Some(&v1), None)
        .await
        .unwrap();
    store
        .update_stage("s", "CUSTOM", Some(&v2), Some(&v1))
        .await
        .unwrap();
    let info = store.describe("s").await.unwrap();
    assert_eq!(
        stages_of(&info, &v2),
        vec![AWSPENDING.to_string(), "CUSTOM".to_string()]
    );
    assert_eq!(holder(&info, AWSPREVIOUS), None);
    store
        .update_stage("s", "CUSTOM", None, Some(&v2))
        .await
        .unwrap();
    assert_eq!(store.describe("s").await.unwrap(), before);
}

#[tokio::test]
async fn a_version_carries_at_most_twenty_labels() {
    let (_t, store) = new_store();
    let v1 = store
        .create_secret("s", &v("one"), no_tags(), None)
        .unwrap();
    for i in 1..20 {
        store
            .update_stage("s", &format!("L{i}"), Some(&v1), None)
            .await
            .unwrap();
    }
    assert_eq!(
        stages_of(&store.describe("s").await.unwrap(), &v1).len(),
        20
    );
    assert_err(
        store.update_stage("s", "L20", Some(&v1), None).await,
        "Input.Invalid",
        "LimitExceededException",
    );
    assert_eq!(
        stages_of(&store.describe("s").await.unwrap(), &v1).len(),
        20
    );
}

#[tokio::test]
async fn tags_list_and_delete() {
    let (_t, store) = new_store();
    store
        .create_secret(
            "b",
            &v("x"),
            BTreeMap::from([("k1".into(), "v1".into())]),
            None,
        )
        .unwrap();
    store
        .create_secret(
            "a",
            &v("x"),
            BTreeMap::from([("gone".into(), "soon".into())]),
            None,
        )
        .unwrap();
    store
        .put_pending("a", &tok("a-pending"), &v("y"))
        .await
        .unwrap();
    store
        .tag_secret(
            "b",
            &BTreeMap::from([("k1".into(), "new".into()), ("k2".into(), "v2".into())]),
        )
        .unwrap();
    assert_eq!(
        store.describe("b").await.unwrap().tags,
        BTreeMap::from([("k1".into(), "new".into()), ("k2".into(), "v2".into())])
    );
    store.untag_secret("b", ["k1", "not-there"]).unwrap();
    assert_eq!(
        store.describe("b").await.unwrap().tags,
        BTreeMap::from([("k2".into(), "v2".into())])
    );
    assert_err(
        store.tag_secret("b", &BTreeMap::from([("aws:x".into(), "v".into())])),
        "Input.Invalid",
        "reserved",
    );
    assert_err(
        store.tag_secret("b", &BTreeMap::from([("".into(), "v".into())])),
        "Input.Invalid",
        "tag key",
    );
    assert_err(
        store.tag_secret("b", &BTreeMap::from([("k".into(), "v".repeat(257))])),
        "Input.Invalid",
        "256",
    );
    let many: BTreeMap<String, String> = (0..49).map(|i| (format!("t{i}"), "v".into())).collect();
    store.tag_secret("b", &many).unwrap(); // 50 in all
    assert_err(
        store.tag_secret("b", &BTreeMap::from([("one-more".into(), "v".into())])),
        "Input.Invalid",
        "at most 50",
    );
    assert_eq!(store.describe("b").await.unwrap().tags.len(), 50);
    assert_err(
        store.tag_secret("nope", &no_tags()),
        "Input.Invalid",
        "secret nope does not exist",
    );
    assert_err(
        store.untag_secret("nope", ["k"]),
        "Input.Invalid",
        "secret nope does not exist",
    );

    let listed: Vec<_> = store
        .list_secrets()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec!["a", "b"]);
    store.delete_secret("a").unwrap();
    assert_err(
        store.describe("a").await,
        "Input.Invalid",
        "secret a does not exist",
    );
    assert_err(
        store.delete_secret("a"),
        "Input.Invalid",
        "secret a does not exist",
    );
    assert_eq!(store.list_secrets().unwrap().len(), 1);
    // the id can be used again
    store
        .create_secret("a", &v("again"), no_tags(), None)
        .unwrap();
    assert_eq!(value_of(&store, "a", Version::current()).await.1, "again");
    let again = store.describe("a").await.unwrap();
    assert_eq!(
        again.versions.len(),
        1,
        "the old versions went with the secret"
    );
    assert!(again.tags.is_empty(), "the old tags went with the secret");
    assert_err(
        store.get_value("a", &Version::Id(tok("a-pending"))).await,
        "Input.Invalid",
        "no version",
    );
}

#[tokio::test]
async fn a_sealed_value_copied_to_another_row_does_not_decrypt() {
    let (t, store) = new_store();
    let va = store
        .create_secret("a", &v("value-of-a"), no_tags(), None)
        .unwrap();
    let vb = store
        .create_secret("b", &v("value-of-b"), no_tags(), None)
        .unwrap();
    let conn = rusqlite::Connection::open(t.store_dir().join(DB_FILE)).unwrap();
    conn.execute(
        "UPDATE versions SET sealed = (SELECT sealed FROM versions WHERE secret_id = 'a') WHERE secret_id = 'b'",
        [],
    )
    .unwrap();
    let e = assert_err(
        store.get_value("b", &Version::Id(vb)).await,
        "Rotor.Internal",
        "does not decrypt",
    );
    assert!(!e.to_string().contains("value-of"), "{e}");
    assert_eq!(value_of(&store, "a", Version::Id(va)).await.1, "value-of-a");
}

// ---------------------------------------------------------------------------------- KMS

#[tokio::test]
async fn kms_round_trips_under_the_same_context_only() {
    let (_t, store) = new_store();
    let ctx = candidate_context("app/key");
    let blob = store.encrypt(&v("sk-live-candidate"), &ctx).await.unwrap();
    assert!(
        !blob.windows(7).any(|w| w == b"sk-live"),
        "the blob holds no plaintext"
    );
    assert_eq!(
        store.decrypt(&blob, &ctx).await.unwrap().expose(),
        "sk-live-candidate"
    );
    // a context built in another order is the same context
    let mut reordered = BTreeMap::new();
    reordered.insert("SecretId".to_string(), "app/key".to_string());
    assert_eq!(
        store.decrypt(&blob, &reordered).await.unwrap().expose(),
        "sk-live-candidate"
    );

    const MSG: &str =
        "the candidate's ciphertext does not decrypt under this secret's encryption context";
    let wrong = [candidate_context("app/other"), BTreeMap::new(), {
        let mut c = ctx.clone();
        c.insert("Extra".into(), "1".into());
        c
    }];
    for c in &wrong {
        let e = assert_err(store.decrypt(&blob, c).await, "Candidate.Invalid", MSG);
        assert_eq!(e.to_string(), MSG);
    }
    let mut tampered = blob.clone();
    tampered[20] ^= 0x01;
    assert_err(
        store.decrypt(&tampered, &ctx).await,
        "Candidate.Invalid",
        MSG,
    );
    assert_err(
        store.decrypt(&blob[..blob.len() - 1], &ctx).await,
        "Candidate.Invalid",
        MSG,
    );
    assert_err(store.decrypt(b"", &ctx).await, "Candidate.Invalid", MSG);
    assert_err(
        store
            .decrypt(b"not a kms blob at all, just bytes", &ctx)
            .await,
        "Candidate.Invalid",
        MSG,
    );
    // a blob from another store (another master key)
    let (_t2, other) = new_store();
    let foreign = other.encrypt(&v("sk-live-candidate"), &ctx).await.unwrap();
    assert_err(
        store.decrypt(&foreign, &ctx).await,
        "Candidate.Invalid",
        MSG,
    );
    // two encryptions differ (fresh nonce)
    assert_ne!(
        store.encrypt(&v("same"), &ctx).await.unwrap(),
        store.encrypt(&v("same"), &ctx).await.unwrap()
    );
    // KMS Encrypt's plaintext limit
    assert_err(
        store.encrypt(&v(""), &ctx).await,
        "Input.Invalid",
        "1 to 4096",
    );
    assert_err(
        store.encrypt(&v(&"x".repeat(4097)), &ctx).await,
        "Input.Invalid",
        "1 to 4096",
    );
    store.encrypt(&v(&"x".repeat(4096)), &ctx).await.unwrap();
}

// ---------------------------------------------------------------------------------- IAM

#[tokio::test]
async fn iam_allows_two_keys_per_user() {
    let (_t, store) = new_store();
    assert_err(
        store.create_access_key("alice").await,
        "Input.Invalid",
        "IAM user alice does not exist",
    );
    assert_err(
        store.list_access_keys("alice").await,
        "Input.Invalid",
        "does not exist",
    );
    store.create_user("alice").unwrap();
    store.create_user("alice").unwrap(); // idempotent
    assert_err(
        store.create_user("bad name"),
        "Input.Invalid",
        "IAM user name",
    );
    assert!(store.list_access_keys("alice").await.unwrap().is_empty());

    let k1 = store.create_access_key("alice").await.unwrap();
    let k2 = store.create_access_key("alice").await.unwrap();
    for k in [&k1, &k2] {
        assert_eq!(k.access_key_id.len(), 20);
        assert!(k.access_key_id.starts_with("AKIA"));
        assert!(
            k.access_key_id[4..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
            "{}",
            k.access_key_id
        );
        assert_eq!(k.secret_access_key.len(), 40);
    }
    assert_ne!(k1.access_key_id, k2.access_key_id);
    let e = assert_err(
        store.create_access_key("alice").await,
        "Rotation.KeyLimit",
        "user alice already has 2 access keys (LimitExceeded)",
    );
    assert!(matches!(e, RotorError::KeyLimit(_)));

    let listed = store.list_access_keys("alice").await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|k| k.access_key_id.clone())
            .collect::<Vec<_>>(),
        vec![k1.access_key_id.clone(), k2.access_key_id.clone()]
    );
    assert!(listed.iter().all(|k| k.status == "Active"));
    // IAM user names are case-insensitive
    assert_eq!(store.list_access_keys("ALICE").await.unwrap().len(), 2);

    store
        .set_access_key_active("alice", &k1.access_key_id, false)
        .await
        .unwrap();
    let listed = store.list_access_keys("alice").await.unwrap();
    assert_eq!(listed[0].status, "Inactive");
    assert_eq!(listed[1].status, "Active");
    store
        .set_access_key_active("alice", &k1.access_key_id, true)
        .await
        .unwrap();
    assert_eq!(
        store.list_access_keys("alice").await.unwrap()[0].status,
        "Active"
    );

    store.create_user("bob").unwrap();
    assert_err(
        store
            .set_access_key_active("bob", &k1.access_key_id, false)
            .await,
        "Input.Invalid",
        "has no access key",
    );
    assert_err(
        store.delete_access_key("bob", &k1.access_key_id).await,
        "Input.Invalid",
        "has no access key",
    );
    assert_err(
        store
            .delete_access_key("alice", "AKIA0000000000000000")
            .await,
        "Input.Invalid",
        "has no access key",
    );

    store
        .delete_access_key("alice", &k1.access_key_id)
        .await
        .unwrap();
    assert_eq!(store.list_access_keys("alice").await.unwrap().len(), 1);
    store.create_access_key("alice").await.unwrap();
    assert_eq!(store.list_access_keys("alice").await.unwrap().len(), 2);
}

#[tokio::test]
async fn iam_last_used_and_authentication() {
    let (_t, store) = new_store();
    store.create_user("svc").unwrap();
    let k = store.create_access_key("svc").await.unwrap();
    assert_eq!(
        store.access_key_last_used(&k.access_key_id).await.unwrap(),
        None
    );
    assert_err(
        store.access_key_last_used("AKIA0000000000000000").await,
        "Input.Invalid",
        "does not exist",
    );
    assert_err(
        store.record_key_use("AKIA0000000000000000"),
        "Input.Invalid",
        "does not exist",
    );

    let at = chrono::DateTime::parse_from_rfc3339("2030-01-02T03:04:05.678Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    store.record_key_use_at(&k.access_key_id, at).unwrap();
    assert_eq!(
        store.access_key_last_used(&k.access_key_id).await.unwrap(),
        Some(at)
    );
    store.record_key_use(&k.access_key_id).unwrap();
    assert!(
        store
            .access_key_last_used(&k.access_key_id)
            .await
            .unwrap()
            .unwrap()
            < at
    );

    assert_eq!(
        store
            .authenticate(&k.access_key_id, &k.secret_access_key)
            .unwrap(),
        "svc"
    );
    let wrong = SecretValue::new("x".repeat(40));
    assert_err(
        store.authenticate(&k.access_key_id, &wrong),
        "Probe.Rejected",
        "SignatureDoesNotMatch",
    );
    assert_err(
        store.authenticate("AKIA0000000000000000", &wrong),
        "Probe.Rejected",
        "InvalidClientTokenId",
    );
    store
        .set_access_key_active("svc", &k.access_key_id, false)
        .await
        .unwrap();
    assert_err(
        store.authenticate(&k.access_key_id, &k.secret_access_key),
        "Probe.Rejected",
        "InvalidClientTokenId",
    );
}

// ---------------------------------------------------------------------------------- audit

fn audit(execution_id: &str, secret: &str, started: &str, outcome: &str) -> AuditRecord {
    AuditRecord {
        execution_id: execution_id.into(),
        secret_id: secret.into(),
        kind: Some("generated".into()),
        action: "rotate".into(),
        requested_by: Some("me".into()),
        reason: None,
        old_version_id: Some("v1".into()),
        new_version_id: None,
        outcome: outcome.into(),
        error: None,
        started_at: started.into(),
        finished_at: started.into(),
        iam: None,
        recovery: None,
    }
}

#[tokio::test]
async fn audit_records_are_upserted_per_execution() {
    let (_t, store) = new_store();
    let first = audit("e2", "s", "2030-01-01T00:00:02.000Z", "abandoned");
    store.record(&first).await.unwrap();
    store.record(&first).await.unwrap();
    let mut again = first.clone();
    again.outcome = "rotated".into();
    again.new_version_id = Some("v2".into());
    store.record(&again).await.unwrap();
    store
        .record(&audit("e1", "s", "2030-01-01T00:00:01.000Z", "rotated"))
        .await
        .unwrap();
    store
        .record(&audit("e3", "other", "2030-01-01T00:00:00.000Z", "refused"))
        .await
        .unwrap();

    let all = store.audit_records(None).unwrap();
    assert_eq!(
        all.iter()
            .map(|r| r.execution_id.as_str())
            .collect::<Vec<_>>(),
        vec!["e3", "e1", "e2"]
    );
    let of_s = store.audit_records(Some("s")).unwrap();
    assert_eq!(of_s.len(), 2);
    assert_eq!(of_s[1], again, "the latest record of an execution wins");
    assert!(store.audit_records(Some("none")).unwrap().is_empty());
    assert_err(
        store.record(&audit("", "s", "x", "rotated")).await,
        "Input.Invalid",
        "execution_id",
    );
}

#[tokio::test]
async fn metrics_are_appended() {
    let (_t, store) = new_store();
    let m = |name: &str, value: f64| Metric {
        name: name.into(),
        value,
        unit: "Count".into(),
        dimensions: BTreeMap::from([("SecretId".into(), "s".into())]),
        timestamp: "2030-01-01T00:00:00.000Z".into(),
    };
    store.metric(&m("RotationSucceeded", 1.0)).await.unwrap();
    store.metric(&m("RotationDuration", 2.5)).await.unwrap();
    store.metric(&m("RotationSucceeded", 1.0)).await.unwrap();
    assert_eq!(store.metrics(None).unwrap().len(), 3);
    let ok = store.metrics(Some("RotationSucceeded")).unwrap();
    assert_eq!(
        ok,
        vec![m("RotationSucceeded", 1.0), m("RotationSucceeded", 1.0)]
    );
    assert_eq!(
        store.metrics(Some("RotationDuration")).unwrap()[0].value,
        2.5
    );
    assert_err(
        store.metric(&m("Bad", f64::NAN)).await,
        "Input.Invalid",
        "finite",
    );
}

#[test]
fn executions_are_saved_loaded_and_listed() {
    let (_t, store) = new_store();
    let exec = |id: &str, secret: &str, started: &str| ExecutionRecord {
        execution_id: id.into(),
        name: format!("rotate-{id}"),
        secret_id: secret.into(),
        action: "rotate".into(),
        status: "RUNNING".into(),
        started_at: started.into(),
        finished_at: None,
        input: serde_json::json!({"secret_id": secret, "action": "rotate"}),
        output: None,
        error: None,
        cause: None,
        events: vec![serde_json::json!({"id": 1, "type": "ExecutionStarted"})],
    };
    let mut a = exec("x2", "s", "2030-01-01T00:00:02.000Z");
    store.save_execution(&a).unwrap();
    store
        .save_execution(&exec("x1", "s", "2030-01-01T00:00:01.000Z"))
        .unwrap();
    store
        .save_execution(&exec("x3", "t", "2030-01-01T00:00:03.000Z"))
        .unwrap();
    a.status = "SUCCEEDED".into();
    a.finished_at = Some("2030-01-01T00:00:09.000Z".into());
    a.output = Some(serde_json::json!({"ok": true}));
    a.events
        .push(serde_json::json!({"id": 2, "type": "ExecutionSucceeded"}));
    store.save_execution(&a).unwrap();

    assert_eq!(store.load_execution("x2").unwrap(), Some(a.clone()));
    assert_eq!(store.load_execution("missing").unwrap(), None);
    let all = store.list_executions(None).unwrap();
    assert_eq!(
        all.iter()
            .map(|e| e.execution_id.as_str())
            .collect::<Vec<_>>(),
        vec!["x1", "x2", "x3"]
    );
    assert_eq!(store.list_executions(Some("s")).unwrap().len(), 2);
    // serde shape: every field, by name
    let json = serde_json::to_value(&a).unwrap();
    for field in [
        "execution_id",
        "name",
        "secret_id",
        "action",
        "status",
        "started_at",
        "finished_at",
        "input",
        "output",
        "error",
        "cause",
        "events",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
}

// ---------------------------------------------------------------------------------- at rest

fn files_containing(dir: &Path, needle: &[u8]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut hits = vec![];
    let mut seen = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.clone());
            }
            seen.push(path);
        }
    }
    (hits, seen)
}

#[tokio::test]
async fn no_plaintext_value_reaches_any_file() {
    let tmp = TempDir::new();
    let dir = tmp.store_dir();
    let marker = format!("PLAINTEXT-MARKER-{}", uuid::Uuid::new_v4().simple());
    let iam_secret;
    {
        let store = LocalStore::open(&dir).unwrap();
        let v1 = store
            .create_secret(
                "app/key",
                &v(&format!("{marker}-current")),
                BTreeMap::from([("rotor:kind".into(), "vendor-api-key".into())]),
                None,
            )
            .unwrap();
        let t = tok("exec-marker");
        store
            .put_pending("app/key", &t, &v(&format!("{marker}-pending")))
            .await
            .unwrap();
        store
            .put_pending("app/key", &t, &v(&format!("{marker}-pending")))
            .await
            .unwrap();
        assert!(store
            .put_pending("app/key", &t, &v(&format!("{marker}-other")))
            .await
            .is_err());
        store
            .update_stage("app/key", AWSCURRENT, Some(&t), Some(&v1))
            .await
            .unwrap();
        store
            .update_stage("app/key", AWSPENDING, None, Some(&t))
            .await
            .unwrap();
        let t2 = tok("exec-marker-2");
        store
            .put_pending("app/key", &t2, &v(&format!("{marker}-second")))
            .await
            .unwrap();
        assert!(value_of(&store, "app/key", Version::current())
            .await
            .1
            .starts_with(&marker));
        let blob = store
            .encrypt(&v(&format!("{marker}-kms")), &candidate_context("app/key"))
            .await
            .unwrap();
        assert!(!blob.windows(marker.len()).any(|w| w == marker.as_bytes()));
        store.create_user("svc").unwrap();
        let key = store.create_access_key("svc").await.unwrap();
        iam_secret = key.secret_access_key.expose().to_string();
        store
            .authenticate(&key.access_key_id, &key.secret_access_key)
            .unwrap();
        store
            .record(&audit(
                "exec-marker",
                "app/key",
                "2030-01-01T00:00:00.000Z",
                "rotated",
            ))
            .await
            .unwrap();

        // While open: the WAL holds the recent writes; it must hold no value either.
        let (hits, seen) = files_containing(&dir, marker.as_bytes());
        assert!(
            seen.iter().any(|p| p.ends_with("rotor.db-wal")),
            "the WAL was checked: {seen:?}"
        );
        assert!(
            seen.iter().any(|p| p.ends_with("rotor.db-shm")),
            "the shm was checked: {seen:?}"
        );
        assert!(hits.is_empty(), "plaintext marker found in {hits:?}");
        let (hits, _) = files_containing(&dir, iam_secret.as_bytes());
        assert!(hits.is_empty(), "IAM secret access key found in {hits:?}");
    }
    // After close (checkpointed into rotor.db).
    let (hits, seen) = files_containing(&dir, marker.as_bytes());
    assert!(seen.iter().any(|p| p.ends_with(DB_FILE)));
    assert!(hits.is_empty(), "plaintext marker found in {hits:?}");
    let (hits, _) = files_containing(&dir, iam_secret.as_bytes());
    assert!(hits.is_empty(), "IAM secret access key found in {hits:?}");
    // and the values are all still there
    let store = LocalStore::open(&dir).unwrap();
    assert_eq!(
        value_of(&store, "app/key", Version::pending()).await.1,
        format!("{marker}-second")
    );
}

// ---------------------------------------------------------------------------------- concurrency

/// What one worker (a thread with its own store, or a child process) does on a shared store:
/// create a distinct secret, race to create the shared one, stage candidates on it under its
/// own tokens, and race to promote them. Every error must be a clean, expected refusal.
fn worker(dir: &Path, worker_id: &str, rounds: usize) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store =
            LocalStore::open(dir).unwrap_or_else(|e| panic!("worker {worker_id}: open: {e}"));
        let mut refusals = vec![];
        store
            .create_secret(
                &format!("own/{worker_id}"),
                &v(&format!("own-{worker_id}")),
                no_tags(),
                None,
            )
            .unwrap();
        match store.create_secret("shared", &v("initial"), no_tags(), None) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.asl_name(), "Input.Invalid", "{e}");
                assert!(e.to_string().contains("already exists"), "{e}");
            }
        }
        for round in 0..rounds {
            let token = tok(&format!("{worker_id}-{round}"));
            let value = format!("value-{worker_id}-{round}");
            let staged = match store.put_pending("shared", &token, &v(&value)).await {
                Ok(id) => id,
                // another worker may not have created "shared" yet, or holds AWSPENDING
                Err(e)
                    if e.to_string().contains("does not exist")
                        || e.asl_name() == "Rotation.InProgress" =>
                {
                    refusals.push(e.to_string());
                    continue;
                }
                Err(e) => panic!("worker {worker_id}: put_pending: {e}"),
            };
            assert_eq!(staged, token);
            let info = store.describe("shared").await.unwrap();
            let current = holder(&info, AWSCURRENT).expect("one AWSCURRENT");
            match store
                .update_stage("shared", AWSCURRENT, Some(&token), Some(&current))
                .await
            {
                Ok(()) => {}
                Err(e) => {
                    assert_eq!(e.asl_name(), "Input.Invalid", "{e}");
                    assert!(e.to_string().contains("InvalidParameterException"), "{e}");
                    refusals.push(e.to_string());
                }
            }
            if let Err(e) = store
                .update_stage("shared", AWSPENDING, None, Some(&token))
                .await
            {
                assert_eq!(e.asl_name(), "Input.Invalid", "{e}");
                refusals.push(e.to_string());
            }
            assert_eq!(
                value_of(&store, "shared", Version::Id(token)).await.1,
                value
            );
        }
        refusals
    })
}

fn assert_consistent(dir: &Path, workers: &[String], rounds: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = LocalStore::open(dir).unwrap();
        let info = store.describe("shared").await.unwrap();
        let count = |stage: &str| {
            info.versions
                .iter()
                .filter(|v| v.stages.iter().any(|s| s == stage))
                .count()
        };
        assert_eq!(count(AWSCURRENT), 1, "{info:?}");
        assert!(count(AWSPENDING) <= 1, "{info:?}");
        assert!(count(AWSPREVIOUS) <= 1, "{info:?}");
        for w in workers {
            let (_, own) = value_of(&store, &format!("own/{w}"), Version::current()).await;
            assert_eq!(own, format!("own-{w}"));
        }
        // every staged version is there and decrypts to what its worker put
        for version in &info.versions {
            let (_, value) =
                value_of(&store, "shared", Version::Id(version.version_id.clone())).await;
            assert!(value == "initial" || value.starts_with("value-"), "{value}");
        }
        assert!(info.versions.len() <= 1 + workers.len() * rounds);
        assert_eq!(store.list_secrets().unwrap().len(), workers.len() + 1);
    });
}

#[test]
fn many_stores_on_one_dir_serialize_cleanly() {
    let tmp = TempDir::new();
    let dir = tmp.store_dir(); // not created yet: the workers race to create dir, key and db
    const N: usize = 8;
    const ROUNDS: usize = 6;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(N));
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let dir = dir.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                worker(&dir, &format!("t{i}"), ROUNDS)
            })
        })
        .collect();
    let mut refusals = vec![];
    for h in handles {
        refusals.extend(h.join().expect("a worker failed"));
    }
    for r in &refusals {
        assert!(!r.contains("locked") && !r.contains("busy"), "{r}");
    }
    let names: Vec<String> = (0..N).map(|i| format!("t{i}")).collect();
    assert_consistent(&dir, &names, ROUNDS);
}

const CHILD_ENV: &str = "ROTOR_LOCAL_STORE_TEST_CHILD";

/// Run as a child process by `two_processes_at_once`; does nothing in a normal test run.
#[test]
fn child_process_worker() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, id) = spec.split_once('|').unwrap();
    // Start together: wait for the go file the parent writes.
    let go = Path::new(dir).parent().unwrap().join("go");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !go.exists() {
        assert!(std::time::Instant::now() < deadline, "no go signal");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let refusals = worker(Path::new(dir), id, 6);
    for r in &refusals {
        assert!(!r.contains("locked") && !r.contains("busy"), "{r}");
    }
}

#[test]
fn two_processes_at_once() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = TempDir::new();
    let dir = tmp.store_dir();
    let exe = std::env::current_exe().unwrap();
    let ids: Vec<String> = (0..3).map(|i| format!("p{i}")).collect();
    let children: Vec<_> = ids
        .iter()
        .map(|id| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "child_process_worker",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_ENV, format!("{}|{id}", dir.display()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(tmp.0.path().join("go"), b"").unwrap();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "the child ran its worker"
        );
    }
    assert_consistent(&dir, &ids, 6);
}

#[test]
fn the_store_is_clone_send_sync_and_every_port() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<LocalStore>();
    let (_t, store) = new_store();
    let _: std::sync::Arc<dyn SecretStore> = std::sync::Arc::new(store.clone());
    let _: std::sync::Arc<dyn Kms> = std::sync::Arc::new(store.clone());
    let _: std::sync::Arc<dyn Iam> = std::sync::Arc::new(store.clone());
    let _: std::sync::Arc<dyn AuditSink> = std::sync::Arc::new(store);
}
