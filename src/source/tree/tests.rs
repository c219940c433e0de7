//! Tests of the tree hash: its definition, the walk against the `ignore` crate's walker, and
//! the stat cache.

use super::stat_cache::RACY_WINDOW_NS;
use super::walk::SMALL_TREE;
use super::*;
use ignore::WalkBuilder;
use std::os::unix::fs::{PermissionsExt, symlink};

/// The `ignore` crate's walker with the settings the tree hash is defined by (and was
/// computed with before [`walk`]): the reference [`walk`] must agree with.
fn project_walker(root: &Path, exclusions: &Exclusions, ignore_rules: bool) -> WalkBuilder {
    let mut builder = WalkBuilder::new(root);
    builder
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .git_ignore(ignore_rules)
        .require_git(false)
        .parents(false);
    if ignore_rules {
        builder.add_custom_ignore_filename(".lockstepignore");
    }
    let exclusions = exclusions.clone();
    builder.filter_entry(move |e| {
        let is_dir = e.file_type().is_some_and(|t| t.is_dir());
        let store = is_dir && exclusions.markers().iter().any(|m| e.path().join(m).exists());
        !(store || exclusions.skips(e.path(), e.file_name(), is_dir))
    });
    builder
}

/// What the reference walker gives: (path, is_link) of files and links.
fn reference(root: &Path, exclusions: &Exclusions, ignore_rules: bool) -> Vec<(PathBuf, bool)> {
    let mut out: Vec<_> = project_walker(root, exclusions, ignore_rules)
        .build()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_some_and(|t| t.is_file() || t.is_symlink()))
        .map(|e| (e.path().strip_prefix(root).unwrap().to_path_buf(), e.file_type().unwrap().is_symlink()))
        .collect();
    out.sort();
    out
}

fn walked(root: &Path, exclusions: &Exclusions, ignore_rules: bool) -> Vec<(PathBuf, bool)> {
    let mut out: Vec<_> = walk(root, exclusions, true)
        .unwrap()
        .into_iter()
        .filter(|w| !ignore_rules || !w.ignored)
        .map(|w| (w.rel, w.is_link))
        .collect();
    out.sort();
    out
}

#[test]
fn walk_agrees_with_the_ignore_crate_walker() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", "*.log\n/build/\ndata/\n!keep.log\n");
    write(root, "a.log", "x");
    write(root, "keep.log", "x");
    write(root, "build/out.o", "x");
    write(root, "src/build/kept.o", "x");
    write(root, "data/big.bin", "x");
    write(root, "data/.gitignore", "!*\n");
    write(root, "sub/.gitignore", "!*.log\nlocal.txt\n");
    write(root, "sub/x.log", "x");
    write(root, "sub/local.txt", "x");
    write(root, "sub/deep/local.txt", "x");
    write(root, "sub/.lockstepignore", "x.log\n!local.txt\n");
    write(root, ".lockstepignore", "secret*\n");
    write(root, "secret.txt", "x");
    write(root, "sub/deep/secret.txt", "x");
    write(root, "m/.lockstepignore", "!secret.txt\n");
    write(root, "m/secret.txt", "x");
    write(root, ".git/HEAD", "x");
    write(root, "store/.lockstep-store", "");
    write(root, "store/runs/r", "x");
    write(root, "sub/deep/store/.lockstep-store", "");
    write(root, "sub/deep/store/runs/r", "x");
    write(root, ".lockstep/runs/r", "x");
    write(root, "other/kept", "x");
    symlink("other", root.join("linkdir")).unwrap();
    symlink("missing", root.join("dangling.log")).unwrap();
    for i in 0..300 {
        write(root, &format!("many/d{}/f{i}.txt", i % 7), "x");
    }
    let exclusions = stores().dir(root.join("other"));
    for rules in [true, false] {
        let expected = reference(root, &exclusions, rules);
        assert!(expected.len() > SMALL_TREE, "the walk goes parallel");
        assert_eq!(walked(root, &exclusions, rules), expected, "ignore rules: {rules}");
    }
    assert!(walked(root, &exclusions, true).contains(&(PathBuf::from("keep.log"), false)));
}

#[test]
fn a_root_that_is_a_link_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "real/a.txt", "a");
    // Large enough for the parallel walk, which once stopped at a root link.
    for i in 0..300 {
        write(dir.path(), &format!("real/d{}/f{i}", i % 3), "x");
    }
    symlink("real", dir.path().join("link")).unwrap();
    assert_eq!(hash(&dir.path().join("link")).sha256, hash(&dir.path().join("real")).sha256);
    let stamps = FileStamps::take(&dir.path().join("link"), &Exclusions::default()).unwrap();
    assert!(stamps.get(Path::new("a.txt")).is_some());
}

#[test]
fn bad_patterns_in_ignore_files_are_skipped_as_by_the_ignore_crate_walker() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "sub/.gitignore", "[z-a]\nskip.txt\n");
    write(root, "sub/skip.txt", "x");
    write(root, "sub/keep.txt", "x");
    let expected = reference(root, &Exclusions::default(), true);
    assert_eq!(walked(root, &Exclusions::default(), true), expected);
    assert!(!expected.iter().any(|(p, _)| p.ends_with("skip.txt")), "the other lines still apply");
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// What runs leave out: lockstep's stores, as `record::store` names them.
fn stores() -> Exclusions {
    Exclusions::default().named(".lockstep").marked_by(".lockstep-store")
}

fn hash(root: &Path) -> Tree {
    hash_tree(root, &stores(), None).unwrap()
}

#[test]
fn hash_matches_the_documented_definition() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.txt", "b");
    write(dir.path(), "a/x.py", "x");
    let tree = hash(dir.path());
    let paths: Vec<_> = tree.entries.iter().map(|e| e.path.to_str().unwrap()).collect();
    assert_eq!(paths, ["a/x.py", "b.txt"]);
    let expected = format!(
        "lockstep-tree/v1\0100644 {} a/x.py\0100644 {} b.txt\0",
        digest::sha256_hex(b"x"),
        digest::sha256_hex(b"b")
    );
    assert_eq!(tree.sha256, digest::sha256_hex(expected.as_bytes()));
}

#[test]
fn ignored_files_git_and_stores_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "train.py", "code");
    let base = hash(root).sha256;
    write(root, ".gitignore", "*.log\n");
    let with_ignore = hash(root).sha256;
    assert_ne!(base, with_ignore, ".gitignore itself is part of the tree");
    write(root, "out.log", "noise");
    write(root, "sub/.lockstepignore", "data/\n");
    let with_lsi = hash(root).sha256;
    write(root, "sub/data/big.bin", "noise");
    write(root, ".git/HEAD", "ref: refs/heads/main");
    write(root, ".lockstep/runs/x/record.json", "{}");
    write(root, "mystore/.lockstep-store", "");
    write(root, "mystore/runs/y/record.json", "{}");
    write(root, "sub/deeper/.git", "gitdir: elsewhere");
    assert_eq!(hash(root).sha256, with_lsi);
}

#[test]
fn executable_bit_and_symlinks_change_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "run.sh", "echo");
    let plain = hash(root).sha256;
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let exec = hash(root);
    assert_ne!(plain, exec.sha256);
    assert_eq!(exec.entries[0].mode, FileMode::Executable);
    symlink("run.sh", root.join("link")).unwrap();
    let linked = hash(root);
    assert_eq!(linked.entries[0].mode, FileMode::Symlink);
    assert_eq!(linked.entries[0].sha256, <[u8; 32]>::from(Sha256::digest(b"run.sh")));
}

#[test]
fn same_files_in_another_place_hash_the_same() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for root in [a.path(), b.path()] {
        write(root, "x/y/z.txt", "same");
        write(root, "top", "same too");
    }
    assert_eq!(hash(a.path()).sha256, hash(b.path()).sha256);
}

#[test]
fn stat_cache_reuses_digests_and_notices_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("p");
    let cache_file = dir.path().join("cache/stat");
    write(&root, "a.txt", "one");
    write(&root, "b.txt", "two");
    let first = hash_tree(&root, &Exclusions::default(), Some(&cache_file)).unwrap();
    assert!(cache_file.exists());
    let mut cache = StatCache::load(&cache_file);
    assert_eq!(cache.entries.len(), 2);
    // Pretend the cache is old, so nothing is racy, and poison one digest: a cache hit
    // must return the poisoned value, proving the file was not read again.
    cache.written_ns += 10 * RACY_WINDOW_NS;
    cache.entries.get_mut(b"a.txt".as_slice()).unwrap().2 = [7; 32];
    write_atomic(&cache_file, &cache.encode()).unwrap();
    let warm = hash_tree(&root, &Exclusions::default(), Some(&cache_file)).unwrap();
    assert_eq!(warm.entries[0].sha256, [7; 32]);
    // A change of content that also changes the size is seen.
    write(&root, "a.txt", "changed");
    let changed = hash_tree(&root, &Exclusions::default(), Some(&cache_file)).unwrap();
    assert_eq!(changed.sha256, hash(&root).sha256);
    assert_ne!(changed.sha256, first.sha256);
}

#[test]
fn racy_entries_are_rehashed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("p");
    let cache_file = dir.path().join("stat");
    write(&root, "a.txt", "one");
    hash_tree(&root, &Exclusions::default(), Some(&cache_file)).unwrap();
    let mut cache = StatCache::load(&cache_file);
    cache.entries.get_mut(b"a.txt".as_slice()).unwrap().2 = [7; 32];
    write_atomic(&cache_file, &cache.encode()).unwrap();
    let again = hash_tree(&root, &Exclusions::default(), Some(&cache_file)).unwrap();
    assert_eq!(
        again.entries[0].sha256,
        <[u8; 32]>::from(Sha256::digest(b"one")),
        "a file written just before the cache is not trusted"
    );
}

#[test]
fn corrupt_stat_cache_is_ignored() {
    assert!(StatCache::decode(b"garbage").is_none());
    let mut c = StatCache::default();
    c.entries.insert(
        b"p".to_vec(),
        (StatKey { size: 1, mtime_ns: 2, ctime_ns: 3, ino: 4, mode: 5 }, FileMode::Regular, [1; 32]),
    );
    let bytes = c.encode();
    assert!(StatCache::decode(&bytes[..bytes.len() - 1]).is_none());
    assert_eq!(StatCache::decode(&bytes).unwrap().entries.len(), 1);
}
