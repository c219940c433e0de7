//! `lockstep runs` for a person: project, run name and experiment columns, the labelled source
//! hash, varying parameters first, the filters, the fit to the terminal's width, and
//! verification runs marked.

use crate::support::*;

const NAMED: &str = "name: demo\nentry_points:\n  main:\n    parameters:\n      rate: float\n      data: {type: string, default: /datasets/a-long-directory-name/with/the/training-data.csv}\n      epochs: {type: float, default: 10}\n    command: 'echo {rate} > out.txt'\n    outputs: [out.txt]\n  fails:\n    command: 'exit 3'\n";
const UNNAMED: &str = "entry_points:\n  main:\n    command: 'true'\n";

/// Two runs of `demo` (rate 0.1 then 0.2, named and in an experiment), one failed run of it,
/// and one run of the unnamed project in `other`.
fn four_runs() -> TestContext {
    let ctx = TestContext::new().file("p/MLproject", NAMED).file("other/MLproject", UNNAMED);
    ctx.run(["run", "p", "-P", "rate=0.1", "--run-name", "first", "--experiment-name", "exp1"]).success();
    ctx.run(["run", "p", "-P", "rate=0.2", "--isolated"]).success();
    ctx.run(["run", "p", "-e", "fails"]).status(3);
    ctx.run(["run", "other"]).success();
    ctx
}

/// The rows of a table, without its header.
fn rows(table: &str) -> Vec<&str> {
    table.lines().skip(1).collect()
}

#[test]
fn runs_name_the_project_the_run_and_the_experiment_and_label_the_hash() {
    let ctx = four_runs();
    let table = ctx.run(["runs"]).success().stdout_text();
    let header = table.lines().next().unwrap();
    for column in ["RUN", "START", "STATUS", "PROJECT", "NAME", "EXPERIMENT", "ENTRY", "SOURCE", "PARAMETERS"] {
        assert!(header.contains(column), "{column} in {header}");
    }
    let rows = rows(&table);
    assert_eq!(rows.len(), 4, "{table}");
    assert!(rows[0].contains(" other ") && rows[0].contains("local tree "), "{table}");
    assert!(rows[3].contains(" demo ") && rows[3].contains(" first ") && rows[3].contains(" exp1 "), "{table}");
    assert!(rows[1].contains("FAILED") && rows[1].contains(" fails "), "{table}");
}

#[test]
fn runs_filter_by_project_entry_point_status_and_count() {
    let ctx = four_runs();
    let count = |args: &[&str]| rows(&ctx.run(["runs"]).args(args).success().stdout_text()).len();
    assert_eq!(count(&["--project", "demo"]), 3);
    assert_eq!(count(&["--project", "other"]), 1, "named after its directory");
    assert_eq!(count(&["--project", "demo", "-e", "main"]), 2);
    assert_eq!(count(&["--status", "failed"]), 1);
    assert_eq!(count(&["-n", "2"]), 2);
    let newest = ctx.run(["runs", "--limit", "1", "--json"]).success().json();
    assert_eq!(newest.as_array().unwrap().len(), 1);
    assert_eq!(newest[0]["project_name"], serde_json::Value::Null, "the unnamed project, newest");
    ctx.run(["runs", "--project", "nope"]).success().stdout("");
    ctx.run(["runs", "-n", "many"]).status(2).stderr_has("invalid value 'many'");
}

#[test]
fn runs_fit_80_columns_keeping_the_parameters_that_vary() {
    let ctx = four_runs();
    let table = ctx.run(["runs", "--project", "demo", "-e", "main"]).env("COLUMNS", "80").success().stdout_text();
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "{} columns: {line}\n{table}", line.chars().count());
    }
    // The one that varies comes first, although it sorts last, and is never cut.
    let rows = rows(&table);
    assert!(rows[0].ends_with("  rate=0.2 ..."), "{table}");
    assert!(rows[1].ends_with("  rate=0.1 ..."), "{table}");
    let wide =
        ctx.run(["runs", "--project", "demo", "-e", "main", "--wide"]).env("COLUMNS", "80").success().stdout_text();
    let first = wide.lines().nth(1).unwrap();
    assert!(first.chars().count() > 80, "{wide}");
    assert!(
        first.ends_with("  rate=0.2 data=/datasets/a-long-directory-name/with/the/training-data.csv epochs=10"),
        "{wide}"
    );
    assert!(first.contains(" exp1 ") || wide.lines().nth(2).unwrap().contains(" exp1 "), "{wide}");
}

#[test]
fn verification_runs_are_marked_with_the_run_they_verify() {
    let ctx = TestContext::new()
        .file("other/MLproject", "entry_points:\n  main:\n    command: 'echo 1 > out.txt'\n    outputs: [out.txt]\n");
    ctx.run(["run", "other"]).success();
    let original = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    ctx.run(["verify", &original]).success();
    let table = ctx.run(["runs"]).success().stdout_text();
    assert!(table.lines().next().unwrap().contains("VERIFIES"), "{table}");
    let rows = rows(&table);
    assert!(rows[0].contains(&format!("{} reproduced", &original[..12])), "{table}");
    assert!(!rows[1].contains("reproduced"), "{table}");
}
