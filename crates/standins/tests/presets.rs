//! End to end: every preset of `rotor_core::probe`, pointed at the vendor stand-in, sent through
//! `ReqwestProber` and read by `rotor_core::probe::judge`. The presets and the stand-in agree.

use rotor_core::ports::HttpProber;
use rotor_core::probe::{judge, request, PROBE_NAMES};
use rotor_core::secret::SecretValue;
use rotor_probe_http::ReqwestProber;
use rotor_standins::{VendorStandIn, VENDORS};
use std::time::Duration;

async fn verdict(
    prober: &ReqwestProber,
    base: &str,
    name: &str,
    key: &str,
) -> Result<String, String> {
    let req = request(
        name,
        Some(&format!("{base}/{name}")),
        &SecretValue::new(key),
    )
    .unwrap();
    let answer = prober
        .send(&req)
        .await
        .map_err(|e| format!("{}: {e}", e.asl_name()))?;
    judge(name, &answer).map_err(|e| {
        let msg = e.to_string();
        assert!(!msg.contains(key), "{name}: a verdict names the key");
        format!("{}: {msg}", e.asl_name())
    })
}

#[test]
fn the_stand_in_plays_every_preset() {
    for name in PROBE_NAMES {
        assert!(VENDORS.contains(name), "no stand-in for preset {name}");
    }
}

#[tokio::test]
async fn every_preset_accepts_an_issued_key_and_rejects_others() {
    let vendor = VendorStandIn::start().await;
    let base = vendor.base_url();
    let prober = ReqwestProber::new(Duration::from_secs(5));
    for name in PROBE_NAMES {
        let key = vendor.issue_key(name);
        let ok = verdict(&prober, &base, name, &key).await;
        assert!(ok.is_ok(), "{name}: an issued key was not accepted: {ok:?}");

        let random = format!("x{}", vendor.issue_key(name).to_lowercase());
        let no = verdict(&prober, &base, name, &random).await.unwrap_err();
        assert!(
            no.starts_with("Probe.Rejected"),
            "{name}: a random key: {no}"
        );

        // A key issued for another vendor is not good here.
        let other = if *name == "openai" {
            "polygon"
        } else {
            "openai"
        };
        let foreign = vendor.issue_key(other);
        let no = verdict(&prober, &base, name, &foreign).await.unwrap_err();
        assert!(
            no.starts_with("Probe.Rejected"),
            "{name}: another vendor's key: {no}"
        );

        // A revoked key is rejected.
        assert!(vendor.revoke_key(&key));
        let no = verdict(&prober, &base, name, &key).await.unwrap_err();
        assert!(
            no.starts_with("Probe.Rejected"),
            "{name}: a revoked key: {no}"
        );
        assert!(!vendor.revoke_key(&key));

        assert_eq!(
            vendor.requests_seen_by(name),
            4,
            "{name}: every probe reached its own prefix"
        );
    }
    assert_eq!(vendor.requests_seen().len(), PROBE_NAMES.len());
}

#[tokio::test]
async fn an_injected_failure_is_not_ready_once_then_the_key_works() {
    let vendor = VendorStandIn::start().await;
    let base = vendor.base_url();
    let prober = ReqwestProber::new(Duration::from_secs(5));
    for name in PROBE_NAMES {
        let key = vendor.issue_key(name);
        vendor.fail_next(name, 503, 1);
        let first = verdict(&prober, &base, name, &key).await.unwrap_err();
        assert!(first.starts_with("Probe.NotReady"), "{name}: {first}");
        assert!(first.contains("503"), "{name}: {first}");
        let second = verdict(&prober, &base, name, &key).await;
        assert!(second.is_ok(), "{name}: after the failure: {second:?}");
    }
}

#[tokio::test]
async fn an_outage_lasts_until_cleared_and_429_is_not_ready() {
    let vendor = VendorStandIn::start().await;
    let base = vendor.base_url();
    let prober = ReqwestProber::new(Duration::from_secs(5));
    let key = vendor.issue_key("newsapi");
    vendor.set_outage("newsapi", Some(429));
    for _ in 0..3 {
        let e = verdict(&prober, &base, "newsapi", &key).await.unwrap_err();
        assert!(e.starts_with("Probe.NotReady") && e.contains("429"), "{e}");
    }
    // Other vendors are not affected.
    let other = vendor.issue_key("finnhub");
    assert!(verdict(&prober, &base, "finnhub", &other).await.is_ok());
    vendor.set_outage("newsapi", None);
    assert!(verdict(&prober, &base, "newsapi", &key).await.is_ok());
    assert_eq!(vendor.requests_seen_by("newsapi"), 4);
}

#[tokio::test]
async fn vendor_specific_rejections_look_like_the_real_ones() {
    let vendor = VendorStandIn::start().await;
    let base = vendor.base_url();
    let prober = ReqwestProber::new(Duration::from_secs(5));
    let send = |name: &'static str, key: &'static str| {
        let req = request(
            name,
            Some(&format!("{base}/{name}")),
            &SecretValue::new(key),
        )
        .unwrap();
        let prober = prober.clone();
        async move { prober.send(&req).await.unwrap() }
    };
    let av = send("alpha-vantage", "NOPE").await;
    assert_eq!(av.status, 200);
    assert!(
        av.body
            .contains(r#""Error Message":"the parameter apikey is invalid or missing""#),
        "{}",
        av.body
    );
    let news = send("newsapi", "nope").await;
    assert_eq!(news.status, 401);
    assert!(
        news.body.contains(r#""status":"error""#)
            && news.body.contains(r#""code":"apiKeyInvalid""#)
    );
    let alchemy = send("alchemy", "nope").await;
    assert_eq!(alchemy.status, 401);
    assert!(alchemy.body.contains(r#""error""#) && !alchemy.body.contains("nope"));

    let key = vendor.issue_key("alchemy");
    let req = request(
        "alchemy",
        Some(&format!("{base}/alchemy")),
        &SecretValue::new(key.as_str()),
    )
    .unwrap();
    let good = prober.send(&req).await.unwrap();
    assert_eq!(good.status, 200);
    assert_eq!(good.body, r#"{"jsonrpc":"2.0","id":1,"result":"0x10d4f"}"#);
}

#[tokio::test]
async fn the_generic_preset_also_answers_under_http_check() {
    let vendor = VendorStandIn::start().await;
    let prober = ReqwestProber::default();
    let key = vendor.issue_key("http");
    let url = format!("{}/http/check", vendor.base_url());
    let ok = prober
        .send(&request("http", Some(&url), &SecretValue::new(key.as_str())).unwrap())
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    let no = prober
        .send(&request("http", Some(&url), &SecretValue::new("rk_nope")).unwrap())
        .await
        .unwrap();
    assert_eq!(no.status, 401);
}

#[tokio::test]
async fn a_dropped_stand_in_stops_serving() {
    let vendor = VendorStandIn::start().await;
    let key = vendor.issue_key("openai");
    let base = vendor.base_url();
    let clone = vendor.clone();
    drop(vendor);
    // A clone keeps it up.
    let prober = ReqwestProber::new(Duration::from_secs(2));
    assert!(verdict(&prober, &base, "openai", &key).await.is_ok());
    clone.shutdown().await;
    drop(clone);
    // A fresh client: the old one may hold a pooled connection.
    let prober = ReqwestProber::new(Duration::from_secs(2));
    let e = verdict(&prober, &base, "openai", &key).await.unwrap_err();
    // Nothing listens any more: a refused connection does not heal by retrying (issue 16).
    assert!(e.starts_with("Probe.Rejected"), "{e}");
    assert!(e.contains("connection refused"), "{e}");
}
