#!/usr/bin/env python3
"""Copy the one run of a store into a store of N runs, for bench/ui.sh: each copy gets a new
run id, start time, `seed` parameter and shifted metric summaries; its events file and logs
are hard links to the original's. Records are written to a temporary file and renamed, as
lockstep writes them."""
import json, os, sys, uuid

store, total = sys.argv[1], int(sys.argv[2])
runs = os.path.join(store, "runs")
(original,) = os.listdir(runs)
src = os.path.join(runs, original)
with open(os.path.join(src, "record.json")) as f:
    template = json.load(f)
for i in range(1, total):
    run_id = uuid.uuid4().hex
    dst = os.path.join(runs, run_id)
    os.makedirs(os.path.join(dst, "tracking"))
    for name in ["stdout.log", "stderr.log", "tracking/events.jsonl"]:
        if os.path.exists(os.path.join(src, name)):
            os.link(os.path.join(src, name), os.path.join(dst, name))
    record = json.loads(json.dumps(template))
    record["run_id"] = run_id
    record["start_time"] = template["start_time"] - i * 60_000
    record["end_time"] = record["start_time"] + 1000 + i % 500
    record["parameters"] = {"seed": str(i % 50)}
    record["parameter_order"] = ["seed"]
    for m in (record.get("logged") or {}).get("metrics", {}).values():
        m["last"] = m["last"] + (i % 97) / 1000.0
    tmp = os.path.join(dst, ".tmp-record.json")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.rename(tmp, os.path.join(dst, "record.json"))
