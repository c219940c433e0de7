//! What a Ray job runs and what its log holds. The entrypoint is one shell command (Ray runs
//! it with `sh -c` in the job's working directory): the far side's `lockstep run` on the
//! archive, then the remote record, printed by `lockstep show --json` between two marker
//! lines, since a Ray cluster shares no filesystem with the submitter and the log is the one
//! way back. The log then is Ray's lines, the entrypoint's line, the run's output, and the
//! record; [`split_log`] takes it apart.

use crate::manifest::shell_quote;

/// The remote store on the worker, as a shell word the worker's shell expands: the runs
/// of a worker (and their outputs) stay in its home directory.
pub(crate) const REMOTE_STORE: &str = "\"$HOME\"/.lockstep-ray";

/// The marker line before the record, for a nonce: spelled by `printf` from two words, so
/// that the entrypoint (which Ray prints in the log before the run's output) never holds it.
fn begin(nonce: &str) -> String {
    format!("lockstep-record-begin-{nonce}")
}

fn end(nonce: &str) -> String {
    format!("lockstep-record-end-{nonce}")
}

/// The job's shell command: `argv` quoted word by word, except the value of its last
/// `--store`, which is [`REMOTE_STORE`]; then the record of run `run_id` between the markers
/// of `nonce`; the command's exit code is the run's.
pub(crate) fn entrypoint(argv: &[String], run_id: &str, nonce: &str) -> String {
    let store_at = argv.iter().rposition(|a| a == "--store").map(|i| i + 1);
    let words: Vec<String> = argv
        .iter()
        .enumerate()
        .map(|(i, a)| if Some(i) == store_at { REMOTE_STORE.to_string() } else { shell_quote(a) })
        .collect();
    let lockstep = words.first().cloned().unwrap_or_default();
    format!(
        "{run}; code=$?; printf '\\n%s-%s\\n' lockstep-record-begin {nonce}; \
         {lockstep} show {id} --json --store {REMOTE_STORE}; printf '%s-%s\\n' lockstep-record-end {nonce}; exit $code",
        run = words.join(" "),
        nonce = shell_quote(nonce),
        id = shell_quote(run_id),
    )
}

/// A job's log, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobLog<'a> {
    /// What the run printed (its stdout and stderr, as they came).
    pub output: &'a str,
    /// The remote record's JSON, once it is printed whole.
    pub record: Option<&'a str>,
}

/// Take a job's log apart: Ray's lines up to `Running entrypoint for job ID: ENTRYPOINT`
/// are left out, and so are the markers and the record after the output. Until Ray has
/// started the entrypoint nothing is output (and if it never does, the whole log). While the job may still write (`whole` is
/// false), a tail that may be the start of the marker is held back until it is whole.
pub(crate) fn split_log<'a>(log: &'a str, job_id: &str, entrypoint: &str, nonce: &str, whole: bool) -> JobLog<'a> {
    let started = format!("Running entrypoint for job {job_id}: {entrypoint}\n");
    let Some(at) = log.find(&started) else {
        // A job whose entrypoint never started: Ray's lines are all there is to say why.
        return JobLog { output: if whole { log } else { "" }, record: None };
    };
    let rest = &log[at + started.len()..];
    let begin_line = format!("\n{}\n", begin(nonce));
    let Some(at) = rest.find(&begin_line) else {
        if whole {
            return JobLog { output: rest, record: None };
        }
        let held = (1..=begin_line.len().min(rest.len()))
            .rev()
            .find(|&n| rest.is_char_boundary(rest.len() - n) && begin_line.starts_with(&rest[rest.len() - n..]))
            .unwrap_or(0);
        return JobLog { output: &rest[..rest.len() - held], record: None };
    };
    let output = &rest[..at];
    let after = &rest[at + begin_line.len()..];
    let record = after.find(&format!("{}\n", end(nonce))).map(|end_at| &after[..end_at]);
    JobLog { output, record }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv() -> Vec<String> {
        [
            "./lockstep",
            "run",
            "./t.tar.gz",
            "-e",
            "main",
            "-P",
            "msg=it's $HOME",
            "--store",
            "S",
            "--lockstep-run-id",
            "r1",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn the_entrypoint_quotes_every_word_but_the_remote_store() {
        let command = entrypoint(&argv(), "r1", "n1");
        assert!(
            command.starts_with(
                "./lockstep run ./t.tar.gz -e main -P 'msg=it'\"'\"'s $HOME' --store \"$HOME\"/.lockstep-ray --lockstep-run-id r1; code=$?;"
            ),
            "{command}"
        );
        assert!(command.contains("./lockstep show r1 --json --store \"$HOME\"/.lockstep-ray;"), "{command}");
        assert!(command.ends_with("exit $code"), "{command}");
        assert!(!command.contains(&begin("n1")) && !command.contains(&end("n1")), "the markers are not in the command");
    }

    #[test]
    fn the_entrypoint_runs_in_a_shell_as_the_log_expects() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("lockstep");
        std::fs::write(
            &tool,
            "#!/bin/sh\nif [ \"$1\" = show ]; then echo '{\"r\": 1}'; else printf 'out: %s\\n' \"$6\"; exit 4; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let command = entrypoint(&argv(), "r1", "n1");
        let out = std::process::Command::new("sh").arg("-c").arg(&command).current_dir(dir.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(4), "the run's exit code: {}", String::from_utf8_lossy(&out.stderr));
        let log = format!(
            "INFO setting up\nRunning entrypoint for job j1: {command}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let parts = split_log(&log, "j1", &command, "n1", false);
        assert_eq!(parts.output, "out: msg=it's $HOME\n");
        assert_eq!(parts.record, Some("{\"r\": 1}\n"));
    }

    #[test]
    fn nothing_is_output_before_ray_starts_the_entrypoint() {
        let log = "2026-12-01 INFO job_manager.py:581 -- Runtime env is setting up.\n";
        assert_eq!(split_log(log, "j1", "cmd", "n", false), JobLog { output: "", record: None });
        assert_eq!(split_log(log, "j1", "cmd", "n", true).output, log, "why it never started");
    }

    #[test]
    fn a_tail_that_may_be_the_marker_waits_until_it_is_whole() {
        let head = "Running entrypoint for job j1: cmd\nline one\n";
        assert_eq!(split_log(&format!("{head}partial"), "j1", "cmd", "n", false).output, "line one\npartial");
        assert_eq!(split_log(&format!("{head}\nlockstep-rec"), "j1", "cmd", "n", false).output, "line one\n");
        let cut = format!("{head}\nlockstep-rec");
        assert_eq!(
            split_log(&cut, "j1", "cmd", "n", true).output,
            "line one\n\nlockstep-rec",
            "a log that is whole is output whole"
        );
        let whole = format!("{head}\nlockstep-record-begin-n\n{{}}\n");
        assert_eq!(split_log(&whole, "j1", "cmd", "n", false), JobLog { output: "line one\n", record: None });
        let done = format!("{whole}lockstep-record-end-n\n");
        assert_eq!(split_log(&done, "j1", "cmd", "n", false), JobLog { output: "line one\n", record: Some("{}\n") });
    }

    #[test]
    fn another_nonce_is_output_like_any_text() {
        let log = "Running entrypoint for job j1: cmd\n\nlockstep-record-begin-x\n";
        assert_eq!(split_log(log, "j1", "cmd", "n", true).output, "\nlockstep-record-begin-x\n");
    }
}
