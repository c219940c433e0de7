//! The workers of a sweep: `--jobs` threads taking the next trial until none is left, a
//! signal arrives, or (with `--fail-fast`) a trial failed. The sweep's record is rewritten as
//! each trial ends.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::SweepOptions;
use super::grid::Grid;
use super::trial::{self, TrialContext, TrialEnd};
use crate::commands::CommandError as Error;
use crate::pipeline::Session;
use crate::record::tracking::SweepServerRun;
use crate::record::{RunRecord, RunStatus, SweepRecord, SweepState, TrackingTarget};
use crate::support::clock::now_ms;
use crate::support::ids::random_hex;
use crate::support::ui;

/// What happens during a sweep, for its live display.
#[derive(Debug)]
pub enum TrialEvent {
    /// The sweep is recorded and its trials start.
    Started {
        /// Its id.
        sweep_id: String,
        /// How many trials it has.
        trials: usize,
    },
    /// A trial started running (not for a reused one).
    Running {
        /// Its index in the sweep.
        index: usize,
    },
    /// A trial ended.
    Ended {
        /// Its index in the sweep.
        index: usize,
        /// Its varying values, as `name=value` words.
        label: String,
        /// Its run, when it has one.
        run_id: Option<String>,
        /// Its status.
        status: RunStatus,
        /// Whether an earlier run was reused.
        reused: bool,
        /// How long its run took (0 for a reused one).
        duration_ms: u64,
        /// Why it could not run, when it could not.
        error: Option<String>,
        /// Its run's record.
        record: Option<Box<RunRecord>>,
    },
}

/// Everything the workers share.
pub(super) struct Pool<'a> {
    pub(super) opts: &'a SweepOptions,
    pub(super) session: &'a Session,
    pub(super) tracking: Option<&'a TrackingTarget>,
    /// The sweep's parent run on the tracking server.
    pub(super) parent: Option<&'a SweepServerRun>,
    pub(super) grid: &'a Grid,
}

impl Pool<'_> {
    /// Run every trial of `record`, and return it final (saved).
    pub(super) fn run(
        &self,
        record: SweepRecord,
        on_event: &(dyn Fn(&TrialEvent) + Sync),
    ) -> Result<SweepRecord, Error> {
        let earlier: Vec<RunRecord> = match self.opts.no_reuse {
            true => Vec::new(),
            false => self.session.store.list()?.0,
        };
        let varying = self.grid.varying();
        let total = record.trials.len();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let shared = Mutex::new((record, None::<Error>));
        let workers = self.opts.jobs.min(total.max(1));
        std::thread::scope(|scope| {
            for worker in 0..workers {
                let (next, stop, shared, earlier, varying) = (&next, &stop, &shared, &earlier, &varying);
                scope.spawn(move || {
                    let variables: Vec<(String, String)> = match self.opts.gpus.is_empty() {
                        true => Vec::new(),
                        false => vec![(
                            "CUDA_VISIBLE_DEVICES".to_string(),
                            self.opts.gpus[worker % self.opts.gpus.len()].clone(),
                        )],
                    };
                    loop {
                        if stop.load(Ordering::SeqCst) || self.session.interrupts.received().is_some() {
                            return;
                        }
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        if index >= total {
                            return;
                        }
                        let (point, sweep_id) = {
                            let guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                            let trial = &guard.0.trials[index];
                            let point: Vec<(String, String)> = self
                                .grid
                                .axes
                                .iter()
                                .map(|(name, _)| (name.clone(), trial.params[name].clone()))
                                .collect();
                            (point, guard.0.sweep_id.clone())
                        };
                        let label = point
                            .iter()
                            .filter(|(n, _)| varying.contains(n))
                            .map(|(n, v)| format!("{n}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ");
                        let ctx = TrialContext {
                            opts: self.opts,
                            session: self.session,
                            tracking: self.tracking,
                            sweep_id: &sweep_id,
                            earlier,
                            run_name: if label.is_empty() { format!("trial {index}") } else { label.clone() },
                            variables: variables.clone(),
                        };
                        on_event(&TrialEvent::Running { index });
                        let end = trial::run(ctx, &point, random_hex(16));
                        if end.status != RunStatus::Finished && self.opts.fail_fast {
                            stop.store(true, Ordering::SeqCst);
                        }
                        self.adopt(&end);
                        let event = ended(index, label, &end);
                        let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                        let slot = &mut guard.0.trials[index];
                        slot.run_id = end.run_id;
                        slot.status = Some(end.status);
                        slot.reused = end.reused;
                        slot.error = end.error;
                        if let Err(e) = self.session.store.save_sweep(&guard.0) {
                            guard.1.get_or_insert(e.into());
                        }
                        drop(guard);
                        on_event(&event);
                    }
                });
            }
        });
        let (mut record, failure) = shared.into_inner().unwrap_or_else(|e| e.into_inner());
        record.end_time = Some(now_ms());
        let all_finished = record.trials.iter().all(|t| t.status == Some(RunStatus::Finished));
        record.state = if self.session.interrupts.received().is_some() {
            SweepState::Killed
        } else if all_finished {
            SweepState::Finished
        } else {
            SweepState::Failed
        };
        self.session.store.save_sweep(&record)?;
        match failure {
            Some(e) => Err(e),
            None => Ok(record),
        }
    }
}

impl Pool<'_> {
    /// Make a trial that ran on the tracking server a child of the sweep's run there.
    fn adopt(&self, end: &TrialEnd) {
        let (Some(parent), false) = (self.parent, end.reused) else { return };
        let Some(server_run) = end.record.as_ref().and_then(|r| r.tracking.as_ref()) else { return };
        if let Err(e) = parent.adopt(&server_run.run_id) {
            ui::warn(&format!("run {} is not a child of the sweep's run on the server: {e}", server_run.run_id));
        }
    }
}

fn ended(index: usize, label: String, end: &TrialEnd) -> TrialEvent {
    TrialEvent::Ended {
        index,
        label,
        run_id: end.run_id.clone(),
        status: end.status,
        reused: end.reused,
        duration_ms: match end.reused {
            true => 0,
            false => end.record.as_ref().and_then(RunRecord::duration_ms).unwrap_or(0),
        },
        error: end.error.clone(),
        record: end.record.clone().map(Box::new),
    }
}
