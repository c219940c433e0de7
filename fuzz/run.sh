#!/usr/bin/env bash
# Build the fuzz targets with coverage instrumentation on a stable toolchain (libFuzzer from
# libfuzzer-sys, SanitizerCoverage through stable -C flags on lockstep's library only: no
# nightly, no cargo-fuzz needed), write the seed corpus, and run each target for a bounded time.
#
#   fuzz/run.sh [SECONDS] [TARGET...]    (default: 20 seconds each, every target)
#
# Exits 1 if any target crashed, hung or ran out of memory; the input is kept in
# fuzz/artifacts/TARGET/ and replays with `BINARY INPUT` (the command is printed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
seconds="${1:-20}"
shift || true
all=(manifest params python_env conda_env archive record lock)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# The dev profile and target directory of `cargo test`: only lockstep's library (with the
# `fuzzing` feature, so an artifact of its own), libFuzzer and the targets are built anew.
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
out="$target_dir/fuzz"
mkdir -p "$out"
TIMEFORMAT="%R %U %S"
{ time RUSTC_WORKSPACE_WRAPPER="$here/rustc-wrapper.sh" cargo build --quiet --manifest-path "$here/Cargo.toml" \
    --target-dir "$target_dir" $(printf -- '--bin %s ' "${targets[@]}"); } 2> "$out/build.time" \
  || { cat "$out/build.time"; exit 1; }
read -r wall user sys < <(tail -n 1 "$out/build.time")
echo "fuzz build: ${wall}s, CPU $(echo "$user $sys" | awk '{printf "%.1f", $1 + $2}')s"
bin_dir="$target_dir/debug"

python3 "$here/make-corpus.py" "$here/corpus"
# The archive target extracts into temporary directories: keep them, and whatever a breach
# leaves behind, in a directory of this run's; and keep a bomb small. On tmpfs where there is
# one: a directory tree made and removed per input runs 25 times faster there than on disk.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  TMPDIR="$(mktemp -d /dev/shm/lockstep-fuzz.XXXXXX)"
  trap 'rm -rf "$TMPDIR"' EXIT
else
  TMPDIR="$out/tmp"
  mkdir -p "$TMPDIR"
fi
export TMPDIR
export LOCKSTEP_ARCHIVE_MAX_BYTES=$((64 << 20))

passed=0
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$here/artifacts/$t" "$here/corpus/$t"
  log="$out/$t.log"
  max_len=4096
  [ "$t" = archive ] && max_len=65536
  TIMEFORMAT="%U %S"
  touch "$out/$t.start"
  status=0
  { time "$bin_dir/$t" "$here/corpus/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$here/artifacts/$t/" > "$log" 2>&1 || status=$?; } \
    2> "$out/$t.time"
  read -r user sys < "$out/$t.time"
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)"
  cpu="$(echo "$user $sys" | awk '{printf "%.1f", $1 + $2}')"
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz $t: ok, ${runs:-?} inputs, coverage ${cov:-?}, CPU ${cpu}s (log: $log)"
  else
    failed=$((failed + 1))
    echo "fuzz $t: FAILED (exit $status), CPU ${cpu}s; the end of $log:"
    tail -n 30 "$log" | sed 's/^/  /'
    find "$here/artifacts/$t" -type f -newer "$out/$t.start" | while read -r a; do
      echo "  replay: $bin_dir/$t $a"
    done
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
