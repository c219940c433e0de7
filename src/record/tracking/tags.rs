//! The tags lockstep sets on a server's run: those `mlflow run` writes, and `lockstep.*` ones.

use std::path::Path;

use super::RUN_ID_TAG;
use crate::env::EnvManager;
use crate::record::mlflow::MAX_TAG_VALUE_LENGTH;
use crate::record::{RECORD_SCHEMA, RunRecord};
use crate::source::{SourceInfo, SourceKind, SourceUri};

/// Every tag lockstep sets on a run, from what the record knows so far: those `mlflow run`
/// (MLflow 3.17) writes, and `lockstep.*` ones.
pub fn run_tags(record: &RunRecord) -> Vec<(String, String)> {
    let mut tags: Vec<(&str, String)> = vec![
        ("mlflow.user", user_name()),
        ("mlflow.source.type", "PROJECT".into()),
        ("mlflow.source.name", source_name(&record.source)),
        ("mlflow.project.entryPoint", record.entry_point.clone()),
        ("mlflow.project.backend", "local".into()),
    ];
    // MLflow tags the environment it activates (docker, virtualenv, uv, conda): a local run
    // activates none, and has no such tag.
    let manager = record.environment.manager();
    if manager != EnvManager::Local {
        tags.push(("mlflow.project.env", manager.name().into()));
    }
    let s = &record.source;
    if let Some(commit) = &s.commit {
        tags.push(("mlflow.source.git.commit", commit.clone()));
    }
    if let Some(url) = &s.repo_url {
        tags.push(("mlflow.source.git.repoURL", url.clone()));
    }
    // Only a `-v` that names a branch is tagged, as MLflow does: not the branch a checkout
    // happens to be on, nor the default branch of a repository run without `-v`.
    if let Some(branch) = s.version.as_ref().filter(|v| s.branch.as_ref() == Some(*v)) {
        tags.push(("mlflow.source.git.branch", branch.clone()));
    }
    if let Some(name) = &record.run_name {
        tags.push(("mlflow.runName", name.clone()));
    }
    tags.push((RUN_ID_TAG, record.run_id.clone()));
    tags.push(("lockstep.record.schema", RECORD_SCHEMA.into()));
    tags.push(("lockstep.version", crate::VERSION.into()));
    tags.push(("lockstep.tree_sha256", s.tree_sha256.clone()));
    tags.push(("lockstep.dirty", s.dirty.to_string()));
    if let Some(patch) = &s.patch_sha256 {
        tags.push(("lockstep.patch_sha256", patch.clone()));
    }
    // FINISHED says 0 already, and a tag less is a write less for the server.
    if let Some(code) = record.exit_code.filter(|c| *c != 0) {
        tags.push(("lockstep.exit_code", code.to_string()));
    }
    if let Some(failure) = &record.failure {
        tags.push(("lockstep.failure", failure.clone()));
    }
    let mut tags: Vec<(String, String)> =
        tags.into_iter().map(|(k, v)| (k.to_string(), truncate(&v, MAX_TAG_VALUE_LENGTH))).collect();
    tags.extend(environment_tags(record));
    tags
}

/// The tags that come from the prepared environment: its key, and a docker image's name and id.
pub(super) fn environment_tags(record: &RunRecord) -> Vec<(String, String)> {
    let env = &record.environment;
    let mut tags = Vec::new();
    if let Some(docker) = env.docker() {
        tags.push(("mlflow.docker.image.uri".to_string(), docker.image_uri.clone()));
        tags.push(("mlflow.docker.image.id".to_string(), docker.image_id.clone()));
    }
    if let Some(key) = env.key() {
        tags.push(("lockstep.env.key".to_string(), key.to_string()));
    }
    tags.into_iter().map(|(k, v)| (k, truncate(&v, MAX_TAG_VALUE_LENGTH))).collect()
}

/// `mlflow.source.name` as `mlflow run` writes it: a git URL as given; for a local directory
/// in a git checkout `file://<repository>#<subdirectory>`; otherwise the absolute directory.
fn source_name(s: &SourceInfo) -> String {
    let with_sub = |base: String| match &s.subdirectory {
        Some(sub) => format!("{base}#{sub}"),
        None => base,
    };
    match s.kind {
        SourceKind::Local => match (&s.path, &s.commit) {
            (Some(path), Some(_)) => {
                let mut root = path.clone();
                for _ in Path::new(s.subdirectory.as_deref().unwrap_or("")).components() {
                    root.pop();
                }
                with_sub(format!("file://{}", root.display()))
            }
            (Some(path), None) => path.display().to_string(),
            (None, _) => s.uri.clone(),
        },
        SourceKind::Git => match SourceUri::parse(&s.uri) {
            Ok(SourceUri::Git { .. }) => s.uri.clone(),
            // A local repository run at a version: name the repository.
            _ => match &s.repo_url {
                Some(url) if url.starts_with('/') => with_sub(format!("file://{url}")),
                Some(url) => with_sub(url.clone()),
                None => s.uri.clone(),
            },
        },
        // An archive as given: a URL, or a path made absolute by the caller.
        SourceKind::Archive => s.uri.clone(),
    }
}

/// The user, as Python's `getpass.getuser()` (which `mlflow run` uses) finds it.
pub(crate) fn user_name() -> String {
    for var in ["LOGNAME", "USER", "LNAME", "USERNAME"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return v.to_string_lossy().into_owned();
        }
    }
    passwd_name().unwrap_or_else(|| "unknown".into())
}

fn passwd_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: getpwuid_r writes into `pwd` and `buf`, both alive and sized as passed; the
    // name pointer is read only when the call succeeded and points into `buf`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(libc::getuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned())
    }
}

pub(super) fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tracking::test_record as record;

    fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
        tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn tags_are_those_mlflow_run_writes_plus_lockstep_ones() {
        let mut r = record();
        let tags = run_tags(&r);
        assert_eq!(tag(&tags, "mlflow.source.type"), Some("PROJECT"));
        assert_eq!(tag(&tags, "mlflow.source.name"), Some("file:///home/u/repo#proj"));
        assert_eq!(tag(&tags, "mlflow.source.git.commit"), Some("c".repeat(40).as_str()));
        assert_eq!(tag(&tags, "mlflow.source.git.repoURL"), Some("https://git.example.com/team/repo.git"));
        assert_eq!(tag(&tags, "mlflow.source.git.branch"), None, "the checkout's branch, not named by -v");
        assert_eq!(tag(&tags, "mlflow.project.entryPoint"), Some("main"));
        assert_eq!(tag(&tags, "mlflow.project.backend"), Some("local"));
        assert_eq!(tag(&tags, "mlflow.project.env"), None, "MLflow tags no environment for a local run");
        assert_eq!(tag(&tags, "mlflow.runName"), Some("first"));
        assert_eq!(tag(&tags, "lockstep.dirty"), Some("true"));
        assert_eq!(tag(&tags, "lockstep.exit_code"), None, "only a failure's exit code is a tag");
        assert_eq!(tag(&tags, RUN_ID_TAG), Some(r.run_id.as_str()));
        assert_eq!(tag(&tags, "mlflow.docker.image.uri"), None);

        // `-v` names the branch: tagged; `-v` names a commit: not.
        r.source.version = Some("main".into());
        assert_eq!(tag(&run_tags(&r), "mlflow.source.git.branch"), Some("main"));
        r.source.version = Some("c".repeat(40));
        r.source.branch = None;
        assert_eq!(tag(&run_tags(&r), "mlflow.source.git.branch"), None);

        // A Docker environment as the Docker manager records it.
        r.environment = serde_json::from_value(serde_json::json!({
            "manager": "docker", "mode": "build", "base_image": "busybox:1", "base_image_id": "sha256:b",
            "image_uri": "lockstep/p:abc", "image_id": "sha256:123",
        }))
        .unwrap();
        r.failure = Some("x".repeat(9000));
        r.exit_code = Some(2);
        let tags = run_tags(&r);
        assert_eq!(tag(&tags, "mlflow.project.env"), Some("docker"));
        assert_eq!(tag(&tags, "mlflow.docker.image.uri"), Some("lockstep/p:abc"));
        assert_eq!(tag(&tags, "mlflow.docker.image.id"), Some("sha256:123"));
        assert_eq!(tag(&tags, "lockstep.env.key"), None, "a Docker environment has no cache key");
        assert_eq!(tag(&tags, "lockstep.failure").unwrap().len(), MAX_TAG_VALUE_LENGTH);
        assert_eq!(tag(&tags, "lockstep.exit_code"), Some("2"));

        // Run in the base image (no project image built): its name, as MLflow tags it.
        r.environment = serde_json::from_value(serde_json::json!({
            "manager": "docker", "mode": "mount", "base_image": "busybox:1", "base_image_id": "sha256:b",
            "image_uri": "busybox:1", "image_id": "sha256:b",
        }))
        .unwrap();
        assert_eq!(tag(&run_tags(&r), "mlflow.docker.image.uri"), Some("busybox:1"));
    }

    #[test]
    fn source_names_follow_mlflow() {
        let mut s = record().source;
        s.subdirectory = None;
        s.path = Some("/home/u/repo".into());
        assert_eq!(source_name(&s), "file:///home/u/repo");
        s.commit = None;
        assert_eq!(source_name(&s), "/home/u/repo");
        s.kind = SourceKind::Git;
        s.uri = "https://git.example.com/team/repo.git#proj".into();
        assert_eq!(source_name(&s), "https://git.example.com/team/repo.git#proj");
    }
}
