#!/usr/bin/env bash
# Two nodes, not one: the grid, a data-parallel group, node failures and stop requests across two
# "nodes" built from network namespaces on this machine (launch/netns-cluster: hosts n1 and n2 on
# 198.18.0.0/24, Open MPI over TCP between them, launched through launch/netns-node as the rsh agent).
# Needs root, a built binary ($SWIFT_PETL_BIN, else .build/release/swift-petl, else .build/debug/...),
# models/all-MiniLM-L6-v2 and data/rt-vader. Every mpirun runs on n1 under `timeout`.
#
#   bash Tests/cluster/two-nodes.sh     -> prints "N passed, N failed" last, exits non-zero on a failure
#
# Checks (the grid: rt-vader x {ln_out, ln_attn} x each of 6 layers = 12 tiny cells, one BLAS thread):
#  - the cluster: own hostnames, /etc/hosts only in the nodes' mount namespaces, no route or address of
#    198.18.0.0/24 in the root namespace; mpi-check over 2 nodes x 2 ranks sees hosts n1 and n2, and
#    n2's ranks are children of an orted that the agent started in n2's namespaces
#  - the grid over 2 nodes x 2 ranks equals a one-rank run cell for cell (dev metrics, every epoch's
#    train loss, `moved`, exactly), and its records name the host that trained each cell
#  - a --dp 2 group with one rank on each node makes the same SGD update as one rank (Tests/cluster/
#    check.py dp-update), all-reduce bytes = 4 x trainable parameters
#  - SIGKILL of every rank on n2 ends the job within 45 s with one line naming n2; a resume on n1
#    alone finishes: 0 lost, 0 duplicated, metrics identical, the interrupted journal a byte prefix
#  - n2 vanishing without a word (its link cut, every process on it frozen) ends the job within 45 s
#    through Open MPI's keepalives, with one line naming n2
#  - a results folder in /tmp, node-local (each node's own tmpfs), is refused at start with one line
#    naming n2's ranks; no cell runs
#  - SIGUSR1 to mpirun reaches the ranks on both nodes (every group leader reports it): exit 75; the
#    resume over both nodes is exact
#  - `down` leaves nothing behind
set -uo pipefail
TEST_NAME=two-nodes
source "$(dirname "$0")/lib.sh"
CHECK="python3 $HERE/check.py"

GRID=(grid --tasks rt-vader --modules ln_out,ln_attn --layers each --max-train 48 --max-eval 16 --max-length 24
      --epochs 1 --batch-size 8 --no-prefix-cache --lrs 5e-3 --model "$MODEL" --data-dir "$DATA")
# grid_on_nodes HOSTS RESULTS LOG [args...]: the grid under mpirun on n1, hosts e.g. n1:2,n2:2.
grid_on_nodes() {
  local hosts=$1 results=$2 log=$3; shift 3
  on_node n1 timeout -k 5 150 mpirun --host "$hosts" "${MPI_FLAGS[@]}" "$BIN" "${GRID[@]}" --results "$results" "$@" \
    >"$log" 2>&1
}
# The mpirun under a background job's pid (timeout -> mpirun), by walking its descendants.
mpirun_below() {
  local p=$1 c
  for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do
    [ "$(cat /proc/$c/comm 2>/dev/null)" = mpirun ] && { echo "$c"; return; }
    mpirun_below "$c"
  done
}

cluster_start

# 1. The cluster and Open MPI across it.
if [ "$(on_node n1 hostname)" = n1 ] && [ "$(on_node n2 hostname)" = n2 ] \
   && on_node n1 getent hosts n2 | grep -q '^198\.18\.0\.12 ' && ! getent hosts n2 >/dev/null \
   && [ -z "$(ip route show 198.18.0.0/24)" ] && ! ip -o addr | grep -q ' 198\.18\.0\.' \
   && [ -z "$(on_node n2 ip route show default)" ] && [ "$(sha256sum /etc/hosts | cut -d' ' -f1)" = "$HOSTS_SUM" ]; then
  pass "nodes n1, n2: own hostnames and /etc/hosts; no default route; no route or address of 198.18.0.0/24 in the root namespace"
else
  fail "nodes n1, n2: hostnames $(on_node n1 hostname)/$(on_node n2 hostname), root routes: $(ip route show 198.18.0.0/24)"
fi
cat >"$WORK/who.sh" <<'EOF'
echo "who: $(hostname) rank $OMPI_COMM_WORLD_RANK parent $(cat /proc/$PPID/comm) netns $(readlink /proc/self/ns/net)"
EOF
on_node n1 timeout -k 5 60 mpirun --host n1:2,n2:2 "${MPI_FLAGS[@]}" "$BIN" mpi-check --dp 2 >"$WORK/mpicheck.log" 2>&1; rc=$?
on_node n1 timeout -k 5 60 mpirun --host n1:2,n2:2 "${MPI_FLAGS[@]}" bash "$WORK/who.sh" >"$WORK/who.log" 2>&1
n2ns=$(readlink "/proc/$(cat "$PETL_NETNS_STATE/n2.pid")/ns/net")
if [ $rc = 0 ] && grep -q "^hosts: n1, n2$" "$WORK/mpicheck.log" && grep -q "mpi-check: OK (4 rank(s), dp 2)" "$WORK/mpicheck.log" \
   && [ "$(grep "^who: n2 rank [23] parent orted " "$WORK/who.log" | grep -cF "netns $n2ns")" = 2 ] \
   && [ "$(grep -c "^who: n1 rank [01] parent mpirun " "$WORK/who.log")" = 2 ]; then
  pass "mpirun --host n1:2,n2:2 over TCP: mpi-check sees hosts n1, n2; n2's ranks run under an orted in n2's namespaces"
else
  fail "mpirun over two nodes (rc $rc)" "$WORK/mpicheck.log"; sed 's/^/    /' "$WORK/who.log" | head
fi

# 2. The reference (one rank, no MPI launcher) and the same grid over 2 nodes x 2 ranks.
OPENBLAS_NUM_THREADS=1 timeout -k 5 150 "$BIN" "${GRID[@]}" --results "$WORK/ref" >"$WORK/ref.log" 2>&1 \
  || { fail "reference grid on one rank" "$WORK/ref.log"; finish; exit 1; }
REF=$WORK/ref/journal.jsonl
CELLS=$(journal_lines "$REF")
grid_on_nodes n1:2,n2:2 "$WORK/grid" "$WORK/grid.log"; rc=$?
j=$($CHECK journal "$WORK/grid/journal.jsonl" "$REF" --hosts n1,n2)
if [ $rc = 0 ] && [ "$CELLS" = 12 ] && [[ $j == ok:* ]] && grep -q "plan: 12 cells on 4 rank(s)" "$WORK/grid.log"; then
  pass "grid over 2 nodes x 2 ranks = one rank, cell for cell ($j)"
else
  fail "grid over 2 nodes x 2 ranks (rc $rc, $CELLS reference cells): $j" "$WORK/grid.log"
fi

# 3. A --dp 2 group with one rank on each node against one rank: the same SGD update.
DP=(grid --tasks rt-vader --modules layernorm --layers all --max-train 48 --max-eval 16 --max-length 24 --batch-size 8
    --max-steps 1 --no-prefix-cache --optimizer sgd --max-grad-norm 0 --dropout 0 --warmup-ratio 0 --save-adapters
    --model "$MODEL" --data-dir "$DATA")
OPENBLAS_NUM_THREADS=1 timeout -k 5 120 "$BIN" "${DP[@]}" --lrs 1 --results "$WORK/dp1" >"$WORK/dp1.log" 2>&1; r1=$?
OPENBLAS_NUM_THREADS=1 timeout -k 5 120 "$BIN" "${DP[@]}" --lrs 2 --results "$WORK/dp1x2" >"$WORK/dp1x2.log" 2>&1; r2=$?
on_node n1 timeout -k 5 120 mpirun --host n1:1,n2:1 "${MPI_FLAGS[@]}" "$BIN" "${DP[@]}" --lrs 1 --dp 2 \
  --results "$WORK/dp2" >"$WORK/dp2.log" 2>&1; r3=$?
j=$($CHECK dp-update "$WORK/dp1" "$WORK/dp1x2" "$WORK/dp2")
if [ $r1$r2$r3 = 000 ] && [[ $j == ok:* ]]; then
  pass "--dp 2 across n1, n2 = --dp 1 ($j)"
else
  fail "--dp 2 across n1, n2 (exits $r1 $r2 $r3): $j" "$WORK/dp2.log"
fi

# 4. Every rank of n2 killed mid-grid: the job ends, naming n2; a resume on n1 alone completes it.
grid_on_nodes n1:2,n2:2 "$WORK/kill" "$WORK/kill.log" & BACKGROUND+=($!); job=$!
if wait_lines "$WORK/kill/journal.jsonl" 1 120; then
  pids=$(rank_pids n2)
  kill -KILL $pids; killed=$SECONDS
  wait $job; rc=$?; took=$((SECONDS - killed))
  cp "$WORK/kill/journal.jsonl" "$WORK/kill-first.jsonl"
  first=$(journal_lines "$WORK/kill-first.jsonl")
  named=$(grep -c "mpirun noticed that process rank [23] with PID [0-9]* on node n2 exited on signal 9" "$WORK/kill.log")
  if [ "$(echo $pids | wc -w)" = 2 ] && [ $rc != 0 ] && [ $rc != 124 ] && [ $took -le 45 ] && [ "$named" = 1 ] \
     && [ "$first" -lt "$CELLS" ]; then
    pass "SIGKILL of n2's 2 ranks: job ended in $took s (exit $rc), one line names n2; $first of $CELLS cells journaled"
  else
    fail "SIGKILL of n2's ranks ($pids): exit $rc after $took s, $named line(s) naming n2, $first cells" "$WORK/kill.log"
  fi
  grid_on_nodes n1:2 "$WORK/kill" "$WORK/kill-resume.log"; rc=$?
  j=$($CHECK journal "$WORK/kill/journal.jsonl" "$REF" --prefix "$WORK/kill-first.jsonl")
  if [ $rc = 0 ] && [[ $j == ok:* ]] && grep -q "plan: 12 cells on 2 rank(s)" "$WORK/kill-resume.log"; then
    pass "resume on n1 alone: $j"
  else
    fail "resume on n1 alone (exit $rc): $j" "$WORK/kill-resume.log"
  fi
else
  fail "kill test: no journal line within 120 s" "$WORK/kill.log"; wait $job
fi

# 5. n2 vanishes without a word: its link is cut first (nothing it sends arrives, no FIN or RST), then
# every process on it is frozen (SIGSTOP). Only Open MPI's keepalives (MPI_FLAGS) can notice.
grid_on_nodes n1:2,n2:2 "$WORK/freeze" "$WORK/freeze.log" & BACKGROUND+=($!); job=$!
if wait_lines "$WORK/freeze/journal.jsonl" 1 120; then
  holder=$(cat "$PETL_NETNS_STATE/n2.pid")
  frozen=$(ip netns pids "${PETL_NETNS_PREFIX}n2" | grep -vx "$holder" | tr '\n' ' ')
  ip -n "${PETL_NETNS_PREFIX}br" link set veth2 down
  kill -STOP $frozen; cut=$SECONDS
  wait $job; rc=$?; took=$((SECONDS - cut))
  kill -KILL $frozen 2>/dev/null; ip -n "${PETL_NETNS_PREFIX}br" link set veth2 up
  "$CLUSTER" check >>"$WORK/freeze.log" 2>&1 || echo "two-nodes: n2 unreachable after its link came back" >>"$WORK/freeze.log"
  if [ $rc != 0 ] && [ $rc != 124 ] && [ $took -le 45 ] && grep -q "ORTE has lost communication with a remote daemon" "$WORK/freeze.log" \
     && [ "$(grep -c "Remote daemon: .* on node n2$" "$WORK/freeze.log")" = 1 ]; then
    pass "n2 cut off and frozen: job ended in $took s (exit $rc) with one line naming n2"
  else
    fail "n2 cut off and frozen: exit $rc after $took s" "$WORK/freeze.log"
  fi
else
  fail "freeze test: no journal line within 120 s" "$WORK/freeze.log"; wait $job
fi

# 6. A results folder that is not shared: /tmp is each node's own.
PRIVATE=/tmp/swift-petl-results-$$
start=$SECONDS
grid_on_nodes n1:2,n2:2 "$PRIVATE" "$WORK/private.log"; rc=$?; took=$((SECONDS - start))
errors=$(grep -c "^Error: " "$WORK/private.log")
if [ $rc != 0 ] && [ $rc != 124 ] && [ $took -le 45 ] && [ "$errors" = 1 ] \
   && grep -q "^Error: rank 0 of 4 on n1: the results folder $PRIVATE is not shared between the nodes: rank(s) 2, 3 on n2 " "$WORK/private.log" \
   && ! grep -q "^\[1/" "$WORK/private.log" && [ -z "$(on_node n1 ls -A "$PRIVATE")" ]; then
  pass "results folder in node-local /tmp: refused at start in $took s with one line naming n2's ranks; no cell ran"
else
  fail "results folder in node-local /tmp: exit $rc after $took s, $errors Error line(s)" "$WORK/private.log"
fi

# 7. SIGUSR1 to mpirun mid-grid: forwarded to the ranks on both nodes; exit 75; an exact resume.
grid_on_nodes n1:2,n2:2 "$WORK/usr1" "$WORK/usr1.log" & BACKGROUND+=($!); job=$!
if wait_lines "$WORK/usr1/journal.jsonl" 1 120; then
  mp=$(mpirun_below $job)
  kill -USR1 $mp; sent=$SECONDS
  wait $job; rc=$?; took=$((SECONDS - sent))
  cp "$WORK/usr1/journal.jsonl" "$WORK/usr1-first.jsonl"
  first=$(journal_lines "$WORK/usr1-first.jsonl")
  if [ -n "$mp" ] && [ $rc = 75 ] && grep -Eq "grid: SIGUSR1 seen by group leader\(s\) [0-9, ]+ of 4 on n1, n2" "$WORK/usr1.log" \
     && [ "$first" -lt "$CELLS" ]; then
    pass "SIGUSR1 to mpirun: seen by ranks on n1 and n2, exit 75 after $took s with $first of $CELLS cells"
  else
    fail "SIGUSR1 to mpirun ($mp): exit $rc after $took s, $first cells" "$WORK/usr1.log"
  fi
  grid_on_nodes n1:2,n2:2 "$WORK/usr1" "$WORK/usr1-resume.log"; rc=$?
  j=$($CHECK journal "$WORK/usr1/journal.jsonl" "$REF" --prefix "$WORK/usr1-first.jsonl" --hosts n1,n2)
  if [ $rc = 0 ] && [[ $j == ok:* ]]; then
    pass "resume over n1, n2 after SIGUSR1: $j"
  else
    fail "resume after SIGUSR1 (exit $rc): $j" "$WORK/usr1-resume.log"
  fi
else
  fail "USR1 test: no journal line within 120 s" "$WORK/usr1.log"; wait $job
fi

cluster_down_check
finish
