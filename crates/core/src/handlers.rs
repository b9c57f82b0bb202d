//! The six handlers. Each is idempotent: invoked again with the same input after it succeeded,
//! it changes nothing and answers the same.

use crate::error::{Result, RotorError};
use crate::events::*;
use crate::iam;
use crate::policy::{Kind, Policy};
use crate::ports::{AuditRecord, Metric, ProbeRequest, Services};
use crate::probe;
use crate::secret::{SecretInfo, SecretValue, Version, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use chrono::{DateTime, Utc};
use rand::Rng;
use std::collections::BTreeMap;

/// The ClientRequestToken (and so the version id) a rotation stages its candidate under:
/// derived from the execution, so a retried or re-run step finds its own version.
pub fn token_for(execution_id: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, execution_id.as_bytes()).to_string()
}

fn non_empty(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(RotorError::input(format!("{field} is empty")));
    }
    Ok(())
}

fn current_of(info: &SecretInfo) -> Result<&crate::secret::VersionInfo> {
    info.version_with(AWSCURRENT)
        .ok_or_else(|| RotorError::input(format!("secret {} has no AWSCURRENT version", info.id)))
}

fn staged_output(
    info: &SecretInfo,
    policy: &Policy,
    pending: &str,
    previous: &str,
    iam: Option<IamStaged>,
) -> StagePendingOutput {
    // AWSPREVIOUS as it was before this rotation: unknown once promote moved it.
    let prior_previous = info
        .version_with(AWSPREVIOUS)
        .map(|v| v.version_id.clone())
        .filter(|v| v != previous && v != pending);
    StagePendingOutput {
        secret_id: info.id.clone(),
        kind: policy.kind.as_str().to_string(),
        pending_version_id: pending.to_string(),
        previous_version_id: previous.to_string(),
        prior_previous_version_id: prior_previous,
        waits: policy.waits,
        app_probe: policy.app_health_url.is_some(),
        iam,
        consumers: policy.consumers.clone(),
    }
}

fn generate(policy: &Policy) -> SecretValue {
    let alphabet = policy.charset.alphabet();
    let mut rng = rand::rngs::OsRng;
    SecretValue::new(
        (0..policy.length)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
            .collect::<String>(),
    )
}

/// The vendor key to stage: the sealed candidate, opened only for this execution, before its
/// deadline (see [`crate::candidate`]).
async fn vendor_candidate(svc: &Services, req: &StagePendingInput) -> Result<SecretValue> {
    let input = &req.input;
    let text = input.candidate_ciphertext.as_deref().ok_or_else(|| {
        RotorError::input(format!(
            "secret {} is a vendor-api-key: a rotation needs a candidate (KMS ciphertext in candidate_ciphertext)",
            input.secret_id
        ))
    })?;
    crate::candidate::open(
        svc.kms.as_ref(),
        &input.secret_id,
        &req.execution_id,
        text,
        svc.clock.now(),
    )
    .await
}

async fn iam_restaged(
    svc: &Services,
    info: &SecretInfo,
    policy: &Policy,
    token: &str,
    previous: &str,
) -> Result<Option<IamStaged>> {
    if policy.kind != Kind::IamAccessKey {
        return Ok(None);
    }
    Ok(Some(
        iam::restaged(svc, info, policy, token, previous).await?,
    ))
}

/// stage-pending: put the candidate on AWSPENDING under this execution's token.
///
/// For `iam-access-key` secrets the candidate is a new access key of the `rotor:iam-user`
/// (see [`iam::stage`]: the two-key limit, a stale Inactive key deleted first); its id (never
/// its secret) is in the output's `iam.new_access_key_id`.
pub async fn stage_pending(svc: &Services, req: StagePendingInput) -> Result<StagePendingOutput> {
    non_empty("execution_id", &req.execution_id)?;
    non_empty("secret_id", &req.input.secret_id)?;
    if req.input.action != Action::Rotate {
        return Err(RotorError::input(
            "stage-pending runs for action \"rotate\" only",
        ));
    }
    let id = &req.input.secret_id;
    let info = svc.store.describe(id).await?;
    let policy = Policy::from_tags(id, &info.tags)?;
    let token = token_for(&req.execution_id);
    let current = current_of(&info)?;
    // A re-run after this execution already staged (or even promoted) answers the same.
    if current.version_id == token {
        let previous = info
            .version_with(AWSPREVIOUS)
            .map(|v| v.version_id.clone())
            .unwrap_or_default();
        let iam = iam_restaged(svc, &info, &policy, &token, &previous).await?;

        return Ok(staged_output(&info, &policy, &token, &previous, iam));
    }
    if let Some(pending) = info.version_with(AWSPENDING) {
        if pending.version_id == token {
            let iam = iam_restaged(svc, &info, &policy, &token, &current.version_id).await?;
            return Ok(staged_output(
                &info,
                &policy,
                &token,
                &current.version_id,
                iam,
            ));
        }
        return Err(RotorError::InProgress {
            secret_id: id.clone(),
            version_id: pending.version_id.clone(),
        });
    }
    let candidate = match policy.kind {
        Kind::VendorApiKey => {
            // This execution's version exists but holds no label it could resume from: its
            // candidate was used (staged, then rejected or rotated away). Used once means once.
            if let Some(used) = info.versions.iter().find(|v| v.version_id == token) {
                return Err(RotorError::candidate(format!(
                    "execution {} already used its candidate: version {} of secret {id} was staged from it (now labelled {:?}); encrypt the new value again for a new execution",
                    crate::candidate::execution_name_of(&req.execution_id),
                    used.version_id,
                    used.stages
                )));
            }
            vendor_candidate(svc, &req).await?
        }
        Kind::Generated => {
            if req.input.candidate_ciphertext.is_some() {
                return Err(RotorError::input(format!(
                    "secret {id} is of kind generated: rotor generates its value, a candidate is not accepted"
                )));
            }
            generate(&policy)
        }
        Kind::IamAccessKey => {
            let (version, staged) =
                iam::stage(svc, &info, &policy, &token, &current.version_id).await?;
            return Ok(staged_output(
                &info,
                &policy,
                &version,
                &current.version_id,
                Some(staged),
            ));
        }
    };
    crate::limits::validate_candidate(&candidate, false)?;
    let (_, current_value) = svc
        .store
        .get_value(id, &Version::Id(current.version_id.clone()))
        .await?;
    if current_value == candidate {
        return Err(RotorError::candidate(
            "the candidate is the current value: nothing would rotate",
        ));
    }
    // One rotation at a time, even across this handler's reads: a concurrent rotation may have
    // promoted (and cleared its AWSPENDING) while the candidate was decrypted and checked,
    // which would stage this one on a stale AWSCURRENT. Look again just before staging.
    // (Secrets Manager has no compare-and-swap on PutSecretValue; put_pending's own read still
    // refuses an AWSPENDING staged in the remaining moment, and Promote's check refuses the rest.)
    let again = svc.store.describe(id).await?;
    let now = current_of(&again)?.version_id.clone();
    if now != current.version_id {
        return Err(RotorError::Conflict {
            secret_id: id.clone(),
            expected: current.version_id.clone(),
            found: now,
        });
    }
    let version = svc.store.put_pending(id, &token, &candidate).await?;
    Ok(staged_output(
        &info,
        &policy,
        &version,
        &current.version_id,
        None,
    ))
}

fn application_request(url: &str) -> ProbeRequest {
    ProbeRequest {
        method: "GET",
        url: SecretValue::new(url),
        headers: vec![],
        body: None,
    }
}

/// health-probe: prove a version works (candidate, before promote) or the application is
/// healthy on AWSCURRENT (after promote).
pub async fn health_probe(svc: &Services, req: HealthProbeInput) -> Result<HealthProbeOutput> {
    non_empty("secret_id", &req.secret_id)?;
    non_empty("version_id", &req.version_id)?;
    let info = svc.store.describe(&req.secret_id).await?;
    let policy = Policy::from_tags(&req.secret_id, &info.tags)?;
    if !info.versions.iter().any(|v| v.version_id == req.version_id) {
        return Err(RotorError::input(format!(
            "secret {} has no version {}",
            req.secret_id, req.version_id
        )));
    }
    let skipped = |proof: String| HealthProbeOutput {
        target: req.target,
        valid: true,
        skipped: true,
        proof,
    };
    match req.target {
        ProbeTarget::Candidate if policy.kind == Kind::IamAccessKey => {
            let proof = iam::prove(svc, &req.secret_id, &policy, &req.version_id).await?;
            Ok(HealthProbeOutput {
                target: req.target,
                valid: true,
                skipped: false,
                proof,
            })
        }
        ProbeTarget::Candidate => {
            let Some(name) = policy.probe.as_deref() else {
                return Ok(skipped(
                    "no rotor:probe tag: the candidate probe was skipped".into(),
                ));
            };
            // The destination is checked before the candidate is even read.
            if let Some(base) = policy.probe_url.as_deref().or(probe::default_base(name)) {
                svc.probe_hosts.check(name, base)?;
            }
            let (_, value) = svc
                .store
                .get_value(&req.secret_id, &Version::Id(req.version_id.clone()))
                .await?;
            let request = probe::request(name, policy.probe_url.as_deref(), &value)?;
            let answer = svc.prober.send(&request).await?;
            let proof = probe::judge(name, &answer)?;
            Ok(HealthProbeOutput {
                target: req.target,
                valid: true,
                skipped: false,
                proof,
            })
        }
        ProbeTarget::Application => {
            let Some(url) = policy.app_health_url.as_deref() else {
                return Ok(skipped(
                    "no rotor:app-health-url tag: the application probe was skipped".into(),
                ));
            };
            let answer = svc.prober.send(&application_request(url)).await?;
            let proof = probe::judge("application", &answer)?;
            Ok(HealthProbeOutput {
                target: req.target,
                valid: true,
                skipped: false,
                proof,
            })
        }
    }
}

/// promote: move AWSCURRENT to the pending version if it is still where stage-pending saw it
/// (AWSPREVIOUS follows), then clear AWSPENDING.
///
/// `changed` says whether the move from `previous_version_id` to `pending_version_id` has been
/// made, by this call or by an earlier attempt with the same input: a retry whose first
/// attempt did the work (and whose answer was lost) answers `true` as that attempt did, so the
/// execution history does not say "nothing changed" for a promote that happened. The labels
/// show it: AWSCURRENT on the pending version and AWSPREVIOUS on the version it left.
pub async fn promote(svc: &Services, req: PromoteInput) -> Result<PromoteOutput> {
    non_empty("secret_id", &req.secret_id)?;
    non_empty("pending_version_id", &req.pending_version_id)?;
    non_empty("previous_version_id", &req.previous_version_id)?;
    let id = &req.secret_id;
    let info = svc.store.describe(id).await?;
    if !info
        .versions
        .iter()
        .any(|v| v.version_id == req.pending_version_id)
    {
        return Err(RotorError::input(format!(
            "secret {id} has no version {}",
            req.pending_version_id
        )));
    }
    let current = current_of(&info)?.version_id.clone();
    // An earlier attempt with this input already moved AWSCURRENT (see `changed` above).
    let mut changed = current == req.pending_version_id
        && req.pending_version_id != req.previous_version_id
        && info
            .version_with(AWSPREVIOUS)
            .is_some_and(|v| v.version_id == req.previous_version_id);
    if current != req.pending_version_id {
        if current != req.previous_version_id {
            return Err(RotorError::Conflict {
                secret_id: id.clone(),
                expected: req.previous_version_id.clone(),
                found: current,
            });
        }
        svc.store
            .update_stage(
                id,
                AWSCURRENT,
                Some(&req.pending_version_id),
                Some(&current),
            )
            .await?;
        changed = true;
    }
    if let Some(p) = info
        .version_with(AWSPENDING)
        .filter(|p| p.version_id == req.pending_version_id)
    {
        svc.store
            .update_stage(id, AWSPENDING, None, Some(&p.version_id))
            .await?;
        changed = true;
    }
    Ok(PromoteOutput {
        secret_id: id.clone(),
        current_version_id: req.pending_version_id,
        previous_version_id: req.previous_version_id,
        changed,
    })
}

/// rollback: abandon (before promote), revert (after promote) or plan a manual rollback.
///
/// `manual` only reads: it answers which version AWSCURRENT should go back to (the AWSPREVIOUS
/// version) and the state machine then moves it with `promote`, whose compare-and-swap makes
/// the move safe to retry. Doing the move here would flip the labels again on a retry.
///
/// As with `promote`, a retry answers what the attempt that did the work answered: `abandon`
/// reports this execution's version as undone (`changed`) whenever that version exists, since
/// once abandon succeeded it carries neither AWSCURRENT nor AWSPENDING (this call or an earlier
/// attempt took them off); `revert` reports `changed` when the labels show AWSCURRENT came back
/// from the staged version (AWSCURRENT on the previous version, AWSPREVIOUS on the staged one).
pub async fn rollback(svc: &Services, req: RollbackInput) -> Result<RollbackOutput> {
    non_empty("secret_id", &req.secret_id)?;
    non_empty("execution_id", &req.execution_id)?;
    let id = &req.secret_id;
    let info = svc.store.describe(id).await?;
    let current = current_of(&info)?.version_id.clone();
    let out = |current_version_id: String, undone: Option<String>, changed: bool| RollbackOutput {
        mode: req.mode,
        secret_id: id.clone(),
        current_version_id: Some(current_version_id),
        undone_version_id: undone,
        changed,
        probe: false,
        consumers: Vec::new(),
    };
    match req.mode {
        RollbackMode::Abandon => {
            let token = token_for(&req.execution_id);
            // Only this execution stages under its token: if the version exists, this
            // execution staged it, and after abandon it is out of use whichever attempt did it.
            let changed = info.versions.iter().any(|v| v.version_id == token);
            let mut now_current = current.clone();
            if current == token {
                // Promote went through before the failure: put AWSCURRENT back.
                let previous = req
                    .staged
                    .as_ref()
                    .map(|s| s.previous_version_id.clone())
                    .or_else(|| info.version_with(AWSPREVIOUS).map(|v| v.version_id.clone()))
                    .ok_or_else(|| {
                        RotorError::internal(format!(
                            "secret {id}: no version to put AWSCURRENT back on"
                        ))
                    })?;
                svc.store
                    .update_stage(id, AWSCURRENT, Some(&previous), Some(&token))
                    .await?;
                if let Some(staged) = &req.staged {
                    restore_previous(svc, &info, staged, Some(&token)).await?;
                }
                now_current = previous;
            }
            // Only this execution's AWSPENDING: another execution's candidate is not ours to drop.
            if info
                .version_with(AWSPENDING)
                .is_some_and(|p| p.version_id == token)
            {
                svc.store
                    .update_stage(id, AWSPENDING, None, Some(&token))
                    .await?;
            }
            // An IAM key rotation: the key this execution created goes too.
            let new_key = match req.staged.as_ref().and_then(|s| s.iam.as_ref()) {
                Some(i) => Some((i.user.clone(), i.new_access_key_id.clone())),
                None => match Policy::from_tags(id, &info.tags) {
                    Ok(p) if p.kind == Kind::IamAccessKey && changed => {
                        let user = iam::user_of(id, &p)?.to_string();
                        let key = iam::key_of(svc, id, &token).await?;
                        Some((user, key.access_key_id))
                    }
                    _ => None,
                },
            };
            if let Some((user, key)) = new_key {
                iam::delete_new_key(svc, id, &user, &key).await?;
            }
            Ok(out(now_current, changed.then_some(token), changed))
        }
        RollbackMode::Revert => {
            let staged = req.staged.as_ref().ok_or_else(|| {
                RotorError::input("rollback revert needs the staged step's output")
            })?;
            // Revert runs only after promote succeeded: AWSCURRENT on the version it left means
            // an earlier attempt with this input already moved it back.
            let mut changed = current == staged.previous_version_id;
            if current != staged.pending_version_id && current != staged.previous_version_id {
                return Err(RotorError::Conflict {
                    secret_id: id.clone(),
                    expected: staged.pending_version_id.clone(),
                    found: current,
                });
            }
            // IAM: the old key is Active again before AWSCURRENT points back at it.
            if let Some(i) = &staged.iam {
                if let Some(old) = &i.old_access_key_id {
                    changed |= iam::reactivate_old_key(svc, id, &i.user, old).await?;
                }
            }
            let mut previous_on = info.version_with(AWSPREVIOUS).map(|v| v.version_id.clone());
            if current == staged.pending_version_id {
                svc.store
                    .update_stage(
                        id,
                        AWSCURRENT,
                        Some(&staged.previous_version_id),
                        Some(&current),
                    )
                    .await?;
                // Secrets Manager put AWSPREVIOUS on the version AWSCURRENT left.
                previous_on = Some(current.clone());
                changed = true;
            }
            if info
                .version_with(AWSPENDING)
                .is_some_and(|p| p.version_id == staged.pending_version_id)
            {
                svc.store
                    .update_stage(id, AWSPENDING, None, Some(&staged.pending_version_id))
                    .await?;
                changed = true;
            }
            changed |= restore_previous(svc, &info, staged, previous_on.as_deref()).await?;
            // IAM: then the new key goes (AWSCURRENT no longer holds it), unless consumers run
            // on it: their tasks keep signing with it until they are redeployed on the old key,
            // so it goes after that (discard-new-key).
            if let Some(i) = &staged.iam {
                if staged.consumers.is_empty() {
                    changed |= iam::delete_new_key(svc, id, &i.user, &i.new_access_key_id).await?;
                }
            }
            Ok(out(
                staged.previous_version_id.clone(),
                Some(staged.pending_version_id.clone()),
                changed,
            ))
        }
        RollbackMode::DiscardNewKey => {
            let staged = req.staged.as_ref().ok_or_else(|| {
                RotorError::input("rollback discard-new-key needs the staged step's output")
            })?;
            // Only once AWSCURRENT is back on the version the rotation left.
            if current != staged.previous_version_id {
                return Err(RotorError::Conflict {
                    secret_id: id.clone(),
                    expected: staged.previous_version_id.clone(),
                    found: current,
                });
            }
            let changed = match &staged.iam {
                Some(i) => iam::delete_new_key(svc, id, &i.user, &i.new_access_key_id).await?,
                None => false,
            };
            Ok(out(
                current.clone(),
                Some(staged.pending_version_id.clone()),
                changed,
            ))
        }
        RollbackMode::Manual => {
            if let Some(p) = info.version_with(AWSPENDING) {
                return Err(RotorError::InProgress {
                    secret_id: id.clone(),
                    version_id: p.version_id.clone(),
                });
            }
            let request = req.request.as_ref();
            let target = match request.and_then(|r| r.target_version_id.as_deref()) {
                Some(t) => {
                    if !info.versions.iter().any(|v| v.version_id == t) {
                        return Err(RotorError::input(format!(
                            "secret {id} has no version {t}: there is nothing to roll back to"
                        )));
                    }
                    t.to_string()
                }
                None => info
                    .version_with(AWSPREVIOUS)
                    .map(|v| v.version_id.clone())
                    .ok_or_else(|| {
                        RotorError::input(format!(
                            "secret {id} has no AWSPREVIOUS version: there is nothing to roll back to"
                        ))
                    })?,
            };
            let noop = target == current;
            if !noop {
                if let Ok(p) = Policy::from_tags(id, &info.tags) {
                    if p.kind == Kind::IamAccessKey {
                        iam::check_rollback_target(svc, id, &p, &target).await?;
                    }
                }
            }
            let force = request.is_some_and(|r| r.force);
            // The consumers run on the version AWSCURRENT leaves: they are redeployed once it
            // moved (a tag rotor cannot read is refused here, before anything moves).
            let consumers = if noop {
                Vec::new()
            } else {
                crate::consumers::from_tags(&info.tags)?
            };
            Ok(RollbackOutput {
                probe: !noop && !force,
                consumers,
                ..out(target, Some(current), false)
            })
        }
    }
}

/// After AWSCURRENT came back from this rotation's candidate, Secrets Manager has put
/// AWSPREVIOUS on the candidate (`previous_on` says where it is now). Put it back where it was
/// before the rotation (`prior_previous_version_id`), or take it off when it was on no version,
/// so that the rejected candidate holds no label and a later rollback cannot install it. Answers
/// whether it moved the label.
async fn restore_previous(
    svc: &Services,
    info: &SecretInfo,
    staged: &StagePendingOutput,
    previous_on: Option<&str>,
) -> Result<bool> {
    let candidate = staged.pending_version_id.as_str();
    if previous_on != Some(candidate) {
        // Already put back by an earlier attempt (or moved by someone else): leave it.
        return Ok(false);
    }
    let prior = staged
        .prior_previous_version_id
        .as_deref()
        .filter(|p| *p != candidate && info.versions.iter().any(|v| v.version_id == *p));
    svc.store
        .update_stage(&info.id, AWSPREVIOUS, prior, Some(candidate))
        .await?;
    Ok(true)
}

fn parse_time(secret_id: &str, field: &str, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            RotorError::input(format!(
                "secret {secret_id}: {field} {text:?} is not an RFC 3339 time"
            ))
        })
}

/// When ECS saw a consumer's deployment complete: RFC 3339 text, or epoch seconds.
fn completion_time(secret_id: &str, c: &RedeployedConsumer) -> Result<DateTime<Utc>> {
    match &c.completed_at {
        serde_json::Value::String(text) => parse_time(secret_id, "completed_at", text),
        serde_json::Value::Number(n) => n
            .as_f64()
            .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0) as i64))
            .ok_or_else(|| {
                RotorError::input(format!(
                    "secret {secret_id}: consumer {} completed_at {n} is not a time",
                    c.name
                ))
            }),
        other => Err(RotorError::input(format!(
            "secret {secret_id}: consumer {} completed_at {other} is not a time",
            c.name
        ))),
    }
}

use crate::rfc3339;

/// audit-log: one record per execution, and the metrics; never a value.
pub async fn audit_log(svc: &Services, req: AuditInput) -> Result<AuditOutput> {
    non_empty("execution_id", &req.execution_id)?;
    const OUTCOMES: &[&str] = &[
        "rotated",
        "abandoned",
        "rolled-back",
        "manual-rollback",
        "refused",
    ];
    if !OUTCOMES.contains(&req.outcome.as_str()) {
        return Err(RotorError::input(format!(
            "outcome {:?} is not one of {}",
            req.outcome,
            OUTCOMES.join(", ")
        )));
    }
    let now = svc.clock.now();
    let (old, new) = match (&req.rollback, &req.staged) {
        (Some(r), _) if req.outcome == "manual-rollback" => {
            (r.undone_version_id.clone(), r.current_version_id.clone())
        }
        (_, Some(s)) if req.outcome == "rotated" => (
            Some(s.previous_version_id.clone()),
            Some(s.pending_version_id.clone()),
        ),
        (_, Some(s)) => (Some(s.previous_version_id.clone()), None),
        _ => (None, None),
    };
    let record = AuditRecord {
        execution_id: req.execution_id.clone(),
        secret_id: req.input.secret_id.clone(),
        kind: req.staged.as_ref().map(|s| s.kind.clone()),
        action: req.input.action.as_str().into(),
        requested_by: req.input.requested_by.clone(),
        reason: req.input.reason.clone(),
        old_version_id: old,
        new_version_id: new,
        outcome: req.outcome.clone(),
        error: req.error.as_ref().map(|e| e.error.clone()),
        started_at: req.started_at.clone(),
        finished_at: rfc3339(now),
        iam: req.staged.as_ref().and_then(|s| s.iam.clone()),
        recovery: req.input.recovery.clone(),
    };
    svc.audit.record(&record).await?;
    let dims = BTreeMap::from([("SecretId".to_string(), req.input.secret_id.clone())]);
    let metric = |name: &str, value: f64, unit: &str| Metric {
        name: name.into(),
        value,
        unit: unit.into(),
        dimensions: dims.clone(),
        timestamp: rfc3339(now),
    };
    let name = match req.outcome.as_str() {
        "rotated" => "RotationSucceeded",
        "rolled-back" | "manual-rollback" => "RotationRolledBack",
        _ => "RotationFailed",
    };
    svc.audit.metric(&metric(name, 1.0, "Count")).await?;
    if let Ok(started) = DateTime::parse_from_rfc3339(&req.started_at) {
        let seconds = (now - started.with_timezone(&Utc)).num_milliseconds() as f64 / 1000.0;
        svc.audit
            .metric(&metric("RotationDuration", seconds.max(0.0), "Seconds"))
            .await?;
    }
    Ok(AuditOutput {
        execution_id: req.execution_id,
        outcome: req.outcome,
    })
}

/// revoke-old-iam-key, after the new key was promoted and the application proven:
///
/// * `deactivate` sets the old key Inactive and answers when (`deactivated_at`). Already
///   Inactive: success, answered as the attempt that did it (`changed: true`; `deactivated_at`
///   is the one given, else the time this attempt found the key inactive). Already deleted:
///   success, `changed: false`.
/// * `delete` (after the grace period) reads GetAccessKeyLastUsed: used after `deactivated_at`,
///   or Active again, is `Revoke.OldKeyStillInUse` (the state machine reverts); else the key is
///   deleted. Already deleted: success, answered as the attempt that did it (`changed: true`).
///
/// Last-used times are compared as the service reports them: AWS updates LastUsedDate with a
/// delay, so `rotor:grace-seconds` should be longer than that delay for a late consumer to be
/// seen.
///
/// Both refuse (`Rotation.Conflict`) unless AWSCURRENT is still this rotation's version: the old
/// key is never touched while it may be the current one again.
pub async fn revoke_old_iam_key(svc: &Services, req: RevokeInput) -> Result<RevokeOutput> {
    non_empty("secret_id", &req.secret_id)?;
    let staged = &req.staged;
    if staged.secret_id != req.secret_id {
        return Err(RotorError::input(format!(
            "revoke-old-iam-key: secret_id {} differs from the staged secret {}",
            req.secret_id, staged.secret_id
        )));
    }
    let staged_iam = staged.iam.as_ref().ok_or_else(|| {
        RotorError::input(format!(
            "secret {}: revoke-old-iam-key needs staged.iam (the stage-pending output of an iam-access-key rotation)",
            req.secret_id
        ))
    })?;
    let out = |key: Option<String>, at: Option<String>, changed: bool| RevokeOutput {
        mode: req.mode,
        access_key_id: key,
        deactivated_at: at,
        changed,
    };
    let now = rfc3339(svc.clock.now());
    let Some(old) = staged_iam.old_access_key_id.clone() else {
        return Ok(out(None, req.deactivated_at.clone().or(Some(now)), false));
    };
    let id = &req.secret_id;
    let info = svc.store.describe(id).await?;
    let current = current_of(&info)?.version_id.clone();
    if current != staged.pending_version_id {
        return Err(RotorError::Conflict {
            secret_id: id.clone(),
            expected: staged.pending_version_id.clone(),
            found: current,
        });
    }
    let user = &staged_iam.user;
    let keys = svc.iam.list_access_keys(user).await?;
    let found = iam::find(&keys, &old);
    match req.mode {
        RevokeMode::Deactivate => match found {
            None => Ok(out(
                Some(old),
                req.deactivated_at.clone().or(Some(now)),
                false,
            )),
            // Already Inactive: an earlier attempt of this step did it; answer as it did.
            Some(k) if !iam::is_active(k) => Ok(out(
                Some(old),
                req.deactivated_at.clone().or(Some(now)),
                true,
            )),
            Some(_) => {
                // AWS's order: the consumers run on the new key, then GetAccessKeyLastUsed on
                // the old one, and only then is it deactivated. A use after the consumers were
                // redeployed means one of them (or something undeclared) still holds it.
                let mut redeployed: Option<(DateTime<Utc>, &str)> = None;
                for c in &req.consumers_redeployed {
                    let at = completion_time(id, c)?;
                    if redeployed.is_none_or(|(t, _)| at > t) {
                        redeployed = Some((at, &c.name));
                    }
                }
                if let Some((at, name)) = redeployed {
                    if let Some(last) = svc.iam.access_key_last_used(&old).await? {
                        if last > at {
                            return Err(RotorError::OldKeyStillInUse(format!(
                                "access key {old} of IAM user {user} was used at {} after the secret's consumers ran on the new key (the last, {name}, at {}): something still uses it, so it was not deactivated",
                                rfc3339(last),
                                rfc3339(at)
                            )));
                        }
                    }
                }
                svc.iam.set_access_key_active(user, &old, false).await?;
                Ok(out(Some(old), Some(now), true))
            }
        },
        RevokeMode::Delete => {
            // Already deleted (by an earlier attempt of this step): answer as it did.
            let Some(k) = found else {
                return Ok(out(Some(old), req.deactivated_at.clone(), true));
            };
            let text = req.deactivated_at.as_deref().ok_or_else(|| {
                RotorError::input(format!(
                    "secret {id}: revoke-old-iam-key delete needs deactivated_at (the deactivate step's answer)"
                ))
            })?;
            let deactivated_at = parse_time(id, "deactivated_at", text)?;
            if iam::is_active(k) {
                return Err(RotorError::OldKeyStillInUse(format!(
                    "access key {old} of IAM user {user} is Active again after rotor deactivated it at {text}: something still needs it, so it was not deleted"
                )));
            }
            if let Some(last) = svc.iam.access_key_last_used(&old).await? {
                if last > deactivated_at {
                    return Err(RotorError::OldKeyStillInUse(format!(
                        "access key {old} of IAM user {user} was used at {} after it was deactivated at {text}: a consumer still depends on it, so it was not deleted",
                        rfc3339(last)
                    )));
                }
            }
            svc.iam.delete_access_key(user, &old).await?;
            Ok(out(Some(old), Some(text.to_string()), true))
        }
    }
}
