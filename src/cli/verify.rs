//! The text of `lockstep verify`: each output's, logged metric's and artifact's verdict, the
//! overall one and why (the [`Cause`]), with `--explain` the evidence of each kind of file
//! and a table of metric deltas, and what `--repeat` and `--isolate` found.

use std::io::{self, Write};

use crate::commands::compare::{Comparison, Evidence};
use crate::commands::verify::{Cause, InputChange, Isolation, Repetitions, Verdict, VerifyReport};
use crate::record::logged::MetricSummary;

/// Lines of a list (host differences, say) shown at most.
const LIST_LINES: usize = 20;

/// `report` as text; `explain` adds the evidence of each differing file and the metric deltas.
pub(crate) fn render(out: &mut impl Write, report: &VerifyReport, explain: bool) -> io::Result<()> {
    let label = |result: Comparison| match result {
        Comparison::Identical => "identical",
        Comparison::WithinTolerance => "within tolerance",
        Comparison::Differs => "DIFFERS",
        Comparison::Missing => "MISSING",
        Comparison::Extra => "EXTRA",
        Comparison::Ignored => "ignored",
    };
    let details = |out: &mut dyn Write, detail: &Option<String>, evidence: &Option<Evidence>| -> io::Result<()> {
        for line in detail.iter().flat_map(|d| d.lines()) {
            writeln!(out, "    {line}")?;
        }
        for line in evidence.iter().flat_map(evidence_lines) {
            writeln!(out, "    {line}")?;
        }
        Ok(())
    };
    for f in &report.files {
        writeln!(out, "{:<16} {}", label(f.result), f.path)?;
        details(out, &f.detail, &f.evidence)?;
    }
    for m in &report.metrics {
        let value = |s: &Option<MetricSummary>| s.map_or("-".to_string(), |s| s.last.to_string());
        let values = match m.result {
            Comparison::Identical => value(&m.original),
            _ => format!("{} vs {}", value(&m.original), value(&m.rerun)),
        };
        writeln!(out, "{:<16} metric {} = {values}", label(m.result), m.key)?;
        details(out, &m.detail, &None)?;
    }
    for f in &report.artifacts {
        writeln!(out, "{:<16} artifact {}", label(f.result), f.path)?;
        details(out, &f.detail, &f.evidence)?;
    }
    if explain {
        metric_deltas(out, report)?;
    }
    let what: Vec<&str> = [
        ("outputs", report.files.iter().any(|f| !f.result.matches())),
        ("metrics", report.metrics.iter().any(|m| !m.result.matches())),
        ("artifacts", report.artifacts.iter().any(|f| !f.result.matches())),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect();
    let verdict = match report.result {
        Verdict::Reproduced if report.metrics.is_empty() && report.artifacts.is_empty() => {
            "reproduced: every output matches".to_string()
        }
        Verdict::Reproduced => "reproduced: every output, logged metric and artifact matches".to_string(),
        Verdict::Failed => format!(
            "not reproduced: the re-run ended {} (exit code {})",
            report.rerun_status.name(),
            report.rerun_exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into())
        ),
        Verdict::Differs => format!("not reproduced: {} differ", what.join(" and ")),
    };
    writeln!(out, "{verdict} (run {}, verified by run {})", report.run_id, report.verification_run_id)?;
    if let Some(cause) = &report.cause {
        cause_lines(out, cause)?;
    }
    if let Some(r) = &report.repetitions {
        repetitions(out, r)?;
    }
    if let (Some(i), Some(r)) = (&report.isolation, &report.repetitions) {
        isolation(out, i, r)?;
    }
    Ok(())
}

fn cause_lines(out: &mut impl Write, cause: &Cause) -> io::Result<()> {
    writeln!(out, "why: {}", cause.words())?;
    let (inputs, host): (&[InputChange], &[String]) = match cause {
        Cause::InputsChanged { inputs, host } => (inputs, host),
        Cause::DifferentMachine { host } => (&[], host),
        Cause::Nondeterministic { varying } if !varying.is_empty() => {
            return writeln!(out, "    varies between repetitions here: {}", varying.join(", "));
        }
        Cause::Nondeterministic { .. } => {
            return writeln!(
                out,
                "    the inputs and the machine are the run's; `verify --isolate` looks for the factor"
            );
        }
    };
    for c in inputs {
        let part = serde_json::to_value(c.part).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let name = c.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
        let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        writeln!(out, "    {}{name}: {} -> {}", part.replace('_', " "), side(&c.original), side(&c.rerun))?;
    }
    if !host.is_empty() {
        let also = if inputs.is_empty() { "" } else { "also, " };
        writeln!(out, "    {also}this machine differs from the run's:")?;
        for line in host.iter().take(LIST_LINES) {
            writeln!(out, "    {line}")?;
        }
        if host.len() > LIST_LINES {
            writeln!(out, "    ... {} more", host.len() - LIST_LINES)?;
        }
    }
    Ok(())
}

fn repetitions(out: &mut impl Write, r: &Repetitions) -> io::Result<()> {
    if r.varying.is_empty() {
        return writeln!(out, "repeat: {} re-runs; nothing varies between them", r.runs.len());
    }
    writeln!(out, "repeat: {} re-runs; what varies between them:", r.runs.len())?;
    for v in &r.varying {
        writeln!(out, "    {} ({} values)", v.name, v.distinct)?;
    }
    Ok(())
}

fn isolation(out: &mut impl Write, i: &Isolation, r: &Repetitions) -> io::Result<()> {
    if r.varying.is_empty() {
        let why = match r.runs.len() {
            1 => "--max-runs left no room to repeat".to_string(),
            n => format!("nothing varied between {n} re-runs"),
        };
        return writeln!(out, "isolate: {why}: no factor to isolate");
    }
    match i.stabilising.as_slice() {
        [] if i.trials.is_empty() => writeln!(out, "isolate: --max-runs left no room to pin a factor")?,
        [] => writeln!(
            out,
            "isolate: no single pinned factor makes the outputs stable: the randomness is the code's own (an unseeded generator?) or takes several factors"
        )?,
        factors => {
            let words: Vec<&str> = factors.iter().map(|f| f.words()).collect();
            writeln!(out, "isolate: pinning {} makes the outputs stable", words.join(", or "))?
        }
    }
    for t in &i.trials {
        match t.stable {
            true => writeln!(out, "    stable   {}", t.factor.words())?,
            false if t.varying.is_empty() => {
                writeln!(out, "    failed   {}: a re-run did not finish", t.factor.words())?
            }
            false => writeln!(out, "    varies   {}: {}", t.factor.words(), t.varying.join(", "))?,
        }
    }
    for f in &i.untried {
        writeln!(out, "    untried  {} (--max-runs)", f.words())?;
    }
    Ok(())
}

/// The last values of the metrics that differ, with their absolute and relative deltas.
fn metric_deltas(out: &mut impl Write, report: &VerifyReport) -> io::Result<()> {
    let rows: Vec<[String; 5]> = report
        .metrics
        .iter()
        .filter(|m| !m.result.matches())
        .map(|m| {
            let last = |s: &Option<MetricSummary>| s.map(|s| s.last);
            let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v}"));
            let (a, b) = (last(&m.original), last(&m.rerun));
            let abs = a.zip(b).map(|(a, b)| (b - a).abs());
            let rel = a.zip(b).map(|(a, b)| if a == b { 0.0 } else { (b - a).abs() / a.abs().max(b.abs()) });
            let short = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3e}"));
            [m.key.clone(), cell(a), cell(b), short(abs), short(rel)]
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let header = ["metric", "original", "re-run", "abs delta", "rel delta"].map(str::to_string);
    let widths: Vec<usize> =
        (0..5).map(|i| rows.iter().chain([&header]).map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    writeln!(out, "metric deltas (last values):")?;
    for row in [&header].into_iter().chain(&rows) {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        writeln!(out, "    {}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

/// How two versions of a file differ, in a few lines.
fn evidence_lines(evidence: &Evidence) -> Vec<String> {
    let errors = |abs: Option<f64>, rel: Option<f64>| match abs.zip(rel) {
        Some((abs, rel)) => format!("; max abs error {abs:.3e}, max rel error {rel:.3e}"),
        None => String::new(),
    };
    match evidence {
        Evidence::Text { lines_original, lines_rerun, .. } => {
            vec![format!("text: {lines_original} lines, the re-run's {lines_rerun}")]
        }
        Evidence::Json(t) | Evidence::Csv(t) => {
            let kind = if matches!(evidence, Evidence::Json(_)) { "json" } else { "csv" };
            let mut lines = vec![format!(
                "{kind}: {} of {} values differ{}",
                t.differing,
                t.compared,
                errors(t.max_abs, t.max_rel)
            )];
            if let Some(f) = &t.first {
                lines.push(format!("first at {}: {} vs {}", f.at, f.original, f.rerun));
                if let (Some(a), Some(b)) = (&f.record_original, &f.record_rerun) {
                    lines.push(format!("  in record {a}"));
                    lines.push(format!("  re-run's  {b}"));
                }
            }
            lines.extend(t.structure.iter().map(|s| format!("shape: {s}")));
            lines
        }
        Evidence::Npy(a) => vec![array_line("npy", a)],
        Evidence::Npz { members } => members
            .iter()
            .filter(|m| m.result != "identical")
            .map(|m| match &m.array {
                Some(a) => array_line(&format!("npz {}", m.name), a),
                None => format!("npz {}: {}", m.name, m.result),
            })
            .collect(),
        Evidence::Image(i) => vec![match (i.pixels, i.differing_pixels) {
            (Some(n), Some(d)) => {
                format!("png: {}x{}; {d} of {n} pixels differ", i.dimensions_original.0, i.dimensions_original.1)
            }
            _ => format!(
                "png: {}x{}, the re-run's {}x{}",
                i.dimensions_original.0, i.dimensions_original.1, i.dimensions_rerun.0, i.dimensions_rerun.1
            ),
        }],
        Evidence::Binary { size_original, size_rerun, first_differing_offset } => vec![format!(
            "binary: {size_original} bytes, the re-run's {size_rerun}; first difference at byte {first_differing_offset}"
        )],
    }
}

fn array_line(what: &str, a: &crate::commands::compare::ArrayDiff) -> String {
    let shape = |s: &[u64]| format!("({})", s.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
    match (a.elements, a.differing) {
        (Some(n), Some(d)) => {
            let first = a.first_differing_index.map(|i| format!(" (first at index {i})")).unwrap_or_default();
            let errors = match a.max_abs.zip(a.max_rel) {
                Some((abs, rel)) => format!("; max abs error {abs:.3e}, max rel error {rel:.3e}"),
                None => String::new(),
            };
            format!(
                "{what}: {} {}; {d} of {n} elements differ{first}{errors}",
                shape(&a.shape_original),
                a.dtype_original
            )
        }
        _ => format!(
            "{what}: {} {}, the re-run's {} {}",
            shape(&a.shape_original),
            a.dtype_original,
            shape(&a.shape_rerun),
            a.dtype_rerun
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::compare::MetricCheck;
    use crate::commands::verify::Cause;
    use crate::record::RunStatus;

    #[test]
    fn explain_shows_a_table_of_metric_deltas_and_the_cause() {
        let summary = |last| MetricSummary { last, step: 3, min: 0.0, max: 1.0, count: 4 };
        let metric = |key: &str, result, a, b| MetricCheck {
            key: key.into(),
            result,
            original: Some(summary(a)),
            rerun: Some(summary(b)),
            detail: None,
        };
        let report = VerifyReport {
            run_id: "aa11".into(),
            verification_run_id: "bb22".into(),
            result: Verdict::Differs,
            rerun_status: RunStatus::Finished,
            rerun_exit_code: Some(0),
            files: Vec::new(),
            metrics: vec![
                metric("acc", Comparison::Identical, 0.9, 0.9),
                metric("loss", Comparison::Differs, 0.5, 0.4),
            ],
            artifacts: Vec::new(),
            cause: Some(Cause::DifferentMachine { host: vec!["cpu: A -> B".into()] }),
            repetitions: None,
            isolation: None,
        };
        let mut out = Vec::new();
        render(&mut out, &report, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("    metric  original  re-run  abs delta  rel delta\n"), "{text}");
        assert!(text.contains("    loss    0.5       0.4     1.000e-1   2.000e-1\n"), "{text}");
        assert!(!text.contains("    acc "), "only metrics that differ: {text}");
        assert!(
            text.ends_with(
                "why: same inputs, different machine\n    this machine differs from the run's:\n    cpu: A -> B\n"
            ),
            "{text}"
        );
        let mut out = Vec::new();
        render(&mut out, &report, false).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("metric deltas"), "the table is --explain's");
    }
}
