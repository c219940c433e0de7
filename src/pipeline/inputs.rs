//! Hashing a run's `path` inputs that are not part of its project: a file by its content, a
//! directory by the tree hash of its files (nothing left out: a data directory has no store).

use std::path::Path;

use super::RunError;
use crate::record::{InputDigest, InputKind};
use crate::source::{self, Exclusions};
use crate::support::digest;

/// The digest of the file or directory at `path`, given as `location` for parameter `name`;
/// `None` for what has no content to hash (a device, a FIFO: reading one may never end).
pub(super) fn digest_input(name: &str, path: &Path, location: &str) -> Result<Option<InputDigest>, RunError> {
    let unreadable =
        |message: String| RunError::InputUnreadable { parameter: name.to_string(), path: path.to_path_buf(), message };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_dir() && !meta.is_file() {
        return Ok(None);
    }
    let (kind, sha256, size) = if meta.is_dir() {
        let tree = source::hash_tree(path, &Exclusions::default(), None).map_err(|e| unreadable(e.to_string()))?;
        (InputKind::Directory, tree.sha256, tree.entries.iter().map(|e| e.size).sum())
    } else {
        let (sha, size) = digest::sha256_file(path).map_err(|e| unreadable(e.to_string()))?;
        (InputKind::File, digest::hex(&sha), size)
    };
    Ok(Some(InputDigest { parameter: name.to_string(), location: location.to_string(), kind, sha256, size }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_directories_are_hashed_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d/a.csv");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "x,y\n1,2\n").unwrap();
        let one = digest_input("data", &file, "/d/a.csv").unwrap().unwrap();
        assert_eq!((one.kind, one.size), (InputKind::File, 8));
        assert_eq!(one.sha256, digest::sha256_hex(b"x,y\n1,2\n"));
        let tree = digest_input("data", &dir.path().join("d"), "/d").unwrap().unwrap();
        assert_eq!((tree.kind, tree.size), (InputKind::Directory, 8));
        std::fs::write(&file, "x,y\n1,3\n").unwrap();
        assert_ne!(digest_input("data", &dir.path().join("d"), "/d").unwrap().unwrap().sha256, tree.sha256);
        assert_eq!(digest_input("dev", Path::new("/dev/null"), "/dev/null").unwrap(), None, "a device is not read");
        let err = digest_input("data", &dir.path().join("gone"), "/gone").unwrap_err();
        assert!(matches!(err, RunError::InputUnreadable { .. }), "{err}");
    }
}
