//! Images: the base image (used when the engine has it, pulled when not) and the project
//! image, built `FROM` the base image's id with exactly the files of the project's tree hash,
//! and tagged by content so that an existing tag means nothing to build.

use std::path::Path;

use bollard::models::ImageInspect;
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;
use serde::Serialize;

mod build;

use build::build;

use super::{DockerError, WORKDIR};
use crate::source::tree::{Exclusions, hash_tree};
use crate::support::cache::{self, Cache, CacheBucket};
use crate::support::docker_engine::{Engine, EngineError, describe, is_not_found};
use crate::support::ui;

/// The Dockerfile of project images, from `templates/docker/Dockerfile`.
const DOCKERFILE_TEMPLATE: &str = include_str!("../../../templates/docker/Dockerfile");

/// Versions the project image's definition (tag key, context layout, template variables).
const IMAGE_SCHEMA: &str = "lockstep.docker-image/v1";

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

/// The short form of an image id, as `docker images` shows it.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    crate::support::ids::short(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

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
