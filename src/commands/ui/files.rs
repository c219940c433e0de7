//! The files of a run that the UI serves: logged artifacts, model files, nested runs'
//! artifacts, outputs and the dirty patch. A request names one by the path the record lists
//! (nothing else is served), and the file it resolves to must be inside its directory once
//! symbolic links are followed. An output the store kept a copy of is served from that copy,
//! the bytes the run wrote, even when a later run in place overwrote the file.

use std::path::{Path, PathBuf};

use crate::record::logged::{ARTIFACTS_DIR, OTHER_RUNS_DIR};
use crate::record::{Objects, RunDir, RunRecord};
use crate::support::text::percent_decode;

/// Why a file is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The record lists no such file (or the request's path is not one).
    NotListed,
    /// It is listed, but not on disk (any more), or it leads outside its directory.
    Gone,
}

/// A file a request names: `artifacts/PATH`, `models/MODEL_ID/PATH`, `nested/RUN_ID/PATH`,
/// `outputs/PATH` or `patch`, each part percent-encoded.
pub(crate) fn resolve(dir: &RunDir, objects: &Objects, record: &RunRecord, rest: &str) -> Result<PathBuf, Refused> {
    let parts: Vec<String> = rest.split('/').map(percent_decode).collect();
    let listed = |files: &[crate::record::OutputFile], path: &str| files.iter().any(|f| f.path == path);
    let logged = record.logged.as_ref();
    let (base, path): (PathBuf, String) = match parts.split_first() {
        Some((kind, [])) if kind == "patch" => {
            return inside(dir.path(), &dir.dirty_patch());
        }
        Some((kind, rest)) if kind == "artifacts" => {
            let path = rest.join("/");
            if !logged.is_some_and(|l| listed(&l.artifacts, &path)) {
                return Err(Refused::NotListed);
            }
            (dir.path().join(ARTIFACTS_DIR), path)
        }
        Some((kind, [model, rest @ ..])) if kind == "models" => {
            let path = rest.join("/");
            let model =
                logged.and_then(|l| l.models.iter().find(|m| &m.model_id == model)).ok_or(Refused::NotListed)?;
            if !listed(&model.files, &path) {
                return Err(Refused::NotListed);
            }
            (dir.path().join(&model.artifact_path), path)
        }
        Some((kind, [run, rest @ ..])) if kind == "nested" => {
            let path = rest.join("/");
            let nested = logged.and_then(|l| l.nested.iter().find(|n| &n.run_id == run)).ok_or(Refused::NotListed)?;
            if !listed(&nested.artifacts, &path) {
                return Err(Refused::NotListed);
            }
            (dir.path().join(OTHER_RUNS_DIR).join(&nested.run_id).join(ARTIFACTS_DIR), path)
        }
        Some((kind, rest)) if kind == "outputs" => {
            let path = rest.join("/");
            let out = record.outputs.iter().find(|f| f.path == path).ok_or(Refused::NotListed)?;
            if let Some(kept) = objects.kept(out) {
                return Ok(kept);
            }
            (record.outputs_dir.clone(), path)
        }
        _ => return Err(Refused::NotListed),
    };
    // A listed path is relative and plain; a record edited by hand could still say `../x`.
    if path.is_empty() || path.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return Err(Refused::NotListed);
    }
    inside(&base, &base.join(path))
}

/// `file`, when it exists and is inside `base` with every link followed.
fn inside(base: &Path, file: &Path) -> Result<PathBuf, Refused> {
    let base = base.canonicalize().map_err(|_| Refused::Gone)?;
    let real = file.canonicalize().map_err(|_| Refused::Gone)?;
    match real.starts_with(&base) && real.is_file() {
        true => Ok(real),
        false => Err(Refused::Gone),
    }
}

/// The content type of a file, from its name; text types say UTF-8.
pub(crate) fn content_type(name: &str) -> &'static str {
    let file = name.rsplit('/').next().unwrap_or(name);
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "pdf" => "application/pdf",
        "txt" | "log" | "md" | "py" | "r" | "sh" | "yaml" | "yml" | "toml" | "cfg" | "ini" | "tsv" | "patch"
        | "diff" | "jsonl" => "text/plain; charset=utf-8",
        // MLflow's own text files have no extension.
        _ if matches!(file, "MLmodel" | "MLproject" | "requirements.txt" | "conda.yaml") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether `bytes` read as text: UTF-8 (a character cut at the end allowed), no NUL.
pub(crate) fn is_text(bytes: &[u8]) -> bool {
    !bytes.contains(&0)
        && match std::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
}

/// Whether a file of this name shows as an image.
pub(crate) fn is_image(name: &str) -> bool {
    content_type(name).starts_with("image/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::OutputFile;
    use crate::record::logged::Logged;

    fn file(path: &str) -> OutputFile {
        OutputFile { path: path.into(), size: 1, sha256: "0".into(), kept: false }
    }

    #[test]
    fn only_listed_files_inside_their_directory_are_served() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("run"));
        std::fs::create_dir_all(dir.path().join("artifacts/sub")).unwrap();
        std::fs::write(dir.path().join("artifacts/sub/a b.txt"), "x").unwrap();
        std::fs::write(tmp.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), dir.path().join("artifacts/link")).unwrap();
        let mut record = crate::record::sample_record("r", 1);
        record.logged =
            Some(Logged { artifacts: vec![file("sub/a b.txt"), file("link"), file("../secret")], ..Logged::default() });
        record.outputs_dir = tmp.path().join("project");
        let objects = Objects::in_store(&tmp.path().join("store"));
        assert_eq!(
            resolve(&dir, &objects, &record, "artifacts/sub/a%20b.txt").unwrap(),
            dir.path().join("artifacts/sub/a b.txt").canonicalize().unwrap()
        );
        assert_eq!(resolve(&dir, &objects, &record, "artifacts/link"), Err(Refused::Gone), "a link out of the run");
        assert_eq!(
            resolve(&dir, &objects, &record, "artifacts/../secret"),
            Err(Refused::NotListed),
            "listed by a bad record"
        );
        assert_eq!(resolve(&dir, &objects, &record, "artifacts/%2e%2e/secret"), Err(Refused::NotListed));
        assert_eq!(resolve(&dir, &objects, &record, "artifacts/other.txt"), Err(Refused::NotListed));
        assert_eq!(resolve(&dir, &objects, &record, "outputs/secret"), Err(Refused::NotListed));
        assert_eq!(resolve(&dir, &objects, &record, "patch"), Err(Refused::Gone), "no dirty patch");
        assert_eq!(resolve(&dir, &objects, &record, "models/m-1/MLmodel"), Err(Refused::NotListed));
        assert_eq!(resolve(&dir, &objects, &record, "../../etc/passwd"), Err(Refused::NotListed));
    }

    #[test]
    fn a_kept_output_is_served_from_its_copy_not_the_overwritten_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, project) = (RunDir::new(tmp.path().join("run")), tmp.path().join("project"));
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("metrics.json"), "first").unwrap();
        let objects = Objects::in_store(&tmp.path().join("store"));
        let mut record = crate::record::sample_record("r", 1);
        record.outputs_dir = project.clone();
        record.outputs = vec![file("metrics.json")];
        record.outputs[0].sha256 = crate::support::digest::sha256_hex(b"first");
        objects.keep(&project, &mut record.outputs, crate::record::KeepOutputs::default(), false);
        assert!(record.outputs[0].kept);
        std::fs::write(project.join("metrics.json"), "second").unwrap();
        let served = resolve(&dir, &objects, &record, "outputs/metrics.json").unwrap();
        assert_eq!(std::fs::read_to_string(served).unwrap(), "first");
    }

    #[test]
    fn types_come_from_names_and_text_is_told_from_binary() {
        assert_eq!(content_type("a/plot.SVG"), "image/svg+xml");
        assert_eq!(content_type("report.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("model/MLmodel"), "text/plain; charset=utf-8");
        assert_eq!(content_type("weights.bin"), "application/octet-stream");
        assert!(is_text("héllo".as_bytes()) && is_text(&"é".as_bytes()[..1]));
        assert!(!is_text(b"a\0b") && !is_text(&[0xff, 0x41]));
        assert!(is_image("x.png") && !is_image("x.txt"));
    }
}
