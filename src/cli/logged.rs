//! What the script logged, as `lockstep runs` (metric columns) and `lockstep show` (params,
//! metrics, tags, artifacts, models, nested runs) print it.

use std::io::{self, Write};

use crate::record::logged::{Logged, MetricSummary};
use crate::record::{OutputFile, RunRecord};
use crate::support::ids::short;

/// A metric value in at most 6 significant digits, exponent form for very large or small ones.
pub(crate) fn format_metric(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let magnitude = v.abs();
    if magnitude != 0.0 && !(1e-4..1e6).contains(&magnitude) {
        return format!("{v:.4e}");
    }
    let decimals = if magnitude == 0.0 { 0 } else { (5 - magnitude.log10().floor() as i32).clamp(0, 9) as usize };
    let text = format!("{v:.decimals$}");
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    }
}

/// The metric cells of a run for `names`, `-` where it has none.
pub(crate) fn metric_cells(r: &RunRecord, names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| match r.logged.as_ref().and_then(|l| l.metrics.get(n)) {
            Some(m) => format_metric(m.last),
            None => "-".into(),
        })
        .collect()
}

/// The `show` section of what the script logged.
pub(crate) fn show_logged(out: &mut impl Write, logged: &Logged) -> io::Result<()> {
    for (k, v) in &logged.params {
        writeln!(out, "logged param: {k}={v}")?;
    }
    metrics_table(out, "metrics:", &logged.metrics, "  ")?;
    for (k, v) in &logged.tags {
        writeln!(out, "tag:          {k}={v}")?;
    }
    files(out, "artifacts:", &logged.artifacts, "  ")?;
    for m in &logged.models {
        let status = m.status.as_deref().map(|s| s.strip_prefix("LOGGED_MODEL_").unwrap_or(s)).unwrap_or("-");
        writeln!(
            out,
            "model:        {} {} ({status}, {} files in {})",
            m.model_id,
            m.name,
            m.files.len(),
            m.artifact_path
        )?;
        for f in &m.files {
            writeln!(out, "    {}  {:>10}  {}", &f.sha256[..16], f.size, f.path)?;
        }
    }
    for n in &logged.nested {
        let name = n.name.as_deref().unwrap_or("-");
        let parent = n.parent.as_deref().map(|p| format!(", in {}", short(p))).unwrap_or_default();
        writeln!(out, "nested run:   {} {name} ({}{parent})", short(&n.run_id), n.status)?;
        for (k, v) in &n.params {
            writeln!(out, "    param {k}={v}")?;
        }
        metrics_table(out, "    metrics:", &n.metrics, "      ")?;
        files(out, "    artifacts:", &n.artifacts, "      ")?;
    }
    Ok(())
}

fn metrics_table(
    out: &mut impl Write,
    title: &str,
    metrics: &std::collections::BTreeMap<String, MetricSummary>,
    indent: &str,
) -> io::Result<()> {
    if metrics.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title}")?;
    let width = metrics.keys().map(|k| k.chars().count()).max().unwrap_or(0).max(6);
    writeln!(
        out,
        "{indent}{:<width$}  {:>12}  {:>12}  {:>12}  {:>8}  {:>6}",
        "METRIC", "LAST", "MIN", "MAX", "STEP", "STEPS"
    )?;
    for (k, m) in metrics {
        writeln!(
            out,
            "{indent}{k:<width$}  {:>12}  {:>12}  {:>12}  {:>8}  {:>6}",
            format_metric(m.last),
            format_metric(m.min),
            format_metric(m.max),
            m.step,
            m.count
        )?;
    }
    Ok(())
}

fn files(out: &mut impl Write, title: &str, files: &[OutputFile], indent: &str) -> io::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title}")?;
    for f in files {
        writeln!(out, "{indent}{}  {:>10}  {}", &f.sha256[..16], f.size, f.path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_read_in_six_significant_digits() {
        assert_eq!(format_metric(0.123456789), "0.123457");
        assert_eq!(format_metric(1234.5), "1234.5");
        assert_eq!(format_metric(2.0), "2");
        assert_eq!(format_metric(0.0), "0");
        assert_eq!(format_metric(-0.5), "-0.5");
        assert_eq!(format_metric(12345678.0), "1.2346e7");
        assert_eq!(format_metric(0.00001234), "1.2340e-5");
        assert_eq!(format_metric(f64::NAN), "NaN");
        assert_eq!(format_metric(f64::NEG_INFINITY), "-inf");
    }
}
