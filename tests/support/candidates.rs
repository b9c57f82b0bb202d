//! Candidates as the product makes them, for tests that build execution inputs themselves.

use rotor_core::candidate::{self, Sealed};
use rotor_core::events::ExecutionInput;
use rotor_core::ports::Kms;
use rotor_core::secret::SecretValue;

/// `value` sealed (with `kms`) for a new execution of a rotation of `secret`, valid for an
/// hour: what `rotor start` puts in `candidate_ciphertext`. Run it with [`execution_name`].
pub async fn sealed(kms: &dyn Kms, secret: &str, value: &str) -> String {
    let name = crate::moto::unique_name("candidate");
    candidate::seal(
        kms,
        secret,
        &name,
        chrono::Utc::now() + candidate::IMMEDIATE_VALIDITY,
        &SecretValue::new(value),
    )
    .await
    .unwrap_or_else(|e| panic!("sealing a candidate for {secret}: {e}"))
}

/// The name an execution of `input` must run under: its candidate's (the one execution the
/// candidate may be used by), else a fresh name for `label`.
pub fn execution_name(input: &ExecutionInput, label: &str) -> String {
    match input.candidate_ciphertext.as_deref().map(Sealed::parse) {
        Some(Ok(sealed)) => sealed.execution,
        _ => crate::moto::unique_name(label),
    }
}
