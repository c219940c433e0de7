#!/usr/bin/env bash
# Reproduces the Docker numbers in BENCHMARKS.md: `bench/docker.sh`.
# Needs a Docker engine, hyperfine, socat and busybox-static (apt-get install hyperfine socat
# busybox-static), and the docker CLI to import the base image. Prints a markdown report; raw
# hyperfine JSON stays in $BENCH_OUT (default: target/bench).
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

hyperfine -N --warmup 5 --runs 30 --export-json "$out/docker-run.json" \
  "$baseline $project_image true" "$bin run trivial" > /dev/null

# Proof that a warm run makes no build call: every request of one run, through a logging proxy.
socat -v "UNIX-LISTEN:$work/api.sock,fork" UNIX-CONNECT:/var/run/docker.sock 2> "$work/api.log" &
sleep 0.5
DOCKER_HOST="unix://$work/api.sock" "$bin" run trivial > /dev/null 2>&1
sleep 0.2
grep -aoE '^(GET|POST|DELETE|HEAD|PUT) /[^ ?]*' "$work/api.log" | sed -E 's#/v[0-9.]+/#/#; s#[0-9a-f]{64}#ID#g' > "$work/calls.txt"

python3 - "$out" "$work/calls.txt" <<'PY'
import json, os, sys
out, calls = sys.argv[1], open(sys.argv[2]).read().split("\n")
calls = [c for c in calls if c]
rs = json.load(open(os.path.join(out, "docker-run.json")))["results"]
ms = lambda r: r["mean"] * 1000
base, run = rs[0], rs[1]
print("## Docker run overhead (warm: the project image exists)\n")
print("| command | mean | stddev |\n|---|---|---|")
print(f"| plain create/start/wait/remove (`docker_baseline`) | {ms(base):.1f} ms | {base['stddev'] * 1000:.1f} ms |")
print(f"| `lockstep run trivial` | {ms(run):.1f} ms | {run['stddev'] * 1000:.1f} ms |")
print(f"\nAdded by lockstep: **{ms(run) - ms(base):.1f} ms** (ratio {run['mean'] / base['mean']:.2f}x).\n")
print(f"API calls of one warm run ({len(calls)}, of which builds: {sum('/build' in c for c in calls)}):\n")
print("```\n" + "\n".join(calls) + "\n```")
PY
