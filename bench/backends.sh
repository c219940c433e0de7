#!/usr/bin/env bash
# Reproduces the Slurm numbers in BENCHMARKS.md: `bench/backends.sh [PROFILE]` (default
# release; `debug` measures an existing debug build). Needs slurm-wlm and munge
# (apt-get install slurm-wlm munge) and root (the test cluster's SlurmUser). Starts the same
# one-node cluster on 127.0.0.1 as the tests (its own munged, slurmctld, slurmd, stopped by pid
# at the end), then times, 10 times each, alternating:
#   - submit -> running: from the command's start to the job's command running (it writes
#     the time), `sbatch --wrap` against `lockstep run --backend slurm`;
#   - a trivial job's total: `sbatch --wait --wrap true` against `lockstep run --backend slurm`
#     of a project whose command is `true`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
profile=${1:-release}
target=${CARGO_TARGET_DIR:-$root/target}
if [ "$profile" = release ]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin lockstep
fi
bin="$target/$profile/lockstep"
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    SLURM_CONF="$work/slurm.conf" scancel --user root > /dev/null 2>&1 || true
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    wait 2> /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
mkdir -p munge state spool log staging
chmod 755 munge
head -c 512 /dev/urandom | od -An -tx1 | tr -d ' \n' > munge/munge.key
chmod 400 munge/munge.key
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
host=$(cat /proc/sys/kernel/hostname)
cat > slurm.conf <<CONF
ClusterName=bench
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/sock
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
InactiveLimit=0
MinJobAge=300
KillWait=2
NodeName=node1 NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=node1 Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf" LOCKSTEP_CACHE_DIR="$work/cache"
munged -F -f --socket="$work/munge/sock" --key-file="$work/munge/munge.key" --log-file="$work/munge/log" \
    --pid-file="$work/munge/pid" --seed-file="$work/munge/seed" > log/munged.out 2>&1 &
pids+=($!)
until [ -S munge/sock ]; do sleep 0.1; done
slurmctld -D -i -f "$SLURM_CONF" > log/slurmctld.out 2>&1 &
pids+=($!)
until scontrol ping 2> /dev/null | grep -q 'is UP'; do sleep 0.2; done
slurmd -D -N node1 -f "$SLURM_CONF" > log/slurmd.out 2>&1 &
pids+=($!)
until [ "$(sinfo -h -o %t)" = idle ]; do sleep 0.2; done

mkdir trivial started
printf 'entry_points:\n  main:\n    command: "true"\n' > trivial/MLproject
mkdir stamp
printf 'entry_points:\n  main:\n    parameters:\n      t: string\n    command: "date +%%s.%%N > {t}"\n' > stamp/MLproject
config="{\"staging_dir\": \"$work/staging\"}"
# Each archive is staged once, before the measured runs.
"$bin" run trivial -b slurm -c "$config" > /dev/null 2>&1
"$bin" run stamp -b slurm -c "$config" -P "t=$work/started/warm-up" > /dev/null 2>&1

python3 - "$bin" "$config" "$work" <<'PY'
import os, statistics, subprocess, sys, time
bin, config, work = sys.argv[1:]
def wait_file(path):
    while not os.path.exists(path) or os.path.getsize(path) == 0:
        time.sleep(0.005)
    return float(open(path).read())
def to_running(kind, i):
    stamp = f"{work}/started/{kind}-{i}"
    start = time.time()
    if kind == "sbatch":
        subprocess.run(["sbatch", "--quiet", "-o", "/dev/null", "--wrap", f"date +%s.%N > {stamp}"], check=True)
        p = None
    else:
        p = subprocess.Popen([bin, "run", "stamp", "-b", "slurm", "-c", config, "-P", f"t={stamp}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = wait_file(stamp) - start
    if p: p.wait()
    return t
def total(kind):
    cmd = ["sbatch", "--wait", "--quiet", "-o", "/dev/null", "--wrap", "true"] if kind == "sbatch" \
        else [bin, "run", "trivial", "-b", "slurm", "-c", config]
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start
rows = {}
for name, f in [("submit -> job running", to_running), ("trivial job, total", lambda k, i: total(k))]:
    for kind in ["sbatch", "lockstep"]:
        rows[(name, kind)] = []
    for i in range(10):
        for kind in ["sbatch", "lockstep"]:
            rows[(name, kind)].append(f(kind, i))
print("| case | command | median (s) | min (s) | max (s) |")
print("|---|---|---|---|---|")
for (name, kind), ts in rows.items():
    label = ("sbatch --wrap" if name.startswith("submit") else "sbatch --wait --wrap true") if kind == "sbatch" \
        else "lockstep run -b slurm"
    print(f"| {name} | {label} | {statistics.median(ts):.3f} | {min(ts):.3f} | {max(ts):.3f} |")
PY
