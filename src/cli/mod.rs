//! The `lockstep` command line: parse the arguments, call the command, render its outcome.

mod args;
mod diff;
mod help;
mod logged;
#[cfg(test)]
mod man_pages;
mod render;
mod report;
mod runs_table;
mod sweep;
mod sweep_args;
mod verify;

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::backends::BackendKind;
use crate::commands::{self, CommandError};
use crate::env::DockerFlags;
use crate::exec::Echo;
use crate::record::RunStatus;
use crate::support::ids::short;
use crate::support::ui;
use args::{Cli, Command, EnvCommand, TemplateArg};

/// Run lockstep with the process's arguments and return its exit code.
pub fn main() -> ExitCode {
    // git and ssh run lockstep itself to ask for a git URL's credentials.
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(answer) = crate::source::git::askpass_answer(&args, |name| std::env::var(name).ok()) {
        println!("{answer}");
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse_from(args);
    ui::set_verbose(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Runs(args) => runs(args),
        Command::Show(args) => show(args),
        Command::Cancel(args) => cancel(args),
        Command::Logs(args) => logs(args),
        Command::Outputs(args) => outputs(args),
        Command::Pack(args) => pack(args),
        Command::Unpack(args) => unpack(args),
        Command::Verify(args) => verify(args),
        Command::Status(args) => status(args),
        Command::Diff(args) => diff(args),
        Command::Init(args) => init(args),
        Command::Hash(args) => hash(args),
        Command::Env(EnvCommand::List(args)) => env_list(args),
        Command::Env(EnvCommand::Prune(args)) => env_prune(args),
        Command::Sync(args) => sync(args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Completions(args) => completions(args),
        Command::Ui(args) => serve_ui(args),
        Command::Plot(args) => plot(args),
    };
    match result {
        Ok(code) => report::exit(code),
        Err(err) => report::error(&err),
    }
}

fn echo(json: bool) -> Echo {
    if json { Echo::Stderr } else { Echo::Stdout }
}

fn run(args: args::RunArgs) -> Result<i32, CommandError> {
    let opts = crate::commands::run::RunOptions {
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
        echo: echo(args.json),
        caller_dir: std::env::current_dir()?,
        docker: DockerFlags {
            args: args.docker_args,
            mount_project: args.mount_project,
            keep_container: args.keep_container,
        },
        keep_processes: args.keep_processes,
        keep_outputs: args.keep.policy(),
        backend: args.mlflow.backend.as_deref().and_then(BackendKind::parse).unwrap_or(BackendKind::Local),
        backend_config: args.mlflow.backend_config,
        detach: args.mlflow.detach,
        run_id: args.mlflow.lockstep_run_id,
    };
    let outcome = crate::commands::run::run(&opts)?;
    let r = &outcome.record;
    if let (Some(job), RunStatus::Running) = (&r.backend, r.status) {
        ui::note(&format!(
            "run {} submitted as {} job {}: `lockstep runs` follows it, `lockstep cancel {}` stops it",
            r.run_id, job.name, job.job_id, r.run_id
        ));
        if !args.json {
            println!("{} {}", r.run_id, job.job_id);
        }
    } else if outcome.reused {
        ui::note(&format!(
            "reusing run {} ({} at {}): same files, environment, entry point and parameters; nothing ran",
            r.run_id,
            r.status.name(),
            render::format_time(r.start_time)
        ));
    } else {
        ui::note(&format!(
            "run {} {} (exit code {}) in {}",
            r.run_id,
            r.status.name(),
            outcome.exit_code,
            render::format_duration(r.duration_ms())
        ));
    }
    // The run is over and recorded: a reader that stopped early does not change its exit code.
    if args.json
        && let Err(e) = render::json(r)
        && !report::is_broken_pipe(&e)
    {
        return Err(e);
    }
    Ok(outcome.exit_code)
}

fn runs(args: args::ListArgs) -> Result<i32, CommandError> {
    let status = args.status.map(|s| match s {
        args::StatusArg::Running => RunStatus::Running,
        args::StatusArg::Finished => RunStatus::Finished,
        args::StatusArg::Failed => RunStatus::Failed,
        args::StatusArg::Killed => RunStatus::Killed,
        args::StatusArg::Lost => RunStatus::Lost,
    });
    let only = match &args.sweep {
        Some(sweep) => Some(commands::sweep::trial_runs(&args.store.store, sweep)?.into_iter().collect()),
        None => None,
    };
    let opts = commands::runs::RunsOptions {
        experiment: args.experiment,
        status,
        project: args.project,
        entry_point: args.entry_point,
        limit: args.limit,
        params: args.params,
        metrics: args.metrics,
        sort: args.sort,
        only,
    };
    let list = commands::runs::runs(&args.store.store, &opts)?;
    for p in &list.problems {
        ui::warn(&p.to_string());
    }
    match args.json {
        true => render::json(&list.runs)?,
        false => {
            let width = if args.wide { None } else { crate::support::terminal::stdout_width() };
            runs_table::runs(&mut io::stdout().lock(), &list, width)?
        }
    }
    Ok(0)
}

fn show(args: args::ShowArgs) -> Result<i32, CommandError> {
    let record = commands::show::show(&args.store.store, &args.run)?;
    match args.json {
        true => render::json(&record)?,
        false => render::show(&mut io::stdout().lock(), &record)?,
    }
    Ok(0)
}

fn cancel(args: args::CancelArgs) -> Result<i32, CommandError> {
    let record = commands::cancel::cancel(&args.store.store, &args.run)?;
    ui::note(&format!("run {} {}", record.run_id, record.status.name()));
    Ok(0)
}

fn logs(args: args::LogsArgs) -> Result<i32, CommandError> {
    use commands::logs::{LogStream, LogsOptions};
    let stream = if args.stderr { LogStream::Stderr } else { LogStream::Stdout };
    let opts = LogsOptions { store: args.store.store, run: args.run, stream, follow: args.follow };
    commands::logs::logs(&opts, &mut io::stdout().lock())?;
    Ok(0)
}

fn outputs(args: args::OutputsArgs) -> Result<i32, CommandError> {
    let opts = commands::outputs::OutputsOptions {
        store: args.store.store,
        run: args.run,
        path: args.path,
        dir: args.dir,
        force: args.force,
        caller_dir: std::env::current_dir()?,
    };
    let restored = commands::outputs::outputs(&opts)?;
    let mut out = io::stdout().lock();
    for path in &restored.written {
        writeln!(out, "{path}")?;
    }
    let unchanged = match restored.unchanged.len() {
        0 => String::new(),
        n => format!(" ({n} already there with the same content)"),
    };
    ui::note(&format!("restored {} files into {}{unchanged}", restored.written.len(), restored.dir.display()));
    Ok(0)
}

fn pack(args: args::PackArgs) -> Result<i32, CommandError> {
    let opts = commands::pack::PackOptions {
        uri: args.uri,
        version: args.version,
        output: args.output,
        run: args.run,
        store: args.store.store,
        caller_dir: std::env::current_dir()?,
    };
    let packed = commands::pack::pack(&opts)?;
    if args.json {
        render::json(&serde_json::json!({
            "path": packed.path,
            "tree_sha256": packed.tree_sha256,
            "files": packed.files,
            "bytes": packed.bytes,
            "run_id": packed.run_id,
        }))?;
    } else {
        ui::note(&format!(
            "packed {} files ({} bytes, tree {})",
            packed.files,
            packed.bytes,
            short(&packed.tree_sha256)
        ));
        writeln!(io::stdout().lock(), "{}", packed.path.display())?;
    }
    Ok(0)
}

fn unpack(args: args::UnpackArgs) -> Result<i32, CommandError> {
    let caller_dir = std::env::current_dir()?;
    let tree_sha256 = commands::unpack::unpack(&args.archive, &caller_dir.join(&args.dir), &caller_dir)?;
    writeln!(io::stdout().lock(), "{tree_sha256}")?;
    Ok(0)
}

fn verify(args: args::VerifyArgs) -> Result<i32, CommandError> {
    let opts = crate::commands::verify::VerifyOptions {
        target: args.target,
        ignore: args.ignore,
        rtol: args.rtol,
        source_dir: args.source,
        store: args.store.store,
        echo: echo(args.json),
        caller_dir: std::env::current_dir()?,
        explain: args.explain,
        repeat: args.repeat,
        isolate: args.isolate,
        max_runs: args.max_runs,
        keep_outputs: args.keep.policy(),
    };
    let report = crate::commands::verify::verify(&opts)?;
    match args.json {
        true => render::json(&report)?,
        false => verify::render(&mut io::stdout().lock(), &report, args.explain)?,
    }
    Ok(report.exit_code())
}

fn status(args: args::StatusArgs) -> Result<i32, CommandError> {
    let report = crate::commands::status::status(&args.target, &args.store.store, &std::env::current_dir()?)?;
    match args.json {
        true => render::json(&report)?,
        false => render::status(&mut io::stdout().lock(), &report)?,
    }
    Ok(report.exit_code())
}

fn diff(args: args::DiffArgs) -> Result<i32, CommandError> {
    let opts = commands::diff::DiffOptions {
        a: args.a,
        b: args.b,
        store: args.store.store,
        caller_dir: std::env::current_dir()?,
    };
    let diff = commands::diff::diff(&opts)?;
    match args.json {
        true => render::json(&diff)?,
        false => diff::diff(&mut io::stdout().lock(), &diff)?,
    }
    Ok(0)
}

fn init(args: args::InitArgs) -> Result<i32, CommandError> {
    let template = match args.template {
        TemplateArg::Python => commands::init::Template::Python,
        TemplateArg::Conda => commands::init::Template::Conda,
        TemplateArg::Docker => commands::init::Template::Docker,
        TemplateArg::Shell => commands::init::Template::Shell,
    };
    let written = commands::init::init(&args.dir, template)?;
    let mut out = io::stdout().lock();
    for path in written {
        writeln!(out, "{}", path.display())?;
    }
    crate::support::ui::note(&format!("next: lockstep run {}", shell_word(&args.dir.to_string_lossy())));
    Ok(0)
}

/// `word` as one shell word, quoted only when it needs to be.
fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@+".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn hash(args: args::HashArgs) -> Result<i32, CommandError> {
    let tree = commands::hash::hash(&args.dir, !args.no_cache)?;
    let mut out = io::stdout().lock();
    if args.files {
        out.write_all(tree.listing().as_bytes())?;
    }
    writeln!(out, "{}", tree.sha256)?;
    Ok(0)
}

fn env_list(args: args::EnvListArgs) -> Result<i32, CommandError> {
    let list = commands::env::list(&args.store.store)?;
    match args.json {
        true => render::json(&list.envs)?,
        false => render::env_list(&mut io::stdout().lock(), &list)?,
    }
    Ok(0)
}

fn env_prune(args: args::EnvPruneArgs) -> Result<i32, CommandError> {
    let report = commands::env::prune((!args.all).then_some(args.older_than))?;
    render::env_prune_notes(&report, !args.json);
    if args.json {
        render::json(&report)?;
    }
    Ok(0)
}

fn sync(args: args::SyncArgs) -> Result<i32, CommandError> {
    let opts = commands::sync::SyncOptions {
        run: args.run,
        tracking_uri: args.tracking.tracking_uri,
        experiment_name: args.tracking.experiment_name,
        experiment_id: args.tracking.experiment_id,
        store: args.store.store,
    };
    let synced = commands::sync::sync(&opts)?;
    ui::note(&format!("run {} synced: {}", synced.record.run_id, synced.page));
    match args.json {
        true => render::json(&synced.record)?,
        false => writeln!(io::stdout().lock(), "{}", synced.page)?,
    }
    Ok(0)
}

fn completions(args: args::CompletionsArgs) -> Result<i32, CommandError> {
    // Generated in memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "lockstep", &mut script);
    io::stdout().lock().write_all(&script)?;
    Ok(0)
}

fn serve_ui(args: args::UiArgs) -> Result<i32, CommandError> {
    let opts = commands::ui::UiOptions { store: args.store.store, host: args.host, port: args.port };
    let server = commands::ui::Ui::bind(&opts)?;
    if server.beyond_loopback() {
        ui::warn("the UI listens beyond this machine: anyone who can reach it can try the token");
    }
    let url = server.url();
    ui::note("serving the store until stopped (Ctrl-C); open:");
    writeln!(io::stdout().lock(), "{url}")?;
    if args.open {
        commands::ui::open_in_browser(&url);
    }
    server.serve()?;
    Ok(0)
}

fn plot(args: args::PlotArgs) -> Result<i32, CommandError> {
    let x = match args.x {
        args::XArg::Step => commands::plot::XAxis::Step,
        args::XArg::Time => commands::plot::XAxis::Time,
    };
    let opts = commands::plot::PlotOptions {
        store: args.store.store,
        runs: args.runs,
        metric: args.metric,
        output: args.output,
        x,
    };
    let plotted = commands::plot::plot(&opts)?;
    ui::note(&format!("{} points of {}", plotted.points, opts.metric));
    writeln!(io::stdout().lock(), "{}", plotted.path.display())?;
    Ok(0)
}
