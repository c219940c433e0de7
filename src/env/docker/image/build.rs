//! Building a project image: the build context (the Dockerfile, then exactly the files of the
//! hashed tree, each checked against its digest as it is read) streamed to the engine while
//! it is written.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bollard::query_parameters::BuildImageOptions;
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::super::DockerError;
use super::BaseImage;
use crate::source::tree::{FileMode, TreeEntry};
use crate::support::docker_engine::{Engine, describe};
use crate::support::ui;

/// The Dockerfile's name inside the build context, beside the `project/` directory.
const CONTEXT_DOCKERFILE: &str = "Dockerfile.lockstep";

/// Build `tag` from `dockerfile` and exactly `entries` of `project_dir`, streaming the context
/// to the engine while it is written; on stderr one line per step (the whole output with `--verbose`).
pub(super) fn build(
    engine: &Engine,
    base: &BaseImage,
    tag: &str,
    dockerfile: &str,
    project_dir: &Path,
    entries: Vec<TreeEntry>,
) -> Result<(), DockerError> {
    ui::note(&format!("building {tag} from {} ({} files)", base.reference, entries.len()));
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
    let producer = {
        let (dir, dockerfile) = (project_dir.to_path_buf(), dockerfile.to_string());
        std::thread::spawn(move || {
            let mut out = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
            let result = write_context(&dir, &entries, &dockerfile, &mut out)
                .and_then(|()| out.flush().map_err(|e| ContextError::Io { path: dir.clone(), source: e }));
            if let Err(e) = &result {
                // Abort the upload: the engine must not build from a partial context.
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
            result
        })
    };
    // Shared, so that the receiver can be dropped once lockstep stops driving the request:
    // the engine's connection task keeps the body alive, unpolled, after an interrupt or a
    // failed build, and the producer would wait on the full channel forever.
    let receiver = Arc::new(Mutex::new(Some(rx)));
    let body = {
        let receiver = receiver.clone();
        futures_util::stream::poll_fn(move |cx| match lock(&receiver).as_mut() {
            Some(rx) => rx.poll_recv(cx),
            // An error, not the end: an ended body would be a complete, truncated context.
            None => std::task::Poll::Ready(Some(Err(io::Error::other("the build was abandoned")))),
        })
    };
    let options = BuildImageOptions {
        dockerfile: CONTEXT_DOCKERFILE.into(),
        t: Some(tag.to_string()),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let built = engine.block_on_interruptible(async {
        let mut stream = engine.docker().build_image(options, None, Some(bollard::body_try_stream(body)));
        // The output of the current step, for the error when it fails.
        let mut step = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        if text.starts_with("Step ") {
                            step.clear();
                            if !ui::verbose() {
                                ui::note(&format!("build {tag}: {}", text.trim_end()));
                            }
                        }
                        step.push_str(&text);
                        // The whole log with --verbose; otherwise a failed step's output is in the error.
                        if ui::verbose() {
                            let _ = io::stderr().lock().write_all(text.as_bytes());
                        }
                    }
                }
                Err(e) => {
                    return Err(DockerError::BuildFailed {
                        tag: tag.to_string(),
                        message: describe(&e),
                        output: step.trim_end().to_string(),
                    });
                }
            }
        }
        Ok(())
    });
    lock(&receiver).take();
    match producer.join() {
        Ok(Err(ContextError::Closed)) | Ok(Ok(())) => built,
        Ok(Err(ContextError::Changed { path })) => Err(DockerError::TreeChanged { path }),
        Ok(Err(e)) => Err(DockerError::Context { message: e.to_string() }),
        Err(_) => Err(DockerError::Context { message: "the build context writer panicked".into() }),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why the build context could not be written.
#[derive(Debug, thiserror::Error)]
enum ContextError {
    /// A file no longer has the content that was hashed.
    #[error("{} changed while the image was built", .path.display())]
    Changed { path: PathBuf },
    /// A file could not be read.
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The engine stopped reading (the build failed or was interrupted).
    #[error("the engine closed the build context")]
    Closed,
}

/// Write the build context: the Dockerfile, then `project/` holding exactly `entries` (each
/// checked against its digest while it is read, so the image holds the hashed tree).
fn write_context(
    project_dir: &Path,
    entries: &[TreeEntry],
    dockerfile: &str,
    out: &mut impl Write,
) -> Result<(), ContextError> {
    let mut tar = tar::Builder::new(out);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| {
            if source.kind() == io::ErrorKind::BrokenPipe {
                ContextError::Closed
            } else {
                ContextError::Io { path, source }
            }
        }
    };
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    tar.append_data(&mut header, CONTEXT_DOCKERFILE, dockerfile.as_bytes())
        .map_err(io_err(Path::new(CONTEXT_DOCKERFILE)))?;

    let root = Path::new("project");
    let mut dirs = BTreeSet::from([root.to_path_buf()]);
    for e in entries {
        let mut parent = e.path.parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(root.join(p));
            parent = p.parent();
        }
    }
    for dir in &dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(0);
        tar.append_data(&mut header, dir, io::empty()).map_err(io_err(dir))?;
    }
    for e in entries {
        let src = project_dir.join(&e.path);
        let name = root.join(&e.path);
        let changed = || ContextError::Changed { path: src.clone() };
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        if e.mode == FileMode::Symlink {
            let target = std::fs::read_link(&src).map_err(io_err(&src))?;
            if <[u8; 32]>::from(Sha256::digest(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()))) != e.sha256
            {
                return Err(changed());
            }
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            tar.append_link(&mut header, &name, &target).map_err(io_err(&src))?;
            continue;
        }
        let file = File::open(&src).map_err(io_err(&src))?;
        let len = file.metadata().map_err(io_err(&src))?.len();
        if len != e.size {
            return Err(changed());
        }
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(if e.mode == FileMode::Executable { 0o755 } else { 0o644 });
        header.set_size(e.size);
        let mut reader = HashingReader { inner: file.take(e.size), hasher: Sha256::new(), count: 0 };
        tar.append_data(&mut header, &name, &mut reader).map_err(io_err(&src))?;
        if reader.count != e.size || <[u8; 32]>::from(reader.hasher.finalize()) != e.sha256 {
            return Err(changed());
        }
    }
    tar.finish().map_err(io_err(Path::new("build context")))?;
    Ok(())
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

const CHUNK: usize = 256 * 1024;

/// Sends what is written, in chunks, to the request body; a closed body is a broken pipe.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tree::{Exclusions, hash_tree};
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// One entry of a context: path, kind, mode, content (or link target).
    type ContextEntry = (String, tar::EntryType, u32, Vec<u8>);

    fn context_of(dir: &Path) -> Result<Vec<ContextEntry>, ContextError> {
        let tree = hash_tree(dir, &Exclusions::default(), None).unwrap();
        let mut out = Vec::new();
        write_context(dir, &tree.entries, "FROM x\n", &mut out)?;
        let mut archive = tar::Archive::new(out.as_slice());
        Ok(archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let (kind, mode) = (e.header().entry_type(), e.header().mode().unwrap());
                let mut data = Vec::new();
                if kind == tar::EntryType::Symlink {
                    data = e.link_name().unwrap().unwrap().to_string_lossy().as_bytes().to_vec();
                } else {
                    e.read_to_end(&mut data).unwrap();
                }
                (path, kind, mode, data)
            })
            .collect())
    }

    #[test]
    fn context_holds_exactly_the_hashed_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::write(root.join("src/deep/a.py"), "print(1)\n").unwrap();
        std::fs::write(root.join("run.sh"), "echo\n").unwrap();
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(root.join(".gitignore"), "*.log\n").unwrap();
        std::fs::write(root.join("noise.log"), "ignored").unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/HEAD"), "x").unwrap();
        symlink("run.sh", root.join("link")).unwrap();
        let entries = context_of(root).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                CONTEXT_DOCKERFILE,
                "project",
                "project/src",
                "project/src/deep",
                "project/.gitignore",
                "project/link",
                "project/run.sh",
                "project/src/deep/a.py"
            ]
        );
        assert_eq!(entries[1].1, tar::EntryType::Directory);
        let find = |n: &str| entries.iter().find(|e| e.0 == n).unwrap();
        assert_eq!(find("project/run.sh").2, 0o755, "owner-executable files are 0755, as the hash says");
        assert_eq!(find("project/src/deep/a.py").2, 0o644);
        assert_eq!(find("project/src/deep/a.py").3, b"print(1)\n");
        assert_eq!(find("project/link").1, tar::EntryType::Symlink);
        assert_eq!(find("project/link").3, b"run.sh");
        assert_eq!(find(CONTEXT_DOCKERFILE).3, b"FROM x\n");
    }

    #[test]
    fn a_file_changed_after_hashing_stops_the_context() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "one").unwrap();
        let tree = hash_tree(dir.path(), &Exclusions::default(), None).unwrap();
        std::fs::write(dir.path().join("a.txt"), "two").unwrap();
        let err = write_context(dir.path(), &tree.entries, "FROM x\n", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, ContextError::Changed { .. }), "{err}");
        std::fs::write(dir.path().join("a.txt"), "longer").unwrap();
        let err = write_context(dir.path(), &tree.entries, "FROM x\n", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, ContextError::Changed { .. }), "{err}");
    }
}
