//! `lockstep verify`'s comparison of two runs' outputs, file by file: bytes, then numbers
//! within a tolerance for JSON and CSV, with a short diff of text files that differ.

use crate::support::digest;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::record::{OutputFile, RunRecord};

/// Text files larger than this are compared by digest only.
const DIFF_LIMIT: u64 = 1 << 20;
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
}

impl CompareRules {
    /// `--ignore` globs and `--rtol`, checked.
    pub fn new(ignore: &[String], rtol: Option<f64>) -> Result<CompareRules, CompareError> {
        if let Some(rtol) = rtol.filter(|r| r.is_nan() || *r < 0.0) {
            return Err(CompareError::BadTolerance { value: rtol });
        }
        Ok(CompareRules { ignore: ignore_set(ignore)?, rtol })
    }
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

/// Compare the outputs of the original and the re-run, path by path.
pub fn compare(original: &RunRecord, rerun: &RunRecord, rules: &CompareRules) -> Vec<FileCheck> {
    let (ignore, rtol) = (&rules.ignore, rules.rtol);
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
    (digest::sha256_hex(&bytes) == out.sha256).then_some(bytes)
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
