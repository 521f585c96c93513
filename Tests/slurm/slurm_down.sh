#!/bin/bash
# Stop everything slurm_up.sh started, by recorded PID (no pkill), in dependency order.
# Jobs must be cancelled and drained BEFORE slurmd stops: slurmstepd + job processes
# are not children of slurmd and survive it.
R=${SLURM_ROOT:-$(mktemp -d)}
export SLURM_CONF=$R/etc/slurm.conf
if [ -f $R/run/slurmctld.bgpid ]; then
  scancel --user=$(id -un) 2>/dev/null
  for i in $(seq 100); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
fi
for d in slurmd slurmctld slurmdbd mariadbd munged; do
  f=$R/run/$d.bgpid; [ -f $f ] || continue; pid=$(cat $f)
  if kill -TERM $pid 2>/dev/null; then
    for i in $(seq 150); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    kill -0 $pid 2>/dev/null && { echo "$d ($pid) ignored TERM, killing" >&2; kill -KILL $pid; }
  fi
  rm -f $f
done
