//! `#subdirectory` that is a symbolic link to a directory inside the project: followed, for
//! local and git sources, as long as it resolves inside the project.

use std::os::unix::fs::symlink;

use crate::support::*;

const MANIFEST: &str = "name: s\nentry_points:\n  main:\n    command: 'cat data.txt; echo out > out.txt'\n";

/// The linked directory's files: more than a tree walked on one thread has, since only the
/// parallel walk stopped at a root that is a link.
fn files() -> Vec<(String, String)> {
    let mut files =
        vec![("real/MLproject".to_string(), MANIFEST.to_string()), ("real/data.txt".into(), "data\n".into())];
    files.extend((0..300).map(|i| (format!("real/many/f{i}.txt"), format!("{i}\n"))));
    files
}

fn as_refs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect()
}

fn hash_of(ctx: &TestContext, dir: &str) -> String {
    let out = ctx.run(["hash", dir]).success().into_output().stdout;
    String::from_utf8(out).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_local_subdirectory_link_runs_the_directory_it_points_to() {
    let ctx = TestContext::new();
    ctx.project("p", &as_refs(&files()));
    symlink("real", ctx.work.join("p/link")).unwrap();
    let tree = hash_of(&ctx, "p/real");
    ctx.run(["run", "p#link"]).success().stdout("data\n");
    let r = ctx.only_record();
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(r["source"]["tree_sha256"], tree.as_str());
    assert_eq!(r["outputs"][0]["path"], "out.txt");
    assert!(ctx.work.join("p/real/out.txt").is_file());

    std::fs::create_dir_all(ctx.work.join("elsewhere")).unwrap();
    symlink("../elsewhere", ctx.work.join("p/out")).unwrap();
    let out = ctx.run(["run", "p#out"]).status(2).into_output();
    assert!(stderr(&out).contains("subdirectory 'out' leaves the repository"), "{}", stderr(&out));
}

#[test]
fn a_git_subdirectory_link_runs_the_directory_it_points_to() {
    let ctx = TestContext::new();
    let repo = ctx.work.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    symlink("real", repo.join("link")).unwrap();
    ctx.git_repo(&repo, &as_refs(&files()));
    let url = format!("file://{}", repo.display());
    ctx.run(["run", &format!("{url}#link")]).success().stdout("data\n");
    let r = ctx.only_record();
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(r["source"]["tree_sha256"], hash_of(&ctx, "repo/real").as_str());
    assert_eq!(r["outputs"][0]["path"], "out.txt");
}
