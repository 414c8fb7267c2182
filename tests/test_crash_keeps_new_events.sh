#!/bin/sh
#   A publisher killed with SIGKILL whose log then loses its tail, as a
#   machine crash without fsync leaves it: the group had already handled
#   the lost events. The publisher starts a new epoch, so its next 100
#   events are numbered above every number it handed out before: all 100
#   run, none is taken for a duplicate of a lost one.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub
"$chorus" on order. --group billing --store "$tmp/billing" \
    --exec "echo \$CHORUS_SEQ >> $tmp/handled" 2>>"$tmp/on.err" &
pids="$pids $!"
"$chorus" tail --topic order. > "$tmp/tail.out" 2>>"$tmp/tail.err" &
pids="$pids $!"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^billing '"
ok $? "the billing group has joined"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^chorus-tail '"
ok $? "an observer watches"

#   A first run makes the store (its identity goes into a table at the
#   next open); the second run's events are all in the log
echo '{"n": 0}' | "$chorus" publish order.placed --lines --store "$tmp/producer" --timeout 30 \
    2>>"$tmp/publish.err"
ok $? "the producer meets the group"
mkfifo "$tmp/lines"
"$chorus" publish order.placed --lines --store "$tmp/producer" --timeout 60 \
    < "$tmp/lines" 2>>"$tmp/publish.err" &
producer=$!
pids="$pids $producer"
exec 3>"$tmp/lines"
i=1
while [ $i -le 200 ]; do echo "{\"n\": $i}" >&3; i=$((i + 1)); done
await 300 has_lines "$tmp/handled" 201
ok $? "the group handled all 201 events"
kill -KILL $producer; wait $producer 2>/dev/null
exec 3>&-
log=$(ls -S "$tmp"/producer/*.log | head -1)
size=$(stat -c %s "$log")
truncate -s $((size / 2)) "$log"
grep -q "state open" "$tmp/producer/CHORUS-STATE"; ok $? "killed, the store was not closed"
"$chorus" store check "$tmp/producer" > "$tmp/check.out"
last=$(sed -n 's/^outbox: .* head \([0-9]*\)$/\1/p' "$tmp/check.out")
[ -n "$last" ] && [ "$last" -lt 201 ]; ok $? "the log lost its tail: it ends at event $last of 201"

#   The crash took the log's tail: those numbers would come again
i=1
while [ $i -le 100 ]; do echo "{\"new\": $i}"; i=$((i + 1)); done \
    | "$chorus" publish order.placed --lines --store "$tmp/producer" --timeout 30 \
        2>>"$tmp/publish.err"
ok $? "100 new events are acknowledged: $(tail -1 "$tmp/publish.err")"
await 100 has_lines "$tmp/handled" 301
[ "$(lines "$tmp/handled")" -eq 301 ]; ok $? "all 100 ran ($(lines "$tmp/handled") in all)"
[ "$(sort -u "$tmp/handled" | wc -l)" -eq 301 ]; ok $? "each under its own number"
new_low=$(tail -100 "$tmp/handled" | sort -n | head -1)
old_high=$(head -201 "$tmp/handled" | sort -n | tail -1)
[ "$new_low" -gt "$old_high" ]
ok $? "the new epoch's numbers ($new_low on) are above the old ones (up to $old_high)"
[ "$new_low" -ge 4294967297 ]; ok $? "and start a new epoch (2^32 + 1 or above)"
#   The observer follows the publisher across the epoch: no event missing
#   or doubled, no false report of a loss
await 100 has_lines "$tmp/tail.out" 301
grep -c ' order.placed #' "$tmp/tail.out" > "$tmp/tail.count"
[ "$(cat "$tmp/tail.count")" -eq 301 ]; ok $? "the observer saw all 301 events ($(cat "$tmp/tail.count"))"
! grep -q '^!!' "$tmp/tail.out"; ok $? "and no loss was reported to it"
done_testing
