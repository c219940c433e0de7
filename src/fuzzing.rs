//! Entry points for the fuzz targets in `fuzz/` (not an API: the crate's modules are private
//! to it, and these are the only doors the fuzzers get).
//!
//! Each function takes raw input, feeds it to the parser that an attacker's file reaches, and
//! panics when an invariant breaks. A parse error is an expected outcome, never a failure.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::env::{self, EnvRecord, spec};
use crate::manifest::{self, ParamArgs};
use crate::record::RunRecord;
use crate::source::archive::{self, ArchiveFormat};

/// An MLproject file's text, then every entry point bound to its defaults and rendered.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = manifest::parse(text, "MLproject") else { return };
    for ep in &parsed.entry_points {
        bind_and_render(ep, &ParamArgs::default());
    }
}

/// `-P` arguments (one a line) bound to the entry points of an MLproject: the input is the
/// MLproject text, a NUL byte, then the arguments; without a NUL, [`PARAMS_MANIFEST`].
pub fn params(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (manifest_text, args) = text.split_once('\0').unwrap_or((PARAMS_MANIFEST, text));
    let Ok(parsed) = manifest::parse(manifest_text, "MLproject") else { return };
    let lines: Vec<&str> = args.split('\n').filter(|l| !l.is_empty()).collect();
    let Ok(args) = ParamArgs::parse(&lines) else { return };
    for ep in &parsed.entry_points {
        bind_and_render(ep, &args);
    }
}

/// The manifest the `params` target binds to when its input has none: one parameter of
/// every type, with and without defaults.
pub const PARAMS_MANIFEST: &str = "entry_points:
  main:
    parameters:
      s: string
      f: {type: float, default: 0.5}
      i: {type: int, default: 3}
      p: {type: path, default: data/x.csv}
      u: {type: uri, default: 'https://h/x'}
    command: 'run {s} {f} {i} {p} {u}'
";

/// Bind and render as `run` does, checking that every bound value reaches the command as one
/// shell word that reads back as the value.
fn bind_and_render(ep: &manifest::EntryPoint, args: &ParamArgs) {
    let Ok(bound) = manifest::bind_parameters(ep, args) else { return };
    let mut values = BTreeMap::new();
    let mut extra = Vec::new();
    for p in &bound {
        let quoted = manifest::shell_quote(&p.raw);
        assert_eq!(shell_unquote(&quoted).as_deref(), Some(p.raw.as_str()), "quoting {:?} gives {quoted}", p.raw);
        if p.declared {
            values.insert(p.name.clone(), p.raw.clone());
        } else {
            extra.push((p.name.clone(), p.raw.clone()));
        }
    }
    let _ = manifest::render_command(ep, &values, &extra);
}

/// A POSIX shell's reading of one word made of bare characters and single-quoted runs
/// (what `shell_quote` writes); `None` for anything else.
fn shell_unquote(word: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '$' | '`' | '\\' => return None,
                    c => out.push(c),
                }
            },
            c if c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c) => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

/// A `python_env.yaml`.
pub fn python_env(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = spec::parse_python_env(text, "python_env.yaml");
}

/// A `conda.yaml`, and its conversion into a Python environment.
pub fn conda_env(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok((conda, _)) = spec::parse_conda_env(text, "conda.yaml") {
        let _ = spec::python_env_from_conda(&conda, "conda.yaml");
    }
}

/// A `record.json` as `verify`, `status` and the store read it: a record that loads writes
/// back to the same record, and its environment's lock loads as `verify` rebuilds it.
pub fn record(data: &[u8]) {
    let Ok(record) = serde_json::from_slice::<RunRecord>(data) else { return };
    let again: RunRecord = serde_json::from_slice(&serde_json::to_vec(&record).expect("records serialize"))
        .expect("a written record reads back");
    assert_eq!(again, record, "a record changes when written and read back");
    let _ = env::from_lock(&record.environment);
}

/// An environment lock (the `environment` object of a record) as `verify` rebuilds from it.
pub fn lock(data: &[u8]) {
    let Ok(record) = serde_json::from_slice::<EnvRecord>(data) else { return };
    if let Some(lock) = record.lock() {
        let written = serde_json::to_vec(&EnvRecord::of_lock(record.manager(), lock.clone())).expect("locks serialize");
        let again: EnvRecord = serde_json::from_slice(&written).expect("a lock's own record reads back");
        assert_eq!(again.lock(), Some(lock), "a lock changes when written and read back");
    }
    let _ = env::from_lock(&record);
}

/// An archive extracted as `unpack` and `run ARCHIVE` extract it: a zip when it starts with
/// `PK`, a tar.gz when it starts with the gzip magic, otherwise a plain tar that is gzipped
/// first (so that mutations reach the tar layer). Nothing may be created, changed or read
/// outside the target; see [`check_confined`].
pub fn archive(data: &[u8]) {
    let (format, bytes) = if data.starts_with(b"PK") {
        (ArchiveFormat::Zip, data.to_vec())
    } else if data.starts_with(&[0x1f, 0x8b]) {
        (ArchiveFormat::TarGz, data.to_vec())
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).expect("gzip into memory");
        (ArchiveFormat::TarGz, gz.finish().expect("gzip into memory"))
    };
    let sandbox = Sandbox::new(format, &bytes);
    if archive::extract(&sandbox.archive, format, &sandbox.target).is_ok() {
        let root = archive::project_root(&sandbox.target);
        let _ = archive::read_manifest(&sandbox.archive, &root);
    }
    if let Err(breach) = check_confined(&sandbox) {
        panic!("archive extraction escaped its target: {breach}");
    }
}

/// The content of the file planted beside the target: no extracted file may hold it.
const SECRET: &[u8] = b"lockstep-fuzz-secret: a file outside the target\n";

/// `base/archive.{tar.gz,zip}`, `base/outer/secret.txt` and the target `base/outer/target`,
/// where `base` is a fresh directory in the temporary directory.
pub struct Sandbox {
    base: tempfile::TempDir,
    archive: PathBuf,
    target: PathBuf,
}

impl Sandbox {
    /// Lay out a sandbox holding `bytes` as the archive.
    pub fn new(format: ArchiveFormat, bytes: &[u8]) -> Sandbox {
        let base = tempfile::Builder::new().prefix("lockstep-fuzz-").tempdir().expect("a temporary directory");
        let name = if format == ArchiveFormat::Zip { "archive.zip" } else { "archive.tar.gz" };
        let archive = base.path().join(name);
        fs::write(&archive, bytes).expect("write the archive");
        fs::create_dir(base.path().join("outer")).expect("make the target's parent");
        fs::write(base.path().join("outer/secret.txt"), SECRET).expect("plant the secret");
        let target = base.path().join("outer/target");
        Sandbox { base, archive, target }
    }

    /// The target directory (created by the extraction).
    pub fn target(&self) -> &Path {
        &self.target
    }
}

/// Whether an extraction stayed inside its target: the two directories above it hold only
/// what the sandbox put there, unchanged; no extracted file holds the planted secret; and
/// every symbolic link left in the target resolves inside it.
pub fn check_confined(sandbox: &Sandbox) -> Result<(), String> {
    let base = sandbox.base.path();
    let archive_name = sandbox.archive.file_name().expect("the archive has a name");
    expect_entries(base, &[archive_name.to_str().expect("ASCII"), "outer"])?;
    let outer = base.join("outer");
    let mut expected = vec!["secret.txt"];
    if fs::symlink_metadata(&sandbox.target).is_ok() {
        expected.push("target");
    }
    expect_entries(&outer, &expected)?;
    if fs::read(outer.join("secret.txt")).ok().as_deref() != Some(SECRET) {
        return Err("the file beside the target was changed".into());
    }
    if !fs::symlink_metadata(&sandbox.target).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let root = fs::canonicalize(&sandbox.target).map_err(|e| format!("the target: {e}"))?;
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let meta = fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if meta.is_symlink() {
                check_link(&root, &path)?;
            } else if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && fs::read(&path).is_ok_and(|b| contains(&b, SECRET)) {
                return Err(format!("{} holds the content of a file outside the target", path.display()));
            }
        }
    }
    Ok(())
}

fn expect_entries(dir: &Path, expected: &[&str]) -> Result<(), String> {
    let mut found: Vec<String> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    if found == expected { Ok(()) } else { Err(format!("{} holds {found:?}, not {expected:?}", dir.display())) }
}

/// A link must resolve inside `root`; a dangling one must point inside it as written (from
/// its own directory, every component taken as a directory).
fn check_link(root: &Path, link: &Path) -> Result<(), String> {
    match fs::canonicalize(link) {
        Ok(resolved) if resolved.starts_with(root) => Ok(()),
        Ok(resolved) => Err(format!("{} resolves outside the target, to {}", link.display(), resolved.display())),
        Err(_) => {
            let written = fs::read_link(link).map_err(|e| e.to_string())?;
            let mut depth = link.parent().and_then(|p| p.strip_prefix(root).ok()).map_or(0, |p| p.components().count());
            for comp in written.components() {
                match comp {
                    Component::Normal(_) => depth += 1,
                    Component::CurDir => {}
                    Component::ParentDir if depth > 0 => depth -= 1,
                    _ => return Err(format!("{} points outside the target, to {}", link.display(), written.display())),
                }
            }
            Ok(())
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_read_back() {
        for v in ["", "a b", "it's", "$(x)", "'\"'", "é\n"] {
            assert_eq!(shell_unquote(&manifest::shell_quote(v)).as_deref(), Some(v));
        }
        assert_eq!(shell_unquote("a;b"), None);
        assert_eq!(shell_unquote("'open"), None);
    }

    #[test]
    fn a_write_beside_the_target_is_a_breach() {
        let sandbox = Sandbox::new(ArchiveFormat::TarGz, b"");
        fs::create_dir(sandbox.target()).unwrap();
        check_confined(&sandbox).unwrap();
        fs::write(sandbox.target().parent().unwrap().join("EVIL.txt"), "x").unwrap();
        let err = check_confined(&sandbox).unwrap_err();
        assert!(err.contains("EVIL.txt"), "{err}");
    }

    #[test]
    fn a_copy_of_an_outside_file_is_a_breach() {
        let sandbox = Sandbox::new(ArchiveFormat::TarGz, b"");
        fs::create_dir(sandbox.target()).unwrap();
        fs::copy(sandbox.target().parent().unwrap().join("secret.txt"), sandbox.target().join("copy")).unwrap();
        let err = check_confined(&sandbox).unwrap_err();
        assert!(err.contains("holds the content of a file outside"), "{err}");
    }

    #[test]
    fn links_out_of_the_target_are_a_breach() {
        let sandbox = Sandbox::new(ArchiveFormat::TarGz, b"");
        fs::create_dir_all(sandbox.target().join("d")).unwrap();
        std::os::unix::fs::symlink("../x", sandbox.target().join("d/inside")).unwrap();
        std::os::unix::fs::symlink("d", sandbox.target().join("dir")).unwrap();
        check_confined(&sandbox).unwrap();
        std::os::unix::fs::symlink("..", sandbox.target().join("up")).unwrap();
        assert!(check_confined(&sandbox).unwrap_err().contains("resolves outside"));
        fs::remove_file(sandbox.target().join("up")).unwrap();
        std::os::unix::fs::symlink("d/../../nowhere", sandbox.target().join("dangling")).unwrap();
        assert!(check_confined(&sandbox).unwrap_err().contains("points outside"));
    }

    #[test]
    fn every_target_takes_garbage() {
        for input in [&b""[..], b"\0", b"{}", b"- [", b"PK\x03\x04", b"\x1f\x8b", b"entry_points: {main: {command: x}}"]
        {
            manifest(input);
            params(input);
            python_env(input);
            conda_env(input);
            record(input);
            lock(input);
            archive(input);
        }
    }
}
