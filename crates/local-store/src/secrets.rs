//! Secrets Manager: secrets, versions, staging labels, tags.

use crate::crypto::{self, value_aad};
use crate::db::R;
use crate::{not_found, LocalStore};
use async_trait::async_trait;
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::SecretStore;
use rotor_core::secret::{
    SecretInfo, SecretValue, Version, VersionInfo, AWSCURRENT, AWSPENDING, AWSPREVIOUS,
};
use rotor_core::stages::{plan_stage_update, StageChange};
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::BTreeMap;

use rotor_core::limits::{
    validate_secret_id, validate_tags, validate_value, MAX_DESCRIPTION_CHARS, MAX_TAGS,
};

pub(crate) fn require_secret(tx: &Transaction<'_>, id: &str) -> R<()> {
    let found: Option<i64> = tx
        .query_row("SELECT 1 FROM secrets WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    match found {
        Some(_) => Ok(()),
        None => Err(not_found(id).into()),
    }
}

fn no_version(secret_id: &str, version_id: &str) -> RotorError {
    RotorError::input(format!(
        "secret {secret_id} has no version {version_id} (ResourceNotFoundException)"
    ))
}

pub(crate) fn stage_holder(
    tx: &Transaction<'_>,
    secret_id: &str,
    stage: &str,
) -> R<Option<String>> {
    Ok(tx
        .query_row(
            "SELECT version_id FROM stages WHERE secret_id = ?1 AND stage = ?2",
            [secret_id, stage],
            |r| r.get(0),
        )
        .optional()?)
}

fn set_stage(tx: &Transaction<'_>, secret_id: &str, stage: &str, version_id: &str) -> R<()> {
    tx.execute(
        "INSERT INTO stages (secret_id, stage, version_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (secret_id, stage) DO UPDATE SET version_id = excluded.version_id",
        [secret_id, stage, version_id],
    )?;
    Ok(())
}

fn insert_version(
    store: &LocalStore,
    tx: &Transaction<'_>,
    secret_id: &str,
    version_id: &str,
    value: &SecretValue,
) -> R<()> {
    let sealed = store
        .inner
        .keys
        .seal_value(&value_aad(secret_id, version_id), value.expose().as_bytes());
    tx.execute(
        "INSERT INTO versions (secret_id, version_id, sealed, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![secret_id, version_id, sealed, store.now_rfc3339()],
    )?;
    Ok(())
}

/// Opens a stored value. A blob that does not open was altered, moved from another row, or
/// sealed under another master key: never a value in the message.
fn open_value(
    store: &LocalStore,
    secret_id: &str,
    version_id: &str,
    sealed: &[u8],
) -> Result<SecretValue> {
    let damaged = || {
        RotorError::internal(format!(
            "the stored value of secret {secret_id} version {version_id} does not decrypt under {}/master.key: the database row was altered or copied, or the master key replaced",
            store.dir().display()
        ))
    };
    let plain = store
        .inner
        .keys
        .open_value(&value_aad(secret_id, version_id), sealed)
        .ok_or_else(damaged)?;
    match String::from_utf8(plain) {
        Ok(s) => Ok(SecretValue::new(s)),
        Err(e) => {
            crypto::wipe(e.into_bytes());
            Err(damaged())
        }
    }
}

fn load_info(tx: &Transaction<'_>, id: &str) -> R<SecretInfo> {
    let description: Option<Option<String>> = tx
        .query_row("SELECT description FROM secrets WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(description) = description else {
        return Err(not_found(id).into());
    };
    let mut stmt =
        tx.prepare_cached("SELECT key, value FROM secret_tags WHERE secret_id = ?1 ORDER BY key")?;
    let tags = stmt
        .query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
    let mut stmt = tx.prepare_cached(
        "SELECT v.version_id, v.created_at, s.stage
         FROM versions v LEFT JOIN stages s ON s.secret_id = v.secret_id AND s.version_id = v.version_id
         WHERE v.secret_id = ?1 ORDER BY v.seq, s.stage",
    )?;
    let mut versions: Vec<VersionInfo> = Vec::new();
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    for row in rows {
        let (version_id, created_at, stage) = row?;
        if versions.last().is_none_or(|v| v.version_id != version_id) {
            versions.push(VersionInfo {
                version_id,
                stages: vec![],
                created_at,
            });
        }
        if let Some(stage) = stage {
            versions
                .last_mut()
                .expect("pushed above")
                .stages
                .push(stage);
        }
    }
    Ok(SecretInfo {
        id: id.to_string(),
        description,
        tags,
        versions,
    })
}

impl LocalStore {
    /// CreateSecret: a new secret whose first version (a random UUID, returned) carries
    /// AWSCURRENT. An existing id, an id Secrets Manager would refuse, an empty or too large
    /// value, or tags AWS would refuse: `Input.Invalid`.
    pub fn create_secret(
        &self,
        id: &str,
        value: &SecretValue,
        tags: BTreeMap<String, String>,
        description: Option<String>,
    ) -> Result<String> {
        validate_secret_id(id)?;
        validate_value(value, RotorError::InputInvalid)?;
        validate_tags(&tags)?;
        if let Some(d) = &description {
            if d.chars().count() > MAX_DESCRIPTION_CHARS {
                return Err(RotorError::input(format!(
                    "a description is at most {MAX_DESCRIPTION_CHARS} characters"
                )));
            }
        }
        let version_id = uuid::Uuid::new_v4().to_string();
        self.write(|tx| {
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM secrets WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            if exists.is_some() {
                return Err(RotorError::input(format!(
                    "secret {id} already exists (ResourceExistsException)"
                ))
                .into());
            }
            tx.execute(
                "INSERT INTO secrets (id, description, created_at) VALUES (?1, ?2, ?3)",
                params![id, description, self.now_rfc3339()],
            )?;
            for (k, v) in &tags {
                tx.execute(
                    "INSERT INTO secret_tags (secret_id, key, value) VALUES (?1, ?2, ?3)",
                    [id, k, v],
                )?;
            }
            insert_version(self, tx, id, &version_id, value)?;
            set_stage(tx, id, AWSCURRENT, &version_id)?;
            Ok(version_id.clone())
        })
    }

    /// ListSecrets: every secret, by id, as [`SecretStore::describe`] shows it.
    pub fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        self.read(|tx| {
            let ids = tx
                .prepare("SELECT id FROM secrets ORDER BY id")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.iter().map(|id| load_info(tx, id)).collect()
        })
    }

    /// TagResource: adds the tags, replacing the values of keys already there.
    pub fn tag_secret(&self, id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        validate_tags(tags)?;
        self.write(|tx| {
            require_secret(tx, id)?;
            for (k, v) in tags {
                tx.execute(
                    "INSERT INTO secret_tags (secret_id, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (secret_id, key) DO UPDATE SET value = excluded.value",
                    [id, k, v],
                )?;
            }
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM secret_tags WHERE secret_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            if n as usize > MAX_TAGS {
                return Err(RotorError::input(format!(
                    "secret {id} would have {n} tags; a secret has at most {MAX_TAGS}"
                ))
                .into());
            }
            Ok(())
        })
    }

    /// UntagResource: removes the keys; keys that are not there are ignored, as on AWS.
    pub fn untag_secret<I, K>(&self, id: &str, keys: I) -> Result<()>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let keys: Vec<K> = keys.into_iter().collect();
        self.write(|tx| {
            require_secret(tx, id)?;
            for k in &keys {
                tx.execute(
                    "DELETE FROM secret_tags WHERE secret_id = ?1 AND key = ?2",
                    [id, k.as_ref()],
                )?;
            }
            Ok(())
        })
    }

    /// DeleteSecret with ForceDeleteWithoutRecovery: the secret, its versions, labels and tags
    /// go at once (audit records and execution histories stay). For tests and demo resets.
    pub fn delete_secret(&self, id: &str) -> Result<()> {
        self.write(|tx| {
            require_secret(tx, id)?;
            tx.execute("DELETE FROM secrets WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    fn describe_sync(&self, id: &str) -> Result<SecretInfo> {
        self.read(|tx| load_info(tx, id))
    }

    fn get_value_sync(&self, id: &str, version: &Version) -> Result<(String, SecretValue)> {
        let (version_id, sealed) = self.read(|tx| {
            require_secret(tx, id)?;
            let row: Option<(String, Vec<u8>)> = match version {
                Version::Stage(stage) => tx
                    .query_row(
                        "SELECT v.version_id, v.sealed FROM stages s
                         JOIN versions v ON v.secret_id = s.secret_id AND v.version_id = s.version_id
                         WHERE s.secret_id = ?1 AND s.stage = ?2",
                        [id, stage],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?,
                Version::Id(version_id) => tx
                    .query_row(
                        "SELECT version_id, sealed FROM versions WHERE secret_id = ?1 AND version_id = ?2",
                        [id, version_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?,
            };
            row.ok_or_else(|| {
                match version {
                    Version::Stage(stage) => {
                        RotorError::input(format!("secret {id} has no version with staging label {stage} (ResourceNotFoundException)"))
                    }
                    Version::Id(v) => no_version(id, v),
                }
                .into()
            })
        })?;
        let value = open_value(self, id, &version_id, &sealed)?;
        Ok((version_id, value))
    }

    fn put_pending_sync(&self, id: &str, token: &str, value: &SecretValue) -> Result<String> {
        rotor_core::limits::validate_client_request_token(token)?;
        validate_value(value, RotorError::CandidateInvalid)?;
        self.write(|tx| {
            require_secret(tx, id)?;
            let existing: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT sealed FROM versions WHERE secret_id = ?1 AND version_id = ?2",
                    [id, token],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(sealed) = existing {
                // Same token: the same value is a no-op (labels untouched, as on AWS); another
                // value is ResourceExistsException.
                let stored = open_value(self, id, token, &sealed)?;
                if stored == *value {
                    return Ok(token.to_string());
                }
                return Err(RotorError::input(format!(
                    "a version with ClientRequestToken {token} already exists with a different value (ResourceExistsException): secret {id}"
                ))
                .into());
            }
            // AWS would move AWSPENDING off another version; rotor refuses instead, in the same
            // transaction as the write, so two rotations racing past stage-pending's check
            // cannot both stage: exactly one wins, the other gets Rotation.InProgress.
            if let Some(holder) = stage_holder(tx, id, AWSPENDING)? {
                return Err(RotorError::InProgress { secret_id: id.to_string(), version_id: holder }.into());
            }
            insert_version(self, tx, id, token, value)?;
            set_stage(tx, id, AWSPENDING, token)?;
            Ok(token.to_string())
        })
    }

    fn update_stage_sync(
        &self,
        id: &str,
        stage: &str,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<()> {
        // Plan by the one set of rules (rotor_core::stages) on what this transaction reads, then
        // write the change in the same transaction.
        self.write(|tx| {
            require_secret(tx, id)?;
            let info = load_info(tx, id)?;
            match plan_stage_update(&info, stage, move_to, remove_from)? {
                StageChange::Nothing => {}
                StageChange::Move { to, from } => {
                    set_stage(tx, id, stage, &to)?;
                    if stage == AWSCURRENT {
                        if let Some(left) = &from {
                            // AWSPREVIOUS follows: onto the version AWSCURRENT left (and so
                            // off wherever it was).
                            set_stage(tx, id, AWSPREVIOUS, left)?;
                        }
                    }
                }
                StageChange::Remove { .. } => {
                    tx.execute(
                        "DELETE FROM stages WHERE secret_id = ?1 AND stage = ?2",
                        [id, stage],
                    )?;
                }
            }
            Ok(())
        })
    }
}

#[async_trait]
impl SecretStore for LocalStore {
    /// DescribeSecret plus ListSecretVersionIds(IncludeDeprecated=true): tags, description and
    /// every version, oldest first, with its labels (a version with none is listed too).
    async fn describe(&self, secret_id: &str) -> Result<SecretInfo> {
        self.describe_sync(secret_id)
    }

    async fn get_value(&self, secret_id: &str, version: &Version) -> Result<(String, SecretValue)> {
        self.get_value_sync(secret_id, version)
    }

    /// PutSecretValue(VersionStages=[AWSPENDING], ClientRequestToken=token). The token (32 to
    /// 64 characters, as on AWS) becomes the version id. Same token and same value: nothing
    /// changes, the version id is returned. Same token, another value: `Input.Invalid`
    /// (ResourceExistsException). An empty value or one over 65,536 bytes: `Candidate.Invalid`.
    /// Where AWS would move AWSPENDING off another version that has it, this refuses with
    /// `Rotation.InProgress` and writes nothing (checked in the write's own transaction, so
    /// two racing rotations cannot both stage), as the port requires: it is never on two
    /// versions, and one rotation never takes over another's candidate.
    async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        value: &SecretValue,
    ) -> Result<String> {
        self.put_pending_sync(secret_id, token, value)
    }

    /// UpdateSecretVersionStage, atomically (on any error no label changes):
    /// * `move_to` must exist; if the label is on another version, `remove_from` must name it;
    ///   if it is on no version, `remove_from` must be `None`; already on `move_to`: no-op.
    /// * Moving AWSCURRENT puts AWSPREVIOUS on the version it left (taking it off where it was).
    /// * `move_to == None` removes the label from `remove_from`, which must carry it;
    ///   AWSCURRENT cannot be removed, only moved.
    /// * A version left with no label stays (AWS deprecates but keeps it): readable by id.
    async fn update_stage(
        &self,
        secret_id: &str,
        stage: &str,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<()> {
        self.update_stage_sync(secret_id, stage, move_to, remove_from)
    }
}
