#!/usr/bin/env bash
# Reproduces the `lockstep ui` numbers in BENCHMARKS.md: `bench/ui.sh [RUNS]` (RUNS defaults to
# 10000). One real run logs 10 metrics of 10,000 points each through the embedded endpoint;
# bench/ui-store.py then copies it into a store of RUNS runs (new ids, start times, params and
# metric summaries, the events file hard-linked, every record written whole and renamed, as
# the store does). `lockstep ui` serves that store; curl times the runs page and a run's page
# (its 10 charts drawn from 100,000 points) as the server answers them. LOCKSTEP_BIN picks the
# binary (default: the release build, made first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-10000}
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${LOCKSTEP_BIN:-}" ]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  LOCKSTEP_BIN="$target/release/lockstep"
fi
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2> /dev/null; rm -rf "$work"' EXIT
export LOCKSTEP_CACHE_DIR="$work/cache"
mkdir "$work/p"
printf 'name: curves\nentry_points:\n  main:\n    command: "python3 log.py"\n' > "$work/p/MLproject"
cat > "$work/p/log.py" <<'PY'
import json, os, urllib.request
uri, run = os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_RUN_ID"]
for m in range(10):
    for start in range(0, 10000, 1000):
        metrics = [{"key": f"metric_{m}", "value": 1.0 / (s + 1) + m, "timestamp": 1000 + s, "step": s}
                   for s in range(start, start + 1000)]
        body = json.dumps({"run_id": run, "metrics": metrics}).encode()
        req = urllib.request.Request(f"{uri}/api/2.0/mlflow/runs/log-batch", data=body,
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
PY
(cd "$work" && "$LOCKSTEP_BIN" run p --isolated --store "$work/store" --json > "$work/original.json" 2> /dev/null)
python3 "$root/bench/ui-store.py" "$work/store" "$runs"
"$LOCKSTEP_BIN" ui --store "$work/store" > "$work/url" 2> /dev/null &
server=$!
until [ -s "$work/url" ]; do sleep 0.1; done
url=$(head -1 "$work/url")
base=${url%%/\?token=*}
token=${url##*token=}
# The original run (the one whose events file the copies share).
run=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run_id"])' "$work/original.json")

# The first request reads every record; later ones re-read only records that changed.
time_of() { curl -s -o /dev/null -w '%{time_starttransfer}\n' -H "Authorization: token $token" "$base$1"; }
report() {
  local name=$1 path=$2 first
  first=$(time_of "$path")
  for _ in $(seq 20); do time_of "$path"; done | sort -n | awk -v name="$name" -v first="$first" \
    '{ t[NR] = $1 } END { printf "%-34s first %7.1f ms   median %7.1f ms   max %7.1f ms\n", name, first * 1000, t[int((NR + 1) / 2)] * 1000, t[NR] * 1000 }'
}
echo "store: $runs runs, each with 10 metrics of 10,000 points; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
report "runs page (/)" "/"
report "runs page sorted by a metric" "/?sort=-metric:metric_3"
report "runs page, a parameter filter" "/?param=seed%3D7"
report "a run's page (10 charts)" "/run/$run"
report "a run's page, x = time" "/run/$run?x=time"
