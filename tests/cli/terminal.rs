//! What a person at a terminal sees beyond a command's results: `--help` (headings, examples,
//! the values of `--env-manager`), colour only on a terminal, and shell completions.

use std::process::Command;

use crate::support::*;

/// Every command whose `--help` ends with examples and a pointer to the docs.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["run"],
    &["runs"],
    &["show"],
    &["logs"],
    &["pack"],
    &["unpack"],
    &["verify"],
    &["status"],
    &["diff"],
    &["init"],
    &["hash"],
    &["sync"],
    &["env"],
    &["sweep"],
    &["completions"],
];

#[test]
fn run_help_groups_its_options_and_lists_the_env_managers() {
    let ctx = TestContext::new();
    let help = ctx.run(["run", "--help"]).success().stdout_text();
    for heading in ["Source options:", "Environment options:", "Docker options:", "Tracking options:", "Store options:"]
    {
        assert!(help.contains(heading), "{heading} missing in:\n{help}");
    }
    let docker = &help[help.find("Docker options:").unwrap()..];
    let docker = &docker[..docker.find("\n\n").unwrap()];
    for flag in ["--docker-args", "--mount-project", "--build-image", "--keep-container"] {
        assert!(docker.contains(flag), "{flag} is not under Docker options:\n{docker}");
    }
    assert!(help.contains("[possible values: local, virtualenv, uv, conda]"), "{help}");
    assert!(!help.contains("\x1b["), "no colour into a pipe");
}

#[test]
fn every_command_shows_examples_and_where_its_docs_are() {
    let ctx = TestContext::new();
    for command in COMMANDS {
        let help = ctx.run(command.iter().chain(&["--help"])).success().stdout_text();
        let examples =
            help.find("Examples:\n  lockstep ").unwrap_or_else(|| panic!("{command:?}: no examples in\n{help}"));
        let docs = help.find("\nDocs: ").unwrap_or_else(|| panic!("{command:?}: no docs pointer in\n{help}"));
        assert!(examples < docs, "{command:?}: the docs pointer ends the help");
        let words = help[docs..].split([' ', ',', ';', '#', '\n']).map(|w| w.trim_end_matches('.'));
        for page in words.filter(|w| w.starts_with("docs/") && w.ends_with(".md")) {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(page);
            assert!(path.is_file(), "{command:?}: {page} does not exist");
        }
    }
}

#[test]
fn a_wrong_env_manager_is_still_answered_with_the_valid_ones() {
    TestContext::new()
        .file("p/MLproject", "entry_points:\n  main:\n    command: 'true'\n")
        .run(["run", "p", "--env-manager", "venv"])
        .status(2)
        .stderr_has("unknown environment manager 'venv' (choose local, virtualenv, uv or conda)");
}

/// `lockstep ARGS` on a terminal (a pty made by util-linux's `script`), with `extra`
/// variables: what the terminal showed, stdout and stderr together.
fn on_a_terminal(ctx: &TestContext, args: &str, extra: &[(&str, &str)]) -> String {
    let line = format!("{} {args}", lockstep_bin().display());
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_clear()
        .envs(ctx.envs())
        .env("TERM", "xterm")
        .envs(extra.iter().copied())
        .current_dir(&ctx.work)
        .output()
        .expect("util-linux's script runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn error_warning_and_hint_are_coloured_on_a_terminal_only() {
    let ctx = TestContext::new();
    let shown = on_a_terminal(&ctx, "show 0123abcd", &[]);
    assert!(shown.contains("\x1b[31merror:"), "a red error: on a terminal: {shown:?}");
    assert!(shown.contains("\x1b[36mhint:"), "a cyan hint: on a terminal: {shown:?}");
    let plain = on_a_terminal(&ctx, "show 0123abcd", &[("NO_COLOR", "1")]);
    assert!(plain.contains("error: no run '0123abcd'") && !plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    let piped = ctx.run(["show", "0123abcd"]).status(2).stderr_text();
    assert!(piped.starts_with("error: no run") && piped.contains("\nhint: ") && !piped.contains('\x1b'), "{piped:?}");
    // A warning, from a run whose Docker flags do not apply.
    ctx.write("p/MLproject", "entry_points:\n  main:\n    command: 'true'\n");
    let warned = on_a_terminal(&ctx, "run p --keep-container", &[]);
    assert!(warned.contains("\x1b[33mwarning:"), "a yellow warning: on a terminal: {warned:?}");
    let piped = ctx.run(["run", "p", "--keep-container"]).success().stderr_text();
    assert!(piped.contains("warning: -A") && !piped.contains('\x1b'), "{piped:?}");
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    let ctx = TestContext::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = ctx.run(["completions", shell]).success().stdout_text();
        assert!(script.contains("lockstep") && script.contains("env-manager"), "{shell}: {script}");
    }
    let bash = ctx.write("lockstep.bash", &ctx.run(["completions", "bash"]).success().stdout_text());
    // bash loads it and completes lockstep with it.
    let out = Command::new("bash")
        .args(["-c", &format!("source {} && complete -p lockstep", bash.display())])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("_lockstep"), "{out:?}");
    ctx.run(["completions", "tcsh"]).status(2).stderr_has("invalid value 'tcsh'");
}
