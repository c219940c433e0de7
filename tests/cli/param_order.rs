//! The order of `-P` parameters: undeclared ones end the command in the order given, and
//! `verify` and `run --reuse` keep it.

use std::fs;

use serde_json::Value;

use crate::support::*;

/// An entry point that writes its arguments, one a line, into a file named by the first.
const ARGS: &str = "name: args\nentry_points:\n  main:\n    command: 'sh args.sh'\n";

fn args_project(ctx: &TestContext) {
    ctx.project("p", &[("MLproject", ARGS), ("args.sh", "printf '%s\\n' \"$@\" > \"args$1.txt\"\n")]);
}

fn verify(ctx: &TestContext, id: &str, code: i32) -> std::process::Output {
    ctx.lockstep().args(["verify", id, "--json"]).assert().code(code).get_output().clone()
}

#[test]
fn verify_reruns_undeclared_parameters_in_the_order_given() {
    let ctx = TestContext::new();
    args_project(&ctx);
    ctx.lockstep().args(["run", "p", "-P", "note=a", "-P", "lr=0.1"]).assert().success();
    assert_eq!(fs::read_to_string(ctx.work.join("p/args--note.txt")).unwrap(), "--note\na\n--lr\n0.1\n");
    let original = ctx.only_record();
    assert_eq!(original["command"], "sh args.sh --note a --lr 0.1");
    assert_eq!(original["parameter_order"], serde_json::json!(["note", "lr"]));
    let report = json(&verify(&ctx, original["run_id"].as_str().unwrap(), 0));
    assert_eq!(report["result"], "reproduced", "{report:#}");
    let rerun = ctx.records().into_iter().find(|r| r["verifies"] == original["run_id"]).unwrap();
    assert_eq!(rerun["command"], original["command"]);
}

#[test]
fn verify_refuses_a_record_whose_command_it_cannot_render_again() {
    let ctx = TestContext::new();
    args_project(&ctx);
    ctx.lockstep().args(["run", "p", "-P", "note=a", "-P", "lr=0.1"]).assert().success();
    // A record made before the order was kept: the names' order is all there is.
    let dir = ctx.run_dirs().pop().unwrap();
    let mut record: Value = serde_json::from_slice(&fs::read(dir.join("record.json")).unwrap()).unwrap();
    record.as_object_mut().unwrap().remove("parameter_order");
    fs::write(dir.join("record.json"), serde_json::to_vec(&record).unwrap()).unwrap();
    let out = verify(&ctx, record["run_id"].as_str().unwrap(), 2);
    assert!(
        stderr(&out)
            .contains("would run `sh args.sh --lr 0.1 --note a`, not the recorded `sh args.sh --note a --lr 0.1`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ctx.records().len(), 1, "no verification run is left behind");
}

#[test]
fn verify_accepts_a_default_path_resolved_in_the_rebuilt_project() {
    let ctx = TestContext::new();
    let mlproject = "entry_points:\n  main:\n    parameters:\n      data: {type: path, default: in.txt}\n    command: 'cat {data} > out.txt'\n";
    ctx.project("p", &[("MLproject", mlproject), ("in.txt", "x\n")]);
    ctx.lockstep().args(["run", "p"]).assert().success();
    let original = ctx.only_record();
    let report = json(&verify(&ctx, original["run_id"].as_str().unwrap(), 0));
    assert_eq!(report["result"], "reproduced", "{report:#}");
}

#[test]
fn reuse_needs_the_same_order_of_undeclared_parameters() {
    let ctx = TestContext::new();
    args_project(&ctx);
    ctx.lockstep().args(["run", "p", "-P", "note=a", "-P", "lr=0.1"]).assert().success();
    let out = ctx.lockstep().args(["run", "p", "--reuse", "-P", "lr=0.1", "-P", "note=a"]).assert().success();
    assert!(!stderr(out.get_output()).contains("reusing run"), "another command is another run");
    assert_eq!(ctx.records().len(), 2);
    let out = ctx.lockstep().args(["run", "p", "--reuse", "-P", "lr=0.1", "-P", "note=a"]).assert().success();
    assert!(stderr(out.get_output()).contains("reusing run"), "{}", stderr(out.get_output()));
}
