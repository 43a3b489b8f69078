//! Reads the original Go proxy's `config.json` unchanged and turns it into Spin variables.

use anyhow::Context as _;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

/// Where the proxy listens when `listen_addr` is absent: the Go proxy's `:8080` (every interface).
pub const DEFAULT_LISTEN: &str = ":8080";

/// The Go proxy's configuration file (all fields as it names them).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoConfig {
    #[serde(default)]
    pub listen_addr: Option<String>,
    pub endpoint: String,
    #[serde(default)]
    pub access_key_id: String,
    #[serde(default)]
    pub secret_access_key: String,
    #[serde(default)]
    pub use_ssl: bool,
    #[serde(default)]
    pub region: Option<String>,
    pub buckets: Vec<String>,
    /// The Go proxy's log level (`debug`, `info`, `warn`/`warning`, `error`; anything else is
    /// `info`, as there): see [`GoConfig::access_log`].
    #[serde(default)]
    pub log_level: Option<String>,
}

impl GoConfig {
    pub fn load(path: &Path) -> anyhow::Result<GoConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid proxy config.json", path.display()))
    }

    /// The Spin variables that configure the component the same way.
    pub fn variables(&self) -> HashMap<String, String> {
        let mut vars = HashMap::new();
        vars.insert("buckets".into(), serde_json::to_string(&self.buckets).unwrap_or_default());
        vars.insert("endpoint".into(), self.endpoint.clone());
        vars.insert("use_ssl".into(), self.use_ssl.to_string());
        vars.insert("access_key_id".into(), self.access_key_id.clone());
        vars.insert("secret_access_key".into(), self.secret_access_key.clone());
        // The Go proxy had no client authentication: keep it open, as it was (the runner says so).
        vars.insert("allow_anonymous".into(), "true".into());
        if let Some(region) = self.region.as_ref().filter(|r| !r.is_empty()) {
            vars.insert("region".into(), region.clone());
        }
        vars
    }

    /// Whether each request's access-log line is printed: the Go proxy logs every request at
    /// `info`, so a `log_level` of `warn`, `warning` or `error` turns the lines off (failures are
    /// still reported on stderr); `debug`, `info`, an unknown level or none keeps them.
    pub fn access_log(&self) -> bool {
        let level = self.log_level.as_deref().unwrap_or_default().to_ascii_lowercase();
        !matches!(level.as_str(), "warn" | "warning" | "error")
    }

    /// `listen_addr` as a socket address, [`DEFAULT_LISTEN`] when absent or empty; Go's `:8080`
    /// means every interface.
    pub fn listen(&self) -> anyhow::Result<SocketAddr> {
        let addr = self.listen_addr.as_deref().filter(|a| !a.is_empty()).unwrap_or(DEFAULT_LISTEN);
        let full = if addr.starts_with(':') { format!("0.0.0.0{addr}") } else { addr.to_string() };
        full.parse().with_context(|| format!("listen_addr {addr:?} in the config file is not host:port (e.g. \":8080\")"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_go_proxy_config_unchanged() {
        let cfg: GoConfig = serde_json::from_str(
            r#"{"listen_addr": ":8080", "endpoint": "s3.example.com", "access_key_id": "AK",
                "secret_access_key": "SK", "use_ssl": true, "region": "eu-west-1",
                "buckets": ["tempo-1", "tempo-2"]}"#,
        )
        .unwrap();
        let vars = cfg.variables();
        assert_eq!(vars["buckets"], r#"["tempo-1","tempo-2"]"#);
        assert_eq!(vars["use_ssl"], "true");
        assert_eq!(vars["region"], "eu-west-1");
        assert_eq!(cfg.listen().unwrap(), "0.0.0.0:8080".parse().unwrap());
    }

    #[test]
    fn log_level_is_read_and_quiets_the_access_log_as_the_go_proxy_does() {
        let with = |level: &str| -> GoConfig {
            serde_json::from_str(&format!(r#"{{"endpoint": "e", "buckets": ["a"], "log_level": "{level}"}}"#)).unwrap()
        };
        for level in ["warn", "WARNING", "error"] {
            assert!(!with(level).access_log(), "{level}");
        }
        for level in ["debug", "info", "", "verbose"] {
            assert!(with(level).access_log(), "{level}");
        }
        let unset: GoConfig = serde_json::from_str(r#"{"endpoint": "e", "buckets": ["a"]}"#).unwrap();
        assert!(unset.access_log());
    }

    #[test]
    fn listens_on_8080_without_listen_addr() {
        let cfg: GoConfig = serde_json::from_str(r#"{"endpoint": "http://127.0.0.1:9000", "buckets": ["a"]}"#).unwrap();
        assert_eq!(cfg.listen().unwrap(), "0.0.0.0:8080".parse().unwrap());
        let cfg: GoConfig = serde_json::from_str(r#"{"listen_addr": "127.0.0.1:9999", "endpoint": "e", "buckets": ["a"]}"#).unwrap();
        assert_eq!(cfg.listen().unwrap(), "127.0.0.1:9999".parse().unwrap());
        let cfg: GoConfig = serde_json::from_str(r#"{"listen_addr": "nowhere", "endpoint": "e", "buckets": ["a"]}"#).unwrap();
        assert!(format!("{:#}", cfg.listen().unwrap_err()).contains("listen_addr"));
    }
}
