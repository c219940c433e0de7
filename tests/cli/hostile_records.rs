//! Records, locks and specs made by an attacker: `verify` and `status` of a crafted
//! `record.json` write nothing outside the cache and the store, read no more than the
//! project, and exit 2 with the field named.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::uv::path_with_uv;
use crate::support::*;

const PROJECT: &str = "name: p\nentry_points:\n  main:\n    command: 'echo 1 > out.txt'\n";

/// The record of a real run of a small project, to be tampered with.
fn recorded_run(ctx: &TestContext) -> Value {
    ctx.project("p", &[("MLproject", PROJECT), ("data.txt", "x\n")]);
    ctx.run(["run", "p"]).success();
    ctx.only_record()
}

fn write_record(ctx: &TestContext, record: &Value) -> PathBuf {
    let path = ctx.work.join("crafted.json");
    fs::write(&path, serde_json::to_vec_pretty(record).unwrap()).unwrap();
    path
}

/// Every file under `dir` whose name contains `part`.
fn files_named(dir: &Path, part: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                todo.push(path);
            } else if entry.file_name().to_string_lossy().contains(part) {
                found.push(path);
            }
        }
    }
    found
}

fn fails_with(ctx: &TestContext, args: &[&str], message: &str) {
    let out = ctx.run(args).status(2).into_output();
    assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
}

#[test]
fn verify_of_a_conda_lock_whose_filename_leaves_the_cache_writes_nothing_outside() {
    let ctx = TestContext::new();
    let mut record = recorded_run(&ctx);
    let payload = ctx.write("payload.conda", "not a package");
    // The cache's parent: `conda-pkgs-v1/.unpack-*/../../../x` and `conda-pkgs-v1/.locks/../../../x`.
    let base = ctx.cache.parent().unwrap().to_path_buf();
    let outside = base.join("x");
    fs::create_dir(&outside).unwrap();
    record["environment"] = json!({
        "manager": "conda",
        "lock_schema": "lockstep.env-lock/v1",
        "key": "0123abcd",
        "installer": "lockstep",
        "platform": "linux-64",
        "python": null,
        "channels": ["file:///nowhere"],
        "packages": [],
        "conda_packages": [{
            "name": "evil", "version": "1", "build": "0", "build_number": 0, "subdir": "noarch",
            "channel": "file:///nowhere", "url": format!("file://{}", payload.display()),
            "filename": "../../../x/EVIL.conda",
        }],
    });
    let path = write_record(&ctx, &record);
    fails_with(
        &ctx,
        &["verify", path.to_str().unwrap()],
        "a conda package's filename '../../../x/EVIL.conda' contains '/': it must be a single file name",
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "nothing is written outside the cache");
    assert!(files_named(&base, "EVIL").is_empty(), "{:?}", files_named(&base, "EVIL"));
    assert_eq!(ctx.run_dirs().len(), 1, "the refused verification leaves no run behind");
}

#[test]
fn a_record_whose_source_is_not_a_project_is_refused_before_hashing() {
    let ctx = TestContext::new();
    let record = recorded_run(&ctx);
    // `/` would hash the whole filesystem; the project's parent is the cheap case of the same.
    let parent = ctx.work.display().to_string();
    for dir in ["/", "/proc", parent.as_str()] {
        let mut crafted = record.clone();
        crafted["source"]["path"] = dir.into();
        let path = write_record(&ctx, &crafted);
        let message = format!("source.path {dir} is not a project: it has no MLproject file and no script 'main'");
        fails_with(&ctx, &["status", path.to_str().unwrap()], &message);
        fails_with(&ctx, &["verify", path.to_str().unwrap()], &message);
    }
    let mut crafted = record.clone();
    crafted["source"]["path"] = "../../..".into();
    let path = write_record(&ctx, &crafted);
    for command in ["status", "verify"] {
        fails_with(&ctx, &[command, path.to_str().unwrap()], "is not an absolute path without '.' or '..'");
    }
    assert_eq!(ctx.run_dirs().len(), 1, "no verification run is started");

    // The recorded project itself still passes.
    let path = write_record(&ctx, &record);
    ctx.run(["status", path.to_str().unwrap()]).success();
}

#[test]
fn record_fields_that_become_paths_or_are_cut_short_are_checked() {
    let ctx = TestContext::new();
    let record = recorded_run(&ctx);
    let cases: [(&str, Value, &str); 5] = [
        ("/run_id", "../../outside".into(), "run_id '../../outside' contains '/'"),
        ("/outputs/0/path", "../../etc/passwd".into(), "output path '../../etc/passwd' is not a relative path"),
        ("/source/tree_sha256", "é".into(), "source.tree_sha256 'é' is not a sha256"),
        (
            "/environment",
            json!({"manager": "docker", "base_image_digest": "../../containers/json"}),
            "environment.base_image_digest '../../containers/json' has an empty or '..' path component",
        ),
        (
            "/environment",
            json!({"manager": "uv", "lock_schema": "lockstep.env-lock/v1", "key": "../k", "installer": "uv", "platform": "linux-64", "python": null, "packages": []}),
            "the lock's key '../k' contains '/'",
        ),
    ];
    for (pointer, value, message) in cases {
        let mut crafted = record.clone();
        *crafted.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer} in {record}")) = value;
        let path = write_record(&ctx, &crafted);
        fails_with(&ctx, &["verify", path.to_str().unwrap()], message);
    }
    assert_eq!(ctx.run_dirs().len(), 1, "no verification run is started");
}

#[test]
fn status_of_a_record_whose_archive_is_a_device_does_not_read_it() {
    let ctx = TestContext::new();
    let mut record = recorded_run(&ctx);
    record["source"]["kind"] = "archive".into();
    record["source"]["uri"] = "/dev/zero".into();
    record["source"]["path"] = Value::Null;
    let path = write_record(&ctx, &record);
    fails_with(&ctx, &["status", path.to_str().unwrap()], "/dev/zero, is not a regular file");
}

#[test]
fn a_requirements_file_that_is_a_device_is_refused() {
    let ctx = TestContext::new();
    let manifest = "name: p\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: 'true'\n";
    ctx.project("p", &[("MLproject", manifest), ("python_env.yaml", "dependencies:\n  - -r /dev/zero\n")]);
    let out = ctx.run(["run", "p", "--env-manager", "uv"]).env("PATH", path_with_uv()).status(2).into_output();
    let err = stderr(&out);
    assert!(err.contains("cannot read requirements file /dev/zero: it is not a regular file"), "{err}");
}
