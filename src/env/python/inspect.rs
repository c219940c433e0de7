//! What a built environment holds: the distributions in its site-packages, matched with
//! the artifacts the installer reported.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::env::EnvError;
use crate::env::lock::{PyPackage, normalize_name};

/// Every distribution in the site-packages of the environment at `prefix`, with the artifact
/// it came from where the installer said so, sorted by normalized name.
pub fn installed_packages(prefix: &Path, artifacts: &Artifacts) -> Result<Vec<PyPackage>, EnvError> {
    let mut out = BTreeMap::new();
    for site in site_packages_dirs(prefix) {
        let Ok(entries) = fs::read_dir(&site) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".dist-info") {
                continue;
            }
            let dir = entry.path();
            let Ok(metadata) = fs::read_to_string(dir.join("METADATA")) else { continue };
            let field = |f: &str| {
                metadata
                    .lines()
                    .take_while(|l| !l.is_empty())
                    .find_map(|l| l.strip_prefix(f).map(|v| v.trim().to_string()))
            };
            let (Some(pkg), Some(version)) = (field("Name:"), field("Version:")) else { continue };
            let mut package = PyPackage { name: pkg.clone(), version, url: None, sha256: None };
            let tags: Vec<String> = fs::read_to_string(dir.join("WHEEL"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.strip_prefix("Tag:").map(|t| t.trim().to_string()))
                .collect();
            let candidates: Vec<PyPackage> = artifacts
                .get(&normalize_name(&pkg))
                .map(|c| c.iter().filter(|a| a.version == package.version).cloned().collect())
                .unwrap_or_default();
            let known = match candidates.len() {
                1 => candidates.first(),
                _ => installed_artifact(&candidates, &tags),
            };
            if let Some(known) = known {
                package.url = known.url.clone();
                package.sha256 = known.sha256.clone();
            } else if let Some((url, sha256)) = direct_url(&dir) {
                package.url = Some(url);
                package.sha256 = sha256;
            }
            out.insert(normalize_name(&pkg), package);
        }
    }
    Ok(out.into_values().collect())
}

fn site_packages_dirs(prefix: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for lib in ["lib", "lib64"] {
        let Ok(entries) = fs::read_dir(prefix.join(lib)) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("python") {
                let site = e.path().join("site-packages");
                if site.is_dir() && !dirs.iter().any(|d: &PathBuf| same_dir(d, &site)) {
                    dirs.push(site);
                }
            }
        }
    }
    dirs
}

fn same_dir(a: &Path, b: &Path) -> bool {
    fs::canonicalize(a).ok().is_some_and(|a| fs::canonicalize(b).ok() == Some(a))
}

/// PEP 610's `direct_url.json`: the URL and hash of a direct (URL or path) installation.
fn direct_url(dist_info: &Path) -> Option<(String, Option<String>)> {
    #[derive(Deserialize)]
    struct DirectUrl {
        url: String,
        #[serde(default)]
        archive_info: Option<ArchiveInfo>,
    }
    let bytes = fs::read(dist_info.join("direct_url.json")).ok()?;
    let d: DirectUrl = serde_json::from_slice(&bytes).ok()?;
    Some((d.url, d.archive_info.and_then(|a| a.sha256())))
}

#[derive(Deserialize)]
pub(super) struct ArchiveInfo {
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

impl ArchiveInfo {
    fn sha256(&self) -> Option<String> {
        self.hashes
            .get("sha256")
            .cloned()
            .or_else(|| self.hash.as_deref().and_then(|h| h.strip_prefix("sha256=")).map(str::to_string))
    }
}

/// The artifacts of pip's installation report, by normalized name.
pub(super) fn pip_report_artifacts(report: &Path) -> Result<Artifacts, EnvError> {
    #[derive(Deserialize)]
    struct Report {
        #[serde(default)]
        install: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        download_info: DownloadInfo,
        metadata: Metadata,
    }
    #[derive(Deserialize)]
    struct DownloadInfo {
        url: String,
        #[serde(default)]
        archive_info: Option<ArchiveInfo>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        name: String,
        version: String,
    }
    let bytes = fs::read(report).map_err(EnvError::io(report))?;
    let report: Report = serde_json::from_slice(&bytes)
        .map_err(|e| EnvError::Cache { path: report.to_path_buf(), message: format!("unreadable pip report: {e}") })?;
    Ok(report
        .install
        .into_iter()
        .map(|i| {
            let sha256 = i.download_info.archive_info.and_then(|a| a.sha256());
            let p = PyPackage {
                name: i.metadata.name,
                version: i.metadata.version,
                url: Some(i.download_info.url),
                sha256,
            };
            (normalize_name(&p.name), vec![p])
        })
        .collect())
}

/// The artifacts of a pylock.toml (PEP 751) by normalized name: every wheel and the sdist
/// of each package; which one was installed is told by the installed wheel's tags.
pub(super) fn pylock_artifacts(path: &Path) -> Result<Artifacts, EnvError> {
    #[derive(Deserialize)]
    struct Pylock {
        #[serde(default)]
        packages: Vec<Package>,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
        version: Option<String>,
        #[serde(default)]
        wheels: Vec<Artifact>,
        sdist: Option<Artifact>,
        archive: Option<Artifact>,
        directory: Option<Directory>,
    }
    #[derive(Deserialize)]
    struct Artifact {
        url: Option<String>,
        path: Option<String>,
        #[serde(default)]
        hashes: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    struct Directory {
        path: String,
    }
    let text = fs::read_to_string(path).map_err(EnvError::io(path))?;
    let lock: Pylock = toml::from_str(&text).map_err(|e| EnvError::Cache {
        path: path.to_path_buf(),
        message: format!("unreadable pylock.toml from uv: {e}"),
    })?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut out = Artifacts::new();
    for p in lock.packages {
        let version = p.version.unwrap_or_default();
        let location = |a: &Artifact| {
            a.url.clone().or_else(|| a.path.as_ref().map(|rel| format!("file://{}", dir.join(rel).display())))
        };
        let mut candidates: Vec<(Option<String>, Option<String>)> = p
            .wheels
            .iter()
            .chain(&p.sdist)
            .chain(&p.archive)
            .map(|a| (location(a), a.hashes.get("sha256").cloned()))
            .collect();
        if let Some(d) = &p.directory {
            candidates.push((Some(format!("file://{}", dir.join(&d.path).display())), None));
        }
        let entries = out.entry(normalize_name(&p.name)).or_default();
        for (url, sha256) in candidates {
            entries.push(PyPackage { name: p.name.clone(), version: version.clone(), url, sha256 });
        }
    }
    Ok(out)
}

/// Candidate artifacts per normalized distribution name.
pub type Artifacts = BTreeMap<String, Vec<PyPackage>>;

/// The candidate an installed distribution came from: the wheel whose file name carries one
/// of the tags in the installed `WHEEL` file, else a non-wheel source (built locally).
fn installed_artifact<'a>(candidates: &'a [PyPackage], installed_tags: &[String]) -> Option<&'a PyPackage> {
    let file = |p: &PyPackage| p.url.as_deref().and_then(|u| u.rsplit('/').next()).unwrap_or("").to_string();
    candidates
        .iter()
        .find(|p| file(p).ends_with(".whl") && wheel_tags(&file(p)).iter().any(|t| installed_tags.contains(t)))
        .or_else(|| candidates.iter().find(|p| !file(p).ends_with(".whl")))
}

/// The tags of a wheel file name (`{name}-{ver}(-{build})?-{py}-{abi}-{plat}.whl`), with
/// compressed tag sets (`py2.py3`) expanded.
fn wheel_tags(file: &str) -> Vec<String> {
    let parts: Vec<&str> = file.trim_end_matches(".whl").split('-').collect();
    if parts.len() < 5 {
        return vec![];
    }
    let [py, abi, plat] = [parts[parts.len() - 3], parts[parts.len() - 2], parts[parts.len() - 1]];
    let mut out = Vec::new();
    for p in py.split('.') {
        for a in abi.split('.') {
            for f in plat.split('.') {
                out.push(format!("{p}-{a}-{f}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_wheel_is_told_by_its_tags() {
        let p = |url: &str| PyPackage { name: "n".into(), version: "1".into(), url: Some(url.into()), sha256: None };
        let candidates = [
            p("https://x/n-1-cp311-cp311-macosx_11_0_arm64.whl"),
            p("https://x/n-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            p("https://x/n-1.tar.gz"),
        ];
        let linux = ["cp311-cp311-manylinux_2_17_x86_64".to_string()];
        assert_eq!(installed_artifact(&candidates, &linux), Some(&candidates[1]));
        let built_here = ["cp311-cp311-linux_x86_64".to_string()];
        assert_eq!(installed_artifact(&candidates, &built_here), Some(&candidates[2]));
        assert_eq!(wheel_tags("six-1.16.0-py2.py3-none-any.whl"), ["py2-none-any", "py3-none-any"]);
    }

    #[test]
    fn dist_info_is_read_with_known_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("lib/python3.11/site-packages");
        fs::create_dir_all(site.join("Six-1.16.0.dist-info")).unwrap();
        fs::write(
            site.join("Six-1.16.0.dist-info/METADATA"),
            "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\nbody Name: no\n",
        )
        .unwrap();
        fs::create_dir_all(site.join("local_pkg-0.1.dist-info")).unwrap();
        fs::write(site.join("local_pkg-0.1.dist-info/METADATA"), "Name: local-pkg\nVersion: 0.1\n").unwrap();
        fs::write(site.join("local_pkg-0.1.dist-info/direct_url.json"), r#"{"url": "file:///w/pkg", "dir_info": {}}"#)
            .unwrap();
        let known = [(
            "six".to_string(),
            vec![PyPackage {
                name: "six".into(),
                version: "1.16.0".into(),
                url: Some("https://x/six.whl".into()),
                sha256: Some("ab".into()),
            }],
        )]
        .into();
        let pkgs = installed_packages(dir.path(), &known).unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[0].name, "local-pkg");
        assert_eq!(pkgs[0].url.as_deref(), Some("file:///w/pkg"));
        assert_eq!(pkgs[1].sha256.as_deref(), Some("ab"));
    }
}
