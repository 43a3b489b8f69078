//! Spin's variables as the project's spin.toml declares them: the app variables a user sets (with
//! their defaults and `required`), and the component's variables as templates over them, resolved
//! as Spin resolves them, so the runner and the tests read the manifest a deployment runs.

use anyhow::{anyhow, bail, Context as _};
use std::collections::HashMap;

/// The manifest `spin up` and SpinKube run.
const SPIN_TOML: &str = include_str!("../../spin.toml");

/// The component whose variables are resolved.
const COMPONENT: &str = "tempo-s3-shard";

/// The component's variables for the app variables `app` (`--var NAME=VALUE`): each of spin.toml's
/// `[component.tempo-s3-shard.variables]` templates with every `{{ name }}` replaced by the app
/// variable's value, else its default. Errors name an app variable spin.toml does not declare, or a
/// required one that is not set, as `spin up` refuses to start then.
pub fn component_variables(app: &HashMap<String, String>) -> anyhow::Result<HashMap<String, String>> {
    let manifest = manifest()?;
    let values = app_variables(app)?;
    let templates = manifest
        .get("component")
        .and_then(|c| c.get(COMPONENT))
        .and_then(|c| c.get("variables"))
        .and_then(|v| v.as_table())
        .ok_or_else(|| anyhow!("spin.toml has no [component.{COMPONENT}.variables]"))?;
    templates
        .iter()
        .map(|(name, template)| {
            let template = template.as_str().ok_or_else(|| anyhow!("spin.toml: component variable {name} is not a string"))?;
            Ok((name.clone(), expand(template, &values).with_context(|| format!("spin.toml: component variable {name}"))?))
        })
        .collect()
}

/// Every app variable spin.toml declares, with its value in `app`, else its default. Errors name an
/// app variable spin.toml does not declare, or a required one that is not set.
pub fn app_variables(app: &HashMap<String, String>) -> anyhow::Result<HashMap<String, String>> {
    let manifest = manifest()?;
    let declared = manifest.get("variables").and_then(|v| v.as_table()).ok_or_else(|| anyhow!("spin.toml has no [variables]"))?;
    if let Some(unknown) = app.keys().find(|name| !declared.contains_key(*name)) {
        let known: Vec<&str> = declared.keys().map(String::as_str).collect();
        bail!("unknown variable {unknown:?}: spin.toml declares {}", known.join(", "));
    }
    declared
        .iter()
        .map(|(name, declaration)| match app.get(name).cloned().or_else(|| declaration.get("default").and_then(|d| d.as_str()).map(String::from)) {
            Some(value) => Ok((name.clone(), value)),
            None => bail!("variable {name:?} is required (spin.toml): set it with --var {name}=VALUE"),
        })
        .collect()
}

fn manifest() -> anyhow::Result<toml::Table> {
    SPIN_TOML.parse().context("spin.toml is not valid TOML")
}

/// `template` with each `{{ name }}` replaced by `values[name]`.
fn expand(template: &str, values: &HashMap<String, String>) -> anyhow::Result<String> {
    let (mut out, mut rest) = (String::new(), template);
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| anyhow!("an unclosed {{{{ in {template:?}"))?;
        let name = after[..close].trim();
        out.push_str(values.get(name).ok_or_else(|| anyhow!("{{{{ {name} }}}} names no app variable"))?);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempo_s3_shard_core::config::settings;

    fn app(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn settings_join_the_set_values_and_the_defaults() {
        let vars = component_variables(&app(&[("buckets", "a,b"), ("endpoint", "http://s3:9000")])).unwrap();
        let settings = &vars[settings::SETTINGS];
        let values: Vec<&str> = settings.split(settings::SEPARATOR).collect();
        assert_eq!(values.len(), settings::VARIABLES.len());
        let value = |name: &str| values[settings::VARIABLES.iter().position(|v| *v == name).unwrap()];
        assert_eq!(value("buckets"), "a,b");
        assert_eq!(value("endpoint"), "http://s3:9000");
        assert_eq!(value("region"), "us-east-1");
        assert_eq!(value("client_idle_timeout"), "20");
        assert_eq!(value("key_prefix"), "");
    }

    #[test]
    fn unknown_and_missing_required_variables_are_refused_by_name() {
        let err = component_variables(&app(&[("buckets", "a"), ("endpoint", "e"), ("bukets", "a")])).unwrap_err();
        assert!(err.to_string().contains("unknown variable \"bukets\""), "{err}");
        let err = component_variables(&app(&[("buckets", "a")])).unwrap_err();
        assert!(err.to_string().contains("\"endpoint\" is required"), "{err}");
    }

    #[test]
    fn templates_expand_like_spin() {
        let values = HashMap::from([("host".to_string(), "h".to_string()), ("port".to_string(), "1".to_string())]);
        assert_eq!(expand("http://{{ host }}:{{port}}/", &values).unwrap(), "http://h:1/");
        assert!(expand("{{ nope }}", &values).is_err());
        assert!(expand("{{ host", &values).is_err());
    }
}
