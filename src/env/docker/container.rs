//! What `exec` is handed to run a Docker environment's command: a container's settings, and
//! which of its files to copy out when the project lives inside the image.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bollard::models::HostConfig;

/// What `exec` runs for a container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// The image id.
    pub image: String,
    /// The command: `sh -c COMMAND` (the image's entrypoint, if any, still applies).
    pub argv: Vec<String>,
    /// The container's whole environment on top of the image's.
    pub env: Vec<(String, String)>,
    /// The working directory inside the container.
    pub workdir: String,
    /// The user to run as, when `-A user` names one.
    pub user: Option<String>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Binds, resources, devices, network.
    pub host_config: HostConfig,
    /// Labels (the run id and the store).
    pub labels: BTreeMap<String, String>,
    /// The container's name.
    pub name: Option<String>,
    /// The store's note of the container, written before it is created and removed with it,
    /// so that a runner that is killed leaves it to be cleaned up (see [`super::lost`]).
    pub marker: Option<PathBuf>,
    /// Keep the container after it exits.
    pub keep: bool,
    /// Whether the project lives inside the image (so outputs must be copied out).
    pub project_inside: bool,
    /// Where to copy the outputs to, and which unchanged files to copy too.
    pub outputs: Option<ContainerOutputs>,
}

/// Outputs to copy out of a container after it exits: every file created or changed under
/// its working directory, plus `also`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerOutputs {
    /// The host directory they go to (keeping their paths).
    pub dest: PathBuf,
    /// Files (relative to the working directory) to copy even when unchanged: those the entry
    /// point's `outputs:` globs match.
    pub also: Vec<String>,
}
