//! The Slurm backend's config: the keys of `--backend-config`, each an sbatch option, a line
//! of the job script, or where things are on the cluster.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// `--backend-config` for `--backend slurm`; unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// `--partition`.
    #[serde(default, deserialize_with = "scalar")]
    pub partition: Option<String>,
    /// `--account`.
    #[serde(default, deserialize_with = "scalar")]
    pub account: Option<String>,
    /// `--qos`.
    #[serde(default, deserialize_with = "scalar")]
    pub qos: Option<String>,
    /// `--time` (Slurm's forms: `30`, `1:00:00`, `1-00:00:00`).
    #[serde(default, deserialize_with = "scalar")]
    pub time: Option<String>,
    /// `--mem` (`4G`, `4096`).
    #[serde(default, deserialize_with = "scalar")]
    pub mem: Option<String>,
    /// `--cpus-per-task`.
    #[serde(default, deserialize_with = "scalar")]
    pub cpus_per_task: Option<String>,
    /// `--gpus`.
    #[serde(default, deserialize_with = "scalar")]
    pub gpus: Option<String>,
    /// `--gres`.
    #[serde(default, deserialize_with = "scalar")]
    pub gres: Option<String>,
    /// `--nodes`.
    #[serde(default, deserialize_with = "scalar")]
    pub nodes: Option<String>,
    /// `--ntasks`.
    #[serde(default, deserialize_with = "scalar")]
    pub ntasks: Option<String>,
    /// `--constraint`.
    #[serde(default, deserialize_with = "scalar")]
    pub constraint: Option<String>,
    /// Modules to load, one `module load NAME` line each, before anything else runs.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Shell lines run before `lockstep run` (the user's own lines, as written).
    #[serde(default)]
    pub setup: Vec<String>,
    /// Variables exported to the job, quoted.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// More `sbatch` arguments, passed as they are.
    #[serde(default)]
    pub sbatch_args: Vec<String>,
    /// A directory the submit host and the compute nodes share: the archives, the job
    /// scripts and logs, and the remote store live there.
    pub staging_dir: Option<PathBuf>,
    /// The lockstep binary on the nodes (by default the submit host's own path).
    pub lockstep: Option<PathBuf>,
}

impl SlurmConfig {
    /// The sbatch options the keys name, as `(option, value)` pairs.
    pub fn directives(&self) -> Vec<(&'static str, &str)> {
        let keys = [
            ("--partition", &self.partition),
            ("--account", &self.account),
            ("--qos", &self.qos),
            ("--time", &self.time),
            ("--mem", &self.mem),
            ("--cpus-per-task", &self.cpus_per_task),
            ("--gpus", &self.gpus),
            ("--gres", &self.gres),
            ("--nodes", &self.nodes),
            ("--ntasks", &self.ntasks),
            ("--constraint", &self.constraint),
        ];
        keys.into_iter().filter_map(|(option, value)| value.as_deref().map(|v| (option, v))).collect()
    }
}

/// A string or a number (`"cpus_per_task": 4` and `"4"` are one value).
fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!("expected a string or a number, not {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_are_one_value_and_directives_keep_their_order() {
        let c: SlurmConfig =
            serde_json::from_str(r#"{"cpus_per_task": 4, "partition": "debug", "mem": "1G"}"#).unwrap();
        assert_eq!(c.directives(), [("--partition", "debug"), ("--mem", "1G"), ("--cpus-per-task", "4")]);
        let err = serde_json::from_str::<SlurmConfig>(r#"{"time": [1]}"#).unwrap_err().to_string();
        assert!(err.contains("expected a string or a number"), "{err}");
        let err = serde_json::from_str::<SlurmConfig>(r#"{"queue": "x"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `queue`"), "{err}");
    }
}
