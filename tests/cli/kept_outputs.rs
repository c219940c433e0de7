//! Every run keeps its outputs in the store (`objects/sha256/...`): a later run in place
//! takes nothing from an earlier one, `lockstep outputs` restores them, `verify` compares
//! with them, identical files are stored once, and large ones are recorded by digest only.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

const PROJECT: &str = "name: p\nentry_points:\n  main:\n    parameters:\n      alpha: float\n    command: 'echo alpha={alpha} > metrics.json'\n  same:\n    command: 'echo same > same.txt'\n  random:\n    command: 'echo $LOCKSTEP_RUN_ID > id.txt'\n  sizes:\n    command: 'echo 1 > small.txt && echo 0123456789abcdef > big.txt'\n";

fn project(ctx: &TestContext) -> PathBuf {
    ctx.project("p", &[("MLproject", PROJECT)])
}

/// The record of the run named `name`.
fn named(ctx: &TestContext, name: &str) -> Value {
    ctx.records().into_iter().find(|r| r["run_name"] == name).unwrap_or_else(|| panic!("no run named {name}"))
}

fn id(ctx: &TestContext, name: &str) -> String {
    named(ctx, name)["run_id"].as_str().unwrap().to_string()
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            match entry.file_type().unwrap().is_dir() {
                true => todo.push(entry.path()),
                false => found.push(entry.path()),
            }
        }
    }
    found
}

fn objects(ctx: &TestContext) -> Vec<PathBuf> {
    files_under(&ctx.store().join("objects"))
}

#[test]
fn a_run_in_place_overwritten_by_the_next_keeps_its_bytes() {
    let ctx = TestContext::new();
    let dir = project(&ctx);
    ctx.run(["run", "p", "-P", "alpha=0.5", "--run-name", "first"]).success();
    ctx.run(["run", "p", "-P", "alpha=2", "--run-name", "second"]).success();
    assert_eq!(fs::read_to_string(dir.join("metrics.json")).unwrap(), "alpha=2\n");
    let first = id(&ctx, "first");
    assert_eq!(named(&ctx, "first")["outputs"][0]["kept"], true);
    ctx.run(["show", &first])
        .success()
        .stdout_has(&format!("kept:         in the store (`lockstep outputs {first}` restores them)"));

    let out = ctx.run(["outputs", &first, "-o", "restored"]).success().stdout("metrics.json\n");
    out.stderr_has("restored 1 files into");
    assert_eq!(fs::read_to_string(ctx.work.join("restored/metrics.json")).unwrap(), "alpha=0.5\n");
    assert_eq!(fs::metadata(ctx.work.join("restored/metrics.json")).unwrap().mode() & 0o777, 0o644);
    // Again: the same content is there, nothing is written.
    ctx.run(["outputs", &first, "-o", "restored"]).success().stdout("").stderr_has("1 already there");

    // Into the project, which holds the second run's bytes: refused, then forced.
    ctx.run(["outputs", &first, "metrics.json", "-o", "p"])
        .status(2)
        .stderr_has("already holds other content at metrics.json")
        .hint("--force replaces them");
    assert_eq!(fs::read_to_string(dir.join("metrics.json")).unwrap(), "alpha=2\n");
    ctx.run(["outputs", &first, "metrics.json", "-o", "p", "--force"]).success();
    assert_eq!(fs::read_to_string(dir.join("metrics.json")).unwrap(), "alpha=0.5\n");
}

#[test]
fn verify_compares_with_the_kept_copy_not_the_overwritten_file() {
    let ctx = TestContext::new();
    project(&ctx);
    ctx.run(["run", "p", "-e", "random", "--run-name", "first"]).success();
    ctx.run(["run", "p", "-e", "random", "--run-name", "second"]).success();
    let first = id(&ctx, "first");
    // The diff shows the first run's own id, which only its kept copy still holds.
    ctx.run(["verify", &first]).status(1).stdout_has("DIFFERS").stdout_has(&format!("-{first}"));
}

#[test]
fn identical_outputs_are_stored_once() {
    let ctx = TestContext::new();
    project(&ctx);
    ctx.run(["run", "p", "-e", "same", "--run-name", "a"]).success();
    ctx.run(["run", "p", "-e", "same", "--run-name", "b"]).success();
    ctx.run(["run", "p", "-e", "same", "--run-name", "c", "--isolated"]).success();
    let objects = objects(&ctx);
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(fs::read_to_string(&objects[0]).unwrap(), "same\n");
    let sha = sha256_hex(b"same\n");
    assert!(objects[0].ends_with(format!("sha256/{}/{}", &sha[..2], &sha[2..])), "{objects:?}");
    // The isolated run's own copy in its run directory is the object itself.
    let isolated = ctx.store().join("runs").join(id(&ctx, "c")).join("outputs/same.txt");
    assert_eq!(fs::metadata(&isolated).unwrap().ino(), fs::metadata(&objects[0]).unwrap().ino());
    for name in ["a", "b", "c"] {
        ctx.run(["outputs", &id(&ctx, name), "-o", name]).success();
        assert_eq!(fs::read_to_string(ctx.work.join(name).join("same.txt")).unwrap(), "same\n");
    }
}

#[test]
fn outputs_above_the_limit_keep_their_digest_only_and_the_run_says_so() {
    let ctx = TestContext::new();
    let dir = project(&ctx);
    ctx.run(["run", "p", "-e", "sizes", "--keep-limit", "10", "--run-name", "limited"])
        .success()
        .stderr_has("big.txt (0.0 KiB) is larger than the limit of 0.0 KiB for kept outputs");
    let record = named(&ctx, "limited");
    let kept: Vec<(&str, bool)> = record["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["path"].as_str().unwrap(), o["kept"].as_bool().unwrap_or(false)))
        .collect();
    assert_eq!(kept, [("big.txt", false), ("small.txt", true)]);
    let limited = id(&ctx, "limited");
    ctx.run(["show", &limited]).success().stdout_has("big.txt  (sha256 only: no copy kept)");
    // While the file in the project is unchanged, it is what is restored.
    ctx.run(["outputs", &limited, "big.txt", "-o", "r1"]).success();
    fs::write(dir.join("big.txt"), "changed\n").unwrap();
    ctx.run(["outputs", &limited, "-o", "r2"])
        .status(2)
        .stderr_has(&format!("run {limited} kept no copy of big.txt"))
        .hint("files above the size limit");
    assert!(!ctx.work.join("r2").exists(), "nothing is written when one file cannot be restored");

    ctx.run(["run", "p", "-e", "sizes", "--no-keep-outputs", "--run-name", "none"]).success();
    assert!(named(&ctx, "none")["outputs"].as_array().unwrap().iter().all(|o| o.get("kept").is_none()));
    ctx.run(["run", "p", "--keep-limit", "lots"]).status(2).stderr_has("'lots' is not a size");
}

#[test]
fn bad_requests_and_crafted_records_write_nothing() {
    let ctx = TestContext::new();
    project(&ctx);
    ctx.run(["run", "p", "-P", "alpha=1", "--run-name", "one"]).success();
    let one = id(&ctx, "one");
    ctx.run(["outputs", "ffffffff"]).status(2).stderr_has("no run 'ffffffff'").hint("`lockstep runs` lists the runs");
    ctx.run(["outputs", &one, "model.pkl"])
        .status(2)
        .stderr_has(&format!("run {one} has no output 'model.pkl'"))
        .hint("its outputs are metrics.json");

    // A directory on the way that is a link out of DIR.
    let outside = ctx.work.join("outside");
    fs::create_dir_all(ctx.work.join("dest")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, ctx.work.join("dest/sub")).unwrap();
    let mut record = named(&ctx, "one");
    record["outputs"] =
        json!([{"path": "sub/metrics.json", "size": 13, "sha256": record["outputs"][0]["sha256"], "kept": true}]);
    let crafted = ctx.write("crafted.json", &serde_json::to_string(&record).unwrap());
    ctx.run(["outputs", crafted.to_str().unwrap(), "-o", "dest"])
        .status(2)
        .stderr_has("dest/sub is not a directory inside");
    assert!(files_under(&outside).is_empty());

    for (path, sha, message) in [
        (
            "../escape.json",
            record["outputs"][0]["sha256"].clone(),
            "is not a relative path inside the outputs directory",
        ),
        (
            "/tmp/escape.json",
            record["outputs"][0]["sha256"].clone(),
            "is not a relative path inside the outputs directory",
        ),
        ("ok.json", json!("../../../../../tmp/x"), "has no sha256"),
    ] {
        record["outputs"] = json!([{"path": path, "size": 1, "sha256": sha, "kept": true}]);
        fs::write(&crafted, serde_json::to_string(&record).unwrap()).unwrap();
        ctx.run(["outputs", crafted.to_str().unwrap(), "-o", "dest2"]).status(2).stderr_has(message);
        assert!(!ctx.work.join("dest2").exists());
        assert!(!ctx.work.join("escape.json").exists());
    }
}
