//! `entry_points` of an MLproject file: each entry point's command, parameters (types and
//! defaults) and output globs, in file order.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::Warnings;
use super::scalars::{Reject, Scalar, StringList, required};
use crate::manifest::params::ParamType;
use crate::manifest::{EntryPoint, Parameter};

/// `entry_points`: names to entry points, in file order.
pub(super) struct EntryPointsSeed<'w> {
    pub(super) warnings: &'w mut Warnings,
    pub(super) source: &'w str,
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
            let ep =
                map.next_value_seed(EntryPointSeed { name, warnings: &mut *self.warnings, source: self.source })?;
            out.push(ep);
        }
        Ok(out)
    }
}

struct EntryPointSeed<'w> {
    name: String,
    warnings: &'w mut Warnings,
    source: &'w str,
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
                "command" => command = Some(required(&mut map, "command", self.source)?),
                "parameters" => {
                    parameters =
                        map.next_value_seed(ParametersSeed { warnings: &mut *self.warnings, source: self.source })?;
                }
                "outputs" => {
                    let glob = Scalar { what: "an output glob", source: self.source };
                    outputs = map.next_value_seed(StringList(glob))?;
                }
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
    source: &'w str,
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
            let p = map.next_value_seed(ParameterSeed { name, warnings: &mut *self.warnings, source: self.source })?;
            out.push(p);
        }
        Ok(out)
    }
}

struct ParameterSeed<'w> {
    name: String,
    warnings: &'w mut Warnings,
    source: &'w str,
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
                    let name = required(&mut map, "type", self.source)?;
                    ty = self.param_type(&name);
                }
                "default" => default = map.next_value_seed(Scalar { what: "a default", source: self.source })?,
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
