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
  # opt-level 1: a third more executions a second than 0, for little more build time (see
  # README.md); debug assertions and overflow checks stay on, as the dev profile has them.
  exec "$rustc" "$@" -Copt-level=1 -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares
fi
exec "$rustc" "$@"
