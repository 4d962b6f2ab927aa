#!/usr/bin/env bash
# deft export --onnx, checked outside deft (tests/deploy/onnx_check.py): for every model
# family, trained for one epoch on 320 real Fashion-MNIST training images, the exported
# graph passes onnx.checker's full check and OpenCV's DNN module gives deft's
# probabilities on 64 real test images within 1e-4 (opset 17 with BatchNorm folded;
# opset 13, and BatchNorm kept as BatchNormalization, for the families that have one;
# a binary model's [1-p, p]). A CSV table (numeric and categorical columns, missing
# values), a regression table ("predictions") and networks using every
# exportable layer type (onnx_ref layers) are checked with an independent NumPy
# evaluator of the ONNX ops, and with OpenCV where it runs the graph (OpenCV 4.6 has no
# IsNaN/Where/LayerNormalization/Gather on computed indices). Errors: a missing or
# corrupt model file and a bad opset exit 2 with `deft: error:` naming the problem.
# About 50 s on two busy cores. usage: onnx_test.sh path/to/deft path/to/onnx_ref
source "$(dirname "$0")/../cli/check.sh" "$(realpath "$1")"
REF="$(realpath "$2")"
CHECK="/usr/bin/python3 $(cd "$(dirname "$0")" && pwd)/onnx_check.py"
FMNIST=/usr/share/datasets/fashion-mnist
if [ ! -d "$FMNIST" ]; then echo "onnx_export: $FMNIST missing (scripts/bootstrap installs it)"; exit 1; fi
cd "$TMP"

# 320 training and 64 test images (uint8, as the IDX files hold them) as an .npz dataset;
# the 64 test images again as float32 [64,1,28,28] for deft and the ONNX runtimes.
/usr/bin/python3 - "$FMNIST" <<'PY'
import gzip, sys, numpy as np
d = sys.argv[1]
def idx(name, offset, shape):
    with gzip.open(f"{d}/{name}") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset).reshape(shape)
xtr, ytr = idx("train-images-idx3-ubyte.gz", 16, (-1, 28, 28))[:320], idx("train-labels-idx1-ubyte.gz", 8, (-1,))[:320]
xte, yte = idx("t10k-images-idx3-ubyte.gz", 16, (-1, 28, 28))[:64], idx("t10k-labels-idx1-ubyte.gz", 8, (-1,))[:64]
np.savez("fm.npz", x_train=xtr, y_train=ytr.astype(np.int64), x_test=xte, y_test=yte.astype(np.int64))
np.save("images.npy", xte.reshape(-1, 1, 28, 28).astype(np.float32))
# A table: numeric columns with missing values, two categorical ones (one with a missing
# value), a constant column (dropped), a 3-class label; test rows with a category unseen in training.
rng = np.random.default_rng(3)
colours, sizes = ["red", "green", "blue"], ["S", "M", "L", "XL"]
def rows(n, unseen):
    out = []
    for i in range(n):
        a = "" if rng.random() < 0.1 else f"{rng.normal(40, 12):.2f}"
        b = "" if rng.random() < 0.1 else f"{rng.lognormal(10, 1):.1f}"
        c = "" if rng.random() < 0.1 else (("purple" if unseen and i % 5 == 0 else colours[rng.integers(3)]))
        s = sizes[rng.integers(4)]
        out.append(f"{a},{b},{c},{s},7,{rng.integers(3)}")
    return out
open("table.csv", "w").write("age,income,colour,size,constant,label\n" + "\n".join(rows(300, False)) + "\n")
with open("regression.csv", "w") as f:
    f.write("a,b,kind,score\n")
    for i in range(200):
        a, b = rng.normal(), rng.normal()
        f.write(f"{a:.3f},{'' if i % 10 == 0 else f'{b:.3f}'},{'xyz'[i % 3]},{2 * a - b + 0.1 * rng.normal():.4f}\n")
open("table_test.csv", "w").write("age,income,colour,size,constant,label\n" + "\n".join(rows(64, True)) + "\n")
PY

train() {  # train NAME FAMILY [flags...]
  local name="$1" family="$2"; shift 2
  check "train-$name" 0 '' -- "$DEFT" train --data fm.npz --model "$family" --epochs 1 --batch-size 64 --seed 1 \
    --out "$name.deft" --no-track --no-tensorboard --verbose 0 "$@"
}
CASES=()  # MODEL.onnx,INPUT.npy,REF.npy,require|try for onnx_check.py, run once at the end
export_check() {  # export_check NAME MODEL OPENCV [export flags...]: export MODEL.deft, check it on images.npy
  local name="$1" model="$2" opencv="$3"; shift 3
  check "export-$name" 0 '^wrote' -- "$DEFT" export --model "$model.deft" --onnx "$name.onnx" "$@"
  CASES+=("$name.onnx,images.npy,$model.ref.npy,$opencv")
}

for family in linear mlp lenet5 simple_cnn vgg_small resnet_small; do
  case "$family" in
    resnet_small) train "$family" "$family" --depth 8 ;;
    vgg_small) train "$family" "$family" --depth 2 ;;
    *) train "$family" "$family" ;;
  esac
  check "ref-$family" 0 '' -- "$REF" "$family.deft" images.npy "$family.ref.npy"
  export_check "$family" "$family" require
done
# A binary model (one sigmoid output -> [1-p, p]).
train mlp_binary mlp --positive-classes 0 6
check ref-mlp_binary 0 '' -- "$REF" mlp_binary.deft images.npy mlp_binary.ref.npy
export_check mlp_binary mlp_binary require
export_check mlp_opset13 mlp require --opset 13
export_check vgg_small_opset13 vgg_small require --opset 13
export_check resnet_small_opset13 resnet_small require --opset 13
export_check vgg_small_bn vgg_small require --keep-batchnorm
export_check resnet_small_bn resnet_small require --keep-batchnorm --opset 15

# The table model: preprocessing as graph ops (imputation, scaling, one-hot incl. the
# unknown slot, the dropped constant column).
check train-table 0 '' -- "$DEFT" train --data table.csv --target label --model mlp --epochs 1 --seed 1 \
  --out table.deft --no-track --no-tensorboard --verbose 0
check ref-table 0 '' -- "$REF" table.deft table_test.csv table.ref.npy table.raw.npy
for opset in 13 17; do
  check "export-table-$opset" 0 '^wrote' -- "$DEFT" export --model table.deft --onnx "table$opset.onnx" --opset $opset
  CASES+=("table$opset.onnx,table.raw.npy,table.ref.npy,try")
done

# A regression table: output "predictions".
check train-regression 0 '' -- "$DEFT" train --data regression.csv --target score --model mlp --epochs 1 --seed 1 \
  --out regression.deft --no-track --no-tensorboard --verbose 0
check ref-regression 0 '' -- "$REF" regression.deft regression.csv regression.ref.npy regression.raw.npy
check export-regression 0 'predictions' -- "$DEFT" export --model regression.deft --onnx regression.onnx
CASES+=("regression.onnx,regression.raw.npy,regression.ref.npy,try")

# Every layer type: networks built by onnx_ref (no training), opsets 13 and 17, BatchNorm
# folded and kept; OpenCV must agree on the convolutional one.
mkdir layers
check layers 0 '' -- "$REF" layers layers
for f in layers/*.onnx; do
  base="${f%_opset*}"
  opencv=try
  [[ "$base" == */layers_image ]] && opencv=require  # convs, pooling, BatchNorm, Add, Concat, GELU: OpenCV runs them
  CASES+=("$f,$base.input.npy,$base.ref.npy,$opencv")
done

# Errors
check missing-model 2 'deft: error: .*nope\.deft' -- "$DEFT" export --model nope.deft --onnx x.onnx
head -c 100 mlp.deft > corrupt.deft
check corrupt-model 2 'deft: error: .*corrupt\.deft' -- "$DEFT" export --model corrupt.deft --onnx x.onnx
check bad-opset 2 'deft: error: .*opset must be 13 to 17' -- "$DEFT" export --model mlp.deft --onnx x.onnx --opset 18
check no-output 2 'deft: error: .*--onnx' -- "$DEFT" export --model mlp.deft
[ ! -e x.onnx ] || { echo "FAIL: a failed export left x.onnx behind"; fails=$((fails+1)); }

# The checks: the checker, the NumPy evaluator, OpenCV (required where the case says so).
$CHECK "${CASES[@]}" > checks.out 2>&1
for c in "${CASES[@]}"; do
  IFS=, read -r model _ _ opencv <<<"$c"
  check "checker-$model" 0 "^$model: checker full_check ok" -- cat checks.out
  check "numpy-$model" 0 "^$model: numpy evaluator agrees" -- cat checks.out
  [ "$opencv" = require ] && check "opencv-$model" 0 "^$model: opencv [0-9.]+ agrees" -- cat checks.out
done
grep -E ': (numpy|opencv|FAILED)' checks.out | sed 's/^/  /'
echo "onnx_export: $fails failure(s)"
[ "$fails" -eq 0 ]
