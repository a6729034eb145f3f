#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for `sweep submit --slurm`
# (issue 13): munge, slurmctld and slurmd with a minimal slurm.conf of our
# own (own ports, own state and log folder, two fake GPUs in gres.conf),
# stopped by the pids they wrote. Installs Debian's packages when they are
# missing (as root; Slurm's daemons need root here). Nothing here touches a
# system Slurm: every command must be pointed at our configuration with
# SLURM_CONF, which `env` prints.
#
#   scripts/slurm.sh start    # starts it (once), waits for the node, prints SLURM_CONF=...
#   scripts/slurm.sh env      # SLURM_CONF=... to eval before sbatch/squeue/scancel
#   scripts/slurm.sh status   # sinfo of our cluster
#   scripts/slurm.sh stop     # stops the daemons; the state folder stays
#   scripts/slurm.sh wipe     # stops them and deletes the state folder
#
# DDSAS_SLURM_DIR (default .services/slurm) and DDSAS_SLURM_PORT (default
# 56817, and the next one for slurmd) move it.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE="${DDSAS_SLURM_DIR:-$PWD/.services/slurm}"
CTLD_PORT="${DDSAS_SLURM_PORT:-56817}"
SLURMD_PORT=$((CTLD_PORT + 1))
CONF="$BASE/slurm.conf"
HOST="$(hostname -s)"
MUNGE_KEY=/etc/munge/munge.key

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "error: the one-node Slurm cluster needs root (its daemons and munge); run as root" >&2
        exit 1
    fi
}

install_if_missing() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    echo ">> installing slurmctld slurmd slurm-client munge (apt-get; once)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >&2
}

alive() {
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

start_munge() {
    # A working munge answers; a dead one may leave a zombie pgrep sees.
    if munge -n >/dev/null 2>&1; then return; fi
    if [ ! -s "$MUNGE_KEY" ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
    fi
    chown munge: "$MUNGE_KEY" && chmod 400 "$MUNGE_KEY"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge: /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- munged
    # Ours to stop, then (a munged that was already running is left alone).
    mkdir -p "$BASE"
    cp /run/munge/munged.pid "$BASE/munged.pid"
}

write_conf() {
    local cpus mem
    cpus="$(nproc)"
    mem="$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)"
    mkdir -p "$BASE/state" "$BASE/spool" "$BASE/log"
    cat >"$CONF" <<EOF
# Written by scripts/slurm.sh: a one-node cluster for ddsas's tests.
ClusterName=ddsas
SlurmctldHost=$HOST
AuthType=auth/munge
# A requeued job waits out the credential lifetime before it may start
# again (default 120 s); 10 s keeps the requeue test of issue 13 short.
AuthInfo=cred_expire=10
# ...and then for the next scheduling pass: every 5 s instead of 60.
SchedulerParameters=sched_interval=5,bf_interval=5
SlurmUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/slurmctld.pid
SlurmdPidFile=$BASE/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
GresTypes=gpu
NodeName=$HOST CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    # Two fake GPUs: Slurm only needs device files to hand out, and sets
    # CUDA_VISIBLE_DEVICES to 0 or 1 in each task.
    cat >"$BASE/gres.conf" <<EOF
NodeName=$HOST Name=gpu File=/dev/null
NodeName=$HOST Name=gpu File=/dev/zero
EOF
}

# A port held by another process (often the test cluster of another
# checkout, whose folder may even be gone) would let our daemons die at
# start while sinfo is answered by that other cluster.
refuse_taken_port() {
    local port=$1 holder
    holder="$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' | head -n 1)"
    if [ -n "$holder" ]; then
        echo "error: port $port is taken by $holder (another Slurm test cluster?); stop it (\`kill\` that pid), or choose other ports with DDSAS_SLURM_PORT=N" >&2
        exit 1
    fi
}

start() {
    need_root
    install_if_missing
    start_munge
    write_conf
    export SLURM_CONF="$CONF"
    if ! alive "$BASE/slurmctld.pid"; then
        refuse_taken_port "$CTLD_PORT"
        slurmctld -c -f "$CONF"
    fi
    if ! alive "$BASE/slurmd.pid"; then
        refuse_taken_port "$SLURMD_PORT"
        slurmd -f "$CONF"
    fi
    for _ in $(seq 1 60); do
        # Ours must be the daemons that answer: sinfo alone could be
        # answered by another cluster on the same port.
        if alive "$BASE/slurmctld.pid" && alive "$BASE/slurmd.pid" &&
            sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "SLURM_CONF=$CONF"
            return
        fi
        sleep 0.5
    done
    echo "error: the node did not become idle within 30 s; see $BASE/log/" >&2
    sinfo >&2 || true
    exit 1
}

stop_one() {
    local name=$1 pidfile="$BASE/$1.pid" pid
    if ! alive "$pidfile"; then return; fi
    pid="$(cat "$pidfile")"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { echo "stopped $name (pid $pid)"; return; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    echo "killed $name (pid $pid): it did not stop within 10 s"
}

stop() {
    stop_one slurmd
    stop_one slurmctld
    stop_one munged
}

case "${1:-}" in
    start) start ;;
    env) echo "SLURM_CONF=$CONF" ;;
    status)
        if alive "$BASE/slurmctld.pid"; then SLURM_CONF="$CONF" sinfo; else echo "not running"; fi
        ;;
    stop) stop ;;
    wipe) stop; rm -rf "$BASE"; echo "wiped $BASE" ;;
    *)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
