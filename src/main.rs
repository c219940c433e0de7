//! The `lockstep` command line: argument definitions, dispatch, and rendering of results.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use lockstep::cache::Cache;
use lockstep::env::{DockerFlags, EnvManager};
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
    /// Write a deterministic .tar.gz of a project (and optionally a run's record).
    Pack(PackArgs),
    /// Extract an archive safely (checking it against its manifest) and print its tree hash.
    Unpack(UnpackArgs),
    /// Re-run a recorded run from its exact source and environment; compare its outputs.
    Verify(VerifyArgs),
    /// Would a re-run start from the same source and environment? Runs nothing.
    Status(StatusArgs),
    /// Write a starter project.
    Init(InitArgs),
    /// Print the tree hash of a project directory.
    Hash(HashArgs),
    /// Send a recorded run to an MLflow tracking server, or complete what a lost server missed.
    Sync(SyncArgs),
    /// List or prune the environments built in the cache.
    #[command(subcommand)]
    Env(EnvCommand),
}

#[derive(Subcommand)]
enum EnvCommand {
    /// List the built environments, most recently used first.
    List(EnvListArgs),
    /// Remove built environments (not those a run is using) and leftovers of interrupted builds.
    Prune(EnvPruneArgs),
}

#[derive(Args)]
struct EnvListArgs {
    /// Print a JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EnvPruneArgs {
    /// Remove environments not used for this long (e.g. 30d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "30d", conflicts_with = "all")]
    older_than: std::time::Duration,
    /// Remove every environment not in use.
    #[arg(long)]
    all: bool,
    /// Print what was removed as JSON.
    #[arg(long)]
    json: bool,
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
    /// Docker: a `docker run` option, as MLflow spells it (gpus=all is --gpus all, t is -t);
    /// repeat for more.
    #[arg(short = 'A', long = "docker-args", value_name = "NAME[=VALUE]")]
    docker_args: Vec<String>,
    /// Docker: run the base image as it is, with the project bind-mounted, instead of
    /// building a project image.
    #[arg(long, conflicts_with = "build_image")]
    mount_project: bool,
    /// Docker: build the project image (the default; accepted for MLflow's command lines).
    #[arg(long)]
    build_image: bool,
    /// Docker: keep the container after the run instead of removing it.
    #[arg(long)]
    keep_container: bool,
    /// Let what the entry point leaves running (background jobs, daemons) outlive the run;
    /// by default it is stopped (SIGTERM, then SIGKILL) when the entry point exits.
    #[arg(long)]
    keep_processes: bool,
    /// Do not run when the store has a FINISHED run of the same files, environment, entry
    /// point and parameters whose outputs are in place: print that run instead.
    #[arg(long)]
    reuse: bool,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct PackArgs {
    /// A project directory, git URL or archive, optionally followed by #subdirectory.
    uri: String,
    /// The archive to write (default: NAME-TREEHASH.tar.gz here).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// A branch, tag or commit, for git sources.
    #[arg(short, long, value_name = "VERSION")]
    version: Option<String>,
    /// Put this run's record in the archive, so that it can be verified elsewhere.
    #[arg(long, value_name = "RUN")]
    run: Option<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct UnpackArgs {
    /// A .tar.gz, .tgz or .zip file, or an http(s) URL of one.
    archive: String,
    /// The directory to extract into; it must not exist yet.
    dir: PathBuf,
}

#[derive(Args)]
struct VerifyArgs {
    /// A run id (or prefix), a record.json file, or an archive made by `pack --run`.
    target: String,
    /// Leave outputs matching this glob out of the comparison; repeat for more.
    #[arg(long, value_name = "GLOB")]
    ignore: Vec<String>,
    /// Numbers in JSON and CSV outputs may differ by this relative tolerance.
    #[arg(long, value_name = "X")]
    rtol: Option<f64>,
    /// Use this project directory for a local run instead of the recorded one.
    #[arg(long, value_name = "DIR")]
    source: Option<PathBuf>,
    /// Print the report as JSON on stdout; the re-run's stdout goes to stderr.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct StatusArgs {
    /// A run id (or prefix) or a record.json file.
    target: String,
    /// Print the report as JSON.
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
    // git and ssh run lockstep itself to ask for a git URL's credentials.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(answer) = lockstep::source::git::askpass_answer(&args, |name| std::env::var(name).ok()) {
        println!("{answer}");
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Run(args) => cmd_run(args),
        Command::Runs(args) => cmd_runs(args),
        Command::Show(args) => cmd_show(args),
        Command::Pack(args) => cmd_pack(args),
        Command::Unpack(args) => cmd_unpack(args),
        Command::Verify(args) => cmd_verify(args),
        Command::Status(args) => cmd_status(args),
        Command::Init(args) => cmd_init(args),
        Command::Hash(args) => cmd_hash(args),
        Command::Env(EnvCommand::List(args)) => cmd_env_list(args),
        Command::Env(EnvCommand::Prune(args)) => cmd_env_prune(args),
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
    if is_broken_pipe(err) {
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

/// Whether the error comes from writing to a closed pipe, wherever it sits in the chain:
/// serde_json hides the I/O error inside its own.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind)
                == Some(io::ErrorKind::BrokenPipe)
    })
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
        reuse: args.reuse,
        echo: if args.json { Echo::Stderr } else { Echo::Stdout },
        caller_dir: std::env::current_dir()?,
        docker: DockerFlags {
            args: args.docker_args,
            mount_project: args.mount_project,
            keep_container: args.keep_container,
        },
        keep_processes: args.keep_processes,
    };
    let outcome = lockstep::run::run(&opts)?;
    let r = &outcome.record;
    if outcome.reused {
        lockstep::ui::note(&format!(
            "reusing run {} ({} at {}): same files, environment, entry point and parameters; nothing ran",
            r.run_id,
            r.status.name(),
            format_time(r.start_time)
        ));
    } else {
        lockstep::ui::note(&format!(
            "run {} {} (exit code {}) in {}",
            r.run_id,
            r.status.name(),
            outcome.exit_code,
            format_duration(r.duration_ms())
        ));
    }
    // The run is over and recorded: a reader that stopped early does not change its exit code.
    if args.json
        && let Err(e) = print_json(r)
        && !is_broken_pipe(&e)
    {
        return Err(e);
    }
    Ok(outcome.exit_code)
}

fn cmd_pack(args: PackArgs) -> anyhow::Result<i32> {
    let caller_dir = std::env::current_dir()?;
    let record = match &args.run {
        Some(id) => {
            let store = Store::open(&args.store.store).map_err(lockstep::Error::from)?;
            Some(store.find(id).map_err(lockstep::Error::from)?)
        }
        None => None,
    };
    let opts = lockstep::pack::PackOptions {
        uri: &args.uri,
        version: args.version.as_deref(),
        output: args.output,
        run: record.as_ref(),
        caller_dir: &caller_dir,
    };
    let packed = lockstep::pack::pack(&opts, &Cache::from_env().map_err(lockstep::Error::from)?)?;
    let mut out = io::stdout().lock();
    if args.json {
        let summary = serde_json::json!({
            "path": packed.path,
            "tree_sha256": packed.tree_sha256,
            "files": packed.files,
            "bytes": packed.bytes,
            "run_id": record.as_ref().map(|r| &r.run_id),
        });
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        lockstep::ui::note(&format!(
            "packed {} files ({} bytes, tree {})",
            packed.files,
            packed.bytes,
            lockstep::support::ids::short(&packed.tree_sha256)
        ));
        writeln!(out, "{}", packed.path.display())?;
    }
    Ok(0)
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

fn cmd_unpack(args: UnpackArgs) -> anyhow::Result<i32> {
    let caller_dir = std::env::current_dir()?;
    let tree_sha256 = lockstep::source::unpack(&args.archive, &caller_dir.join(&args.dir), &caller_dir)
        .map_err(lockstep::Error::from)?;
    writeln!(io::stdout().lock(), "{tree_sha256}")?;
    Ok(0)
}

fn cmd_verify(args: VerifyArgs) -> anyhow::Result<i32> {
    let opts = lockstep::verify::VerifyOptions {
        target: args.target,
        ignore: args.ignore,
        rtol: args.rtol,
        source_dir: args.source,
        store: args.store.store,
        echo: if args.json { Echo::Stderr } else { Echo::Stdout },
        caller_dir: std::env::current_dir()?,
    };
    let report = lockstep::verify::verify(&opts)?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(report.exit_code());
    }
    for f in &report.files {
        let label = match f.result {
            lockstep::verify::FileResult::Identical => "identical",
            lockstep::verify::FileResult::WithinTolerance => "within tolerance",
            lockstep::verify::FileResult::Differs => "DIFFERS",
            lockstep::verify::FileResult::Missing => "MISSING",
            lockstep::verify::FileResult::Extra => "EXTRA",
            lockstep::verify::FileResult::Ignored => "ignored",
        };
        writeln!(out, "{label:<16} {}", f.path)?;
        if let Some(detail) = &f.detail {
            for line in detail.lines() {
                writeln!(out, "    {line}")?;
            }
        }
    }
    let verdict = match report.result.as_str() {
        "reproduced" => "reproduced: every output matches".to_string(),
        "failed" => format!(
            "not reproduced: the re-run ended {} (exit code {})",
            report.rerun_status.name(),
            report.rerun_exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into())
        ),
        _ => "not reproduced: outputs differ".to_string(),
    };
    writeln!(out, "{verdict} (run {}, verified by run {})", report.run_id, report.verification_run_id)?;
    Ok(report.exit_code())
}

fn cmd_status(args: StatusArgs) -> anyhow::Result<i32> {
    let report = lockstep::status::status(&args.target, &args.store.store, &std::env::current_dir()?)?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(report.exit_code());
    }
    for (name, part) in [("source", &report.source), ("environment", &report.environment)] {
        writeln!(out, "{name:<12} {:<9} {}", if part.same { "same" } else { "CHANGED" }, part.detail)?;
        for change in &part.changes {
            writeln!(out, "    {change}")?;
        }
    }
    Ok(report.exit_code())
}

fn cmd_runs(args: ListArgs) -> anyhow::Result<i32> {
    let store = Store::open(&args.store.store).map_err(lockstep::Error::from)?;
    lockstep::env::docker::lost::clean_up(&store);
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
            lockstep::support::ids::short(&r.run_id),
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
    writeln!(out, "environment:  {}", format_environment(&r.environment))?;
    if let Some(uri) = r.environment.details.get("image_uri").and_then(|v| v.as_str()) {
        let id = r.environment.details.get("image_id").and_then(|v| v.as_str()).unwrap_or("-");
        writeln!(out, "image:        {uri} ({id})")?;
    }
    if let Some(t) = &r.tracking {
        let state = if t.synced { "synced" } else { "not synced: `lockstep sync` sends the rest" };
        writeln!(out, "tracking:     {} experiment {} run {} ({state})", t.uri, t.experiment_id, t.run_id)?;
    }
    writeln!(out, "host:         {} {} ({})", r.host.os, r.host.arch, r.host.hostname.as_deref().unwrap_or("-"))?;
    if let Some(id) = &r.verifies {
        let result = r.verification.as_ref().map(|v| v.result.as_str()).unwrap_or("-");
        writeln!(out, "verifies:     {id} ({result})")?;
    }
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
        out.write_all(tree.listing().as_bytes())?;
    }
    writeln!(out, "{}", tree.sha256)?;
    Ok(0)
}

fn cmd_env_list(args: EnvListArgs) -> anyhow::Result<i32> {
    let cache = Cache::from_env().map_err(lockstep::Error::from)?;
    let envs = lockstep::env::list_built(&cache).map_err(lockstep::Error::from)?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &envs)?;
        writeln!(out)?;
        return Ok(0);
    }
    if envs.is_empty() {
        lockstep::ui::note(&format!("no environments in {}", cache.root().display()));
        return Ok(0);
    }
    writeln!(out, "{:<16}  {:<10}  {:<8}  {:>8}  {:>9}  LAST USED", "KEY", "MANAGER", "PYTHON", "PACKAGES", "SIZE")?;
    for e in &envs {
        writeln!(
            out,
            "{:<16}  {:<10}  {:<8}  {:>8}  {:>9}  {}",
            &e.key[..16.min(e.key.len())],
            e.manager.name(),
            e.python.as_deref().unwrap_or("-"),
            e.packages,
            format_size(e.size),
            format_time(e.last_used_ms)
        )?;
    }
    Ok(0)
}

fn cmd_env_prune(args: EnvPruneArgs) -> anyhow::Result<i32> {
    let cache = Cache::from_env().map_err(lockstep::Error::from)?;
    let cutoff = match args.all {
        true => None,
        false => Some(lockstep::fsutil::now_ms().saturating_sub(args.older_than.as_millis() as u64)),
    };
    let report = lockstep::env::prune_built(&cache, cutoff).map_err(lockstep::Error::from)?;
    for key in &report.in_use {
        lockstep::ui::note(&format!("kept {}: in use by a run", &key[..16.min(key.len())]));
    }
    if args.json {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        lockstep::ui::note(&format!(
            "removed {} environment(s), freed {}",
            report.removed.len(),
            format_size(report.freed)
        ));
    }
    Ok(0)
}

fn format_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1024 * 1024 * 1024 => format!("{:.1} MiB", b as f64 / 1048576.0),
        b => format!("{:.2} GiB", b as f64 / 1073741824.0),
    }
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

fn format_environment(env: &lockstep::env::EnvRecord) -> String {
    let mut parts = Vec::new();
    if let Some(key) = env.details.get("key").and_then(|k| k.as_str()) {
        parts.push(format!("key {}", lockstep::support::ids::short(key)));
    }
    if let Some(version) = env.details.get("python").and_then(|p| p.get("version")).and_then(|v| v.as_str()) {
        parts.push(format!("python {version}"));
    }
    let count = |field: &str| env.details.get(field).and_then(|v| v.as_array()).map_or(0, Vec::len);
    if count("conda_packages") > 0 {
        parts.push(format!("{} conda packages", count("conda_packages")));
    }
    if env.details.contains_key("packages") {
        parts.push(format!("{} Python packages", count("packages")));
    }
    match parts.is_empty() {
        true => env.manager.to_string(),
        false => format!("{} ({})", env.manager, parts.join(", ")),
    }
}

fn format_params(r: &RunRecord) -> String {
    let s: Vec<String> = r.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let s = s.join(" ");
    if s.chars().count() > 30 { format!("{}...", s.chars().take(27).collect::<String>()) } else { s }
}

fn format_source(r: &RunRecord) -> String {
    let s = &r.source;
    let kind = s.kind.name();
    match &s.commit {
        Some(c) => format!("{kind} {}{}", lockstep::support::ids::short(c), if s.dirty { "+dirty" } else { "" }),
        None => format!("{kind} {}", lockstep::support::ids::short(&s.tree_sha256)),
    }
}
