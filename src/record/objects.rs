//! The kept outputs: every run's output files in the store, content-addressed
//! (`<store>/objects/sha256/<2 hex>/<62 hex>`), so that a later run overwriting a file in place
//! takes nothing from an earlier one, and identical files are stored once.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::OutputFile;
use crate::support::digest;
use crate::support::ids::random_hex;
use crate::support::reflink;

/// The default limit of [`KeepOutputs`]: files larger than this are recorded by digest only.
pub const DEFAULT_KEEP_LIMIT: u64 = 100 << 20;

/// Which of a run's outputs the store keeps a copy of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepOutputs {
    /// None (`--no-keep-outputs`): the record has their digests only.
    Off,
    /// Each file of at most this many bytes; larger ones are recorded by digest only.
    UpTo(u64),
}

impl Default for KeepOutputs {
    fn default() -> KeepOutputs {
        KeepOutputs::UpTo(DEFAULT_KEEP_LIMIT)
    }
}

/// The objects directory of a store: one read-only file per content, named by its sha256.
#[derive(Debug, Clone)]
pub struct Objects {
    dir: PathBuf,
}

/// What keeping a run's outputs left out.
#[derive(Debug, Default)]
pub struct NotKept {
    /// Files above the size limit, by path, with their sizes.
    pub above_limit: Vec<(String, u64)>,
    /// Files that could not be kept (a full disk, a file removed meanwhile), with why.
    pub failed: Vec<(String, io::Error)>,
}

impl Objects {
    /// The objects of the store at `store_root`.
    pub fn in_store(store_root: &Path) -> Objects {
        Objects { dir: store_root.join("objects").join("sha256") }
    }

    /// Where the content with this digest is kept; `None` when `sha256` is not 64 lower-case
    /// hex digits (a record's digest never becomes a path that leaves the directory).
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        let valid = sha256.len() == 64 && sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| self.dir.join(&sha256[..2]).join(&sha256[2..]))
    }

    /// The kept copy of a recorded output, when the store has it.
    pub fn kept(&self, out: &OutputFile) -> Option<PathBuf> {
        self.path(&out.sha256).filter(|p| out.kept && p.is_file())
    }

    /// Keep the outputs of a run, found under `dir`, as `policy` says, and mark each kept one
    /// in the record. Files in the store already (`in_store`: a run's own `outputs/`) are
    /// hard-linked with their object, so that each content takes its space once; files in a
    /// project are reflinked or copied, so that the next run can change them freely. A file
    /// that changed since it was hashed is recorded with the content that was kept.
    pub fn keep(&self, dir: &Path, outputs: &mut [OutputFile], policy: KeepOutputs, in_store: bool) -> NotKept {
        let mut not_kept = NotKept::default();
        let KeepOutputs::UpTo(limit) = policy else { return not_kept };
        for out in outputs.iter_mut() {
            if out.size > limit {
                not_kept.above_limit.push((out.path.clone(), out.size));
                continue;
            }
            let file = dir.join(&out.path);
            let kept = match in_store {
                true => self.link(&file, out),
                false => self.copy(&file, out),
            };
            match kept {
                Ok(()) => out.kept = true,
                Err(e) => not_kept.failed.push((out.path.clone(), e)),
            }
        }
        not_kept
    }

    /// Keep a copy (a reflink where the file system can) of a file of a project.
    fn copy(&self, file: &Path, out: &mut OutputFile) -> io::Result<()> {
        let dest = self.dest(&out.sha256)?;
        if dest.is_file() {
            return Ok(());
        }
        let parent = dest.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent)?;
        let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(parent)?;
        reflink::clone_or_copy(&mut File::open(file)?, tmp.as_file_mut())?;
        let dest = self.checked_dest(tmp.path(), out)?;
        tmp.as_file().set_permissions(fs::Permissions::from_mode(0o444))?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        Ok(())
    }

    /// Keep a file of the store by a hard link: to its object when the content is kept
    /// already (the file then becomes that object), as the object otherwise.
    fn link(&self, file: &Path, out: &mut OutputFile) -> io::Result<()> {
        let dest = self.dest(&out.sha256)?;
        if dest.is_file() {
            let beside = file.with_file_name(format!(".tmp-{}", random_hex(8)));
            return fs::hard_link(&dest, &beside).and_then(|()| rename_or_remove(&beside, file));
        }
        let parent = dest.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent)?;
        let tmp = parent.join(format!(".tmp-{}", random_hex(8)));
        if fs::hard_link(file, &tmp).is_err() {
            // Another file system under the store (a mount): a copy keeps it all the same.
            return self.copy(file, out);
        }
        let dest = match self.checked_dest(&tmp, out) {
            Ok(dest) => dest,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444))?;
        rename_or_remove(&tmp, &dest)
    }

    fn dest(&self, sha256: &str) -> io::Result<PathBuf> {
        self.path(sha256).ok_or_else(|| io::Error::other(format!("'{sha256}' is not a sha256")))
    }

    /// The object path of what `tmp` holds: the recorded digest, unless the file changed
    /// after it was hashed, in which case the record takes the digest of what was kept.
    fn checked_dest(&self, tmp: &Path, out: &mut OutputFile) -> io::Result<PathBuf> {
        let (sha, size) = digest::sha256_file(tmp)?;
        let sha = digest::hex(&sha);
        if sha == out.sha256 {
            return self.dest(&out.sha256);
        }
        out.sha256 = sha;
        out.size = size;
        let dest = self.dest(&out.sha256)?;
        fs::create_dir_all(dest.parent().unwrap_or(&self.dir))?;
        Ok(dest)
    }
}

/// Rename `from` to `to`, removing `from` when the rename fails.
fn rename_or_remove(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to).inspect_err(|_| {
        let _ = fs::remove_file(from);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn output(dir: &Path, path: &str, content: &str) -> OutputFile {
        fs::write(dir.join(path), content).unwrap();
        OutputFile {
            path: path.into(),
            size: content.len() as u64,
            sha256: digest::sha256_hex(content.as_bytes()),
            kept: false,
        }
    }

    #[test]
    fn copies_outlive_the_files_and_identical_contents_are_kept_once() {
        let (store, project) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let objects = Objects::in_store(store.path());
        let mut outs = vec![output(project.path(), "a.json", "{}"), output(project.path(), "b.json", "{}")];
        let not_kept = objects.keep(project.path(), &mut outs, KeepOutputs::default(), false);
        assert!(not_kept.above_limit.is_empty() && not_kept.failed.is_empty());
        assert!(outs.iter().all(|o| o.kept));
        fs::write(project.path().join("a.json"), "overwritten").unwrap();
        let kept = objects.kept(&outs[0]).unwrap();
        assert_eq!(fs::read_to_string(&kept).unwrap(), "{}");
        assert_eq!(kept, objects.kept(&outs[1]).unwrap(), "one object for both");
        let all: Vec<_> = walkdir(store.path());
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o444);
    }

    #[test]
    fn files_in_the_store_share_their_object() {
        let (store, run_a, run_b) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let objects = Objects::in_store(store.path());
        let mut a = vec![output(run_a.path(), "m.bin", "model")];
        let mut b = vec![output(run_b.path(), "m.bin", "model")];
        objects.keep(run_a.path(), &mut a, KeepOutputs::default(), true);
        objects.keep(run_b.path(), &mut b, KeepOutputs::default(), true);
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        let object = objects.kept(&a[0]).unwrap();
        assert_eq!(ino(&object), ino(&run_a.path().join("m.bin")));
        assert_eq!(ino(&object), ino(&run_b.path().join("m.bin")), "the second copy became a link");
        assert_eq!(fs::read_to_string(run_b.path().join("m.bin")).unwrap(), "model");
    }

    #[test]
    fn large_files_and_opted_out_runs_keep_digests_only() {
        let (store, project) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let objects = Objects::in_store(store.path());
        let mut outs = vec![output(project.path(), "small", "1"), output(project.path(), "big", "12345")];
        let not_kept = objects.keep(project.path(), &mut outs, KeepOutputs::UpTo(4), false);
        assert_eq!(not_kept.above_limit, [("big".to_string(), 5)]);
        assert!(outs[0].kept && !outs[1].kept);
        assert!(objects.kept(&outs[1]).is_none());
        let mut outs = vec![output(project.path(), "other", "2")];
        objects.keep(project.path(), &mut outs, KeepOutputs::Off, false);
        assert!(!outs[0].kept);
    }

    #[test]
    fn a_file_changed_after_it_was_hashed_is_recorded_as_kept() {
        let (store, project) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let objects = Objects::in_store(store.path());
        let mut outs = vec![output(project.path(), "a", "first")];
        fs::write(project.path().join("a"), "second!").unwrap();
        objects.keep(project.path(), &mut outs, KeepOutputs::default(), false);
        assert_eq!((outs[0].sha256.as_str(), outs[0].size), (digest::sha256_hex(b"second!").as_str(), 7));
        assert_eq!(fs::read_to_string(objects.kept(&outs[0]).unwrap()).unwrap(), "second!");
    }

    #[test]
    fn digests_that_are_not_sha256_name_no_object() {
        let objects = Objects::in_store(Path::new("/s"));
        assert!(objects.path(&"a".repeat(64)).is_some());
        for bad in ["../../../../etc/passwd", &"A".repeat(64), &"a".repeat(63), ""] {
            assert!(objects.path(bad).is_none(), "{bad}");
        }
    }

    fn walkdir(root: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() { dirs.push(path) } else { files.push(path) }
            }
        }
        files
    }
}
