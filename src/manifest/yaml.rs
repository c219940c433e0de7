//! Hand-written deserializers for the MLproject file.
//!
//! Written against serde's visitor API rather than derived so that (1) entry points and
//! parameters keep their file order, (2) YAML scalars become strings the way MLflow's Python
//! sees them, and (3) every error is raised while the offending value is being read, which is
//! what makes serde_yaml attach that value's line and column to it.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::params::ParamType;
use super::scalar::{python_bool, python_float_repr};
use super::{DockerEnv, DockerEnvVar, EntryPoint, EnvSpec, Parameter, ParsedManifest};

type Warnings = Vec<String>;

/// Parse MLproject text; an empty file (or one holding only comments) is an empty manifest.
pub(super) fn parse_manifest(text: &str) -> Result<ParsedManifest, serde_yaml::Error> {
    let mut warnings = Warnings::new();
    let parsed = ManifestSeed { warnings: &mut warnings }.deserialize(serde_yaml::Deserializer::from_str(text))?;
    let mut parsed = parsed.unwrap_or_default();
    parsed.warnings = warnings;
    Ok(parsed)
}

/// Deserialize a YAML scalar as the string MLflow's Python would see (see [`super::scalar`]).
/// Null becomes `None`; sequences and mappings are errors naming `what`.
struct Scalar {
    what: &'static str,
}

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} as a single value", self.what)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(python_bool(v).to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(python_float_repr(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A scalar that must be present (not null).
fn required<'de, A: MapAccess<'de>>(map: &mut A, what: &'static str) -> Result<String, A::Error> {
    map.next_value_seed(Required { what })
}

struct Required {
    what: &'static str,
}

impl<'de> DeserializeSeed<'de> for Required {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Required {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} as a single value", self.what)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Scalar { what: self.what }.visit_bool(v).map(Option::unwrap)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(python_float_repr(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Err(E::custom(format!("{} is empty", self.what)))
    }
}

/// Reject the value about to be read with `message`, located at that value.
struct Reject(String);

macro_rules! reject_all {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method<E: de::Error>(self, $(_: $arg),*) -> Result<(), E> { Err(E::custom(self.0)) })*
    };
}

impl<'de> DeserializeSeed<'de> for Reject {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reject {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
    reject_all!(visit_str(&str), visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_unit());
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(self.0))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(self.0))
    }
}

/// A list of scalars (volumes, output globs).
struct StringList {
    what: &'static str,
}

impl<'de> DeserializeSeed<'de> for StringList {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringList {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} as a list", self.what)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(Required { what: self.what })? {
            out.push(item);
        }
        Ok(out)
    }
}

struct ManifestSeed<'w> {
    warnings: &'w mut Warnings,
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
                "name" => out.name = map.next_value_seed(Scalar { what: "name" })?,
                "python_env" => {
                    out.env = Some(EnvSpec::Python { file: required(&mut map, "python_env")?.into() });
                }
                "conda_env" => {
                    out.env = Some(EnvSpec::Conda { file: required(&mut map, "conda_env")?.into() });
                }
                "docker_env" => {
                    out.env = Some(EnvSpec::Docker(map.next_value_seed(DockerSeed { warnings: &mut *self.warnings })?));
                }
                "entry_points" => {
                    if seen_entry_points {
                        map.next_value_seed(Reject("entry_points is given twice".into()))?;
                    }
                    seen_entry_points = true;
                    out.entry_points = map.next_value_seed(EntryPointsSeed { warnings: &mut *self.warnings })?;
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

struct DockerSeed<'w> {
    warnings: &'w mut Warnings,
}

impl<'de> DeserializeSeed<'de> for DockerSeed<'_> {
    type Value = DockerEnv;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DockerEnv, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DockerSeed<'_> {
    type Value = DockerEnv;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("docker_env as a mapping with an image")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DockerEnv, A::Error> {
        let mut image = None;
        let mut volumes = Vec::new();
        let mut environment = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "image" => image = Some(required(&mut map, "docker_env.image")?),
                "volumes" => volumes = map.next_value_seed(StringList { what: "a volume" })?,
                "environment" => environment = map.next_value_seed(DockerEnvList)?,
                other => {
                    self.warnings.push(format!("MLproject: unknown key 'docker_env.{other}' is ignored"));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let image = image.ok_or_else(|| de::Error::custom("docker_env has no image"))?;
        Ok(DockerEnv { image, volumes, environment })
    }
}

struct DockerEnvList;

impl<'de> DeserializeSeed<'de> for DockerEnvList {
    type Value = Vec<DockerEnvVar>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DockerEnvList {
    type Value = Vec<DockerEnvVar>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("docker_env.environment as a list of NAME or [NAME, value]")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(var) = seq.next_element_seed(DockerEnvItem)? {
            out.push(var);
        }
        Ok(out)
    }
}

struct DockerEnvItem;

impl<'de> DeserializeSeed<'de> for DockerEnvItem {
    type Value = DockerEnvVar;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DockerEnvVar, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DockerEnvItem {
    type Value = DockerEnvVar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("NAME or [NAME, value]")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DockerEnvVar, E> {
        Ok(DockerEnvVar::Copy(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DockerEnvVar, A::Error> {
        let bad = || de::Error::custom("an environment pair must be [NAME, value]");
        let name = seq.next_element_seed(Required { what: "a variable name" })?.ok_or_else(bad)?;
        let value = seq.next_element_seed(Required { what: "a variable value" })?.ok_or_else(bad)?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(bad());
        }
        Ok(DockerEnvVar::Set(name, value))
    }
}

struct EntryPointsSeed<'w> {
    warnings: &'w mut Warnings,
}

impl<'de> DeserializeSeed<'de> for EntryPointsSeed<'_> {
    type Value = Vec<EntryPoint>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntryPointsSeed<'_> {
    type Value = Vec<EntryPoint>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("entry_points as a mapping from names to entry points")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<EntryPoint> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                map.next_value_seed(Reject(format!("entry point '{name}' is declared twice")))?;
            }
            let ep = map.next_value_seed(EntryPointSeed { name, warnings: &mut *self.warnings })?;
            out.push(ep);
        }
        Ok(out)
    }
}

struct EntryPointSeed<'w> {
    name: String,
    warnings: &'w mut Warnings,
}

impl<'de> DeserializeSeed<'de> for EntryPointSeed<'_> {
    type Value = EntryPoint;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<EntryPoint, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntryPointSeed<'_> {
    type Value = EntryPoint;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "entry point '{}' as a mapping with a command", self.name)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EntryPoint, A::Error> {
        let mut command = None;
        let mut parameters = Vec::new();
        let mut outputs = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "command" => command = Some(required(&mut map, "command")?),
                "parameters" => {
                    parameters = map.next_value_seed(ParametersSeed { warnings: &mut *self.warnings })?;
                }
                "outputs" => outputs = map.next_value_seed(StringList { what: "an output glob" })?,
                other => {
                    self.warnings
                        .push(format!("MLproject: unknown key '{other}' in entry point '{}' is ignored", self.name));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        for glob in &outputs {
            globset::Glob::new(glob)
                .map_err(|e| de::Error::custom(format!("entry point '{}': bad output glob: {e}", self.name)))?;
        }
        let command =
            command.ok_or_else(|| de::Error::custom(format!("entry point '{}' has no command", self.name)))?;
        Ok(EntryPoint { name: self.name, parameters, command, outputs })
    }
}

struct ParametersSeed<'w> {
    warnings: &'w mut Warnings,
}

impl<'de> DeserializeSeed<'de> for ParametersSeed<'_> {
    type Value = Vec<Parameter>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParametersSeed<'_> {
    type Value = Vec<Parameter>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("parameters as a mapping from names to types")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<Parameter> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                map.next_value_seed(Reject(format!("parameter '{name}' is declared twice")))?;
            }
            let p = map.next_value_seed(ParameterSeed { name, warnings: &mut *self.warnings })?;
            out.push(p);
        }
        Ok(out)
    }
}

struct ParameterSeed<'w> {
    name: String,
    warnings: &'w mut Warnings,
}

impl ParameterSeed<'_> {
    fn param_type(&mut self, type_name: &str) -> ParamType {
        ParamType::parse(type_name).unwrap_or_else(|| {
            self.warnings
                .push(format!("MLproject: parameter '{}' has unknown type '{type_name}', read as string", self.name));
            ParamType::String
        })
    }
}

impl<'de> DeserializeSeed<'de> for ParameterSeed<'_> {
    type Value = Parameter;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parameter, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParameterSeed<'_> {
    type Value = Parameter;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "parameter '{}' as a type name or a mapping with type and default", self.name)
    }
    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<Parameter, E> {
        let ty = self.param_type(v);
        Ok(Parameter { name: self.name, ty, default: None })
    }
    fn visit_unit<E: de::Error>(self) -> Result<Parameter, E> {
        Ok(Parameter { name: self.name, ty: ParamType::String, default: None })
    }
    fn visit_none<E: de::Error>(self) -> Result<Parameter, E> {
        Ok(Parameter { name: self.name, ty: ParamType::String, default: None })
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Parameter, A::Error> {
        let mut ty = ParamType::String;
        let mut default = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => {
                    let name = required(&mut map, "type")?;
                    ty = self.param_type(&name);
                }
                "default" => default = map.next_value_seed(Scalar { what: "a default" })?,
                other => {
                    self.warnings
                        .push(format!("MLproject: unknown key '{other}' in parameter '{}' is ignored", self.name));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(value) = &default
            && let Err(reason) = ty.check(value)
        {
            return Err(de::Error::custom(format!(
                "parameter '{}' is declared {ty}, but its default '{value}' {reason}",
                self.name
            )));
        }
        Ok(Parameter { name: self.name, ty, default })
    }
}
