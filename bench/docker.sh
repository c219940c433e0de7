#!/usr/bin/env bash
# Reproduces the Docker numbers in BENCHMARKS.md: `bench/docker.sh`.
# Needs a Docker engine, socat and busybox-static (apt-get install socat busybox-static), and
# the docker CLI to import the base image. Prints a markdown report; the raw times stay in
# $BENCH_OUT/docker-run.json (default: target/bench).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/target/bench}
mkdir -p "$out"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin lockstep --example docker_baseline
bin="$root/target/release/lockstep"
baseline="$root/target/release/examples/docker_baseline"
work=$(mktemp -d)
image=lockstep-bench/busybox:1
project_image=
trap 'kill $(jobs -p) 2> /dev/null || true; docker rmi -f $image $project_image > /dev/null 2>&1 || true; rm -rf "$work"' EXIT
export LOCKSTEP_CACHE_DIR="$work/cache"
cd "$work"

# The base image: Debian's static busybox as a root filesystem.
mkdir -p rootfs/bin rootfs/tmp
cp "$(command -v busybox)" rootfs/bin/busybox
for applet in $(rootfs/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox "rootfs/bin/$applet"; done
tar -C rootfs -c . | docker import - "$image" > /dev/null

mkdir trivial
printf 'name: bench\ndocker_env:\n  image: %s\nentry_points:\n  main:\n    command: "true"\n' "$image" > trivial/MLproject
"$bin" run trivial > /dev/null 2>&1   # builds the project image once
project_image=$("$bin" run trivial --json 2> /dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["environment"]["project_image"])')

# Engine timings drift over a series, so the two commands alternate (hyperfine runs one series
# after the other): 5 warm-up pairs, then 40 measured pairs.
python3 - "$out/docker-run.json" "$baseline $project_image true" "$bin run trivial" <<'PY'
import json, subprocess, sys, time
out, commands = sys.argv[1], sys.argv[2:]
times = {c: [] for c in commands}
for i in range(45):
    for c in commands:
        start = time.perf_counter()
        subprocess.run(c.split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        if i >= 5:
            times[c].append(time.perf_counter() - start)
json.dump(times, open(out, "w"))
PY

# Proof that a warm run makes no build call: every request of one run, through a logging proxy.
socat -v "UNIX-LISTEN:$work/api.sock,fork" UNIX-CONNECT:/var/run/docker.sock 2> "$work/api.log" &
sleep 0.5
DOCKER_HOST="unix://$work/api.sock" "$bin" run trivial > /dev/null 2>&1
sleep 0.2
grep -aoE '^(GET|POST|DELETE|HEAD|PUT) /[^ ?]*' "$work/api.log" | sed -E 's#/v[0-9.]+/#/#; s#[0-9a-f]{64}#ID#g' > "$work/calls.txt"

python3 - "$out/docker-run.json" "$work/calls.txt" <<'PY'
import json, statistics as st, sys
times = list(json.load(open(sys.argv[1])).items())
calls = [c for c in open(sys.argv[2]).read().split("\n") if c]
(base_cmd, base), (run_cmd, run) = times
ms = lambda xs: 1000 * st.mean(xs)
med = lambda xs: 1000 * st.median(xs)
print("## Docker run overhead (warm: the project image exists)\n")
print("| command | mean | median | stddev |\n|---|---|---|---|")
print(f"| plain create/start/wait/remove (`docker_baseline`) | {ms(base):.1f} ms | {med(base):.1f} ms | {1000 * st.stdev(base):.1f} ms |")
print(f"| `lockstep run trivial` | {ms(run):.1f} ms | {med(run):.1f} ms | {1000 * st.stdev(run):.1f} ms |")
diffs = [r - b for b, r in zip(base, run)]
print(f"\nAdded by lockstep: **{ms(run) - ms(base):.1f} ms** on the means (ratio {st.mean(run) / st.mean(base):.2f}x), "
      f"median of the {len(diffs)} paired differences {med(diffs):.1f} ms.\n")
print(f"API calls of one warm run ({len(calls)}, of which builds: {sum('/build' in c for c in calls)}):\n")
print("```\n" + "\n".join(calls) + "\n```")
PY
