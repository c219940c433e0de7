//! The text lockstep prints: tables, run details, JSON, and the formats of times, durations
//! and sizes.

use std::io::{self, Write};

use serde::Serialize;

use super::logged::show_logged;
use crate::commands::env::EnvList;
use crate::commands::status::StatusReport;
use crate::env::{EnvRecord, PruneReport};
use crate::record::RunRecord;
use crate::support::ids::short;
use crate::support::ui;

/// `value` as pretty JSON and a newline on stdout.
pub(crate) fn json(value: &impl Serialize) -> Result<(), crate::commands::CommandError> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// The details of one run, as `lockstep show` prints them.
pub(crate) fn show(out: &mut impl Write, r: &RunRecord) -> io::Result<()> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    writeln!(out, "run:          {}", r.run_id)?;
    if let Some(name) = &r.run_name {
        writeln!(out, "name:         {name}")?;
    }
    writeln!(out, "project:      {}", r.project())?;
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
    writeln!(out, "source:       {} ({})", r.source.uri, source_cell(r, false))?;
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
    if r.outputs.iter().any(|o| o.kept) {
        writeln!(out, "kept:         in the store (`lockstep outputs {}` restores them)", r.run_id)?;
    }
    for o in &r.outputs {
        let kept = if o.kept { "" } else { "  (sha256 only: no copy kept)" };
        writeln!(out, "  {}  {:>10}  {}{kept}", &o.sha256[..16], o.size, o.path)?;
    }
    if let Some(logged) = &r.logged {
        show_logged(out, logged)?;
    }
    Ok(())
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
    writeln!(
        out,
        "{:<16}  {:<10}  {:<8}  {:>8}  {:>9}  {:<20}  PROJECTS",
        "KEY", "MANAGER", "PYTHON", "PACKAGES", "SIZE", "LAST USED"
    )?;
    for listed in &list.envs {
        let e = &listed.env;
        let projects = if listed.projects.is_empty() { "-".to_string() } else { listed.projects.join(", ") };
        writeln!(
            out,
            "{:<16}  {:<10}  {:<8}  {:>8}  {:>9}  {:<20}  {projects}",
            &e.key[..16.min(e.key.len())],
            e.manager.name(),
            e.python.as_deref().unwrap_or("-"),
            e.packages,
            ui::size(e.size),
            format_time(e.last_used_ms)
        )?;
    }
    writeln!(out, "{} environments, {} in all", list.envs.len(), ui::size(list.total_size))?;
    Ok(())
}

/// The notes of `lockstep env prune`: what it kept and what it freed.
pub(crate) fn env_prune_notes(report: &PruneReport, summary: bool) {
    for key in &report.in_use {
        ui::note(&format!("kept {}: in use by a run", &key[..16.min(key.len())]));
    }
    if summary {
        ui::note(&format!("removed {} environment(s), freed {}", report.removed.len(), ui::size(report.freed)));
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

/// A run's source: its kind and its hash, labelled as a commit or a tree hash (`+dirty` when
/// the files differ from the commit); `short`, only the label and 8 digits.
pub(crate) fn source_cell(r: &RunRecord, short_form: bool) -> String {
    let s = &r.source;
    let (label, hash, dirty) = match &s.commit {
        Some(c) => ("commit", c.as_str(), if s.dirty { "+dirty" } else { "" }),
        None => ("tree", s.tree_sha256.as_str(), ""),
    };
    match short_form {
        true => format!("{label} {}{dirty}", hash.get(..8).unwrap_or(hash)),
        false => format!("{} {label} {}{dirty}", s.kind.name(), short(hash)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(format_duration(None), "-");
        assert_eq!(format_duration(Some(250)), "250ms");
        assert_eq!(format_duration(Some(1500)), "1.5s");
        assert_eq!(format_duration(Some(125_000)), "2m05s");
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }
}
