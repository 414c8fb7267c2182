#!/bin/sh
#   SIGTERM stops `chorus on` within 2 s even with a backlog: the handler
#   that is running finishes, its result is recorded and acknowledged, and
#   the rest waits for the next start. After a restart every event has run
#   exactly once.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub
EVENTS=300

on () {
    "$chorus" on work. --group slow --store "$tmp/slow" \
        --exec "sleep 0.02; echo \$CHORUS_SEQ >> $tmp/handled" 2>>"$tmp/on.err" &
    on_pid=$!
    pids="$pids $on_pid"
}

#   The group meets the producer once, then is away while events pile up
on
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^slow '"
ok $? "the slow group has joined"
echo '{"n": 0}' | "$chorus" publish work.item --lines --store "$tmp/producer" --timeout 30 \
    2>"$tmp/publish0.err"
ok $? "the producer meets it: $(cat "$tmp/publish0.err")"
kill "$on_pid"; wait "$on_pid"
rm -f "$tmp/handled"
i=1
while [ $i -le $EVENTS ]; do echo "{\"n\": $i}"; i=$((i + 1)); done > "$tmp/items.jsonl"
"$chorus" publish work.item --lines --store "$tmp/producer" --timeout 1 \
    < "$tmp/items.jsonl" 2>"$tmp/publish.err"
[ $? -eq 3 ]; ok $? "$EVENTS events stored for the absent group: $(cat "$tmp/publish.err")"

#   Back with a backlog of them, which the producer delivers: stopped once
#   a few have run
on
"$chorus" publish work.item --lines --store "$tmp/producer" --timeout 60 \
    < /dev/null 2>"$tmp/publish2.err" &
producer=$!
pids="$pids $producer"
await 300 has_lines "$tmp/handled" 5
ok $? "the group works through its backlog"
start=$(date +%s%N)
kill -TERM "$on_pid"
wait "$on_pid"
rc=$?
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc -eq 0 ]; ok $? "chorus on exits 0 on SIGTERM"
[ $elapsed -lt 2000 ]; ok $? "within 2 s: $elapsed ms, after $(lines "$tmp/handled") of $EVENTS events"
left=$(( EVENTS - $(lines "$tmp/handled") ))
[ $left -gt 0 ]; ok $? "leaving $left events for later"

#   The next start handles the rest; the producer sees every one acknowledged
on
wait $producer
ok $? "the rest is delivered after a restart: $(cat "$tmp/publish2.err")"
sort -n "$tmp/handled" | uniq > "$tmp/distinct"
[ "$(lines "$tmp/distinct")" -eq $EVENTS ]; ok $? "all $EVENTS ran"
[ "$(lines "$tmp/handled")" -eq $EVENTS ]
ok $? "each exactly once ($(lines "$tmp/handled") runs)"
done_testing
