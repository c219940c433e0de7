//! The bundled examples run as the README says.

use std::path::Path;

use crate::support::*;

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name).display().to_string()
}

#[test]
fn the_quickstart_trains_and_records_its_metrics() {
    let ctx = TestContext::new();
    ctx.lockstep()
        .args(["run", &example("quickstart"), "--isolated", "-P", "alpha=0.5"])
        .assert()
        .success()
        .stdout(predicates::str::starts_with("trained on 200 rows: weight=3.0057"));
    let r = ctx.only_record();
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(r["outputs"][0]["path"], "metrics.json");
    let metrics_file = Path::new(r["outputs_dir"].as_str().unwrap()).join("metrics.json");
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(metrics_file).unwrap()).unwrap();
    assert_eq!(metrics["rows"], 200);
    assert_eq!(metrics["alpha"], 0.5);
}
