//! Proxy configuration read from Spin variables and validated, with errors that say what to fix.
//!
//! Variables: `buckets` (required), `endpoint` (required), `use_ssl`, `region`, `access_key_id`,
//! `secret_access_key`, `virtual_bucket`, for clients `client_credentials` and `allow_anonymous`;
//! `key_prefix` (Tempo's `prefix`), `max_body_bytes` (a platform's body cap),
//! `trust_forwarded_proto` (TLS ends in front of the proxy), `ring_cache` (which rings keep their
//! table in the key-value store), `ring_tables` (rings' tables given outright), and the backend call timeouts
//! `backend_connect_timeout`, `backend_first_byte_timeout` and `backend_idle_timeout`. Values are
//! trimmed; an empty value counts as unset.
//! The virtual bucket may share a name with a backend bucket: clients only ever see the virtual one.
//! The component reads them all at once from `settings` ([`settings`]).

pub mod settings;

use std::collections::BTreeSet;
use std::fmt;

use crate::error::S3Error;

/// Default for `region`.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default for `virtual_bucket`.
pub const DEFAULT_VIRTUAL_BUCKET: &str = "proxy-bucket";

/// Validated proxy configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Backend buckets in configuration order (the ring depends on this order).
    pub buckets: Vec<String>,
    /// The ring before a resharding (`previous_buckets`): reads that miss fall back to its owner,
    /// deletes remove from both owners, listings cover both. Empty when not resharding.
    pub previous_buckets: Vec<String>,
    /// Backend S3 endpoint.
    pub endpoint: Endpoint,
    /// Signing region for backend requests.
    pub region: String,
    /// Backend access key id; empty when unset.
    pub access_key_id: String,
    /// Backend secret key; empty when unset. Never printed by `Debug`.
    pub secret_access_key: String,
    /// The single bucket name clients address.
    pub virtual_bucket: String,
    /// Access key id → secret of the clients allowed in (SigV4-verified). Never printed by `Debug`.
    pub client_credentials: Vec<(String, String)>,
    /// What unsigned requests may do.
    pub anonymous: Anonymous,
    /// Buckets served by another S3 service than `endpoint` (`shard_endpoints`, `shard_credentials`).
    pub shard_backends: Vec<(String, ShardBackend)>,
    /// `key_prefix`, normalised ([`crate::ring::normalize_prefix`]): keys under it are placed by the
    /// two segments after it. Empty for none (the Go proxy's placement).
    pub key_prefix: String,
    /// `max_body_bytes`: the largest request body the platform lets through (Akamai Functions: 10 MiB);
    /// larger ones get `400 EntityTooLarge` from the proxy instead of a platform failure. None: no cap.
    pub max_body_bytes: Option<u64>,
    /// `trust_forwarded_proto`: a TLS terminator in front of the proxy sets `X-Forwarded-Proto`, and
    /// `https` there counts as a secure connection (for SSE-C). Off: only the runtime's scheme counts.
    pub trust_forwarded_proto: bool,
    /// `ring_cache`: which rings keep their sorted table in the key-value store between requests.
    pub ring_cache: RingCache,
    /// `ring_tables`: rings' sorted tables given in the configuration, so a request neither hashes
    /// them nor reads them from the store. [`crate::context::Proxy::new`] moves them into the rings
    /// they belong to; one that belongs to no ring of this configuration (stale) goes unused.
    pub ring_tables: Vec<RingTable>,
    /// How long each backend call may take to connect, to answer, and between body bytes.
    pub timeouts: Timeouts,
}

/// Time limits for every backend call, in milliseconds, passed to the runtime as wasi-http request
/// options (connect timeout, first-byte timeout, between-bytes timeout).
///
/// Defaults suit S3: connecting takes milliseconds, so 5 s means the endpoint is down or unreachable;
/// the first byte may legitimately take long (S3 answers a CompleteMultipartUpload of many parts or a
/// CopyObject of a large object only when done, sending whitespace meanwhile), so 30 s; once a body
/// flows S3 never pauses for long, so 30 s of silence means a stalled backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `backend_connect_timeout`: opening the TCP (and TLS) connection.
    pub connect_ms: u64,
    /// `backend_first_byte_timeout`: from sending the request until the response head arrives.
    pub first_byte_ms: u64,
    /// `backend_idle_timeout`: the longest pause between two pieces of a response body.
    pub idle_ms: u64,
    /// `client_idle_timeout`: the longest a client may pause between two pieces of its request body
    /// (then the request is answered 400 RequestTimeout, as S3 answers a stalled upload) or while
    /// reading the response (then the body is cut: its head is out).
    pub client_idle_ms: u64,
}

/// Default `backend_connect_timeout`, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT_S: u64 = 5;
/// Default `backend_first_byte_timeout`, in seconds.
pub const DEFAULT_FIRST_BYTE_TIMEOUT_S: u64 = 30;
/// Default `backend_idle_timeout`, in seconds.
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 30;
/// Default `client_idle_timeout`, in seconds: S3 drops an upload that pauses about this long.
pub const DEFAULT_CLIENT_IDLE_TIMEOUT_S: u64 = 20;

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect_ms: DEFAULT_CONNECT_TIMEOUT_S * 1000,
            first_byte_ms: DEFAULT_FIRST_BYTE_TIMEOUT_S * 1000,
            idle_ms: DEFAULT_IDLE_TIMEOUT_S * 1000,
            client_idle_ms: DEFAULT_CLIENT_IDLE_TIMEOUT_S * 1000,
        }
    }
}

/// Where one backend bucket lives and how to sign for it.
#[derive(Clone, PartialEq, Eq)]
pub struct ShardBackend {
    pub endpoint: Endpoint,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for ShardBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardBackend")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What requests without a signature may do (`allow_anonymous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anonymous {
    /// Refused with AccessDenied (the default).
    Denied,
    /// GET and HEAD only.
    ReadOnly,
    /// Everything (Tempo's documented setup with empty keys, behind a private network).
    Allowed,
}

/// Which rings keep their sorted table in the key-value store `default` between requests
/// (`ring_cache`). Reading a table back beats hashing the ring only when the store answers faster
/// than the ring hashes (about 8 µs per 100 points in wasm), so it depends on the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingCache {
    /// Rings of [`crate::ring::CACHE_MIN_POINTS`] points or more (8 buckets, about 70 µs of
    /// hashing): the default, as rings of 64 buckets (about 0.5 ms) gain from any store. A store
    /// over the network (Redis) answers in a round trip, which may be slower than a ring of a few
    /// tens of buckets hashes: time it, and choose `never` if so.
    Auto,
    /// Every ring: for a store that answers in a few µs, as the runner's map in its own process
    /// (Spin's SQLite file is untimed).
    Always,
    /// None: every request hashes (no store, or a slow one).
    Never,
}

impl RingCache {
    /// The fewest points a ring must have for its table to be cached; `None` for none.
    pub fn min_points(self) -> Option<usize> {
        match self {
            RingCache::Auto => Some(crate::ring::CACHE_MIN_POINTS),
            RingCache::Always => Some(1),
            RingCache::Never => None,
        }
    }
}

/// One ring's table from `ring_tables`: what the ring is known by ([`crate::ring::Ring::table_id`])
/// and the base64 text [`crate::ring::Ring::adopt_given`] takes. `tempo-s3-shard ring-plan --tables`
/// prints the variable's value for a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingTable {
    pub id: String,
    pub text: String,
}

/// URL scheme of the backend endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Backend endpoint: scheme plus `host` or `host:port` exactly as sent in the Host header (lowercase,
/// default port omitted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    pub host: String,
}

impl Endpoint {
    /// `scheme://host[:port]`, e.g. `http://127.0.0.1:9000`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.host)
    }
}

/// A configuration problem: which Spin variable is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError { variable, message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Spin variable '{}': {}", self.variable, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// How the message of every configuration error answered to a client begins (the runner's metrics
/// count access-log lines whose error starts with it).
pub const MISCONFIGURED: &str = "proxy misconfigured:";

impl From<ConfigError> for S3Error {
    fn from(e: ConfigError) -> S3Error {
        S3Error::internal(format!("{MISCONFIGURED} {e}"))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.secret_access_key.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("Config")
            .field("buckets", &self.buckets)
            .field("previous_buckets", &self.previous_buckets)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &secret)
            .field("virtual_bucket", &self.virtual_bucket)
            .field(
                "client_access_keys",
                &self.client_credentials.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("anonymous", &self.anonymous)
            .field("shard_backends", &self.shard_backends)
            .field("key_prefix", &self.key_prefix)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("trust_forwarded_proto", &self.trust_forwarded_proto)
            .field("ring_cache", &self.ring_cache)
            .field("ring_tables", &self.ring_tables.iter().map(|t| t.id.as_str()).collect::<Vec<_>>())
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

impl Config {
    /// Reads and validates the configuration from the runtime's variables: every value from the one
    /// variable `settings` when there is one, else each by name (see [`settings`]).
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::from_lookup(settings::lookup(get)?)
    }

    /// Reads and validates the configuration; `get` returns a Spin variable's value (`None` = unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let value = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let buckets = parse_buckets("buckets", value("buckets"))?;
        let previous_buckets = match value("previous_buckets") {
            Some(v) => parse_buckets("previous_buckets", Some(v))?,
            None => vec![],
        };
        let use_ssl = parse_bool("use_ssl", value("use_ssl"))?;
        let endpoint = parse_endpoint("endpoint", value("endpoint"), use_ssl)?;
        let region = value("region").unwrap_or_else(|| DEFAULT_REGION.to_string());
        let access_key_id = value("access_key_id").unwrap_or_default();
        let secret_access_key = value("secret_access_key").unwrap_or_default();
        if access_key_id.is_empty() != secret_access_key.is_empty() {
            let (set, unset) = if access_key_id.is_empty() {
                ("secret_access_key", "access_key_id")
            } else {
                ("access_key_id", "secret_access_key")
            };
            return Err(ConfigError::new(
                unset,
                format!("not set while '{set}' is; set both backend credentials or neither"),
            ));
        }
        let virtual_bucket = value("virtual_bucket").unwrap_or_else(|| DEFAULT_VIRTUAL_BUCKET.to_string());
        validate_bucket_name(&virtual_bucket).map_err(|why| {
            ConfigError::new(
                "virtual_bucket",
                format!("{virtual_bucket:?} is not a valid S3 bucket name: {why}; choose another name"),
            )
        })?;

        let client_credentials = parse_client_credentials(value("client_credentials"))?;
        let anonymous = match value("allow_anonymous").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "no" | "0") => Anonymous::Denied,
            Some("true" | "yes" | "1") => Anonymous::Allowed,
            Some("read-only" | "readonly") => Anonymous::ReadOnly,
            Some(other) => {
                return Err(ConfigError::new(
                    "allow_anonymous",
                    format!("{other:?} is not one of false, true, read-only"),
                ))
            }
        };
        if client_credentials.is_empty() && anonymous != Anonymous::Allowed {
            return Err(ConfigError::new(
                "client_credentials",
                "no client credentials are set and allow_anonymous is not true, so no request could be served; \
                 set client_credentials to ACCESS_KEY:SECRET pairs (comma-separated) for the clients, \
                 or set allow_anonymous=true to serve unsigned requests from anyone",
            ));
        }

        let defaults = Timeouts::default();
        let timeouts = Timeouts {
            connect_ms: parse_timeout("backend_connect_timeout", value("backend_connect_timeout"), defaults.connect_ms)?,
            first_byte_ms: parse_timeout("backend_first_byte_timeout", value("backend_first_byte_timeout"), defaults.first_byte_ms)?,
            idle_ms: parse_timeout("backend_idle_timeout", value("backend_idle_timeout"), defaults.idle_ms)?,
            client_idle_ms: parse_timeout("client_idle_timeout", value("client_idle_timeout"), defaults.client_idle_ms)?,
        };

        let mut cfg = Config {
            buckets,
            previous_buckets,
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            virtual_bucket,
            client_credentials,
            anonymous,
            shard_backends: vec![],
            key_prefix: crate::ring::normalize_prefix(&value("key_prefix").unwrap_or_default())
                .map_err(|why| ConfigError::new("key_prefix", why))?,
            max_body_bytes: parse_max_body_bytes(value("max_body_bytes"))?,
            trust_forwarded_proto: parse_bool("trust_forwarded_proto", value("trust_forwarded_proto"))?,
            ring_cache: parse_ring_cache(value("ring_cache"))?,
            ring_tables: parse_ring_tables(value("ring_tables"))?,
            timeouts,
        };
        cfg.shard_backends = parse_shard_backends(&cfg, value("shard_endpoints"), value("shard_credentials"))?;
        Ok(cfg)
    }

    /// Endpoint, region and credentials for `bucket`: its `shard_endpoints` entry, else the defaults.
    pub fn backend(&self, bucket: &str) -> ShardBackend {
        match self.shard_backends.iter().find(|(b, _)| b == bucket) {
            Some((_, sb)) => sb.clone(),
            None => ShardBackend {
                endpoint: self.endpoint.clone(),
                region: self.region.clone(),
                access_key_id: self.access_key_id.clone(),
                secret_access_key: self.secret_access_key.clone(),
            },
        }
    }

    /// Every backend bucket that may hold objects: the current ones, then previous ones no longer listed.
    pub fn all_buckets(&self) -> Vec<String> {
        let mut all = self.buckets.clone();
        all.extend(self.previous_buckets.iter().filter(|b| !self.buckets.contains(b)).cloned());
        all
    }

    /// The secret of a client access key, if it is one of `client_credentials`.
    pub fn client_secret(&self, access_key_id: &str) -> Option<String> {
        self.client_credentials.iter().find(|(k, _)| k == access_key_id).map(|(_, s)| s.clone())
    }

    /// Whether backend requests are signed (both credentials set).
    pub fn has_backend_credentials(&self) -> bool {
        !self.access_key_id.is_empty() && !self.secret_access_key.is_empty()
    }
}

/// `shard_endpoints`: a JSON object from bucket name to an endpoint URL, or to
/// `{"endpoint": URL, "region": R}`; `shard_credentials` (secret): a JSON object from bucket name
/// to `"ACCESS_KEY:SECRET"`. A bucket without credentials there uses the default ones.
fn parse_shard_backends(
    cfg: &Config,
    endpoints: Option<String>,
    credentials: Option<String>,
) -> Result<Vec<(String, ShardBackend)>, ConfigError> {
    use serde_json::Value;
    let known = cfg.all_buckets();
    let object = |var: &'static str, raw: Option<String>| -> Result<serde_json::Map<String, Value>, ConfigError> {
        let Some(raw) = raw else { return Ok(Default::default()) };
        let map: serde_json::Map<String, Value> = serde_json::from_str(&raw)
            .map_err(|_| ConfigError::new(var, "is not a JSON object keyed by bucket name"))?;
        if let Some(b) = map.keys().find(|b| !known.contains(b)) {
            return Err(ConfigError::new(var, format!("names {b:?}, which is not in buckets or previous_buckets")));
        }
        Ok(map)
    };
    let endpoints = object("shard_endpoints", endpoints)?;
    let credentials = object("shard_credentials", credentials)?;
    if let Some(b) = credentials.keys().find(|b| !endpoints.contains_key(*b)) {
        return Err(ConfigError::new(
            "shard_credentials",
            format!("has credentials for {b:?}, which has no shard_endpoints entry (it uses access_key_id/secret_access_key)"),
        ));
    }
    let mut out = vec![];
    for (bucket, spec) in endpoints {
        let (url, region) = match &spec {
            Value::String(url) => (url.clone(), cfg.region.clone()),
            Value::Object(o) => (
                o.get("endpoint").and_then(Value::as_str).unwrap_or_default().to_string(),
                o.get("region").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| cfg.region.clone()),
            ),
            _ => return Err(ConfigError::new("shard_endpoints", format!("the entry for {bucket:?} is not a URL or an object"))),
        };
        let endpoint = parse_endpoint("shard_endpoints", Some(url).filter(|u| !u.is_empty()), false)?;
        let (access_key_id, secret_access_key) = match credentials.get(&bucket) {
            Some(Value::String(pair)) => {
                let (k, v) = pair.split_once(':').filter(|(k, v)| !k.is_empty() && !v.is_empty()).ok_or_else(|| {
                    ConfigError::new("shard_credentials", format!("the entry for {bucket:?} is not \"ACCESS_KEY:SECRET\""))
                })?;
                (k.to_string(), v.to_string())
            }
            Some(_) => {
                return Err(ConfigError::new("shard_credentials", format!("the entry for {bucket:?} is not a string")))
            }
            None => (cfg.access_key_id.clone(), cfg.secret_access_key.clone()),
        };
        out.push((bucket, ShardBackend { endpoint, region, access_key_id, secret_access_key }));
    }
    Ok(out)
}

/// The longest timeout accepted: one day (a larger value is almost certainly a unit mistake).
const MAX_TIMEOUT_S: f64 = 86_400.0;

/// A timeout in seconds (decimals allowed, e.g. `0.5`) as milliseconds; `default_ms` when unset.
fn parse_timeout(variable: &'static str, raw: Option<String>, default_ms: u64) -> Result<u64, ConfigError> {
    let Some(raw) = raw else { return Ok(default_ms) };
    let seconds: f64 = raw
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite())
        .ok_or_else(|| ConfigError::new(variable, format!("{raw:?} is not a number of seconds (e.g. 5 or 0.5)")))?;
    if !(0.001..=MAX_TIMEOUT_S).contains(&seconds) {
        return Err(ConfigError::new(
            variable,
            format!("{raw} s is out of range; give between 0.001 and {MAX_TIMEOUT_S} seconds"),
        ));
    }
    Ok((seconds * 1000.0).round() as u64)
}

/// `client_credentials`: `AK:SECRET` pairs separated by commas, or a JSON object `{"AK": "SECRET"}`.
fn parse_client_credentials(raw: Option<String>) -> Result<Vec<(String, String)>, ConfigError> {
    const VAR: &str = "client_credentials";
    let Some(raw) = raw else { return Ok(vec![]) };
    let pairs: Vec<(String, String)> = if raw.starts_with('{') {
        let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&raw).map_err(|_| {
            ConfigError::new(VAR, "is not a JSON object of access key id to secret (or AK:SECRET,AK2:SECRET2)")
        })?;
        map.into_iter().collect()
    } else {
        let mut out = vec![];
        for (i, pair) in raw.split(',').enumerate() {
            let (k, v) = pair.trim().split_once(':').ok_or_else(|| {
                ConfigError::new(VAR, format!("entry #{} is not ACCESS_KEY:SECRET", i + 1))
            })?;
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
        out
    };
    let mut seen = BTreeSet::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if k.is_empty() || v.is_empty() {
            return Err(ConfigError::new(VAR, format!("entry #{} has an empty access key or secret", i + 1)));
        }
        if !k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(ConfigError::new(
                VAR,
                format!("access key #{} may contain only letters, digits, '-', '_' and '.'", i + 1),
            ));
        }
        if !seen.insert(k.as_str()) {
            return Err(ConfigError::new(VAR, format!("access key {k:?} is listed twice")));
        }
    }
    Ok(pairs)
}

/// Checks the S3 bucket naming rules; the error says which rule is broken.
pub fn validate_bucket_name(name: &str) -> Result<(), String> {
    if !(3..=63).contains(&name.len()) {
        return Err("it must be 3 to 63 characters long".into());
    }
    if let Some(c) = name.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-')) {
        return Err(format!("{c:?} is not allowed; use lowercase letters, digits, '.' and '-'"));
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(name.as_bytes()[0]) || !alnum(name.as_bytes()[name.len() - 1]) {
        return Err("it must start and end with a lowercase letter or digit".into());
    }
    if name.contains("..") {
        return Err("it must not contain two adjacent periods".into());
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() == 4 && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) {
        return Err("it must not be formatted as an IP address".into());
    }
    Ok(())
}

fn parse_buckets(var: &'static str, value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(value) = value else {
        return Err(ConfigError::new(
            var,
            "not set; set it to the backend bucket names, comma-separated (\"shard1,shard2\") or as a JSON array",
        ));
    };
    let buckets: Vec<String> = if value.starts_with('[') {
        serde_json::from_str::<Vec<String>>(&value)
            .map_err(|e| ConfigError::new(var, format!("not a JSON array of strings ({e}); write e.g. [\"shard1\",\"shard2\"]")))?
            .into_iter()
            .map(|b| b.trim().to_string())
            .collect()
    } else {
        value.split(',').map(|b| b.trim().to_string()).collect()
    };
    if buckets.is_empty() {
        return Err(ConfigError::new(var, "the bucket list is empty; list at least one backend bucket"));
    }
    let mut seen = BTreeSet::new();
    for (i, bucket) in buckets.iter().enumerate() {
        if bucket.is_empty() {
            return Err(ConfigError::new(
                var,
                format!("bucket #{} is empty; remove the extra comma or fill in the name", i + 1),
            ));
        }
        validate_bucket_name(bucket).map_err(|why| {
            ConfigError::new(var, format!("{bucket:?} is not a valid S3 bucket name: {why}; fix the name"))
        })?;
        if !seen.insert(bucket.as_str()) {
            return Err(ConfigError::new(
                var,
                format!("duplicate bucket name {bucket:?}; list each backend bucket once"),
            ));
        }
    }
    Ok(buckets)
}

/// `max_body_bytes`: a positive number of bytes, unset for no cap.
fn parse_max_body_bytes(value: Option<String>) -> Result<Option<u64>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(ConfigError::new(
            "max_body_bytes",
            format!("{value:?} is not a positive number of bytes; write e.g. 10485760 for a 10 MiB cap, or leave it unset"),
        )),
    }
}

fn parse_ring_cache(value: Option<String>) -> Result<RingCache, ConfigError> {
    match value.map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("auto") => Ok(RingCache::Auto),
        Some("always") => Ok(RingCache::Always),
        Some("never") => Ok(RingCache::Never),
        Some(other) => Err(ConfigError::new(
            "ring_cache",
            format!("{other:?} is not one of auto (rings of 8 or more buckets), always (a store that answers in microseconds, e.g. in memory), never"),
        )),
    }
}

/// `ring_tables`: comma-separated `ID:BASE64` entries, as `tempo-s3-shard ring-plan --tables`
/// prints them. Only their form is checked here, without decoding the tables (tens of KB read in
/// every request); whether a table fits its ring, when it is adopted and as it is read.
fn parse_ring_tables(value: Option<String>) -> Result<Vec<RingTable>, ConfigError> {
    let regenerate = "print the value again with `tempo-s3-shard ring-plan --buckets ... --tables` (or leave ring_tables unset)";
    let Some(value) = value else { return Ok(vec![]) };
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (id, table) = entry.split_once(':').unwrap_or((entry, ""));
            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::new("ring_tables", format!("an entry does not start with a ring's 64 hex digits and ':'; {regenerate}")));
            }
            if table.is_empty() || !table.len().is_multiple_of(4) {
                return Err(ConfigError::new("ring_tables", format!("the table of ring {}… is not a table in base64; {regenerate}", &id[..8])));
            }
            Ok(RingTable { id: id.to_ascii_lowercase(), text: table.to_string() })
        })
        .collect()
}

fn parse_bool(variable: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    let Some(value) = value else { return Ok(false) };
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::new(
            variable,
            format!("{value:?} is not a boolean; use true/false, 1/0 or yes/no"),
        )),
    }
}

/// Parses `http://host[:port]`, `https://host[:port]` or a bare `host[:port]` (scheme from `use_ssl`).
/// Error messages never echo the whole value, which could hold credentials in a userinfo part.
fn parse_endpoint(var: &'static str, value: Option<String>, use_ssl: bool) -> Result<Endpoint, ConfigError> {
    const FORM: &str = "use http://host[:port], https://host[:port] or host[:port]";
    let err = |what: String| ConfigError::new(var, format!("{what}; {FORM}"));
    let Some(value) = value else {
        return Err(ConfigError::new(var, "not set; set it to the backend S3 URL, e.g. http://127.0.0.1:9000"));
    };

    let (scheme, rest) = match value.split_once("://") {
        Some((s, rest)) => match s.to_ascii_lowercase().as_str() {
            "http" => (Scheme::Http, rest),
            "https" => (Scheme::Https, rest),
            _ => return Err(err(format!("unsupported URL scheme {s:?}"))),
        },
        None if use_ssl => (Scheme::Https, value.as_str()),
        None => (Scheme::Http, value.as_str()),
    };
    if rest.contains('@') {
        return Err(err("credentials in the URL are not allowed (set access_key_id/secret_access_key)".into()));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err(err("a query or fragment is not allowed".into()));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        return Err(err("a path is not allowed (the proxy addresses buckets itself)".into()));
    }

    let (host, port) = split_host_port(authority).map_err(err)?;
    let host = host.to_ascii_lowercase();
    let host = match port {
        Some(p) if p != scheme.default_port() => format!("{host}:{p}"),
        _ => host,
    };
    Ok(Endpoint { scheme, host })
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port` and checks both parts.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or("unclosed '[' in an IPv6 address")?;
        let (host, after) = authority.split_at(end + 1);
        let inner = &host[1..host.len() - 1];
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err("invalid IPv6 address".into());
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err("unexpected text after the IPv6 address".into()),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if !host.starts_with('[') {
        if let Some(c) = host.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))) {
            return Err(format!("{c:?} is not allowed in a host name"));
        }
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("invalid port {p:?} (must be 1-65535)")),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests;
