#!/bin/sh
#   A publisher's store damaged while it holds 200 events its group has not
#   acknowledged: a truncated, flipped (in one place or nine) or emptied
#   log, a missing CURRENT, a
#   torn table. Each ends in "refused with the right message" (exit 5,
#   naming the store and the repair command) or "nothing lost" (all 200
#   delivered); never exit 0 with a loss. A refused store is repaired with
#   `chorus store repair`, which reports the loss; the group is told of it
#   (TRUNCATED), and 100 new events all arrive.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub
EVENTS=200

on () {   # on DIR: the billing group, one line per handled event
    "$chorus" on order. --group billing --store "$1/billing" \
        --exec "echo \$CHORUS_SEQ >> $1/handled" 2>>"$1/on.err" &
    on_pid=$!
    pids="$pids $on_pid"
}

publish () {   # publish DIR TIMEOUT < lines
    "$chorus" publish order.placed --lines --store "$1/producer" --timeout "$2" \
        2>>"$1/publish.err"
}

#   The largest file of a kind in the producer's store
largest () { ls -S "$1"/producer/*."$2" 2>/dev/null | head -1; }

damage () {   # damage KIND DIR
    case "$1" in
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
        no-current)   rm -f "$2/producer/CURRENT" ;;
        torn-table)   table=$(largest "$2" ldb); size=$(stat -c %s "$table")
                      truncate -s $((size / 2)) "$table" ;;
    esac
}

for kind in truncate-log flip-log flip-many empty-log no-current torn-table; do
    dir="$tmp/$kind"
    mkdir -p "$dir"
    #   The group meets the producer, then is away while 200 events wait
    on "$dir"
    await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^billing '"
    echo '{"n": 0}' | publish "$dir" 30
    ok $? "$kind: the producer meets the group"
    kill "$on_pid"; wait "$on_pid"
    i=1
    while [ $i -le $EVENTS ]; do echo "{\"n\": $i}"; i=$((i + 1)); done | publish "$dir" 1
    [ $? -eq 3 ]; ok $? "$kind: $EVENTS events stored for the absent group"
    rm -f "$dir/handled"
    if [ $kind = torn-table ]; then
        #   Opening turns the log into a table: the events are in one now
        "$chorus" store check "$dir/producer" >/dev/null
        [ -n "$(largest "$dir" ldb)" ]; ok $? "$kind: the events are in a table"
    fi
    damage $kind "$dir"

    #   The group is back; the producer starts on the damaged store
    on "$dir"
    publish "$dir" 20 < /dev/null
    rc=$?
    handled=$(sort -u "$dir/handled" 2>/dev/null | wc -l)
    if [ $rc -eq 5 ]; then
        ok 0 "$kind: refused with exit 5"
        grep -q "producer is damaged: .*chorus store repair $dir/producer" "$dir/publish.err"
        ok $? "$kind: the message names the store, the damage and the repair: $(grep damaged "$dir/publish.err" | head -1)"
        [ "$handled" -eq 0 ]; ok $? "$kind: nothing was delivered from the damaged store"
        "$chorus" store check "$dir/producer" > "$dir/check.out"
        [ $? -eq 5 ]; ok $? "$kind: store check says damaged: $(grep -m1 'DAMAGED\|damaged' "$dir/check.out")"
        "$chorus" store repair "$dir/producer" > "$dir/repair.out"
        ok $? "$kind: store repair recovers it: $(grep -m1 '^lost\|result' "$dir/repair.out")"
        "$chorus" store check "$dir/producer" > "$dir/check2.out"
        ok $? "$kind: and then it checks sound"
        #   What survived is delivered, what was lost is reported
        publish "$dir" 120 < /dev/null
        ok $? "$kind: the repaired producer delivers what it kept"
        kept=$(sort -u "$dir/handled" 2>/dev/null | wc -l)
        if grep -q '^lost' "$dir/repair.out"; then
            range=$(sed -n 's/^lost: events* \([0-9]*\)\( to \([0-9]*\)\)\{0,1\}.*/\1 to \3/p' "$dir/repair.out" | head -1)
            first=${range%% to*}
            await 100 grep -q "events $first to [0-9]* of publisher .* are lost: events lost to damage" "$dir/on.err"
            ok $? "$kind: the group is told of the loss from event $first: $(grep -m1 'are lost' "$dir/on.err")"
        else
            [ "$kept" -ge $EVENTS ]; ok $? "$kind: the repair lost nothing ($kept delivered)"
        fi
    else
        [ $rc -eq 0 ] && [ "$handled" -ge $EVENTS ]
        ok $? "$kind: nothing lost: exit $rc, $handled of $EVENTS delivered"
        kept=$handled
    fi
    #   New events are never taken for old ones. (Each event runs a shell,
    #   one at a time: beside another test, a few hundred of them took more
    #   than 30 s once; the publish timeouts bound a hang, not the speed)
    before=$(cat "$dir/handled" 2>/dev/null | wc -l)
    i=1
    while [ $i -le 100 ]; do echo "{\"new\": $i}"; i=$((i + 1)); done | publish "$dir" 120
    ok $? "$kind: 100 new events are acknowledged"
    after=$(cat "$dir/handled" 2>/dev/null | wc -l)
    [ $((after - before)) -eq 100 ]; ok $? "$kind: and all 100 ran ($((after - before)))"
    kill "$on_pid"; wait "$on_pid"
done
done_testing
