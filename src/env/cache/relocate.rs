//! Moving a built environment from its temporary directory to its final one: the paths tools
//! wrote into it are rewritten, in place of equal length.

use std::fs;
use std::path::{Path, PathBuf};

use super::super::EnvError;

/// Replace the temporary path by the final one in the files tools write it into: the
/// scripts in `bin/` (shebangs), symbolic links there, and `pyvenv.cfg`.
pub(super) fn relocate(tmp: &Path, prefix: &Path) -> Result<(), EnvError> {
    let (from, to) = (tmp.as_os_str().as_encoded_bytes(), prefix.as_os_str().as_encoded_bytes());
    debug_assert_eq!(from.len(), to.len());
    let mut candidates = vec![tmp.join("pyvenv.cfg")];
    if let Ok(entries) = fs::read_dir(tmp.join("bin")) {
        candidates.extend(entries.flatten().map(|e| e.path()));
    }
    for path in candidates {
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(EnvError::io(&path))?;
            let bytes = target.as_os_str().as_encoded_bytes();
            if let Some(new) = replace_all(bytes, from, to) {
                let new = PathBuf::from(String::from_utf8_lossy(&new).into_owned());
                fs::remove_file(&path).map_err(EnvError::io(&path))?;
                std::os::unix::fs::symlink(new, &path).map_err(EnvError::io(&path))?;
            }
        } else if meta.is_file() && meta.len() < 64 * 1024 * 1024 {
            let bytes = fs::read(&path).map_err(EnvError::io(&path))?;
            if let Some(new) = replace_all(&bytes, from, to) {
                rewrite(&path, &new, meta.permissions())?;
            }
        }
    }
    Ok(())
}

/// Replace the temporary path by the final one in every file of the environment: for
/// environments made by other tools (an external conda), which write the prefix anywhere.
pub fn relocate_tree(tmp: &Path, prefix: &Path) -> Result<(), EnvError> {
    let (from, to) = (tmp.as_os_str().as_encoded_bytes(), prefix.as_os_str().as_encoded_bytes());
    let mut stack = vec![tmp.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(EnvError::io(&dir))?.flatten() {
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).map_err(EnvError::io(&path))?;
                if let Some(new) = replace_all(target.as_os_str().as_encoded_bytes(), from, to) {
                    fs::remove_file(&path).map_err(EnvError::io(&path))?;
                    std::os::unix::fs::symlink(String::from_utf8_lossy(&new).as_ref(), &path)
                        .map_err(EnvError::io(&path))?;
                }
            } else if meta.is_file() {
                let bytes = fs::read(&path).map_err(EnvError::io(&path))?;
                if let Some(new) = replace_all(&bytes, from, to) {
                    rewrite(&path, &new, meta.permissions())?;
                }
            }
        }
    }
    Ok(())
}

/// Replace a file by a new one with `bytes`: a hard link into a package cache must not be
/// changed in place.
fn rewrite(path: &Path, bytes: &[u8], permissions: fs::Permissions) -> Result<(), EnvError> {
    fs::remove_file(path).map_err(EnvError::io(path))?;
    fs::write(path, bytes).map_err(EnvError::io(path))?;
    fs::set_permissions(path, permissions).map_err(EnvError::io(path))
}

/// `haystack` with every `from` replaced by `to`, or `None` when there is none.
pub(crate) fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    if from.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    let mut found = false;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
            found = true;
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_all_replaces_every_occurrence() {
        assert_eq!(replace_all(b"a/tmp/x a/tmp/y", b"/tmp", b"/fin").unwrap(), b"a/fin/x a/fin/y");
        assert!(replace_all(b"nothing", b"/tmp", b"/fin").is_none());
    }
}
