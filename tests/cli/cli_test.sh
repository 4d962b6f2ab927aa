#!/usr/bin/env bash
# The deft command as a user runs it: output, exit codes, error style.
# usage: cli_test.sh path/to/deft
source "$(dirname "$0")/check.sh" "$@"
DEFT="$(realpath "$DEFT")"
TB_READER="$(realpath "$(dirname "$0")/../track/tb_reader.py")"
cd "$TMP"  # deft train records runs in ./deft.db by default: keep it out of the build folder

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

# ---- runs: deft train records every run in the store; deft runs reads them back
DB="sqlite:///$TMP/runs.db"
train_blobs=("$DEFT" train --data "$TMP/blobs.csv" --target label --hidden 8 --batch-size 16 --seed 1
  --validation-split 0.2 --storage "$DB")
check runs-train-a 0 "run ra recorded in $DB" -- "${train_blobs[@]}" --epochs 3 --lr 0.01 --run-name ra \
  --out "$TMP/ra.deft" --metrics-out "$TMP/ra.json"
check runs-train-b 0 'run rb recorded' -- "${train_blobs[@]}" --epochs 3 --lr 0.002 --run-name rb --no-tensorboard
# TensorBoard event files under ./runs/<run name>/ (train, validation and the run's own
# file with text and hparams), read back by the independent reader, which checks every CRC
check tb-train-files 0 '^3$' -- bash -c "ls runs/ra/events.out.tfevents.* runs/ra/train/events.out.tfevents.* runs/ra/validation/events.out.tfevents.* | wc -l"
check tb-train-scalars 0 'tag: "epoch_val_accuracy"|tag: "epoch_accuracy"' -- bash -c "/usr/bin/python3 '$TB_READER' --dump runs/ra/validation/events.out.tfevents.*"
check tb-train-hparams 0 'session_start_info' -- bash -c "/usr/bin/python3 '$TB_READER' --dump runs/ra/events.out.tfevents.*"
check tb-no-tensorboard 0 '^none$' -- bash -c "[ -e runs/rb ] && echo written || echo none"
check tb-dir 0 '^ok$' -- bash -c "'$DEFT' train --data '$TMP/blobs.csv' --target label --epochs 1 --no-track --verbose 0 \
  --tensorboard '$TMP/tbroot' && ls '$TMP'/tbroot/train-*/train/events.out.tfevents.* >/dev/null && echo ok"
check runs-train-unnamed 0 'run run-3 recorded' -- "${train_blobs[@]}" --epochs 1
check runs-name-taken 2 "^deft: error: .*'ra' exists already" -- "${train_blobs[@]}" --epochs 1 --run-name ra
check runs-failed-run 2 "^deft: error: .*nope" -- "$DEFT" train --data "$TMP/blobs.csv" --target nope --storage "$DB" \
  --run-name broken
check runs-no-track 0 '^none$' -- bash -c "'$DEFT' train --data '$TMP/blobs.csv' --target label --epochs 1 --no-track \
  --storage 'sqlite:///$TMP/untracked.db' --verbose 0 && { [ -e '$TMP/untracked.db' ] && echo written || echo none; }"
check runs-list 0 '^ *1 +ra +train +- +finished .* [0-9.]+s +test_accuracy=0\.[0-9]+' -- "$DEFT" runs list --storage "$DB"
check runs-list-failed 0 '^ *[0-9]+ +broken +train +- +failed .*error: .*nope' -- "$DEFT" runs list --storage "$DB"
check runs-list-json 0 '^ok$' -- python3 -c "
import json, subprocess
runs = json.loads(subprocess.run(['$DEFT', 'runs', 'list', '--storage', '$DB', '--format', 'json'], capture_output=True, text=True).stdout)
names = [r['name'] for r in runs]
st = {r['name']: r['status'] for r in runs}
print('ok' if names == ['broken', 'run-3', 'rb', 'ra'] and st['ra'] == 'finished' and st['broken'] == 'failed' else runs)"
check runs-list-limit 0 '^ok$' -- python3 -c "
import json, subprocess
runs = json.loads(subprocess.run(['$DEFT', 'runs', 'list', '--storage', '$DB', '--format', 'json', '--limit', '2', '--status', 'finished'], capture_output=True, text=True).stdout)
print('ok' if [r['name'] for r in runs] == ['run-3', 'rb'] else runs)"
check runs-show 0 "^run 1 'ra' \(train\) finished" -- "$DEFT" runs show ra --storage "$DB"
check runs-show-epochs 0 '^ +epoch +loss +accuracy +val_loss +val_accuracy' -- "$DEFT" runs show 1 --storage "$DB"
check runs-show-rows 0 '^ +3 +[0-9.]+ +[0-9.]+ +[0-9.]+' -- "$DEFT" runs show ra --storage "$DB"
# what the store holds is what the training reported: the metrics file's history, test metrics, files
check runs-show-json 0 '^ok$' -- python3 -c "
import json, os, subprocess
r = json.loads(subprocess.run(['$DEFT', 'runs', 'show', 'ra', '--storage', '$DB', '--format', 'json'], capture_output=True, text=True).stdout)
m = json.load(open('$TMP/ra.json'))
hist = m['history']
hist = [dict(zip(hist.keys(), v)) for v in zip(*hist.values())] if isinstance(hist, dict) else hist
ok = (r['metrics']['loss']['steps'] == [1, 2, 3]
  and r['metrics']['loss']['values'] == [h['loss'] for h in hist]
  and r['metrics']['val_accuracy']['values'] == [h['val_accuracy'] for h in hist]
  and r['summary']['test_accuracy'] == m['test']['accuracy'] and r['summary']['test_f1_macro'] == m['test']['f1_macro']
  and r['params']['lr'] == 0.01 and r['params']['batch_size'] == 16 and r['params']['optimizer'] == 'adam'
  and r['config']['hidden'] == [8] and r['system']['hostname'] and r['system']['sqlite']
  and r['artifacts']['model'] == os.path.realpath('$TMP/ra.deft') and r['artifacts']['metrics'] == os.path.realpath('$TMP/ra.json')
  and m['run']['name'] == 'ra' and len(r['metrics']['batch/loss']['steps']) > 0)
print('ok' if ok else json.dumps(r)[:3000])"
check runs-show-failed 0 'error: .*nope' -- "$DEFT" runs show broken --storage "$DB"
check runs-compare 0 '^  lr +0\.01 +0\.002$' -- "$DEFT" runs compare ra rb --storage "$DB"
check runs-compare-epochs 0 '^val_accuracy per epoch' -- "$DEFT" runs compare ra rb --storage "$DB"
check runs-compare-json 0 '^ok$' -- python3 -c "
import json, subprocess
c = json.loads(subprocess.run(['$DEFT', 'runs', 'compare', 'ra', '2', '--storage', '$DB', '--format', 'json'], capture_output=True, text=True).stdout)
ok = (c['runs'] == ['ra', 'rb'] and list(c['params_differ']) == ['lr'] and len(c['epochs']['val_accuracy']) == 3
  and len(c['summary']['test_accuracy']) == 2)
print('ok' if ok else c)"
check runs-unknown 2 "^deft: error: .*no run named 'nope'" -- "$DEFT" runs show nope --storage "$DB"
check runs-compare-unknown 2 "^deft: error: .*no run named 'zz'" -- "$DEFT" runs compare ra zz --storage "$DB"
check runs-compare-one 2 '^deft: error: ' -- "$DEFT" runs compare ra --storage "$DB"
check runs-bad-storage 2 '^deft: error: .*nowhere' -- "$DEFT" runs list --storage "sqlite:///$TMP/nowhere/x.db"
# a run whose process is ended by SIGTERM is killed, not left running; one killed with
# SIGKILL shows as killed once deft runs sees its process gone
wait_running() {  # wait_running NAME: until the run exists and is running (at most ~20 s)
  for _ in $(seq 100); do
    "$DEFT" runs show "$1" --storage "$DB" 2>/dev/null | grep -q "^run .* running" && return 0
    sleep 0.2
  done
  return 1
}
for sig in TERM KILL; do
  "${train_blobs[@]}" --epochs 100000 --run-name "long-$sig" --verbose 0 >/dev/null 2>&1 &
  pid=$!
  wait_running "long-$sig" || echo "(the run long-$sig never showed as running)"
  sleep 0.5
  kill -"$sig" "$pid"
  wait "$pid" 2>/dev/null
done
check runs-sigterm 0 "^run [0-9]+ 'long-TERM' \(train\) killed" -- "$DEFT" runs show long-TERM --storage "$DB"
check runs-sigterm-why 0 'error: terminated \(SIGTERM\)' -- "$DEFT" runs show long-TERM --storage "$DB"
check runs-sigkill 0 "^run [0-9]+ 'long-KILL' \(train\) killed" -- "$DEFT" runs show long-KILL --storage "$DB"
check runs-sigkill-why 0 'error: the process .* ended without finishing' -- "$DEFT" runs show long-KILL --storage "$DB"

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
