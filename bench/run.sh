#!/usr/bin/env bash
# Reproduces the numbers in BENCHMARKS.md: `bench/run.sh [SECTION...]` with sections
# run, warm, tree, pack, verify (default: all). Needs hyperfine (apt-get install hyperfine).
# Prints markdown; hyperfine's raw JSON goes to $BENCH_OUT (default: target/bench).
# LOCKSTEP_BIN=PATH measures that binary instead of building this checkout's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/target/bench}
mkdir -p "$out"
if [ -z "${LOCKSTEP_BIN:-}" ]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
fi
bin=${LOCKSTEP_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/lockstep}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LOCKSTEP_CACHE_DIR="$work/cache"
cd "$work"
sections=${*:-run warm tree pack verify}

report() { python3 "$root/bench/report.py" "$out" "$@"; }

# 10,000 files of 20 KiB (200 MiB) in 100 directories; `mixed` makes half of them CSV text
# (compressible) and half random bytes, `random` all random.
make_tree() {
  python3 - "$1" "$2" <<'PY'
import os, random, sys
dest, kind = sys.argv[1], sys.argv[2]
size = 200 * 1024 * 1024 // 10000
rng = random.Random(7)
for d in range(100):
    os.makedirs(f"{dest}/d{d:03}", exist_ok=True)
    for f in range(100):
        if kind == "mixed" and f % 2 == 0:
            rows = []
            while sum(len(r) for r in rows) < size:
                rows.append(f"{rng.randrange(10**6)},{rng.random():.6f},{rng.choice(['train','test','val'])}\n")
            data = "".join(rows).encode()[:size]
        else:
            data = os.urandom(size)
        with open(f"{dest}/d{d:03}/f{f:03}.bin", "wb") as fh:
            fh.write(data)
PY
  # Write the tree out now, so that the kernel's writeback does not run during the timings.
  sync
}

for section in $sections; do
  case $section in
    run)
      # The overhead of `lockstep run` on a trivial entry point, against its command run directly.
      mkdir -p trivial
      printf 'name: trivial\nentry_points:\n  main:\n    command: "true"\n' > trivial/MLproject
      "$bin" run trivial > /dev/null 2>&1
      hyperfine -N --warmup 10 --runs 100 --export-json "$out/run-overhead.json" \
        "bash -c true" "$bin run trivial" > /dev/null
      report run ;;
    warm)
      # A warm run of a 10,000-file / 200 MiB project against a warm run of a tiny one: what
      # the tree's size adds (the walk that hashes it with the stat cache and serves as the
      # output snapshot before the run, the snapshot after it).
      make_tree big random
      for p in big tiny; do
        mkdir -p $p
        printf 'name: %s\nentry_points:\n  main:\n    command: "true"\n' $p > $p/MLproject
      done
      # Past the stat cache's racy window: files younger than 2 s are hashed again.
      sleep 3
      "$bin" run big > /dev/null 2>&1
      "$bin" run tiny > /dev/null 2>&1
      hyperfine -N --warmup 5 --runs 40 --export-json "$out/warm.json" \
        "$bin run tiny" "$bin run big" > /dev/null
      report warm ;;
    tree)
      # Tree hashing, cold (no stat cache) and warm, against sha256sum over the same files.
      make_tree tree random
      "$bin" hash tree > /dev/null
      hyperfine -N --warmup 2 --runs 10 --export-json "$out/tree-hash.json" \
        "$bin hash --no-cache tree" "$bin hash tree" > /dev/null
      hyperfine --warmup 2 --runs 10 --export-json "$out/sha256sum.json" \
        "find tree -type f -print0 | xargs -0 sha256sum > /dev/null" > /dev/null
      report tree ;;
    pack)
      # Pack and unpack against tar czf / tar xzf, on a tree that is half text, half random.
      make_tree mixed mixed
      hyperfine --warmup 1 --runs 5 --export-json "$out/pack.json" \
        "$bin pack mixed -o lockstep.tar.gz > /dev/null" \
        "tar czf tar.tar.gz mixed" > /dev/null
      hyperfine --warmup 1 --runs 5 --prepare "rm -rf u1 u2; mkdir u2" --export-json "$out/unpack.json" \
        "$bin unpack lockstep.tar.gz u1 > /dev/null" \
        "tar xzf tar.tar.gz -C u2" > /dev/null
      report pack "$(stat -c %s lockstep.tar.gz)" "$(stat -c %s tar.tar.gz)" ;;
    verify)
      # verify's own cost beyond the re-run: verify of a trivial run against an isolated run
      # of the same project (what verify re-runs).
      mkdir -p small
      printf 'name: small\nentry_points:\n  main:\n    command: "echo 42 > out.txt"\n' > small/MLproject
      for i in $(seq 50); do echo "file $i" > "small/f$i.txt"; done
      "$bin" run small > /dev/null 2>&1
      id=$("$bin" runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
      hyperfine -N --warmup 3 --runs 30 --export-json "$out/verify.json" \
        "$bin run small --isolated" "$bin verify $id" > /dev/null
      report verify ;;
    *) echo "unknown section $section" >&2; exit 2 ;;
  esac
done
