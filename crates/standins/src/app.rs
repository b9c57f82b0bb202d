//! An application that uses the rotated key (reading AWSCURRENT on each request, or as an ECS
//! task holding the version its deployment started on: [`task_key_from`]): `GET /health` is 200 while the vendor accepts the
//! key the app currently reads, 503 when it does not, and 500 while it is set broken.

use crate::server::Server;
use crate::vendor::VendorStandIn;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The same type as `futures::future::BoxFuture`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the app reads its current key (in the demo: AWSCURRENT from the local store).
pub type CurrentKey = Arc<dyn Fn() -> BoxFuture<'static, Option<String>> + Send + Sync>;

/// An app that reads AWSCURRENT of `secret_id` from `store` (the local store, or Secrets
/// Manager through the adapter), as a consumer reads its secret.
pub fn current_key_from<S>(store: Arc<S>, secret_id: &str) -> CurrentKey
where
    S: rotor_core::ports::SecretStore + ?Sized + 'static,
{
    let secret = secret_id.to_string();
    Arc::new(move || -> BoxFuture<'static, Option<String>> {
        let store = store.clone();
        let secret = secret.clone();
        Box::pin(async move {
            store
                .get_value(&secret, &rotor_core::secret::Version::current())
                .await
                .ok()
                .map(|(_, v)| v.expose().to_string())
        })
    })
}

/// Which version of its secret an ECS-like task holds (the one its deployment started on).
pub type ServingVersion = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// An app that runs as an ECS task: it holds the version of `secret_id` its deployment
/// started on (`serving`, e.g. the local store's `serving_version` of its service), not
/// whatever AWSCURRENT is now, so only a redeployment gives it a new key.
pub fn task_key_from<S>(store: Arc<S>, secret_id: &str, serving: ServingVersion) -> CurrentKey
where
    S: rotor_core::ports::SecretStore + ?Sized + 'static,
{
    let secret = secret_id.to_string();
    Arc::new(move || -> BoxFuture<'static, Option<String>> {
        let store = store.clone();
        let secret = secret.clone();
        let version = serving();
        Box::pin(async move {
            store
                .get_value(&secret, &rotor_core::secret::Version::Id(version?))
                .await
                .ok()
                .map(|(_, v)| v.expose().to_string())
        })
    })
}

/// Whether the vendor accepts a key (see [`VendorStandIn::checker`]).
pub type KeyChecker = Arc<dyn Fn(&str) -> bool + Send + Sync>;

struct AppState {
    current_key: CurrentKey,
    accepts: KeyChecker,
    broken: AtomicBool,
    checks: AtomicU64,
}

/// A running app stand-in. Cloning shares the server; it stops when the last clone is dropped,
/// or at [`AppStandIn::shutdown`].
#[derive(Clone)]
pub struct AppStandIn {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<AppState>,
    server: Server,
}

impl AppStandIn {
    /// Starts the app on 127.0.0.1 (ephemeral port) on the current tokio runtime. Panics if
    /// loopback cannot be bound; see [`AppStandIn::try_start`].
    pub async fn start(current_key: CurrentKey, accepts: KeyChecker) -> AppStandIn {
        Self::try_start(current_key, accepts)
            .await
            .expect("the app stand-in could not bind 127.0.0.1")
    }

    pub async fn try_start(
        current_key: CurrentKey,
        accepts: KeyChecker,
    ) -> std::io::Result<AppStandIn> {
        let state = Arc::new(AppState {
            current_key,
            accepts,
            broken: AtomicBool::new(false),
            checks: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/health", get(health))
            .with_state(state.clone());
        let server = Server::start(router).await?;
        Ok(AppStandIn {
            inner: Arc::new(Inner { state, server }),
        })
    }

    /// An app whose key is checked by `vendor`'s stand-in for preset `name`.
    pub async fn for_vendor(
        current_key: CurrentKey,
        vendor: &VendorStandIn,
        name: &str,
    ) -> AppStandIn {
        Self::start(current_key, vendor.checker(name)).await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.inner.server.base_url()
    }

    /// `http://127.0.0.1:<port>/health`.
    pub fn health_url(&self) -> String {
        format!("{}/health", self.base_url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.server.addr()
    }

    /// While broken, `/health` answers 500 whatever the key (an app failing after promote).
    pub fn set_broken(&self, broken: bool) {
        self.inner.state.broken.store(broken, Ordering::SeqCst);
    }

    pub fn is_broken(&self) -> bool {
        self.inner.state.broken.load(Ordering::SeqCst)
    }

    /// `/health` requests answered so far.
    pub fn health_checks(&self) -> u64 {
        self.inner.state.checks.load(Ordering::SeqCst)
    }

    /// Stops the server (for every clone) and waits for in-flight requests to finish.
    pub async fn shutdown(&self) {
        self.inner.server.shutdown().await;
    }
}

impl std::fmt::Debug for AppStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppStandIn")
            .field("base_url", &self.base_url())
            .field("broken", &self.is_broken())
            .finish_non_exhaustive()
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    state.checks.fetch_add(1, Ordering::SeqCst);
    if state.broken.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"status": "broken"})),
        )
            .into_response();
    }
    // The key is read, checked and dropped here; it is never logged nor put in an answer.
    let (status, reason) = match (state.current_key)().await {
        None => (StatusCode::SERVICE_UNAVAILABLE, "the app has no key"),
        Some(key) if (state.accepts)(&key) => (StatusCode::OK, ""),
        Some(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the vendor rejected the app's key",
        ),
    };
    let body = if status == StatusCode::OK {
        json!({"status": "ok"})
    } else {
        json!({"status": "unhealthy", "reason": reason})
    };
    (status, Json(body)).into_response()
}
