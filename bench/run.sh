#!/usr/bin/env bash
# Reproduces the numbers in BENCHMARKS.md: `bench/run.sh` (needs hyperfine: apt-get install hyperfine).
# Prints a markdown report; raw hyperfine JSON stays in $BENCH_OUT (default: target/bench).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/target/bench}
mkdir -p "$out"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/lockstep"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LOCKSTEP_CACHE_DIR="$work/cache"
cd "$work"

# (a) The overhead of `lockstep run` on a trivial entry point, against running its command directly.
mkdir trivial
printf 'name: trivial\nentry_points:\n  main:\n    command: "true"\n' > trivial/MLproject
"$bin" run trivial > /dev/null 2>&1
hyperfine -N --warmup 10 --runs 100 --export-json "$out/run-overhead.json" \
  "bash -c true" "$bin run trivial" > /dev/null

# (b) Tree hashing of 10,000 files (200 MiB), cold (no stat cache) and warm, against sha256sum.
python3 - <<'PY'
import os
rng = os.urandom
size = 200 * 1024 * 1024 // 10000
for d in range(100):
    os.makedirs(f"tree/d{d:03}", exist_ok=True)
    for f in range(100):
        with open(f"tree/d{d:03}/f{f:03}.bin", "wb") as fh:
            fh.write(rng(size))
PY
"$bin" hash tree > /dev/null
hyperfine -N --warmup 2 --runs 10 --export-json "$out/tree-hash.json" \
  "$bin hash --no-cache tree" "$bin hash tree" > /dev/null
hyperfine --warmup 2 --runs 10 --export-json "$out/sha256sum.json" \
  "find tree -type f -print0 | xargs -0 sha256sum > /dev/null" > /dev/null

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    return {r["command"]: r for r in json.load(open(os.path.join(out, name)))["results"]}
ms = lambda r: r["mean"] * 1000
sd = lambda r: r["stddev"] * 1000
cores = os.cpu_count()
a = list(load("run-overhead.json").values())
direct, run = a[0], a[1]
print("## Run overhead (trivial entry point)\n")
print("| command | mean | stddev |\n|---|---|---|")
for r in a:
    print(f"| `{r['command'].split('/')[-1]}` | {ms(r):.2f} ms | {sd(r):.2f} ms |")
print(f"\nAdded by lockstep: **{ms(run) - ms(direct):.2f} ms** (ratio {run['mean'] / direct['mean']:.1f}x).\n")
b = list(load("tree-hash.json").values()) + list(load("sha256sum.json").values())
mib = 200
print("## Tree hash (10,000 files, 200 MiB)\n")
print("| command | mean | throughput |\n|---|---|---|")
for r in b:
    gib_s = mib / 1024 / r["mean"]
    print(f"| `{r['command'].replace(os.path.dirname(r['command'].split()[0]) + '/', '') if r['command'].startswith('/') else r['command']}` | {ms(r):.1f} ms | {gib_s:.2f} GiB/s |")
cold = b[0]
print(f"\nCold: {mib / 1024 / cold['mean'] / cores:.2f} GiB/s per core on {cores} cores; warm: {ms(b[1]):.1f} ms; "
      f"cold is {b[2]['mean'] / cold['mean']:.1f}x faster than sha256sum.")
PY
