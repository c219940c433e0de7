//! The same projects through `mlflow run` (MLflow 3.17.2) and `lockstep run` against one
//! real `mlflow server`: the runs' tag, parameter and metric keys are the same, and so are
//! the tags' values except those per-run by nature (run name, user). lockstep's own
//! `lockstep.*` tags are extras. Offline: a local project in the caller's environment, a git
//! URL with `#subdir` at a branch and at a commit, a python_env project and a conda one
//! converted to a virtualenv, both built by uv.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::support::mlflow::{ServerRun, mlflow_bin};
use crate::support::uv::uv_dir;
use crate::support::*;

const PROJECT: &str = r#"
name: parity
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      rate: {type: string, default: 1e-1}
      flag: {type: string, default: yes}
    command: "python train.py {alpha} {rate} {flag}"
"#;

/// Logs a metric when mlflow is importable (the caller's environment), says so otherwise.
const SCRIPT: &str = r#"
import sys
try:
    import mlflow
except ImportError:
    print("no mlflow here", sys.argv[1:])
else:
    with mlflow.start_run():
        mlflow.log_metric("alpha_seen", float(sys.argv[1]))
"#;

/// Values that differ between any two runs.
const PER_RUN: &[&str] = &["mlflow.runName", "mlflow.user"];

struct Parity {
    ctx: TestContext,
    server: MlflowServer,
}

impl Parity {
    fn envs(&self) -> Vec<(&'static str, String)> {
        vec![
            // uv for `mlflow run --env-manager uv` too (from PyPI when the machine has none).
            ("PATH", format!("{}:{}", uv_dir().display(), path_with_mlflow())),
            ("MLFLOW_TRACKING_URI", self.server.uri()),
            ("UV_CACHE_DIR", self.ctx.work.join("uv-cache").display().to_string()),
            ("UV_OFFLINE", "1".into()),
        ]
    }

    /// The one run of experiment `name` on the server.
    fn only_run(&self, name: &str) -> ServerRun {
        let exp = self.server.get("experiments/get-by-name", &[("experiment_name", name)]);
        let runs = self.server.runs(exp["experiment"]["experiment_id"].as_str().unwrap());
        assert_eq!(runs.len(), 1, "one run in {name}");
        self.server.run(runs[0]["info"]["run_id"].as_str().unwrap())
    }

    /// `mlflow run ARGS` and `lockstep run ARGS`, each into its own experiment; their runs.
    fn both(&self, case: &str, args: &[&str]) -> (ServerRun, ServerRun) {
        let mlflow = Command::new(mlflow_bin())
            .arg("run")
            .args(args)
            .args(["--experiment-name", &format!("mlflow-{case}")])
            .current_dir(&self.ctx.work)
            .env_clear()
            .envs(self.ctx.envs())
            .envs(self.envs())
            .output()
            .unwrap();
        assert!(
            mlflow.status.success(),
            "mlflow run {args:?}: {}{}",
            String::from_utf8_lossy(&mlflow.stdout),
            String::from_utf8_lossy(&mlflow.stderr)
        );
        let mut lockstep = self.ctx.run(["run"]).args(args).args(["--experiment-name", &format!("lockstep-{case}")]);
        for (k, v) in self.envs() {
            lockstep = lockstep.env(k, v);
        }
        lockstep.success();
        (self.only_run(&format!("mlflow-{case}")), self.only_run(&format!("lockstep-{case}")))
    }
}

fn keys(run: &ServerRun, kind: &str) -> Vec<String> {
    let mut keys: Vec<String> =
        run.pairs(kind).into_iter().map(|(k, _)| k).filter(|k| !k.starts_with("lockstep.")).collect();
    keys.sort();
    keys
}

fn tag_values(run: &ServerRun) -> BTreeMap<String, Value> {
    run.pairs("tags")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("lockstep.") && !PER_RUN.contains(&k.as_str()))
        .collect()
}

fn assert_same(case: &str, (mlflow, lockstep): (ServerRun, ServerRun)) {
    for kind in ["tags", "params", "metrics"] {
        assert_eq!(keys(&lockstep, kind), keys(&mlflow, kind), "{case}: the {kind} (lockstep, then mlflow run)");
    }
    assert_eq!(tag_values(&lockstep), tag_values(&mlflow), "{case}: the tags' values (lockstep, then mlflow run)");
    let params = |r: &ServerRun| r.pairs("params").into_iter().collect::<BTreeMap<_, _>>();
    assert_eq!(params(&lockstep), params(&mlflow), "{case}: the parameters' values");
    assert!(lockstep.tag("lockstep.run_id").is_some(), "{case}: lockstep's tags are extras");
}

#[test]
fn mlflow_run_and_lockstep_run_log_the_same_keys() {
    let ctx = TestContext::new();
    let python = crate::support::conda::system_python().1;
    let minor: String = python.split('.').take(2).collect::<Vec<_>>().join(".");
    let files = [
        ("proj/MLproject", PROJECT),
        ("proj/train.py", SCRIPT),
        ("proj/python_env.yaml", &format!("python: '{minor}'\n")),
    ];
    let conda_project = PROJECT.replace("python_env: python_env.yaml", "conda_env: conda.yaml");
    let conda_files = [
        ("conda/MLproject", conda_project.as_str()),
        ("conda/train.py", SCRIPT),
        ("conda/conda.yaml", &format!("name: parity\ndependencies:\n  - python={minor}\n")),
    ];
    let repo = ctx.work.join("served/repo.git");
    let first = ctx.git_repo(&repo, &[&files[..], &conda_files[..]].concat());
    ctx.git(&repo, &["checkout", "-q", "-b", "feature"]);
    ctx.commit(&repo, &[("proj/notes.txt", "on a branch\n")], "feature");
    ctx.git(&repo, &["checkout", "-q", "main"]);
    let daemon = GitDaemon::start(&ctx, &ctx.work.join("served"));
    let p = Parity { server: MlflowServer::start(), ctx };

    let local = p.ctx.work.join("served/repo.git/proj").display().to_string();
    let url = format!("{}#proj", daemon.url("repo.git"));
    let conda = p.ctx.work.join("served/repo.git/conda").display().to_string();
    let cases: [(&str, Vec<&str>); 5] = [
        ("local", vec![&local, "-P", "alpha=0.25", "--env-manager", "local"]),
        ("git-branch", vec![&url, "-v", "feature", "--env-manager", "local"]),
        ("git-commit", vec![&url, "-v", &first, "--env-manager", "local", "-P", "extra=1"]),
        ("python-env", vec![&local, "--env-manager", "uv"]),
        ("conda-as-virtualenv", vec![&conda, "--env-manager", "uv"]),
    ];
    for (case, args) in cases {
        let (mlflow, lockstep) = p.both(case, &args);
        // What makes each case a case, on mlflow run's side.
        match case {
            "local" => assert_eq!(mlflow.metric("alpha_seen"), Some(0.25)),
            "git-branch" => assert_eq!(mlflow.tag("mlflow.source.git.branch").as_deref(), Some("feature")),
            "git-commit" => assert_eq!(mlflow.tag("mlflow.source.git.commit").as_deref(), Some(first.as_str())),
            _ => assert_eq!(mlflow.tag("mlflow.project.env").as_deref(), Some("uv")),
        }
        assert_same(case, (mlflow, lockstep));
    }
}
