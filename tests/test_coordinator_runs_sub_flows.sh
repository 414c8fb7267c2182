#!/bin/sh
#   Sub-flows on a real mesh, two levels deep: a bundle runs one
#   process_document child per document (for_each, max_parallel), each of
#   which runs one process_page child per page, whose step a `chorus serve`
#   service answers. The bundle completes with its children's outputs
#   (flow start --wait prints them) and flow status shows the tree. A page
#   that fails fails its document, which fails the bundle's step, and the
#   bundle compensates the completed document's pages in reverse order.
#   Cancelling a bundle cancels its running children. Then kill -9 of the
#   coordinator, three times, while bundles run: every bundle completes,
#   every page is worked once, and no child flow is started twice.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

mkdir "$tmp/flows"
cat > "$tmp/flows/bundle.yaml" <<'EOF'
flow: bundle
version: 1
steps:
  - id: docs
    flow: process_document
    for_each: $.input.docs
    max_parallel: 2
    input: { doc: $.item }
  - id: sum
    service: ocr
    command: sum
    depends_on: [docs]
    input: { docs: $.steps.docs.output }
output: { docs: $.steps.docs.output, sum: $.steps.sum.output.n }
EOF
cat > "$tmp/flows/process_document.yaml" <<'EOF'
flow: process_document
version: 1
steps:
  - id: pages
    flow: process_page
    for_each: $.input.doc.pages
    max_parallel: 1
    input: { doc: $.input.doc.name, page: $.item }
output: { doc: $.input.doc.name, pages: $.steps.pages.output }
EOF
cat > "$tmp/flows/process_page.yaml" <<'EOF'
flow: process_page
version: 1
steps:
  - id: ocr
    service: ocr
    command: ocr
    input: { doc: $.input.doc, page: $.input.page }
    retry: { attempts: 2, backoff: 10ms }
    timeout: 30s
    compensate: { command: unocr }
output: $.steps.ocr.output
EOF

#   ocr: a page named "bad" fails (twice, so for good) once the fail file
#   exists; one named "hold"
#   waits for the release file; pages of the documents k* and l* wait for
#   the go file; each run is logged with its key
cat > "$tmp/ocr.sh" <<EOF
#!/bin/sh
input=\$(cat)
echo "\$CHORUS_IDEMPOTENCY_KEY" >> "$tmp/ocr.log"
case "\$input" in
    *'"page": "bad"'*|*'"page":"bad"'*)
        while [ ! -f "$tmp/fail" ]; do sleep 0.05; done
        echo "page is bad" >&2; exit 1 ;;
    *'"page": "hold"'*|*'"page":"hold"'*)
        while [ ! -f "$tmp/release" ]; do sleep 0.05; done ;;
    *'"doc": "k'*|*'"doc": "l'*|*'"doc":"k'*|*'"doc":"l'*)
        while [ ! -f "$tmp/go" ]; do sleep 0.05; done; sleep 0.1 ;;
esac
doc=\$(echo "\$input" | sed 's/.*"doc": *"\([^"]*\)".*/\1/')
page=\$(echo "\$input" | sed 's/.*"page": *\([^,}]*\).*/\1/' | tr -d '" ')
echo "{\"text\": \"\$doc-\$page\"}"
EOF
chmod +x "$tmp/ocr.sh"

start_hub
"$chorus" serve ocr --store "$tmp/ocr" --workers 8 --handle "ocr=$tmp/ocr.sh" \
    --handle "unocr=cat >/dev/null; echo \"\$CHORUS_IDEMPOTENCY_KEY\" >> $tmp/undone; echo '{}'" \
    --handle "sum=cat >/dev/null; echo '{\"n\": 3}'" 2>"$tmp/ocr.err" &
pids="$pids $!"
start_coordinator () {
    "$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync --verbose \
        >>"$tmp/coordinator.out" 2>>"$tmp/coordinator.err" &
    coord_pid=$!
}
start_coordinator
await 100 have_peers coordinator ocr
ok $? "the coordinator and the ocr service have joined"

#   --- two levels of fan-out complete ---------------------------------------
out=$("$chorus" flow start bundle '{"docs": [{"name": "a", "pages": [1, 2]},
      {"name": "b", "pages": [3]}]}' --wait --timeout 30 --id t1); rc=$?
want='{"docs":[{"doc":"a","pages":[{"text":"a-1"},{"text":"a-2"}]},{"doc":"b","pages":[{"text":"b-3"}]}],"sum":3}'
[ $rc -eq 0 ] && [ "$(echo "$out" | sed -n 2p)" = "$want" ]
ok $? "the bundle completes with its children's and grandchildren's outputs ($rc): $out"
for key in bundle-t1/docs/0/pages/0/ocr bundle-t1/docs/0/pages/1/ocr bundle-t1/docs/1/pages/0/ocr
do
    [ "$(grep -cx "$key" "$tmp/ocr.log")" -eq 1 ]; ok $? "page task $key ran once"
done
out=$("$chorus" flow status bundle-t1)
echo "$out" | grep -q "^      -> bundle-t1/docs/0  process_document v1  completed$" \
    && echo "$out" | grep -q "^             -> bundle-t1/docs/0/pages/1  process_page v1  completed$" \
    && echo "$out" | grep -q "^             -> bundle-t1/docs/1/pages/0  process_page v1  completed$"
ok $? "flow status shows the tree of children under their items"
[ $? -eq 0 ] || echo "$out" | sed 's/^/# /'
"$chorus" flow status bundle-t1/docs/1 --json | grep -q '"parent":{"id":"bundle-t1","task":"bundle-t1/docs/1"}'
ok $? "a child's own status names its parent and task"

#   --- a failed page: compensation of the completed children, last first ----
#   The bad page fails once the other document completed
"$chorus" flow start bundle '{"docs": [{"name": "c", "pages": [1, 2]},
      {"name": "d", "pages": ["bad"]}]}' --id t2 >/dev/null
c_done () { "$chorus" flow status bundle-t2/docs/0 --timeout 2 2>/dev/null | head -1 \
            | grep -q " completed "; }
await_s 30 c_done; ok $? "the first document completed"
touch "$tmp/fail"
out=$("$chorus" flow start bundle --id t2 --wait --timeout 30); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "^bundle-t2 failed in [0-9]* ms: docs: flow-failed: "
ok $? "a failed grandchild fails its parent and the bundle ($rc): $out"
why="flow bundle-t2/docs/1 failed: pages: flow-failed: flow bundle-t2/docs/1/pages/0 failed: ocr: exit-1: page is bad"
"$chorus" flow status bundle-t2 --json | grep -qF "\"error\":{\"code\":\"flow-failed\",\"message\":\"$why"
ok $? "its error says why, down to the page: $why"
[ "$(grep -c '^bundle-t2/' "$tmp/undone")" -eq 2 ] \
    && [ "$(grep '^bundle-t2/' "$tmp/undone" | head -1)" = "bundle-t2/docs/0/pages/1/ocr/undo" ] \
    && [ "$(grep '^bundle-t2/' "$tmp/undone" | tail -1)" = "bundle-t2/docs/0/pages/0/ocr/undo" ]
ok $? "the completed document's pages were undone, the last first: $(grep bundle-t2 "$tmp/undone" | tr '\n' ' ')"
"$chorus" flow status bundle-t2/docs/0 --json | grep -q '"state":"cancelled".*"code":"compensated"'
ok $? "the completed child ends cancelled, compensated by its parent"

#   --- cancelling a bundle cancels its running children -----------------------
"$chorus" flow start bundle '{"docs": [{"name": "e", "pages": [1, "hold"]}]}' --id t3 >/dev/null
holding () { grep -q "^bundle-t3/docs/0/pages/1/ocr$" "$tmp/ocr.log" 2>/dev/null; }
await 200 holding; ok $? "a page holds"
"$chorus" flow cancel bundle-t3 >/dev/null; ok $? "the bundle is cancelled"
touch "$tmp/release"
cancelled () { "$chorus" flow status bundle-t3 | head -1 | grep -q " cancelled "; }
await 200 cancelled; ok $? "the bundle ends cancelled"
"$chorus" flow status bundle-t3/docs/0 --json | grep -q '^{"id":"bundle-t3/docs/0".*"state":"cancelled"'
ok $? "its running child was cancelled"
grep -q "^bundle-t3/docs/0/pages/1/ocr/undo$" "$tmp/undone" \
    && grep -q "^bundle-t3/docs/0/pages/0/ocr/undo$" "$tmp/undone"
ok $? "and the grandchildren's work undone (the held page answered, so it is undone too)"

#   --- kill -9 while bundles run: twice while their pages are held, once
#   after they were let go -----------------------------------------------------
BUNDLES=6
i=1
while [ $i -le $BUNDLES ]; do
    "$chorus" flow start bundle "{\"docs\": [{\"name\": \"k$i\", \"pages\": [1, 2, 3]},
        {\"name\": \"l$i\", \"pages\": [4, 5]}]}" --id k$i --timeout 20 >/dev/null
    i=$((i + 1))
done
ok $? "$BUNDLES bundles started"
completed () {
    n=0
    for i in $(seq 1 $BUNDLES); do
        "$chorus" flow status bundle-k$i --timeout 2 2>/dev/null | head -1 | grep -q " completed " \
            && n=$((n + 1))
    done
    echo "$n"
}
held () { [ "$(grep -c "^bundle-k" "$tmp/ocr.log")" -ge 8 ]; }
await_s 30 held; ok $? "8 pages of the bundles are held by the service"
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null
start_coordinator
await_s 20 have_peers coordinator
[ "$(completed)" -eq 0 ]; ok $? "killed and restarted while no bundle could complete"
sleep 0.5
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null
start_coordinator
touch "$tmp/go"
sleep 0.5
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null
start_coordinator
all_done () { n=$(completed); echo "$n" > "$tmp/count"; [ "$n" -eq $BUNDLES ]; }
await_s 120 all_done; ok $? "after 3 kills every bundle completed ($(cat "$tmp/count") of $BUNDLES)"
twice=$(grep "^bundle-k" "$tmp/ocr.log" | sort | uniq -d | wc -l | tr -d ' ')
pages=$(grep "^bundle-k" "$tmp/ocr.log" | sort -u | wc -l | tr -d ' ')
[ "$twice" -eq 0 ] && [ "$pages" -eq $((BUNDLES * 5)) ]
ok $? "every page was worked once ($pages pages, $twice twice)"
starts=$(grep -o "flow bundle-k[^ ]* started" "$tmp/coordinator.err" | sort | uniq -d | wc -l)
children=$(grep -o "flow bundle-k[^ ]*/[^ ]* started" "$tmp/coordinator.err" | sort -u | wc -l)
[ "$starts" -eq 0 ] && [ "$children" -eq $((BUNDLES * 7)) ]
ok $? "each child flow was started once ($children children, $starts started twice)"
out=$("$chorus" flow start bundle --id k1 --wait --timeout 10 | sed -n 2p)
echo "$out" | grep -q '"doc":"k1","pages":\[{"text":"k1-1"},{"text":"k1-2"},{"text":"k1-3"}\]'
ok $? "a bundle's output holds its children's: $out"
done_testing
