//! One rule for YAML scalars: the text a scalar becomes is the text MLflow's Python sees,
//! `str()` of the value PyYAML's `safe_load` loads. PyYAML follows YAML 1.1, so a plain
//! (unquoted) scalar is resolved by 1.1's rules ([`plain_scalar`]): `yes`/`on` are `True`,
//! `010` is octal, `1_000` is `1000`, `1:30` is sexagesimal `90`, a float needs a dot
//! (`1e-1` stays the text `1e-1`, `1.0e-1` is `0.1`), `2001-12-14` is a date. Quoted and block
//! scalars are text as written. MLproject parameter defaults and every other MLproject scalar
//! follow it, since MLflow formats them into the command with `str()`.
//!
//! One place departs from it on purpose: `variables:` in a `conda.yaml` ([`variable_bool`]).
//! No MLflow Python code formats those; they are environment variables lockstep sets itself,
//! and it keeps YAML's own spelling of a boolean there (`true`), the text the user wrote.
//! Floats and integers are the same text under both rules.

/// A YAML boolean as MLflow's Python sees it: `str(True)`.
pub fn python_bool(v: bool) -> &'static str {
    if v { "True" } else { "False" }
}

/// A YAML boolean as a conda environment variable's value: as YAML spells it.
pub fn variable_bool(v: bool) -> &'static str {
    if v { "true" } else { "false" }
}

mod numbers;
mod timestamp;

use numbers::{is_yaml11_float, is_yaml11_int, yaml11_float, yaml11_int};
use timestamp::yaml11_timestamp;

/// Format a float as Python's `repr` does (`0.1`, `1e-05`, `1e+16`, `3.0`), which is how
/// MLflow turns a YAML float default into text.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // `{:e}` gives the shortest digits that round-trip, like Python's repr.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{body}")
    } else {
        let mantissa = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

/// A plain YAML scalar as `str(yaml.safe_load(text))` gives it: `None` for null, else the
/// text of the bool, int, float, date or string PyYAML makes of it. An error for a value
/// PyYAML matches but cannot build (`2001-02-30`, `0x_`), on which MLflow fails too.
pub(crate) fn plain_scalar(text: &str) -> Result<Option<String>, String> {
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(None);
    }
    let resolved = if let Some(b) = yaml11_bool(text) {
        python_bool(b).to_string()
    } else if is_yaml11_float(text) {
        yaml11_float(text)?
    } else if is_yaml11_int(text) {
        yaml11_int(text)?
    } else if let Some(timestamp) = yaml11_timestamp(text) {
        timestamp?
    } else {
        text.to_string()
    };
    Ok(Some(resolved))
}

fn yaml11_bool(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::plain_scalar;

    #[test]
    fn plain_scalars_read_as_yaml_1_1() {
        for (written, seen) in [
            ("1e-1", "1e-1"),
            ("1e-5", "1e-5"),
            ("1.0e-1", "0.1"),
            ("1.0e5", "1.0e5"),
            ("1.", "1.0"),
            (".5", "0.5"),
            ("1_000.5", "1000.5"),
            ("yes", "True"),
            ("Off", "False"),
            ("y", "y"),
            ("010", "8"),
            ("09", "09"),
            ("-0", "0"),
            ("0x1F", "31"),
            ("-0b1_1", "-3"),
            ("1_000", "1000"),
            ("1:30", "90"),
            ("190:20:30.15", "685230.15"),
            ("0x123456789abcdef0123", "5373003642731685151011"),
            (".inf", "inf"),
            ("-.Inf", "-inf"),
            (".NaN", "nan"),
            ("-.nan", "-.nan"),
            ("2001-12-14", "2001-12-14"),
            ("2001-1-4", "2001-1-4"),
            ("2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.100000-05:00"),
            ("2001-12-15T02:59:43.1Z", "2001-12-15 02:59:43.100000+00:00"),
            ("2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.100000-05:00"),
            ("2001-12-15 2:59:43", "2001-12-15 02:59:43"),
            ("0o17", "0o17"),
        ] {
            assert_eq!(plain_scalar(written).unwrap().as_deref(), Some(seen), "{written}");
        }
        for null in ["", "~", "null", "NULL"] {
            assert_eq!(plain_scalar(null).unwrap(), None);
        }
        for unbuildable in ["2001-02-29", "2001-12-14 24:00:00", "0x_", "2001-12-14 1:00:00 +24"] {
            assert!(plain_scalar(unbuildable).is_err(), "{unbuildable}");
        }
    }

    #[test]
    fn booleans_read_as_python_in_mlproject_and_as_yaml_in_conda_variables() {
        let (conda, _) =
            crate::env::spec::parse_conda_env("variables: {FLAG: true, RATE: 0.1}\n", "conda.yaml").unwrap();
        assert_eq!(conda.variables["FLAG"], "true");
        assert_eq!(conda.variables["RATE"], "0.1");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("MLproject"),
            "entry_points:\n  main:\n    parameters:\n      v: {type: bool, default: true}\n    command: x {v}\n",
        )
        .unwrap();
        let manifest = super::super::Manifest::load(dir.path()).unwrap();
        let ep = &manifest.entry_points[0];
        assert_eq!(ep.parameters[0].default.as_deref(), Some("True"));
    }
}
