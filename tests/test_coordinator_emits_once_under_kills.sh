#!/bin/sh
#   A flow's event is never lost nor doubled: 500 flows, each started by a
#   trigger event and emitting order.done when it completes, run while the
#   coordinator is SIGKILLed 10 times and restarted on the same store. In
#   the end a consumer group has received every flow's order.done, and
#   each flow's with exactly one event id: an event re-published after a
#   kill carries the id it was first published with, and the node stores
#   it once.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""
#   The journal is not fsync'd, and the flows have 60 s to finish after
#   the kills, unless the test that sources this one says otherwise
#   (test_coordinator_emits_once_under_kills_fsynced.sh)
: "${journal_sync=--no-sync}"
: "${done_within:=60}"
FLOWS=500
KILLS=10

#   Flows whose order.done the consumer has seen (its key is the flow's id)
done_flows () { cut -d' ' -f1 "$tmp/done" 2>/dev/null | sort -u | wc -l | tr -d ' '; }
all_done () { n=$(done_flows); echo "$n" > "$tmp/done-count"; [ "$n" -eq $FLOWS ]; }

mkdir "$tmp/flows"
cat > "$tmp/flows/order.yaml" <<'EOF'
flow: order
version: 1
trigger: order.placed
steps:
  - id: charge
    service: payments
    command: charge
    input: { n: $.input.n }
    retry: { attempts: 20, backoff: 100ms, factor: 2, max_backoff: 1s }
    timeout: 10s
emit: { completed: order.done }
EOF

start_hub
"$chorus" serve payments --store "$tmp/payments" \
    --handle "charge=cat > /dev/null; echo '{\"charged\": true}'" 2>"$tmp/payments.err" &
pids="$pids $!"
#   The consumer: one line per delivery, "FLOW-ID EVENT-ID"
"$chorus" on order.done --group audit --store "$tmp/audit" \
    --exec "echo \"\$CHORUS_KEY \$CHORUS_EVENT_ID\" >> $tmp/done" 2>"$tmp/audit.err" &
pids="$pids $!"

start_coordinator () {
    "$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" $journal_sync --verbose \
        >>"$tmp/coordinator.out" 2>>"$tmp/coordinator.err" &
    coord_pid=$!
}
start_coordinator
await 100 have_peers coordinator payments audit
ok $? "the coordinator, the service and the consumer have joined"

#   The trigger events, published durably: the producer delivers them to
#   the coordinator group whichever of its lives is there. The first one
#   goes alone, so that the producer's store knows the group before a kill
#   can hide it.
echo '{"n": 1}' | "$chorus" publish order.placed --lines --store "$tmp/producer" --timeout 30 \
    2>"$tmp/publish.err"
ok $? "the producer has met the coordinator group: $(tail -1 "$tmp/publish.err")"
#   The rest come 50 at a time over about 8 s, so that the flows run
#   through the kills however fast this machine runs them
i=2
while [ $i -le $FLOWS ]; do
    echo "{\"n\": $i}"
    i=$((i + 1))
    [ $((i % 50)) -eq 0 ] && sleep 0.8
done | "$chorus" publish order.placed --lines --store "$tmp/producer" --timeout 120 \
    2>"$tmp/publish.err" &
publisher=$!
pids="$pids $publisher"

#   Ten kills at moments drawn from a seeded generator, 0.3 to 1.5 s apart,
#   each followed at once by a restart on the same store
awk 'BEGIN { srand (8); for (i = 0; i < 10; i++) printf "%.2f\n", 0.3 + 1.2 * rand () }' \
    > "$tmp/moments"
killed=0
busy=0
for moment in $(cat "$tmp/moments"); do
    sleep "$moment"
    if kill -9 "$coord_pid" 2>/dev/null; then
        wait "$coord_pid" 2>/dev/null
        killed=$((killed + 1))
    fi
    n=$(done_flows)
    [ "$n" -lt $FLOWS ] && busy=$((busy + 1))
    diag "kill $killed after ${moment}s: $n flows' events delivered"
    start_coordinator
done
[ $killed -eq $KILLS ]; ok $? "the coordinator was SIGKILLed $killed times, each time alive"
[ $busy -ge 5 ]; ok $? "$busy kills came while flows were still running"

wait "$publisher"
ok $? "every trigger event was acknowledged: $(tail -1 "$tmp/publish.err")"
await_s "$done_within" all_done
ok $? "every flow's order.done reached the consumer: $(cat "$tmp/done-count") of $FLOWS"

#   One event id per flow, however often it was delivered
sort -u "$tmp/done" > "$tmp/pairs"
doubled=$(cut -d' ' -f1 "$tmp/pairs" | uniq -d | wc -l | tr -d ' ')
[ "$doubled" -eq 0 ]; ok $? "each flow's order.done has exactly one event id ($doubled flows with two or more)"
[ "$doubled" -eq 0 ] || diag "$(cut -d' ' -f1 "$tmp/pairs" | uniq -d | head -3 | while read f; do grep "^$f " "$tmp/pairs"; done)"
keys=$(cut -d' ' -f1 "$tmp/pairs" | grep -c '^order-')
[ "$keys" -eq $FLOWS ]; ok $? "and is keyed by its flow ($keys)"
diag "$(wc -l < "$tmp/done") deliveries; the coordinator found $(grep -c 'was published before' "$tmp/coordinator.err") events published before a kill"
done_testing
