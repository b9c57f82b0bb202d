//! The app stand-in: healthy while the vendor accepts the key it currently reads.

use rotor_core::ports::{HttpProber, ProbeRequest};
use rotor_core::secret::SecretValue;
use rotor_probe_http::ReqwestProber;
use rotor_standins::{AppStandIn, BoxFuture, CurrentKey, VendorStandIn};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn health(app: &AppStandIn) -> (u16, String) {
    let req = ProbeRequest {
        method: "GET",
        url: SecretValue::new(app.health_url()),
        headers: vec![],
        body: None,
    };
    let answer = ReqwestProber::new(Duration::from_secs(5))
        .send(&req)
        .await
        .unwrap();
    (answer.status, answer.body)
}

fn reading(slot: &Arc<Mutex<Option<String>>>) -> CurrentKey {
    let slot = slot.clone();
    Arc::new(move || -> BoxFuture<'static, Option<String>> {
        let value = slot.lock().unwrap().clone();
        Box::pin(async move { value })
    })
}

#[tokio::test]
async fn health_follows_the_current_key_and_the_vendor() {
    let vendor = VendorStandIn::start().await;
    let old = vendor.issue_key("openai");
    let slot = Arc::new(Mutex::new(Some(old.clone())));
    let app = AppStandIn::for_vendor(reading(&slot), &vendor, "openai").await;
    assert!(
        app.health_url().starts_with("http://127.0.0.1:") && app.health_url().ends_with("/health")
    );

    assert_eq!(health(&app).await.0, 200);

    // The vendor revokes the key the app uses: unhealthy, and the answer does not carry it.
    vendor.revoke_key(&old);
    let (status, body) = health(&app).await;
    assert_eq!(status, 503);
    assert!(!body.contains(&old));

    // The app picks up a rotated key.
    let new = vendor.issue_key("openai");
    *slot.lock().unwrap() = Some(new);
    assert_eq!(health(&app).await.0, 200);

    // A key of another vendor, or none at all, is not healthy.
    *slot.lock().unwrap() = Some(vendor.issue_key("polygon"));
    assert_eq!(health(&app).await.0, 503);
    *slot.lock().unwrap() = None;
    assert_eq!(health(&app).await.0, 503);

    // The app's checks do not count as vendor traffic.
    assert_eq!(vendor.requests_seen_by("openai"), 0);
    assert_eq!(app.health_checks(), 5);
}

#[tokio::test]
async fn a_broken_app_answers_500_whatever_the_key() {
    let key_ok = Arc::new(|_: &str| true);
    let app = AppStandIn::start(
        Arc::new(|| -> BoxFuture<'static, Option<String>> {
            Box::pin(async { Some("k".to_string()) })
        }),
        key_ok,
    )
    .await;
    assert_eq!(health(&app).await.0, 200);
    app.set_broken(true);
    assert!(app.is_broken());
    assert_eq!(health(&app).await.0, 500);
    app.set_broken(false);
    assert_eq!(health(&app).await.0, 200);

    let url = app.health_url();
    drop(app);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let req = ProbeRequest {
        method: "GET",
        url: SecretValue::new(url),
        headers: vec![],
        body: None,
    };
    let e = ReqwestProber::new(Duration::from_secs(2))
        .send(&req)
        .await
        .unwrap_err();
    // Nothing listens any more: a refused connection does not heal by retrying (issue 16).
    assert_eq!(e.asl_name(), "Probe.Rejected", "{e}");
    assert!(e.to_string().contains("connection refused"), "{e}");
}
