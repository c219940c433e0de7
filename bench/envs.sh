#!/usr/bin/env bash
# Reproduces the environment numbers in BENCHMARKS.md: `bench/envs.sh` (needs hyperfine and uv).
# Cold and warm environment creation for the same requirements, by lockstep and by hand; the
# overhead of a run in a built environment against the local manager. uv's and pip's download
# caches are warmed first, so that every cold build installs from the same local wheels.
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
export UV_CACHE_DIR="$work/uv-cache" PIP_CACHE_DIR="$work/pip-cache"
cd "$work"
py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
reqs="scikit-learn==1.5.2"

mkdir env trivial
printf 'python_env: python_env.yaml\nentry_points:\n  main:\n    command: "true"\n' > env/MLproject
printf 'python: "%s"\ndependencies:\n  - %s\n' "$py" "$reqs" > env/python_env.yaml
printf 'entry_points:\n  main:\n    command: "true"\n' > trivial/MLproject
printf '%s\n' "$reqs" > requirements.txt

# Warm the download caches (and check that every way works).
"$bin" run env > /dev/null 2>&1
uv venv -q --python "$py" by-uv && uv pip install -q --python by-uv/bin/python -r requirements.txt
python3 -m venv by-pip && by-pip/bin/pip install -q -r requirements.txt

hyperfine -N --runs 5 --export-json "$out/env-cold.json" \
  --prepare "rm -rf $LOCKSTEP_CACHE_DIR/envs-v1" -n "lockstep run (cold env, uv)" "$bin run env" \
  --prepare "rm -rf by-uv" -n "uv venv && uv pip install" \
  "bash -c 'uv venv -q --python $py by-uv && uv pip install -q --python by-uv/bin/python -r requirements.txt'" \
  --prepare "rm -rf by-pip" -n "python -m venv && pip install" \
  "bash -c 'python3 -m venv by-pip && by-pip/bin/pip install -q -r requirements.txt'" > /dev/null

# Warm: the environment exists. lockstep finds it by key; by hand, the installer checks that
# the existing environment satisfies the requirements.
"$bin" run env > /dev/null 2>&1
hyperfine -N --warmup 3 --runs 20 --export-json "$out/env-warm-create.json" \
  -n "lockstep run (warm env)" "$bin run env" \
  -n "uv pip install (satisfied)" "uv pip install -q --python by-uv/bin/python -r requirements.txt" \
  -n "pip install (satisfied)" "by-pip/bin/pip install -q -r requirements.txt" > /dev/null

"$bin" run trivial > /dev/null 2>&1
hyperfine -N --warmup 10 --runs 100 --export-json "$out/env-warm.json" \
  -n "lockstep run (built env)" "$bin run env" -n "lockstep run (local)" "$bin run trivial" > /dev/null

python3 - "$out" "$reqs" <<'PY'
import json, os, sys
out, reqs = sys.argv[1], sys.argv[2]
def load(name):
    return json.load(open(os.path.join(out, name)))["results"]
ms = lambda r: r["mean"] * 1000
cold = load("env-cold.json")
print(f"## Environment creation (`{reqs}`, download caches warm)\n")
print("| command | mean | stddev | ratio to lockstep |\n|---|---|---|---|")
for r in cold:
    print(f"| {r['command']} | {ms(r):.0f} ms | {r['stddev'] * 1000:.0f} ms | {r['mean'] / cold[0]['mean']:.2f} |")
print(f"\nlockstep cold / uv by hand: **{cold[0]['mean'] / cold[1]['mean']:.2f}x**; "
      f"lockstep cold / venv + pip by hand: **{cold[0]['mean'] / cold[2]['mean']:.2f}x**.\n")
warm_create = load("env-warm-create.json")
print(f"## Warm environment (it exists already)\n")
print("| command | mean | stddev | ratio to lockstep |\n|---|---|---|---|")
for r in warm_create:
    print(f"| {r['command']} | {ms(r):.1f} ms | {r['stddev'] * 1000:.1f} ms | {r['mean'] / warm_create[0]['mean']:.1f} |")
print(f"\nlockstep's warm run (environment lookup and the whole run) / uv's check: "
      f"**{warm_create[0]['mean'] / warm_create[1]['mean']:.2f}x**; / pip's check: "
      f"**{warm_create[0]['mean'] / warm_create[2]['mean']:.2f}x**.\n")
warm = load("env-warm.json")
print("## Run in a built environment (trivial entry point)\n")
print("| command | mean | stddev |\n|---|---|---|")
for r in warm:
    print(f"| {r['command']} | {ms(r):.2f} ms | {r['stddev'] * 1000:.2f} ms |")
print(f"\nWarm environment overhead against local: **{ms(warm[0]) - ms(warm[1]):+.2f} ms**.")
PY
