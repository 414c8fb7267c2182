#!/bin/sh
#   A node started with --metrics serves its figures for Prometheus at
#   /metrics: the text format promtool accepts, counters that follow what
#   the node did (events its handlers took), its peers and
#   its outbox; 404 elsewhere, 405 for other methods; CHORUS_METRICS works
#   as the option does; a bad address or one in use stops the node with the
#   reason.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

#   scrape ADDRESS [PATH [METHOD]]: the body, or "HTTP NNN" on an error status
scrape () {
    "$PYTHON" - "$1" "${2:-/metrics}" "${3:-GET}" <<'PY'
import sys, urllib.request, urllib.error
address, path, method = sys.argv[1:4]
request = urllib.request.Request("http://" + address + path, method=method)
try:
    with urllib.request.urlopen(request, timeout=5) as reply:
        sys.stdout.write(reply.headers.get("Content-Type", "") + "\n")
        sys.stdout.write(reply.read().decode())
except urllib.error.HTTPError as error:
    print("HTTP", error.code)
PY
}
#   value ADDRESS SERIES: the value of one series ("name" or "name{labels}")
value () { scrape "$1" | awk -v series="$2" '$1 == series {print $2}'; }
address_of () { sed -n 's|.*serving metrics at http://\([^/]*\)/metrics.*|\1|p' "$1" | head -1; }

start_hub

#   A group member with its figures on a port of its own choosing
"$chorus" on order. --group billing --store "$tmp/billing" --metrics 127.0.0.1:0 \
    --exec "echo \$CHORUS_SEQ >> $tmp/handled" 2>"$tmp/on.err" &
pids="$pids $!"
await 100 grep -q "serving metrics" "$tmp/on.err"
on=$(address_of "$tmp/on.err")
[ -n "$on" ]; ok $? "chorus on says where its figures are: $on"
body=$(scrape "$on")
echo "$body" | head -1 | grep -q "^text/plain; version=0.0.4"
ok $? "/metrics answers in the text format: $(echo "$body" | head -1)"
echo "$body" | grep -q '^chorus_build_info{version="[0-9.]*",service="billing"} 1$'
ok $? "with chorus_build_info"
[ "$(value "$on" chorus_events_handled_total)" = 0 ]
ok $? "no event handled yet"

#   Five events, published by a node that serves its figures too
await 100 have_peers billing
i=1
while [ $i -le 5 ]; do echo "{\"n\": $i}"; i=$((i + 1)); done \
    | CHORUS_METRICS=127.0.0.1:0 "$chorus" publish order.placed --lines --store "$tmp/producer" \
        --timeout 30 2>"$tmp/publish.err"
ok $? "5 events published and acknowledged"
grep -q "serving metrics at http://127.0.0.1:[0-9]*/metrics" "$tmp/publish.err"
ok $? "CHORUS_METRICS serves them as --metrics does"
await 50 has_lines "$tmp/handled" 5
handled () { [ "$(value "$on" chorus_events_handled_total)" = 5 ]; }
await 50 handled
ok $? "chorus_events_handled_total follows: $(value "$on" chorus_events_handled_total)"
[ "$(value "$on" 'chorus_peers{state="alive"}')" -ge 1 ]
ok $? "chorus_peers counts the peers alive: $(value "$on" 'chorus_peers{state="alive"}')"
[ "$(value "$on" chorus_outbox_messages)" = 0 ]
ok $? "chorus_outbox_messages is the outbox: $(value "$on" chorus_outbox_messages)"

if command -v promtool >/dev/null 2>&1; then
    scrape "$on" | tail -n +2 > "$tmp/scrape.txt"
    promtool check metrics < "$tmp/scrape.txt" > "$tmp/promtool.out" 2>&1
    ok $? "promtool check metrics accepts it $(head -c 300 "$tmp/promtool.out")"
else
    skip "promtool check metrics: promtool is not installed (Debian package prometheus)"
fi

[ "$(scrape "$on" /other)" = "HTTP 404" ]; ok $? "another path is 404"
[ "$(scrape "$on" /metrics POST)" = "HTTP 405" ]; ok $? "another method is 405"

#   The coordinator serves its node's figures too
mkdir "$tmp/flows"
"$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync \
    --metrics 127.0.0.1:0 >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
coord_pid=$!
await 100 grep -q ready "$tmp/coordinator.out"
coordinator_at=$(address_of "$tmp/coordinator.err")
scrape "$coordinator_at" | grep -q '^chorus_build_info{version="[0-9.]*",service="coordinator"} 1$'
ok $? "chorus-coordinator --metrics serves them: $coordinator_at"

#   A bad address, and one in use, stop the node with the reason
"$chorus" on order. --group bad --store "$tmp/bad" --metrics nowhere --exec true 2>"$tmp/bad.err"
rc=$?
[ $rc -ne 0 ] && grep -q "metrics address 'nowhere' is not HOST:PORT" "$tmp/bad.err"
ok $? "a bad --metrics is refused (exit $rc): $(head -1 "$tmp/bad.err")"
"$chorus" on order. --group used --store "$tmp/used" --metrics "$on" --exec true 2>"$tmp/used.err"
rc=$?
[ $rc -ne 0 ] && grep -q "cannot serve metrics on $on" "$tmp/used.err"
ok $? "an address in use is refused (exit $rc): $(head -1 "$tmp/used.err")"
done_testing
