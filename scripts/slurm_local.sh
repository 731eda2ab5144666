#!/usr/bin/env bash
# A single-node Slurm on this machine, for checking dtask's sbatch script for real: munged,
# slurmctld and slurmd started by hand (no systemd needed), every file of it in one
# directory, and all of it stopped and removed by `down`.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/slurm_local.sh install
       scripts/slurm_local.sh up DIR
       scripts/slurm_local.sh down DIR

  install  installs Debian's slurm-wlm and munge (apt-get, through sudo when not root);
           up and down never install anything
  up DIR   creates DIR (it must not exist), writes a munge key and a slurm.conf for this one
           node (NodeName=$(hostname -s), its cores and memory, partition 'dtask') with free
           ports, starts munged, slurmctld and slurmd as daemons, and waits (at most 60 s)
           until sinfo shows the node idle. Then point Slurm's commands at it with
             export SLURM_CONF=DIR/slurm.conf
  down DIR stops the daemons of DIR and the job processes they left, then removes DIR.
           Safe to call after a failed or partial up, and more than once.

The daemons run as the calling user, which must be root: slurmd starts jobs as their user.
USAGE
}

die() {
    echo "slurm_local.sh: $*" >&2
    exit 1
}

# die_with_log LOG MESSAGE: the message and the log's last lines (the log goes with DIR).
die_with_log() {
    echo "slurm_local.sh: $2; the end of $1:" >&2
    tail -n 10 "$1" >&2 2>/dev/null || true
    exit 1
}

marker=".dtask-slurm-local"

install_packages() {
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo: run as root apt-get install slurm-wlm munge"
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends slurm-wlm munge </dev/null
}

# Two TCP ports nobody listens on now, for slurmctld and slurmd.
free_ports() {
    python3 -c '
import socket
held = [socket.socket() for _ in range(2)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))'
}

# wait_until SECONDS COMMAND...: polls COMMAND until it succeeds, failing after SECONDS.
wait_until() {
    local limit="$1"
    shift
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

node_is_idle() {
    [[ "$(sinfo -h -N -o %T 2>/dev/null)" == idle ]]
}

# On up's exit: after a failure, what it started and made goes.
undo_failed_up() {
    local status=$?
    ((status == 0)) || down "$up_dir"
    exit "$status"
}

up() {
    local dir="$1"
    [[ ! -e "$dir" ]] || die "'$dir' already exists: choose a new directory (or run down first)"
    for program in munged mungekey slurmctld slurmd sinfo; do
        command -v "$program" >/dev/null 2>&1 ||
            die "$program not found: install slurm-wlm and munge (scripts/slurm_local.sh install)"
    done
    ((EUID == 0)) || die "slurmd starts jobs as their user, so it must run as root"

    mkdir -m 0700 "$dir"
    dir="$(cd "$dir" && pwd)"
    touch "$dir/$marker"
    # A failed up leaves nothing running and nothing on disk.
    up_dir="$dir"
    trap undo_failed_up EXIT
    mkdir -m 0700 "$dir/ctld" "$dir/spool"
    # munged wants its socket's directory searchable by all (its key stays 0600); --force
    # below lets it run when a parent is not (a test's private TMPDIR).
    mkdir -m 0711 "$dir/munge"

    mungekey --create --keyfile="$dir/munge/munge.key"
    chmod 0600 "$dir/munge/munge.key"
    munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed" ||
        die_with_log "$dir/munge/munged.log" "munged did not start"

    local node ctld_port slurmd_port memory_mib
    node="$(hostname -s)"
    read -r ctld_port slurmd_port < <(free_ports)
    memory_mib=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 9 / 10240))
    cat >"$dir/slurm.conf" <<CONF
# Written by scripts/slurm_local.sh: one node, this machine, for tests.
ClusterName=dtasklocal
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
# No cgroups: processes are tracked by parentage, which needs no systemd.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$memory_mib State=UNKNOWN
PartitionName=dtask Nodes=$node Default=YES MaxTime=60 State=UP
CONF
    export SLURM_CONF="$dir/slurm.conf"
    # -i: ignore state a previous controller may have saved (there is none in a new DIR).
    slurmctld -i || die_with_log "$dir/slurmctld.log" "slurmctld did not start"
    slurmd || die_with_log "$dir/slurmd.log" "slurmd did not start"
    if ! wait_until 60 node_is_idle; then
        echo "slurm_local.sh: the node is not idle after 60 s: sinfo says" \
             "'$(sinfo -h -N -o '%T %E' 2>&1)'; last lines of the logs:" >&2
        tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
        exit 1
    fi
    echo "slurm_local.sh: node $node idle; export SLURM_CONF=$dir/slurm.conf"
}

# The processes whose environment names this DIR's slurm.conf: the daemons (started with
# SLURM_CONF set) and what they started (slurmstepd, job steps).
processes_of() {
    grep -lzxF "SLURM_CONF=$1/slurm.conf" /proc/[0-9]*/environ 2>/dev/null |
        sed -e 's|^/proc/||' -e 's|/environ$||' | grep -vx "$$" || true
}

# stop_pid PID: SIGTERM, then SIGKILL if it has not ended after 10 s.
stop_pid() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! timeout 10 tail -s 0.1 --pid="$pid" -f /dev/null 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        timeout 5 tail -s 0.1 --pid="$pid" -f /dev/null 2>/dev/null || true
    fi
}

down() {
    local dir="$1"
    [[ -e "$dir" ]] || return 0
    [[ -f "$dir/$marker" ]] || die "'$dir' was not made by scripts/slurm_local.sh up: left alone"
    dir="$(cd "$dir" && pwd)"
    local file pid
    for file in slurmd.pid slurmctld.pid; do
        [[ -s "$dir/$file" ]] || continue
        pid="$(<"$dir/$file")"
        # Only a daemon of this DIR: a stale pid file must not stop another process.
        if grep -qzxF "SLURM_CONF=$dir/slurm.conf" "/proc/$pid/environ" 2>/dev/null; then
            stop_pid "$pid"
        fi
    done
    for pid in $(processes_of "$dir"); do
        stop_pid "$pid"
    done
    if [[ -S "$dir/munge/munge.socket" ]]; then
        munged --stop --socket="$dir/munge/munge.socket" >/dev/null 2>&1 || true
    fi
    if [[ -s "$dir/munge/munged.pid" ]]; then
        pid="$(<"$dir/munge/munged.pid")"
        if [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == */munged ]]; then
            stop_pid "$pid"
        fi
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    install) install_packages ;;
    up) (($# == 2)) || { usage >&2; exit 2; }; up "$2" ;;
    down) (($# == 2)) || { usage >&2; exit 2; }; down "$2" ;;
    -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
esac
