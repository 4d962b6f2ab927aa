#!/usr/bin/env bash
# The deft command as a user runs it: output, exit codes, error style.
# usage: cli_test.sh path/to/deft
source "$(dirname "$0")/check.sh" "$@"

check version 0 '^deft [0-9]+\.[0-9]+\.[0-9]+' -- "$DEFT" --version
check help 0 'data' -- "$DEFT" --help
check bad-flag 2 '^deft: error: ' -- "$DEFT" --no-such-flag
check inspect-help 0 '--target' -- "$DEFT" data inspect --help

if [ -d /usr/share/datasets/fashion-mnist ]; then
  check inspect-fashion 0 'train 60000 · test 10000' -- "$DEFT" data inspect fashion-mnist
  check inspect-fashion-classes 0 'Ankle boot +6000' -- "$DEFT" data inspect fashion-mnist
fi

printf 'age,city,label\n31,Oslo,yes\n45,,no\n27,Rome,yes\nNA,Oslo,no\n' > "$TMP/people.csv"
check inspect-csv 0 'classification, 2 classes' -- "$DEFT" data inspect "$TMP/people.csv" --target label
check inspect-csv-json 0 '"num_classes": 2' -- "$DEFT" data inspect "$TMP/people.csv" --target label --json
check inspect-csv-bad-target 2 "^deft: error: .*people.csv.*nope" -- "$DEFT" data inspect "$TMP/people.csv" --target nope
printf 'a,b\n1,2\n3\n' > "$TMP/ragged.csv"
check inspect-ragged 2 "^deft: error: .*ragged.csv:3: expected 2 fields, got 1" -- "$DEFT" data inspect "$TMP/ragged.csv"
check inspect-missing 2 "^deft: error: .*nothing-here" -- "$DEFT" data inspect "$TMP/nothing-here"
mkdir "$TMP/idx"
printf 'not gzip at all' > "$TMP/idx/train-images-idx3-ubyte.gz"
printf 'not gzip at all' > "$TMP/idx/train-labels-idx1-ubyte.gz"
check inspect-corrupt-idx 2 "^deft: error: .*train-(images|labels)-idx[13]-ubyte.gz" -- "$DEFT" data inspect "$TMP/idx"

# ---- train / eval / predict on a small table: every flag path a user takes
python3 - "$TMP/blobs.csv" <<'PY'
import random, sys
random.seed(0)
with open(sys.argv[1], "w") as f:
    f.write("x1,x2,x3,colour,label\n")
    for i in range(300):
        c = i % 3
        xs = [random.gauss(3.0 if k == c else 0.0, 1.0) for k in range(3)]
        f.write("%.4f,%.4f,%.4f,%s,%s\n" % (*xs, random.choice(["red", "blue"]), ["ant", "bee", "cat"][c]))
PY
check train-help 0 '--batch-size' -- "$DEFT" train --help
check train-csv 0 'test: accuracy 0\.(8|9)' -- "$DEFT" train --data "$TMP/blobs.csv" --target label --epochs 8 \
  --hidden 16 --lr 0.01 --batch-size 16 --seed 1 --verbose 1 --out "$TMP/b.deft" --metrics-out "$TMP/b.json"
check train-metrics-json 0 '"f1_macro"' -- cat "$TMP/b.json"
check train-metrics-json-keys 0 'ok' -- python3 -c "
import json,sys; d=json.load(open('$TMP/b.json'))
need=['command','dataset','model','epochs','test','val','train_samples_per_s','wall_s','peak_rss_mib','config']
missing=[k for k in need if k not in d]; print('missing', missing) if missing else print('ok')"
check eval-csv 0 'macro avg' -- "$DEFT" eval --model "$TMP/b.deft" --data "$TMP/blobs.csv"
check eval-repeat 0 'macro avg' -- "$DEFT" eval --model "$TMP/b.deft" --data "$TMP/blobs.csv" --repeat 3 \
  --metrics-out "$TMP/e.json"
check eval-repeat-json 0 '^ok$' -- python3 -c "
import json; d=json.load(open('$TMP/e.json')); s=sorted(d['eval_s'])
print('ok' if len(s)==3 and d['config']['repeat']==3 and abs(d['eval_samples_per_s']-d['test']['examples']/s[1])<1e-6*d['eval_samples_per_s'] else d)"
check eval-repeat-zero 2 '^deft: error: .*repeat' -- "$DEFT" eval --model "$TMP/b.deft" --data "$TMP/blobs.csv" --repeat 0
check predict-csv 0 '^index,class,label,p_ant,p_bee,p_cat' -- "$DEFT" predict --model "$TMP/b.deft" --input "$TMP/blobs.csv" --format csv
check predict-jsonl 0 '"label":"(ant|bee|cat)"' -- "$DEFT" predict --model "$TMP/b.deft" --input "$TMP/blobs.csv"
# A new table without the label column, holding only some rows (so fewer categories):
# coded as the training table was, its predictions equal those rows' predictions from the full file.
python3 -c "
import csv,sys
rows=list(csv.reader(open('$TMP/blobs.csv')))
keep=[r for r in rows[1:] if r[3]=='red'][:20]
w=csv.writer(open('$TMP/new.csv','w')); w.writerow(rows[0][:4]); [w.writerow(r[:4]) for r in keep]"
"$DEFT" predict --model "$TMP/b.deft" --input "$TMP/blobs.csv" --output "$TMP/all.jsonl"
check predict-new-table 0 'same' -- python3 -c "
import csv,json
rows=list(csv.reader(open('$TMP/blobs.csv')))[1:]
idx=[i for i,r in enumerate(rows) if r[3]=='red'][:20]
full=[json.loads(l) for l in open('$TMP/all.jsonl')]
new=[json.loads(l) for l in __import__('subprocess').run(['$DEFT','predict','--model','$TMP/b.deft','--input','$TMP/new.csv'],capture_output=True,text=True).stdout.splitlines()]
print('same' if len(new)==20 and all(new[k]['probabilities']==full[i]['probabilities'] for k,i in enumerate(idx)) else 'differ')"
# Same seed, same numbers: the test accuracy of a second identical run matches.
"$DEFT" train --data "$TMP/blobs.csv" --target label --epochs 8 --hidden 16 --lr 0.01 --batch-size 16 --seed 1 \
  --verbose 0 --metrics-out "$TMP/b2.json" >/dev/null 2>&1
check train-repeatable 0 'same' -- python3 -c "
import json; a=json.load(open('$TMP/b.json')); b=json.load(open('$TMP/b2.json'))
print('same' if a['test']==b['test'] and a['history'][-1]['loss']==b['history'][-1]['loss'] else 'differ')"
printf 'epochs: 2\nbatch_size: 32\nhidden: [8]\noptimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n' > "$TMP/run.yaml"
check train-yaml 0 'Epoch 2/2' -- "$DEFT" train --config "$TMP/run.yaml" --data "$TMP/blobs.csv" --target label
check train-schedule-early-stop 0 'Epoch 2/30' -- "$DEFT" train --data "$TMP/blobs.csv" --target label --epochs 30 \
  --hidden 64 --lr 0.05 --schedule cosine --validation-split 0.2 --early-stopping 1 --log "$TMP/es.jsonl"
check train-early-stopped 0 'stopped' -- python3 -c "
import json; rows=[json.loads(l) for l in open('$TMP/es.jsonl')]
lrs=[r['lr'] for r in rows]
print('stopped' if 2 <= len(rows) < 30 and lrs == sorted(lrs, reverse=True) and 'val_loss' in rows[0] else 'ran %d %s' % (len(rows), lrs))"
printf 'epochs: 2\nlearning_rate: 0.1\n' > "$TMP/typo.yaml"
check train-yaml-typo 2 "^deft: error: config: unknown key 'learning_rate'" -- "$DEFT" train --config "$TMP/typo.yaml" --data "$TMP/blobs.csv" --target label
printf 'epochs: [2\n' > "$TMP/broken.yaml"
check train-yaml-broken 2 "^deft: error: .*broken.yaml:[0-9]+:[0-9]+" -- "$DEFT" train --config "$TMP/broken.yaml"
check train-bad-optimizer 2 "^deft: error: .*adamm" -- "$DEFT" train --data "$TMP/blobs.csv" --target label --optimizer adamm
check train-no-data 2 "^deft: error: config: 'data' is required" -- "$DEFT" train --epochs 1
check train-bad-target 2 "^deft: error: .*blobs.csv.*nope" -- "$DEFT" train --data "$TMP/blobs.csv" --target nope
check eval-missing-model 2 "^deft: error: .*nomodel.deft" -- "$DEFT" eval --model "$TMP/nomodel.deft" --data "$TMP/blobs.csv"
printf 'garbage' > "$TMP/garbage.deft"
check eval-corrupt-model 2 "^deft: error: .*garbage.deft" -- "$DEFT" eval --model "$TMP/garbage.deft" --data "$TMP/blobs.csv"
# Resume: 2 epochs with a checkpoint, then continue to 4 = 4 epochs straight.
"$DEFT" train --data "$TMP/blobs.csv" --target label --epochs 4 --hidden 8 --seed 2 --verbose 0 --metrics-out "$TMP/full.json" >/dev/null 2>&1
"$DEFT" train --data "$TMP/blobs.csv" --target label --epochs 2 --hidden 8 --seed 2 --verbose 0 --checkpoint "$TMP/ck.deft" >/dev/null 2>&1
check train-resume 0 'Epoch 4/4' -- "$DEFT" train --data "$TMP/blobs.csv" --target label --epochs 4 --hidden 8 --seed 2 \
  --resume "$TMP/ck.deft" --metrics-out "$TMP/resumed.json"
check train-resume-exact 0 'same' -- python3 -c "
import json; a=json.load(open('$TMP/full.json')); b=json.load(open('$TMP/resumed.json'))
print('same' if a['test']==b['test'] else 'differ %s %s' % (a['test']['loss'], b['test']['loss']))"

# ---- the model zoo on a small generated image set: 12x12 bars, horizontal (0) or vertical (1)
/usr/bin/python3 - "$TMP/bars.npz" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(0)
y = np.arange(400) % 2
x = np.zeros((400, 1, 12, 12), np.uint8)
for i, p in enumerate(rng.integers(0, 12, 400)):
    if y[i]: x[i, 0, :, p] = 255
    else: x[i, 0, p, :] = 255
np.savez(sys.argv[1], x=x, y=y.astype(np.int64))
PY
check train-help-models 0 'resnet_small' -- "$DEFT" train --help
check train-simple-cnn 0 'test: accuracy (0\.9|1\.0)' -- "$DEFT" train --data "$TMP/bars.npz" --model simple_cnn \
  --width 0.25 --epochs 3 --batch-size 32 --lr 0.01 --out "$TMP/cnn.deft"
check eval-simple-cnn 0 'macro avg' -- "$DEFT" eval --model "$TMP/cnn.deft" --data "$TMP/bars.npz"
check train-resnet-summary 0 '^  3\.0 \(Sequential\) ' -- "$DEFT" train --data "$TMP/bars.npz" --model resnet_small \
  --width 0.25 --depth 8 --epochs 1 --batch-size 64
check train-resnet-bad-depth 2 '^deft: error: config: model resnet_small: depth must be one of \[8,14,20\]' -- \
  "$DEFT" train --data "$TMP/bars.npz" --model resnet_small --depth 9
check train-unknown-model 2 '^deft: error: config: unknown model "resnet50" \(valid: .*vgg_small' -- \
  "$DEFT" train --data "$TMP/bars.npz" --model resnet50
check train-cnn-on-table 2 '^deft: error: config: model lenet5 needs images' -- "$DEFT" train --data "$TMP/blobs.csv" \
  --target label --model lenet5

# ---- images: a Fashion-MNIST model predicts PNG files and a folder of them as it predicts
# the same pixels from an NPY file (resized/converted to the model's input on the way)
if [ -d /usr/share/datasets/fashion-mnist ]; then
  check train-fashion 0 'test: accuracy 0\.[78]' -- "$DEFT" train --data fashion-mnist --epochs 1 --hidden 32 \
    --out "$TMP/f.deft" --metrics-out "$TMP/f.json"
  mkdir -p "$TMP/png/sub"
  /usr/bin/python3 - "$TMP" <<'PY'
import gzip, struct, sys, zlib
import numpy as np
tmp = sys.argv[1]
d = gzip.open('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz').read()
x = np.frombuffer(d, dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)[:3]
np.save(tmp + '/x.npy', x)
def chunk(t, data): return struct.pack('>I', len(data)) + t + data + struct.pack('>I', zlib.crc32(t + data) & 0xffffffff)
for i in range(3):
    raw = b''.join(b'\x00' + x[i, 0, r].tobytes() for r in range(28))
    png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 28, 28, 8, 0, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
    open('%s/png/%simg%d.png' % (tmp, 'sub/' if i == 2 else '', i), 'wb').write(png)
PY
  "$DEFT" predict --model "$TMP/f.deft" --input "$TMP/x.npy" --output "$TMP/npy.jsonl"
  check predict-png-folder 0 'same' -- python3 -c "
import json, subprocess
npy = [json.loads(l)['class'] for l in open('$TMP/npy.jsonl')]
out = subprocess.run(['$DEFT', 'predict', '--model', '$TMP/f.deft', '--input', '$TMP/png'], capture_output=True, text=True).stdout
png = {json.loads(l)['file'].rsplit('/', 1)[1]: json.loads(l)['class'] for l in out.splitlines()}
print('same' if [png['img0.png'], png['img1.png'], png['img2.png']] == npy else 'differ %s %s' % (png, npy))"
  check predict-png-file 0 '"file":".*img0.png"' -- "$DEFT" predict --model "$TMP/f.deft" --input "$TMP/png/img0.png"
  check predict-wrong-input 2 '^deft: error: ' -- "$DEFT" predict --model "$TMP/f.deft" --input "$TMP/blobs.csv"
fi

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
