#!/bin/sh
#   The coordinator's /metrics shows its flows: started and finished by
#   outcome, running and stuck, step and flow durations, the retries and
#   compensations of real failures, and its journal's commit times; the
#   text passes promtool. A flow that waits longer than --stuck-after is
#   counted stuck; after kill -9 and a restart on the same store, the
#   gauges are rebuilt from the journal before the first scrape; a bad
#   --stuck-after is refused with the reason.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

#   scrape ADDRESS: the body of /metrics
scrape () {
    "$PYTHON" - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen("http://" + sys.argv[1] + "/metrics", timeout=5) as reply:
    sys.stdout.write(reply.read().decode())
PY
}
#   value SERIES: its value at the coordinator ("name" or "name{labels}")
value () { scrape "$at" | awk -v series="$1" '$1 == series {print $2}'; }
#   is SERIES VALUE
is () { [ "$(value "$1")" = "$2" ]; }
address_of () {
    sed -n 's|.*serving metrics at http://\([^/]*\)/metrics.*|\1|p' "$1" | tail -1
}

mkdir "$tmp/flows"
#   ship fails its first try (retryable), and for good on {"fail": true};
#   charge is then undone
cat > "$tmp/flows/order.yaml" <<'YAML'
flow: order
version: 1
steps:
  - id: charge
    service: payments
    command: charge
    compensate: { command: refund }
  - id: ship
    service: shipping
    command: label
    depends_on: [charge]
    input: { fail: $.input.fail }
    retry: { attempts: 3, backoff: 100ms }
YAML
#   hold waits for a signal that does not come
cat > "$tmp/flows/hold.yaml" <<'YAML'
flow: hold
version: 1
steps:
  - id: wait
    await: { signal: go }
YAML
cat > "$tmp/label.sh" <<'SH'
#!/bin/sh
if grep -q '"fail": *true'; then echo "not json"; exit 0; fi
[ "$CHORUS_ATTEMPT" = 1 ] && { echo "printer jammed" >&2; exit 3; }
echo '{"label": "L1"}'
SH
chmod +x "$tmp/label.sh"

start_hub
"$chorus" serve payments --store "$tmp/payments" --handle 'charge=cat >/dev/null; echo "{}"' \
    --handle 'refund=cat >/dev/null; echo "{}"' 2>"$tmp/payments.err" &
pids="$pids $!"
"$chorus" serve shipping --store "$tmp/shipping" --handle "label=$tmp/label.sh" \
    2>"$tmp/shipping.err" &
pids="$pids $!"

start_coordinator () {
    "$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync \
        --metrics 127.0.0.1:0 --stuck-after 2 >>"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
    coord_pid=$!
    await 100 grep -q "serving metrics" "$tmp/coordinator.err"
    at=$(address_of "$tmp/coordinator.err")
}
start_coordinator
[ -n "$at" ]; ok $? "the coordinator serves its figures: $at"
await 100 have_peers coordinator payments shipping
ok $? "the coordinator and the services have met"

for n in 1 2 3; do
    "$chorus" flow start order '{}' --id "ok$n" --wait --timeout 20 >/dev/null
done
"$chorus" flow start order '{"fail": true}' --id bad --wait --timeout 20 >/dev/null
[ $? -eq 1 ]; ok $? "three orders completed, one failed"
"$chorus" flow start hold --id h1 >/dev/null; ok $? "a flow that waits for a signal started"

settled () { is 'chorus_flows_finished_total{flow="order",outcome="failed"}' 1 \
             && is 'chorus_flows_running{flow="hold"}' 1; }
await 50 settled; ok $? "the figures follow within a second or so"
is 'chorus_flows_started_total{flow="order"}' 4; ok $? "chorus_flows_started_total counts 4 orders"
is 'chorus_flows_started_total{flow="hold"}' 1; ok $? "and 1 hold"
is 'chorus_flows_finished_total{flow="order",outcome="completed"}' 3
ok $? "chorus_flows_finished_total: 3 completed"
is 'chorus_flows_finished_total{flow="order",outcome="cancelled"}' 0; ok $? "none cancelled"
is 'chorus_flows_running{flow="order"}' 0; ok $? "chorus_flows_running: no order runs"
is 'chorus_step_retries_total{flow="order",step="ship"}' 3
ok $? "chorus_step_retries_total: ship tried again once per completed order"
is 'chorus_step_retries_total{flow="order",step="charge"}' "" || \
    is 'chorus_step_retries_total{flow="order",step="charge"}' 0
ok $? "charge never retried"
is 'chorus_compensations_total{flow="order"}' 1; ok $? "chorus_compensations_total: 1 refund"
is 'chorus_step_duration_seconds_count{flow="order",step="charge"}' 4
ok $? "chorus_step_duration_seconds counts the 4 charges"
is 'chorus_step_duration_seconds_count{flow="order",step="ship"}' 4
ok $? "and the 4 ends of ship (3 done, 1 failed)"
is 'chorus_flow_duration_seconds_count{flow="order"}' 4
ok $? "chorus_flow_duration_seconds counts the 4 ended orders"
scrape "$at" > "$tmp/scrape.txt"
[ "$(awk '$1 == "chorus_flow_duration_seconds_bucket{flow=\"order\",le=\"+Inf\"}" {print $2}' \
    "$tmp/scrape.txt")" = 4 ] && grep -q '^chorus_flow_duration_seconds_sum{flow="order"} 0\.[0-9]*[1-9]' \
    "$tmp/scrape.txt" || grep -q '^chorus_flow_duration_seconds_sum{flow="order"} [1-9]' "$tmp/scrape.txt"
ok $? "its buckets end at 4 and its sum is more than 0"
is chorus_command_duration_seconds_count 12
ok $? "chorus_command_duration_seconds times the 12 commands: 4 charges, 7 labels, 1 refund"
commits=$(value chorus_journal_commit_duration_seconds_count)
[ "${commits:-0}" -gt 0 ]; ok $? "chorus_journal_commit_duration_seconds counts commits: $commits"
if grep -q 'flow=".*-\|step=".*/' "$tmp/scrape.txt"; then false; else true; fi
ok $? "no flow id or task key is a label"
if command -v promtool >/dev/null 2>&1; then
    promtool check metrics < "$tmp/scrape.txt" > "$tmp/promtool.out" 2>&1
    ok $? "promtool check metrics accepts it $(head -c 300 "$tmp/promtool.out")"
else
    skip "promtool check metrics: promtool is not installed (Debian package prometheus)"
fi

#   hold has been waiting for more than --stuck-after 2 s
stuck () { is 'chorus_flows_stuck{flow="hold"}' 1; }
await 60 stuck; ok $? "a flow unchanged for --stuck-after counts as stuck"
is 'chorus_flows_stuck{flow="order"}' 0; ok $? "no order is stuck"

#   kill -9, restart on the same store: the gauges come from the journal
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null
start_coordinator
scrape "$at" > "$tmp/restart.txt"
grep -q '^chorus_flows_running{flow="hold"} 1$' "$tmp/restart.txt"
ok $? "after kill -9, the first scrape shows the waiting flow running"
grep -q '^chorus_flows_stuck{flow="hold"} 1$' "$tmp/restart.txt"
ok $? "and stuck, as it was"
grep -q '^chorus_flows_started_total{flow="hold"} 0$' "$tmp/restart.txt" \
    || ! grep -q '^chorus_flows_started_total{flow="hold"}' "$tmp/restart.txt"
ok $? "counters start again from 0, as Prometheus expects of a restart"

#   The signal moves it on: running 0, stuck 0
"$chorus" flow signal hold-h1 go '{}' >/dev/null
done_holding () { is 'chorus_flows_running{flow="hold"}' 0 && is 'chorus_flows_stuck{flow="hold"}' 0 \
                  && is 'chorus_flows_finished_total{flow="hold",outcome="completed"}' 1; }
await 50 done_holding; ok $? "once signalled it completes, and is neither running nor stuck"

#   Bad input
"$coordinator" --flows "$tmp/flows" --store "$tmp/other" --stuck-after 0 2>"$tmp/bad.err"
rc=$?
[ $rc -eq 2 ] && grep -q "stuck-after '0' is not a number of seconds" "$tmp/bad.err"
ok $? "a bad --stuck-after is refused (exit $rc): $(cat "$tmp/bad.err")"
done_testing
