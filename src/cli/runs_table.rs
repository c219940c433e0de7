//! The table of `lockstep runs`: a column per field, the parameters that vary among the listed
//! runs first, fitted to the terminal's width by shortening and then dropping columns.

use std::collections::BTreeSet;
use std::io::{self, Write};

use super::logged::metric_cells;
use super::render::{format_duration, format_time, source_cell};
use crate::commands::runs::RunList;
use crate::record::RunRecord;
use crate::support::ids::short;
use crate::support::ui;

/// The columns that may go when the table is too wide, the first to go first. RUN, STATUS,
/// VERIFIES, the metrics and the varying parameters always stay.
const DROPPED_IN_TURN: [&str; 7] = ["EXPERIMENT", "NAME", "DURATION", "SOURCE", "PROJECT", "START", "ENTRY"];

/// What is left of the constant parameters when they do not fit.
const MORE: &str = "...";

/// One column: its header, its cells, and whether they are aligned to the right.
struct Column {
    header: String,
    cells: Vec<String>,
    right: bool,
}

impl Column {
    fn new(header: &str, cells: Vec<String>) -> Column {
        Column { header: header.to_string(), cells, right: false }
    }

    fn width(&self) -> usize {
        self.cells.iter().chain([&self.header]).map(|c| c.chars().count()).max().unwrap_or(0)
    }
}

/// Print the table of `list`, at most `width` characters wide when given (else every column
/// in full), on `out`.
pub(crate) fn runs(out: &mut impl Write, list: &RunList, width: Option<usize>) -> io::Result<()> {
    if list.runs.is_empty() {
        ui::note(&format!("no runs in {}", list.store.display()));
        return Ok(());
    }
    let runs = &list.runs;
    let varying = varying_params(runs);
    let mut columns = vec![
        Column::new("RUN", runs.iter().map(|r| short(&r.run_id).to_string()).collect()),
        Column::new("START", runs.iter().map(|r| format_time(r.start_time)).collect()),
        Column::new("STATUS", runs.iter().map(|r| r.status.name().to_string()).collect()),
        Column::new("PROJECT", runs.iter().map(|r| r.project().to_string()).collect()),
        Column::new("NAME", runs.iter().map(|r| r.run_name.clone().unwrap_or_default()).collect()),
        Column::new("EXPERIMENT", runs.iter().map(|r| r.experiment_name.clone().unwrap_or_default()).collect()),
        Column::new("ENTRY", runs.iter().map(|r| r.entry_point.clone()).collect()),
        Column {
            right: true,
            ..Column::new("DURATION", runs.iter().map(|r| format_duration(r.duration_ms())).collect())
        },
    ];
    if runs.iter().any(|r| r.verifies.is_some()) {
        columns.push(Column::new("VERIFIES", runs.iter().map(verifies_cell).collect()));
    }
    let metric_cells: Vec<Vec<String>> = runs.iter().map(|r| metric_cells(r, &list.metrics)).collect();
    for (i, name) in list.metrics.iter().enumerate() {
        let cells = metric_cells.iter().map(|c| c[i].clone()).collect();
        columns.push(Column { right: true, ..Column::new(name, cells) });
    }
    columns.push(Column::new("SOURCE", runs.iter().map(|r| source_cell(r, false)).collect()));
    // A name or experiment column no listed run has a value in says nothing, however wide.
    columns.retain(|c| !matches!(c.header.as_str(), "NAME" | "EXPERIMENT") || c.cells.iter().any(|v| !v.is_empty()));
    let full_params: Vec<String> = runs.iter().map(|r| param_cell(r, &varying, None)).collect();
    let mut params_budget = None;
    if let Some(width) = width {
        let fits = |columns: &[Column], params: usize| total_width(columns) + 2 + params <= width;
        let params_min = runs.iter().map(|r| param_cell(r, &varying, Some(0)).chars().count()).max().unwrap_or(0);
        let params_min = params_min.max("PARAMETERS".len());
        let params_full = full_params.iter().map(|c| c.chars().count()).max().unwrap_or(0).max("PARAMETERS".len());
        if !fits(&columns, params_full) {
            shorten(&mut columns, runs);
        }
        for header in DROPPED_IN_TURN {
            if fits(&columns, params_min) {
                break;
            }
            columns.retain(|c| c.header != header);
        }
        params_budget = Some(width.saturating_sub(total_width(&columns) + 2).max(params_min));
    }
    let params: Vec<String> = match params_budget {
        Some(budget) => runs.iter().map(|r| param_cell(r, &varying, Some(budget))).collect(),
        None => full_params,
    };
    write_table(out, &columns, &params)
}

/// The widths of `columns` with the gaps between them.
fn total_width(columns: &[Column]) -> usize {
    columns.iter().map(|c| c.width() + 2).sum::<usize>().saturating_sub(2)
}

/// The shorter forms: the start to the minute without the year, the source's hash in 8 digits
/// without its kind.
fn shorten(columns: &mut [Column], runs: &[RunRecord]) {
    for c in columns.iter_mut() {
        match c.header.as_str() {
            "START" => c.cells = runs.iter().map(|r| short_time(r.start_time)).collect(),
            "SOURCE" => c.cells = runs.iter().map(|r| source_cell(r, true)).collect(),
            _ => {}
        }
    }
}

fn write_table(out: &mut impl Write, columns: &[Column], params: &[String]) -> io::Result<()> {
    let widths: Vec<usize> = columns.iter().map(Column::width).collect();
    let row = |out: &mut dyn Write, cells: Vec<&str>, last: &str| -> io::Result<()> {
        let mut line = String::new();
        for ((cell, c), w) in cells.into_iter().zip(columns).zip(&widths) {
            match c.right {
                true => line.push_str(&format!("{cell:>w$}  ")),
                false => line.push_str(&format!("{cell:<w$}  ")),
            }
        }
        line.push_str(last);
        writeln!(out, "{}", line.trim_end())
    };
    row(out, columns.iter().map(|c| c.header.as_str()).collect(), "PARAMETERS")?;
    for (i, params) in params.iter().enumerate() {
        row(out, columns.iter().map(|c| c.cells[i].as_str()).collect(), params)?;
    }
    Ok(())
}

/// The parameters whose value is not the same in every listed run (or missing in some).
fn varying_params(runs: &[RunRecord]) -> BTreeSet<String> {
    let names: BTreeSet<&String> = runs.iter().flat_map(|r| r.parameters.keys()).collect();
    names
        .into_iter()
        .filter(|name| {
            let first = runs[0].parameters.get(*name);
            runs.iter().any(|r| r.parameters.get(*name) != first)
        })
        .cloned()
        .collect()
}

/// A run's parameters as `k=v`, those in `varying` first; within `budget` characters when
/// given, cutting only the others (to `...`), never a varying one.
fn param_cell(r: &RunRecord, varying: &BTreeSet<String>, budget: Option<usize>) -> String {
    let pair = |(k, v): (&String, &String)| format!("{k}={v}");
    let (first, rest): (Vec<_>, Vec<_>) = r.parameters.iter().partition(|(k, _)| varying.contains(*k));
    let mut cell = first.into_iter().map(pair).collect::<Vec<_>>().join(" ");
    let rest: Vec<String> = rest.into_iter().map(pair).collect();
    for (i, item) in rest.iter().enumerate() {
        let sep = if cell.is_empty() { 0 } else { 1 };
        // Room for this pair, and for `...` after it unless it is the last.
        let reserve = if i + 1 < rest.len() { sep + MORE.len() } else { 0 };
        let fits = budget.is_none_or(|b| cell.chars().count() + sep + item.chars().count() + reserve <= b);
        if !fits {
            if !cell.is_empty() {
                cell.push(' ');
            }
            cell.push_str(MORE);
            break;
        }
        if sep == 1 {
            cell.push(' ');
        }
        cell.push_str(item);
    }
    cell
}

/// A verification run's cell: the run it re-ran and the verdict.
fn verifies_cell(r: &RunRecord) -> String {
    match (&r.verifies, &r.verification) {
        (Some(id), Some(v)) => format!("{} {}", short(id), v.result),
        (Some(id), None) => short(id).to_string(),
        (None, _) => String::new(),
    }
}

/// A start time to the minute, without the year: `12-01 23:48`.
fn short_time(ms: u64) -> String {
    let full = format_time(ms);
    full.get(5..16).map(|t| t.replace('T', " ")).unwrap_or(full)
}
