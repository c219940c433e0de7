//! `pack`, archives as sources, `verify`, `status` and `run --reuse`.

use std::fs;
use std::io::Write;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::*;

const DETERMINISTIC: &str = "name: det\nentry_points:\n  main:\n    parameters:\n      n: {type: int, default: 3}\n    command: 'seq {n} > out/seq.txt && cat data/in.txt >> out/seq.txt'\n";

fn det_project(ctx: &TestContext, name: &str) -> std::path::PathBuf {
    let dir = ctx.project(
        name,
        &[("MLproject", DETERMINISTIC), ("data/in.txt", "input\n"), ("run.sh", "echo hi\n"), ("out/.keep", "")],
    );
    std::os::unix::fs::symlink("data/in.txt", dir.join("link")).unwrap();
    dir
}

fn pack(ctx: &TestContext, args: &[&str]) -> Value {
    let mut all = vec!["pack"];
    all.extend_from_slice(args);
    all.push("--json");
    json(&ctx.run(&all).success().into_output())
}

#[test]
fn packing_is_deterministic_across_runs_and_sources() {
    let ctx = TestContext::new();
    let dir = det_project(&ctx, "p");
    let a = pack(&ctx, &["p", "-o", "a.tar.gz"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = pack(&ctx, &["p", "-o", "b.tar.gz"]);
    let (bytes_a, bytes_b) =
        (fs::read(ctx.work.join("a.tar.gz")).unwrap(), fs::read(ctx.work.join("b.tar.gz")).unwrap());
    assert_eq!(bytes_a, bytes_b, "packing twice gives the same bytes");
    assert_eq!(a["tree_sha256"], b["tree_sha256"]);
    let hash = ctx.run(["hash", "p"]).success().into_output().stdout;
    assert_eq!(a["tree_sha256"].as_str().unwrap(), String::from_utf8(hash).unwrap().trim());

    // The same files from a git clone (other mtimes, a .git directory) pack the same.
    ctx.git(&dir, &["init", "-q"]);
    ctx.git(&dir, &["add", "-A"]);
    ctx.git(&dir, &["commit", "-qm", "x"]);
    ctx.git(&ctx.work, &["clone", "-q", dir.to_str().unwrap(), "clone"]);
    pack(&ctx, &["clone", "-o", "c.tar.gz"]);
    assert_eq!(fs::read(ctx.work.join("c.tar.gz")).unwrap(), bytes_a, "a clone packs to the same bytes");
    pack(&ctx, &[&format!("file://{}", dir.display()), "-o", "d.tar.gz"]);
    assert_eq!(fs::read(ctx.work.join("d.tar.gz")).unwrap(), bytes_a, "a git URL packs to the same bytes");

    // lockstep unpacks it to the same tree, and refuses to write into an existing directory.
    let out = ctx.run(["unpack", "a.tar.gz", "mine"]).success().into_output().stdout;
    assert_eq!(String::from_utf8(out).unwrap().trim(), a["tree_sha256"].as_str().unwrap());
    assert!(ctx.work.join("mine/data/in.txt").is_file());
    ctx.lockstep()
        .args(["unpack", "a.tar.gz", "mine"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("exists already"));

    // Any tar reads it, and the unpacked tree hashes the same.
    fs::create_dir(ctx.work.join("unpacked")).unwrap();
    let status = std::process::Command::new("tar")
        .args(["xzf", "a.tar.gz", "-C", "unpacked"])
        .current_dir(&ctx.work)
        .status()
        .unwrap();
    assert!(status.success());
    let hash = ctx.run(["hash", "unpacked"]).success().into_output().stdout;
    assert_eq!(a["tree_sha256"].as_str().unwrap(), String::from_utf8(hash).unwrap().trim());
    let manifest: Value =
        serde_json::from_slice(&fs::read(ctx.work.join("unpacked/.lockstep/pack.json")).unwrap()).unwrap();
    assert_eq!(manifest["schema"], "lockstep.pack/v1");
    assert_eq!(manifest["files"].as_array().unwrap().len(), 5);
}

#[test]
fn archives_run_from_tar_gz_zip_and_http() {
    let ctx = TestContext::new();
    det_project(&ctx, "p");
    pack(&ctx, &["p", "-o", "p.tar.gz"]);
    ctx.run(["run", "p.tar.gz", "-P", "n=2"]).success();
    let r = ctx.only_record();
    assert_eq!(r["source"]["kind"], "archive");
    let digest = sha256_hex(&fs::read(ctx.work.join("p.tar.gz")).unwrap());
    assert_eq!(r["source"]["archive_sha256"], digest.as_str());
    let run_dir = ctx.store().join("runs").join(r["run_id"].as_str().unwrap());
    assert_eq!(fs::read_to_string(run_dir.join("outputs/out/seq.txt")).unwrap(), "1\n2\ninput\n");

    // A zip as MLflow users make them: the project inside one top-level directory.
    let zip_path = ctx.work.join("p.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&zip_path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    for (name, content) in [("proj/MLproject", DETERMINISTIC), ("proj/data/in.txt", "zipped\n"), ("proj/out/.keep", "")]
    {
        zip.start_file(name, opts).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    ctx.run(["run", "p.zip", "-P", "n=1"]).success();
    let r = ctx.records().pop().unwrap();
    let run_dir = ctx.store().join("runs").join(r["run_id"].as_str().unwrap());
    assert_eq!(fs::read_to_string(run_dir.join("outputs/out/seq.txt")).unwrap(), "1\nzipped\n");

    let server = Server::serving(fs::read(ctx.work.join("p.tar.gz")).unwrap());
    ctx.run(["run", &server.url("/dl/p.tar.gz")]).success();
    assert_eq!(server.connections(), 1);
    assert_eq!(ctx.records().pop().unwrap()["source"]["archive_sha256"], digest.as_str());
}

#[test]
fn unsafe_archives_are_refused_before_anything_runs() {
    let ctx = TestContext::new();
    let zip_path = ctx.work.join("evil.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&zip_path).unwrap());
    zip.start_file("MLproject", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"entry_points: {main: {command: 'true'}}\n").unwrap();
    zip.start_file("../../escaped.txt", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"gotcha").unwrap();
    zip.finish().unwrap();
    let out = ctx.run(["run", "evil.zip"]).status(2).into_output();
    assert!(stderr(&out).contains("entry '../../escaped.txt' climbs out with '..'"), "{}", stderr(&out));
    assert!(!ctx.work.join("escaped.txt").exists() && !ctx.work.parent().unwrap().join("escaped.txt").exists());
    ctx.assert_no_runs();

    fs::write(ctx.work.join("garbage.tar.gz"), b"not gzip at all").unwrap();
    let out = ctx.run(["run", "garbage.tar.gz"]).status(2).into_output();
    assert!(stderr(&out).contains("is not a valid tar.gz archive"), "{}", stderr(&out));
    ctx.assert_no_runs();
}

#[test]
fn a_tampered_archive_is_caught_by_its_manifest() {
    let ctx = TestContext::new();
    det_project(&ctx, "p");
    pack(&ctx, &["p", "-o", "p.tar.gz"]);
    fs::create_dir(ctx.work.join("x")).unwrap();
    let tar = |args: &[&str]| {
        assert!(std::process::Command::new("tar").args(args).current_dir(&ctx.work).status().unwrap().success())
    };
    tar(&["xzf", "p.tar.gz", "-C", "x"]);
    fs::write(ctx.work.join("x/data/in.txt"), "tampered\n").unwrap();
    tar(&["czf", "tampered.tar.gz", "-C", "x", "."]);
    let out = ctx.run(["run", "tampered.tar.gz"]).status(2).into_output();
    assert!(stderr(&out).contains("does not match its manifest: data/in.txt differs"), "{}", stderr(&out));
}

fn verify(ctx: &TestContext, args: &[&str], code: i32) -> Value {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    all.push("--json");
    json(&ctx.lockstep().args(&all).assert().code(code).get_output().clone())
}

#[test]
fn verify_reproduces_a_deterministic_run_and_records_itself() {
    let ctx = TestContext::new();
    det_project(&ctx, "p");
    ctx.run(["run", "p", "-P", "n=4"]).success();
    let original = ctx.only_record();
    let id = original["run_id"].as_str().unwrap();
    let report = verify(&ctx, &[&id[..10]], 0);
    assert_eq!(report["result"], "reproduced");
    assert_eq!(report["run_id"], id);
    assert_eq!(report["files"][0]["path"], "out/seq.txt");
    assert_eq!(report["files"][0]["result"], "identical");
    let check = ctx.records().into_iter().find(|r| r["verifies"] == id).expect("the verification is a run");
    assert_eq!(check["run_id"], report["verification_run_id"]);
    assert_eq!(check["parameters"]["n"], "4");
    assert_eq!(check["verification"]["result"], "reproduced");
    assert_ne!(check["outputs_dir"], original["outputs_dir"], "the re-run is isolated");
    ctx.lockstep()
        .args(["verify", id])
        .assert()
        .success()
        .stdout(predicate::str::contains("reproduced: every output matches"));
}

#[test]
fn verify_reports_a_timestamp_and_ignore_silences_it() {
    let ctx = TestContext::new();
    let manifest = "entry_points:\n  main:\n    command: 'echo stable > stable.txt; date +%s%N > stamp.txt'\n";
    ctx.project("p", &[("MLproject", manifest)]);
    ctx.run(["run", "p"]).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    let report = verify(&ctx, &[&id], 1);
    assert_eq!(report["result"], "differs");
    let stamp = report["files"].as_array().unwrap().iter().find(|f| f["path"] == "stamp.txt").unwrap();
    assert_eq!(stamp["result"], "differs");
    assert!(stamp["detail"].as_str().unwrap().contains("+++ re-run"), "a diff is shown: {stamp}");
    ctx.lockstep().args(["verify", &id]).assert().code(1).stdout(
        predicate::str::contains("DIFFERS          stamp.txt")
            .and(predicate::str::contains("not reproduced: outputs differ")),
    );
    let report = verify(&ctx, &[&id, "--ignore", "stamp.*"], 0);
    assert_eq!(report["files"][1]["result"], "ignored");
}

#[test]
fn verify_compares_json_numbers_within_rtol() {
    let ctx = TestContext::new();
    let manifest = "entry_points:\n  main:\n    command: 'printf \"{{\\\"loss\\\": %s, \\\"name\\\": \\\"m\\\"}}\" \"$NOISE\" > metrics.json'\n";
    ctx.project("p", &[("MLproject", manifest)]);
    ctx.lockstep().env("NOISE", "0.5").args(["run", "p"]).assert().success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    let mut cmd = ctx.lockstep();
    cmd.env("NOISE", "0.50001").args(["verify", &id, "--json"]);
    assert_eq!(json(&cmd.assert().code(1).get_output().clone())["files"][0]["result"], "differs");
    let mut cmd = ctx.lockstep();
    cmd.env("NOISE", "0.50001").args(["verify", &id, "--rtol", "1e-3", "--json"]);
    let report = json(&cmd.assert().success().get_output().clone());
    assert_eq!(report["files"][0]["result"], "within_tolerance");
    let mut cmd = ctx.lockstep();
    cmd.env("NOISE", "0.6").args(["verify", &id, "--rtol", "1e-3", "--json"]);
    let report = json(&cmd.assert().code(1).get_output().clone());
    assert_eq!(report["files"][0]["detail"], "$.loss: 0.5 vs 0.6");
    ctx.lockstep()
        .args(["verify", &id, "--rtol=-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--rtol must be"));
}

#[test]
fn verify_restores_the_dirty_state_of_a_run() {
    let ctx = TestContext::new();
    let repo = ctx.work.join("repo");
    let manifest = "entry_points:\n  main:\n    command: 'cat config.txt extra.txt > out.txt'\n";
    ctx.git_repo(&repo, &[("MLproject", manifest), ("config.txt", "committed\n"), (".gitignore", "out.txt\n")]);
    write_file(&repo.join("config.txt"), "edited, not committed\n");
    write_file(&repo.join("extra.txt"), "untracked\n");
    ctx.run(["run", "repo"]).success();
    let r = ctx.only_record();
    assert_eq!(r["source"]["dirty"], true);
    // The worktree moves on: the verification must not care.
    ctx.git(&repo, &["checkout", "-q", "--", "config.txt"]);
    fs::remove_file(repo.join("extra.txt")).unwrap();
    let report = verify(&ctx, &[r["run_id"].as_str().unwrap()], 0);
    assert_eq!(report["result"], "reproduced");
    let check = ctx.records().into_iter().find(|x| x["verifies"].is_string()).unwrap();
    let out = fs::read_to_string(std::path::Path::new(check["outputs_dir"].as_str().unwrap()).join("out.txt")).unwrap();
    assert_eq!(out, "edited, not committed\nuntracked\n");
}

#[test]
fn verify_rebuilds_a_git_run_at_an_older_commit() {
    let ctx = TestContext::new();
    let repo = ctx.work.join("repo");
    let manifest = "entry_points:\n  main:\n    command: 'cat version.txt > out.txt'\n";
    let old = ctx.git_repo(&repo, &[("MLproject", manifest), ("version.txt", "old\n")]);
    ctx.commit(&repo, &[("version.txt", "new\n")], "new");
    let url = format!("file://{}", repo.display());
    ctx.run(["run", &url, "-v", &old[..8]]).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    let report = verify(&ctx, &[&id], 0);
    assert_eq!(report["result"], "reproduced");

    // A record file copied elsewhere (committed for CI, say) verifies as well.
    fs::copy(ctx.store().join("runs").join(&id).join("record.json"), ctx.work.join("ci-record.json")).unwrap();
    assert_eq!(verify(&ctx, &["ci-record.json"], 0)["result"], "reproduced");
}

#[test]
fn a_packed_run_verifies_from_the_archive_alone() {
    let ctx = TestContext::new();
    det_project(&ctx, "p");
    ctx.run(["run", "p"]).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    let packed = pack(&ctx, &["p", "--run", &id, "-o", "shared.tar.gz"]);
    assert_eq!(packed["run_id"], id.as_str());
    // Elsewhere: another machine's store, and the original project gone.
    fs::remove_dir_all(ctx.work.join("p")).unwrap();
    let report = json(
        &ctx.lockstep()
            .args(["verify", "shared.tar.gz", "--json", "--store", "elsewhere"])
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    assert_eq!(report["result"], "reproduced");
    ctx.run(["pack", "p", "--run", "ffff"]).status(2);
}

#[test]
fn two_runs_of_one_tree_pack_to_two_archives_anyone_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let ctx = TestContext::new();
    ctx.project(
        "p",
        &[("MLproject", "entry_points:\n  main:\n    command: 'echo {x}'\n    parameters: {x: string}\n")],
    );
    ctx.run(["run", "p", "-P", "x=1"]).success();
    ctx.run(["run", "p", "-P", "x=2"]).success();
    let ids: Vec<String> = ctx.records().iter().map(|r| r["run_id"].as_str().unwrap().to_string()).collect();
    let paths: Vec<String> =
        ids.iter().map(|id| pack(&ctx, &["p", "--run", id])["path"].as_str().unwrap().to_string()).collect();
    assert_ne!(paths[0], paths[1], "one archive per run, not the second replacing the first");
    for (path, id) in paths.iter().zip(&ids) {
        assert!(path.ends_with(&format!("-run-{}.tar.gz", &id[..12])), "{path}");
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{path}");
    }
    let plain = pack(&ctx, &["p"]);
    assert!(!plain["path"].as_str().unwrap().contains("-run-"), "{plain}");
}

#[test]
fn pack_with_a_run_refuses_a_changed_project() {
    let ctx = TestContext::new();
    det_project(&ctx, "p");
    ctx.run(["run", "p"]).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    ctx.write("p/data/in.txt", "changed\n");
    let out = ctx.run(["pack", "p", "--run", &id]).status(2).into_output();
    assert!(stderr(&out).contains(&format!("the project's files are not those run {id} ran on")), "{}", stderr(&out));
}

#[test]
fn status_names_what_changed() {
    let ctx = TestContext::new();
    det_project(&ctx, "p");
    ctx.run(["run", "p"]).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    let report = json(&ctx.run(["status", &id, "--json"]).success().into_output());
    assert_eq!(report["source"]["same"], true, "the run's own outputs in the tree are not a change: {report}");
    assert_eq!(report["environment"]["same"], true);

    ctx.write("p/data/in.txt", "edited\n");
    ctx.write("p/new.py", "x = 1\n");
    let out = ctx.run(["status", &id]).status(1).into_output();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("source       CHANGED"), "{text}");
    assert!(text.contains("modified data/in.txt") && text.contains("added new.py"), "{text}");
    assert!(text.contains("environment  same"), "{text}");
    ctx.run(["status", "0000"]).status(2);
}

#[test]
fn reuse_skips_a_run_that_already_happened() {
    let ctx = TestContext::new();
    det_project(&ctx, "p");
    ctx.run(["run", "p", "--reuse"]).success();
    let first = ctx.only_record();
    let out = ctx.run(["run", "p", "--reuse", "--json"]).success().into_output();
    assert_eq!(json(&out)["run_id"], first["run_id"]);
    assert!(stderr(&out).contains("reusing run"), "{}", stderr(&out));
    assert_eq!(ctx.run_dirs().len(), 1, "nothing ran");

    ctx.run(["run", "p", "--reuse", "-P", "n=5"]).success();
    assert_eq!(ctx.records().len(), 2, "other parameters run");
    fs::remove_file(ctx.work.join("p/out/seq.txt")).unwrap();
    ctx.run(["run", "p", "--reuse", "-P", "n=5"]).success();
    assert_eq!(ctx.records().len(), 3, "a run whose outputs are gone is not reused");
    ctx.write("p/data/in.txt", "changed\n");
    ctx.run(["run", "p", "--reuse", "-P", "n=5"]).success();
    assert_eq!(ctx.records().len(), 4, "changed files run");
}

#[test]
fn a_record_committed_to_the_repository_verifies_in_a_fresh_clone() {
    let ctx = TestContext::new();
    let repo = ctx.work.join("repo");
    let manifest =
        "entry_points:\n  train:\n    parameters: {alpha: float}\n    command: 'echo alpha={alpha} > model.txt'\n";
    ctx.git_repo(&repo, &[("MLproject", manifest), (".gitignore", "model.txt\n")]);
    ctx.lockstep().current_dir(&repo).args(["run", ".", "-e", "train", "-P", "alpha=0.5"]).assert().success();
    let record = records_in(&repo.join(".lockstep")).remove(0);
    let id = record["run_id"].as_str().unwrap();
    fs::create_dir(repo.join("ci")).unwrap();
    fs::copy(repo.join(".lockstep/runs").join(id).join("record.json"), repo.join("ci/record.json")).unwrap();
    ctx.commit(&repo, &[], "record the reference run");

    // CI: a fresh clone somewhere else; the original checkout is gone.
    ctx.git(&ctx.work, &["clone", "-q", repo.to_str().unwrap(), "ci-clone"]);
    fs::remove_dir_all(&repo).unwrap();
    let clone = ctx.work.join("ci-clone");
    let out = ctx
        .lockstep()
        .current_dir(&clone)
        .args(["verify", "ci/record.json", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let report = json(&out);
    assert_eq!(report["result"], "reproduced", "{report}");
    assert_eq!(report["files"][0]["path"], "model.txt");
}
