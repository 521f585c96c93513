#!/usr/bin/env bash
# End-to-end test of launch/slurm.sbatch under a real one-node Slurm (Debian packages slurmctld,
# slurmd, slurm-client, munge must be installed; this script installs nothing). Brings Slurm up in a
# temporary folder (slurm_up.sh, from shared/docs/slurm-local.md), submits the batch script with both
# launchers, checks the output, and always tears Slurm down by recorded PID. Needs root and a built
# binary: $SWIFT_PETL_BIN, else .build/release/swift-petl, else .build/debug/swift-petl.
#
#   bash Tests/slurm/slurm-test.sh        -> prints "N passed, N failed", exits non-zero on a failure
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${SWIFT_PETL_BIN:-}
for b in "$ROOT/.build/release/swift-petl" "$ROOT/.build/debug/swift-petl"; do
  [ -z "$BIN" ] && [ -x "$b" ] && BIN=$b
done
[ -n "$BIN" ] || { echo "slurm-test: no swift-petl binary: run swift build (or set SWIFT_PETL_BIN)"; echo "0 passed, 1 failed"; exit 1; }
for tool in slurmctld slurmd sbatch munged mungekey; do
  command -v $tool >/dev/null || { echo "slurm-test: $tool missing: apt-get install slurmctld slurmd slurm-client munge"; echo "0 passed, 1 failed"; exit 1; }
done

export SLURM_ROOT=$(mktemp -d /tmp/swift-petl-slurm.XXXXXX)
chmod 711 "$SLURM_ROOT"                 # munged needs o+x on every folder above its socket
export SLURM_CONF=$SLURM_ROOT/etc/slurm.conf
teardown() { bash "$HERE/slurm_down.sh" >/dev/null 2>&1; rm -rf "$SLURM_ROOT"; }
trap teardown EXIT

PASSED=0; FAILED=0
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | tail -n 20; FAILED=$((FAILED + 1)); }

if ! bash "$HERE/slurm_up.sh" >"$SLURM_ROOT/up.log" 2>&1; then
  fail "slurm comes up" "$SLURM_ROOT/up.log"; echo "$PASSED passed, $FAILED failed"; exit 1
fi
pass "slurm comes up"

# 1-2. The batch script runs mpi-check as one 2-rank world, through srun --mpi=pmix and through mpirun.
for launcher in srun mpirun; do
  out=$SLURM_ROOT/$launcher.out
  SWIFT_PETL_COMMAND=mpi-check SWIFT_PETL_LAUNCHER=$launcher SWIFT_PETL_BIN=$BIN \
    sbatch --wait -n 2 -c 1 --time=5 -o "$out" "$ROOT/launch/slurm.sbatch" --dp 2 >/dev/null 2>"$SLURM_ROOT/sbatch.err"
  rc=$?
  if [ $rc = 0 ] && grep -q "world: 2 rank(s)" "$out" && grep -q "mpi-check: OK (2 rank(s), dp 2)" "$out" \
     && grep -q "mpi-check exited with 0" "$out"; then
    pass "sbatch launch/slurm.sbatch with $launcher: one 2-rank world"
  else
    fail "sbatch launch/slurm.sbatch with $launcher (sbatch rc=$rc)" "$out"
  fi
done

# 3. A mismatching --dp makes the job fail (mpi-check exits non-zero, the job reports it).
out=$SLURM_ROOT/baddp.out
SWIFT_PETL_COMMAND=mpi-check SWIFT_PETL_BIN=$BIN \
  sbatch --wait -n 2 -c 1 --time=5 -o "$out" "$ROOT/launch/slurm.sbatch" --dp 3 >/dev/null 2>&1
rc=$?
if [ $rc != 0 ] && grep -q "does not divide the world size 2" "$out"; then
  pass "a bad --dp fails the job (rc=$rc)"
else
  fail "a bad --dp fails the job (rc=$rc)" "$out"
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

echo "$PASSED passed, $FAILED failed"
[ $FAILED = 0 ]
