#!/usr/bin/env bash
# Reproduces the sweep numbers in BENCHMARKS.md: `bench/sweep.sh [PROFILE]` (default release;
# `debug` measures an existing debug build instead of building a release one).
# A 100-trial grid of a trivial entry point (`true`) with --jobs 2, three times each: cold
# (every trial runs) and warm (every trial reused). With MLFLOW=/path/to/mlflow (a virtualenv's
# mlflow), also MLflow's hyperparam approach on a 10-trial grid: a driver calling
# mlflow.projects.run once per trial, two at a time (env manager local).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
profile=${1:-release}
target=${CARGO_TARGET_DIR:-$root/target}
if [ "$profile" = release ]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin lockstep
fi
bin="$target/$profile/lockstep"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LOCKSTEP_CACHE_DIR="$work/cache"
cd "$work"
mkdir trivial
printf 'entry_points:\n  main:\n    parameters:\n      a: int\n      b: int\n    command: "true"\n' > trivial/MLproject

time_it() {
    local start end
    start=$(date +%s%N)
    "$@" > /dev/null 2>&1 || true
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

echo "| case | wall time (ms), 3 runs |"
echo "|---|---|"
cold=() warm=()
for i in 1 2 3; do
    rm -rf "$work/.lockstep"
    cold+=("$(time_it "$bin" sweep trivial -P 'a=range(0,10,1)' -P 'b=range(0,10,1)' --jobs 2)")
    warm+=("$(time_it "$bin" sweep trivial -P 'a=range(0,10,1)' -P 'b=range(0,10,1)' --jobs 2)")
done
echo "| lockstep sweep, 100 trials, --jobs 2, every trial runs | ${cold[*]} |"
echo "| lockstep sweep, 100 trials, --jobs 2, every trial reused | ${warm[*]} |"

if [ -n "${MLFLOW:-}" ]; then
    python=$(dirname "$MLFLOW")/python
    cat > driver.py <<'PY'
import concurrent.futures, itertools, sys, mlflow.projects
points = list(itertools.product(range(5), range(2)))
def trial(p):
    return mlflow.projects.run("trivial", parameters={"a": p[0], "b": p[1]}, env_manager="local", synchronous=True)
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    list(pool.map(trial, points))
PY
    rm -rf mlruns
    mlf=()
    for i in 1 2 3; do mlf+=("$(time_it "$python" driver.py)"); done
    echo "| mlflow.projects.run driver, 10 trials, 2 threads | ${mlf[*]} |"
    lk=()
    for i in 1 2 3; do rm -rf "$work/.lockstep"; lk+=("$(time_it "$bin" sweep trivial -P 'a=range(0,5,1)' -P 'b=0,1' --jobs 2)"); done
    echo "| lockstep sweep, 10 trials, --jobs 2 | ${lk[*]} |"
fi
