//! A fault-injecting HTTP/1.1 proxy in front of moto (or any loopback AWS endpoint), for the
//! tests that prove rotor survives a flaky AWS.
//!
//! ```no_run
//! use rotor_tests::faults::{Fault, FaultPlan, FaultProxy};
//! let proxy = FaultProxy::start(FaultPlan::mixed(7, 0.2));
//! // point the SDK at proxy.url() (e.g. `--endpoint-url`), run, then:
//! println!("{}", proxy.counts());
//! ```
//!
//! For every request the proxy reads it whole, names its operation (`service.Operation`, from
//! `X-Amz-Target`, the query protocol's `Action=` and the signature's service, or the RPC v2
//! CBOR path: `secretsmanager.PutSecretValue`, `iam.CreateAccessKey`, `sts.GetCallerIdentity`,
//! `monitoring.PutMetricData`, ...), calls the hook (if any) with the request's number (1, 2,
//! ...) and operation, and then, for a [`FaultPlan::fraction`] of the requests (a seeded hash of
//! the request number: reproducible for requests made one after another), injects one of the
//! plan's [`Fault`]s instead of (or after) forwarding it to the upstream:
//!
//! | [`Fault`] | what the client sees | did the upstream apply it? |
//! |---|---|---|
//! | `Http500`, `Http503` | that status with the protocol's throttling body (JSON 1.1 `{"__type":"ThrottlingException"}`; query XML `<Code>Throttling</Code>`; CBOR `{"__type": "ThrottlingException"}`) | no |
//! | `Reset` | the connection reset (RST) before any answer | no |
//! | `Delay` | the upstream's answer after a delay in [`FaultPlan::delay`] | yes |
//! | `BlackHole` | nothing: the connection stays open, unanswered, for [`FaultPlan::black_hole`], then closes | no |
//! | `DropAfterApply` | the connection reset after the upstream answered | **yes**: a lost answer |
//!
//! Only 127.0.0.1: the proxy listens there and forwards to a loopback upstream only. Every
//! loop is bounded: connections have read timeouts, the accept loop ends when the proxy is
//! dropped, a black hole lasts [`FaultPlan::black_hole`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::Duration;

/// One kind of injected fault (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Http500,
    Http503,
    Reset,
    Delay,
    BlackHole,
    DropAfterApply,
}

impl Fault {
    /// Every kind.
    pub const ALL: [Fault; 6] = [
        Fault::Http500,
        Fault::Http503,
        Fault::Reset,
        Fault::Delay,
        Fault::BlackHole,
        Fault::DropAfterApply,
    ];

    /// `http-500`, `http-503`, `reset`, `delay`, `black-hole`, `drop-after-apply`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Http500 => "http-500",
            Fault::Http503 => "http-503",
            Fault::Reset => "reset",
            Fault::Delay => "delay",
            Fault::BlackHole => "black-hole",
            Fault::DropAfterApply => "drop-after-apply",
        }
    }
}

/// Which requests get which faults.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Seeds the per-request choice (a hash of seed and request number).
    pub seed: u64,
    /// The fraction of (eligible) requests that get a fault, 0.0 to 1.0.
    pub fraction: f64,
    /// The kinds to choose from, uniformly.
    pub kinds: Vec<Fault>,
    /// Only requests whose operation contains one of these (e.g. `UpdateSecretVersionStage`)
    /// are eligible; empty: every request.
    pub operations: Vec<String>,
    /// The first `after` eligible requests pass untouched (e.g. fault the third
    /// UpdateSecretVersionStage only).
    pub after: u64,
    /// At most this many faults in all (`None`: no limit).
    pub limit: Option<u64>,
    /// The range a `Delay` is drawn from.
    pub delay: (Duration, Duration),
    /// How long a `BlackHole` holds the connection before closing it.
    pub black_hole: Duration,
}

impl FaultPlan {
    /// No faults: a plain proxy (it still counts).
    pub fn none() -> FaultPlan {
        FaultPlan {
            seed: 0,
            fraction: 0.0,
            kinds: Fault::ALL.to_vec(),
            operations: Vec::new(),
            after: 0,
            limit: None,
            delay: (Duration::from_millis(300), Duration::from_millis(1200)),
            black_hole: Duration::from_secs(3),
        }
    }

    /// Every kind of fault for `fraction` of all requests.
    pub fn mixed(seed: u64, fraction: f64) -> FaultPlan {
        FaultPlan {
            seed,
            fraction,
            ..FaultPlan::none()
        }
    }

    /// Exactly `times` faults of `kind`, on the first requests whose operation contains
    /// `operation`.
    pub fn first(kind: Fault, operation: &str, times: u64) -> FaultPlan {
        FaultPlan {
            fraction: 1.0,
            kinds: vec![kind],
            operations: vec![operation.to_string()],
            limit: Some(times),
            ..FaultPlan::none()
        }
    }

    /// [`FaultPlan::first`], after `skip` requests of `operation` that pass untouched.
    pub fn nth(kind: Fault, operation: &str, skip: u64, times: u64) -> FaultPlan {
        FaultPlan {
            after: skip,
            ..FaultPlan::first(kind, operation, times)
        }
    }
}

/// Requests and faults of one operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationCounts {
    pub requests: u64,
    pub faults: BTreeMap<Fault, u64>,
}

/// What the proxy saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<Fault, u64>,
    /// By operation (`service.Operation`).
    pub by_operation: BTreeMap<String, OperationCounts>,
}

impl Counts {
    /// Faults injected, every kind.
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Faults of `kind` injected into requests whose operation contains `operation`.
    pub fn faults_of(&self, kind: Fault, operation: &str) -> u64 {
        self.by_operation
            .iter()
            .filter(|(op, _)| op.contains(operation))
            .map(|(_, c)| c.faults.get(&kind).copied().unwrap_or(0))
            .sum()
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds = |m: &BTreeMap<Fault, u64>| {
            m.iter()
                .map(|(k, n)| format!("{}={n}", k.name()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        writeln!(
            f,
            "requests={} faults={} ({})",
            self.requests,
            self.total_faults(),
            kinds(&self.faults)
        )?;
        for (op, c) in &self.by_operation {
            writeln!(f, "  {op}: requests={} {}", c.requests, kinds(&c.faults))?;
        }
        Ok(())
    }
}

/// Called on every request with its number (from 1) and operation, before any fault.
pub type Hook = Box<dyn Fn(u64, &str) + Send + Sync>;

struct Shared {
    upstream: SocketAddr,
    plan: Mutex<FaultPlan>,
    counts: Mutex<Counts>,
    hook: RwLock<Option<Hook>>,
    next: AtomicU64,
    eligible: AtomicU64,
    stop: AtomicBool,
}

/// The running proxy; stopped on drop.
pub struct FaultProxy {
    url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<thread::JoinHandle<()>>,
}

/// How long a connection may be idle (or a peer slow) before the proxy gives up on it.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request or answer the proxy handles (Secrets Manager values are <= 64 KiB).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

impl FaultProxy {
    /// A proxy in front of moto ([`crate::moto::endpoint`]).
    pub fn start(plan: FaultPlan) -> FaultProxy {
        FaultProxy::start_to(&crate::moto::endpoint(), plan)
    }

    /// A proxy in front of `upstream` (`http://127.0.0.1:PORT`; loopback only).
    pub fn start_to(upstream: &str, plan: FaultPlan) -> FaultProxy {
        let authority = upstream
            .trim_end_matches('/')
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("upstream {upstream} must be http://127.0.0.1:PORT"));
        let upstream: SocketAddr = authority
            .parse()
            .unwrap_or_else(|_| panic!("upstream {authority} must be 127.0.0.1:PORT"));
        assert!(upstream.ip().is_loopback(), "loopback upstreams only");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            plan: Mutex::new(plan),
            counts: Mutex::new(Counts::default()),
            hook: RwLock::new(None),
            next: AtomicU64::new(0),
            eligible: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                thread::spawn(move || {
                    let _ = serve(&s, conn);
                });
            }
        });
        FaultProxy {
            url: format!("http://{addr}"),
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`, the endpoint to give the SDK.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// What it saw and did so far.
    pub fn counts(&self) -> Counts {
        self.shared.counts.lock().unwrap().clone()
    }

    /// Replaces the plan (e.g. faults only while a rotation runs); its `after` counts from
    /// now.
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut p = self.shared.plan.lock().unwrap();
        self.shared.eligible.store(0, Ordering::SeqCst);
        *p = plan;
    }

    /// Sets the hook called on every request with (request number, operation).
    pub fn set_hook(&self, hook: Hook) {
        *self.shared.hook.write().unwrap() = Some(hook);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// splitmix64: a well-mixed hash of the seed and request number.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One request as read off the wire.
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("/")
    }

    /// `service.Operation`.
    fn operation(&self) -> String {
        let signed_service = self
            .header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(3))
            .unwrap_or("unknown")
            .to_string();
        if let Some(target) = self.header("x-amz-target") {
            let op = target.rsplit('.').next().unwrap_or(target);
            return format!("{signed_service}.{op}");
        }
        if let Some(op) = self.path().split("/operation/").nth(1) {
            return format!("{signed_service}.{op}");
        }
        let body = String::from_utf8_lossy(&self.body);
        let action = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or("unknown");
        format!("{signed_service}.{action}")
    }

    /// The protocol's throttling answer with `status`.
    fn throttling(&self, status: u16) -> Vec<u8> {
        let reason = if status == 503 {
            "Service Unavailable"
        } else {
            "Internal Server Error"
        };
        let (content_type, extra, body): (&str, &str, Vec<u8>) = if self
            .header("smithy-protocol")
            .is_some()
        {
            let mut b = vec![0xa2];
            for t in ["__type", "ThrottlingException", "message", "Rate exceeded"] {
                b.push(0x60 | t.len() as u8);
                b.extend_from_slice(t.as_bytes());
            }
            ("application/cbor", "smithy-protocol: rpc-v2-cbor\r\n", b)
        } else if self.header("x-amz-target").is_some() {
            (
                "application/x-amz-json-1.1",
                "",
                br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_vec(),
            )
        } else {
            (
                    "text/xml",
                    "",
                    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>rotor-fault-proxy</RequestId></ErrorResponse>".to_vec(),
                )
        };
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{extra}x-amzn-RequestId: rotor-fault-proxy\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }
}

fn content_length(head: &str) -> Option<usize> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

/// Reads one message (head and Content-Length body) from `stream`, `pending` holding bytes
/// already read. `None` at a clean end of stream before any byte.
fn read_message(stream: &mut TcpStream, pending: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if pending.len() > MAX_MESSAGE {
            return Err(io::Error::other("message head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return if pending.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        pending.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).to_string();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(io::Error::other("chunked messages are not supported"));
    }
    let length = content_length(&head).unwrap_or(0);
    if length > MAX_MESSAGE {
        return Err(io::Error::other("message too large"));
    }
    while pending.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        pending.extend_from_slice(&chunk[..n]);
    }
    let body = pending[head_end..head_end + length].to_vec();
    pending.drain(..head_end + length);
    Ok(Some(Request { head, body }))
}

/// Forwards the request to the upstream on a connection of its own; answers the upstream's
/// answer with its `Connection` header dropped (the client's connection stays open).
fn forward(upstream: SocketAddr, req: &Request) -> io::Result<Vec<u8>> {
    let mut up = TcpStream::connect_timeout(&upstream, IO_TIMEOUT)?;
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head: Vec<&str> = req
        .head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        })
        .collect();
    head.push("Connection: close");
    let mut out = head.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&req.body);
    up.write_all(&out)?;
    let mut pending = Vec::new();
    let answer = read_answer(&mut up, &mut pending)?;
    let _ = up.shutdown(Shutdown::Both);
    Ok(answer)
}

/// Reads the upstream's answer (Content-Length framed, else to end of stream), without its
/// `Connection` header and with an exact Content-Length.
fn read_answer(up: &mut TcpStream, pending: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = up.read(&mut chunk)?;
        if n == 0 || pending.len() > MAX_MESSAGE {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        pending.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).to_string();
    let body = match content_length(&head) {
        Some(length) => {
            while pending.len() < head_end + length {
                let n = up.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                pending.extend_from_slice(&chunk[..n]);
            }
            pending[head_end..head_end + length].to_vec()
        }
        None => {
            if head.to_ascii_lowercase().contains("transfer-encoding") {
                return Err(io::Error::other("chunked answers are not supported"));
            }
            let mut rest = pending[head_end..].to_vec();
            loop {
                let n = up.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&chunk[..n]);
                if rest.len() > MAX_MESSAGE {
                    return Err(io::Error::other("answer too large"));
                }
            }
            rest
        }
    };
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| {
            !l.split_once(':').is_some_and(|(k, _)| {
                let k = k.trim();
                k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("content-length")
            })
        })
        .collect();
    let length = format!("Content-Length: {}", body.len());
    lines.push(&length);
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
    Ok(out)
}

/// Closes with a TCP RST (SO_LINGER 0), no answer.
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Decides the fault of request `n` on `operation`, counting it.
fn decide(s: &Shared, n: u64, operation: &str) -> Option<(Fault, u64)> {
    let guard = s.plan.lock().unwrap();
    let plan = &*guard;
    let mut counts = s.counts.lock().unwrap();
    counts.requests += 1;
    counts
        .by_operation
        .entry(operation.to_string())
        .or_default()
        .requests += 1;
    let eligible =
        plan.operations.is_empty() || plan.operations.iter().any(|o| operation.contains(o));
    if !eligible || plan.kinds.is_empty() {
        return None;
    }
    if s.eligible.fetch_add(1, Ordering::SeqCst) < plan.after {
        return None;
    }
    let h = mix(plan.seed, n);
    let roll = (h >> 11) as f64 / (1u64 << 53) as f64;
    if roll >= plan.fraction {
        return None;
    }
    if plan.limit.is_some_and(|l| counts.total_faults() >= l) {
        return None;
    }
    let kind = plan.kinds[(mix(plan.seed ^ 0xFA17, n) % plan.kinds.len() as u64) as usize];
    *counts.faults.entry(kind).or_default() += 1;
    *counts
        .by_operation
        .get_mut(operation)
        .unwrap()
        .faults
        .entry(kind)
        .or_default() += 1;
    let (lo, hi) = plan.delay;
    let span = hi.saturating_sub(lo).as_millis() as u64;
    let millis = match kind {
        Fault::Delay => lo.as_millis() as u64 + mix(plan.seed ^ 0xDE1A, n) % (span + 1),
        Fault::BlackHole => plan.black_hole.as_millis() as u64,
        _ => 0,
    };
    Some((kind, millis))
}

/// One client connection: requests one after another (keep-alive) until it closes, idles
/// for [`IO_TIMEOUT`], or a fault ends it.
fn serve(s: &Shared, mut client: TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut pending = Vec::new();
    loop {
        if s.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(req) = read_message(&mut client, &mut pending)? else {
            return Ok(());
        };
        let n = s.next.fetch_add(1, Ordering::SeqCst) + 1;
        let operation = req.operation();
        if let Some(hook) = s.hook.read().unwrap().as_ref() {
            hook(n, &operation);
        }
        match decide(s, n, &operation) {
            None => {
                let answer = forward(s.upstream, &req)?;
                client.write_all(&answer)?;
            }
            Some((Fault::Http500, _)) => client.write_all(&req.throttling(500))?,
            Some((Fault::Http503, _)) => client.write_all(&req.throttling(503))?,
            Some((Fault::Reset, _)) => {
                reset(client);
                return Ok(());
            }
            Some((Fault::Delay, millis)) => {
                thread::sleep(Duration::from_millis(millis));
                let answer = forward(s.upstream, &req)?;
                client.write_all(&answer)?;
            }
            Some((Fault::BlackHole, millis)) => {
                thread::sleep(Duration::from_millis(millis));
                return Ok(());
            }
            Some((Fault::DropAfterApply, _)) => {
                let _ = forward(s.upstream, &req)?;
                reset(client);
                return Ok(());
            }
        }
    }
}
