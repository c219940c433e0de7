//! The Ray backend's config keys (`--backend-config`), checked before anything reaches the
//! cluster, and the job they make of a run: lockstep's package as the working directory,
//! merged into the user's runtime environment, and lockstep's labels merged into theirs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::RayError;
use super::wire::SubmitRequest;

/// The keys of `--backend-config` for `--backend ray`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RayConfig {
    /// The dashboard's address (else `RAY_ADDRESS`).
    #[serde(default)]
    pub address: Option<String>,
    /// CPUs reserved for the entrypoint.
    #[serde(default)]
    pub entrypoint_num_cpus: Option<f64>,
    /// GPUs reserved for the entrypoint.
    #[serde(default)]
    pub entrypoint_num_gpus: Option<f64>,
    /// Custom resources reserved for the entrypoint.
    #[serde(default)]
    pub entrypoint_resources: BTreeMap<String, f64>,
    /// The job's runtime environment, into which lockstep puts its `working_dir`.
    #[serde(default)]
    pub runtime_env: Map<String, Value>,
    /// Labels of the job, to which lockstep adds its own (`lockstep_*`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The lockstep binary sent with the job (default: the running one), for a cluster of
    /// another platform, or a smaller build: Ray's dashboard takes packages below 100 MiB.
    #[serde(default)]
    pub lockstep: Option<PathBuf>,
}

/// Ray's own resources, which it takes only as `entrypoint_num_*`.
const BUILT_IN_RESOURCES: [&str; 3] = ["CPU", "GPU", "memory"];

impl RayConfig {
    /// Refuse what the cluster would only refuse later, or silently misread.
    pub fn check(&self) -> Result<(), RayError> {
        let bad = |key: &'static str, reason: String| Err(RayError::Config { key, reason });
        for (key, value) in
            [("entrypoint_num_cpus", self.entrypoint_num_cpus), ("entrypoint_num_gpus", self.entrypoint_num_gpus)]
        {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                return bad(key, format!("{v} is not a number of at least 0"));
            }
        }
        for (name, amount) in &self.entrypoint_resources {
            if BUILT_IN_RESOURCES.contains(&name.as_str()) {
                return bad(
                    "entrypoint_resources",
                    format!(
                        "'{name}' is one of Ray's own resources: give it as entrypoint_num_cpus, entrypoint_num_gpus (or not at all, for memory)"
                    ),
                );
            }
            if !(amount.is_finite() && *amount >= 0.0) {
                return bad("entrypoint_resources", format!("'{name}': {amount} is not a number of at least 0"));
            }
        }
        if self.runtime_env.contains_key("working_dir") {
            return bad("runtime_env", "'working_dir' is lockstep's: the job's working directory is the project's archive and lockstep, sent as one package".into());
        }
        if let Some(key) = self.metadata.keys().find(|k| k.starts_with("lockstep_")) {
            return bad("metadata", format!("'{key}': keys that start with 'lockstep_' are lockstep's own labels"));
        }
        if let Some(address) = &self.address
            && address.trim().is_empty()
        {
            return bad("address", "it is empty".into());
        }
        if let Some(binary) = &self.lockstep
            && !binary.is_file()
        {
            return bad("lockstep", format!("{} is not a file", binary.display()));
        }
        Ok(())
    }

    /// The dashboard's address: the config's, else `RAY_ADDRESS`'s.
    pub fn address(&self) -> Result<String, RayError> {
        self.address
            .clone()
            .or_else(|| std::env::var("RAY_ADDRESS").ok().filter(|a| !a.trim().is_empty()))
            .ok_or(RayError::NoAddress)
    }

    /// The job of a run: `entrypoint` in the package `package_uri`, known as `submission_id`,
    /// with the config's resources, runtime environment and labels, and lockstep's.
    pub fn job(
        &self,
        entrypoint: String,
        submission_id: String,
        package_uri: &str,
        labels: BTreeMap<String, String>,
    ) -> SubmitRequest {
        let mut runtime_env = self.runtime_env.clone();
        runtime_env.insert("working_dir".into(), Value::String(package_uri.to_string()));
        let mut metadata = self.metadata.clone();
        metadata.extend(labels);
        SubmitRequest {
            entrypoint,
            submission_id,
            runtime_env,
            metadata,
            entrypoint_num_cpus: self.entrypoint_num_cpus,
            entrypoint_num_gpus: self.entrypoint_num_gpus,
            entrypoint_resources: self.entrypoint_resources.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(value: Value) -> Result<RayConfig, String> {
        let config: RayConfig = serde_json::from_value(value).map_err(|e| e.to_string())?;
        config.check().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn every_key_is_read() {
        let c = config(json!({
            "address": "http://head:8265", "entrypoint_num_cpus": 2, "entrypoint_num_gpus": 0.5,
            "entrypoint_resources": {"tpu": 1}, "runtime_env": {"env_vars": {"A": "1"}}, "metadata": {"team": "x"}
        }))
        .unwrap();
        assert_eq!(c.address().unwrap(), "http://head:8265");
        assert_eq!((c.entrypoint_num_cpus, c.entrypoint_num_gpus), (Some(2.0), Some(0.5)));
        let labels = BTreeMap::from([("lockstep_run_id".to_string(), "r1".to_string())]);
        let job = c.job("cmd".into(), "id".into(), "gcs://_ray_pkg_x.zip", labels);
        assert_eq!(
            serde_json::to_value(&job).unwrap(),
            json!({
                "entrypoint": "cmd", "submission_id": "id",
                "runtime_env": {"env_vars": {"A": "1"}, "working_dir": "gcs://_ray_pkg_x.zip"},
                "metadata": {"lockstep_run_id": "r1", "team": "x"},
                "entrypoint_num_cpus": 2.0, "entrypoint_num_gpus": 0.5, "entrypoint_resources": {"tpu": 1.0}
            })
        );
    }

    #[test]
    fn what_the_cluster_would_refuse_is_refused_here() {
        let cases = [
            (json!({"adress": "h"}), "unknown field `adress`"),
            (json!({"entrypoint_num_cpus": -1}), "entrypoint_num_cpus"),
            (json!({"entrypoint_num_gpus": "1"}), "invalid type"),
            (json!({"entrypoint_resources": {"GPU": 1}}), "one of Ray's own resources"),
            (json!({"entrypoint_resources": {"tpu": -2}}), "'tpu': -2 is not a number of at least 0"),
            (json!({"runtime_env": {"working_dir": "s3://b/p.zip"}}), "'working_dir' is lockstep's"),
            (json!({"runtime_env": []}), "invalid type"),
            (json!({"metadata": {"lockstep_run_id": "x"}}), "lockstep's own labels"),
            (json!({"metadata": {"n": 1}}), "invalid type"),
            (json!({"address": " "}), "address"),
            (json!({"lockstep": "/no/such/lockstep"}), "/no/such/lockstep is not a file"),
        ];
        for (value, words) in cases {
            let err = config(value.clone()).unwrap_err();
            assert!(err.contains(words), "{value}: {err}");
        }
    }
}
