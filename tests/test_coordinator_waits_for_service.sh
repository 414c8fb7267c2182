#!/bin/sh
#   A flow waits for a service that is down: the payments service is down
#   when order.placed is published and starts 3 s later; fulfil_order (the
#   example saga) completes and order.fulfilled is emitted. And when
#   payments fails for good, the steps that completed are compensated and
#   order.cancelled is emitted.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

#   Whether every service named is on the mesh
#   How many lines of file $2 are exactly $1
count () { grep -cxF "$1" "$2" 2>/dev/null || true; }
status () { "$chorus" send coordinator flow.status "{\"id\": \"$1\"}" --timeout 5 2>/dev/null; }
#   The flow's state (the first "state" is the flow's, the steps' follow)
state () { status "$1" | grep -o '"state":"[a-z]*"' | head -1 | cut -d'"' -f4; }
in_state () { [ "$(state "$1")" = "$2" ]; }
#   How many tries a step of a flow has taken
attempts () {
    status "$1" | grep -o "\"id\":\"$2\",\"state\":\"[a-z]*\",\"attempts\":[0-9]*" \
        | grep -o '[0-9]*$'
}

start_hub

#   The example saga, and a copy that reserves before it charges, so that a
#   completed step is there to undo when the charge fails
mkdir "$tmp/flows"
#   (its charge may take 15 s, not 5: payments comes 3 s in, and a loaded
#   machine must not turn waiting for it into a second try)
sed 's/^    timeout: 5s$/    timeout: 15s/' "$srcdir/examples/order-saga/flows/fulfil_order.yaml" \
    > "$tmp/flows/fulfil_order.yaml"
grep -q "timeout: 15s" "$tmp/flows/fulfil_order.yaml"; ok $? "the example saga, its charge given 15 s"
cat > "$tmp/flows/reserve_first.yaml" <<'EOF'
flow: fulfil_order_reserve_first
version: 1
trigger: order.placed.reserve_first
key: $.input.order_id
timeout: 2m
steps:
  - id: reserve
    service: inventory
    command: reserve
    for_each: $.input.items
    max_parallel: 4
    input: { order_id: $.input.order_id, sku: $.item.sku, qty: $.item.qty }
    retry: { attempts: 3, backoff: 100ms }
    compensate: { command: release, input: { order_id: $.input.order_id, sku: $.item.sku } }
  - id: charge
    service: payments
    command: charge
    depends_on: [reserve]
    input: { order_id: $.input.order_id, amount: $.input.total }
    retry: { attempts: 2, backoff: 100ms }
    timeout: 15s  #   payments comes 3 s in; room for a loaded machine
    compensate: { command: refund, input: { order_id: $.input.order_id, charge_id: $.steps.charge.output.charge_id } }
  - id: ship
    service: shipping
    command: create_label
    depends_on: [charge]
    input: { order_id: $.input.order_id, address: $.input.address }
    retry: { attempts: 3, backoff: 200ms }
emit: { completed: order.fulfilled, failed: order.cancelled }
EOF

#   Services record each effect once by idempotency key (FILE.runs logs
#   every run); payments declines the orders whose id starts with B-
cat > "$tmp/effect.sh" <<'EOF'
#!/bin/sh
payload=$(cat)
echo "$CHORUS_IDEMPOTENCY_KEY" >> "$1.runs"
if [ -n "$2" ] && echo "$payload" | grep -q "\"order_id\": *\"$2"; then
    echo "card declined" >&2
    exit 1
fi
grep -qxF "$CHORUS_IDEMPOTENCY_KEY" "$1" 2>/dev/null || echo "$CHORUS_IDEMPOTENCY_KEY" >> "$1"
echo "{\"ref\": \"$CHORUS_IDEMPOTENCY_KEY\"}"
EOF
chmod +x "$tmp/effect.sh"
effect="$tmp/effect.sh $tmp"
"$chorus" serve inventory --store "$tmp/inventory" --handle "reserve=$effect/reserves" \
    --handle "release=$effect/releases" 2>"$tmp/inventory.err" &
pids="$pids $!"
"$chorus" serve shipping --store "$tmp/shipping" --handle "create_label=$effect/labels" \
    2>"$tmp/shipping.err" &
pids="$pids $!"
"$chorus" on order. --group audit --store "$tmp/audit-store" \
    --exec "echo \"\$CHORUS_TOPIC \$CHORUS_KEY\" >> $tmp/audit" 2>"$tmp/audit.err" &
pids="$pids $!"
"$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync \
    >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
pids="$pids $!"
await 100 have_peers coordinator inventory shipping audit
ok $? "the coordinator, inventory, shipping and an audit group have joined"
! have_peers payments; ok $? "payments is down"

#   --- payments starts 3 s after the order ------------------------------
"$chorus" publish order.placed '{"order_id": "A-17", "total": 12.5, "address": "1 Quay St",
    "items": [{"sku": "x1", "qty": 2}, {"sku": "x2", "qty": 1}]}' --key A-17 --json \
    --store "$tmp/shop" --timeout 20 > "$tmp/placed" 2>"$tmp/publish.err" &
publish_pid=$!
pids="$pids $publish_pid"
sleep 3     #   the scenario: payments comes 3 s later
running_flow () {
    flow=$("$chorus" send coordinator flow.list '{"state": "running"}' --timeout 5 \
           | grep -o '"id":"fulfil_order-[^"]*"' | cut -d'"' -f4)
    [ -n "$flow" ]
}
#   On a busy machine the flow may not have started in those 3 s: it is
#   awaited, and payments stays down until it is there
await 200 running_flow
[ -n "$flow" ] && [ ! -s "$tmp/charges.runs" ]
ok $? "3 s after order.placed, its flow waits for payments: $flow"
"$chorus" serve payments --store "$tmp/payments" --handle "charge=$effect/charges B-" \
    --handle "refund=$effect/refunds" 2>"$tmp/payments.err" &
pids="$pids $!"
wait $publish_pid
ok $? "order.placed was acknowledged by every group"
event=$(grep -o '"id": *"[^"]*"' "$tmp/placed" | cut -d'"' -f4)
[ "$flow" = "fulfil_order-$event" ]; ok $? "the flow is the one order.placed started"

await 200 in_state "$flow" completed
ok $? "once payments is up, the flow completes"
n=$(attempts "$flow" charge)
[ "$n" = 1 ]; ok $? "the charge waited for payments within its first try ($n tries)"
[ "$n" = 1 ] || diag "$(status "$flow")" "$(tail -5 "$tmp/payments.err")" \
    "$(tail -5 "$tmp/coordinator.err" 2>/dev/null)"
[ "$(count "$flow/charge" "$tmp/charges")" -eq 1 ]; ok $? "the card was charged once"
[ "$(count "$flow/reserve/0" "$tmp/reserves")" -eq 1 ] &&
[ "$(count "$flow/reserve/1" "$tmp/reserves")" -eq 1 ]; ok $? "each item was reserved once"
[ "$(count "$flow/ship" "$tmp/labels")" -eq 1 ]; ok $? "one label was made"
! grep -q "^$flow/" "$tmp/refunds" "$tmp/releases" 2>/dev/null; ok $? "nothing was undone"
await 100 grep -qxF "order.fulfilled $flow" "$tmp/audit"
ok $? "order.fulfilled was emitted, keyed by the flow"
! grep -q "^order.cancelled $flow" "$tmp/audit"; ok $? "order.cancelled was not"

#   --- payments declines: what completed is undone ----------------------
"$chorus" publish order.placed.reserve_first '{"order_id": "B-4", "total": 80, "address": "2 Mill Ln",
    "items": [{"sku": "y1", "qty": 1}, {"sku": "y2", "qty": 3}]}' --key B-4 --json \
    --store "$tmp/shop" --timeout 20 > "$tmp/placed-b" 2>>"$tmp/publish.err"
ok $? "a second order is published to the reserve-first saga"
event=$(grep -o '"id": *"[^"]*"' "$tmp/placed-b" | cut -d'"' -f4)
flow="fulfil_order_reserve_first-$event"
await 200 in_state "$flow" failed
ok $? "when payments fails for good, flow $flow fails: $(state "$flow")"
[ "$(count "$flow/charge" "$tmp/charges.runs")" -eq 2 ]
ok $? "after the charge's 2 attempts"
[ "$(count "$flow/reserve/0" "$tmp/reserves")" -eq 1 ] &&
[ "$(count "$flow/reserve/1" "$tmp/reserves")" -eq 1 ]; ok $? "both items had been reserved"
await 100 sh -c "[ \$(grep -cx '$flow/reserve/[01]/undo' '$tmp/releases') -eq 2 ]"
ok $? "and both were released"
[ "$(count "$flow/reserve/0/undo" "$tmp/releases")" -eq 1 ] &&
[ "$(count "$flow/reserve/1/undo" "$tmp/releases")" -eq 1 ]; ok $? "each once"
! grep -q "^$flow/" "$tmp/charges" "$tmp/refunds" "$tmp/labels" 2>/dev/null
ok $? "no charge was taken, so none was refunded, and nothing shipped"
await 100 grep -qxF "order.cancelled $flow" "$tmp/audit"
ok $? "order.cancelled was emitted, keyed by the flow"
! grep -q "^order.fulfilled $flow" "$tmp/audit"; ok $? "order.fulfilled was not"
done_testing
