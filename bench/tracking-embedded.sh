#!/usr/bin/env bash
# Reproduces "Tracking without a server" in BENCHMARKS.md: `bench/tracking-embedded.sh`
# (needs hyperfine). A script that logs 1,000 metric points one call at a time (`one`) and
# one that logs them with one `log_batch` (`batch`), each run
#   - under `lockstep run` with its embedded endpoint (no tracking URI),
#   - (a) under `mlflow run --env-manager local` with MLflow's default store (sqlite
#     `mlflow.db` in the working directory),
#   - (b) under `mlflow run --env-manager local` against a local `mlflow server` (3.17.2, the
#     tests' virtualenv, sqlite store, 4 workers, job execution off), and under `lockstep run
#     --tracking-uri` against the same server.
# Then the round trip of one `runs/log-metric` request (median of 2,000, one keep-alive
# connection, Python's http.client): an upper bound of the time the server spends on it.
# LOCKSTEP_BIN picks the binary (default: a release build of this checkout); RUNS the runs
# per command (default 5). Raw hyperfine JSON stays in $BENCH_OUT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/target/bench}
runs=${RUNS:-5}
mkdir -p "$out"
if [ -z "${LOCKSTEP_BIN:-}" ]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  LOCKSTEP_BIN="${CARGO_TARGET_DIR:-$root/target}/release/lockstep"
fi
bin=$LOCKSTEP_BIN
venv="${CARGO_TARGET_DIR:-$root/target}/tmp/mlflow-3.17.2"
bash "$root/tests/support/mlflow-venv.sh" "$venv"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$venv/bin/mlflow" server --backend-store-uri "sqlite:///$work/server.db" \
  --artifacts-destination "$work/server-artifacts" --serve-artifacts --host 127.0.0.1 --port "$port" \
  > "$work/server.log" 2>&1 &
server=$!
trap 'kill -- -$server 2> /dev/null; wait $server 2> /dev/null; rm -rf "$work"' EXIT
server_uri="http://127.0.0.1:$port"
unset MLFLOW_TRACKING_URI
export LOCKSTEP_CACHE_DIR="$work/cache" PATH="$venv/bin:$PATH" MLFLOW_DISABLE_TELEMETRY=true
until curl -sf "$server_uri/health" > /dev/null; do sleep 0.2; done
cd "$work"
mkdir p
cat > p/MLproject <<'YAML'
name: bench
entry_points:
  one:
    command: "python one.py"
  batch:
    command: "python batch.py"
  latency:
    command: "python latency.py"
YAML
cat > p/one.py <<'PY'
import mlflow
with mlflow.start_run():
    for i in range(1000):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
PY
cat > p/batch.py <<'PY'
import time
import mlflow
from mlflow.entities import Metric
with mlflow.start_run() as run:
    now = int(time.time() * 1000)
    mlflow.MlflowClient().log_batch(run.info.run_id, metrics=[Metric("loss", 1.0 / (i + 1), now, i) for i in range(1000)])
PY
cat > p/latency.py <<'PY'
import http.client, json, os, statistics, time, urllib.parse
uri = urllib.parse.urlparse(os.environ["MLFLOW_TRACKING_URI"])
run = os.environ["MLFLOW_RUN_ID"]
conn = http.client.HTTPConnection(uri.hostname, uri.port)
times = []
for i in range(2000):
    body = json.dumps({"run_id": run, "key": "latency", "value": i, "timestamp": 1, "step": i})
    t = time.perf_counter()
    conn.request("POST", "/api/2.0/mlflow/runs/log-metric", body, {"Content-Type": "application/json"})
    conn.getresponse().read()
    times.append(time.perf_counter() - t)
print("median_ms %.3f p90_ms %.3f" % (statistics.median(times) * 1000, statistics.quantiles(times, n=10)[-1] * 1000))
PY
# Byte code compiled once for every command alike.
python -c 'import mlflow' > /dev/null

for script in one batch; do
  hyperfine -N --warmup 1 --runs "$runs" --export-json "$out/embedded-$script.json" \
    "$bin run p -e $script" \
    "mlflow run p -e $script --env-manager local" \
    "env MLFLOW_TRACKING_URI=$server_uri mlflow run p -e $script --env-manager local" \
    "$bin run p -e $script --tracking-uri $server_uri" > /dev/null
done
embedded=$("$bin" run p -e latency 2> /dev/null)
# mlflow run gives the script the server's run through MLFLOW_RUN_ID too.
served=$(MLFLOW_TRACKING_URI=$server_uri mlflow run p -e latency --env-manager local 2> /dev/null | grep median_ms)
python3 - "$out" "$embedded" "$served" <<'PY'
import json, os, sys
out, embedded, served = sys.argv[1:]
print("## Tracking without a server (1,000 metric points)\n")
print("| command | mean | stddev | median | runs |\n|---|---|---|---|---|")
for script in ["one", "batch"]:
    rows = json.load(open(os.path.join(out, f"embedded-{script}.json")))["results"]
    for r in rows:
        name = r["command"].replace(os.path.dirname(r["command"].split()[0]) + "/", "") if r["command"].startswith("/") else r["command"]
        print(f"| `{name}` | {r['mean']:.2f} s | {r['stddev']:.2f} s | {r['median']:.2f} s | {len(r['times'])} |")
    ls, a, b, lsb = rows
    print(f"| **{script}**: lockstep {a['median'] / ls['median']:.1f}x faster than (a), {b['median'] / ls['median']:.1f}x than (b) | | | | |")
print(f"\nOne `runs/log-metric` round trip: embedded endpoint {embedded}; mlflow server {served}")
PY
