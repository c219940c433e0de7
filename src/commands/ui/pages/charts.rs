//! Metric charts of runs: a history as a series against the step or the time since the
//! run's first point, one chart per metric, in lockstep's own SVG.

use crate::support::chart::{Chart, Series};

use super::super::query::Query;

pub(crate) use crate::commands::plot::{XAxis, series};

/// The axis a query asks for (`x=time`), the step by default.
pub(crate) fn axis_of(query: &Query) -> XAxis {
    match query.get("x") {
        Some("time") => XAxis::Time,
        _ => XAxis::Step,
    }
}

/// An axis's name in queries.
fn axis_name(x: XAxis) -> &'static str {
    match x {
        XAxis::Step => "step",
        XAxis::Time => "time",
    }
}

/// The chart of one metric, with a series per run.
pub(crate) fn metric_chart(metric: &str, series: Vec<Series>, x: XAxis) -> String {
    let mut chart = Chart::lines(metric, x.label(), metric, series);
    chart.width = 560;
    chart.height = 280;
    chart.svg()
}

/// The links that switch the charts' x axis.
pub(crate) fn axis_switch(base: &str, query: &Query, x: XAxis) -> String {
    let mut out = String::from(r#"<p class="axis-switch">x: "#);
    for axis in [XAxis::Step, XAxis::Time] {
        let href = format!("{base}?{}", query.with("x", axis_name(axis)));
        match axis == x {
            true => out.push_str(&format!(r#"<strong>{}</strong> "#, axis_name(axis))),
            false => out.push_str(&format!("{} ", super::super::html::link(&href, axis_name(axis)))),
        }
    }
    out.push_str("</p>");
    out
}
