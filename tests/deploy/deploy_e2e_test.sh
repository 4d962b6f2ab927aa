#!/usr/bin/env bash
# Issue 8's acceptance, end to end on real Fashion-MNIST test images:
#   deft auto (short budget) -> deft export --onnx -> OpenCV's DNN module gives deft's
#   probabilities within 1e-4 (and the ONNX checker's full check passes)
#   -> deft serve -> an HTTP client (KServe v2 and TF-Serving REST) gets what deft predict prints
#   -> deft export --quantize int8 -> the int8 model agrees with the float one on almost every image.
# usage: deploy_e2e_test.sh path/to/deft
source "$(dirname "$0")/../cli/check.sh" "$1"
FMNIST=/usr/share/datasets/fashion-mnist
if [ ! -d "$FMNIST" ]; then echo "deploy_e2e: $FMNIST missing (scripts/bootstrap installs it)"; exit 1; fi
DEFT="$(realpath "$DEFT")"
cd "$TMP"

# 256 real test images as an NPY file (uint8 [256,1,28,28]) and their labels
/usr/bin/python3 - "$FMNIST" <<'PY'
import gzip, sys, numpy as np
d = sys.argv[1]
with gzip.open(f"{d}/t10k-images-idx3-ubyte.gz") as f: x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
with gzip.open(f"{d}/t10k-labels-idx1-ubyte.gz") as f: y = np.frombuffer(f.read(), np.uint8, offset=8)
rng = np.random.default_rng(8)
idx = np.sort(rng.choice(len(x), 256, replace=False))
np.save("images.npy", np.ascontiguousarray(x[idx])); np.save("labels.npy", y[idx].astype(np.int64))
PY

# 1. a model from deft auto: a CNN family and the MLP, a short budget
check auto 0 'test accuracy 0\.[6-9][0-9]+' -- "$DEFT" auto --data fashion-mnist --time-budget 30s --models mlp lenet5 \
  --storage "sqlite:///$TMP/deft.db" --study e2e --out model.deft --metrics-out auto.json --no-tensorboard
check predict 0 '' -- "$DEFT" predict --model model.deft --input images.npy --output predict.jsonl

# 2. ONNX: the checker's full check, then OpenCV DNN on the same images
check export-onnx 0 '' -- "$DEFT" export --model model.deft --onnx model.onnx
check onnx-opencv 0 '^agree' -- /usr/bin/python3 - <<'PY'
import json, numpy as np, onnx, cv2
m = onnx.load("model.onnx")
onnx.checker.check_model(m, full_check=True)
assert [i.name for i in m.graph.input] == ["input"] and [o.name for o in m.graph.output] == ["probabilities"]
x = np.load("images.npy").astype(np.float32)
net = cv2.dnn.readNetFromONNX("model.onnx")
net.setInput(x, "input")
got = net.forward("probabilities")
want = np.array([json.loads(l)["probabilities"] for l in open("predict.jsonl")], np.float32)
diff = float(np.abs(got - want).max())
print(("agree" if got.shape == want.shape and diff <= 1e-4 else "DIFFER"), got.shape, want.shape, "max |diff|", diff)
PY

# 3. deft serve on a free loopback port: KServe v2 and TF-Serving REST give deft predict's answers
"$DEFT" serve --model model.deft --port 0 --name fashion > serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 300); do grep -q 'http://' serve.log && break; sleep 0.1; done
URL=$(grep -oE 'http://[0-9.:]+' serve.log | head -1)
check serve-up 0 'http://127\.0\.0\.1:[0-9]+' -- echo "$URL"
check serve-agrees 0 '^agree' -- /usr/bin/python3 - "$URL" <<'PY'
import base64, io, json, sys, urllib.request, zlib, struct, numpy as np
url = sys.argv[1]
def post(path, body):
    req = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r: return json.load(r)
x = np.load("images.npy")
want = [json.loads(l) for l in open("predict.jsonl")]
wp = np.array([w["probabilities"] for w in want], np.float32)
# KServe v2: all 256 at once, raw uint8 pixels
r = post("/v2/models/fashion/infer", {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "UINT8", "data": x.ravel().tolist()}]})
out = {o["name"]: o for o in r["outputs"]}["probabilities"]
kp = np.array(out["data"], np.float32).reshape(out["shape"])
# TF-Serving REST: one request per 16 images, float instances; the first 8 also as base64 PNGs
def png(img):
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(img.shape[0]))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
tp = []
for i in range(0, len(x), 16):
    tp += post("/v1/models/fashion:predict", {"instances": x[i:i + 16].astype(float).tolist()})["predictions"]
tp = np.array([p["probabilities"] if isinstance(p, dict) else p for p in tp], np.float32)
bp = post("/v1/models/fashion:predict", {"instances": [{"b64": base64.b64encode(png(x[i, 0])).decode()} for i in range(8)]})["predictions"]
bp = np.array([p["probabilities"] if isinstance(p, dict) else p for p in bp], np.float32)
dk, dt, db = (float(np.abs(a - b).max()) for a, b in ((kp, wp), (tp, wp), (bp, wp[:8])))
same_class = (kp.argmax(1) == np.array([w["class"] for w in want])).all()
ok = kp.shape == wp.shape and tp.shape == wp.shape and max(dk, dt, db) <= 1e-5 and same_class
print("agree" if ok else "DIFFER", "kserve", dk, "tf", dt, "b64", db)
PY
kill -TERM $SERVER; wait $SERVER; rc=$?
check serve-sigterm 0 '^0$' -- echo "$rc"

# 4. int8: calibrated on training images, nearly the same answers as float32
check quantize 0 '' -- "$DEFT" export --model model.deft --quantize int8 --calibration fashion-mnist --out model-int8.deft
check int8-predict 0 '' -- "$DEFT" predict --model model-int8.deft --input images.npy --output int8.jsonl
check int8-agrees 0 '^agree' -- /usr/bin/python3 - <<'PY'
import json
a = [json.loads(l)["class"] for l in open("predict.jsonl")]
b = [json.loads(l)["class"] for l in open("int8.jsonl")]
same = sum(x == y for x, y in zip(a, b))
print("agree" if len(a) == len(b) == 256 and same >= 250 and "probabilities" in json.loads(open("int8.jsonl").readline()) else "DIFFER", same, "of", len(a))
PY

echo "deploy_e2e: $fails failure(s)"
[ "$fails" -eq 0 ]
