//! Docker environments against the real engine, on the base images of `support/docker.rs`
//! (with `CI=true` a missing engine or busybox fails these tests; elsewhere they are skipped
//! with a printed reason).

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::Stdio;

use bollard::query_parameters::ListContainersOptions;
use lockstep::env::docker::Engine;
use lockstep::env::docker::engine::engine_host;
use lockstep::record::{RunDir, Store};
use serde_json::Value;

use crate::support::docker::*;
use crate::support::*;

/// The directory in the test's store of the run whose record is `r`.
fn run_dir_of(ctx: &TestContext, r: &Value) -> RunDir {
    Store::open(&ctx.store()).unwrap().run_dir(r["run_id"].as_str().unwrap())
}

fn record_of(out: &std::process::Output) -> Value {
    json(out)
}

#[test]
fn build_and_run_with_parameters() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    let project = docker_project(
        &ctx,
        "params",
        &images.busybox,
        "",
        "echo alpha={alpha} name={name} > result.txt; echo hello {name}; echo to-stderr >&2; pwd",
    );
    fs::write(project.join("data.csv"), "1,2\n").unwrap();
    let out =
        ctx.lockstep().args(["run", "params", "-P", "name=my run", "--json"]).assert().success().get_output().clone();
    let err = stderr(&out);
    assert!(err.contains("hello my run\n"), "the entry point's stdout streams (to stderr under --json): {err}");
    assert!(err.contains("to-stderr\n"), "{err}");
    assert!(err.contains("/mlflow/projects/code\n"), "the working directory is MLflow's: {err}");
    let r = record_of(&out);
    assert_eq!(r["status"], "FINISHED");
    assert_eq!(r["command"], "echo alpha=0.5 name='my run' > result.txt; echo hello 'my run'; echo to-stderr >&2; pwd");
    let run_dir = run_dir_of(&ctx, &r);
    assert!(fs::read_to_string(run_dir.stderr_log()).unwrap().contains("to-stderr"));
    assert!(fs::read_to_string(run_dir.stdout_log()).unwrap().contains("hello my run"));

    let env = &r["environment"];
    assert_eq!(env["manager"], "docker");
    assert_eq!(env["mode"], "build");
    assert_eq!(env["base_image"], images.busybox.as_str());
    assert!(env["base_image_id"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(env["base_image_digest"], Value::Null, "an imported image has no repository digest");
    let tag = env["project_image"].as_str().unwrap();
    let suffix = tag.strip_prefix("lockstep/params:").unwrap_or_else(|| panic!("tag {tag}"));
    assert!(suffix.len() == 12 && suffix.chars().all(|c| c.is_ascii_hexdigit()), "{tag}");
    assert_eq!(env["image_uri"], tag);
    assert_eq!(env["image_id"], env["project_image_id"]);
    assert!(env["project_image_id"].as_str().unwrap().starts_with("sha256:"));
    assert!(env["engine_version"].is_string());
    assert_eq!(env["platform"], format!("linux/{}", if cfg!(target_arch = "x86_64") { "amd64" } else { "arm64" }));

    // Outputs come out of the container; the project itself is untouched.
    assert!(!project.join("result.txt").exists());
    assert_eq!(r["outputs_dir"], run_dir.outputs().display().to_string());
    let outputs = r["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(outputs[0]["path"], "result.txt");
    assert_eq!(outputs[0]["sha256"], sha256_hex(b"alpha=0.5 name=my run\n"));
    assert_eq!(fs::read_to_string(run_dir.outputs().join("result.txt")).unwrap(), "alpha=0.5 name=my run\n");
    assert_eq!(containers_of(r["run_id"].as_str().unwrap()), 0, "the container is removed");
}

#[test]
fn a_second_run_reuses_the_image_without_any_build_call() {
    let Some(images) = images() else { return };
    if !engine_host().starts_with("unix://") {
        let _ = writeln!(std::io::stderr(), "skipped: the API proxy needs an engine on a unix socket");
        return;
    }
    let ctx = TestContext::new();
    let proxy = ApiProxy::start(&ctx.work);
    let project = docker_project(&ctx, "reuse", &images.busybox, "", "cat nonce.txt");
    // A fresh tree, so that the first run really builds.
    let nonce = random_hex(8);
    fs::write(project.join("nonce.txt"), &nonce).unwrap();
    let run = || {
        let out = ctx.lockstep().env("DOCKER_HOST", proxy.host()).args(["run", "reuse", "--json"]).assert().success();
        let out = out.get_output().clone();
        (record_of(&out), stderr(&out), proxy.take_requests())
    };
    let (first, first_err, first_calls) = run();
    let tag = first["environment"]["project_image"].as_str().unwrap().to_string();
    let builds = |calls: &[String]| calls.iter().filter(|c| c.contains("/build")).count();
    assert_eq!(builds(&first_calls), 1, "{first_calls:?}");
    assert!(first_err.contains(&format!("building {tag}")), "{first_err}");
    assert!(first_err.contains(&nonce), "{first_err}");

    let (second, second_err, second_calls) = run();
    assert_eq!(builds(&second_calls), 0, "a warm run makes no build call: {second_calls:?}");
    assert!(!second_err.contains("building"), "{second_err}");
    assert_eq!(second["environment"]["project_image"], tag.as_str());
    assert_eq!(second["environment"]["project_image_id"], first["environment"]["project_image_id"]);
    assert!(second_calls.iter().any(|c| c.contains("/containers/create")), "{second_calls:?}");

    // A changed file is a new tree, hence a new image.
    fs::write(project.join("nonce.txt"), format!("{nonce} changed")).unwrap();
    let (third, _, third_calls) = run();
    assert_eq!(builds(&third_calls), 1, "{third_calls:?}");
    assert_ne!(third["environment"]["project_image"], tag.as_str());
    remove_image(&tag);
    remove_image(third["environment"]["project_image"].as_str().unwrap());
}

#[test]
fn volumes_and_copied_and_literal_environment_entries() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    let extra = "  volumes: [\"./data:/data:ro\"]\n  environment: [COPIED_VAR, [LITERAL, \"a literal\"], [OVERRIDDEN, from-manifest]]\n";
    let project = docker_project(
        &ctx,
        "vols",
        &images.busybox,
        extra,
        "cat /data/in.txt /extra/note.txt; echo \"$COPIED_VAR|$LITERAL|$OVERRIDDEN|${{LOCKSTEP_RUN_DIR:-no run dir}}|${{PYTHONPYCACHEPREFIX:-no prefix}}|$PYTHONDONTWRITEBYTECODE\"; echo \"run=$LOCKSTEP_RUN_ID\"",
    );
    ctx.write("vols/data/in.txt", "from the data volume\n");
    let extra_dir = ctx.work.join("elsewhere");
    ctx.write("elsewhere/note.txt", "from -A volume\n");
    let out = ctx
        .lockstep()
        .env("COPIED_VAR", "copied value")
        .args(["run", "vols", "--json", "-A", "v=./elsewhere:/extra", "-A", "e=OVERRIDDEN=from-args"])
        .assert()
        .success()
        .get_output()
        .clone();
    let r = record_of(&out);
    let log = fs::read_to_string(run_dir_of(&ctx, &r).stdout_log()).unwrap();
    assert_eq!(
        log,
        format!(
            "from the data volume\nfrom -A volume\ncopied value|a literal|from-args|no run dir|no prefix|1\nrun={}\n",
            r["run_id"].as_str().unwrap()
        )
    );
    assert!(project.join("data/in.txt").exists() && extra_dir.join("note.txt").exists());

    // A copied variable that is not set stops the run before it starts.
    let out = ctx.lockstep().args(["run", "vols"]).assert().code(2).get_output().clone();
    let err = stderr(&out);
    assert!(
        err.contains("docker_env.environment copies COPIED_VAR from this environment, but COPIED_VAR is not set"),
        "{err}"
    );
    assert!(err.contains("hint: set it first"), "{err}");
    assert_eq!(ctx.records().len(), 1, "no new run");
}

#[test]
fn volume_and_argument_mistakes_stop_the_run_before_it_starts() {
    // No engine is needed: these are checked before anything runs.
    let ctx = TestContext::new();
    docker_project(&ctx, "p", "img:1", "  volumes: [\"./missing:/m\"]\n", "true");
    let out = ctx.lockstep().args(["run", "p"]).assert().code(2).get_output().clone();
    assert!(stderr(&out).contains("volume './missing:/m' names"), "{}", stderr(&out));
    assert!(stderr(&out).contains("which does not exist"), "{}", stderr(&out));
    docker_project(&ctx, "q", "img:1", "", "true");
    let out = ctx.lockstep().args(["run", "q", "-A", "detach"]).assert().code(2).get_output().clone();
    let err = stderr(&out);
    assert!(err.contains("error: -A detach: lockstep does not support this docker run option"), "{err}");
    assert!(err.contains("hint: -A accepts: gpus, shm-size"), "{err}");
    let out = ctx.lockstep().args(["run", "q", "-A", "memory=lots"]).assert().code(2).get_output().clone();
    assert!(stderr(&out).contains("-A memory=lots: 'lots' is not a size"), "{}", stderr(&out));
    ctx.assert_no_runs();
}

#[test]
fn a_nonzero_exit_is_failed_with_its_code_and_tty_merges_output() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    docker_project(&ctx, "fails", &images.busybox, "", "echo out; echo err >&2; exit 3");
    let out = ctx.lockstep().args(["run", "fails", "--json"]).assert().code(3).get_output().clone();
    let r = record_of(&out);
    assert_eq!(r["status"], "FAILED");
    assert_eq!(r["exit_code"], 3);
    assert!(stderr(&out).contains("FAILED (exit code 3)"), "{}", stderr(&out));
    let run_id = r["run_id"].as_str().unwrap();
    assert_eq!(containers_of(run_id), 0);

    let out = ctx.lockstep().args(["run", "fails", "--json", "-A", "t", "--keep-container"]).assert().code(3);
    let r = record_of(out.get_output());
    let log = fs::read_to_string(run_dir_of(&ctx, &r).stdout_log()).unwrap();
    assert!(log.contains("out") && log.contains("err"), "a terminal carries both streams: {log:?}");
    assert_eq!(containers_of(r["run_id"].as_str().unwrap()), 1, "--keep-container keeps it");
    let engine = Engine::connect().unwrap();
    let name = format!("lockstep-{}", r["run_id"].as_str().unwrap());
    let options = bollard::query_parameters::RemoveContainerOptions { force: true, ..Default::default() };
    engine.block_on(engine.docker().remove_container(&name, Some(options))).unwrap();
}

#[test]
fn sigint_kills_the_container_and_leaves_none() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    // `sleep` ends up as the container's first process, which ignores SIGINT: the grace
    // period then ends in SIGKILL.
    docker_project(&ctx, "sleepy", &images.busybox, "", "echo started; exec sleep 60");
    let mut runner = ctx
        .lockstep_process()
        .env("LOCKSTEP_KILL_GRACE", "1")
        .args(["run", "sleepy"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(runner.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "started");
    unsafe { libc::kill(runner.id() as i32, libc::SIGINT) };
    let status = runner.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let r = ctx.only_record();
    assert_eq!(r["status"], "KILLED");
    assert_eq!(r["exit_code"], 130);
    assert_eq!(containers_of(r["run_id"].as_str().unwrap()), 0, "no container is left");
}

#[test]
fn sigterm_reaches_the_entry_point_through_docker_init() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    docker_project(&ctx, "sleepy", &images.busybox, "", "echo started; exec sleep 60");
    let mut runner = ctx
        .lockstep_process()
        .env("LOCKSTEP_KILL_GRACE", "30")
        .args(["run", "sleepy", "-A", "init"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(runner.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "started");
    let sent = std::time::Instant::now();
    unsafe { libc::kill(runner.id() as i32, libc::SIGTERM) };
    assert_eq!(runner.wait().unwrap().code(), Some(143));
    assert!(sent.elapsed() < std::time::Duration::from_secs(15), "no wait for the 30 s grace period");
    let r = ctx.only_record();
    assert_eq!(r["status"], "KILLED");
    assert_eq!(containers_of(r["run_id"].as_str().unwrap()), 0);
}

#[test]
fn outputs_are_collected_from_the_container_and_hashed() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    let command = "mkdir -p out/deep models && echo new > out/deep/a.txt && echo changed > data.txt && \
                   rm old.txt && echo tmp > /tmp/not-an-output && printf model > models/m.bin";
    let project = docker_project(&ctx, "outs", &images.busybox, "", command);
    let manifest = fs::read_to_string(project.join("MLproject")).unwrap();
    fs::write(project.join("MLproject"), format!("{manifest}    outputs: [config.yaml, \"models/**\", old.txt]\n"))
        .unwrap();
    ctx.write("outs/data.txt", "original\n");
    ctx.write("outs/old.txt", "to be deleted\n");
    ctx.write("outs/config.yaml", "lr: 1\n");
    ctx.write("outs/unrelated.txt", "not an output\n");
    let out = ctx.lockstep().args(["run", "outs", "--json"]).assert().success().get_output().clone();
    let r = record_of(&out);
    let outputs: Vec<(String, String)> = r["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["path"].as_str().unwrap().to_string(), o["sha256"].as_str().unwrap().to_string()))
        .collect();
    let sha = |s: &str| sha256_hex(s.as_bytes());
    assert_eq!(
        outputs,
        [
            ("config.yaml".to_string(), sha("lr: 1\n")),
            ("data.txt".to_string(), sha("changed\n")),
            ("models/m.bin".to_string(), sha("model")),
            ("out/deep/a.txt".to_string(), sha("new\n")),
        ]
    );
    let dir = PathBuf::from(r["outputs_dir"].as_str().unwrap());
    assert_eq!(fs::read_to_string(dir.join("out/deep/a.txt")).unwrap(), "new\n");
    assert_eq!(fs::read_to_string(dir.join("models/m.bin")).unwrap(), "model");
    assert_eq!(fs::read_to_string(project.join("data.txt")).unwrap(), "original\n", "the project is untouched");
    assert!(project.join("old.txt").exists());
}

#[test]
fn mount_project_runs_the_base_image_on_the_project_itself() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    let project = docker_project(&ctx, "mounted", &images.busybox, "", "cat in.txt > out.txt");
    ctx.write("mounted/in.txt", "bind-mounted\n");
    let out =
        ctx.lockstep().args(["run", "mounted", "--mount-project", "--json"]).assert().success().get_output().clone();
    let r = record_of(&out);
    let env = &r["environment"];
    assert_eq!(env["mode"], "mount");
    assert_eq!(env["project_image"], Value::Null);
    assert_eq!(env["image_uri"], images.busybox.as_str());
    assert_eq!(env["image_id"], env["base_image_id"]);
    assert_eq!(fs::read_to_string(project.join("out.txt")).unwrap(), "bind-mounted\n");
    assert_eq!(r["outputs_dir"], project.display().to_string());
    assert_eq!(r["outputs"][0]["path"], "out.txt");
    // MLflow's flag for the default mode is accepted, and cannot be combined with the other.
    ctx.lockstep().args(["run", "mounted", "--build-image", "--mount-project"]).assert().code(2);
}

#[test]
fn a_non_root_image_user_owns_the_project_copy() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    docker_project(&ctx, "user", &images.non_root, "", "id -u; echo written > new.txt");
    let out = ctx.lockstep().args(["run", "user", "--json"]).assert().success().get_output().clone();
    assert!(stderr(&out).contains("1000\n"), "{}", stderr(&out));
    assert_eq!(record_of(&out)["outputs"][0]["path"], "new.txt");
}

#[test]
fn a_failed_build_shows_the_step_and_fails_the_run() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    docker_project(&ctx, "broken", &images.broken, "", "true");
    let out = ctx.lockstep().args(["run", "broken"]).assert().code(2).get_output().clone();
    let err = stderr(&out);
    assert!(err.contains("error: building lockstep/broken:"), "{err}");
    assert!(err.contains("COPY project/ /mlflow/projects/code/"), "the failing step is named: {err}");
    assert!(err.contains("hint: "), "{err}");
    let r = ctx.only_record();
    assert_eq!(r["status"], "FAILED");
    assert!(r["failure"].as_str().unwrap().contains("building lockstep/broken"), "{r}");
}

#[test]
fn a_missing_image_without_a_registry_is_a_clear_error() {
    let Some(_) = images() else { return };
    let ctx = TestContext::new();
    docker_project(&ctx, "absent", "lockstep-test/absent:never", "", "true");
    let out = ctx.lockstep().args(["run", "absent"]).assert().code(2).get_output().clone();
    let err = stderr(&out);
    assert!(err.contains("error: cannot pull image 'lockstep-test/absent:never'"), "{err}");
    assert!(err.contains("hint: check the name"), "{err}");
    ctx.assert_no_runs();
}

#[test]
fn no_engine_is_a_clear_error() {
    let ctx = TestContext::new();
    docker_project(&ctx, "p", "img:1", "", "true");
    let socket = ctx.work.join("no-engine.sock");
    for host in [format!("unix://{}", socket.display()), format!("tcp://127.0.0.1:{}", free_port())] {
        let out = ctx.lockstep().env("DOCKER_HOST", &host).args(["run", "p"]).assert().code(2).get_output().clone();
        let err = stderr(&out);
        assert!(err.contains(&format!("error: cannot reach the Docker engine at {host}: ")), "{err}");
        assert!(err.contains("hint: start the Docker daemon"), "{err}");
    }
    let out = ctx.lockstep().env("DOCKER_HOST", "ssh://box").args(["run", "p"]).assert().code(2).get_output().clone();
    assert!(stderr(&out).contains("cannot use the Docker engine at ssh://box"), "{}", stderr(&out));
    ctx.assert_no_runs();
}

#[test]
fn sigint_stops_a_pull_and_leaves_no_run() {
    let ctx = TestContext::new();
    docker_project(&ctx, "p", "somewhere/slow:1", "", "true");
    let (socket, pulling) = stalling_engine(&ctx.work, Stall::Pull);
    let mut runner = ctx
        .lockstep_process()
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .args(["run", "p"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(std::time::Duration::from_secs(20), || *pulling.lock().unwrap()), "the pull started");
    let started = std::time::Instant::now();
    unsafe { libc::kill(runner.id() as i32, libc::SIGINT) };
    let status = runner.wait().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the pull is abandoned at once");
    assert_eq!(status.code(), Some(130));
    let mut err = String::new();
    runner.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("pulling somewhere/slow:1"), "{err}");
    // The pull comes before the run starts, as a virtualenv build does: no run is left.
    assert!(err.contains("error: interrupted before the run started"), "{err}");
    ctx.assert_no_runs();
}

#[test]
fn sigint_or_sigterm_stops_a_build_whose_context_the_engine_no_longer_reads() {
    let ctx = TestContext::new();
    let project = docker_project(&ctx, "big", "somewhere/base:1", "", "true");
    // Far more than the socket's buffer and the upload's queue hold.
    fs::write(project.join("weights.bin"), vec![7u8; 48 << 20]).unwrap();
    let (socket, building) = stalling_engine(&ctx.work, Stall::Build("somewhere/base:1"));
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        *building.lock().unwrap() = false;
        let mut runner = ctx
            .lockstep_process()
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .args(["run", "big"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(wait_for(std::time::Duration::from_secs(30), || *building.lock().unwrap()), "the build started");
        unsafe { libc::kill(runner.id() as i32, signal) };
        let mut status = None;
        wait_for(std::time::Duration::from_secs(30), || {
            status = runner.try_wait().unwrap();
            status.is_some()
        });
        if status.is_none() {
            unsafe { libc::kill(runner.id() as i32, libc::SIGKILL) };
            let _ = runner.wait();
            panic!("lockstep hangs after signal {signal} during the build");
        }
        assert_eq!(status.unwrap().code(), Some(code));
        let mut err = String::new();
        runner.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let r = ctx.records().pop().unwrap();
        assert_eq!(r["status"], "KILLED");
        assert_eq!(r["failure"], "interrupted");
        let run_id = r["run_id"].as_str().unwrap();
        assert!(err.contains("building lockstep/big:"), "{err}");
        assert!(
            err.contains(&format!("interrupted while the environment was prepared: run {run_id} is recorded KILLED")),
            "{err}"
        );
        assert!(!err.contains("before the run started"), "{err}");
    }
}

/// The containers of a run, with their labels and states.
fn containers_with_labels(run_id: &str) -> Vec<bollard::models::ContainerSummary> {
    let engine = Engine::connect().unwrap();
    let filters = HashMap::from([("label".to_string(), vec![format!("lockstep.run_id={run_id}")])]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    engine.block_on(engine.docker().list_containers(Some(options))).unwrap()
}

#[test]
fn a_sigkilled_runners_container_is_removed_by_runs_or_the_next_run_of_its_store() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    docker_project(&ctx, "sleepy", &images.busybox, "", "echo started; exec sleep 300");
    ctx.project("plain", &[("MLproject", "name: plain\nentry_points:\n  main:\n    command: \"true\"\n")]);
    let killed_run = |extra: &[&str]| -> String {
        let mut runner = ctx
            .lockstep_process()
            .args(["run", "sleepy"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(runner.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "started");
        unsafe { libc::kill(runner.id() as i32, libc::SIGKILL) };
        runner.wait().unwrap();
        let r = ctx.records().pop().unwrap();
        assert_eq!(r["status"], "RUNNING", "nobody finalized the run yet");
        r["run_id"].as_str().unwrap().to_string()
    };

    let first = killed_run(&[]);
    let left = containers_with_labels(&first);
    assert_eq!(left.len(), 1, "the container outlives its runner");
    let labels = left[0].labels.clone().unwrap_or_default();
    assert_eq!(labels.get("lockstep.store").map(PathBuf::from), Some(ctx.store()), "{labels:?}");
    ctx.lockstep().args(["runs", "--store", "elsewhere"]).assert().success();
    assert_eq!(containers_of(&first), 1, "another store's clean-up leaves it alone");
    let out = ctx.lockstep().args(["runs"]).assert().success().get_output().clone();
    assert_eq!(containers_of(&first), 0, "runs removes the lost run's container");
    assert!(stderr(&out).contains(&format!("of lost run {first}")), "{}", stderr(&out));
    let r = ctx.records().into_iter().find(|r| r["run_id"] == first.as_str()).unwrap();
    assert_eq!(r["status"], "FAILED");
    assert!(r["failure"].as_str().unwrap().starts_with("lost"), "{r}");
    assert!(!ctx.store().join("docker-containers").join(&first).exists(), "the marker goes with the container");

    let second = killed_run(&[]);
    assert_eq!(containers_of(&second), 1);
    ctx.lockstep().args(["run", "plain", "--env-manager", "local"]).assert().success();
    assert_eq!(containers_of(&second), 0, "the next run's start removes it");

    // A container the user asked to keep is stopped, and kept.
    let third = killed_run(&["--keep-container"]);
    ctx.lockstep().args(["runs"]).assert().success();
    let kept = containers_with_labels(&third);
    assert_eq!(kept.len(), 1, "a kept container stays");
    assert_ne!(kept[0].state, Some(bollard::models::ContainerSummaryStateEnum::RUNNING), "but it is stopped");
    let engine = Engine::connect().unwrap();
    let options = bollard::query_parameters::RemoveContainerOptions { force: true, ..Default::default() };
    engine.block_on(engine.docker().remove_container(kept[0].id.as_deref().unwrap(), Some(options))).unwrap();
}

#[test]
fn a_git_source_runs_from_its_commit() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    let repo = docker_project(&ctx, "repo", &images.busybox, "", "cat version.txt > seen.txt");
    ctx.git_repo(&repo, &[("version.txt", "committed\n")]);
    fs::write(repo.join("version.txt"), "uncommitted\n").unwrap();
    let url = format!("file://{}", repo.display());
    let out = ctx.lockstep().args(["run", &url, "--json"]).assert().success().get_output().clone();
    let r = record_of(&out);
    assert_eq!(r["source"]["kind"], "git");
    let run_dir = run_dir_of(&ctx, &r);
    assert_eq!(fs::read_to_string(run_dir.outputs().join("seen.txt")).unwrap(), "committed\n");
    assert!(!run_dir.work().exists(), "the checkout is removed after the run");
}

#[test]
fn verify_reruns_a_docker_run_on_its_recorded_image() {
    let Some(images) = images() else { return };
    let ctx = TestContext::new();
    let project = docker_project(&ctx, "verified", &images.busybox, "", "echo alpha={alpha} > data.txt");
    fs::write(project.join("data.txt"), "input\n").unwrap();
    let out =
        ctx.lockstep().args(["run", "verified", "-P", "alpha=0.25", "--json"]).assert().success().get_output().clone();
    let r = record_of(&out);
    let id = r["run_id"].as_str().unwrap();
    let out = ctx.lockstep().args(["verify", id, "--json"]).assert().success().get_output().clone();
    let report = json(&out);
    assert_eq!(report["result"], "reproduced", "{report}");
    let check = ctx.records().into_iter().find(|x| x["verifies"] == id).unwrap();
    assert_eq!(check["environment"]["base_image_id"], r["environment"]["base_image_id"]);
    assert_eq!(
        check["environment"]["project_image_id"], r["environment"]["project_image_id"],
        "the same image, not rebuilt"
    );
    assert_eq!(check["parameters"]["alpha"], "0.25");
}
