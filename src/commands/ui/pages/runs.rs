//! The runs page: the store's runs in a table (status, start, duration, entry point, source,
//! the parameters that vary, metric columns), filtered and sorted by the query, a page of
//! rows at a time; rows can be selected to compare, and the table follows the store live.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::super::html::{self, esc, link};
use super::super::index::{Index, RunEntry};
use super::super::query::Query;
use crate::record::RunRecord;
use crate::support::ids::short;

/// Rows per page.
const PAGE_ROWS: usize = 100;
/// At most this many parameter and metric columns each.
const MAX_COLUMNS: usize = 8;

/// The whole page.
pub(crate) fn page(index: &Index, query: &Query, store: &str) -> String {
    let mut main = String::from("<h1>Runs</h1>");
    for p in index.problems() {
        main.push_str(&format!(r#"<p class="warning">cannot read {}</p>"#, esc(p)));
    }
    main.push_str(&filters(index, query));
    main.push_str(r#"<p class="actions"><button type="button" id="compare" disabled>compare selected</button></p>"#);
    main.push_str(&fragment(index, query));
    html::page("runs", store, &main)
}

/// The filter form: status, experiment, entry point, sweep and one parameter's value.
fn filters(index: &Index, query: &Query) -> String {
    let runs = index.runs();
    let (mut statuses, mut experiments, mut entries) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for r in runs {
        statuses.insert(r.status_name());
        experiments.insert(experiment(&r.record));
        entries.insert(r.record.entry_point.as_str());
    }
    let sweeps: Vec<(String, String)> = index
        .sweeps()
        .into_iter()
        .map(|s| (s.sweep_id.clone(), format!("{} ({})", short(&s.sweep_id), s.entry_point)))
        .collect();
    let select = |name: &str, options: Vec<(String, String)>| {
        let chosen = query.get(name).unwrap_or("");
        let mut out = format!(r#"<label>{name} <select name="{name}"><option value="">any</option>"#);
        for (value, text) in options {
            let selected = if value == chosen { " selected" } else { "" };
            out.push_str(&format!(r#"<option value="{}"{selected}>{}</option>"#, esc(&value), esc(&text)));
        }
        out.push_str("</select></label> ");
        out
    };
    let same = |set: BTreeSet<&str>| set.into_iter().map(|v| (v.to_string(), v.to_string())).collect::<Vec<_>>();
    let mut out = String::from(r#"<form class="filters" method="get" action="/">"#);
    out.push_str(&select("status", same(statuses)));
    out.push_str(&select("experiment", same(experiments)));
    out.push_str(&select("entry", same(entries)));
    out.push_str(&select("sweep", sweeps));
    out.push_str(&format!(
        r#"<label>param <input name="param" placeholder="alpha=0.5" value="{}"></label> "#,
        esc(query.get("param").unwrap_or(""))
    ));
    if let Some(sort) = query.get("sort") {
        out.push_str(&format!(r#"<input type="hidden" name="sort" value="{}">"#, esc(sort)));
    }
    out.push_str(r#"<button type="submit">filter</button></form>"#);
    out
}

fn experiment(r: &RunRecord) -> &str {
    r.experiment_name.as_deref().unwrap_or("Default")
}

/// A parameter of a run: given to lockstep, else logged by its script.
fn param<'a>(r: &'a RunRecord, name: &str) -> Option<&'a str> {
    r.parameters.get(name).or_else(|| r.logged.as_ref()?.params.get(name)).map(String::as_str)
}

fn metric(r: &RunRecord, name: &str) -> Option<f64> {
    r.logged.as_ref()?.metrics.get(name).map(|m| m.last).filter(|v| !v.is_nan())
}

/// The runs the query's filters keep, in its order.
pub(crate) fn filtered<'a>(index: &'a Index, query: &Query) -> Vec<&'a RunEntry> {
    let trials: Option<HashSet<String>> = query
        .get("sweep")
        .map(|id| index.sweep(id).map(|s| s.trials.into_iter().filter_map(|t| t.run_id).collect()).unwrap_or_default());
    let wanted_param = query.get("param").map(|p| p.split_once('=').unwrap_or((p, "")));
    let mut runs: Vec<&RunEntry> = index
        .runs()
        .iter()
        .filter(|r| query.get("status").is_none_or(|s| s == r.status_name()))
        .filter(|r| query.get("experiment").is_none_or(|e| e == experiment(&r.record)))
        .filter(|r| query.get("entry").is_none_or(|e| e == r.record.entry_point))
        .filter(|r| trials.as_ref().is_none_or(|t| t.contains(r.record.run_id.as_str())))
        .filter(|r| wanted_param.is_none_or(|(k, v)| param(&r.record, k.trim()) == Some(v.trim())))
        .collect();
    let sort = query.get("sort").unwrap_or("-start");
    let (key, descending) = match sort.strip_prefix('-') {
        Some(k) => (k, true),
        None => (sort, false),
    };
    runs.sort_by(|a, b| {
        let (a, b) = (&a.record, &b.record);
        let order = match key {
            "duration" => a.duration_ms().cmp(&b.duration_ms()),
            "status" => a.status.name().cmp(b.status.name()),
            "entry" => a.entry_point.cmp(&b.entry_point),
            k if k.starts_with("param:") => compare_values(param(a, &k[6..]), param(b, &k[6..])),
            k if k.starts_with("metric:") => match (metric(a, &k[7..]), metric(b, &k[7..])) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                // Runs without the metric go last, whichever the direction.
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            _ => a.start_time.cmp(&b.start_time),
        };
        if descending { order.reverse() } else { order }
    });
    runs
}

/// Values compared as numbers when both are, else as text.
fn compare_values(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a.and_then(|v| v.parse::<f64>().ok()), b.and_then(|v| v.parse::<f64>().ok())) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.cmp(&b),
    }
}

/// The parameters whose values differ between `runs`, and the metrics to show: those every
/// run logged, or, when they share none, those any logged.
pub(crate) fn columns(runs: &[&RunEntry]) -> (Vec<String>, Vec<String>) {
    let mut values: BTreeMap<&str, BTreeSet<Option<&str>>> = BTreeMap::new();
    for r in runs {
        for k in r.record.parameters.keys() {
            values.entry(k).or_default();
        }
    }
    for (k, set) in values.iter_mut() {
        for r in runs {
            set.insert(r.record.parameters.get(*k).map(String::as_str));
            if set.len() > 1 {
                break;
            }
        }
    }
    let params: Vec<String> =
        values.into_iter().filter(|(_, set)| set.len() > 1).map(|(k, _)| k.to_string()).take(MAX_COLUMNS).collect();
    fn metrics_of(r: &RunEntry) -> Option<&BTreeMap<String, crate::record::logged::MetricSummary>> {
        r.record.logged.as_ref().map(|l| &l.metrics)
    }
    // The first run's metrics, narrowed run by run: no set is built per run (10,000 runs).
    let mut shared: Vec<&str> =
        runs.first().and_then(|r| metrics_of(r)).map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    for r in runs.iter().skip(1) {
        if shared.is_empty() {
            break;
        }
        match metrics_of(r) {
            Some(m) => shared.retain(|k| m.contains_key(*k)),
            None => shared.clear(),
        }
    }
    if shared.is_empty() {
        let any: BTreeSet<&str> =
            runs.iter().filter_map(|r| metrics_of(r)).flat_map(|m| m.keys().map(String::as_str)).collect();
        shared = any.into_iter().collect();
    }
    (params, shared.into_iter().take(MAX_COLUMNS).map(str::to_string).collect())
}

/// The table of runs with its pager: the part of the page that follows the store.
pub(crate) fn fragment(index: &Index, query: &Query) -> String {
    format!(
        r#"<div id="runs" data-live="{}">{}</div>"#,
        esc(&format!("/fragment/runs?{}", query.without_token())),
        table(index, query)
    )
}

fn table(index: &Index, query: &Query) -> String {
    let runs = filtered(index, query);
    let (params, metrics) = columns(&runs);
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let pages = runs.len().div_ceil(PAGE_ROWS).max(1);
    let page = page.min(pages - 1);
    let shown = &runs[(page * PAGE_ROWS).min(runs.len())..((page + 1) * PAGE_ROWS).min(runs.len())];
    let sort = query.get("sort").unwrap_or("-start");
    let header = |key: &str, text: &str| {
        let next = if sort == key { format!("-{key}") } else { key.to_string() };
        let mark = match sort.strip_prefix('-') {
            Some(k) if k == key => " ▼",
            _ if sort == key => " ▲",
            _ => "",
        };
        format!(
            r#"<a class="sort" data-key="{}" href="/?{}">{}{mark}</a>"#,
            esc(key),
            esc(&query.with("sort", &next)),
            esc(text)
        )
    };
    let mut head = vec![String::new(), "run".into(), header("status", "status"), header("start", "start")];
    head.push(header("duration", "duration"));
    head.push(header("entry", "entry point"));
    head.push("source".into());
    head.extend(params.iter().map(|p| header(&format!("param:{p}"), p)));
    head.extend(metrics.iter().map(|m| header(&format!("metric:{m}"), m)));
    let rows: Vec<Vec<String>> = shown.iter().map(|r| row(r, &params, &metrics)).collect();
    let mut out = format!(r#"<p class="count">{} runs</p>"#, runs.len());
    out.push_str(&html::table("runs", &head, &rows));
    if pages > 1 {
        out.push_str(r#"<p class="pager">"#);
        if page > 0 {
            out.push_str(&link(&format!("/?{}", query.with("page", &(page - 1).to_string())), "previous"));
        }
        out.push_str(&format!(" page {} of {pages} ", page + 1));
        if page + 1 < pages {
            out.push_str(&link(&format!("/?{}", query.with("page", &(page + 1).to_string())), "next"));
        }
        out.push_str("</p>");
    }
    out
}

fn row(entry: &RunEntry, params: &[String], metrics: &[String]) -> Vec<String> {
    let r = &entry.record;
    let id = r.run_id.as_str();
    let name = r.run_name.as_deref().map(|n| format!(" {}", esc(n))).unwrap_or_default();
    let source = match &r.source.commit {
        Some(commit) => format!("{} @ {}", r.source.uri, short(commit)),
        None => format!("{} ({})", r.source.uri, short(&r.source.tree_sha256)),
    };
    let mut cells = vec![
        format!(r#"<input type="checkbox" class="select" value="{}" aria-label="select">"#, esc(id)),
        format!(r#"<a class="run" href="/run/{0}">{1}</a>{name}"#, esc(id), esc(short(id))),
        format!(r#"<span class="status {0}">{0}</span>"#, esc(entry.status_name())),
        esc(&html::time(r.start_time)),
        esc(&html::duration(r.duration_ms())),
        esc(&r.entry_point),
        esc(&source),
    ];
    cells.extend(params.iter().map(|p| esc(param(r, p).unwrap_or(""))));
    cells.extend(metrics.iter().map(|m| {
        let v = r.logged.as_ref().and_then(|l| l.metrics.get(m)).map(|s| html::number(s.last));
        format!(r#"<span class="num">{}</span>"#, esc(v.as_deref().unwrap_or("")))
    }));
    cells
}
