//! Git sources over file:// and a real git daemon: versions, subdirectories, the mirror
//! cache, submodules.

use std::fs;

use crate::support::*;

fn project_at(version: &str) -> String {
    format!(
        "name: g\nentry_points:\n  main:\n    parameters:\n      who: {{default: x}}\n    command: 'echo {version} {{who}}; echo out > out.txt'\n"
    )
}

/// A repository with a tag, a branch, a later commit on main and a project in `sub/`.
struct Fixture {
    ctx: TestContext,
    first: String,
    second: String,
    feature: String,
}

fn fixture() -> Fixture {
    let ctx = TestContext::new();
    let repo = ctx.work.join("served/repo.git");
    let first = ctx.git_repo(&repo, &[("MLproject", &project_at("first")), ("sub/MLproject", &project_at("sub"))]);
    ctx.git(&repo, &["tag", "v1"]);
    ctx.git(&repo, &["checkout", "-q", "-b", "feature"]);
    let feature = ctx.commit(&repo, &[("MLproject", &project_at("feature"))], "feature");
    ctx.git(&repo, &["checkout", "-q", "main"]);
    let second = ctx.commit(&repo, &[("MLproject", &project_at("second"))], "second");
    Fixture { ctx, first, second, feature }
}

fn mirrors(ctx: &TestContext) -> Vec<std::path::PathBuf> {
    fs::read_dir(ctx.cache.join("git-v1"))
        .map(|e| e.flatten().map(|e| e.path()).filter(|p| p.join("HEAD").is_file()).collect())
        .unwrap_or_default()
}

fn check_versions(f: &Fixture, url: &str) {
    let ctx = &f.ctx;
    ctx.run(["run", url]).success().stdout("second x\n");
    ctx.run(["run", url, "-v", "v1"]).success().stdout("first x\n");
    ctx.run(["run", url, "-v", "feature", "-P", "who=me"]).success().stdout("feature me\n");
    ctx.run(["run", url, "-v", &f.first[..7]]).success().stdout("first x\n");
    ctx.run(["run", url, "-v", &f.second]).success().stdout("second x\n");
    ctx.run(["run", &format!("{url}#sub"), "-v", "v1"]).success().stdout("sub x\n");

    let records = ctx.records();
    assert_eq!(records.len(), 6);
    let commits: Vec<&str> = records.iter().map(|r| r["source"]["commit"].as_str().unwrap()).collect();
    assert_eq!(commits, [&f.second, &f.first, &f.feature, &f.first, &f.second, &f.first].map(String::as_str));
    let branches: Vec<&serde_json::Value> = records.iter().map(|r| &r["source"]["branch"]).collect();
    assert_eq!(branches[0], "main");
    assert_eq!(branches[2], "feature");
    assert!(branches[1].is_null());
    for r in &records {
        assert_eq!(r["source"]["kind"], "git");
        assert_eq!(r["source"]["repo_url"], url);
        assert_eq!(r["source"]["dirty"], false);
        assert_eq!(r["status"], "FINISHED");
        let run_dir = ctx.store().join("runs").join(r["run_id"].as_str().unwrap());
        assert_eq!(r["outputs"][0]["path"], "out.txt");
        assert_eq!(
            fs::read_to_string(run_dir.join("outputs/out.txt")).unwrap(),
            "out\n",
            "outputs are kept in the run"
        );
        assert!(!run_dir.join("work").exists());
    }
    assert_eq!(records[5]["source"]["subdirectory"], "sub");
    assert_eq!(mirrors(ctx).len(), 1, "one mirror per repository URL");
}

#[test]
fn versions_and_subdirectories_over_file_urls() {
    let f = fixture();
    let url = format!("file://{}", f.ctx.work.join("served/repo.git").display());
    check_versions(&f, &url);
}

#[test]
fn versions_and_subdirectories_over_git_daemon() {
    let f = fixture();
    let daemon = GitDaemon::start(&f.ctx, &f.ctx.work.join("served"));
    check_versions(&f, &daemon.url("repo.git"));
}

#[test]
fn a_known_commit_is_run_without_the_network_and_new_commits_are_fetched_into_the_same_mirror() {
    let f = fixture();
    let ctx = &f.ctx;
    let daemon = GitDaemon::start(ctx, &ctx.work.join("served"));
    let url = daemon.url("repo.git");
    ctx.run(["run", &url]).success();
    let mirror = mirrors(ctx).remove(0);
    let marker = mirror.join("lockstep-test-marker");
    fs::write(&marker, "the mirror is never re-cloned").unwrap();

    let third = ctx.commit(&ctx.work.join("served/repo.git"), &[("MLproject", &project_at("third"))], "third");
    ctx.run(["run", &url]).success().stdout("third x\n");
    assert!(marker.exists(), "a new commit is fetched into the existing mirror");

    drop(daemon);
    ctx.run(["run", &url, "-v", &third]).success().stdout("third x\n");
    ctx.run(["run", &url, "-v", &f.first[..8]]).success().stdout("first x\n");
    ctx.run(["run", &url, "-v", "v1"]).success().stdout("first x\n");
    let out = ctx.run(["run", &url, "-v", "main"]).status(2).into_output();
    assert!(stderr(&out).contains("cannot fetch"), "a branch needs the server: {}", stderr(&out));
}

#[test]
fn the_tree_hash_of_a_checkout_equals_that_of_a_local_copy() {
    let f = fixture();
    let ctx = &f.ctx;
    let url = format!("file://{}", ctx.work.join("served/repo.git").display());
    ctx.run(["run", &url, "--json"]).success();
    let git_hash = ctx.only_record()["source"]["tree_sha256"].as_str().unwrap().to_string();
    ctx.git(&ctx.work, &["clone", "-q", &url, "copy"]);
    fs::remove_dir_all(ctx.work.join("copy/.git")).unwrap();
    let out = ctx.run(["hash", "copy"]).success().into_output().stdout;
    assert_eq!(String::from_utf8(out).unwrap().trim(), git_hash);
}

#[test]
fn submodules_are_checked_out_recursively() {
    let ctx = TestContext::new();
    let served = ctx.work.join("served");
    let leaf = served.join("leaf.git");
    ctx.git_repo(&leaf, &[("leaf.txt", "leaf\n")]);
    let lib = served.join("lib.git");
    ctx.git_repo(&lib, &[("lib.txt", "lib\n")]);
    ctx.git(&lib, &["submodule", "add", "-q", "../leaf.git", "deps/leaf"]);
    ctx.commit(&lib, &[], "add leaf");
    let top = served.join("top.git");
    ctx.git_repo(
        &top,
        &[("MLproject", "entry_points:\n  main:\n    command: 'cat lib/lib.txt lib/deps/leaf/leaf.txt'\n")],
    );
    ctx.git(&top, &["submodule", "add", "-q", "../lib.git", "lib"]);
    ctx.commit(&top, &[], "add lib");

    let daemon = GitDaemon::start(&ctx, &served);
    ctx.run(["run", &daemon.url("top.git")]).success().stdout("lib\nleaf\n");
    ctx.run(["run", &format!("file://{}", top.display())]).success().stdout("lib\nleaf\n");
}
