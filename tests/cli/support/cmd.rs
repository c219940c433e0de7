//! A fluent form of a CLI test: setup, the command and what should come of it in one chain,
//! e.g. `TestContext::new().file("p/MLproject", M).run(["run", "p"]).success().stdout("hi\n")`.
//! A failed expectation panics with the command line, its exit status, stdout and stderr.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use super::context::TestContext;

impl TestContext {
    /// Write a file under the work directory (parents created), as a step of a chain.
    pub fn file(self, rel: &str, content: &str) -> TestContext {
        self.write(rel, content);
        self
    }

    /// `lockstep ARGS` in the work directory, to be completed and then checked.
    pub fn run<I, S>(&self, args: I) -> Cmd<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Cmd { ctx: self, inner: self.lockstep(), argv: vec!["lockstep".into()] };
        cmd = cmd.args(args);
        cmd
    }
}

/// A `lockstep` command not yet run.
pub struct Cmd<'a> {
    ctx: &'a TestContext,
    inner: assert_cmd::Command,
    argv: Vec<String>,
}

impl<'a> Cmd<'a> {
    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.argv.push(arg.as_ref().to_string_lossy().into_owned());
        self.inner.arg(arg);
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    /// An environment variable on top of the context's clean environment.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.inner.env(key, value);
        self
    }

    /// Run in `dir` instead of the work directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.inner.current_dir(dir);
        self
    }

    /// Kill the command if it runs longer (a guard against hangs, not a timing assertion).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.inner.timeout(limit);
        self
    }

    /// Run it, whatever its exit status.
    pub fn output(mut self) -> Outcome<'a> {
        let output = self.inner.output().unwrap_or_else(|e| panic!("{:?} does not start: {e}", self.argv));
        Outcome { ctx: self.ctx, argv: self.argv, output }
    }

    /// Run it and expect exit 0.
    pub fn success(self) -> Outcome<'a> {
        self.status(0)
    }

    /// Run it and expect exit `code`.
    pub fn status(self, code: i32) -> Outcome<'a> {
        let out = self.output();
        if out.output.status.code() != Some(code) {
            out.fail(&format!("expected exit {code}"));
        }
        out
    }

    /// Run it and expect a user error: exit 2, nothing on stdout, no run left behind, and on
    /// stderr one `error:` line containing `message` (warnings aside), maybe followed by one
    /// `hint:` line.
    pub fn user_error(self, message: &str) -> Outcome<'a> {
        let out = self.status(2).stdout("").no_runs();
        let err = out.stderr_text();
        let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("warning:")).collect();
        let shaped = lines.first().is_some_and(|l| l.starts_with("error: ") && l.contains(message))
            && (lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")));
        if !shaped {
            out.fail(&format!("expected one `error:` line with {message:?} and at most one `hint:`"));
        }
        out
    }
}

/// What a command did, to check further.
pub struct Outcome<'a> {
    ctx: &'a TestContext,
    argv: Vec<String>,
    output: Output,
}

impl<'a> Outcome<'a> {
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\ncommand: {:?}\nstatus: {}\n--- stdout\n{}--- stderr\n{}",
            self.argv,
            self.output.status,
            self.stdout_text(),
            self.stderr_text()
        )
    }

    /// stdout is exactly `expected`.
    pub fn stdout(self, expected: &str) -> Self {
        if self.stdout_text() != expected {
            self.fail(&format!("expected stdout {expected:?}"));
        }
        self
    }

    /// stdout contains `part`.
    pub fn stdout_has(self, part: &str) -> Self {
        if !self.stdout_text().contains(part) {
            self.fail(&format!("expected {part:?} in stdout"));
        }
        self
    }

    /// stderr contains `part`.
    pub fn stderr_has(self, part: &str) -> Self {
        if !self.stderr_text().contains(part) {
            self.fail(&format!("expected {part:?} in stderr"));
        }
        self
    }

    /// stderr does not contain `part`.
    pub fn stderr_lacks(self, part: &str) -> Self {
        if self.stderr_text().contains(part) {
            self.fail(&format!("expected no {part:?} in stderr"));
        }
        self
    }

    /// stderr has the line `hint: ...` starting with `hint`.
    pub fn hint(self, hint: &str) -> Self {
        let wanted = format!("hint: {hint}");
        if !self.stderr_text().lines().any(|l| l.starts_with(&wanted)) {
            self.fail(&format!("expected a line starting with {wanted:?} in stderr"));
        }
        self
    }

    /// No run directory is in the context's store.
    pub fn no_runs(self) -> Self {
        if !self.ctx.run_dirs().is_empty() {
            self.fail(&format!("expected no run, found {:?}", self.ctx.run_dirs()));
        }
        self
    }

    /// stdout as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// stderr as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.output.stdout).unwrap_or_else(|e| self.fail(&format!("stdout is no JSON: {e}")))
    }

    /// The exit status, stdout and stderr as one text, for snapshots.
    pub fn transcript(&self) -> String {
        let code = self.output.status.code().map_or("signal".to_string(), |c| c.to_string());
        format!("exit: {code}\n--- stdout\n{}--- stderr\n{}", self.stdout_text(), self.stderr_text())
    }

    /// The process output, for checks of its own.
    pub fn into_output(self) -> Output {
        self.output
    }
}
