//! `lockstep sweep` and `lockstep sweep show`: the options, the live progress on stderr, and
//! the results table (text, JSON, CSV or Markdown) on stdout.

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;

use super::render;
use super::sweep_args::{GoalArg, RankArgs, SweepArgs, SweepCommand, SweepRunArgs, TableFormatArgs};
use crate::commands::CommandError;
use crate::commands::sweep::{self, Goal, SweepOptions, SweepTable, TrialEvent};
use crate::env::DockerFlags;
use crate::record::RunStatus;
use crate::support::ids::short;
use crate::support::ui;

/// `lockstep sweep ...`.
pub(super) fn sweep(args: SweepArgs) -> Result<i32, CommandError> {
    match args.command {
        Some(SweepCommand::Show(show)) => {
            let (metric, goal) = rank(&show.rank);
            let table = sweep::show(&show.store.store, &show.sweep, metric, goal)?;
            print(&table, &show.format)?;
            Ok(0)
        }
        None => run(args.run),
    }
}

fn rank(args: &RankArgs) -> (Option<&str>, Goal) {
    let goal = match args.goal {
        GoalArg::Min => Goal::Min,
        GoalArg::Max => Goal::Max,
    };
    (args.metric.as_deref(), goal)
}

fn run(args: SweepRunArgs) -> Result<i32, CommandError> {
    let opts = SweepOptions {
        uri: args.uri.clone().unwrap_or_default(),
        entry_point: args.entry_point.clone(),
        version: args.version.clone(),
        params: args.params.clone(),
        env_manager: args.env_manager,
        random: args.random,
        seed: args.seed,
        jobs: args.jobs,
        gpus: args.gpus.clone(),
        dry_run: args.dry_run,
        no_reuse: args.no_reuse,
        fail_fast: args.fail_fast,
        experiment_name: args.tracking.experiment_name.clone(),
        experiment_id: args.tracking.experiment_id.clone(),
        tracking_uri: args.tracking.tracking_uri.clone(),
        store: args.store.store.clone(),
        caller_dir: std::env::current_dir()?,
        docker: DockerFlags {
            args: args.docker_args.clone(),
            mount_project: args.mount_project,
            keep_container: false,
        },
        keep_outputs: args.keep.policy(),
    };
    let live = Live::new(io::stderr().is_terminal(), args.rank.metric.clone(), args.rank.goal);
    let outcome = sweep::sweep(&opts, &|event| live.show(event))?;
    live.finish();
    let (metric, goal) = rank(&args.rank);
    if opts.dry_run {
        let table = sweep::SweepTable::planned(outcome.record);
        ui::note(&format!("{} trials (dry run: nothing ran)", table.rows.len()));
        print(&table, &args.format)?;
        return Ok(0);
    }
    let store = crate::record::Store::open(&opts.store)?;
    let table = sweep::show(store.root(), &outcome.record.sweep_id, metric, goal)?;
    ui::note(&format!(
        "sweep {} {}: `lockstep sweep show {}` shows this table again",
        outcome.record.sweep_id,
        format!("{:?}", outcome.record.state).to_uppercase(),
        short(&outcome.record.sweep_id)
    ));
    print(&table, &args.format)?;
    Ok(outcome.exit_code)
}

/// Progress while the trials run: a line per ended trial, and on a terminal a status line
/// (done, running, failed, the best value so far) kept at the bottom.
struct Live {
    terminal: bool,
    metric: Option<String>,
    goal: GoalArg,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    running: usize,
    done: usize,
    failed: usize,
    best: Option<f64>,
}

impl Live {
    fn new(terminal: bool, metric: Option<String>, goal: GoalArg) -> Live {
        Live { terminal, metric, goal, state: Mutex::new(Counts::default()) }
    }

    fn show(&self, event: &TrialEvent) {
        let mut c = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[K");
        }
        match event {
            TrialEvent::Started { sweep_id, trials } => {
                c.total = *trials;
                let _ = writeln!(err, "sweep {sweep_id}: {trials} trials");
            }
            TrialEvent::Running { .. } => c.running += 1,
            TrialEvent::Ended { index, label, run_id, status, reused, duration_ms, error, record } => {
                c.running = c.running.saturating_sub(1);
                c.done += 1;
                if *status != RunStatus::Finished {
                    c.failed += 1;
                }
                let value = self.metric.as_ref().and_then(|m| {
                    record.as_ref()?.logged.as_ref()?.metrics.get(m).map(|s| s.last).filter(|v| !v.is_nan())
                });
                if let Some(v) = value {
                    let better = match (c.best, self.goal) {
                        (None, _) => true,
                        (Some(b), GoalArg::Min) => v < b,
                        (Some(b), GoalArg::Max) => v > b,
                    };
                    if better {
                        c.best = Some(v);
                    }
                }
                let run = run_id.as_deref().map(short).unwrap_or("-");
                let how = if *reused { "reused".to_string() } else { render::format_duration(Some(*duration_ms)) };
                let why = error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
                let _ =
                    writeln!(err, "trial {}/{} {} {label} (run {run}, {how}){why}", index + 1, c.total, status.name());
            }
        }
        if self.terminal {
            let best = match (&self.metric, c.best) {
                (Some(m), Some(b)) => format!(", best {m} {b}"),
                _ => String::new(),
            };
            let _ = write!(err, "{}/{} done, {} running, {} failed{best}", c.done, c.total, c.running, c.failed);
        }
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.terminal {
            let _ = writeln!(io::stderr().lock(), "\r\x1b[K");
        }
    }
}

fn print(table: &SweepTable, format: &TableFormatArgs) -> Result<(), CommandError> {
    if format.json {
        return render::json(table);
    }
    let cells = cells(table);
    let mut out = io::stdout().lock();
    if format.csv {
        for row in &cells {
            writeln!(out, "{}", row.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","))?;
        }
    } else if format.md {
        for (i, row) in cells.iter().enumerate() {
            writeln!(out, "| {} |", row.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "))?;
            if i == 0 {
                writeln!(out, "|{}", "---|".repeat(row.len()))?;
            }
        }
    } else {
        let widths: Vec<usize> =
            (0..cells[0].len()).map(|i| cells.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        for row in &cells {
            let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            writeln!(out, "{}", line.join("  ").trim_end())?;
        }
    }
    Ok(())
}

/// The table as text cells, the header first.
fn cells(table: &SweepTable) -> Vec<Vec<String>> {
    let mut header = vec!["TRIAL".to_string(), "RUN".to_string()];
    header.extend(table.param_columns.iter().cloned());
    header.extend(table.metric_columns.iter().cloned());
    header.extend(["STATUS", "DURATION", "REUSED"].map(String::from));
    let mut rows = vec![header];
    for r in &table.rows {
        let mut row = vec![r.trial.to_string(), r.run_id.as_deref().map(short).unwrap_or("-").to_string()];
        row.extend(table.param_columns.iter().map(|p| r.params.get(p).cloned().unwrap_or_default()));
        row.extend(table.metric_columns.iter().map(|m| r.metrics.get(m).map(|v| v.to_string()).unwrap_or_default()));
        row.push(r.status.clone());
        row.push(render::format_duration(r.duration_ms));
        row.push(if r.reused { "yes" } else { "no" }.to_string());
        rows.push(row);
    }
    rows
}

fn csv_field(cell: &str) -> String {
    match cell.contains([',', '"', '\n']) {
        true => format!("\"{}\"", cell.replace('"', "\"\"")),
        false => cell.to_string(),
    }
}
