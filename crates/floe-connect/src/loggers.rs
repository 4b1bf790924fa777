//! `/admin/loggers`: log levels changed at run time (KIP-495, KIP-976). Logger names are used
//! as `tracing` targets (`floe_connect`, `floe_iceberg::channel`, …); `root` is the default.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};

/// Applies a `tracing` filter directive string (`info,floe_connect=debug`).
pub type ApplyFilter = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

#[derive(Debug, Clone)]
struct Level {
    level: String,
    last_modified: Option<i64>,
}

/// The levels set on this worker.
pub struct Loggers {
    levels: Mutex<BTreeMap<String, Level>>,
    apply: Option<ApplyFilter>,
}

/// Why a level could not be set.
#[derive(Debug, PartialEq, Eq)]
pub enum LoggerError {
    InvalidLevel(String),
    Apply(String),
}

const LEVELS: &[&str] = &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"];

impl Loggers {
    /// Levels starting from `root`; `apply` reconfigures the subscriber (None: record only).
    pub fn new(root: &str, apply: Option<ApplyFilter>) -> Loggers {
        let levels = BTreeMap::from([(
            "root".to_string(),
            Level {
                level: root.to_ascii_uppercase(),
                last_modified: None,
            },
        )]);
        Loggers {
            levels: Mutex::new(levels),
            apply,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Level>> {
        match self.levels.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// `GET /admin/loggers`.
    pub fn all(&self) -> Json {
        let levels = self.lock();
        Json::Object(
            levels
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!({"level": v.level, "last_modified": v.last_modified}),
                    )
                })
                .collect(),
        )
    }

    /// `GET /admin/loggers/{name}`: None if the logger has no level set.
    pub fn get(&self, name: &str) -> Option<Json> {
        self.lock()
            .get(name)
            .map(|v| json!({"level": v.level, "last_modified": v.last_modified}))
    }

    /// Sets `name` (and, as in log4j, the loggers below it) to `level`; returns the affected
    /// logger names.
    pub fn set(&self, name: &str, level: &str) -> Result<Vec<String>, LoggerError> {
        let level = level.trim().to_ascii_uppercase();
        if !LEVELS.contains(&level.as_str()) {
            return Err(LoggerError::InvalidLevel(level));
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut levels = self.lock();
        let affected: Vec<String> = if name == "root" {
            levels.keys().cloned().collect()
        } else {
            levels
                .keys()
                .filter(|k| {
                    *k == name
                        || k.starts_with(&format!("{name}."))
                        || k.starts_with(&format!("{name}::"))
                })
                .cloned()
                .chain(std::iter::once(name.to_string()))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        for a in &affected {
            levels.insert(
                a.clone(),
                Level {
                    level: level.clone(),
                    last_modified: Some(now),
                },
            );
        }
        if let Some(apply) = &self.apply {
            apply(&directives(&levels)).map_err(LoggerError::Apply)?;
        }
        Ok(affected)
    }
}

fn tracing_level(level: &str) -> &'static str {
    match level {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => "off",
    }
}

/// The filter string for the current levels.
fn directives(levels: &BTreeMap<String, Level>) -> String {
    let mut parts =
        vec![tracing_level(levels.get("root").map_or("INFO", |l| l.level.as_str())).to_string()];
    for (k, v) in levels.iter().filter(|(k, _)| *k != "root") {
        parts.push(format!(
            "{}={}",
            k.replace('.', "::"),
            tracing_level(&v.level)
        ));
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_levels_and_children() {
        let applied = Arc::new(Mutex::new(String::new()));
        let sink = applied.clone();
        let loggers = Loggers::new(
            "info",
            Some(Arc::new(move |f: &str| {
                *sink.lock().unwrap() = f.to_string();
                Ok(())
            })),
        );
        assert_eq!(
            loggers.set("floe_iceberg.channel", "debug").unwrap(),
            vec!["floe_iceberg.channel".to_string()]
        );
        assert_eq!(
            loggers.set("floe_iceberg", "WARN").unwrap(),
            vec![
                "floe_iceberg".to_string(),
                "floe_iceberg.channel".to_string()
            ]
        );
        assert_eq!(
            *applied.lock().unwrap(),
            "info,floe_iceberg=warn,floe_iceberg::channel=warn"
        );
        assert_eq!(loggers.get("floe_iceberg").unwrap()["level"], "WARN");
        assert_eq!(
            loggers.get("root").unwrap(),
            json!({"level": "INFO", "last_modified": null})
        );
        assert_eq!(
            loggers.set("x", "LOUD"),
            Err(LoggerError::InvalidLevel("LOUD".into()))
        );
        assert!(loggers.get("nothing").is_none());
    }
}
