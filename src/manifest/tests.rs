use std::collections::BTreeMap;
use std::fs;

use super::*;

const FULL: &str = r#"
name: demo
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.10}
      l1: {type: float, default: 1e-5}
      epochs: {type: int, default: 3}
      verbose: {type: bool, default: true}
      data: path
      tag: {default: "x y"}
    command: "python train.py --alpha {alpha} --data {data} {{literal}}"
    outputs: ["metrics.json", "models/**"]
  second:
    command: echo second
"#;

fn parse_ok(text: &str) -> ParsedManifest {
    parse(text, "MLproject").unwrap()
}

fn parse_err(text: &str) -> String {
    parse(text, "MLproject").unwrap_err().to_string()
}

#[test]
fn parses_entry_points_and_parameters_in_file_order() {
    let m = parse_ok(FULL);
    assert_eq!(m.name.as_deref(), Some("demo"));
    assert_eq!(m.env, Some(EnvSpec::Python { file: "python_env.yaml".into() }));
    let names: Vec<_> = m.entry_points.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["main", "second"]);
    let main = &m.entry_points[0];
    let params: Vec<_> = main.parameters.iter().map(|p| (p.name.as_str(), p.ty, p.default.as_deref())).collect();
    assert_eq!(
        params,
        [
            ("alpha", ParamType::Float, Some("0.1")),
            ("l1", ParamType::Float, Some("1e-5")),
            ("epochs", ParamType::Int, Some("3")),
            ("verbose", ParamType::Bool, Some("True")),
            ("data", ParamType::Path, None),
            ("tag", ParamType::String, Some("x y")),
        ]
    );
    assert_eq!(main.outputs, ["metrics.json", "models/**"]);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn two_environment_keys_are_an_error_at_the_second() {
    let err = parse_err("name: x\npython_env: a.yaml\nconda_env: b.yaml\n");
    assert!(err.starts_with("MLproject:3:"), "{err}");
    assert!(err.contains("'conda_env' and 'python_env' are both given"), "{err}");
}

#[test]
fn invalid_yaml_reports_line_and_column() {
    let err = parse_err("name: x\nentry_points:\n  main:\n    command: [unclosed\n");
    assert!(err.starts_with("MLproject:"), "{err}");
    let parts: Vec<_> = err.splitn(4, ':').collect();
    assert!(parts[1].parse::<usize>().is_ok() && parts[2].parse::<usize>().is_ok(), "{err}");
    assert!(!err.contains(" at line "), "location is not repeated: {err}");
}

#[test]
fn non_mapping_manifest_is_an_error() {
    let err = parse_err("- just\n- a list\n");
    assert!(err.contains("MLproject:1:1"), "{err}");
}

#[test]
fn empty_manifest_is_empty() {
    let m = parse_ok("# nothing here\n");
    assert!(m.entry_points.is_empty());
    assert_eq!(m.env, None);
}

#[test]
fn missing_command_is_an_error() {
    let err = parse_err("entry_points:\n  main:\n    parameters: {a: int}\n");
    assert!(err.contains("entry point 'main' has no command"), "{err}");
}

#[test]
fn unknown_type_warns_and_reads_as_string() {
    let m = parse_ok("entry_points:\n  main:\n    parameters: {a: tensor}\n    command: echo {a}\n");
    assert_eq!(m.entry_points[0].parameters[0].ty, ParamType::String);
    assert_eq!(m.warnings.len(), 1);
    assert!(m.warnings[0].contains("unknown type 'tensor'"));
}

#[test]
fn unknown_keys_warn() {
    let m = parse_ok("entry_point:\n  main: {command: x}\n");
    assert!(m.warnings[0].contains("unknown key 'entry_point'"), "{:?}", m.warnings);
}

#[test]
fn invalid_default_is_an_error_at_the_parameter() {
    let err =
        parse_err("entry_points:\n  main:\n    parameters:\n      a: {type: float, default: abc}\n    command: x\n");
    assert!(err.starts_with("MLproject:4:"), "{err}");
    assert!(err.contains("default 'abc' is not a number"), "{err}");
}

#[test]
fn duplicate_entry_point_is_an_error() {
    let err = parse_err("entry_points:\n  main: {command: a}\n  main: {command: b}\n");
    assert!(err.contains("declared twice"), "{err}");
}

#[test]
fn duplicates_far_apart_are_found_among_many() {
    let mut text = String::from("entry_points:\n");
    for i in 0..3000 {
        text.push_str(&format!("  ep{i}: {{command: x}}\n"));
    }
    text.push_str("  ep7: {command: y}\n");
    let err = parse_err(&text);
    assert!(err.starts_with("MLproject:3002:") && err.contains("entry point 'ep7' is declared twice"), "{err}");

    let mut text = String::from("entry_points:\n  main:\n    command: x\n    parameters:\n");
    for i in 0..3000 {
        text.push_str(&format!("      p{i}: string\n"));
    }
    text.push_str("      p0: float\n");
    let err = parse_err(&text);
    assert!(err.contains("parameter 'p0' is declared twice"), "{err}");

    let mut args: Vec<String> = (0..3000).map(|i| format!("p{i}=v")).collect();
    assert_eq!(ParamArgs::parse(&args).unwrap().iter().count(), 3000);
    args.push("p2999=w".into());
    assert!(matches!(ParamArgs::parse(&args), Err(ManifestError::RepeatedParam { name }) if name == "p2999"));
}

#[test]
fn a_project_has_a_manifest_or_the_entry_point_script() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert!(!is_project_dir(p, "main"));
    fs::write(p.join("train.py"), "").unwrap();
    assert!(is_project_dir(p, "train.py"));
    assert!(!is_project_dir(p, "main"));
    fs::create_dir(p.join("sub")).unwrap();
    assert!(!is_project_dir(&p.join("sub"), "../train.py"), "the script must be inside");
    fs::write(p.join("sub/mlproject"), "name: x\n").unwrap();
    assert!(is_project_dir(&p.join("sub"), "main"));
}

#[test]
fn docker_env_with_copied_and_literal_variables() {
    let m = parse_ok(
        "docker_env:\n  image: base:1\n  volumes: [\"/a:/b\"]\n  environment: [HOME, [\"MODE\", \"fast\"]]\nentry_points: {}\n",
    );
    assert_eq!(
        m.env,
        Some(EnvSpec::Docker(DockerEnv {
            image: "base:1".into(),
            volumes: vec!["/a:/b".into()],
            environment: vec![DockerEnvVar::Copy("HOME".into()), DockerEnvVar::Set("MODE".into(), "fast".into())],
        }))
    );
    let err = parse_err("docker_env:\n  volumes: []\n");
    assert!(err.contains("docker_env has no image"), "{err}");
    let err = parse_err("docker_env:\n  image: x\n  environment: [[\"A\"]]\n");
    assert!(err.contains("[NAME, value]"), "{err}");
}

#[test]
fn bad_output_glob_is_an_error() {
    let err = parse_err("entry_points:\n  main: {command: x, outputs: [\"a[\"]}\n");
    assert!(err.contains("bad output glob"), "{err}");
}

#[test]
fn shell_quote_matches_python_shlex() {
    assert_eq!(shell_quote(""), "''");
    assert_eq!(shell_quote("abc-1.5/x@y%z+=:,"), "abc-1.5/x@y%z+=:,");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), r#"'it'"'"'s'"#);
    assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    assert_eq!(shell_quote("é"), "'é'");
}

#[test]
fn python_float_repr_matches_python() {
    for (f, s) in [
        (0.1, "0.1"),
        (1.0, "1.0"),
        (-2.5, "-2.5"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (123456789012345.0, "123456789012345.0"),
        (0.0, "0.0"),
        (100.0, "100.0"),
        (12.375, "12.375"),
        (f64::INFINITY, "inf"),
    ] {
        assert_eq!(python_float_repr(f), s, "{f}");
    }
}

fn entry(command: &str, params: &[(&str, ParamType, Option<&str>)]) -> EntryPoint {
    EntryPoint {
        name: "main".into(),
        parameters: params
            .iter()
            .map(|(n, t, d)| Parameter { name: n.to_string(), ty: *t, default: d.map(str::to_string) })
            .collect(),
        command: command.into(),
        outputs: vec![],
    }
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn render_quotes_values_and_keeps_literal_braces() {
    let ep = entry(
        "train --a {alpha} --n {name} {{x}} }}",
        &[("alpha", ParamType::Float, None), ("name", ParamType::String, None)],
    );
    let cmd = render_command(&ep, &values(&[("alpha", "0.5"), ("name", "my run")]), &[]).unwrap();
    assert_eq!(cmd, "train --a 0.5 --n 'my run' {x} }");
}

#[test]
fn render_appends_undeclared_values() {
    let ep = entry("train", &[]);
    let extra = vec![("lr".to_string(), "0.1".to_string()), ("note".to_string(), "a b".to_string())];
    assert_eq!(render_command(&ep, &BTreeMap::new(), &extra).unwrap(), "train --lr 0.1 --note 'a b'");
}

#[test]
fn render_rejects_undeclared_and_malformed_placeholders() {
    let ep = entry("train {missing}", &[]);
    let err = render_command(&ep, &BTreeMap::new(), &[]).unwrap_err();
    assert!(matches!(err, ManifestError::UndeclaredPlaceholder { ref placeholder, .. } if placeholder == "missing"));
    for bad in ["train {", "train }", "train {a b}", "train {}"] {
        let err = render_command(&entry(bad, &[]), &BTreeMap::new(), &[]).unwrap_err();
        assert!(matches!(err, ManifestError::MalformedCommand { .. }), "{bad}: {err}");
    }
}

#[test]
fn param_args_split_on_first_equals() {
    let args = ParamArgs::parse(&["a=1", "url=http://x?y=z", "empty="]).unwrap();
    assert_eq!(args.get("a"), Some("1"));
    assert_eq!(args.get("url"), Some("http://x?y=z"));
    assert_eq!(args.get("empty"), Some(""));
    assert!(matches!(ParamArgs::parse(&["novalue"]), Err(ManifestError::ParamWithoutValue { .. })));
    assert!(matches!(ParamArgs::parse(&["=x"]), Err(ManifestError::ParamWithoutValue { .. })));
    assert!(matches!(ParamArgs::parse(&["a=1", "a=2"]), Err(ManifestError::RepeatedParam { .. })));
}

#[test]
fn bind_checks_types_and_requires_values() {
    let ep = entry(
        "x",
        &[
            ("f", ParamType::Float, Some("0.5")),
            ("i", ParamType::Int, Some("3")),
            ("b", ParamType::Bool, Some("True")),
            ("u", ParamType::Uri, Some("s3://b/k")),
            ("req", ParamType::String, None),
        ],
    );
    let bound = bind_parameters(&ep, &ParamArgs::parse(&["req=r", "f=1e-3", "extra=1"]).unwrap()).unwrap();
    let raw: Vec<_> = bound.iter().map(|b| (b.name.as_str(), b.raw.as_str(), b.declared)).collect();
    assert_eq!(
        raw,
        [
            ("f", "1e-3", true),
            ("i", "3", true),
            ("b", "True", true),
            ("u", "s3://b/k", true),
            ("req", "r", true),
            ("extra", "1", false)
        ]
    );
    let err = bind_parameters(&ep, &ParamArgs::default()).unwrap_err();
    assert_eq!(err.to_string(), "entry point 'main' needs parameter 'req' (string), which has no default");
    for (arg, msg) in [
        ("f=abc", "parameter 'f' is declared float, but its value 'abc' is not a number"),
        ("i=1.5", "is not an integer"),
        ("b=maybe", "is not a boolean"),
        ("u=/local/path", "has no scheme"),
    ] {
        let err = bind_parameters(&ep, &ParamArgs::parse(&["req=r", arg]).unwrap()).unwrap_err();
        assert!(err.to_string().contains(msg), "{arg}: {err}");
    }
}

#[test]
fn bind_classifies_path_values() {
    let ep = entry("x", &[("p", ParamType::Path, Some("data/train.csv"))]);
    let default = bind_parameters(&ep, &ParamArgs::default()).unwrap();
    assert_eq!(default[0].value, ParamValue::LocalPath { path: "data/train.csv".into(), from_project: true });
    let given = bind_parameters(&ep, &ParamArgs::parse(&["p=in.csv"]).unwrap()).unwrap();
    assert_eq!(given[0].value, ParamValue::LocalPath { path: "in.csv".into(), from_project: false });
    let url = bind_parameters(&ep, &ParamArgs::parse(&["p=https://h/x.csv"]).unwrap()).unwrap();
    assert_eq!(url[0].value, ParamValue::Url("https://h/x.csv".into()));
    let file = bind_parameters(&ep, &ParamArgs::parse(&["p=file:///tmp/a%20b"]).unwrap()).unwrap();
    assert_eq!(file[0].value, ParamValue::LocalPath { path: "/tmp/a b".into(), from_project: false });
    assert!(bind_parameters(&ep, &ParamArgs::parse(&["p=s3://b/k"]).unwrap()).is_err());
}

#[test]
fn load_applies_environment_file_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert_eq!(Manifest::load(p).unwrap().env, EnvSpec::None);
    fs::write(p.join("conda.yaml"), "name: x\n").unwrap();
    assert_eq!(Manifest::load(p).unwrap().env, EnvSpec::Conda { file: "conda.yaml".into() });
    fs::write(p.join("python_env.yaml"), "python: '3.11'\n").unwrap();
    assert_eq!(Manifest::load(p).unwrap().env, EnvSpec::Python { file: "python_env.yaml".into() });
    fs::write(p.join("mlproject"), "conda_env: conda.yaml\nentry_points: {main: {command: x}}\n").unwrap();
    let m = Manifest::load(p).unwrap();
    assert_eq!(m.env, EnvSpec::Conda { file: "conda.yaml".into() }, "an explicit key wins");
    assert_eq!(m.file.as_deref(), Some(p.join("mlproject").as_path()), "the file name is matched case-insensitively");
}

#[test]
fn load_rejects_a_missing_environment_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("MLproject"), "python_env: env.yaml\n").unwrap();
    let err = Manifest::load(dir.path()).unwrap_err().to_string();
    assert!(err.starts_with("MLproject: python_env names 'env.yaml', which does not exist"), "{err}");
}

#[test]
fn entry_point_falls_back_to_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(p.join("MLproject"), "entry_points: {main: {command: x}, eval: {command: y}}\n").unwrap();
    fs::write(p.join("my train.py"), "").unwrap();
    fs::write(p.join("run.sh"), "").unwrap();
    let m = Manifest::load(p).unwrap();
    assert_eq!(m.entry_point("my train.py", p).unwrap().command, "python 'my train.py'");
    assert_eq!(m.entry_point("run.sh", p).unwrap().command, "bash run.sh");
    let err = m.entry_point("nope.py", p).unwrap_err();
    assert!(matches!(err, ManifestError::ScriptNotFound { .. }));
    let err = m.entry_point("train", p).unwrap_err().to_string();
    assert!(err.contains("the MLproject declares: main, eval"), "{err}");
}

#[test]
fn path_parameters_given_object_store_uris_say_what_to_do() {
    let ep = entry("x {data}", &[("data", ParamType::Path, None)]);
    for (value, scheme, hint) in [
        ("s3://bucket/train.csv", "s3", "declare the parameter `uri`"),
        ("gs://bucket/train.csv", "gs", "declare the parameter `uri`"),
        ("dbfs:/data/train.csv", "dbfs", "declare the parameter `uri`"),
        ("wasbs://c@a.blob.core.windows.net/t.csv", "wasbs", "declare the parameter `uri`"),
    ] {
        let args = ParamArgs::parse(&[format!("data={value}").as_str()]).unwrap();
        let err = bind_parameters(&ep, &args).unwrap_err();
        assert!(matches!(&err, ManifestError::RemotePath { scheme: s, .. } if s == scheme), "{value}: {err}");
        assert!(err.to_string().contains(value), "{err}");
        assert!(err.hint().unwrap().contains(hint), "{value}");
    }
    let args = ParamArgs::parse(&["data=weird:thing"]).unwrap();
    assert!(matches!(bind_parameters(&ep, &args), Err(ManifestError::InvalidValue { .. })));
}

#[test]
fn path_parameters_given_mlflow_artifact_uris_are_fetched() {
    let ep = entry("x {data}", &[("data", ParamType::Path, None)]);
    for value in ["runs:/0123abcd/model.pkl", "models:/churn/3", "models:/m-1", "mlflow-artifacts:/0/a/b"] {
        let args = ParamArgs::parse(&[format!("data={value}").as_str()]).unwrap();
        let bound = bind_parameters(&ep, &args).unwrap();
        assert_eq!(bound[0].value, ParamValue::Artifact(value.into()));
    }
}
