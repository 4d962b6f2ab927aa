# Shared by the CLI test scripts (sourced): DEFT, a temporary folder TMP removed on exit,
# a failure count, and check NAME EXPECTED_RC REGEX -- command...
# usage, in a script: source "$(dirname "$0")/check.sh" "$@"
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
