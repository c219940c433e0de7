//! JSON documents leaf by leaf and CSV tables cell by cell: how many values differ, the
//! first that does (with the record it is in), and the largest absolute and relative errors
//! of the numbers.

use serde::Serialize;
use serde_json::Value;

use super::errors::Errors;

/// Records are shown up to this many characters.
const RECORD_CHARS: usize = 200;

/// The first value that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstDifference {
    /// Where: a JSON path (`$.runs[2].loss`) or a cell (`row 3, column loss`).
    pub at: String,
    /// The original value.
    pub original: String,
    /// The re-run's value.
    pub rerun: String,
    /// The record it is in, in the original (a CSV row, a top-level JSON item).
    pub record_original: Option<String>,
    /// The same record in the re-run's.
    pub record_rerun: Option<String>,
}

/// Two JSON documents or CSV tables, compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableDiff {
    /// Values (JSON leaves, CSV cells) compared.
    pub compared: usize,
    /// Values that differ, and places where one side has what the other has not.
    pub differing: usize,
    /// The first difference.
    pub first: Option<FirstDifference>,
    /// The largest |a - b| of the numbers that differ.
    pub max_abs: Option<f64>,
    /// The largest |a - b| / max(|a|, |b|) of the numbers that differ.
    pub max_rel: Option<f64>,
    /// Where the shapes differ (rows, columns, array lengths, keys), first one.
    pub structure: Option<String>,
}

#[derive(Default)]
struct Walk {
    /// The numbers.
    errors: Errors,
    /// Other values (and places where one side has what the other has not): compared, differing.
    others: (usize, usize),
    first: Option<FirstDifference>,
    structure: Option<String>,
}

impl Walk {
    fn differ(&mut self, at: String, a: String, b: String) {
        if self.first.is_none() {
            self.first = Some(FirstDifference { at, original: a, rerun: b, record_original: None, record_rerun: None });
        }
    }

    fn shape(&mut self, what: String) {
        self.others.0 += 1;
        self.others.1 += 1;
        self.structure.get_or_insert(what);
    }

    /// A value that is not a number on both sides.
    fn other(&mut self, at: impl FnOnce() -> String, a: String, b: String) {
        self.others.0 += 1;
        if a != b {
            self.others.1 += 1;
            self.differ(at(), a, b);
        }
    }

    fn finish(self) -> TableDiff {
        let numbers = self.errors.differing > 0;
        TableDiff {
            compared: self.errors.compared + self.others.0,
            differing: self.errors.differing + self.others.1,
            first: self.first,
            max_abs: numbers.then_some(self.errors.max_abs),
            max_rel: numbers.then_some(self.errors.max_rel),
            structure: self.structure,
        }
    }
}

/// Two JSON documents leaf by leaf; `None` when either is not JSON.
pub fn json(old: &[u8], new: &[u8]) -> Option<TableDiff> {
    let (a, b): (Value, Value) = (serde_json::from_slice(old).ok()?, serde_json::from_slice(new).ok()?);
    let mut walk = Walk::default();
    json_walk(&a, &b, "$", &mut walk);
    let mut diff = walk.finish();
    if let Some(first) = diff.first.as_mut() {
        // The top-level item the difference is in: an array's element or an object's member.
        let item = |v: &Value| -> Option<String> {
            let rest = first.at.strip_prefix('$')?;
            let item = match rest.strip_prefix('[') {
                Some(index) => v.get(index.split(']').next()?.parse::<usize>().ok()?)?,
                None => v.get(rest.strip_prefix('.')?.split(['.', '[']).next()?)?,
            };
            Some(shorten(&item.to_string()))
        };
        (first.record_original, first.record_rerun) = (item(&a), item(&b));
    }
    Some(diff)
}

fn json_walk(a: &Value, b: &Value, at: &str, walk: &mut Walk) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            if walk.errors.add(x, y) {
                walk.differ(at.to_string(), x.to_string(), y.to_string());
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                walk.shape(format!("{at}: {} items vs {}", x.len(), y.len()));
            }
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                json_walk(p, q, &format!("{at}[{i}]"), walk);
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().filter(|k| !y.contains_key(*k)).chain(y.keys().filter(|k| !x.contains_key(*k))) {
                walk.shape(format!("{at}.{k}: present in only one of them"));
            }
            for (k, p) in x {
                if let Some(q) = y.get(k) {
                    json_walk(p, q, &format!("{at}.{k}"), walk);
                }
            }
        }
        _ => walk.other(|| at.to_string(), a.to_string(), b.to_string()),
    }
}

/// Two CSV tables cell by cell (comma-separated, one record a line); the first row names
/// the columns when it is not all numbers. `None` when either is not UTF-8.
pub fn csv(old: &[u8], new: &[u8]) -> Option<TableDiff> {
    let (a, b) = (std::str::from_utf8(old).ok()?, std::str::from_utf8(new).ok()?);
    let (rows_a, rows_b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let header: Vec<String> = rows_a.first().map(|h| fields(h)).unwrap_or_default();
    let named = header.iter().any(|c| c.trim().parse::<f64>().is_err());
    let mut walk = Walk::default();
    if rows_a.len() != rows_b.len() {
        walk.shape(format!("{} rows vs {}", rows_a.len(), rows_b.len()));
    }
    for (row, (x, y)) in rows_a.iter().zip(&rows_b).enumerate() {
        let (xs, ys) = (fields(x), fields(y));
        if xs.len() != ys.len() {
            walk.shape(format!("row {}: {} columns vs {}", row + 1, xs.len(), ys.len()));
        }
        let before = walk.first.is_some();
        for (col, (p, q)) in xs.iter().zip(&ys).enumerate() {
            let column = match named {
                true => header.get(col).map_or_else(|| (col + 1).to_string(), |h| h.trim().to_string()),
                false => (col + 1).to_string(),
            };
            let at = || format!("row {}, column {column}", row + 1);
            match (p.trim().parse::<f64>(), q.trim().parse::<f64>()) {
                (Ok(u), Ok(v)) => {
                    if walk.errors.add(u, v) {
                        walk.differ(at(), p.to_string(), q.to_string());
                    }
                }
                _ => walk.other(at, p.to_string(), q.to_string()),
            }
        }
        if !before && let Some(first) = walk.first.as_mut() {
            (first.record_original, first.record_rerun) = (Some(shorten(x)), Some(shorten(y)));
        }
    }
    Some(walk.finish())
}

/// The fields of one CSV record as RFC 4180 writes them: a field in double quotes may hold
/// commas, and `""` inside it is one quote.
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(RECORD_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_documents_compare_leaf_by_leaf() {
        let a = br#"{"runs": [{"loss": 0.5, "name": "a"}, {"loss": 2.0, "name": "b"}], "n": 2}"#;
        let b = br#"{"runs": [{"loss": 0.5, "name": "a"}, {"loss": 2.5, "name": "c"}], "n": 2}"#;
        let d = json(a, b).unwrap();
        assert_eq!((d.compared, d.differing), (5, 2));
        assert_eq!((d.max_abs, d.max_rel), (Some(0.5), Some(0.2)));
        let first = d.first.unwrap();
        assert_eq!((first.at.as_str(), first.original.as_str(), first.rerun.as_str()), ("$.runs[1].loss", "2", "2.5"));
        assert!(first.record_original.unwrap().starts_with("[{\"loss\":0.5"), "the top-level member");
        let d = json(br#"[1, {"x": 1}]"#, br#"[1, {"y": 1}, 3]"#).unwrap();
        assert_eq!(d.structure.as_deref(), Some("$: 2 items vs 3"));
        assert_eq!(d.max_abs, None, "no number differs");
        assert!(json(b"{", b"{}").is_none());
    }

    #[test]
    fn csv_tables_compare_cell_by_cell_with_the_first_differing_record() {
        let a = b"step,loss,tag\n1,0.5,a\n2,0.25,b\n3,0.125,c\n";
        let b = b"step,loss,tag\n1,0.5,a\n2,0.3,b\n3,0.125,x\n";
        let d = csv(a, b).unwrap();
        assert_eq!((d.compared, d.differing), (12, 2));
        assert_eq!(d.max_abs.map(|x| (x * 1e9).round() / 1e9), Some(0.05));
        let first = d.first.unwrap();
        assert_eq!(first.at, "row 3, column loss");
        assert_eq!(
            (first.record_original.unwrap(), first.record_rerun.unwrap()),
            ("2,0.25,b".into(), "2,0.3,b".into())
        );
        let d = csv(b"name,score\n\"Smith, J\",1.5\n", b"name,score\n\"Smith, J\",2.5\n").unwrap();
        assert_eq!((d.compared, d.differing), (4, 1), "a quoted comma is inside its field");
        assert_eq!(d.first.unwrap().at, "row 2, column score");
        assert_eq!(fields(r#"a,"b ""q"", c",d"#), ["a", r#"b "q", c"#, "d"]);
        let d = csv(b"1,2\n3,4\n", b"1,2\n").unwrap();
        assert_eq!(d.structure.as_deref(), Some("2 rows vs 1"));
    }
}
