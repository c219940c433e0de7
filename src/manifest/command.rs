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
