//! Which outside world the functions talk to, chosen once per cold start. Until the AWS
//! adapters land, the backend is the local store (`ROTOR_STORE`, default `./.rotor`), which lets
//! `cargo lambda watch` run the real functions on a laptop against the store `rotor` uses.

use rotor_core::ports::{Services, SystemClock};
use rotor_core::RotorError;
use std::sync::Arc;

pub async fn services_from_env() -> Result<Services, RotorError> {
    let backend = std::env::var("ROTOR_BACKEND").unwrap_or_else(|_| "local".into());
    match backend.as_str() {
        "local" => {
            let store = rotor_local_store::LocalStore::open_default()?;
            Ok(Services {
                store: Arc::new(store.clone()),
                kms: Arc::new(store.clone()),
                iam: Arc::new(store.clone()),
                audit: Arc::new(store),
                prober: Arc::new(rotor_probe_http::ReqwestProber::default()),
                clock: Arc::new(SystemClock),
            })
        }
        other => Err(RotorError::input(format!(
            "ROTOR_BACKEND={other:?} is not supported (supported: local)"
        ))),
    }
}
