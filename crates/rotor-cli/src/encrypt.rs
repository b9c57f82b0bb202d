//! `rotor encrypt --secret ID`: seal a new value for its rotation ahead of time, so that it
//! never has to be stored anywhere else (a GitHub environment secret, a file): the operator
//! pipes the value in, and only the candidate (KMS ciphertext sealed to one execution name and
//! a deadline, see `rotor_core::candidate`) comes out, for `rotor start
//! --candidate-ciphertext-env` or the rotate workflow's `candidate_ciphertext` input.
//!
//! On aws with `--kms-key-id` (or ROTOR_KMS_KEY_ID) it makes one call, `kms:Encrypt` under the
//! candidate's encryption context; without it, DescribeSecret and DescribeKey first find the
//! secret's key. It never reads the secret.

use crate::backend::{Backend, GlobalArgs, Need};
use crate::exit;
use crate::store;
use crate::workflow;
use anyhow::{bail, Result};
use chrono::Duration;
use clap::Args;
use rotor_core::candidate::MAX_VALIDITY;
use std::sync::Arc;

#[derive(Args)]
pub struct EncryptArgs {
    /// The secret the value is for (the name the rotation will use).
    #[arg(long)]
    secret: String,
    /// How long the candidate may be used: a number with s, m, h or d (at most 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_validity)]
    valid_for: Duration,
}

/// `90s`, `30m`, `24h`, `7d`: more than 0, at most [`MAX_VALIDITY`].
fn parse_validity(text: &str) -> Result<Duration, String> {
    let not_a_duration =
        || format!("{text:?} is not a duration: give a number with s, m, h or d (30m, 24h, 7d)");
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = digits.parse().map_err(|_| not_a_duration())?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(not_a_duration()),
    };
    if d <= Duration::zero() || d > MAX_VALIDITY {
        return Err(format!(
            "{text:?}: a candidate is valid for more than 0 and at most {} days",
            MAX_VALIDITY.num_days()
        ));
    }
    Ok(d)
}

pub fn encrypt(global: &GlobalArgs, args: EncryptArgs) -> Result<u8> {
    if args.secret.trim().is_empty() {
        bail!("--secret is empty");
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!(
            "rotor: reading the new value from stdin (end with Ctrl-D); it is not echoed back"
        );
    }
    let value = crate::secret::read_value(None, true, "candidate")?;
    workflow::check_candidate(&value)?;
    let rt = store::runtime()?;
    rt.block_on(async {
        let backend = Backend::open(global, Need::Existing).await?;
        let kms: Arc<dyn rotor_core::ports::Kms> = match &backend {
            Backend::Local(store) => Arc::new(store.clone()),
            Backend::Aws(aws) => Arc::new(rotor_aws::AwsKms::new(
                &aws.config,
                aws.encrypt_key(&args.secret).await?,
            )),
        };
        let (text, _) =
            workflow::seal_new_candidate(kms.as_ref(), &args.secret, args.valid_for, &value)
                .await?;
        drop(value);
        println!("{text}");
        Ok(exit::OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rotor_core::candidate::AHEAD_VALIDITY;

    #[test]
    fn validity_is_a_number_and_a_unit_within_seven_days() {
        assert_eq!(parse_validity("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_validity("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_validity("24h").unwrap(), AHEAD_VALIDITY);
        assert_eq!(parse_validity("7d").unwrap(), MAX_VALIDITY);
        for bad in ["", "h", "24", "8d", "0m", "-1h", "1w", "1.5h"] {
            assert!(parse_validity(bad).is_err(), "{bad}");
        }
    }
}
