#!/bin/sh
#   A sleep: step survives kill -9 of the coordinator on a real mesh: a
#   flow asleep for 12 s when the coordinator is SIGKILLed and restarted
#   wakes at its original time (not 12 s after the restart), one whose wake
#   time (RFC 3339, from its input) passed while the coordinator was down
#   wakes as soon as it is back, and a time that is no time fails the flow
#   with bad-sleep and its compensation.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

now_ms () { date +%s%3N; }

mkdir "$tmp/flows"
cat > "$tmp/flows/nap.yaml" <<'EOF'
flow: nap
version: 1
steps:
  - id: before
    service: clock
    command: tick
    compensate: { command: untick }
  - id: nap
    sleep: 12s
    depends_on: [before]
  - id: after
    service: clock
    command: tock
    depends_on: [nap]
EOF
cat > "$tmp/flows/alarm.yaml" <<'EOF'
flow: alarm
version: 1
steps:
  - id: before
    service: clock
    command: tick
    compensate: { command: untick }
  - id: nap
    sleep: { until: $.input.at }
    depends_on: [before]
  - id: after
    service: clock
    command: tock
    depends_on: [nap]
EOF

#   Each run of a handler: its key and when it ran (ms)
cat > "$tmp/log.sh" <<EOF
#!/bin/sh
cat > /dev/null
echo "\$CHORUS_IDEMPOTENCY_KEY \$(date +%s%3N)" >> "$tmp/\$1"
echo '{}'
EOF
chmod +x "$tmp/log.sh"

start_hub
"$chorus" serve clock --store "$tmp/clock" --handle "tick=$tmp/log.sh ticks" \
    --handle "tock=$tmp/log.sh tocks" --handle "untick=$tmp/log.sh unticks" \
    2>"$tmp/clock.err" &
pids="$pids $!"
start_coordinator
await 100 have_peers coordinator clock
ok $? "the coordinator and the clock service have joined"

completed () { "$chorus" flow status "$1" 2>/dev/null | head -1 | grep -q " completed "; }
#   ran FILE KEY: when the handler ran for KEY, in ms
ran () { awk -v key="$2" '$1 == key { print $2; exit }' "$tmp/$1" 2>/dev/null; }

#   --- asleep through a kill -9 and a restart --------------------------------
#   Two flows asleep: nap for 12 s, then alarm until a time (RFC 3339) 4 s
#   away. The coordinator is killed while both sleep and kept down until
#   the alarm's time has passed; it is back before the nap's.
"$chorus" flow start nap --id a >/dev/null
ok $? "a flow with a 12 s sleep is started"
#   One status a poll: whether the nap sleeps, and until when
nap_sleeps () {
    "$chorus" flow status nap-a --json > "$tmp/nap.json" 2>/dev/null \
        && grep -q '"id":"nap","state":"sleeping"' "$tmp/nap.json"
}
await 100 nap_sleeps; ok $? "the nap sleeps"
wakes=$(grep -o '"wakes":[0-9]*' "$tmp/nap.json" | cut -d: -f2)
started=$(ran ticks nap-a/before)
[ -n "$wakes" ] && [ -n "$started" ] && [ "$wakes" -ge $((started + 12000)) ] \
    && [ "$wakes" -le $((started + 14000)) ]
ok $? "its wake time is 12 s after the step before ($started -> $wakes)"

at=$(($(now_ms) + 4000))
rfc=$(date -u -d "@$((at / 1000))" +%Y-%m-%dT%H:%M:%S).$(printf %03d $((at % 1000)))Z
"$chorus" flow start alarm "{\"at\": \"$rfc\"}" --id b >/dev/null
ok $? "a flow that sleeps until $rfc is started"
#   The alarm's wake time is in its input: whether its sleep was journaled
#   before the kill or starts after the restart, it is the same time
ticked () { [ -n "$(ran ticks alarm-b/before)" ]; }
await 100 ticked; ok $? "the alarm's first step ran"

killed=$(now_ms)
kill -9 "$coord_pid"
ok $? "the coordinator is SIGKILLed"
wait "$coord_pid" 2>/dev/null
[ "$killed" -lt "$at" ] && [ "$killed" -lt "$wakes" ]
ok $? "before either wake time ($((at - killed)) ms before the alarm's)"
down () { [ "$(now_ms)" -gt $((at + 1000)) ]; }
await 100 down
restarted=$(now_ms)
start_coordinator
[ "$restarted" -lt "$wakes" ]
ok $? "restarted on the same store, past the alarm's time, $((wakes - restarted)) ms before the nap's"
[ -z "$(ran tocks alarm-b/after)" ] && [ -z "$(ran tocks nap-a/after)" ]
ok $? "neither woke while the coordinator was down"
out=$("$chorus" flow status nap-a | grep "^  nap ")
echo "$out" | grep -q "^  nap  *sleeping  *attempts 0  *wakes [0-9-]*T[0-9:.]*Z  null$"
ok $? "flow status: the nap still sleeps, and says until when: $out"

await_s 20 completed alarm-b; ok $? "the alarm completes"
woke=$(ran tocks alarm-b/after)
[ -n "$woke" ] && [ "$woke" -ge "$restarted" ] && [ "$woke" -lt $((restarted + 5000)) ]
ok $? "woken as soon as the coordinator was back ($((woke - restarted)) ms after the restart)"

await_s 25 completed nap-a; ok $? "the nap completes"
woke=$(ran tocks nap-a/after)
[ -n "$woke" ] && [ "$woke" -ge "$wakes" ]; ok $? "the step after the nap ran after it woke"
[ -n "$woke" ] && [ "$woke" -lt $((restarted + 12000)) ]
ok $? "at the original time, not 12 s after the restart (woke $((woke - wakes)) ms late,\
 $((restarted + 12000 - woke)) ms before a sleep from the restart would end)"
n=$(grep -c "^nap-a/before " "$tmp/ticks")
[ "$n" -eq 1 ]; ok $? "the step before the nap ran once ($n)"
out=$("$chorus" flow status nap-a | grep "^  nap ")
echo "$out" | grep -q "^  nap  *done  *attempts 0  *null$"; ok $? "flow status: the nap is done: $out"

#   --- a time that is no time fails the flow, which compensates ------------
out=$("$chorus" flow start alarm '{"at": "next tuesday"}' --id c --wait --timeout 20); rc=$?
[ $rc -eq 1 ]; ok $? "flow start --wait exits 1 ($rc)"
echo "$out" | grep -q "^alarm-c failed in [0-9]* ms: nap: bad-sleep: sleep until \$.input.at: \"next tuesday\" is not a time: the date is not YYYY-MM-DD"
ok $? "and says why: $out"
[ -n "$(ran unticks alarm-c/before/undo)" ]; ok $? "the step before was undone"
[ -z "$(ran tocks alarm-c/after)" ]; ok $? "the step after never ran"
done_testing
