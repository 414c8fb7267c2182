#!/bin/sh
#   await steps on a real mesh. An event published with `chorus publish`
#   before the await starts is kept with the flow, survives a kill -9 of the
#   coordinator, and completes the await once it starts; an event published
#   while the coordinator is down (killed while the flow awaits) reaches it
#   once it is back; an approval sent with `chorus flow signal` completes
#   the await that waits for it (sent before or while it waits), once per
#   --id; a signal to a finished flow is refused (exit 3); an await that
#   gets nothing within its timeout fails the flow with await-timeout.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

mkdir "$tmp/flows" "$tmp/go"
cat > "$tmp/flows/pay.yaml" <<'EOF'
flow: pay
version: 1
steps:
  - id: charge
    service: shop
    command: hold
  - id: settled
    depends_on: [charge]
    await: { topic: payment.settled, match: { order_id: $.input.order_id }, timeout: 1m }
  - id: ship
    service: shop
    command: echo
    depends_on: [settled]
    input: { paid: $.steps.settled.output.amount }
EOF
cat > "$tmp/flows/approve.yaml" <<'EOF'
flow: approve
version: 1
steps:
  - id: ask
    service: shop
    command: hold
  - id: approved
    depends_on: [ask]
    await: { signal: approval, timeout: 1m }
  - id: act
    service: shop
    command: echo
    depends_on: [approved]
    input: $.steps.approved.output
EOF
cat > "$tmp/flows/short.yaml" <<'EOF'
flow: short
version: 1
steps:
  - id: settled
    await: { topic: payment.settled, match: { order_id: $.input.order_id }, timeout: 1s }
EOF

start_coordinator () {
    "$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync --seed "$hub" \
        >>"$tmp/coordinator.out" 2>>"$tmp/coordinator.err" &
    coord_pid=$!
}
start_hub
start_coordinator
#   hold answers once the test lets it (a file named by the task's key)
"$chorus" serve shop --store "$tmp/shop" \
    --handle "hold=k=\$(echo \"\$CHORUS_IDEMPOTENCY_KEY\" | tr / _); \
while [ ! -f '$tmp/go/'\"\$k\" ]; do sleep 0.05; done; echo '{}'" \
    --handle 'echo=cat' 2>"$tmp/serve.err" &
pids="$pids $!"
go () { touch "$tmp/go/$1"; }

joined () { have_peers coordinator shop; }
await 100 joined
ok $? "the coordinator and the shop service have joined"

#   flow status --json of a flow, in $tmp/status; and a condition on it
status () { "$chorus" flow status "$1" --json --timeout 2 > "$tmp/status" 2>/dev/null; }
state_is () { status "$1" && grep -q "^{\"id\":\"$1\",\"flow\":\"[a-z]*\",\"version\":1,\"state\":\"$2\"" "$tmp/status"; }
step_is () { status "$1" && grep -q "\"id\":\"$2\",\"state\":\"$3\"" "$tmp/status"; }
received () { status "$1" && grep -q "\"received\":\[.*\"id\":\"$2\"" "$tmp/status"; }
#   publish [--json]: the events on stdin, one JSON a line, on payment.settled
publish () {
    "$chorus" publish payment.settled --lines --store "$tmp/pub" --listen tcp://127.0.0.1:0 \
        --settle 300 --timeout 20 "$@"
}

#   --- an event before the await starts, kept through a kill -9 ----------
"$chorus" flow start pay '{"order_id": "A1"}' --id A1 >/dev/null
await 100 step_is pay-A1 charge running
ok $? "pay-A1 waits in charge, before its await"
printf '%s\n' '{"order_id": "Z9", "amount": 1}' '{"order_id": "A1", "amount": 12}' \
    | publish >>"$tmp/publish.out" 2>&1
ok $? "payment.settled for another order, then for A1, are published and delivered"
status pay-A1
grep -q '"received":\[{"kind":"event","name":"payment.settled","id":"[^"]*","step":"settled"' \
    "$tmp/status" && [ "$(grep -o '"kind":"event"' "$tmp/status" | wc -l)" -eq 1 ]
ok $? "pay-A1 keeps A1's event for its await, and only that one"
grep -q '"amount":12' "$tmp/status"; ok $? "with its payload"
step_is pay-A1 settled pending; ok $? "the await has not started"

kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null
start_coordinator
await 150 step_is pay-A1 charge running
ok $? "after kill -9 and restart, pay-A1 still waits in charge"
grep -q '"amount":12' "$tmp/status"; ok $? "and the event is still kept"
go pay-A1_charge
await 100 state_is pay-A1 completed
ok $? "once charge answers, the await takes the kept event and the flow completes"
grep -q '"id":"settled","state":"done","attempts":1,"error":null,"started":[0-9]*,"finished":[0-9]*,"output":{"order_id":"A1","amount":12}}' \
    "$tmp/status"
ok $? "the await's output is the event's payload"
grep -q '"id":"ship","state":"done",.*"output":{"paid":12}}' "$tmp/status"
ok $? "and the next step got it: ship paid 12"

#   --- an event published while the coordinator is down -----------------
#   (and one more for A1, which has ended)
"$chorus" flow start pay '{"order_id": "B2"}' --id B2 >/dev/null
go pay-B2_charge
await 100 step_is pay-B2 settled running
ok $? "pay-B2 awaits payment.settled"
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null
printf '%s\n' '{"order_id": "B2", "amount": 30}' '{"order_id": "A1", "amount": 99}' \
    | publish --json >"$tmp/down.out" 2>&1 &
publisher=$!
pids="$pids $publisher"
#   Published (durable in the publisher's store) while no coordinator runs;
#   the publisher waits for the coordinator's group to acknowledge them
await 100 has_lines "$tmp/down.out" 2
ok $? "payment.settled for B2 and A1 are published while the coordinator is down"
start_coordinator
wait "$publisher"; rc=$?
[ $rc -eq 0 ]; ok $? "the events published while the coordinator was down are delivered once it is back (exit $rc)"
await 100 state_is pay-B2 completed
ok $? "and completes pay-B2's await"
grep -q '"output":{"paid":30}' "$tmp/status"; ok $? "with its payload"

#   --- an event after the flow ended is dropped -----------------------------
status pay-A1 && grep -q '"state":"completed"' "$tmp/status" && ! grep -q '"amount":99' "$tmp/status"
ok $? "and pay-A1, which ended, does not take it"

#   --- signals: sent before the await starts, and while it waits ---------
"$chorus" flow start approve --id S1 >/dev/null
await 100 step_is approve-S1 ask running
out=$("$chorus" flow signal approve-S1 approval '{"by": "ann"}' --id sig-1); rc=$?
[ $rc -eq 0 ] && [ "$out" = "approve-S1 approval kept" ]
ok $? "a signal before the await starts is kept: exit $rc, $out"
out=$("$chorus" flow signal approve-S1 approval '{"by": "bob"}' --id sig-1); rc=$?
[ $rc -eq 0 ] && [ "$out" = "approve-S1 approval kept (sent before)" ]
ok $? "the same --id again is the same signal: exit $rc, $out"
go approve-S1_ask
await 100 state_is approve-S1 completed
ok $? "once ask answers, the await takes the kept signal and the flow completes"
grep -q '"id":"act","state":"done",.*"output":{"by":"ann"}}' "$tmp/status"
ok $? "act got the first signal's payload (ann, not bob)"

"$chorus" flow start approve --id S2 >/dev/null
go approve-S2_ask
await 100 step_is approve-S2 approved running
ok $? "approve-S2 awaits its approval"
out=$("$chorus" flow signal approve-S2 approval '{"by": "cy"}' --json); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q '^{"id":"approve-S2","state":"[a-z]*","signal":"approval","signal_id":"[^"]*","existing":false,"step":"approved"}$'
ok $? "a signal while it waits is taken by the await: exit $rc, $out"
await 100 state_is approve-S2 completed
ok $? "and the flow completes"

#   --- refusals ----------------------------------------------------------------
err=$("$chorus" flow signal approve-S2 approval '{}' 2>&1 >/dev/null); rc=$?
[ $rc -eq 3 ] && echo "$err" | grep -q "ended: flow approve-S2 is completed: only a running flow takes signals"
ok $? "a signal to a finished flow is refused: exit $rc, $err"
err=$("$chorus" flow signal nosuch-flow approval 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "not-found"
ok $? "a signal to an unknown flow: exit $rc, $err"
err=$("$chorus" flow signal approve-S2 'appro val' 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "bad signal name 'appro val': use 1 to 64 of A-Z a-z 0-9 . _ -"
ok $? "a bad signal name: exit $rc, $err"
err=$("$chorus" flow signal approve-S2 approval '{oops' 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "JSON argument"
ok $? "bad JSON: exit $rc, $err"

#   --- a timeout -------------------------------------------------------------
"$chorus" flow start short '{"order_id": "T1"}' --id T1 >/dev/null
await 100 state_is short-T1 failed
ok $? "an await that gets nothing within its timeout fails the flow"
grep -q '"error":{"code":"await-timeout","message":"no matching event on '"'"'payment.settled'"'"' within 1000 ms","step":"settled"}' "$tmp/status"
ok $? "with await-timeout naming the topic and the time"

done_testing
