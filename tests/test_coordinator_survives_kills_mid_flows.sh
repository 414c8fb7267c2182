#!/bin/sh
#   Flows that sleep, await an event and call sub-flows survive kill -9:
#   200 flows, each a charge, a sleep, a fan-out of two child flows (each
#   an OCR command) and an await of its payment.settled event, then a
#   shipment, run through real services (`chorus serve`) while the
#   coordinator is SIGKILLed at 10 moments and restarted each time on the
#   same store, while flows charge, sleep, run their children and wait; the
#   settled events are published once every flow has started. In the end
#   all 200 have completed with their output, each child flow was started
#   once, and every effect was applied exactly once.
#   The waits are bounds on a hang, not on speed: under the sanitizers,
#   with another test beside it, a start takes several seconds (each
#   `chorus` process pays their start-up and leak check), so a try waits
#   10 s before it is made again, and the starters get 10 minutes.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

FLOWS=200
STARTERS=8
KILLS=10

start_hub

mkdir "$tmp/flows"
cat > "$tmp/flows/order.yaml" <<'EOF'
flow: order
version: 1
steps:
  - id: charge
    service: payments
    command: charge
    input: { order_id: $.input.order_id }
    retry: { attempts: 10, backoff: 100ms, factor: 2, max_backoff: 1s }
    timeout: 10s
  - id: pause
    sleep: 300ms
    depends_on: [charge]
  - id: docs
    flow: document
    depends_on: [pause]
    for_each: $.input.docs
    input: { order_id: $.input.order_id, doc: $.item }
  - id: settled
    await: { topic: payment.settled, match: { order_id: $.input.order_id }, timeout: 5m }
  - id: ship
    service: shipping
    command: create_label
    depends_on: [docs, settled]
    input: { order_id: $.input.order_id }
    retry: { attempts: 10, backoff: 100ms, factor: 2, max_backoff: 1s }
    timeout: 10s
output: { order: $.input.order_id, docs: $.steps.docs.output, paid: $.steps.settled.output.amount }
EOF
cat > "$tmp/flows/document.yaml" <<'EOF'
flow: document
version: 1
steps:
  - id: ocr
    service: ocr
    command: ocr_page
    input: { order_id: $.input.order_id, doc: $.input.doc }
    retry: { attempts: 10, backoff: 100ms, factor: 2, max_backoff: 1s }
    timeout: 10s
output: $.steps.ocr.output.text
EOF

#   A service applies an effect once per idempotency key, as one with a
#   database would; every run of the handler is logged too
cat > "$tmp/effect.sh" <<'EOF'
#!/bin/sh
cat > /dev/null
echo "$CHORUS_IDEMPOTENCY_KEY" >> "$1.runs"
grep -qxF "$CHORUS_IDEMPOTENCY_KEY" "$1" 2>/dev/null || echo "$CHORUS_IDEMPOTENCY_KEY" >> "$1"
echo '{"done": true, "text": "page"}'
EOF
chmod +x "$tmp/effect.sh"
for service in payments:charge ocr:ocr_page shipping:create_label; do
    name=${service%%:*}; command=${service#*:}
    "$chorus" serve "$name" --store "$tmp/$name" --workers 4 \
        --handle "$command=$tmp/effect.sh $tmp/effects-$name" 2>"$tmp/$name.err" &
    pids="$pids $!"
done
effects () {
    cat "$tmp/effects-payments" "$tmp/effects-ocr" "$tmp/effects-shipping" 2>/dev/null \
        | wc -l | tr -d ' '
}

start_coordinator
await 100 have_peers coordinator payments ocr shipping
ok $? "the coordinator and the three services have joined"

#   Starters: each flow.start is re-sent with the same start id until it
#   answers, so that a start lost to a kill is made again, once
cat > "$tmp/starter.sh" <<EOF
#!/bin/sh
i=\$1
while [ \$i -le $FLOWS ]; do
    input="{\"order_id\": \"A-\$i\", \"docs\": [\"front\", \"back\"]}"
    tries=0
    until reply=\$("$chorus" flow start order "\$input" --id "A-\$i" --timeout 10 \\
                   2>"$tmp/start-\$1.err"); do
        tries=\$((tries + 1))
        [ \$tries -ge 15 ] && { echo "\$i FAILED \$(head -1 "$tmp/start-\$1.err")" >> "$tmp/starts"; break; }
    done
    [ \$tries -lt 15 ] && echo "\$i \$reply" >> "$tmp/starts"
    i=\$((i + $STARTERS))
done
echo done >> "$tmp/starters-done"
EOF
chmod +x "$tmp/starter.sh"
starters=""
s=1
while [ $s -le $STARTERS ]; do
    "$tmp/starter.sh" $s &
    starters="$starters $!"
    s=$((s + 1))
done
pids="$pids $starters"

#   Once every flow has started (an event for a flow not started yet is
#   not kept for it), the settled events are published, durably: the
#   coordinator's group gets each once it is back
(
    await_s 600 sh -c "[ \$(cat \"$tmp/starters-done\" 2>/dev/null | wc -l) -eq $STARTERS ]"
    i=1
    while [ $i -le $FLOWS ]; do echo "{\"order_id\": \"A-$i\", \"amount\": $i}"; i=$((i + 1)); done \
        | "$chorus" publish payment.settled --lines --store "$tmp/payer" --timeout 300 \
            2>"$tmp/publish.err"
    echo $? > "$tmp/published"
) &
publisher=$!
pids="$pids $publisher"

#   Ten kills at moments drawn from a seeded generator, 0.5 to 2.5 s apart,
#   each followed at once by a restart on the same store
kill_coordinator_ten_times 7 0.5 2 $((FLOWS * 4))
[ $killed -eq $KILLS ]; ok $? "the coordinator was SIGKILLed $killed times, each time alive"
[ $busy -ge 5 ]; ok $? "$busy kills came while flows were still running"

await_s 600 sh -c "[ \$(cat \"$tmp/starters-done\" 2>/dev/null | wc -l) -eq $STARTERS ]"
ok $? "the starters finished"
n=$(grep -vc FAILED "$tmp/starts")
[ "$n" -eq $FLOWS ]; ok $? "every flow start was answered: $n of $FLOWS"
await_s 300 test -s "$tmp/published"
[ "$(cat "$tmp/published" 2>/dev/null)" = 0 ]
ok $? "the $FLOWS settled events were published and acknowledged: $(tail -1 "$tmp/publish.err")"

#   Every parent flow completed, with its output
flow_list () {
    "$chorus" send coordinator flow.list '{}' --timeout 5 2>/dev/null | sed 's/},{/}\n{/g'
}
completed () {
    n=$(flow_list | grep '"flow":"order"' | grep -c '"state":"completed"')
    echo "$n" > "$tmp/completed"
    [ "$n" -eq "$FLOWS" ]
}
await_s 300 completed
ok $? "all $FLOWS flows completed: $(cat "$tmp/completed")"
status=$("$chorus" flow status order-A-17 --json 2>/dev/null)
echo "$status" | grep -q '"output":{"order":"A-17","docs":\["page","page"\],"paid":17}'
ok $? "a flow's output names its documents and its payment: $(echo "$status" | grep -o '"output":{[^}]*}' | head -1)"

#   Every effect once: 200 x (charge + 2 OCRs + label)
for service in payments:1 ocr:2 shipping:1; do
    name=${service%%:*}; per=${service#*:}
    n=$(sort -u "$tmp/effects-$name" 2>/dev/null | wc -l | tr -d ' ')
    all=$(lines "$tmp/effects-$name")
    [ "$n" -eq $((FLOWS * per)) ] && [ "$all" -eq "$n" ]
    ok $? "$name applied $((FLOWS * per)) effects, each once: $n distinct of $all"
done
#   A child flow started twice would run its OCR under a second key
children=$(sed 's|/ocr$||' "$tmp/effects-ocr" | sort -u | wc -l | tr -d ' ')
[ "$children" -eq $((FLOWS * 2)) ]; ok $? "each of the $((FLOWS * 2)) child flows ran once ($children)"
runs=$(cat "$tmp"/effects-*.runs | wc -l | tr -d ' ')
dups=$(cat "$tmp"/effects-*.runs | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ]; ok $? "no handler ran twice for a key ($runs runs, $dups keys twice)"
done_testing
