#!/bin/sh
#   A partition across hosts (tests/netns.sh): four hosts, a seed and a
#   ledger instance in one half (hosts 1, 2), a relay node and another
#   ledger instance in the other (hosts 3, 4). A publisher in each half
#   publishes 150 events, a line every 0.1 s, while the bridge is cut in
#   two for 10 s, then healed. Each half sees the other go; after the heal
#   both publishers have every event acknowledged, the ledger group has
#   handled each event of each exactly once, membership re-converges
#   (every node sees the three others alive) and no node stays evasive.
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
#   peers_of HOST STATE: how many peers the node on HOST has in STATE (its /metrics)
peers_of () {
    netns_exec "$1" "${PYTHON:-python3}" - "$(netns_addr "$1")" "$2" <<'PY'
import sys, urllib.request
address, state = sys.argv[1:3]
try:
    body = urllib.request.urlopen("http://%s:9100/metrics" % address, timeout=2).read().decode()
except OSError:
    print(-1); sys.exit(0)
series = 'chorus_peers{state="%s"}' % state
print(next((int(float(l.split()[1])) for l in body.splitlines() if l.split()[:1] == [series]), -1))
PY
}
#   converged: every node sees exactly the three others alive, none evasive
#   (publishers that run count too, until they leave)
converged () {
    for host in 1 2 3 4; do
        [ "$(peers_of $host alive)" -eq 3 ] && [ "$(peers_of $host evasive)" -eq 0 ] || return 1
    done
}
#   How many events the ledger group has handled so far
count () { awk '$1 == "E"' "$tmp/ledger.log" 2>/dev/null | wc -l; }
#   Events the ledger group handled, "publisher-instance seq" a line
handled () { cat "$tmp"/ledger.log 2>/dev/null | awk '$1 == "E" { print $2, $3 }'; }

node 1 hub
node 2 ledger --subscribe=order. --log="$tmp/ledger.log"
node 3 relay
node 4 ledger --subscribe=order. --log="$tmp/ledger.log"
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
    alive1=$(peers_of 1 alive); alive4=$(peers_of 4 alive)
    [ "$alive1" -le 2 ] && [ "$alive4" -le 2 ] && seen=1
    sleep 0.5
done
[ -n "$seen" ]; ok $? "each half sees the other go during the 10 s cut (host 1: $alive1 alive, host 4: $alive4)"
during=$(($(count) - before))
[ "$during" -gt 0 ]; ok $? "the group goes on handling events in the cut ($during)"
netns_heal
healed_at=$(date +%s)

await_s 45 sh -c "[ -s $tmp/publish-1.rc ] && [ -s $tmp/publish-3.rc ]"
for host in 1 3; do
    [ "$(cat "$tmp/publish-$host.rc" 2>/dev/null)" = 0 ] \
        && grep -q "delivered $events events to ledger" "$tmp/publish-$host.err"
    ok $? "the publisher on host $host has all $events events acknowledged: $(tail -1 "$tmp/publish-$host.err")"
done
diag "all acknowledged $(( $(date +%s) - healed_at )) s after the heal"
n=$(handled | wc -l)
u=$(handled | sort -u | wc -l)
[ "$n" -eq $((2 * events)) ] && [ "$u" -eq $((2 * events)) ]
ok $? "the ledger group handled each of the $((2 * events)) events exactly once ($n handled, $u distinct)"
handled | sort | uniq -d | head -5 | while read -r line; do diag "twice: $line"; done
#   The publishers have left: exactly the four nodes remain
await_s 20 converged
ok $? "membership re-converges: every node sees the three others alive and none evasive ($(( $(date +%s) - healed_at )) s after the heal)"
met=$(netns_exec 4 "$chorus" peers --seed "$seed" --listen tcp://0.0.0.0:0 --wait 1000 2>/dev/null)
for service in hub ledger relay; do
    echo "$met" | grep "^$service " | grep -q " alive "
done
[ "$(echo "$met" | grep -c " alive ")" -eq 4 ]
ok $? "chorus peers on host 4 lists the four alive: $(echo "$met" | awk '{print $1 "@" $3 ":" $4}' | tr '\n' ' ')"
expired=""
for host in 1 2 3 4; do
    grep -q "expired" "$tmp/$host.err" && expired="$expired $host"
done
diag "hosts whose node forgot a peer in the cut (expired):${expired:- none}"
done_testing
