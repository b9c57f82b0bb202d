//! rotor-core: the rotation itself, free of any particular cloud or store.
//!
//! * [`events`]: the execution input and each handler's input/output (JSON examples there).
//! * [`policy`]: the per-secret policy read from the secret's `rotor:*` tags.
//! * [`consumers`]: what is redeployed on a new value (`rotor:consumers`), and ECS as a port.
//! * [`stages`]: UpdateSecretVersionStage's rules, planned once for both stores.
//! * [`ports`]: traits for the outside world (secret store, KMS, IAM, STS, HTTP probes, audit, clock).
//! * [`candidate`]: the candidate as a rotation carries it (sealed to one execution and a deadline).
//! * [`dispatch`]: a function's name and JSON payload to its handler, one way for the Lambda binaries and the runner.
//! * [`error`]: one error enum; every variant has a stable ASL error name.
//! * [`handlers`]: stage-pending, health-probe, promote, revoke-old-iam-key, rollback, audit-log.
//! * [`iam`]: IAM access key rotation's shared parts (the key value, staging, the STS proof).

pub mod candidate;
pub mod consumers;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod handlers;
pub mod iam;
pub mod limits;
pub mod policy;
pub mod ports;
pub mod probe;
pub mod probe_destination;
pub mod secret;
pub mod stages;

pub use error::{Result, RotorError};

/// A time as every record of rotor writes it: RFC 3339, UTC, milliseconds (`2026-12-03T13:00:00.000Z`).
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
