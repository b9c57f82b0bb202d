//! Secrets Manager's UpdateSecretVersionStage rules, once: both stores (the AWS adapter and the
//! local store) plan a label change here from what they read, then make it (one call, or one
//! transaction), so they refuse the same requests with the same messages.

use crate::error::{Result, RotorError};
use crate::limits::{validate_stage, MAX_STAGES_PER_VERSION};
use crate::secret::{SecretInfo, AWSCURRENT, AWSPREVIOUS};

/// What an UpdateSecretVersionStage request does to the labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageChange {
    /// The label is already where it is asked to go.
    Nothing,
    /// The label goes onto `to`, off `from` (where it was). Moving AWSCURRENT puts AWSPREVIOUS
    /// on `from` (and so off wherever it was).
    Move { to: String, from: Option<String> },
    /// The label comes off `from`.
    Remove { from: String },
}

/// Plans `stage` moving to `move_to` (off `remove_from`, which must be where it is now), or
/// coming off `remove_from` when `move_to` is `None`, on the secret as `info` shows it. Every
/// refusal is what Secrets Manager answers (named in the message) and changes nothing.
pub fn plan_stage_update(
    info: &SecretInfo,
    stage: &str,
    move_to: Option<&str>,
    remove_from: Option<&str>,
) -> Result<StageChange> {
    validate_stage(stage)?;
    let id = &info.id;
    if move_to.is_none() && remove_from.is_none() {
        return Err(RotorError::input(
            "UpdateSecretVersionStage needs MoveToVersionId, RemoveFromVersionId or both (InvalidParameterException)",
        ));
    }
    let version = |v: &str| info.versions.iter().find(|x| x.version_id == v);
    for v in move_to.iter().chain(remove_from.iter()) {
        if version(v).is_none() {
            return Err(RotorError::input(format!(
                "secret {id} has no version {v} (ResourceNotFoundException): no label changed"
            )));
        }
    }
    let on: Vec<&str> = info
        .versions
        .iter()
        .filter(|v| v.stages.iter().any(|s| s == stage))
        .map(|v| v.version_id.as_str())
        .collect();
    if on.len() > 1 {
        return Err(RotorError::internal(format!(
            "secret {id}: staging label {stage} is on {} versions ({}); Secrets Manager keeps a label on one version: fix the labels by hand",
            on.len(),
            on.join(", ")
        )));
    }
    let holder = on.first().copied();
    let wrong_remove_from = |r: &str| -> RotorError {
        let where_ = match holder {
            Some(h) => format!("it is on version {h}"),
            None => "it is on no version".into(),
        };
        RotorError::input(format!(
            "secret {id}: staging label {stage} is not on version {r} ({where_}); RemoveFromVersionId must name the version the label is on (InvalidParameterException): no label changed"
        ))
    };
    let Some(m) = move_to else {
        let r = remove_from.expect("checked above");
        if holder != Some(r) {
            return Err(wrong_remove_from(r));
        }
        if stage == AWSCURRENT {
            return Err(RotorError::input(format!(
                "secret {id}: AWSCURRENT can only be moved to another version; it can't be completely removed (InvalidParameterException)"
            )));
        }
        return Ok(StageChange::Remove {
            from: r.to_string(),
        });
    };
    if holder == Some(m) {
        // Already there: nothing to do, unless remove_from names another version.
        return match remove_from {
            Some(r) if r != m => Err(wrong_remove_from(r)),
            _ => Ok(StageChange::Nothing),
        };
    }
    match (holder, remove_from) {
        (Some(h), Some(r)) if h == r => {}
        (Some(h), None) => {
            return Err(RotorError::input(format!(
                "secret {id}: staging label {stage} is on version {h}; moving it needs RemoveFromVersionId {h} (InvalidParameterException): no label changed"
            )))
        }
        (None, None) => {}
        (_, Some(r)) => return Err(wrong_remove_from(r)),
    }
    // The labels `m` carries afterwards: one more, less AWSPREVIOUS if AWSCURRENT's move takes
    // it off `m` (it follows onto the version AWSCURRENT left).
    let stages = &version(m).expect("checked above").stages;
    let previous_leaves =
        stage == AWSCURRENT && holder.is_some() && stages.iter().any(|s| s == AWSPREVIOUS);
    let labels = stages.len() + 1 - usize::from(previous_leaves);
    if labels > MAX_STAGES_PER_VERSION {
        return Err(RotorError::input(format!(
            "secret {id}: version {m} would carry {labels} staging labels; Secrets Manager allows {MAX_STAGES_PER_VERSION} (LimitExceededException): no label changed"
        )));
    }
    Ok(StageChange::Move {
        to: m.to_string(),
        from: holder.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{VersionInfo, AWSPENDING};

    fn info(versions: &[(&str, &[&str])]) -> SecretInfo {
        SecretInfo {
            id: "s".into(),
            description: None,
            tags: Default::default(),
            versions: versions
                .iter()
                .map(|(id, stages)| VersionInfo {
                    version_id: id.to_string(),
                    stages: stages.iter().map(|s| s.to_string()).collect(),
                    created_at: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn moves_removes_and_knows_when_it_is_already_done() {
        let i = info(&[("a", &[AWSCURRENT]), ("b", &[AWSPENDING])]);
        assert_eq!(
            plan_stage_update(&i, AWSCURRENT, Some("b"), Some("a")).unwrap(),
            StageChange::Move {
                to: "b".into(),
                from: Some("a".into())
            }
        );
        assert_eq!(
            plan_stage_update(&i, AWSPENDING, None, Some("b")).unwrap(),
            StageChange::Remove { from: "b".into() }
        );
        assert_eq!(
            plan_stage_update(&i, AWSCURRENT, Some("a"), None).unwrap(),
            StageChange::Nothing
        );
        assert_eq!(
            plan_stage_update(&i, "LABEL", Some("a"), None).unwrap(),
            StageChange::Move {
                to: "a".into(),
                from: None
            }
        );
    }

    #[test]
    fn refusals_name_what_secrets_manager_would() {
        let i = info(&[("a", &[AWSCURRENT]), ("b", &[])]);
        for (stage, to, from, says) in [
            (AWSCURRENT, None, None, "needs MoveToVersionId"),
            (AWSCURRENT, Some("z"), Some("a"), "has no version z"),
            (
                AWSCURRENT,
                Some("b"),
                None,
                "moving it needs RemoveFromVersionId a",
            ),
            (
                AWSCURRENT,
                Some("b"),
                Some("b"),
                "is not on version b (it is on version a)",
            ),
            (AWSCURRENT, None, Some("a"), "can't be completely removed"),
            (AWSPENDING, None, Some("a"), "(it is on no version)"),
            ("", Some("a"), None, "must be 1 to"),
        ] {
            let e = plan_stage_update(&i, stage, to, from).unwrap_err();
            assert_eq!(e.asl_name(), "Input.Invalid");
            assert!(e.to_string().contains(says), "{says}: {e}");
        }
        let twice = info(&[("a", &[AWSCURRENT]), ("b", &[AWSCURRENT])]);
        let e = plan_stage_update(&twice, AWSCURRENT, Some("b"), Some("a")).unwrap_err();
        assert_eq!(e.asl_name(), "Rotor.Internal");
    }

    #[test]
    fn a_version_carries_at_most_twenty_labels_counting_awsprevious_leaving() {
        let many: Vec<String> = (0..MAX_STAGES_PER_VERSION - 1)
            .map(|n| format!("L{n}"))
            .collect();
        let mut full: Vec<&str> = many.iter().map(String::as_str).collect();
        let i = info(&[("a", &[AWSCURRENT]), ("b", &full)]);
        assert!(plan_stage_update(&i, "ONE-MORE", Some("b"), None).is_ok());
        full.push("X");
        let i = info(&[("a", &[AWSCURRENT]), ("b", &full)]);
        let e = plan_stage_update(&i, "ONE-MORE", Some("b"), None).unwrap_err();
        assert!(e.to_string().contains("LimitExceededException"), "{e}");
        // AWSCURRENT onto a full version that holds AWSPREVIOUS: AWSPREVIOUS leaves it.
        full.pop();
        full.push(AWSPREVIOUS);
        let i = info(&[("a", &[AWSCURRENT]), ("b", &full)]);
        assert!(plan_stage_update(&i, AWSCURRENT, Some("b"), Some("a")).is_ok());
    }
}
