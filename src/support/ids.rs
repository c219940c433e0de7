//! The ids lockstep shows to people: run ids, tree hashes and environment keys. Each is shown
//! by its first [`SHORT_LEN`] characters, through [`short`], which never panics on an id
//! shorter than that (a hand-edited record, a truncated name).

use std::fmt;

use serde::{Deserialize, Serialize};

/// How many characters of an id are shown where the whole would be noise.
pub const SHORT_LEN: usize = 12;

/// The first [`SHORT_LEN`] characters of `id`, or all of it when it is shorter.
pub fn short(id: &str) -> &str {
    id.char_indices().nth(SHORT_LEN).map_or(id, |(end, _)| &id[..end])
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as it is written in records.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as it is shown in messages and tables.
            pub fn short(&self) -> &str {
                short(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The id of a run: its directory name in the store and its MLflow run id.
    RunId
);
id_type!(
    /// The tree hash of a project's files, hex sha256 (see the README's "Tree hash").
    TreeHash
);
id_type!(
    /// The content key of a built environment, hex sha256: its directory in the cache.
    EnvKey
);

/// Random lower-case hex, `bytes` bytes of entropy; run ids use 16 (MLflow's 32 hex digits).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    super::digest::hex(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_has_requested_length() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_hex(16));
    }

    #[test]
    fn short_ids_never_panic() {
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("0123456789ab"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short(""), "");
        assert_eq!(short("ééééééééééééé"), "éééééééééééé", "cut on a character boundary");
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = RunId::from("0123456789abcdef0123");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"0123456789abcdef0123\"");
        let back: TreeHash = serde_json::from_str("\"ff00\"").unwrap();
        assert_eq!(back, "ff00");
        assert_eq!(id.short(), "0123456789ab");
        assert_eq!(EnvKey::from("k").to_string(), "k");
    }
}
