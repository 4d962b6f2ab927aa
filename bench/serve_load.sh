#!/usr/bin/env bash
# Load test of `deft serve` on loopback with wrk: requests/s and p50/p99 latency for the
# seed MLP and the small CNN trained on Fashion-MNIST, at 1, 8 and 64 concurrent
# connections; every run must have zero errors (non-2xx answers or socket errors).
#
# Each request is one KServe v2 inference of one real Fashion-MNIST test image (UINT8
# [1,1,28,28], ~3 KB of JSON), so the server's dynamic batching is what turns concurrent
# clients into batched model calls.
#
# usage: bench/serve_load.sh [path/to/deft]        (default build/bin/deft)
# env:   DURATION (s per run, 5), CONNS ("1 8 64"), EPOCHS (1), MODELS ("mlp simple_cnn"),
#        SERVE_THREADS (model threads, 1), SERVE_ARGS (extra deft serve flags),
#        OUT (folder for models and logs, a temporary one by default; models there are reused)
# wrk (Debian's package; scripts/bootstrap --bench) shares the machine with the server:
# on a 2-core VM the client takes part of the CPU the server would use.
set -euo pipefail
DEFT="$(realpath "${1:-build/bin/deft}")"
DURATION="${DURATION:-5}"
CONNS="${CONNS:-1 8 64}"
EPOCHS="${EPOCHS:-1}"
MODELS="${MODELS:-mlp simple_cnn}"
SERVE_THREADS="${SERVE_THREADS:-1}"
command -v wrk > /dev/null || { echo "serve_load: wrk is not installed (scripts/bootstrap --bench)" >&2; exit 2; }
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
cd "$OUT"

# One test image as a KServe request body, and the wrk script that posts it and reports.
/usr/bin/python3 - <<'PY'
import gzip, json
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    px = list(f.read()[16:16 + 784])
json.dump({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "UINT8", "data": px}]},
          open("body.json", "w"))
PY
cat > post.lua <<'LUA'
local f = io.open("body.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
-- errors.status counts answers >= 400 (wrk itself)
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %.3f %.3f %d %d\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status + e.connect + e.read + e.write + e.timeout, summary.requests))
end
LUA

for model in $MODELS; do
  if [ ! -f "$model.deft" ]; then
    echo "-- training $model on Fashion-MNIST ($EPOCHS epoch(s))" >&2
    "$DEFT" train --data fashion-mnist --model "$model" --epochs "$EPOCHS" --seed 0 --out "$model.deft" \
      --no-track --no-tensorboard --verbose 0 --metrics-out "$model.json" > "train-$model.log" 2>&1
  fi
done

printf '| model | connections | requests/s | p50 ms | p99 ms | errors | requests |\n|---|---|---|---|---|---|---|\n'
for model in $MODELS; do
  "$DEFT" serve --model "$model.deft" --port 0 --threads "$SERVE_THREADS" ${SERVE_ARGS:-} > "serve-$model.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do grep -q 'http://' "serve-$model.log" && break; sleep 0.1; done
  url=$(grep -oE 'http://[0-9.:]+' "serve-$model.log" | head -1)
  [ -n "$url" ] || { echo "serve_load: the server did not start:" >&2; cat "serve-$model.log" >&2; exit 1; }
  curl -sf -X POST -H 'Content-Type: application/json' --data @body.json "$url/v2/models/$model/infer" > /dev/null
  for c in $CONNS; do
    t=$(( c < 2 ? c : 2 ))
    res=$(wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 10s -s post.lua "$url/v2/models/$model/infer" | grep '^RESULT')
    read -r _ n secs p50 p99 errors total <<< "$res"
    printf '| %s | %d | %.0f | %.2f | %.2f | %d | %d |\n' "$model" "$c" "$(awk "BEGIN{print $n / $secs}")" "$p50" "$p99" \
      "$errors" "$total"
  done
  kill -TERM "$server"
  wait "$server"
  grep 'stopped after' "serve-$model.log" >&2 || true
done
echo "models and logs: $OUT" >&2
