//! What a record says about the machine: CPU, cores, memory, kernel, libc, GPUs (through a
//! fake `nvidia-smi`, since the test machines have no GPU), the numerics variables and only
//! those, and `status` reporting how this machine differs from the run's.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::support::*;

const PROJECT: &str = "entry_points:\n  main:\n    command: 'true'\n";

#[test]
fn the_record_holds_what_decides_numerics_and_no_other_variable() {
    let ctx = TestContext::new().file("p/MLproject", PROJECT);
    ctx.run(["run", "p"])
        .env("OMP_NUM_THREADS", "3")
        .env("PYTHONHASHSEED", "0")
        .env("AWS_SECRET_ACCESS_KEY", "s3cr3t")
        .success();
    let host = &ctx.only_record()["host"];
    assert_eq!(host["numerics_env"]["OMP_NUM_THREADS"], "3");
    assert_eq!(host["numerics_env"]["PYTHONHASHSEED"], "0");
    let text = host.to_string();
    assert!(!text.contains("s3cr3t") && !text.contains("AWS_SECRET"), "secrets never enter the record: {text}");
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap();
    if let Some(model) = cpuinfo.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':'))) {
        assert_eq!(host["cpu"], model.1.trim());
    }
    if cpuinfo.contains(" avx2") {
        assert!(host["cpu_flags"].as_array().unwrap().contains(&Value::from("avx2")), "{host}");
    }
    assert!(host["memory_bytes"].as_u64().unwrap() > 0);
    assert_eq!(host["kernel"], fs::read_to_string("/proc/sys/kernel/osrelease").unwrap().trim());
    assert!(host["libc"].as_str().unwrap().starts_with("glibc "), "{host}");
    assert_eq!(host["gpus"], Value::Array(vec![]), "no nvidia-smi here");
}

#[test]
fn gpus_come_from_nvidia_smi_when_the_machine_has_it() {
    let ctx = TestContext::new().file("p/MLproject", PROJECT);
    let bin = ctx.work.join("bin");
    let smi = bin.join("nvidia-smi");
    write_file(
        &smi,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'NVIDIA-SMI version  : 550.54.15'; echo 'CUDA Version         : 12.4'; exit 0; fi\necho 'NVIDIA A100-SXM4-40GB, 40960, 550.54.15, GPU-abc'\n",
    );
    fs::set_permissions(&smi, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    ctx.run(["run", "p"]).env("PATH", &path).success();
    let gpus = &ctx.only_record()["host"]["gpus"];
    assert_eq!(gpus[0]["model"], "NVIDIA A100-SXM4-40GB");
    assert_eq!(gpus[0]["memory_mib"], 40960);
    assert_eq!(gpus[0]["driver"], "550.54.15");
    assert_eq!(gpus[0]["cuda"], "12.4");
    assert_eq!(gpus[0]["uuid"], "GPU-abc");
}

#[test]
fn a_hanging_nvidia_smi_is_given_up_on() {
    let ctx = TestContext::new().file("p/MLproject", PROJECT);
    let bin = ctx.work.join("bin");
    write_file(&bin.join("nvidia-smi"), "#!/bin/sh\nexec sleep 60\n");
    fs::set_permissions(bin.join("nvidia-smi"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let start = std::time::Instant::now();
    ctx.run(["run", "p"]).env("PATH", &path).success();
    assert!(start.elapsed() < std::time::Duration::from_secs(30), "{:?}", start.elapsed());
    assert_eq!(ctx.only_record()["host"]["gpus"], Value::Array(vec![]));
}

#[test]
fn status_reports_host_drift_without_failing_the_gate() {
    let ctx = TestContext::new().file("p/MLproject", PROJECT);
    ctx.run(["run", "p"]).success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    ctx.run(["status", &id]).success().stdout_has("host         same");
    let file = ctx.store().join("runs").join(&id).join("record.json");
    let mut record: Value = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    record["host"]["cpu"] = "Imaginary CPU 9000".into();
    record["host"]["numerics_env"]["OMP_NUM_THREADS"] = "1".into();
    fs::write(&file, serde_json::to_string_pretty(&record).unwrap()).unwrap();
    let out = ctx.run(["status", &id]).success();
    out.stdout_has("host         differs   2 difference(s)")
        .stdout_has("    cpu: Imaginary CPU 9000 -> ")
        .stdout_has("    OMP_NUM_THREADS: 1 -> unset");
    let json = ctx.run(["status", &id, "--json"]).success().json();
    assert_eq!(json["host"]["same"], false);
}
