#!/bin/sh
#   The coordinator survives kill -9: 200 flows of 3 steps (one a 3-item
#   for_each) run through real services (`chorus serve`) while the
#   coordinator is SIGKILLed at 10 random moments and restarted each time on
#   the same store; in the end all 200 have completed, each started once,
#   and every step's effect was applied exactly once. The steps' timeouts
#   are generous, and each service runs 4 handlers: 600 reserves arrive at
#   once, and on a loaded machine a try that waits in a queue longer than
#   its timeout is dropped unrun (its sender gave up), so that 10 tries of
#   one item could all time out and fail the flow; this test is of kills,
#   not of an overloaded service.
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

#   Whether every service named is on the mesh
effects () {
    cat "$tmp/effects-payments" "$tmp/effects-inventory" "$tmp/effects-shipping" 2>/dev/null \
        | wc -l | tr -d ' '
}

#   flow.list, one flow a line
flow_list () {
    "$chorus" send coordinator flow.list '{}' --timeout 5 2>/dev/null | sed 's/},{/}\n{/g'
}
completed () {
    n=$(flow_list | grep -c '"state":"completed"')
    echo "$n" > "$tmp/completed"
    [ "$n" -eq "$FLOWS" ]
}

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
    timeout: 30s
  - id: reserve
    service: inventory
    command: reserve
    depends_on: [charge]
    for_each: $.input.items
    input: { order_id: $.input.order_id, sku: $.item.sku }
    retry: { attempts: 10, backoff: 100ms, factor: 2, max_backoff: 1s }
    timeout: 30s
  - id: ship
    service: shipping
    command: create_label
    depends_on: [reserve]
    input: { order_id: $.input.order_id }
    retry: { attempts: 10, backoff: 100ms, factor: 2, max_backoff: 1s }
    timeout: 30s
EOF

#   A service applies an effect once per idempotency key, as one with a
#   database would; every run of the handler is logged too
cat > "$tmp/effect.sh" <<'EOF'
#!/bin/sh
cat > /dev/null
echo "$CHORUS_IDEMPOTENCY_KEY" >> "$1.runs"
grep -qxF "$CHORUS_IDEMPOTENCY_KEY" "$1" 2>/dev/null || echo "$CHORUS_IDEMPOTENCY_KEY" >> "$1"
echo '{"done": true}'
EOF
chmod +x "$tmp/effect.sh"
for service in payments:charge inventory:reserve shipping:create_label; do
    name=${service%%:*}; command=${service#*:}
    "$chorus" serve "$name" --store "$tmp/$name" --workers 4 \
        --handle "$command=$tmp/effect.sh $tmp/effects-$name" 2>"$tmp/$name.err" &
    pids="$pids $!"
done

start_coordinator
await 100 have_peers coordinator payments inventory shipping
ok $? "the coordinator and the three services have joined"

#   Starters: each flow.start is re-sent with the same idempotency key until
#   it answers, so that a start lost to a kill is made again, once
cat > "$tmp/starter.sh" <<EOF
#!/bin/sh
i=\$1
while [ \$i -le $FLOWS ]; do
    input="{\"order_id\": \"A-\$i\", \"items\": [{\"sku\": \"x\"}, {\"sku\": \"y\"}, {\"sku\": \"z\"}]}"
    tries=0
    until reply=\$("$chorus" send coordinator flow.start "{\"flow\": \"order\", \"input\": \$input}" \\
                   --idempotency "A-\$i" --timeout 10 2>"$tmp/start-\$1.err"); do
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

#   Ten kills at moments drawn from a seeded generator, 0.3 to 1.8 s apart,
#   each followed at once by a restart on the same store
kill_coordinator_ten_times 42 0.3 1.5 $((FLOWS * 5))
[ $killed -eq $KILLS ]; ok $? "the coordinator was SIGKILLed $killed times, each time alive"
[ $busy -ge 5 ]; ok $? "$busy kills came while flows were still running"

await_s 600 sh -c "[ \$(cat \"$tmp/starters-done\" 2>/dev/null | wc -l) -eq $STARTERS ]"
ok $? "the starters finished"
for pid in $starters; do wait "$pid" 2>/dev/null; done
n=$(grep -vc FAILED "$tmp/starts")
[ "$n" -eq $FLOWS ]; ok $? "every flow.start was answered: $n of $FLOWS"
[ "$n" -eq $FLOWS ] || diag "$(grep FAILED "$tmp/starts" | head -5)"
bad=$(awk '{ if ($0 !~ "\"id\":\"order-A-" $1 "\"") print $1 }' "$tmp/starts" | wc -l)
[ "$bad" -eq 0 ]; ok $? "each with the flow its idempotency key names ($bad others)"

await_s 300 completed
ok $? "all $FLOWS flows completed: $(cat "$tmp/completed")"
flow_list | grep -v '"state":"completed"' | head -3 | while read -r line; do
    id=$(echo "$line" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
    diag "not completed: $("$chorus" flow status "$id" --json 2>&1 | cut -c1-600)"
done
flow_list | grep -o '"id":"[^"]*"' | sort > "$tmp/ids"
seq 1 $FLOWS | sed 's/.*/"id":"order-A-&"/' | sort > "$tmp/expected-ids"
cmp -s "$tmp/ids" "$tmp/expected-ids"
ok $? "the coordinator knows exactly the $FLOWS flows, each once ($(lines "$tmp/ids") listed)"

#   Every effect once: 200 x (charge + 3 reserves + create_label)
i=1
while [ $i -le $FLOWS ]; do
    echo "order-A-$i/charge"
    echo "order-A-$i/reserve/0"; echo "order-A-$i/reserve/1"; echo "order-A-$i/reserve/2"
    echo "order-A-$i/ship"
    i=$((i + 1))
done | sort > "$tmp/expected"
cat "$tmp/effects-payments" "$tmp/effects-inventory" "$tmp/effects-shipping" 2>/dev/null \
    | sort > "$tmp/applied"
n=$(lines "$tmp/applied")
[ "$n" -eq $((FLOWS * 5)) ]; ok $? "$((FLOWS * 5)) effects applied: $n"
missing=$(comm -23 "$tmp/expected" "$tmp/applied" | wc -l)
extra=$(comm -13 "$tmp/expected" "$tmp/applied" | wc -l)
[ "$missing" -eq 0 ] && [ "$extra" -eq 0 ]
ok $? "exactly the expected keys: $missing missing, $extra unexpected"
for pair in payments:charge inventory:reserve shipping:ship; do
    service=${pair%%:*}; step=${pair#*:}
    steps=$(awk -F/ '{ print $2 }' "$tmp/effects-$service" | sort -u | tr '\n' ' ')
    [ "$steps" = "$step " ]; ok $? "$service applied only $step: $steps"
done
#   The services' inboxes answer re-sent commands from their record
runs=$(cat "$tmp"/effects-*.runs | wc -l | tr -d ' ')
dups=$(cat "$tmp"/effects-*.runs | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ]; ok $? "no handler ran twice for a key ($runs runs, $dups keys twice)"
done_testing
