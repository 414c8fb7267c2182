#!/bin/sh
#   `chorus on --persistent` hands a group's events to --workers long-lived
#   handlers, one line each way, and the group gets every event exactly
#   once and in per-key order, although one handler is killed with kill -9
#   mid-event, one answers with a line that is not a reply and one asks for
#   an event to come again: each of those events comes again and is handled
#   once. An event the handler fails for good is acknowledged, with a
#   warning, and not delivered again.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub
EVENTS=100

#   The handler, in plain sh. It finds the test's directory in $T, from
#   chorus on's environment. Each event's payload is {"key": K, "n": N}.
T=$tmp
export T
cat > "$tmp/handler.sh" <<'EOF'
#!/bin/sh
echo "$$" >> "$T/started"
str () { printf '%s\n' "$line" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
num () { printf '%s\n' "$line" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
while IFS= read -r line; do
    id=$(str id)
    n=$(num n)
    case "$n/$(num attempt)" in
    13/1)
        #   Waits for ever: the test kills it
        echo "$$" > "$T/hung.tmp"; mv "$T/hung.tmp" "$T/hung"
        read never < "$T/never" ;;
    27/1) echo "oops"; continue ;;
    41/1)
        echo "{\"id\": \"$id\", \"error\": {\"code\": \"later\", \"message\": \"not now\"}}"
        continue ;;
    55/*)
        echo "{\"id\": \"$id\", \"error\": {\"code\": \"poison\", \"message\": \"cannot read it\", \"retryable\": false}}"
        continue ;;
    esac
    echo "$(num seq) $(str key) $n $(num attempt)" >> "$T/handled"
    echo "{\"id\": \"$id\"}"
done
EOF
chmod +x "$tmp/handler.sh"
mkfifo "$tmp/never"

"$chorus" on work. --group workers --store "$tmp/workers" --workers 4 \
    --persistent "exec $tmp/handler.sh" 2>"$tmp/on.err" &
on_pid=$!
pids="$pids $on_pid"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^workers '"
ok $? "the group has joined"
await 100 has_lines "$tmp/started" 4
ok $? "with 4 long-lived handlers"

i=1
while [ $i -le $EVENTS ]; do echo "{\"key\": \"k$((i % 10))\", \"n\": $i}"; i=$((i + 1)); done \
    > "$tmp/items.jsonl"
"$chorus" publish work.item --lines --key-field key --store "$tmp/producer" --timeout 60 \
    < "$tmp/items.jsonl" 2>"$tmp/publish.err" &
publisher=$!
pids="$pids $publisher"

await 300 test -f "$tmp/hung"
ok $? "a handler holds event 13"
victim=$(cat "$tmp/hung")
kill -9 "$victim"
wait "$publisher"; rc=$?
[ $rc -eq 0 ]; ok $? "the group acknowledged all $EVENTS events: $(cat "$tmp/publish.err")"

#   --- exactly once, in order -------------------------------------------
n=$(lines "$tmp/handled")
[ "$n" -eq $((EVENTS - 1)) ]; ok $? "every event but the one failed for good was handled: $n"
dups=$(awk '{ print $1 }' "$tmp/handled" | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ]; ok $? "none twice ($dups)"
missing=$(awk -v n=$EVENTS '{ seen[$3] = 1 }
    END { for (i = 1; i <= n; i++) if (!seen[i] && i != 55) m++; print m + 0 }' "$tmp/handled")
[ "$missing" -eq 0 ]; ok $? "none missing ($missing)"
bad=$(awk '{ if ($1 <= last[$2]) bad++; last[$2] = $1 } END { print bad + 0 }' "$tmp/handled")
[ "$bad" -eq 0 ]; ok $? "events of one key in publish order, redeliveries included ($bad out of turn)"

#   --- each failure, and the event that came again ------------------------
grep -q "the --persistent handler (pid $victim) was killed by signal 9 before it answered; another starts in" \
    "$tmp/on.err"
ok $? "a warning names the killed handler's pid and signal"
awk '$3 == 13 && $4 >= 2 { found = 1 } END { exit !found }' "$tmp/handled"
ok $? "its event came again and was handled: $(awk '$3 == 13' "$tmp/handled")"
grep -qx "$victim" "$tmp/started" && [ "$(lines "$tmp/started")" -eq 5 ]
ok $? "another handler took its place ($(lines "$tmp/started") started)"
grep -q "answered event .* with a line that is not a reply, not JSON.*; the event is delivered again: oops" \
    "$tmp/on.err"
ok $? "a line that is not a reply: a warning quoting it"
awk '$3 == 27 && $4 >= 2 { found = 1 } END { exit !found }' "$tmp/handled"
ok $? "and the event came again"
awk '$3 == 41 && $4 >= 2 { found = 1 } END { exit !found }' "$tmp/handled"
ok $? "an event the handler asked to see again came again"
grep -q "failed for good, poison: cannot read it; acknowledged, not delivered again" "$tmp/on.err"
ok $? "an event failed for good is acknowledged with a warning: $(grep poison "$tmp/on.err")"
grep -q "key 'k5'" "$tmp/on.err"; ok $? "naming it"

kill "$on_pid"; wait "$on_pid"; rc=$?
[ $rc -eq 0 ]; ok $? "SIGTERM stops chorus on with exit 0"

#   --- usage --------------------------------------------------------------
err=$("$chorus" on x. --group g --exec true --persistent cat 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "give one"; ok $? "--exec with --persistent: $err"
err=$("$chorus" on x. --group g 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "missing --exec SHELL-COMMAND or --persistent"
ok $? "neither: $err"
"$chorus" on --help | grep -q '{"id": EVENT-ID}'; ok $? "chorus on --help gives the reply line"
done_testing
