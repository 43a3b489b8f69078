//! The deployment manifests match the component: spin.toml declares every variable the component
//! reads (secrets marked secret) and joins them all into `settings` in the component's order, and
//! deploy/spinkube.yaml is a SpinApp whose runtime config, kept in a Kubernetes Secret, sets them all.

use std::collections::BTreeSet;
use tempo_s3_shard_core::config::{settings, Config};

/// Variables the component reads: `settings::VARIABLES`, which a core test holds to exactly the names
/// the configuration asks for, so a new variable without a spin.toml declaration fails here.
fn variables_read() -> BTreeSet<String> {
    settings::VARIABLES.map(String::from).into()
}

/// Variables holding secrets (secret keys, credential lists) must be declared `secret = true`.
fn is_secret(name: &str) -> bool {
    name.contains("secret") || name.contains("credentials")
}

fn spin_toml() -> toml::Table {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spin.toml")).unwrap();
    text.parse::<toml::Table>().expect("spin.toml is valid TOML")
}

#[test]
fn spin_toml_declares_and_maps_every_variable() {
    let manifest = spin_toml();
    assert_eq!(manifest["spin_manifest_version"].as_integer(), Some(2));
    let declared = manifest["variables"].as_table().expect("[variables]");
    let component = manifest["component"]["tempo-s3-shard"].as_table().expect("[component.tempo-s3-shard]");
    let mapped = component["variables"].as_table().expect("[component.tempo-s3-shard.variables]");
    let read = variables_read();
    assert!(read.len() >= 10, "{read:?}");

    for name in &read {
        let decl = declared.get(name).and_then(|d| d.as_table()).unwrap_or_else(|| panic!("variable {name} is not declared in [variables]"));
        let required = decl.get("required").and_then(|r| r.as_bool()).unwrap_or(false);
        assert!(required != decl.contains_key("default"), "{name}: either required or with a default");
        let secret = decl.get("secret").and_then(|s| s.as_bool()).unwrap_or(false);
        assert_eq!(secret, is_secret(name), "{name}: secret = {secret}");
    }
    for name in declared.keys() {
        assert!(read.contains(name), "{name} is declared but the component never reads it");
    }
    // One component variable holds them all, in the order the component splits them.
    assert_eq!(mapped.keys().collect::<Vec<_>>(), [settings::SETTINGS]);
    assert_eq!(mapped[settings::SETTINGS].as_str(), Some(settings::template().as_str()), "spin.toml's settings template");
    for name in ["buckets", "endpoint"] {
        assert_eq!(declared[name].get("required").and_then(|r| r.as_bool()), Some(true), "{name} must be required");
    }

    // The defaults, with the two required values, are a configuration the component accepts.
    let cfg = Config::from_lookup(|name| match name {
        "buckets" => Some("shard1,shard2".into()),
        "endpoint" => Some("http://127.0.0.1:9000".into()),
        "client_credentials" => Some("tempo:secret".into()),
        _ => declared.get(name)?.get("default")?.as_str().map(String::from),
    })
    .expect("spin.toml's defaults are a valid configuration");
    assert!(cfg.previous_buckets.is_empty());

    let hosts = component["allowed_outbound_hosts"].as_array().expect("allowed_outbound_hosts");
    assert_eq!(hosts.iter().map(|h| h.as_str().unwrap()).collect::<Vec<_>>(), ["{{ endpoint }}"]);

    // The source is what the build command produces.
    let source = component["source"].as_str().unwrap();
    let command = component["build"]["command"].as_str().unwrap();
    assert!(command.contains("--target wasm32-wasip2") && command.contains("--profile component"), "{command}");
    assert_eq!(source, "target/wasm32-wasip2/component/tempo_s3_shard.wasm");
    let trigger = manifest["trigger"]["http"].as_array().unwrap();
    assert_eq!(trigger[0]["component"].as_str(), Some("tempo-s3-shard"));
    assert_eq!(trigger[0]["route"].as_str(), Some("/..."));
}

/// The values of a runtime config's static variables provider, which names every variable the
/// component reads, so that none falls through to Spin's environment provider (a thread handoff per
/// variable and request).
fn static_provider_values(config: &toml::Table) -> &toml::Table {
    let provider = &config["variables_provider"].as_array().expect("[[variables_provider]]")[0];
    assert_eq!(provider["type"].as_str(), Some("static"));
    let values = provider["values"].as_table().expect("[variables_provider.values]");
    assert_eq!(values.keys().cloned().collect::<BTreeSet<_>>(), variables_read());
    assert!(values.values().all(toml::Value::is_str), "every value a string");
    values
}

/// runtime-config.toml's commented static provider names every variable; besides the local
/// backends' endpoint and credentials, its values are spin.toml's defaults.
#[test]
fn runtime_config_static_provider_example_names_every_variable() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/runtime-config.toml")).unwrap();
    let start = text.find("# [[variables_provider]]").expect("the static provider example");
    let example: String = text[start..].lines().take_while(|l| l.starts_with('#')).map(|l| format!("{}\n", l.trim_start_matches('#').trim_start())).collect();
    let table = example.parse::<toml::Table>().expect("the example is valid TOML once uncommented");
    let values = static_provider_values(&table);
    let manifest = spin_toml();
    for (name, declared) in manifest["variables"].as_table().unwrap() {
        let local = ["access_key_id", "secret_access_key", "client_credentials"].contains(&name.as_str());
        if let Some(default) = declared.get("default").and_then(|d| d.as_str()).filter(|_| !local) {
            assert_eq!(values[name].as_str(), Some(default), "{name}: the example differs from spin.toml's default");
        }
    }
}

/// deploy/spinkube.yaml: a Secret holding the whole runtime config (every variable through a static
/// provider, the key-value store `default` in Redis) and a SpinApp that loads it, probes the health
/// endpoint and sets no variable of its own (those would reach Spin through the environment).
#[test]
fn spinkube_manifest_runs_the_app_from_a_runtime_config_in_a_secret() {
    use serde_yaml::Value;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/spinkube.yaml")).unwrap();
    // Documents are separated by `---` lines.
    let docs: Vec<Value> = text
        .split("\n---\n")
        .map(|d| serde_yaml::from_str(d).expect("valid YAML document"))
        .collect();
    assert_eq!(docs.len(), 2, "a Secret and a SpinApp");
    let find = |kind: &str| docs.iter().find(|d| d["kind"].as_str() == Some(kind)).unwrap_or_else(|| panic!("no {kind} document"));

    let app = find("SpinApp");
    assert_eq!(app["apiVersion"].as_str(), Some("core.spinkube.dev/v1alpha1"));
    assert_eq!(app["spec"]["executor"].as_str(), Some("containerd-shim-spin"));
    assert!(app["spec"]["image"].as_str().is_some_and(|i| !i.is_empty()), "spec.image");
    assert!(app["spec"]["replicas"].as_u64().is_some_and(|r| r >= 1));
    assert!(app["spec"].get("variables").is_none(), "spec.variables: Spin would read them from the environment");
    assert!(app["spec"]["runtimeConfig"].get("keyValueStores").is_none(), "the operator refuses a generated runtime config beside loadFromSecret");
    // The probes ask the health endpoint.
    for probe in ["liveness", "readiness"] {
        assert_eq!(app["spec"]["checks"][probe]["httpGet"]["path"].as_str(), Some("/_tempo-s3-shard/health"), "{probe} probe");
    }

    let secret = find("Secret");
    assert_eq!(secret["apiVersion"].as_str(), Some("v1"));
    assert_eq!(app["spec"]["runtimeConfig"]["loadFromSecret"].as_str(), secret["metadata"]["name"].as_str(), "the SpinApp loads the Secret");
    // The operator mounts this key of the Secret as the shim's runtime config.
    let config = secret["stringData"]["runtime-config.toml"].as_str().expect("the Secret's runtime-config.toml");
    let config = config.parse::<toml::Table>().expect("runtime-config.toml is valid TOML");
    let values = static_provider_values(&config);
    Config::from_lookup(|name| values.get(name).and_then(|v| v.as_str()).map(String::from)).expect("the Secret's values are a valid configuration");
    // Replicas share the ring table: the store `default` is Redis.
    let store = &config["key_value_store"]["default"];
    assert_eq!(store["type"].as_str(), Some("redis"));
    assert!(store["url"].as_str().is_some_and(|u| u.starts_with("redis://")), "the Redis url");
}

/// The component keeps large rings' tables in the key-value store `default` (see `src/lib.rs`).
#[test]
fn spin_toml_grants_the_default_key_value_store() {
    let manifest = spin_toml();
    let stores = manifest["component"]["tempo-s3-shard"]["key_value_stores"].as_array().expect("key_value_stores");
    assert!(stores.iter().any(|s| s.as_str() == Some("default")), "{stores:?}");
    assert!(include_str!("../src/lib.rs").contains("Store::open_default()"));
}

/// Every `tempo_s3_shard_*` metric name in a text, without histogram suffixes.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for piece in text.split("tempo_s3_shard_").skip(1) {
        let name: String = piece.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        let name = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name).to_string();
        names.insert(format!("tempo_s3_shard_{name}"));
    }
    names
}

/// deploy/otel-collector.yaml (Spin) makes only metrics the runner also serves, under the same names,
/// and deploy/grafana-dashboard.json reads only those.
#[test]
fn collector_and_dashboard_use_the_runners_metric_names() {
    use tempo_s3_shard_host::metrics::FAMILIES;
    let known: BTreeSet<String> = FAMILIES.iter().map(|f| f.name.to_string()).collect();
    let collector = std::fs::read_to_string(tempo_s3_shard_host::wasm::workspace_dir().join("deploy/otel-collector.yaml")).unwrap();
    let parsed: serde_yaml::Value = serde_yaml::from_str(&collector).expect("deploy/otel-collector.yaml is YAML");
    let made: Vec<String> = ["spans", "logs"]
        .iter()
        .flat_map(|signal| parsed["connectors"]["signaltometrics"][*signal].as_sequence().cloned().unwrap_or_default())
        .map(|m| m["name"].as_str().expect("every metric has a name").to_string())
        .collect();
    assert!(made.len() >= 10, "{made:?}");
    for name in &made {
        assert!(known.contains(name), "the collector makes {name}, which the runner does not serve");
    }
    let dashboard = std::fs::read_to_string(tempo_s3_shard_host::wasm::workspace_dir().join("deploy/grafana-dashboard.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("deploy/grafana-dashboard.json is JSON");
    let exprs: Vec<&str> = json["panels"].as_array().unwrap().iter().flat_map(|p| p["targets"].as_array().unwrap()).map(|t| t["expr"].as_str().unwrap()).collect();
    let used = metric_names(&exprs.join("\n"));
    assert!(!used.is_empty());
    for name in &used {
        assert!(known.contains(name), "the dashboard reads {name}, which the runner does not serve");
    }
}
