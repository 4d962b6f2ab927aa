#!/usr/bin/env bash
# The deft command as a user runs it: output, exit codes, error style.
# usage: cli_test.sh path/to/deft
set -u
DEFT="$1"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
fails=0
check() {  # check NAME EXPECTED_RC REGEX -- command...
  local name="$1" want_rc="$2" regex="$3"; shift 4
  local out rc
  out="$("$@" 2>&1)"; rc=$?
  if [ "$rc" -ne "$want_rc" ]; then echo "FAIL $name: exit $rc, expected $want_rc; output: $out"; fails=$((fails+1)); return; fi
  if ! grep -qE -- "$regex" <<<"$out"; then echo "FAIL $name: output does not match /$regex/: $out"; fails=$((fails+1)); return; fi
  echo "ok   $name"
}

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

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
