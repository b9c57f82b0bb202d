//! ReqwestProber against a tiny axum server on 127.0.0.1.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use rotor_core::ports::{HttpProber, ProbeRequest};
use rotor_core::secret::SecretValue;
use rotor_probe_http::{ReqwestProber, MAX_BODY_BYTES};
use std::net::SocketAddr;
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

#[tokio::test]
async fn a_refused_port_is_not_ready_and_never_names_the_key() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let prober = ReqwestProber::new(Duration::from_secs(5));
    let request = get_req(
        format!("http://127.0.0.1:{port}/v2/{KEY}/x?apiKey={KEY}"),
        vec![("Authorization", &format!("Bearer {KEY}"))],
    );
    let err = prober.send(&request).await.unwrap_err();
    assert_eq!(err.asl_name(), "Probe.NotReady");
    let msg = err.to_string();
    assert!(!msg.contains(KEY), "{msg}");
    assert!(
        !msg.contains("apiKey") && !msg.contains("/v2"),
        "no path or query: {msg}"
    );
    assert!(msg.contains("connection refused"), "{msg}");
    assert!(msg.contains(&format!("http://127.0.0.1:{port}")), "{msg}");
    assert!(!format!("{err:?}").contains(KEY));
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
