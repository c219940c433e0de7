//! Git sources: a mirror cache per repository URL, checkouts into per-run directories, and
//! the state of a local checkout (commit, branch, remote, dirty patch).
//!
//! Network operations run the user's own `git` program, so that credential helpers, the ssh
//! agent and proxy settings apply as they do for the user; local reads use libgit2.
//!
//! Credentials written in a URL (`https://user:token@host/...`) never reach git's argv or the
//! cache: mirrors are keyed on and configured with the URL without them, and they go to git
//! only for the network operation, through its askpass mechanism, with lockstep itself as the
//! askpass program reading them from its environment.

use std::ffi::{OsStr, OsString};
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use super::SourceError;
use crate::support::process::{Command, Output, ProcessError};

mod checkout;
mod credentials;
mod mirror;
mod repo;
mod resolve;

pub use checkout::{checkout, join_submodule_url};
use credentials::{CredentialSetup, credential_setup};
pub use credentials::{askpass_answer, strip_credentials};
pub use mirror::{GitMirror, Resolved, lookup_version, ref_names};
pub use repo::{LocalRepo, apply_patch, dirty_patch, inspect_local, relative_in_repo, repo_with_commit};
pub(crate) use resolve::{finish_checkout, resolve_git};

/// A network git command that prints nothing for this long is stuck (unreachable host,
/// silent server) and is stopped; `LOCKSTEP_GIT_TIMEOUT` (seconds) overrides it.
const DEFAULT_STALL_SECS: u64 = 120;

/// How long git gets to clean up (temporary packs, lock files) after SIGTERM before its
/// process group is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// git with `args`, in a process group of its own that the terminal's SIGTTIN cannot stop (see
/// [`run_network`]).
fn git_command(args: &[OsString], env: &[(&str, &OsStr)]) -> Command {
    Command::new("git", args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .envs(env.iter().copied())
        .ignore_terminal_reads()
}

fn describe(args: &[OsString]) -> String {
    let mut s = String::from("git");
    for a in args {
        s.push(' ');
        s.push_str(&crate::manifest::shell_quote(&a.to_string_lossy()));
    }
    s
}

fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn run_git_env(args: &[OsString], env: &[(&str, &OsStr)]) -> Result<Vec<u8>, SourceError> {
    let failed = |detail: String| SourceError::GitCommand { command: describe(args), detail };
    let out = git_command(args, env).run(STOP_GRACE, None).map_err(|e| match e {
        ProcessError::Spawn(e) => SourceError::spawn_git(e),
        e => failed(e.to_string()),
    })?;
    if out.status.success() { Ok(out.stdout) } else { Err(failed(last_lines(&out.stderr, 3))) }
}

fn run_git(dir: &Path, args: &[OsString]) -> Result<Vec<u8>, SourceError> {
    let mut all: Vec<OsString> = vec!["-C".into(), dir.into()];
    all.extend_from_slice(args);
    run_git_env(&all, &[])
}

fn run_local(dir: &Path, args: &[&str]) -> Result<Vec<u8>, SourceError> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    run_git(dir, &args)
}

fn stall_timeout() -> Duration {
    let secs = std::env::var("LOCKSTEP_GIT_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_STALL_SECS);
    Duration::from_secs(secs.max(1))
}

/// Run a git command that talks to `url`, stopping it when it makes no progress for the
/// stall timeout. Its messages are shown on a terminal and quoted in errors.
///
/// git runs in a process group of its own (through the one child runner), so that stopping
/// it also stops the remote helpers (`git-remote-http`, ssh) it started, which would otherwise
/// hang on. In a background group it must not stop on reading the terminal (SIGTTIN): a prompt
/// fails at once instead.
fn run_network<S: AsRef<OsStr>>(args: &[S], dir: Option<&Path>, url: &str) -> Result<(), SourceError> {
    let CredentialSetup { options: mut all, vars } = credential_setup(url)?;
    if let Some(d) = dir {
        all.extend(["-C".into(), d.as_os_str().to_os_string()]);
    }
    all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
    let timeout = stall_timeout();
    let vars: Vec<(&str, &OsStr)> = vars.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let echo = if std::io::stderr().is_terminal() { Output::Tee(Box::new(std::io::stderr())) } else { Output::Tail };
    let network_error = |detail: String| SourceError::GitNetwork { url: strip_credentials(url), detail };
    let out =
        git_command(&all, &vars).stdout(echo).merge_stderr().run(STOP_GRACE, Some(timeout)).map_err(|e| match e {
            ProcessError::Spawn(e) | ProcessError::Wait(e) => SourceError::spawn_git(e),
            ProcessError::Stalled(_) => {
                SourceError::GitStalled { url: strip_credentials(url), seconds: timeout.as_secs() }
            }
            e @ ProcessError::Cancelled => network_error(e.to_string()),
        })?;
    if out.status.success() { Ok(()) } else { Err(network_error(last_lines(&out.stdout, 3))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines(b"a\n\nb\nc\nd\n", 2), "c | d");
    }
}
