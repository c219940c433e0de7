//! A file's content copied into a new file: a reflink (`FICLONE`) where the file system shares
//! extents (btrfs, XFS, bcachefs), else a plain copy.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// How the content got into the new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// The file system shares the extents: no byte was written.
    Reflink,
    /// The bytes were copied.
    Copy,
}

/// Put the content of `from` into `to` (an empty file open for writing): a reflink when the
/// file system can, a copy otherwise. A file system that cannot share extents answers at
/// once, so trying costs one system call.
pub fn clone_or_copy(from: &mut File, to: &mut File) -> io::Result<Copied> {
    // SAFETY: both descriptors are open for the duration of the call; FICLONE reads only
    // the source descriptor passed as its argument.
    let rc = unsafe { libc::ioctl(to.as_raw_fd(), libc::FICLONE, from.as_raw_fd()) };
    if rc == 0 {
        return Ok(Copied::Reflink);
    }
    io::copy(from, to)?;
    Ok(Copied::Copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn the_new_file_holds_the_same_bytes_either_way() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"content of a").unwrap();
        let mut from = File::open(&a).unwrap();
        let mut to = File::create(&b).unwrap();
        clone_or_copy(&mut from, &mut to).unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"content of a");
        fs::write(&a, b"changed").unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"content of a", "the copy does not follow the original");
    }
}
