//! `lockstep ui` in a real headless Chromium (WebDriver): a store filled by real runs (one
//! whose script logs curves with the mlflow client, a failed one, a verified one, a sweep
//! and one in progress), each page loaded and checked as a person sees it: rows, sorting,
//! selection, charts' lines and axes, the diff, a live log. Screenshots go to the test's
//! temporary directory.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::support::browser::Browser;
use crate::support::ui::UiServer;
use crate::support::*;

/// A script that logs two curves and an artifact with the real mlflow client.
const MLFLOW_SCRIPT: &str = r#"
import mlflow
with mlflow.start_run():
    mlflow.log_param("lr", "0.1")
    for step in range(30):
        mlflow.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 30.0}, step=step)
    mlflow.log_text("a report\n", "report.txt")
"#;

fn ids(ctx: &TestContext) -> Vec<String> {
    ctx.records().iter().map(|r| r["run_id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_pages_show_runs_charts_diffs_sweeps_and_live_logs_in_a_browser() {
    let Some(browser) = Browser::start() else { return };
    let ctx = crate::ui::context();
    ctx.write("p/mlflow_train.py", MLFLOW_SCRIPT);
    let manifest = format!("{}  client:\n    command: \"python mlflow_train.py\"\n", crate::ui::MANIFEST);
    ctx.write("p/MLproject", &manifest);
    let shots = ctx.work.join("screenshots");
    fs::create_dir_all(&shots).unwrap();

    ctx.run(["run", "p", "-e", "client", "--isolated"]).env("PATH", path_with_mlflow()).success();
    let curves = ids(&ctx)[0].clone();
    ctx.run(["run", "p", "-e", "broken", "--isolated"]).output();
    ctx.run(["run", "p", "--isolated", "-P", "alpha=0.2"]).success();
    let verified = ids(&ctx)[2].clone();
    ctx.run(["verify", &verified]).success();
    let sweep = ctx.run(["sweep", "p", "-P", "alpha=0.1,0.4,0.8", "--json"]).success().json();
    let sweep_id = sweep["sweep"]["sweep_id"].as_str().unwrap().to_string();
    let gate = ctx.work.join("gate");
    let mut live = ctx
        .lockstep_process()
        .args(["run", "p", "--isolated", "-P", "steps=5", "-P", &format!("gate={}", gate.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || ctx.records().len() == 8), "the live run started");
    let live_id = ids(&ctx)[7].clone();

    let ui = UiServer::start(&ctx, &ctx.store());
    browser.open(&ui.url);
    assert_eq!(browser.url(), format!("{}/", ui.base), "the token moved into a cookie");
    assert_eq!(browser.count("table.runs tbody tr"), 8, "a row per run");
    assert_eq!(browser.texts("h1"), ["Runs"]);
    browser.screenshot(&shots, "runs");

    browser.click(r#"a.sort[data-key="status"]"#);
    let statuses = browser.texts("table.runs tbody .status");
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(statuses, sorted, "sorted by status");
    assert!(browser.url().contains("sort=status"), "{}", browser.url());
    browser.click(r#"a.sort[data-key="status"]"#);
    let mut reversed = sorted.clone();
    reversed.reverse();
    assert_eq!(browser.texts("table.runs tbody .status"), reversed, "a second click sorts the other way");

    browser.eval(
        "const s = document.querySelector('select[name=status]'); s.value = 'FAILED'; s.dispatchEvent(new Event('change'));",
        json!([]),
    );
    assert!(browser.wait_until(
        Duration::from_secs(10),
        "return location.search.includes('status=FAILED') && document.readyState === 'complete';"
    ));
    assert_eq!(browser.texts("table.runs tbody .status"), ["FAILED"], "filtered");

    browser.open(&format!("{}/?sweep={sweep_id}", ui.base));
    assert_eq!(browser.count("table.runs tbody tr"), 3, "the sweep's trials");
    browser.eval("for (const b of [...document.querySelectorAll('input.select')].slice(0, 2)) b.click();", json!([]));
    assert_eq!(browser.eval("return document.getElementById('compare').disabled;", json!([])), json!(false));
    browser.click("#compare");
    assert!(browser.wait_until(
        Duration::from_secs(10),
        "return location.pathname === '/compare' && document.readyState === 'complete';"
    ));
    assert!(browser.count("table.values tr.differs") >= 2, "alpha and the metrics differ");
    assert_eq!(browser.count(r#"figure.chart[data-metric="loss"] polyline.series"#), 2, "a curve per run");
    assert!(
        browser.count("section.diff pre.diff span.add") >= 1,
        "the outputs' text diff: {:?}",
        browser.texts("section.diff")
    );
    assert!(browser.texts("section.diff").join(" ").contains("result.txt"));
    browser.screenshot(&shots, "compare");

    browser.open(&format!("{}/run/{curves}", ui.base));
    assert_eq!(browser.count("figure.chart svg"), 2, "a chart per metric: {:?}", browser.texts("h2"));
    assert_eq!(browser.count(r#"figure.chart[data-metric="loss"] polyline.series"#), 1);
    let points = browser.eval(
        r#"return document.querySelector('figure.chart[data-metric="loss"] polyline').getAttribute('points').trim().split(' ').length;"#,
        json!([]),
    );
    assert_eq!(points, json!(30), "every point of a short curve");
    assert_eq!(browser.count("figure.chart line.axis.x"), 2);
    assert!(browser.count(r#"figure.chart[data-metric="loss"] text.tick.y"#) >= 3, "the y axis has ticks");
    assert!(browser.texts("section.artifacts").join(" ").contains("report.txt"));
    browser.screenshot(&shots, "run");
    browser.click("section.artifacts a");
    assert_eq!(browser.texts("pre.file"), ["a report\n"]);

    browser.open(&format!("{}/run/{verified}", ui.base));
    assert_eq!(browser.texts("section.verified-by .result"), ["reproduced"]);
    browser.open(&format!("{}/run/{}", ui.base, ids(&ctx)[1]));
    assert_eq!(browser.texts("#live .status"), ["FAILED"]);
    assert!(browser.texts("pre#stderr")[0].contains("trouble"));

    browser.open(&format!("{}/sweep/{sweep_id}", ui.base));
    assert_eq!(browser.count("table.trials tbody tr"), 3);
    assert_eq!(browser.count(r#"figure.chart[data-param="alpha"] circle.dot"#), 3, "a dot per trial");
    browser.screenshot(&shots, "sweep");

    browser.open(&format!("{}/run/{live_id}", ui.base));
    assert_eq!(browser.texts("#live .status"), ["RUNNING"]);
    let before = browser.texts("pre#stdout")[0].matches("tick").count();
    assert!(
        browser.wait_until(
            Duration::from_secs(20),
            &format!(
                "return document.getElementById('stdout').textContent.split('tick').length - 1 > {};",
                before + 10
            )
        ),
        "the log grows while the page is open"
    );
    fs::write(&gate, "").unwrap();
    assert!(live.wait().unwrap().success());
    assert!(
        browser.wait_until(
            Duration::from_secs(20),
            "return document.querySelector('#live .status').textContent === 'FINISHED';"
        ),
        "the page follows the run to its end"
    );
    browser.screenshot(&shots, "live");
    eprintln!("screenshots in {}", shots.display());
}
