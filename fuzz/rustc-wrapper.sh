#!/usr/bin/env bash
# RUSTC_WORKSPACE_WRAPPER of the fuzz build (run.sh sets it): adds libFuzzer's coverage
# instrumentation (SanitizerCoverage, through stable -C flags) to lockstep's library built with
# the `fuzzing` feature, and to nothing else. The dependencies stay plain, so the build reuses
# those the tests built; their generic code that lockstep instantiates is instrumented with it.
#
#   rustc-wrapper.sh RUSTC ARGS...
set -euo pipefail
rustc="$1"
shift
name=""
fuzzing=false
prev=""
for arg in "$@"; do
  [ "$prev" = --crate-name ] && name="$arg"
  [ "$arg" = 'feature="fuzzing"' ] && fuzzing=true
  prev="$arg"
done
if [ "$name" = lockstep ] && $fuzzing; then
  # opt-level 1 rather than the dev profile's 0: the targets run the parsers many times, and
  # the dependencies are optimized already. Debug assertions and overflow checks stay on.
  exec "$rustc" "$@" -Copt-level=1 -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares
fi
exec "$rustc" "$@"
