#!/usr/bin/env python3
"""Write the seed corpus of every fuzz target into DIR/<target>/ (default: fuzz/corpus).

The seeds are made here rather than committed, so the repository holds no binary blobs:
real-looking inputs for each parser, and the hostile archives of issue 9 (link chains,
hard links through links, names that climb out).
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import warnings
import zipfile

MLPROJECTS = {
    "quickstart": """name: quickstart

entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      data: {type: path, default: data/points.csv}
    command: "python train.py --alpha {alpha} --data {data}"
    outputs: [metrics.json]
""",
    "python_env": """name: sklearn
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.01}
      n: {type: int, default: 3}
      flag: {type: string, default: True}
    command: "python train.py --alpha {alpha} -n {n} {{literal}} {flag}"
  other:
    command: "bash run.sh"
""",
    "conda": """conda_env: conda.yaml
entry_points:
  main: {command: "python -c 'print(1)'"}
""",
    "docker": """name: d
docker_env:
  image: busybox:latest
  volumes: ["/tmp:/tmp"]
  environment: [["A", "1"], "B"]
entry_points:
  main:
    parameters:
      u: {type: uri, default: "s3://bucket/key"}
      p: path
    command: "sh -c 'echo {u} {p}'"
""",
    "anchors": """x: &p {type: float, default: 1e-05}
entry_points:
  a: {parameters: {v: *p}, command: "echo {v}"}
  b: {parameters: {v: {type: int, default: 0x1f}}, command: "echo {v} }}"}
""",
}

PARAM_ARGS = [
    "s=hello\nf=1.5\ni=42\np=file:///tmp/x%20y\nu=https://h/y",
    "s=it's a \"quote\"\nextra=$(rm -rf /)\nf=-inf",
    "s=\ni=0x10\np=https://example.com/a?b=c",
    "s=a=b=c\nf=nan\np=ftp://x\nrepeat=1\nrepeat=2",
    "noequals",
]

PYTHON_ENVS = [
    "python: 3.10\nbuild_dependencies:\n  - pip\n  - setuptools==69.0\ndependencies:\n  - numpy>=1.26\n  - -r requirements.txt\n",
    'python: "==3.11.7"\ndependencies: [scikit-learn, "pandas[parquet]"]\n',
    "python: three\n",
    "dependencies:\n  - ./local/pkg\n  - pkg @ https://h/pkg.whl\n",
    "unknown: 1\n",
]

CONDA_ENVS = [
    "name: env\nchannels: [conda-forge, defaults]\ndependencies:\n  - python=3.11\n  - numpy>=1.26,<2\n  - pip\n"
    "  - pip:\n    - requests==2.31\nvariables:\n  A: 1\n  B: text\nprefix: /opt/x\n",
    "dependencies:\n  - python\n  - pip:\n    - a\n  - pip:\n    - b\n",
    "dependencies: [python<3.12, setuptools>=60, wheel, 'conda-forge::openssl 3.*']\n",
    "channels:\n  - file:///tmp/channel\n",
]


def record(environment):
    return {
        "schema": "lockstep.run/v1",
        "run_id": "3f2a9c1e5b7d4a6b8c9d0e1f2a3b4c5d",
        "run_name": "r",
        "experiment_name": None,
        "status": "FINISHED",
        "failure": None,
        "exit_code": 0,
        "start_time": 1764583303000,
        "end_time": 1764583344200,
        "entry_point": "main",
        "parameters": {"alpha": "0.5"},
        "command": "python train.py --alpha 0.5",
        "source": {
            "uri": "/home/u/proj",
            "kind": "local",
            "path": "/home/u/proj",
            "version": None,
            "commit": None,
            "branch": None,
            "repo_url": None,
            "subdirectory": None,
            "tree_sha256": "0" * 64,
            "dirty": False,
            "patch_sha256": None,
            "archive_sha256": None,
            "input_tree_sha256": None,
        },
        "environment": environment,
        "outputs": [{"path": "metrics.json", "size": 10, "sha256": "1" * 64}],
        "outputs_dir": "/home/u/proj",
        "host": {"os": "linux", "arch": "x86_64", "cpu": None, "cpus": 2, "hostname": "h", "lockstep_version": "0.1.0"},
        "cwd": "/home/u",
        "verifies": None,
        "verification": None,
        "tracking": {"uri": "http://127.0.0.1:5000", "experiment_id": "0", "run_id": "abc", "synced": True},
    }


PY_LOCK = {
    "manager": "uv",
    "lock_schema": "lockstep.env-lock/v1",
    "key": "ab" * 32,
    "installer": "uv 0.13.9",
    "platform": "linux-64",
    "python": {"version": "3.11.7", "implementation": "cpython"},
    "packages": [
        {"name": "numpy", "version": "1.26.4", "url": "https://h/numpy.whl", "sha256": "2" * 64},
        {"name": "local", "version": "0.1", "url": "file:///tmp/local"},
    ],
}
CONDA_LOCK = {
    "manager": "conda",
    "lock_schema": "lockstep.env-lock/v1",
    "key": "cd" * 32,
    "installer": "lockstep",
    "platform": "linux-64",
    "python": None,
    "channels": ["https://conda.anaconda.org/conda-forge/"],
    "conda_packages": [
        {
            "name": "zlib",
            "version": "1.3.1",
            "build": "h4ab18f5_1",
            "build_number": 1,
            "subdir": "linux-64",
            "channel": "conda-forge",
            "url": "https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3.1-h4ab18f5_1.conda",
            "filename": "../../../../x/EVIL.conda",
            "sha256": "3" * 64,
            "depends": ["libgcc >=12"],
        }
    ],
    "packages": [],
    "variables": {"A": "1"},
}
DOCKER_LOCK = {"manager": "docker", "base_image": "busybox:latest", "base_image_id": "sha256:" + "4" * 64}
LOCAL_LOCK = {"manager": "local"}


def tar_bytes(entries):
    """A plain tar of (name, kind, data, link) entries; the fuzz target gzips it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, data, link in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            info.mtime = 0
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def zip_bytes(entries):
    # Repeated names are on purpose (a later entry replaces an earlier one).
    warnings.simplefilter("ignore", UserWarning)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, kind, data, link in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            if kind == tarfile.SYMTYPE:
                info.external_attr = (0o120777 << 16)
                z.writestr(info, link)
            elif kind == tarfile.DIRTYPE:
                info.external_attr = (0o40755 << 16) | 0x10
                z.writestr(info, b"")
            else:
                info.external_attr = 0o100644 << 16
                z.writestr(info, data)
    return buf.getvalue()


F, D, L, H = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def pack_manifest(files):
    return json.dumps({
        "schema": "lockstep.pack/v1",
        "tree_sha256": "5" * 64,
        "run_id": None,
        "files": [
            {"path": p, "mode": "100644", "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in files
        ],
    }).encode()


ARCHIVES = {
    "project": [
        ("MLproject", F, MLPROJECTS["quickstart"].encode(), ""),
        ("data/", D, b"", ""),
        ("data/points.csv", F, b"x,y\n1,2\n", ""),
        ("run.sh", F, b"#!/bin/sh\necho hi\n", ""),
        ("link", L, b"", "data/points.csv"),
        ("hard", H, b"", "data/points.csv"),
        (".lockstep/pack.json", F, pack_manifest([("MLproject", MLPROJECTS["quickstart"].encode())]), ""),
    ],
    "wrapped": [("proj-1.0/", D, b"", ""), ("proj-1.0/MLproject", F, b"entry_points: {}\n", "")],
    # Issue 9: a chain of links reaching the target's parent, then a write and a hard link
    # through it.
    "link-chain": [
        ("x/", D, b"", ""),
        ("x/l", L, b"", ".."),
        ("y", L, b"", "x/l/.."),
        ("y/", D, b"", ""),
        ("y/EVIL.txt", F, b"evil\n", ""),
    ],
    "link-chain-hard": [
        ("x/", D, b"", ""),
        ("x/l", L, b"", ".."),
        ("y", L, b"", "x/l/.."),
        ("y/", D, b"", ""),
        ("stolen", H, b"", "y/secret.txt"),
    ],
    "climb": [("a/../../evil", F, b"x", ""), ("/abs", F, b"x", "")],
    "link-out": [("l", L, b"", "../outside"), ("l/f", F, b"x", "")],
    "replace": [("a", F, b"1", ""), ("a", L, b"", "b"), ("a", F, b"2", ""), ("a/", D, b"", "")],
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")

    def put(target, name, data):
        os.makedirs(os.path.join(out, target), exist_ok=True)
        with open(os.path.join(out, target, name), "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)

    for name, text in MLPROJECTS.items():
        put("manifest", name, text)
        put("params", name, text + "\0" + PARAM_ARGS[0])
    for i, args in enumerate(PARAM_ARGS):
        put("params", f"args-{i}", args)
    for i, text in enumerate(PYTHON_ENVS):
        put("python_env", f"seed-{i}", text)
    for i, text in enumerate(CONDA_ENVS):
        put("conda_env", f"seed-{i}", text)
    for name, lock in [("uv", PY_LOCK), ("conda", CONDA_LOCK), ("docker", DOCKER_LOCK), ("local", LOCAL_LOCK)]:
        put("lock", name, json.dumps(lock, indent=2))
        put("record", name, json.dumps(record(lock), indent=2))
    for name, entries in ARCHIVES.items():
        tar = tar_bytes(entries)
        put("archive", f"{name}.tar", tar)
        put("archive", f"{name}.zip", zip_bytes([e for e in entries if e[1] != H]))

    put("archive", "project.tar.gz", gzip.compress(tar_bytes(ARCHIVES["project"]), mtime=0))
    total = sum(len(files) for _, _, files in os.walk(out))
    print(f"make-corpus: {total} seeds in {out}")


if __name__ == "__main__":
    main()
