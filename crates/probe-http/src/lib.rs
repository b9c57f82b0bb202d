//! rotor's [`HttpProber`]: sends one vendor probe request with reqwest (rustls) and hands back
//! the status and the first 64 KiB of the body.
//!
//! Keys travel in query strings, paths (Alchemy) and headers, so nothing here ever formats the
//! URL's path or query, a header value, or a reqwest error (whose `Display` carries the URL).
//! A transport failure that will not heal by waiting (the host name does not exist, its TLS
//! certificate does not verify, the connection is refused) is `Probe.Rejected`, which the state
//! machine does not retry; any other (timeouts, resets, a resolver that does not answer) is
//! `Probe.NotReady`, retried with backoff. Either message names the kind of failure and the
//! URL's scheme, host and port only.

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

/// The errors behind a reqwest error, outermost first. `io::Error::source` skips the error an
/// `io::Error` wraps (it answers that error's own source), so each `io::Error` is also opened
/// with `get_ref`: rustls' certificate error arrives inside two of them. Bounded: a chain is a
/// handful of links; anything past [`MAX_CAUSES`] is ignored.
fn causes(e: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut found: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        if found.len() >= MAX_CAUSES {
            break;
        }
        found.push(s);
        let mut wrapped = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        while let Some(inner) = wrapped {
            if found.len() >= MAX_CAUSES {
                break;
            }
            let inner: &(dyn std::error::Error + 'static) = inner;
            found.push(inner);
            wrapped = inner
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref());
        }
        source = s.source();
    }
    found
}

const MAX_CAUSES: usize = 32;

/// What getaddrinfo says (through std's "failed to lookup address information: ...") when the
/// name does not exist or has no address: glibc's EAI_NONAME and EAI_NODATA, musl's EAI_NONAME,
/// and the BSD/macOS wording. A temporary failure (EAI_AGAIN: no answer from the resolver) is
/// none of these and stays retried.
const NAME_NOT_FOUND: &[&str] = &[
    "Name or service not known",
    "No address associated with hostname",
    "Name does not resolve",
    "nodename nor servname provided, or not known",
];

fn says_name_not_found(text: &str) -> bool {
    NAME_NOT_FOUND.iter().any(|w| text.contains(w))
}

/// A transport failure, sorted by whether waiting can heal it.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Will not heal by retrying (`Probe.Rejected`): the name does not exist, the certificate
    /// does not verify, nothing listens on the port.
    Permanent(String),
    /// May heal (`Probe.NotReady`, retried with backoff): timeouts, resets, a resolver that did
    /// not answer, anything not known to be permanent.
    Transient(String),
}

/// Words for a certificate that does not verify; the context variants carry names and times from
/// the certificate, which are left out.
fn certificate_problem(e: &rustls::CertificateError) -> &'static str {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => "unknown issuer (self-signed or not from a trusted CA)",
        C::Expired | C::ExpiredContext { .. } => "expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet",
        C::NotValidForName | C::NotValidForNameContext { .. } => "not valid for this host name",
        C::Revoked => "revoked",
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => "not issued for TLS servers",
        C::BadSignature
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "bad or unsupported signature"
        }
        C::BadEncoding => "malformed",
        _ => "rejected by the verifier",
    }
}

/// Sorts a transport failure, in words that carry no URL and no value: the chain is only
/// inspected (error types, io kinds, getaddrinfo's wording), never printed, since reqwest's own
/// `Display` carries the URL.
fn classify(e: &reqwest::Error, url: &Url) -> Failure {
    let causes = causes(e);
    let io_kind = causes
        .iter()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .map(|io| io.kind());
    let certificate = causes.iter().find_map(|c| match c.downcast_ref() {
        Some(rustls::Error::InvalidCertificate(ce)) => Some(ce),
        _ => None,
    });
    let mut dns = false;
    let mut name_not_found = false;
    for c in &causes {
        let text = c.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            dns = true;
            name_not_found |= says_name_not_found(&text);
        }
    }
    let host = url.host_str().unwrap_or("<no host>");
    use std::io::ErrorKind as K;
    use Failure::{Permanent, Transient};
    if e.is_timeout() || matches!(io_kind, Some(K::TimedOut)) {
        return Transient("timed out".into());
    }
    if name_not_found {
        return Permanent(format!("DNS name {host} not found"));
    }
    if dns {
        return Transient("DNS lookup failed".into());
    }
    if let Some(ce) = certificate {
        return Permanent(format!(
            "TLS certificate of {host} is invalid: {}",
            certificate_problem(ce)
        ));
    }
    if io_kind == Some(K::ConnectionRefused) {
        // The name resolved (or was an address) and nothing listens on the port.
        return Permanent("connection refused".into());
    }
    Transient(match io_kind {
        Some(K::ConnectionReset) => "connection reset".into(),
        Some(K::ConnectionAborted) => "connection aborted".into(),
        Some(K::BrokenPipe) => "connection closed (broken pipe)".into(),
        Some(K::UnexpectedEof) => "connection closed early".into(),
        Some(K::NotConnected) => "not connected".into(),
        Some(K::AddrNotAvailable) => "address not available".into(),
        Some(K::HostUnreachable) => "host unreachable".into(),
        Some(K::NetworkUnreachable) => "network unreachable".into(),
        Some(K::NetworkDown) => "network down".into(),
        Some(K::InvalidData) => "invalid data from the server (TLS?)".into(),
        _ if e.is_connect() => "connection failed (TLS or connect)".into(),
        _ if e.is_body() || e.is_decode() => "connection broke while reading the answer".into(),
        _ if e.is_request() => "request could not be sent".into(),
        _ => "transport error".into(),
    })
}

/// `Probe.Rejected` for a failure that will not heal, `Probe.NotReady` otherwise; the message
/// names the URL's scheme, host and port only.
fn transport_error(e: &reqwest::Error, url: &Url) -> RotorError {
    let origin = origin_of(url);
    match classify(e, url) {
        Failure::Permanent(what) => RotorError::ProbeRejected(format!(
            "probe to {origin} failed: {what}; not retried: this will not heal \
             (check the probe URL, its host and its certificate)"
        )),
        Failure::Transient(what) => {
            RotorError::ProbeNotReady(format!("probe to {origin} failed: {what}; will retry"))
        }
    }
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
        let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            RotorError::input(format!(
                "probe method {:?} is not an HTTP method",
                request.method
            ))
        })?;

        let mut builder = self.client.request(method, url.clone());
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

        let mut response = builder
            .send()
            .await
            .map_err(|e| transport_error(&e, &url))?;
        let status = response.status().as_u16();
        let mut bytes: Vec<u8> = Vec::new();
        while bytes.len() < MAX_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY_BYTES - bytes.len();
                    bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => return Err(transport_error(&e, &url)),
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

    #[test]
    fn only_a_name_that_does_not_exist_counts_as_not_found() {
        let gai = |detail: &str| format!("failed to lookup address information: {detail}");
        assert!(says_name_not_found(&gai("Name or service not known")));
        assert!(says_name_not_found(&gai(
            "No address associated with hostname"
        )));
        assert!(says_name_not_found(&gai("Name does not resolve")));
        // The resolver did not answer: that may heal.
        assert!(!says_name_not_found(&gai(
            "Temporary failure in name resolution"
        )));
        assert!(!says_name_not_found("dns error"));
    }

    #[test]
    fn certificate_words_carry_nothing_from_the_certificate() {
        use rustls::CertificateError as C;
        assert_eq!(
            certificate_problem(&C::UnknownIssuer),
            "unknown issuer (self-signed or not from a trusted CA)"
        );
        assert_eq!(certificate_problem(&C::Expired), "expired");
        assert_eq!(
            certificate_problem(&C::NotValidForName),
            "not valid for this host name"
        );
    }
}
