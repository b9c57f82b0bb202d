//! Where a candidate may be sent. A candidate probe carries the new key to a vendor, so its
//! destination must not be one tag write away: a vendor preset goes to its own production host;
//! a `rotor:probe-url` override (and the generic `http` probe's URL) must be `https://` and name
//! a host on the allow-list that only the deployment sets (`ROTOR_PROBE_ALLOWED_HOSTS` in the
//! health-probe function's environment, Terraform's `probe_allowed_hosts`). Loopback
//! destinations (`127.0.0.1`, `::1`, `localhost`) are exempt: a key sent there never leaves the
//! machine or the function's sandbox, and the local stand-ins and the tests live there.

use crate::error::{Result, RotorError};
use crate::policy::TAG_PROBE_URL;

/// The environment variable that holds the allow-list: host names, comma-separated.
pub const ALLOWED_HOSTS_ENV: &str = "ROTOR_PROBE_ALLOWED_HOSTS";

/// The hosts, besides the presets' own and loopback, a candidate may be sent to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeHosts {
    allowed: Vec<String>,
}

impl ProbeHosts {
    /// Parses `a.example.com,b.example.com` (blanks ignored; case-insensitive). An entry that is
    /// not a bare host name (a scheme, a port, a path, a wildcard) is `Input.Invalid`, naming it.
    pub fn parse(list: &str) -> Result<ProbeHosts> {
        let mut allowed = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let host = entry.to_ascii_lowercase();
            let bare = host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                && !host.starts_with('.')
                && !host.ends_with('.');
            if !bare {
                return Err(RotorError::input(format!(
                    "{ALLOWED_HOSTS_ENV} entry {entry:?} is not a host name (expected e.g. api.example.com: no scheme, port, path or wildcard)"
                )));
            }
            allowed.push(host);
        }
        Ok(ProbeHosts { allowed })
    }

    /// The allow-list from `lookup(ALLOWED_HOSTS_ENV)` (unset: empty).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ProbeHosts> {
        ProbeHosts::parse(&lookup(ALLOWED_HOSTS_ENV).unwrap_or_default())
    }

    /// The allow-list of this process's environment.
    pub fn from_env() -> Result<ProbeHosts> {
        ProbeHosts::from_lookup(|name| std::env::var(name).ok())
    }

    /// Whether a candidate for probe `name` may be sent to `base` (the preset's production base,
    /// or the secret's override). A refusal is `Input.Invalid` naming the tag and the host,
    /// never anything of the key.
    pub fn check(&self, name: &str, base: &str) -> Result<()> {
        let url = url::Url::parse(base)
            .map_err(|e| RotorError::input(format!("tag {TAG_PROBE_URL} is not a URL ({e})")))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => return Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => return Ok(()),
            Some(other) => other.to_string(),
            None => {
                return Err(RotorError::input(format!(
                    "tag {TAG_PROBE_URL} names no host"
                )))
            }
        };
        if host == "localhost" {
            return Ok(());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RotorError::input(format!(
                "tag {TAG_PROBE_URL} carries credentials in its URL; a candidate is never sent there"
            )));
        }
        if url.scheme() != "https" {
            return Err(RotorError::input(format!(
                "tag {TAG_PROBE_URL} is {}:// to {host}; a candidate is only sent over https:// (or to loopback)",
                url.scheme()
            )));
        }
        let own = crate::probe::default_base(name)
            .and_then(|b| url::Url::parse(b).ok())
            .and_then(|u| u.host_str().map(str::to_string));
        if own.as_deref() == Some(host.as_str()) || self.allowed.contains(&host) {
            return Ok(());
        }
        Err(RotorError::input(format!(
            "tag {TAG_PROBE_URL} sends the {name} candidate to {host}, which is neither the preset's own host nor in {ALLOWED_HOSTS_ENV} (the deployment's probe_allowed_hosts)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(hosts: &ProbeHosts, name: &str, base: &str) -> String {
        let e = hosts.check(name, base).unwrap_err();
        assert_eq!(e.asl_name(), "Input.Invalid", "{base}");
        e.to_string()
    }

    #[test]
    fn presets_keep_their_own_hosts() {
        let none = ProbeHosts::default();
        for name in crate::probe::PROBE_NAMES {
            if let Some(base) = crate::probe::default_base(name) {
                none.check(name, base).unwrap();
            }
        }
        none.check("openai", "https://api.openai.com/").unwrap();
        let m = refused(&none, "openai", "https://attacker.example");
        assert!(
            m.contains("attacker.example") && m.contains(ALLOWED_HOSTS_ENV),
            "{m}"
        );
        // Another preset's host is not this preset's.
        refused(&none, "openai", "https://api.polygon.io");
        // The generic probe has no host of its own.
        refused(&none, "http", "https://api.openai.com");
    }

    #[test]
    fn an_override_must_be_https_and_on_the_allow_list() {
        let hosts = ProbeHosts::parse(" Proxy.Example.com , ,vendor.internal").unwrap();
        hosts
            .check("openai", "https://proxy.example.com/v1")
            .unwrap();
        hosts
            .check("http", "https://VENDOR.internal:8443/health")
            .unwrap();
        let m = refused(&hosts, "openai", "http://proxy.example.com");
        assert!(m.contains("https://"), "{m}");
        refused(&hosts, "http", "https://proxy.example.com.attacker.example");
        refused(&hosts, "http", "https://10.0.0.1");
        // userinfo would make the host something else to a careless reader
        let m = refused(&hosts, "openai", "https://api.openai.com@proxy.example.com");
        assert!(m.contains("credentials"), "{m}");
        refused(&hosts, "http", "not a url");
    }

    #[test]
    fn loopback_is_exempt() {
        let none = ProbeHosts::default();
        for base in [
            "http://127.0.0.1:8080/openai",
            "http://localhost:1",
            "http://[::1]:9",
            "http://127.1.2.3",
        ] {
            none.check("openai", base).unwrap();
        }
    }

    #[test]
    fn the_list_holds_host_names_only() {
        for bad in [
            "https://a.example",
            "a.example:443",
            "*.example",
            "a.example/x",
            ".a",
        ] {
            let e = ProbeHosts::parse(bad).unwrap_err();
            assert!(e.to_string().contains(ALLOWED_HOSTS_ENV), "{e}");
        }
        assert_eq!(ProbeHosts::parse("").unwrap(), ProbeHosts::default());
        let from =
            ProbeHosts::from_lookup(|n| (n == ALLOWED_HOSTS_ENV).then(|| "a.example".into()))
                .unwrap();
        from.check("http", "https://a.example").unwrap();
    }
}
