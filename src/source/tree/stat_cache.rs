//! The stat cache of a tree hash: the digests of files whose stat data has not changed since
//! the last walk, so that an unchanged tree is hashed without reading its files.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::path_hash::{PathMap, path_map};
use super::{FileMode, FileStamp};

/// Files whose stat data changed less than this before the cache was written are rehashed
/// next time: a write within the file system's timestamp granularity would not show.
pub(super) const RACY_WINDOW_NS: i64 = 2_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StatKey {
    pub(super) size: u64,
    pub(super) mtime_ns: i64,
    pub(super) ctime_ns: i64,
    pub(super) ino: u64,
    pub(super) mode: u32,
}

impl StatKey {
    pub(super) fn stamp(&self) -> FileStamp {
        FileStamp { size: self.size, mtime_ns: self.mtime_ns, ctime_ns: self.ctime_ns, ino: self.ino }
    }

    pub(super) fn of(st: &libc::stat64) -> StatKey {
        StatKey {
            size: st.st_size as u64,
            mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
            ctime_ns: st.st_ctime * 1_000_000_000 + st.st_ctime_nsec,
            ino: st.st_ino,
            mode: st.st_mode,
        }
    }
}

/// Cached digests of one tree, by relative path, valid while the stat data is unchanged.
#[derive(Debug, Default)]
pub(super) struct StatCache {
    pub(super) written_ns: i64,
    pub(super) entries: PathMap<Vec<u8>, (StatKey, FileMode, [u8; 32])>,
}

const STAT_CACHE_MAGIC: &[u8] = b"lockstep-statcache/v1\n";

impl StatCache {
    pub(super) fn load(path: &Path) -> StatCache {
        fs::read(path).ok().and_then(|b| StatCache::decode(&b)).unwrap_or_default()
    }

    pub(super) fn lookup(&self, rel: &[u8], key: &StatKey) -> Option<(FileMode, [u8; 32])> {
        let (cached, mode, sha) = self.entries.get(rel)?;
        let racy = key.mtime_ns >= self.written_ns - RACY_WINDOW_NS || key.ctime_ns >= self.written_ns - RACY_WINDOW_NS;
        (cached == key && !racy).then_some((*mode, *sha))
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(STAT_CACHE_MAGIC.len() + 16 + self.entries.len() * 120);
        out.extend_from_slice(STAT_CACHE_MAGIC);
        out.extend_from_slice(&self.written_ns.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for (path, (k, mode, sha)) in &self.entries {
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path);
            out.extend_from_slice(&k.size.to_le_bytes());
            out.extend_from_slice(&k.mtime_ns.to_le_bytes());
            out.extend_from_slice(&k.ctime_ns.to_le_bytes());
            out.extend_from_slice(&k.ino.to_le_bytes());
            out.extend_from_slice(&k.mode.to_le_bytes());
            out.push(mode.code());
            out.extend_from_slice(sha);
        }
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<StatCache> {
        let mut r = bytes.strip_prefix(STAT_CACHE_MAGIC)?;
        fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, tail) = r.split_at_checked(n)?;
            *r = tail;
            Some(head)
        }
        fn u64_of(r: &mut &[u8]) -> Option<u64> {
            Some(u64::from_le_bytes(take(r, 8)?.try_into().ok()?))
        }
        let written_ns = u64_of(&mut r)? as i64;
        let count = u64_of(&mut r)? as usize;
        let mut entries = path_map(count.min(1 << 20));
        for _ in 0..count {
            let len = u32::from_le_bytes(take(&mut r, 4)?.try_into().ok()?) as usize;
            let path = take(&mut r, len)?.to_vec();
            let key = StatKey {
                size: u64_of(&mut r)?,
                mtime_ns: u64_of(&mut r)? as i64,
                ctime_ns: u64_of(&mut r)? as i64,
                ino: u64_of(&mut r)?,
                mode: u32::from_le_bytes(take(&mut r, 4)?.try_into().ok()?),
            };
            let mode = FileMode::from_code(take(&mut r, 1)?[0])?;
            let sha: [u8; 32] = take(&mut r, 32)?.try_into().ok()?;
            entries.insert(path, (key, mode, sha));
        }
        r.is_empty().then_some(StatCache { written_ns, entries })
    }
}

pub(super) fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}
