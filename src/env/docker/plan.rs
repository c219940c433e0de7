//! A Docker run's settings, checked before it starts: the `-A` options parsed, the volumes made
//! absolute (and required to exist), the variables resolved.

use std::path::Path;

use super::{DockerArgs, DockerError, args};
use crate::env::{DockerMode, EnvRecord};
use crate::manifest::{DockerEnv, DockerEnvVar};

/// The Docker flags of `lockstep run`, as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DockerFlags {
    /// `-A NAME[=VALUE]`, in order.
    pub args: Vec<String>,
    /// `--mount-project`: run the base image as it is, with the project bind-mounted.
    pub mount_project: bool,
    /// `--keep-container`: leave the container behind after the run.
    pub keep_container: bool,
}

impl DockerFlags {
    /// Whether any Docker flag was given.
    pub fn given(&self) -> bool {
        *self != DockerFlags::default()
    }

    /// The flags that rebuild a recorded Docker environment the way it ran (its mode).
    pub fn of_lock(record: &EnvRecord) -> DockerFlags {
        let mount = record.docker().is_some_and(|d| d.mode == DockerMode::Mount);
        DockerFlags { mount_project: mount, ..DockerFlags::default() }
    }
}

/// The Docker settings of one run, checked before it starts: volumes with absolute host paths,
/// variables resolved, `-A` options parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DockerPlan {
    /// The project's name, for the image's repository.
    pub project_name: Option<String>,
    /// The tree hash of the project's files, for the image's tag.
    pub tree_sha256: String,
    /// Bind specifications (`/abs/host:/container[:mode]` or `volume:/container[:mode]`).
    pub binds: Vec<String>,
    /// Variables from `docker_env.environment`, then `-A env`, in order.
    pub env: Vec<(String, String)>,
    /// The other `-A` options.
    pub args: DockerArgs,
    /// Run the base image with the project bind-mounted (no project image).
    pub mount_project: bool,
    /// Keep the container after the run.
    pub keep_container: bool,
}

impl DockerPlan {
    /// Check and resolve a run's Docker settings: `docker_env` volumes are relative to the
    /// project, `-A volume` ones to the caller's directory.
    pub fn new(
        spec: &DockerEnv,
        flags: &DockerFlags,
        project_name: Option<&str>,
        tree_sha256: &str,
        project_dir: &Path,
        caller_dir: &Path,
    ) -> Result<DockerPlan, DockerError> {
        let lookup = |name: &str| std::env::var(name).ok();
        let args = args::parse(&flags.args, lookup)?;
        let mut binds = Vec::new();
        for v in &spec.volumes {
            binds.push(resolve_volume(v, project_dir)?);
        }
        for v in &args.volumes {
            binds.push(resolve_volume(v, caller_dir)?);
        }
        let mut env = Vec::new();
        for var in &spec.environment {
            env.push(match var {
                DockerEnvVar::Set(name, value) => (name.clone(), value.clone()),
                DockerEnvVar::Copy(name) => {
                    let value = lookup(name).ok_or_else(|| DockerError::UnsetVariable { name: name.clone() })?;
                    (name.clone(), value)
                }
            });
        }
        env.extend(args.env.iter().cloned());
        Ok(DockerPlan {
            project_name: project_name.map(str::to_string),
            tree_sha256: tree_sha256.to_string(),
            binds,
            env,
            args,
            mount_project: flags.mount_project,
            keep_container: flags.keep_container,
        })
    }
}

/// `host:container[:mode]` with the host side made absolute against `base` (and required to
/// exist: the engine would silently create a missing one as an empty root-owned directory).
/// A host side without `/` that does not start with `.` is a named volume, kept as it is.
fn resolve_volume(spec: &str, base: &Path) -> Result<String, DockerError> {
    let bad = |reason: &str| DockerError::BadVolume { spec: spec.to_string(), reason: reason.to_string() };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, None),
        [h, c, m] => (*h, *c, Some(*m)),
        _ => return Err(bad("is not HOST:CONTAINER[:MODE]")),
    };
    if host.is_empty() || !container.starts_with('/') {
        return Err(bad("needs a host path or volume name and an absolute container path"));
    }
    if let Some(m) = mode
        && (m.is_empty() || !m.split(',').all(|o| VOLUME_MODES.contains(&o)))
    {
        return Err(bad("has an unknown mode (use ro or rw, optionally with z, Z or a propagation mode)"));
    }
    let named = !host.contains('/') && !host.starts_with('.') && !host.starts_with('~');
    let host = if named {
        host.to_string()
    } else {
        if host.starts_with('~') {
            return Err(bad("starts with ~, which is not expanded: write the path out"));
        }
        let path = std::path::absolute(base.join(host)).map_err(|e| bad(&e.to_string()))?;
        if !path.exists() {
            return Err(DockerError::BadVolume {
                spec: spec.to_string(),
                reason: format!("names {}, which does not exist", path.display()),
            });
        }
        path.to_string_lossy().into_owned()
    };
    Ok(match mode {
        Some(m) => format!("{host}:{container}:{m}"),
        None => format!("{host}:{container}"),
    })
}

const VOLUME_MODES: &[&str] = &[
    "ro",
    "rw",
    "z",
    "Z",
    "nocopy",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
    "consistent",
    "cached",
    "delegated",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::docker::dedup_last_wins;

    fn spec(volumes: &[&str], environment: Vec<DockerEnvVar>) -> DockerEnv {
        DockerEnv { image: "img:1".into(), volumes: volumes.iter().map(|s| s.to_string()).collect(), environment }
    }

    #[test]
    fn volumes_are_made_absolute_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        std::fs::create_dir_all(project.join("data")).unwrap();
        let p = project.display();
        assert_eq!(resolve_volume("./data:/data:ro", &project).unwrap(), format!("{p}/data:/data:ro"));
        assert_eq!(resolve_volume("data/:/d", &project).unwrap(), format!("{p}/data/:/d"));
        assert_eq!(resolve_volume("/tmp:/t", &project).unwrap(), "/tmp:/t");
        assert_eq!(resolve_volume("cachevol:/cache", &project).unwrap(), "cachevol:/cache", "a named volume");
        let err = resolve_volume("./missing:/m", &project).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        for bad in ["nocolon", "/a:relative", "/a:/b:bogus", ":/b", "/a:/b:ro:x", "~/x:/x"] {
            assert!(resolve_volume(bad, &project).is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_resolves_variables_and_volumes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        // PATH is set in every test environment; a random name is not.
        let env = vec![
            DockerEnvVar::Copy("PATH".into()),
            DockerEnvVar::Set("MODE".into(), "fast".into()),
            DockerEnvVar::Set("LEVEL".into(), "1".into()),
        ];
        let flags = DockerFlags {
            args: vec!["e=LEVEL=2".into(), "v=.:/caller".into()],
            mount_project: true,
            keep_container: true,
        };
        let plan =
            DockerPlan::new(&spec(&["/tmp:/tmp"], env), &flags, Some("n"), "abc", dir.path(), dir.path()).unwrap();
        assert_eq!(plan.env[0], ("PATH".to_string(), std::env::var("PATH").unwrap()));
        assert_eq!(dedup_last_wins(plan.env.clone())[2], ("LEVEL".to_string(), "2".to_string()), "-A env wins");
        assert_eq!(plan.binds, ["/tmp:/tmp".to_string(), format!("{}:/caller", dir.path().display())]);
        assert!(plan.mount_project && plan.keep_container);
        let unset = vec![DockerEnvVar::Copy("LOCKSTEP_SURELY_UNSET_VARIABLE".into())];
        let err =
            DockerPlan::new(&spec(&[], unset), &DockerFlags::default(), None, "", dir.path(), dir.path()).unwrap_err();
        assert!(matches!(err, DockerError::UnsetVariable { .. }), "{err}");
        assert!(err.hint().unwrap().contains("[LOCKSTEP_SURELY_UNSET_VARIABLE, value]"));
    }
}
