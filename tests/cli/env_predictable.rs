//! Environments a user can predict: the installer (uv or pip) is not part of the key, `status`
//! says when only it differs, `verify` runs in the environment whose lock it recorded, `env
//! list` names the projects using each, and a Docker image that cannot be pulled leaves no run.

use std::fs;
use std::os::unix::fs::symlink;

use crate::environments::{SIX_PROJECT, env_dirs, lockstep, package, python_minor, six_env};
use crate::support::docker::*;
use crate::support::*;

#[test]
fn pip_and_uv_share_an_environment_and_verify_reuses_it() {
    let ctx = TestContext::new();
    let (python, _) = crate::support::conda::system_python();
    let bin = ctx.work.join("bin");
    fs::create_dir_all(&bin).unwrap();
    symlink(&python, bin.join("python3")).unwrap();
    symlink(&python, bin.join("python")).unwrap();
    let no_uv = format!("{}:/usr/bin:/bin", bin.display());
    ctx.project("p", &[("MLproject", SIX_PROJECT), ("python_env.yaml", &six_env(&python_minor()))]);
    let out = lockstep(&ctx).env("PATH", &no_uv).args(["run", "p", "--json"]).assert().success().get_output().clone();
    let first = json(&out);
    let env = &first["environment"];
    assert!(env["installer"].as_str().unwrap().starts_with("pip "), "the lock records the installer: {env}");
    assert_eq!(package(env, "six")["version"], "1.16.0");
    let key = env["key"].as_str().unwrap().to_string();
    let id = first["run_id"].as_str().unwrap().to_string();

    // uv on PATH now: the same key, and `status` says that only the installer differs.
    let out = lockstep(&ctx).args(["status", &id]).assert().success().get_output().clone();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains(&format!(
            "virtualenv environment {} unchanged; only the installer differs: pip built it, uv would build it now",
            &key[..12]
        )),
        "{said}"
    );
    let out = lockstep(&ctx).args(["run", "p", "--json"]).assert().success().get_output().clone();
    assert!(!stderr(&out).contains("built the"), "no rebuild: {}", stderr(&out));
    assert_eq!(json(&out)["environment"]["key"], key.as_str());

    // verify takes the recorded lock, which the environment built from the spec holds.
    let out = lockstep(&ctx).args(["verify", &id]).assert().success().get_output().clone();
    assert!(!stderr(&out).contains("built the"), "verify builds no twin: {}", stderr(&out));
    assert_eq!(env_dirs(&ctx), [key.as_str()]);

    let out = lockstep(&ctx).args(["env", "list"]).assert().success().get_output().clone();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = table.lines().find(|l| l.starts_with(&key[..16])).unwrap_or_else(|| panic!("{table}"));
    assert!(row.ends_with("  p"), "the project using it: {table}");
    assert!(table.lines().last().unwrap().starts_with("1 environments, "), "{table}");
    let listed = json(&lockstep(&ctx).args(["env", "list", "--json"]).assert().success().get_output().clone());
    assert_eq!(listed[0]["projects"], serde_json::json!(["p"]));
}

#[test]
fn an_image_that_cannot_be_pulled_leaves_no_run_for_run_and_verify() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    docker_project(&ctx, "absent", "lockstep-test/absent:never", "", "true");
    ctx.run(["run", "absent"])
        .status(2)
        .stdout("")
        .stderr_has("error: cannot pull image 'lockstep-test/absent:never'")
        .hint("check the name; without registry access")
        .no_runs();

    // A recorded run whose base image is gone from the engine.
    docker_project(&ctx, "ok", &images.busybox, "", "true");
    ctx.run(["run", "ok", "--mount-project"]).success();
    let mut record = ctx.only_record();
    record["environment"]["base_image_id"] = format!("sha256:{}", "0".repeat(64)).into();
    record["environment"]["base_image_digest"] = serde_json::Value::Null;
    let crafted = ctx.write("gone.json", &record.to_string());
    let out = ctx.run(["verify", crafted.to_str().unwrap()]).status(2).hint("check the name");
    out.stderr_has("error: cannot pull image 'sha256:0000");
    assert_eq!(ctx.records().len(), 1, "the failed verification left no run");
}

#[test]
fn an_image_build_shows_its_steps_and_the_whole_log_with_verbose() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    let project = docker_project(&ctx, "steps", &images.busybox, "", "true");
    for verbose in [false, true] {
        // A new tree each time, so that the image is built.
        fs::write(project.join("nonce.txt"), random_hex(8)).unwrap();
        let cmd = ctx.run(["run", "steps"]);
        let cmd = if verbose { cmd.arg("--verbose") } else { cmd };
        let err = cmd.success().stderr_text();
        assert!(err.contains("Step 1/"), "{err}");
        assert_eq!(err.contains("lockstep: build lockstep/steps:"), !verbose, "one line per step: {err}");
        assert_eq!(err.contains(" ---> "), verbose, "the builder's own output only with --verbose: {err}");
    }
    for r in ctx.records() {
        remove_image(r["environment"]["project_image"].as_str().unwrap());
    }
}
