//! [`SecretStore`] on AWS Secrets Manager.
//!
//! Besides calling the API, the adapter enforces on its side what AWS enforces and emulators
//! (moto 5.2.5) do not, so rotor behaves the same on both and like the local store:
//!
//! * **Explicit reads.** GetSecretValue always carries a `VersionStage` or a `VersionId`, and
//!   the answer is checked to be the version asked for (moto returns the old value for a
//!   stage-less read after a promote).
//! * **65,536 bytes.** A value over Secrets Manager's limit is refused before any call
//!   (`Candidate.Invalid` for a candidate, `Input.Invalid` for a new secret): moto stores it.
//! * **Same token, another value.** PutSecretValue with a ClientRequestToken that is already a
//!   version: the same value is a no-op (AWS ignores the request: nothing is sent), another
//!   value is refused as AWS's `ResourceExistsException` would be (moto silently overwrites a
//!   version that still carries AWSPENDING).
//! * **Never two AWSPENDING.** PutSecretValue is refused with `Rotation.InProgress` while
//!   another version carries AWSPENDING (AWS would move the label off it, dropping another
//!   rotation's candidate). Secrets Manager has no conditional write, so the check is repeated
//!   right after the write: if another writer raced in, this call backs off (takes its label
//!   off again) and fails with `Rotation.InProgress`; at most one of two racing rotations
//!   stages, possibly none, never both.
//! * **Atomic label moves.** UpdateSecretVersionStage is sent only after checking that the
//!   target version exists, that `RemoveFromVersionId` names the version carrying the label,
//!   and that a label already on another version is not moved without it (AWS's
//!   InvalidParameterException; moto moves it anyway and leaves AWSPENDING on two versions).
//!   moto takes the label off the old version before failing on a missing target; this adapter
//!   never sends such a request, so on any error no label has changed.
//!
//! **Lost answers.** The SDK retries a call whose answer never arrived (connection reset,
//! timeout, 5xx) although AWS may have applied it; the retry then meets "already done". Every
//! write here answers as the attempt that did it:
//!
//! * UpdateSecretVersionStage refused (InvalidParameterException, ...): the labels are read
//!   again; when they are what the call asked for (the label on `MoveToVersionId`; or, when
//!   removing, no longer on `RemoveFromVersionId`) the call succeeded. When AWSCURRENT is on a
//!   third version, someone else moved it: `Rotation.Conflict` (not `Input.Invalid`).
//! * PutSecretValue refused with ResourceExistsException: when the version with this
//!   ClientRequestToken exists with this value and AWSPENDING or AWSCURRENT, the call succeeded
//!   (AWS answers a retry with the same token and value as a no-op anyway).
//! * CreateSecret needs nothing of its own: the SDK fills its ClientRequestToken once per
//!   call and sends the same one on every retry, which AWS (and moto) answer as a no-op.

use crate::errors::{classify, map_sdk_error, map_sdk_error_except, to_rotor, Call, Failure};
use crate::{created, next_page, oldest_first};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_secretsmanager::Client;
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::SecretStore;
use rotor_core::secret::{SecretInfo, SecretValue, Version, VersionInfo, AWSCURRENT, AWSPENDING};
use rotor_core::stages::{plan_stage_update, StageChange};
use std::collections::BTreeMap;

const SERVICE: &str = "Secrets Manager";

use rotor_core::limits::validate_value;
pub use rotor_core::limits::{CLIENT_REQUEST_TOKEN_CHARS, MAX_STAGES_PER_VERSION, MAX_STAGE_CHARS};

/// The Secrets Manager adapter. Cheap to clone (the SDK client is an `Arc`).
#[derive(Debug, Clone)]
pub struct SecretsManagerStore {
    client: Client,
}

fn subject(secret_id: &str) -> String {
    format!("secret {secret_id}")
}

/// Which versions carry which labels, as DescribeSecret's `VersionIdsToStages` says.
type StageMap = BTreeMap<String, Vec<String>>;

fn holders(stages: &StageMap, stage: &str) -> Vec<String> {
    stages
        .iter()
        .filter(|(_, s)| s.iter().any(|x| x == stage))
        .map(|(v, _)| v.clone())
        .collect()
}

impl SecretsManagerStore {
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_client(Client::new(config))
    }

    pub fn from_client(client: Client) -> Self {
        SecretsManagerStore { client }
    }

    /// The SDK client, for calls the port does not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// CreateSecret: a new secret whose first version carries AWSCURRENT; returns its version
    /// id. An empty value or one over 65,536 bytes is `Input.Invalid` before any call; so is an
    /// existing id (ResourceExistsException). `kms_key_id` is the key Secrets Manager encrypts
    /// the value with (its default `aws/secretsmanager` key when `None`).
    pub async fn create_secret(
        &self,
        id: &str,
        value: &SecretValue,
        tags: &BTreeMap<String, String>,
        description: Option<&str>,
        kms_key_id: Option<&str>,
    ) -> Result<String> {
        validate_value(value, RotorError::InputInvalid)?;
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let out = self
            .client
            .create_secret()
            .name(id)
            .secret_string(value.expose())
            .set_tags((!tags.is_empty()).then_some(tags))
            .set_description(description.map(str::to_string))
            .set_kms_key_id(kms_key_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| {
                map_sdk_error_except(
                    &e,
                    Call::new(SERVICE, "CreateSecret", &subject(id)),
                    "ResourceExistsException",
                    |cause| RotorError::input(format!("secret {id} already exists ({cause})")),
                )
            })?;
        out.version_id.ok_or_else(|| {
            RotorError::internal(format!(
                "Secrets Manager CreateSecret for secret {id} answered without a VersionId"
            ))
        })
    }

    /// TagResource: adds or replaces these tags (the others stay).
    pub async fn tag_secret(&self, id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.client
            .tag_resource()
            .secret_id(id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| map_sdk_error(&e, Call::new(SERVICE, "TagResource", &subject(id))))?;
        Ok(())
    }

    /// ListSecrets, then [`SecretStore::describe`] for each: every secret (not those scheduled
    /// for deletion), by name, with its tags and versions. Never a value.
    pub async fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        let mut names = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .list_secrets()
                .set_next_token(next.clone())
                .send()
                .await
                .map_err(|e| map_sdk_error(&e, Call::new(SERVICE, "ListSecrets", "the secrets")))?;
            names.extend(
                out.secret_list
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| s.deleted_date.is_none())
                    .filter_map(|s| s.name),
            );
            next = next_page(out.next_token, &next);
            if next.is_none() {
                break;
            }
        }
        names.sort();
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            infos.push(self.describe(&name).await?);
        }
        Ok(infos)
    }

    /// DescribeSecret: name, description, tags and which versions carry labels (deprecated
    /// versions are not in it). A secret scheduled for deletion is `Input.Invalid`.
    async fn describe_secret(
        &self,
        secret_id: &str,
    ) -> Result<(String, Option<String>, BTreeMap<String, String>, StageMap)> {
        let out = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                map_sdk_error(
                    &e,
                    Call::new(SERVICE, "DescribeSecret", &subject(secret_id)),
                )
            })?;
        if out.deleted_date.is_some() {
            return Err(RotorError::input(format!(
                "secret {secret_id} is scheduled for deletion (restore it with RestoreSecret first)"
            )));
        }
        let tags = out
            .tags
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
            .collect();
        let stages = out
            .version_ids_to_stages
            .unwrap_or_default()
            .into_iter()
            .map(|(v, mut s)| {
                s.sort();
                s.dedup();
                (v, s)
            })
            .collect();
        Ok((
            out.name.unwrap_or_else(|| secret_id.to_string()),
            out.description,
            tags,
            stages,
        ))
    }

    /// ListSecretVersionIds(IncludeDeprecated=true), every page: every version with its labels,
    /// oldest first (moto reports the listing time as every version's CreatedDate: then the
    /// order is the order moto lists them in, which is creation order).
    async fn versions(&self, secret_id: &str) -> Result<Vec<VersionInfo>> {
        let mut versions: Vec<(i64, VersionInfo)> = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .list_secret_version_ids()
                .secret_id(secret_id)
                .include_deprecated(true)
                .set_next_token(next.clone())
                .send()
                .await
                .map_err(|e| {
                    map_sdk_error(
                        &e,
                        Call::new(SERVICE, "ListSecretVersionIds", &subject(secret_id)),
                    )
                })?;
            for v in out.versions.unwrap_or_default() {
                let Some(version_id) = v.version_id else {
                    continue;
                };
                let mut stages = v.version_stages.unwrap_or_default();
                stages.sort();
                stages.dedup();
                let (millis, created_at) = created(v.created_date.as_ref());
                versions.push((
                    millis,
                    VersionInfo {
                        version_id,
                        stages,
                        created_at,
                    },
                ));
            }
            next = next_page(out.next_token, &next);
            if next.is_none() {
                break;
            }
        }
        Ok(oldest_first(versions))
    }

    /// Whether the version `token` exists with `value` and AWSPENDING or AWSCURRENT: what a
    /// PutSecretValue under that token that AWS applied leaves (AWSCURRENT: promoted since).
    async fn staged_by_token(
        &self,
        secret_id: &str,
        token: &str,
        value: &SecretValue,
    ) -> Result<bool> {
        let (_, _, _, stages) = self.describe_secret(secret_id).await?;
        let labelled = stages
            .get(token)
            .is_some_and(|s| s.iter().any(|x| x == AWSPENDING || x == AWSCURRENT));
        if !labelled {
            return Ok(false);
        }
        let (_, stored) = self
            .get_value(secret_id, &Version::Id(token.into()))
            .await?;
        Ok(stored == *value)
    }

    /// UpdateSecretVersionStage, sent as asked (the checks are the caller's). A refusal is
    /// checked against the labels read again (a retry after a lost answer meets "already
    /// done"): see [`already_done`].
    async fn send_update_stage(
        &self,
        secret_id: &str,
        stage: &str,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<()> {
        let sent = self
            .client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(stage)
            .set_move_to_version_id(move_to.map(str::to_string))
            .set_remove_from_version_id(remove_from.map(str::to_string))
            .send()
            .await;
        let Err(err) = sent else { return Ok(()) };
        let failure = classify(&err);
        let mapped = to_rotor(
            &failure,
            Call::new(SERVICE, "UpdateSecretVersionStage", &subject(secret_id)),
        );
        // Only a refusal can mean "already done"; a transient failure stays `Aws.Throttled`
        // (the handler is retried and reads the labels itself).
        if !matches!(failure, Failure::Service { .. }) || mapped.asl_name() != "Input.Invalid" {
            return Err(mapped);
        }
        let (_, _, _, stages) = self.describe_secret(secret_id).await?;
        match already_done(secret_id, stage, move_to, remove_from, &stages) {
            Some(Ok(())) => {
                tracing::info!(
                    secret_id,
                    stage,
                    "UpdateSecretVersionStage was refused, but the labels already are as asked: an earlier attempt whose answer was lost applied it"
                );
                Ok(())
            }
            Some(Err(conflict)) => Err(conflict),
            None => Err(mapped),
        }
    }
}

/// After a refused UpdateSecretVersionStage, what the labels read again say: `Some(Ok)` when
/// they already are what the call asked for (`stage` on `move_to`; or, removing, no longer on
/// `remove_from`), `Some(Err(Rotation.Conflict))` when AWSCURRENT is on a version the call did
/// not name (someone else moved it), `None` when the refusal stands.
fn already_done(
    secret_id: &str,
    stage: &str,
    move_to: Option<&str>,
    remove_from: Option<&str>,
    stages: &StageMap,
) -> Option<Result<()>> {
    let on = holders(stages, stage);
    match move_to {
        Some(m) => {
            if on.len() == 1 && on[0] == m {
                return Some(Ok(()));
            }
            match on.as_slice() {
                [found] if stage == AWSCURRENT && Some(found.as_str()) != remove_from => {
                    Some(Err(RotorError::Conflict {
                        secret_id: secret_id.to_string(),
                        expected: remove_from.unwrap_or(m).to_string(),
                        found: found.clone(),
                    }))
                }
                _ => None,
            }
        }
        None => {
            let r = remove_from?;
            // A removal is done once the label is off `r` (AWSCURRENT is never removed).
            (stage != AWSCURRENT && !on.iter().any(|v| v == r)).then_some(Ok(()))
        }
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    /// DescribeSecret + ListSecretVersionIds(IncludeDeprecated=true): tags, description and
    /// every version (unlabelled ones too) with its labels, oldest first.
    async fn describe(&self, secret_id: &str) -> Result<SecretInfo> {
        let (name, description, tags, _) = self.describe_secret(secret_id).await?;
        let versions = self.versions(secret_id).await?;
        Ok(SecretInfo {
            id: name,
            description,
            tags,
            versions,
        })
    }

    /// GetSecretValue with exactly the stage or version id asked for; the answer must be that
    /// version (else `Rotor.Internal`). A binary secret is `Rotation.Unsupported`.
    async fn get_value(&self, secret_id: &str, version: &Version) -> Result<(String, SecretValue)> {
        let request = self.client.get_secret_value().secret_id(secret_id);
        let (request, asked) = match version {
            Version::Stage(stage) => (
                request.version_stage(stage),
                format!("staging label {stage}"),
            ),
            Version::Id(id) => (request.version_id(id), format!("version {id}")),
        };
        let out = request.send().await.map_err(|e| {
            map_sdk_error_except(
                &e,
                Call::new(SERVICE, "GetSecretValue", &subject(secret_id)),
                "ResourceNotFoundException",
                // AWS says which is missing in the message (the secret, or the version).
                |cause| {
                    RotorError::input(format!(
                        "secret {secret_id} has no {asked}, or does not exist ({cause})"
                    ))
                },
            )
        })?;
        let version_id = out.version_id.clone().unwrap_or_default();
        let stages = out.version_stages.clone().unwrap_or_default();
        let matches = match version {
            Version::Stage(stage) => stages.iter().any(|s| s == stage),
            Version::Id(id) => &version_id == id,
        };
        if !matches || version_id.is_empty() {
            return Err(RotorError::internal(format!(
                "Secrets Manager GetSecretValue for secret {secret_id} with {asked} answered version {version_id:?} with labels {stages:?}"
            )));
        }
        match out.secret_string {
            Some(s) => Ok((version_id, SecretValue::new(s))),
            None => Err(RotorError::Unsupported(format!(
                "secret {secret_id} version {version_id} holds a binary value (SecretBinary): rotor rotates SecretString values only"
            ))),
        }
    }

    /// PutSecretValue(SecretString, ClientRequestToken=token, VersionStages=[AWSPENDING]) after
    /// the checks in the module documentation; returns the version id (= token).
    async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        value: &SecretValue,
    ) -> Result<String> {
        rotor_core::limits::validate_client_request_token(token)?;
        validate_value(value, RotorError::CandidateInvalid)?;

        let info = self.describe(secret_id).await?;
        if info.versions.iter().any(|v| v.version_id == token) {
            let (_, stored) = self
                .get_value(secret_id, &Version::Id(token.into()))
                .await?;
            if stored == *value {
                // AWS ignores the request: labels stay as they are.
                return Ok(token.to_string());
            }
            return Err(RotorError::input(format!(
                "a version with ClientRequestToken {token} already exists with a different value (ResourceExistsException): secret {secret_id}"
            )));
        }
        if let Some(holder) = info.version_with(AWSPENDING) {
            return Err(RotorError::InProgress {
                secret_id: secret_id.to_string(),
                version_id: holder.version_id.clone(),
            });
        }

        let sent = self
            .client
            .put_secret_value()
            .secret_id(secret_id)
            .secret_string(value.expose())
            .client_request_token(token)
            .version_stages(AWSPENDING)
            .send()
            .await;
        match sent {
            Ok(out) => {
                if out.version_id.as_deref() != Some(token) {
                    return Err(RotorError::internal(format!(
                        "Secrets Manager PutSecretValue for secret {secret_id} with ClientRequestToken {token} created version {:?}",
                        out.version_id
                    )));
                }
            }
            Err(e) => {
                let failure = classify(&e);
                let exists = failure.code() == Some("ResourceExistsException");
                let mapped = if exists {
                    RotorError::input(format!(
                        "a version with ClientRequestToken {token} already exists with a different value ({}): secret {secret_id}",
                        failure.cause()
                    ))
                } else {
                    to_rotor(
                        &failure,
                        Call::new(SERVICE, "PutSecretValue", &subject(secret_id)),
                    )
                };
                // A retry after a lost answer meets ResourceExistsException, and a transient
                // failure after the SDK's retries may have been applied all the same: when the
                // version is there with this value, answer as the attempt that wrote it.
                let may_be_applied = exists || mapped.asl_name() == "Aws.Throttled";
                if !may_be_applied
                    || !self
                        .staged_by_token(secret_id, token, value)
                        .await
                        .unwrap_or(false)
                {
                    return Err(mapped);
                }
            }
        }

        // No conditional write on Secrets Manager: look again. Another writer that raced past
        // the check above either took AWSPENDING from us (AWS) or shares it (moto).
        let (_, _, _, stages) = self.describe_secret(secret_id).await?;
        let others: Vec<String> = holders(&stages, AWSPENDING)
            .into_iter()
            .filter(|v| v != token)
            .collect();
        if let Some(other) = others.first() {
            let ours = stages
                .get(token)
                .is_some_and(|s| s.iter().any(|x| x == AWSPENDING));
            if ours {
                self.send_update_stage(secret_id, AWSPENDING, None, Some(token))
                    .await?;
            }
            return Err(RotorError::InProgress {
                secret_id: secret_id.to_string(),
                version_id: other.clone(),
            });
        }
        Ok(token.to_string())
    }

    /// UpdateSecretVersionStage, sent only when it will succeed whole (see the module
    /// documentation); the same rules as the local store:
    /// * `move_to` (and `remove_from`) must be versions of the secret;
    /// * a label on another version moves only with `remove_from` naming that version;
    ///   already on `move_to`: nothing is sent;
    /// * `move_to == None` removes the label from `remove_from`, which must carry it;
    ///   AWSCURRENT can only be moved;
    /// * moving AWSCURRENT puts AWSPREVIOUS on the version it left (Secrets Manager does it).
    async fn update_stage(
        &self,
        secret_id: &str,
        stage: &str,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<()> {
        // Describe, plan by the one set of rules (rotor_core::stages), make the one call.
        let info = self.describe(secret_id).await?;
        match plan_stage_update(&info, stage, move_to, remove_from)? {
            StageChange::Nothing => Ok(()),
            StageChange::Move { to, from } => {
                self.send_update_stage(secret_id, stage, Some(&to), from.as_deref())
                    .await
            }
            StageChange::Remove { from } => {
                self.send_update_stage(secret_id, stage, None, Some(&from))
                    .await
            }
        }
    }
}
