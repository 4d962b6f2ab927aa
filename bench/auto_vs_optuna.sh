#!/usr/bin/env bash
# deft auto vs Optuna 3.1 + PyTorch on Fashion-MNIST: the same search space, budget,
# thread count and protocol, run one after the other on this machine.
#
#   bench/auto_vs_optuna.sh            # 10m budget each (about 21 minutes in all)
#   bench/auto_vs_optuna.sh 3m         # any duration deft's --time-budget takes
#
# 1. deft:   build/bin/deft --threads T auto --data fashion-mnist --time-budget BUDGET
#                --seed SEED --storage sqlite:///OUT/deft.db --out OUT/deft-best.deft
#                --metrics-out OUT/deft.json   (deft's defaults otherwise: TPE + ASHA)
# 2. Optuna: bench/optuna_auto.py --budget BUDGET --threads T --seed SEED
#                --search-examples <deft's search_train_examples> --families <deft's families>
#                --storage sqlite:///OUT/optuna.db --out OUT/optuna.json
#            (TPE multivariate, 8 startup trials + MedianPruner; PyTorch models of deft's
#            families; OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE)
# deft goes first because it decides the trial subset size and the families from its
# timings; the Optuna side then uses the same ones. Both search for half the budget,
# then retrain the best configuration on all 60000 training examples (cosine schedule)
# in the rest, and evaluate it on the 10000 test images. See bench/optuna_auto.py's
# docstring for the protocol, and bench/README.md for the differences left.
#
# Prints a side-by-side table: trials complete / pruned / failed, best validation
# accuracy (the search's objective, on the same-size held-out 10% of train), test
# accuracy of the final model, its family and epochs, wall time and peak RSS.
#
# Settings (environment): THREADS (2), SEED (0), DEFT (build/bin/deft), PYTHON
# (/usr/bin/python3), DEFT_ARGS (extra `deft auto` flags, e.g. "--pruner median"),
# OUT (a new folder under /tmp: logs, metrics JSON, study databases, time -v output),
# DEFT_ONLY / OPTUNA_ONLY (run one side; OPTUNA_ONLY takes SEARCH_EXAMPLES and
# FAMILIES from the environment, else from OUT/deft.json when there is one).
# Exit status 1 when either run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

BUDGET="${1:-${BUDGET:-10m}}"
THREADS="${THREADS:-2}"
SEED="${SEED:-0}"
DEFT="${DEFT:-build/bin/deft}"
PYTHON="${PYTHON:-/usr/bin/python3}"
DEFT_ARGS="${DEFT_ARGS:-}"
OUT="${OUT:-$(mktemp -d /tmp/auto_vs_optuna.XXXXXX)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

if [ ! -x /usr/bin/time ]; then
  echo "auto_vs_optuna: /usr/bin/time not found (Debian package 'time')" >&2
  exit 2
fi
if [ -z "${OPTUNA_ONLY:-}" ]; then
  if [ ! -x "$DEFT" ]; then
    echo "auto_vs_optuna: $DEFT not found; build it (cmake --build build --target deft_cli) or set DEFT=" >&2
    exit 2
  fi
  if ! "$DEFT" auto --help >/dev/null 2>&1; then
    echo "auto_vs_optuna: $DEFT has no 'auto' command; rebuild it" >&2
    exit 2
  fi
fi
if [ -z "${DEFT_ONLY:-}" ] && ! "$PYTHON" -c "import optuna, torch" 2>/dev/null; then
  echo "auto_vs_optuna: $PYTHON cannot import optuna and torch (Debian: python3-optuna python3-torch)" >&2
  exit 2
fi

echo "auto_vs_optuna: fashion-mnist, budget $BUDGET each, $THREADS threads, seed $SEED; files in $OUT"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
failed=0

if [ -z "${OPTUNA_ONLY:-}" ]; then
  echo "-- deft auto (load average $(cut -d' ' -f1 /proc/loadavg))"
  # shellcheck disable=SC2086  # DEFT_ARGS is a list of flags
  if ! /usr/bin/time -v -o "$OUT/deft.time" "$DEFT" --threads "$THREADS" auto --data fashion-mnist \
      --time-budget "$BUDGET" --seed "$SEED" --storage "sqlite:///$OUT/deft.db" \
      --out "$OUT/deft-best.deft" --metrics-out "$OUT/deft.json" $DEFT_ARGS 2>&1 | tee "$OUT/deft.log"; then
    echo "   deft auto failed: see $OUT/deft.log" >&2
    failed=1
  fi
fi

# The trial subset size and the families deft chose (or the environment's, or defaults).
read -r SEARCH_EXAMPLES FAMILIES < <("$PYTHON" - "$OUT/deft.json" "${SEARCH_EXAMPLES:-}" "${FAMILIES:-}" <<'PY'
import json, sys
path, n, fams = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    d = json.load(open(path))
except (OSError, ValueError):
    d = {}
n = n or str(d.get("search_train_examples", 0))
fams = fams or ",".join(d.get("families") or ["simple_cnn", "lenet5", "mlp"])
print(n, fams)
PY
)

if [ -z "${DEFT_ONLY:-}" ]; then
  echo "-- optuna + torch: $SEARCH_EXAMPLES examples per trial, families $FAMILIES" \
       "(load average $(cut -d' ' -f1 /proc/loadavg))"
  if ! /usr/bin/time -v -o "$OUT/optuna.time" env OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE \
      "$PYTHON" bench/optuna_auto.py --budget "$BUDGET" --threads "$THREADS" --seed "$SEED" \
      --search-examples "$SEARCH_EXAMPLES" --families "$FAMILIES" \
      --storage "sqlite:///$OUT/optuna.db" --out "$OUT/optuna.json" 2>&1 | tee "$OUT/optuna.log"; then
    echo "   optuna_auto.py failed: see $OUT/optuna.log" >&2
    failed=1
  fi
fi

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

"$PYTHON" - "$OUT" "$BUDGET" <<'PY'
import json, os, re, sys

out, budget = sys.argv[1], sys.argv[2]

def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}

def time_v(name):
    """(wall seconds, peak RSS MiB) from /usr/bin/time -v."""
    try:
        text = open(os.path.join(out, name)).read()
    except OSError:
        return None, None
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    secs = None
    if wall:
        secs = 0.0
        for part in wall.group(1).split(":"):
            secs = secs * 60 + float(part)
    return secs, (int(rss.group(1)) / 1024 if rss else None)

def f(v, spec):
    return "n/a" if v is None else format(v, spec)

cols = []
for name, d, tv in (("deft auto", load("deft.json"), time_v("deft.time")),
                    ("optuna + torch", load("optuna.json"), time_v("optuna.time"))):
    t = d.get("trials") or {}
    best = d.get("best") or {}
    cols.append([name,
                 f(t.get("complete"), "d"), f(t.get("pruned"), "d"), f(t.get("failed"), "d"),
                 f(best.get("value"), ".4f"),
                 f((d.get("test") or {}).get("accuracy"), ".4f"),
                 f"{d.get('model', 'n/a')}, {d.get('epochs', 'n/a')} ep",
                 f(d.get("search_train_examples"), "d"),
                 f(d.get("wall_s"), ".0f"), f(tv[0], ".0f"), f(tv[1], ".0f")])
rows = ["", "trials complete", "trials pruned", "trials failed", "best val accuracy", "test accuracy",
        "final model", "examples per trial", "wall s (own clock)", "wall s (time -v)", "peak RSS MiB"]
w0 = max(map(len, rows))
ws = [max(len(c[i]) for i in range(len(rows))) for c in cols]
print(f"\nfashion-mnist, budget {budget} each")
for i, r in enumerate(rows):
    print(r.ljust(w0) + "  " + "  ".join(c[i].rjust(w) for c, w in zip(cols, ws)))
for name, d in (("deft auto", load("deft.json")), ("optuna + torch", load("optuna.json"))):
    if d.get("best"):
        print(f"{name}: best trial {d['best'].get('number')}: {json.dumps(d['best'].get('params'), sort_keys=True)}")
        print(f"{name}: final: {d.get('final')}")
print("\nbest val accuracy: the search objective (last epoch of the best complete trial on the 10% validation"
      " split);\ntest accuracy: the final model (retrained on all of train, or the best trial's) on the 10000 test"
      " images")
PY

exit "$failed"
