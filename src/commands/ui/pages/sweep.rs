//! A sweep's page: its trials ranked by a metric (`?metric=rmse&goal=max`, the first metric
//! by default, smallest first), and a chart of that metric against each varying parameter.

use super::super::html::{self, esc, link};
use super::super::index::Index;
use super::super::query::Query;
use crate::commands::sweep::{Goal, SweepTable, table};
use crate::record::{RunRecord, SweepRecord};
use crate::support::chart::{Chart, Mark, Series};
use crate::support::ids::short;

/// The page of `sweep`.
pub(crate) fn page(index: &Index, sweep: SweepRecord, query: &Query, store: &str) -> String {
    let runs: Vec<Option<RunRecord>> = sweep
        .trials
        .iter()
        .map(|t| t.run_id.as_deref().and_then(|id| index.run(id)).map(|e| (*e.record).clone()))
        .collect();
    let goal = match query.get("goal") {
        Some("max") => Goal::Max,
        _ => Goal::Min,
    };
    let first = table(sweep.clone(), &runs, None, goal).metric_columns.first().cloned();
    let metric = query.get("metric").map(str::to_string).or(first);
    let t = table(sweep, &runs, metric.as_deref(), goal);
    let id = t.sweep.sweep_id.clone();
    let mut main = format!(
        r#"<h1>Sweep {}</h1><p>{} · entry point {} · {} trials · {}</p>"#,
        esc(short(&id)),
        esc(&t.sweep.uri),
        esc(&t.sweep.entry_point),
        t.sweep.trials.len(),
        esc(&format!("{:?}", t.sweep.state).to_uppercase())
    );
    main.push_str(&format!(r#"<p>{}</p>"#, link(&format!("/?sweep={id}"), "its runs in the runs table")));
    main.push_str(&ranking(&t, metric.as_deref(), goal, query, &id));
    if let Some(m) = &metric {
        main.push_str(r#"<section class="metrics"><h2>Metric by parameter</h2><div class="charts">"#);
        for p in &t.param_columns {
            main.push_str(&format!(r#"<figure class="chart" data-param="{}">{}</figure>"#, esc(p), by_param(&t, p, m)));
        }
        main.push_str("</div></section>");
    }
    html::page(&format!("sweep {}", short(&id)), store, &main)
}

fn ranking(t: &SweepTable, metric: Option<&str>, goal: Goal, query: &Query, id: &str) -> String {
    let mut head = vec!["rank".to_string(), "run".into(), "status".into()];
    head.extend(t.param_columns.iter().map(|p| esc(p)));
    for m in &t.metric_columns {
        let ranked = metric == Some(m.as_str());
        let next = if ranked && goal == Goal::Min { "max" } else { "min" };
        let href = format!("/sweep/{id}?{}", Query::parse(&query.with("metric", m)).with("goal", next));
        let mark = match (ranked, goal) {
            (true, Goal::Min) => " ▲",
            (true, Goal::Max) => " ▼",
            _ => "",
        };
        head.push(format!(r#"{}{mark}"#, link(&href, m)));
    }
    head.push("duration".into());
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .enumerate()
        .map(|(rank, row)| {
            let run = match &row.run_id {
                Some(r) => link(&format!("/run/{r}"), short(r)),
                None => "-".into(),
            };
            let mut cells =
                vec![(rank + 1).to_string(), run, format!(r#"<span class="status {0}">{0}</span>"#, esc(&row.status))];
            cells.extend(t.param_columns.iter().map(|p| esc(row.params.get(p).map(String::as_str).unwrap_or(""))));
            cells.extend(t.metric_columns.iter().map(|m| {
                format!(
                    r#"<span class="num">{}</span>"#,
                    esc(&row.metrics.get(m).map(|v| html::number(*v)).unwrap_or_default())
                )
            }));
            cells.push(esc(&html::duration(row.duration_ms)));
            cells
        })
        .collect();
    format!(r#"<section class="trials"><h2>Trials</h2>{}</section>"#, html::table("trials", &head, &rows))
}

/// The chart of `metric` against the values of `param`: as numbers when they all are, else
/// as categories in the grid's order.
fn by_param(t: &SweepTable, param: &str, metric: &str) -> String {
    let grid: Vec<String> = t.sweep.grid.iter().find(|(n, _)| n == param).map(|(_, v)| v.clone()).unwrap_or_default();
    let numeric = grid.iter().all(|v| v.parse::<f64>().is_ok());
    let points: Vec<(f64, f64)> = t
        .rows
        .iter()
        .filter_map(|row| {
            let value = row.params.get(param)?;
            let y = *row.metrics.get(metric)?;
            let x = match numeric {
                true => value.parse().ok()?,
                false => grid.iter().position(|g| g == value)? as f64,
            };
            Some((x, y))
        })
        .collect();
    let mut chart =
        Chart::lines(&format!("{metric} by {param}"), param, metric, vec![Series { name: metric.into(), points }]);
    chart.mark = Mark::Dots;
    chart.width = 560;
    chart.height = 280;
    if !numeric {
        chart.x_categories = Some(grid);
    }
    chart.svg()
}
