//! A run's page: everything `lockstep show` knows (source, environment and its lock,
//! parameters, command), a chart per logged metric, the files it logged and wrote, its
//! verification, and its logs. While the run is in progress the page follows it: the upper
//! part is re-fetched, and the logs grow by what was appended.

use std::io::{Read, Seek, SeekFrom};

use super::super::html::{self, esc, link, url_path};
use super::super::index::{Index, RunEntry};
use super::super::query::Query;
use super::super::reply::Reply;
use super::charts;
use crate::record::{OutputFile, RunRecord};
use crate::support::ids::short;

/// How much of a log the page shows at first (the tail), and sends at most per poll.
const LOG_TAIL: u64 = 64 * 1024;
const LOG_CHUNK: u64 = 1024 * 1024;

/// The whole page of run `id` (a full id of the index).
pub(crate) fn page(index: &mut Index, id: &str, query: &Query, store: &str) -> String {
    let Some(entry) = index.run(id).cloned() else { return String::new() };
    let r = &entry.record;
    let title = match &r.run_name {
        Some(name) => format!("Run {} {}", short(id), name),
        None => format!("Run {}", short(id)),
    };
    let mut main = format!(r#"<h1>{}</h1><p class="run-id">{}</p>"#, esc(&title), esc(id));
    main.push_str(&live(index, id, query));
    main.push_str(&record_sections(r, index));
    main.push_str(&logs(index, &entry));
    html::page(&title, store, &main)
}

/// The part of the page that changes while the run is in progress: its state, verification,
/// metrics and charts, and files. Followed (`data-live`) only while the run is live.
pub(crate) fn live(index: &mut Index, id: &str, query: &Query) -> String {
    let Some(entry) = index.run(id).cloned() else { return String::new() };
    let r = &entry.record;
    let follow = match entry.live() {
        true => format!(r#" data-live="/fragment/run/{}?{}""#, esc(id), esc(&query.without_token())),
        false => String::new(),
    };
    let mut out = format!(r#"<div id="live"{follow}>"#);
    out.push_str(&summary(&entry, index));
    out.push_str(&verification(r, index));
    out.push_str(&metrics(index, r, query));
    out.push_str(&files(r));
    out.push_str("</div>");
    out
}

fn summary(entry: &RunEntry, index: &Index) -> String {
    let r = &entry.record;
    let mut rows: Vec<Vec<String>> = vec![
        vec!["status".into(), format!(r#"<span class="status {0}">{0}</span>"#, esc(entry.status_name()))],
        vec!["experiment".into(), esc(r.experiment_name.as_deref().unwrap_or("Default"))],
        vec!["entry point".into(), esc(&r.entry_point)],
        vec!["start".into(), esc(&html::time(r.start_time))],
        vec!["end".into(), esc(&r.end_time.map(html::time).unwrap_or_else(|| "-".into()))],
        vec!["duration".into(), esc(&html::duration(r.duration_ms()))],
        vec!["exit code".into(), esc(&r.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()))],
    ];
    if let Some(f) = &r.failure {
        rows.push(vec!["failure".into(), esc(f)]);
    }
    if entry.lost {
        rows.push(vec![
            "note".into(),
            esc("the runner ended without finalizing the run; `lockstep runs` marks it FAILED"),
        ]);
    }
    if let Some(s) = &r.sweep {
        let cell = match index.sweep(s) {
            Some(_) => link(&format!("/sweep/{s}"), short(s)),
            None => esc(short(s)),
        };
        rows.push(vec!["sweep".into(), cell]);
    }
    if let Some(t) = &r.tracking {
        rows.push(vec!["tracking server".into(), esc(&format!("{} (run {})", t.uri, t.run_id))]);
    }
    html::rows("summary", &rows)
}

/// The run's own verification (a `lockstep verify` run), and the runs that verified it.
fn verification(r: &RunRecord, index: &Index) -> String {
    let mut out = String::new();
    if let (Some(original), Some(v)) = (&r.verifies, &r.verification) {
        out.push_str(&format!(
            r#"<section class="verification"><h2>Verification</h2><p>re-run of {}: <strong class="result {1}">{1}</strong></p>"#,
            link(&format!("/run/{original}"), short(original)),
            esc(&v.result)
        ));
        let counts = [
            ("identical", v.identical),
            ("differs", v.differs),
            ("missing", v.missing),
            ("extra", v.extra),
            ("ignored", v.ignored),
        ];
        let rows: Vec<Vec<String>> = counts.iter().map(|(k, n)| vec![esc(k), n.to_string()]).collect();
        out.push_str(&html::table("counts", &["outputs".into(), "files".into()], &rows));
        if !v.metric_differences.is_empty() {
            let rows: Vec<Vec<String>> = v
                .metric_differences
                .iter()
                .map(|d| {
                    let last = |m: &Option<crate::record::logged::MetricSummary>| {
                        m.map(|m| html::number(m.last)).unwrap_or_else(|| "-".into())
                    };
                    vec![esc(&d.key), esc(&last(&d.original)), esc(&last(&d.rerun))]
                })
                .collect();
            out.push_str(&html::table(
                "metric-differences",
                &["metric".into(), "original".into(), "re-run".into()],
                &rows,
            ));
        }
        out.push_str("</section>");
    }
    let verifiers: Vec<&RunEntry> =
        index.runs().iter().filter(|e| e.record.verifies.as_ref().is_some_and(|v| v == &r.run_id)).collect();
    if !verifiers.is_empty() {
        out.push_str(r#"<section class="verified-by"><h2>Verified by</h2>"#);
        let rows: Vec<Vec<String>> = verifiers
            .iter()
            .map(|e| {
                let result = e.record.verification.as_ref().map(|v| v.result.as_str()).unwrap_or(e.status_name());
                vec![
                    link(&format!("/run/{}", e.record.run_id), short(&e.record.run_id)),
                    esc(&html::time(e.record.start_time)),
                    format!(r#"<strong class="result {0}">{0}</strong>"#, esc(result)),
                ]
            })
            .collect();
        out.push_str(&html::table("verifiers", &["run".into(), "start".into(), "result".into()], &rows));
        out.push_str("</section>");
    }
    out
}

/// The logged metrics: a table of summaries, then a chart per metric.
fn metrics(index: &mut Index, r: &RunRecord, query: &Query) -> String {
    let histories = index.histories(&r.run_id);
    let mut names: Vec<String> = histories.keys().cloned().collect();
    if let Some(l) = &r.logged {
        names.extend(l.metrics.keys().filter(|k| !histories.contains_key(*k)).cloned());
    }
    names.sort();
    if names.is_empty() {
        return String::new();
    }
    let x = charts::axis_of(query);
    let mut out = String::from(r#"<section class="metrics"><h2>Metrics</h2>"#);
    if let Some(l) = &r.logged {
        let rows: Vec<Vec<String>> = l
            .metrics
            .iter()
            .map(|(k, m)| {
                let n = |v: f64| format!(r#"<span class="num">{}</span>"#, esc(&html::number(v)));
                vec![esc(k), n(m.last), m.step.to_string(), n(m.min), n(m.max), m.count.to_string()]
            })
            .collect();
        let head = ["metric", "last", "step", "min", "max", "points"].map(String::from);
        out.push_str(&html::table("metric-summary", &head, &rows));
    }
    out.push_str(&charts::axis_switch(&format!("/run/{}", r.run_id), query, x));
    out.push_str(r#"<div class="charts">"#);
    for name in &names {
        if let Some(points) = histories.get(name) {
            let svg = charts::metric_chart(name, vec![charts::series(name, points, x)], x);
            out.push_str(&format!(r#"<figure class="chart" data-metric="{}">{svg}</figure>"#, esc(name)));
        }
    }
    out.push_str("</div></section>");
    out
}

/// A table of files, each linked to its view, with its size and hash.
pub(crate) fn file_table(run_id: &str, kind: &str, files: &[OutputFile]) -> String {
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            let href = format!("/run/{run_id}/view/{kind}/{}", url_path(&f.path));
            vec![link(&href, &f.path), esc(&html::size(f.size)), format!(r#"<code>{}</code>"#, esc(short(&f.sha256)))]
        })
        .collect();
    html::table("files", &["path".into(), "size".into(), "sha256".into()], &rows)
}

fn files(r: &RunRecord) -> String {
    let id = r.run_id.as_str();
    let mut out = String::new();
    if let Some(l) = &r.logged {
        if !l.artifacts.is_empty() {
            out.push_str(&format!(
                r#"<section class="artifacts"><h2>Artifacts</h2>{}</section>"#,
                file_table(id, "artifacts", &l.artifacts)
            ));
        }
        for m in &l.models {
            out.push_str(&format!(
                r#"<section class="model"><h2>Model {} <code>{}</code></h2>{}</section>"#,
                esc(&m.name),
                esc(&m.model_id),
                file_table(id, &format!("models/{}", url_path(&m.model_id)), &m.files)
            ));
        }
        for n in &l.nested {
            let mut s = format!(
                r#"<section class="nested"><h2>Nested run {} {}</h2><p>{}</p>"#,
                esc(short(&n.run_id)),
                esc(n.name.as_deref().unwrap_or("")),
                esc(&n.status)
            );
            let rows: Vec<(&str, String)> = n.metrics.iter().map(|(k, m)| (k.as_str(), html::number(m.last))).collect();
            if !rows.is_empty() {
                s.push_str(&html::pairs("nested-metrics", &rows));
            }
            if !n.artifacts.is_empty() {
                s.push_str(&file_table(id, &format!("nested/{}", url_path(&n.run_id)), &n.artifacts));
            }
            out.push_str(&s);
            out.push_str("</section>");
        }
    }
    if !r.outputs.is_empty() {
        out.push_str(&format!(
            r#"<section class="outputs"><h2>Outputs</h2><p>in {}</p>{}</section>"#,
            esc(&r.outputs_dir.display().to_string()),
            file_table(id, "outputs", &r.outputs)
        ));
    }
    out
}

/// What the record says of the source, environment, parameters and command.
fn record_sections(r: &RunRecord, index: &Index) -> String {
    let s = &r.source;
    let mut source = vec![("uri", s.uri.clone()), ("kind", s.kind.name().to_string())];
    for (k, v) in
        [("commit", &s.commit), ("branch", &s.branch), ("version", &s.version), ("subdirectory", &s.subdirectory)]
    {
        if let Some(v) = v {
            source.push((k, v.clone()));
        }
    }
    source.push(("tree sha256", s.tree_sha256.to_string()));
    source.push(("dirty", s.dirty.to_string()));
    let mut out = format!(r#"<section class="source"><h2>Source</h2>{}"#, html::pairs("source", &source));
    if index.run_dir(&r.run_id).dirty_patch().is_file() {
        out.push_str(&format!("<p>{}</p>", link(&format!("/run/{}/view/patch", r.run_id), "the dirty patch")));
    }
    out.push_str("</section>");
    let environment = serde_json::to_string_pretty(&r.environment).unwrap_or_default();
    out.push_str(&format!(
        r#"<section class="environment"><h2>Environment: {}</h2><details><summary>the lock</summary><pre>{}</pre></details></section>"#,
        esc(&r.environment.manager().to_string()),
        esc(&environment)
    ));
    let ordered: Vec<(&str, String)> = r.parameters.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    out.push_str(&format!(
        r#"<section class="parameters"><h2>Parameters</h2>{}</section>"#,
        html::pairs("parameters", &ordered)
    ));
    out.push_str(&format!(r#"<section class="command"><h2>Command</h2><pre>{}</pre></section>"#, esc(&r.command)));
    if let Some(l) = &r.logged {
        if !l.params.is_empty() {
            let rows: Vec<(&str, String)> = l.params.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            out.push_str(&format!(
                r#"<section class="logged-params"><h2>Logged params</h2>{}</section>"#,
                html::pairs("logged-params", &rows)
            ));
        }
        if !l.tags.is_empty() {
            let rows: Vec<(&str, String)> = l.tags.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            out.push_str(&format!(r#"<section class="tags"><h2>Tags</h2>{}</section>"#, html::pairs("tags", &rows)));
        }
    }
    out
}

/// Both logs, their tails, followed while the run is live.
fn logs(index: &Index, entry: &RunEntry) -> String {
    let dir = index.run_dir(&entry.record.run_id);
    let mut out = String::from(r#"<section class="logs"><h2>Logs</h2>"#);
    for (stream, path) in [("stdout", dir.stdout_log()), ("stderr", dir.stderr_log())] {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let (text, _) = read_from(&path, len.saturating_sub(LOG_TAIL), LOG_TAIL);
        out.push_str(&format!(
            r#"<h3>{stream}</h3><pre class="log" id="{stream}" data-log="/run/{}/log/{stream}" data-offset="{len}" data-live="{}">{}</pre>"#,
            esc(&entry.record.run_id),
            u8::from(entry.live()),
            esc(&text)
        ));
    }
    out.push_str("</section>");
    out
}

/// Up to `max` bytes of `path` from `offset`, as text, and the offset after them.
fn read_from(path: &std::path::Path, offset: u64, max: u64) -> (String, u64) {
    let Ok(mut file) = std::fs::File::open(path) else { return (String::new(), offset) };
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(offset)).is_err() || file.take(max).read_to_end(&mut buf).is_err() {
        return (String::new(), offset);
    }
    (String::from_utf8_lossy(&buf).into_owned(), offset + buf.len() as u64)
}

/// What a log gained since `offset` (the query's), with the new offset and whether the run
/// is still live in headers, for the page's script.
pub(crate) fn log(index: &Index, id: &str, stream: &str, query: &Query) -> Reply {
    let dir = index.run_dir(id);
    let path = match stream {
        "stdout" => dir.stdout_log(),
        "stderr" => dir.stderr_log(),
        _ => return Reply::error(404, "the logs are stdout and stderr"),
    };
    let offset = query.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let (text, next) = read_from(&path, offset, LOG_CHUNK);
    let live = index.run(id).is_some_and(RunEntry::live);
    Reply::app(200, "text/plain; charset=utf-8", text)
        .with("X-Log-Offset", next.to_string())
        .with("X-Run-Live", u8::from(live).to_string())
}
