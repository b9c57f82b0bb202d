//! rotor's [`HttpProber`]: sends one vendor probe request with reqwest (rustls) and hands back
//! the status and the first 64 KiB of the body.
//!
//! Keys travel in query strings, paths (Alchemy) and headers, so nothing here ever formats the
//! URL's path or query, a header value, or a reqwest error (whose `Display` carries the URL).
//! A transport failure becomes `Probe.NotReady` with a message that names the kind of failure
//! and the URL's scheme, host and port only.

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Client, Method, Url};
use rotor_core::error::{Result, RotorError};
use rotor_core::ports::{HttpProber, ProbeAnswer, ProbeRequest};
use std::error::Error as _;
use std::time::Duration;

/// Connect and whole-request timeout when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many bytes of an answer's body are read; the rest is dropped.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A reqwest client built once: rustls, no redirects, one timeout for connecting and one for the
/// whole exchange (headers and body).
#[derive(Debug, Clone)]
pub struct ReqwestProber {
    client: Client,
    timeout: Duration,
}

impl Default for ReqwestProber {
    /// [`DEFAULT_TIMEOUT`] (10 s).
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT)
    }
}

impl ReqwestProber {
    /// Builds the client. Panics only if the TLS backend cannot start (as `reqwest::Client::new`
    /// does); use [`ReqwestProber::try_new`] to get that as an error.
    pub fn new(timeout: Duration) -> Self {
        Self::try_new(timeout).expect("the HTTP client (rustls) could not be built")
    }

    /// Builds the client; `Rotor.Internal` if the TLS backend cannot start.
    pub fn try_new(timeout: Duration) -> Result<Self> {
        let client = Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rotor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                RotorError::internal(format!(
                    "cannot build the HTTP client: {}",
                    describe_build_error(&e)
                ))
            })?;
        Ok(ReqwestProber { client, timeout })
    }

    /// The connect and whole-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// `scheme://host:port` of a URL: what a message may say about where a probe went.
pub fn origin_of(url: &Url) -> String {
    // host_str() brackets IPv6 addresses; userinfo, path, query and fragment are left out.
    let host = url.host_str().unwrap_or("<no host>");
    match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

fn describe_build_error(e: &reqwest::Error) -> String {
    // Building involves no URL, but stay on the safe side: only the source chain's kinds.
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        "TLS or client configuration failed".to_string()
    } else {
        parts.join(": ")
    }
}

/// What kind of transport failure an error is, in words that carry no URL and no value.
fn failure_kind(e: &reqwest::Error) -> String {
    // Walk the source chain for an io::Error kind or hyper's DNS wording; never print the chain
    // itself: reqwest's own Display carries the URL.
    let mut io_kind = None;
    let mut dns = false;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        let text = s.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            dns = true;
        }
        source = s.source();
    }
    use std::io::ErrorKind as K;
    if e.is_timeout() || matches!(io_kind, Some(K::TimedOut)) {
        return "timed out".into();
    }
    if dns {
        return "DNS lookup failed".into();
    }
    match io_kind {
        Some(K::ConnectionRefused) => return "connection refused".into(),
        Some(K::ConnectionReset) => return "connection reset".into(),
        Some(K::ConnectionAborted) => return "connection aborted".into(),
        Some(K::BrokenPipe) => return "connection closed (broken pipe)".into(),
        Some(K::UnexpectedEof) => return "connection closed early".into(),
        Some(K::NotConnected) => return "not connected".into(),
        Some(K::AddrNotAvailable) => return "address not available".into(),
        Some(K::HostUnreachable) => return "host unreachable".into(),
        Some(K::NetworkUnreachable) => return "network unreachable".into(),
        Some(K::NetworkDown) => return "network down".into(),
        Some(K::InvalidData) => return "invalid data from the server (TLS?)".into(),
        _ => {}
    }
    if e.is_connect() {
        "connection failed (TLS or connect)".into()
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the answer".into()
    } else if e.is_request() {
        "request could not be sent".into()
    } else {
        "transport error".into()
    }
}

fn not_ready(e: &reqwest::Error, origin: &str) -> RotorError {
    RotorError::ProbeNotReady(format!(
        "probe to {origin} failed: {}; will retry",
        failure_kind(e)
    ))
}

#[async_trait]
impl HttpProber for ReqwestProber {
    async fn send(&self, request: &ProbeRequest) -> Result<ProbeAnswer> {
        // A malformed URL or header is a configuration problem, not a transient one; the message
        // names neither the URL nor the value.
        let url = Url::parse(request.url.expose())
            .map_err(|e| RotorError::input(format!("probe URL is not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RotorError::input(format!(
                "probe URL scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        let origin = origin_of(&url);
        let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            RotorError::input(format!(
                "probe method {:?} is not an HTTP method",
                request.method
            ))
        })?;

        let mut builder = self.client.request(method, url);
        let mut has_content_type = false;
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                RotorError::input(format!("probe header name {name:?} is not valid"))
            })?;
            let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
                RotorError::input(format!(
                    "probe header {name} has a value that is not valid in HTTP"
                ))
            })?;
            value.set_sensitive(true);
            has_content_type |= name == CONTENT_TYPE;
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            // The presets' bodies are JSON-RPC; vendors refuse them without a JSON content type.
            if !has_content_type {
                builder =
                    builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            builder = builder.body(body.clone());
        }

        let mut response = builder.send().await.map_err(|e| not_ready(&e, &origin))?;
        let status = response.status().as_u16();
        let mut bytes: Vec<u8> = Vec::new();
        while bytes.len() < MAX_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY_BYTES - bytes.len();
                    bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => return Err(not_ready(&e, &origin)),
            }
        }
        // Dropping the response here abandons whatever is left of an oversized body.
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Ok(ProbeAnswer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_keeps_scheme_host_port_only() {
        let u = Url::parse("https://user:pw@api.example.com/v2/SECRET?apiKey=SECRET#frag").unwrap();
        assert_eq!(origin_of(&u), "https://api.example.com:443");
        let u = Url::parse("http://127.0.0.1:8080/x?token=SECRET").unwrap();
        assert_eq!(origin_of(&u), "http://127.0.0.1:8080");
        let u = Url::parse("http://[::1]:9/x").unwrap();
        assert_eq!(origin_of(&u), "http://[::1]:9");
    }
}
