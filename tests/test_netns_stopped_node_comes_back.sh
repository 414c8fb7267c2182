#!/bin/sh
#   A node that stops answering for a while, across hosts (tests/netns.sh):
#   three nodes on three hosts, probing one peer every 0.5 s, a peer
#   suspect (evasive) after a probe unanswered for 1 s, forgotten (expired)
#   after 6 s. A node SIGSTOPped for 3 s turns evasive for both others and,
#   continued, refutes the suspicion with a new incarnation: alive again,
#   never forgotten nor met anew. Stopped for 8 s, longer than the expiry,
#   it is forgotten, and met again once continued.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
. "$srcdir/tests/netns.sh"
netns_skip_unless_setup 3
seed="tcp://$(netns_addr 1):5670"

#   node HOST SERVICE: a node_helper on HOST, its figures at HOST:9100
node () {
    netns_bg "$1" env CHORUS_METRICS="$(netns_addr "$1"):9100" "$helper" --service="$2" \
        --store="$tmp/$2" --listen=tcp://0.0.0.0:5670 --seed="$seed" --heartbeat=500,1000,6000 \
        --verbose >"$tmp/$2.out" 2>"$tmp/$2.err"
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
converged () { [ "$(peers 1 1 2 3 | tr '\n' ' ')" = "2 0 2 0 2 0 " ]; }
now_ms () { echo $(($(date +%s%N) / 1000000)); }
#   stop_for MS: SIGSTOPs the victim for MS, meanwhile noting in $evasive1
#   and $evasive3 whether hosts 1 and 3 saw a peer evasive
stop_for () {
    evasive1=0; evasive3=0
    kill -STOP "$victim"
    until=$(($(now_ms) + $1))
    while [ "$(now_ms)" -lt "$until" ]; do
        evasive=$(peers 1 1 3 | awk '{ print $2 }')
        [ "$(echo "$evasive" | sed -n 1p)" -ge 1 ] && evasive1=1
        [ "$(echo "$evasive" | sed -n 2p)" -ge 1 ] && evasive3=1
        sleep 0.1
    done
    kill -CONT "$victim"
    continued=$(now_ms)
}
met () { grep -c "met victim/" "$tmp/$1.err"; }
expired () { grep -c "peer victim/.* expired" "$tmp/$1.err"; }

node 1 hub
node 2 victim
victim=$netns_pid
node 3 watcher
await_s 20 converged
ok $? "three nodes on three hosts meet"

stop_for 3000
[ $evasive1 = 1 ] && [ $evasive3 = 1 ]
ok $? "stopped for 3 s, the node turns evasive for the nodes on both other hosts"
await_s 10 converged
ok $? "continued, it is alive again for both, and it sees them alive ($(($(now_ms) - continued)) ms)"
[ "$(expired hub)" -eq 0 ] && [ "$(expired watcher)" -eq 0 ]
ok $? "neither forgot it (expired: $(expired hub), $(expired watcher))"
[ "$(met hub)" -eq 1 ] && [ "$(met watcher)" -eq 1 ]
ok $? "nor met it anew (met: $(met hub), $(met watcher) times)"
await_s 10 grep -q "we refute" "$tmp/victim.err"
ok $? "it heard it was suspected and refuted with a new incarnation"
! grep -q "expired" "$tmp/victim.err"
ok $? "and it forgot nobody itself"

#   The failure path: stopped past the expiry, it is forgotten
stop_for 8000
[ "$(expired hub)" -eq 1 ] && [ "$(expired watcher)" -eq 1 ]
ok $? "stopped for 8 s, past the 6 s expiry, both others forget it: $(grep "victim/.* expired" "$tmp/hub.err")"
await_s 20 converged
ok $? "continued, it is met again and everyone is alive ($(($(now_ms) - continued)) ms)"
[ "$(met hub)" -eq 2 ] && [ "$(met watcher)" -eq 2 ]
ok $? "as a peer met anew (met: $(met hub), $(met watcher) times)"
done_testing
