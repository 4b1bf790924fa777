//! Config providers (KIP-297, KIP-887, KIP-632): `${file:/path:key}`, `${env:VAR}` and
//! `${directory:/dir:file}` placeholders in connector configs, resolved when a task starts.
//! Stored configs (and the REST API) keep the placeholders; resolved values are never logged.

use std::collections::BTreeMap;

use crate::plugin::ConfigMap;
use crate::properties::parse_properties;

const FILE_CLASS: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
const ENV_CLASS: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";
const DIRECTORY_CLASS: &str = "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File,
    Env,
    Directory,
}

/// The providers a worker declares in `config.providers`.
#[derive(Debug, Clone, Default)]
pub struct ConfigProviders {
    providers: BTreeMap<String, Kind>,
}

impl ConfigProviders {
    /// Reads `config.providers` and `config.providers.<name>.class` from worker properties.
    pub fn from_worker(props: &BTreeMap<String, String>) -> Result<ConfigProviders, String> {
        let mut providers = BTreeMap::new();
        let names = props
            .get("config.providers")
            .map(String::as_str)
            .unwrap_or("");
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let class_key = format!("config.providers.{name}.class");
            let class = props
                .get(&class_key)
                .ok_or_else(|| format!("Missing {class_key} for config provider {name}"))?;
            let kind = match class.trim() {
                FILE_CLASS => Kind::File,
                ENV_CLASS => Kind::Env,
                DIRECTORY_CLASS => Kind::Directory,
                other => {
                    return Err(format!(
                        "Unsupported config provider class {other} for {name}"
                    ))
                }
            };
            providers.insert(name.to_string(), kind);
        }
        Ok(ConfigProviders { providers })
    }

    /// Replaces every `${provider:[path:]key}` whose provider is declared. Placeholders of
    /// unknown providers are left as they are (as Java does).
    pub fn resolve(&self, config: &ConfigMap) -> Result<ConfigMap, String> {
        if self.providers.is_empty() {
            return Ok(config.clone());
        }
        config
            .iter()
            .map(|(k, v)| {
                self.resolve_value(v)
                    .map(|r| (k.clone(), r))
                    .map_err(|e| format!("config {k}: {e}"))
            })
            .collect()
    }

    fn resolve_value(&self, value: &str) -> Result<String, String> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            let body = &after[..end];
            match self.lookup(body)? {
                Some(v) => out.push_str(&v),
                None => {
                    out.push_str("${");
                    out.push_str(body);
                    out.push('}');
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup(&self, body: &str) -> Result<Option<String>, String> {
        let Some((provider, rest)) = body.split_once(':') else {
            return Ok(None);
        };
        let Some(kind) = self.providers.get(provider) else {
            return Ok(None);
        };
        let (path, key) = match rest.rsplit_once(':') {
            Some((p, k)) => (p, k),
            None => ("", rest),
        };
        match kind {
            Kind::Env => std::env::var(key)
                .map(Some)
                .map_err(|_| format!("environment variable {key} is not set")),
            Kind::File => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {path}: {e}"))?;
                parse_properties(&text)
                    .remove(key)
                    .map(Some)
                    .ok_or_else(|| format!("key {key} not found in {path}"))
            }
            Kind::Directory => {
                let file = std::path::Path::new(path).join(key);
                std::fs::read_to_string(&file)
                    .map(Some)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers() -> ConfigProviders {
        ConfigProviders::from_worker(&BTreeMap::from([
            ("config.providers".to_string(), "file,env,dir".to_string()),
            (
                "config.providers.file.class".to_string(),
                FILE_CLASS.to_string(),
            ),
            (
                "config.providers.env.class".to_string(),
                ENV_CLASS.to_string(),
            ),
            (
                "config.providers.dir.class".to_string(),
                DIRECTORY_CLASS.to_string(),
            ),
        ]))
        .unwrap()
    }

    #[test]
    fn resolves_file_env_and_directory_placeholders() {
        let dir = std::env::temp_dir().join(format!("floe-cp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("creds.properties"), "password=s3cret\n").unwrap();
        std::fs::write(dir.join("token"), "tok").unwrap();
        let config = ConfigMap::from([
            (
                "a".to_string(),
                format!(
                    "${{file:{}:password}}",
                    dir.join("creds.properties").display()
                ),
            ),
            ("b".to_string(), "x-${env:PATH}-y".to_string()),
            ("c".to_string(), format!("${{dir:{}:token}}", dir.display())),
            ("d".to_string(), "${vault:secret:key}".to_string()),
        ]);
        let resolved = providers().resolve(&config).unwrap();
        assert_eq!(resolved["a"], "s3cret");
        assert_eq!(
            resolved["b"],
            format!("x-{}-y", std::env::var("PATH").unwrap())
        );
        assert_eq!(resolved["c"], "tok");
        assert_eq!(resolved["d"], "${vault:secret:key}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_values_are_errors_naming_the_key() {
        let config =
            ConfigMap::from([("x".to_string(), "${env:FLOE_SURELY_UNSET_VAR}".to_string())]);
        assert_eq!(
            providers().resolve(&config).unwrap_err(),
            "config x: environment variable FLOE_SURELY_UNSET_VAR is not set"
        );
    }

    #[test]
    fn unknown_classes_are_rejected() {
        let err = ConfigProviders::from_worker(&BTreeMap::from([
            ("config.providers".to_string(), "k".to_string()),
            (
                "config.providers.k.class".to_string(),
                "io.strimzi.Kube".to_string(),
            ),
        ]))
        .unwrap_err();
        assert_eq!(
            err,
            "Unsupported config provider class io.strimzi.Kube for k"
        );
    }
}
