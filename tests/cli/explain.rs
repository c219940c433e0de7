//! `verify`'s verdicts and `--repeat`/`--isolate`, on small Python projects (the `local`
//! environment: the machine's python3) that are deterministic, random without a seed,
//! dependent on the hash seed, the thread count, the time or the working directory, or that
//! read a `path` input which then changes; and `--explain`'s comparison of each kind of file.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::support::*;

/// A project whose one entry point runs `script` with python3.
fn python_project(ctx: &TestContext, script: &str) -> String {
    ctx.project("p", &[("MLproject", "entry_points:\n  main:\n    command: 'python3 main.py'\n"), ("main.py", script)]);
    ctx.run(["run", "p"]).success();
    ctx.only_record()["run_id"].as_str().unwrap().to_string()
}

/// `lockstep verify ID ARGS --json`, expecting `code`.
fn verify(ctx: &TestContext, id: &str, args: &[&str], code: i32) -> Value {
    ctx.run(["verify", id, "--json"]).args(args).status(code).json()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// The factors `--isolate` found stabilising, and those it tried.
fn isolated(report: &Value) -> (Vec<String>, Vec<String>) {
    let isolation = &report["isolation"];
    let tried = isolation["trials"].as_array().unwrap().iter().map(|t| t["factor"].as_str().unwrap().to_string());
    (names(&isolation["stabilising"]), tried.collect())
}

#[test]
fn a_deterministic_run_reproduces_and_nothing_varies() {
    let ctx = TestContext::new();
    let id = python_project(&ctx, "open('out.txt', 'w').write(str(sum(range(10))))\n");
    let report = verify(&ctx, &id, &["--isolate"], 0);
    assert_eq!(report["result"], "reproduced");
    assert_eq!(report["cause"], Value::Null);
    assert_eq!(report["repetitions"]["runs"].as_array().unwrap().len(), 2, "--isolate repeats twice");
    assert_eq!(report["repetitions"]["varying"], Value::Array(vec![]));
    assert_eq!(report["isolation"]["trials"], Value::Array(vec![]), "nothing to isolate");
    let text = ctx.run(["verify", &id, "--repeat", "2"]).success().stdout_text();
    assert!(text.contains("repeat: 2 re-runs; nothing varies between them"), "{text}");
}

#[test]
fn an_unseeded_random_run_is_nondeterministic_and_no_factor_stabilises_it() {
    let ctx = TestContext::new();
    let id = python_project(&ctx, "import random\nopen('out.txt', 'w').write(repr(random.random()))\n");
    let report = verify(&ctx, &id, &["--isolate"], 1);
    assert_eq!(report["cause"]["verdict"], "nondeterministic");
    assert_eq!(report["cause"]["varying"][0], "out.txt");
    assert_eq!(report["repetitions"]["varying"][0]["distinct"], 2);
    let (stabilising, tried) = isolated(&report);
    assert!(stabilising.is_empty(), "{report}");
    assert_eq!(tried, ["threads", "hash_seed", "time_and_locale", "working_directory"]);
    let text = ctx.run(["verify", &id, "--isolate", "--max-runs", "4"]).status(1).stdout_text();
    assert!(text.contains("why: same inputs, same machine: nondeterministic"), "{text}");
    assert!(text.contains("isolate: no single pinned factor makes the outputs stable"), "{text}");
}

#[test]
fn set_order_depends_on_the_hash_seed_and_isolate_names_it() {
    let ctx = TestContext::new();
    let id =
        python_project(&ctx, "words = {f'w{i}' for i in range(40)}\nopen('order.txt', 'w').write(' '.join(words))\n");
    // A GPU on this (fake) machine adds cuBLAS's workspace to the factors tried.
    let bin = ctx.work.join("bin");
    let smi = write_file(
        &bin.join("nvidia-smi"),
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'CUDA Version : 12.4'; exit 0; }\necho 'NVIDIA A100, 40960, 550.54.15, GPU-abc'\n",
    );
    fs::set_permissions(&smi, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let report = ctx.run(["verify", &id, "--isolate", "--json"]).env("PATH", &path).status(1).json();
    assert_eq!(report["cause"]["verdict"], "nondeterministic", "{report}");
    let (stabilising, tried) = isolated(&report);
    assert_eq!(stabilising, ["hash_seed"]);
    assert!(tried.contains(&"cublas_workspace".to_string()), "{tried:?}");
    let pinned = &report["isolation"]["trials"][1]["runs"][0];
    let record = ctx.records().into_iter().find(|r| &r["run_id"] == pinned).unwrap();
    assert_eq!(record["host"]["numerics_env"]["PYTHONHASHSEED"], "0", "the record says what the re-run saw");
    assert_eq!(record["verifies"], id.as_str());
}

/// Partial sums over threads added in the order the threads finish: another order rounds
/// otherwise, so the sum varies unless there is one thread (three sums, so that two runs
/// agree by chance almost never).
const THREAD_SUM: &str = r#"import os, queue, random, threading, time
n = int(os.environ.get("OMP_NUM_THREADS") or 12)
values = [1e16, -1e16] + [1 + 0.37 * k for k in range(10)]
def total():
    done = queue.Queue()
    def work(chunk):
        time.sleep(random.random() * 0.005)
        s = 0.0
        for v in chunk:
            s += v
        done.put(s)
    threads = [threading.Thread(target=work, args=(values[i::n],)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = 0.0
    while not done.empty():
        s += done.get()
    return s
open("sum.txt", "w").write(" ".join(repr(total()) for _ in range(3)) + "\n")
"#;

#[test]
fn a_sum_over_threads_varies_and_isolate_names_the_thread_count() {
    let ctx = TestContext::new();
    let id = python_project(&ctx, THREAD_SUM);
    let report = verify(&ctx, &id, &["--isolate"], 1);
    assert_eq!(report["cause"]["verdict"], "nondeterministic", "{report}");
    assert_eq!(isolated(&report).0, ["threads"], "{report}");
    let pinned = &report["isolation"]["trials"][0]["runs"][0];
    let record = ctx.records().into_iter().find(|r| &r["run_id"] == pinned).unwrap();
    assert_eq!(record["host"]["numerics_env"]["OPENBLAS_NUM_THREADS"], "1");
}

#[test]
fn another_thread_count_is_another_machine() {
    let ctx = TestContext::new();
    ctx.project(
        "p",
        &[("MLproject", "entry_points:\n  main:\n    command: 'python3 main.py'\n"), ("main.py", THREAD_SUM)],
    );
    ctx.run(["run", "p"]).env("OMP_NUM_THREADS", "1").success();
    let id = ctx.only_record()["run_id"].as_str().unwrap().to_string();
    let report = ctx.run(["verify", &id, "--json"]).env("OMP_NUM_THREADS", "1").success().json();
    assert_eq!(report["result"], "reproduced", "one thread sums in one order");
    let out = ctx.run(["verify", &id]).env("OMP_NUM_THREADS", "2").status(1);
    let text = out.stdout_text();
    assert!(text.contains("why: same inputs, different machine"), "{text}");
    assert!(text.contains("OMP_NUM_THREADS: 1 -> 2"), "{text}");
}

#[test]
fn a_timestamp_is_pinned_by_source_date_epoch() {
    let ctx = TestContext::new();
    let script = "import os, time\nt = float(os.environ.get('SOURCE_DATE_EPOCH') or time.time())\nopen('stamp.txt', 'w').write(time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(t)) + f' {t}')\n";
    let id = python_project(&ctx, script);
    let report = verify(&ctx, &id, &["--isolate"], 1);
    assert_eq!(isolated(&report).0, ["time_and_locale"], "{report}");
}

#[test]
fn the_working_directory_is_pinned_by_one_fixed_path() {
    let ctx = TestContext::new();
    let id = python_project(&ctx, "import os\nopen('cwd.txt', 'w').write(os.getcwd())\n");
    let report = verify(&ctx, &id, &["--isolate"], 1);
    assert_eq!(isolated(&report).0, ["working_directory"], "{report}");
    assert!(!ctx.store().join("verify-work").join(&id).exists(), "the fixed directory is removed");
}

#[test]
fn a_changed_path_input_is_an_input_change() {
    let ctx = TestContext::new();
    let manifest = "entry_points:\n  main:\n    parameters:\n      data: path\n    command: 'python3 main.py {data}'\n";
    let script = "import sys\nopen('rows.txt', 'w').write(str(len(open(sys.argv[1]).readlines())))\n";
    ctx.project("p", &[("MLproject", manifest), ("main.py", script)]);
    let data = ctx.write("data/train.csv", "x\n1\n2\n");
    ctx.run(["run", "p", "-P", "data=data/train.csv"]).success();
    let record = ctx.only_record();
    let id = record["run_id"].as_str().unwrap().to_string();
    let input = &record["inputs"][0];
    assert_eq!((&input["parameter"], &input["kind"]), (&Value::from("data"), &Value::from("file")));
    assert_eq!(input["sha256"], sha256_hex(b"x\n1\n2\n"));
    assert_eq!(input["location"], data.display().to_string());
    verify(&ctx, &id, &[], 0);
    fs::write(&data, "x\n1\n2\n3\n").unwrap();
    let report = verify(&ctx, &id, &[], 1);
    assert_eq!(report["cause"]["verdict"], "inputs_changed", "{report}");
    assert_eq!(report["cause"]["inputs"][0]["part"], "path_input");
    assert_eq!(report["cause"]["inputs"][0]["name"], "data");
    let text = ctx.run(["verify", &id]).status(1).stdout_text();
    assert!(text.contains("why: inputs changed") && text.contains("path input data: "), "{text}");
}

#[test]
fn repeat_and_max_runs_need_at_least_one_run() {
    let ctx = TestContext::new();
    ctx.run(["verify", "abc", "--repeat", "0"]).user_error("--repeat must be at least 1");
    ctx.run(["verify", "abc", "--max-runs", "0"]).user_error("--max-runs must be at least 1");
}

#[test]
fn max_runs_bounds_the_isolation_and_names_what_was_not_tried() {
    let ctx = TestContext::new();
    let id = python_project(&ctx, "import random\nopen('out.txt', 'w').write(repr(random.random()))\n");
    let out = ctx.run(["verify", &id, "--isolate", "--max-runs", "4", "--json"]).status(1);
    let report = out.json();
    assert_eq!(isolated(&report).1, ["threads"], "2 repetitions and 2 re-runs with threads pinned");
    assert_eq!(names(&report["isolation"]["untried"]), ["hash_seed", "time_and_locale", "working_directory"]);
    assert!(out.stderr_text().contains("verify: re-run 4 of 4 as run "), "{}", out.stderr_text());
    assert_eq!(ctx.records().len(), 5, "the original and four re-runs");
}

/// Outputs of every kind that differ from run to run: JSON, CSV, `.npy`, `.npz`, PNG, bytes.
const KINDS: &str = r#"import json, random, struct, zipfile, zlib
x = random.random()
json.dump({"loss": x, "name": "m", "steps": [1, 2]}, open("m.json", "w"))
open("t.csv", "w").write(f"step,loss\n1,0.5\n2,{x}\n")
def npy(values):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }" % len(values)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack("<%dd" % len(values), *values)
open("a.npy", "wb").write(npy([1.0, x, 3.0]))
with zipfile.ZipFile("w.npz", "w") as z:
    z.writestr("w.npy", npy([x, 2.0]))
    z.writestr("b.npy", npy([0.0]))
def png(w, h, pixels):
    rows = b"".join(b"\x00" + bytes(pixels[r * w:(r + 1) * w]) for r in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open("i.png", "wb").write(png(2, 2, [random.randrange(256) for _ in range(4)]))
open("blob.bin", "wb").write(b"\xff\x00" + bytes(random.randrange(256) for _ in range(8)))
"#;

#[test]
fn explain_compares_each_kind_of_file() {
    let ctx = TestContext::new();
    let id = python_project(&ctx, KINDS);
    let report = verify(&ctx, &id, &["--explain"], 1);
    let file = |path: &str| report["files"].as_array().unwrap().iter().find(|f| f["path"] == path).unwrap().clone();
    let json_ = file("m.json")["evidence"].clone();
    assert_eq!((&json_["kind"], &json_["differing"], &json_["compared"]), (&"json".into(), &1.into(), &4.into()));
    assert_eq!(json_["first"]["at"], "$.loss");
    let csv = file("t.csv")["evidence"].clone();
    assert_eq!((&csv["kind"], &csv["first"]["at"]), (&"csv".into(), &"row 3, column loss".into()));
    assert_eq!(csv["first"]["record_original"].as_str().unwrap().split(',').next(), Some("2"));
    let npy = file("a.npy")["evidence"].clone();
    assert_eq!(
        (&npy["kind"], &npy["shape_original"], &npy["dtype_original"]),
        (&"npy".into(), &Value::from(vec![3]), &"<f8".into())
    );
    assert_eq!((&npy["elements"], &npy["differing"], &npy["first_differing_index"]), (&3.into(), &1.into(), &1.into()));
    assert!(npy["max_abs"].as_f64().unwrap() > 0.0);
    let npz = file("w.npz")["evidence"].clone();
    let members: Vec<(&str, &str)> = npz["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["result"].as_str().unwrap()))
        .collect();
    assert_eq!(members, [("b.npy", "identical"), ("w.npy", "differs")]);
    let png = file("i.png")["evidence"].clone();
    assert_eq!((&png["kind"], &png["pixels"]), (&"image".into(), &4.into()));
    assert!((1..=4).contains(&png["differing_pixels"].as_u64().unwrap()), "{png}");
    let blob = file("blob.bin")["evidence"].clone();
    assert_eq!((&blob["kind"], &blob["size_original"]), (&"binary".into(), &10.into()));
    assert!(blob["first_differing_offset"].as_u64().unwrap() >= 2, "the first two bytes are the same: {blob}");
    assert_eq!(verify(&ctx, &id, &[], 1)["files"][0]["evidence"], Value::Null, "evidence only with --explain");
    let text = ctx.run(["verify", &id, "--explain"]).status(1).stdout_text();
    for line in [
        "json: 1 of 4 values differ",
        "first at $.loss",
        "npy: (3) <f8; 1 of 3 elements differ",
        "of 4 pixels differ",
        "binary: 10 bytes",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}
