#!/bin/sh
#   A start id is tied to its flow: the coordinator, not the transport's
#   reply cache, finds a flow by (name, id). The same id under another name
#   starts that flow; a repeated start answers the flow as it is now
#   (existing, its current state), after it completed and after a kill -9
#   and restart of the coordinator; a flow started the old way (by the
#   idempotency key) is still found; bad ids and business keys are refused
#   naming the problem; 1 and "1" are the same business key.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

mkdir "$tmp/flows"
for name in alpha beta alpha-b; do
    cat > "$tmp/flows/$name.yaml" <<EOF2
flow: $name
version: 1
steps:
  - id: hello
    service: greeter
    command: hello
EOF2
done
#   One live flow per order; its step no service answers, so it stays live
cat > "$tmp/flows/keyed.yaml" <<'EOF2'
flow: keyed
version: 1
key: $.input.order
steps:
  - id: wait
    service: nobody
    command: never
EOF2

#   The same, started by events
cat > "$tmp/flows/keyed_event.yaml" <<'EOF2'
flow: keyed_event
version: 1
trigger: keyed.requested
key: $.input.order
steps:
  - id: hello
    service: greeter
    command: hello
EOF2

start_coordinator () {
    "$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync --seed "$hub" \
        >>"$tmp/coordinator.out" 2>>"$tmp/coordinator.err" &
    coord_pid=$!
}
start_hub
start_coordinator
"$chorus" serve greeter --store "$tmp/greeter" --handle 'hello=echo "{\"hi\": 1}"' \
    2>"$tmp/serve.err" &
pids="$pids $!"

peers () { "$chorus" peers --wait 300 --listen tcp://127.0.0.1:0; }
joined () { peers > "$tmp/peers" && grep -q "^coordinator " "$tmp/peers" \
    && grep -q "^greeter " "$tmp/peers"; }
await 100 joined
ok $? "the coordinator and the greeter service have joined"

#   --- the same id under two names: two flows ----------------------------
out=$("$chorus" flow start alpha --id X --wait --timeout 20); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^alpha-X completed in"
ok $? "flow start alpha --id X --wait: $out"
out=$("$chorus" flow start beta --id X --json); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q '^{"id":"beta-X","existing":false,"state":"running"}$'
ok $? "flow start beta --id X starts beta-X: $out"
out=$("$chorus" flow start beta --id X --wait --timeout 20); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^beta-X completed in"
ok $? "and beta-X completes: $out"

#   --- a repeated start answers the flow as it is now --------------------
out=$("$chorus" flow start alpha --id X --json); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q '^{"id":"alpha-X","existing":true,"state":"completed"}$'
ok $? "flow start alpha --id X again after it completed: $out"

#   A flow started the old way: its id from the idempotency key
out=$("$chorus" send coordinator flow.start '{"flow": "alpha"}' --idempotency OLD1 --timeout 10)
echo "$out" | grep -q '"id":"alpha-OLD1"'; ok $? "a start by idempotency key alone: $out"
done_flow () { "$chorus" flow status "$1" | head -1 | grep -q " completed "; }
await 100 done_flow alpha-OLD1; ok $? "alpha-OLD1 completes"

#   --- after kill -9 and restart ------------------------------------------
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null
start_coordinator
started () { "$chorus" flow start alpha --id X --json --timeout 2 > "$tmp/again" 2>/dev/null; }
await 150 started
out=$(cat "$tmp/again")
echo "$out" | grep -q '^{"id":"alpha-X","existing":true,"state":"completed"}$'
ok $? "after kill -9 and restart, a repeated start finds alpha-X completed: $out"
out=$("$chorus" flow start alpha --id OLD1 --json)
echo "$out" | grep -q '^{"id":"alpha-OLD1","existing":true,"state":"completed"}$'
ok $? "and --id finds the flow started the old way: $out"
out=$("$chorus" flow start beta --id X --wait --timeout 20); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^beta-X completed in"
ok $? "flow start beta --id X --wait finds beta-X completed: $out"

#   --- NAME-ID is one id: alpha with b-Y and alpha-b with Y meet ---------
"$chorus" flow start alpha --id b-Y --wait --timeout 20 >/dev/null
err=$("$chorus" flow start alpha-b --id Y 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "conflict: flow id alpha-b-Y is taken by a flow of alpha"
ok $? "a start whose id is another flow's is refused: exit $rc, $err"

#   --- bad ids -------------------------------------------------------------
err=$("$chorus" flow start alpha --id 'a/b c' 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "bad --id 'a/b c': '/' at position 2 is not allowed; use 1 to 128 of A-Z a-z 0-9 -_.:@+=~"
ok $? "--id 'a/b c' is refused: exit $rc, $err"
err=$("$chorus" flow start alpha --id 'a b' 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "bad --id 'a b': a space at position 2 is not allowed"
ok $? "--id with a space: exit $rc, $err"
long=$(printf 'k%.0s' $(seq 129))
err=$("$chorus" flow start alpha --id "$long" 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "it is longer than 128 bytes"
ok $? "a 129-byte --id: exit $rc, $err"
err=$("$chorus" send coordinator flow.start '{"flow": "alpha", "id": "a\tb"}' 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "bad-id: bad id 'a?b': control 0x09 at position 2 is not allowed"
ok $? "the coordinator refuses a bad id too: exit $rc, $err"
n=$("$chorus" flow list --json | grep -c '"flow":"alpha"')
[ "$n" -eq 3 ]; ok $? "and starts nothing: alpha-X, alpha-OLD1, alpha-b-Y are the alpha flows ($n)"

#   --- business keys: 1 and "1" are one key -------------------------------
out=$("$chorus" flow start keyed '{"order": 1}' --id k1 --json)
echo "$out" | grep -q '^{"id":"keyed-k1","existing":false,"state":"running"}$'
ok $? "a flow with business key 1: $out"
out=$("$chorus" flow start keyed '{"order": "1"}' --id k2 --json)
echo "$out" | grep -q '^{"id":"keyed-k1","existing":true,"state":"running"}$'
ok $? "business key \"1\" finds it: $out"
out=$("$chorus" flow start keyed '{"order": "01"}' --id k3 --json)
echo "$out" | grep -q '^{"id":"keyed-k3","existing":false'
ok $? "\"01\" is another key: $out"
err=$("$chorus" flow start keyed '{"order": "a/b"}' --id k4 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "bad-key: bad business key 'a/b': '/' at position 2 is not allowed"
ok $? "a business key with '/' is refused: exit $rc, $err"
err=$("$chorus" flow start keyed '{"order": 1.5}' --id k5 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "bad-key: bad business key: must be a string or an integer, not a real"
ok $? "a real business key is refused: exit $rc, $err"
"$chorus" flow status keyed-k4 >/dev/null 2>&1; [ $? -eq 1 ]
ok $? "and no flow started for the bad key"
#   An event whose business key is bad starts no flow, and the coordinator
#   says why; the next event's flow starts, so the first was handled
publish () {
    "$chorus" publish keyed.requested "$1" --store "$tmp/pub" --listen tcp://127.0.0.1:0 \
        --settle 300 --timeout 10 >/dev/null
}
publish '{"order": "a b"}' && publish '{"order": "ok-1"}'
ok $? "two keyed.requested events are published"
event_flow () { "$chorus" flow list --json | grep '"flow":"keyed_event"' | grep -q '"completed"'; }
await 100 event_flow; ok $? "the event with a good key started its flow, which completed"
n=$("$chorus" flow list --json | grep -c '"flow":"keyed_event"')
grep -q "starts no flow of keyed_event: bad-key: bad business key 'a b': a space at position 2" \
    "$tmp/coordinator.err" && [ "$n" -eq 1 ]
ok $? "the one with 'a b' started none ($n flows), and the coordinator said why: $(grep 'starts no flow' "$tmp/coordinator.err")"
"$chorus" flow cancel keyed-k1 >/dev/null && "$chorus" flow cancel keyed-k3 >/dev/null
ok $? "the keyed flows are cancelled"
done_testing
