//! Small file-system helpers shared by the stages: atomic writes, hex digests.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Write `bytes` to `path` so that readers see either the old file or the whole new one.
///
/// The temporary file lives in the same directory, so the final rename never crosses a
/// file system and is atomic.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Lower-case hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// The sha256 of a byte string, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The sha256 of everything `reader` yields, and the number of bytes read.
pub fn sha256_reader(reader: impl Read) -> io::Result<([u8; 32], u64)> {
    sha256_reader_upto(reader, None)
}

/// The sha256 of a file whose size a `stat` just gave: reading stops at that size, which
/// saves the read that would only report the end of the file (one system call per file of a
/// large tree). A file that grows meanwhile changes its stat data, so it is hashed again next
/// time.
pub fn sha256_file_of_size(path: &Path, size: u64) -> io::Result<([u8; 32], u64)> {
    sha256_reader_upto(fs::File::open(path)?, Some(size))
}

fn sha256_reader_upto(mut reader: impl Read, size: Option<u64>) -> io::Result<([u8; 32], u64)> {
    thread_local! {
        // One buffer per thread: allocating (and zeroing) it per file costs more than hashing
        // a small file.
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 256 * 1024]);
    }
    BUF.with_borrow_mut(|buf| {
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        loop {
            if size.is_some_and(|size| total >= size) {
                break;
            }
            let n = match reader.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        Ok((hasher.finalize().into(), total))
    })
}

/// The sha256 of a file's content.
pub fn sha256_file(path: &Path) -> io::Result<([u8; 32], u64)> {
    sha256_reader(fs::File::open(path)?)
}

/// Milliseconds since the Unix epoch, MLflow's unit for timestamps.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Random lower-case hex, `bytes` bytes of entropy; run ids use 16 (MLflow's 32 hex digits).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    hex(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn random_hex_has_requested_length() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_hex(16));
    }
}
