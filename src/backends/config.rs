//! `--backend-config FILE_OR_JSON`: a JSON object, inline or in a file, that each backend
//! reads into its own typed config (unknown keys refused).

use std::path::Path;

use serde::de::DeserializeOwned;

use super::BackendError;

/// A backend's config as given: a JSON object, and where it came from for error messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendConfig {
    /// The object (empty when no config is given).
    pub value: serde_json::Map<String, serde_json::Value>,
    /// The file, or "inline JSON".
    pub origin: String,
}

impl BackendConfig {
    /// Read `--backend-config`: inline JSON when it starts with `{`, else a JSON file
    /// (relative to `caller_dir`).
    pub fn parse(given: &str, caller_dir: &Path) -> Result<BackendConfig, BackendError> {
        let trimmed = given.trim_start();
        let (text, origin) = if trimmed.starts_with('{') {
            (given.to_string(), "inline JSON".to_string())
        } else {
            let path = caller_dir.join(given);
            let text = std::fs::read_to_string(&path)
                .map_err(|source| BackendError::ConfigFile { path: path.clone(), source })?;
            (text, path.display().to_string())
        };
        let bad = |message: String| BackendError::Config { backend: "the", origin: origin.clone(), message };
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(value)) => Ok(BackendConfig { value, origin }),
            Ok(_) => Err(bad("not a JSON object".into())),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// The config read as backend `backend`'s typed config.
    pub fn typed<T: DeserializeOwned>(&self, backend: &'static str) -> Result<T, BackendError> {
        serde_json::from_value(serde_json::Value::Object(self.value.clone())).map_err(|e| BackendError::Config {
            backend,
            origin: if self.origin.is_empty() { "no config".into() } else { self.origin.clone() },
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        partition: Option<String>,
    }

    #[test]
    fn inline_json_and_files_are_read_and_unknown_keys_refused() {
        let dir = tempfile::tempdir().unwrap();
        let inline = BackendConfig::parse(r#"{"partition": "debug"}"#, dir.path()).unwrap();
        assert_eq!(inline.typed::<Sample>("slurm").unwrap().partition.as_deref(), Some("debug"));
        std::fs::write(dir.path().join("c.json"), r#"{"partitio": "x"}"#).unwrap();
        let file = BackendConfig::parse("c.json", dir.path()).unwrap();
        let err = file.typed::<Sample>("slurm").unwrap_err().to_string();
        assert!(err.contains("unknown field `partitio`") && err.contains("c.json"), "{err}");
        assert!(matches!(BackendConfig::parse("[1]", dir.path()), Err(BackendError::ConfigFile { .. })));
        let not_object = BackendConfig::parse("{", dir.path()).unwrap_err().to_string();
        assert!(not_object.contains("inline JSON"), "{not_object}");
    }
}
