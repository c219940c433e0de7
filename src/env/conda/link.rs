//! Installing unpacked conda packages into a prefix, as conda does: files hard-linked (or
//! copied) from the package cache, prefix placeholders replaced by the environment's final
//! path, noarch python packages mapped into the interpreter's site-packages with their entry
//! points written, and a `conda-meta/` record per package.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::super::cache::replace_all;
use super::super::lock::CondaPackage;

/// One file of a package, from `info/paths.json` (or the older `info/files`).
#[derive(Debug, Deserialize)]
struct PathEntry {
    #[serde(rename = "_path")]
    path: String,
    #[serde(default)]
    path_type: Option<String>,
    #[serde(default)]
    prefix_placeholder: Option<String>,
    #[serde(default)]
    file_mode: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PathsJson {
    paths: Vec<PathEntry>,
}

/// Where noarch python files go: the interpreter's `lib/pythonX.Y/site-packages`.
#[derive(Debug, Clone)]
pub struct PythonLayout {
    /// `lib/python3.11/site-packages`.
    pub site_packages: String,
}

impl PythonLayout {
    /// The layout for a Python `major.minor[.patch]` version.
    pub fn for_version(version: &str) -> PythonLayout {
        let mm: Vec<&str> = version.split('.').take(2).collect();
        PythonLayout { site_packages: format!("lib/python{}/site-packages", mm.join(".")) }
    }
}

/// What linking one package wrote, for its `conda-meta` record.
#[derive(Debug, Serialize)]
struct PrefixRecord<'a> {
    name: &'a str,
    version: &'a str,
    build: &'a str,
    build_number: u64,
    channel: &'a str,
    subdir: &'a str,
    url: &'a str,
    #[serde(rename = "fn")]
    filename: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5: Option<&'a str>,
    depends: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    noarch: Option<&'a str>,
    files: Vec<String>,
    extracted_package_dir: String,
    requested_spec: &'a str,
}

/// Link the package unpacked at `pkg_dir` into `dest` (the directory being written), for an
/// environment that will live at `prefix`.
pub fn link_package(
    pkg: &CondaPackage,
    pkg_dir: &Path,
    dest: &Path,
    prefix: &Path,
    python: Option<&PythonLayout>,
) -> io::Result<()> {
    let noarch_python = pkg.noarch.as_deref() == Some("python");
    let entries = read_paths(pkg_dir)?;
    let prefix_str = prefix.to_string_lossy();
    let mut files = Vec::new();
    for entry in entries {
        if entry.path_type.as_deref() == Some("directory") {
            fs::create_dir_all(dest.join(&entry.path))?;
            continue;
        }
        let target_rel = match (noarch_python, python) {
            (true, Some(py)) => noarch_python_path(&entry.path, py),
            (true, None) => {
                return Err(io::Error::other(format!(
                    "{} is a noarch python package, but the environment has no python",
                    pkg.name
                )));
            }
            (false, _) => entry.path.clone(),
        };
        let source = pkg_dir.join(&entry.path);
        let target = dest.join(&target_rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        if fs::symlink_metadata(&target).is_ok() {
            fs::remove_file(&target)?;
        }
        let meta = fs::symlink_metadata(&source)?;
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &target)?;
        } else if let Some(placeholder) = &entry.prefix_placeholder {
            let bytes = fs::read(&source)?;
            let binary = entry.file_mode.as_deref() == Some("binary");
            let replaced = if binary {
                replace_binary(&bytes, placeholder.as_bytes(), prefix_str.as_bytes())?
            } else {
                let text = replace_all(&bytes, placeholder.as_bytes(), prefix_str.as_bytes()).unwrap_or(bytes);
                shorten_long_shebang(text)
            };
            fs::write(&target, replaced)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(meta.permissions().mode()))?;
        } else if noarch_python && target_rel.starts_with("bin/") {
            // python-scripts/ need the environment's interpreter in their shebang.
            let bytes = fs::read(&source)?;
            fs::write(&target, fix_python_shebang(bytes, prefix))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(meta.permissions().mode() | 0o111))?;
        } else if fs::hard_link(&source, &target).is_err() {
            fs::copy(&source, &target)?;
        }
        files.push(target_rel);
    }
    if noarch_python {
        for script in write_entry_points(pkg_dir, dest, prefix)? {
            files.push(script);
        }
    }
    write_prefix_record(pkg, pkg_dir, dest, files)
}

fn read_paths(pkg_dir: &Path) -> io::Result<Vec<PathEntry>> {
    if let Ok(bytes) = fs::read(pkg_dir.join("info/paths.json")) {
        let paths: PathsJson = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
        return Ok(paths.paths);
    }
    // Packages older than paths.json: info/files plus info/has_prefix
    // (`placeholder mode path` or just `path`, with /opt/anaconda1anaconda2anaconda3 implied).
    let files = fs::read_to_string(pkg_dir.join("info/files"))?;
    let mut prefixes = BTreeMap::new();
    if let Ok(has_prefix) = fs::read_to_string(pkg_dir.join("info/has_prefix")) {
        for line in has_prefix.lines().filter(|l| !l.trim().is_empty()) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                [placeholder, mode, path] => {
                    prefixes.insert(path.to_string(), (placeholder.to_string(), mode.to_string()));
                }
                _ => {
                    prefixes
                        .insert(line.trim().to_string(), ("/opt/anaconda1anaconda2anaconda3".into(), "text".into()));
                }
            }
        }
    }
    Ok(files
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|p| {
            let p = p.trim().to_string();
            let prefix = prefixes.get(&p).cloned();
            PathEntry {
                path_type: None,
                prefix_placeholder: prefix.as_ref().map(|(ph, _)| ph.clone()),
                file_mode: prefix.map(|(_, mode)| mode),
                path: p,
            }
        })
        .collect())
}

/// `site-packages/x` and `python-scripts/x` of a noarch python package, placed.
fn noarch_python_path(path: &str, python: &PythonLayout) -> String {
    if let Some(rest) = path.strip_prefix("site-packages/") {
        format!("{}/{rest}", python.site_packages)
    } else if let Some(rest) = path.strip_prefix("python-scripts/") {
        format!("bin/{rest}")
    } else {
        path.to_string()
    }
}

/// Replace a placeholder inside NUL-terminated strings, padding with NULs so that the file
/// keeps its length (what conda does for binaries).
fn replace_binary(bytes: &[u8], placeholder: &[u8], prefix: &[u8]) -> io::Result<Vec<u8>> {
    if prefix.len() > placeholder.len() {
        return Err(io::Error::other(format!(
            "the environment path is longer than the package's placeholder ({} > {} bytes)",
            prefix.len(),
            placeholder.len()
        )));
    }
    let mut out = bytes.to_vec();
    let mut i = 0;
    while let Some(pos) = find(&out[i..], placeholder).map(|p| p + i) {
        let end = out[pos..].iter().position(|&b| b == 0).map_or(out.len(), |e| pos + e);
        let segment = out[pos..end].to_vec();
        let mut replaced = replace_all(&segment, placeholder, prefix).unwrap_or(segment.clone());
        replaced.resize(segment.len(), 0);
        out[pos..end].copy_from_slice(&replaced);
        i = pos + prefix.len().max(1);
    }
    Ok(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A shebang longer than the kernel's 127-byte limit becomes `#!/usr/bin/env PROGRAM`, as
/// conda rewrites it.
fn shorten_long_shebang(text: Vec<u8>) -> Vec<u8> {
    if !text.starts_with(b"#!") {
        return text;
    }
    let end = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
    if end <= 127 {
        return text;
    }
    let line = String::from_utf8_lossy(&text[2..end]).into_owned();
    let mut words = line.split_whitespace();
    let program = words.next().and_then(|p| p.rsplit('/').next()).unwrap_or("sh").to_string();
    let rest: Vec<&str> = words.collect();
    let mut out = format!("#!/usr/bin/env {program}").into_bytes();
    if !rest.is_empty() {
        out.extend_from_slice(format!(" {}", rest.join(" ")).as_bytes());
    }
    out.extend_from_slice(&text[end..]);
    out
}

/// A script's `#!...python...` line pointed at the environment's interpreter.
fn fix_python_shebang(bytes: Vec<u8>, prefix: &Path) -> Vec<u8> {
    if !bytes.starts_with(b"#!") {
        return bytes;
    }
    let end = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len());
    if !String::from_utf8_lossy(&bytes[..end]).contains("python") {
        return bytes;
    }
    let mut out = format!("#!{}/bin/python", prefix.display()).into_bytes();
    out.extend_from_slice(&bytes[end..]);
    shorten_long_shebang(out)
}

/// Write the console scripts of `info/link.json`'s entry points; returns their paths.
fn write_entry_points(pkg_dir: &Path, dest: &Path, prefix: &Path) -> io::Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Link {
        noarch: Noarch,
    }
    #[derive(Deserialize)]
    struct Noarch {
        #[serde(default)]
        entry_points: Vec<String>,
    }
    let Ok(bytes) = fs::read(pkg_dir.join("info/link.json")) else { return Ok(vec![]) };
    let link: Link = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
    let mut written = Vec::new();
    for ep in link.noarch.entry_points {
        let Some((command, target)) = ep.split_once('=') else { continue };
        let Some((module, function)) = target.trim().split_once(':') else { continue };
        let (command, module, function) = (command.trim(), module.trim(), function.trim());
        let import_name = function.split('.').next().unwrap_or(function);
        let script = format!(
            "#!{}/bin/python\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n\nfrom {module} import {import_name}\n\nif __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])\n    sys.exit({function}())\n",
            prefix.display()
        );
        let rel = format!("bin/{command}");
        let path = dest.join(&rel);
        fs::create_dir_all(dest.join("bin"))?;
        fs::write(&path, shorten_long_shebang(script.into_bytes()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        written.push(rel);
    }
    Ok(written)
}

fn write_prefix_record(pkg: &CondaPackage, pkg_dir: &Path, dest: &Path, files: Vec<String>) -> io::Result<()> {
    let record = PrefixRecord {
        name: &pkg.name,
        version: &pkg.version,
        build: &pkg.build,
        build_number: pkg.build_number,
        channel: &pkg.channel,
        subdir: &pkg.subdir,
        url: &pkg.url,
        filename: &pkg.filename,
        sha256: pkg.sha256.as_deref(),
        md5: pkg.md5.as_deref(),
        depends: &pkg.depends,
        noarch: pkg.noarch.as_deref(),
        files,
        extracted_package_dir: pkg_dir.display().to_string(),
        requested_spec: "",
    };
    let dir = dest.join("conda-meta");
    fs::create_dir_all(&dir)?;
    let json = serde_json::to_vec_pretty(&record).map_err(io::Error::other)?;
    fs::write(dir.join(format!("{}-{}-{}.json", pkg.name, pkg.version, pkg.build)), json)
}

/// The activation scripts of an environment: `etc/conda/activate.d/*.sh`, in name order.
pub fn activation_scripts(prefix: &Path) -> Vec<String> {
    let dir = prefix.join("etc/conda/activate.d");
    let Ok(entries) = fs::read_dir(&dir) else { return vec![] };
    let mut scripts: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sh"))
        .map(|n| format!("etc/conda/activate.d/{n}"))
        .collect();
    scripts.sort();
    scripts
}

/// The `conda-meta/*.json` records of an environment made by another tool, as lock entries.
pub fn read_conda_meta(prefix: &Path) -> io::Result<Vec<CondaPackage>> {
    #[derive(Deserialize)]
    struct Meta {
        name: String,
        version: String,
        build: String,
        #[serde(default)]
        build_number: u64,
        #[serde(default)]
        channel: Option<String>,
        #[serde(default)]
        subdir: Option<String>,
        #[serde(default)]
        url: Option<String>,
        #[serde(rename = "fn", default)]
        filename: Option<String>,
        #[serde(default)]
        sha256: Option<String>,
        #[serde(default)]
        md5: Option<String>,
        #[serde(default)]
        depends: Vec<String>,
        #[serde(default)]
        noarch: Option<serde_json::Value>,
    }
    let mut out = Vec::new();
    let dir: PathBuf = prefix.join("conda-meta");
    for entry in fs::read_dir(&dir)?.flatten() {
        if !entry.file_name().to_string_lossy().ends_with(".json") {
            continue;
        }
        let Ok(m) = serde_json::from_slice::<Meta>(&fs::read(entry.path())?) else { continue };
        out.push(CondaPackage {
            url: m.url.unwrap_or_default(),
            filename: m.filename.unwrap_or_default(),
            channel: m.channel.unwrap_or_default(),
            subdir: m.subdir.unwrap_or_default(),
            name: m.name,
            version: m.version,
            build: m.build,
            build_number: m.build_number,
            sha256: m.sha256,
            md5: m.md5,
            depends: m.depends,
            noarch: m.noarch.and_then(|v| v.as_str().map(String::from)),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_placeholders_keep_the_length() {
        let ph = b"/opt/placeholder_placeholder";
        let mut bytes = b"xx".to_vec();
        bytes.extend_from_slice(ph);
        bytes.extend_from_slice(b"/lib\0yy");
        let out = replace_binary(&bytes, ph, b"/env").unwrap();
        assert_eq!(out.len(), bytes.len());
        assert!(out.starts_with(b"xx/env/lib\0"));
        assert!(out.ends_with(b"\0yy"));
        assert!(replace_binary(&bytes, ph, &[b'a'; 64]).is_err());
    }

    #[test]
    fn long_shebangs_use_env() {
        let long = format!("#!/{}/bin/python -u\nprint(1)\n", "x".repeat(130));
        assert_eq!(shorten_long_shebang(long.into_bytes()), b"#!/usr/bin/env python -u\nprint(1)\n");
        assert_eq!(shorten_long_shebang(b"#!/bin/sh\n".to_vec()), b"#!/bin/sh\n");
    }

    #[test]
    fn noarch_python_paths_move_into_site_packages() {
        let py = PythonLayout::for_version("3.11.7");
        assert_eq!(noarch_python_path("site-packages/a/b.py", &py), "lib/python3.11/site-packages/a/b.py");
        assert_eq!(noarch_python_path("python-scripts/tool", &py), "bin/tool");
        assert_eq!(noarch_python_path("share/x", &py), "share/x");
    }
}
