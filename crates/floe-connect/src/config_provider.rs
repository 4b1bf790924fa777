//! Config providers (KIP-297, KIP-887, KIP-632): `${file:/path:key}`, `${env:VAR}` and
//! `${directory:/dir:file}` placeholders in connector configs, resolved when a task starts.
//! Stored configs (and the REST API) keep the placeholders; resolved values are never logged,
//! and a [`Redactor`] puts the placeholders back into any text built from resolved values.
//!
//! The file and directory providers honour `config.providers.<name>.param.allowed.paths`
//! (KIP-993) as Java's `AllowedPaths` does: a comma-separated list of absolute, existing
//! paths; a path a placeholder names is normalized (so `..` cannot climb out) and must lie
//! under one of them. Unset, every path is allowed.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use floe_data::config::HIDDEN;

use crate::plugin::ConfigMap;
use crate::properties::parse_properties;

const FILE_CLASS: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
const ENV_CLASS: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";
const DIRECTORY_CLASS: &str = "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

/// The parameter of the file and directory providers that limits what they read (KIP-993).
const ALLOWED_PATHS: &str = "allowed.paths";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File,
    Env,
    Directory,
}

/// One declared provider.
#[derive(Debug, Clone)]
struct Provider {
    kind: Kind,
    allowed: AllowedPaths,
}

/// `allowed.paths`: `None` when unset (everything allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AllowedPaths(Option<Vec<PathBuf>>);

impl AllowedPaths {
    /// Parses the parameter as Java's `AllowedPaths` does: each entry normalized, and refused
    /// unless absolute and existing. Floe also trims the spaces around entries.
    fn parse(value: Option<&str>) -> Result<AllowedPaths, String> {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(AllowedPaths(None));
        };
        value
            .split(',')
            .map(|entry| {
                let path = normalize(Path::new(entry.trim()));
                if !path.is_absolute() {
                    Err(format!("Path {} is not absolute", path.display()))
                } else if !path.exists() {
                    Err(format!("Path {} does not exist", path.display()))
                } else {
                    Ok(path)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|paths| AllowedPaths(Some(paths)))
    }

    /// The path to read for `path`, or `None` when it lies outside every allowed path (Java's
    /// `AllowedPaths.parseUntrustedPath`).
    fn check(&self, path: &str) -> Option<PathBuf> {
        match &self.0 {
            None => Some(PathBuf::from(path)),
            Some(allowed) => {
                let normalized = normalize(Path::new(path));
                allowed
                    .iter()
                    .any(|a| normalized.starts_with(a))
                    .then_some(normalized)
            }
        }
    }
}

/// Lexical normalization, as Java's `Path.normalize`: `.` dropped, `name/..` removed, `..`
/// at the root dropped; leading `..` of a relative path kept. Links are not followed.
fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// Whether `key` names an entry of a directory itself: not empty, not `.` or `..`, no
/// separator. The directory provider reads nothing else, as Java's lists the directory's
/// own files.
fn is_file_name(key: &str) -> bool {
    !key.is_empty()
        && key != "."
        && key != ".."
        && !key.contains('\0')
        && !key.chars().any(std::path::is_separator)
}

/// The providers a worker declares in `config.providers`.
#[derive(Debug, Clone, Default)]
pub struct ConfigProviders {
    providers: BTreeMap<String, Provider>,
}

impl ConfigProviders {
    /// Reads `config.providers`, `config.providers.<name>.class` and, for the file and
    /// directory providers, `config.providers.<name>.param.allowed.paths` from worker
    /// properties.
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
            let allowed = match kind {
                Kind::File | Kind::Directory => {
                    let key = format!("config.providers.{name}.param.{ALLOWED_PATHS}");
                    AllowedPaths::parse(props.get(&key).map(String::as_str))
                        .map_err(|e| format!("{key}: {e}"))?
                }
                Kind::Env => AllowedPaths::default(),
            };
            providers.insert(name.to_string(), Provider { kind, allowed });
        }
        Ok(ConfigProviders { providers })
    }

    /// Replaces every `${provider:[path:]key}` whose provider is declared. Placeholders of
    /// unknown providers are left as they are (as Java does).
    pub fn resolve(&self, config: &ConfigMap) -> Result<ConfigMap, String> {
        self.resolve_redacting(config).map(|(resolved, _)| resolved)
    }

    /// [`resolve`](Self::resolve), with the [`Redactor`] that puts the placeholders back into
    /// any text built from the resolved config.
    pub fn resolve_redacting(&self, config: &ConfigMap) -> Result<(ConfigMap, Redactor), String> {
        if self.providers.is_empty() {
            return Ok((config.clone(), Redactor::default()));
        }
        let mut pieces = Vec::new();
        let mut resolved = ConfigMap::new();
        for (k, v) in config {
            let r = self
                .resolve_value(v, &mut pieces)
                .map_err(|e| format!("config {k}: {e}"))?;
            resolved.insert(k.clone(), r);
        }
        let redactor = Redactor::from_resolution(config, &resolved, &pieces);
        Ok((resolved, redactor))
    }

    /// The [`Redactor`] of `raw`, for text built from its resolution earlier: every key that
    /// resolves now counts; one that no longer does is skipped (its error names no value).
    pub fn redactor(&self, raw: &ConfigMap) -> Redactor {
        if self.providers.is_empty() {
            return Redactor::default();
        }
        let mut pieces = Vec::new();
        let mut resolved = ConfigMap::new();
        for (k, v) in raw {
            if let Ok(r) = self.resolve_value(v, &mut pieces) {
                resolved.insert(k.clone(), r);
            }
        }
        Redactor::from_resolution(raw, &resolved, &pieces)
    }

    /// [`redactor`](Self::redactor) with the providers of worker properties; empty when they
    /// are invalid (a worker with such properties does not start).
    pub fn redactor_for(worker_props: &BTreeMap<String, String>, raw: &ConfigMap) -> Redactor {
        ConfigProviders::from_worker(worker_props)
            .map(|p| p.redactor(raw))
            .unwrap_or_default()
    }

    /// Resolves one value; every placeholder replaced is added to `pieces` as
    /// (placeholder, value).
    fn resolve_value(
        &self,
        value: &str,
        pieces: &mut Vec<(String, String)>,
    ) -> Result<String, String> {
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
            let placeholder = format!("${{{body}}}");
            match self.lookup(body)? {
                Some(v) => {
                    out.push_str(&v);
                    pieces.push((placeholder, v));
                }
                None => out.push_str(&placeholder),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup(&self, body: &str) -> Result<Option<String>, String> {
        let Some((name, rest)) = body.split_once(':') else {
            return Ok(None);
        };
        let Some(provider) = self.providers.get(name) else {
            return Ok(None);
        };
        let (path, key) = match rest.rsplit_once(':') {
            Some((p, k)) => (p, k),
            None => ("", rest),
        };
        let allowed = |path: &str| {
            provider.allowed.check(path).ok_or_else(|| {
                format!(
                    "the path {path} is not allowed to be accessed: it is outside config.providers.{name}.param.{ALLOWED_PATHS}"
                )
            })
        };
        match provider.kind {
            Kind::Env => std::env::var(key)
                .map(Some)
                .map_err(|_| format!("environment variable {key} is not set")),
            Kind::File => {
                let file = allowed(path)?;
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {path}: {e}"))?;
                parse_properties(&text)
                    .remove(key)
                    .map(Some)
                    .ok_or_else(|| format!("key {key} not found in {path}"))
            }
            Kind::Directory => {
                let dir = allowed(path)?;
                if !dir.is_dir() {
                    return Err(format!("the path {path} is not a directory"));
                }
                // Java lists the directory's regular files (links followed) and reads the one
                // named by the key: a key naming anything else matches none of them.
                if !is_file_name(key) {
                    return Err(format!(
                        "{key} names no file of the directory {path}: the directory provider reads only the regular files directly in its directory"
                    ));
                }
                let file = dir.join(key);
                match std::fs::metadata(&file) {
                    Ok(m) if m.is_file() => std::fs::read_to_string(&file)
                        .map(Some)
                        .map_err(|e| format!("cannot read {}: {e}", file.display())),
                    Ok(_) => Err(format!(
                        "{} is not a regular file: the directory provider reads only regular files",
                        file.display()
                    )),
                    Err(e) => Err(format!("cannot read {}: {e}", file.display())),
                }
            }
        }
    }
}

/// Puts placeholders back into text built from a resolved config, so that no value a config
/// provider returned reaches a REST answer, a status trace or a log line: a whole resolved
/// value is shown as the raw value it came from, and a value one placeholder returned (also
/// trimmed) as that placeholder. Its `Debug` output names no value.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a value containing another is replaced whole.
    swaps: Vec<Swap>,
}

#[derive(Clone)]
struct Swap {
    from: String,
    to: String,
    /// Only where it stands as a word (an alphanumeric edge not continued by another
    /// alphanumeric character), so a short value does not garble the words around it.
    word: bool,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("values", &self.swaps.len())
            .finish()
    }
}

impl Redactor {
    /// Whole values of the keys whose resolved value differs from the raw one, then the
    /// values of the placeholders (`pieces`: placeholder, value).
    fn from_resolution(
        raw: &ConfigMap,
        resolved: &ConfigMap,
        pieces: &[(String, String)],
    ) -> Redactor {
        let mut r = Redactor::default();
        for (k, v) in resolved {
            let Some(given) = raw.get(k) else { continue };
            if given != v {
                r.add(v, given);
                r.add(v.trim(), given);
            }
        }
        for (placeholder, value) in pieces {
            r.add(value, placeholder);
            r.add(value.trim(), placeholder);
        }
        r
    }

    fn add(&mut self, from: &str, to: &str) {
        if from.trim().is_empty() || from == to || self.swaps.iter().any(|s| s.from == from) {
            return;
        }
        self.swaps.push(Swap {
            from: from.to_string(),
            to: to.to_string(),
            word: true,
        });
        self.swaps.sort_by_key(|s| std::cmp::Reverse(s.from.len()));
    }

    /// Shows `text` as `[hidden]` wherever it appears, words or not (the value of a secret
    /// key); this takes precedence over a placeholder.
    pub fn hide(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.swaps.retain(|s| s.from != text);
        self.swaps.push(Swap {
            from: text.to_string(),
            to: HIDDEN.to_string(),
            word: false,
        });
        self.swaps.sort_by_key(|s| std::cmp::Reverse(s.from.len()));
    }

    /// Whether there is nothing to replace.
    pub fn is_empty(&self) -> bool {
        self.swaps.is_empty()
    }

    /// `text` with every value replaced, in one pass: what a replacement inserts is not
    /// looked at again.
    pub fn redact(&self, text: &str) -> String {
        if self.swaps.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        'scan: while let Some(c) = text[i..].chars().next() {
            for s in &self.swaps {
                let end = i + s.from.len();
                if text[i..].starts_with(s.from.as_str()) && (!s.word || stands_alone(text, i, end))
                {
                    out.push_str(&s.to);
                    i = end;
                    continue 'scan;
                }
            }
            out.push(c);
            i += c.len_utf8();
        }
        out
    }
}

/// Whether `text[start..end]` is not glued to the text around it: an alphanumeric character at
/// either of its edges is not continued by an alphanumeric one outside.
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let inner = &text[start..end];
    let glued = |a: Option<char>, b: Option<char>| {
        a.is_some_and(char::is_alphanumeric) && b.is_some_and(char::is_alphanumeric)
    };
    !glued(text[..start].chars().next_back(), inner.chars().next())
        && !glued(inner.chars().next_back(), text[end..].chars().next())
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

    /// File and directory providers named `file` and `dir`, both limited to `allowed`.
    fn with_allowed(allowed: &str) -> Result<ConfigProviders, String> {
        ConfigProviders::from_worker(&BTreeMap::from([
            ("config.providers".to_string(), "file,dir".to_string()),
            (
                "config.providers.file.class".to_string(),
                FILE_CLASS.to_string(),
            ),
            (
                "config.providers.file.param.allowed.paths".to_string(),
                allowed.to_string(),
            ),
            (
                "config.providers.dir.class".to_string(),
                DIRECTORY_CLASS.to_string(),
            ),
            (
                "config.providers.dir.param.allowed.paths".to_string(),
                allowed.to_string(),
            ),
        ]))
    }

    /// A fresh directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("floe-cp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `value` resolved as the value of a config key.
    fn one(providers: &ConfigProviders, value: &str) -> Result<String, String> {
        providers
            .resolve(&ConfigMap::from([("k".to_string(), value.to_string())]))
            .map(|mut c| c.remove("k").unwrap_or_default())
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

    #[test]
    fn allowed_paths_limit_the_file_and_directory_providers() {
        let root = scratch("allowed");
        let inside = root.join("inside");
        for d in ["inside", "outside", "insider"] {
            let d = root.join(d);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("creds.properties"), "password=s3cret\n").unwrap();
            std::fs::write(d.join("token"), "t0ken").unwrap();
        }
        let p = with_allowed(&inside.display().to_string()).unwrap();
        let (i, r) = (inside.display(), root.display());
        assert_eq!(
            one(&p, &format!("${{file:{i}/creds.properties:password}}")),
            Ok("s3cret".to_string())
        );
        assert_eq!(
            one(&p, &format!("${{dir:{i}:token}}")),
            Ok("t0ken".to_string())
        );
        // Normalized first: a `..` that stays inside is allowed.
        assert_eq!(
            one(
                &p,
                &format!("${{file:{i}/sub/../creds.properties:password}}")
            ),
            Ok("s3cret".to_string())
        );
        for value in [
            format!("${{file:{r}/outside/creds.properties:password}}"),
            format!("${{file:{i}/../outside/creds.properties:password}}"),
            format!("${{file:{i}/./../insider/creds.properties:password}}"),
            format!("${{file:{r}/insider/creds.properties:password}}"),
            "${file:inside/creds.properties:password}".to_string(),
            format!("${{dir:{r}/outside:token}}"),
            format!("${{dir:{i}/..:token}}"),
            format!("${{dir:{i}/../outside:token}}"),
        ] {
            let err = one(&p, &value).unwrap_err();
            assert!(
                err.contains("is not allowed to be accessed")
                    && err.contains("param.allowed.paths"),
                "{value}: {err}"
            );
            assert!(!err.contains("s3cret") && !err.contains("t0ken"), "{err}");
        }
        // A list: every entry is allowed.
        let p = with_allowed(&format!("{r}/outside, {i}")).unwrap();
        assert_eq!(
            one(&p, &format!("${{dir:{r}/outside:token}}")),
            Ok("t0ken".to_string())
        );
        assert_eq!(
            one(&p, &format!("${{dir:{i}:token}}")),
            Ok("t0ken".to_string())
        );
        assert!(one(&p, &format!("${{dir:{r}/insider:token}}")).is_err());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn allowed_paths_must_be_absolute_and_exist() {
        assert_eq!(
            with_allowed("relative/dir").unwrap_err(),
            "config.providers.file.param.allowed.paths: Path relative/dir is not absolute"
        );
        let missing = std::env::temp_dir().join(format!("floe-cp-none-{}", std::process::id()));
        let err = with_allowed(&missing.display().to_string()).unwrap_err();
        assert_eq!(
            err,
            format!(
                "config.providers.file.param.allowed.paths: Path {} does not exist",
                missing.display()
            )
        );
        // Empty is unset: everything allowed.
        assert!(with_allowed("").is_ok());
    }

    #[test]
    fn the_directory_provider_reads_only_regular_files_of_its_directory() {
        let root = scratch("dir");
        let dir = root.join("d");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("token"), "t0ken").unwrap();
        std::fs::write(dir.join("sub").join("inner"), "s3cret").unwrap();
        std::fs::write(root.join("outside"), "s3cret").unwrap();
        let p = providers();
        let (d, r) = (dir.display(), root.display());
        assert_eq!(
            one(&p, &format!("${{dir:{d}:token}}")),
            Ok("t0ken".to_string())
        );
        for key in [
            "../outside".to_string(),
            "sub/inner".to_string(),
            "..".to_string(),
            ".".to_string(),
            format!("{r}/outside"),
        ] {
            let err = one(&p, &format!("${{dir:{d}:{key}}}")).unwrap_err();
            assert!(
                err.contains("names no file of the directory"),
                "{key}: {err}"
            );
            assert!(!err.contains("s3cret"), "{err}");
        }
        let err = one(&p, &format!("${{dir:{d}:sub}}")).unwrap_err();
        assert!(err.contains("is not a regular file"), "{err}");
        let err = one(&p, &format!("${{dir:{d}/token:token}}")).unwrap_err();
        assert!(err.contains("is not a directory"), "{err}");
        // As Java's Files.isRegularFile, links are followed: Kubernetes mounts secrets as
        // links into a hidden directory.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("outside"), dir.join("link")).unwrap();
            std::os::unix::fs::symlink(dir.join("sub"), dir.join("dirlink")).unwrap();
            assert_eq!(
                one(&p, &format!("${{dir:{d}:link}}")),
                Ok("s3cret".to_string())
            );
            let err = one(&p, &format!("${{dir:{d}:dirlink}}")).unwrap_err();
            assert!(err.contains("is not a regular file"), "{err}");
        }
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_redactor_shows_placeholders_instead_of_resolved_values() {
        let root = scratch("redact");
        std::fs::write(root.join("pw"), "s3cret\n").unwrap();
        std::fs::write(root.join("short"), "ab").unwrap();
        let pw = format!("${{dir:{}:pw}}", root.display());
        let short = format!("${{dir:{}:short}}", root.display());
        let raw = ConfigMap::from([
            ("errors.tolerance".to_string(), pw.clone()),
            ("topics".to_string(), format!("a,{pw}")),
            ("other".to_string(), short.clone()),
            ("plain".to_string(), "none".to_string()),
        ]);
        let (resolved, redactor) = providers().resolve_redacting(&raw).unwrap();
        assert_eq!(resolved["errors.tolerance"], "s3cret\n");
        let text = format!(
            "Invalid value {} for configuration errors.tolerance: String must be one of: none, all\n\
             Invalid value s3cret for x; topics=[a, s3cret]; about ab",
            resolved["errors.tolerance"]
        );
        let shown = redactor.redact(&text);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(
            shown,
            format!(
                "Invalid value {pw} for configuration errors.tolerance: String must be one of: none, all\n\
                 Invalid value {pw} for x; topics=[a, {pw}]; about {short}"
            )
        );
        assert!(!format!("{redactor:?}").contains("s3cret"));
        // The same for a task's trace, even from a redactor built again from the raw config.
        let again = providers().redactor(&raw);
        let trace = crate::error::TaskError::connect("Invalid value s3cret for configuration x")
            .redacted(&again)
            .trace();
        assert!(!trace.contains("s3cret") && trace.contains(&pw), "{trace}");
        // A secret key's value is hidden outright, words or not.
        let mut hiding = redactor.clone();
        hiding.hide("s3cret\n");
        hiding.hide("s3cret");
        assert_eq!(hiding.redact("xs3cret s3cret"), "x[hidden] [hidden]");
        assert!(ConfigProviders::default().redactor(&raw).is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }
}
