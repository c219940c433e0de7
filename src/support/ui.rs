//! Messages for people, on stderr: progress notes and warnings. Results go to stdout.

use std::io::Write;

/// A progress note: `lockstep: ...`.
pub fn note(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "lockstep: {message}");
}

/// A warning: `warning: ...`.
pub fn warn(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {message}");
}
