//! Source URIs: what kind of source a string names, and its `#subdirectory`.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::SourceError;
use super::archive::ArchiveFormat;

/// A parsed source URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUri {
    /// A local directory.
    Local {
        /// The path as given.
        path: PathBuf,
        /// The `#subdirectory`, if any.
        subdirectory: Option<String>,
    },
    /// A git repository URL.
    Git {
        /// The URL.
        url: String,
        /// The `#subdirectory`, if any.
        subdirectory: Option<String>,
    },
    /// A `.tar.gz` or `.zip` file, local or http(s).
    Archive {
        /// The path or URL.
        location: String,
        /// Its format.
        format: ArchiveFormat,
        /// The `#subdirectory`, if any.
        subdirectory: Option<String>,
    },
}

impl SourceUri {
    /// Parse a URI: a name ending in `.tar.gz`, `.tgz` or `.zip` is an archive (a path or an
    /// http(s) URL); `https://`, `http://`, `ssh://`, `git://`, `file://` and
    /// `user@host:path` are git; anything else is a local path. One `#` separates a
    /// subdirectory.
    pub fn parse(uri: &str) -> Result<SourceUri, SourceError> {
        let (base, subdirectory) = match uri.split_once('#') {
            Some((_, frag)) if frag.contains('#') => return Err(SourceError::TwoFragments { uri: uri.to_string() }),
            Some((base, frag)) => (base, Some(frag.to_string()).filter(|f| !f.is_empty())),
            None => (uri, None),
        };
        let lower = base.to_ascii_lowercase();
        let local_or_http = !lower.contains("://") || lower.starts_with("http://") || lower.starts_with("https://");
        if let Some(format) = ArchiveFormat::of(base).filter(|_| local_or_http) {
            return Ok(SourceUri::Archive { location: base.to_string(), format, subdirectory });
        }
        let is_url = ["https://", "http://", "ssh://", "git://", "file://", "git+ssh://", "ssh+git://"]
            .iter()
            .any(|p| lower.starts_with(p));
        if is_url || is_scp_like(base) {
            Ok(SourceUri::Git { url: base.to_string(), subdirectory })
        } else {
            Ok(SourceUri::Local { path: PathBuf::from(base), subdirectory })
        }
    }
}

/// `user@host:path`, the scp-like form git accepts (no `/` before the `:`).
fn is_scp_like(s: &str) -> bool {
    match (s.find('@'), s.find(':')) {
        (Some(at), Some(colon)) => at < colon && !s[..colon].contains('/') && at > 0 && colon > at + 1,
        _ => false,
    }
}

/// Check a `#subdirectory` and return it as a clean relative path.
pub fn clean_subdirectory(sub: &str) -> Result<PathBuf, SourceError> {
    let bad = |reason| SourceError::BadSubdirectory { subdirectory: sub.to_string(), reason };
    let mut out = PathBuf::new();
    for comp in Path::new(sub).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(bad("leaves the repository"));
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(bad("must be relative")),
        }
    }
    Ok(out)
}

/// `root/sub`, which must be a directory that stays inside `root` after symlinks.
pub(crate) fn enter_subdirectory(root: &Path, sub: &Path, shown: &str, location: &str) -> Result<PathBuf, SourceError> {
    let dir = root.join(sub);
    let not_found =
        || SourceError::SubdirectoryNotFound { subdirectory: shown.to_string(), location: location.to_string() };
    if !dir.is_dir() {
        return Err(not_found());
    }
    let (root_c, dir_c) = (
        fs::canonicalize(root).map_err(|e| SourceError::io(root, e))?,
        fs::canonicalize(&dir).map_err(|e| SourceError::io(&dir, e))?,
    );
    if !dir_c.starts_with(&root_c) {
        return Err(SourceError::BadSubdirectory { subdirectory: shown.to_string(), reason: "leaves the repository" });
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_classified() {
        let git = |u: &str, s: Option<&str>| SourceUri::Git { url: u.into(), subdirectory: s.map(Into::into) };
        assert_eq!(SourceUri::parse("https://h/r.git#sub/dir").unwrap(), git("https://h/r.git", Some("sub/dir")));
        assert_eq!(SourceUri::parse("git@github.com:o/r.git").unwrap(), git("git@github.com:o/r.git", None));
        assert_eq!(SourceUri::parse("file:///srv/r").unwrap(), git("file:///srv/r", None));
        assert_eq!(SourceUri::parse("git://127.0.0.1:9418/r").unwrap(), git("git://127.0.0.1:9418/r", None));
        assert_eq!(SourceUri::parse("ssh://git@h/r").unwrap(), git("ssh://git@h/r", None));
        assert_eq!(
            SourceUri::parse("./proj#sub").unwrap(),
            SourceUri::Local { path: "./proj".into(), subdirectory: Some("sub".into()) }
        );
        assert_eq!(
            SourceUri::parse("dir/with:colon").unwrap(),
            SourceUri::Local { path: "dir/with:colon".into(), subdirectory: None }
        );
        assert!(matches!(SourceUri::parse("a#b#c"), Err(SourceError::TwoFragments { .. })));
    }

    #[test]
    fn subdirectories_stay_inside() {
        assert_eq!(clean_subdirectory("a/./b/../c").unwrap(), PathBuf::from("a/c"));
        assert!(matches!(clean_subdirectory("../x"), Err(SourceError::BadSubdirectory { .. })));
        assert!(matches!(clean_subdirectory("a/../../x"), Err(SourceError::BadSubdirectory { .. })));
        assert!(matches!(clean_subdirectory("/etc"), Err(SourceError::BadSubdirectory { .. })));
    }

    #[test]
    fn subdirectory_symlink_out_of_the_tree_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("out")).unwrap();
        let err = enter_subdirectory(&root, Path::new("out"), "out", "repo").unwrap_err();
        assert!(matches!(err, SourceError::BadSubdirectory { .. }), "{err}");
        let err = enter_subdirectory(&root, Path::new("missing"), "missing", "repo").unwrap_err();
        assert_eq!(err.to_string(), "subdirectory 'missing' does not exist in repo");
    }
}
