"""Turns hyperfine's JSON (written by bench/run.sh) into the markdown of BENCHMARKS.md."""
import json
import os
import sys

out, section, *extra = sys.argv[1:]
cores = os.cpu_count()


def load(name):
    return json.load(open(os.path.join(out, name)))["results"]


def name(cmd):
    words = cmd.split()
    return " ".join([os.path.basename(words[0])] + words[1:]).replace(" > /dev/null", "")


def table(rows, extra_col=None):
    head = "| command | mean | stddev |" + (f" {extra_col[0]} |" if extra_col else "")
    print(head)
    print("|---|---|---|" + ("---|" if extra_col else ""))
    for i, r in enumerate(rows):
        cell = f" {extra_col[1][i]} |" if extra_col else ""
        print(f"| `{name(r['command'])}` | {r['mean'] * 1000:.1f} ms | {r['stddev'] * 1000:.1f} ms |{cell}")
    print()


if section == "run":
    direct, run = load("run-overhead.json")
    print("### Run overhead\n")
    table([direct, run])
    print(f"Added by lockstep: **{(run['mean'] - direct['mean']) * 1000:.2f} ms** (ratio {run['mean'] / direct['mean']:.1f}x).\n")
elif section == "warm":
    tiny, big = load("warm.json")
    print("### Warm run of a large tree\n")
    table([tiny, big], ("median", [f"{r['median'] * 1000:.1f} ms" for r in (tiny, big)]))
    print(f"Added by the 10,000 files: **{(big['median'] - tiny['median']) * 1000:.1f} ms** (medians).\n")
elif section == "tree":
    cold, warm = load("tree-hash.json")
    (base,) = load("sha256sum.json")
    print("### Tree hash\n")
    gib = 200 / 1024
    table([cold, warm, base], ("throughput", [f"{gib / r['mean']:.2f} GiB/s" for r in (cold, warm, base)]))
    print(f"Cold: **{gib / cold['mean'] / cores:.2f} GiB/s per core** on {cores} cores "
          f"({base['mean'] / cold['mean']:.1f}x faster than sha256sum); warm: **{warm['mean'] * 1000:.1f} ms**.\n")
elif section == "pack":
    lpack, tpack = load("pack.json")
    lun, tun = load("unpack.json")
    lsize, tsize = (int(x) for x in extra)
    print("### Pack and unpack\n")
    table([lpack, tpack, lun, tun])
    print(f"Pack: **{tpack['mean'] / lpack['mean']:.2f}x** faster than `tar czf`; archive {lsize / 2**20:.1f} MiB "
          f"against {tsize / 2**20:.1f} MiB ({lsize / tsize:.3f}x the size). "
          f"Unpack: {tun['mean'] / lun['mean']:.2f}x the speed of `tar xzf` (lockstep also checks every file "
          f"against the manifest and hashes the tree).\n")
elif section == "verify":
    run, verify = load("verify.json")
    print("### Verify overhead\n")
    table([run, verify])
    print(f"verify's own cost beyond the re-run: **{(verify['mean'] - run['mean']) * 1000:.1f} ms**.\n")
