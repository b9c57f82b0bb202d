//! Vendor probe presets: how to ask each vendor whether a key works, and how to read the answer.
//! Every base URL can be overridden with the `rotor:probe-url` tag (tests point them at a local
//! stand-in).

use crate::error::{Result, RotorError};
use crate::ports::{ProbeAnswer, ProbeRequest};
use crate::secret::SecretValue;

pub const PROBE_NAMES: &[&str] = &[
    "openai",
    "polygon",
    "finnhub",
    "alpha-vantage",
    "alchemy",
    "newsapi",
    "walletconnect",
    "http",
];

pub fn is_known(name: &str) -> bool {
    PROBE_NAMES.contains(&name)
}

/// The production base URL of a preset (`http` has none: its URL is required).
pub fn default_base(name: &str) -> Option<&'static str> {
    Some(match name {
        "openai" => "https://api.openai.com",
        "polygon" => "https://api.polygon.io",
        "finnhub" => "https://finnhub.io",
        "alpha-vantage" => "https://www.alphavantage.co",
        "alchemy" => "https://eth-mainnet.g.alchemy.com",
        "newsapi" => "https://newsapi.org",
        "walletconnect" => "https://rpc.walletconnect.com",
        _ => return None,
    })
}

fn q(key: &SecretValue) -> String {
    // Keys are URL-safe in practice; escape the few characters that would break a query.
    key.expose()
        .replace('%', "%25")
        .replace('&', "%26")
        .replace('#', "%23")
        .replace('+', "%2B")
        .replace(' ', "%20")
}

const JSON_RPC_BLOCK_NUMBER: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;

/// The request that proves `key` with vendor `name`.
pub fn request(name: &str, base: Option<&str>, key: &SecretValue) -> Result<ProbeRequest> {
    let base = base
        .or_else(|| default_base(name))
        .ok_or_else(|| RotorError::input(format!("probe {name:?} needs a rotor:probe-url tag")))?;
    let get = |url: String, headers: Vec<(String, SecretValue)>| ProbeRequest {
        method: "GET",
        url: SecretValue::new(url),
        headers,
        body: None,
    };
    let bearer = || {
        vec![(
            "Authorization".to_string(),
            SecretValue::new(format!("Bearer {}", key.expose())),
        )]
    };
    Ok(match name {
        "openai" => get(format!("{base}/v1/models"), bearer()),
        "polygon" => get(
            format!("{base}/v3/reference/tickers?limit=1&apiKey={}", q(key)),
            vec![],
        ),
        "finnhub" => get(
            format!("{base}/api/v1/quote?symbol=AAPL&token={}", q(key)),
            vec![],
        ),
        "alpha-vantage" => get(
            format!(
                "{base}/query?function=GLOBAL_QUOTE&symbol=IBM&apikey={}",
                q(key)
            ),
            vec![],
        ),
        "newsapi" => get(
            format!("{base}/v2/top-headlines?country=us&pageSize=1"),
            vec![("X-Api-Key".to_string(), key.clone())],
        ),
        "alchemy" => ProbeRequest {
            method: "POST",
            url: SecretValue::new(format!("{base}/v2/{}", q(key))),
            headers: vec![],
            body: Some(JSON_RPC_BLOCK_NUMBER.to_string()),
        },
        "walletconnect" => ProbeRequest {
            method: "POST",
            url: SecretValue::new(format!("{base}/v1/?chainId=eip155:1&projectId={}", q(key))),
            headers: vec![],
            body: Some(JSON_RPC_BLOCK_NUMBER.to_string()),
        },
        "http" => get(base.to_string(), bearer()),
        other => return Err(RotorError::input(format!("unknown probe {other:?}"))),
    })
}

/// Reads a vendor's answer: `Ok(proof)` when the key works. 429 and 5xx are `Probe.NotReady`
/// (the state machine retries); other answers are `Probe.Rejected`. Messages name the vendor and
/// the status, never the key or the body (a body may echo the key).
pub fn judge(name: &str, answer: &ProbeAnswer) -> Result<String> {
    let status = answer.status;
    if status == 429 || status >= 500 {
        return Err(RotorError::ProbeNotReady(format!(
            "{name} answered HTTP {status}; will retry"
        )));
    }
    if !(200..300).contains(&status) {
        return Err(RotorError::ProbeRejected(format!(
            "{name} answered HTTP {status}: the key was not accepted"
        )));
    }
    let body_ok = match name {
        // Alpha Vantage answers 200 with an "Error Message" or "Information" body for a bad key.
        "alpha-vantage" => {
            !(answer.body.contains("Error Message") || answer.body.contains("Invalid API"))
        }
        // JSON-RPC vendors answer 200 with an "error" member for a bad key.
        "alchemy" | "walletconnect" => answer.body.contains("\"result\""),
        _ => true,
    };
    if !body_ok {
        return Err(RotorError::ProbeRejected(format!(
            "{name} answered HTTP {status} with an error body: the key was not accepted"
        )));
    }
    Ok(format!("{name} accepted the key (HTTP {status})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> ProbeAnswer {
        ProbeAnswer {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn every_preset_builds_a_request_that_carries_the_key_and_honours_the_base() {
        let key = SecretValue::new("k-123");
        for name in PROBE_NAMES {
            let r = request(name, Some("http://127.0.0.1:1"), &key).unwrap();
            assert!(r.url.expose().starts_with("http://127.0.0.1:1"), "{name}");
            let carried = r.url.expose().contains("k-123")
                || r.headers.iter().any(|(_, v)| v.expose().contains("k-123"));
            assert!(carried, "{name} must send the key");
        }
        assert!(request("http", None, &key).is_err());
    }

    #[test]
    fn answers_are_judged_as_vendors_mean_them() {
        assert!(judge("openai", &answer(200, "{}")).is_ok());
        assert_eq!(
            judge("openai", &answer(401, "")).unwrap_err().asl_name(),
            "Probe.Rejected"
        );
        assert_eq!(
            judge("openai", &answer(429, "")).unwrap_err().asl_name(),
            "Probe.NotReady"
        );
        assert_eq!(
            judge("polygon", &answer(503, "")).unwrap_err().asl_name(),
            "Probe.NotReady"
        );
        let bad_av = answer(
            200,
            r#"{"Error Message": "the parameter apikey is invalid"}"#,
        );
        assert_eq!(
            judge("alpha-vantage", &bad_av).unwrap_err().asl_name(),
            "Probe.Rejected"
        );
        assert!(judge("alpha-vantage", &answer(200, r#"{"Global Quote": {}}"#)).is_ok());
        assert_eq!(
            judge("alchemy", &answer(200, r#"{"error": {}}"#))
                .unwrap_err()
                .asl_name(),
            "Probe.Rejected"
        );
        assert!(judge("alchemy", &answer(200, r#"{"result": "0x1"}"#)).is_ok());
    }

    #[test]
    fn messages_never_carry_the_body() {
        let e = judge(
            "alpha-vantage",
            &answer(200, "Error Message: key SECRET-KEY invalid"),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("SECRET-KEY"));
    }
}
