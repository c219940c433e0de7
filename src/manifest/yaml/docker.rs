//! `docker_env` of an MLproject file: the image, volumes and environment variables.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Warnings;
use super::scalars::{Required, Scalar, StringList, required};
use crate::manifest::{DockerEnv, DockerEnvVar};

/// `docker_env`: an image, volumes, environment variables.
pub(super) struct DockerSeed<'w> {
    pub(super) warnings: &'w mut Warnings,
    pub(super) source: &'w str,
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
                "image" => image = Some(required(&mut map, "docker_env.image", self.source)?),
                "volumes" => {
                    volumes = map.next_value_seed(StringList(Scalar { what: "a volume", source: self.source }))?;
                }
                "environment" => environment = map.next_value_seed(DockerEnvList { source: self.source })?,
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

struct DockerEnvList<'s> {
    source: &'s str,
}

impl<'de> DeserializeSeed<'de> for DockerEnvList<'_> {
    type Value = Vec<DockerEnvVar>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DockerEnvList<'_> {
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
        while let Some(var) = seq.next_element_seed(DockerEnvItem { source: self.source })? {
            out.push(var);
        }
        Ok(out)
    }
}

struct DockerEnvItem<'s> {
    source: &'s str,
}

impl<'de> DeserializeSeed<'de> for DockerEnvItem<'_> {
    type Value = DockerEnvVar;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DockerEnvVar, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DockerEnvItem<'_> {
    type Value = DockerEnvVar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("NAME or [NAME, value]")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DockerEnvVar, E> {
        Ok(DockerEnvVar::Copy(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DockerEnvVar, A::Error> {
        let bad = || de::Error::custom("an environment pair must be [NAME, value]");
        let scalar = |what| Required(Scalar { what, source: self.source });
        let name = seq.next_element_seed(scalar("a variable name"))?.ok_or_else(bad)?;
        let value = seq.next_element_seed(scalar("a variable value"))?.ok_or_else(bad)?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(bad());
        }
        Ok(DockerEnvVar::Set(name, value))
    }
}
