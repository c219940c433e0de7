//! The width of the terminal stdout shows on, for tables that fit it.

use std::io::IsTerminal;

/// The terminal's columns: `$COLUMNS` when it is a number, else the window size of stdout
/// when stdout is a terminal (80 when the terminal does not say); none when stdout is a pipe
/// or a file, whose reader gets every column.
pub fn stdout_width() -> Option<usize> {
    let columns = std::env::var("COLUMNS").ok().and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(n) = columns.filter(|n| *n > 0) {
        return Some(n);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ only fills in the winsize it is given, which outlives the call.
    let asked = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    Some(if asked && size.ws_col > 0 { usize::from(size.ws_col) } else { 80 })
}
