#!/bin/sh
#   A coordinator holding 300 acknowledged flows is killed (kill -9) and its
#   journal damaged: a truncated, flipped or emptied log (flipped in one
#   place, or in nine, which is sure to damage bytes LevelDB's repair
#   carries into records that still decode), a missing CURRENT,
#   a torn table; or its node store's log flipped. Each restart ends in
#   "refused with the right message and exit 5" (naming the journal or
#   node store, the damage and `chorus store repair` of the --store
#   directory) or "nothing lost" (every flow recovered); never in a
#   coordinator that runs with flows missing. An undamaged copy recovers
#   all 300, so the count means something.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""
FLOWS=300

#   Flows that wait for a service that never comes: they stay running
mkdir "$tmp/flows"
cat > "$tmp/flows/hold.yaml" <<'EOF'
flow: hold
version: 1
trigger: hold.requested
steps:
  - id: wait
    service: nobody
    command: wait
    timeout: 1h
EOF

start_hub

#   start_coordinator NAME STORE [OPTION]: in the background, out and err
#   in $tmp/NAME.*
start_coordinator () {
    "$coordinator" --flows "$tmp/flows" --store "$2" --no-sync $3 \
        >"$tmp/$1.out" 2>"$tmp/$1.err" &
    coord_pid=$!
}
#   Whether it is ready, or has said why it stopped
settled () { grep -q ready "$tmp/$1.out" || grep -q "^chorus-coordinator: " "$tmp/$1.err"; }
#   How many flows the running coordinator lists
listed () {
    "$chorus" send coordinator flow.list '{}' --timeout 5 2>/dev/null \
        | grep -o '"id":"hold-[^"]*"' | sort -u | wc -l | tr -d ' '
}

#   300 flows, started by events the coordinator acknowledged: each is in
#   its journal when `chorus publish` returns 0
start_coordinator first "$tmp/base"
await 100 settled first
await 100 sh -c "\"$chorus\" peers --wait 300 2>/dev/null | grep -q '^coordinator '"
i=1
while [ $i -le $FLOWS ]; do echo "{\"n\": $i}"; i=$((i + 1)); done \
    | "$chorus" publish hold.requested --lines --store "$tmp/producer" --timeout 30 \
        2>"$tmp/publish.err"
ok $? "$FLOWS trigger events acknowledged by the coordinator: $(tail -1 "$tmp/publish.err")"
n=$(listed)
[ "$n" -eq $FLOWS ]; ok $? "the coordinator runs $n flows"
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null; coord_pid=""
ls "$tmp/base/journal"/*.log >/dev/null 2>&1; ok $? "the journal holds its flows in a log"

#   The largest file of a kind in a journal
largest () { ls -S "$1"/journal/*."$2" 2>/dev/null | head -1; }

damage () {   # damage KIND STORE
    case "$1" in
        intact)       ;;
        truncate-log) log=$(largest "$2" log); size=$(stat -c %s "$log")
                      truncate -s $((size / 2)) "$log" ;;
        flip-log)     log=$(largest "$2" log); size=$(stat -c %s "$log")
                      printf '\377\377\377\377\377\377\377\377' \
                          | dd of="$log" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null ;;
        flip-many)    log=$(largest "$2" log); size=$(stat -c %s "$log")
                      for k in 1 2 3 4 5 6 7 8 9; do
                          printf '\377\377\377\377\377\377\377\377' \
                              | dd of="$log" bs=1 seek=$((size * k / 10)) conv=notrunc 2>/dev/null
                      done ;;
        empty-log)    log=$(largest "$2" log); truncate -s 0 "$log" ;;
        no-current)   rm -f "$2/journal/CURRENT" ;;
        torn-table)   table=$(largest "$2" ldb); size=$(stat -c %s "$table")
                      truncate -s $((size / 2)) "$table" ;;
        node-store)   log=$(ls -S "$2"/node/*.log | head -1); size=$(stat -c %s "$log")
                      printf '\377\377\377\377\377\377\377\377' \
                          | dd of="$log" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null ;;
    esac
}

for kind in intact truncate-log flip-log flip-many empty-log no-current torn-table node-store; do
    store="$tmp/$kind"
    cp -r "$tmp/base" "$store"
    if [ $kind = torn-table ]; then
        #   A start turns the log into a table; a clean stop keeps it so
        start_coordinator "$kind-table" "$store"
        await 100 settled "$kind-table"
        kill "$coord_pid"; wait "$coord_pid" 2>/dev/null; coord_pid=""
        [ -n "$(largest "$store" ldb)" ]; ok $? "$kind: the flows are in a table now"
    fi
    damage $kind "$store"
    start_coordinator "$kind" "$store"
    await 150 settled "$kind"
    ok $? "$kind: the coordinator is ready or has said why not"
    if grep -q ready "$tmp/$kind.out"; then
        n=$(listed)
        [ "$n" -eq $FLOWS ]; ok $? "$kind: nothing lost: the coordinator runs all $n flows"
        kill "$coord_pid"; wait "$coord_pid"
    else
        wait "$coord_pid"; rc=$?
        [ $rc -eq 5 ]; ok $? "$kind: refused with exit 5 (got $rc)"
        part="journal $store/journal"
        [ $kind = node-store ] && part="node store $store/node"
        grep -q "$part is damaged.*chorus store check $store.*chorus store repair $store" \
            "$tmp/$kind.err"
        ok $? "$kind: the message names the store, the damage and the repair: $(grep -m1 'is damaged' "$tmp/$kind.err" | head -c 300)"
        [ $kind != intact ]; ok $? "$kind: an undamaged journal is never refused"
        #   What the message says to do works: check, repair, start again
        if "$chorus" store --help >/dev/null 2>&1; then
            "$chorus" store check "$store" >"$tmp/$kind.check" 2>&1
            [ $? -eq 5 ]; ok $? "$kind: chorus store check says damaged"
            "$chorus" store repair "$store" >"$tmp/$kind.repair" 2>&1
            ok $? "$kind: chorus store repair repairs it: $(grep -m1 '^flows kept' "$tmp/$kind.repair" | cut -d'(' -f1)"
            start_coordinator "$kind-repaired" "$store" --verbose
            await 150 settled "$kind-repaired"
            grep -q ready "$tmp/$kind-repaired.out"
            ok $? "$kind: the coordinator starts on the repaired store $(grep -m1 '^chorus-coordinator:' "$tmp/$kind-repaired.err")"
            n=$(sed -n 's/.*coordinator: recovered \([0-9]*\) flows.*/\1/p' "$tmp/$kind-repaired.err")
            said=$(sed -n 's/^flows kept: \([0-9]*\).*/\1/p' "$tmp/$kind.repair")
            [ "$n" -le $FLOWS ] && [ "$n" = "${said:-$n}" ]
            ok $? "$kind: with the $n flows the repair said it kept"
            kill "$coord_pid"; wait "$coord_pid"
        else
            skip "$kind: chorus store is not built"
        fi
    fi
    coord_pid=""
done
done_testing
