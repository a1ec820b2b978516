#!/usr/bin/env bash
# A single-node Slurm cluster for the tests, all state under one directory:
#   test/slurm/cluster.sh start DIR [CPUS] [MEM_MB]   -> prints SLURM_CONF=DIR/slurm.conf
#   test/slurm/cluster.sh stop DIR
# munged (its own key and socket), slurmctld and slurmd run as the calling user (root in CI), with
# a short credential lifetime so that a requeued job does not wait two minutes to start again.
set -euo pipefail
cmd=${1:?start|stop}
D=$(realpath -m "${2:?state directory}")
case "$cmd" in
start)
  CPUS=${3:-$(nproc)}
  MEM=${4:-2048}
  mkdir -p "$D"/{state,spool,log,munge}
  chmod 700 "$D/munge"
  host=$(hostname -s)
  port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  CTLD_PORT=$(port); SLURMD_PORT=$(port)
  [ -f "$D/munge/munge.key" ] || mungekey -c -k "$D/munge/munge.key" 2>/dev/null || dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$D/munge/munge.key"
  munged --force -S "$D/munge/munge.sock" --key-file="$D/munge/munge.key" --pid-file="$D/munge/munged.pid" \
    --log-file="$D/log/munged.log" --seed-file="$D/munge/munged.seed"
  cat > "$D/slurm.conf" <<CONF
ClusterName=sptest
SlurmctldHost=$host
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.sock,cred_expire=5
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
JobRequeue=1
KillWait=2
CompleteWait=0
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$D/slurm.conf"
  slurmctld -i -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF" -N "$host"
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then echo "SLURM_CONF=$SLURM_CONF"; exit 0; fi
    sleep 0.5
  done
  echo "slurm did not come up; logs in $D/log" >&2
  exit 1
  ;;
stop)
  for p in slurmd slurmctld; do [ -f "$D/$p.pid" ] && kill "$(cat "$D/$p.pid")" 2>/dev/null || true; done
  [ -f "$D/munge/munged.pid" ] && kill "$(cat "$D/munge/munged.pid")" 2>/dev/null || true
  sleep 0.5
  ;;
*) echo "usage: cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
