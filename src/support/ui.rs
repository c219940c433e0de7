//! Messages for people, on stderr: progress notes, warnings, errors and hints, their labels
//! coloured on a terminal (never with `NO_COLOR`, never into a pipe or a file). Results go to
//! stdout.

use std::io::Write;

use anstyle::{AnsiColor, Style};

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
