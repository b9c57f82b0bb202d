//! A loopback HTTP server standing in for AWS endpoints, and an SDK configuration for it.
#![allow(dead_code)]

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::Credentials;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub request_line: String,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn body_has(&self, text: &str) -> bool {
        self.body.windows(text.len()).any(|w| w == text.as_bytes())
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// A server answering every request with `response` (raw HTTP/1.1 bytes).
pub struct Loopback {
    pub endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// What the server does once it has read a request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Writes these raw HTTP/1.1 bytes and closes (nothing: closes without an answer).
    Answer(Vec<u8>),
    /// Resets the connection (RST: SO_LINGER 0, then close) without an answer.
    Reset,
    /// Keeps the connection open and never answers (for at most 120 s, so nothing leaks
    /// past a test).
    BlackHole,
}

impl Loopback {
    pub async fn start(response: Vec<u8>) -> Loopback {
        Loopback::start_with(Behaviour::Answer(response)).await
    }

    pub async fn start_with(behaviour: Behaviour) -> Loopback {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let (request_line, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
                    log.lock().unwrap().push(Seen {
                        request_line: request_line.to_string(),
                        headers: headers.to_string(),
                        body: buf[head_end..].to_vec(),
                    });
                    match behaviour {
                        Behaviour::Answer(response) => {
                            let _ = socket.write_all(&response).await;
                            let _ = socket.shutdown().await;
                        }
                        Behaviour::Reset => {
                            let _ = socket.set_zero_linger();
                            drop(socket);
                        }
                        Behaviour::BlackHole => {
                            tokio::time::sleep(std::time::Duration::from_secs(120)).await;
                            drop(socket);
                        }
                    }
                });
            }
        });
        Loopback { endpoint, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

pub fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A Secrets Manager (awsJson1_1) error answer.
pub fn json_error(status: &str, code: &str, message: &str) -> Vec<u8> {
    http(
        status,
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-RequestId", "loopback-1"),
        ],
        format!(r#"{{"__type":"{code}","message":"{message}"}}"#).as_bytes(),
    )
}

pub async fn config(endpoint: &str, retry: RetryConfig) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDLOOPBACK",
            "loopback-secret",
            None,
            None,
            "loopback",
        ))
        .retry_config(retry)
        .load()
        .await
}

/// A CloudWatch (Smithy RPC v2 CBOR) success answer.
pub fn cbor_ok() -> Vec<u8> {
    http(
        "200 OK",
        &[
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Type", "application/cbor"),
        ],
        &[0xa0],
    )
}

/// An IAM/STS (awsQuery) error answer.
pub fn query_error(status: &str, code: &str, message: &str) -> Vec<u8> {
    http(
        status,
        &[("Content-Type", "text/xml"), ("x-amzn-RequestId", "loopback-1")],
        format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>loopback-1</RequestId></ErrorResponse>"
        )
        .as_bytes(),
    )
}

/// A CBOR text string (major type 3), for the short strings of error bodies.
fn cbor_text(out: &mut Vec<u8>, text: &str) {
    let n = text.len();
    assert!(n < 256, "short strings only");
    if n < 24 {
        out.push(0x60 | n as u8);
    } else {
        out.push(0x78);
        out.push(n as u8);
    }
    out.extend_from_slice(text.as_bytes());
}

/// A CloudWatch (Smithy RPC v2 CBOR) error answer: `{"__type": code, "message": message}`.
pub fn cbor_error(status: &str, code: &str, message: &str) -> Vec<u8> {
    let mut body = vec![0xa2];
    cbor_text(&mut body, "__type");
    cbor_text(&mut body, code);
    cbor_text(&mut body, "message");
    cbor_text(&mut body, message);
    http(
        status,
        &[
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Type", "application/cbor"),
        ],
        &body,
    )
}
