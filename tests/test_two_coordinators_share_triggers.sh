#!/bin/sh
#   Two coordinators in the same group share the trigger events: 100
#   events, each with its own order id and key, start exactly 100 flows in
#   all, each step's effect applied once, and both coordinators start some.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
pid_a=""
pid_b=""

EVENTS=100

#   How many instances of a service are on the mesh
instances () { "$chorus" peers --wait 300 2>/dev/null | grep -c "^$1 "; }
have () { [ "$(instances "$1")" -eq "$2" ]; }

start_hub

mkdir "$tmp/flows"
cat > "$tmp/flows/invoice.yaml" <<'EOF'
flow: invoice
version: 1
trigger: order.placed
key: $.input.order_id
steps:
  - id: bill
    service: billing
    command: bill
    input: { order_id: $.input.order_id }
    retry: { attempts: 5, backoff: 100ms }
    timeout: 10s
emit: { completed: invoice.done }
EOF

#   Billing records "KEY ORDER" once per idempotency key (FLOW/bill)
cat > "$tmp/bill.sh" <<EOF
#!/bin/sh
order=\$(sed -n 's/.*"order_id": *"\([^"]*\)".*/\1/p')
grep -q "^\$CHORUS_IDEMPOTENCY_KEY " "$tmp/billed" 2>/dev/null ||
    echo "\$CHORUS_IDEMPOTENCY_KEY \$order" >> "$tmp/billed"
echo '{"billed": true}'
EOF
chmod +x "$tmp/bill.sh"
"$chorus" serve billing --store "$tmp/billing" --handle "bill=$tmp/bill.sh" \
    2>"$tmp/billing.err" &
pids="$pids $!"

#   Coordinator a or b, each with its own store, the same flows
start_coordinator () {
    "$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator-$1" --no-sync \
        >>"$tmp/coordinator-$1.out" 2>>"$tmp/coordinator-$1.err" &
    eval "pid_$1=\$!"
}
#   Each completed flow announces itself; the listing waits for all of them
"$chorus" on invoice.done --group done-watch --store "$tmp/done-watch" \
    --exec "cat >> $tmp/done" 2>"$tmp/done.err" &
pids="$pids $!"

start_coordinator a
start_coordinator b
await 100 have coordinator 2
ok $? "two coordinators have joined"
await 100 have billing 1
ok $? "billing has joined"

i=1
while [ $i -le $EVENTS ]; do echo "{\"order_id\": \"O-$i\"}"; i=$((i + 1)); done \
    > "$tmp/orders.jsonl"
"$chorus" publish order.placed --lines --key-field order_id --store "$tmp/shop" --timeout 30 \
    < "$tmp/orders.jsonl" 2>"$tmp/publish.err"
ok $? "$EVENTS order.placed events published and acknowledged by the group"

await 300 has_lines "$tmp/billed" $EVENTS
ok $? "$EVENTS orders were billed: $(lines "$tmp/billed")"
sed 's/^\([^/]*\)\/bill .*/\1/' "$tmp/billed" | sort > "$tmp/billed-flows"
n=$(sort -u "$tmp/billed-flows" | wc -l)
[ "$n" -eq $EVENTS ]; ok $? "by $EVENTS distinct flows ($n)"
awk '{ print $2 }' "$tmp/billed" | sort > "$tmp/billed-orders"
sed 's/.*"\(O-[0-9]*\)".*/\1/' "$tmp/orders.jsonl" | sort > "$tmp/expected-orders"
cmp -s "$tmp/billed-orders" "$tmp/expected-orders"
ok $? "each order billed exactly once"

#   Every flow has completed before a coordinator is stopped, so that each
#   lists all of its own
await 300 has_lines "$tmp/done" $EVENTS
ok $? "every flow announced its completion: $(lines "$tmp/done")"

#   Each coordinator answers for its own flows: ask one while the other is
#   stopped, then the other way round
stop () {
    eval "pid=\$pid_$1"
    kill "$pid" && wait "$pid"
    eval "pid_$1="
}
list_completed () {
    listed=$("$chorus" send coordinator flow.list '{"state": "completed"}' --timeout 10 \
             2>/dev/null) || return 1
    echo "$listed" | grep -o '"id":"[^"]*"' | cut -d'"' -f4 | sort > "$tmp/listed-$1"
}
stop b; ok $? "coordinator b stops"
await 100 have coordinator 1
await 50 list_completed a; ok $? "coordinator a lists its flows"
start_coordinator b
await 100 have coordinator 2
stop a; ok $? "then coordinator a stops"
await 100 have coordinator 1
await 50 list_completed b; ok $? "and coordinator b, restarted, lists its own"
a=$(lines "$tmp/listed-a"); b=$(lines "$tmp/listed-b")
#   Rendezvous hashing of 100 distinct keys over two live instances
[ "$a" -ge 1 ] && [ "$b" -ge 1 ]; ok $? "both coordinators started flows: $a and $b"
[ $((a + b)) -eq $EVENTS ]; ok $? "$a + $b = $EVENTS flows completed in all"
both=$(comm -12 "$tmp/listed-a" "$tmp/listed-b" | wc -l)
[ "$both" -eq 0 ]; ok $? "no flow ran on both ($both)"
sort "$tmp/listed-a" "$tmp/listed-b" | cmp -s - "$tmp/billed-flows"
ok $? "and they are the flows that billed"
done_testing
