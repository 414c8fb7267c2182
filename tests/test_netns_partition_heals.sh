#!/bin/sh
#   A partition across hosts (tests/netns.sh): four hosts, two groups,
#   audit and ledger, each with an instance in each half (hosts 1, 2 and
#   hosts 3, 4; the audit instance on host 1 is everyone's seed). A
#   publisher in each half publishes 150 events, a line every 0.1 s, while
#   the bridge is cut in two for 10 s, then healed. Each half sees the
#   other go; after the heal both publishers have every event
#   acknowledged, each group has handled every event, no instance has run
#   an event twice (inbox dedupe), membership re-converges (every node
#   sees the three others alive) and no node stays evasive.
#   Not promised (protocol spec, 7.4: records belong to the receiving
#   node): an event sent to the instance across the cut goes to the other
#   instance once the first expires, and may run on both. Such events are
#   counted and named, not failed.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
. "$srcdir/tests/netns.sh"
netns_skip_unless_setup 4
seed="tcp://$(netns_addr 1):5670"
events=150

#   node HOST SERVICE ARGS...: a node_helper on HOST, its figures at HOST:9100
node () {
    host=$1; service=$2; shift 2
    netns_bg "$host" env CHORUS_METRICS="$(netns_addr "$host"):9100" "$helper" \
        --service="$service" --store="$tmp/$service-$host" --listen=tcp://0.0.0.0:5670 \
        --seed="$seed" --verbose "$@" >"$tmp/$host.out" 2>"$tmp/$host.err"
}
#   peers FROM HOST...: seen from host FROM, how many peers the node on each
#   HOST has alive and evasive (its /metrics), "ALIVE EVASIVE" a line, or
#   "-1 -1" if it cannot say
peers () {
    from=$1; shift
    addresses=""
    for host in "$@"; do addresses="$addresses $(netns_addr "$host")"; done
    netns_exec "$from" "${PYTHON:-python3}" - $addresses <<'PY'
import sys, urllib.request
for address in sys.argv[1:]:
    try:
        body = urllib.request.urlopen("http://%s:9100/metrics" % address, timeout=2).read().decode()
    except OSError:
        print(-1, -1); continue
    count = {}
    for line in body.splitlines():
        for state in ("alive", "evasive"):
            if line.startswith('chorus_peers{state="%s"} ' % state):
                count[state] = int(float(line.split()[1]))
    print(count.get("alive", -1), count.get("evasive", -1))
PY
}
#   converged: every node sees exactly the three others alive, none evasive
#   (publishers that run count too, until they leave)
converged () { [ "$(peers 1 1 2 3 4 | tr '\n' ' ')" = "3 0 3 0 3 0 3 0 " ]; }
#   How many events GROUP (default ledger) has handled so far
count () { cat "$tmp/${1:-ledger}"-*.log 2>/dev/null | awk '$1 == "E"' | wc -l; }
#   Events GROUP (default ledger) handled, "publisher-instance seq" a line;
#   with a host, those its instance there handled
handled () { cat "$tmp/${1:-ledger}"-${2:-*}.log 2>/dev/null | awk '$1 == "E" { print $2, $3 }'; }

node 1 audit --subscribe=order. --log="$tmp/audit-1.log"
node 2 ledger --subscribe=order. --log="$tmp/ledger-2.log"
node 3 audit --subscribe=order. --log="$tmp/audit-3.log"
node 4 ledger --subscribe=order. --log="$tmp/ledger-4.log"
await_s 30 converged
ok $? "four nodes on four hosts meet through one seed"

#   publish HOST: a publisher on HOST, a line every 0.1 s
publish () {
    i=1
    while [ $i -le $events ]; do echo "{\"host\": $1, \"n\": $i}"; i=$((i + 1)); sleep 0.1; done \
        | netns_exec "$1" "$chorus" publish order.placed --lines --key-field n --seed "$seed" \
            --listen tcp://0.0.0.0:0 --store "$tmp/publisher-$1" --timeout 45 \
            >/dev/null 2>"$tmp/publish-$1.err"
    echo $? >"$tmp/publish-$1.rc"
}
publish 1 &
pids="$pids $!"
publish 3 &
pids="$pids $!"
publishers () { handled | awk '{ print $1 }' | sort -u | wc -l; }
both_publish () { [ "$(count)" -ge 20 ] && [ "$(publishers)" -eq 2 ]; }
await_s 20 both_publish
ok $? "both publishers are publishing ($(count) events handled, from $(publishers))"

cut_at=$(date +%s)
netns_cut 3 4
before=$(count)
#   The cut is the scenario: it lasts 10 s while both halves publish
while [ $(($(date +%s) - cut_at)) -lt 10 ]; do
    alive1=$(peers 1 1 | cut -d' ' -f1); alive4=$(peers 4 4 | cut -d' ' -f1)
    [ "$alive1" -ge 0 ] && [ "$alive1" -le 2 ] && [ "$alive4" -ge 0 ] && [ "$alive4" -le 2 ] && seen=1
    sleep 0.5
done
[ -n "$seen" ]; ok $? "each half sees the other go during the 10 s cut (host 1: $alive1 alive, host 4: $alive4)"
during=$(($(count) - before))
[ "$during" -gt 0 ]; ok $? "the ledger group goes on handling events in the cut ($during)"
netns_heal
healed_at=$(date +%s)

await_s 45 sh -c "[ -s $tmp/publish-1.rc ] && [ -s $tmp/publish-3.rc ]"
for host in 1 3; do
    [ "$(cat "$tmp/publish-$host.rc" 2>/dev/null)" = 0 ] \
        && grep -q "delivered $events events to .*audit" "$tmp/publish-$host.err" \
        && grep -q "delivered $events events to .*ledger" "$tmp/publish-$host.err"
    ok $? "the publisher on host $host has all $events events acknowledged: $(tail -1 "$tmp/publish-$host.err")"
done
diag "all acknowledged $(( $(date +%s) - healed_at )) s after the heal"
for group in audit ledger; do
    u=$(handled $group | sort -u | wc -l)
    [ "$u" -eq $((2 * events)) ]
    ok $? "the $group group handled every one of the $((2 * events)) events ($u distinct)"
    twice=""
    for host in 1 2 3 4; do
        [ -f "$tmp/$group-$host.log" ] || continue
        d=$(handled $group $host | sort | uniq -d | wc -l)
        [ "$d" -eq 0 ] || twice="$twice host $host: $d"
    done
    [ -z "$twice" ]
    ok $? "no $group instance ran an event twice (inbox dedupe)${twice:+:$twice}"
    both=$(handled $group | sort | uniq -d)
    diag "$group events that ran on both instances: $(echo "$both" | grep -c .)"
    echo "$both" | grep . | head -5 | while read -r publisher seq; do
        diag "  $(grep "^E $publisher $seq " "$tmp/$group"-*.log | sed 's|.*/||' | tr '\n' ' ')"
    done
done
#   The publishers have left: exactly the four nodes remain
await_s 20 converged
ok $? "membership re-converges: every node sees the three others alive and none evasive ($(( $(date +%s) - healed_at )) s after the heal)"
met=$(netns_exec 4 "$chorus" peers --seed "$seed" --listen tcp://0.0.0.0:0 --wait 1000 2>/dev/null)
[ "$(echo "$met" | grep -c "^audit .* alive ")" -eq 2 ] \
    && [ "$(echo "$met" | grep -c "^ledger .* alive ")" -eq 2 ] \
    && [ "$(echo "$met" | grep -c " alive ")" -eq 4 ]
ok $? "chorus peers on host 4 lists the four alive: $(echo "$met" | awk '{print $1 "@" $3 ":" $4}' | tr '\n' ' ')"
expired=""
for host in 1 2 3 4; do
    grep -q "expired" "$tmp/$host.err" && expired="$expired $host"
done
diag "hosts whose node forgot a peer in the cut (expired):${expired:- none}"
done_testing
