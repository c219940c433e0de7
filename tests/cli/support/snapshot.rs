//! Filters for snapshots of whole CLI outputs: what differs between two runs of one test (the
//! temporary directory, run ids, times, durations, the host) becomes a placeholder, so that a
//! snapshot changes only when lockstep's output does.
//!
//! To accept changed outputs, run the tests with `INSTA_UPDATE=always` and review the diff of
//! `tests/cli/snapshots/` (see tests/cli/README.md).

use super::context::TestContext;

/// insta settings with the filters for this test's context: its run ids are numbered in the
/// order they started, `[RUN1]`, `[RUN2]`, ..., whole or cut short.
pub fn settings(ctx: &TestContext) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    let root = ctx.work.parent().unwrap().display().to_string();
    settings.add_filter(&regex_escape(&root), "[TEST]");
    for (n, record) in ctx.records().iter().enumerate() {
        let id = record["run_id"].as_str().unwrap();
        settings.add_filter(&format!("{}[0-9a-f]*", &id[..8]), format!("[RUN{}]", n + 1));
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        settings.add_filter(&format!(r"\b{}\b", regex_escape(host.trim())), "[HOST]");
    }
    settings.add_filter(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d| UTC)?", "[TIME]");
    // As lockstep prints them: 950ms, 1.2s, 2m05s, and "2 s" in messages. The spaces before
    // go too, since a table right-aligns durations, which pads them by their length.
    settings.add_filter(r" +(\d+m\d\ds|\d+(\.\d+)? ?(ms|s))\b", " [DURATION]");
    settings
}

/// `text` as a regular expression that matches only itself.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
