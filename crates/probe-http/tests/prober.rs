//! ReqwestProber against a tiny axum server on 127.0.0.1.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use rotor_core::ports::{HttpProber, ProbeRequest};
use rotor_core::secret::SecretValue;
use rotor_probe_http::{ReqwestProber, MAX_BODY_BYTES};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "sk-TESTKEY0123456789abcdef";

async fn serve() -> SocketAddr {
    let app = Router::new()
        .route(
            "/ok",
            get(|uri: Uri, headers: HeaderMap| async move {
                let query = uri.query().unwrap_or("").to_string();
                let header = headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if query.contains(KEY) && header == KEY {
                    (StatusCode::OK, "fine".to_string())
                } else {
                    (StatusCode::UNAUTHORIZED, "no".to_string())
                }
            }),
        )
        .route(
            "/echo",
            post(|headers: HeaderMap, body: Bytes| async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                (
                    StatusCode::CREATED,
                    format!("{ct}|{}", String::from_utf8_lossy(&body)),
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route("/big", get(|| async { "x".repeat(200 * 1024) }))
        .route(
            "/redirect",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [("location", "http://127.0.0.1:1/elsewhere")],
                )
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn get_req(url: String, headers: Vec<(&str, &str)>) -> ProbeRequest {
    ProbeRequest {
        method: "GET",
        url: SecretValue::new(url),
        headers: headers
            .into_iter()
            .map(|(n, v)| (n.to_string(), SecretValue::new(v)))
            .collect(),
        body: None,
    }
}

#[tokio::test]
async fn a_200_comes_back_as_the_answer_with_query_and_headers_sent() {
    let addr = serve().await;
    let prober = ReqwestProber::new(Duration::from_secs(5));
    let answer = prober
        .send(&get_req(
            format!("http://{addr}/ok?limit=1&apiKey={KEY}"),
            vec![("X-Api-Key", KEY)],
        ))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "fine");
    // A 401 is an answer, not a transport failure: judging it is the preset's business.
    let answer = prober
        .send(&get_req(format!("http://{addr}/ok?apiKey=nope"), vec![]))
        .await
        .unwrap();
    assert_eq!(answer.status, 401);
}

/// A request that carries the key in its path, its query and a header, as vendor probes do.
fn keyed_req(origin: &str) -> ProbeRequest {
    get_req(
        format!("{origin}/v2/{KEY}/x?apiKey={KEY}"),
        vec![("Authorization", &format!("Bearer {KEY}"))],
    )
}

/// The error names the origin and nothing of the path, query or headers.
fn assert_names_origin_only(err: &rotor_core::error::RotorError, origin: &str) {
    let msg = err.to_string();
    assert!(!msg.contains(KEY), "{msg}");
    assert!(
        !msg.contains("apiKey") && !msg.contains("/v2") && !msg.contains("Bearer"),
        "no path, query or header: {msg}"
    );
    assert!(msg.contains(origin), "names {origin}: {msg}");
    assert!(!format!("{err:?}").contains(KEY));
}

#[tokio::test]
async fn a_refused_port_is_rejected_and_never_names_the_key() {
    // Nothing listens on 127.0.0.1:port (the listener is dropped): retrying will not change that.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let prober = ReqwestProber::new(Duration::from_secs(5));
    let origin = format!("http://127.0.0.1:{port}");
    let err = prober.send(&keyed_req(&origin)).await.unwrap_err();
    assert_eq!(err.asl_name(), "Probe.Rejected", "{err}");
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert_names_origin_only(&err, &origin);
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_rejected_at_once() {
    // RFC 6761: a name under .invalid never resolves; the resolver answers NXDOMAIN without
    // asking anyone, so this needs no network. Bounded anyway, so that it cannot hang.
    let prober = ReqwestProber::new(Duration::from_secs(5));
    let origin = "http://rotor-test.invalid:80";
    let started = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        prober.send(&keyed_req("http://rotor-test.invalid")),
    )
    .await
    .expect("the prober's own timeout ends the lookup")
    .unwrap_err();
    assert_eq!(
        err.asl_name(),
        "Probe.Rejected",
        "{err} (after {:?}; std's lookup says {:?})",
        started.elapsed(),
        std::net::ToSocketAddrs::to_socket_addrs(&("rotor-test.invalid", 80)).map(|_| ())
    );
    let msg = err.to_string();
    assert!(
        msg.contains("DNS name rotor-test.invalid not found"),
        "{msg}"
    );
    assert_names_origin_only(&err, origin);
}

#[tokio::test]
async fn a_self_signed_certificate_is_rejected_naming_the_host_only() {
    // A TLS server on 127.0.0.1 with a self-signed certificate for 127.0.0.1 (fixtures/, made
    // with openssl; valid 2000-2100, so only its issuer is wrong).
    let cert =
        CertificateDer::from(include_bytes!("fixtures/self-signed-127.0.0.1.cert.der").to_vec());
    let key =
        PrivateKeyDer::try_from(include_bytes!("fixtures/self-signed-127.0.0.1.key.der").to_vec())
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // The client gives up during the handshake; a few connections at most.
        for _ in 0..4 {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = acceptor.accept(stream).await;
        }
    });

    let prober = ReqwestProber::new(Duration::from_secs(5));
    let origin = format!("https://{addr}");
    let err = prober.send(&keyed_req(&origin)).await.unwrap_err();
    assert_eq!(err.asl_name(), "Probe.Rejected", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("TLS certificate of 127.0.0.1 is invalid: unknown issuer"),
        "{msg}"
    );
    assert_names_origin_only(&err, &origin);
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_not_ready() {
    let addr = serve().await;
    let prober = ReqwestProber::new(Duration::from_millis(300));
    let started = Instant::now();
    let err = prober
        .send(&get_req(format!("http://{addr}/slow?token={KEY}"), vec![]))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout was honoured"
    );
    assert_eq!(err.asl_name(), "Probe.NotReady");
    let msg = err.to_string();
    assert!(msg.contains("timed out"), "{msg}");
    assert!(!msg.contains(KEY) && !msg.contains("/slow"), "{msg}");
}

#[tokio::test]
async fn a_post_body_arrives_as_json() {
    let addr = serve().await;
    let prober = ReqwestProber::default();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
    let request = ProbeRequest {
        method: "POST",
        url: SecretValue::new(format!("http://{addr}/echo")),
        headers: vec![],
        body: Some(body.to_string()),
    };
    let answer = prober.send(&request).await.unwrap();
    assert_eq!(answer.status, 201);
    assert_eq!(answer.body, format!("application/json|{body}"));
}

#[tokio::test]
async fn the_body_read_is_capped_at_64_kib() {
    let addr = serve().await;
    let answer = ReqwestProber::default()
        .send(&get_req(format!("http://{addr}/big"), vec![]))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body.len(), MAX_BODY_BYTES);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let addr = serve().await;
    let answer = ReqwestProber::default()
        .send(&get_req(format!("http://{addr}/redirect"), vec![]))
        .await
        .unwrap();
    assert_eq!(answer.status, 302);
}

#[tokio::test]
async fn a_malformed_url_or_header_is_input_invalid_without_the_value() {
    let prober = ReqwestProber::default();
    let err = prober
        .send(&get_req(format!("not a url {KEY}"), vec![]))
        .await
        .unwrap_err();
    assert_eq!(err.asl_name(), "Input.Invalid");
    assert!(!err.to_string().contains(KEY));
    let err = prober
        .send(&get_req(
            "http://127.0.0.1:1/".into(),
            vec![("X-Api-Key", &format!("{KEY}\n"))],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.asl_name(), "Input.Invalid");
    assert!(!err.to_string().contains(KEY));
}
