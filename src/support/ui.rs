//! Messages for people, on stderr: progress notes, warnings, errors and hints, their labels
//! coloured on a terminal (never with `NO_COLOR`, never into a pipe or a file). Results go to
//! stdout.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anstyle::{AnsiColor, Style};

/// `--verbose`: tools' whole output (a Docker build's log) instead of one line per step.
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Show tools' whole output from now on (`--verbose`).
pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}

/// Whether `--verbose` was given.
pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

const NOTE: Style = Style::new();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const HINT: Style = AnsiColor::Cyan.on_default().bold();

/// A progress note: `lockstep: ...`.
pub fn note(message: &str) {
    line("lockstep", NOTE, message);
}

/// A warning: `warning: ...`.
pub fn warn(message: &str) {
    line("warning", WARNING, message);
}

/// A size in bytes as people read it: KiB, MiB or GiB.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1024 * 1024 * 1024 => format!("{:.1} MiB", b as f64 / 1048576.0),
        b => format!("{:.2} GiB", b as f64 / 1073741824.0),
    }
}

/// What ended a command: `error: ...`.
pub fn error(message: &str) {
    line("error", ERROR, message);
}

/// What to try next, after an error: `hint: ...`.
pub fn hint(message: &str) {
    line("hint", HINT, message);
}

/// `label: message` on stderr. anstream drops the colour unless stderr is a terminal and
/// `NO_COLOR` is unset (`CLICOLOR_FORCE` forces it), as clap's own messages do. Unit tests
/// print through `eprintln!`, which the test harness captures (it does not capture writes to
/// the stderr handle), so that a passing test prints nothing.
fn line(label: &str, style: Style, message: &str) {
    if cfg!(test) {
        eprintln!("{label}: {message}");
    } else {
        let _ = writeln!(anstream::stderr().lock(), "{style}{label}:{style:#} {message}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(super::size(512), "0.5 KiB");
        assert_eq!(super::size(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(super::size(5 * 1024 * 1024 * 1024), "5.00 GiB");
    }
}
