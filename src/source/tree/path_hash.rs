//! The hash of the path-keyed maps of a walk (the stat cache, the stamps of a run's files):
//! the multiply-rotate hash rustc uses for its own tables, a few times faster than the
//! standard SipHash on short keys. The keys are the project's own file names, so hash
//! flooding is no concern.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by paths (or their bytes), hashed with [`PathHasher`].
pub(super) type PathMap<K, V> = HashMap<K, V, BuildHasherDefault<PathHasher>>;

/// An empty [`PathMap`] with room for `n` entries.
pub(super) fn path_map<K, V>(n: usize) -> PathMap<K, V> {
    HashMap::with_capacity_and_hasher(n, Default::default())
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Hashes 8 bytes at a time: rotate, xor, multiply.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PathHasher(u64);

impl PathHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn paths_that_differ_anywhere_hash_apart() {
        let build = BuildHasherDefault::<PathHasher>::default();
        let names = ["d000/f000.bin", "d000/f001.bin", "d001/f000.bin", "d000/f000.bin\0", "a", "b", ""];
        let hashes: std::collections::HashSet<u64> = names.iter().map(|n| build.hash_one(n.as_bytes())).collect();
        assert_eq!(hashes.len(), names.len());
        let mut map = path_map(2);
        map.insert(b"x/y".to_vec(), 1);
        assert_eq!(map.get(b"x/y".as_slice()), Some(&1));
        assert_eq!(map.get(b"x/z".as_slice()), None);
    }
}
