//! The `lockstep` command line: argument definitions, dispatch, and rendering of results.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use lockstep::cache::Cache;
use lockstep::env::EnvManager;
use lockstep::exec::Echo;
use lockstep::init::Template;
use lockstep::record::{RecordError, RunRecord, Store, TrackingTarget};
use lockstep::run::RunOptions;
use lockstep::source::{Exclusions, SourceError, hash_tree};

/// A fast, exact runner for MLflow projects that records reproducible runs.
#[derive(Parser)]
#[command(name = "lockstep", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an entry point of a project (local path or git URL) and record the run.
    Run(RunArgs),
    /// List the runs in the store, newest first.
    Runs(ListArgs),
    /// Show one run.
    Show(ShowArgs),
    /// Write a starter project.
    Init(InitArgs),
    /// Print the tree hash of a project directory.
    Hash(HashArgs),
    /// Send a recorded run to an MLflow tracking server, or complete what a lost server missed.
    Sync(SyncArgs),
}

#[derive(Args)]
struct StoreArg {
    /// The run store.
    #[arg(long, env = "LOCKSTEP_STORE", default_value = ".lockstep", value_name = "DIR")]
    store: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// A project directory or git URL (https://, ssh://, git://, file://, user@host:path),
    /// optionally followed by #subdirectory.
    uri: String,
    /// The entry point, or a .py / .sh script of the project.
    #[arg(short, long = "entry-point", default_value = "main", value_name = "ENTRY")]
    entry_point: String,
    /// A branch, tag or commit (full or short SHA).
    #[arg(short, long, value_name = "VERSION")]
    version: Option<String>,
    /// A parameter value; repeat for more.
    #[arg(short = 'P', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// How to provide the environment (default: what the project asks for).
    #[arg(long, value_name = "MANAGER", value_parser = parse_env_manager)]
    env_manager: Option<EnvManager>,
    /// A name for the run.
    #[arg(long, value_name = "NAME")]
    run_name: Option<String>,
    #[command(flatten)]
    tracking: TrackingArgs,
    /// Run a local directory in a fresh copy of its tree instead of in place.
    #[arg(long)]
    isolated: bool,
    /// Print the final record as JSON on stdout; the entry point's stdout goes to stderr.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArg,
}

/// The tracking flags, with MLflow's variables as defaults. Help never shows their values:
/// a tracking URI may hold credentials.
#[derive(Args)]
struct TrackingArgs {
    /// The MLflow tracking server (http:// or https://) to record the run on, besides the store.
    #[arg(long, env = "MLFLOW_TRACKING_URI", hide_env_values = true, value_name = "URI")]
    tracking_uri: Option<String>,
    /// The experiment to record the run under (created on the server when missing).
    #[arg(long, env = "MLFLOW_EXPERIMENT_NAME", hide_env_values = true, value_name = "NAME")]
    experiment_name: Option<String>,
    /// The id of an existing experiment on the server.
    #[arg(long, env = "MLFLOW_EXPERIMENT_ID", hide_env_values = true, value_name = "ID")]
    experiment_id: Option<String>,
}

#[derive(Args)]
struct SyncArgs {
    /// A run id or a unique prefix of one.
    run: String,
    #[command(flatten)]
    tracking: TrackingArgs,
    /// Print the updated record as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct ListArgs {
    /// Print a JSON array of records.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct ShowArgs {
    /// A run id or a unique prefix of one.
    run: String,
    /// Print the record as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum TemplateArg {
    Python,
    Conda,
    Docker,
    Shell,
}

#[derive(Args)]
struct InitArgs {
    /// Where to write the project.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Which kind of project.
    #[arg(long, value_enum, default_value = "python")]
    template: TemplateArg,
}

#[derive(Args)]
struct HashArgs {
    /// The project directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Also print every file with its mode and digest.
    #[arg(long)]
    files: bool,
    /// Hash every file, ignoring (and not updating) the stat cache.
    #[arg(long)]
    no_cache: bool,
}

fn parse_env_manager(s: &str) -> Result<EnvManager, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cmd_run(args),
        Command::Runs(args) => cmd_runs(args),
        Command::Show(args) => cmd_show(args),
        Command::Init(args) => cmd_init(args),
        Command::Hash(args) => cmd_hash(args),
        Command::Sync(args) => cmd_sync(args),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => render_error(&err),
    }
}

/// Print an error as `error:` and `hint:` lines and choose the exit code. A closed stdout
/// (`lockstep runs | head`) is not an error.
fn render_error(err: &anyhow::Error) -> ExitCode {
    if let Some(io_err) = err.downcast_ref::<io::Error>()
        && io_err.kind() == io::ErrorKind::BrokenPipe
    {
        return ExitCode::SUCCESS;
    }
    let mut stderr = io::stderr().lock();
    let code = match err.downcast_ref::<lockstep::Error>() {
        Some(e) => {
            let _ = writeln!(stderr, "error: {e}");
            if let Some(hint) = e.hint() {
                let _ = writeln!(stderr, "hint: {hint}");
            }
            e.exit_code()
        }
        None => {
            let _ = writeln!(stderr, "error: {err:#}");
            1
        }
    };
    ExitCode::from(code as u8)
}

fn cmd_run(args: RunArgs) -> anyhow::Result<i32> {
    let opts = RunOptions {
        uri: args.uri,
        entry_point: args.entry_point,
        version: args.version,
        params: args.params,
        env_manager: args.env_manager,
        run_name: args.run_name,
        experiment_name: args.tracking.experiment_name,
        experiment_id: args.tracking.experiment_id,
        tracking_uri: args.tracking.tracking_uri,
        store: args.store.store,
        isolated: args.isolated,
        echo: if args.json { Echo::Stderr } else { Echo::Stdout },
        caller_dir: std::env::current_dir()?,
    };
    let outcome = lockstep::run::run(&opts)?;
    let r = &outcome.record;
    lockstep::ui::note(&format!(
        "run {} {} (exit code {}) in {}",
        r.run_id,
        r.status.name(),
        outcome.exit_code,
        format_duration(r.duration_ms())
    ));
    if args.json {
        print_json(r)?;
    }
    Ok(outcome.exit_code)
}

fn cmd_sync(args: SyncArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.store).map_err(lockstep::Error::from)?;
    let t = &args.tracking;
    let target =
        TrackingTarget::resolve(t.tracking_uri.as_deref(), t.experiment_name.as_deref(), t.experiment_id.as_deref())
            .map_err(|e| lockstep::Error::from(RecordError::from(e)))?;
    let (record, page) =
        lockstep::record::tracking::sync(&store, &args.run, target.as_ref()).map_err(lockstep::Error::from)?;
    lockstep::ui::note(&format!("run {} synced: {page}", record.run_id));
    if args.json {
        print_json(&record)?;
    } else {
        writeln!(io::stdout().lock(), "{page}")?;
    }
    Ok(0)
}

fn cmd_runs(args: ListArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.store).map_err(lockstep::Error::from)?;
    let (runs, problems) = store.list().map_err(lockstep::Error::from)?;
    for p in &problems {
        lockstep::ui::warn(&p.to_string());
    }
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &runs)?;
        writeln!(out)?;
        return Ok(0);
    }
    if runs.is_empty() {
        lockstep::ui::note(&format!("no runs in {}", store.root().display()));
        return Ok(0);
    }
    writeln!(
        out,
        "{:<12}  {:<20}  {:<8}  {:<10}  {:>8}  {:<30}  SOURCE",
        "RUN", "START", "STATUS", "ENTRY", "DURATION", "PARAMETERS"
    )?;
    for r in &runs {
        writeln!(
            out,
            "{:<12}  {:<20}  {:<8}  {:<10}  {:>8}  {:<30}  {}",
            &r.run_id[..12.min(r.run_id.len())],
            format_time(r.start_time),
            r.status.name(),
            r.entry_point,
            format_duration(r.duration_ms()),
            format_params(r),
            format_source(r),
        )?;
    }
    Ok(0)
}

fn cmd_show(args: ShowArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.store).map_err(lockstep::Error::from)?;
    let r = store.find(&args.run).map_err(lockstep::Error::from)?;
    if args.json {
        print_json(&r)?;
        return Ok(0);
    }
    let mut out = io::stdout().lock();
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    writeln!(out, "run:          {}", r.run_id)?;
    if let Some(name) = &r.run_name {
        writeln!(out, "name:         {name}")?;
    }
    writeln!(out, "status:       {}", r.status.name())?;
    if let Some(f) = &r.failure {
        writeln!(out, "failure:      {f}")?;
    }
    writeln!(out, "exit code:    {}", r.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()))?;
    writeln!(out, "started:      {}", format_time(r.start_time))?;
    writeln!(out, "duration:     {}", format_duration(r.duration_ms()))?;
    writeln!(out, "entry point:  {}", r.entry_point)?;
    writeln!(out, "command:      {}", r.command)?;
    for (k, v) in &r.parameters {
        writeln!(out, "parameter:    {k}={v}")?;
    }
    writeln!(out, "source:       {} ({})", r.source.uri, format_source(&r))?;
    writeln!(out, "commit:       {}", opt(&r.source.commit))?;
    writeln!(out, "branch:       {}", opt(&r.source.branch))?;
    writeln!(out, "repository:   {}", opt(&r.source.repo_url))?;
    writeln!(out, "tree sha256:  {}", r.source.tree_sha256)?;
    writeln!(out, "dirty:        {}", if r.source.dirty { "yes" } else { "no" })?;
    writeln!(out, "environment:  {}", r.environment.manager)?;
    if let Some(t) = &r.tracking {
        let state = if t.synced { "synced" } else { "not synced: `lockstep sync` sends the rest" };
        writeln!(out, "tracking:     {} experiment {} run {} ({state})", t.uri, t.experiment_id, t.run_id)?;
    }
    writeln!(out, "host:         {} {} ({})", r.host.os, r.host.arch, r.host.hostname.as_deref().unwrap_or("-"))?;
    writeln!(out, "outputs in:   {}", r.outputs_dir.display())?;
    for o in &r.outputs {
        writeln!(out, "  {}  {:>10}  {}", &o.sha256[..16], o.size, o.path)?;
    }
    Ok(0)
}

fn cmd_init(args: InitArgs) -> anyhow::Result<i32> {
    let template = match args.template {
        TemplateArg::Python => Template::Python,
        TemplateArg::Conda => Template::Conda,
        TemplateArg::Docker => Template::Docker,
        TemplateArg::Shell => Template::Shell,
    };
    let written = lockstep::init::init(&args.dir, template).map_err(lockstep::Error::from)?;
    let mut out = io::stdout().lock();
    for path in written {
        writeln!(out, "{}", path.display())?;
    }
    Ok(0)
}

fn cmd_hash(args: HashArgs) -> anyhow::Result<i32> {
    let tree = hash_dir(&args.dir, !args.no_cache).map_err(lockstep::Error::from)?;
    let mut out = io::stdout().lock();
    if args.files {
        for e in &tree.entries {
            writeln!(out, "{} {} {}", e.mode.octal(), lockstep::fsutil::hex(&e.sha256), e.path.display())?;
        }
    }
    writeln!(out, "{}", tree.sha256)?;
    Ok(0)
}

fn hash_dir(dir: &Path, use_cache: bool) -> Result<lockstep::source::Tree, SourceError> {
    if !dir.is_dir() {
        return Err(SourceError::NotFound { path: dir.to_path_buf() });
    }
    let dir = std::fs::canonicalize(dir).map_err(|source| SourceError::Io { path: dir.to_path_buf(), source })?;
    let stat_cache = match use_cache {
        true => Some(lockstep::source::stat_cache_file(&Cache::from_env()?, &dir)?),
        false => None,
    };
    Ok(hash_tree(&dir, &Exclusions::default(), stat_cache.as_deref())?)
}

fn print_json(record: &RunRecord) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, record)?;
    writeln!(out)?;
    Ok(())
}

fn format_time(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn format_duration(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
    }
}

fn format_params(r: &RunRecord) -> String {
    let s: Vec<String> = r.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let s = s.join(" ");
    if s.chars().count() > 30 { format!("{}...", s.chars().take(27).collect::<String>()) } else { s }
}

fn format_source(r: &RunRecord) -> String {
    let s = &r.source;
    let kind = match s.kind {
        lockstep::source::SourceKind::Local => "local",
        lockstep::source::SourceKind::Git => "git",
    };
    match &s.commit {
        Some(c) => format!("{kind} {}{}", &c[..12.min(c.len())], if s.dirty { "+dirty" } else { "" }),
        None => format!("{kind} {}", &s.tree_sha256[..12]),
    }
}
