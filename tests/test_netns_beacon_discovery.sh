#!/bin/sh
#   UDP beacon discovery across hosts: nodes in three network namespaces
#   on one bridge (tests/netns.sh), without seeds, meet by beacon, each
#   at its own host's address, and an event published on one host reaches
#   a group on another. A host cut off from the bridge meets nobody.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
. "$srcdir/tests/netns.sh"
netns_skip_unless_setup 4
unset CHORUS_SEEDS
port=5690

#   on HOST NAME: a group member on HOST, handled events in NAME.log
on () {
    netns_bg "$1" "$chorus" on order. --group "$2" --beacon $port --listen tcp://0.0.0.0:0 \
        --store "$tmp/$2-$1" --exec "cat >> $tmp/$2.log; echo >> $tmp/$2.log" \
        >/dev/null 2>"$tmp/$2-$1.err"
}
#   peers HOST: what chorus peers on HOST, by beacon only, meets
peers () {
    netns_exec "$1" "$chorus" peers --beacon $port --listen tcp://0.0.0.0:0 --wait 1500 --json 2>/dev/null
}
#   meets HOST SERVICE ADDRESS: chorus peers on HOST lists SERVICE alive at ADDRESS
meets () {
    peers "$1" | grep "\"service\":\"$2\"" | grep "\"state\":\"alive\"" \
        | grep -q "\"endpoint\":\"tcp://$3:[0-9]*\""
}

on 1 ledger
on 2 billing
await_s 20 meets 3 ledger "$(netns_addr 1)"
ok $? "a node on host 3 meets the ledger on host 1 by beacon, at $(netns_addr 1)"
await_s 20 meets 3 billing "$(netns_addr 2)"
ok $? "and the billing node on host 2, at $(netns_addr 2)"
await_s 20 meets 1 billing "$(netns_addr 2)"
ok $? "host 1 meets host 2's node by beacon too"

netns_exec 3 "$chorus" publish order.placed '{"n": 1}' --beacon $port --listen tcp://0.0.0.0:0 \
    --store "$tmp/producer" --timeout 20 >/dev/null 2>"$tmp/publish.err"
rc=$?
[ $rc -eq 0 ] && grep -q "delivered 1 event to .*ledger" "$tmp/publish.err" \
    && grep -q "delivered 1 event to .*billing" "$tmp/publish.err"
ok $? "an event published on host 3 is delivered to both groups (exit $rc): $(tail -1 "$tmp/publish.err")"
await 100 grep -q '"n": *1' "$tmp/ledger.log" && await 100 grep -q '"n": *1' "$tmp/billing.log"
ok $? "and handled on hosts 1 and 2"

#   The failure path: host 4, cut off, hears no beacon and meets nobody
netns_cut 4
met=$(peers 4)
[ -z "$met" ]; ok $? "a host cut off from the bridge meets nobody by beacon (${met:-none})"
netns_heal
await_s 20 meets 4 ledger "$(netns_addr 1)"
ok $? "once wired back, it meets the ledger"
done_testing
