//! `lockstep init`: starter projects that run.

use crate::support::*;

#[test]
fn the_shell_starter_runs() {
    let ctx = TestContext::new();
    ctx.run(["init", "starter", "--template", "shell"]).success();
    ctx.run(["run", "starter", "-P", "message=hi"]).success().stdout("wrote out/message.txt\n");
    assert_eq!(ctx.only_record()["outputs"][0]["path"], "out/message.txt");
}

#[test]
fn the_python_starter_runs_with_the_local_manager() {
    let ctx = TestContext::new();
    ctx.run(["init", "py"]).success();
    let out = ctx.run(["run", "py", "--env-manager", "local", "-P", "alpha=0.1"]).success();
    assert!(out.stdout_text().starts_with("alpha=0.1 weight="), "{}", out.stdout_text());
}

#[test]
fn a_starter_project_ignores_what_its_runs_write_and_says_what_to_run_next() {
    let ctx = TestContext::new();
    ctx.run(["init", "my starter", "--template", "shell"]).success().stderr_has("next: lockstep run 'my starter'");
    ctx.run(["run", "my starter", "-P", "message=a"]).success();
    ctx.run(["run", "my starter", "-P", "message=b"]).success();
    let trees: Vec<String> =
        ctx.records().iter().map(|r| r["source"]["tree_sha256"].as_str().unwrap().to_string()).collect();
    assert_eq!(trees[0], trees[1], "the first run's output is not hashed as source of the second");
    assert_eq!(ctx.records()[1]["source"]["dirty"], false);
}

#[test]
fn every_template_and_example_ignores_its_declared_outputs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = ["templates/init/python", "templates/init/conda", "templates/init/docker", "templates/init/shell"]
        .into_iter()
        .chain(["examples/quickstart", "examples/sklearn", "examples/mlflow-tracking"]);
    for dir in dirs {
        let manifest = std::fs::read_to_string(root.join(dir).join("MLproject")).unwrap();
        let ignore = std::fs::read_to_string(root.join(dir).join(".gitignore")).unwrap_or_default();
        let patterns: Vec<&str> = ignore.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
        for line in manifest.lines().filter_map(|l| l.trim().strip_prefix("outputs: [")) {
            for output in line.trim_end_matches(']').split(',').map(str::trim) {
                let top = output.split('/').next().unwrap();
                let covered = patterns.iter().any(|p| *p == output || p.trim_end_matches('/') == top);
                assert!(covered, "{dir}/.gitignore does not list {output}: {patterns:?}");
            }
        }
    }
}

#[test]
fn init_never_overwrites() {
    let ctx = TestContext::new().file("d/MLproject", "mine\n");
    ctx.run(["init", "d", "--template", "shell"]).status(2).stderr_has("already has MLproject; nothing was written");
    assert_eq!(std::fs::read_to_string(ctx.work.join("d/MLproject")).unwrap(), "mine\n");
    assert!(!ctx.work.join("d/run.sh").exists());
}
