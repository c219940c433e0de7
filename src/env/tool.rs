//! Running the installers (uv, pip, python, an external conda) through the one child runner
//! ([`crate::support::process`]): explicit arguments, a progress line, output captured for
//! errors, the group ended when the tool is done or interrupted.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::EnvError;
use crate::manifest::shell_quote;
use crate::support::process::{self, Command};
use crate::support::progress::Progress;

/// A tool's command line, ready to run.
#[derive(Debug, Clone)]
pub struct ToolCommand {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
}

/// A tool that ended with a failure: the command, as a shell would read it, and its output.
#[derive(Debug)]
pub struct ToolFailure {
    /// The command line.
    pub command: String,
    /// The last lines of its stderr (and stdout), one per line, indented.
    pub detail: String,
    /// All of its stderr and stdout, for classifying the failure.
    pub output: String,
}

impl ToolCommand {
    /// `program args...`.
    pub fn new(program: impl AsRef<OsStr>, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> ToolCommand {
        ToolCommand {
            program: program.as_ref().to_os_string(),
            args: args.into_iter().map(|a| a.as_ref().to_os_string()).collect(),
            cwd: None,
        }
    }

    /// Add arguments.
    pub fn args(mut self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> ToolCommand {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Add a path argument.
    pub fn arg_path(self, path: &Path) -> ToolCommand {
        self.args([path.as_os_str()])
    }

    /// Run in `dir`.
    pub fn dir(mut self, dir: &Path) -> ToolCommand {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// The command as a shell would read it.
    pub fn describe(&self) -> String {
        let mut s = shell_quote(&self.program.to_string_lossy());
        for a in &self.args {
            s.push(' ');
            s.push_str(&shell_quote(&a.to_string_lossy()));
        }
        s
    }

    /// Run it with a progress line, returning its stdout.
    pub fn run(&self, what: &str) -> Result<Vec<u8>, ToolFailure> {
        let progress = Progress::start(what.to_string());
        let result = self.run_quiet();
        drop(progress);
        result
    }

    /// Run it silently, returning its stdout. SIGINT/SIGTERM to lockstep stop the tool now,
    /// not when it is done; the tool's helpers (pip's ensurepip, a build backend) go with it,
    /// on every path.
    pub fn run_quiet(&self) -> Result<Vec<u8>, ToolFailure> {
        let mut command = Command::new(&self.program, &self.args);
        if let Some(dir) = &self.cwd {
            command = command.dir(dir);
        }
        let failure = |output: String| ToolFailure { command: self.describe(), detail: last_lines(&output, 6), output };
        let out = command.run(process::stop_grace(), None).map_err(|e| failure(e.to_string()))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push('\n');
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Err(failure(text))
    }
}

/// An installer's failure as an error: `what` failed, with the command and the tool's words.
pub fn install_error(what: &str, failure: ToolFailure) -> EnvError {
    EnvError::Install {
        what: what.to_string(),
        command: failure.command,
        detail: failure.detail,
        output: failure.output,
    }
}

/// The last `n` non-empty lines of a tool's output, one per line and indented under the error
/// line; ANSI colours removed.
pub fn last_lines(text: &str, n: usize) -> String {
    let clean = strip_ansi(text);
    let lines: Vec<&str> = clean.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The first executable called `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

/// Every executable called `name` on PATH, in PATH order.
pub fn all_on_path(name: &str) -> Vec<PathBuf> {
    let Some(path) = std::env::var_os("PATH") else { return vec![] };
    std::env::split_paths(&path).map(|d| d.join(name)).filter(|p| is_executable(p)).collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_quote_the_command_and_the_tail() {
        let err = ToolCommand::new("sh", ["-c", "echo one >&2; echo two >&2; exit 3"]).run_quiet().unwrap_err();
        assert_eq!(err.command, "sh -c 'echo one >&2; echo two >&2; exit 3'");
        assert_eq!(err.detail, "  one\n  two");
        assert_eq!(ToolCommand::new("sh", ["-c", "printf ok"]).run_quiet().unwrap(), b"ok");
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
    }

    #[test]
    fn what_a_tool_leaves_running_ends_with_it() {
        let out = ToolCommand::new("sh", ["-c", "sleep 300 >/dev/null 2>&1 & echo $!"]).run_quiet().unwrap();
        let pid: i32 = String::from_utf8(out).unwrap().trim().parse().unwrap();
        assert!(!alive(pid), "the tool's background job {pid} is gone");
    }

    #[test]
    fn colours_are_removed_from_details() {
        assert_eq!(last_lines("\x1b[31merror\x1b[0m: x\n", 2), "  error: x");
    }
}
