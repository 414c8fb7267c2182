#!/bin/sh
#   The document pipeline (examples/document-pipeline) on a real mesh with
#   real OCR, as scripts/pipeline-demo runs it: 3 bundles through Python
#   services and 3 OCR instances, one SIGKILLed mid-run. Every bundle
#   completes, at least 95% of the fields are right, the pages spread over
#   two instances or more, and no page's OCR effect is applied twice, also
#   when every page's command comes again with its idempotency key (the
#   OCR service applies one effect per key, tested alone too). Its
#   failure paths: a bundle that is no directory, and one whose first page
#   has no separator mark, fail their flow naming why; the demo refuses bad
#   options naming them.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
PY=/usr/bin/python3
example="$srcdir/examples/document-pipeline"

missing=""
command -v tesseract >/dev/null || missing="$missing tesseract-ocr"
"$PY" -c 'import PIL' 2>/dev/null || missing="$missing python3-pil"
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$missing fonts-dejavu-core"
[ -z "$missing" ]; ok $? "the pipeline's Debian packages are installed (missing:${missing:- none})" \
    || { done_testing; exit 1; }

#   --- Bad options, refused naming them ---------------------------------------
out=$("$srcdir/scripts/pipeline-demo" --ocr 0 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q -- "--ocr '0': give a positive whole number"
ok $? "pipeline-demo --ocr 0: exit 2 naming it ($rc: $(echo "$out" | head -1))"
out=$("$srcdir/scripts/pipeline-demo" --frobnicate 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "unknown option '--frobnicate'"
ok $? "an unknown option: exit 2 naming it ($rc)"

#   --- A bundle the splitter cannot split fails its flow, saying why ----------
export CHORUS_LIBRARY="$top_builddir/.libs/libchorus.so"
#   Under the sanitize build the library is ASan-instrumented: Python gets
#   libasan preloaded, as in tests/pytest.sh (the OCR service runs
#   tesseract without it)
if ldd "$CHORUS_LIBRARY" | grep -q libasan; then
    preload=$(${CC:-cc} -print-file-name=libasan.so)
    ubsan=$(${CC:-cc} -print-file-name=libubsan.so)
    [ -f "$ubsan" ] && preload="$preload $ubsan"
    LD_PRELOAD="$preload"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    export LD_PRELOAD ASAN_OPTIONS
fi
export PYTHONPATH="$srcdir/bindings/python:$example/services"
start_hub
"$coordinator" --flows "$example/flows" --store "$tmp/coordinator" --no-sync \
    >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
pids="$pids $!"
"$PY" "$example/services/splitter.py" --store "$tmp/splitter" >"$tmp/splitter.out" \
    2>"$tmp/splitter.err" &
pids="$pids $!"
await 100 have_peers coordinator splitter
ok $? "the coordinator and the splitter have joined"

out=$("$chorus" flow start process_bundle "{\"bundle\": \"$tmp/none\", \"bundle_id\": \"x\"}" \
      --wait --timeout 20 --id nodir 2>&1); rc=$?
status=$("$chorus" flow status process_bundle-nodir 2>&1)
[ $rc -eq 1 ] && echo "$status" | grep -q "no-bundle: bundle '$tmp/none' is not a directory"
ok $? "a bundle that is no directory fails its flow with no-bundle ($rc: $out)"

"$PY" "$example/generate.py" --out "$tmp/gen" --bundles 3 --seed 5 || exit 1
#   a bundle of the documents' later pages only: it starts mid-document
mkdir "$tmp/headless"
"$PY" -c 'import json, shutil, sys
for b in json.load(open(sys.argv[1]))["bundles"]:
    for d in b["documents"]:
        for page in d["pages"][1:]:
            shutil.copy(b["dir"] + "/" + page, "%s/%s-%s" % (sys.argv[2], b["bundle"], page))' \
    "$tmp/gen/truth.json" "$tmp/headless"
first=$(ls "$tmp/headless" | head -1)
[ -n "$first" ]; ok $? "a bundle of later pages only, starting with $first"
"$chorus" flow start process_bundle "{\"bundle\": \"$tmp/headless\", \"bundle_id\": \"h\"}" \
    --wait --timeout 20 --id headless >/dev/null 2>&1; rc=$?
status=$("$chorus" flow status process_bundle-headless 2>&1)
[ $rc -eq 1 ] && echo "$status" \
    | grep -q "no-marker: $tmp/headless/$first: the bundle's first page has no separator mark"
ok $? "a bundle whose first page has no separator mark fails with no-marker ($rc)"
#   --- The OCR's effect is applied once per idempotency key ----------------------
#   ocr_instance NAME: an OCR instance with a store of its own
ocr_instance () {
    "$PY" "$example/services/ocr.py" --name "$1" --store "$tmp/$1" --state "$tmp/state" \
        >"$tmp/$1.out" 2>"$tmp/$1.err" &
    ocr_pid=$!
    pids="$pids $ocr_pid"
    await 100 grep -q READY "$tmp/$1.out" && await 100 have_peers ocr
}
ocr_instance first
ok $? "an OCR instance has joined"
page="$tmp/gen/b001/page-01.png"
read_page () { "$chorus" send ocr read_page "{\"page\": \"$page\"}" --idempotency "$1" --timeout 60; }
log_has () { [ "$(cat "$tmp"/state/ocr-*.log | grep -c "^$1 $2 ")" -eq "$3" ]; }
one=$(read_page key-1 2>&1); rc1=$?
[ $rc1 -eq 0 ] && echo "$one" | grep -q "Invoice number: INV-[0-9]*"
ok $? "read_page reads the page ($rc1): $(echo "$one" | grep "Invoice number")"
log_has applied key-1 1; ok $? "its effect is applied, under its key"
two=$(read_page key-1 2>&1)
[ "$two" = "$one" ] && log_has start key-1 1
ok $? "the same key again is answered with the same text from the inbox's record, the handler not run"
#   Another instance cannot know what the first did (a failover, a restart
#   on a new store): its handler runs, finds the effect, applies nothing
kill "$ocr_pid"; wait "$ocr_pid" 2>/dev/null
ocr_instance second
ok $? "a second OCR instance, on a store of its own, has replaced the first"
three=$(read_page key-1 2>&1)
[ "$three" = "$one" ] && log_has start key-1 2 && log_has repeat key-1 1 && log_has applied key-1 1
ok $? "there the same key runs the handler, which answers the text recorded and applies nothing: $(cut -d' ' -f1,2 "$tmp"/state/ocr-second.log | tr '\n' ' ')"
other=$(read_page key-2 2>&1)
[ "$other" = "$one" ] && log_has applied key-2 1 && [ "$(ls "$tmp/state/ocr" | wc -l)" -eq 2 ]
ok $? "a new key applies its own effect: two keys, two effect files"
out=$("$chorus" send ocr read_page "{\"page\": \"$tmp/none.png\"}" --timeout 20 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "no-page: page '$tmp/none.png' is not a file"
ok $? "a page that is no file is refused naming it ($rc: $out)"

for pid in $pids; do kill "$pid" 2>/dev/null; done
for pid in $pids; do wait "$pid" 2>/dev/null; done
pids=""

#   --- The demo: 3 bundles, 3 OCR instances, one killed mid-run ---------------
CHORUS_BUILD="$top_builddir" "$srcdir/scripts/pipeline-demo" 3 --seed 13 \
    --summary "$tmp/summary.json" >"$tmp/demo.out" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/demo.out"
[ $rc -eq 0 ]; ok $? "scripts/pipeline-demo 3 passes its own verdict (exit $rc)"
#   check NAME EXPRESSION: EXPRESSION holds of the summary s (a dict)
check () {
    "$PY" -c 'import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$tmp/summary.json" "$2" 2>/dev/null
    ok $? "$1"
}
check "every bundle completed" 's["completed"] == s["bundles"] == 3 and not s["not_completed"]'
check "at least 95% of the fields are right" 's["accuracy"] >= 0.95 and s["fields_total"] > 0'
check "the pages spread over 2 OCR instances or more" \
    'sum(1 for n in s["ocr_applied"].values() if n) >= 2 and len(s["ocr_applied"]) == 3'
check "one OCR instance was SIGKILLed mid-run" 's["killed"] == "ocr-2" and s["killed_at_s"] is not None'
check "every page's OCR effect was applied, none twice" \
    's["page_keys"] == s["pages"] == s["pages_read"] and not s["applied_twice"]'
check "every page's command sent again with its key: answered from the effect, none applied again" \
    's["replay"]["sent"] == s["pages"] == s["replay"]["answered"] == s["replay"]["from_effect"] and s["replay"]["applied_again"] == 0 and not s["replay"]["differ"]'
done_testing
