#!/usr/bin/env bash
# Dashboard latency with a big study: seeds N trials (default 10,000; 3 left running)
# and a run through the stores, starts `deft dashboard`, and measures each request
# REQUESTS times (default 200) on one keep-alive connection with gzip accepted, as a
# browser asks: trial pages sorted and filtered, the summary, the studies list, one
# trial, every plot (first call = rendered, then cached until the study changes), the
# pages. Prints a table (ms) and the server's resident memory.
# usage: bench/dashboard_latency.sh [BUILD_DIR (default build)] [N] [REQUESTS]
set -eu
B="${1:-build}" N="${2:-10000}" R="${3:-200}"
TOOL="$B/bin/dashboard_tool" DEFT="$B/bin/deft"
for f in "$TOOL" "$DEFT"; do [ -x "$f" ] || { echo "missing $f (build deft_cli and dashboard_tool)"; exit 2; }; done
TMP="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$TMP"' EXIT
DB="sqlite:///$TMP/bench.db"

echo "seeding $N trials through the StudyStore ..."
"$TOOL" seed "$DB" big "$N" --running 3 --run mlp-1
"$TOOL" seed "$DB" small 50 >/dev/null

start=$(date +%s%N)
"$DEFT" dashboard --storage "$DB" --port 0 --refresh 2 >"$TMP/server.out" 2>&1 &
pid=$!
url=""
for _ in $(seq 300); do
  url="$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' "$TMP/server.out" | head -1)" && [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { echo "server did not start: $(cat "$TMP/server.out")"; exit 1; }
port="${url##*:}"; port="${port%/}"
curl -fsS -o /dev/null "${url}api/studies/big/summary"
echo "server up and $N trials loaded: $(( ($(date +%s%N) - start) / 1000000 )) ms"

S=/api/studies/big
"$TOOL" latency 127.0.0.1 "$port" "$R" \
  "/api/studies" \
  "$S/summary" \
  "$S/trials?limit=50&sort=value&order=desc" \
  "$S/trials?limit=50&sort=value&order=asc&offset=5000" \
  "$S/trials?limit=50&sort=param:lr&state=complete,pruned" \
  "$S/trials?limit=50&sort=duration&order=desc&q=adam%20layers%3D3" \
  "$S/trials?limit=1000&sort=number" \
  "$S/trials/5000" \
  "$S/plots/history.svg" \
  "$S/plots/intermediate.svg" \
  "$S/plots/parallel.svg" \
  "$S/plots/importance.svg" \
  "/api/runs?limit=20" \
  "/api/runs/mlp-1/plots/learning.svg" \
  "/study/big" \
  "/"
echo "server resident memory: $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$pid/status)"
