//! sha256 digests of bytes and files, and their hex form.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

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

/// The sha256 of a file's content.
pub fn sha256_file(path: &Path) -> io::Result<([u8; 32], u64)> {
    sha256_reader(fs::File::open(path)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
