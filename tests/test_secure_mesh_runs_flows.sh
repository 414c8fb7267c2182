#!/bin/sh
#   The coordinator runs flows on a secure mesh: every member has its own
#   key made by `chorus keygen`, the coordinator is the seed (given by its
#   certificate's name), and the order saga completes. A plaintext tool and
#   a key not in the trust directory reach no one, and `chorus tail
#   --monitor` shows the refused handshake with its reason.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

keys="$tmp/keys"
trust="$tmp/trust"
mkdir "$trust"
keygen () { "$chorus" keygen "$@" --dir "$keys" >/dev/null 2>>"$tmp/keygen.err"; }
keygen coordinator --service coordinator --call payments --call inventory --call shipping &&
keygen payments --service payments &&
keygen inventory --service inventory &&
keygen shipping --service shipping &&
keygen shop --publish order. &&
keygen ops &&
keygen stranger
ok $? "chorus keygen makes a key for each member"
for name in coordinator payments inventory shipping shop ops; do
    cp "$keys/$name.cert" "$trust/"
done
export CHORUS_TRUST="$trust"
cert () { echo "$keys/$1.cert_secret"; }

#   The coordinator, with the example saga; everyone seeds with it
"$coordinator" --flows "$srcdir/examples/order-saga/flows" --store "$tmp/coordinator" --no-sync \
    --cert "$(cert coordinator)" >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
pids="$pids $!"
await 100 grep -q "ready at" "$tmp/coordinator.out"
ok $? "the coordinator starts on a secure mesh"
hub=$(sed -n 's/^chorus-coordinator ready at //p' "$tmp/coordinator.out")
export CHORUS_SEEDS="$hub@coordinator"

#   Services that record each effect once by idempotency key
cat > "$tmp/effect.sh" <<'EOF'
#!/bin/sh
cat >/dev/null
grep -qxF "$CHORUS_IDEMPOTENCY_KEY" "$1" 2>/dev/null || echo "$CHORUS_IDEMPOTENCY_KEY" >> "$1"
echo "{\"ref\": \"$CHORUS_IDEMPOTENCY_KEY\"}"
EOF
chmod +x "$tmp/effect.sh"
effect="$tmp/effect.sh $tmp"
"$chorus" serve payments --store "$tmp/payments" --cert "$(cert payments)" \
    --handle "charge=$effect/charges" --handle "refund=$effect/refunds" 2>"$tmp/payments.err" &
pids="$pids $!"
"$chorus" serve inventory --store "$tmp/inventory" --cert "$(cert inventory)" \
    --handle "reserve=$effect/reserves" --handle "release=$effect/releases" \
    2>"$tmp/inventory.err" &
pids="$pids $!"
"$chorus" serve shipping --store "$tmp/shipping" --cert "$(cert shipping)" \
    --handle "create_label=$effect/labels" 2>"$tmp/shipping.err" &
pids="$pids $!"

have_peers () {
    met=$("$chorus" peers --wait 300 --cert "$(cert ops)" 2>/dev/null)
    for service in "$@"; do
        echo "$met" | grep -q "^$service " || return 1
    done
}
await 150 have_peers coordinator payments inventory shipping
ok $? "coordinator, payments, inventory and shipping meet over CURVE"
key=$("$chorus" keygen --show "$keys/payments.cert" | awk '$1 == "key" { print $2 }')
#   A short-lived peers node may not meet every node in its wait on a busy
#   machine: asked again until it has
payments_listed () {
    "$chorus" peers --wait 300 --cert "$(cert ops)" > "$tmp/peers.txt" 2>/dev/null
    [ -n "$key" ] && grep "^payments " "$tmp/peers.txt" | grep -F " $key " | grep -q " yes "
}
await 100 payments_listed
ok $? "chorus peers shows payments with its key, authenticated"

#   --- An order runs the saga --------------------------------------------
"$chorus" publish order.placed '{"order_id": "S-1", "total": 12.5, "address": "1 Quay St",
    "items": [{"sku": "x1", "qty": 2}]}' --key S-1 --json --store "$tmp/shop" \
    --cert "$(cert shop)" --timeout 20 > "$tmp/placed" 2>"$tmp/publish.err"
ok $? "the shop's key publishes order.placed"
event=$(grep -o '"id": *"[^"]*"' "$tmp/placed" | cut -d'"' -f4)
flow="fulfil_order-$event"
state () {
    "$chorus" send coordinator flow.status "{\"id\": \"$flow\"}" --timeout 5 \
        --cert "$(cert ops)" 2>/dev/null | grep -o '"state":"[a-z]*"' | head -1 | cut -d'"' -f4
}
in_state () { [ "$(state)" = "$1" ]; }
await 300 in_state completed
ok $? "its flow completes on the secure mesh: $(state)"
grep -qx "$flow/charge" "$tmp/charges" && grep -qx "$flow/ship" "$tmp/labels"
ok $? "the card was charged and a label made"

#   The shop's certificate allows order. only
"$chorus" publish payment.settled '{}' --store "$tmp/shop" --cert "$(cert shop)" \
    --timeout 5 >/dev/null 2>"$tmp/forbidden.err"
rc=$?
[ $rc -ne 0 ] && grep -q "may not publish 'payment.settled'" "$tmp/forbidden.err"
ok $? "a topic the shop's certificate does not allow is refused (exit $rc)"

#   --- Outsiders reach no one -------------------------------------------
env -u CHORUS_TRUST -u CHORUS_SEEDS "$chorus" send coordinator flow.list '{}' --timeout 2 \
    --seed "$hub" >"$tmp/plain.out" 2>"$tmp/plain.err"
rc=$?
[ $rc -ne 0 ] && [ ! -s "$tmp/plain.out" ]
ok $? "a plaintext chorus send gets no answer (exit $rc)"
await 50 grep -q "plaintext peer on a secure mesh" "$tmp/coordinator.err"
ok $? "the coordinator logs the refused plaintext handshake"
"$chorus" send coordinator flow.list '{}' --timeout 2 --cert "$(cert stranger)" \
    >"$tmp/stranger.out" 2>"$tmp/stranger.err"
rc=$?
[ $rc -ne 0 ] && [ ! -s "$tmp/stranger.out" ]
ok $? "a key not in the trust directory gets no answer (exit $rc)"
await 50 grep -q "key not in the trust directory" "$tmp/coordinator.err"
ok $? "the coordinator logs the refused key"

#   --- chorus tail --monitor shows a refused handshake -------------------
"$chorus" tail --monitor --cert "$(cert ops)" --verbose >"$tmp/tail.out" 2>"$tmp/tail.err" &
pids="$pids $!"
await 100 grep -q "started at" "$tmp/tail.err"
tail_at=$(sed -n 's/.*started at \([^ ]*\) .*/\1/p' "$tmp/tail.err" | head -1)
[ -n "$tail_at" ]; ok $? "chorus tail --monitor runs at $tail_at"
await 100 grep -q "^-- socket dealer connected" "$tmp/tail.out"
ok $? "it prints its sockets' connections"
ops_key=$("$chorus" keygen --show "$keys/ops.cert" | awk '$1 == "key" { print $2 }')
"$chorus" send coordinator flow.list '{}' --timeout 2 --cert "$(cert stranger)" \
    --seed "$tail_at@$ops_key" >/dev/null 2>&1
await 50 grep -q "^-- socket inbox handshake-failed .*key not trusted" "$tmp/tail.out"
ok $? "and the handshake it refused to an unknown key, with the reason"
grep "handshake-failed" "$tmp/tail.out" | head -1 | diag "$(cat)"
done_testing
