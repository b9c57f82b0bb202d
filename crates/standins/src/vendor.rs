//! One loopback server that plays every vendor rotor can probe.
//!
//! URL layout (`B` = [`VendorStandIn::base_url`]; each vendor's `rotor:probe-url` is `B/<vendor>`):
//!
//! | vendor          | request                                                        | key in            |
//! |-----------------|----------------------------------------------------------------|-------------------|
//! | `openai`        | `GET  B/openai/v1/models`                                      | `Authorization: Bearer` |
//! | `polygon`       | `GET  B/polygon/v3/reference/tickers?limit=1&apiKey=K`         | `apiKey` (or Bearer) |
//! | `finnhub`       | `GET  B/finnhub/api/v1/quote?symbol=AAPL&token=K`              | `token` (or `X-Finnhub-Token`) |
//! | `alpha-vantage` | `GET  B/alpha-vantage/query?function=GLOBAL_QUOTE&symbol=IBM&apikey=K` | `apikey` |
//! | `alchemy`       | `POST B/alchemy/v2/K` (JSON-RPC)                               | path              |
//! | `newsapi`       | `GET  B/newsapi/v2/top-headlines?country=us&pageSize=1`        | `X-Api-Key` (or `apiKey`, Bearer) |
//! | `walletconnect` | `POST B/walletconnect/v1/?chainId=eip155:1&projectId=K` (JSON-RPC) | `projectId`   |
//! | `http`          | `GET  B/http` and `GET B/http/<anything>` (e.g. `B/http/check`) | `Authorization: Bearer` |
//!
//! Bad keys get the vendor's own rejection: 401 with the vendor's error body for most; Alpha
//! Vantage answers 200 with `{"Error Message": ...}`; Alchemy answers 401 with a JSON-RPC error.
//! Injected failures ([`VendorStandIn::fail_next`], [`VendorStandIn::set_outage`]) come before
//! the key check. Every request under a vendor's prefix counts in
//! [`VendorStandIn::requests_seen`].

use crate::app::KeyChecker;
use crate::server::Server;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::distributions::{Alphanumeric, Distribution, Uniform};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The vendors the stand-in plays: every probe preset rotor knows.
pub const VENDORS: &[&str] = rotor_core::probe::PROBE_NAMES;

#[derive(Default)]
struct VendorState {
    keys: HashMap<String, HashSet<String>>,
    outage: HashMap<String, u16>,
    fail_next: HashMap<String, (u16, u32)>,
    seen: BTreeMap<String, u64>,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<VendorState>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, VendorState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn accepts(&self, vendor: &str, key: &str) -> bool {
        self.lock()
            .keys
            .get(vendor)
            .is_some_and(|keys| keys.contains(key))
    }

    /// Counts the request and returns the injected failure, if one is due.
    fn enter(&self, vendor: &str) -> Option<Response> {
        let mut state = self.lock();
        *state.seen.entry(vendor.to_string()).or_default() += 1;
        let mut status = None;
        if let Some((s, left)) = state.fail_next.get_mut(vendor) {
            status = Some(*s);
            *left -= 1;
            if *left == 0 {
                state.fail_next.remove(vendor);
            }
        } else if let Some(s) = state.outage.get(vendor) {
            status = Some(*s);
        }
        status.map(|s| injected_failure(vendor, s))
    }
}

fn injected_failure(vendor: &str, status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"message": format!("{vendor} stand-in: injected failure"), "status": code.as_u16()}});
    let mut response = (code, Json(body)).into_response();
    if code == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A running vendor stand-in. Cloning shares the same server and keys; the server stops when
/// the last clone is dropped, or at [`VendorStandIn::shutdown`].
#[derive(Clone)]
pub struct VendorStandIn {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Shared,
    server: Server,
}

impl VendorStandIn {
    /// Starts the stand-in on 127.0.0.1 (ephemeral port) on the current tokio runtime.
    /// Panics if loopback cannot be bound; see [`VendorStandIn::try_start`].
    pub async fn start() -> VendorStandIn {
        Self::try_start()
            .await
            .expect("the vendor stand-in could not bind 127.0.0.1")
    }

    pub async fn try_start() -> std::io::Result<VendorStandIn> {
        let shared = Shared::default();
        let server = Server::start(router(shared.clone())).await?;
        Ok(VendorStandIn {
            inner: Arc::new(Inner { shared, server }),
        })
    }

    /// `http://127.0.0.1:<port>`; a vendor's probe URL is this plus `/<vendor>`.
    pub fn base_url(&self) -> String {
        self.inner.server.base_url()
    }

    /// `{base_url}/{vendor}`: what the `rotor:probe-url` tag of a secret for `vendor` says.
    pub fn probe_url(&self, vendor: &str) -> String {
        format!("{}/{vendor}", self.base_url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.server.addr()
    }

    /// Mints a random key, shaped like the vendor's (`sk-proj-...` for openai, 32 hex digits for
    /// newsapi, ...), that the stand-in accepts for `vendor` until revoked. Panics for a vendor
    /// not in [`VENDORS`].
    pub fn issue_key(&self, vendor: &str) -> String {
        assert!(
            VENDORS.contains(&vendor),
            "the vendor stand-in does not play {vendor:?}; it plays {VENDORS:?}"
        );
        let key = mint(vendor);
        self.inner
            .shared
            .lock()
            .keys
            .entry(vendor.to_string())
            .or_default()
            .insert(key.clone());
        key
    }

    /// Stops accepting `key` (for whichever vendor it was issued). True if it was accepted.
    pub fn revoke_key(&self, key: &str) -> bool {
        let mut state = self.inner.shared.lock();
        let mut found = false;
        for keys in state.keys.values_mut() {
            found |= keys.remove(key);
        }
        found
    }

    /// Whether `vendor` accepts `key` now (issued and not revoked; injected failures aside).
    pub fn accepts(&self, vendor: &str, key: &str) -> bool {
        self.inner.shared.accepts(vendor, key)
    }

    /// A key checker for [`crate::AppStandIn`]: whether `vendor` accepts a key. It does not
    /// keep the server alive and does not count as a request.
    pub fn checker(&self, vendor: &str) -> KeyChecker {
        let shared = self.inner.shared.clone();
        let vendor = vendor.to_string();
        Arc::new(move |key: &str| shared.accepts(&vendor, key))
    }

    /// `Some(status)`: every request to `vendor` answers `status` (e.g. 503) until cleared with
    /// `None`. Panics on a status outside 100..=999.
    pub fn set_outage(&self, vendor: &str, status: Option<u16>) {
        let mut state = self.inner.shared.lock();
        match status {
            Some(s) => {
                assert!((100..=999).contains(&s), "not an HTTP status: {s}");
                state.outage.insert(vendor.to_string(), s);
            }
            None => {
                state.outage.remove(vendor);
            }
        }
    }

    /// The next `count` requests to `vendor` answer `status` (before any outage); 0 clears.
    pub fn fail_next(&self, vendor: &str, status: u16, count: u32) {
        assert!(
            (100..=999).contains(&status),
            "not an HTTP status: {status}"
        );
        let mut state = self.inner.shared.lock();
        if count == 0 {
            state.fail_next.remove(vendor);
        } else {
            state.fail_next.insert(vendor.to_string(), (status, count));
        }
    }

    /// Requests received so far, per vendor (vendors never asked are absent).
    pub fn requests_seen(&self) -> BTreeMap<String, u64> {
        self.inner.shared.lock().seen.clone()
    }

    /// Requests received so far by one vendor.
    pub fn requests_seen_by(&self, vendor: &str) -> u64 {
        self.inner
            .shared
            .lock()
            .seen
            .get(vendor)
            .copied()
            .unwrap_or(0)
    }

    /// Stops the server (for every clone) and waits for in-flight requests to finish.
    pub async fn shutdown(&self) {
        self.inner.server.shutdown().await;
    }
}

impl std::fmt::Debug for VendorStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorStandIn")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

fn random_from(alphabet: &[u8], len: usize) -> String {
    let pick = Uniform::from(0..alphabet.len());
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[pick.sample(&mut rng)] as char)
        .collect()
}

fn alnum(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn mint(vendor: &str) -> String {
    const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const HEX: &[u8] = b"0123456789abcdef";
    match vendor {
        "openai" => format!("sk-proj-{}", alnum(48)),
        "polygon" => alnum(32),
        "finnhub" => random_from(LOWER_ALNUM, 20),
        "alpha-vantage" => random_from(UPPER_ALNUM, 16),
        "alchemy" => alnum(32),
        "newsapi" | "walletconnect" => random_from(HEX, 32),
        _ => format!("rk_{}", alnum(40)),
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/openai/v1/models", get(openai))
        .route("/polygon/v3/reference/tickers", get(polygon))
        .route("/finnhub/api/v1/quote", get(finnhub))
        .route("/alpha-vantage/query", get(alpha_vantage))
        .route("/alchemy/v2/{key}", post(alchemy))
        .route("/newsapi/v2/top-headlines", get(newsapi))
        .route("/walletconnect/v1/", post(walletconnect))
        .route("/walletconnect/v1", post(walletconnect))
        .route("/http", get(generic))
        .route("/http/{*rest}", get(generic))
        .fallback(not_found)
        .with_state(shared)
}

type Params = Query<HashMap<String, String>>;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

async fn not_found(State(shared): State<Shared>, uri: Uri) -> Response {
    // Count it for the vendor whose prefix it is under, so a wrong path shows up in the counts.
    let first = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    if let Some(vendor) = VENDORS.iter().find(|v| **v == first) {
        *shared.lock().seen.entry(vendor.to_string()).or_default() += 1;
    }
    // The path may hold a key (alchemy): the answer does not repeat it.
    reply(
        StatusCode::NOT_FOUND,
        json!({"error": "no such route on the vendor stand-in"}),
    )
}

async fn openai(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = shared.enter("openai") {
        return r;
    }
    match bearer(&headers) {
        Some(key) if shared.accepts("openai", key) => reply(
            StatusCode::OK,
            json!({"object": "list", "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": 1_721_172_741, "owned_by": "system"}
            ]}),
        ),
        Some(_) => reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                             "param": null, "code": "invalid_api_key"}}),
        ),
        None => reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error",
                             "param": null, "code": null}}),
        ),
    }
}

async fn polygon(State(shared): State<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    if let Some(r) = shared.enter("polygon") {
        return r;
    }
    let key = q
        .get("apiKey")
        .map(String::as_str)
        .or_else(|| bearer(&headers));
    match key {
        Some(key) if shared.accepts("polygon", key) => reply(
            StatusCode::OK,
            json!({"results": [{"ticker": "A", "name": "Agilent Technologies Inc.", "market": "stocks",
                                "locale": "us", "active": true}],
                   "status": "OK", "request_id": "standin", "count": 1}),
        ),
        Some(_) => reply(
            StatusCode::UNAUTHORIZED,
            json!({"status": "ERROR", "request_id": "standin", "error": "Unknown API Key"}),
        ),
        None => reply(
            StatusCode::UNAUTHORIZED,
            json!({"status": "ERROR", "request_id": "standin",
                   "error": "API Key was not provided"}),
        ),
    }
}

async fn finnhub(State(shared): State<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    if let Some(r) = shared.enter("finnhub") {
        return r;
    }
    let key = q
        .get("token")
        .map(String::as_str)
        .or_else(|| header_str(&headers, "x-finnhub-token"));
    match key {
        Some(key) if shared.accepts("finnhub", key) => reply(
            StatusCode::OK,
            json!({"c": 227.52, "d": 1.31, "dp": 0.5791, "h": 228.66, "l": 225.85, "o": 226.4,
                   "pc": 226.21, "t": 1_727_812_800}),
        ),
        Some(_) => reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Invalid API key"}),
        ),
        None => reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Please use an API key."}),
        ),
    }
}

async fn alpha_vantage(State(shared): State<Shared>, Query(q): Params) -> Response {
    if let Some(r) = shared.enter("alpha-vantage") {
        return r;
    }
    match q.get("apikey") {
        Some(key) if shared.accepts("alpha-vantage", key) => {
            let symbol = q
                .get("symbol")
                .cloned()
                .unwrap_or_else(|| "IBM".to_string());
            reply(
                StatusCode::OK,
                json!({"Global Quote": {
                    "01. symbol": symbol, "02. open": "221.6000", "03. high": "223.0900",
                    "04. low": "220.2700", "05. price": "221.4200", "06. volume": "3034233",
                    "07. latest trading day": "2024-10-01", "08. previous close": "221.0800",
                    "09. change": "0.3400", "10. change percent": "0.1538%"}}),
            )
        }
        // The real vendor answers a bad or missing key with HTTP 200 and an error body.
        _ => reply(
            StatusCode::OK,
            json!({"Error Message": "the parameter apikey is invalid or missing"}),
        ),
    }
}

/// The `id` and `method` of a JSON-RPC request, or `None` when the body is not JSON.
fn rpc_request(body: &Bytes) -> Option<(Value, String)> {
    let parsed: Value = serde_json::from_slice(body).ok()?;
    let id = parsed.get("id").cloned().unwrap_or(Value::Null);
    let method = parsed
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((id, method))
}

fn rpc_parse_error() -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}}),
    )
}

fn rpc_answer(id: Value, method: &str) -> Response {
    let result = match method {
        "eth_blockNumber" => json!("0x10d4f"),
        "eth_chainId" => json!("0x1"),
        "net_version" => json!("1"),
        _ => {
            return reply(
                StatusCode::OK,
                json!({"jsonrpc": "2.0", "id": id,
                       "error": {"code": -32601, "message": "Method not found"}}),
            )
        }
    };
    reply(
        StatusCode::OK,
        json!({"jsonrpc": "2.0", "id": id, "result": result}),
    )
}

async fn alchemy(State(shared): State<Shared>, Path(key): Path<String>, body: Bytes) -> Response {
    if let Some(r) = shared.enter("alchemy") {
        return r;
    }
    let Some((id, method)) = rpc_request(&body) else {
        return rpc_parse_error();
    };
    if !shared.accepts("alchemy", &key) {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32600, "message": "Must be authenticated!"}}),
        );
    }
    rpc_answer(id, &method)
}

async fn walletconnect(State(shared): State<Shared>, Query(q): Params, body: Bytes) -> Response {
    if let Some(r) = shared.enter("walletconnect") {
        return r;
    }
    let Some((id, method)) = rpc_request(&body) else {
        return rpc_parse_error();
    };
    match q.get("projectId") {
        Some(key) if shared.accepts("walletconnect", key) => rpc_answer(id, &method),
        Some(_) => reply(
            StatusCode::UNAUTHORIZED,
            json!({"jsonrpc": "2.0", "id": id,
                   "error": {"code": -32000, "message": "Invalid projectId"}}),
        ),
        None => reply(
            StatusCode::BAD_REQUEST,
            json!({"jsonrpc": "2.0", "id": id,
                   "error": {"code": -32602, "message": "projectId is required"}}),
        ),
    }
}

async fn newsapi(State(shared): State<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    if let Some(r) = shared.enter("newsapi") {
        return r;
    }
    let key = header_str(&headers, "x-api-key")
        .or_else(|| q.get("apiKey").map(String::as_str))
        .or_else(|| bearer(&headers));
    match key {
        Some(key) if shared.accepts("newsapi", key) => reply(
            StatusCode::OK,
            json!({"status": "ok", "totalResults": 1, "articles": [{
                "source": {"id": null, "name": "Stand-in News"}, "author": null,
                "title": "Keys rotated without downtime", "url": "http://127.0.0.1/news/1",
                "publishedAt": "2024-10-01T12:00:00Z"}]}),
        ),
        Some(_) => reply(
            StatusCode::UNAUTHORIZED,
            json!({"status": "error", "code": "apiKeyInvalid",
                   "message": "Your API key is invalid or incorrect. Check your key, or go to https://newsapi.org to create a free API key."}),
        ),
        None => reply(
            StatusCode::UNAUTHORIZED,
            json!({"status": "error", "code": "apiKeyMissing",
                   "message": "Your API key is missing. Append this to the URL with the apiKey param, or use the x-api-key HTTP header."}),
        ),
    }
}

async fn generic(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = shared.enter("http") {
        return r;
    }
    match bearer(&headers) {
        Some(key) if shared.accepts("http", key) => reply(StatusCode::OK, json!({"ok": true})),
        _ => reply(
            StatusCode::UNAUTHORIZED,
            json!({"ok": false, "error": "unauthorized"}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_look_like_the_vendors() {
        assert!(mint("openai").starts_with("sk-proj-"));
        assert_eq!(mint("newsapi").len(), 32);
        assert!(mint("newsapi").chars().all(|c| c.is_ascii_hexdigit()));
        assert!(mint("alpha-vantage")
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert_ne!(mint("polygon"), mint("polygon"));
        for vendor in VENDORS {
            // Every key survives a query string or a path segment unescaped.
            assert!(
                mint(vendor)
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{vendor}"
            );
        }
    }

    #[test]
    fn fail_next_counts_down_before_an_outage_applies() {
        let shared = Shared::default();
        shared.lock().fail_next.insert("openai".into(), (503, 2));
        shared.lock().outage.insert("openai".into(), 429);
        let statuses: Vec<u16> = (0..3)
            .map(|_| {
                shared
                    .enter("openai")
                    .map(|r| r.status().as_u16())
                    .unwrap_or(200)
            })
            .collect();
        assert_eq!(statuses, [503, 503, 429]);
        shared.lock().outage.clear();
        assert!(shared.enter("openai").is_none());
        assert_eq!(shared.lock().seen["openai"], 4);
    }
}
