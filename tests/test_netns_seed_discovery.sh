#!/bin/sh
#   Seed discovery across hosts: nodes in three network namespaces on one
#   bridge (tests/netns.sh), listening on a wildcard address, find each
#   other through one seed and announce their own host's address for
#   their inbox and PUB socket, never 127.0.0.1; an event published on one
#   host reaches a group on another. A node that listens on loopback
#   announces an address no other host can reach: it warns, and an event
#   for its group published on another host is kept in the publisher's
#   store, not delivered.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
. "$srcdir/tests/netns.sh"
netns_skip_unless_setup 3
seed="tcp://$(netns_addr 1):5670"
CHORUS_SEEDS=$seed
export CHORUS_SEEDS

#   on HOST GROUP LISTEN: a group member on HOST, its events in GROUP.log
on () {
    netns_bg "$1" "$chorus" on order. --group "$2" --listen "$3" --store "$tmp/$2" \
        --exec "cat >> $tmp/$2.log; echo >> $tmp/$2.log" >/dev/null 2>"$tmp/$2.err"
}
#   peer HOST SERVICE: chorus peers --json on HOST, the line of SERVICE
peer () {
    netns_exec "$1" "$chorus" peers --listen tcp://0.0.0.0:0 --wait 1000 --json 2>/dev/null \
        | grep "\"service\":\"$2\""
}
#   announces HOST SERVICE ADDRESS: seen from HOST, SERVICE is alive with
#   its inbox and its PUB socket at ADDRESS
announces () {
    line=$(peer "$1" "$2")
    echo "$line" | grep -q '"state":"alive"' \
        && echo "$line" | grep -q "\"endpoint\":\"tcp://$3:[0-9]*\"" \
        && echo "$line" | grep -q "\"pub_endpoint\":\"tcp://$3:[0-9]*\""
}

on 1 hub "tcp://0.0.0.0:5670"
on 2 ledger "tcp://*:5670"
await_s 20 announces 3 hub "$(netns_addr 1)"
ok $? "the seed on host 1, bound to 0.0.0.0, announces $(netns_addr 1)"
await_s 20 announces 3 ledger "$(netns_addr 2)"
ok $? "a node on host 2, bound to *, is met through the seed at $(netns_addr 2): $(peer 3 ledger | grep -o '"endpoint":"[^"]*"')"
await_s 20 announces 1 ledger "$(netns_addr 2)"
ok $? "the seed's host reaches it there too"
! grep -q "loopback" "$tmp/hub.err" "$tmp/ledger.err"
ok $? "neither warns of a loopback address"

netns_exec 3 "$chorus" publish order.placed '{"n": 1}' --listen tcp://0.0.0.0:0 \
    --store "$tmp/producer" --timeout 20 >/dev/null 2>"$tmp/publish.err"
rc=$?
[ $rc -eq 0 ] && grep -q "delivered 1 event to .*ledger" "$tmp/publish.err"
ok $? "an event published on host 3 is acknowledged by the group on host 2 (exit $rc): $(tail -1 "$tmp/publish.err")"
await 100 grep -q '"n": *1' "$tmp/ledger.log"
ok $? "and handled there"

#   The failure path: a group member on host 2 listening on loopback
#   announces 127.0.0.1, which its peers on other hosts cannot reach
netns_bg 2 "$chorus" on solo. --group local --listen tcp://127.0.0.1:5671 --store "$tmp/local" \
    --exec "cat >> $tmp/local.log; echo >> $tmp/local.log" >/dev/null 2>"$tmp/local.err"
await_s 20 grep -q "a loopback address, to $seed: a peer on another host cannot reach it" \
    "$tmp/local.err"
ok $? "a node on loopback says its address is unreachable: $(grep loopback "$tmp/local.err" | head -1)"
netns_exec 3 "$chorus" publish solo.placed '{"n": 2}' --listen tcp://0.0.0.0:0 \
    --store "$tmp/producer" --timeout 5 >/dev/null 2>"$tmp/solo.err"
rc=$?
grep -q "group local (1 pending" "$tmp/solo.err" && ! grep -q "^chorus publish: delivered" "$tmp/solo.err"
ok $? "an event for its group, published on host 3, is kept, not delivered (exit $rc): $(tail -1 "$tmp/solo.err")"
[ "$(lines "$tmp/local.log")" -eq 0 ]; ok $? "and not handled"
done_testing
