//! The text of `lockstep diff`: the two runs in two columns, section by section, with a note
//! on each row where they differ (what changed, or a metric's delta).

use std::io::{self, Write};

use crate::commands::diff::{Change, FileChange, FilesDiff, MetricDiff, RunDiff, ValueDiff};
use crate::support::ids::short;

use super::render::format_time;

/// Rows of three columns and a note, aligned over the whole table; headings between them.
#[derive(Default)]
struct Table {
    lines: Vec<Line>,
}

enum Line {
    Heading(String),
    Row { label: String, a: String, b: String, note: String },
}

impl Table {
    /// A heading, after a blank line.
    fn heading(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Heading(String::new()));
        self.lines.push(Line::Heading(text.into()));
    }

    fn row(&mut self, label: impl Into<String>, a: impl Into<String>, b: impl Into<String>, note: impl Into<String>) {
        let (label, a, b, note) = (label.into(), a.into(), b.into(), note.into());
        self.lines.push(Line::Row { label, a, b, note });
    }

    /// A row whose note says whether both values are the same.
    fn compare(&mut self, label: &str, a: String, b: String) {
        let note = if a == b { "" } else { "changed" };
        self.row(format!("  {label}"), a, b, note);
    }

    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let width = |f: fn(&Line) -> Option<&String>| {
            self.lines.iter().filter_map(f).map(|s| s.chars().count()).max().unwrap_or(0)
        };
        let wl = width(|l| match l {
            Line::Row { label, .. } => Some(label),
            Line::Heading(_) => None,
        });
        let wa = width(|l| match l {
            Line::Row { a, .. } => Some(a),
            Line::Heading(_) => None,
        });
        let wb = width(|l| match l {
            Line::Row { b, .. } => Some(b),
            Line::Heading(_) => None,
        });
        for line in &self.lines {
            let text = match line {
                Line::Heading(text) => text.clone(),
                Line::Row { label, a, b, note } => format!("{label:<wl$}  {a:<wa$}  {b:<wb$}  {note}"),
            };
            writeln!(out, "{}", text.trim_end())?;
        }
        Ok(())
    }
}

/// Two runs side by side, as `lockstep diff` prints them.
pub(crate) fn diff(out: &mut impl Write, d: &RunDiff) -> io::Result<()> {
    let mut t = Table::default();
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    t.row("", "A", "B", "");
    t.row("run", short(&d.a.run_id), short(&d.b.run_id), "");
    t.row("name", dash(&d.a.run_name), dash(&d.b.run_name), "");
    t.row("status", d.a.status.name(), d.b.status.name(), "");
    t.row("entry point", &d.a.entry_point, &d.b.entry_point, "");
    t.row("started", format_time(d.a.start_time), format_time(d.b.start_time), "");

    values(&mut t, "parameters", &d.parameters);
    if d.logged {
        values(&mut t, "logged params", &d.logged_params);
        metrics(&mut t, &d.metrics);
    }

    let (s, same) = (&d.source, if d.source.same { "same files" } else { "different files" });
    t.heading(format!("source: {same}"));
    t.compare("kind", s.a.kind.clone(), s.b.kind.clone());
    t.compare("uri", s.a.uri.clone(), s.b.uri.clone());
    let id = |k: &Option<String>| dash(&k.as_deref().map(|k| short(k).to_string()));
    t.compare("commit", id(&s.a.commit), id(&s.b.commit));
    t.compare("tree", short(&s.a.tree_sha256).to_string(), short(&s.b.tree_sha256).to_string());
    let dirty = |d: bool| if d { "yes" } else { "no" }.to_string();
    t.compare("dirty", dirty(s.a.dirty), dirty(s.b.dirty));
    match &s.files {
        None if !s.same => t.row("  files", "not listed in both runs' directories", "", ""),
        None => {}
        Some(files) => {
            t.row("  files", format!("{} differ", files.len()), "", "");
            file_rows(&mut t, files);
        }
    }

    let e = &d.environment;
    t.heading(format!("environment: {}", if e.same { "same" } else { "different" }));
    t.compare("manager", e.a.manager.clone(), e.b.manager.clone());
    t.compare("key", id(&e.a.key), id(&e.b.key));
    if e.a.python.is_some() || e.b.python.is_some() {
        t.compare("python", dash(&e.a.python), dash(&e.b.python));
    }
    if e.a.image_id.is_some() || e.b.image_id.is_some() {
        let image =
            |i: &Option<String>| dash(&i.as_deref().map(|i| short(i.trim_start_matches("sha256:")).to_string()));
        t.compare("image", image(&e.a.image_id), image(&e.b.image_id));
    }
    if !e.packages.is_empty() || e.same_packages > 0 {
        t.row("  packages", format!("{} same, {} differ", e.same_packages, e.packages.len()), "", "");
        for p in &e.packages {
            let name = if p.kind == "conda" { format!("    {} (conda)", p.name) } else { format!("    {}", p.name) };
            t.row(name, dash(&p.a), dash(&p.b), p.change.name());
        }
    }

    files(&mut t, "outputs", &d.outputs);
    for (title, logged) in [("artifacts", &d.artifacts), ("model files", &d.models)] {
        if logged.same > 0 || !logged.changes.is_empty() {
            files(&mut t, title, logged);
        }
    }
    t.write(out)
}

/// A section of named values, each row noted when the runs differ.
fn values(t: &mut Table, title: &str, values: &[ValueDiff]) {
    let differ = values.iter().filter(|v| !v.same).count();
    t.heading(format!("{title}: {} same, {differ} differ", values.len() - differ));
    for v in values {
        let change = match (&v.a, &v.b) {
            _ if v.same => "",
            (Some(_), None) => Change::Removed.name(),
            (None, Some(_)) => Change::Added.name(),
            _ => Change::Changed.name(),
        };
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        t.row(format!("  {}", v.key), dash(&v.a), dash(&v.b), change);
    }
}

/// The logged metrics: each run's last value, and the delta.
fn metrics(t: &mut Table, metrics: &[MetricDiff]) {
    t.heading("metrics: last values");
    for m in metrics {
        let value =
            |s: &Option<crate::record::logged::MetricSummary>| s.map_or("-".to_string(), |s| s.last.to_string());
        let note = match (&m.a, &m.b, m.delta) {
            (Some(_), None, _) => Change::Removed.name().to_string(),
            (None, Some(_), _) => Change::Added.name().to_string(),
            (_, _, Some(delta)) => format_delta(delta),
            (Some(a), Some(b), None) if a.last.to_bits() == b.last.to_bits() => "0".to_string(),
            _ => Change::Changed.name().to_string(),
        };
        t.row(format!("  {}", m.key), value(&m.a), value(&m.b), note);
    }
}

/// A section of files compared by content: the count of same ones, a row for each other.
fn files(t: &mut Table, title: &str, files: &FilesDiff) {
    let count = |c: Change| files.changes.iter().filter(|f| f.change == c).count();
    t.heading(format!(
        "{title}: {} same, {} changed, {} added, {} removed",
        files.same,
        count(Change::Changed),
        count(Change::Added),
        count(Change::Removed)
    ));
    file_rows(t, &files.changes);
}

fn file_rows(t: &mut Table, files: &[FileChange]) {
    let digest = |d: &Option<String>| d.as_deref().map_or("-".to_string(), |d| short(d).to_string());
    for f in files {
        t.row(format!("    {}", f.path), digest(&f.a_sha256), digest(&f.b_sha256), f.change.name());
    }
}

/// A difference of two numbers, signed, to six significant digits: the exact difference of
/// two decimals printed in binary is mostly noise (0.3 - 0.1 is 0.19999999999999998).
pub(crate) fn format_delta(delta: f64) -> String {
    if !delta.is_finite() {
        return delta.to_string();
    }
    if delta == 0.0 {
        return "0".into();
    }
    let magnitude = delta.abs().log10().floor() as i32;
    if !(-4..15).contains(&magnitude) {
        return format!("{delta:+.5e}");
    }
    let decimals = (5 - magnitude).max(0) as usize;
    let text = format!("{delta:+.decimals$}");
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_have_six_significant_digits_and_a_sign() {
        assert_eq!(format_delta(0.3 - 0.1), "+0.2");
        assert_eq!(format_delta(-0.020000000000000018), "-0.02");
        assert_eq!(format_delta(1234.5678), "+1234.57");
        assert_eq!(format_delta(0.0), "0");
        assert_eq!(format_delta(-3.0), "-3");
        assert_eq!(format_delta(2.5e-7), "+2.50000e-7");
        assert_eq!(format_delta(f64::INFINITY), "inf");
        assert_eq!(format_delta(f64::NAN), "NaN");
    }

    #[test]
    fn rows_align_over_the_whole_table_and_lose_trailing_spaces() {
        let mut t = Table::default();
        t.row("run", "a", "bbbb", "");
        t.heading("parameters");
        t.compare("alpha", "0.5".into(), "0.7".into());
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "run      a    bbbb\n\nparameters\n  alpha  0.5  0.7   changed\n");
    }
}
