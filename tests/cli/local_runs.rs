//! Runs of local directories: records, parameters, outputs, isolation, git state.

use std::fs;

use serde_json::Value;

use crate::support::*;

const PARAMS_PROJECT: &str = r#"
name: params
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      name: string
      epochs: {type: int, default: 3}
    command: "echo alpha={alpha} name={name} epochs={epochs} > result.txt && echo done"
    outputs: [result.txt]
"#;

#[test]
fn run_writes_a_complete_record() {
    let ctx = TestContext::new();
    let project = ctx.project("p", &[("MLproject", PARAMS_PROJECT), ("data.csv", "1,2\n")]);
    let hash = ctx.run(["hash", "p"]).success().stdout_text();
    ctx.run(["run", "p", "-P", "name=my run", "-P", "alpha=0.25", "--run-name", "first", "--experiment-name", "exp"])
        .success()
        .stdout("done\n")
        .stderr_has("FINISHED");
    assert_eq!(fs::read_to_string(project.join("result.txt")).unwrap(), "alpha=0.25 name=my run epochs=3\n");

    let r = ctx.only_record();
    assert_eq!(r["schema"], "lockstep.run/v1");
    let id = r["run_id"].as_str().unwrap();
    assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(r["run_name"], "first");
    assert_eq!(r["experiment_name"], "exp");
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(r["exit_code"], 0);
    assert!(r["end_time"].as_u64().unwrap() >= r["start_time"].as_u64().unwrap());
    assert_eq!(r["entry_point"], "main");
    assert_eq!(r["parameters"], serde_json::json!({"alpha": "0.25", "name": "my run", "epochs": "3"}));
    assert_eq!(r["command"], "echo alpha=0.25 name='my run' epochs=3 > result.txt && echo done");
    let src = &r["source"];
    assert_eq!(src["kind"], "local");
    assert_eq!(src["uri"], "p");
    assert_eq!(src["path"], project.display().to_string());
    assert_eq!(src["dirty"], false);
    assert_eq!(src["commit"], Value::Null);
    assert_eq!(src["tree_sha256"].as_str().unwrap(), hash.trim());
    assert_eq!(r["environment"]["manager"], "local");
    assert_eq!(r["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(r["outputs"][0]["path"], "result.txt");
    assert_eq!(r["outputs"][0]["size"], 32);
    let digest = sha256_hex(&fs::read(project.join("result.txt")).unwrap());
    assert_eq!(r["outputs"][0]["sha256"], digest.as_str());
    assert_eq!(r["outputs_dir"], project.display().to_string());
    assert_eq!(r["host"]["os"], "linux");
    assert_eq!(r["host"]["lockstep_version"], env!("CARGO_PKG_VERSION"));
    let logs = ctx.store().join("runs").join(id);
    assert_eq!(fs::read_to_string(logs.join("stdout.log")).unwrap(), "done\n");
    assert!(logs.join("stderr.log").is_file());
}

#[test]
fn the_exit_code_of_the_entry_point_is_kept() {
    let ctx = TestContext::new().file("p/MLproject", "entry_points:\n  main:\n    command: 'echo oops >&2; exit 3'\n");
    ctx.run(["run", "p"]).status(3).stderr_has("oops");
    let r = ctx.only_record();
    assert_eq!(r["status"], "FAILED");
    assert_eq!(r["exit_code"], 3);
    let log = ctx.store().join("runs").join(r["run_id"].as_str().unwrap()).join("stderr.log");
    assert_eq!(fs::read_to_string(log).unwrap(), "oops\n");
}

#[test]
fn json_output_is_the_record_and_child_stdout_goes_to_stderr() {
    let ctx = TestContext::new().file("p/MLproject", "entry_points:\n  main:\n    command: 'echo from-child'\n");
    let r = ctx.run(["run", "p", "--json"]).success().stderr_has("from-child").json();
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(r, ctx.only_record());
}

#[test]
fn undeclared_parameters_are_appended_quoted_in_the_order_given() {
    let ctx = TestContext::new().file("p/MLproject", "entry_points:\n  main:\n    command: 'printf \"%s|\" x'\n");
    ctx.run(["run", "p", "-P", "note=a b", "-P", "lr=0.1"]).success().stdout("x|--note|a b|--lr|0.1|");
    let r = ctx.only_record();
    assert_eq!(r["parameters"], serde_json::json!({"lr": "0.1", "note": "a b"}));
}

#[test]
fn script_entry_points_run_without_an_mlproject() {
    let ctx = TestContext::new().file("p/run.sh", "echo script \"$@\"\n");
    ctx.run(["run", "p", "-e", "run.sh", "-P", "k=v"]).success().stdout("script --k v\n");
    assert_eq!(ctx.only_record()["command"], "bash run.sh --k v");
}

#[test]
fn the_child_gets_the_run_id_and_directory() {
    let ctx = TestContext::new()
        .file("p/MLproject", "entry_points:\n  main:\n    command: 'echo $LOCKSTEP_RUN_ID $LOCKSTEP_RUN_DIR'\n");
    let out = ctx.run(["run", "p"]).success().stdout_text();
    let r = ctx.only_record();
    let id = r["run_id"].as_str().unwrap();
    assert_eq!(out, format!("{id} {}\n", ctx.store().join("runs").join(id).display()));
}

#[test]
fn path_parameters_become_absolute_and_must_exist() {
    let ctx = TestContext::new();
    let manifest = "entry_points:\n  main:\n    parameters:\n      data: path\n      model: {type: path, default: models/m.txt}\n    command: 'echo {data} {model}'\n";
    let project = ctx.project("p", &[("MLproject", manifest), ("models/m.txt", "m")]);
    ctx.write("inputs/train.csv", "1");
    let expected =
        format!("{} {}\n", ctx.work.join("inputs/train.csv").display(), project.join("models/m.txt").display());
    ctx.run(["run", "p", "-P", "data=inputs/train.csv"]).success().stdout(&expected);
    assert_eq!(ctx.only_record()["parameters"]["data"], "inputs/train.csv", "the record keeps the raw value");
}

#[test]
fn url_path_parameters_are_downloaded_into_the_run() {
    let ctx = TestContext::new();
    let server = Server::serving(b"a,b\n1,2\n".to_vec());
    let manifest =
        "entry_points:\n  main:\n    parameters:\n      data: path\n    command: 'cat {data}; echo {data}'\n";
    ctx.project("p", &[("MLproject", manifest)]);
    let url = server.url("/files/train.csv?x=1");
    let out = ctx.run(["run", "p", "-P", &format!("data={url}")]).success().stdout_text();
    assert_eq!(server.connections(), 1);
    let r = ctx.only_record();
    let run_dir = ctx.store().join("runs").join(r["run_id"].as_str().unwrap());
    let saved = run_dir.join("inputs/data/train.csv");
    assert_eq!(out, format!("a,b\n1,2\n{}\n", saved.display()));
    assert_eq!(r["parameters"]["data"], url.as_str());
}

#[test]
fn outputs_are_new_or_changed_files_and_globbed_files() {
    let ctx = TestContext::new();
    let manifest = "entry_points:\n  main:\n    command: 'mkdir -p out && echo 1 > out/a.txt && echo changed > existing.txt && echo log > run.log'\n    outputs: ['config/*.yaml']\n";
    ctx.project(
        "p",
        &[
            ("MLproject", manifest),
            ("existing.txt", "old\n"),
            ("same.txt", "same\n"),
            ("config/c.yaml", "k: v\n"),
            (".gitignore", "*.log\n"),
        ],
    );
    ctx.run(["run", "p"]).success();
    let r = ctx.only_record();
    let paths: Vec<&str> = r["outputs"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["config/c.yaml", "existing.txt", "out/a.txt", "run.log"]);
}

#[test]
fn isolated_runs_leave_the_project_untouched() {
    let ctx = TestContext::new();
    let manifest = "entry_points:\n  main:\n    command: 'ls -A | sort | tr \"\\n\" \" \"; echo out > made.txt'\n";
    let project = ctx.project(
        "p",
        &[("MLproject", manifest), ("kept.txt", "k"), ("skip.log", "ignored"), (".gitignore", "*.log\n")],
    );
    let before = ctx.run(["hash", "p"]).success().stdout_text();
    ctx.run(["run", "p", "--isolated"]).success().stdout(".gitignore MLproject kept.txt ");
    assert!(!project.join("made.txt").exists(), "the project is not written to");
    let after = ctx.run(["hash", "p"]).success().stdout_text();
    assert_eq!(before, after);
    let r = ctx.only_record();
    let run_dir = ctx.store().join("runs").join(r["run_id"].as_str().unwrap());
    assert_eq!(r["outputs_dir"], run_dir.join("outputs").display().to_string());
    assert_eq!(fs::read_to_string(run_dir.join("outputs/made.txt")).unwrap(), "out\n");
    assert!(!run_dir.join("work").exists(), "the per-run copy is removed");
}

#[test]
fn a_clean_git_checkout_is_recorded_and_the_store_does_not_dirty_it() {
    let ctx = TestContext::new();
    let project = ctx.work.join("repo");
    let commit = ctx.git_repo(&project, &[("MLproject", "entry_points:\n  main:\n    command: 'true'\n")]);
    ctx.git(&project, &["remote", "add", "origin", "https://user:secret@example.com/team/repo.git"]);
    for _ in 0..2 {
        ctx.run(["run", "."]).current_dir(&project).success();
    }
    let records = records_in(&project.join(".lockstep"));
    assert_eq!(records.len(), 2);
    for r in records {
        let src = &r["source"];
        assert_eq!(src["commit"], commit.as_str());
        assert_eq!(src["branch"], "main");
        assert_eq!(src["repo_url"], "https://example.com/team/repo.git", "credentials are stripped");
        assert_eq!(src["dirty"], false, "the store inside the project does not make it dirty");
        assert_eq!(src["patch_sha256"], Value::Null);
    }
    assert_eq!(ctx.git(&project, &["status", "--porcelain"]), "");
}

#[test]
fn a_dirty_tree_is_captured_exactly_and_can_be_rebuilt() {
    let ctx = TestContext::new();
    let repo = ctx.work.join("repo");
    let commit = ctx.git_repo(
        &repo,
        &[
            ("proj/MLproject", "entry_points:\n  main:\n    command: 'true'\n"),
            ("proj/train.py", "print(1)\n"),
            ("proj/gone.txt", "bye\n"),
            ("other/file.txt", "elsewhere\n"),
            (".gitignore", "*.log\n"),
        ],
    );
    write_file(&repo.join("proj/train.py"), "print(2)\n");
    fs::remove_file(repo.join("proj/gone.txt")).unwrap();
    write_file(&repo.join("proj/new/untracked.txt"), "new\n");
    write_file(&repo.join("proj/debug.log"), "ignored\n");
    write_file(&repo.join("other/file.txt"), "changed outside the project\n");
    ctx.git(&repo, &["add", "proj/train.py"]);
    let index_before = fs::read(repo.join(".git/index")).unwrap();

    ctx.run(["run", "repo/proj"]).success();
    let r = ctx.only_record();
    let src = &r["source"];
    assert_eq!(src["dirty"], true);
    assert_eq!(src["commit"], commit.as_str());
    assert_eq!(src["subdirectory"], "proj");
    let run_dir = ctx.store().join("runs").join(r["run_id"].as_str().unwrap());
    let patch = fs::read(run_dir.join("dirty.patch")).unwrap();
    assert_eq!(src["patch_sha256"], sha256_hex(&patch).as_str());
    let text = String::from_utf8_lossy(&patch);
    assert!(!text.contains("other/file.txt"), "only the project's part is captured");
    assert!(!text.contains("debug.log"), "ignored files are not captured");
    assert_eq!(fs::read(repo.join(".git/index")).unwrap(), index_before, "the user's index is untouched");

    let rebuilt = ctx.work.join("rebuilt");
    ctx.git(&ctx.work, &["clone", "-q", repo.to_str().unwrap(), "rebuilt"]);
    ctx.git(&rebuilt, &["checkout", "-q", &commit]);
    ctx.git(&rebuilt, &["apply", "--whitespace=nowarn", run_dir.join("dirty.patch").to_str().unwrap()]);
    write_file(&rebuilt.join("proj/debug.log"), "ignored\n");
    let hash = ctx.run(["hash", "rebuilt/proj"]).success().stdout_text();
    assert_eq!(hash.trim(), src["tree_sha256"].as_str().unwrap(), "the patch rebuilds the exact tree");
}

#[test]
fn a_version_of_a_local_repository_never_touches_its_worktree() {
    let ctx = TestContext::new();
    let repo = ctx.work.join("repo");
    let v1 = ctx.git_repo(
        &repo,
        &[("MLproject", "entry_points:\n  main:\n    command: 'cat version.txt'\n"), ("version.txt", "one\n")],
    );
    ctx.git(&repo, &["tag", "v1"]);
    let v2 = ctx.commit(&repo, &[("version.txt", "two\n")], "second");
    write_file(&repo.join("version.txt"), "uncommitted\n");
    ctx.run(["run", "repo", "-v", "v1"]).success().stdout("one\n");
    ctx.run(["run", "repo", "-v", &v1[..8]]).success().stdout("one\n");
    assert_eq!(fs::read_to_string(repo.join("version.txt")).unwrap(), "uncommitted\n");
    assert_eq!(ctx.git(&repo, &["rev-parse", "HEAD"]), v2);
    assert_eq!(ctx.git(&repo, &["status", "--porcelain"]), "M version.txt");
    for r in ctx.records() {
        assert_eq!(r["source"]["kind"], "git");
        assert_eq!(r["source"]["commit"], v1.as_str());
        assert_eq!(r["source"]["dirty"], false);
    }
}
