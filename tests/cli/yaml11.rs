//! MLproject scalars as MLflow's Python reads them: parameter defaults generated here are
//! rendered by `lockstep run` and compared with `str(yaml.safe_load(...))` from the PyYAML of
//! the MLflow test virtualenv (YAML 1.1), value by value.

use std::process::Command;

use serde_json::Value;

use crate::support::mlflow::mlflow_bin;
use crate::support::*;

/// Scalars YAML 1.1 and 1.2 read differently, or that look alike; quoted ones are strings.
const WRITTEN: &[&str] = &[
    "1e-1",
    "1e-5",
    "1.0e-1",
    "1.0e+5",
    "1.0e5",
    "1E+3",
    "1.",
    ".5",
    "+.5",
    "-.5",
    "1_000",
    "1_000.5",
    "1__0",
    "010",
    "0o17",
    "0x1F",
    "-0x1f",
    "0x_1",
    "0b101",
    "-0b1_1",
    "09",
    "00",
    "0",
    "-0",
    "+0",
    "+12",
    "12_",
    "1:30",
    "-1:30",
    "1:60",
    "190:20:30",
    "190:20:30.15",
    "1:2:3.",
    ".inf",
    "-.inf",
    "+.INF",
    ".Inf",
    ".nan",
    ".NaN",
    ".NAN",
    "-.nan",
    "inf",
    "nan",
    "yes",
    "Yes",
    "YES",
    "yEs",
    "no",
    "No",
    "on",
    "On",
    "ON",
    "off",
    "OFF",
    "y",
    "n",
    "true",
    "False",
    "TRUE",
    "tRUE",
    "2001-12-14",
    "2001-1-4",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "2001-12-15T02:59:43.1Z",
    "2001-12-15 2:59:43",
    "2001-12-14 21:59:43.1234567",
    "2002-12-14 21:59:43.000 +01:30",
    "2001-12-14T21:59:43+00",
    "123456789012345678901234567890",
    "0x123456789abcdef0123",
    "1e400",
    "1.0e+400",
    "3.14159265358979323846",
    "0.1",
    "100.0",
    "1e",
    "e1",
    "'yes'",
    "\"1e-1\"",
    "'010'",
    "\"0x1F\"",
    "'~'",
    "\"\"",
    "'1:30'",
    "x y",
    "1 2",
];

/// Strings over digits, signs, dots, underscores, colons and exponents, from a fixed seed.
fn generated(n: usize) -> Vec<String> {
    const ALPHABET: &[u8] = b"0123456789+-._:eExob";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let len = 1 + (next() % 7) as usize;
            (0..len).map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char).collect()
        })
        .collect()
}

/// `str(yaml.safe_load("v: " + c)["v"])` for each candidate PyYAML reads as one scalar value
/// (not null, no error, no list or mapping).
fn pyyaml(candidates: &[String]) -> Vec<(String, String)> {
    const SCRIPT: &str = r#"
import datetime, json, sys, yaml
out = []
for c in json.load(sys.stdin):
    try:
        v = yaml.safe_load("v: " + c)["v"]
    except Exception:
        continue
    if type(v) in (str, int, float, bool, datetime.date, datetime.datetime):
        out.append([c, str(v)])
json.dump(out, sys.stdout)
"#;
    let python = mlflow_bin().parent().unwrap().join("python");
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the MLflow virtualenv's python runs");
    serde_json::to_writer(child.stdin.take().unwrap(), candidates).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "PyYAML ran");
    let pairs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    pairs.iter().map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string())).collect()
}

#[test]
fn defaults_render_as_pyyaml_reads_them() {
    let mut candidates: Vec<String> = WRITTEN.iter().map(|s| s.to_string()).collect();
    candidates.extend(generated(400));
    let expected = pyyaml(&candidates);
    assert!(expected.len() > 250, "most candidates are scalars to PyYAML: {}", expected.len());
    let mut mlproject = String::from("name: yaml11\nentry_points:\n  main:\n    parameters:\n");
    let mut command = String::from("printf '%s\\n'");
    for (i, (written, _)) in expected.iter().enumerate() {
        mlproject.push_str(&format!("      p{i}:\n        type: string\n        default: {written}\n"));
        command.push_str(&format!(" {{p{i}}}"));
    }
    mlproject.push_str(&format!("    command: \"{command}\"\n"));
    let ctx = TestContext::new().file("p/MLproject", &mlproject);
    let out = ctx.run(["run", "p", "--env-manager", "local"]).success();
    let rendered: Vec<String> = out.stdout_text().lines().map(String::from).collect();
    let mismatches: Vec<String> = expected
        .iter()
        .zip(&rendered)
        .filter(|((_, want), got)| want != *got)
        .map(|((written, want), got)| format!("{written:?}: PyYAML {want:?}, lockstep {got:?}"))
        .collect();
    assert_eq!(rendered.len(), expected.len(), "one line per parameter");
    assert!(mismatches.is_empty(), "{} of {} differ:\n{}", mismatches.len(), expected.len(), mismatches.join("\n"));
}
