//! `lockstep diff`: two runs side by side (snapshots of the text), the same as JSON, and
//! the errors of bad arguments.

use std::fs;

use crate::support::*;

const PROJECT: &str = "name: diffed\nentry_points:\n  main:\n    parameters:\n      alpha: float\n      name: {type: string, default: world}\n    command: 'echo {alpha} > out.txt && echo same > same.txt'\n";

/// Two runs of project `p`: another alpha, a modified and an added source file.
fn two_runs() -> (TestContext, String, String) {
    let ctx = TestContext::new().file("p/MLproject", PROJECT).file("p/data.csv", "1,2\n");
    ctx.run(["run", "p", "-P", "alpha=0.5", "--run-name", "first"]).success();
    fs::write(ctx.work.join("p/data.csv"), "3,4\n").unwrap();
    fs::write(ctx.work.join("p/new.py"), "print()\n").unwrap();
    ctx.run(["run", "p", "-P", "alpha=0.7"]).success();
    let ids: Vec<String> = ctx.records().iter().map(|r| r["run_id"].as_str().unwrap().to_string()).collect();
    (ctx, ids[0].clone(), ids[1].clone())
}

#[test]
fn two_runs_side_by_side() {
    let (ctx, a, b) = two_runs();
    let text = ctx.run(["diff", &a, &b]).success().transcript();
    snapshot::settings(&ctx).bind(|| insta::assert_snapshot!("diff", text));
}

#[test]
fn json_holds_the_same_comparison() {
    let (ctx, a, b) = two_runs();
    let d = ctx.run(["diff", &a, &b, "--json"]).success().json();
    assert_eq!((d["a"]["run_id"].as_str(), d["b"]["run_id"].as_str()), (Some(a.as_str()), Some(b.as_str())));
    assert_eq!(d["a"]["run_name"], "first");
    let alpha = &d["parameters"][0];
    assert_eq!(
        (&alpha["key"], &alpha["a"], &alpha["b"], &alpha["same"]),
        (&"alpha".into(), &"0.5".into(), &"0.7".into(), &false.into())
    );
    assert_eq!(d["parameters"][1]["same"], true, "name=world in both");
    assert_eq!(d["source"]["same"], false);
    let files: Vec<(&str, &str)> = d["source"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["change"].as_str().unwrap()))
        .collect();
    // out.txt and same.txt, written by the first run into the project, are not sources.
    assert_eq!(files, [("data.csv", "changed"), ("new.py", "added")]);
    assert_eq!(d["source"]["files"][0]["a_sha256"], sha256_hex(b"1,2\n"));
    assert_eq!(d["environment"]["same"], true);
    assert_eq!(d["outputs"]["same"], 1);
    let out = &d["outputs"]["changes"][0];
    assert_eq!((&out["path"], &out["change"]), (&"out.txt".into(), &"changed".into()));
    assert_eq!((&out["a_sha256"], &out["b_sha256"]), (&sha256_hex(b"0.5\n").into(), &sha256_hex(b"0.7\n").into()));
    // A run compared with itself in the other order: every change turns around.
    let back = ctx.run(["diff", &b, &a, "--json"]).success().json();
    assert_eq!(back["source"]["files"][1]["change"], "removed");
}

#[test]
fn record_files_can_stand_for_runs() {
    let (ctx, a, b) = two_runs();
    let file = ctx.store().join("runs").join(&a).join("record.json");
    fs::copy(&file, ctx.work.join("a.json")).unwrap();
    let d = ctx.run(["diff", "a.json", &b, "--json"]).success().json();
    assert_eq!(d["a"]["run_id"], a.as_str());
    assert!(d["source"]["files"].is_null(), "a record file without its run directory has no tree listing");
    let text = ctx.run(["diff", "a.json", &b]).success().stdout_text();
    assert!(text.contains("not listed in both runs' directories"), "{text}");
}

#[test]
fn bad_arguments_are_the_users_errors() {
    let (ctx, a, _) = two_runs();
    let out = ctx.run(["diff", &a, &a[..10]]).status(2).stdout("");
    let text = out.transcript();
    snapshot::settings(&ctx).bind(|| insta::assert_snapshot!("diff_same_run", text));
    ctx.run(["diff", &a, "0123abcd"])
        .status(2)
        .stdout("")
        .stderr_has("error: no run '0123abcd' in the store")
        .hint("`lockstep runs` lists the runs");
    ctx.run(["diff", &a]).status(2).stderr_has("<B>");
    assert_eq!(ctx.records().len(), 2, "diff records nothing");
}

/// Give a run's record what a script would have logged.
fn log_into(ctx: &TestContext, run_id: &str, logged: serde_json::Value) {
    let path = ctx.store().join("runs").join(run_id).join("record.json");
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    record["logged"] = logged;
    fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
}

#[test]
fn logged_metrics_have_deltas() {
    let (ctx, a, b) = two_runs();
    let summary =
        |last: serde_json::Value| serde_json::json!({"last": last, "step": 9, "min": 0.1, "max": 0.9, "count": 10});
    let artifact = |sha: &str| serde_json::json!({"path": "plots/loss.png", "size": 3, "sha256": sha.repeat(64)});
    log_into(
        &ctx,
        &a,
        serde_json::json!({
            "params": {"lr": "0.1", "layers": "2"},
            "metrics": {"rmse": summary(0.5.into()), "r2": summary(0.25.into()), "gone": summary(1.0.into())},
            "artifacts": [artifact("a")],
        }),
    );
    log_into(
        &ctx,
        &b,
        serde_json::json!({
            "params": {"lr": "0.01", "layers": "2"},
            "metrics": {"rmse": summary(0.375.into()), "r2": summary(0.3.into()), "new": summary("NaN".into())},
            "artifacts": [artifact("b")],
        }),
    );
    let text = ctx.run(["diff", &a, &b]).success().transcript();
    snapshot::settings(&ctx).bind(|| insta::assert_snapshot!("diff_logged", text));
    let d = ctx.run(["diff", &a, &b, "--json"]).success().json();
    let rmse = d["metrics"].as_array().unwrap().iter().find(|m| m["key"] == "rmse").unwrap();
    assert_eq!(
        (&rmse["a"]["last"], &rmse["b"]["last"], &rmse["delta"]),
        (&0.5.into(), &0.375.into(), &(-0.125).into())
    );
    let new = d["metrics"].as_array().unwrap().iter().find(|m| m["key"] == "new").unwrap();
    assert_eq!(
        (&new["a"], &new["b"]["last"], &new["delta"]),
        (&serde_json::Value::Null, &"NaN".into(), &serde_json::Value::Null)
    );
    assert_eq!(d["artifacts"]["changes"][0]["change"], "changed");
}
