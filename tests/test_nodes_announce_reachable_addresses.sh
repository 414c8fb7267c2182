#!/bin/sh
#   What a node announces is an address its peers can reach: bound to a
#   wildcard, the address of the interface that routes to its first seed
#   (not 127.0.0.1, which no other host can reach); told --advertise or
#   CHORUS_ADVERTISE, that host (and port); a bad address refused with the
#   reason; and a node that announces loopback to a peer elsewhere says so.
#   A peer reached at the announced address shows it alive in chorus peers.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

#   node NAME ARGS...: a node_helper in the background, READY in NAME.out
node () {
    name=$1; shift
    "$helper" --service="$name" --store="$tmp/$name" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids="$pids $!"
    await 100 grep -q READY "$tmp/$name.out"
}
endpoint_of () { awk '/READY/ {print $2}' "$tmp/$1.out"; }
#   alive NAME ENDPOINT: chorus peers, seeded with $seed, lists NAME alive at ENDPOINT
alive () {
    "$chorus" peers --seed "$seed" --listen "$listen" --store "$tmp/peers" --wait 300 --json \
        | grep "\"service\":\"$1\"" | grep -q "\"endpoint\":\"$2\".*\"state\":\"alive\"\|\"state\":\"alive\".*\"endpoint\":\"$2\""
}

#   A non-loopback address of this host, to stand for a network others reach
ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' \
     | grep -v '^127\.' | head -1)

if [ -n "$ip" ]; then
    node hub --listen "tcp://$ip:0"
    seed=$(endpoint_of hub); listen="tcp://$ip:0"
    case "$seed" in tcp://$ip:*) true ;; *) false ;; esac
    ok $? "a hub on this host's address $ip: $seed"
    node wild --listen tcp://0.0.0.0:0 --seed "$seed"
    case "$(endpoint_of wild)" in tcp://$ip:*) true ;; *) false ;; esac
    ok $? "bound to a wildcard, it announces the address that routes to its seed: $(endpoint_of wild)"
    await 50 alive wild "$(endpoint_of wild)"
    ok $? "and its peers reach it there"
    ! grep -q "loopback" "$tmp/wild.err"
    ok $? "without a warning"
    node local --seed "$seed"
    await 50 grep -q "a loopback address, to $seed: a peer on another host cannot reach it" \
        "$tmp/local.err"
    ok $? "a node on loopback meeting a peer at $ip warns: $(grep loopback "$tmp/local.err" | head -1)"
    [ "$(grep -c loopback "$tmp/local.err")" = 1 ]
    ok $? "once"
else
    for n in 1 2 3 4 5 6; do skip "this host has no non-loopback IPv4 address"; done
    node hub
    seed=$(endpoint_of hub); listen="tcp://127.0.0.1:0"
fi

#   Told what to advertise: CHORUS_ADVERTISE (127.0.0.2 is loopback too, and
#   the wildcard bind listens there)
CHORUS_ADVERTISE=127.0.0.2 node told --listen tcp://0.0.0.0:0 --seed "$seed"
case "$(endpoint_of told)" in tcp://127.0.0.2:*) true ;; *) false ;; esac
ok $? "CHORUS_ADVERTISE=127.0.0.2 is announced: $(endpoint_of told)"
await 50 alive told "$(endpoint_of told)"
ok $? "and its peers reach it there"
CHORUS_ADVERTISE=127.0.0.1:4999 node ported --seed "$seed"
[ "$(endpoint_of ported)" = "tcp://127.0.0.1:4999" ]
ok $? "HOST:PORT replaces the inbox port too (a port forwarded to it): $(endpoint_of ported)"

#   The option of the tools: chorus on --advertise
"$chorus" on told3 --group told3 --exec cat --store "$tmp/on" --listen tcp://0.0.0.0:0 \
    --advertise 127.0.0.3 --seed "$seed" >/dev/null 2>"$tmp/on.err" &
pids="$pids $!"
await 50 sh -c "\"$chorus\" peers --seed \"$seed\" --listen \"$listen\" --store \"$tmp/peers\" --wait 300 --json \
    | grep '\"service\":\"told3\"' | grep -q 'tcp://127.0.0.3:'"
ok $? "chorus on --advertise 127.0.0.3 is announced and reached"

#   Bad addresses are refused with the reason
for bad in "a b" "host:0" "host:70000" "[::1" "[nothex]:5" ":5670" "host:" "h/x"; do
    "$chorus" peers --advertise "$bad" --seed "$seed" --listen "$listen" --store "$tmp/peers" --wait 100 \
        >/dev/null 2>"$tmp/bad.err"
    rc=$?
    [ $rc -ne 0 ] && grep -qF "bad --advertise '$bad'" "$tmp/bad.err"
    ok $? "--advertise '$bad' refused (exit $rc): $(head -1 "$tmp/bad.err")"
done
CHORUS_ADVERTISE="x y" "$helper" --service=bad --store="$tmp/bad" >/dev/null 2>"$tmp/bad.err"
grep -q "bad CHORUS_ADVERTISE: 'x y'" "$tmp/bad.err"
ok $? "a bad CHORUS_ADVERTISE fails the start: $(head -1 "$tmp/bad.err")"
"$coordinator" --advertise "a b" --store "$tmp/coord" --flows "$srcdir/tests/flows/good" \
    >/dev/null 2>"$tmp/coord.err"
rc=$?
[ $rc -ne 0 ] && grep -q "bad --advertise" "$tmp/coord.err"
ok $? "chorus-coordinator --advertise 'a b' refused (exit $rc): $(head -1 "$tmp/coord.err")"
done_testing
