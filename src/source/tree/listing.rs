//! One directory of a walk, read with libc: every name in one buffer, and each file's stat
//! data taken relative to the open directory. A walk of 10,000 files makes no allocation per
//! entry beyond the path it keeps (`std::fs::read_dir` makes three: the entry's name, its copy,
//! and the joined path).

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An open directory and its entries, `.` and `..` left out.
pub(super) struct Listing {
    dir: *mut libc::DIR,
    /// The names, each followed by a NUL.
    names: Vec<u8>,
    /// Per entry: where its name starts in `names`, its length and its `d_type`.
    entries: Vec<(usize, usize, u8)>,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    File,
    Link,
    Other,
}

impl Kind {
    fn of_mode(mode: libc::mode_t) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFREG => Kind::File,
            libc::S_IFLNK => Kind::Link,
            _ => Kind::Other,
        }
    }
}

impl Listing {
    /// Open `path` (following it if it is a link, as a walk's root may be) and read its names.
    pub(super) fn read(path: &Path) -> io::Result<Listing> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
        // SAFETY: opendir reads a NUL-terminated path; the DIR it returns is owned by the listing.
        let dir = unsafe { libc::opendir(c_path.as_ptr()) };
        if dir.is_null() {
            return Err(io::Error::last_os_error());
        }
        let mut listing = Listing { dir, names: Vec::with_capacity(2048), entries: Vec::new() };
        loop {
            // readdir gives NULL both at the end and on an error; only errno tells them apart.
            // SAFETY: errno is this thread's; readdir64 reads the open DIR, and the entry it
            // returns stays valid until the next call, before which its name is copied.
            let name = unsafe {
                *libc::__errno_location() = 0;
                let entry = libc::readdir64(listing.dir);
                if entry.is_null() {
                    let err = io::Error::last_os_error();
                    if err.raw_os_error() == Some(0) {
                        break;
                    }
                    return Err(err);
                }
                let name = CStr::from_ptr((*entry).d_name.as_ptr()).to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let start = listing.names.len();
                listing.names.extend_from_slice(name);
                listing.names.push(0);
                (start, name.len(), (*entry).d_type)
            };
            listing.entries.push(name);
        }
        Ok(listing)
    }

    /// How many entries there are.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The name of entry `i`.
    pub(super) fn name(&self, i: usize) -> &OsStr {
        let (start, len, _) = self.entries[i];
        OsStr::from_bytes(&self.names[start..start + len])
    }

    /// Whether an entry is called `name`.
    pub(super) fn has(&self, name: impl AsRef<OsStr>) -> bool {
        let name = name.as_ref();
        (0..self.len()).any(|i| self.name(i) == name)
    }

    /// What entry `i` is: from the directory itself where the file system says, else from its
    /// stat data.
    pub(super) fn kind(&self, i: usize) -> io::Result<Kind> {
        Ok(match self.entries[i].2 {
            libc::DT_DIR => Kind::Dir,
            libc::DT_REG => Kind::File,
            libc::DT_LNK => Kind::Link,
            libc::DT_UNKNOWN => Kind::of_mode(self.stat(i)?.st_mode),
            _ => Kind::Other,
        })
    }

    /// The stat data of entry `i` itself (a link is not followed), looked up in the open
    /// directory: no path is resolved again.
    pub(super) fn stat(&self, i: usize) -> io::Result<libc::stat64> {
        let (start, _, _) = self.entries[i];
        // SAFETY: the name is NUL-terminated in `names`; fstatat64 writes only into `st`, and
        // the DIR stays open for as long as `self` lives.
        unsafe {
            let mut st: libc::stat64 = std::mem::zeroed();
            let name = self.names[start..].as_ptr().cast();
            if libc::fstatat64(libc::dirfd(self.dir), name, &mut st, libc::AT_SYMLINK_NOFOLLOW) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(st)
        }
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        // SAFETY: the DIR was opened by `read` and is closed only here.
        unsafe {
            libc::closedir(self.dir);
        }
    }
}
