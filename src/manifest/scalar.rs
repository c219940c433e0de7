//! One rule for YAML scalars: the text a scalar becomes is the text MLflow's Python sees,
//! `str()` of the value PyYAML loads: `True` for a boolean, Python's `repr` for a float
//! (`0.1`, `1e-05`), the digits of an integer. MLproject parameter defaults and every other
//! MLproject scalar follow it, since MLflow formats them into the command with `str()`.
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

#[cfg(test)]
mod tests {
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
