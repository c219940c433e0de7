//! Progress of long steps (solving, downloading, installing) on stderr: an indicatif spinner
//! with a counter redrawn in place on a terminal, one plain line per phase otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::support::ui;

/// Whether a spinner is on screen: a step started inside another (or beside it, on another
/// thread) stays quiet on a terminal rather than drawing over it.
static SPINNING: AtomicBool = AtomicBool::new(false);

/// How many steps are in progress: a step inside another (or beside it) is part of that
/// phase, and prints no line of its own either, so that each phase is one line.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// The spinner's frames; the last one is never shown, since a finished step is cleared.
const FRAMES: &str = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ";

/// One step in progress; finished (and its line cleared) when dropped.
pub struct Progress {
    /// The spinner, when this step draws one.
    bar: Option<ProgressBar>,
    started: Instant,
    /// Whether the counter is in bytes.
    bytes: AtomicBool,
    /// Counted in [`ACTIVE`] until stopped.
    active: bool,
}

impl Progress {
    /// Start a step: a spinner on a terminal, a `lockstep: message` line otherwise.
    pub fn start(message: impl Into<String>) -> Progress {
        let message = message.into();
        let outermost = ACTIVE.fetch_add(1, Ordering::AcqRel) == 0;
        let bar = if !std::io::stderr().is_terminal() {
            if outermost {
                ui::note(&message);
            }
            None
        } else if SPINNING.swap(true, Ordering::AcqRel) {
            None
        } else {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(style(false, false));
            bar.set_message(message);
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        };
        Progress { bar, started: Instant::now(), bytes: AtomicBool::new(false), active: true }
    }

    /// Show `done` of `total` items (or bytes, after [`Progress::in_bytes`]) on a terminal.
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_style(style(true, self.bytes.load(Ordering::Relaxed)));
        }
    }

    /// Count in bytes rather than items.
    pub fn in_bytes(&self) {
        self.bytes.store(true, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_style(style(bar.length().is_some(), true));
        }
    }

    /// Add `n` to what is done.
    pub fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// End the step with a summary line, `lockstep: summary (1.2s)`.
    pub fn finish(mut self, summary: &str) {
        self.stop();
        ui::note(&format!("{summary} ({:.1}s)", self.started.elapsed().as_secs_f64()));
    }

    fn stop(&mut self) {
        if std::mem::take(&mut self.active) {
            ACTIVE.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            SPINNING.store(false, Ordering::Release);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The spinner's line: the message, a counter once there is something to count, the time.
fn style(total: bool, bytes: bool) -> ProgressStyle {
    let template = match (total, bytes) {
        (false, false) => "{spinner} {msg} {elapsed}",
        (false, true) => "{spinner} {msg} [{bytes}] {elapsed}",
        (true, false) => "{spinner} {msg} [{pos}/{len}] {elapsed}",
        (true, true) => "{spinner} {msg} [{bytes}/{total_bytes}] {elapsed}",
    };
    ProgressStyle::with_template(template).expect("the templates are valid").tick_chars(FRAMES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_a_valid_template() {
        for (total, bytes) in [(false, false), (false, true), (true, false), (true, true)] {
            let bar = ProgressBar::hidden();
            bar.set_style(style(total, bytes));
            bar.inc(1);
        }
    }
}
