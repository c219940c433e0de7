//! The arguments of `lockstep sweep` and `lockstep sweep show`: clap structs only, beside
//! the other commands' in `args.rs`.

use clap::{Args, Subcommand, ValueEnum};

use super::args::{EnvManagerParser, KeepArgs, StoreArg, TrackingArgs};
use super::help;
use crate::env::EnvManager;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct SweepArgs {
    #[command(subcommand)]
    pub(crate) command: Option<SweepCommand>,
    #[command(flatten)]
    pub(crate) run: SweepRunArgs,
}

#[derive(Subcommand)]
pub(crate) enum SweepCommand {
    /// The table of a sweep's trials, ranked by a metric.
    Show(SweepShowArgs),
}

#[derive(Args)]
pub(crate) struct SweepRunArgs {
    /// A project directory or git URL, optionally followed by #subdirectory.
    #[arg(required = true)]
    pub(crate) uri: Option<String>,
    /// The entry point, or a .py / .sh script of the project.
    #[arg(short, long = "entry-point", default_value = "main", value_name = "ENTRY")]
    pub(crate) entry_point: String,
    /// A branch, tag or commit (full or short SHA).
    #[arg(short, long, value_name = "VERSION", help_heading = help::SOURCE)]
    pub(crate) version: Option<String>,
    /// A parameter's values: a,b,c | range(start,stop,step) | linspace(a,b,n) |
    /// logspace(a,b,n) | '["a,b","c"]'; repeat for more. The grid is their product.
    #[arg(short = 'P', long = "param", value_name = "NAME=VALUES")]
    pub(crate) params: Vec<String>,
    /// Run N trials drawn from the grid instead of all of it.
    #[arg(long, value_name = "N")]
    pub(crate) random: Option<usize>,
    /// The seed --random draws with (default: drawn, and recorded in the sweep).
    #[arg(long, value_name = "S", requires = "random")]
    pub(crate) seed: Option<u64>,
    /// Trials run at a time.
    #[arg(short, long, default_value = "1", value_name = "N")]
    pub(crate) jobs: usize,
    /// GPUs to share out: worker i gets CUDA_VISIBLE_DEVICES set to the i-th (round robin).
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub(crate) gpus: Vec<String>,
    #[command(flatten)]
    pub(crate) rank: RankArgs,
    /// Print the trials and exit without running them.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Start no more trials once one failed.
    #[arg(long)]
    pub(crate) fail_fast: bool,
    /// How to provide the environment (default: what the project asks for).
    #[arg(long, value_name = "MANAGER", value_parser = EnvManagerParser, help_heading = help::ENVIRONMENT)]
    pub(crate) env_manager: Option<EnvManager>,
    /// A `docker run` option, as MLflow spells it; repeat for more.
    #[arg(short = 'A', long = "docker-args", value_name = "NAME[=VALUE]", help_heading = help::DOCKER)]
    pub(crate) docker_args: Vec<String>,
    /// Run the base image with the project bind-mounted instead of building an image.
    #[arg(long, help_heading = help::DOCKER)]
    pub(crate) mount_project: bool,
    #[command(flatten)]
    pub(crate) tracking: TrackingArgs,
    #[command(flatten)]
    pub(crate) format: TableFormatArgs,
    /// Run every trial, even those with an equivalent FINISHED run in the store.
    #[arg(long, help_heading = help::STORE)]
    pub(crate) no_reuse: bool,
    #[command(flatten)]
    pub(crate) keep: KeepArgs,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct SweepShowArgs {
    /// A sweep id or a unique prefix of one.
    pub(crate) sweep: String,
    #[command(flatten)]
    pub(crate) rank: RankArgs,
    #[command(flatten)]
    pub(crate) format: TableFormatArgs,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args)]
pub(crate) struct RankArgs {
    /// Rank the trials by this logged metric (its last value).
    #[arg(long, value_name = "NAME")]
    pub(crate) metric: Option<String>,
    /// Which end of the metric is best.
    #[arg(long, value_enum, default_value = "min", requires = "metric")]
    pub(crate) goal: GoalArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum GoalArg {
    Min,
    Max,
}

#[derive(Args)]
#[group(multiple = false)]
pub(crate) struct TableFormatArgs {
    /// Print the results as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print the results as CSV.
    #[arg(long)]
    pub(crate) csv: bool,
    /// Print the results as a Markdown table.
    #[arg(long)]
    pub(crate) md: bool,
}
