//! The man pages in `docs/man/` are rendered from the clap definitions (clap_mangen, a
//! dev-dependency, so that the shipped binary does not carry it): this test fails when one is
//! stale, and `LOCKSTEP_UPDATE_MAN=1` rewrites them.

use std::collections::BTreeMap;
use std::path::Path;

use clap::CommandFactory;

use super::args::Cli;

/// Every page, by file name: `lockstep.1`, then `lockstep-COMMAND[-SUBCOMMAND].1`.
fn pages() -> BTreeMap<String, Vec<u8>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut pages = BTreeMap::new();
    add(&mut pages, cmd, "lockstep");
    pages
}

fn add(pages: &mut BTreeMap<String, Vec<u8>>, cmd: clap::Command, name: &str) {
    // clap's own `help` subcommands repeat `--help`: no page of their own.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        add(pages, sub.clone(), &format!("{name}-{}", sub.get_name()));
    }
    let mut page = Vec::new();
    // clap takes only static names without its `string` feature, which the binary does not
    // need: a test's few names may live until it ends.
    let name: &'static str = Box::leak(name.to_string().into_boxed_str());
    clap_mangen::Man::new(cmd.name(name)).render(&mut page).expect("rendered in memory");
    pages.insert(format!("{name}.1"), page);
}

#[test]
fn the_man_pages_in_docs_are_those_of_the_clap_definitions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let pages = pages();
    if std::env::var_os("LOCKSTEP_UPDATE_MAN").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, page) in &pages {
            std::fs::write(dir.join(name), page).unwrap();
        }
    }
    let on_disk: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    let stale: Vec<&String> = pages.keys().chain(on_disk.keys()).filter(|n| pages.get(*n) != on_disk.get(*n)).collect();
    assert!(
        stale.is_empty(),
        "stale man pages in docs/man: {stale:?}; LOCKSTEP_UPDATE_MAN=1 cargo test --lib man_pages rewrites them"
    );
}
