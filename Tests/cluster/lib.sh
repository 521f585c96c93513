# Shared by Tests/cluster/*.sh (sourced): the binary, model and data, a two-node cluster of network
# namespaces (launch/netns-cluster) under a test-only prefix, and helpers to run commands on a node.
# Sets HERE ROOT BIN MODEL DATA WORK CLUSTER NODE MPI_FLAGS; defines pass/fail/finish, on_node,
# rank_pids, journal_lines, cluster_clean. The caller sets TEST_NAME first and calls cluster_start.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PASSED=0; FAILED=0; T0=$SECONDS
pass() { echo "PASS $1 [$((SECONDS - T0)) s]"; PASSED=$((PASSED + 1)); }
fail() {
  echo "FAIL $1 [$((SECONDS - T0)) s]"; FAILED=$((FAILED + 1))
  [ -n "${2:-}" ] && [ -f "$2" ] && grep -v '^  \[' "$2" | tail -n 25 | sed 's/^/    /'
  return 0
}
finish() { echo "total $((SECONDS - T0)) s"; echo "$PASSED passed, $FAILED failed"; [ "$FAILED" = 0 ]; }
abort() { echo "$TEST_NAME: $1"; echo "0 passed, 1 failed"; exit 1; }

[ "$(id -u)" = 0 ] || abort "needs root (network and mount namespaces)"
for tool in ip nsenter unshare mpirun timeout python3 setsid; do
  command -v $tool >/dev/null || abort "$tool missing (iproute2, util-linux, openmpi-bin, python3)"
done
BIN=${SWIFT_PETL_BIN:-}
for b in "$ROOT/.build/release/swift-petl" "$ROOT/.build/debug/swift-petl"; do
  [ -z "$BIN" ] && [ -x "$b" ] && BIN=$b
done
[ -n "$BIN" ] || abort "no swift-petl binary: run swift build (or set SWIFT_PETL_BIN)"
BIN=$(cd "$(dirname "$BIN")" && pwd -P)/$(basename "$BIN")
MODEL=$(cd "$ROOT/models/all-MiniLM-L6-v2" 2>/dev/null && pwd -P) || abort "need models/all-MiniLM-L6-v2 (launch/setup)"
DATA=$(cd "$ROOT/data" 2>/dev/null && pwd -P) && [ -d "$DATA/rt-vader" ] || abort "need data/rt-vader (launch/setup)"

# A cluster of the tests' own (its own namespace names and state): a user's cluster is left alone.
export PETL_NETNS_PREFIX=petltest- PETL_NETNS_STATE=/run/swift-petl-netns-test
CLUSTER=$ROOT/launch/netns-cluster
NODE=$ROOT/launch/netns-node
HOSTS_SUM=$(sha256sum /etc/hosts | cut -d' ' -f1)
# Not in /tmp: each node has its own (launch/netns-cluster); the rest of the file system is shared.
WORK=$(mktemp -d /var/tmp/swift-petl-cluster.XXXXXX)
chmod 755 "$WORK"
BACKGROUND=()

cluster_clean() {
  local p
  for p in "${BACKGROUND[@]}"; do kill -KILL "$p" 2>/dev/null; done
  "$CLUSTER" down >/dev/null 2>&1
  [ "$FAILED" = 0 ] && rm -rf "$WORK" || echo "$TEST_NAME: logs kept in $WORK"
}
trap cluster_clean EXIT
trap 'exit 130' INT TERM   # still runs cluster_clean (EXIT trap)

# The flags a multi-node Open MPI run needs here (docs/cluster.md): the launch agent instead of ssh,
# TCP between nodes on the cluster's interface, keepalives so a node that vanishes without closing its
# connections ends the job in ~25 s instead of ~8 min. Rank processes get one BLAS thread (-x).
MPI_FLAGS=(--mca plm_rsh_agent "$NODE" --mca btl tcp,self --mca btl_tcp_if_include petl0
           --mca oob_tcp_if_include petl0 --mca oob_tcp_keepalive_time 10 --mca oob_tcp_keepalive_intvl 5
           --mca oob_tcp_keepalive_probes 3 --bind-to none -x OPENBLAS_NUM_THREADS)

# on_node NODE CMD ARGS...: run on the node (arguments quoted for its shell, as ssh needs them), without
# inherited OMPI_*/PMIX_* variables, root allowed to run mpirun, one BLAS thread.
on_node() {
  local node=$1; shift
  local strip=() v
  for v in $(env | sed -n 's/^\(\(OMPI\|PMIX\)_[A-Za-z0-9_]*\)=.*/\1/p'); do strip+=(-u "$v"); done
  "$NODE" "$node" "$(printf '%q ' env "${strip[@]}" OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$@")"
}

# rank_pids NODE: pids of swift-petl processes inside the node's network namespace (found by argv[0]:
# the binary may re-execute itself through /proc/self/exe, which keeps argv but renames comm).
rank_pids() {
  local p a out=""
  for p in $(ip netns pids "${PETL_NETNS_PREFIX}$1" 2>/dev/null); do
    a=$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | head -n 1)
    [ "$(basename "${a:-x}")" = swift-petl ] && out="$out $p"
  done
  echo $out
}

journal_lines() { [ -f "$1" ] && wc -l <"$1" | tr -d ' ' || echo 0; }

# wait_lines FILE N SECONDS: until FILE has N lines; returns 1 on timeout.
wait_lines() {
  local end=$((SECONDS + $3))
  while [ $SECONDS -lt $end ]; do [ "$(journal_lines "$1")" -ge "$2" ] && return 0; sleep 0.1; done
  return 1
}

cluster_start() {
  if "$CLUSTER" up 2 >"$WORK/up.log" 2>&1; then
    pass "netns-cluster up 2"
  else
    fail "netns-cluster up 2" "$WORK/up.log"; finish; exit 1
  fi
}

# After `down`: no namespace of the prefix, no holder process, nothing of the cluster in the root
# namespace, the machine's /etc/hosts untouched.
cluster_down_check() {
  local holders
  holders=$(cat "$PETL_NETNS_STATE"/n*.pid 2>/dev/null | tr '\n' ' ')
  "$CLUSTER" down >"$WORK/down.log" 2>&1; local rc=$?
  "$CLUSTER" down >>"$WORK/down.log" 2>&1; local rc2=$?
  local left alive=""
  left=$(ip netns list | awk '{print $1}' | grep "^$PETL_NETNS_PREFIX" | tr '\n' ' ')
  for p in $holders; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
  if [ $rc = 0 ] && [ $rc2 = 0 ] && [ -z "$left" ] && [ -z "$alive" ] && [ ! -e "$PETL_NETNS_STATE" ] \
     && ! ip -o addr | grep -q ' 198\.18\.0\.' && ! ip -o link | grep -q 'petl0\|veth[0-9]' \
     && [ "$(sha256sum /etc/hosts | cut -d' ' -f1)" = "$HOSTS_SUM" ]; then
    pass "netns-cluster down (twice): no namespace, process, interface or address left; /etc/hosts unchanged"
  else
    fail "netns-cluster down: rc $rc/$rc2, namespaces left '$left', holders alive '$alive'" "$WORK/down.log"
  fi
}
