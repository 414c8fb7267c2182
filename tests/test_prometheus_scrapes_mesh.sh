#!/bin/sh
#   A real Prometheus server (Debian's), started on its own port and data
#   directory on loopback, scrapes a coordinator and two nodes while flows
#   run; its query API then gives chorus_flows_started_total as the flows
#   started, and chorus_group_lag_messages as the events a stalled group
#   has not acknowledged. The alert rules shipped in contrib/prometheus
#   load into it. chorus top shows the same figures; the publisher's lag,
#   oldest unacknowledged event and acknowledgement times follow the group
#   when a member that acknowledges replaces the stalled one.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

if ! command -v prometheus >/dev/null 2>&1; then
    skip "a real scrape: prometheus is not installed (Debian package prometheus)"
    done_testing; exit
fi
address_of () { sed -n 's|.*serving metrics at http://\([^/]*\)/metrics.*|\1|p' "$1" | head -1; }
#   query EXPR: the value of the instant vector's only sample, or nothing
query () {
    "$PYTHON" - "$prom" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = "http://%s/api/v1/query?%s" % (sys.argv[1], urllib.parse.urlencode({"query": sys.argv[2]}))
try:
    with urllib.request.urlopen(url, timeout=5) as reply:
        result = json.load(reply)["data"]["result"]
except Exception:
    sys.exit(0)
if len(result) == 1:
    print(result[0]["value"][1])
PY
}
is () { [ "$(query "$1")" = "$2" ]; }

start_hub
mkdir "$tmp/flows"
cat > "$tmp/flows/order.yaml" <<'YAML'
flow: order
version: 1
steps:
  - id: charge
    service: payments
    command: charge
YAML
"$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync \
    --metrics 127.0.0.1:0 >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
pids="$pids $!"
"$chorus" serve payments --store "$tmp/payments" --handle 'charge=cat >/dev/null; echo "{}"' \
    2>"$tmp/payments.err" &
pids="$pids $!"
#   Node 1: group mailer, whose handler fails each event: nothing acknowledged
"$chorus" on invoice. --group mailer --store "$tmp/mailer" --metrics 127.0.0.1:0 \
    --exec "exit 1" 2>"$tmp/mailer.err" &
mailer_pid=$!
pids="$pids $mailer_pid"
await 100 grep -q "serving metrics" "$tmp/coordinator.err"
await 100 grep -q "serving metrics" "$tmp/mailer.err"
await 100 have_peers coordinator payments mailer
ok $? "a coordinator, a service and a group member have met"
#   Node 2: publishes 7 invoices once it has met everyone; what a member
#   does not acknowledge within 2 s goes again
CHORUS_METRICS=127.0.0.1:0 "$helper" --service=billing --store "$tmp/billing" \
    --seed "$hub" --topic invoice.created --publish 7 --wait-peers 4 --ack-timeout 2000 \
    >"$tmp/billing.out" &
pids="$pids $!"
await 100 grep -q "^PUBLISHED 7" "$tmp/billing.out"
ok $? "the publisher published 7 invoices"
billing=$(awk '/^METRICS/ {print $2}' "$tmp/billing.out")
coordinator_at=$(address_of "$tmp/coordinator.err")
mailer=$(address_of "$tmp/mailer.err")

#   Prometheus on a free port of its own, scraping the three each second
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prom="127.0.0.1:$port"
cat > "$tmp/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [ "$srcdir/contrib/prometheus/chorus-alerts.yml" ]
scrape_configs:
  - job_name: chorus
    static_configs:
      - targets: [ "$coordinator_at", "$billing", "$mailer" ]
YAML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prometheus" \
    --web.listen-address="$prom" >"$tmp/prometheus.log" 2>&1 &
pids="$pids $!"
ready () { "$PYTHON" -c "import urllib.request as u; u.urlopen('http://$prom/-/ready', timeout=2)" 2>/dev/null; }
await_s 20 ready; ok $? "prometheus serves on $prom"

for n in 1 2 3; do
    "$chorus" flow start order '{}' --id "o$n" --wait --timeout 20 >/dev/null || echo "order o$n did not complete" >&2
done
up () { is 'count(up == 1)' 3; }
await_s 20 up; ok $? "prometheus scrapes the coordinator and both nodes: $(query 'count(up == 1)') up"
started () { is 'chorus_flows_started_total{flow="order"}' 3; }
await_s 20 started
ok $? "its query API: chorus_flows_started_total{flow=\"order\"} = $(query 'chorus_flows_started_total{flow="order"}')"
lag () { is "chorus_group_lag_messages{group=\"mailer\",instance=\"$billing\"}" 7; }
await_s 20 lag
ok $? "chorus_group_lag_messages{group=\"mailer\"} at the publisher = $(query "chorus_group_lag_messages{group=\"mailer\",instance=\"$billing\"}")"
rules () {
    "$PYTHON" - "$prom" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen("http://%s/api/v1/rules" % sys.argv[1], timeout=5) as reply:
    groups = json.load(reply)["data"]["groups"]
names = [rule["name"] for group in groups for rule in group["rules"]]
sys.exit(0 if "ChorusFlowsStuck" in names and "ChorusGroupLagGrowing" in names else 1)
PY
}
rules; ok $? "the alert rules of contrib/prometheus are loaded"

#   chorus top reads the same figures: the stalled group's lag, the flows
"$chorus" top --once --interval 0.5 --metrics "$coordinator_at" --metrics "$billing" \
    --metrics "$mailer" >"$tmp/top.out" 2>"$tmp/top.err"
ok $? "chorus top --once reads the three endpoints $(cat "$tmp/top.err")"
grep -q "^mailer  *$billing  *7 " "$tmp/top.out"
ok $? "it shows group mailer 7 events behind the publisher"
grep -q "^order  *$coordinator_at  *0  *0  *[0-9.]*  *3  *0  *0 " "$tmp/top.out"
ok $? "and flow order: none running or stuck, 3 completed"
grep -q "^$coordinator_at  *coordinator " "$tmp/top.out" && grep -q "^$mailer  *mailer " "$tmp/top.out"
ok $? "and each endpoint's service"
[ "$(awk '$1 == "ENDPOINT" {print $10}' "$tmp/top.out" | head -1)" = HEALTH ] \
    && [ "$(awk -v at="$mailer" '$1 == at {print $10}' "$tmp/top.out" | head -1)" = 0 ]
ok $? "and each node's local health: $(awk -v at="$mailer" '$1 == at {print $10}' "$tmp/top.out" | head -1) for mailer"
[ "$(awk '$1 == "COMMANDS" {getline; print $1, $2}' "$tmp/top.out")" = "$coordinator_at 3" ]
ok $? "and the coordinator's 3 command replies with their latency"
[ -n "$KEEP_TMP" ] && cat "$tmp/top.out" >&2
"$chorus" top --once --interval 0.1 --metrics "$billing" --metrics 127.0.0.1:1 \
    >"$tmp/top2.out" 2>"$tmp/top2.err"
rc=$?
[ $rc -eq 1 ] && grep -q "^127.0.0.1:1  *unreachable: cannot connect" "$tmp/top2.out" \
    && grep -q "cannot read 127.0.0.1:1" "$tmp/top2.err"
ok $? "an endpoint that cannot be read is shown unreachable, and --once exits 1 ($rc)"

#   The publisher's own view of the stalled group, scraped directly
scrape () {
    "$PYTHON" - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen("http://" + sys.argv[1] + "/metrics", timeout=5) as reply:
    sys.stdout.write(reply.read().decode())
PY
}
value () { scrape "$1" | awk -v series="$2" '$1 == series {print $2}'; }
aged () { [ "$(value "$billing" chorus_outbox_oldest_age_seconds | cut -d. -f1)" -ge 1 ]; }
await 50 aged
ok $? "chorus_outbox_oldest_age_seconds grows while the group stalls: $(value "$billing" chorus_outbox_oldest_age_seconds)"
[ "$(value "$coordinator_at" chorus_command_duration_seconds_count)" = 3 ]
ok $? "the coordinator timed its 3 commands: chorus_command_duration_seconds_count = $(value "$coordinator_at" chorus_command_duration_seconds_count)"

#   The stalled member goes; one that takes the events comes: the lag and
#   the outbox empty, and the acknowledgements are timed
"$chorus" on invoice. --group mailer --store "$tmp/mailer2" --exec "cat >/dev/null" \
    2>"$tmp/mailer2.err" &
pids="$pids $!"
kill "$mailer_pid"
caught_up () { [ "$(value "$billing" 'chorus_group_lag_messages{group="mailer"}')" = 0 ]; }
await_s 25 caught_up
ok $? "a member that acknowledges brings the lag to $(value "$billing" 'chorus_group_lag_messages{group="mailer"}')"
emptied () { [ "$(value "$billing" chorus_outbox_oldest_age_seconds)" = 0 ]; }
await 50 emptied; ok $? "and the outbox's oldest age to 0"
acks=$(value "$billing" chorus_event_ack_duration_seconds_count)
[ "${acks:-0}" -ge 7 ]; ok $? "chorus_event_ack_duration_seconds timed the acknowledgements: $acks"
done_testing
