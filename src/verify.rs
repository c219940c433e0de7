//! `lockstep verify`: re-run a recorded run from its exact source and its recorded
//! environment, in isolation, and compare the outputs file by file.
//!
//! A composition of the run's stages: the source is rebuilt (`source::rebuild`), the
//! environment comes from the lock (`env::from_lock`), and the re-run is an ordinary run
//! whose record points to the run it verifies.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::env::{self, EnvLock, EnvManager};
use crate::error::{Error, ErrorClass};
use crate::exec::Echo;
use crate::fsutil;
use crate::manifest::{Manifest, ParamArgs, is_project_dir};
use crate::record::{OutputFile, RecordError, RunRecord, RunStatus, VerificationSummary};
use crate::run::{self, EnvChoice, RunOptions, Session};
use crate::source::archive::{self, PACK_RECORD};
use crate::source::{self, ArchiveFormat, RebuildRequest, SourceKind, SourceRequest};
use crate::ui;

/// Text files larger than this are compared by digest only.
const DIFF_LIMIT: u64 = 1 << 20;
/// Lines of diff shown per file.
const DIFF_LINES: usize = 20;

/// Errors of verify's own input.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A glob given to `--ignore` is not valid.
    #[error("bad --ignore glob '{glob}': {message}")]
    BadGlob {
        /// The glob.
        glob: String,
        /// What is wrong.
        message: String,
    },
    /// An archive holds no run record.
    #[error("{} holds no run record: pack it with `lockstep pack URI --run RUN`", .path.display())]
    NoRecordInArchive {
        /// The archive.
        path: PathBuf,
    },
    /// `--rtol` is negative or not a number.
    #[error("--rtol must be a number of at least 0, not {value}")]
    BadTolerance {
        /// The value.
        value: f64,
    },
}

impl VerifyError {
    /// Who has to act: always the user.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::User
    }
}

/// What to verify and how to compare.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// A run id (or prefix), a `record.json` file, or an archive made by `pack --run`.
    pub target: String,
    /// Globs of output paths to leave out of the comparison.
    pub ignore: Vec<String>,
    /// Relative tolerance for numbers in JSON and CSV outputs.
    pub rtol: Option<f64>,
    /// A local project directory to use instead of the recorded one.
    pub source_dir: Option<PathBuf>,
    /// The store (where the verification run is recorded, and where run ids are looked up).
    pub store: PathBuf,
    /// Where the re-run's stdout goes.
    pub echo: Echo,
    /// The caller's working directory.
    pub caller_dir: PathBuf,
}

/// How one output compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileResult {
    /// Same bytes.
    Identical,
    /// Different bytes, numbers within `--rtol`.
    WithinTolerance,
    /// Different content.
    Differs,
    /// Made by the original run, not by the re-run.
    Missing,
    /// Made by the re-run only.
    Extra,
    /// Left out by `--ignore`.
    Ignored,
}

/// One output's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    /// The output's path.
    pub path: String,
    /// The result.
    pub result: FileResult,
    /// Its sha256 in the original run.
    pub original_sha256: Option<String>,
    /// Its sha256 in the re-run.
    pub rerun_sha256: Option<String>,
    /// A short diff, or where numbers differ.
    pub detail: Option<String>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The run verified.
    pub run_id: String,
    /// The verification run.
    pub verification_run_id: String,
    /// `reproduced`, `differs` or `failed` (the re-run did not finish).
    pub result: String,
    /// The re-run's status.
    pub rerun_status: RunStatus,
    /// The re-run's exit code.
    pub rerun_exit_code: Option<i32>,
    /// Every output of either run.
    pub files: Vec<FileCheck>,
}

impl VerifyReport {
    /// 0 when reproduced, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.result == "reproduced" { 0 } else { 1 }
    }
}

/// The run to verify, and where its files are.
struct Target {
    record: RunRecord,
    /// The run's directory (for `dirty.patch`), when known.
    run_dir: Option<PathBuf>,
    /// An archive to rebuild the source from instead of the recorded source.
    archive: Option<PathBuf>,
}

/// Verify a run.
pub fn verify(opts: &VerifyOptions) -> Result<VerifyReport, Error> {
    if let Some(rtol) = opts.rtol.filter(|r| r.is_nan() || *r < 0.0) {
        return Err(VerifyError::BadTolerance { value: rtol }.into());
    }
    let ignore = ignore_set(&opts.ignore)?;
    let session = Session::open(&opts.store)?;
    let target = find_target(&opts.target, &session, opts)?;
    let original = &target.record;
    let run_id = fsutil::random_hex(16);
    let planned = session.checked((|| {
        let pending = session.store.create_run(&run_id)?;
        let workdir = pending.dir().join("work");
        let src = match &target.archive {
            Some(path) => rebuild_from_archive(path, original, &opts.caller_dir, &session, &workdir)?,
            None => {
                let outputs: Vec<String> = original.outputs.iter().map(|o| o.path.clone()).collect();
                let patch = target.run_dir.as_ref().map(|d| d.join("dirty.patch"));
                let request = RebuildRequest {
                    info: &original.source,
                    outputs: &outputs,
                    in_place: original.source.path.as_ref() == Some(&original.outputs_dir),
                    patch: patch.as_deref(),
                    local_dir: opts.source_dir.as_deref(),
                    caller_dir: &opts.caller_dir,
                };
                source::rebuild(&request, &session.cache, &workdir)?
            }
        };
        let args = recorded_args(original, &src.project_dir)?;
        let caller_dir = original.cwd.clone().filter(|d| d.is_dir()).unwrap_or_else(|| opts.caller_dir.clone());
        let environment = env::from_lock(&original.environment)?;
        let mut planned = run::plan_entry(
            pending,
            src,
            &original.entry_point,
            &args,
            &caller_dir,
            EnvChoice::Given(environment, env::DockerFlags::of_lock(&original.environment)),
        )?;
        planned.prepare_before_start(&session.cache)?;
        planned.verifies = Some(original.run_id.clone());
        Ok(planned)
    })())?;
    ui::note(&format!("verifying run {} by re-running it as run {run_id}", original.run_id));
    let run_opts = RunOptions {
        uri: original.source.uri.clone(),
        entry_point: original.entry_point.clone(),
        version: None,
        params: Vec::new(),
        env_manager: None,
        run_name: Some(format!("verify {}", crate::support::ids::short(&original.run_id))),
        experiment_name: original.experiment_name.clone(),
        experiment_id: None,
        tracking_uri: None,
        store: opts.store.clone(),
        isolated: true,
        reuse: false,
        echo: opts.echo,
        caller_dir: opts.caller_dir.clone(),
        docker: Default::default(),
        keep_processes: false,
    };
    let outcome = run::execute(&run_opts, planned, None, &session, run_id)?;
    let mut rerun = outcome.record;
    let files = compare(original, &rerun, &ignore, opts.rtol);
    let count = |r: FileResult| files.iter().filter(|f| f.result == r).count();
    let matches = files
        .iter()
        .all(|f| matches!(f.result, FileResult::Identical | FileResult::WithinTolerance | FileResult::Ignored));
    let result = if rerun.status != RunStatus::Finished {
        "failed"
    } else if matches {
        "reproduced"
    } else {
        "differs"
    };
    rerun.verification = Some(VerificationSummary {
        result: result.to_string(),
        identical: count(FileResult::Identical) + count(FileResult::WithinTolerance),
        differs: count(FileResult::Differs),
        missing: count(FileResult::Missing),
        extra: count(FileResult::Extra),
        ignored: count(FileResult::Ignored),
    });
    session.store.save(&rerun)?;
    Ok(VerifyReport {
        run_id: original.run_id.clone(),
        verification_run_id: rerun.run_id.clone(),
        result: result.to_string(),
        rerun_status: rerun.status,
        rerun_exit_code: rerun.exit_code,
        files,
    })
}

fn ignore_set(globs: &[String]) -> Result<globset::GlobSet, VerifyError> {
    let mut set = globset::GlobSetBuilder::new();
    for g in globs {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(false)
            .build()
            .map_err(|e| VerifyError::BadGlob { glob: g.clone(), message: e.to_string() })?;
        set.add(glob);
    }
    set.build().map_err(|e| VerifyError::BadGlob { glob: globs.join(" "), message: e.to_string() })
}

/// A run id in the store, a record file, or an archive holding a record.
fn find_target(target: &str, session: &Session, opts: &VerifyOptions) -> Result<Target, Error> {
    let path = opts.caller_dir.join(target);
    // The recorded directory is hashed and copied only when neither an archive nor
    // --source-dir stands in for it.
    let hashes_recorded_dir = opts.source_dir.is_none();
    if path.is_file() {
        if let Some(format) = ArchiveFormat::of(target) {
            let bytes = archive::read_member(&path, format, PACK_RECORD)
                .map_err(source::SourceError::from)?
                .ok_or_else(|| VerifyError::NoRecordInArchive { path: path.clone() })?;
            let record = parse_record(&path, &bytes)?;
            check_record(&record, &path, false)?;
            return Ok(Target { record, run_dir: None, archive: Some(path) });
        }
        let record = read_record(&path)?;
        check_record(&record, &path, hashes_recorded_dir)?;
        return Ok(Target { record, run_dir: path.parent().map(Path::to_path_buf), archive: None });
    }
    let record = session.store.find(target)?;
    let run_dir = session.store.run_dir(&record.run_id);
    check_record(&record, &run_dir.join("record.json"), hashes_recorded_dir)?;
    Ok(Target { record, run_dir: Some(run_dir), archive: None })
}

/// A record file given on the command line.
pub(crate) fn read_record(path: &Path) -> Result<RunRecord, RecordError> {
    let bytes = fs::read(path).map_err(RecordError::io(path))?;
    parse_record(path, &bytes)
}

fn parse_record(path: &Path, bytes: &[u8]) -> Result<RunRecord, RecordError> {
    serde_json::from_slice(bytes)
        .map_err(|e| RecordError::BadRecord { path: path.to_path_buf(), message: e.to_string() })
}

/// Check the fields of a record (at `path`) that become paths, name a directory to hash, or
/// are cut to a short form: a record may come from anyone, and none of them may lead outside
/// the cache and the store or make lockstep read the whole filesystem. `hashes_recorded_dir`:
/// the recorded local directory is about to be hashed, so it must be a project.
pub(crate) fn check_record(record: &RunRecord, path: &Path, hashes_recorded_dir: bool) -> Result<(), RecordError> {
    let bad = |message: String| RecordError::BadRecord { path: path.to_path_buf(), message };
    env::check_file_name("run_id", &record.run_id).map_err(bad)?;
    let info = &record.source;
    let digests = [
        ("source.tree_sha256", Some(&info.tree_sha256)),
        ("source.input_tree_sha256", info.input_tree_sha256.as_ref()),
        ("source.archive_sha256", info.archive_sha256.as_ref()),
        ("source.patch_sha256", info.patch_sha256.as_ref()),
    ];
    for (field, value) in digests {
        if let Some(v) = value.filter(|v| v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(bad(format!("{field} '{}' is not a sha256 (64 hex digits)", v.escape_debug())));
        }
    }
    for out in &record.outputs {
        let normal = Path::new(&out.path).components().all(|c| matches!(c, Component::Normal(_)));
        if out.path.is_empty() || out.path.contains('\0') || !normal {
            return Err(bad(format!(
                "output path '{}' is not a relative path inside the outputs directory",
                out.path.escape_debug()
            )));
        }
    }
    if let Some(dir) = &info.path {
        if !dir.is_absolute() || dir.components().any(|c| matches!(c, Component::CurDir | Component::ParentDir)) {
            return Err(bad(format!("source.path {} is not an absolute path without '.' or '..'", dir.display())));
        }
        if hashes_recorded_dir
            && info.kind == SourceKind::Local
            && dir.is_dir()
            && !is_project_dir(dir, &record.entry_point)
        {
            return Err(bad(format!(
                "source.path {} is not a project: it has no MLproject file and no script '{}'",
                dir.display(),
                record.entry_point
            )));
        }
    }
    let details = &record.environment.details;
    match record.environment.manager {
        EnvManager::Local => {}
        EnvManager::Docker => {
            for field in ["base_image", "base_image_digest", "base_image_id"] {
                if let Some(value) = details.get(field).and_then(|v| v.as_str())
                    && let Some(why) = image_reference_problem(value)
                {
                    return Err(bad(format!("environment.{field} '{}' {why}", value.escape_debug())));
                }
            }
        }
        // A lock is read in full; its checks name the field.
        _ if details.contains_key("lock_schema") => {
            EnvLock::from_record(&record.environment).map_err(|e| bad(e.to_string()))?;
        }
        _ => {}
    }
    Ok(())
}

/// Why `value` is not an image reference (`name[:tag][@digest]`, or an image id) that can be
/// put into an Engine API path, if it is not.
fn image_reference_problem(value: &str) -> Option<&'static str> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._-:/@".contains(&b);
    if value.is_empty() {
        Some("is empty")
    } else if !value.bytes().all(allowed) {
        Some("has characters an image reference cannot have")
    } else if value.starts_with(['/', '.', '-']) || value.split('/').any(|part| part.is_empty() || part == "..") {
        Some("has an empty or '..' path component")
    } else {
        None
    }
}

/// The source of a packed archive, which must be the tree the recorded run ran on.
fn rebuild_from_archive(
    archive: &Path,
    original: &RunRecord,
    caller_dir: &Path,
    session: &Session,
    workdir: &Path,
) -> Result<source::ResolvedSource, Error> {
    let uri = archive.to_string_lossy();
    let request =
        SourceRequest { uri: &uri, version: None, isolated: true, caller_dir, exclusions: session.exclusions.clone() };
    let src = source::resolve(&request, &session.cache, workdir)?;
    let expected = match (original.source.kind, &original.source.input_tree_sha256) {
        (SourceKind::Local, Some(input)) => input,
        _ => &original.source.tree_sha256,
    };
    if &src.info.tree_sha256 != expected {
        return Err(source::SourceError::Changed {
            detail: format!(
                "the archive's files hash to {}, the run's to {}",
                crate::support::ids::short(&src.info.tree_sha256),
                crate::support::ids::short(expected)
            ),
        }
        .into());
    }
    Ok(src)
}

/// The recorded parameter values as `-P` arguments; values equal to the entry point's
/// default are left to the default, so that a default path resolves in the rebuilt project.
fn recorded_args(original: &RunRecord, project_dir: &Path) -> Result<ParamArgs, Error> {
    let manifest = Manifest::load(project_dir)?;
    let defaults = manifest.entry_point(&original.entry_point, project_dir).map(|ep| ep.parameters).unwrap_or_default();
    let args: Vec<String> = original
        .parameters
        .iter()
        .filter(|(name, value)| {
            !defaults.iter().any(|p| &p.name == *name && p.default.as_deref() == Some(value.as_str()))
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    Ok(ParamArgs::parse(&args)?)
}

/// Compare the outputs of the original and the re-run, path by path.
fn compare(original: &RunRecord, rerun: &RunRecord, ignore: &globset::GlobSet, rtol: Option<f64>) -> Vec<FileCheck> {
    let find = |r: &'_ RunRecord, p: &str| r.outputs.iter().find(|o| o.path == p).cloned();
    let paths: BTreeSet<&str> = original.outputs.iter().chain(&rerun.outputs).map(|o| o.path.as_str()).collect();
    paths
        .into_iter()
        .map(|path| {
            let (a, b) = (find(original, path), find(rerun, path));
            let mut check = FileCheck {
                path: path.to_string(),
                result: FileResult::Identical,
                original_sha256: a.as_ref().map(|o| o.sha256.clone()),
                rerun_sha256: b.as_ref().map(|o| o.sha256.clone()),
                detail: None,
            };
            check.result = match (&a, &b) {
                _ if ignore.is_match(path) => FileResult::Ignored,
                (Some(_), None) => FileResult::Missing,
                (None, Some(_)) => FileResult::Extra,
                (Some(a), Some(b)) if a.sha256 == b.sha256 => FileResult::Identical,
                (Some(a), Some(b)) => {
                    let old = content(&original.outputs_dir, a);
                    let new = content(&rerun.outputs_dir, b);
                    match (old, new) {
                        (Some(old), Some(new)) => {
                            if let Some(rtol) = rtol.filter(|_| numeric_format(path).is_some()) {
                                match numbers_close(path, &old, &new, rtol) {
                                    Ok(()) => FileResult::WithinTolerance,
                                    Err(where_) => {
                                        check.detail = Some(where_);
                                        FileResult::Differs
                                    }
                                }
                            } else {
                                check.detail = text_diff(&old, &new);
                                FileResult::Differs
                            }
                        }
                        _ => {
                            check.detail = Some("the original file is no longer at hand: compared by digest".into());
                            FileResult::Differs
                        }
                    }
                }
                (None, None) => FileResult::Identical,
            };
            check
        })
        .collect()
}

/// A file's content, if it is still the recorded one and small enough to compare.
fn content(dir: &Path, out: &OutputFile) -> Option<Vec<u8>> {
    if out.size > DIFF_LIMIT {
        return None;
    }
    let bytes = fs::read(dir.join(&out.path)).ok()?;
    (fsutil::sha256_hex(&bytes) == out.sha256).then_some(bytes)
}

/// A short unified diff of two text files.
fn text_diff(old: &[u8], new: &[u8]) -> Option<String> {
    let (old, new) = (std::str::from_utf8(old).ok()?, std::str::from_utf8(new).ok()?);
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff.unified_diff().context_radius(1).header("original", "re-run").to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut shown = lines[..lines.len().min(DIFF_LINES)].join("\n");
    if lines.len() > DIFF_LINES {
        shown.push_str(&format!("\n... {} more lines", lines.len() - DIFF_LINES));
    }
    Some(shown)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumericFormat {
    Json,
    Csv,
}

fn numeric_format(path: &str) -> Option<NumericFormat> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".json") {
        Some(NumericFormat::Json)
    } else if lower.ends_with(".csv") {
        Some(NumericFormat::Csv)
    } else {
        None
    }
}

/// Whether two JSON or CSV files are equal but for numbers within a relative tolerance;
/// the error says where they differ.
fn numbers_close(path: &str, old: &[u8], new: &[u8], rtol: f64) -> Result<(), String> {
    let close = |a: f64, b: f64| a == b || (a - b).abs() <= rtol * a.abs().max(b.abs());
    match numeric_format(path) {
        Some(NumericFormat::Json) => {
            let parse = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).map_err(|e| format!("not JSON: {e}"));
            json_close(&parse(old)?, &parse(new)?, "$", &close)
        }
        _ => {
            let (old, new) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
            let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
            if a.len() != b.len() {
                return Err(format!("{} rows, the re-run has {}", a.len(), b.len()));
            }
            for (row, (x, y)) in a.iter().zip(&b).enumerate() {
                let (xs, ys): (Vec<&str>, Vec<&str>) = (x.split(',').collect(), y.split(',').collect());
                if xs.len() != ys.len() {
                    return Err(format!("row {}: {} columns, the re-run has {}", row + 1, xs.len(), ys.len()));
                }
                for (col, (p, q)) in xs.iter().zip(&ys).enumerate() {
                    let same = match (p.trim().parse::<f64>(), q.trim().parse::<f64>()) {
                        (Ok(p), Ok(q)) => close(p, q),
                        _ => p == q,
                    };
                    if !same {
                        return Err(format!("row {}, column {}: {p} vs {q}", row + 1, col + 1));
                    }
                }
            }
            Ok(())
        }
    }
}

fn json_close(
    a: &serde_json::Value,
    b: &serde_json::Value,
    at: &str,
    close: &dyn Fn(f64, f64) -> bool,
) -> Result<(), String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            if close(x, y) { Ok(()) } else { Err(format!("{at}: {x} vs {y}")) }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{at}: {} items vs {}", x.len(), y.len()));
            }
            x.iter().zip(y).enumerate().try_for_each(|(i, (p, q))| json_close(p, q, &format!("{at}[{i}]"), close))
        }
        (Value::Object(x), Value::Object(y)) => {
            if let Some(k) = x.keys().chain(y.keys()).find(|k| x.contains_key(*k) != y.contains_key(*k)) {
                return Err(format!("{at}.{k}: present in only one of them"));
            }
            x.iter().try_for_each(|(k, p)| json_close(p, &y[k], &format!("{at}.{k}"), close))
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{at}: {a} vs {b}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_within_tolerance() {
        let a = br#"{"loss": 0.25, "acc": [0.9, 1.0], "name": "m"}"#;
        let b = br#"{"loss": 0.2500001, "acc": [0.9, 1.0], "name": "m"}"#;
        assert!(numbers_close("m.json", a, b, 1e-3).is_ok());
        assert_eq!(numbers_close("m.json", a, b, 1e-9).unwrap_err(), "$.loss: 0.25 vs 0.2500001");
        let c = br#"{"loss": 0.25, "acc": [0.9, 1.0], "name": "n"}"#;
        assert!(numbers_close("m.json", a, c, 1.0).unwrap_err().contains("$.name"));
        assert!(numbers_close("m.json", a, br#"{"loss": 0.25}"#, 1.0).unwrap_err().contains("only one"));
    }

    #[test]
    fn csv_numbers_within_tolerance() {
        let a = b"x,y\n1,2.000\n3,4\n";
        assert!(numbers_close("t.csv", a, b"x,y\n1,2.0001\n3,4\n", 1e-3).is_ok());
        assert_eq!(numbers_close("t.csv", a, b"x,y\n1,2.5\n3,4\n", 1e-3).unwrap_err(), "row 2, column 2: 2.000 vs 2.5");
        assert!(numbers_close("t.csv", a, b"x,y\n1,2\n", 1e-3).unwrap_err().contains("rows"));
    }

    #[test]
    fn text_diffs_are_short() {
        let old: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 50\n", "changed\n");
        let diff = text_diff(old.as_bytes(), new.as_bytes()).unwrap();
        assert!(diff.contains("-line 50") && diff.contains("+changed"), "{diff}");
        assert!(diff.lines().count() <= DIFF_LINES + 1);
        assert!(text_diff(&[0xff, 0xfe], b"x").is_none(), "binary files get no diff");
    }
}
