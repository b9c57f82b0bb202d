//! Executions that survive their process: an in-process run of the state machine is as durable
//! as one on Step Functions.
//!
//! * The record is written as RUNNING before the first state, and every history event is
//!   written as it happens (the local store; on the aws backend the local cache beside it), so
//!   `rotor history` shows a running or killed execution with its events so far.
//! * The process that runs an execution holds a lock file (`<store>/running/<name>.lock`, an
//!   `flock` the OS drops when the process ends however it ends): a RUNNING record whose lock
//!   is free belongs to a process that died, and `rotor resume`/`rotor recover` may take it over;
//!   one whose lock is held is still running somewhere and is left alone.
//! * SIGINT and SIGTERM stop the run at the next state boundary (a Task in flight finishes
//!   first; a Wait is cut short) and record it as ABORTED, resumable.

use anyhow::{bail, Context, Result};
use rotor_asl::executor::{Interrupt, Outcome, Resume, Status};
use rotor_core::events::ExecutionInput;
use rotor_core::ports::Services;
use rotor_local_store::{ExecutionRecord, LocalStore, RUNNING};
use rotor_runner::{load_rotation_definition, run_rotation, RunnerOptions};
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Fault injection for the durability tests: the process aborts (as if killed) right after
/// the history event with this id is written. Unset in normal use.
pub const ABORT_AFTER_EVENT_ENV: &str = "ROTOR_FAULT_ABORT_AFTER_EVENT";

/// The exclusive lock of a running execution; released when dropped or when the process ends.
pub struct RunLock {
    _file: File,
}

fn lock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("running").join(format!("{name}.lock"))
}

impl RunLock {
    /// Takes the lock of execution `name`, or `None` when another process holds it.
    pub fn try_acquire(store_dir: &Path, name: &str) -> Result<Option<RunLock>> {
        let path = lock_path(store_dir, name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the run lock {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a file descriptor this function owns.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    return Ok(None);
                }
                return Err(err).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        Ok(Some(RunLock { _file: file }))
    }

    /// [`Self::try_acquire`], trying again for up to `patience`: another process's
    /// [`Self::is_held`] holds the lock for a moment while it looks.
    pub fn acquire_within(
        store_dir: &Path,
        name: &str,
        patience: std::time::Duration,
    ) -> Result<Option<RunLock>> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            if let Some(lock) = RunLock::try_acquire(store_dir, name)? {
                return Ok(Some(lock));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Whether a process is running execution `name` now.
    pub fn is_held(store_dir: &Path, name: &str) -> bool {
        if !lock_path(store_dir, name).exists() {
            return false;
        }
        matches!(RunLock::try_acquire(store_dir, name), Ok(None))
    }

    /// Removes the lock file of a finished execution (best effort).
    fn remove(store_dir: &Path, name: &str) {
        let _ = std::fs::remove_file(lock_path(store_dir, name));
    }
}

/// Whether an execution record is one that stopped before its end: ABORTED (interrupted), or
/// RUNNING with nobody running it (the process was killed).
pub fn is_interrupted(store: &LocalStore, record: &ExecutionRecord) -> bool {
    match record.status.as_str() {
        "ABORTED" => true,
        RUNNING => {
            if RunLock::is_held(store.dir(), &record.name) {
                return false;
            }
            // `record` may be stale: its run may have ended (record saved, then lock released)
            // since it was read. Read it again now that the lock is known to be free.
            matches!(store.load_execution(&record.execution_id), Ok(Some(r)) if r.status == RUNNING)
        }
        _ => false,
    }
}

/// SIGINT/SIGTERM ask `interrupt` to stop at the next state boundary; a second signal ends the
/// process at once (the record then stays RUNNING, which `rotor recover` handles as a kill).
fn watch_signals(interrupt: Arc<Interrupt>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let which = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if interrupt.requested().is_some() {
                std::process::exit(130);
            }
            eprintln!("rotor: {which}: stopping at the next state boundary (again to stop now)");
            interrupt.request(format!("interrupted by {which}"));
        }
    });
}

/// What to run: a new execution, or an interrupted one going on from a point of its history.
pub enum Start {
    New {
        name: String,
        input: ExecutionInput,
    },
    Resume {
        record: Box<ExecutionRecord>,
        input: ExecutionInput,
        state: String,
        state_input: Value,
    },
}

/// How the run goes: clock, jitter seed, live output.
pub struct Options {
    pub real_time: bool,
    pub seed: Option<u64>,
    pub observer: Option<rotor_asl::executor::Observer>,
    /// Who answers the Tasks instead of the in-process handlers (`--lambda-binaries`).
    pub invoker: Option<Arc<dyn rotor_asl::task::FunctionInvoker>>,
}

/// Runs (or resumes) one execution durably: see the module docs. Returns the execution's
/// record as saved at its end (or at its interruption) and the outcome.
pub async fn run(
    records: &LocalStore,
    services: Services,
    start: Start,
    options: Options,
) -> Result<(ExecutionRecord, Outcome)> {
    let started = chrono::Utc::now();
    let (mut record, input, resume) = match start {
        Start::New { name, input } => {
            let record = ExecutionRecord {
                execution_id: rotor_asl::executor::execution_arn(
                    rotor_runner::STATE_MACHINE_NAME,
                    &name,
                ),
                name,
                secret_id: input.secret_id.clone(),
                action: input.action.as_str().into(),
                status: RUNNING.into(),
                started_at: rotor_asl::executor::timestamp(started),
                finished_at: None,
                input: serde_json::to_value(&input)?,
                output: None,
                error: None,
                cause: None,
                events: Vec::new(),
            };
            (record, input, None)
        }
        Start::Resume {
            record,
            input,
            state,
            state_input,
        } => {
            let start_time = chrono::DateTime::parse_from_rfc3339(&record.started_at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or(started);
            let redrives = record
                .events
                .iter()
                .filter(|e| e["type"] == "ExecutionRedriven")
                .count() as u32;
            let resume = Resume {
                state,
                input: state_input,
                events: record.events.clone(),
                start_time,
                redrive_count: redrives + 1,
            };
            let mut record = *record;
            record.input = serde_json::to_value(&input)?;
            (record, input, Some(resume))
        }
    };
    let lock = RunLock::acquire_within(
        records.dir(),
        &record.name,
        std::time::Duration::from_secs(2),
    )?;
    let Some(lock) = lock else {
        bail!(
            "execution {} is being run by another rotor process; wait for it (rotor history --execution {})",
            record.name,
            record.name
        );
    };
    // The events so far, then the record as RUNNING: a kill between the two leaves the
    // interrupted record as it was, still resumable.
    for e in &record.events {
        records.append_execution_event(&record.execution_id, e)?;
    }
    records.save_execution(&ExecutionRecord {
        status: RUNNING.into(),
        finished_at: None,
        output: None,
        error: None,
        cause: None,
        events: Vec::new(),
        ..record.clone()
    })?;

    let abort_after: Option<u64> = std::env::var(ABORT_AFTER_EVENT_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok());
    let persisted = {
        let store = records.clone();
        let id = record.execution_id.clone();
        let live = options.observer.clone();
        let warned = AtomicBool::new(false);
        Arc::new(move |e: &Value| {
            if let Err(err) = store.append_execution_event(&id, e) {
                if !warned.swap(true, Ordering::Relaxed) {
                    eprintln!("rotor: warning: cannot record the execution's events as they happen ({err}); the run goes on");
                }
            }
            if let Some(o) = &live {
                o(e);
            }
            if abort_after.is_some() && e["id"].as_u64() == abort_after {
                std::process::abort();
            }
        }) as rotor_asl::executor::Observer
    };
    let interrupt = Interrupt::new();
    watch_signals(interrupt.clone());
    let runner = RunnerOptions {
        seed: options.seed,
        real_time: options.real_time,
        observer: Some(persisted),
        resume,
        interrupt: Some(interrupt),
        invoker: options.invoker,
        ..Default::default()
    };
    let outcome = run_rotation(
        load_rotation_definition(),
        services,
        &input,
        &record.name,
        runner,
    )
    .await;
    record.status = serde_json::to_value(outcome.status)?
        .as_str()
        .unwrap_or_default()
        .to_string();
    record.finished_at = (outcome.status != Status::Aborted)
        .then(|| rotor_asl::executor::timestamp(chrono::Utc::now()));
    record.output = outcome.output.clone();
    record.error = outcome.error.clone();
    record.cause = outcome.cause.clone();
    record.events = outcome.events.clone();
    // What happened is reported whatever the disk says: a failed save leaves the RUNNING
    // record and the events written so far, which `rotor recover` finishes.
    if let Err(e) = records.finish_execution(&record) {
        eprintln!(
            "rotor: warning: execution {} ended {} but its record could not be saved ({e}); its events so far are kept, and rotor recover --secret {} finishes it",
            record.name,
            record.status,
            crate::output::clean(&record.secret_id)
        );
        return Ok((record, outcome));
    }
    // Removed while still held, so no other process can take a lock on this path's old file.
    RunLock::remove(records.dir(), &record.name);
    drop(lock);
    Ok((record, outcome))
}
