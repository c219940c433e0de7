//! Messages for people, on stderr: progress notes and warnings. Results go to stdout.

use std::io::Write;

/// A progress note: `lockstep: ...`.
pub fn note(message: &str) {
    line(format_args!("lockstep: {message}"));
}

/// A warning: `warning: ...`.
pub fn warn(message: &str) {
    line(format_args!("warning: {message}"));
}

/// One line on stderr. Unit tests print through `eprintln!`, which the test harness captures
/// (it does not capture writes to the stderr handle), so that a passing test prints nothing.
fn line(text: std::fmt::Arguments) {
    if cfg!(test) {
        eprintln!("{text}");
    } else {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}
