#!/bin/sh
#   A try is never lost, on a real mesh of chorus serve handlers. A charge
#   with a 2 s timeout and 2 tries, whose handler takes 3 s: the second
#   try reaches payments while the first still runs, and is answered with
#   its reply, so the charge runs once and the flow completes (before, the
#   retry was dropped unanswered and the flow failed with the card
#   charged). When a later step fails, the charge is refunded once. When
#   the handler outlasts both tries (6 s), the charge may have been made:
#   it is refunded too, never left "failed with the work done". And the
#   handlers see their try: CHORUS_ATTEMPT is 1, then 2 on a real retry,
#   under the same idempotency key.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

status () { "$chorus" flow status "$1" --json 2>/dev/null; }
#   The flow's state (the first "state" is the flow's, the steps' follow)
state () { status "$1" | grep -o '"state":"[a-z]*"' | head -1 | cut -d'"' -f4; }
ended () { s=$(state "$1"); [ "$s" = completed ] || [ "$s" = failed ]; }
#   How many lines of file $2 are exactly $1
count () { grep -cxF "$1" "$2" 2>/dev/null || true; }
#   What the status said once the flow ended
final () { cat "$tmp/$1.status"; }
final_state () { final "$1" | grep -o '"state":"[a-z]*"' | head -1 | cut -d'"' -f4; }

start_hub

mkdir "$tmp/flows"
#   charge: a 2 s timeout, 2 tries; refunded on undo. Its handler takes 3 s
#   (charge_slow: the second try, sent 2.1 s in, finds it running, and the
#   reply comes 0.9 s later, with 1 s to spare under load) or 6 s
#   (charge_too_slow: longer than both tries, 4.1 s)
charge_step () {
    cat <<EOF
  - id: charge
    service: payments
    command: $1
    timeout: 2s
    retry: { attempts: 2, backoff: 100ms }
    compensate: { command: refund }
EOF
}
{ printf 'flow: slow_ok\nversion: 1\nsteps:\n'; charge_step charge_slow
  printf '  - { id: ship, service: shipping, command: ship, depends_on: [charge] }\n'
} > "$tmp/flows/slow_ok.yaml"
{ printf 'flow: slow_then_fail\nversion: 1\nsteps:\n'; charge_step charge_slow
  printf '  - { id: ship, service: shipping, command: ship_fail, depends_on: [charge] }\n'
} > "$tmp/flows/slow_then_fail.yaml"
{ printf 'flow: too_slow\nversion: 1\nsteps:\n'; charge_step charge_too_slow
} > "$tmp/flows/too_slow.yaml"
{ printf 'flow: flaky\nversion: 1\nsteps:\n'; charge_step charge_flaky
} > "$tmp/flows/flaky.yaml"

#   handler.sh NAME SECONDS [fail-first|fail]: logs "KEY ATTEMPT" to NAME.runs
cat > "$tmp/handler.sh" <<'EOF'
#!/bin/sh
cat > /dev/null
echo "$CHORUS_IDEMPOTENCY_KEY $CHORUS_ATTEMPT" >> "$1.runs"
if [ "$3" = fail ] || { [ "$3" = fail-first ] && [ "$CHORUS_ATTEMPT" = 1 ]; }; then
    echo "not now" >&2
    exit 1
fi
[ "$2" = 0 ] || sleep "$2"
echo "{\"ref\": \"$CHORUS_IDEMPOTENCY_KEY\"}"
EOF
chmod +x "$tmp/handler.sh"
h="$tmp/handler.sh $tmp"
"$chorus" serve payments --store "$tmp/payments" --workers 8 \
    --handle "charge_slow=$h/charges 3" --handle "charge_too_slow=$h/charges 6" \
    --handle "charge_flaky=$h/charges 0 fail-first" --handle "refund=$h/refunds 0" \
    2>"$tmp/payments.err" &
pids="$pids $!"
"$chorus" serve shipping --store "$tmp/shipping" --workers 4 \
    --handle "ship=$h/labels 0" --handle "ship_fail=$h/labels 0 fail" \
    2>"$tmp/shipping.err" &
pids="$pids $!"
"$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync \
    >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
pids="$pids $!"
await 100 have_peers coordinator payments shipping
ok $? "the coordinator, payments and shipping have joined"

#   The four flows at once, each with its own start id (ids are one
#   namespace across flows today): slow_ok-k1, slow_then_fail-k2, ...
n=0
starts=""
for flow in slow_ok slow_then_fail too_slow flaky; do
    n=$((n + 1))
    "$chorus" flow start "$flow" --id "k$n" --timeout 10 > "$tmp/$flow.start" \
        2>"$tmp/$flow.start-err" &
    starts="$starts $!"
done
pids="$pids $starts"
wait $starts
n=0
for flow in slow_ok slow_then_fail too_slow flaky; do
    n=$((n + 1))
    [ "$(cat "$tmp/$flow.start")" = "$flow-k$n" ]
    ok $? "flow $flow starts: $(cat "$tmp/$flow.start" "$tmp/$flow.start-err")"
done
for flow in slow_ok-k1 slow_then_fail-k2 too_slow-k3 flaky-k4; do
    await 200 ended "$flow"
    rc=$?
    status "$flow" > "$tmp/$flow.status"    #   ended: it changes no more
    ok $rc "$flow ends: $(final_state "$flow")"
done

#   --- the retry came while the first try ran: answered, work done once --
flow=slow_ok-k1
[ "$(final_state $flow)" = completed ]; ok $? "$flow completed"
n=$(final $flow | grep -o "\"id\":\"charge\",\"state\":\"[a-z]*\",\"attempts\":[0-9]*" \
    | grep -o '[0-9]*$')
[ "$n" = 2 ]; ok $? "its charge was tried twice (the first try timed out): $n"
[ "$(count "$flow/charge 1" "$tmp/charges.runs")" -eq 1 ] &&
[ "$(grep -c "^$flow/charge " "$tmp/charges.runs")" -eq 1 ]
ok $? "the charge handler ran once, as try 1"
[ "$(count "$flow/ship 1" "$tmp/labels.runs")" -eq 1 ]; ok $? "and the flow went on to ship"
! grep -q "^$flow/" "$tmp/refunds.runs" 2>/dev/null; ok $? "nothing was refunded"

#   --- a later step fails: the one charge is refunded, once ---------------
flow=slow_then_fail-k2
[ "$(final_state $flow)" = failed ]; ok $? "$flow failed (its ship step failed)"
[ "$(grep -c "^$flow/charge " "$tmp/charges.runs")" -eq 1 ]; ok $? "its charge ran once"
[ "$(grep -c "^$flow/charge/undo " "$tmp/refunds.runs")" -eq 1 ]
ok $? "and was refunded once"

#   --- no answer to either try: maybe done, so refunded -------------------
flow=too_slow-k3
[ "$(final_state $flow)" = failed ]; ok $? "$flow failed (no answer within 2 tries)"
final $flow | grep -q '"id":"charge","state":"undone".*"maybe_done":true'
ok $? "its charge may have been done, and was undone: $(final $flow)"
[ "$(grep -c "^$flow/charge " "$tmp/charges.runs")" -eq 1 ]; ok $? "the charge ran once"
[ "$(grep -c "^$flow/charge/undo " "$tmp/refunds.runs")" -eq 1 ]
ok $? "and was refunded once: not failed with the work done"

#   --- a real second try: the handler sees 1, then 2, under one key -------
flow=flaky-k4
[ "$(final_state $flow)" = completed ]; ok $? "$flow completed on its second try"
[ "$(count "$flow/charge 1" "$tmp/charges.runs")" -eq 1 ] &&
[ "$(count "$flow/charge 2" "$tmp/charges.runs")" -eq 1 ]
ok $? "CHORUS_ATTEMPT was 1 on the first try and 2 on the retry, with the same key"
[ "$(grep -c "^$flow/charge " "$tmp/charges.runs")" -eq 2 ]; ok $? "and no other try"
done_testing
