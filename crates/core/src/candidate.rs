//! The candidate as a rotation carries it: KMS ciphertext that one execution may use, once,
//! before a deadline.
//!
//! `candidate_ciphertext` is `rotor1.<execution name>.<NotAfter>.<base64 KMS ciphertext>`, and
//! the ciphertext's encryption context is
//! `{"SecretId": <secret>, "Execution": <execution name>, "NotAfter": <NotAfter>}`
//! (NotAfter in RFC 3339, whole seconds, UTC). KMS authenticates the context, so the name and
//! the deadline in the text cannot be changed without the ciphertext failing to decrypt.
//!
//! Why this makes a candidate usable once: stage-pending decrypts it only for the execution
//! of that name (the name is the nonce), and Step Functions starts a name once per state
//! machine in 90 days (rotor's local executor refuses a used name too); the version it stages
//! is `token_for(execution)`, so the used name is recorded with the version; and the deadline
//! ([`MAX_VALIDITY`] at most) ends long before Step Functions forgets the name. A candidate
//! copied out of an execution's input (ci-rotate can read those for 90 days) therefore stages
//! nothing: under another name it is refused, under its own name the start is refused.

use crate::error::{Result, RotorError};
use crate::ports::{EncryptionContext, Kms};
use crate::secret::SecretValue;
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};
use std::collections::BTreeMap;

/// What every sealed candidate starts with.
pub const PREFIX: &str = "rotor1";

/// The longest a candidate may be valid: well inside the 90 days in which Step Functions
/// refuses to start an execution name again.
pub const MAX_VALIDITY: Duration = Duration::days(7);

/// A candidate made and used at once (`rotor start`, `rotor rotate`): 1 hour.
pub const IMMEDIATE_VALIDITY: Duration = Duration::hours(1);

/// A candidate made ahead (`rotor encrypt`, then a workflow that may wait for a reviewer): 24 hours.
pub const AHEAD_VALIDITY: Duration = Duration::hours(24);

/// A parsed `candidate_ciphertext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The one execution name that may use it.
    pub execution: String,
    /// After this, it is refused.
    pub not_after: DateTime<Utc>,
    pub ciphertext: Vec<u8>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The execution name in an execution ARN (its last `:` field); a bare name is itself.
pub fn execution_name_of(execution_id: &str) -> &str {
    execution_id.rsplit(':').next().unwrap_or(execution_id)
}

/// Step Functions' rule for execution names: 1 to 80 of `[A-Za-z0-9_-]` (rotor's names use
/// nothing else), so the name cannot contain the `.` that separates the fields.
pub fn valid_execution_name(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Sealed {
    /// The encryption context the ciphertext is made and opened under.
    pub fn context(&self, secret_id: &str) -> EncryptionContext {
        context(secret_id, &self.execution, self.not_after)
    }

    pub fn encode(&self) -> String {
        format!(
            "{PREFIX}.{}.{}.{}",
            self.execution,
            stamp(self.not_after),
            base64::engine::general_purpose::STANDARD.encode(&self.ciphertext)
        )
    }

    /// Reads a `candidate_ciphertext`; anything else is `Candidate.Invalid` saying what is wrong.
    pub fn parse(text: &str) -> Result<Sealed> {
        let text = text.trim();
        let fields: Vec<&str> = text.split('.').collect();
        if fields.first() != Some(&PREFIX) || fields.len() != 4 {
            return Err(RotorError::candidate(format!(
                "candidate_ciphertext is not a rotor candidate ({PREFIX}.<execution>.<not-after>.<ciphertext>): make it with rotor encrypt, or let rotor start or rotor rotate encrypt the value (a bare KMS ciphertext names no execution and no deadline, so it is not accepted)"
            )));
        }
        let execution = fields[1].to_string();
        if !valid_execution_name(&execution) {
            return Err(RotorError::candidate(
                "candidate_ciphertext names no valid execution (1 to 80 of A-Z a-z 0-9 _ -)",
            ));
        }
        let not_after = DateTime::parse_from_rfc3339(fields[2])
            .map_err(|_| {
                RotorError::candidate(format!(
                    "candidate_ciphertext has no valid not-after time ({:?})",
                    fields[2]
                ))
            })?
            .with_timezone(&Utc);
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(fields[3])
            .map_err(|_| {
                RotorError::candidate("candidate_ciphertext: the ciphertext is not base64")
            })?;
        Ok(Sealed {
            execution,
            not_after,
            ciphertext,
        })
    }

    /// Refuses it for any execution but its own, after its deadline, or when it claims a
    /// longer life than [`MAX_VALIDITY`].
    pub fn check(&self, execution_id: &str, now: DateTime<Utc>) -> Result<()> {
        let name = execution_name_of(execution_id);
        if name != self.execution {
            return Err(RotorError::candidate(format!(
                "the candidate was made for execution {}, not {name}: a candidate is used by its own execution only, once (is this a replay? encrypt the new value again)",
                self.execution
            )));
        }
        if now > self.not_after {
            return Err(RotorError::candidate(format!(
                "the candidate expired at {} (it is valid until its not-after time only): encrypt it again",
                stamp(self.not_after)
            )));
        }
        if self.not_after - now > MAX_VALIDITY {
            return Err(RotorError::candidate(format!(
                "the candidate is valid until {}, more than {} days ahead: rotor accepts at most {} days",
                stamp(self.not_after),
                MAX_VALIDITY.num_days(),
                MAX_VALIDITY.num_days()
            )));
        }
        Ok(())
    }
}

/// `{"SecretId", "Execution", "NotAfter"}`: the encryption context of a candidate.
pub fn context(secret_id: &str, execution: &str, not_after: DateTime<Utc>) -> EncryptionContext {
    BTreeMap::from([
        ("SecretId".to_string(), secret_id.to_string()),
        ("Execution".to_string(), execution.to_string()),
        ("NotAfter".to_string(), stamp(not_after)),
    ])
}

/// Encrypts `value` for the execution `execution` of a rotation of `secret_id`, valid until
/// `not_after` (cut to whole seconds); returns the `candidate_ciphertext`.
pub async fn seal(
    kms: &dyn Kms,
    secret_id: &str,
    execution: &str,
    not_after: DateTime<Utc>,
    value: &SecretValue,
) -> Result<String> {
    if !valid_execution_name(execution) {
        return Err(RotorError::input(format!(
            "{execution:?} is not a valid execution name (1 to 80 of A-Z a-z 0-9 _ -)"
        )));
    }
    // Whole seconds, as the context and the text carry it.
    let not_after = not_after.trunc_subsecs(0);
    let ciphertext = kms
        .encrypt(value, &context(secret_id, execution, not_after))
        .await?;
    Ok(Sealed {
        execution: execution.to_string(),
        not_after,
        ciphertext,
    }
    .encode())
}

/// What stage-pending does with a `candidate_ciphertext`: read it, refuse it unless this
/// execution may use it now, decrypt it under its own context.
pub async fn open(
    kms: &dyn Kms,
    secret_id: &str,
    execution_id: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<SecretValue> {
    let sealed = Sealed::parse(text)?;
    sealed.check(execution_id, now)?;
    kms.decrypt(&sealed.ciphertext, &sealed.context(secret_id))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, h, 0, 0).unwrap()
    }

    fn sealed() -> Sealed {
        Sealed {
            execution: "rotate-prod-openai-20261203T100000-0a1b2c3d".into(),
            not_after: at(11),
            ciphertext: vec![1, 2, 3, 250],
        }
    }

    const ARN: &str =
        "arn:aws:states:us-east-1:123456789012:execution:rotor-rotation:rotate-prod-openai-20261203T100000-0a1b2c3d";

    #[test]
    fn it_reads_back_what_it_writes() {
        let text = sealed().encode();
        assert_eq!(
            text,
            "rotor1.rotate-prod-openai-20261203T100000-0a1b2c3d.2026-12-03T11:00:00Z.AQID+g=="
        );
        assert_eq!(Sealed::parse(&format!(" {text}\n")).unwrap(), sealed());
    }

    #[test]
    fn its_context_names_the_secret_the_execution_and_the_deadline() {
        let ctx = sealed().context("prod/openai");
        assert_eq!(
            serde_json::to_string(&ctx).unwrap(),
            r#"{"Execution":"rotate-prod-openai-20261203T100000-0a1b2c3d","NotAfter":"2026-12-03T11:00:00Z","SecretId":"prod/openai"}"#
        );
    }

    #[test]
    fn its_own_execution_may_use_it_before_the_deadline() {
        sealed().check(ARN, at(10)).unwrap();
        sealed().check(ARN, at(11)).unwrap();
        sealed()
            .check("rotate-prod-openai-20261203T100000-0a1b2c3d", at(10))
            .unwrap();
    }

    #[test]
    fn another_execution_is_refused() {
        let other = ARN.replace("0a1b2c3d", "ffffffff");
        let e = sealed().check(&other, at(10)).unwrap_err();
        assert_eq!(e.asl_name(), "Candidate.Invalid");
        assert!(
            e.to_string()
                .contains("not rotate-prod-openai-20261203T100000-ffffffff"),
            "{e}"
        );
    }

    #[test]
    fn after_the_deadline_it_is_refused() {
        let e = sealed()
            .check(ARN, at(11) + Duration::seconds(1))
            .unwrap_err();
        assert_eq!(e.asl_name(), "Candidate.Invalid");
        assert!(
            e.to_string().contains("expired at 2026-12-03T11:00:00Z"),
            "{e}"
        );
    }

    #[test]
    fn a_deadline_too_far_ahead_is_refused() {
        let mut s = sealed();
        s.not_after = at(10) + MAX_VALIDITY + Duration::seconds(1);
        let e = s.check(ARN, at(10)).unwrap_err();
        assert_eq!(e.asl_name(), "Candidate.Invalid");
        s.not_after = at(10) + MAX_VALIDITY;
        s.check(ARN, at(10)).unwrap();
    }

    #[test]
    fn anything_but_a_sealed_candidate_is_refused_naming_what_is_wrong() {
        for (text, says) in [
            ("AQICAHh0ZXN0", "is not a rotor candidate"),
            ("rotor1.x.2026-12-03T11:00:00Z", "is not a rotor candidate"),
            (
                "rotor2.x.2026-12-03T11:00:00Z.AQID",
                "is not a rotor candidate",
            ),
            (
                "rotor1.a b.2026-12-03T11:00:00Z.AQID",
                "names no valid execution",
            ),
            ("rotor1.x.tomorrow.AQID", "no valid not-after time"),
            ("rotor1.x.2026-12-03T11:00:00Z.not*base64", "not base64"),
        ] {
            let e = Sealed::parse(text).unwrap_err();
            assert_eq!(e.asl_name(), "Candidate.Invalid", "{text}");
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_execution_name_is_the_last_field_of_its_arn() {
        assert_eq!(
            execution_name_of(ARN),
            "rotate-prod-openai-20261203T100000-0a1b2c3d"
        );
        assert_eq!(execution_name_of("plain"), "plain");
    }
}
