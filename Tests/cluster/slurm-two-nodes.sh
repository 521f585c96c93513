#!/usr/bin/env bash
# launch/slurm.sbatch on a real two-node Slurm: slurmctld and a slurmd on node n1, a second slurmd on
# n2, each in its node's namespaces (launch/netns-cluster), every file under one temporary folder.
# Debian's Slurm (slurmctld, slurmd, slurm-client, munge; not installed here), root, a built binary,
# models/all-MiniLM-L6-v2 and data/rt-vader are needed. Slurm's client commands run on n1 (the root
# namespace has no route to the nodes).
#
#   bash Tests/cluster/slurm-two-nodes.sh     -> prints "N passed, N failed" last
#
# Checks: both slurmd register (sinfo: n1, n2 idle); `sbatch -N 2` of mpi-check forms one world over
# n1 and n2 through srun --mpi=pmix and through mpirun (plm/slurm); `sbatch -N 2 -n 4` of the grid
# runs its 12 cells on both nodes, equal cell for cell to a one-rank run; Slurm's time-limit warning
# (sent with `scancel --batch --signal=USR1`, as --signal=B:USR1@N does; a real limit fires only on a
# ~30 s cycle, shared/docs/slurm-local.md) stops the grid with 75 through the stop file, the script
# requeues the job and the second run (SLURM_RESTART_COUNT=1) completes it exactly.
set -uo pipefail
TEST_NAME=slurm-two-nodes
source "$(dirname "$0")/lib.sh"
CHECK="python3 $HERE/check.py"
for tool in slurmctld slurmd sbatch munged mungekey; do
  command -v $tool >/dev/null || abort "$tool missing: apt-get install slurmctld slurmd slurm-client munge"
done

R=$WORK/slurm
export SLURM_CONF=$R/etc/slurm.conf
mkdir -p "$R/etc" "$R/state/ctld" "$R/state/d-n1" "$R/state/d-n2" "$R/log" "$R/run" "$R/munge"
chmod 711 "$R" "$R/munge"         # munged: o+x on the folders above its socket
slurm_down() {                    # by recorded pid, jobs first (slurmstepd outlives slurmd)
  [ -f "$R/run/slurmctld.bgpid" ] || return 0
  on_node n1 scancel --user=root >/dev/null 2>&1
  local i d f pid
  for i in $(seq 100); do [ -z "$(on_node n1 squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  for d in slurmd-n2 slurmd-n1 slurmctld munged; do
    f=$R/run/$d.bgpid; [ -f "$f" ] || continue; pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null; rm -f "$f"
  done
}
trap 'slurm_down; cluster_clean' EXIT

# start NODE NAME COMMAND...: a daemon in the foreground on NODE, its pid in $R/run/NAME.bgpid.
start() {
  local node=$1 name=$2; shift 2
  "$NODE" "$node" "$(printf '%q ' "$@") >$R/log/$name.fg 2>&1 </dev/null & echo \$! >$R/run/$name.bgpid"
}
job_field() { on_node n1 scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
wait_job() {     # prints the final state, or WAIT-TIMEOUT(<state>) after $2 s
  local end=$((SECONDS + $2)) st=
  while [ $SECONDS -lt $end ]; do
    st=$(job_field "$1" JobState)
    case $st in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) echo "$st"; return 0 ;; esac
    sleep 0.5
  done
  echo "WAIT-TIMEOUT($st)"; return 1
}
# submit OUT SBATCH-OPTIONS... -- SCRIPT-ARGS...: sbatch on n1 from the repository; prints the job id.
submit() {
  local out=$1 opts=(); shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done; shift
  (cd "$ROOT" && on_node n1 env SWIFT_PETL_BIN="$BIN" OMPI_MCA_btl_tcp_if_include=petl0 \
     OMPI_MCA_oob_tcp_if_include=petl0 ${LAUNCHER:+SWIFT_PETL_LAUNCHER=$LAUNCHER} ${COMMAND:+SWIFT_PETL_COMMAND=$COMMAND} \
     sbatch --parsable --time=5 --open-mode=append -o "$out" "${opts[@]}" "$ROOT/launch/slurm.sbatch" "$@" 2>>"$R/sbatch.err")
}

cluster_start

# 1. munged, slurmctld and slurmd on n1, slurmd on n2.
mungekey -c -k "$R/munge/munge.key"
# Each node as slurmd -C sees this machine (the two share it: half its memory each).
MEM=$(slurmd -C | sed -nE 's/.*RealMemory=([0-9]+).*/\1/p'); MEM=$((MEM * 45 / 100))
HW=$(slurmd -C | head -n 1 | sed -E "s/^NodeName=[^ ]+ //; s/RealMemory=[0-9]+/RealMemory=$MEM/")
cat >"$SLURM_CONF" <<CONF
ClusterName=netns
SlurmctldHost=n1(198.18.0.11)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$R/munge/munge.socket.2,cred_expire=10
StateSaveLocation=$R/state/ctld
SlurmdSpoolDir=$R/state/d-%n
SlurmctldPidFile=$R/run/slurmctld.pid
SlurmdPidFile=$R/run/slurmd-%n.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
EnforcePartLimits=ALL
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$R/log/jobcomp.txt
MailProg=/bin/true
MinJobAge=300
KillWait=10
InactiveLimit=0
NodeName=n1 NodeAddr=198.18.0.11 $HW State=UNKNOWN
NodeName=n2 NodeAddr=198.18.0.12 $HW State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
CONF
start n1 munged munged -F --key-file="$R/munge/munge.key" --socket="$R/munge/munge.socket.2" \
  --log-file="$R/munge/munged.log" --pid-file="$R/munge/munged.pid" --seed-file="$R/munge/munged.seed"
for i in $(seq 50); do [ -S "$R/munge/munge.socket.2" ] && break; sleep 0.1; done
start n1 slurmctld slurmctld -D -f "$SLURM_CONF"
start n1 slurmd-n1 slurmd -D -f "$SLURM_CONF"
start n2 slurmd-n2 slurmd -D -f "$SLURM_CONF"
for i in $(seq 150); do
  [ "$(on_node n1 sinfo -h -N -o '%N %T' 2>/dev/null | sort | tr '\n' ' ')" = "n1 idle n2 idle " ] && break; sleep 0.2
done
nodes=$(on_node n1 sinfo -h -N -o '%N %T' 2>/dev/null | sort | tr '\n' ' ')
if [ "$nodes" = "n1 idle n2 idle " ]; then
  pass "two slurmd (n1, n2) registered with slurmctld on n1: $nodes"
else
  fail "two slurmd registered: sinfo says '$nodes'" "$R/log/slurmctld.log"
  tail -n 5 "$R"/log/*.fg | sed 's/^/    /'; finish; exit 1
fi

# 2. mpi-check as one world over both nodes, through srun --mpi=pmix and through mpirun (plm/slurm).
for LAUNCHER in srun mpirun; do
  out=$R/check-$LAUNCHER.out
  id=$(COMMAND=mpi-check submit "$out" -N 2 -n 2 -- --dp 2)
  st=$(wait_job "$id" 90)
  if [ "$st" = COMPLETED ] && grep -q "^hosts: n1, n2$" "$out" && grep -q "mpi-check: OK (2 rank(s), dp 2)" "$out"; then
    pass "sbatch -N 2 launch/slurm.sbatch mpi-check with $LAUNCHER: one world over n1, n2"
  else
    fail "sbatch -N 2 mpi-check with $LAUNCHER: job ${id:-none} $st" "$out"
  fi
done
LAUNCHER=

# 3. The grid over both nodes (2 ranks each), against a one-rank run.
GRID=(--tasks rt-vader --modules ln_out,ln_attn --layers each --max-train 48 --max-eval 16 --max-length 24
      --epochs 1 --batch-size 8 --no-prefix-cache --lrs 5e-3 --model "$MODEL" --data-dir "$DATA")
OPENBLAS_NUM_THREADS=1 timeout -k 5 150 "$BIN" grid "${GRID[@]}" --results "$WORK/ref" >"$WORK/ref.log" 2>&1 \
  || { fail "reference grid on one rank" "$WORK/ref.log"; finish; exit 1; }
REF=$WORK/ref/journal.jsonl
out=$R/grid.out
id=$(submit "$out" -N 2 -n 4 -c 1 -- "${GRID[@]}" --results "$WORK/grid")
st=$(wait_job "$id" 150)
j=$($CHECK journal "$WORK/grid/journal.jsonl" "$REF" --hosts n1,n2)
if [ "$st" = COMPLETED ] && [[ $j == ok:* ]] && grep -q "plan: 12 cells on 4 rank(s)" "$out"; then
  pass "sbatch -N 2 -n 4 launch/slurm.sbatch grid: $j"
else
  fail "sbatch -N 2 -n 4 grid: job ${id:-none} $st, journal: $j" "$out"
fi

# 4. The time-limit warning mid-grid: stop file, exit 75, requeue, exact resume on both nodes.
out=$R/warn.out; res=$WORK/warn; jnl=$res/journal.jsonl
id=$(submit "$out" -N 2 -n 4 -c 1 -- "${GRID[@]}" --results "$res")
if wait_lines "$jnl" 1 120; then
  on_node n1 scancel --batch --signal=USR1 "$id"; sent=$SECONDS
  end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ] && ! grep -q "grid exited with [0-9]" "$out"; do sleep 0.2; done
  cp "$jnl" "$res-first.jsonl"; took=$((SECONDS - sent))
  first=$(journal_lines "$res-first.jsonl")
  if grep -q "grid exited with 75" "$out" && grep -q "stop file received: no new cells" "$out" \
     && grep -q "requeueing job $id" "$out" && [ "$first" -lt 12 ]; then
    pass "time-limit warning on job $id: stop file, exit 75 after $took s with $first of 12 cells, requeue asked"
  else
    fail "time-limit warning on job $id: $(grep -o "grid exited with [0-9]*" "$out" | head -n 1), $first cells" "$out"
  fi
  st=$(wait_job "$id" 180); restarts=$(job_field "$id" Restarts)
  j=$($CHECK journal "$jnl" "$REF" --prefix "$res-first.jsonl" --hosts n1,n2)
  if [ "$st" = COMPLETED ] && [ "${restarts:-0}" -ge 1 ] && grep -q "job $id restart 1:" "$out" && [[ $j == ok:* ]]; then
    pass "requeued (Restarts=$restarts) and resumed on n1, n2: $j"
  else
    fail "after requeue: $st Restarts=${restarts:-?}, journal: $j" "$out"
  fi
else
  fail "time-limit warning: no journal line within 120 s ($(job_field "$id" JobState))" "$out"
fi

# 5 (opt-in, SLURM_TEST_TIME_LIMIT=1, adds 2-4 min): a real limit, --time=2 --signal=B:USR1@60, on a
# grid of 24 cells over both nodes. The warning comes 0-60 s into each run (Slurm checks limits on a
# ~30 s cycle), so the job is stopped and requeued one or more times; it must end COMPLETED (never
# TIMEOUT) with every cell once and the one-rank run's metrics.
if [ "${SLURM_TEST_TIME_LIMIT:-0}" = 1 ]; then
  OPENBLAS_NUM_THREADS=1 timeout -k 5 300 "$BIN" grid "${GRID[@]}" --seeds 1,2 --max-train 256 --results "$WORK/ref24" \
    >"$WORK/ref24.log" 2>&1 || fail "reference grid of 24 cells" "$WORK/ref24.log"
  out=$R/limit.out
  id=$(submit "$out" -N 2 -n 4 -c 1 --time=2 --signal=B:USR1@60 -- "${GRID[@]}" --seeds 1,2 --max-train 256 --results "$WORK/limit")
  st=$(wait_job "$id" 420); restarts=$(job_field "$id" Restarts)
  j=$($CHECK journal "$WORK/limit/journal.jsonl" "$WORK/ref24/journal.jsonl" --hosts n1,n2)
  if [ "$st" = COMPLETED ] && [ "${restarts:-0}" -ge 1 ] && [[ $j == ok:* ]] && grep -q "stop file received" "$out"; then
    pass "real --time=2 --signal=B:USR1@60 over n1, n2 (job $id): requeued $restarts time(s); $j"
  else
    fail "real --time=2 --signal=B:USR1@60 (job $id): $st Restarts=${restarts:-?}, journal: $j" "$out"
  fi
fi

slurm_down
cluster_down_check
finish
