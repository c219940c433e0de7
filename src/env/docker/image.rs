//! Images: the base image (used when the engine has it, pulled when not) and the project
//! image, built `FROM` the base image's id with exactly the files of the project's tree hash,
//! and tagged by content so that an existing tag means nothing to build.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bollard::models::ImageInspect;
use bollard::query_parameters::{BuildImageOptions, CreateImageOptions};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{DockerError, WORKDIR};
use crate::source::tree::{Exclusions, FileMode, TreeEntry, hash_tree};
use crate::support::cache::{self, Cache, CacheBucket};
use crate::support::docker_engine::{Engine, EngineError, describe, is_not_found};
use crate::support::ui;

/// The Dockerfile of project images, from `templates/docker/Dockerfile`.
const DOCKERFILE_TEMPLATE: &str = include_str!("../../../templates/docker/Dockerfile");

/// Versions the project image's definition (tag key, context layout, template variables).
const IMAGE_SCHEMA: &str = "lockstep.docker-image/v1";

/// The Dockerfile's name inside the build context, beside the `project/` directory.
const CONTEXT_DOCKERFILE: &str = "Dockerfile.lockstep";

/// The base image, as the engine has it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseImage {
    /// The reference from `docker_env.image`.
    pub reference: String,
    /// The image id (`sha256:...`).
    pub id: String,
    /// A repository digest (`name@sha256:...`), when the image came from a registry.
    pub digest: Option<String>,
    /// `os/arch[/variant]`.
    pub platform: Option<String>,
    /// The user the image runs as, when it names one.
    pub user: Option<String>,
}

impl BaseImage {
    fn from_inspect(reference: &str, image: ImageInspect) -> BaseImage {
        let platform = match (image.os.as_deref(), image.architecture.as_deref()) {
            (Some(os), Some(arch)) => Some(match image.variant.as_deref().filter(|v| !v.is_empty()) {
                Some(variant) => format!("{os}/{arch}/{variant}"),
                None => format!("{os}/{arch}"),
            }),
            _ => None,
        };
        let (name, _) = split_reference(reference);
        let digests = image.repo_digests.unwrap_or_default();
        let digest =
            digests.iter().find(|d| d.split('@').next() == Some(name.as_str())).or_else(|| digests.first()).cloned();
        BaseImage {
            reference: reference.to_string(),
            id: image.id.unwrap_or_default(),
            digest,
            platform,
            user: image.config.and_then(|c| c.user).filter(|u| !u.is_empty()),
        }
    }
}

/// The project image: the tag and the id it resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectImage {
    /// `lockstep/<name>:<12 hex>`.
    pub tag: String,
    /// The image id.
    pub id: String,
}

/// What a project image's tag is derived from.
#[derive(Serialize)]
struct ImageKey<'a> {
    schema: &'a str,
    base_image_id: &'a str,
    tree_sha256: &'a str,
    dockerfile: &'a str,
}

/// `name[:tag|@digest]` as the pull API wants it: the repository and the tag or digest
/// (`latest` when none is given, since an empty tag would pull every tag).
pub fn split_reference(reference: &str) -> (String, String) {
    if let Some((name, digest)) = reference.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    let last_slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            (reference[..at].to_string(), reference[at + 1..].to_string())
        }
        None => (reference.to_string(), "latest".to_string()),
    }
}

/// A project name as a Docker repository path component: lower case, letters and digits
/// separated by single dashes (`project` when nothing is left).
pub fn repository_name(name: Option<&str>) -> String {
    let mut out = String::new();
    for c in name.unwrap_or("").chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() { "project".into() } else { out.to_string() }
}

/// The project image's Dockerfile for a base image and a tree.
pub fn render_dockerfile(base: &BaseImage, tree_sha256: &str) -> String {
    let chown = base.user.as_deref().map(|u| format!("--chown={u} ")).unwrap_or_default();
    // A JSON string is a valid quoted Dockerfile word.
    let reference = serde_json::to_string(&base.reference).unwrap_or_default();
    DOCKERFILE_TEMPLATE
        .replace("{{base_image_id}}", &base.id)
        .replace("{{base_image}}", &reference)
        .replace("{{tree_sha256}}", tree_sha256)
        .replace("{{chown}}", &chown)
        .replace("{{workdir}}", WORKDIR)
}

/// The base image: the engine's copy when it has one, else pulled (with progress).
pub fn ensure_base(engine: &Engine, reference: &str) -> Result<BaseImage, DockerError> {
    if let Some(image) = inspect(engine, reference)? {
        return Ok(BaseImage::from_inspect(reference, image));
    }
    pull(engine, reference)?;
    match inspect(engine, reference)? {
        Some(image) => Ok(BaseImage::from_inspect(reference, image)),
        None => Err(DockerError::PullFailed {
            image: reference.to_string(),
            reason: "the engine reported success but does not have it".into(),
        }),
    }
}

fn inspect(engine: &Engine, reference: &str) -> Result<Option<ImageInspect>, DockerError> {
    match engine.block_on(engine.docker().inspect_image(reference)) {
        Ok(image) => Ok(Some(image)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(EngineError::request(format!("inspect image {reference}"), &e).into()),
    }
}

fn pull(engine: &Engine, reference: &str) -> Result<(), DockerError> {
    ui::note(&format!("pulling {reference}"));
    let (name, tag) = split_reference(reference);
    let options = CreateImageOptions { from_image: Some(name), tag: Some(tag), ..Default::default() };
    let failed = |e: &bollard::errors::Error| DockerError::PullFailed { image: reference.into(), reason: describe(e) };
    engine.block_on_interruptible(async {
        let mut stream = engine.docker().create_image(Some(options), None, None);
        let mut shown = String::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| failed(&e))?;
            // One line per layer and state: byte counts would flood a log.
            let line = match (info.id.as_deref(), info.status.as_deref()) {
                (Some(id), Some(status)) => format!("{id}: {status}"),
                (None, Some(status)) => status.to_string(),
                _ => continue,
            };
            if line != shown {
                ui::note(&format!("pull {reference}: {line}"));
                shown = line;
            }
        }
        Ok(())
    })
}

/// The project image for `tree_sha256` on `base`: found by its tag, or built from the
/// project's files (which must still hash to `tree_sha256`).
pub fn ensure_project(
    engine: &Engine,
    cache: &Cache,
    base: &BaseImage,
    project_name: Option<&str>,
    tree_sha256: &str,
    project_dir: &Path,
    exclusions: &Exclusions,
) -> Result<ProjectImage, DockerError> {
    let dockerfile = render_dockerfile(base, tree_sha256);
    let key = cache::content_key(&ImageKey {
        schema: IMAGE_SCHEMA,
        base_image_id: &base.id,
        tree_sha256,
        dockerfile: &dockerfile,
    });
    let tag = format!("lockstep/{}:{}", repository_name(project_name), crate::support::ids::short(&key));
    if let Some(image) = inspect(engine, &tag)? {
        return Ok(ProjectImage { id: image.id.unwrap_or_default(), tag });
    }
    // Concurrent runs of one project build its image once.
    let _lock = cache.lock(CacheBucket::Docker, &key)?;
    if let Some(image) = inspect(engine, &tag)? {
        return Ok(ProjectImage { id: image.id.unwrap_or_default(), tag });
    }
    // Hashed afresh: a build happens once per tree, and the context must be exactly the tree.
    let tree = hash_tree(project_dir, exclusions, None).map_err(|e| DockerError::Context { message: e.to_string() })?;
    if tree.sha256 != tree_sha256 {
        return Err(DockerError::TreeChanged { path: project_dir.to_path_buf() });
    }
    build(engine, base, &tag, &dockerfile, project_dir, tree.entries)?;
    match inspect(engine, &tag)? {
        Some(image) => Ok(ProjectImage { id: image.id.unwrap_or_default(), tag }),
        None => Err(EngineError::Request {
            action: format!("build {tag}"),
            message: "the build ended without the tagged image".into(),
        }
        .into()),
    }
}

fn build(
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
                        }
                        step.push_str(&text);
                        let _ = io::stderr().lock().write_all(text.as_bytes());
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

/// The short form of an image id, as `docker images` shows it.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    crate::support::ids::short(hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn references_split_into_repository_and_tag() {
        let s = |r: &str| split_reference(r);
        assert_eq!(s("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(s("python:3.11-slim"), ("python".into(), "3.11-slim".into()));
        assert_eq!(s("host:5000/team/img"), ("host:5000/team/img".into(), "latest".into()));
        assert_eq!(s("host:5000/img:v1"), ("host:5000/img".into(), "v1".into()));
        assert_eq!(s("img@sha256:abc"), ("img".into(), "sha256:abc".into()));
    }

    #[test]
    fn project_names_become_repository_names() {
        assert_eq!(repository_name(Some("My Churn_Model v2")), "my-churn-model-v2");
        assert_eq!(repository_name(Some("--x--")), "x");
        assert_eq!(repository_name(Some("日本")), "project");
        assert_eq!(repository_name(None), "project");
    }

    fn base(user: Option<&str>) -> BaseImage {
        BaseImage {
            reference: "b:1".into(),
            id: "sha256:abc".into(),
            digest: None,
            platform: None,
            user: user.map(Into::into),
        }
    }

    #[test]
    fn dockerfile_builds_from_the_base_image_id() {
        let d = render_dockerfile(&base(None), "t123");
        assert!(d.contains("FROM sha256:abc\n"), "{d}");
        assert!(
            d.contains(
                "LABEL lockstep.base_image=\"b:1\" lockstep.base_image_id=sha256:abc lockstep.tree_sha256=t123\n"
            ),
            "{d}"
        );
        assert!(d.contains(&format!("COPY project/ {WORKDIR}/\n")), "{d}");
        assert!(d.contains(&format!("WORKDIR {WORKDIR}\n")), "{d}");
        let d = render_dockerfile(&base(Some("1000:100")), "t");
        assert!(d.contains("COPY --chown=1000:100 project/"), "{d}");
        assert!(!d.contains("{{"), "every template variable is filled: {d}");
    }

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

    #[test]
    fn short_ids_drop_the_algorithm() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn keys_change_with_each_input() {
        let key = |b: &str, t: &str, d: &str| {
            cache::content_key(&ImageKey { schema: IMAGE_SCHEMA, base_image_id: b, tree_sha256: t, dockerfile: d })
        };
        let k = key("b", "t", "d");
        assert_ne!(k, key("b2", "t", "d"));
        assert_ne!(k, key("b", "t2", "d"));
        assert_ne!(k, key("b", "t", "d2"));
    }
}
