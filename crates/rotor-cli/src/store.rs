//! Opening the local store and the services the handlers run on.

use anyhow::{Context, Result};
use rotor_core::ports::{Services, SystemClock};
use rotor_local_store::LocalStore;
use std::path::PathBuf;
use std::sync::Arc;

/// Opens the store, creating it when missing (for commands that add to it).
pub fn open_or_create(flag: Option<PathBuf>) -> Result<LocalStore> {
    let dir = rotor_local_store::resolve_dir(flag.as_deref());
    LocalStore::open(&dir).with_context(|| format!("cannot open the store at {}", dir.display()))
}

/// Opens an existing store: a mistyped --store must not silently create an empty one.
pub fn open(flag: Option<PathBuf>) -> Result<LocalStore> {
    let dir = rotor_local_store::resolve_dir(flag.as_deref());
    if !dir.join(rotor_local_store::DB_FILE).exists() {
        anyhow::bail!(
            "there is no rotor store at {} (create a secret there first, run `rotor demo`, or give --store / ROTOR_STORE)",
            dir.display()
        );
    }
    open_or_create(flag)
}

/// The embedded default: the local store stands in for Secrets Manager, KMS, IAM and
/// CloudWatch; probes are real HTTP requests.
/// The probe allow-list is `ROTOR_PROBE_ALLOWED_HOSTS`, as in the health-probe function.
pub fn services(store: &LocalStore) -> Result<Services> {
    Ok(Services {
        store: Arc::new(store.clone()),
        kms: Arc::new(store.clone()),
        iam: Arc::new(store.clone()),
        sts: Arc::new(store.clone()),
        audit: Arc::new(store.clone()),
        prober: Arc::new(rotor_probe_http::ReqwestProber::default()),
        clock: Arc::new(SystemClock),
        ecs: Arc::new(store.clone()),
        probe_hosts: rotor_core::probe_destination::ProbeHosts::from_env()?,
    })
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
