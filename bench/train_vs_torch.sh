#!/usr/bin/env bash
# deft vs PyTorch on Fashion-MNIST, run back to back on this machine, in this run,
# with the same thread count, for one of two models (MODEL):
#   mlp         the seed model (Flatten, Dense 128 ReLU, Dropout 0.2, Dense 10); batch 64 and 256
#   simple_cnn  Conv 32 3x3 + ReLU, MaxPool, Conv 64 3x3 + ReLU, MaxPool, Dense 128 ReLU,
#               Dropout 0.25, Dense 10 (../shared/bench/anchors/torch_cnn.py); batch 128
# Adam 1e-3, seed 0, shuffled batches, on both sides:
#   deft:  build/bin/deft train --data fashion-mnist --model MODEL ... --out M.deft --metrics-out FILE
#          then build/bin/deft --threads T eval --model M.deft --data fashion-mnist
#               --batch-size EVAL_BATCH --repeat EVAL_REPEAT --metrics-out FILE
#   torch: bench/torch_train.py --model MODEL (the same model, optimizer and data; trains,
#          then times EVAL_REPEAT inference passes), with OPENBLAS_CORETYPE=SkylakeX
#          OMP_WAIT_POLICY=PASSIVE
# Every process runs under /usr/bin/time -v. For each batch size it prints training
# samples/s (60000 / median epoch time), inference samples/s on the 10000 test images
# (10000 / median of EVAL_REPEAT passes at EVAL_BATCH), the ratios deft/torch (above 1:
# deft is faster), test accuracy, and peak RSS: at the end of the training loop (before
# the test pass; both programs record it) and of the whole training process (time -v).
# On a shared 2-core machine absolute times are noise; the ratios are the figures.
#
#   bench/train_vs_torch.sh                            # MLP, 3 epochs, batch 64 and 256, 2 threads
#   MODEL=simple_cnn bench/train_vs_torch.sh           # the CNN, 3 epochs, batch 128
#   EPOCHS=5 BATCHES="32 128" bench/train_vs_torch.sh
#   TORCH_ONLY=1 MODEL=simple_cnn bench/train_vs_torch.sh   # only the PyTorch half
#
# Settings (environment): MODEL (mlp), EPOCHS (3), BATCHES ("64 256" for mlp, "128" for
# simple_cnn), THREADS (2), SEED (0), EVAL_BATCH (128), EVAL_REPEAT (3), INFER (1; 0
# skips deft's save + eval, so the inference columns show n/a for deft), DEFT
# (build/bin/deft), PYTHON (/usr/bin/python3), OUT (a new folder under /tmp; keeps each
# run's metrics JSON, log and time -v output), TORCH_ONLY / DEFT_ONLY.
# Exit status 1 when any run failed (its row shows n/a and the log to read).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL="${MODEL:-mlp}"
case "$MODEL" in
  mlp) default_batches="64 256" ;;
  simple_cnn) default_batches="128" ;;
  *) echo "train_vs_torch: MODEL must be mlp or simple_cnn, got '$MODEL'" >&2; exit 2 ;;
esac
EPOCHS="${EPOCHS:-3}"
BATCHES="${BATCHES:-$default_batches}"
THREADS="${THREADS:-2}"
SEED="${SEED:-0}"
EVAL_BATCH="${EVAL_BATCH:-128}"
EVAL_REPEAT="${EVAL_REPEAT:-3}"
INFER="${INFER:-1}"
DEFT="${DEFT:-build/bin/deft}"
PYTHON="${PYTHON:-/usr/bin/python3}"
OUT="${OUT:-$(mktemp -d /tmp/train_vs_torch.XXXXXX)}"
mkdir -p "$OUT"

if [ ! -x /usr/bin/time ]; then
  echo "train_vs_torch: /usr/bin/time not found (Debian package 'time')" >&2
  exit 2
fi
if [ -z "${TORCH_ONLY:-}" ] && [ ! -x "$DEFT" ]; then
  echo "train_vs_torch: $DEFT not found; build it (cmake --build build --target deft_cli) or set DEFT=" >&2
  exit 2
fi

echo "train_vs_torch: $MODEL, $EPOCHS epochs, batch sizes $BATCHES, $THREADS threads, seed $SEED;" \
     "inference: $EVAL_REPEAT passes over the test set at batch $EVAL_BATCH; files in $OUT"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

load() { cut -d' ' -f1 /proc/loadavg; }
failed=0
# run NAME LOG -- command...: runs it under time -v (NAME.time); on failure says where to look.
run() {
  local name="$1" log="$2"; shift 3
  if ! /usr/bin/time -v -o "$OUT/$name.time" "$@" >"$log" 2>&1; then
    echo "   $name failed: see $log" >&2
    tail -3 "$log" >&2 || true
    failed=1
    return 1
  fi
}

for B in $BATCHES; do
  if [ -z "${TORCH_ONLY:-}" ]; then
    echo "-- deft, batch $B (load average $(load))"
    save=()
    [ "$INFER" = 1 ] && save=(--out "$OUT/deft-$B.deft")
    if run "deft-$B" "$OUT/deft-$B.log" -- "$DEFT" train --data fashion-mnist --model "$MODEL" \
        --epochs "$EPOCHS" --batch-size "$B" --optimizer adam --lr 1e-3 --seed "$SEED" --threads "$THREADS" \
        "${save[@]}" --metrics-out "$OUT/deft-$B.json" && [ "$INFER" = 1 ]; then
      echo "-- deft, inference of that model, batch $EVAL_BATCH (load average $(load))"
      run "deft-$B-eval" "$OUT/deft-$B-eval.log" -- "$DEFT" --threads "$THREADS" eval --model "$OUT/deft-$B.deft" \
          --data fashion-mnist --batch-size "$EVAL_BATCH" --repeat "$EVAL_REPEAT" \
          --metrics-out "$OUT/deft-$B-eval.json" || true
    fi
  fi
  if [ -z "${DEFT_ONLY:-}" ]; then
    echo "-- torch, batch $B (load average $(load))"
    run "torch-$B" "$OUT/torch-$B.log" -- env OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE \
        "$PYTHON" bench/torch_train.py --model "$MODEL" \
        --epochs "$EPOCHS" --batch "$B" --threads "$THREADS" --seed "$SEED" \
        --eval-batch "$EVAL_BATCH" --eval-repeat "$EVAL_REPEAT" \
        --out "$OUT/torch-$B.json" || true
  fi
done

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# The table, from the metrics files and time -v's "Maximum resident set size (kbytes)".
"$PYTHON" - "$OUT" "$MODEL" "$EVAL_BATCH" $BATCHES <<'PY'
import json, os, re, sys

out, model, eval_batch, batches = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def rss_mib(path):
    try:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read())
        return int(m.group(1)) / 1024 if m else None
    except OSError:
        return None

def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)

def ratio(a, b):
    return a / b if a and b else None

rows = []
for b in batches:
    d = load(os.path.join(out, f"deft-{b}.json")) or {}
    de = load(os.path.join(out, f"deft-{b}-eval.json")) or {}
    t = load(os.path.join(out, f"torch-{b}.json")) or {}
    d_sps, t_sps = d.get("train_samples_per_s"), t.get("train_samples_per_s")
    d_inf, t_inf = de.get("eval_samples_per_s"), t.get("eval_samples_per_s")
    d_acc = (d.get("test") or {}).get("accuracy")
    rows.append([b, fmt(d_sps, ".0f"), fmt(t_sps, ".0f"), fmt(ratio(d_sps, t_sps), ".2f"),
                 fmt(d_inf, ".0f"), fmt(t_inf, ".0f"), fmt(ratio(d_inf, t_inf), ".2f"),
                 fmt(d_acc, ".4f"), fmt(t.get("test_accuracy"), ".4f"),
                 fmt(d.get("peak_rss_fit_mib"), ".0f"), fmt(t.get("peak_rss_fit_mib"), ".0f"),
                 fmt(rss_mib(os.path.join(out, f"deft-{b}.time")), ".0f"),
                 fmt(rss_mib(os.path.join(out, f"torch-{b}.time")), ".0f")])
    for name, r, key in (("deft", d, "epoch_train_s"), ("torch", t, "train_epoch_s"),
                         ("deft", de, "eval_s"), ("torch", t, "eval_s")):
        if r.get(key):
            what = "epoch" if "epoch" in key else f"inference pass (batch {eval_batch})"
            print(f"batch {b} {name} {what} seconds: {', '.join(f'{x:.3f}' for x in r[key])}")

head = ["batch", "deft train/s", "torch train/s", "train deft/torch",
        "deft infer/s", "torch infer/s", "infer deft/torch",
        "deft test acc", "torch test acc",
        "deft RSS train MiB", "torch RSS train MiB", "deft RSS proc MiB", "torch RSS proc MiB"]
widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
print()
print(f"model {model}")
print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
for r in rows:
    print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
print(f"\ntrain/s: 60000 / median training epoch; infer/s: 10000 test images / median inference pass"
      f" (batch {eval_batch}; deft: `deft eval --repeat`, its own process, after loading the model and data);"
      f"\nRSS train: peak RSS at the end of the training loop (getrusage, before the test pass);"
      f" RSS proc: the whole training process, /usr/bin/time -v")
PY

exit "$failed"
