//! The scalars of an MLproject file as MLflow's Python reads them, and the seeds built on
//! them: a required scalar, a list of scalars, a value rejected where it stands.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::manifest::scalar::plain_scalar;

/// Deserialize a YAML scalar as the string MLflow's Python would see ([`plain_scalar`] for a
/// plain one, the text for a quoted or block one). Null becomes `None`; sequences and
/// mappings are errors naming `what`.
///
/// The scalar is read as a string, so that serde_yaml's YAML 1.2 typing never applies; a
/// plain scalar is told from a quoted one by where its text lies in `source`.
#[derive(Clone, Copy)]
pub(super) struct Scalar<'s> {
    pub(super) what: &'static str,
    pub(super) source: &'s str,
}

impl<'de> DeserializeSeed<'de> for Scalar<'_> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Scalar<'_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} as a single value", self.what)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        if written_plain(self.source, v) {
            plain_scalar(v).map_err(|e| E::custom(format!("{}: {e}", self.what)))
        } else {
            Ok(Some(v.to_string()))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        // Not a slice of the source: a block scalar, or a quoted one with escapes, or a
        // plain one folded over lines; text as written.
        Ok(Some(v.to_string()))
    }
}

/// Whether `v`, the text of a scalar, lies in `source` unquoted. serde_yaml hands out a
/// scalar's own bytes of the source when its text is them: a plain scalar, or a quoted one
/// without escapes, which is then preceded by its quote (a plain scalar never is).
fn written_plain(source: &str, v: &str) -> bool {
    let range = source.as_bytes().as_ptr_range();
    let (start, end) = (v.as_ptr(), v.as_ptr().wrapping_add(v.len()));
    if !(range.start <= start && end <= range.end) {
        return false;
    }
    let offset = start as usize - range.start as usize;
    !matches!(source.as_bytes()[..offset].last(), Some(b'"' | b'\''))
}

/// A scalar that must be present (not null).
pub(super) fn required<'de, A: MapAccess<'de>>(
    map: &mut A,
    what: &'static str,
    source: &str,
) -> Result<String, A::Error> {
    map.next_value_seed(Required(Scalar { what, source }))
}

/// A scalar that must be present (not null).
pub(super) struct Required<'s>(pub(super) Scalar<'s>);

impl<'de> DeserializeSeed<'de> for Required<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let what = self.0.what;
        self.0.deserialize(d)?.ok_or_else(|| de::Error::custom(format!("{what} is empty")))
    }
}

/// Reject the value about to be read with `message`, located at that value.
pub(super) struct Reject(pub(super) String);

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
pub(super) struct StringList<'s>(pub(super) Scalar<'s>);

impl<'de> DeserializeSeed<'de> for StringList<'_> {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringList<'_> {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} as a list", self.0.what)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(Required(self.0))? {
            out.push(item);
        }
        Ok(out)
    }
}
