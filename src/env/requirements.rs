//! Requirement lines as pip reads them: the files they pull in (`-r`, `-c`) and the local
//! artifacts they name, made absolute for an installer running anywhere and digested for the
//! environment key.

use crate::support::digest;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::EnvError;

/// Requirement lines ready for an installer, and the content digests of what they read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// The lines, with project-relative paths made absolute.
    pub lines: Vec<String>,
    /// Every file or local artifact the lines read, by its path (relative to the project when
    /// inside it), with its sha256.
    pub files: BTreeMap<String, String>,
}

/// Expand `lines` (from `label`, a file of the project at `project_dir`): follow `-r` and `-c`
/// files, digest them and every local path requirement.
pub fn read_requirements(lines: &[String], project_dir: &Path, label: &str) -> Result<Requirements, EnvError> {
    let mut out = Requirements::default();
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let rewritten = rewrite_line(line, project_dir, label, &mut out.files, 0)?;
        out.lines.push(rewritten);
    }
    // Keyed by the path within the project, so that identical projects share a key.
    out.files = out
        .files
        .into_iter()
        .map(|(path, digest)| match Path::new(&path).strip_prefix(project_dir) {
            Ok(rel) => (rel.display().to_string(), digest),
            Err(_) => (path, digest),
        })
        .collect();
    Ok(out)
}

const MAX_DEPTH: usize = 16;

/// One requirement line with its paths made absolute against `base`; files it reads are
/// digested into `files`.
fn rewrite_line(
    line: &str,
    base: &Path,
    label: &str,
    files: &mut BTreeMap<String, String>,
    depth: usize,
) -> Result<String, EnvError> {
    if let Some((flag, arg)) = split_option(line, &["-r", "--requirement", "-c", "--constraint"]) {
        let path = join_clean(base, arg);
        digest_requirement_file(&path, label, files, depth)?;
        return Ok(format!("{flag} {}", path.display()));
    }
    if let Some((flag, arg)) = split_option(line, &["-e", "--editable"]) {
        return Ok(format!("{flag} {}", local_artifact(arg, base, label, files)?));
    }
    if line.starts_with('-') {
        return Ok(line.to_string());
    }
    let (spec, extras) = split_extras(line);
    if is_local_path(spec) {
        return Ok(format!("{}{extras}", local_artifact(spec, base, label, files)?));
    }
    if let Some((name, url)) = line.split_once(" @ ")
        && let Some(path) = url.trim().strip_prefix("file://")
    {
        local_artifact(path, base, label, files)?;
        return Ok(format!("{} @ {}", name.trim(), url.trim()));
    }
    Ok(line.to_string())
}

/// Read a requirements file, digest it and everything it reads in turn.
fn digest_requirement_file(
    path: &Path,
    label: &str,
    files: &mut BTreeMap<String, String>,
    depth: usize,
) -> Result<(), EnvError> {
    if depth >= MAX_DEPTH {
        return Err(EnvError::Spec {
            file: label.into(),
            message: format!("-r files nest deeper than {MAX_DEPTH} levels"),
        });
    }
    let text = read_bounded(path).map_err(|message| EnvError::Spec {
        file: label.into(),
        message: format!("cannot read requirements file {}: {message}", path.display()),
    })?;
    files.insert(path.display().to_string(), digest::sha256_hex(&text));
    let dir = path.parent().unwrap_or(Path::new("."));
    let text = String::from_utf8_lossy(&text).replace("\\\n", "");
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((_, arg)) = split_option(line, &["-r", "--requirement", "-c", "--constraint"]) {
            digest_requirement_file(&join_clean(dir, arg), label, files, depth + 1)?;
        } else if let Some((_, arg)) = split_option(line, &["-e", "--editable"]) {
            local_artifact(arg, dir, label, files)?;
        } else if is_local_path(split_extras(line).0) {
            local_artifact(split_extras(line).0, dir, label, files)?;
        }
    }
    Ok(())
}

/// Requirements files larger than this are refused: no real one comes near, and a `-r`
/// naming a device or a huge file must not read until memory runs out.
const MAX_REQUIREMENTS_BYTES: u64 = 16 << 20;

/// The content of a requirements file: a regular file of at most [`MAX_REQUIREMENTS_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    // The opened file's own metadata: the path may be swapped between a check and the open.
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    let too_big = || format!("it is larger than {} MiB", MAX_REQUIREMENTS_BYTES >> 20);
    if meta.len() > MAX_REQUIREMENTS_BYTES {
        return Err(too_big());
    }
    let mut text = Vec::new();
    file.take(MAX_REQUIREMENTS_BYTES + 1).read_to_end(&mut text).map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_REQUIREMENTS_BYTES {
        return Err(too_big());
    }
    Ok(text)
}

/// `-r file`, `-rfile`, `--requirement file`, `--requirement=file`: the flag and its argument.
fn split_option<'a>(line: &'a str, flags: &[&'static str]) -> Option<(&'static str, &'a str)> {
    for flag in flags {
        let Some(rest) = line.strip_prefix(flag) else { continue };
        let arg = if flag.starts_with("--") {
            rest.strip_prefix('=').or_else(|| rest.strip_prefix(' ')).map(str::trim)
        } else {
            Some(rest.trim())
        };
        if let Some(arg) = arg.filter(|a| !a.is_empty()) {
            return Some((flag, arg));
        }
    }
    None
}

/// `./pkg[extra]` is the path `./pkg` and the extras `[extra]`.
fn split_extras(line: &str) -> (&str, &str) {
    match line.find('[') {
        Some(i) if line.ends_with(']') => (&line[..i], &line[i..]),
        _ => (line, ""),
    }
}

fn is_local_path(spec: &str) -> bool {
    spec.starts_with("./")
        || spec.starts_with("../")
        || spec.starts_with('/')
        || spec.starts_with("file:")
        || spec == "."
        || [".whl", ".tar.gz", ".zip", ".tar.bz2"].iter().any(|ext| spec.ends_with(ext)) && !spec.contains("://")
}

/// A local file or directory requirement: its absolute path, digested into `files`.
fn local_artifact(
    spec: &str,
    base: &Path,
    label: &str,
    files: &mut BTreeMap<String, String>,
) -> Result<String, EnvError> {
    let raw = spec.strip_prefix("file://").or_else(|| spec.strip_prefix("file:")).unwrap_or(spec);
    let path = if raw.contains("://") { return Ok(spec.to_string()) } else { join_clean(base, raw) };
    let digest = digest_path(&path).map_err(|e| EnvError::Spec {
        file: label.into(),
        message: format!("requirement {spec}: cannot read {}: {e}", path.display()),
    })?;
    files.insert(path.display().to_string(), digest);
    Ok(path.display().to_string())
}

/// `base/rel` without `.` components.
fn join_clean(base: &Path, rel: &str) -> PathBuf {
    base.join(rel).components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

/// The sha256 of a file, or of a directory's files (paths and contents, in path order,
/// honouring `.gitignore`).
fn digest_path(path: &Path) -> std::io::Result<String> {
    let meta = fs::metadata(path)?;
    if meta.is_file() {
        return Ok(digest::hex(&digest::sha256_file(path)?.0));
    }
    let mut entries: Vec<PathBuf> = ignore::WalkBuilder::new(path)
        .hidden(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build()
        .flatten()
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(|e| e.into_path())
        .collect();
    entries.sort();
    let mut listing = String::new();
    for file in entries {
        let rel = file.strip_prefix(path).unwrap_or(&file);
        listing.push_str(&format!("{} {}\n", digest::hex(&digest::sha256_file(&file)?.0), rel.display()));
    }
    Ok(digest::sha256_hex(listing.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_followed_and_digested() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::write(p.join("requirements.txt"), "six==1.16.0\n-r more.txt  # comment\n").unwrap();
        fs::write(p.join("more.txt"), "idna\n").unwrap();
        fs::create_dir(p.join("pkg")).unwrap();
        fs::write(p.join("pkg/setup.py"), "x").unwrap();
        let lines: Vec<String> =
            ["-r requirements.txt", "./pkg[extra]", "numpy>=1", "# c", "--index-url https://x/simple"]
                .map(String::from)
                .into();
        let r = read_requirements(&lines, p, "python_env.yaml").unwrap();
        assert_eq!(r.lines[0], format!("-r {}", p.join("requirements.txt").display()));
        assert_eq!(r.lines[1], format!("{}[extra]", p.join("pkg").display()));
        assert_eq!(&r.lines[2..], ["numpy>=1", "--index-url https://x/simple"]);
        assert_eq!(r.files.len(), 3, "{:?}", r.files);
        fs::write(p.join("more.txt"), "idna==3\n").unwrap();
        let again = read_requirements(&lines, p, "python_env.yaml").unwrap();
        assert_ne!(again.files, r.files, "a changed nested file changes the digests");
    }

    #[test]
    fn only_bounded_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_requirements(&["-r /dev/zero".into()], dir.path(), "python_env.yaml").unwrap_err();
        assert!(err.to_string().contains("/dev/zero: it is not a regular file"), "{err}");
        let big = fs::File::create(dir.path().join("big.txt")).unwrap();
        big.set_len(MAX_REQUIREMENTS_BYTES + 1).unwrap();
        fs::write(dir.path().join("outer.txt"), "-r big.txt\n").unwrap();
        let err = read_requirements(&["-r outer.txt".into()], dir.path(), "python_env.yaml").unwrap_err();
        assert!(err.to_string().contains("big.txt: it is larger than 16 MiB"), "{err}");
        assert!(matches!(err, EnvError::Spec { .. }), "bad input, exit 2: {err:?}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_requirements(&["-r nope.txt".into()], dir.path(), "python_env.yaml").unwrap_err();
        assert!(err.to_string().contains("cannot read requirements file"), "{err}");
    }
}
