//! Runs compared: their metric curves overlaid, a table of their parameters and metrics
//! (differences marked), and for two runs the `lockstep diff` view: the source files that
//! changed (with the dirty patches' difference), the environment's packages, and the
//! outputs that differ, with their text diff when both files are still the runs' own.

use std::collections::BTreeSet;

use super::super::html::{self, esc, link};
use super::super::index::{Index, RunEntry};
use super::super::query::Query;
use super::super::reply::Reply;
use super::charts::{self, XAxis};
use crate::commands::diff::{FileChange, FilesDiff, RunDiff, compare_runs};
use crate::pipeline::{FoundRun, RecordPlace};
use crate::record::RunRecord;
use crate::support::chart::PALETTE;
use crate::support::ids::short;

/// At most this many runs are compared, and this many metrics charted.
const MAX_RUNS: usize = 12;
const MAX_CHARTS: usize = 16;
/// Outputs larger than this are not diffed as text.
const MAX_DIFFED: u64 = 256 * 1024;

/// The page comparing the runs of `runs=ID,ID,...`.
pub(crate) fn page(index: &mut Index, query: &Query, store: &str) -> Reply {
    let asked: Vec<&str> = query.get("runs").unwrap_or("").split(',').filter(|s| !s.is_empty()).collect();
    let mut runs: Vec<RunEntry> = Vec::new();
    for id in &asked {
        match index.find(id) {
            Some(r) if !runs.iter().any(|o| o.record.run_id == r.record.run_id) => runs.push(r.clone()),
            Some(_) => {}
            None => return Reply::error(404, &format!("no run '{id}' in this store")),
        }
    }
    if runs.len() < 2 || runs.len() > MAX_RUNS {
        return Reply::error(400, &format!("compare needs 2 to {MAX_RUNS} different runs: ?runs=ID,ID"));
    }
    let x = charts::axis_of(query);
    let mut main = String::from("<h1>Compare</h1><ul class=\"compared\">");
    for (i, r) in runs.iter().enumerate() {
        main.push_str(&format!(
            r#"<li><span class="swatch c{}"></span>{} {}</li>"#,
            i % PALETTE.len(),
            link(&format!("/run/{}", r.record.run_id), short(&r.record.run_id)),
            esc(&label(&r.record))
        ));
    }
    main.push_str("</ul>");
    main.push_str(&values_table(&runs));
    main.push_str(&overlaid(index, &runs, query, x));
    if let [a, b] = runs.as_slice() {
        main.push_str(&two_runs(index, a, b));
    }
    Reply::html(html::page("compare", store, &main))
}

fn label(r: &RunRecord) -> String {
    format!("{} · {}", r.run_name.as_deref().unwrap_or(&r.entry_point), html::time(r.start_time))
}

/// Parameters (given and logged) and metrics' last values, a column per run; rows whose
/// values differ are marked.
fn values_table(runs: &[RunEntry]) -> String {
    let mut rows: Vec<(String, Vec<Option<String>>)> = Vec::new();
    let params: BTreeSet<&String> = runs.iter().flat_map(|r| r.record.parameters.keys()).collect();
    for k in params {
        rows.push((format!("param {k}"), runs.iter().map(|r| r.record.parameters.get(k).cloned()).collect()));
    }
    let logged = |r: &RunEntry| r.record.logged.clone().unwrap_or_default();
    let logged_params: BTreeSet<String> = runs.iter().flat_map(|r| logged(r).params.into_keys()).collect();
    for k in logged_params {
        rows.push((format!("logged {k}"), runs.iter().map(|r| logged(r).params.get(&k).cloned()).collect()));
    }
    let metrics: BTreeSet<String> = runs.iter().flat_map(|r| logged(r).metrics.into_keys()).collect();
    for k in metrics {
        let last = |r: &RunEntry| logged(r).metrics.get(&k).map(|m| html::number(m.last));
        rows.push((format!("metric {k}"), runs.iter().map(last).collect()));
    }
    let mut head = vec!["".to_string()];
    head.extend(runs.iter().map(|r| esc(short(&r.record.run_id))));
    let mut out = String::from(
        r#"<section class="differences"><h2>Parameters and metrics</h2><label><input type="checkbox" id="only-differences"> only differences</label><table class="values"><thead><tr>"#,
    );
    for h in &head {
        out.push_str(&format!("<th>{h}</th>"));
    }
    out.push_str("</tr></thead><tbody>");
    for (name, values) in rows {
        let differs = values.windows(2).any(|w| w[0] != w[1]);
        out.push_str(&format!(r#"<tr class="{}"><th>{}</th>"#, if differs { "differs" } else { "same" }, esc(&name)));
        for v in values {
            out.push_str(&format!("<td>{}</td>", esc(v.as_deref().unwrap_or("-"))));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>");
    out
}

/// A chart per metric with a line per run.
fn overlaid(index: &mut Index, runs: &[RunEntry], query: &Query, x: XAxis) -> String {
    let histories: Vec<_> = runs.iter().map(|r| index.histories(&r.record.run_id)).collect();
    let names: BTreeSet<&String> = histories.iter().flat_map(|h| h.keys()).collect();
    if names.is_empty() {
        return String::new();
    }
    let mut out = String::from(r#"<section class="metrics"><h2>Metrics</h2>"#);
    out.push_str(&charts::axis_switch("/compare", query, x));
    out.push_str(r#"<div class="charts">"#);
    for name in names.into_iter().take(MAX_CHARTS) {
        let series = runs
            .iter()
            .zip(&histories)
            .map(|(r, h)| charts::series(short(&r.record.run_id), h.get(name).map(Vec::as_slice).unwrap_or(&[]), x))
            .collect();
        out.push_str(&format!(
            r#"<figure class="chart" data-metric="{}">{}</figure>"#,
            esc(name),
            charts::metric_chart(name, series, x)
        ));
    }
    out.push_str("</div></section>");
    out
}

/// `lockstep diff` of two runs.
fn two_runs(index: &Index, a: &RunEntry, b: &RunEntry) -> String {
    let found = |r: &RunEntry| FoundRun {
        record: (*r.record).clone(),
        place: RecordPlace::Store(index.run_dir(&r.record.run_id)),
    };
    let d = compare_runs(&found(a), &found(b));
    let mut out = String::from(r#"<section class="diff"><h2>Differences</h2>"#);
    out.push_str(&source(index, &d, a, b));
    out.push_str(&environment(&d));
    out.push_str(&format!("<h3>Outputs</h3>{}", files(&d.outputs, |c| output_diff(&a.record, &b.record, c))));
    if d.logged {
        out.push_str(&format!("<h3>Artifacts</h3>{}", files(&d.artifacts, |_| None)));
    }
    out.push_str("</section>");
    out
}

fn source(index: &Index, d: &RunDiff, a: &RunEntry, b: &RunEntry) -> String {
    let side = |s: &crate::commands::diff::SourceSide| {
        let commit = s.commit.as_deref().map(|c| format!(" @ {}", short(c))).unwrap_or_default();
        format!("{} {}{commit} tree {}{}", s.kind, s.uri, short(&s.tree_sha256), if s.dirty { " (dirty)" } else { "" })
    };
    let mut out = format!(
        r#"<h3>Source</h3><p class="{}">{}</p><ul><li>{}</li><li>{}</li></ul>"#,
        if d.source.same { "same" } else { "differs" },
        if d.source.same { "the same files" } else { "different files" },
        esc(&side(&d.source.a)),
        esc(&side(&d.source.b))
    );
    if let Some(changes) = &d.source.files {
        out.push_str(&changes_table(changes));
    }
    let patch = |r: &RunEntry| std::fs::read_to_string(index.run_dir(&r.record.run_id).dirty_patch()).ok();
    match (patch(a), patch(b)) {
        (None, None) => {}
        (pa, pb) => {
            out.push_str("<h4>Dirty patches, first run's to second's</h4>");
            out.push_str(&diff_pre(&pa.unwrap_or_default(), &pb.unwrap_or_default()));
        }
    }
    out
}

fn environment(d: &RunDiff) -> String {
    let e = &d.environment;
    let mut out = format!(
        r#"<h3>Environment</h3><p class="{}">{} → {}{}</p>"#,
        if e.same { "same" } else { "differs" },
        esc(&e.a.manager),
        esc(&e.b.manager),
        if e.same { ", the same environment" } else { "" }
    );
    if !e.packages.is_empty() {
        let rows: Vec<Vec<String>> = e
            .packages
            .iter()
            .map(|p| {
                vec![
                    esc(&p.name),
                    format!(r#"<span class="change {0}">{0}</span>"#, p.change.name()),
                    esc(p.a.as_deref().unwrap_or("-")),
                    esc(p.b.as_deref().unwrap_or("-")),
                ]
            })
            .collect();
        out.push_str(&html::table(
            "packages",
            &["package".into(), "change".into(), "first".into(), "second".into()],
            &rows,
        ));
    }
    out.push_str(&format!("<p>{} packages the same</p>", e.same_packages));
    out
}

fn changes_table(changes: &[FileChange]) -> String {
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            let sha = |s: &Option<String>| format!("<code>{}</code>", esc(s.as_deref().map(short).unwrap_or("-")));
            vec![
                esc(&c.path),
                format!(r#"<span class="change {0}">{0}</span>"#, c.change.name()),
                sha(&c.a_sha256),
                sha(&c.b_sha256),
            ]
        })
        .collect();
    html::table("changes", &["path".into(), "change".into(), "first".into(), "second".into()], &rows)
}

/// The changes of `d`, each followed by its text diff when `text_diff` has one.
fn files(d: &FilesDiff, text_diff: impl Fn(&FileChange) -> Option<String>) -> String {
    let mut out = format!("<p>{} the same, {} different</p>", d.same, d.changes.len());
    out.push_str(&changes_table(&d.changes));
    for c in &d.changes {
        if let Some(diff) = text_diff(c) {
            out.push_str(&format!(r#"<h4>{}</h4>{diff}"#, esc(&c.path)));
        }
    }
    out
}

/// The text diff of an output both runs wrote, when both files on disk still are what each
/// run recorded (an in-place run's next run may have overwritten them).
fn output_diff(a: &RunRecord, b: &RunRecord, c: &FileChange) -> Option<String> {
    let read = |r: &RunRecord, sha: &Option<String>| -> Option<String> {
        let f = r.outputs.iter().find(|f| f.path == c.path)?;
        if f.size > MAX_DIFFED {
            return None;
        }
        let bytes = std::fs::read(r.outputs_dir.join(&f.path)).ok()?;
        let same = Some(crate::support::digest::sha256_hex(&bytes)) == *sha;
        (same && super::super::files::is_text(&bytes)).then(|| String::from_utf8_lossy(&bytes).into_owned())
    };
    Some(diff_pre(&read(a, &c.a_sha256)?, &read(b, &c.b_sha256)?))
}

/// A unified diff, its lines marked as added, removed or hunk headers.
fn diff_pre(a: &str, b: &str) -> String {
    let diff = similar::TextDiff::from_lines(a, b);
    let text = diff.unified_diff().context_radius(3).header("first", "second").to_string();
    let mut out = String::from(r#"<pre class="diff">"#);
    for line in text.lines() {
        let class = match line.as_bytes().first() {
            Some(b'+') if !line.starts_with("+++") => "add",
            Some(b'-') if !line.starts_with("---") => "del",
            Some(b'@') => "hunk",
            _ => "ctx",
        };
        out.push_str(&format!(r#"<span class="{class}">{}</span>"#, esc(line)));
        out.push('\n');
    }
    out.push_str("</pre>");
    out
}
