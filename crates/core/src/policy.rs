//! The per-secret policy, read from the secret's tags. The tag keys are a stable contract.

use crate::error::{Result, RotorError};
use crate::ports::ProbeAction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const TAG_KIND: &str = "rotor:kind";
pub const TAG_PROBE: &str = "rotor:probe";
pub const TAG_PROBE_URL: &str = "rotor:probe-url";
pub const TAG_APP_HEALTH_URL: &str = "rotor:app-health-url";
pub const TAG_WAIT_PROPAGATION: &str = "rotor:wait-propagation-seconds";
pub const TAG_WAIT_CONSUMERS: &str = "rotor:wait-consumers-seconds";
pub const TAG_GRACE: &str = "rotor:grace-seconds";
pub const TAG_IAM_USER: &str = "rotor:iam-user";
/// IAM access keys: one read-only call the new key must be permitted, besides
/// sts:GetCallerIdentity (which needs no permission): one of [`ProbeAction::ALL`].
pub const TAG_IAM_PROBE_ACTION: &str = "rotor:iam-probe-action";
/// Generated kind: length of the value (default 40) and its alphabet.
pub const TAG_LENGTH: &str = "rotor:length";
pub const TAG_CHARSET: &str = "rotor:charset";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    VendorApiKey,
    Generated,
    IamAccessKey,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::VendorApiKey => "vendor-api-key",
            Kind::Generated => "generated",
            Kind::IamAccessKey => "iam-access-key",
        }
    }

    pub fn parse(text: &str) -> Result<Kind> {
        match text {
            "vendor-api-key" => Ok(Kind::VendorApiKey),
            "generated" => Ok(Kind::Generated),
            "iam-access-key" => Ok(Kind::IamAccessKey),
            other => Err(RotorError::input(format!(
                "tag {TAG_KIND} is {other:?}; expected one of vendor-api-key, generated, iam-access-key"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Charset {
    Alphanumeric,
    Hex,
    UrlSafe,
}

impl Charset {
    pub fn alphabet(self) -> &'static [u8] {
        match self {
            Charset::Alphanumeric => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
            }
            Charset::Hex => b"0123456789abcdef",
            Charset::UrlSafe => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        }
    }
}

/// How long the state machine waits at each step, from the tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waits {
    pub propagation_seconds: u64,
    pub consumers_seconds: u64,
    pub grace_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub kind: Kind,
    /// A vendor preset name or `http`; `None` only for kinds that need no candidate probe.
    pub probe: Option<String>,
    pub probe_url: Option<String>,
    pub app_health_url: Option<String>,
    pub waits: Waits,
    pub iam_user: Option<String>,
    pub iam_probe_action: Option<ProbeAction>,
    pub length: usize,
    pub charset: Charset,
    /// What must be redeployed on the new value (`rotor:consumers`; empty: nothing).
    pub consumers: Vec<crate::consumers::Consumer>,
}

pub const DEFAULT_WAITS: Waits = Waits {
    propagation_seconds: 10,
    consumers_seconds: 60,
    grace_seconds: 3600,
};
pub const DEFAULT_LENGTH: usize = 40;

fn seconds(tags: &BTreeMap<String, String>, key: &str, default: u64) -> Result<u64> {
    match tags.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= 31_536_000)
            .ok_or_else(|| {
                RotorError::input(format!(
                    "tag {key} is {v:?}; expected a whole number of seconds (0 to 31536000)"
                ))
            }),
    }
}

fn url(tags: &BTreeMap<String, String>, key: &str) -> Result<Option<String>> {
    match tags.get(key) {
        None => Ok(None),
        Some(v) if v.starts_with("http://") || v.starts_with("https://") => {
            Ok(Some(v.trim_end_matches('/').to_string()))
        }
        Some(v) => Err(RotorError::input(format!(
            "tag {key} is {v:?}; expected an http:// or https:// URL"
        ))),
    }
}

/// Every `rotor:*` tag rotor reads: any other `rotor:` tag is a mistake (a misspelled one would
/// otherwise be ignored silently, and its default used).
pub const TAGS: [&str; 14] = [
    TAG_KIND,
    TAG_PROBE,
    TAG_PROBE_URL,
    TAG_APP_HEALTH_URL,
    TAG_WAIT_PROPAGATION,
    TAG_WAIT_CONSUMERS,
    TAG_GRACE,
    TAG_IAM_USER,
    TAG_IAM_PROBE_ACTION,
    TAG_LENGTH,
    TAG_CHARSET,
    crate::consumers::TAG_CONSUMERS,
    crate::consumers::TAG_CONSUMER_TIMEOUT,
    crate::consumers::TAG_CONSUMER_POLL,
];

/// A `rotor:` tag rotor does not know, named with the nearest one it does.
fn unknown_tag(tags: &BTreeMap<String, String>) -> Option<RotorError> {
    let key = tags
        .keys()
        .find(|k| k.starts_with("rotor:") && !TAGS.contains(&k.as_str()))?;
    let nearest = TAGS
        .iter()
        .min_by_key(|t| strsim::levenshtein(key, t))
        .expect("TAGS is not empty");
    Some(RotorError::input(format!(
        "tag {key} is not a rotor tag; did you mean {nearest}? (rotor's tags: {})",
        TAGS.join(", ")
    )))
}

impl Policy {
    /// Reads and checks the policy; every problem names the tag.
    pub fn from_tags(secret_id: &str, tags: &BTreeMap<String, String>) -> Result<Policy> {
        if let Some(e) = unknown_tag(tags) {
            return Err(e);
        }
        let kind = Kind::parse(tags.get(TAG_KIND).ok_or_else(|| {
            RotorError::input(format!(
                "secret {secret_id} has no {TAG_KIND} tag; rotor does not know how to rotate it"
            ))
        })?)?;
        let probe = tags.get(TAG_PROBE).cloned();
        if let Some(p) = &probe {
            if !crate::probe::is_known(p) {
                return Err(RotorError::input(format!(
                    "tag {TAG_PROBE} is {p:?}; expected one of {}",
                    crate::probe::PROBE_NAMES.join(", ")
                )));
            }
        }
        let probe_url = url(tags, TAG_PROBE_URL)?;
        if probe.as_deref() == Some("http") && probe_url.is_none() {
            return Err(RotorError::input(format!(
                "tag {TAG_PROBE} is \"http\" but {TAG_PROBE_URL} is missing"
            )));
        }
        if kind == Kind::VendorApiKey && probe.is_none() {
            return Err(RotorError::input(format!(
                "secret {secret_id} is a vendor-api-key without a {TAG_PROBE} tag: a candidate must be proven before promotion"
            )));
        }
        let iam_user = tags.get(TAG_IAM_USER).cloned();
        if kind == Kind::IamAccessKey && iam_user.is_none() {
            return Err(RotorError::input(format!(
                "secret {secret_id} is an iam-access-key without a {TAG_IAM_USER} tag"
            )));
        }
        let iam_probe_action = match tags.get(TAG_IAM_PROBE_ACTION) {
            None => None,
            Some(v) => Some(ProbeAction::parse(v.trim()).ok_or_else(|| {
                RotorError::input(format!(
                    "tag {TAG_IAM_PROBE_ACTION} is {v:?}; expected one of {}",
                    ProbeAction::ALL.map(ProbeAction::as_str).join(", ")
                ))
            })?),
        };
        if iam_probe_action.is_some() && kind != Kind::IamAccessKey {
            return Err(RotorError::input(format!(
                "tag {TAG_IAM_PROBE_ACTION} is for iam-access-key secrets; secret {secret_id} is {}",
                kind.as_str()
            )));
        }
        if kind == Kind::IamAccessKey && probe.is_some() {
            return Err(RotorError::input(format!(
                "secret {secret_id} is an iam-access-key: it is proven with STS, not a {TAG_PROBE} preset (use {TAG_IAM_PROBE_ACTION})"
            )));
        }
        let length = match tags.get(TAG_LENGTH) {
            None => DEFAULT_LENGTH,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (16..=4096).contains(n))
                .ok_or_else(|| {
                    RotorError::input(format!(
                        "tag {TAG_LENGTH} is {v:?}; expected a length from 16 to 4096"
                    ))
                })?,
        };
        let charset = match tags.get(TAG_CHARSET).map(String::as_str) {
            None | Some("alphanumeric") => Charset::Alphanumeric,
            Some("hex") => Charset::Hex,
            Some("url-safe") => Charset::UrlSafe,
            Some(other) => {
                return Err(RotorError::input(format!(
                    "tag {TAG_CHARSET} is {other:?}; expected alphanumeric, hex or url-safe"
                )))
            }
        };
        Ok(Policy {
            kind,
            probe,
            probe_url,
            app_health_url: url(tags, TAG_APP_HEALTH_URL)?,
            waits: Waits {
                propagation_seconds: seconds(
                    tags,
                    TAG_WAIT_PROPAGATION,
                    DEFAULT_WAITS.propagation_seconds,
                )?,
                consumers_seconds: seconds(
                    tags,
                    TAG_WAIT_CONSUMERS,
                    DEFAULT_WAITS.consumers_seconds,
                )?,
                grace_seconds: seconds(tags, TAG_GRACE, DEFAULT_WAITS.grace_seconds)?,
            },
            iam_user,
            iam_probe_action,
            length,
            charset,
            consumers: crate::consumers::from_tags(tags)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_every_tag() {
        let p = Policy::from_tags(
            "s",
            &tags(&[
                (TAG_KIND, "vendor-api-key"),
                (TAG_PROBE, "openai"),
                (TAG_PROBE_URL, "http://127.0.0.1:9/"),
                (TAG_APP_HEALTH_URL, "http://127.0.0.1:8/health"),
                (TAG_WAIT_PROPAGATION, "1"),
                (TAG_WAIT_CONSUMERS, "2"),
                (TAG_GRACE, "3"),
            ]),
        )
        .unwrap();
        assert_eq!(p.kind, Kind::VendorApiKey);
        assert_eq!(p.probe_url.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(
            p.waits,
            Waits {
                propagation_seconds: 1,
                consumers_seconds: 2,
                grace_seconds: 3
            }
        );
    }

    #[test]
    fn a_misspelled_rotor_tag_is_refused_naming_the_nearest() {
        let e = Policy::from_tags(
            "s",
            &tags(&[
                (TAG_KIND, "generated"),
                ("rotor:wait-consumer-seconds", "5"),
                ("team", "payments"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.asl_name(), "Input.Invalid");
        assert!(
            e.to_string().starts_with(
                "tag rotor:wait-consumer-seconds is not a rotor tag; did you mean rotor:wait-consumers-seconds?"
            ),
            "{e}"
        );
        let e = Policy::from_tags(
            "s",
            &tags(&[(TAG_KIND, "generated"), ("rotor:consumer", "ecs:a/b")]),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("did you mean rotor:consumers?"),
            "{e}"
        );
    }

    #[test]
    fn problems_name_the_tag() {
        let e = Policy::from_tags("s", &tags(&[(TAG_KIND, "password")])).unwrap_err();
        assert_eq!(e.asl_name(), "Input.Invalid");
        assert!(e.to_string().contains("rotor:kind"));
        let e = Policy::from_tags("s", &tags(&[])).unwrap_err();
        assert!(e.to_string().contains("no rotor:kind tag"));
        let e = Policy::from_tags("s", &tags(&[(TAG_KIND, "vendor-api-key")])).unwrap_err();
        assert!(e.to_string().contains("rotor:probe"));
        let e = Policy::from_tags(
            "s",
            &tags(&[(TAG_KIND, "generated"), (TAG_WAIT_CONSUMERS, "soon")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains(TAG_WAIT_CONSUMERS));
        let e = Policy::from_tags("s", &tags(&[(TAG_KIND, "generated"), (TAG_PROBE, "nope")]))
            .unwrap_err();
        assert!(e.to_string().contains("openai"));
    }
}
