//! Hand-written deserializers for the MLproject file.
//!
//! Written against serde's visitor API rather than derived so that (1) entry points and
//! parameters keep their file order, (2) YAML scalars become strings the way MLflow's Python
//! sees them (YAML 1.1, [`crate::manifest::scalar`]), and (3) every error is raised while the
//! offending value is being read, which is what makes serde_yaml attach that value's line and
//! column to it.

mod docker;
mod entry_points;
mod scalars;

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{EnvSpec, ParsedManifest};
use docker::DockerSeed;
use entry_points::EntryPointsSeed;
use scalars::{Reject, Scalar, required};

type Warnings = Vec<String>;

/// Parse MLproject text; an empty file (or one holding only comments) is an empty manifest.
pub(super) fn parse_manifest(text: &str) -> Result<ParsedManifest, serde_yaml::Error> {
    let mut warnings = Warnings::new();
    let seed = ManifestSeed { warnings: &mut warnings, source: text };
    let parsed = seed.deserialize(serde_yaml::Deserializer::from_str(text))?;
    let mut parsed = parsed.unwrap_or_default();
    parsed.warnings = warnings;
    Ok(parsed)
}

struct ManifestSeed<'w> {
    warnings: &'w mut Warnings,
    source: &'w str,
}

impl<'de> DeserializeSeed<'de> for ManifestSeed<'_> {
    type Value = Option<ParsedManifest>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ManifestSeed<'_> {
    type Value = Option<ParsedManifest>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping with keys such as name, python_env and entry_points")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = ParsedManifest::default();
        let mut env_key: Option<String> = None;
        let mut seen_entry_points = false;
        while let Some(key) = map.next_key::<String>()? {
            let is_env_key = matches!(key.as_str(), "python_env" | "conda_env" | "docker_env");
            if is_env_key {
                if let Some(first) = &env_key {
                    let msg = format!(
                        "'{key}' and '{first}' are both given; a project has at most one of python_env, conda_env, docker_env"
                    );
                    map.next_value_seed(Reject(msg))?;
                }
                env_key = Some(key.clone());
            }
            match key.as_str() {
                "name" => out.name = map.next_value_seed(Scalar { what: "name", source: self.source })?,
                "python_env" => {
                    out.env = Some(EnvSpec::Python { file: required(&mut map, "python_env", self.source)?.into() });
                }
                "conda_env" => {
                    out.env = Some(EnvSpec::Conda { file: required(&mut map, "conda_env", self.source)?.into() });
                }
                "docker_env" => {
                    let docker = DockerSeed { warnings: &mut *self.warnings, source: self.source };
                    out.env = Some(EnvSpec::Docker(map.next_value_seed(docker)?));
                }
                "entry_points" => {
                    if seen_entry_points {
                        map.next_value_seed(Reject("entry_points is given twice".into()))?;
                    }
                    seen_entry_points = true;
                    let entry_points = EntryPointsSeed { warnings: &mut *self.warnings, source: self.source };
                    out.entry_points = map.next_value_seed(entry_points)?;
                }
                other => {
                    self.warnings.push(format!("MLproject: unknown key '{other}' is ignored"));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(out))
    }
}
