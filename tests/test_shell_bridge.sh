#!/bin/sh
#   The shell bridge keeps the node's promises: `chorus serve` answers
#   commands (errors, dedupe by idempotency key) and `chorus on` handles a
#   group's events (each once, per-key order, redelivery after a failing
#   exit), driven by `chorus send` and `chorus publish`; publish waits for
#   every group, or exits 3 leaving the rest in its store for next time;
#   `chorus tail --from earliest --json --count N` shows each event once,
#   in per-publisher order.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub

#   --- serve and send ---------------------------------------------------
cat > "$tmp/charge.sh" <<EOF
#!/bin/sh
echo "\$CHORUS_IDEMPOTENCY_KEY" >> "$tmp/charges"
amount=\$(sed 's/.*"amount": *\\([0-9]*\\).*/\\1/')
echo "{\"charged\": \$amount, \"attempt\": \$CHORUS_ATTEMPT}"
EOF
chmod +x "$tmp/charge.sh"
"$chorus" serve payments --store "$tmp/payments" --handle "charge=$tmp/charge.sh" \
    --handle 'refund=echo "card expired" >&2; exit 3' --handle 'bad=echo not-json' \
    2>"$tmp/serve.err" &
pids="$pids $!"

out=$("$chorus" send payments charge '{"amount": 42}' --timeout 10)
ok $? "chorus send gets a reply from chorus serve"
echo "$out" | grep -q '"charged": *42'; ok $? "the reply is the handler's JSON: $out"

err=$("$chorus" send payments refund '{}' --timeout 10 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ]; ok $? "a failing handler is an error reply: exit $rc"
echo "$err" | grep -q "exit-3" && echo "$err" | grep -q "card expired"
ok $? "with code exit-3 and the handler's stderr: $err"

err=$("$chorus" send payments bad --timeout 10 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "bad-output"; ok $? "output that is not JSON: $err"

err=$("$chorus" send payments nosuch --timeout 10 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "unknown-command"; ok $? "unknown command: $err"

first=$("$chorus" send payments charge '{"amount": 7}' --idempotency order-9/charge --timeout 10)
second=$("$chorus" send payments charge '{"amount": 7}' --idempotency order-9/charge --timeout 10)
[ "$first" = "$second" ]; ok $? "a repeated command gets the same reply"
n=$(grep -c '^order-9/charge$' "$tmp/charges")
[ "$n" -eq 1 ]; ok $? "and its handler ran once ($n)"

err=$("$chorus" send ledger post '{}' --timeout 1 2>&1 >/dev/null); rc=$?
[ $rc -eq 4 ] && echo "$err" | grep -q "timed out"; ok $? "no ledger service: timeout, exit $rc"

#   --- on and publish ---------------------------------------------------
cat > "$tmp/on.sh" <<EOF
#!/bin/sh
#   Fails the first delivery of every 7th event, to force redeliveries
if [ \$((CHORUS_SEQ % 7)) -eq 0 ] && [ ! -f "$tmp/failed-\$CHORUS_SEQ" ]; then
    touch "$tmp/failed-\$CHORUS_SEQ"; exit 1
fi
echo "\$CHORUS_SEQ \$CHORUS_KEY \$CHORUS_TOPIC" >> "$tmp/billed"
EOF
chmod +x "$tmp/on.sh"
start_on () {
    "$chorus" on order. --group billing --store "$tmp/billing" --exec "$tmp/on.sh" \
        2>"$tmp/on.err" &
    on_pid=$!
    pids="$pids $on_pid"
}
start_on
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q billing"
ok $? "the billing group has joined"

i=0
while [ $i -lt 100 ]; do
    echo "{\"id\": \"order-$((i % 10))\", \"n\": $i}"; i=$((i + 1))
done > "$tmp/orders.jsonl"
"$chorus" publish order.placed --lines --key-field id --store "$tmp/orders" --timeout 30 \
    < "$tmp/orders.jsonl" 2>"$tmp/publish.err"
rc=$?
[ $rc -eq 0 ]; ok $? "chorus publish --lines exits 0 once the group acknowledged all 100"
grep -q "delivered 100 events to billing" "$tmp/publish.err"
ok $? "and says so, naming the group: $(cat "$tmp/publish.err")"
n=$(lines "$tmp/billed")
[ "$n" -eq 100 ]; ok $? "each event handled once: $n lines"
dups=$(awk '{print $1}' "$tmp/billed" | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ]; ok $? "no event handled twice"
[ "$(ls "$tmp"/failed-* | wc -l)" -eq 14 ]; ok $? "14 events failed once and came again"
order_ok=$(awk '{ if ($1 < last[$2]) bad++; last[$2] = $1 } END { print bad + 0 }' "$tmp/billed")
[ "$order_ok" -eq 0 ]; ok $? "per-key order kept, redeliveries included"

#   An audit group that subscribes to payments only meets the publisher's
#   store once, then goes away: it is never due an order, even after the
#   publisher's restart
"$chorus" on payment. --group audit --store "$tmp/audit" --exec true 2>"$tmp/audit.err" &
audit_pid=$!
pids="$pids $audit_pid"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q audit"
"$chorus" publish payment.settled '{"id": "p-1"}' --store "$tmp/orders" --timeout 30 \
    2>"$tmp/publish-audit.err"
ok $? "the audit group acknowledges a payment event: $(cat "$tmp/publish-audit.err")"
kill "$audit_pid"; wait "$audit_pid" 2>/dev/null

#   The group goes away: publish times out with exit 3 and keeps the event
kill "$on_pid"; wait "$on_pid" 2>/dev/null
err=$("$chorus" publish order.placed '{"id": "order-late"}' --key order-late \
      --store "$tmp/orders" --timeout 2 2>&1); rc=$?
[ $rc -eq 3 ]; ok $? "with the group down, publish exits 3 after --timeout"
echo "$err" | grep -q "stored durably; group billing (1 pending, no live instance) has not acknowledged yet"
ok $? "and says what is true, naming the group: $err"
echo "$err" | grep -q audit; [ $? -ne 0 ]; ok $? "and not the absent audit group, which is not due orders"

start_on
"$chorus" publish order.placed '{"id": "order-next"}' --key order-next --store "$tmp/orders" \
    --timeout 30
ok $? "the next publish on the same store delivers the kept event too"
grep -q "order-late" "$tmp/billed" && grep -q "order-next" "$tmp/billed"
ok $? "both reached the group"
err=$("$chorus" publish payment.refunded '{"id": "p-2"}' --store "$tmp/orders" --timeout 1 2>&1)
rc=$?
[ $rc -eq 3 ] && echo "$err" | grep -q "stored durably; group audit (1 pending, no live instance)" \
    && ! echo "$err" | grep -q billing
ok $? "a payment event is pending for the absent audit group alone: $err"

#   --- tail -------------------------------------------------------------
"$helper" --service=sensors --seed="$hub" --publish=300 --keys=7 --topic=sensor.read \
    --store="$tmp/sensors" > "$tmp/sensors.out" &
pids="$pids $!"
await 100 grep -q PUBLISHED "$tmp/sensors.out"
"$chorus" tail --topic sensor. --from earliest --json --count 300 > "$tmp/tail.json" &
tail_pid=$!
await 200 sh -c "! kill -0 $tail_pid 2>/dev/null"
ok $? "chorus tail --from earliest --count 300 finished"
n=$(grep -c '"topic"' "$tmp/tail.json")
[ "$n" -eq 300 ]; ok $? "it printed 300 events ($n)"
seqs=$(grep -o '"seq": *[0-9]*' "$tmp/tail.json" | grep -o '[0-9]*$' | tr '\n' ' ')
expected=$(seq 1 300 | tr '\n' ' ')
[ "$seqs" = "$expected" ]; ok $? "each once, in the publisher's order"
done_testing
