#!/usr/bin/env bash
# deft auto and deft study as a user runs them: a hard time budget, the files written,
# the study read back from SQLite, resume, and the error style.
# usage: auto_test.sh path/to/deft
source "$(dirname "$0")/check.sh" "$@"
TB_READER="$(realpath "$(dirname "$0")/../track/tb_reader.py")"
DEFT="$(realpath "$DEFT")"
cd "$TMP"  # TensorBoard event files go to ./runs by default: keep them out of the build folder
# pycheck NAME FILE PYTHON-EXPRESSION-ON-m: asserts on a metrics JSON file
pycheck() {
  local name="$1" file="$2" expr="$3"
  if /usr/bin/python3 -c "import json,sys; m=json.load(open(sys.argv[1])); sys.exit(0 if ($expr) else 1)" "$file"; then
    echo "ok   $name"
  else
    echo "FAIL $name: not ($expr) in $(cat "$file" | head -c 2000)"; fails=$((fails+1))
  fi
}

/usr/bin/python3 - "$TMP/blobs.csv" <<'PY'
import random, sys
random.seed(0)
with open(sys.argv[1], "w") as f:
    f.write("x1,x2,x3,colour,label\n")
    for i in range(600):
        c = i % 3
        xs = [random.gauss(3.0 if k == c else 0.0, 1.0) for k in range(3)]
        f.write("%.4f,%.4f,%.4f,%s,%s\n" % (*xs, random.choice(["red", "blue"]), ["ant", "bee", "cat"][c]))
PY
DB="sqlite:///$TMP/studies.db"

check auto-help 0 '--time-budget' -- "$DEFT" auto --help
check study-help 0 'export' -- "$DEFT" study --help
start=$(date +%s%N)
check auto-table 0 'test accuracy 0\.9[0-9]+' -- "$DEFT" auto --data "$TMP/blobs.csv" --target label --time-budget 15s \
  --storage "$DB" --study blobs --out "$TMP/blobs.deft" --metrics-out "$TMP/blobs.json" --threads 1
wall=$(( ($(date +%s%N) - start) / 1000000 ))
# hard budget: 15 s of search and training, plus loading and the test pass
if [ "$wall" -lt 22000 ]; then echo "ok   auto-budget-hard ($wall ms)"; else echo "FAIL auto-budget-hard: $wall ms for a 15 s budget"; fails=$((fails+1)); fi
pycheck auto-metrics-keys "$TMP/blobs.json" \
  'm["command"]=="auto" and m["test"]["accuracy"]>=0.9 and m["trials"]["complete"]>=3 and m["best"]["params"]["model"] in ("mlp","linear") and len(m["leaderboard"])==m["trials"]["complete"]+m["trials"]["pruned"] and m["study"]=="blobs"'
pycheck auto-families-tabular "$TMP/blobs.json" 'sorted(m["families"])==["linear","mlp"]'
check auto-model-predicts 0 '"label": ?"(ant|bee|cat)"' -- "$DEFT" predict --model "$TMP/blobs.deft" --input "$TMP/blobs.csv"
check auto-model-evaluates 0 'accuracy' -- "$DEFT" eval --model "$TMP/blobs.deft" --data "$TMP/blobs.csv" --target label

# the study, read back from the store
check study-list 0 '^blobs +maximize' -- "$DEFT" study list --storage "$DB"
check study-show 0 'study blobs \(maximize\)' -- "$DEFT" study show blobs --storage "$DB"
check study-best 0 '"params"' -- "$DEFT" study best blobs --storage "$DB" --format json
"$DEFT" study export blobs --storage "$DB" --output "$TMP/blobs.csv.out"
total=$(/usr/bin/python3 -c "import json; print(json.load(open('$TMP/blobs.json'))['trials']['total'])")
rows=$(($(wc -l < "$TMP/blobs.csv.out") - 1))
if [ "$rows" -eq "$total" ]; then echo "ok   study-export-rows ($rows)"; else echo "FAIL study-export-rows: $rows rows, $total trials"; fails=$((fails+1)); fi
"$DEFT" study export blobs --storage "$DB" --format json --output "$TMP/blobs.export.json"
pycheck study-export-json "$TMP/blobs.export.json" 'len(m["trials"])=='"$total"' and all("state" in t and "params" in t for t in m["trials"])'

# every trial is a run (command trial, its study and number), and the final training one more
"$DEFT" runs list --storage "$DB" --study blobs --format json > "$TMP/blobs.runs.json"
pycheck runs-of-auto "$TMP/blobs.runs.json" \
  'len([r for r in m if r["command"]=="trial"])=='"$total"' and sorted(r["trial_number"] for r in m if r["command"]=="trial")==list(range('"$total"')) and all(r["status"] in ("finished","killed","failed") and r["study"]=="blobs" and "model" in r["params"] for r in m) and [r["name"] for r in m if r["command"]=="auto"]==["blobs-final"] and [r for r in m if r["command"]=="auto"][0]["status"]=="finished" and "test_accuracy" in [r for r in m if r["command"]=="auto"][0]["summary"]'
check runs-of-auto-trial-epochs 0 'metrics per epoch' -- "$DEFT" runs show blobs-trial-0 --storage "$DB"
# TensorBoard: every trial and the final training under runs/<study>/, read back by the
# independent reader (which checks every record's CRCs): scalars, and an hparams session per trial
check tb-auto-trial-scalars 0 'tag: "epoch_loss"' -- bash -c "/usr/bin/python3 '$TB_READER' --dump runs/blobs/trial-0/train/events.out.tfevents.*"
check tb-auto-trial-hparams 0 'session_start_info' -- bash -c "/usr/bin/python3 '$TB_READER' --dump runs/blobs/trial-0/events.out.tfevents.*"
# the final training has its own run directory when there was time to retrain (a slow machine may
# leave none, and then the best trial's model is the final one: no final/ directory then)
retrained=$(/usr/bin/python3 -c "import json; print(int(json.load(open('$TMP/blobs.json'))['final'].startswith('retrained')))")
if [ "$retrained" = 1 ]; then final_tb='ls runs/blobs/final/train/events.out.tfevents.* >/dev/null'; else final_tb='[ ! -e runs/blobs/final ]'; fi
check tb-auto-all-trials 0 '^same$' -- bash -c "[ \$(ls -d runs/blobs/trial-* | wc -l) -eq $total ] && $final_tb && echo same"
check runs-of-auto-pruned 0 '^ok$' -- /usr/bin/python3 -c "
import json
runs = json.load(open('$TMP/blobs.runs.json')); trials = json.load(open('$TMP/blobs.export.json'))['trials']
state = {t['number']: t['state'] for t in trials}
ok = all((r['status'] == 'finished' and not r['summary'].get('pruned')) == (state[r['trial_number']] == 'complete') for r in runs if r['command'] == 'trial')
print('ok' if ok else [(r['trial_number'], r['status'], r['summary'], state[r['trial_number']]) for r in runs if r['command'] == 'trial'])"

# the same study again: refused without --resume, continued with it
check auto-study-exists 2 "^deft: error: .*study 'blobs' already has [0-9]+ trials.*--resume" -- \
  "$DEFT" auto --data "$TMP/blobs.csv" --target label --time-budget 5s --storage "$DB" --study blobs
check auto-resume 0 'Leaderboard' -- "$DEFT" auto --data "$TMP/blobs.csv" --target label --time-budget 8s --storage "$DB" \
  --study blobs --resume --out "$TMP/blobs2.deft" --metrics-out "$TMP/blobs2.json" --threads 1
pycheck auto-resume-grows "$TMP/blobs2.json" 'm["trials"]["total"]>'"$total"

# a budget too short for any trial to finish: the trial that got furthest is finalised
check auto-no-complete-trial 0 'no trial completed within the search budget.*' -- "$DEFT" auto --data "$TMP/blobs.csv" \
  --target label --time-budget 4s --max-trial-epochs 100000 --models mlp --storage "$DB" --study unfinished \
  --out "$TMP/u.deft" --metrics-out "$TMP/u.json" --threads 1
pycheck auto-no-complete-trial-model "$TMP/u.json" 'm["trials"]["complete"]==0 and m["best"]["state"]=="pruned" and m["test"]["accuracy"]>=0.8'

# a search space from YAML: only what it allows is tried
cat > "$TMP/space.yaml" <<'YAML'
model: [mlp]
lr: {low: 1.0e-3, high: 1.0e-2, log: true}
hidden_units: {low: 16, high: 64, log: true}
optimizer: adam
dropout: {low: 0.0, high: 0.3, when: {model: mlp}}
YAML
check auto-space 0 'Leaderboard' -- "$DEFT" auto --data "$TMP/blobs.csv" --target label --time-budget 6s --storage "$DB" \
  --study spaced --space "$TMP/space.yaml" --out "$TMP/s.deft" --metrics-out "$TMP/space.json" --threads 1
pycheck auto-space-respected "$TMP/space.json" \
  'all(t["params"]["model"]=="mlp" and 1e-3<=t["params"]["lr"]<=1e-2 and 16<=t["params"]["hidden_units"]<=64 and t["params"]["optimizer"]=="adam" and 0<=t["params"]["dropout"]<=0.3 and set(t["params"])=={"model","lr","hidden_units","optimizer","dropout"} for t in m["leaderboard"]) and len(m["leaderboard"])>=3'
printf 'model: [mlp]\nlearning_rate: {low: 0.1, high: 0.2}\n' > "$TMP/badspace.yaml"
check auto-space-bad-key 2 "^deft: error: .*badspace.yaml: unknown search-space key 'learning_rate'" -- \
  "$DEFT" auto --data "$TMP/blobs.csv" --target label --time-budget 5s --storage "$DB" --space "$TMP/badspace.yaml"
printf 'model: [mlp]\nlr: {low: 0.5, high: 0.1}\n' > "$TMP/badrange.yaml"
check auto-space-bad-range 2 "^deft: error: .*badrange.yaml: search-space key 'lr': .*low 0.5 must be <= high 0.1" -- \
  "$DEFT" auto --data "$TMP/blobs.csv" --target label --time-budget 5s --storage "$DB" --space "$TMP/badrange.yaml"

# bad input: exit 2 with the field named
check auto-bad-budget 2 "^deft: error: duration 'ten'" -- "$DEFT" auto --data "$TMP/blobs.csv" --target label --time-budget ten
check auto-bad-storage 2 "^deft: error: .*nowhere" -- "$DEFT" auto --data "$TMP/blobs.csv" --target label --time-budget 5s \
  --storage "sqlite:///$TMP/nowhere/dir/x.db"
check auto-bad-data 2 "^deft: error: .*no-such-file.csv" -- "$DEFT" auto --data "$TMP/no-such-file.csv" --time-budget 5s --storage "$DB"
check study-missing 2 "^deft: error: study 'nope' is not in" -- "$DEFT" study show nope --storage "$DB"
printf 'this is not a database, just text that is long enough to fill a page header.......' > "$TMP/bad.db"
check study-corrupt-db 2 "^deft: error: .*bad.db" -- "$DEFT" study list --storage "sqlite:///$TMP/bad.db"

# images: Fashion-MNIST, the MLP family only, a 40 s budget, two workers
if [ -d /usr/share/datasets/fashion-mnist ]; then
  start=$(date +%s%N)
  check auto-fashion 0 'test accuracy 0\.[789][0-9]+' -- "$DEFT" auto --data fashion-mnist --time-budget 40s --models mlp \
    --workers 2 --storage "$DB" --study fmnist --out "$TMP/f.deft" --metrics-out "$TMP/f.json"
  wall=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ "$wall" -lt 52000 ]; then echo "ok   auto-fashion-budget-hard ($wall ms)"; else echo "FAIL auto-fashion-budget-hard: $wall ms for 40 s"; fails=$((fails+1)); fi
  pycheck auto-fashion-metrics "$TMP/f.json" 'm["test"]["accuracy"]>=0.75 and m["trials"]["complete"]+m["trials"]["pruned"]>=2 and m["workers"]==2 and m["test"]["examples"]==10000'
fi

echo "auto_test: $fails failure(s)"
[ "$fails" -eq 0 ]
