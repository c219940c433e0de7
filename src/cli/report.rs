//! How a command's end is reported: `error:` and `hint:` lines on stderr and the exit code.

use std::error::Error;
use std::io;
use std::process::ExitCode;

use crate::commands::CommandError;
use crate::support::error_class::Classify;
use crate::support::ui;

/// Print an error as an `error:` line and its `hint:` lines and choose the exit code. A
/// closed stdout (`lockstep runs | head`) is not an error.
pub(crate) fn error(err: &CommandError) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    ui::error(&err.to_string());
    for hint in err.hints() {
        ui::hint(&hint);
    }
    ExitCode::from(err.exit_code().clamp(0, 255) as u8)
}

/// The exit code of a command that ended on its own: the entry point's, for a run.
pub(crate) fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Whether the error comes from writing to a closed pipe, wherever it sits in the chain:
/// serde_json hides the I/O error inside its own, without giving it as its source.
pub(crate) fn is_broken_pipe(err: &CommandError) -> bool {
    let mut cause: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cause {
        let broken = e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind)
                == Some(io::ErrorKind::BrokenPipe);
        if broken {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_pipe_is_found_inside_json_errors_and_io_errors() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&CommandError::Io(pipe())));
        assert!(is_broken_pipe(&CommandError::Json(serde_json::Error::io(pipe()))));
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(!is_broken_pipe(&CommandError::Json(serde_json::Error::io(other))));
        assert!(!is_broken_pipe(&CommandError::Io(io::Error::from(io::ErrorKind::NotFound))));
    }
}
