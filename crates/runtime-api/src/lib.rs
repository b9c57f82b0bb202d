//! rotor-runtime-api: the real function binaries behind rotor's executor, through the Lambda
//! Runtime API, as Step Functions Local's `LAMBDA_ENDPOINT` points at a local Lambda.
//!
//! [`RuntimeApi`] answers a Task's Lambda invocation (it is a
//! [`rotor_asl::task::FunctionInvoker`]) by handing the payload to a real function process:
//!
//! * **One process per function, started once and kept warm.** A function is named by the
//!   Task's `FunctionName` or function ARN; the executable is the file in the directory whose
//!   name the function's name is or ends with after a dash (`rotor-prod-promote` runs
//!   `DIR/promote`; [`rotor_asl::task::resolve_function`]). It starts on its first invocation
//!   with the environment of this process, plus the variables the Lambda service sets
//!   (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`, `..._MEMORY_SIZE`, `..._VERSION`,
//!   `..._LOG_GROUP_NAME`, `..._LOG_STREAM_NAME`) and the ones [`Options`] adds.
//! * **The documented protocol**, on a loopback port of its own: `GET
//!   /2018-06-01/runtime/invocation/next` gives the payload with the headers
//!   `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//!   `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id`; `POST
//!   .../{id}/response` answers, `POST .../{id}/error` fails with the function's `errorType`
//!   and `errorMessage`, `POST /2018-06-01/runtime/init/error` reports a failed start.
//! * **Failures as Lambda reports them** (the Invoke API's `FunctionError: Unhandled` payload,
//!   whose `errorType` Step Functions makes the Task's Error): a process that exits without
//!   answering is `Runtime.ExitError` ("RequestId: ... Error: Runtime exited with error: exit
//!   status 1"), one that exceeds its timeout is killed and is `Sandbox.Timedout` ("... Task
//!   timed out after 3.00 seconds"), an executable that cannot be started is
//!   `Runtime.InvalidEntrypoint`, a function that does not exist is
//!   `Lambda.ResourceNotFoundException`. A crashed or timed-out process is started again on the
//!   next invocation (a new cold start), as Lambda does.
//! * Invocations of one function are answered one at a time (Lambda would start a second
//!   instance for a concurrent one; rotor's definition never invokes a function concurrently).
//!
//! Each process's start-up is measured: the time from spawn to its first `/next` (Lambda's
//! init duration) and its peak resident memory (`VmHWM`), read after every invocation
//! ([`RuntimeApi::reports`]).

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rotor_asl::task::{resolve_function, FunctionError, FunctionInvoker};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// Where the functions' output (their logs, which CloudWatch Logs keeps on AWS) goes.
#[derive(Debug, Clone, Default)]
pub enum Logs {
    /// This process's standard error (stdout too: a function's JSON log lines must never mix
    /// with this process's own output).
    #[default]
    Stderr,
    /// `DIR/<function>.log`, appended.
    Dir(PathBuf),
    /// Nowhere.
    Discard,
}

/// How the functions run.
#[derive(Debug, Clone)]
pub struct Options {
    /// One executable per function.
    pub dir: PathBuf,
    /// Each invocation's bound (the function's `timeout`); past it the process is killed.
    pub timeout: Duration,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (MB).
    pub memory_mb: u32,
    /// Variables every function gets on top of this process's environment.
    pub env: Vec<(String, String)>,
    /// Variables of single functions (by executable name), on top of `env`: each deployed
    /// function runs with its own role, so its credentials may differ.
    pub function_env: BTreeMap<String, Vec<(String, String)>>,
    pub logs: Logs,
    /// For the ARN of a function named without one.
    pub region: String,
    pub account: String,
}

impl Options {
    /// The functions of `dir` as rotor's Terraform deploys them (`lambda_timeout_seconds` 30,
    /// `lambda_memory_mb` 256), logs on stderr, us-east-1 / 123456789012 for ARNs made from a
    /// bare name.
    pub fn new(dir: impl Into<PathBuf>) -> Options {
        Options {
            dir: dir.into(),
            timeout: Duration::from_secs(30),
            memory_mb: 256,
            env: Vec::new(),
            function_env: BTreeMap::new(),
            logs: Logs::Stderr,
            region: "us-east-1".into(),
            account: "123456789012".into(),
        }
    }
}

/// Why the functions cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the function directory {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the function directory {} holds no executable file (one per function, named as in functions/: promote, stage-pending, ...)", .0.display())]
    Empty(PathBuf),
}

/// How one function process started and ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InstanceReport {
    /// The executable's name.
    pub function: String,
    /// From spawn to its first `/next` (Lambda's init duration), when it got that far.
    pub init_ms: Option<f64>,
    /// Invocations it answered (or failed).
    pub invocations: u32,
    /// Its peak resident memory (`VmHWM` of /proc), in KiB, when it could be read.
    pub peak_rss_kib: Option<u64>,
    /// `running`, `exited`, `timed out`.
    pub state: String,
}

/// The function processes, started as invocations need them.
pub struct RuntimeApi {
    options: Options,
    /// Executable names, sorted.
    functions: Vec<String>,
    instances: tokio::sync::Mutex<BTreeMap<String, Arc<Instance>>>,
    reports: Arc<Mutex<Vec<InstanceReport>>>,
}

/// One invocation on its way to a process.
struct Invocation {
    request_id: String,
    payload: Bytes,
    deadline_ms: u128,
    function_arn: String,
    trace_id: String,
}

/// What a process answered.
enum Answer {
    Response(Bytes),
    Error(FunctionError),
}

/// The state a process's Runtime API server shares with [`RuntimeApi::invoke`].
struct Shared {
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    waiting: Mutex<BTreeMap<String, oneshot::Sender<Answer>>>,
    spawned: Instant,
    first_next: Mutex<Option<Duration>>,
    init_error: Mutex<Option<FunctionError>>,
}

/// A running function process.
struct Instance {
    executable: String,
    pid: Option<u32>,
    child: tokio::sync::Mutex<Child>,
    queue: mpsc::Sender<Invocation>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    /// Index of this process's entry in the reports.
    report: usize,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// The executables of `options.dir`; nothing starts before the first invocation.
    pub fn new(mut options: Options) -> Result<RuntimeApi, Error> {
        // Absolute: each process runs in this directory, where a relative path means another.
        if let Ok(dir) = std::path::absolute(&options.dir) {
            options.dir = dir;
        }
        let entries = std::fs::read_dir(&options.dir).map_err(|source| Error::Dir {
            dir: options.dir.clone(),
            source,
        })?;
        let mut functions: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| is_executable(&e.path()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        functions.sort();
        if functions.is_empty() {
            return Err(Error::Empty(options.dir.clone()));
        }
        Ok(RuntimeApi {
            options,
            functions,
            instances: tokio::sync::Mutex::new(BTreeMap::new()),
            reports: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The executables it serves, sorted.
    pub fn functions(&self) -> &[String] {
        &self.functions
    }

    /// Every process started so far, in order, with its start-up figures.
    pub fn reports(&self) -> Vec<InstanceReport> {
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops every process (as Lambda retires idle instances); returns [`Self::reports`].
    pub async fn stop(&self) -> Vec<InstanceReport> {
        let instances = std::mem::take(&mut *self.instances.lock().await);
        for (_, instance) in instances {
            let mut child = instance.child.lock().await;
            let _ = child.start_kill();
            let _ = child.wait().await;
            self.set_state(instance.report, "stopped");
        }
        self.reports()
    }

    fn set_state(&self, report: usize, state: &str) {
        if let Some(r) = self
            .reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(report)
        {
            r.state = state.into();
        }
    }

    fn function_arn(&self, function: &str) -> String {
        if function.starts_with("arn:") {
            function.to_string()
        } else {
            format!(
                "arn:aws:lambda:{}:{}:function:{}",
                self.options.region,
                self.options.account,
                rotor_asl::task::function_name(function)
            )
        }
    }

    /// The warm process of `executable`, started if there is none.
    async fn instance(
        &self,
        executable: &str,
        function_name: &str,
    ) -> Result<Arc<Instance>, String> {
        let mut instances = self.instances.lock().await;
        if let Some(i) = instances.get(executable) {
            return Ok(i.clone());
        }
        let instance = Arc::new(self.start(executable, function_name).await?);
        instances.insert(executable.to_string(), instance.clone());
        Ok(instance)
    }

    async fn start(&self, executable: &str, function_name: &str) -> Result<Instance, String> {
        let (queue, next) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            next: tokio::sync::Mutex::new(next),
            waiting: Mutex::new(BTreeMap::new()),
            spawned: Instant::now(),
            first_next: Mutex::new(None),
            init_error: Mutex::new(None),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("cannot listen on a loopback port: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("cannot read the loopback port: {e}"))?;
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let path = self.options.dir.join(executable);
        let mut command = Command::new(&path);
        command
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.options.memory_mb.to_string(),
            )
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("local/[$LATEST]{}", uuid::Uuid::new_v4().simple()),
            )
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .envs(
                self.options
                    .function_env
                    .get(executable)
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k, v)),
            )
            .current_dir(&self.options.dir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // A process group of its own: Ctrl-C at the terminal reaches rotor, which stops at the
        // next state boundary, and not the function in the middle of a Task (it is killed when
        // rotor drops it).
        #[cfg(unix)]
        command.process_group(0);
        let (out, err) = self.output(executable)?;
        command.stdout(out).stderr(err);
        let child = command
            .spawn()
            .map_err(|e| format!("Error: fork/exec {}: {e}", path.display()))?;
        let report = {
            let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
            reports.push(InstanceReport {
                function: executable.to_string(),
                init_ms: None,
                invocations: 0,
                peak_rss_kib: None,
                state: "running".into(),
            });
            reports.len() - 1
        };
        Ok(Instance {
            executable: executable.to_string(),
            pid: child.id(),
            child: tokio::sync::Mutex::new(child),
            queue,
            shared,
            server,
            report,
        })
    }

    /// Where a process's stdout and stderr go.
    fn output(&self, executable: &str) -> Result<(Stdio, Stdio), String> {
        match &self.options.logs {
            Logs::Discard => Ok((Stdio::null(), Stdio::null())),
            Logs::Stderr => {
                let err = |e: std::io::Error| format!("cannot pass standard error on: {e}");
                let a = std::os::fd::AsFd::as_fd(&std::io::stderr())
                    .try_clone_to_owned()
                    .map_err(err)?;
                let b = std::os::fd::AsFd::as_fd(&std::io::stderr())
                    .try_clone_to_owned()
                    .map_err(err)?;
                Ok((Stdio::from(a), Stdio::from(b)))
            }
            Logs::Dir(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let path = dir.join(format!("{executable}.log"));
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                let copy = file
                    .try_clone()
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                Ok((Stdio::from(file), Stdio::from(copy)))
            }
        }
    }

    /// Forgets `instance` (it crashed or timed out): the next invocation starts a new one.
    async fn retire(&self, instance: &Arc<Instance>, state: &str) {
        let mut instances = self.instances.lock().await;
        if instances
            .get(&instance.executable)
            .is_some_and(|i| Arc::ptr_eq(i, instance))
        {
            instances.remove(&instance.executable);
        }
        self.set_state(instance.report, state);
    }

    fn record(&self, instance: &Instance) {
        let init = *instance
            .shared
            .first_next
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let rss = instance.pid.and_then(peak_rss_kib);
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = reports.get_mut(instance.report) {
            r.invocations += 1;
            r.init_ms = init.map(|d| d.as_secs_f64() * 1000.0);
            r.peak_rss_kib = match (r.peak_rss_kib, rss) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }

    async fn call(
        &self,
        instance: &Arc<Instance>,
        request_id: String,
        function_arn: String,
        payload: Value,
    ) -> Result<Value, FunctionError> {
        let timeout = self.options.timeout;
        let deadline = SystemTime::now() + timeout;
        let (answer_tx, answer_rx) = oneshot::channel();
        instance
            .shared
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request_id.clone(), answer_tx);
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload: Bytes::from(payload.to_string()),
            deadline_ms: deadline
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
            function_arn,
            trace_id: trace_id(),
        };
        let mut child = instance.child.lock().await;
        let exited = |status: String| {
            // A process that reported a failed start: Lambda answers with that error.
            let init = instance
                .shared
                .init_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            init.unwrap_or_else(|| FunctionError {
                error_type: "Runtime.ExitError".into(),
                error_message: format!(
                    "RequestId: {request_id} Error: Runtime exited with error: {status}"
                ),
            })
        };
        let outcome = tokio::select! {
            sent = instance.queue.send(invocation) => match sent {
                Ok(()) => None,
                Err(_) => Some(Err("the Runtime API stopped".to_string())),
            },
            status = child.wait() => Some(Ok(status)),
        };
        let result = match outcome {
            Some(Ok(status)) => Err((exited(exit_status(status)), "exited")),
            Some(Err(e)) => Err((
                FunctionError {
                    error_type: "Lambda.ServiceException".into(),
                    error_message: e,
                },
                "exited",
            )),
            None => {
                tokio::select! {
                    // An answer that came before the process exited (or ran out of time) wins.
                    biased;
                    answer = answer_rx => match answer {
                        Ok(Answer::Response(body)) => Ok(serde_json::from_slice(&body)
                            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))),
                        Ok(Answer::Error(e)) => Err((e, "")),
                        Err(_) => Err((FunctionError {
                            error_type: "Lambda.ServiceException".into(),
                            error_message: "the Runtime API stopped".into(),
                        }, "exited")),
                    },
                    status = child.wait() => Err((exited(exit_status(status)), "exited")),
                    _ = tokio::time::sleep(timeout) => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        Err((FunctionError {
                            error_type: "Sandbox.Timedout".into(),
                            error_message: format!(
                                "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                                timeout.as_secs_f64()
                            ),
                        }, "timed out"))
                    }
                }
            }
        };
        instance
            .shared
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request_id);
        drop(child);
        self.record(instance);
        match result {
            Ok(v) => Ok(v),
            Err((e, "")) => Err(e),
            Err((e, state)) => {
                self.retire(instance, state).await;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl FunctionInvoker for RuntimeApi {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let Some(executable) =
            resolve_function(function, self.functions.iter().map(String::as_str))
        else {
            return Err(FunctionError {
                error_type: "Lambda.ResourceNotFoundException".into(),
                error_message: format!(
                    "Function not found: {function} (the functions of {} are {})",
                    self.options.dir.display(),
                    self.functions.join(", ")
                ),
            });
        };
        let executable = executable.to_string();
        let name = rotor_asl::task::function_name(function).to_string();
        let start = |instance: Result<Arc<Instance>, String>| {
            instance.map_err(|e| FunctionError {
                error_type: "Runtime.InvalidEntrypoint".into(),
                error_message: format!("RequestId: {request_id} {e}"),
            })
        };
        let mut instance = start(self.instance(&executable, &name).await)?;
        // A warm process that exited while idle (as Lambda retires an environment): this
        // invocation gets a new one, as on Lambda, instead of the old one's exit status.
        let idle_exit = matches!(instance.child.lock().await.try_wait(), Ok(Some(_)));
        if idle_exit {
            self.retire(&instance, "exited").await;
            instance = start(self.instance(&executable, &name).await)?;
        }
        self.call(&instance, request_id, self.function_arn(function), payload)
            .await
    }
}

fn exit_status(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(signal) = s.signal() {
                    return match signal {
                        9 => "signal: killed".into(),
                        6 => "signal: aborted".into(),
                        11 => "signal: segmentation fault".into(),
                        15 => "signal: terminated".into(),
                        n => format!("signal: {n}"),
                    };
                }
            }
            match s.code() {
                Some(c) => format!("exit status {c}"),
                None => "exit status unknown".into(),
            }
        }
        Err(e) => format!("cannot wait for the process: {e}"),
    }
}

/// An X-Ray trace header for one invocation (`Root=1-<epoch hex>-<96 random bits>`).
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{secs:08x}-{};Sampled=0", &random[..24])
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// `VmHWM` of /proc/<pid>/status: the process's peak resident memory, KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

// ----------------------------------------------------------------------- the Runtime API

async fn next_invocation(State(shared): State<Arc<Shared>>) -> Response {
    {
        let mut first = shared.first_next.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(shared.spawned.elapsed());
        }
    }
    let invocation = shared.next.lock().await.recv().await;
    let Some(i) = invocation else {
        return (StatusCode::GONE, "the Runtime API is stopping").into_response();
    };
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("content-type", "application/json");
    put("lambda-runtime-aws-request-id", &i.request_id);
    put("lambda-runtime-deadline-ms", &i.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", &i.function_arn);
    put("lambda-runtime-trace-id", &i.trace_id);
    (StatusCode::OK, headers, i.payload).into_response()
}

fn deliver(shared: &Shared, id: &str, answer: Answer) -> Response {
    let waiting = shared
        .waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id);
    match waiting {
        Some(tx) => {
            let _ = tx.send(answer);
            (StatusCode::ACCEPTED, "{\"status\":\"OK\"}").into_response()
        }
        // Lambda: an answer to an invocation that is not in flight.
        None => (
            StatusCode::BAD_REQUEST,
            "{\"errorType\":\"InvalidRequestID\",\"errorMessage\":\"Invalid request ID\"}",
        )
            .into_response(),
    }
}

async fn invocation_response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    deliver(&shared, &id, Answer::Response(body))
}

/// The error a runtime posted: `{"errorType", "errorMessage"}` in the body, or the
/// `Lambda-Runtime-Function-Error-Type` header, else Lambda's `Unhandled`.
fn posted_error(headers: &HeaderMap, body: &Bytes) -> FunctionError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let header = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok());
    FunctionError {
        error_type: parsed["errorType"]
            .as_str()
            .or(header)
            .unwrap_or("Unhandled")
            .to_string(),
        error_message: parsed["errorMessage"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    }
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    deliver(&shared, &id, Answer::Error(posted_error(&headers, &body)))
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    *shared.init_error.lock().unwrap_or_else(|p| p.into_inner()) =
        Some(posted_error(&headers, &body));
    (StatusCode::ACCEPTED, "{\"status\":\"OK\"}").into_response()
}

#[cfg(test)]
mod tests;
