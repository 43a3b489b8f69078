//! The configuration's tests: every variable parsed, defaulted and refused with a message naming it.

use super::*;
use crate::error::ErrorCode;

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_lookup(|name| {
        vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    })
}

fn with_base(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars = vec![
        ("buckets", "shard1,shard2"),
        ("endpoint", "http://127.0.0.1:9000"),
        ("client_credentials", "client:client-secret"),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k, v));
    }
    vars
}

fn ok(extra: &[(&'static str, &'static str)]) -> Config {
    load(&with_base(extra)).unwrap()
}

/// Loads with `extra` overrides, expects an error naming `variable`, returns its message.
fn fails(extra: &[(&'static str, &'static str)], variable: &str) -> String {
    let e = load(&with_base(extra)).unwrap_err();
    assert_eq!(e.variable, variable, "{e}");
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("invalid Spin variable '{variable}': ")), "{shown}");
    e.message
}

fn endpoint(value: &'static str, use_ssl: &'static str) -> Endpoint {
    ok(&[("endpoint", value), ("use_ssl", use_ssl)]).endpoint
}

#[test]
fn minimal_config_uses_defaults() {
    let c = ok(&[]);
    assert_eq!(c.buckets, ["shard1", "shard2"]);
    assert_eq!(c.endpoint, Endpoint { scheme: Scheme::Http, host: "127.0.0.1:9000".into() });
    assert_eq!(c.endpoint.base_url(), "http://127.0.0.1:9000");
    assert_eq!(c.region, "us-east-1");
    assert_eq!(c.access_key_id, "");
    assert_eq!(c.secret_access_key, "");
    assert_eq!(c.virtual_bucket, "proxy-bucket");
    assert!(!c.has_backend_credentials());
}

#[test]
fn all_variables_set() {
    let c = ok(&[
        ("region", "eu-west-1"),
        ("access_key_id", "AKID"),
        ("secret_access_key", "s3cr3t"),
        ("virtual_bucket", "tempo"),
    ]);
    assert_eq!(c.region, "eu-west-1");
    assert_eq!(c.access_key_id, "AKID");
    assert_eq!(c.secret_access_key, "s3cr3t");
    assert_eq!(c.virtual_bucket, "tempo");
    assert!(c.has_backend_credentials());
}

#[test]
fn empty_optional_values_count_as_unset() {
    let c = ok(&[("region", ""), ("virtual_bucket", "  "), ("use_ssl", ""), ("access_key_id", "")]);
    assert_eq!(c.region, "us-east-1");
    assert_eq!(c.virtual_bucket, "proxy-bucket");
    assert_eq!(c.endpoint.scheme, Scheme::Http);
}

#[test]
fn bucket_list_forms() {
    assert_eq!(ok(&[("buckets", "a1b, c2d ,e3f")]).buckets, ["a1b", "c2d", "e3f"]);
    assert_eq!(ok(&[("buckets", "only-one")]).buckets, ["only-one"]);
    assert_eq!(ok(&[("buckets", r#"["a1b", "c2d"]"#)]).buckets, ["a1b", "c2d"]);
    assert_eq!(ok(&[("buckets", r#" [ "x.y-z" ] "#)]).buckets, ["x.y-z"]);
}

#[test]
fn bucket_list_errors() {
    assert!(fails(&[("buckets", "")], "buckets").contains("not set"));
    let vars = [("endpoint", "http://h")];
    assert_eq!(load(&vars).unwrap_err().variable, "buckets");
    assert!(fails(&[("buckets", "[]")], "buckets").contains("empty"));
    assert!(fails(&[("buckets", "a1b,,c2d")], "buckets").contains("#2 is empty"));
    assert!(fails(&[("buckets", "a1b,")], "buckets").contains("#2 is empty"));
    assert!(fails(&[("buckets", r#"["a1b", 3]"#)], "buckets").contains("JSON array"));
    assert!(fails(&[("buckets", r#"["a1b""#)], "buckets").contains("JSON array"));
    assert_eq!(
        load(&with_base(&[("buckets", "abc,def,abc")])).unwrap_err().to_string(),
        "invalid Spin variable 'buckets': duplicate bucket name \"abc\"; list each backend bucket once"
    );
    let long = "a".repeat(64);
    for bad in ["ab", "Shard1", "shard_1", "-abc", "abc-", ".abc", "a..b", "192.168.5.4", &long] {
        let list = format!("good-one,{bad}");
        let e = load(&[("buckets", &list), ("endpoint", "h")]).unwrap_err();
        assert_eq!(e.variable, "buckets", "{bad}");
        assert!(e.message.contains("not a valid S3 bucket name"), "{bad}: {e}");
    }
}

#[test]
fn bucket_name_rules() {
    for good in ["abc", "a.b-c", "shard10", "192.168.5", "1.2.3.4.5", "1.2.3.a", &"a".repeat(63)] {
        assert_eq!(validate_bucket_name(good), Ok(()), "{good}");
    }
    for bad in ["", "ab", "ABC", "a b", "ab_c", "-ab", "ab-", "ab.", "a..b", "10.0.0.1", &"a".repeat(64)] {
        assert!(validate_bucket_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn endpoint_forms() {
    let http = |host: &str| Endpoint { scheme: Scheme::Http, host: host.into() };
    let https = |host: &str| Endpoint { scheme: Scheme::Https, host: host.into() };
    assert_eq!(endpoint("http://127.0.0.1:9000", ""), http("127.0.0.1:9000"));
    assert_eq!(endpoint("http://127.0.0.1:9000/", ""), http("127.0.0.1:9000"));
    assert_eq!(endpoint("https://s3.amazonaws.com", ""), https("s3.amazonaws.com"));
    assert_eq!(endpoint("HTTPS://S3.Example.com:8443/", ""), https("s3.example.com:8443"));
    // The scheme decides TLS, whatever use_ssl says; default ports are omitted.
    assert_eq!(endpoint("http://minio:80", "true"), http("minio"));
    assert_eq!(endpoint("https://minio:443", "false"), https("minio"));
    assert_eq!(endpoint("https://minio:80", ""), https("minio:80"));
    // Bare hosts take the scheme from use_ssl.
    assert_eq!(endpoint("minio:9000", ""), http("minio:9000"));
    assert_eq!(endpoint("minio:9000", "yes"), https("minio:9000"));
    assert_eq!(endpoint("minio", "1"), https("minio"));
    assert_eq!(endpoint("minio:443", "TRUE"), https("minio"));
    assert_eq!(endpoint("minio", "No"), http("minio"));
    assert_eq!(endpoint("minio", "0"), http("minio"));
    assert_eq!(endpoint("minio", "false"), http("minio"));
    assert_eq!(endpoint("my_host.local", ""), http("my_host.local"));
    assert_eq!(endpoint("http://[::1]:9000", ""), http("[::1]:9000"));
    assert_eq!(endpoint("[::1]", ""), http("[::1]"));
    assert_eq!(endpoint("https://[::1]", "").base_url(), "https://[::1]");
    assert_eq!(endpoint("  http://h:9000  ", "").base_url(), "http://h:9000");
}

#[test]
fn endpoint_errors() {
    assert!(fails(&[("endpoint", "")], "endpoint").contains("not set"));
    assert_eq!(load(&[("buckets", "abc")]).unwrap_err().variable, "endpoint");
    let cases = [
        ("ftp://host", "scheme"),
        ("s3://bucket", "scheme"),
        ("://host", "scheme"),
        ("http://user:pass@host", "credentials"),
        ("http://host/path", "path"),
        ("http://host//", "path"),
        ("host/bucket", "path"),
        ("http://host?x=1", "query"),
        ("http://host#frag", "query"),
        ("http://", "host is empty"),
        ("http:///", "host is empty"),
        (":9000", "host is empty"),
        ("http://host:", "port"),
        ("http://host:0", "port"),
        ("http://host:65536", "port"),
        ("http://host:+80", "port"),
        ("http://host:abc", "port"),
        ("http://host:90:00", "port"),
        ("http://ho st", "not allowed"),
        ("http://[::1", "IPv6"),
        ("http://[]", "IPv6"),
        ("http://[zz]", "IPv6"),
        ("http://[::1]x", "after the IPv6"),
    ];
    for (value, want) in cases {
        let e = load(&with_base(&[("endpoint", value)])).unwrap_err();
        assert_eq!(e.variable, "endpoint", "{value}");
        assert!(e.message.contains(want), "{value}: {e}");
        assert!(e.message.contains("host[:port]"), "{value}: {e}");
    }
    // The userinfo part is never echoed back.
    let msg = fails(&[("endpoint", "http://user:hunter2@host")], "endpoint");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn use_ssl_errors() {
    for bad in ["maybe", "2", "on", "truee"] {
        let msg = fails(&[("use_ssl", bad)], "use_ssl");
        assert!(msg.contains("true/false"), "{msg}");
    }
    // Invalid even when the URL scheme would decide TLS anyway.
    fails(&[("endpoint", "https://h"), ("use_ssl", "maybe")], "use_ssl");
}

#[test]
fn virtual_bucket_rules() {
    for bad in ["PROXY", "ab", "a_b", "1.2.3.4"] {
        let msg = fails(&[("virtual_bucket", bad)], "virtual_bucket");
        assert!(msg.contains("not a valid S3 bucket name"), "{msg}");
    }
    // Equal to a backend bucket is allowed.
    assert_eq!(ok(&[("virtual_bucket", "shard1")]).virtual_bucket, "shard1");
}

#[test]
fn half_set_credentials_are_rejected() {
    assert!(fails(&[("access_key_id", "AKID")], "secret_access_key").contains("'access_key_id'"));
    let msg = fails(&[("secret_access_key", "s3cr3t")], "access_key_id");
    assert!(!msg.contains("s3cr3t"));
}

#[test]
fn debug_hides_the_secret() {
    let c = ok(&[("access_key_id", "AKID"), ("secret_access_key", "s3cr3t")]);
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.contains("<redacted>") && shown.contains("AKID"), "{shown}");
}

#[test]
fn converts_to_internal_s3_error() {
    let e = load(&with_base(&[("buckets", "abc,abc"), ("secret_access_key", "s3cr3t")])).unwrap_err();
    let s3: S3Error = e.into();
    assert_eq!(s3.code, ErrorCode::InternalError);
    assert_eq!(s3.status(), 500);
    assert_eq!(
        s3.message,
        "proxy misconfigured: invalid Spin variable 'buckets': duplicate bucket name \"abc\"; list each backend bucket once"
    );
    assert!(!s3.message.contains("s3cr3t"));
}

#[test]
fn shards_on_other_endpoints() {
    let c = ok(&[
        ("shard_endpoints", r#"{"shard2": {"endpoint": "https://s3.eu-west-1.amazonaws.com", "region": "eu-west-1"}}"#),
        ("shard_credentials", r#"{"shard2": "AK2:SECRET2"}"#),
        ("access_key_id", "AK"),
        ("secret_access_key", "SK"),
    ]);
    let b = c.backend("shard2");
    assert_eq!(b.endpoint.base_url(), "https://s3.eu-west-1.amazonaws.com");
    assert_eq!((b.region.as_str(), b.access_key_id.as_str(), b.secret_access_key.as_str()), ("eu-west-1", "AK2", "SECRET2"));
    let a = c.backend("shard1");
    assert_eq!((a.endpoint.base_url().as_str(), a.access_key_id.as_str()), ("http://127.0.0.1:9000", "AK"));
    assert!(!format!("{c:?}").contains("SECRET2"));
    let c = ok(&[("shard_endpoints", r#"{"shard1": "http://10.0.0.1:9000"}"#)]);
    assert_eq!(c.backend("shard1").endpoint.host, "10.0.0.1:9000");

    fails(&[("shard_endpoints", r#"{"nope": "http://h"}"#)], "shard_endpoints");
    fails(&[("shard_endpoints", r#"{"shard1": "ftp://h"}"#)], "shard_endpoints");
    fails(&[("shard_endpoints", "[]")], "shard_endpoints");
    fails(&[("shard_credentials", r#"{"shard1": "AK:S"}"#)], "shard_credentials");
    fails(&[("shard_endpoints", r#"{"shard1": "http://h"}"#), ("shard_credentials", r#"{"shard1": "nocolon"}"#)], "shard_credentials");
}

#[test]
fn previous_buckets_for_resharding() {
    let c = ok(&[("buckets", "a1a,b2b,c3c,d4d"), ("previous_buckets", "a1a,b2b,c3c,old")]);
    assert_eq!(c.previous_buckets, vec!["a1a", "b2b", "c3c", "old"]);
    assert_eq!(c.all_buckets(), vec!["a1a", "b2b", "c3c", "d4d", "old"]);
    assert!(ok(&[]).previous_buckets.is_empty());
    fails(&[("previous_buckets", "a1a,a1a")], "previous_buckets");
}

#[test]
fn client_credentials_and_anonymous_mode() {
    let c = ok(&[("client_credentials", "ak1:s1, ak2:s2")]);
    assert_eq!(c.client_secret("ak2").as_deref(), Some("s2"));
    assert_eq!(c.client_secret("ak3"), None);
    assert_eq!(c.anonymous, Anonymous::Denied);
    let c = ok(&[("client_credentials", r#"{"ak1": "s1"}"#), ("allow_anonymous", "read-only")]);
    assert_eq!(c.client_secret("ak1").as_deref(), Some("s1"));
    assert_eq!(c.anonymous, Anonymous::ReadOnly);
    let c = ok(&[("client_credentials", ""), ("allow_anonymous", "true")]);
    assert!(c.client_credentials.is_empty());
    assert!(!format!("{c:?}").contains("client-secret"));

    let e = fails(&[("client_credentials", "")], "client_credentials");
    assert!(e.contains("allow_anonymous=true"), "{e}");
    fails(&[("client_credentials", "nocolon")], "client_credentials");
    fails(&[("client_credentials", "a:1,a:2")], "client_credentials");
    fails(&[("client_credentials", "a b:1")], "client_credentials");
    fails(&[("allow_anonymous", "sometimes")], "allow_anonymous");
}

#[test]
fn key_prefix_is_normalised_and_checked() {
    assert_eq!(ok(&[]).key_prefix, "");
    for raw in ["traces", "/traces", "traces/", "/traces/"] {
        assert_eq!(ok(&[("key_prefix", raw)]).key_prefix, "traces", "{raw:?}");
    }
    assert_eq!(ok(&[("key_prefix", "/")]).key_prefix, "");
    assert!(fails(&[("key_prefix", "a//b")], "key_prefix").contains("empty path segment"));
    let long: &'static str = Box::leak("x".repeat(600).into_boxed_str());
    assert!(fails(&[("key_prefix", long)], "key_prefix").contains("512 bytes"));
}

#[test]
fn body_cap_and_forwarded_proto() {
    let c = ok(&[]);
    assert_eq!((c.max_body_bytes, c.trust_forwarded_proto), (None, false));
    let c = ok(&[("max_body_bytes", "10485760"), ("trust_forwarded_proto", "true")]);
    assert_eq!((c.max_body_bytes, c.trust_forwarded_proto), (Some(10 << 20), true));
    for bad in ["0", "-1", "10MiB", "lots"] {
        assert!(fails(&[("max_body_bytes", bad)], "max_body_bytes").contains("10485760"), "{bad}");
    }
    fails(&[("trust_forwarded_proto", "maybe")], "trust_forwarded_proto");
}

#[test]
fn ring_cache_is_auto_unless_set_and_names_its_choices() {
    assert_eq!(ok(&[]).ring_cache, RingCache::Auto);
    assert_eq!(ok(&[]).ring_cache.min_points(), Some(crate::ring::CACHE_MIN_POINTS));
    assert_eq!(ok(&[("ring_cache", "Always")]).ring_cache.min_points(), Some(1));
    assert_eq!(ok(&[("ring_cache", "never")]).ring_cache.min_points(), None);
    assert_eq!(ok(&[("ring_cache", "auto")]).ring_cache, RingCache::Auto);
    let why = fails(&[("ring_cache", "yes")], "ring_cache");
    assert!(why.contains("auto") && why.contains("always") && why.contains("never"), "{why}");
}

#[test]
fn ring_tables_are_id_colon_base64_entries_and_a_malformed_one_names_the_variable() {
    assert!(ok(&[]).ring_tables.is_empty());
    let table = crate::codec::base64_encode(&[7u8; 24]);
    let value: &'static str = Box::leak(format!("{}:{table}, {}:{table}", "ab".repeat(32), "CD".repeat(32)).into_boxed_str());
    let tables = ok(&[("ring_tables", value)]).ring_tables;
    assert_eq!(tables.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), ["ab".repeat(32), "cd".repeat(32)]);
    assert!(tables.iter().all(|t| t.text == table));
    let short_id: &'static str = Box::leak(format!("abcd:{table}").into_boxed_str());
    let ragged: &'static str = Box::leak(format!("{}:{}", "ab".repeat(32), &table[..table.len() - 1]).into_boxed_str());
    let empty: &'static str = Box::leak(format!("{}:", "ab".repeat(32)).into_boxed_str());
    for bad in [short_id, ragged, empty, "no-colon-at-all"] {
        assert!(fails(&[("ring_tables", bad)], "ring_tables").contains("ring-plan --buckets ... --tables"), "{bad}");
    }
}

#[test]
fn backend_and_client_timeouts() {
    assert_eq!(ok(&[]).timeouts, Timeouts { connect_ms: 5_000, first_byte_ms: 30_000, idle_ms: 30_000, client_idle_ms: 20_000 });
    let c = ok(&[
        ("backend_connect_timeout", "0.5"),
        ("backend_first_byte_timeout", " 1 "),
        ("backend_idle_timeout", "2.25"),
        ("client_idle_timeout", "7"),
    ]);
    assert_eq!(c.timeouts, Timeouts { connect_ms: 500, first_byte_ms: 1_000, idle_ms: 2_250, client_idle_ms: 7_000 });
    assert_eq!(ok(&[("backend_idle_timeout", "")]).timeouts.idle_ms, 30_000);
    for var in ["backend_connect_timeout", "backend_first_byte_timeout", "backend_idle_timeout", "client_idle_timeout"] {
        for bad in ["abc", "5s", "-1", "0", "NaN", "inf", "1e9"] {
            let msg = fails(&[(var, bad)], var);
            assert!(msg.contains("seconds"), "{var}={bad}: {msg}");
        }
    }
}

#[test]
fn settings_lists_exactly_the_variables_the_configuration_reads() {
    let base = with_base(&[]);
    let read = std::cell::RefCell::new(Vec::new());
    Config::from_lookup(|name| {
        read.borrow_mut().push(name.to_string());
        base.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    })
    .unwrap();
    let (mut read, mut listed) = (read.into_inner(), settings::VARIABLES.map(String::from).to_vec());
    read.sort();
    listed.sort();
    assert_eq!(read, listed, "keep settings::VARIABLES (and spin.toml's settings) in step");
}

#[test]
fn one_settings_value_configures_like_the_variables_one_by_one() {
    let base = with_base(&[("region", "eu-west-1"), ("key_prefix", "traces")]);
    let joined = settings::VARIABLES.map(|name| base.iter().find(|(k, _)| *k == name).map_or("", |(_, v)| *v)).join("\u{1f}");
    let bundled = Config::from_variables(|name| (name == settings::SETTINGS).then(|| joined.clone())).unwrap();
    let by_name = load(&base).unwrap();
    assert_eq!(format!("{bundled:?}"), format!("{by_name:?}"));
    assert_eq!(bundled.region, "eu-west-1");
}
