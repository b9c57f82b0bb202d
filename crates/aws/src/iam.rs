//! [`Iam`] on AWS IAM: a user's access keys.
//!
//! **Lost answers.** The SDK retries a call whose answer never arrived although IAM may have
//! applied it. UpdateAccessKey is idempotent (the same status again succeeds). DeleteAccessKey
//! retried after a lost answer meets NoSuchEntity: the adapter counts the attempts, lists the
//! user's keys, and a key that is gone from a user that exists is deleted, as asked (`Ok`; a
//! first attempt meeting NoSuchEntity stays `Input.Invalid`). CreateAccessKey
//! cannot be made safe here (its secret is in the lost answer only): the retry meets
//! LimitExceeded or creates a second key, and the key of the lost answer stays Active with
//! nobody holding its secret; `rotor_core::iam::stage` finds such a key (one no version of
//! the secret holds) and deletes it.

use crate::errors::{classify, map_sdk_error, map_sdk_error_except, to_rotor, Attempts, Call};
use crate::{created, next_page, oldest_first, to_chrono};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_iam::types::StatusType;
use aws_sdk_iam::Client;
use chrono::{DateTime, Utc};
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{AccessKeyInfo, Iam, NewAccessKey};
use rotor_core::secret::SecretValue;

const SERVICE: &str = "IAM";

/// IAM allows two access keys per user.
pub const MAX_KEYS_PER_USER: usize = 2;

/// The IAM adapter.
#[derive(Debug, Clone)]
pub struct AwsIam {
    client: Client,
}

impl AwsIam {
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_client(Client::new(config))
    }

    pub fn from_client(client: Client) -> Self {
        AwsIam { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn user_subject(user: &str) -> String {
    format!("IAM user {user}")
}

fn key_subject(user: &str, access_key_id: &str) -> String {
    format!("access key {access_key_id} of IAM user {user}")
}

#[async_trait]
impl Iam for AwsIam {
    /// ListAccessKeys, every page, oldest first. Unknown user: `Input.Invalid`.
    async fn list_access_keys(&self, user: &str) -> Result<Vec<AccessKeyInfo>> {
        let mut keys: Vec<(i64, AccessKeyInfo)> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_access_keys()
                .user_name(user)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| {
                    map_sdk_error(
                        &e,
                        Call::new(SERVICE, "ListAccessKeys", &user_subject(user)),
                    )
                })?;
            for k in out.access_key_metadata {
                let Some(id) = k.access_key_id else { continue };
                let (millis, created_at) = created(k.create_date.as_ref());
                keys.push((
                    millis,
                    AccessKeyInfo {
                        access_key_id: id,
                        status: k.status.map(|s| s.as_str().to_string()).unwrap_or_default(),
                        created_at,
                    },
                ));
            }
            marker = next_page(out.marker.filter(|_| out.is_truncated), &marker);
            if marker.is_none() {
                break;
            }
        }
        Ok(oldest_first(keys))
    }

    /// CreateAccessKey. A third key: `Rotation.KeyLimit` (LimitExceeded); unknown user:
    /// `Input.Invalid`. The secret access key is returned only here.
    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey> {
        let out = self
            .client
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| {
                map_sdk_error_except(
                    &e,
                    Call::new(SERVICE, "CreateAccessKey", &user_subject(user)),
                    "LimitExceeded",
                    |cause| {
                        RotorError::KeyLimit(format!(
                            "user {user} already has {MAX_KEYS_PER_USER} access keys ({cause})"
                        ))
                    },
                )
            })?;
        let key = out.access_key.ok_or_else(|| {
            RotorError::internal(format!(
                "IAM CreateAccessKey for user {user} answered without an AccessKey"
            ))
        })?;
        Ok(NewAccessKey {
            access_key_id: key.access_key_id,
            secret_access_key: SecretValue::new(key.secret_access_key),
        })
    }

    /// UpdateAccessKey(Status=Active|Inactive). A key that is not the user's: `Input.Invalid`.
    async fn set_access_key_active(
        &self,
        user: &str,
        access_key_id: &str,
        active: bool,
    ) -> Result<()> {
        let status = if active {
            StatusType::Active
        } else {
            StatusType::Inactive
        };
        self.client
            .update_access_key()
            .user_name(user)
            .access_key_id(access_key_id)
            .status(status)
            .send()
            .await
            .map_err(|e| {
                map_sdk_error(
                    &e,
                    Call::new(
                        SERVICE,
                        "UpdateAccessKey",
                        &key_subject(user, access_key_id),
                    ),
                )
            })?;
        Ok(())
    }

    /// DeleteAccessKey. A key that is not the user's: `Input.Invalid`; but when the SDK
    /// retried (the first attempt's answer was lost) and the retry meets NoSuchEntity, the key
    /// is already deleted: `Ok`, once ListAccessKeys confirms the user exists without it.
    async fn delete_access_key(&self, user: &str, access_key_id: &str) -> Result<()> {
        let attempts = Attempts::default();
        let sent = self
            .client
            .delete_access_key()
            .user_name(user)
            .access_key_id(access_key_id)
            .customize()
            .interceptor(attempts.clone())
            .send()
            .await;
        let Err(err) = sent else { return Ok(()) };
        let failure = classify(&err);
        let mapped = to_rotor(
            &failure,
            Call::new(
                SERVICE,
                "DeleteAccessKey",
                &key_subject(user, access_key_id),
            ),
        );
        if failure.code() != Some("NoSuchEntity") || !attempts.retried() {
            return Err(mapped);
        }
        let keys = self.list_access_keys(user).await?;
        if keys.iter().any(|k| k.access_key_id == access_key_id) {
            return Err(mapped);
        }
        tracing::info!(
            user,
            access_key_id,
            "DeleteAccessKey answered NoSuchEntity and the user has no such key: already deleted (an earlier attempt whose answer was lost)"
        );
        Ok(())
    }

    /// GetAccessKeyLastUsed: `None` when never used. Unknown key: `Input.Invalid`.
    async fn access_key_last_used(&self, access_key_id: &str) -> Result<Option<DateTime<Utc>>> {
        let out = self
            .client
            .get_access_key_last_used()
            .access_key_id(access_key_id)
            .send()
            .await
            .map_err(|e| {
                map_sdk_error(
                    &e,
                    Call::new(
                        SERVICE,
                        "GetAccessKeyLastUsed",
                        &format!("access key {access_key_id}"),
                    ),
                )
            })?;
        Ok(out
            .access_key_last_used
            .and_then(|u| u.last_used_date)
            .and_then(|d| to_chrono(&d)))
    }
}
