#!/bin/sh
#   Flow definitions are versioned: after a changed definition (same name,
#   higher version) is loaded, new flows use it while a running flow
#   finishes on the version it started with, even once that version's file
#   is gone (its definition comes from the journal).
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

count () { grep -cxF "$1" "$2" 2>/dev/null || true; }
status () { "$chorus" send coordinator flow.status "{\"id\": \"$1\"}" --timeout 2 2>/dev/null; }
#   "STATE VERSION" of a flow (the first "state" is the flow's)
state () {
    out=$(status "$1")
    echo "$(echo "$out" | grep -o '"state":"[a-z]*"' | head -1 | cut -d'"' -f4)" \
         "$(echo "$out" | grep -o '"version":[0-9]*' | head -1 | cut -d: -f2)"
}
in_state () { [ "$(state "$1")" = "$2" ]; }
start_flow () {
    "$chorus" send coordinator flow.start '{"flow": "ver", "input": {}}' --idempotency "$1" \
        --timeout 5 2>/dev/null | grep -q "\"id\":\"ver-$1\""
}
stop_coordinator () {
    kill "$coord_pid" && wait "$coord_pid"
    rc=$?
    coord_pid=""
    [ $rc -eq 0 ] || diag "the coordinator exited $rc: $(tail -40 "$tmp/coordinator.err")"
    return $rc
}
has_line () { grep -qxF "$1" "$2" 2>/dev/null; }

start_hub

#   Version 1 finishes with finish_v1, version 2 with finish_v2
mkdir "$tmp/flows"
write_version () {
    cat > "$tmp/flows/ver-v$1.yaml" <<EOF
flow: ver
version: $1
steps:
  - id: prepare
    service: svc
    command: prepare
  - id: finish
    service: svc
    command: finish_v$1
    depends_on: [prepare]
    retry: { attempts: 1000, backoff: 100ms, factor: 1, max_backoff: 100ms }
    timeout: 5s
EOF
}
write_version 1

#   The service records "KEY COMMAND" once per key; finish_v1 fails (a
#   retryable error) until the release file exists, which holds its flow
cat > "$tmp/svc.sh" <<EOF
#!/bin/sh
cat > /dev/null
echo "\$CHORUS_IDEMPOTENCY_KEY \$CHORUS_COMMAND" >> "$tmp/tries"
if [ "\$CHORUS_COMMAND" = finish_v1 ] && [ ! -f "$tmp/release" ]; then
    echo "held" >&2
    exit 1
fi
grep -q "^\$CHORUS_IDEMPOTENCY_KEY " "$tmp/effects" 2>/dev/null ||
    echo "\$CHORUS_IDEMPOTENCY_KEY \$CHORUS_COMMAND" >> "$tmp/effects"
echo '{}'
EOF
chmod +x "$tmp/svc.sh"
"$chorus" serve svc --store "$tmp/svc" --handle "prepare=$tmp/svc.sh" \
    --handle "finish_v1=$tmp/svc.sh" --handle "finish_v2=$tmp/svc.sh" 2>"$tmp/svc.err" &
pids="$pids $!"
start_coordinator

#   --- a flow of version 1, held at its second step ----------------------
await 5 start_flow old
ok $? "flow ver-old is started"
await 100 has_line "ver-old/finish finish_v1" "$tmp/tries"
ok $? "its second step is tried, and held"
[ "$(state ver-old)" = "running 1" ]; ok $? "it runs on version 1: $(state ver-old)"

#   --- version 2 is added ------------------------------------------------
stop_coordinator; ok $? "the coordinator stops"
write_version 2
start_coordinator
await 100 in_state ver-old "running 1"
ok $? "restarted with version 2 loaded, ver-old still runs on version 1"
await 5 start_flow new
ok $? "a new flow ver-new is started"
await 100 in_state ver-new "completed 2"
ok $? "it runs on version 2 and completes: $(state ver-new)"
[ "$(count "ver-new/finish finish_v2" "$tmp/effects")" -eq 1 ]; ok $? "with version 2's command"
! grep -q "^ver-new/finish finish_v1" "$tmp/tries"; ok $? "and never version 1's"
[ "$(state ver-old)" = "running 1" ]; ok $? "ver-old is still held on version 1"

#   --- version 1's file is removed ---------------------------------------
stop_coordinator; ok $? "the coordinator stops again"
rm "$tmp/flows/ver-v1.yaml"
held=$(count "ver-old/finish finish_v1" "$tmp/tries")
start_coordinator
await 100 in_state ver-old "running 1"
ok $? "restarted without version 1's file, ver-old still runs on version 1"
tried_again () { [ "$(count "ver-old/finish finish_v1" "$tmp/tries")" -gt "$held" ]; }
await 100 tried_again
ok $? "and tries its held step again ($held tries before the restart)"
touch "$tmp/release"
await 150 in_state ver-old "completed 1"
ok $? "released, ver-old completes on version 1: $(state ver-old)"
[ "$(count "ver-old/finish finish_v1" "$tmp/effects")" -eq 1 ]; ok $? "with version 1's command"
! grep -q "^ver-old/finish finish_v2" "$tmp/tries"; ok $? "and never version 2's"
[ "$(count "ver-old/prepare prepare" "$tmp/effects")" -eq 1 ] &&
[ "$(count "ver-new/prepare prepare" "$tmp/effects")" -eq 1 ]
ok $? "each flow prepared once"
await 5 start_flow newer
ok $? "one more flow is started"
await 100 in_state ver-newer "completed 2"
ok $? "on version 2: $(state ver-newer)"
done_testing
