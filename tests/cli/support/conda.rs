//! A local conda channel made in code: tiny noarch packages (`.tar.bz2`) with dependencies,
//! two versions of some, a `python` that is a venv-like wrapper of this machine's
//! interpreter, indexed into `noarch/repodata.json`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::context::hex;

/// One file of a package: path, content, executable, text prefix placeholder.
pub struct PkgFile {
    pub path: String,
    pub content: Vec<u8>,
    pub executable: bool,
    pub placeholder: bool,
    pub symlink: bool,
}

impl PkgFile {
    pub fn text(path: &str, content: &str) -> PkgFile {
        PkgFile { path: path.into(), content: content.into(), executable: false, placeholder: false, symlink: false }
    }
    pub fn script(path: &str, content: &str) -> PkgFile {
        PkgFile { executable: true, ..PkgFile::text(path, content) }
    }
    /// A text file holding conda's placeholder prefix, replaced on install.
    pub fn with_prefix(path: &str, content: &str) -> PkgFile {
        PkgFile { placeholder: true, ..PkgFile::text(path, content) }
    }
    pub fn link(path: &str, target: &str) -> PkgFile {
        PkgFile { symlink: true, ..PkgFile::text(path, target) }
    }
}

/// A package to put in the channel.
pub struct Pkg {
    pub name: &'static str,
    pub version: &'static str,
    pub depends: Vec<&'static str>,
    pub noarch: &'static str,
    pub files: Vec<PkgFile>,
    pub entry_points: Vec<&'static str>,
}

pub const PLACEHOLDER: &str = "/opt/anaconda1anaconda2anaconda3";

/// The interpreter the tests run, and its version.
pub fn system_python() -> (PathBuf, String) {
    let out = Command::new("python3")
        .args(["-c", "import sys, platform; print(sys.executable); print(platform.python_version())"])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let exe = fs::canonicalize(lines.next().unwrap()).unwrap();
    (exe, lines.next().unwrap().to_string())
}

/// The standard fixture channel.
pub fn standard_packages() -> Vec<Pkg> {
    let (python, version) = system_python();
    let version: &'static str = Box::leak(version.into_boxed_str());
    let mm: Vec<&str> = version.split('.').take(2).collect();
    let site = format!("lib/python{}/site-packages", mm.join("."));
    vec![
        Pkg {
            name: "libmsg",
            version: "1.0",
            depends: vec![],
            noarch: "generic",
            files: vec![PkgFile::text("share/libmsg/msg.txt", "message one\n")],
            entry_points: vec![],
        },
        Pkg {
            name: "libmsg",
            version: "2.0",
            depends: vec![],
            noarch: "generic",
            files: vec![PkgFile::text("share/libmsg/msg.txt", "message two\n")],
            entry_points: vec![],
        },
        Pkg {
            name: "greeter",
            version: "1.0",
            depends: vec!["libmsg >=2"],
            noarch: "generic",
            files: vec![
                PkgFile::script(
                    "bin/greet",
                    "#!/bin/sh\necho \"greeter 1.0 says $(cat \"$CONDA_PREFIX/share/libmsg/msg.txt\")\"\n",
                ),
                PkgFile::with_prefix("share/greeter/where.txt", &format!("installed in {PLACEHOLDER}\n")),
            ],
            entry_points: vec![],
        },
        Pkg {
            name: "greeter",
            version: "2.0",
            depends: vec!["libmsg <2"],
            noarch: "generic",
            files: vec![PkgFile::script(
                "bin/greet",
                "#!/bin/sh\necho \"greeter 2.0 says $(cat \"$CONDA_PREFIX/share/libmsg/msg.txt\")\"\n",
            )],
            entry_points: vec![],
        },
        Pkg {
            name: "activator",
            version: "1.0",
            depends: vec![],
            noarch: "generic",
            files: vec![PkgFile::text(
                "etc/conda/activate.d/activator.sh",
                "export ACTIVATED_BY=\"activator in $CONDA_PREFIX\"\n",
            )],
            entry_points: vec![],
        },
        Pkg {
            name: "python",
            version,
            depends: vec![],
            noarch: "generic",
            files: vec![
                PkgFile::link("bin/python", &python.display().to_string()),
                PkgFile::link("bin/python3", "python"),
                PkgFile::text(
                    "pyvenv.cfg",
                    &format!(
                        "home = {}\ninclude-system-site-packages = false\nversion = {version}\n",
                        python.parent().unwrap().display()
                    ),
                ),
                PkgFile::text(&format!("{site}/.keep"), ""),
            ],
            entry_points: vec![],
        },
        Pkg {
            name: "tinylib",
            version: "1.0",
            depends: vec!["python"],
            noarch: "python",
            files: vec![PkgFile::text(
                "site-packages/tinylib/__init__.py",
                "VALUE = 42\n\ndef main():\n    print('tinytool runs with', VALUE)\n",
            )],
            entry_points: vec!["tinytool = tinylib:main"],
        },
    ]
}

/// Write `packages` as a channel at `dir`; returns its `file://` URL.
pub fn make_channel(dir: &Path, packages: &[Pkg]) -> String {
    let noarch = dir.join("noarch");
    fs::create_dir_all(&noarch).unwrap();
    let mut index = serde_json::Map::new();
    for p in packages {
        let build = if p.noarch == "python" { "py_0" } else { "0" };
        let filename = format!("{}-{}-{build}.tar.bz2", p.name, p.version);
        let record = json!({
            "name": p.name,
            "version": p.version,
            "build": build,
            "build_number": 0,
            "depends": p.depends,
            "noarch": p.noarch,
            "subdir": "noarch",
            "license": "MIT",
        });
        let bytes = package_archive(p, &record);
        fs::write(noarch.join(&filename), &bytes).unwrap();
        let mut entry = record.clone();
        entry["sha256"] = json!(hex(&Sha256::digest(&bytes)));
        entry["size"] = json!(bytes.len());
        index.insert(filename, entry);
    }
    let repodata = json!({"info": {"subdir": "noarch"}, "packages": Value::Object(index), "packages.conda": {}, "repodata_version": 1});
    fs::write(noarch.join("repodata.json"), serde_json::to_vec_pretty(&repodata).unwrap()).unwrap();
    format!("file://{}", dir.display())
}

fn package_archive(p: &Pkg, record: &Value) -> Vec<u8> {
    let mut paths = Vec::new();
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, content: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_cksum();
        builder.append_data(&mut h, path, content).unwrap();
    };
    for f in &p.files {
        if f.symlink {
            continue;
        }
        add(&f.path, &f.content, if f.executable { 0o755 } else { 0o644 });
        let mut entry = json!({"_path": f.path, "path_type": "hardlink", "sha256": hex(&Sha256::digest(&f.content)), "size_in_bytes": f.content.len()});
        if f.placeholder {
            entry["prefix_placeholder"] = json!(PLACEHOLDER);
            entry["file_mode"] = json!("text");
        }
        paths.push(entry);
    }
    let mut index = record.clone();
    index.as_object_mut().unwrap().remove("sha256");
    add("info/index.json", &serde_json::to_vec(&index).unwrap(), 0o644);
    if !p.entry_points.is_empty() {
        let link = json!({"noarch": {"type": "python", "entry_points": p.entry_points}, "package_metadata_version": 1});
        add("info/link.json", &serde_json::to_vec(&link).unwrap(), 0o644);
    }
    let mut links = Vec::new();
    for f in p.files.iter().filter(|f| f.symlink) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(0);
        builder.append_link(&mut h, &f.path, String::from_utf8_lossy(&f.content).as_ref()).unwrap();
        links.push(json!({"_path": f.path, "path_type": "softlink"}));
    }
    paths.extend(links);
    let paths_json = json!({"paths": paths, "paths_version": 1});
    let bytes = serde_json::to_vec(&paths_json).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    builder.append_data(&mut h, "info/paths.json", bytes.as_slice()).unwrap();
    let tar = builder.into_inner().unwrap();
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    enc.write_all(&tar).unwrap();
    enc.finish().unwrap()
}
