//! Shared helpers for the `rotor` CLI acceptance tests: a private store per test, every command
//! run through the real binary (with `RUST_LOG=trace`, recorded for leak checks), the vendor
//! stand-in on a tokio runtime owned by the test, and snapshots of a secret.

#![allow(dead_code)]

use rotor_core::ports::SecretStore;
use rotor_core::secret::{SecretInfo, Version};
use rotor_local_store::LocalStore;
use rotor_standins::VendorStandIn;
use serde_json::Value;
use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A fresh directory under the system temp dir (named for the test), removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        TempDir(
            tempfile::Builder::new()
                .prefix(&format!("rotor-cli-{label}-"))
                .tempdir()
                .unwrap(),
        )
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// Runs a future to completion on a throwaway runtime (the local store's async methods do
/// their work synchronously; this only drives them).
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// What one command did.
#[derive(Clone)]
pub struct Out {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Out {
    fn from_output(args: Vec<String>, o: Output) -> Out {
        Out {
            args,
            code: o
                .status
                .code()
                .expect("rotor exited (not killed by a signal)"),
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// Both streams, for "the message names the problem" checks.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout(), self.stderr())
    }
    /// The one JSON document on stdout.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of {:?} is not one JSON document ({e}):\n{}",
                self.args,
                self.show()
            )
        })
    }
    /// For assertion messages.
    pub fn show(&self) -> String {
        format!(
            "rotor {:?} exited {}\n--- stdout\n{}--- stderr\n{}",
            self.args,
            self.code,
            self.stdout(),
            self.stderr()
        )
    }
    pub fn expect_code(&self, code: i32) -> &Out {
        assert_eq!(self.code, code, "{}", self.show());
        self
    }
    pub fn expect_ok(&self) -> &Out {
        self.expect_code(0)
    }
}

/// One test's rotor: its own store directory (`--store`), its own working directory (so a
/// stray default `./.rotor` would be noticed), and a transcript of everything the recorded
/// commands printed.
///
/// The test process opens the store once ([`Rotor::open_store`] hands out clones of one
/// connection): a second `LocalStore::open` of the same directory in one process closes a file
/// descriptor of `rotor.db`, which on POSIX drops the SQLite locks the first connection holds,
/// and the next `rotor` process to exit then deletes the WAL under it (see
/// `a_second_local_store_in_one_process_loses_no_writes`). For the same reason, read the
/// store's files ([`files_under`]) only once the test is done with the store.
pub struct Rotor {
    store_handle: std::cell::OnceCell<LocalStore>,
    root: TempDir,
    pub store: PathBuf,
    work: PathBuf,
    files: PathBuf,
    transcript: RefCell<Vec<Out>>,
}

impl Rotor {
    pub fn new(label: &str) -> Rotor {
        let root = TempDir::new(label);
        let store = root.path().join("store");
        let work = root.path().join("work");
        let files = root.path().join("files");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&files).unwrap();
        Rotor {
            store_handle: std::cell::OnceCell::new(),
            root,
            store,
            work,
            files,
            transcript: RefCell::new(Vec::new()),
        }
    }

    /// `rotor --store DIR ARGS...`, with `RUST_LOG=trace` (any tracing output would show) and
    /// no `ROTOR_STORE`, in this test's own working directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rotor"));
        c.arg("--store")
            .arg(&self.store)
            .args(args)
            .current_dir(&self.work)
            .env_remove("ROTOR_STORE")
            .env("RUST_LOG", "trace")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null());
        c
    }

    fn record(&self, out: &Out) {
        self.transcript.borrow_mut().push(out.clone());
    }

    /// Runs a command and keeps its output in the transcript.
    pub fn run(&self, args: &[&str]) -> Out {
        let out = self.run_unrecorded(args);
        self.record(&out);
        out
    }

    /// Runs a command without keeping its output (for `secret get --reveal`, which is meant
    /// to print a value).
    pub fn run_unrecorded(&self, args: &[&str]) -> Out {
        let o = self.command(args).output().expect("rotor runs");
        Out::from_output(args.iter().map(|s| s.to_string()).collect(), o)
    }

    /// Runs a command with `input` on stdin; recorded.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        let mut child = self.spawn(args);
        {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input).unwrap();
        }
        self.wait(args, child)
    }

    /// Starts a command with piped stdin, stdout and stderr.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rotor starts")
    }

    /// Waits for a spawned command; recorded.
    pub fn wait(&self, args: &[&str], child: Child) -> Out {
        let o = child.wait_with_output().expect("rotor finishes");
        let out = Out::from_output(args.iter().map(|s| s.to_string()).collect(), o);
        self.record(&out);
        out
    }

    /// Every recorded command's output.
    pub fn transcript(&self) -> Vec<Out> {
        self.transcript.borrow().clone()
    }

    /// Writes `bytes` to a file outside the store and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.files.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// The store, opened once in this process (another client of the same SQLite file as the
    /// `rotor` processes); every call returns a clone of that one connection.
    pub fn open_store(&self) -> LocalStore {
        self.store_handle
            .get_or_init(|| LocalStore::open(&self.store).expect("the test opens the store"))
            .clone()
    }

    /// `secret create ID --kind vendor-api-key --probe openai --tag rotor:probe-url=URL ...`
    /// with `value` from a file.
    pub fn create_vendor_secret(&self, id: &str, value: &str, probe_url: &str, tags: &[&str]) {
        let file = self.file(
            &format!("initial-{}", uuid::Uuid::new_v4()),
            value.as_bytes(),
        );
        let url_tag = format!("rotor:probe-url={probe_url}");
        let mut args = vec![
            "secret",
            "create",
            id,
            "--kind",
            "vendor-api-key",
            "--probe",
            "openai",
            "--tag",
            &url_tag,
        ];
        for t in tags {
            args.push("--tag");
            args.push(t);
        }
        args.extend(["--value-file", &file]);
        self.run(&args).expect_ok();
    }

    /// `rotate --secret ID --candidate-file F EXTRA...` (with `--reason test` unless EXTRA
    /// gives one); recorded.
    pub fn rotate(&self, id: &str, candidate: &str, extra: &[&str]) -> Out {
        let file = self.file(
            &format!("candidate-{}", uuid::Uuid::new_v4()),
            candidate.as_bytes(),
        );
        let mut args = vec!["rotate", "--secret", id, "--candidate-file", &file];
        if !extra.contains(&"--reason") {
            args.extend(["--reason", "test"]);
        }
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `secret get ID --stage STAGE --reveal`, unrecorded: the value, or `None` when the
    /// command failed (e.g. no version carries the stage).
    pub fn reveal(&self, id: &str, stage: &str) -> Option<String> {
        let out = self.run_unrecorded(&["secret", "get", id, "--stage", stage, "--reveal"]);
        if out.code != 0 {
            return None;
        }
        let text = String::from_utf8(out.stdout).expect("a revealed value is UTF-8");
        Some(
            text.strip_suffix('\n')
                .expect("the value is printed with one newline")
                .to_string(),
        )
    }

    /// `history --json` as a list of executions.
    pub fn executions(&self) -> Vec<Value> {
        let out = self.run(&["history", "--json"]);
        out.expect_ok();
        out.json()
            .as_array()
            .expect("history --json is a list")
            .clone()
    }

    /// `audit --json` as a list of records.
    pub fn audit(&self) -> Vec<Value> {
        let out = self.run(&["audit", "--json"]);
        out.expect_ok();
        out.json()
            .as_array()
            .expect("audit --json is a list")
            .clone()
    }
}

impl Drop for Rotor {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                !self.work.join(".rotor").exists(),
                "a command used the default ./.rotor store instead of --store"
            );
        }
    }
}

/// Every file under `dir` (recursively) and its bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                found.push((path, bytes));
            }
        }
    }
    found.sort();
    found
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The store's view of a secret.
pub fn describe(store: &LocalStore, id: &str) -> SecretInfo {
    block_on(store.describe(id)).expect("the secret exists")
}

/// Every version of a secret with its plaintext, read by version id through the store API.
pub fn all_values(store: &LocalStore, id: &str) -> Vec<(String, String)> {
    describe(store, id)
        .versions
        .iter()
        .map(|v| {
            let (_, value) = block_on(store.get_value(id, &Version::Id(v.version_id.clone())))
                .expect("every version reads by id");
            (v.version_id.clone(), value.expose().to_string())
        })
        .collect()
}

/// The version carrying `stage`, if any.
pub fn version_with(info: &SecretInfo, stage: &str) -> Option<String> {
    info.version_with(stage).map(|v| v.version_id.clone())
}

/// Checks the labels are consistent: AWSCURRENT on exactly one version, no label on two.
pub fn assert_consistent(info: &SecretInfo) {
    for stage in ["AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"] {
        let holders = info
            .versions
            .iter()
            .filter(|v| v.stages.iter().any(|s| s == stage))
            .count();
        assert!(holders <= 1, "{stage} on {holders} versions: {info:?}");
        if stage == "AWSCURRENT" {
            assert_eq!(holders, 1, "exactly one AWSCURRENT: {info:?}");
        }
    }
}

/// What a user can see of a secret, plus the store's own description: equal snapshots mean
/// nothing about the secret changed (versions, their creation times, labels, tags, value).
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub show_json: String,
    pub current_value: String,
    pub info: SecretInfo,
    pub values: Vec<(String, String)>,
}

pub fn snapshot(rotor: &Rotor, id: &str) -> Snapshot {
    let show = rotor.run_unrecorded(&["secret", "show", id, "--json"]);
    show.expect_ok();
    let current_value = rotor
        .reveal(id, "AWSCURRENT")
        .expect("the secret has an AWSCURRENT value");
    let pending = rotor.run_unrecorded(&["secret", "get", id, "--stage", "AWSPENDING", "--reveal"]);
    assert_eq!(pending.code, 2, "no AWSPENDING: {}", pending.show());
    assert!(
        pending.stderr().contains("AWSPENDING"),
        "{}",
        pending.show()
    );
    let store = rotor.open_store();
    Snapshot {
        show_json: show.stdout(),
        current_value,
        info: describe(&store, id),
        values: all_values(&store, id),
    }
}

/// The vendor stand-in, served by a runtime this test owns, while the test itself runs
/// `rotor` processes synchronously.
pub struct StandIn {
    pub vendor: VendorStandIn,
    rt: tokio::runtime::Runtime,
}

/// A loopback TCP forwarder that holds each connection for a while before passing it on to
/// the stand-in: a vendor that answers slowly, in real time, whatever clock rotor runs on.
pub struct SlowProxy {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

impl SlowProxy {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl StandIn {
    pub fn start() -> StandIn {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let vendor = rt.block_on(VendorStandIn::start());
        StandIn { vendor, rt }
    }

    pub fn probe_url(&self, vendor: &str) -> String {
        self.vendor.probe_url(vendor)
    }

    pub fn issue_key(&self, vendor: &str) -> String {
        self.vendor.issue_key(vendor)
    }

    /// A proxy in front of the stand-in that waits `delay` before forwarding each connection.
    pub fn slow_proxy(&self, delay: Duration) -> SlowProxy {
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let target = self.vendor.addr();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        self.rt.spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        SlowProxy { addr, connections }
    }
}

/// A key shaped like the vendor's that the stand-in never issued (so it rejects it).
pub fn unissued_openai_key() -> String {
    format!(
        "sk-proj-{}{}",
        uuid::Uuid::new_v4().simple(),
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

/// The function binaries `--lambda-binaries` runs: `ROTOR_LAMBDA_BINARIES` (scripts/test
/// builds them), else the directory `rotor` itself was built into.
pub fn lambda_binaries() -> std::path::PathBuf {
    let dir = match std::env::var("ROTOR_LAMBDA_BINARIES") {
        Ok(d) if !d.trim().is_empty() => std::path::PathBuf::from(d.trim()),
        _ => std::path::Path::new(env!("CARGO_BIN_EXE_rotor"))
            .parent()
            .unwrap()
            .to_path_buf(),
    };
    for f in rotor_core::dispatch::FUNCTIONS {
        assert!(
            dir.join(f).is_file(),
            "{} has no function binary {f}: run scripts/test, or cargo build --workspace --bins",
            dir.display()
        );
    }
    dir
}
