//! A router served on 127.0.0.1:0 until told to stop or dropped.

use axum::Router;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) struct Server {
    addr: SocketAddr,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    /// Binds 127.0.0.1 on an ephemeral port and serves `router` on the current tokio runtime.
    pub(crate) async fn start(router: Router) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // A dropped sender stops the server as well as a sent signal does.
            let stopped = async move {
                let _ = rx.await;
            };
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await;
        });
        Ok(Server {
            addr,
            stop: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        })
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections; open ones close after their current request.
    pub(crate) fn stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
    }

    /// Stops and waits (up to 5 s) for the server to finish its in-flight requests.
    pub(crate) async fn shutdown(&self) {
        self.stop();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                // A request that outlives the grace period is abandoned.
                task.abort();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
