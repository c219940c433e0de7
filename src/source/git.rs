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
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::SourceError;

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

fn git_command(args: &[OsString], env: &[(&str, &OsStr)]) -> duct::Expression {
    let mut expr = duct::cmd("git", args).env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C");
    for (k, v) in env {
        expr = expr.env(k, v);
    }
    expr
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
    let out =
        git_command(args, env).stdout_capture().stderr_capture().unchecked().run().map_err(SourceError::spawn_git)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(SourceError::GitCommand { command: describe(args), detail: last_lines(&out.stderr, 3) })
    }
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
/// git runs in a process group of its own, so that stopping it also stops the remote
/// helpers (`git-remote-http`, ssh) it started, which would otherwise hang on. In a
/// background group it must not stop on reading the terminal (SIGTTIN): a prompt fails at
/// once instead.
fn run_network<S: AsRef<OsStr>>(args: &[S], dir: Option<&Path>, url: &str) -> Result<(), SourceError> {
    let CredentialSetup { options: mut all, vars } = credential_setup(url)?;
    if let Some(d) = dir {
        all.extend(["-C".into(), d.as_os_str().to_os_string()]);
    }
    all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
    let timeout = stall_timeout();
    let (mut reader, writer) = std::io::pipe().map_err(|e| SourceError::io(Path::new("pipe"), e))?;
    let handle = {
        let writer2 = writer.try_clone().map_err(|e| SourceError::io(Path::new("pipe"), e))?;
        let vars: Vec<(&str, &OsStr)> = vars.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        let expr = git_command(&all, &vars)
            .stdin_null()
            .stdout_file(writer)
            .stderr_file(writer2)
            .unchecked()
            .before_spawn(in_own_group);
        expr.start().map_err(SourceError::spawn_git)?
    };
    let started = Instant::now();
    let last_activity = Arc::new(AtomicU64::new(0));
    let output = Arc::new(Mutex::new(Vec::new()));
    let echo = std::io::stderr().is_terminal();
    let pump = {
        let (last_activity, output) = (last_activity.clone(), output.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                last_activity.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                if echo {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                }
                let mut out = output.lock().unwrap();
                out.extend_from_slice(&buf[..n]);
                let excess = out.len().saturating_sub(16 * 1024);
                out.drain(..excess);
            }
        })
    };
    let status = loop {
        match handle.wait_timeout(Duration::from_millis(100)).map_err(SourceError::spawn_git)? {
            Some(out) => break out.status,
            None if crate::cancel::requested().is_some() => {
                stop_group(&handle);
                return Err(SourceError::GitNetwork { url: strip_credentials(url), detail: "interrupted".into() });
            }
            None => {
                let idle = started.elapsed().as_millis() as u64 - last_activity.load(Ordering::Relaxed);
                if idle > timeout.as_millis() as u64 {
                    stop_group(&handle);
                    // A process that left the group may still hold the pipe; the pump is left
                    // to end with it.
                    return Err(SourceError::GitStalled { url: strip_credentials(url), seconds: timeout.as_secs() });
                }
            }
        }
    };
    let _ = pump.join();
    if status.success() {
        Ok(())
    } else {
        let detail = last_lines(&output.lock().unwrap(), 3);
        Err(SourceError::GitNetwork { url: strip_credentials(url), detail })
    }
}

/// Make the command lead a process group of its own, not stopped by reading the terminal.
fn in_own_group(cmd: &mut std::process::Command) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only calls signal(2),
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGTTIN, libc::SIG_IGN);
            Ok(())
        });
    }
    Ok(())
}

/// Stop git and everything in its process group: SIGTERM, so that git removes its temporary
/// files, then SIGKILL after [`STOP_GRACE`] for whatever is left (git reaped or not: its
/// helpers keep the group alive, and the group id is not reused while they live).
fn stop_group(handle: &duct::Handle) {
    let Some(&pid) = handle.pids().first() else { return };
    let Ok(group) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) with a negative pid signals the process group `group`, which git leads.
    unsafe { libc::kill(-group, libc::SIGTERM) };
    let _ = handle.wait_timeout(STOP_GRACE);
    // SAFETY: as above.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = handle.kill();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines(b"a\n\nb\nc\nd\n", 2), "c | d");
    }
}
