//! Rendering a command template the way MLflow does: `str.format` with shell-quoted values.

use std::collections::{BTreeMap, HashSet};

use super::{EntryPoint, ManifestError};

/// Quote a value for a POSIX shell exactly as Python's `shlex.quote` does.
pub fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if value.is_empty() {
        "''".to_string()
    } else if value.chars().all(safe) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r#"'"'"'"#))
    }
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

/// Render the entry point's command: `{name}` becomes the quoted value of a declared
/// parameter, `{{` and `}}` are literal braces, and `extra` (undeclared `-P` values) is
/// appended as `--name value`.
pub fn render_command(
    ep: &EntryPoint,
    values: &BTreeMap<String, String>,
    extra: &[(String, String)],
) -> Result<String, ManifestError> {
    let template = ep.command.as_str();
    let malformed = |offset| ManifestError::MalformedCommand {
        entry_point: ep.name.clone(),
        command: template.to_string(),
        offset,
    };
    let declared: HashSet<&str> = ep.parameters.iter().map(|p| p.name.as_str()).collect();
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let offset = template.len() - rest.len() + i;
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(malformed(offset));
        }
        let end = tail.find('}').ok_or_else(|| malformed(offset))?;
        let name = &tail[1..end];
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.') {
            return Err(malformed(offset));
        }
        let value = values.get(name).filter(|_| declared.contains(name)).ok_or_else(|| {
            ManifestError::UndeclaredPlaceholder { entry_point: ep.name.clone(), placeholder: name.to_string() }
        })?;
        out.push_str(&shell_quote(value));
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    for (name, value) in extra {
        out.push_str(&format!(" --{} {}", shell_quote(name), shell_quote(value)));
    }
    Ok(out)
}
