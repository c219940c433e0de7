//! The `docker` manager: `docker_env` projects run in a container, through the Engine API.
//!
//! By default the project's files go into a project image built `FROM` the base image and
//! tagged by content (base image id, tree hash, Dockerfile), so an unchanged project reuses its
//! image without any build call; `--mount-project` runs the base image as it is with the
//! project bind-mounted instead. The container itself is run by `exec::container`.

mod args;
mod container;
pub mod image;
pub mod lost;
mod plan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    DockerMode, DockerRecord, EnvError, EnvManager, EnvRecord, Environment, Invocation, PrepareContext, PreparedEnv,
    RunContext,
};
use crate::manifest::EnvSpec;
use crate::support::docker_engine::EngineError;
use crate::support::error_class::ErrorClass;
use crate::support::ui;

pub use args::{DockerArgs, SUPPORTED as SUPPORTED_ARGS};
pub use container::{ContainerOutputs, ContainerSpec};
pub use plan::{DockerFlags, DockerPlan};
// Shim for tests/cli/docker.rs until it imports support::docker_engine (the lead removes it).
pub use crate::support::docker_engine::{self as engine, Engine};

/// Where the project is inside the container: MLflow's directory, so that projects that name
/// it keep working.
pub const WORKDIR: &str = "/mlflow/projects/code";

/// The label that names a container's run.
pub const RUN_ID_LABEL: &str = "lockstep.run_id";

/// The name under which containers reach the host (Docker Desktop's name, made to work on
/// every engine through `host-gateway`).
pub const HOST_ALIAS: &str = "host.docker.internal";

/// Errors of Docker environments and containers.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The `--env-manager docker` choice for a project without `docker_env`.
    #[error("the docker manager needs a docker_env section in the MLproject")]
    NoDockerEnv,
    /// A recorded Docker environment that names no base image (a record from elsewhere).
    #[error("the recorded Docker environment names no base image id or digest")]
    NoImageInLock,
    /// A `docker_env.environment` entry names a variable that is not set.
    #[error("docker_env.environment copies {name} from this environment, but {name} is not set")]
    UnsetVariable {
        /// The variable.
        name: String,
    },
    /// A volume specification that is not `host:container[:mode]`.
    #[error("volume '{spec}' {reason}")]
    BadVolume {
        /// The specification as written.
        spec: String,
        /// What is wrong, completing the sentence.
        reason: String,
    },
    /// A `-A` option lockstep does not map onto the Engine API.
    #[error("-A {arg}: lockstep does not support this docker run option")]
    UnsupportedArg {
        /// The argument as given.
        arg: String,
    },
    /// A `-A` option with a bad value.
    #[error("-A {arg}: {reason}")]
    BadArg {
        /// The argument as given.
        arg: String,
        /// What is wrong.
        reason: String,
    },
    /// The base image is not on the engine and could not be pulled.
    #[error("cannot pull image '{image}': {reason}")]
    PullFailed {
        /// The reference.
        image: String,
        /// What the engine said.
        reason: String,
    },
    /// Building the project image failed.
    #[error("building {tag} failed: {message}{}", if .output.is_empty() { String::new() } else { format!("\n{}", .output) })]
    BuildFailed {
        /// The image tag.
        tag: String,
        /// The engine's error.
        message: String,
        /// The output of the failing step.
        output: String,
    },
    /// The project's files changed between hashing and building.
    #[error("the project's files in {} changed while its image was being built", .path.display())]
    TreeChanged {
        /// The file (or project directory) found changed.
        path: PathBuf,
    },
    /// The build context could not be made.
    #[error("cannot make the build context: {message}")]
    Context {
        /// What failed.
        message: String,
    },
    /// The engine could not be reached, or failed a request.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The cache (for build locks) failed.
    #[error(transparent)]
    Cache(#[from] crate::support::cache::CacheError),
}

impl DockerError {
    /// Who has to act.
    pub fn class(&self) -> ErrorClass {
        match self {
            DockerError::Engine(e) => e.class(),
            DockerError::Context { .. } | DockerError::Cache(_) => ErrorClass::Internal,
            _ => ErrorClass::User,
        }
    }

    /// What to try next.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            DockerError::NoDockerEnv => {
                "add docker_env: {image: ...} to the MLproject, or choose another manager".into()
            }
            DockerError::UnsetVariable { name } => {
                format!("set it first (export {name}=...), or give it a value in the MLproject: [{name}, value]")
            }
            DockerError::BadVolume { .. } => {
                "write volumes as HOST:CONTAINER[:ro|rw], with an existing host path or a volume name".into()
            }
            DockerError::UnsupportedArg { .. } => format!("-A accepts: {SUPPORTED_ARGS}"),
            DockerError::PullFailed { image, .. } => format!(
                "check the name; without registry access, make the image locally first (docker build -t {image} ... \
                 or docker load)"
            ),
            DockerError::BuildFailed { .. } => {
                "the output above the error shows the failing step; --mount-project runs the base image without a build"
                    .into()
            }
            DockerError::TreeChanged { .. } => "run again once the files stay put".into(),
            DockerError::NoImageInLock => {
                "the run never had its image (its pull or build failed): there is nothing to re-run; \
                 `lockstep run` the project again"
                    .into()
            }
            DockerError::Engine(e) => return e.hint(),
            _ => return None,
        })
    }
}

/// Whether a URL's host is this machine's loopback (`localhost`, `127.x.x.x`, `[::1]`).
fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().map(|h| &h[1..]).unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1"
}

/// A project with a `docker_env`, not yet prepared.
#[derive(Debug, Clone)]
pub struct DockerEnvironment {
    /// What to ask the engine for.
    image: String,
    /// The reference to record and label with, when `image` pins it by digest or id.
    recorded_as: Option<String>,
    /// The run's Docker settings.
    plan: DockerPlan,
}

impl DockerEnvironment {
    /// The manager for a project's environment spec, which must be a `docker_env`.
    pub fn new(spec: &EnvSpec) -> Result<DockerEnvironment, DockerError> {
        match spec {
            EnvSpec::Docker(d) => {
                Ok(DockerEnvironment { image: d.image.clone(), recorded_as: None, plan: DockerPlan::default() })
            }
            _ => Err(DockerError::NoDockerEnv),
        }
    }

    /// The environment of a recorded run, pinned to the exact base image it used: by repo
    /// digest when it had one (which a registry can serve), else by image id.
    pub fn from_record(record: &DockerRecord) -> DockerEnvironment {
        let image = record.base_image_digest.as_ref().unwrap_or(&record.base_image_id);
        // The original reference keeps the project image's Dockerfile, and so its tag, the same.
        DockerEnvironment {
            image: image.clone(),
            recorded_as: Some(record.base_image.clone()),
            plan: DockerPlan::default(),
        }
    }
}

impl DockerEnvironment {
    /// Give it the run's Docker settings (the default ones until then).
    pub fn set_plan(&mut self, plan: DockerPlan) {
        self.plan = plan;
    }

    /// Have the base image on the engine, pulled when it is not: what can fail before the run
    /// starts (no engine, no such image, no registry) fails here, leaving no run.
    pub fn ensure_base_image(&self) -> Result<(), DockerError> {
        let engine = Engine::connect()?;
        image::ensure_base(&engine, &self.image).map(drop)
    }
}

impl Environment for DockerEnvironment {
    fn manager(&self) -> EnvManager {
        EnvManager::Docker
    }

    fn as_docker(&mut self) -> Option<&mut DockerEnvironment> {
        Some(self)
    }

    fn prepare(&self, ctx: PrepareContext) -> Result<Box<dyn PreparedEnv>, EnvError> {
        let plan = &self.plan;
        let engine = Engine::connect().map_err(DockerError::from)?;
        let version = engine.version().map_err(DockerError::from)?;
        let mut base = image::ensure_base(&engine, &self.image)?;
        if let Some(reference) = &self.recorded_as {
            base.reference = reference.clone();
        }
        let project = match plan.mount_project {
            true => None,
            false => Some(image::ensure_project(
                &engine,
                ctx.cache,
                &base,
                plan.project_name.as_deref(),
                &plan.tree_sha256,
                ctx.project_dir,
                ctx.exclusions,
            )?),
        };
        match &project {
            Some(p) => ui::note(&format!("image {} ({})", p.tag, image::short_id(&p.id))),
            None => ui::note(&format!("image {} ({}), project mounted", base.reference, image::short_id(&base.id))),
        }
        Ok(Box::new(PreparedDocker {
            base,
            project,
            engine_platform: match (&version.os, &version.arch) {
                (Some(os), Some(arch)) => Some(format!("{os}/{arch}")),
                _ => None,
            },
            engine_version: version.version,
            engine_api_version: version.api_version,
            plan: plan.clone(),
        }))
    }
}

/// A docker environment whose image is ready.
#[derive(Debug, Clone)]
pub struct PreparedDocker {
    base: image::BaseImage,
    project: Option<image::ProjectImage>,
    engine_version: Option<String>,
    engine_api_version: Option<String>,
    engine_platform: Option<String>,
    plan: DockerPlan,
}

impl PreparedDocker {
    /// Whether the engine maps `host-gateway` to the host's address (Engine API 1.41, Docker 20.10).
    fn knows_host_gateway(&self) -> bool {
        let version = self.engine_api_version.as_deref().unwrap_or("0.0");
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (1, 41)
    }
}

impl PreparedEnv for PreparedDocker {
    fn record(&self) -> EnvRecord {
        let (image_uri, image_id) = match &self.project {
            Some(p) => (p.tag.clone(), p.id.clone()),
            None => (self.base.reference.clone(), self.base.id.clone()),
        };
        EnvRecord::Docker(Box::new(DockerRecord {
            mode: if self.project.is_some() { DockerMode::Build } else { DockerMode::Mount },
            base_image: self.base.reference.clone(),
            base_image_id: self.base.id.clone(),
            base_image_digest: self.base.digest.clone(),
            project_image: self.project.as_ref().map(|p| p.tag.clone()),
            project_image_id: self.project.as_ref().map(|p| p.id.clone()),
            image_uri,
            image_id,
            platform: self.base.platform.clone(),
            engine_version: self.engine_version.clone(),
            engine_api_version: self.engine_api_version.clone(),
            engine_platform: self.engine_platform.clone(),
        }))
    }

    fn wrap(&self, command: &str, cwd: &Path, run: &RunContext) -> Invocation {
        let plan = &self.plan;
        let labels = BTreeMap::from([
            (RUN_ID_LABEL.to_string(), run.run_id.to_string()),
            (lost::STORE_LABEL.to_string(), run.store_dir.to_string_lossy().into_owned()),
        ]);
        let mut env = run.container_variables();
        env.extend(plan.env.iter().cloned());
        let mut host_config = plan.args.host_config.clone();
        let mut binds = plan.binds.clone();
        if self.project.is_none() {
            binds.push(format!("{}:{WORKDIR}", cwd.display()));
        }
        binds.extend(run.shared_dirs.iter().map(|d| format!("{0}:{0}", d.display())));
        host_config.binds = Some(binds).filter(|b| !b.is_empty());
        // A tracking server on the host's loopback is out of reach of the container's own
        // network: share the host's, unless the user chose a network.
        let tracking_on_loopback = run.extra.iter().any(|(k, v)| k == "MLFLOW_TRACKING_URI" && is_loopback_url(v));
        if tracking_on_loopback && host_config.network_mode.is_none() {
            host_config.network_mode = Some("host".into());
        }
        let network = host_config.network_mode.as_deref().unwrap_or("");
        let hosts = host_config.extra_hosts.get_or_insert_with(Vec::new);
        if self.knows_host_gateway()
            && !network.starts_with("container:")
            && !hosts.iter().any(|h| h.split(':').next() == Some(HOST_ALIAS))
        {
            hosts.push(format!("{HOST_ALIAS}:host-gateway"));
        }
        if hosts.is_empty() {
            host_config.extra_hosts = None;
        }
        Invocation::Container(Box::new(ContainerSpec {
            image: self.project.as_ref().map(|p| p.id.clone()).unwrap_or_else(|| self.base.id.clone()),
            argv: vec!["sh".into(), "-c".into(), command.to_string()],
            env: dedup_last_wins(env),
            workdir: WORKDIR.into(),
            user: plan.args.user.clone(),
            tty: plan.args.tty,
            host_config,
            labels,
            name: Some(format!("lockstep-{}", run.run_id)),
            marker: Some(lost::marker_path(run.store_dir, run.run_id)),
            keep: plan.keep_container,
            project_inside: self.project.is_some(),
            outputs: None,
        }))
    }
}

/// Later entries replace earlier ones of the same name, keeping the first position.
fn dedup_last_wins(vars: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(vars.len());
    for (k, v) in vars {
        match out.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(project: bool, api: &str) -> PreparedDocker {
        PreparedDocker {
            base: image::BaseImage {
                reference: "base:1".into(),
                id: "sha256:base".into(),
                digest: Some("base@sha256:d".into()),
                platform: Some("linux/amd64".into()),
                user: None,
            },
            project: project
                .then(|| image::ProjectImage { tag: "lockstep/p:0123456789ab".into(), id: "sha256:proj".into() }),
            engine_version: Some("20.10".into()),
            engine_api_version: Some(api.into()),
            engine_platform: Some("linux/amd64".into()),
            plan: DockerPlan { env: vec![("MODE".into(), "x".into())], ..Default::default() },
        }
    }

    fn container(inv: Invocation) -> ContainerSpec {
        match inv {
            Invocation::Container(c) => *c,
            other => panic!("not a container: {other:?}"),
        }
    }

    fn run_context(extra: &[(String, String)]) -> RunContext<'_> {
        RunContext {
            run_id: "r1",
            run_dir: Path::new("/host/store/runs/r1"),
            store_dir: Path::new("/host/store"),
            pycache_dir: Path::new("/host/cache/pycache-v1"),
            extra,
            shared_dirs: &[],
        }
    }

    #[test]
    fn wrap_maps_host_variables_and_labels_the_run() {
        let vars = run_context(&[]);
        let c = container(prepared(true, "1.41").wrap("echo 'a b'", Path::new("/host/p"), &vars));
        assert_eq!(c.argv, ["sh", "-c", "echo 'a b'"]);
        assert_eq!(c.image, "sha256:proj");
        assert_eq!(c.workdir, WORKDIR);
        assert_eq!(c.labels.get(RUN_ID_LABEL).map(String::as_str), Some("r1"));
        assert_eq!(c.labels.get(lost::STORE_LABEL).map(String::as_str), Some("/host/store"));
        assert_eq!(c.marker.as_deref(), Some(Path::new("/host/store/docker-containers/r1")));
        assert_eq!(c.name.as_deref(), Some("lockstep-r1"));
        let names: Vec<&str> = c.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["LOCKSTEP_RUN_ID", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "MODE"]);
        assert!(c.project_inside);
        assert_eq!(c.host_config.binds, None, "the project is in the image");
        assert_eq!(c.host_config.extra_hosts, Some(vec![format!("{HOST_ALIAS}:host-gateway")]));

        let c = container(prepared(false, "1.40").wrap("true", Path::new("/host/p"), &vars));
        assert_eq!(c.image, "sha256:base");
        assert_eq!(c.host_config.binds, Some(vec![format!("/host/p:{WORKDIR}")]));
        assert!(!c.project_inside);
        assert_eq!(c.host_config.extra_hosts, None, "engines before API 1.41 do not know host-gateway");
    }

    #[test]
    fn a_tracking_server_on_loopback_shares_the_host_network() {
        assert!(is_loopback_url("http://127.0.0.1:5000"));
        assert!(is_loopback_url("http://user:pw@localhost/mlflow"));
        assert!(is_loopback_url("https://[::1]:8443"));
        assert!(!is_loopback_url("https://mlflow.example.com"));
        assert!(!is_loopback_url("http://10.0.0.5:5000"));
        let vars = [("MLFLOW_TRACKING_URI".to_string(), "http://127.0.0.1:5000".to_string())];
        let c = container(prepared(true, "1.41").wrap("true", Path::new("/p"), &run_context(&vars)));
        assert_eq!(c.host_config.network_mode.as_deref(), Some("host"));
        let remote = [("MLFLOW_TRACKING_URI".to_string(), "https://mlflow.example.com".to_string())];
        let c = container(prepared(true, "1.41").wrap("true", Path::new("/p"), &run_context(&remote)));
        assert_eq!(c.host_config.network_mode, None);
    }

    #[test]
    fn record_names_both_images() {
        let r = serde_json::to_value(prepared(true, "1.41").record()).unwrap();
        assert_eq!(r["manager"], "docker");
        assert_eq!(r["mode"], "build");
        assert_eq!(r["base_image"], "base:1");
        assert_eq!(r["base_image_digest"], "base@sha256:d");
        assert_eq!(r["image_uri"], "lockstep/p:0123456789ab");
        assert_eq!(r["image_id"], "sha256:proj");
        let record = prepared(false, "1.41").record();
        assert_eq!(DockerFlags::of_lock(&record), DockerFlags { mount_project: true, ..DockerFlags::default() });
        assert_eq!((record.image_uri(), record.image_id()), (Some("base:1"), Some("sha256:base")));
        let r = serde_json::to_value(&record).unwrap();
        assert_eq!(r["mode"], "mount");
        assert_eq!(r["project_image"], serde_json::Value::Null);
        let pinned = DockerEnvironment::from_record(record.docker().unwrap());
        assert_eq!((pinned.image.as_str(), pinned.recorded_as.as_deref()), ("base@sha256:d", Some("base:1")));
    }
}
