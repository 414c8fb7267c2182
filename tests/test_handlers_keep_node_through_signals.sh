#!/bin/sh
#   Signals are the main thread's business, never the node's threads'.
#   `chorus on --exec` starts a process per event, and while it starts one
#   the main thread blocks every signal (posix_spawn does); a signal that
#   comes then must wait for it rather than go to the node's own thread,
#   where it would end the node's poll as if the node were stopping: events
#   would stop coming, and the next result handed to the node would wait
#   for ever. So: SIGHUPs (the tools' "read the trust directory again") all
#   through a run of 200 events, then every event handled once, and SIGTERM
#   still stops it at once.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub
EVENTS=200

"$chorus" on work. --group busy --store "$tmp/busy" \
    --exec "cat > /dev/null; echo \$CHORUS_SEQ >> $tmp/handled" 2>"$tmp/on.err" &
on_pid=$!
pids="$pids $on_pid"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^busy '"
ok $? "the group has joined"

i=1
while [ $i -le $EVENTS ]; do echo "{\"n\": $i}"; i=$((i + 1)); done > "$tmp/items.jsonl"
"$chorus" publish work.item --lines --store "$tmp/producer" --timeout 120 \
    < "$tmp/items.jsonl" 2>"$tmp/publish.err" &
publisher=$!
pids="$pids $publisher"
#   A SIGHUP every 10 ms or so while the events are handled
hups=0
while kill -0 "$publisher" 2>/dev/null && [ "$(lines "$tmp/handled")" -lt $EVENTS ]; do
    kill -HUP "$on_pid" 2>/dev/null && hups=$((hups + 1))
    sleep 0.01
done
wait "$publisher"; rc=$?
[ $rc -eq 0 ]; ok $? "all $EVENTS events acknowledged through $hups SIGHUPs: $(cat "$tmp/publish.err")"
n=$(lines "$tmp/handled")
dups=$(sort "$tmp/handled" | uniq -d | wc -l)
[ "$n" -eq $EVENTS ] && [ "$dups" -eq 0 ]; ok $? "each handled once ($n, $dups twice)"

kill -TERM "$on_pid"
await 50 sh -c "! kill -0 $on_pid 2>/dev/null"
ok $? "SIGTERM stops chorus on at once"
kill -9 "$on_pid" 2>/dev/null
wait "$on_pid"; rc=$?
[ $rc -eq 0 ]; ok $? "with exit 0 ($rc)"
done_testing
