//! IAM access key rotation, the parts the handlers share: the secret's value
//! (`{"AccessKeyId", "SecretAccessKey", "UserName"}`), staging a new key, proving it with STS,
//! and finding keys by id. Messages carry access key ids and user names, never a secret.

use crate::error::{Result, RotorError};
use crate::events::IamStaged;
use crate::policy::Policy;
use crate::ports::{AccessKeyInfo, Services};
use crate::secret::{SecretInfo, SecretValue, Version};

/// How often staging deletes the orphans of lost CreateAccessKey answers and creates again.
const MAX_CREATE_TRIES: u32 = 3;

/// IAM allows two access keys per user.
pub const MAX_KEYS_PER_USER: usize = 2;

/// The value of an `iam-access-key` secret.
pub struct KeyValue {
    pub access_key_id: String,
    pub secret_access_key: SecretValue,
    pub user_name: Option<String>,
}

impl KeyValue {
    /// Parses a version's value. The message never quotes the value (nor serde's view of it).
    pub fn parse(secret_id: &str, version_id: &str, value: &SecretValue) -> Result<KeyValue> {
        let bad = || {
            RotorError::input(format!(
                "secret {secret_id} version {version_id}: an iam-access-key value must be JSON {{\"AccessKeyId\", \"SecretAccessKey\", \"UserName\"}}"
            ))
        };
        let json: serde_json::Value = serde_json::from_str(value.expose()).map_err(|_| bad())?;
        let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_string);
        let access_key_id = field("AccessKeyId")
            .filter(|s| !s.is_empty())
            .ok_or_else(bad)?;
        let secret_access_key = SecretValue::new(field("SecretAccessKey").ok_or_else(bad)?);
        Ok(KeyValue {
            access_key_id,
            secret_access_key,
            user_name: field("UserName").filter(|s| !s.is_empty()),
        })
    }

    /// The JSON stored as the secret's value.
    pub fn to_value(&self) -> SecretValue {
        let mut map = serde_json::Map::new();
        map.insert("AccessKeyId".into(), self.access_key_id.clone().into());
        map.insert(
            "SecretAccessKey".into(),
            self.secret_access_key.expose().to_string().into(),
        );
        if let Some(u) = &self.user_name {
            map.insert("UserName".into(), u.clone().into());
        }
        SecretValue::new(serde_json::Value::Object(map).to_string())
    }
}

/// The IAM user of the policy (checked present by `Policy::from_tags` for this kind).
pub fn user_of<'a>(secret_id: &str, policy: &'a Policy) -> Result<&'a str> {
    policy.iam_user.as_deref().ok_or_else(|| {
        RotorError::input(format!(
            "secret {secret_id} is an iam-access-key without a rotor:iam-user tag"
        ))
    })
}

/// Reads and parses one version's key.
pub async fn key_of(svc: &Services, secret_id: &str, version_id: &str) -> Result<KeyValue> {
    let (_, value) = svc
        .store
        .get_value(secret_id, &Version::Id(version_id.to_string()))
        .await?;
    KeyValue::parse(secret_id, version_id, &value)
}

pub fn find<'a>(keys: &'a [AccessKeyInfo], access_key_id: &str) -> Option<&'a AccessKeyInfo> {
    keys.iter().find(|k| k.access_key_id == access_key_id)
}

pub fn is_active(key: &AccessKeyInfo) -> bool {
    key.status == "Active"
}

/// What a re-run of stage-pending answers once this execution's version exists: the key ids,
/// read back from the versions (the stale key it may have deleted is known only to the run
/// that deleted it).
pub async fn restaged(
    svc: &Services,
    info: &SecretInfo,
    policy: &Policy,
    token: &str,
    previous: &str,
) -> Result<IamStaged> {
    let user = user_of(&info.id, policy)?.to_string();
    let new = key_of(svc, &info.id, token).await?;
    let old = if previous.is_empty() {
        None
    } else {
        key_of(svc, &info.id, previous)
            .await
            .ok()
            .map(|k| k.access_key_id)
    };
    Ok(IamStaged {
        user,
        old_access_key_id: old,
        new_access_key_id: new.access_key_id,
        deleted_stale_access_key_id: None,
    })
}

/// Makes room for a new key and creates it; writes it as AWSPENDING under `token`.
///
/// * The user already has two keys: an Inactive one that is not AWSCURRENT's is deleted first
///   (and named in the output, so the audit record names it); else an Active one that no
///   version of the secret holds and that was never used (an *orphan*, see below) is deleted
///   the same way; otherwise `Rotation.KeyLimit` and nothing changes. A key any version of the
///   secret holds (not only AWSCURRENT's), or that GetAccessKeyLastUsed shows was used, is
///   never deleted here.
/// * Orphans: a CreateAccessKey whose answer was lost (IAM created the key, the answer never
///   arrived, the SDK retried) or a crash between CreateAccessKey and PutSecretValue leaves an
///   Active key whose secret nobody holds, never used. At the limit it is found as above; and
///   when CreateAccessKey itself meets the limit although there was room (the SDK's retry after
///   a lost answer), the keys that appeared meanwhile, that no version holds and that were
///   never used are deleted and CreateAccessKey is sent again (at most three times: each
///   answer may be lost too).
/// * If writing AWSPENDING fails, the new key is deleted again (best effort) before the error
///   is returned, unless the version `token` exists (the write was applied, its answer lost:
///   the re-run of stage-pending answers it) or the store cannot say (then the key stays; if
///   no version holds it, the re-run finds it as an orphan).
pub async fn stage(
    svc: &Services,
    info: &SecretInfo,
    policy: &Policy,
    token: &str,
    current_version_id: &str,
) -> Result<(String, IamStaged)> {
    let id = &info.id;
    let user = user_of(id, policy)?.to_string();
    let current = key_of(svc, id, current_version_id).await?;
    if let Some(u) = &current.user_name {
        if !u.eq_ignore_ascii_case(&user) {
            return Err(RotorError::input(format!(
                "secret {id}: AWSCURRENT names IAM user {u} but the rotor:iam-user tag says {user}"
            )));
        }
    }
    let keys = svc.iam.list_access_keys(&user).await?;
    if find(&keys, &current.access_key_id).is_none() {
        return Err(RotorError::input(format!(
            "secret {id}: AWSCURRENT holds access key {}, which is not a key of IAM user {user} (keys: {}); nothing was changed",
            current.access_key_id,
            ids(&keys)
        )));
    }
    let mut deleted = Vec::new();
    if keys.len() >= MAX_KEYS_PER_USER {
        let others: Vec<&AccessKeyInfo> = keys
            .iter()
            .filter(|k| k.access_key_id != current.access_key_id)
            .collect();
        let victim = match others.iter().find(|k| !is_active(k)) {
            Some(stale) => Some(stale.access_key_id.clone()),
            None => {
                let held = held_key_ids(svc, info).await?;
                let mut orphan = None;
                for k in others.iter().filter(|k| !held.contains(&k.access_key_id)) {
                    if never_used(svc, &k.access_key_id).await? {
                        orphan = Some(k.access_key_id.clone());
                        break;
                    }
                }
                orphan
            }
        };
        match victim {
            Some(key) => {
                svc.iam.delete_access_key(&user, &key).await?;
                deleted.push(key);
            }
            None => {
                return Err(RotorError::KeyLimit(format!(
                    "IAM user {user} already has {MAX_KEYS_PER_USER} access keys: {} (AWSCURRENT of secret {id}) and {} (Active, held by a version of the secret). rotor deletes only an Inactive key that is not AWSCURRENT, or an Active one no version of the secret holds; deactivate or delete the other key first. Nothing was changed",
                    current.access_key_id,
                    others.iter().map(|k| k.access_key_id.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    // There was room, so a limit met now was met by a key created meanwhile: the key of this
    // call's own lost answer (or a crashed run's). Delete the ones no version holds and try
    // again; bounded, as each try's answer may be lost too.
    let mut tries = 0;
    let created = loop {
        match svc.iam.create_access_key(&user).await {
            Ok(created) => break created,
            Err(RotorError::KeyLimit(limit)) if tries < MAX_CREATE_TRIES => {
                tries += 1;
                let now = svc.iam.list_access_keys(&user).await?;
                let held = held_key_ids(svc, info).await?;
                let mut orphans = Vec::new();
                for k in now
                    .iter()
                    .filter(|k| k.access_key_id != current.access_key_id)
                    .filter(|k| find(&keys, &k.access_key_id).is_none())
                    .filter(|k| !held.contains(&k.access_key_id))
                {
                    if never_used(svc, &k.access_key_id).await? {
                        orphans.push(k.access_key_id.clone());
                    }
                }
                if orphans.is_empty() {
                    return Err(RotorError::KeyLimit(limit));
                }
                for key in orphans {
                    svc.iam.delete_access_key(&user, &key).await?;
                    deleted.push(key);
                }
            }
            Err(e) => return Err(e),
        }
    };
    let value = KeyValue {
        access_key_id: created.access_key_id.clone(),
        secret_access_key: created.secret_access_key.clone(),
        user_name: Some(user.clone()),
    }
    .to_value();
    let version = match svc.store.put_pending(id, token, &value).await {
        Ok(v) => v,
        Err(e) => {
            let applied = match svc.store.describe(id).await {
                Ok(now) => now.versions.iter().any(|v| v.version_id == token),
                Err(_) => true,
            };
            if !applied {
                let _ = svc
                    .iam
                    .delete_access_key(&user, &created.access_key_id)
                    .await;
            }
            return Err(e);
        }
    };
    Ok((
        version,
        IamStaged {
            user,
            old_access_key_id: Some(current.access_key_id),
            new_access_key_id: created.access_key_id,
            // At most one key is deleted to make room, and at most one orphan of a lost
            // CreateAccessKey answer after it (the user has two keys at most): both only when an
            // Inactive key was deleted first and the create's answer was then lost; the output
            // names the first.
            deleted_stale_access_key_id: deleted.into_iter().next(),
        },
    ))
}

/// Whether GetAccessKeyLastUsed says the key was never used: nobody holds its secret (a key
/// someone made by hand and uses is never taken for an orphan).
async fn never_used(svc: &Services, access_key_id: &str) -> Result<bool> {
    Ok(svc.iam.access_key_last_used(access_key_id).await?.is_none())
}

/// The access key ids every version of the secret holds (every version `info` lists, labelled
/// or not). A version that no longer exists holds nothing; a value that is not a key holds
/// nothing; any other failure to read is returned (then nothing may be deleted).
async fn held_key_ids(svc: &Services, info: &SecretInfo) -> Result<Vec<String>> {
    let mut held = Vec::with_capacity(info.versions.len());
    for v in &info.versions {
        match svc
            .store
            .get_value(&info.id, &Version::Id(v.version_id.clone()))
            .await
        {
            Ok((_, value)) => {
                if let Ok(key) = KeyValue::parse(&info.id, &v.version_id, &value) {
                    held.push(key.access_key_id);
                }
            }
            Err(RotorError::InputInvalid(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(held)
}

fn ids(keys: &[AccessKeyInfo]) -> String {
    if keys.is_empty() {
        return "none".into();
    }
    keys.iter()
        .map(|k| format!("{} ({})", k.access_key_id, k.status))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidate probe of an IAM key: sts:GetCallerIdentity signed with it must answer the
/// policy's user; then the `rotor:iam-probe-action` call, when the tag names one.
pub async fn prove(
    svc: &Services,
    secret_id: &str,
    policy: &Policy,
    version_id: &str,
) -> Result<String> {
    let user = user_of(secret_id, policy)?;
    let key = key_of(svc, secret_id, version_id).await?;
    let who = svc
        .sts
        .caller_identity(&key.access_key_id, &key.secret_access_key)
        .await?;
    if !who
        .user_name
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case(user))
    {
        return Err(RotorError::ProbeRejected(format!(
            "access key {} authenticates as {}, not as IAM user {user}",
            key.access_key_id, who.arn
        )));
    }
    let authenticated = format!(
        "sts:GetCallerIdentity signed with access key {} answered {}",
        key.access_key_id, who.arn
    );
    Ok(match policy.iam_probe_action {
        None => format!(
            "{authenticated} (authentication only: GetCallerIdentity needs no permission; no rotor:iam-probe-action tag)"
        ),
        Some(action) => {
            let proof = svc
                .sts
                .permitted_call(&key.access_key_id, &key.secret_access_key, action)
                .await?;
            format!(
                "{authenticated}, and {} was permitted ({proof})",
                action.as_str()
            )
        }
    })
}

/// Rollback's last step: deletes this execution's new key if it still exists, unless
/// AWSCURRENT holds it (then it is in use and stays). Answers whether it deleted.
pub async fn delete_new_key(
    svc: &Services,
    secret_id: &str,
    user: &str,
    new_access_key_id: &str,
) -> Result<bool> {
    let keys = svc.iam.list_access_keys(user).await?;
    if find(&keys, new_access_key_id).is_none() {
        return Ok(false);
    }
    let info = svc.store.describe(secret_id).await?;
    if let Some(current) = info.version_with(crate::secret::AWSCURRENT) {
        let current = key_of(svc, secret_id, &current.version_id).await?;
        if current.access_key_id == new_access_key_id {
            return Ok(false);
        }
    }
    svc.iam.delete_access_key(user, new_access_key_id).await?;
    Ok(true)
}

/// Revert's first step: the old key must exist, and is made Active again if it was
/// deactivated. Answers whether it changed it. A deleted old key cannot come back: reverting
/// AWSCURRENT to it would break every consumer, so that is an error (the rotation stays on the
/// new key and the state machine reports Rotation.RevertFailed).
pub async fn reactivate_old_key(
    svc: &Services,
    secret_id: &str,
    user: &str,
    old_access_key_id: &str,
) -> Result<bool> {
    let keys = svc.iam.list_access_keys(user).await?;
    match find(&keys, old_access_key_id) {
        None => Err(RotorError::internal(format!(
            "secret {secret_id}: the old access key {old_access_key_id} of IAM user {user} no longer exists, so AWSCURRENT cannot go back to it; it stays on the new key"
        ))),
        Some(k) if is_active(k) => Ok(false),
        Some(_) => {
            svc.iam
                .set_access_key_active(user, old_access_key_id, true)
                .await?;
            Ok(true)
        }
    }
}

/// A manual rollback moves AWSCURRENT to AWSPREVIOUS: for an IAM key secret only when that
/// version's key still exists and is Active (after a completed rotation it was deleted).
pub async fn check_rollback_target(
    svc: &Services,
    secret_id: &str,
    policy: &Policy,
    previous_version_id: &str,
) -> Result<()> {
    let user = user_of(secret_id, policy)?;
    let key = key_of(svc, secret_id, previous_version_id).await?;
    let keys = svc.iam.list_access_keys(user).await?;
    match find(&keys, &key.access_key_id) {
        Some(k) if is_active(k) => Ok(()),
        found => Err(RotorError::input(format!(
            "secret {secret_id}: AWSPREVIOUS holds access key {} of IAM user {user}, which is {}: rolling back to it would break every consumer; rotate instead",
            key.access_key_id,
            if found.is_some() { "Inactive" } else { "deleted" }
        ))),
    }
}
