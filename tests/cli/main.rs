//! Integration tests of the `lockstep` command line: one binary, one module per area.

mod support;

mod archive_safety;
mod artifact_inputs;
mod bad_input;
mod diff;
mod docker;
mod embedded_tracking;
mod env_predictable;
mod environments;
mod examples;
mod explain;
mod git_sources;
mod hostile_records;
mod init;
mod interpreters;
mod kept_outputs;
mod lifecycle;
mod local_runs;
mod mlflow_parity;
mod network;
mod outputs;
mod pack_verify;
mod param_order;
mod provenance;
mod races;
mod ray_backend;
mod ray_client;
mod runs_table;
mod signals;
mod slurm;
mod store;
mod subdir_links;
mod sweep;
mod sync_logged;
mod terminal;
mod tracking;
mod ui;
mod ui_browser;
mod verify_logged;
mod yaml11;

/// Every test file in tests/cli/ (and in each module directory) is declared by its parent, so
/// that none is silently left out of the binary.
#[test]
fn every_test_file_is_declared() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli");
    let mut undeclared = Vec::new();
    check_declared(&root, &root.join("main.rs"), &mut undeclared);
    assert!(undeclared.is_empty(), "files not declared with `mod`: {undeclared:?}");
}

/// Compares the modules in `dir` (files `*.rs`, directories with a `mod.rs`) with the `mod`
/// lines of `parent`, and recurses into module directories.
fn check_declared(dir: &std::path::Path, parent: &std::path::Path, undeclared: &mut Vec<String>) {
    let source = std::fs::read_to_string(parent).unwrap();
    let declared: std::collections::BTreeSet<&str> = source
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("pub ").strip_prefix("mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .collect();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let module = if path.is_dir() && path.join("mod.rs").is_file() {
            check_declared(&path, &path.join("mod.rs"), undeclared);
            name
        } else if let Some(stem) = name.strip_suffix(".rs") {
            stem.to_string()
        } else {
            continue;
        };
        if path != parent && module != "mod" && !declared.contains(module.as_str()) {
            undeclared.push(path.display().to_string());
        }
    }
}
