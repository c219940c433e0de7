//! The safe extraction target: every write relative to a descriptor of its parent, no link
//! followed, and the links checked against the extracted tree at the end.

use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{ArchiveError, MAX_DEPTH, MAX_ENTRIES, MAX_NAME, MAX_PATH};

/// The target of an extraction, with the checks that keep every write inside it.
///
/// Every entry is made relative to a descriptor of its parent directory, reached from the
/// root's descriptor one component at a time with `O_NOFOLLOW`: no link the archive made is
/// followed while extracting, whatever it points to. Where the links point is checked once
/// everything is in place ([`SafeDest::finish`]), against the tree as extracted.
pub(super) struct SafeDest {
    archive: PathBuf,
    format: &'static str,
    root: PathBuf,
    root_fd: OwnedFd,
    /// The directories of the last entry, from the root down: archives list siblings
    /// together, so most entries reuse their parent's descriptor.
    open: Vec<(Vec<u8>, OwnedFd)>,
    /// Every link made, relative to the root.
    links: Vec<PathBuf>,
    buf: Vec<u8>,
    pub(super) written: u64,
    entries: u64,
    pub(super) max_bytes: u64,
}

/// What is at a path of a tree, without following a link there.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A directory.
    Dir,
    /// A link, with its target.
    Link(Vec<u8>),
    /// A file, or anything else that is not a directory.
    File,
    /// Nothing.
    Missing,
}

/// Whether following the link at `link` (relative to a tree's root, `/`-separated) keeps
/// within the tree, resolving each component as the kernel does against what `lookup` says
/// is there (`lookup` gets `/`-separated relative paths, `""` for the root). Past a
/// component that is missing or a file, the rest is taken lexically, as if every name were a
/// directory: anything may be made there later.
pub(crate) fn link_stays_inside(link: &[u8], mut lookup: impl FnMut(&[u8]) -> io::Result<Node>) -> io::Result<bool> {
    const MAX_HOPS: usize = 40;
    let Node::Link(target) = lookup(link)? else { return Ok(true) };
    let mut at: Vec<Vec<u8>> = link.split(|b| *b == b'/').map(<[u8]>::to_vec).collect();
    at.pop();
    at.retain(|c| !c.is_empty() && c != b".");
    let mut pending: std::collections::VecDeque<Vec<u8>> = std::collections::VecDeque::new();
    let push_target = |pending: &mut std::collections::VecDeque<Vec<u8>>, target: &[u8]| {
        if target.is_empty() || target.starts_with(b"/") {
            return false;
        }
        for comp in target.split(|b| *b == b'/').rev() {
            pending.push_front(comp.to_vec());
        }
        true
    };
    if !push_target(&mut pending, &target) {
        return Ok(false);
    }
    let (mut hops, mut lexical) = (0, false);
    while let Some(comp) = pending.pop_front() {
        match comp.as_slice() {
            b"" | b"." => {}
            b".." => {
                if at.pop().is_none() {
                    return Ok(false);
                }
            }
            _ if lexical => at.push(comp),
            _ => {
                at.push(comp);
                match lookup(&at.join(&b'/'))? {
                    Node::Dir => {}
                    Node::Link(target) => {
                        at.pop();
                        hops += 1;
                        if hops > MAX_HOPS || !push_target(&mut pending, &target) {
                            return Ok(false);
                        }
                    }
                    Node::File | Node::Missing => lexical = true,
                }
            }
        }
    }
    Ok(true)
}

/// Why a relative, `/`-separated entry name cannot be extracted as it is, if it cannot.
pub(crate) fn name_problem(raw: &[u8]) -> Option<&'static str> {
    if raw.contains(&0) {
        return Some("has a NUL byte in its name");
    }
    if raw.starts_with(b"/") {
        return Some("has an absolute path");
    }
    if raw.len() > MAX_PATH {
        return Some("has a path longer than 4095 bytes");
    }
    let mut depth = 0;
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Some("climbs out with '..'"),
            c if c.len() > MAX_NAME => return Some("has a name longer than 255 bytes"),
            _ => depth += 1,
        }
    }
    if depth > MAX_DEPTH {
        return Some("is nested more than 256 directories deep");
    }
    None
}

/// An entry name for a message: a very long one is cut, with its length.
pub(crate) fn shown(name: &str) -> String {
    const SHOWN: usize = 100;
    if name.len() <= SHOWN {
        return name.to_string();
    }
    let cut = (0..=SHOWN).rev().find(|i| name.is_char_boundary(*i)).unwrap_or(0);
    format!("{}... ({} bytes)", &name[..cut], name.len())
}

fn cstring(name: &[u8]) -> CString {
    CString::new(name).expect("entry names are checked for NUL bytes")
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid C string; the descriptor returned is owned by nothing else.
    let fd = check(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_NOFOLLOW | libc::O_CLOEXEC, mode) })?;
    // SAFETY: `fd` was just opened and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_dir_at(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// What is at `name` in `dir`, not following a link.
fn node_at(dir: RawFd, name: &CStr) -> io::Result<Node> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is written by fstatat before it is read, and only when it succeeds.
    let ret = unsafe { libc::fstatat(dir, name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::NotFound { Ok(Node::Missing) } else { Err(e) };
    }
    // SAFETY: fstatat succeeded.
    let st = unsafe { st.assume_init() };
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Node::Dir,
        libc::S_IFLNK => {
            let mut buf = vec![0u8; libc::PATH_MAX as usize];
            // SAFETY: `buf` has `buf.len()` writable bytes.
            let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            buf.truncate(n as usize);
            Node::Link(buf)
        }
        _ => Node::File,
    })
}

impl SafeDest {
    pub(super) fn new(
        archive: &Path,
        format: &'static str,
        dest: &Path,
        max_bytes: u64,
    ) -> Result<SafeDest, ArchiveError> {
        let io = |e| ArchiveError::Io { archive: archive.to_path_buf(), path: dest.to_path_buf(), source: e };
        fs::create_dir_all(dest).map_err(io)?;
        let root = fs::canonicalize(dest).map_err(io)?;
        let root_fd = open_dir_at(libc::AT_FDCWD, &cstring(root.as_os_str().as_bytes())).map_err(io)?;
        Ok(SafeDest {
            archive: archive.to_path_buf(),
            format,
            root,
            root_fd,
            open: Vec::new(),
            links: Vec::new(),
            buf: vec![0; 256 << 10],
            written: 0,
            entries: 0,
            max_bytes,
        })
    }

    pub(super) fn io(&self, path: &Path, source: io::Error) -> ArchiveError {
        ArchiveError::Io { archive: self.archive.clone(), path: path.to_path_buf(), source }
    }

    pub(super) fn io_at(&self, comps: &[Vec<u8>], source: io::Error) -> ArchiveError {
        self.io(&self.root.join(OsStr::from_bytes(&comps.join(&b'/'))), source)
    }

    pub(super) fn unsafe_entry(&self, name: &str, reason: &'static str) -> ArchiveError {
        ArchiveError::Unsafe { archive: self.archive.clone(), entry: shown(name), reason }
    }

    /// The archive's bytes could not be read: a truncated or damaged archive.
    pub(super) fn corrupt(&self, name: &str, source: io::Error) -> ArchiveError {
        self.damaged(format!("entry '{}': {source}", shown(name)))
    }

    pub(super) fn damaged(&self, message: String) -> ArchiveError {
        ArchiveError::Corrupt { archive: self.archive.clone(), format: self.format, message }
    }

    pub(super) fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries { archive: self.archive.clone(), limit: MAX_ENTRIES });
        }
        Ok(())
    }

    /// The entry's components, refusing names that cannot be extracted inside the root.
    pub(super) fn components(&self, name: &str, raw: &[u8]) -> Result<Vec<Vec<u8>>, ArchiveError> {
        if let Some(reason) = name_problem(raw) {
            return Err(self.unsafe_entry(name, reason));
        }
        Ok(raw.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".").map(<[u8]>::to_vec).collect())
    }

    /// A descriptor of the directory `dirs` under the root, made where missing; never through
    /// a link, and never over a file.
    pub(super) fn dir_fd(&mut self, name: &str, dirs: &[Vec<u8>]) -> Result<RawFd, ArchiveError> {
        let common = self.open.iter().zip(dirs).take_while(|((open, _), want)| open == *want).count();
        self.open.truncate(common);
        for (depth, comp) in dirs.iter().enumerate().skip(common) {
            let parent = self.open.last().map_or(self.root_fd.as_raw_fd(), |(_, fd)| fd.as_raw_fd());
            let c = cstring(comp);
            let fd = match open_dir_at(parent, &c) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // SAFETY: `c` is a valid C string.
                    match check(unsafe { libc::mkdirat(parent, c.as_ptr(), 0o777) }) {
                        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                            return Err(self.io_at(&dirs[..=depth], e));
                        }
                        _ => open_dir_at(parent, &c),
                    }
                }
                other => other,
            };
            let fd = match fd {
                Ok(fd) => fd,
                Err(e) => {
                    return Err(match node_at(parent, &c) {
                        Ok(Node::Link(_)) => self.unsafe_entry(name, "passes through a symbolic link"),
                        Ok(Node::File) => self.unsafe_entry(name, "needs a directory where the archive has a file"),
                        _ => self.io_at(&dirs[..=depth], e),
                    });
                }
            };
            self.open.push((comp.clone(), fd));
        }
        Ok(self.open.last().map_or(self.root_fd.as_raw_fd(), |(_, fd)| fd.as_raw_fd()))
    }

    /// Make `comps`' last component with `make`, replacing an earlier entry of that name (it
    /// is replaced, never written through) unless it is a directory.
    pub(super) fn create<T>(
        &mut self,
        name: &str,
        comps: &[Vec<u8>],
        make: impl Fn(RawFd, &CStr) -> io::Result<T>,
    ) -> Result<T, ArchiveError> {
        let Some((leaf, dirs)) = comps.split_last() else {
            return Err(self.unsafe_entry(name, "has an empty name"));
        };
        let dir = self.dir_fd(name, dirs)?;
        let leaf = cstring(leaf);
        match make(dir, &leaf) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if matches!(node_at(dir, &leaf), Ok(Node::Dir)) {
                    return Err(self.unsafe_entry(name, "is a file where the archive has a directory"));
                }
                // SAFETY: `leaf` is a valid C string.
                check(unsafe { libc::unlinkat(dir, leaf.as_ptr(), 0) }).map_err(|e| self.io_at(comps, e))?;
                make(dir, &leaf).map_err(|e| self.io_at(comps, e))
            }
            other => other.map_err(|e| self.io_at(comps, e)),
        }
    }

    /// A file of the `size` bytes the archive declares: fewer or more is a damaged archive.
    pub(super) fn file(
        &mut self,
        name: &str,
        raw: &[u8],
        content: &mut dyn Read,
        executable: bool,
        size: u64,
    ) -> Result<(), ArchiveError> {
        let comps = self.components(name, raw)?;
        let mode = if executable { 0o755 } else { 0o644 };
        let mut file = File::from(self.create(name, &comps, |dir, leaf| {
            open_at(dir, leaf, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode)
        })?);
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.copy(name, &comps, content, &mut file, &mut buf, size);
        self.buf = buf;
        if result.is_err() {
            drop(file);
            let _ = fs::remove_file(self.root.join(OsStr::from_bytes(&comps.join(&b'/'))));
        }
        result
    }

    pub(super) fn copy(
        &mut self,
        name: &str,
        comps: &[Vec<u8>],
        content: &mut dyn Read,
        file: &mut File,
        buf: &mut [u8],
        size: u64,
    ) -> Result<(), ArchiveError> {
        let mut copied = 0;
        loop {
            let n = match content.read(buf) {
                Ok(0) if copied == size => return Ok(()),
                Ok(0) => {
                    return Err(self.damaged(format!("entry '{}' is truncated: {copied} of {size} bytes", shown(name))));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.corrupt(name, e)),
            };
            if n as u64 > self.max_bytes - self.written {
                return Err(ArchiveError::TooLarge { archive: self.archive.clone(), limit: self.max_bytes });
            }
            copied += n as u64;
            if copied > size {
                return Err(
                    self.damaged(format!("entry '{}' holds more than the {size} bytes it declares", shown(name)))
                );
            }
            self.written += n as u64;
            file.write_all(&buf[..n]).map_err(|e| self.io_at(comps, e))?;
        }
    }

    pub(super) fn dir(&mut self, name: &str, raw: &[u8]) -> Result<(), ArchiveError> {
        let comps = self.components(name, raw)?;
        self.dir_fd(name, &comps)?;
        Ok(())
    }

    pub(super) fn symlink(&mut self, name: &str, raw: &[u8], target: &[u8]) -> Result<(), ArchiveError> {
        let comps = self.components(name, raw)?;
        if target.is_empty() || target.starts_with(b"/") {
            return Err(self.unsafe_entry(name, "is a link to an absolute path"));
        }
        if target.contains(&0) || target.len() > MAX_PATH {
            return Err(self.unsafe_entry(name, "is a link with an invalid target"));
        }
        let target = cstring(target);
        self.create(name, &comps, |dir, leaf| {
            // SAFETY: both are valid C strings.
            check(unsafe { libc::symlinkat(target.as_ptr(), dir, leaf.as_ptr()) }).map(drop)
        })?;
        self.links.push(PathBuf::from(OsStr::from_bytes(&comps.join(&b'/'))));
        Ok(())
    }

    /// A hard link becomes a copy of a file extracted earlier, reached without following any
    /// link (never a link to anything else).
    pub(super) fn hard_link(&mut self, name: &str, raw: &[u8], target: &[u8]) -> Result<(), ArchiveError> {
        let outside = || self.unsafe_entry(name, "is a hard link to a file outside the archive");
        let comps = self.components(name, raw)?;
        let source_comps = self.components(name, target).map_err(|_| outside())?;
        let Some((leaf, dirs)) = source_comps.split_last() else { return Err(outside()) };
        let mut dir: Option<OwnedFd> = None;
        for comp in dirs {
            let parent = dir.as_ref().map_or(self.root_fd.as_raw_fd(), AsRawFd::as_raw_fd);
            dir = Some(open_dir_at(parent, &cstring(comp)).map_err(|_| outside())?);
        }
        let parent = dir.as_ref().map_or(self.root_fd.as_raw_fd(), AsRawFd::as_raw_fd);
        let mut source = File::from(open_at(parent, &cstring(leaf), libc::O_RDONLY, 0).map_err(|_| outside())?);
        let meta = source.metadata().map_err(|e| self.io_at(&source_comps, e))?;
        if !meta.is_file() {
            return Err(outside());
        }
        if meta.len() > self.max_bytes - self.written {
            return Err(ArchiveError::TooLarge { archive: self.archive.clone(), limit: self.max_bytes });
        }
        let mut file = File::from(self.create(name, &comps, |dir, leaf| {
            open_at(dir, leaf, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o644)
        })?);
        io::copy(&mut source, &mut file).map_err(|e| self.io_at(&comps, e))?;
        file.set_permissions(meta.permissions()).map_err(|e| self.io_at(&comps, e))?;
        self.written += meta.len();
        Ok(())
    }

    /// Remove the links made so far (those still there as links): after an error, what
    /// stays in the target must not point outside it, and links are checked only at the end.
    pub(super) fn remove_links(&self) {
        for link in &self.links {
            let comps: Vec<&[u8]> = link.as_os_str().as_bytes().split(|b| *b == b'/').collect();
            let Some((leaf, dirs)) = comps.split_last() else { continue };
            // Its directories, not through links; gone or replaced, and the link is gone too.
            let dir = dirs.iter().try_fold(None::<OwnedFd>, |dir, comp| {
                let parent = dir.as_ref().map_or(self.root_fd.as_raw_fd(), AsRawFd::as_raw_fd);
                open_dir_at(parent, &cstring(comp)).ok().map(Some)
            });
            let Some(dir) = dir else { continue };
            let parent = dir.as_ref().map_or(self.root_fd.as_raw_fd(), AsRawFd::as_raw_fd);
            let leaf = cstring(leaf);
            if matches!(node_at(parent, &leaf), Ok(Node::Link(_))) {
                // SAFETY: `leaf` is a valid C string.
                unsafe { libc::unlinkat(parent, leaf.as_ptr(), 0) };
            }
        }
    }

    /// Check, with everything extracted, that every link the archive made resolves inside
    /// the root: a link may point through other links (`y -> x/l/..` with `x/l -> ..`).
    pub(super) fn finish(&self) -> Result<(), ArchiveError> {
        for link in &self.links {
            let inside = link_stays_inside(link.as_os_str().as_bytes(), |rel| {
                let mut dir: Option<OwnedFd> = None;
                let mut comps = rel.split(|b| *b == b'/').peekable();
                while let Some(comp) = comps.next() {
                    let parent = dir.as_ref().map_or(self.root_fd.as_raw_fd(), AsRawFd::as_raw_fd);
                    if comps.peek().is_none() {
                        return node_at(parent, &cstring(comp));
                    }
                    dir = Some(open_dir_at(parent, &cstring(comp))?);
                }
                Ok(Node::Dir)
            })
            .map_err(|e| self.io(&self.root.join(link), e))?;
            if !inside {
                return Err(self.unsafe_entry(&link.to_string_lossy(), "is a link pointing outside the archive"));
            }
        }
        Ok(())
    }
}
