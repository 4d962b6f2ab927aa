#!/usr/bin/env bash
# deft serve from the command line, on loopback with small table models trained here:
# bad flags and unloadable models (exit 2), the start line, KServe v2 and TF-Serving
# answers equal to `deft predict`, JSON errors, hot reload by atomic rename (and a corrupt
# replacement that keeps the old model), and SIGTERM with a request in flight (answered,
# exit 0). Fashion-MNIST end to end is deploy_e2e_test.sh.
# usage: serve_test.sh path/to/deft
source "$(dirname "$0")/../cli/check.sh" "$1"
cd "$TMP"

/usr/bin/python3 - <<'PY'
import random
random.seed(0)
with open("blobs.csv", "w") as f:
    f.write("x1,x2,x3,label\n")
    for i in range(240):
        c = i % 3
        xs = [random.gauss(3.0 if k == c else 0.0, 1.0) for k in range(3)]
        f.write("%.4f,%.4f,%.4f,%s\n" % (*xs, ["ant", "bee", "cat"][c]))
with open("rows.csv", "w") as f:  # unlabeled rows to predict, one with a missing value
    f.write("x1,x2,x3\n")
    for i in range(12):
        f.write("%.4f,%.4f,%.4f\n" % tuple(random.gauss(1.0, 2.0) for _ in range(3)))
    f.write("1.5,,0.25\n")
PY
for m in a b; do
  seed=$([ $m = a ] && echo 1 || echo 7)
  "$DEFT" train --data blobs.csv --target label --epochs 4 --hidden 8 --lr 0.02 --batch-size 16 --seed $seed \
    --out $m.deft --no-track --no-tensorboard --verbose 0 > train-$m.log 2>&1 || { echo "FAIL train $m"; cat train-$m.log; exit 1; }
  "$DEFT" predict --model $m.deft --input rows.csv --output predict-$m.jsonl
done
cp a.deft served.deft

# ---- start-up errors: exit 2 with deft: error
check serve-help 0 '--max-batch' -- "$DEFT" serve --help
check serve-no-model 2 '^deft: error: .*--model' -- "$DEFT" serve
check serve-missing-file 2 '^deft: error: .*nowhere\.deft' -- "$DEFT" serve --model nowhere.deft --port 0
printf 'not a model' > junk.deft
check serve-junk-file 2 '^deft: error: .*junk\.deft' -- "$DEFT" serve --model junk.deft --port 0
check serve-bad-batch 2 '^deft: error: .*max-batch' -- "$DEFT" serve --model a.deft --max-batch 0

# ---- serving
"$DEFT" serve --model served.deft --port 0 --reload-interval 0.2 --max-body 10000 > serve.log 2> serve.err &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 300); do grep -q 'http://' serve.log && break; sleep 0.1; done
check serve-start-line 0 '^deft serve: model served \(.*\) on http://127\.0\.0\.1:[0-9]+$' -- cat serve.log
URL=$(grep -oE 'http://[0-9.:]+' serve.log | head -1)
check serve-port-taken 2 '^deft: error: .*port' -- "$DEFT" serve --model a.deft --port "${URL##*:}"

cat > client.py <<'PY'
import csv, json, math, sys, urllib.request, urllib.error
URL = sys.argv[1]
def call(method, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(URL + path, data, {"Content-Type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r: return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
def rows():
    out = []
    for r in list(csv.reader(open("rows.csv")))[1:]:
        out.append([float(v) if v else None for v in r])
    return out
def want(model):
    return [json.loads(l) for l in open(f"predict-{model}.jsonl")]
def close(a, b):  # deft predict prints 6 significant digits
    return len(a) == len(b) and all(abs(x - y) <= 1e-5 for x, y in zip(a, b))
def kserve(model_version=None):
    x = rows()
    st, r = call("POST", "/v2/models/served/infer", {"id": "k", "inputs": [
        {"name": "input", "shape": [len(x), 3], "datatype": "FP32", "data": x}]})
    assert st == 200, (st, r)
    o = {t["name"]: t for t in r["outputs"]}
    p = o["probabilities"]["data"]; k = o["probabilities"]["shape"][1]
    return r["model_version"], [p[i * k:(i + 1) * k] for i in range(len(x))], o["class"]["data"], o["label"]["data"]
PY

check serve-agrees-kserve 0 '^agree$' -- /usr/bin/python3 - "$URL" <<'PY'
import sys; sys.argv = sys.argv[:2]; exec(open("client.py").read())
version, probs, classes, labels = kserve()
w = want("a")
ok = version == "1" and all(close(p, q["probabilities"]) for p, q in zip(probs, w)) and len(probs) == len(w)
ok = ok and classes == [q["class"] for q in w] and labels == [q["label"] for q in w]
print("agree" if ok else ("DIFFER", version, probs[:2], w[:2]))
PY
check serve-agrees-tf 0 '^agree$' -- /usr/bin/python3 - "$URL" <<'PY'
import sys; exec(open("client.py").read())
x = rows(); w = want("a")
st, r = call("POST", "/v1/models/served:predict", {"instances": [{"x1": a, "x2": b, "x3": c} for a, b, c in x]})
st2, r2 = call("POST", "/v1/models/served:predict", {"inputs": {"input": x}})
ok = st == 200 and st2 == 200 and all(close(p, q["probabilities"]) for p, q in zip(r["predictions"], w))
ok = ok and r2["outputs"] == r["predictions"] and len(r["predictions"]) == len(w)
print("agree" if ok else ("DIFFER", st, r, st2))
PY
check serve-errors 0 '^ok$' -- /usr/bin/python3 - "$URL" <<'PY'
import sys; exec(open("client.py").read())
cases = [
    (call("POST", "/v2/models/served/infer", {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}), 400, "[-1,3]"),
    (call("POST", "/v2/models/served/infer", {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "INT8", "data": [1, 2, 300]}]}), 400, "data[2]"),
    (call("POST", "/v2/models/served/infer", raw=b'{"inputs": [1e999]'), 400, "malformed JSON"),
    (call("POST", "/v1/models/served:predict", {"instances": [[1, 2, 1e39]]}), 400, "instances[0][2]"),
    (call("POST", "/v2/models/nope/infer", {"inputs": []}), 404, "unknown model 'nope'"),
    (call("GET", "/v2/models/served/versions/9"), 404, "no version"),
    (call("POST", "/v1/models/served:predict", raw=b" " * 20000), 413, "--max-body"),
]
bad = [(got, want_st, part) for (got, want_st, part) in cases
       if got[0] != want_st or not isinstance(got[1], dict) or part not in got[1].get("error", "")]
st, meta = call("GET", "/v2/models/served")
ok = not bad and st == 200 and meta["inputs"][0]["shape"] == [-1, 3] and call("GET", "/v2/health/ready")[0] == 200
print("ok" if ok else bad)
PY

# ---- hot reload: an atomic replacement is served as version 2; a corrupt one is not
cp b.deft next.tmp && mv next.tmp served.deft
check serve-hot-reload 0 '^reloaded$' -- /usr/bin/python3 - "$URL" <<'PY'
import sys, time; exec(open("client.py").read())
for _ in range(150):
    version, probs, _, _ = kserve()
    if version == "2": break
    time.sleep(0.1)
w = want("b")
print("reloaded" if version == "2" and all(close(p, q["probabilities"]) for p, q in zip(probs, w)) else ("NOT", version))
PY
printf 'truncated garbage' > bad.tmp && mv bad.tmp served.deft
# the watcher looks every second; a slow (sanitized) build may take longer to try the load
for _ in $(seq 150); do grep -q 'cannot be loaded' serve.err && break; sleep 0.1; done
check serve-bad-reload-kept 0 '^kept$' -- /usr/bin/python3 - "$URL" <<'PY'
import sys; exec(open("client.py").read())
version, probs, _, _ = kserve()
print("kept" if version == "2" and all(close(p, q["probabilities"]) for p, q in zip(probs, want("b"))) else ("NOT", version))
PY
check serve-bad-reload-logged 0 'cannot be loaded; still serving version 2' -- cat serve.err

# ---- SIGTERM with a request half sent: it is answered, new connections are refused, exit 0
check serve-sigterm-in-flight 0 '^graceful$' -- /usr/bin/python3 - "$URL" "$SERVER" <<'PY'
import json, os, signal, socket, sys, time
host, port = sys.argv[1][len("http://"):].split(":")
body = json.dumps({"instances": [[0.5, 1.5, 2.5]]}).encode()
s = socket.create_connection((host, int(port)))
s.sendall(b"POST /v1/models/served:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          + b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
time.sleep(0.3)
os.kill(int(sys.argv[2]), signal.SIGTERM)
time.sleep(0.5)
refused = False
try:
    socket.create_connection((host, int(port)), timeout=2).close()
except OSError:
    refused = True
s.sendall(body[10:])
resp = b""
while b"\r\n\r\n" not in resp or len(resp.split(b"\r\n\r\n", 1)[1]) < 10:
    chunk = s.recv(65536)
    if not chunk: break
    resp += chunk
ok = resp.startswith(b"HTTP/1.1 200") and b"predictions" in resp and refused
print("graceful" if ok else ("NOT", refused, resp[:200]))
PY
wait $SERVER; rc=$?
check serve-sigterm-exit 0 '^0$' -- echo "$rc"
check serve-sigterm-logged 0 'SIGTERM: finishing' -- cat serve.err

echo "serve_test: $fails failure(s)"
[ "$fails" -eq 0 ]
