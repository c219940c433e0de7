#!/usr/bin/env bash
# Reproduces the tracking numbers in BENCHMARKS.md: `bench/tracking.sh` (needs hyperfine:
# apt-get install hyperfine). Starts an MLflow server (3.17.2, from the tests' virtualenv,
# made on first use) on 127.0.0.1 with a temporary sqlite store and artifact root, then times
# the whole `lockstep run` of a trivial entry point against `mlflow run --env-manager local`
# of the same project on the same server. Raw hyperfine JSON stays in $BENCH_OUT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/target/bench}
mkdir -p "$out"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/lockstep"
venv="${CARGO_TARGET_DIR:-$root/target}/tmp/mlflow-3.17.2"
bash "$root/tests/support/mlflow-venv.sh" "$venv"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Job execution (a GenAI feature) starts a dozen worker processes that tracking never uses.
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$venv/bin/mlflow" server --backend-store-uri "sqlite:///$work/mlflow.db" \
  --artifacts-destination "$work/artifacts" --serve-artifacts --host 127.0.0.1 --port "$port" \
  > "$work/server.log" 2>&1 &
server=$!
trap 'kill -- -$server 2> /dev/null; wait $server 2> /dev/null; rm -rf "$work"' EXIT
export LOCKSTEP_CACHE_DIR="$work/cache" MLFLOW_TRACKING_URI="http://127.0.0.1:$port" PATH="$venv/bin:$PATH"
until curl -sf "$MLFLOW_TRACKING_URI/health" > /dev/null; do sleep 0.2; done
cd "$work"
mkdir trivial
printf 'name: trivial\nentry_points:\n  main:\n    command: "true"\n' > trivial/MLproject

# The default experiment, then a named one (one more request: its lookup by name).
hyperfine -N --warmup 5 --runs 50 --export-json "$out/tracking-lockstep.json" \
  "$bin run trivial" "$bin run trivial --experiment-name bench" > /dev/null
hyperfine -N --warmup 1 --runs 5 --export-json "$out/tracking-mlflow.json" \
  "mlflow run trivial --env-manager local" > /dev/null
runs=$(curl -s -X POST "$MLFLOW_TRACKING_URI/api/2.0/mlflow/runs/search" -H 'Content-Type: application/json' \
  -d '{"experiment_ids": ["0", "1"], "max_results": 1000}' | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["runs"]))')

python3 - "$out" "$runs" <<'PY'
import json, os, sys
out, runs = sys.argv[1], sys.argv[2]
load = lambda name: json.load(open(os.path.join(out, name)))["results"]
rows = load("tracking-lockstep.json") + load("tracking-mlflow.json")
print("## Tracking on an MLflow server (trivial entry point)\n")
print("| command | mean | stddev | runs |\n|---|---|---|---|")
for r in rows:
    name = r["command"].replace(os.path.dirname(r["command"].split()[0]) + "/", "") if r["command"].startswith("/") else r["command"]
    print(f"| `{name}` | {r['mean'] * 1000:.1f} ms | {r['stddev'] * 1000:.1f} ms | {len(r['times'])} |")
ls, named, ml = rows
print(f"\nlockstep is **{ml['mean'] / ls['mean']:.0f}x** faster on the default experiment "
      f"({ml['mean'] / named['mean']:.0f}x on a named one); the server holds {runs} runs, one per run of either command.")
PY
