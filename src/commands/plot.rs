//! `lockstep plot`: one chart file (SVG, or PNG by the output's name) of a metric the
//! scripts of one or more runs logged, a line per run, against the step or the time; the
//! same chart `lockstep ui` draws, for CI reports and papers.

use std::path::PathBuf;

use super::CommandError;
use crate::record::logged::{MetricPoint, read_events};
use crate::record::{RunRecord, Store};
use crate::support::chart::{Chart, Series};
use crate::support::error_class::{Classify, ErrorClass};
use crate::support::ids::short;

/// What a metric is plotted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// The step the script logged.
    Step,
    /// Seconds since the run's first point of the metric.
    Time,
}

impl XAxis {
    /// The axis's label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Time => "time (s)",
        }
    }
}

/// What to plot.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// The run store.
    pub store: PathBuf,
    /// The runs, by id or unique prefix.
    pub runs: Vec<String>,
    /// The metric.
    pub metric: String,
    /// The file to write: `.svg` or `.png`.
    pub output: PathBuf,
    /// The x axis.
    pub x: XAxis,
}

/// Errors of `plot`'s own input.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The output's name says neither SVG nor PNG.
    #[error("cannot tell the chart's format from {}: the name must end in .svg or .png", .path.display())]
    Format {
        /// The output.
        path: PathBuf,
    },
    /// A run's script logged no such metric.
    #[error("run {run_id} logged no metric '{metric}'")]
    NoMetric {
        /// The run.
        run_id: String,
        /// The metric.
        metric: String,
        /// The metrics it did log.
        logged: Vec<String>,
    },
    /// The chart could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        /// The output.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Classify for PlotError {
    fn class(&self) -> ErrorClass {
        match self {
            PlotError::Format { .. } | PlotError::NoMetric { .. } => ErrorClass::User,
            PlotError::Write { source, .. } if source.kind() == std::io::ErrorKind::NotFound => ErrorClass::User,
            PlotError::Write { .. } => ErrorClass::Internal,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            PlotError::Format { .. } => vec!["for example -o loss.svg or -o loss.png".into()],
            PlotError::NoMetric { logged, .. } if logged.is_empty() => {
                vec!["its script logged no metrics (through the mlflow client)".into()]
            }
            PlotError::NoMetric { logged, .. } => vec![format!("it logged: {}", logged.join(", "))],
            PlotError::Write { .. } => vec!["is the output's directory there and writable?".into()],
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Plotted {
    /// The file.
    pub path: PathBuf,
    /// How many points it shows, all runs together (before thinning for display).
    pub points: usize,
}

/// Write the chart.
pub fn plot(opts: &PlotOptions) -> Result<Plotted, CommandError> {
    let ext = opts.output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let png = match ext.as_deref() {
        Some("svg") => false,
        Some("png") => true,
        _ => return Err(PlotError::Format { path: opts.output.clone() }.into()),
    };
    let store = Store::open(&opts.store)?;
    let mut series = Vec::new();
    for id in &opts.runs {
        let record = store.find(id)?;
        let history = history(&store, &record, &opts.metric)?;
        series.push(self::series(&run_label(&record), &history, opts.x));
    }
    let points = series.iter().map(|s| s.points.len()).sum();
    let chart = Chart::lines(&opts.metric, opts.x.label(), &opts.metric, series);
    let bytes = if png { chart.png() } else { chart.svg().into_bytes() };
    crate::support::fs::write_atomic(&opts.output, &bytes)
        .map_err(|source| PlotError::Write { path: opts.output.clone(), source })?;
    Ok(Plotted { path: opts.output.clone(), points })
}

/// A run as the legend names it: its name, else its short id.
fn run_label(r: &RunRecord) -> String {
    r.run_name.clone().unwrap_or_else(|| short(&r.run_id).to_string())
}

/// The full history of `metric` as the run's script logged it.
fn history(store: &Store, record: &RunRecord, metric: &str) -> Result<Vec<MetricPoint>, CommandError> {
    let dir = store.run_dir(&record.run_id);
    let events = read_events(dir.path())?;
    let points = events.top_run_id().map(|top| events.metric_history(top, metric)).unwrap_or_default();
    if points.is_empty() {
        let logged = record.logged.as_ref().map(|l| l.metrics.keys().cloned().collect()).unwrap_or_default();
        return Err(PlotError::NoMetric { run_id: record.run_id.to_string(), metric: metric.into(), logged }.into());
    }
    Ok(points)
}

/// A history as a series named `name`.
pub(crate) fn series(name: &str, points: &[MetricPoint], x: XAxis) -> Series {
    let t0 = points.iter().map(|p| p.timestamp).min().unwrap_or(0);
    let points = points
        .iter()
        .map(|p| match x {
            XAxis::Step => (p.step as f64, p.value),
            XAxis::Time => ((p.timestamp - t0) as f64 / 1000.0, p.value),
        })
        .collect();
    Series { name: name.to_string(), points }
}
