#!/usr/bin/env bash
# The HTML report as a browser shows it: a short `deft auto` on a tiny image folder
# writes report.html; headless Chromium, with the network unusable (a proxy that does
# not exist), loads it: every section's SVG is in the DOM, nothing is refused or throws
# on the console, the study named like a script stays text; a screenshot is kept.
# `deft report` writes the same report plus SVG and PNG files; unknown names exit 2.
# usage: report_chromium_test.sh path/to/deft ARTIFACTS_DIR
source "$(dirname "$0")/../cli/check.sh" "$1"
ARTIFACTS="${2:-$TMP/artifacts}"
mkdir -p "$ARTIFACTS"
CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"

# 3 classes of 12x12 grey images (a bar, a column, a diagonal; noisy), as class folders of PNGs
/usr/bin/python3 - "$TMP/shapes" <<'PY'
import os, random, struct, sys, zlib
random.seed(1)
def png(path, px, w, h):
    raw = b"".join(b"\x00" + bytes(px[y * w:(y + 1) * w]) for y in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for cls in ["bar", "column", "diagonal"]:
    os.makedirs(os.path.join(sys.argv[1], cls))
    for i in range(70):
        k = random.randrange(2, 10)
        px = []
        for y in range(12):
            for x in range(12):
                on = (cls == "bar" and y == k) or (cls == "column" and x == k) or (cls == "diagonal" and x == y)
                px.append(max(0, min(255, int((200 if on else 30) + random.gauss(0, 70)))))
        png(os.path.join(sys.argv[1], cls, "%03d.png" % i), px, 12, 12)
PY

DB="sqlite:///$TMP/studies.db"
STUDY='<script>alert(1)</script>'
mkdir -p "$TMP/out"
check auto-writes-report 0 'report' -- "$DEFT" auto --data "$TMP/shapes" --time-budget 10s --models mlp --storage "$DB" \
  --study "$STUDY" --out "$TMP/out/shapes.deft" --threads 1 --seed 1 --tensorboard "$TMP/tb"
# TensorBoard: the hostile study name is one folder inside the root, and the trials on
# images carry the grid of validation predictions and the confusion matrix
check tb-study-folder 0 '^_script_alert_1___script_$' -- ls "$TMP/tb"
check tb-trial-images 0 'validation/predictions' -- bash -c "/usr/bin/python3 '$(dirname "$0")/tb_reader.py' --dump '$TMP'/tb/*/trial-0/events.out.tfevents.* | grep -o 'validation/[a-z_]*' | sort -u"
REPORT="$TMP/out/report.html"
if [ -s "$REPORT" ]; then echo "ok   report-html-exists"; else echo "FAIL report-html-exists: no $REPORT"; fails=$((fails+1)); fi
cp "$REPORT" "$ARTIFACTS/report.html" 2>/dev/null

check report-cli 0 '' -- "$DEFT" report "$STUDY" --storage "$DB" --out "$TMP/again.html" --svg-dir "$TMP/svg" --png
for f in optimization_history intermediate_values parallel_coordinates param_importance confusion_matrix misclassified; do
  if [ -s "$TMP/svg/$f.svg" ] && [ -s "$TMP/svg/$f.png" ]; then echo "ok   report-svg-png $f"; else echo "FAIL report-svg-png: $f.svg/.png missing"; fails=$((fails+1)); fi
done
mkdir -p "$ARTIFACTS/report-plots" && cp "$TMP/svg/"*.png "$ARTIFACTS/report-plots/" 2>/dev/null
check report-unknown 2 "^deft: error: 'nope' is neither a study nor a run" -- "$DEFT" report nope --storage "$DB" --out "$TMP/x.html"

if [ -z "$CHROMIUM" ]; then
  echo "FAIL chromium: not installed (Debian package chromium)"; exit 1
fi
# No network: every request would go through a proxy nobody listens on; the report's
# CSP forbids any request anyway, and a refused one is logged on the console.
CHROME=("$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions --disable-sync
        --disable-background-networking --proxy-server=127.0.0.1:9 --proxy-bypass-list='<-loopback>'
        --user-data-dir="$TMP/chrome" --enable-logging=stderr --v=0)
HOME="$TMP" timeout 60 "${CHROME[@]}" --dump-dom "file://$REPORT" > "$TMP/dom.html" 2> "$TMP/dom.log"
rc=$?
if [ "$rc" -eq 0 ] && [ -s "$TMP/dom.html" ]; then echo "ok   chromium-loads"; else echo "FAIL chromium-loads: exit $rc; $(tail -5 "$TMP/dom.log")"; fails=$((fails+1)); fi
/usr/bin/python3 - "$TMP/dom.html" <<'PY' || fails=$((fails+1))
import re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
bad = []
plots = {"learning-curves": 1, "history": 1, "intermediate": 1, "parallel": 1, "importance": 1, "confusion": 1,
         "misclassified": 1}
for sid in ["summary", "learning-curves", "history", "intermediate", "parallel", "importance", "confusion",
            "per-class", "misclassified", "trials"]:
    m = re.search(r'<section id="%s">(.*?)</section>' % sid, dom, re.S)
    if not m:
        bad.append("section %s missing" % sid); continue
    if sid in plots and "<svg" not in m.group(1):
        bad.append("section %s has no SVG" % sid)
if "data:image/png;base64," not in dom: bad.append("no misclassified images")
if re.search(r"<script", dom, re.I): bad.append("a <script> element is in the DOM")
if "&lt;script&gt;alert(1)&lt;/script&gt;" not in dom: bad.append("the study name is not shown as text")
if "<h1>Study &lt;script&gt;" not in dom: bad.append("the heading does not name the study")
if bad:
    print("FAIL chromium-dom: " + "; ".join(bad)); sys.exit(1)
print("ok   chromium-dom (every section, its SVG, images, the name as text)")
PY
# Headless Chromium logs console messages (and CSP violations: a script or a fetch the
# report's policy blocked) as ...:CONSOLE...; the report should cause none at all.
if grep -E "CONSOLE|Uncaught|Refused to|net::ERR_|Content Security Policy" "$TMP/dom.log"; then
  echo "FAIL chromium-console: errors above"; fails=$((fails+1))
else
  echo "ok   chromium-console (no errors, nothing refused)"
fi
rm -f "$ARTIFACTS/report.png"
HOME="$TMP" timeout 60 "${CHROME[@]}" --hide-scrollbars --window-size=1280,4000 --screenshot="$ARTIFACTS/report.png" \
  "file://$REPORT" > /dev/null 2> "$TMP/shot.log"
/usr/bin/python3 - "$ARTIFACTS/report.png" <<'PY' || fails=$((fails+1))
import struct, sys
try:
    head = open(sys.argv[1], "rb").read(24)
    ok = head[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", head[16:24]) if ok else (0, 0)
except OSError:
    ok, w, h = False, 0, 0
if ok and w == 1280 and h == 4000:
    print("ok   chromium-screenshot %s (%dx%d)" % (sys.argv[1], w, h))
else:
    print("FAIL chromium-screenshot: %s is not a 1280x4000 PNG" % sys.argv[1]); sys.exit(1)
PY
[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all report checks passed; screenshot: $ARTIFACTS/report.png"
