//! The command line's arguments: clap structs only, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::help;
pub(crate) use super::sweep_args::SweepArgs;
use crate::env::EnvManager;

mod outputs;
mod ui;

pub(crate) use outputs::{KeepArgs, OutputsArgs};
pub(crate) use ui::{PlotArgs, UiArgs, XArg};

/// A fast, exact runner for MLflow projects that records reproducible runs.
#[derive(Parser)]
#[command(name = "lockstep", version, about, after_help = help::TOP)]
pub(crate) struct Cli {
    /// Show tools' whole output (a Docker image build's log) instead of one line per step
    /// (no -v: that is --version, as in `mlflow run`).
    #[arg(long, global = true)]
    pub(crate) verbose: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run an entry point of a project (local path or git URL) and record the run.
    #[command(after_help = help::RUN)]
    Run(RunArgs),
    /// List the runs in the store, newest first.
    #[command(after_help = help::RUNS)]
    Runs(ListArgs),
    /// Show one run.
    #[command(after_help = help::SHOW)]
    Show(ShowArgs),
    /// Stop a run's job on its backend (`run --backend ... --detach`) and record it KILLED.
    Cancel(CancelArgs),
    /// Print a run's stdout (or stderr) log; --follow keeps printing until the run ends.
    #[command(after_help = help::LOGS)]
    Logs(LogsArgs),
    /// Restore a run's outputs (all, or one file or directory) from the copies the store keeps.
    Outputs(OutputsArgs),
    /// Write a deterministic .tar.gz of a project (and optionally a run's record).
    #[command(after_help = help::PACK)]
    Pack(PackArgs),
    /// Extract an archive safely (checking it against its manifest) and print its tree hash.
    #[command(after_help = help::UNPACK)]
    Unpack(UnpackArgs),
    /// Re-run a recorded run from its exact source and environment; compare its outputs.
    #[command(after_help = help::VERIFY)]
    Verify(VerifyArgs),
    /// Would a re-run start from the same source and environment? Runs nothing.
    #[command(after_help = help::STATUS)]
    Status(StatusArgs),
    /// Compare two runs: parameters, logged metrics, source, environment and outputs.
    #[command(after_help = help::DIFF)]
    Diff(DiffArgs),
    /// Write a starter project.
    #[command(after_help = help::INIT)]
    Init(InitArgs),
    /// Print the tree hash of a project directory.
    #[command(after_help = help::HASH)]
    Hash(HashArgs),
    /// Send a recorded run to an MLflow tracking server, or complete what a lost server missed.
    #[command(after_help = help::SYNC)]
    Sync(SyncArgs),
    /// List or prune the environments built in the cache.
    #[command(subcommand, after_help = help::ENV)]
    Env(EnvCommand),
    /// Serve a local web app over the store: runs, metric charts, files, logs and diffs.
    Ui(UiArgs),
    /// Write a chart (SVG or PNG) of a metric that runs' scripts logged.
    Plot(PlotArgs),
    /// Run an entry point over a grid of parameter values, several trials at a time;
    /// `sweep show SWEEP` ranks a sweep's trials.
    #[command(after_help = help::SWEEP)]
    Sweep(SweepArgs),
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(after_help = help::COMPLETIONS)]
    Completions(CompletionsArgs),
}

#[derive(Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete lockstep's commands and options in.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Subcommand)]
pub(crate) enum EnvCommand {
    /// List the built environments, most recently used first.
    List(EnvListArgs),
    /// Remove built environments (not those a run is using) and leftovers of interrupted builds.
    Prune(EnvPruneArgs),
}

#[derive(Args)]
pub(crate) struct EnvListArgs {
    /// Print a JSON array.
    #[arg(long)]
    pub(crate) json: bool,
    /// The store whose runs name the projects using each environment.
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct EnvPruneArgs {
    /// Remove environments not used for this long (e.g. 30d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "30d", conflicts_with = "all")]
    pub(crate) older_than: std::time::Duration,
    /// Remove every environment not in use.
    #[arg(long)]
    pub(crate) all: bool,
    /// Print what was removed as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct StoreArg {
    /// The run store.
    #[arg(
        long,
        env = "LOCKSTEP_STORE",
        hide_env_values = true,
        default_value = ".lockstep",
        value_name = "DIR",
        help_heading = help::STORE
    )]
    pub(crate) store: PathBuf,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// A project directory, a git URL (https://, ssh://, git://, file://, user@host:path) or
    /// an archive (.tar.gz, .tgz or .zip, a file or an http(s) URL), optionally followed by
    /// #subdirectory.
    pub(crate) uri: String,
    /// The entry point, or a .py / .sh script of the project.
    #[arg(short, long = "entry-point", default_value = "main", value_name = "ENTRY")]
    pub(crate) entry_point: String,
    /// A branch, tag or commit (full or short SHA).
    #[arg(short, long, value_name = "VERSION", help_heading = help::SOURCE)]
    pub(crate) version: Option<String>,
    /// A parameter value; repeat for more.
    #[arg(short = 'P', long = "param", value_name = "NAME=VALUE")]
    pub(crate) params: Vec<String>,
    /// How to provide the environment (default: what the project asks for).
    #[arg(long, value_name = "MANAGER", value_parser = EnvManagerParser, help_heading = help::ENVIRONMENT)]
    pub(crate) env_manager: Option<EnvManager>,
    /// A `docker run` option, as MLflow spells it (gpus=all is --gpus all, t is -t);
    /// repeat for more.
    #[arg(short = 'A', long = "docker-args", value_name = "NAME[=VALUE]", help_heading = help::DOCKER)]
    pub(crate) docker_args: Vec<String>,
    /// Run the base image as it is, with the project bind-mounted, instead of
    /// building a project image.
    #[arg(long, conflicts_with = "build_image", help_heading = help::DOCKER)]
    pub(crate) mount_project: bool,
    /// Build the project image (the default; accepted for MLflow's command lines).
    #[arg(long, help_heading = help::DOCKER)]
    pub(crate) build_image: bool,
    /// Keep the container after the run instead of removing it.
    #[arg(long, help_heading = help::DOCKER)]
    pub(crate) keep_container: bool,
    /// A name for the run (also its `mlflow.runName` on a tracking server).
    #[arg(long, value_name = "NAME", help_heading = help::TRACKING)]
    pub(crate) run_name: Option<String>,
    #[command(flatten)]
    pub(crate) tracking: TrackingArgs,
    /// Run a local directory in a fresh copy of its tree instead of in place.
    #[arg(long, help_heading = help::SOURCE)]
    pub(crate) isolated: bool,
    /// Print the final record as JSON on stdout; the entry point's stdout goes to stderr.
    #[arg(long)]
    pub(crate) json: bool,
    /// Let what the entry point leaves running (background jobs, daemons) outlive the run;
    /// by default it is stopped (SIGTERM, then SIGKILL) when the entry point exits.
    #[arg(long)]
    pub(crate) keep_processes: bool,
    /// Do not run when the store has a FINISHED run of the same files, environment, entry
    /// point and parameters whose outputs are in place: print that run instead.
    #[arg(long, help_heading = help::STORE)]
    pub(crate) reuse: bool,
    #[command(flatten)]
    pub(crate) mlflow: MlflowSpellings,
    #[command(flatten)]
    pub(crate) keep: KeepArgs,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

/// `mlflow run` options that scripts pass: accepted with MLflow's meaning, or refused with
/// lockstep's equivalent, so that a command line copied from MLflow's docs either runs or
/// says what to write instead.
#[derive(Args)]
pub(crate) struct MlflowSpellings {
    /// Where to run: `local` (here, the default), `slurm` (a job on a Slurm cluster) or `ray`
    /// (a job on a Ray cluster).
    #[arg(short = 'b', long = "backend", value_name = "BACKEND", value_parser = ["local", "slurm", "ray"])]
    pub(crate) backend: Option<String>,
    /// The backend's config: a JSON file or inline JSON (keys in docs/backends.md).
    #[arg(short = 'c', long = "backend-config", value_name = "FILE_OR_JSON")]
    pub(crate) backend_config: Option<String>,
    /// With a backend: return once the job is submitted, printing the run id and the job id
    /// (`lockstep runs` and `show` follow it, `lockstep cancel` stops it).
    #[arg(long)]
    pub(crate) detach: bool,
    /// The run id a backend's job records its run under (the submitting side's run).
    #[arg(long = "lockstep-run-id", value_name = "RUN_ID", hide = true)]
    pub(crate) lockstep_run_id: Option<String>,
    /// MLflow's --run-id (resume a run on the tracking server): refused, lockstep records a new
    /// run each time.
    #[arg(long = "run-id", value_name = "RUN_ID", value_parser = refuse_run_id)]
    pub(crate) run_id: Option<String>,
    /// MLflow's --storage-dir (where `path` downloads go): refused, lockstep keeps them in the
    /// run's directory.
    #[arg(long = "storage-dir", value_name = "DIR", value_parser = refuse_storage_dir)]
    pub(crate) storage_dir: Option<String>,
}

fn refuse_run_id(_: &str) -> Result<String, String> {
    Err("lockstep does not resume runs: every `lockstep run` records a new run (its id is \
         MLFLOW_RUN_ID inside the run); `lockstep sync RUN --tracking-uri URL` sends a recorded \
         run to a server, and `lockstep verify RUN` re-runs one"
        .into())
}

fn refuse_storage_dir(_: &str) -> Result<String, String> {
    Err("lockstep downloads `path` parameters into the run's own directory (inputs/NAME/ in \
         the store), where the record finds them: leave --storage-dir out"
        .into())
}

#[derive(Args)]
pub(crate) struct PackArgs {
    /// A project directory, git URL or archive, optionally followed by #subdirectory.
    pub(crate) uri: String,
    /// The archive to write (default: NAME-TREEHASH.tar.gz here).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// A branch, tag or commit, for git sources.
    #[arg(short, long, value_name = "VERSION")]
    pub(crate) version: Option<String>,
    /// Put this run's record in the archive, so that it can be verified elsewhere.
    #[arg(long, value_name = "RUN")]
    pub(crate) run: Option<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct UnpackArgs {
    /// A .tar.gz, .tgz or .zip file, or an http(s) URL of one.
    pub(crate) archive: String,
    /// The directory to extract into; it must not exist yet.
    pub(crate) dir: PathBuf,
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// A run id (or prefix), a record.json file, or an archive made by `pack --run`.
    pub(crate) target: String,
    /// Leave outputs matching this glob out of the comparison; repeat for more.
    #[arg(long, value_name = "GLOB")]
    pub(crate) ignore: Vec<String>,
    /// Numbers in JSON and CSV outputs may differ by this relative tolerance.
    #[arg(long, value_name = "X")]
    pub(crate) rtol: Option<f64>,
    /// Use this project directory for a local run instead of the recorded one.
    #[arg(long, value_name = "DIR")]
    pub(crate) source: Option<PathBuf>,
    /// Show why outputs differ: the verdict's evidence, and each differing file compared by
    /// kind (JSON/CSV fields, NumPy arrays, PNG pixels, bytes) with a table of metric deltas.
    #[arg(long)]
    pub(crate) explain: bool,
    /// Re-run N times on this machine and report which outputs vary between repetitions.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) repeat: usize,
    /// When outputs vary, re-run with one factor pinned at a time (threads, PYTHONHASHSEED,
    /// cuBLAS workspace, time zone/locale/SOURCE_DATE_EPOCH, working directory) and name
    /// the factors whose pinning makes them stable.
    #[arg(long)]
    pub(crate) isolate: bool,
    /// Re-runs at most, repetitions and isolation together.
    #[arg(long, value_name = "N", default_value_t = crate::commands::verify::DEFAULT_MAX_RUNS)]
    pub(crate) max_runs: usize,
    /// Print the report as JSON on stdout; the re-run's stdout goes to stderr.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) keep: KeepArgs,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct StatusArgs {
    /// A run id (or prefix) or a record.json file.
    pub(crate) target: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct DiffArgs {
    /// The first run: a run id (or prefix) or a record.json file.
    pub(crate) a: String,
    /// The second run, compared with the first.
    pub(crate) b: String,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

/// The tracking flags, with MLflow's variables as defaults. Help never shows their values:
/// a tracking URI may hold credentials.
#[derive(Args)]
pub(crate) struct TrackingArgs {
    /// The MLflow tracking server (http:// or https://) to record the run on, besides the store.
    #[arg(long, env = "MLFLOW_TRACKING_URI", hide_env_values = true, value_name = "URI", help_heading = help::TRACKING)]
    pub(crate) tracking_uri: Option<String>,
    /// The experiment to record the run under (created on the server when missing).
    #[arg(long, env = "MLFLOW_EXPERIMENT_NAME", hide_env_values = true, value_name = "NAME", help_heading = help::TRACKING)]
    pub(crate) experiment_name: Option<String>,
    /// The id of an existing experiment on the server.
    #[arg(long, env = "MLFLOW_EXPERIMENT_ID", hide_env_values = true, value_name = "ID", help_heading = help::TRACKING)]
    pub(crate) experiment_id: Option<String>,
}

#[derive(Args)]
pub(crate) struct SyncArgs {
    /// A run id or a unique prefix of one.
    pub(crate) run: String,
    #[command(flatten)]
    pub(crate) tracking: TrackingArgs,
    /// Print the updated record as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct ListArgs {
    /// Print a JSON array of records.
    #[arg(long)]
    pub(crate) json: bool,
    /// The metric columns (comma-separated); by default the metrics every listed run logged.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub(crate) metrics: Option<Vec<String>>,
    /// Sort by a logged metric's last value: NAME ascending, -NAME descending.
    #[arg(long, value_name = "METRIC", allow_hyphen_values = true)]
    pub(crate) sort: Option<String>,
    /// Only runs of this experiment (runs given no experiment are in Default).
    #[arg(long, value_name = "NAME")]
    pub(crate) experiment: Option<String>,
    /// Only runs with this status.
    #[arg(long, value_enum)]
    pub(crate) status: Option<StatusArg>,
    /// Only runs of this project (the MLproject's name, else its directory's).
    #[arg(long, value_name = "NAME")]
    pub(crate) project: Option<String>,
    /// Only runs of this entry point.
    #[arg(short, long = "entry-point", value_name = "ENTRY")]
    pub(crate) entry_point: Option<String>,
    /// Only the newest N runs (the first N in --sort's order).
    #[arg(short = 'n', long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    /// Every column in full, however wide the terminal.
    #[arg(long)]
    pub(crate) wide: bool,
    /// Only runs with this parameter value, given or logged (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub(crate) params: Vec<String>,
    /// Only the trials of this sweep (its id or a unique prefix).
    #[arg(long, value_name = "SWEEP")]
    pub(crate) sweep: Option<String>,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct ShowArgs {
    /// A run id or a unique prefix of one.
    pub(crate) run: String,
    /// Print the record as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct CancelArgs {
    /// A run id or a unique prefix of one.
    pub(crate) run: String,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct LogsArgs {
    /// A run id or a unique prefix of one.
    pub(crate) run: String,
    /// Print the stderr log instead of the stdout log.
    #[arg(long)]
    pub(crate) stderr: bool,
    /// Keep printing what the run writes until it ends.
    #[arg(short, long)]
    pub(crate) follow: bool,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum StatusArg {
    Running,
    Finished,
    Failed,
    Killed,
    Lost,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TemplateArg {
    Python,
    Conda,
    Docker,
    Shell,
}

#[derive(Args)]
pub(crate) struct InitArgs {
    /// Where to write the project.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Which kind of project.
    #[arg(long, value_enum, default_value = "python")]
    pub(crate) template: TemplateArg,
}

#[derive(Args)]
pub(crate) struct HashArgs {
    /// The project directory.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Also print every file with its mode and digest.
    #[arg(long)]
    pub(crate) files: bool,
    /// Hash every file, ignoring (and not updating) the stat cache.
    #[arg(long)]
    pub(crate) no_cache: bool,
}

pub(crate) fn parse_env_manager(s: &str) -> Result<EnvManager, String> {
    s.parse()
}

/// `--env-manager`'s parser: [`parse_env_manager`]'s words on a wrong value, and the values
/// listed in `--help` and in completions, from the one list of names [`EnvManager`] parses.
#[derive(Clone)]
pub(crate) struct EnvManagerParser;

impl clap::builder::TypedValueParser for EnvManagerParser {
    type Value = EnvManager;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<EnvManager, clap::Error> {
        parse_env_manager.parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(EnvManager::CHOICES.iter().map(|m| clap::builder::PossibleValue::new(m.name()))))
    }
}
