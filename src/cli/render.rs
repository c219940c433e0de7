//! The text lockstep prints: tables, run details, JSON, and the formats of times, durations
//! and sizes.

use std::io::{self, Write};

use serde::Serialize;

use super::logged::{metric_cells, show_logged};
use crate::commands::compare::Comparison;
use crate::commands::env::EnvList;
use crate::commands::runs::RunList;
use crate::commands::status::StatusReport;
use crate::commands::verify::{Verdict, VerifyReport};
use crate::env::{EnvRecord, PruneReport};
use crate::record::RunRecord;
use crate::record::logged::MetricSummary;
use crate::support::ids::short;
use crate::support::ui;

/// `value` as pretty JSON and a newline on stdout.
pub(crate) fn json(value: &impl Serialize) -> Result<(), crate::commands::CommandError> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// The runs table of `lockstep runs`.
pub(crate) fn runs(out: &mut impl Write, list: &RunList) -> io::Result<()> {
    if list.runs.is_empty() {
        ui::note(&format!("no runs in {}", list.store.display()));
        return Ok(());
    }
    // Metric columns sit between the duration and the parameters, each as wide as it needs.
    let cells: Vec<Vec<String>> = list.runs.iter().map(|r| metric_cells(r, &list.metrics)).collect();
    let widths: Vec<usize> = list
        .metrics
        .iter()
        .enumerate()
        .map(|(i, name)| cells.iter().map(|c| c[i].len()).chain([name.chars().count()]).max().unwrap_or(0))
        .collect();
    let metric_header: String = list.metrics.iter().zip(&widths).map(|(n, w)| format!("{n:>w$}  ")).collect();
    writeln!(
        out,
        "{:<12}  {:<20}  {:<8}  {:<10}  {:>8}  {metric_header}{:<30}  SOURCE",
        "RUN", "START", "STATUS", "ENTRY", "DURATION", "PARAMETERS"
    )?;
    for (r, cells) in list.runs.iter().zip(&cells) {
        let metrics: String = cells.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}  ")).collect();
        writeln!(
            out,
            "{:<12}  {:<20}  {:<8}  {:<10}  {:>8}  {metrics}{:<30}  {}",
            short(&r.run_id),
            format_time(r.start_time),
            r.status.name(),
            r.entry_point,
            format_duration(r.duration_ms()),
            format_params(r),
            format_source(r),
        )?;
    }
    Ok(())
}

/// The details of one run, as `lockstep show` prints them.
pub(crate) fn show(out: &mut impl Write, r: &RunRecord) -> io::Result<()> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    writeln!(out, "run:          {}", r.run_id)?;
    if let Some(name) = &r.run_name {
        writeln!(out, "name:         {name}")?;
    }
    writeln!(out, "status:       {}", r.status.name())?;
    if let Some(f) = &r.failure {
        writeln!(out, "failure:      {f}")?;
    }
    writeln!(out, "exit code:    {}", r.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()))?;
    writeln!(out, "started:      {}", format_time(r.start_time))?;
    writeln!(out, "duration:     {}", format_duration(r.duration_ms()))?;
    writeln!(out, "entry point:  {}", r.entry_point)?;
    writeln!(out, "command:      {}", r.command)?;
    for (k, v) in &r.parameters {
        writeln!(out, "parameter:    {k}={v}")?;
    }
    writeln!(out, "source:       {} ({})", r.source.uri, format_source(r))?;
    writeln!(out, "commit:       {}", opt(&r.source.commit))?;
    writeln!(out, "branch:       {}", opt(&r.source.branch))?;
    writeln!(out, "repository:   {}", opt(&r.source.repo_url))?;
    writeln!(out, "tree sha256:  {}", r.source.tree_sha256)?;
    writeln!(out, "dirty:        {}", if r.source.dirty { "yes" } else { "no" })?;
    writeln!(out, "environment:  {}", format_environment(&r.environment))?;
    if let Some(uri) = r.environment.image_uri() {
        let id = r.environment.image_id().unwrap_or("-");
        writeln!(out, "image:        {uri} ({id})")?;
    }
    if let Some(t) = &r.tracking {
        let state = if t.synced { "synced" } else { "not synced: `lockstep sync` sends the rest" };
        writeln!(out, "tracking:     {} experiment {} run {} ({state})", t.uri, t.experiment_id, t.run_id)?;
    }
    writeln!(out, "host:         {} {} ({})", r.host.os, r.host.arch, r.host.hostname.as_deref().unwrap_or("-"))?;
    if let Some(b) = &r.backend {
        writeln!(out, "backend:      {} job {} on {}", b.name, b.job_id, b.nodes.as_deref().unwrap_or("-"))?;
    }
    if let Some(id) = &r.verifies {
        let result = r.verification.as_ref().map(|v| v.result.as_str()).unwrap_or("-");
        writeln!(out, "verifies:     {id} ({result})")?;
    }
    writeln!(out, "outputs in:   {}", r.outputs_dir.display())?;
    for o in &r.outputs {
        writeln!(out, "  {}  {:>10}  {}", &o.sha256[..16], o.size, o.path)?;
    }
    if let Some(logged) = &r.logged {
        show_logged(out, logged)?;
    }
    Ok(())
}

/// Each output's, logged metric's and artifact's verdict and the overall one, as `lockstep
/// verify` prints them.
pub(crate) fn verify(out: &mut impl Write, report: &VerifyReport) -> io::Result<()> {
    let label = |result: Comparison| match result {
        Comparison::Identical => "identical",
        Comparison::WithinTolerance => "within tolerance",
        Comparison::Differs => "DIFFERS",
        Comparison::Missing => "MISSING",
        Comparison::Extra => "EXTRA",
        Comparison::Ignored => "ignored",
    };
    let details = |out: &mut dyn Write, detail: &Option<String>| -> io::Result<()> {
        for line in detail.iter().flat_map(|d| d.lines()) {
            writeln!(out, "    {line}")?;
        }
        Ok(())
    };
    for f in &report.files {
        writeln!(out, "{:<16} {}", label(f.result), f.path)?;
        details(out, &f.detail)?;
    }
    for m in &report.metrics {
        let value = |s: &Option<MetricSummary>| s.map_or("-".to_string(), |s| s.last.to_string());
        let values = match m.result {
            Comparison::Identical => value(&m.original),
            _ => format!("{} vs {}", value(&m.original), value(&m.rerun)),
        };
        writeln!(out, "{:<16} metric {} = {values}", label(m.result), m.key)?;
        details(out, &m.detail)?;
    }
    for f in &report.artifacts {
        writeln!(out, "{:<16} artifact {}", label(f.result), f.path)?;
        details(out, &f.detail)?;
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
    writeln!(out, "{verdict} (run {}, verified by run {})", report.run_id, report.verification_run_id)
}

/// Whether the source and the environment are the same, as `lockstep status` prints it.
pub(crate) fn status(out: &mut impl Write, report: &StatusReport) -> io::Result<()> {
    let parts = [("source", &report.source, "CHANGED"), ("environment", &report.environment, "CHANGED")];
    for (name, part, changed) in parts.into_iter().chain([("host", &report.host, "differs")]) {
        writeln!(out, "{name:<12} {:<9} {}", if part.same { "same" } else { changed }, part.detail)?;
        for change in &part.changes {
            writeln!(out, "    {change}")?;
        }
    }
    Ok(())
}

/// The table of `lockstep env list`.
pub(crate) fn env_list(out: &mut impl Write, list: &EnvList) -> io::Result<()> {
    if list.envs.is_empty() {
        ui::note(&format!("no environments in {}", list.cache.display()));
        return Ok(());
    }
    writeln!(out, "{:<16}  {:<10}  {:<8}  {:>8}  {:>9}  LAST USED", "KEY", "MANAGER", "PYTHON", "PACKAGES", "SIZE")?;
    for e in &list.envs {
        writeln!(
            out,
            "{:<16}  {:<10}  {:<8}  {:>8}  {:>9}  {}",
            &e.key[..16.min(e.key.len())],
            e.manager.name(),
            e.python.as_deref().unwrap_or("-"),
            e.packages,
            format_size(e.size),
            format_time(e.last_used_ms)
        )?;
    }
    Ok(())
}

/// The notes of `lockstep env prune`: what it kept and what it freed.
pub(crate) fn env_prune_notes(report: &PruneReport, summary: bool) {
    for key in &report.in_use {
        ui::note(&format!("kept {}: in use by a run", &key[..16.min(key.len())]));
    }
    if summary {
        ui::note(&format!("removed {} environment(s), freed {}", report.removed.len(), format_size(report.freed)));
    }
}

/// A size in bytes as people read it: KiB, MiB or GiB.
pub(crate) fn format_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1024 * 1024 * 1024 => format!("{:.1} MiB", b as f64 / 1048576.0),
        b => format!("{:.2} GiB", b as f64 / 1073741824.0),
    }
}

/// A time in ms since the epoch, in RFC 3339 to the second.
pub(crate) fn format_time(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A duration in ms, short: 250ms, 1.5s, 2m05s; `-` when unknown.
pub(crate) fn format_duration(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
    }
}

/// An environment in one line: its manager, key, interpreter and package counts.
pub(crate) fn format_environment(env: &EnvRecord) -> String {
    let mut parts = Vec::new();
    if let Some(key) = env.key() {
        parts.push(format!("key {}", short(key)));
    }
    if let Some(version) = env.python_version() {
        parts.push(format!("python {version}"));
    }
    if env.conda_package_count() > 0 {
        parts.push(format!("{} conda packages", env.conda_package_count()));
    }
    if let Some(count) = env.python_package_count() {
        parts.push(format!("{count} Python packages"));
    }
    match parts.is_empty() {
        true => env.manager().to_string(),
        false => format!("{} ({})", env.manager(), parts.join(", ")),
    }
}

/// A run's parameters as `k=v` pairs, cut to 30 characters.
fn format_params(r: &RunRecord) -> String {
    let s: Vec<String> = r.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let s = s.join(" ");
    if s.chars().count() > 30 { format!("{}...", s.chars().take(27).collect::<String>()) } else { s }
}

/// A run's source in short: its kind and commit (or tree hash).
fn format_source(r: &RunRecord) -> String {
    let s = &r.source;
    let kind = s.kind.name();
    match &s.commit {
        Some(c) => format!("{kind} {}{}", short(c), if s.dirty { "+dirty" } else { "" }),
        None => format!("{kind} {}", short(&s.tree_sha256)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_people_write_them() {
        assert_eq!(format_size(512), "0.5 KiB");
        assert_eq!(format_size(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(format_size(5 * 1024 * 1024 * 1024), "5.00 GiB");
        assert_eq!(format_duration(None), "-");
        assert_eq!(format_duration(Some(250)), "250ms");
        assert_eq!(format_duration(Some(1500)), "1.5s");
        assert_eq!(format_duration(Some(125_000)), "2m05s");
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }
}
