//! Messages for people, on stderr: progress notes and warnings. Results go to stdout.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// A progress note: `lockstep: ...`.
pub fn note(message: &str) {
    line(format_args!("lockstep: {message}"));
}

/// A warning: `warning: ...`.
pub fn warn(message: &str) {
    line(format_args!("warning: {message}"));
}

/// A size in bytes as people read it: KiB, MiB or GiB.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1024 * 1024 * 1024 => format!("{:.1} MiB", b as f64 / 1048576.0),
        b => format!("{:.2} GiB", b as f64 / 1073741824.0),
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(super::size(512), "0.5 KiB");
        assert_eq!(super::size(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(super::size(5 * 1024 * 1024 * 1024), "5.00 GiB");
    }
}
