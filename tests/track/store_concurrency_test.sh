#!/usr/bin/env bash
# The study store across processes:
#  1. 4 store_worker processes x 25 trials on one study: exactly 100 trials numbered
#     0..99, all complete, and no "database is locked" (or any error) on stderr.
#  2. A worker killed with SIGKILL mid-trial: while it beats, fail_stale_trials leaves
#     it alone; once it is dead, its trial fails and a Waiting retry with the same
#     parameters is queued, which the next worker's start_trial picks up.
#
#   store_concurrency_test.sh STORE_WORKER sqlite|postgresql
# postgresql uses $DEFT_TEST_PG_URL (pg_test_server.sh sets it).
set -euo pipefail

worker=$1
backend=$2
tmp=$(mktemp -d)
hung=""
cleanup() {
  if [ -n "$hung" ]; then kill -9 "$hung" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

case "$backend" in
  sqlite) url="sqlite:///$tmp/study.db" ;;
  postgresql)
    url=${DEFT_TEST_PG_URL:?DEFT_TEST_PG_URL is not set: run this through pg_test_server.sh}
    # a study name of our own, so that reruns against one server do not meet
    ;;
  *) echo "backend must be sqlite or postgresql" >&2; exit 2 ;;
esac
suffix="$$_$RANDOM"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# ---- 1. four workers at once --------------------------------------------------------
study="many_$suffix"
start=$(date +%s.%N)
pids=()
for i in 1 2 3 4; do
  "$worker" run "$url" "$study" 25 2>"$tmp/worker$i.err" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
end=$(date +%s.%N)
cat "$tmp"/worker*.err >&2
[ "$status" = 0 ] || fail "a worker failed"
if grep -qi "locked\|busy\|error" "$tmp"/worker*.err; then fail "workers reported errors"; fi
"$worker" check "$url" "$study" 100 || fail "the trials of 4 concurrent workers are not 0..99, all complete"
if [ "$backend" = sqlite ]; then  # the same, read by the sqlite3 command-line shell
  got=$(sqlite3 "$tmp/study.db" "SELECT COUNT(*), COUNT(DISTINCT number), MIN(number), MAX(number),
        SUM(state = 'complete') FROM trials")
  [ "$got" = "100|100|0|99|100" ] || fail "sqlite3 reads '$got', expected 100|100|0|99|100"
fi
echo "4 x 25 trials on $backend: $(awk "BEGIN{print $end - $start}") s"

# ---- 2. a worker killed mid-trial ---------------------------------------------------
study="killed_$suffix"
"$worker" hang "$url" "$study" >"$tmp/hang.out" 2>"$tmp/hang.err" &
hung=$!
for _ in $(seq 400); do
  grep -q "^started" "$tmp/hang.out" && break
  sleep 0.05
done
grep -q "^started 0$" "$tmp/hang.out" || { cat "$tmp/hang.err" >&2; fail "the hanging worker did not start trial 0"; }
sleep 3.5
# Heartbeats every 0.2 s keep it alive with a 3 s grace (wide: under a loaded ctest -j2
# a heartbeat can be a second late).
out=$("$worker" reap "$url" "$study" 3.0)
[ "$out" = "failed:" ] || fail "a live worker's trial was failed: $out"
kill -9 "$hung"
wait "$hung" 2>/dev/null || true
hung=""
sleep 3.5
out=$("$worker" reap "$url" "$study" 3.0)
[ "$out" = "failed: 0" ] || fail "reap after SIGKILL printed '$out', expected 'failed: 0'"
shown=$("$worker" show "$url" "$study")
echo "$shown"
echo "$shown" | sed -n 1p | grep -q '"number":0.*"state":"fail"' || fail "trial 0 is not failed"
echo "$shown" | sed -n 2p | grep -q '"number":1,"params":{"act":"gelu","lr":0.0125},"state":"waiting","steps":0,"system_attrs":{"retries":1,"retry_of":0}' ||
  fail "no waiting retry of trial 0 with its parameters"
resumed=$("$worker" resume "$url" "$study")
echo "$resumed"
echo "$resumed" | grep -q '"number":1,"params":{"act":"gelu","lr":0.0125},"state":"running"' ||
  fail "the next worker did not pick up the retry"
echo "$("$worker" show "$url" "$study" | sed -n 2p)" | grep -q '"state":"complete"' || fail "the retry did not complete"
echo "PASS store concurrency on $backend"
