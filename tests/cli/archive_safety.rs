//! Hostile and damaged archives: nothing is written outside the target, every refusal is
//! exit 2 with a clear message, and `pack` writes only archives that extract.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::support::*;

const FILE: tar::EntryType = tar::EntryType::Regular;
const DIR: tar::EntryType = tar::EntryType::Directory;
const LINK: tar::EntryType = tar::EntryType::Symlink;
const HARD: tar::EntryType = tar::EntryType::Link;

/// A tar of raw entries `(name, kind, data, link target)`, names written as they are.
fn tar_bytes(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(if *kind == DIR { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        if name.len() <= 100 {
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_cksum();
            builder.append(&h, *data).unwrap();
        } else {
            builder.append_data(&mut h, name, *data).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn write_tar_gz(ctx: &TestContext, name: &str, entries: &[(&str, tar::EntryType, &[u8], &str)]) -> PathBuf {
    let path = ctx.work.join(name);
    fs::write(&path, gzip(&tar_bytes(entries), flate2::Compression::fast())).unwrap();
    path
}

enum Zipped<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Link(&'a str, &'a str),
}

fn zip_bytes(entries: &[Zipped], method: zip::CompressionMethod) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for entry in entries {
        match entry {
            Zipped::Dir(name) => zip.add_directory(*name, opts).unwrap(),
            Zipped::File(name, data) => {
                zip.start_file(*name, opts).unwrap();
                zip.write_all(data).unwrap();
            }
            Zipped::Link(name, target) => zip.add_symlink(*name, *target, opts).unwrap(),
        }
    }
    zip.finish().unwrap().into_inner()
}

/// The test's whole temporary root (home, cache, store and work directory).
fn base(ctx: &TestContext) -> PathBuf {
    ctx.work.parent().unwrap().to_path_buf()
}

/// No file named `name` anywhere under the test's root, nor beside it.
fn assert_nowhere(ctx: &TestContext, name: &str) {
    fn walk(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_name() == name {
                found.push(path.clone());
            }
            if entry.file_type().unwrap().is_dir() {
                walk(&path, name, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(&base(ctx), name, &mut found);
    if base(ctx).parent().unwrap().join(name).exists() {
        found.push(base(ctx).parent().unwrap().join(name));
    }
    assert!(found.is_empty(), "{name} was written: {found:?}");
}

/// `lockstep unpack ARCHIVE out` fails with exit 2, saying `message`, and leaves no `out`.
fn unpack_refused(ctx: &TestContext, archive: &str, message: &str) -> String {
    let out = ctx.run(["unpack", archive, "out"]).status(2).into_output();
    let err = stderr(&out);
    assert!(err.contains(message), "{err}");
    assert!(!ctx.work.join("out").exists(), "nothing is left half-extracted");
    err
}

/// `lockstep run ARCHIVE` fails with exit 2, saying `message`, before anything runs.
fn run_refused(ctx: &TestContext, archive: &str, message: &str) {
    let out = ctx.run(["run", archive]).status(2).into_output();
    assert!(stderr(&out).contains(message), "{}", stderr(&out));
    ctx.assert_no_runs();
}

const MLPROJECT: &[u8] = b"name: evil\nentry_points:\n  main:\n    command: 'touch ../RAN.txt; cat y/EVIL.txt'\n";

/// The chain of the issue: `x/l -> ..` is the root, so `y -> x/l/..` is the root's parent.
fn chain_tar() -> Vec<(&'static str, tar::EntryType, &'static [u8], &'static str)> {
    vec![
        ("MLproject", FILE, MLPROJECT, ""),
        ("x/", DIR, b"", ""),
        ("x/l", LINK, b"", ".."),
        ("y", LINK, b"", "x/l/.."),
        ("y/", DIR, b"", ""),
        ("y/EVIL.txt", FILE, b"gotcha", ""),
    ]
}

#[test]
fn a_chain_of_links_in_a_tar_gz_writes_nothing_outside() {
    let ctx = TestContext::new();
    write_tar_gz(&ctx, "chain.tar.gz", &chain_tar());
    unpack_refused(&ctx, "chain.tar.gz", "entry 'y/' passes through a symbolic link");
    run_refused(&ctx, "chain.tar.gz", "passes through a symbolic link");
    assert_nowhere(&ctx, "EVIL.txt");
    assert_nowhere(&ctx, "RAN.txt");

    // Without writes through it, the link itself is refused: a run would follow it.
    write_tar_gz(&ctx, "link.tar.gz", &chain_tar()[..4]);
    unpack_refused(&ctx, "link.tar.gz", "entry 'y' is a link pointing outside the archive");
    run_refused(&ctx, "link.tar.gz", "entry 'y' is a link pointing outside the archive");
    assert_nowhere(&ctx, "RAN.txt");
}

#[test]
fn deeper_chains_of_links_reach_no_ancestor() {
    let ctx = TestContext::new();
    // `a/b/c/l` is the root; `up` climbs two more levels through it; `far` goes on from `up`.
    let entries: Vec<(&str, tar::EntryType, &[u8], &str)> = vec![
        ("MLproject", FILE, MLPROJECT, ""),
        ("a/b/c/l", LINK, b"", "../../.."),
        ("m", LINK, b"", "a/b/c/l"),
        ("up", LINK, b"", "m/a/b/c/l/../.."),
        ("far", LINK, b"", "up/work/out"),
        ("far/EVIL.txt", FILE, b"gotcha", ""),
    ];
    write_tar_gz(&ctx, "deep.tar.gz", &entries);
    unpack_refused(&ctx, "deep.tar.gz", "passes through a symbolic link");
    write_tar_gz(&ctx, "deep-links.tar.gz", &entries[..5]);
    unpack_refused(&ctx, "deep-links.tar.gz", "entry 'up' is a link pointing outside the archive");
    run_refused(&ctx, "deep-links.tar.gz", "is a link pointing outside the archive");
    assert_nowhere(&ctx, "EVIL.txt");
    assert_nowhere(&ctx, "RAN.txt");
}

#[test]
fn a_hard_link_through_a_chain_copies_nothing_from_outside() {
    let ctx = TestContext::new();
    fs::write(ctx.work.join("secret.txt"), "SECRET").unwrap();
    // As in the issue: the `y/` entry made `y` look like a directory of the archive.
    let mut entries = chain_tar()[..5].to_vec();
    entries.push(("h", HARD, b"", "y/secret.txt"));
    write_tar_gz(&ctx, "hard.tar.gz", &entries);
    unpack_refused(&ctx, "hard.tar.gz", "entry 'y/' passes through a symbolic link");
    run_refused(&ctx, "hard.tar.gz", "passes through a symbolic link");
    entries.remove(4);
    write_tar_gz(&ctx, "hard.tar.gz", &entries);
    unpack_refused(&ctx, "hard.tar.gz", "entry 'h' is a hard link to a file outside the archive");
    run_refused(&ctx, "hard.tar.gz", "is a hard link to a file outside the archive");
}

#[test]
fn a_chain_of_links_in_a_zip_writes_nothing_outside() {
    let ctx = TestContext::new();
    let chain = [
        Zipped::File("MLproject", MLPROJECT),
        Zipped::Dir("x/"),
        Zipped::Link("x/l", ".."),
        Zipped::Link("y", "x/l/.."),
        Zipped::Dir("y/"),
        Zipped::File("y/EVIL.txt", b"gotcha"),
    ];
    fs::write(ctx.work.join("chain.zip"), zip_bytes(&chain, zip::CompressionMethod::Deflated)).unwrap();
    unpack_refused(&ctx, "chain.zip", "passes through a symbolic link");
    run_refused(&ctx, "chain.zip", "passes through a symbolic link");
    fs::write(ctx.work.join("link.zip"), zip_bytes(&chain[..4], zip::CompressionMethod::Deflated)).unwrap();
    unpack_refused(&ctx, "link.zip", "entry 'y' is a link pointing outside the archive");
    run_refused(&ctx, "link.zip", "entry 'y' is a link pointing outside the archive");
    assert_nowhere(&ctx, "EVIL.txt");
    assert_nowhere(&ctx, "RAN.txt");
}

#[test]
fn links_between_extracted_directories_still_work() {
    let ctx = TestContext::new();
    let entries: Vec<(&str, tar::EntryType, &[u8], &str)> = vec![
        ("MLproject", FILE, b"entry_points: {main: {command: 'cat z/in.txt'}}\n", ""),
        ("data/in.txt", FILE, b"input\n", ""),
        ("x/l", LINK, b"", ".."),
        ("z", LINK, b"", "x/l/data"),
        ("dangling", LINK, b"", "not/yet"),
    ];
    write_tar_gz(&ctx, "ok.tar.gz", &entries);
    ctx.run(["unpack", "ok.tar.gz", "out"]).success();
    assert_eq!(fs::read_to_string(ctx.work.join("out/z/in.txt")).unwrap(), "input\n");
    ctx.run(["run", "ok.tar.gz"]).success();
}

const PAYLOAD: &[u8] = b"PAYLOAD-0123456789-PAYLOAD";

fn flip(bytes: &mut [u8], needle: &[u8]) {
    let at = bytes.windows(needle.len()).position(|w| w == needle).expect("the payload is stored as it is");
    bytes[at + 8] ^= 0x01;
}

#[test]
fn a_flipped_byte_in_a_tar_gz_is_refused_before_anything_runs() {
    let ctx = TestContext::new();
    let project = tar_bytes(&[("MLproject", FILE, MLPROJECT, ""), ("data.txt", FILE, PAYLOAD, "")]);
    // Stored deflate blocks: the flipped byte changes the content, and only the CRC tells.
    let mut gz = gzip(&project, flate2::Compression::none());
    flip(&mut gz, PAYLOAD);
    fs::write(ctx.work.join("flipped.tar.gz"), &gz).unwrap();
    unpack_refused(&ctx, "flipped.tar.gz", "is not a valid tar.gz archive");
    run_refused(&ctx, "flipped.tar.gz", "is not a valid tar.gz archive");
    assert_nowhere(&ctx, "RAN.txt");

    // A damaged trailer, and a stream cut short.
    let mut gz = gzip(&project, flate2::Compression::default());
    let n = gz.len();
    gz[n - 6] ^= 0x01;
    fs::write(ctx.work.join("trailer.tar.gz"), &gz).unwrap();
    unpack_refused(&ctx, "trailer.tar.gz", "is not a valid tar.gz archive");
    fs::write(ctx.work.join("cut.tar.gz"), &gz[..n - 4]).unwrap();
    unpack_refused(&ctx, "cut.tar.gz", "is not a valid tar.gz archive");
}

#[test]
fn a_zip_with_a_crc_mismatch_is_exit_2() {
    let ctx = TestContext::new();
    let mut zip = zip_bytes(
        &[Zipped::File("MLproject", MLPROJECT), Zipped::File("data.txt", PAYLOAD)],
        zip::CompressionMethod::Stored,
    );
    flip(&mut zip, PAYLOAD);
    fs::write(ctx.work.join("crc.zip"), &zip).unwrap();
    unpack_refused(&ctx, "crc.zip", "is not a valid zip archive: entry 'data.txt': ");
    run_refused(&ctx, "crc.zip", "is not a valid zip archive");
    assert_nowhere(&ctx, "RAN.txt");
}

#[test]
fn a_zip_larger_than_declared_is_exit_2() {
    let ctx = TestContext::new();
    let data = vec![b'a'; 10_000];
    let mut zip = zip_bytes(&[Zipped::File("big.txt", &data)], zip::CompressionMethod::Deflated);
    // Declare 100 bytes, in the local header (offset 22) and the central directory (24).
    let central = zip.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    for at in [22, central + 24] {
        zip[at..at + 4].copy_from_slice(&100u32.to_le_bytes());
    }
    fs::write(ctx.work.join("big.zip"), &zip).unwrap();
    unpack_refused(&ctx, "big.zip", "is not a valid zip archive");
}

#[test]
fn a_truncated_member_is_exit_2() {
    let ctx = TestContext::new();
    let data = vec![b'a'; 10_000];
    let tar = tar_bytes(&[("big.txt", FILE, &data, "")]);
    fs::write(ctx.work.join("cut.tar.gz"), gzip(&tar[..2000], flate2::Compression::fast())).unwrap();
    unpack_refused(
        &ctx,
        "cut.tar.gz",
        "is not a valid tar.gz archive: entry 'big.txt' is truncated: 1488 of 10000 bytes",
    );
}

#[test]
fn a_file_and_a_directory_of_one_name_are_exit_2() {
    let ctx = TestContext::new();
    write_tar_gz(&ctx, "a.tar.gz", &[("a", FILE, b"x", ""), ("a/b", FILE, b"y", "")]);
    unpack_refused(&ctx, "a.tar.gz", "entry 'a/b' needs a directory where the archive has a file");
    write_tar_gz(&ctx, "d.tar.gz", &[("d/", DIR, b"", ""), ("d", FILE, b"x", "")]);
    unpack_refused(&ctx, "d.tar.gz", "entry 'd' is a file where the archive has a directory");
    let zip = zip_bytes(&[Zipped::Dir("d/"), Zipped::File("d", b"x")], zip::CompressionMethod::Stored);
    fs::write(ctx.work.join("d.zip"), zip).unwrap();
    unpack_refused(&ctx, "d.zip", "entry 'd' is a file where the archive has a directory");
}

#[test]
fn names_over_255_bytes_are_exit_2_and_shown_cut() {
    let ctx = TestContext::new();
    let long = format!("dir/{}", "n".repeat(300));
    write_tar_gz(&ctx, "long.tar.gz", &[(&long, FILE, b"x", "")]);
    let err = unpack_refused(&ctx, "long.tar.gz", "has a name longer than 255 bytes");
    assert!(!err.contains(&"n".repeat(150)) && err.contains("(304 bytes)"), "{err}");
    let zip = zip_bytes(&[Zipped::File(&long, b"x")], zip::CompressionMethod::Stored);
    fs::write(ctx.work.join("long.zip"), zip).unwrap();
    unpack_refused(&ctx, "long.zip", "has a name longer than 255 bytes");
}

#[test]
fn pack_refuses_links_that_unpack_would_refuse() {
    let ctx = TestContext::new();
    let project = ctx.project("p", &[("MLproject", "entry_points: {main: {command: 'true'}}\n"), ("x/f", "f")]);
    std::os::unix::fs::symlink("/etc/hostname", project.join("abs")).unwrap();
    let out = ctx.run(["pack", "p", "-o", "p.tar.gz"]).status(2).into_output();
    let err = stderr(&out);
    assert!(err.contains("cannot pack 'abs': it is a link to an absolute path (/etc/hostname)"), "{err}");
    assert!(err.contains("hint: make the link relative"), "{err}");
    assert!(!ctx.work.join("p.tar.gz").exists());

    fs::remove_file(project.join("abs")).unwrap();
    std::os::unix::fs::symlink("..", project.join("x/l")).unwrap();
    std::os::unix::fs::symlink("x/l/..", project.join("y")).unwrap();
    let out = ctx.run(["pack", "p", "-o", "p.tar.gz"]).status(2).into_output();
    assert!(stderr(&out).contains("cannot pack 'y': it is a link pointing outside the project (x/l/..)"));
    assert!(!ctx.work.join("p.tar.gz").exists());

    // Left out by .lockstepignore, the project packs, and the archive runs.
    fs::write(project.join(".lockstepignore"), "y\n").unwrap();
    ctx.run(["pack", "p", "-o", "p.tar.gz"]).success();
    ctx.run(["run", "p.tar.gz"]).success();
}
