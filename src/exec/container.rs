//! Containers: create, attach, start and wait through the Engine API; output streams live into
//! the terminal and the run's log files; SIGINT/SIGTERM are passed to the container (SIGKILL
//! after the grace period); outputs are copied out after it exits; and the container is removed
//! on every path (unless kept).

use crate::support::clock::now_ms;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ChangeType, ContainerCreateBody};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, DownloadFromContainerOptions, KillContainerOptions,
    RemoveContainerOptions,
};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::{Either, select};

use super::{Echo, ExecError, ExecOutcome, Interrupts, LogFiles, PIPE_DRAIN, Termination, kill_grace};
use crate::env::docker::lost;
use crate::env::{ContainerOutputs, ContainerSpec};
use crate::support::docker_engine::{Engine, EngineError, describe, is_not_found};
use crate::support::ui;

/// Run a container to its end; see the module documentation.
pub fn execute(
    spec: &ContainerSpec,
    logs: &LogFiles,
    echo: Echo,
    interrupts: &Interrupts,
) -> Result<ExecOutcome, ExecError> {
    let logs = logs.create()?;
    if let Some(sig) = interrupts.received() {
        return Ok(ExecOutcome {
            termination: Termination::Signaled(sig),
            interrupted_by: Some(sig),
            end_ms: now_ms(),
        });
    }
    let engine = Engine::connect()?;
    let docker = engine.docker();
    if let Some(marker) = &spec.marker {
        lost::mark(marker, spec.keep).map_err(|source| ExecError::Io { path: marker.clone(), source })?;
    }
    let id = match engine.block_on(create(docker, spec)) {
        Ok(id) => id,
        Err(e) => {
            spec.marker.iter().for_each(|m| lost::unmark(m));
            return Err(e);
        }
    };
    let mut result = engine.block_on(run_created(docker, &id, spec.tty, logs, echo, interrupts));
    if let (Ok(_), Some(outputs)) = (&result, &spec.outputs)
        && let Err(e) = engine.block_on(collect(docker, &id, &spec.workdir, outputs))
    {
        result = Err(e);
    }
    let shown = spec.name.clone().unwrap_or_else(|| id.clone());
    let gone = if spec.keep {
        ui::note(&format!("kept container {shown}"));
        true
    } else {
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match engine.block_on(docker.remove_container(&id, Some(options))) {
            Ok(()) => true,
            Err(e) => {
                ui::warn(&format!("could not remove container {shown}: {}", describe(&e)));
                false
            }
        }
    };
    // A container that could not be removed stays marked, for the clean-up of lost runs.
    if gone {
        spec.marker.iter().for_each(|m| lost::unmark(m));
    }
    result
}

fn engine_error(action: &'static str) -> impl Fn(BollardError) -> ExecError {
    move |e| EngineError::request(action, &e).into()
}

async fn create(docker: &Docker, spec: &ContainerSpec) -> Result<String, ExecError> {
    let config = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(spec.argv.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: Some(spec.workdir.clone()),
        user: spec.user.clone(),
        tty: Some(spec.tty),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        labels: Some(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>()),
        host_config: Some(spec.host_config.clone()),
        ..Default::default()
    };
    let options = CreateContainerOptions { name: spec.name.clone(), ..Default::default() };
    let created = docker
        .create_container(Some(options), config)
        .await
        .map_err(|e| EngineError::ContainerRefused { action: "create", message: describe(&e) })?;
    Ok(created.id)
}

/// Attach, start, stream the output, and wait for the exit code, passing on signals.
async fn run_created(
    docker: &Docker,
    id: &str,
    tty: bool,
    (out_log, err_log): (File, File),
    echo: Echo,
    interrupts: &Interrupts,
) -> Result<ExecOutcome, ExecError> {
    // Attached before the start, so that no output is missed.
    let options = AttachContainerOptions { stdout: true, stderr: true, stream: true, ..Default::default() };
    let attached = docker.attach_container(id, Some(options)).await.map_err(engine_error("attach to the container"))?;
    let pump = tokio::spawn(pump(attached.output, out_log, err_log, echo, tty));
    docker
        .start_container(id, None)
        .await
        .map_err(|e| EngineError::ContainerRefused { action: "start", message: describe(&e) })?;

    let grace = kill_grace();
    let mut waiting = Box::pin(docker.wait_container(id, None));
    let mut next = waiting.next();
    let mut signalled: Option<Instant> = None;
    let mut killed = false;
    let item = loop {
        match select(&mut next, Box::pin(tokio::time::sleep(Duration::from_millis(50)))).await {
            Either::Left((item, _)) => break item,
            Either::Right(_) => {}
        }
        let Some(sig) = interrupts.received() else { continue };
        match signalled {
            None => {
                signal(docker, id, sig).await;
                signalled = Some(Instant::now());
            }
            Some(at) if !killed && at.elapsed() >= grace => {
                signal(docker, id, libc::SIGKILL).await;
                killed = true;
            }
            Some(_) => {}
        }
    };
    let code = match item {
        Some(Ok(response)) => response.status_code,
        // bollard reports a non-zero exit as an error value.
        Some(Err(BollardError::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(engine_error("wait for the container")(e)),
        None => {
            return Err(EngineError::Request {
                action: "wait for the container".into(),
                message: "the engine ended the wait without an exit code".into(),
            }
            .into());
        }
    };
    let end_ms = now_ms();
    // The output stream ends with the container; a stream the engine keeps open must not
    // hold the run.
    let _ = tokio::time::timeout(PIPE_DRAIN, pump).await;
    Ok(ExecOutcome {
        termination: Termination::Exited(i32::try_from(code).unwrap_or(1)),
        interrupted_by: interrupts.received(),
        end_ms,
    })
}

/// Send a signal to the container's main process; one that already exited is fine.
async fn signal(docker: &Docker, id: &str, sig: i32) {
    let name = match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "SIGKILL",
    };
    let _ = docker.kill_container(id, Some(KillContainerOptions { signal: name.into() })).await;
}

/// Copy the container's output into the log files and the echo stream until it ends. An echo
/// that fails (a closed stdout) stops echoing but not logging.
async fn pump(
    mut output: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<LogOutput, BollardError>> + Send>>,
    mut out_log: File,
    mut err_log: File,
    echo: Echo,
    tty: bool,
) {
    let (mut out_ok, mut err_ok) = (true, true);
    while let Some(Ok(item)) = output.next().await {
        let (is_err, bytes) = match item {
            LogOutput::StdErr { message } if !tty => (true, message),
            LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message } => {
                (false, message)
            }
            LogOutput::StdIn { .. } => continue,
        };
        let _ = if is_err { err_log.write_all(&bytes) } else { out_log.write_all(&bytes) };
        if echo == Echo::Quiet {
            continue;
        }
        if is_err {
            err_ok = err_ok && io::stderr().lock().write_all(&bytes).is_ok();
        } else if echo == Echo::Stdout {
            let mut out = io::stdout().lock();
            out_ok = out_ok && out.write_all(&bytes).and_then(|_| out.flush()).is_ok();
        } else {
            err_ok = err_ok && io::stderr().lock().write_all(&bytes).is_ok();
        }
    }
    let _ = out_log.flush();
    let _ = err_log.flush();
}

/// What to download for a set of changes under the working directory (relative paths): every
/// added path whose parent was not added too (a new directory comes whole), and every
/// modified path with no changed path below it (a modified file). The flag tells an added
/// path from a modified one, which may still turn out to be a directory whose own metadata
/// changed: its content is then not an output.
pub fn downloads(changes: &BTreeMap<String, ChangeType>) -> Vec<(String, bool)> {
    let parent_added =
        |p: &str| p.rsplit_once('/').is_some_and(|(parent, _)| changes.get(parent) == Some(&ChangeType::_1));
    let has_changes_below = |p: &str| {
        let prefix = format!("{p}/");
        changes.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix))
    };
    changes
        .iter()
        .filter_map(|(path, kind)| match kind {
            ChangeType::_1 if !parent_added(path) => Some((path.clone(), true)),
            ChangeType::_0 if !has_changes_below(path) => Some((path.clone(), false)),
            _ => None,
        })
        .collect()
}

/// Copy the outputs out of the stopped container into `outputs.dest`.
async fn collect(docker: &Docker, id: &str, workdir: &str, outputs: &ContainerOutputs) -> Result<(), ExecError> {
    fs::create_dir_all(&outputs.dest).map_err(|source| ExecError::Io { path: outputs.dest.clone(), source })?;
    let prefix = format!("{}/", workdir.trim_end_matches('/'));
    let changes = docker.container_changes(id).await.map_err(engine_error("list the container's changes"))?;
    let changes: BTreeMap<String, ChangeType> = changes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| Some((c.path.strip_prefix(&prefix)?.to_string(), c.kind)))
        .filter(|(rel, _)| !rel.is_empty())
        .collect();
    let roots = downloads(&changes);
    for (rel, added) in &roots {
        download(docker, id, &prefix, rel, &outputs.dest, !added, false).await?;
    }
    let covered = |rel: &str| {
        roots.iter().any(|(root, _)| rel == root || rel.starts_with(&format!("{root}/")))
            || changes
                .iter()
                .any(|(p, kind)| *kind == ChangeType::_2 && (rel == p || rel.starts_with(&format!("{p}/"))))
    };
    for rel in outputs.also.iter().filter(|rel| !covered(rel)) {
        download(docker, id, &prefix, rel, &outputs.dest, true, true).await?;
    }
    Ok(())
}

/// Download `prefix + rel` from the container and unpack it under `dest` at the same relative
/// path. With `skip_directory`, a path that is a directory is skipped; with `missing_ok`, one
/// that does not exist is.
async fn download(
    docker: &Docker,
    id: &str,
    prefix: &str,
    rel: &str,
    dest: &Path,
    skip_directory: bool,
    missing_ok: bool,
) -> Result<(), ExecError> {
    let target = match rel.rsplit_once('/') {
        Some((parent, _)) => dest.join(parent),
        None => dest.to_path_buf(),
    };
    let options = DownloadFromContainerOptions { path: format!("{prefix}{rel}") };
    let mut stream = docker.download_from_container(id, Some(options));
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(8);
    let unpacker = {
        let target = target.clone();
        std::thread::spawn(move || unpack(ChannelReader { rx, chunk: Bytes::new() }, &target, skip_directory))
    };
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            // The unpacker stops early on a skipped directory.
            Ok(bytes) => {
                if tx.send(bytes).is_err() {
                    break;
                }
            }
            Err(e) if missing_ok && is_not_found(&e) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let unpacked = unpacker.join().unwrap_or_else(|_| Err(io::Error::other("the unpacker panicked")));
    if let Some(e) = failure {
        return Err(EngineError::request(format!("copy {rel} out of the container"), &e).into());
    }
    unpacked.map_err(|source| ExecError::Io { path: target, source })
}

/// Unpack a tar stream from the engine into `dest`: regular files, directories, links.
fn unpack(reader: impl Read, dest: &Path, skip_directory: bool) -> io::Result<()> {
    fs::create_dir_all(dest)?;
    let mut archive = tar::Archive::new(reader);
    archive.set_overwrite(true);
    for (i, entry) in archive.entries()?.enumerate() {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if i == 0 && skip_directory && kind.is_dir() {
            return Ok(());
        }
        if kind.is_file() || kind.is_dir() || kind.is_symlink() || kind.is_hard_link() {
            entry.unpack_in(dest)?;
        }
    }
    Ok(())
}

/// Reads the chunks a channel delivers, as one stream.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.recv() {
                Ok(next) => self.chunk = next,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(list: &[(&str, i32)]) -> BTreeMap<String, ChangeType> {
        list.iter()
            .map(|(p, k)| {
                let kind = match k {
                    0 => ChangeType::_0,
                    1 => ChangeType::_1,
                    _ => ChangeType::_2,
                };
                (p.to_string(), kind)
            })
            .collect()
    }

    #[test]
    fn new_directories_come_whole_and_modified_directories_not_at_all() {
        let c = changes(&[
            ("models", 1),
            ("models/a.bin", 1),
            ("models/sub", 1),
            ("models/sub/b.bin", 1),
            ("data", 0),
            ("data/train.csv", 0),
            ("data/new.csv", 1),
            ("data/old.csv", 2),
            ("metrics.json", 1),
            ("train.py", 0),
            ("gone", 2),
        ]);
        assert_eq!(
            downloads(&c),
            [
                ("data/new.csv".to_string(), true),
                ("data/train.csv".to_string(), false),
                ("metrics.json".to_string(), true),
                ("models".to_string(), true),
                ("train.py".to_string(), false),
            ]
        );
    }

    #[test]
    fn a_modified_directory_is_skipped_and_files_are_unpacked_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar_bytes = Vec::new();
        {
            let mut b = tar::Builder::new(&mut tar_bytes);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, "out", io::empty()).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(2);
            b.append_data(&mut h, "out/a.txt", &b"hi"[..]).unwrap();
            b.finish().unwrap();
        }
        unpack(tar_bytes.as_slice(), &dir.path().join("x"), true).unwrap();
        assert!(!dir.path().join("x/out").exists(), "a directory that was only modified is not an output");
        unpack(tar_bytes.as_slice(), &dir.path().join("y"), false).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("y/out/a.txt")).unwrap(), "hi");
        unpack(io::empty(), &dir.path().join("z"), false).unwrap();
    }

    #[test]
    fn channel_reader_joins_chunks() {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        tx.send(Bytes::from_static(b"ab")).unwrap();
        tx.send(Bytes::from_static(b"")).unwrap();
        tx.send(Bytes::from_static(b"cde")).unwrap();
        drop(tx);
        let mut s = String::new();
        ChannelReader { rx, chunk: Bytes::new() }.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcde");
    }
}
