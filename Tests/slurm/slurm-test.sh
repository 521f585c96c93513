#!/usr/bin/env bash
# End-to-end test of launch/slurm.sbatch under a real one-node Slurm (Debian packages slurmctld,
# slurmd, slurm-client, munge must be installed; this script installs nothing). Brings Slurm up in a
# temporary folder (slurm_up.sh, from shared/docs/slurm-local.md), submits the batch script with both
# launchers, checks the output, and always tears Slurm down by recorded PID. Needs root, a built
# binary ($SWIFT_PETL_BIN, else .build/release/swift-petl, else .build/debug/swift-petl), the model
# (models/all-MiniLM-L6-v2) and the embedded data (data/rt-vader) for the grid checks.
#
#   bash Tests/slurm/slurm-test.sh        -> prints "N passed, N failed" last, exits non-zero on a failure
#
# Checks: mpi-check as one 2-rank world through srun --mpi=pmix and mpirun; a bad --dp fails the job;
# srun without PMIx is refused; a small real grid (6 cells) completes through both launchers; a grid
# signalled with USR1 mid-run (as Slurm's --signal=B:USR1@N does before the time limit) exits 75, is
# requeued by the batch script and completes with every cell journaled exactly once (~90 s in all);
# USR1 at job start (before the ranks are up) also exits 75 and is requeued.
# Opt-in: SLURM_TEST_TIME_LIMIT=1 adds a real --time=2 --signal=B:USR1@60 run (+~85 s).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${SWIFT_PETL_BIN:-}
for b in "$ROOT/.build/release/swift-petl" "$ROOT/.build/debug/swift-petl"; do
  [ -z "$BIN" ] && [ -x "$b" ] && BIN=$b
done
[ -n "$BIN" ] || { echo "slurm-test: no swift-petl binary: run swift build (or set SWIFT_PETL_BIN)"; echo "0 passed, 1 failed"; exit 1; }
for tool in slurmctld slurmd sbatch munged mungekey python3; do
  command -v $tool >/dev/null || { echo "slurm-test: $tool missing: apt-get install slurmctld slurmd slurm-client munge"; echo "0 passed, 1 failed"; exit 1; }
done
MODEL=$(cd "$ROOT/models/all-MiniLM-L6-v2" 2>/dev/null && pwd -P)
DATA=$(cd "$ROOT/data" 2>/dev/null && pwd -P)
{ [ -n "$MODEL" ] && [ -f "$DATA/rt-vader/train.tsv" -o -d "$DATA/rt-vader" ]; } \
  || { echo "slurm-test: need models/all-MiniLM-L6-v2 and data/rt-vader under $ROOT"; echo "0 passed, 1 failed"; exit 1; }
# OPENBLAS_CORETYPE is left to the binary (it re-executes with the right kernel for this CPU; forcing SkylakeX traps on CPUs without AVX-512).
T0=$SECONDS

export SLURM_ROOT=$(mktemp -d /tmp/swift-petl-slurm.XXXXXX)
chmod 711 "$SLURM_ROOT"                 # munged needs o+x on every folder above its socket
export SLURM_CONF=$SLURM_ROOT/etc/slurm.conf
teardown() { bash "$HERE/slurm_down.sh" >/dev/null 2>&1; rm -rf "$SLURM_ROOT"; }
trap teardown EXIT
trap 'exit 130' INT TERM                # still runs teardown (EXIT trap)

PASSED=0; FAILED=0
pass() { echo "PASS $1 [$((SECONDS - T0)) s]"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1 [$((SECONDS - T0)) s]"; [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/    /' "$2" | tail -n 20; FAILED=$((FAILED + 1)); }

# --- helpers -------------------------------------------------------------------------------------
# One field of `scontrol show job` (kept MinJobAge=300 s after the end), e.g. JobState, ExitCode, Restarts.
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
# Polls (instead of sbatch --wait, which backs off up to 10 s) until the job is in a final state;
# prints that state, or WAIT-TIMEOUT(<last state>) after $2 seconds.
wait_job() {
  local id=$1 end=$((SECONDS + $2)) st=
  while [ $SECONDS -lt $end ]; do
    st=$(job_field "$id" JobState)
    case $st in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)
      echo "$st"; return 0 ;; esac
    sleep 0.5
  done
  echo "WAIT-TIMEOUT($st)"; return 1
}
# submit <out> <sbatch.sh args...>: sbatch -n 2 -c 1 with the output appended to <out>; prints the job id.
submit() {
  local out=$1; shift
  sbatch --parsable -n 2 -c 1 --time=5 --open-mode=append -o "$out" "$ROOT/launch/slurm.sbatch" "$@" 2>>"$SLURM_ROOT/sbatch.err"
}
journal_lines() { [ -f "$1" ] && wc -l <"$1" | tr -d ' ' || echo 0; }
# check_journal <journal> <cells>: every line complete JSON with status ok, <cells> lines, <cells> distinct
# spec_hash values. Prints "ok" or the first problem found.
check_journal() {
  python3 - "$1" "$2" <<'PY'
import json, sys
path, want = sys.argv[1], int(sys.argv[2])
try:
    data = open(path, 'rb').read()
except OSError as e:
    print(f"no journal: {e}"); sys.exit()
if data and not data.endswith(b'\n'):
    print("torn last line (no newline at the end)"); sys.exit()
lines = data.split(b'\n')[:-1] if data else []
hashes = []
for i, line in enumerate(lines, 1):
    try:
        r = json.loads(line)
    except ValueError:
        print(f"line {i} is not JSON (torn?): {line[:80]!r}"); sys.exit()
    if r.get('status') != 'ok':
        print(f"line {i} status {r.get('status')!r} ({r.get('reason')})"); sys.exit()
    hashes.append(r.get('spec_hash'))
dupes = sorted({h for h in hashes if hashes.count(h) > 1})
if dupes:
    print(f"duplicate spec_hash: {dupes}"); sys.exit()
if len(lines) != want or len(set(hashes)) != want:
    print(f"{len(lines)} lines, {len(set(hashes))} distinct spec_hash, want {want}"); sys.exit()
print("ok")
PY
}
GRID=(--tasks rt-vader --modules ln_out --layers each --max-train 32 --max-eval 16 --max-length 24
      --epochs 1 --batch-size 8 --model "$MODEL" --data-dir "$DATA")

if ! bash "$HERE/slurm_up.sh" >"$SLURM_ROOT/up.log" 2>&1; then
  fail "slurm comes up" "$SLURM_ROOT/up.log"; echo "$PASSED passed, $FAILED failed"; exit 1
fi
pass "slurm comes up"

# 1-2. The batch script runs mpi-check as one 2-rank world, through srun --mpi=pmix and through mpirun.
for launcher in srun mpirun; do
  out=$SLURM_ROOT/$launcher.out
  id=$(SWIFT_PETL_COMMAND=mpi-check SWIFT_PETL_LAUNCHER=$launcher SWIFT_PETL_BIN=$BIN submit "$out" --dp 2)
  st=$(wait_job "$id" 60); rc=$(job_field "$id" ExitCode)
  if [ "$st" = COMPLETED ] && [ "$rc" = 0:0 ] && grep -q "world: 2 rank(s)" "$out" \
     && grep -q "mpi-check: OK (2 rank(s), dp 2)" "$out" && grep -q "mpi-check exited with 0" "$out"; then
    pass "sbatch launch/slurm.sbatch with $launcher: one 2-rank world"
  else
    fail "sbatch launch/slurm.sbatch with $launcher: job ${id:-none} $st exit $rc" "$out"
  fi
done

# 3. A mismatching --dp makes the job fail (mpi-check exits non-zero, the job reports it).
out=$SLURM_ROOT/baddp.out
id=$(SWIFT_PETL_COMMAND=mpi-check SWIFT_PETL_BIN=$BIN submit "$out" --dp 3)
st=$(wait_job "$id" 60); rc=$(job_field "$id" ExitCode)
if [ "$st" = FAILED ] && [ "$rc" != 0:0 ] && grep -q "does not divide the world size 2" "$out"; then
  pass "a bad --dp fails the job ($st, exit $rc)"
else
  fail "a bad --dp fails the job: job ${id:-none} $st exit $rc" "$out"
fi

# 4. srun without PMIx: every task stops with the one-line hint instead of training alone.
out=$SLURM_ROOT/nopmi.out
srun -n 2 "$BIN" mpi-check >"$out" 2>&1
rc=$?
if [ $rc != 0 ] && [ "$(grep -c "srun without PMI.*srun --mpi=pmix" "$out")" = 2 ]; then
  pass "srun without --mpi=pmix is refused on every task"
else
  fail "srun without --mpi=pmix is refused on every task (rc=$rc)" "$out"
fi

# 5-6. A small real grid (rt-vader x ln_out x each of 6 layers = 6 cells) on 2 ranks completes through
# both launchers: job COMPLETED with exit 0, the journal has 6 complete lines, 6 distinct spec_hash, all ok.
for launcher in srun mpirun; do
  out=$SLURM_ROOT/grid-$launcher.out; res=$SLURM_ROOT/grid-$launcher
  id=$(SWIFT_PETL_LAUNCHER=$launcher SWIFT_PETL_BIN=$BIN submit "$out" "${GRID[@]}" --results "$res")
  st=$(wait_job "$id" 90); rc=$(job_field "$id" ExitCode)
  j=$(check_journal "$res/journal.jsonl" 6)
  if [ "$st" = COMPLETED ] && [ "$rc" = 0:0 ] && [ "$j" = ok ] && grep -q "plan: 6 cells on 2 rank(s)" "$out" \
     && grep -q "grid exited with 0" "$out"; then
    pass "grid of 6 cells with $launcher: journal complete (6 ok, 6 distinct spec_hash)"
  else
    fail "grid of 6 cells with $launcher: job ${id:-none} $st exit $rc, journal: $j" "$out"
  fi
done

# 7. Stop and requeue. Slurm's time-limit warning (--signal=B:USR1@N in the batch script) is sent here
# with `scancel --batch --signal=USR1` instead of waiting for a real --time limit: the limit is checked
# on a ~30 s cycle and the warning comes 30-60 s early (shared/docs/slurm-local.md), so a real one costs
# minutes and still cannot be placed mid-grid. The signal reaches the batch shell only (as B: does),
# so this also checks that the script forwards it to the launcher. A grid of 12 slower cells:
# once the journal has a line, USR1; the grid must journal its running cells, exit 75, the script
# requeue the job (Restarts=1, SLURM_RESTART_COUNT=1) and the second run finish the rest, each cell once.
SIG_CELLS=12
for launcher in srun mpirun; do
  out=$SLURM_ROOT/sig-$launcher.out; res=$SLURM_ROOT/sig-$launcher; jnl=$res/journal.jsonl
  id=$(SWIFT_PETL_LAUNCHER=$launcher SWIFT_PETL_BIN=$BIN submit "$out" "${GRID[@]}" --modules ln_out,ln_attn \
       --max-train 96 --results "$res")
  what="USR1 mid-grid with $launcher (job ${id:-none})"
  end=$((SECONDS + 90))
  while [ $SECONDS -lt $end ] && [ "$(journal_lines "$jnl")" -lt 1 ]; do sleep 0.5; done
  if [ "$(journal_lines "$jnl")" -lt 1 ]; then
    fail "$what: no journal line after 90 s ($(job_field "$id" JobState))" "$out"; continue
  fi
  scancel --batch --signal=USR1 "$id"
  sent=$SECONDS
  # The first run ends (no hang) with 75; snapshot the journal in the ~11 s before the requeued run starts.
  end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ] && ! grep -q "grid exited with [0-9]" "$out"; do sleep 0.3; done
  cp "$jnl" "$res-first.jsonl" 2>/dev/null
  if ! grep -q "grid exited with 75" "$out"; then
    fail "$what: the first run did not exit with 75 within 60 s of USR1 ($(job_field "$id" JobState); $(grep -o "grid exited with [0-9]*" "$out" | head -n 1))" "$out"
    wait_job "$id" 60 >/dev/null; continue
  fi
  pass "$what: the first run stopped with 75 after $((SECONDS - sent)) s"
  first=$(journal_lines "$res-first.jsonl")
  j1=$(check_journal "$res-first.jsonl" "$first")
  if [ "$j1" = ok ] && [ "$first" -ge 1 ] && [ "$first" -lt $SIG_CELLS ] && grep -q "stop file received: no new cells" "$out" \
     && grep -q "requeueing job $id" "$out"; then
    pass "$what: stopped with $first of $SIG_CELLS cells journaled, no torn or duplicate line, requeue asked"
  else
    fail "$what: after the stop: $first of $SIG_CELLS lines, journal: $j1" "$out"
  fi
  st=$(wait_job "$id" 150); rc=$(job_field "$id" ExitCode); restarts=$(job_field "$id" Restarts)
  j=$(check_journal "$jnl" $SIG_CELLS)
  if [ "$st" = COMPLETED ] && [ "$rc" = 0:0 ] && [ "${restarts:-0}" -ge 1 ] && [ "$j" = ok ] \
     && grep -q "job $id restart 1:" "$out" && grep -q "grid exited with 0" "$out" \
     && cmp -s "$res-first.jsonl" <(head -c "$(wc -c <"$res-first.jsonl")" "$jnl") \
     && [ -z "$(ls "$res" | grep torn)" ]; then
    pass "$what: requeued (Restarts=$restarts) and completed: $SIG_CELLS cells once each, first $first lines byte-identical"
  else
    fail "$what: after requeue: $st exit $rc Restarts=${restarts:-?}, journal: $j" "$out"
  fi
done

# 8. USR1 right after the job starts, before the grid can have loaded anything (the doc saw the warning
# at +0 s of a requeued --time=1 job): the request must not kill the ranks (they record it from their
# first instruction; the batch shell also leaves a stop file for rank 0). The grid exits 75 with no
# cell run, the job is requeued and completes.
out=$SLURM_ROOT/early.out; res=$SLURM_ROOT/early
id=$(SWIFT_PETL_BIN=$BIN submit "$out" "${GRID[@]}" --results "$res")
end=$((SECONDS + 30))
while [ $SECONDS -lt $end ] && ! grep -q "slurm.sbatch: job" "$out" 2>/dev/null; do sleep 0.1; done
sleep 0.3; scancel --batch --signal=USR1 "$id"
st=$(wait_job "$id" 120); rc=$(job_field "$id" ExitCode); restarts=$(job_field "$id" Restarts)
j=$(check_journal "$res/journal.jsonl" 6)
if [ "$st" = COMPLETED ] && [ "${restarts:-0}" -ge 1 ] && [ "$j" = ok ] && grep -q "grid exited with 75" "$out"; then
  pass "USR1 at job start (job $id): exit 75, requeued (Restarts=$restarts) and completed, 6 cells once each"
else
  fail "USR1 at job start (job $id): $st exit $rc Restarts=${restarts:-?}, journal: $j" "$out"
fi

# 9 (opt-in, SLURM_TEST_TIME_LIMIT=1, adds 2-4 min): a real time limit, --time=2 --signal=B:USR1@60,
# on a grid of 24 cells that takes ~75 s alone. Slurm's warning arrives 0-60 s into each run (coarse,
# see above), so the grid is stopped and requeued one or more times; it must end COMPLETED (never
# TIMEOUT) with every cell once. Can fail spuriously if the warning lands in the first ~3 s of a run
# (see 8).
if [ "${SLURM_TEST_TIME_LIMIT:-0}" = 1 ]; then
  out=$SLURM_ROOT/timelimit.out; res=$SLURM_ROOT/timelimit
  id=$(SWIFT_PETL_BIN=$BIN sbatch --parsable -n 2 -c 1 --time=2 --signal=B:USR1@60 --open-mode=append -o "$out" \
       "$ROOT/launch/slurm.sbatch" "${GRID[@]}" --modules ln_out,ln_attn --seeds 1,2 --max-train 256 \
       --results "$res" 2>>"$SLURM_ROOT/sbatch.err")
  st=$(wait_job "$id" 300); rc=$(job_field "$id" ExitCode); restarts=$(job_field "$id" Restarts)
  j=$(check_journal "$res/journal.jsonl" 24)
  if [ "$st" = COMPLETED ] && [ "$rc" = 0:0 ] && [ "${restarts:-0}" -ge 1 ] && [ "$j" = ok ] \
     && grep -q "stop file received" "$out"; then
    pass "real --time=2 --signal=B:USR1@60 (job $id): stopped and requeued $restarts time(s), 24 cells once each"
  else
    fail "real --time=2 --signal=B:USR1@60 (job $id): $st exit $rc Restarts=${restarts:-?}, journal: $j" "$out"
  fi
fi

echo "total $((SECONDS - T0)) s"
echo "$PASSED passed, $FAILED failed"
[ $FAILED = 0 ]
