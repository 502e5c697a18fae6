#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for tests and CI (run as root).
#
#   bash scripts/slurm_local.sh start    # install slurm-wlm + munge if missing, start, wait
#   bash scripts/slurm_local.sh status   # exit 0 when `srun -N1 hostname` answers
#   bash scripts/slurm_local.sh stop     # stop slurmd, slurmctld and munged
#
# Idempotent: `start` on a running cluster only checks it. State, spool and logs live in
# $SLIMLIB_SLURM_DIR (default /tmp/slimlib-slurm). The config is written to
# /etc/slurm/slurm.conf (where every SLURM client looks) unless a slurm.conf that this script
# did not write is already there; then the script refuses instead of replacing it.
set -euo pipefail

DIR=${SLIMLIB_SLURM_DIR:-/tmp/slimlib-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by slimlib scripts/slurm_local.sh"
HOST=$(hostname -s)

log() { echo "slurm_local: $*" >&2; }

answers() { timeout 20 srun -N1 -t 1 hostname >/dev/null 2>&1; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "must run as root (it installs packages and starts system daemons)"; exit 2
  fi
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
      && command -v munged >/dev/null && command -v srun >/dev/null; then
    return
  fi
  log "installing slurm-wlm and munge (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_config() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    log "$CONF exists and was not written by this script; refusing to replace it"; exit 3
  fi
  mkdir -p "$DIR/state" "$DIR/spool" /etc/slurm
  local cpus mem
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  cat >"$CONF.tmp" <<EOF
$MARK
ClusterName=slimlib
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=600
SlurmdTimeout=60
# scancel sends SIGTERM (which submitit jobs ignore, as preemption sends it first) and
# SIGKILL KillWait seconds later; keep that short on a test cluster
KillWait=2
NodeName=$HOST CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  if cmp -s "$CONF.tmp" "$CONF"; then rm "$CONF.tmp"; return 1; fi
  mv "$CONF.tmp" "$CONF"
}

start_munge() {
  if pgrep -x munged >/dev/null && munge -n </dev/null | unmunge >/dev/null 2>&1; then
    return
  fi
  mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating a munge key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
  chmod 0700 /etc/munge
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.2; done
  log "munged did not come up"; exit 4
}

start() {
  need_root
  if answers; then
    if write_config; then scontrol reconfigure; log "config updated ($CONF)"; fi
    log "already up ($HOST)"; return
  fi
  install_packages
  write_config || true
  start_munge
  pgrep -x slurmctld >/dev/null || slurmctld -f "$CONF"
  pgrep -x slurmd >/dev/null || slurmd -f "$CONF"
  for _ in $(seq 60); do
    if answers; then
      scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
      log "up: $(sinfo -h -o '%P %D node(s) %c CPUs %T') (logs in $DIR)"; return
    fi
    sleep 1
  done
  log "srun -N1 hostname does not answer; see $DIR/slurmctld.log and $DIR/slurmd.log"
  exit 5
}

stop() {
  need_root
  for daemon in slurmd slurmctld; do
    pid_file=$DIR/$daemon.pid
    if [ -s "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
      kill "$(cat "$pid_file")"
    fi
  done
  if [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
    kill "$(cat /run/munge/munged.pid)"
  fi
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if answers; then log "up"; else log "not answering"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
