#!/usr/bin/env bash
# deft vs PyTorch on the seed model (Fashion-MNIST MLP 784-128-10, Adam 1e-3),
# run back to back on this machine, in this run, with the same thread count:
#   deft:  build/bin/deft train --data fashion-mnist --model mlp ... --metrics-out FILE
#   torch: bench/torch_train.py (the same model, optimizer and data), with
#          OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE
# Both run under /usr/bin/time -v. For each batch size it prints training
# samples/s (60000 / median epoch time), the ratio deft/torch (above 1: deft is
# faster), test accuracy, and peak RSS as time -v measured it (the whole process).
# On a shared 2-core machine absolute times are noise; the ratio is the figure.
#
#   bench/train_vs_torch.sh                    # 3 epochs, batch 64 and 256, 2 threads
#   EPOCHS=5 BATCHES="32 128" bench/train_vs_torch.sh
#   TORCH_ONLY=1 bench/train_vs_torch.sh       # only the PyTorch half
#
# Settings (environment): EPOCHS (3), BATCHES ("64 256"), THREADS (2), SEED (0),
# DEFT (build/bin/deft), PYTHON (/usr/bin/python3), OUT (a new folder under /tmp;
# keeps each run's metrics JSON, log and time -v output), TORCH_ONLY / DEFT_ONLY.
# Exit status 1 when any run failed (its row shows n/a and the log to read).
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS="${EPOCHS:-3}"
BATCHES="${BATCHES:-64 256}"
THREADS="${THREADS:-2}"
SEED="${SEED:-0}"
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

echo "train_vs_torch: $EPOCHS epochs, batch sizes $BATCHES, $THREADS threads, seed $SEED; files in $OUT"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

failed=0
for B in $BATCHES; do
  if [ -z "${TORCH_ONLY:-}" ]; then
    echo "-- deft, batch $B"
    if ! /usr/bin/time -v -o "$OUT/deft-$B.time" "$DEFT" train --data fashion-mnist --model mlp \
        --epochs "$EPOCHS" --batch-size "$B" --optimizer adam --lr 1e-3 --seed "$SEED" --threads "$THREADS" \
        --metrics-out "$OUT/deft-$B.json" >"$OUT/deft-$B.log" 2>&1; then
      echo "   deft failed: see $OUT/deft-$B.log" >&2
      tail -3 "$OUT/deft-$B.log" >&2 || true
      failed=1
    fi
  fi
  if [ -z "${DEFT_ONLY:-}" ]; then
    echo "-- torch, batch $B"
    if ! env OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE \
        /usr/bin/time -v -o "$OUT/torch-$B.time" "$PYTHON" bench/torch_train.py \
        --epochs "$EPOCHS" --batch "$B" --threads "$THREADS" --seed "$SEED" \
        --out "$OUT/torch-$B.json" >"$OUT/torch-$B.log" 2>&1; then
      echo "   torch failed: see $OUT/torch-$B.log" >&2
      tail -3 "$OUT/torch-$B.log" >&2 || true
      failed=1
    fi
  fi
done

# The table, from the metrics files and time -v's "Maximum resident set size (kbytes)".
"$PYTHON" - "$OUT" $BATCHES <<'PY'
import json, os, re, sys

out, batches = sys.argv[1], sys.argv[2:]

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

rows = []
for b in batches:
    d = load(os.path.join(out, f"deft-{b}.json")) or {}
    t = load(os.path.join(out, f"torch-{b}.json")) or {}
    d_sps, t_sps = d.get("train_samples_per_s"), t.get("train_samples_per_s")
    d_acc = (d.get("test") or {}).get("accuracy")
    rows.append([b, fmt(d_sps, ".0f"), fmt(t_sps, ".0f"),
                 fmt(d_sps / t_sps if d_sps and t_sps else None, ".2f"),
                 fmt(d_acc, ".4f"), fmt(t.get("test_accuracy"), ".4f"),
                 fmt(rss_mib(os.path.join(out, f"deft-{b}.time")), ".0f"),
                 fmt(rss_mib(os.path.join(out, f"torch-{b}.time")), ".0f")])
    for name, r, key in (("deft", d, "epoch_train_s"), ("torch", t, "train_epoch_s")):
        if r.get(key):
            print(f"batch {b} {name} epoch seconds: {', '.join(f'{x:.2f}' for x in r[key])}")

head = ["batch", "deft samples/s", "torch samples/s", "deft/torch", "deft test acc", "torch test acc",
        "deft peak RSS MiB", "torch peak RSS MiB"]
widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
print()
print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
for r in rows:
    print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
print("\nsamples/s: 60000 / median training epoch; peak RSS: /usr/bin/time -v (whole process)")
PY

exit "$failed"
