//! Progress of long steps (solving, downloading, installing) on stderr: a spinner with a
//! counter redrawn in place on a terminal, one plain line per step otherwise.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::ui;

/// Whether a spinner is on screen: a step started inside another (or beside it, on another
/// thread) stays quiet on a terminal rather than drawing over it.
static SPINNING: AtomicBool = AtomicBool::new(false);

/// How many steps are in progress: a step inside another (or beside it) is part of that
/// phase, and prints no line of its own either, so that each phase is one line.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

struct Shared {
    message: Mutex<String>,
    done: AtomicU64,
    total: AtomicU64,
    bytes: AtomicBool,
    stop: AtomicBool,
}

/// One step in progress; finished (and its line cleared) when dropped.
pub struct Progress {
    shared: Arc<Shared>,
    started: Instant,
    spinner: Option<JoinHandle<()>>,
    /// Counted in [`ACTIVE`] until stopped.
    active: bool,
}

impl Progress {
    /// Start a step: a spinner on a terminal, a `lockstep: message` line otherwise.
    pub fn start(message: impl Into<String>) -> Progress {
        let shared = Arc::new(Shared {
            message: Mutex::new(message.into()),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            bytes: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let started = Instant::now();
        let outermost = ACTIVE.fetch_add(1, Ordering::AcqRel) == 0;
        let spinner = if !std::io::stderr().is_terminal() {
            if outermost {
                ui::note(&shared.message.lock().unwrap());
            }
            None
        } else if SPINNING.swap(true, Ordering::AcqRel) {
            None
        } else {
            let shared = shared.clone();
            Some(std::thread::spawn(move || spin(&shared, started)))
        };
        Progress { shared, started, spinner, active: true }
    }

    /// Show `done` of `total` items (or bytes, after [`Progress::in_bytes`]) on a terminal.
    pub fn set_total(&self, total: u64) {
        self.shared.total.store(total, Ordering::Relaxed);
    }

    /// Count in bytes rather than items.
    pub fn in_bytes(&self) {
        self.shared.bytes.store(true, Ordering::Relaxed);
    }

    /// Add `n` to what is done.
    pub fn advance(&self, n: u64) {
        self.shared.done.fetch_add(n, Ordering::Relaxed);
    }

    /// End the step with a summary line, `lockstep: summary (1.2s)`.
    pub fn finish(mut self, summary: &str) {
        self.stop();
        ui::note(&format!("{summary} ({:.1}s)", self.started.elapsed().as_secs_f64()));
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if std::mem::take(&mut self.active) {
            ACTIVE.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(handle) = self.spinner.take() {
            let _ = handle.join();
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            SPINNING.store(false, Ordering::Release);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spin(shared: &Shared, started: Instant) {
    let mut frame = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        let (done, total) = (shared.done.load(Ordering::Relaxed), shared.total.load(Ordering::Relaxed));
        let counter = match (total, shared.bytes.load(Ordering::Relaxed)) {
            (0, _) => String::new(),
            (t, true) => format!(" [{:.1}/{:.1} MiB]", done as f64 / 1048576.0, t as f64 / 1048576.0),
            (t, false) => format!(" [{done}/{t}]"),
        };
        let line = format!(
            "\r\x1b[2K{} {}{counter} {:.0}s",
            FRAMES[frame % FRAMES.len()],
            shared.message.lock().unwrap(),
            started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        frame += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}
