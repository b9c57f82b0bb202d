//! Which outside world the functions talk to.

use rotor_core::ports::Services;
use rotor_core::RotorError;

pub async fn services_from_env() -> Result<Services, RotorError> {
    Err(RotorError::Unsupported("no backend is wired yet".into()))
}
