//! The one component variable, `settings`, that spin.toml joins every variable into: one read of
//! the runtime's variables per request instead of one per variable.
//!
//! spin.toml maps `settings = "{{ buckets }}\u001f{{ endpoint }}\u001f…"`: the app variables of
//! [`VARIABLES`], in that order, joined by [`SEPARATOR`] (U+001F, which no value may contain). Spin
//! resolves the template, so users still set `buckets`, `endpoint`, … as before. A manifest that
//! maps the variables one by one instead still works: without `settings`, each is read by name.

use super::ConfigError;

/// The component variable holding every setting.
pub const SETTINGS: &str = "settings";

/// Between two values in `settings`: the ASCII unit separator, which no setting has a use for.
pub const SEPARATOR: char = '\u{1f}';

/// Every variable the configuration reads, in the order `settings` joins them.
pub const VARIABLES: [&str; 21] = [
    "buckets",
    "endpoint",
    "use_ssl",
    "region",
    "access_key_id",
    "secret_access_key",
    "virtual_bucket",
    "client_credentials",
    "allow_anonymous",
    "previous_buckets",
    "shard_endpoints",
    "shard_credentials",
    "backend_connect_timeout",
    "backend_first_byte_timeout",
    "backend_idle_timeout",
    "client_idle_timeout",
    "key_prefix",
    "max_body_bytes",
    "trust_forwarded_proto",
    "ring_cache",
    "ring_tables",
];

/// The template spin.toml maps `settings` to: each of [`VARIABLES`] as `{{ name }}`, joined by
/// [`SEPARATOR`].
pub fn template() -> String {
    VARIABLES.map(|name| format!("{{{{ {name} }}}}")).join(&SEPARATOR.to_string())
}

/// A lookup by variable name: from `settings` when the runtime has it, else `get` per name.
pub fn lookup(get: impl Fn(&str) -> Option<String>) -> Result<impl Fn(&str) -> Option<String>, ConfigError> {
    let values = match get(SETTINGS) {
        Some(joined) => Some(split(&joined)?),
        None => None,
    };
    Ok(move |name: &str| match &values {
        Some(values) => VARIABLES.iter().position(|v| *v == name).map(|i| values[i].clone()),
        None => get(name),
    })
}

/// The values of a resolved `settings`, one per [`VARIABLES`] entry.
fn split(joined: &str) -> Result<Vec<String>, ConfigError> {
    let values: Vec<String> = joined.split(SEPARATOR).map(String::from).collect();
    if values.len() != VARIABLES.len() {
        return Err(ConfigError::new(
            SETTINGS,
            format!(
                "holds {} values where {} were expected: a value contains U+001F (remove it), or spin.toml's \
                 `settings` is not this component's template (copy it from the project's spin.toml)",
                values.len(),
                VARIABLES.len()
            ),
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Spin resolves `settings` to for these app variables (unset ones empty).
    fn resolved(vars: &[(&str, &str)]) -> String {
        VARIABLES.map(|name| vars.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| *v)).join("\u{1f}")
    }

    #[test]
    fn every_variable_comes_from_one_read_of_settings() {
        let joined = resolved(&[("buckets", "a,b"), ("endpoint", "http://s3:9000"), ("trust_forwarded_proto", "true")]);
        let reads = std::cell::Cell::new(0);
        let get = lookup(|name| {
            reads.set(reads.get() + 1);
            (name == SETTINGS).then(|| joined.clone())
        })
        .unwrap();
        assert_eq!(get("buckets").as_deref(), Some("a,b"));
        assert_eq!(get("endpoint").as_deref(), Some("http://s3:9000"));
        assert_eq!(get("trust_forwarded_proto").as_deref(), Some("true"));
        assert_eq!(get("region").as_deref(), Some(""));
        assert_eq!(get("not_a_setting"), None);
        assert_eq!(reads.get(), 1);
    }

    #[test]
    fn without_settings_each_variable_is_read_by_name() {
        let get = lookup(|name| (name == "buckets").then(|| "a".to_string())).unwrap();
        assert_eq!(get("buckets").as_deref(), Some("a"));
        assert_eq!(get("endpoint"), None);
    }

    #[test]
    fn a_value_holding_the_separator_is_refused_naming_settings() {
        let joined = resolved(&[("buckets", "a\u{1f}b")]);
        let err = lookup(|name| (name == SETTINGS).then(|| joined.clone())).err().unwrap();
        assert_eq!(err.variable, SETTINGS);
        assert!(err.message.contains("22 values where 21"), "{}", err.message);
        let short = lookup(|name| (name == SETTINGS).then(|| "a\u{1f}b".to_string())).err().unwrap();
        assert!(short.message.contains("2 values"), "{}", short.message);
    }

    #[test]
    fn the_template_names_every_variable_in_order() {
        let template = template();
        assert!(template.starts_with("{{ buckets }}\u{1f}{{ endpoint }}\u{1f}"), "{template}");
        assert_eq!(template.matches("{{ ").count(), VARIABLES.len());
    }
}
