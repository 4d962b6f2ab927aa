#!/usr/bin/env bash
# `deft dashboard` in a real browser: a store seeded with a study of 40 trials (2 still
# running), a study named <script>alert(1)</script> and a run; the server on a free
# port; headless Chromium's DOM after the page's script ran, its console, and
# screenshots (saved under ARTIFACTS). Also: a port in use is refused (exit 2), and
# SIGTERM stops the server cleanly (exit 0).
# usage: dashboard_chromium_test.sh path/to/deft path/to/dashboard_tool ARTIFACTS
set -u
DEFT="$1" TOOL="$2" ART="$3"
TMP="$(mktemp -d)"
mkdir -p "$ART"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails+1)); }

CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$CHROMIUM" ]; then echo "FAIL chromium is not installed (Debian package chromium)"; exit 1; fi

DB="sqlite:///$TMP/dash.db"
HOSTILE='<script>alert(1)</script>'
seeded="$("$TOOL" seed "$DB" fmnist-search 40 --running 2 --run mlp-1)" || { bad "seed: $seeded"; exit 1; }
echo "seeded: $seeded"
read -r _ n _ complete _ pruned _ failed _ running _ <<<"$seeded"
"$TOOL" seed "$DB" "$HOSTILE" 3 >/dev/null || { bad "seed hostile"; exit 1; }

"$DEFT" dashboard --storage "$DB" --port 0 --refresh 1 >"$TMP/server.out" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 100); do
  url="$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' "$TMP/server.out" | head -1)"
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then bad "server did not print its URL: $(cat "$TMP/server.out")"; exit 1; fi
ok "server at $url"
port="${url##*:}"; port="${port%/}"

# a second server on the same port: refused, naming the port
out="$("$DEFT" dashboard --storage "$DB" --port "$port" 2>&1)"; rc=$?
if [ "$rc" -eq 2 ] && grep -qE "^deft: error: .*port $port" <<<"$out"; then ok "port-in-use"; else bad "port-in-use: exit $rc: $out"; fi

# chrome NAME URL: the DOM after 5 s of virtual time into $TMP/NAME.html, the console
# into $TMP/NAME.log, a screenshot into ARTIFACTS/dashboard_NAME.png
chrome() {
  local name="$1" page="$2"
  local flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --hide-scrollbars
    --user-data-dir="$TMP/profile-$name" --enable-logging=stderr --v=0 --virtual-time-budget=5000)
  timeout 60 "$CHROMIUM" "${flags[@]}" --dump-dom "$page" >"$TMP/$name.html" 2>"$TMP/$name.log"
  timeout 60 "$CHROMIUM" "${flags[@]}" --screenshot="$ART/dashboard_$name.png" --window-size=1280,2000 "$page" \
    >/dev/null 2>>"$TMP/$name.log"
  # any console message (an uncaught error, a CSP violation, a failed fetch) is a failure
  if grep -E 'Uncaught|CONSOLE|Refused to|Content Security Policy' "$TMP/$name.log" >"$TMP/$name.console"; then
    bad "$name: console: $(head -5 "$TMP/$name.console")"
  else
    ok "$name: no console errors"
  fi
  [ -s "$ART/dashboard_$name.png" ] && ok "$name: screenshot" || bad "$name: no screenshot"
}

chrome study "${url}study/fmnist-search"
body="$(tr -d '\n' <"$TMP/study.html" | grep -oE '<tbody id="trial-body">.*</tbody>' | head -1)"
missing=""
for ((i = 0; i < n; i++)); do grep -q "data-number=\"$i\"" <<<"$body" || missing+=" $i"; done
[ -z "$missing" ] && ok "study: table has trials 0..$((n-1))" || bad "study: table lacks trials$missing"
for pair in "complete:$complete" "pruned:$pruned" "fail:$failed" "running:$running"; do
  state="${pair%%:*}" want="${pair##*:}"
  got="$(grep -oE "class=\"state state-$state\">$state<" <<<"$body" | wc -l)"
  [ "$got" -eq "$want" ] && ok "study: $want $state" || bad "study: $got $state trials in the table, expected $want"
done
grep -qE '<div class="chart" id="plot-history"[^>]*><svg' "$TMP/study.html" && ok "study: history chart drawn" \
  || bad "study: no <svg> in the history chart"
grep -qE 'id="summary"[^>]*>.*best value' "$TMP/study.html" && ok "study: summary" || bad "study: no summary"

chrome hostile "${url}study/%3Cscript%3Ealert(1)%3C%2Fscript%3E"
escaped='&lt;script&gt;alert(1)&lt;/script&gt;'
grep -qF "<h1 id=\"title\">$escaped</h1>" "$TMP/hostile.html" && ok "hostile: name shown as text" \
  || bad "hostile: escaped name not in the heading"
scripts="$(grep -o '<script' "$TMP/hostile.html" | wc -l)"
[ "$scripts" -eq 1 ] && ok "hostile: only deft's script element" || bad "hostile: $scripts <script> elements"
grep -qF "$HOSTILE" "$TMP/hostile.html" && bad "hostile: the name appears unescaped" || ok "hostile: nothing unescaped"
grep -q 'data-number="2"' "$TMP/hostile.html" && ok "hostile: its trials listed" || bad "hostile: no trial table"

chrome index "$url"
grep -qF ">$escaped</a>" "$TMP/index.html" && ok "index: hostile study listed as text" || bad "index: hostile name not escaped"
grep -qF 'href="/study/fmnist-search"' "$TMP/index.html" && ok "index: study link" || bad "index: no study link"
grep -qF 'href="/run/mlp-1"' "$TMP/index.html" && ok "index: run link" || bad "index: no run link"

chrome run "${url}run/mlp-1"
grep -qE '<div class="chart" id="plot-learning"[^>]*><svg' "$TMP/run.html" && ok "run: learning curves drawn" \
  || bad "run: no learning curves"
grep -qF 'test_accuracy' "$TMP/run.html" && ok "run: summary" || bad "run: no summary"

# SIGTERM: a clean stop
kill -TERM "$server_pid"; wait "$server_pid"; rc=$?; server_pid=""
[ "$rc" -eq 0 ] && ok "server stops on SIGTERM" || bad "server exit $rc on SIGTERM: $(cat "$TMP/server.out")"

echo "screenshots: $ART/dashboard_{study,hostile,index,run}.png"
[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all passed"
