//! `lockstep verify`'s comparison of two runs' outputs, file by file: bytes, then numbers
//! within a tolerance for JSON and CSV, with a short diff of text files that differ (and,
//! with `--explain`, the [`Evidence`] of each kind of file); and of what their scripts logged
//! ([`compare_logged`]).

mod array;
mod errors;
mod evidence;
mod image;
mod logged;
mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use crate::record::{Objects, OutputFile, RunRecord};
use crate::support::digest;

pub use array::ArrayDiff;
pub use evidence::Evidence;
pub use logged::{LoggedChecks, MetricCheck, RunFiles, compare_logged};

/// Text files larger than this are compared by digest only.
const DIFF_LIMIT: u64 = 1 << 20;
/// Files larger than this get no [`Evidence`]: two of them are read into memory.
const EVIDENCE_LIMIT: u64 = 256 << 20;
/// Lines of diff shown per file.
const DIFF_LINES: usize = 20;

/// Comparison rules that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A glob given to `--ignore` is not valid.
    #[error("bad --ignore glob '{glob}': {message}")]
    BadGlob {
        /// The glob.
        glob: String,
        /// What is wrong.
        message: String,
    },
    /// `--rtol` is negative or not a number.
    #[error("--rtol must be a number of at least 0, not {value}")]
    BadTolerance {
        /// The value.
        value: f64,
    },
}

/// How outputs are compared: which are left out, and how close numbers must be.
pub struct CompareRules {
    ignore: globset::GlobSet,
    rtol: Option<f64>,
    explain: bool,
}

impl CompareRules {
    /// `--ignore` globs and `--rtol`, checked.
    pub fn new(ignore: &[String], rtol: Option<f64>) -> Result<CompareRules, CompareError> {
        if let Some(rtol) = rtol.filter(|r| r.is_nan() || *r < 0.0) {
            return Err(CompareError::BadTolerance { value: rtol });
        }
        Ok(CompareRules { ignore: ignore_set(ignore)?, rtol, explain: false })
    }

    /// The same, with the [`Evidence`] of every file that differs (`--explain`).
    pub fn explaining(self, explain: bool) -> CompareRules {
        CompareRules { explain, ..self }
    }
}

/// How one output, logged artifact or logged metric compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Same bytes (or value).
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

impl Comparison {
    /// Whether this is no difference.
    pub fn matches(self) -> bool {
        matches!(self, Comparison::Identical | Comparison::WithinTolerance | Comparison::Ignored)
    }
}

/// One output's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    /// The output's path.
    pub path: String,
    /// The result.
    pub result: Comparison,
    /// Its sha256 in the original run.
    pub original_sha256: Option<String>,
    /// Its sha256 in the re-run.
    pub rerun_sha256: Option<String>,
    /// A short diff, or where numbers differ.
    pub detail: Option<String>,
    /// With `--explain`, how the contents differ, by kind of file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// A file to compare: its digest, and where its content is.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    /// The recorded file.
    pub(crate) file: OutputFile,
    /// Where its content is (checked against the digest before it is read), when at hand.
    pub(crate) at: Option<PathBuf>,
}

/// Files by the path they are compared under.
pub(crate) type FileSet = BTreeMap<String, Located>;

/// Compare the outputs of the original and the re-run, path by path: each file's kept copy
/// in the store, else the file where the run left it (when it still has the recorded digest).
pub fn compare(original: &RunRecord, rerun: &RunRecord, objects: &Objects, rules: &CompareRules) -> Vec<FileCheck> {
    let located = |r: &RunRecord| -> FileSet {
        let at = |o: &OutputFile| {
            let at = objects.kept(o).unwrap_or_else(|| r.outputs_dir.join(&o.path));
            Located { file: o.clone(), at: Some(at) }
        };
        r.outputs.iter().map(|o| (o.path.clone(), at(o))).collect()
    };
    compare_files(&located(original), &located(rerun), rules, &RunNoise::default())
}

/// Compare two sets of files path by path: digests, then (for files that differ) numbers
/// within `--rtol`, or a short diff; `noise` is what may differ without being a difference.
pub(crate) fn compare_files(
    original: &FileSet,
    rerun: &FileSet,
    rules: &CompareRules,
    noise: &RunNoise,
) -> Vec<FileCheck> {
    let paths: BTreeSet<&String> = original.keys().chain(rerun.keys()).collect();
    paths
        .into_iter()
        .map(|path| {
            let (a, b) = (original.get(path), rerun.get(path));
            let mut check = FileCheck {
                path: path.clone(),
                result: Comparison::Identical,
                original_sha256: a.map(|l| l.file.sha256.clone()),
                rerun_sha256: b.map(|l| l.file.sha256.clone()),
                detail: None,
                evidence: None,
            };
            (check.result, check.detail) = match (a, b) {
                _ if rules.ignore.is_match(path) => (Comparison::Ignored, None),
                (Some(_), None) => (Comparison::Missing, None),
                (None, Some(_)) => (Comparison::Extra, None),
                (Some(a), Some(b)) if a.file.sha256 == b.file.sha256 => (Comparison::Identical, None),
                (Some(a), Some(b)) => {
                    let limit = if rules.explain { EVIDENCE_LIMIT } else { DIFF_LIMIT };
                    match (content(a, limit), content(b, limit)) {
                        (Some(old), Some(new)) => {
                            let (result, detail) = match old.len().max(new.len()) as u64 <= DIFF_LIMIT {
                                true => differing(path, old.clone(), new.clone(), rules.rtol, noise),
                                false => (Comparison::Differs, Some("larger than 1 MiB: compared by digest".into())),
                            };
                            if rules.explain && !result.matches() {
                                check.evidence = Some(evidence::evidence(path, &old, &new));
                            }
                            (result, detail)
                        }
                        _ if a.file.size.max(b.file.size) > limit => {
                            (Comparison::Differs, Some("too large to read: compared by digest".into()))
                        }
                        _ => {
                            let detail = "the original file is no longer at hand: compared by digest";
                            (Comparison::Differs, Some(detail.into()))
                        }
                    }
                }
                (None, None) => (Comparison::Identical, None),
            };
            check
        })
        .collect()
}

/// How two files with different bytes compare: the same once MLflow's per-run noise is
/// mapped, numbers within the tolerance, or different (with a short diff).
fn differing(
    path: &str,
    old: Vec<u8>,
    new: Vec<u8>,
    rtol: Option<f64>,
    noise: &RunNoise,
) -> (Comparison, Option<String>) {
    let (old, new) = match noise.map(path, &old, &new) {
        Some((old, new)) if old == new => {
            let detail = "identical once MLflow's run and model ids, uuids and creation times are mapped";
            return (Comparison::Identical, Some(detail.into()));
        }
        Some((old, new)) => (old.into_bytes(), new.into_bytes()),
        None => (old, new),
    };
    match rtol.filter(|_| numeric_format(path).is_some()) {
        Some(rtol) => match numbers_close(path, &old, &new, rtol) {
            Ok(()) => (Comparison::WithinTolerance, None),
            Err(where_) => (Comparison::Differs, Some(where_)),
        },
        None => (Comparison::Differs, text_diff(&old, &new)),
    }
}

/// What differs from run to run in what MLflow writes, and is no difference: the ids of runs
/// and models (each original id paired with the re-run's), and the time and uuid of a model.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunNoise {
    /// Original id, re-run id.
    pub(crate) ids: Vec<(String, String)>,
}

impl RunNoise {
    /// Both texts with the noise taken out, when there is any to take out and both are text.
    fn map(&self, path: &str, old: &[u8], new: &[u8]) -> Option<(String, String)> {
        if self.ids.is_empty() {
            return None;
        }
        let (old, new) = (std::str::from_utf8(old).ok()?, std::str::from_utf8(new).ok()?);
        let mut old = old.to_string();
        for (original, rerun) in self.ids.iter().filter(|(o, _)| !o.is_empty()) {
            old = old.replace(original.as_str(), rerun);
        }
        let mut new = new.to_string();
        if path.rsplit('/').next() == Some("MLmodel") {
            old = without_per_model_fields(&old);
            new = without_per_model_fields(&new);
        }
        Some((old, new))
    }
}

/// An MLmodel file without the values MLflow makes anew for every model it logs: the time
/// it was made and a random uuid (MLflow itself files them with the run id, as metadata).
fn without_per_model_fields(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match ["utc_time_created:", "model_uuid:"].into_iter().find(|f| line.starts_with(f)) {
            Some(field) => format!("{field}\n"),
            None => line.to_string(),
        })
        .collect()
}

/// A file's content, if it is still the recorded one and at most `limit` bytes.
fn content(l: &Located, limit: u64) -> Option<Vec<u8>> {
    if l.file.size > limit {
        return None;
    }
    let bytes = fs::read(l.at.as_ref()?).ok()?;
    (digest::sha256_hex(&bytes) == l.file.sha256).then_some(bytes)
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

fn ignore_set(globs: &[String]) -> Result<globset::GlobSet, CompareError> {
    let mut set = globset::GlobSetBuilder::new();
    for g in globs {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(false)
            .build()
            .map_err(|e| CompareError::BadGlob { glob: g.clone(), message: e.to_string() })?;
        set.add(glob);
    }
    set.build().map_err(|e| CompareError::BadGlob { glob: globs.join(" "), message: e.to_string() })
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
