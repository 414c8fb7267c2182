#!/bin/sh
#   Past 8 members a mesh is not a full mesh (protocol sections 5 and 6): a
#   node knows every member from membership news, and connects only to the
#   members it needs. Eleven nodes (a hub, a subscribed "billing", a
#   "payments" that handles charge, eight idle ones) know one another; then
#   a twelfth, "orders", joins, publishes 50 events and calls payments. It
#   learns all eleven from the hub's list, yet meets only those it needs:
#   its neighbours on the rings, the subscriber it delivers to, the service
#   it calls. Every event reaches billing exactly once, the call is
#   answered, and a member orders never met, killed with -9, is known dead
#   by every node, orders included, from news alone. Last, a subscriber
#   killed mid-stream and restarted at once on the same store and port is
#   met again by its publisher, and gets every event; and a member that
#   refused a caller's greeting while it was full meets the caller once it
#   has room, and answers its call.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"


#   start NAME ARGS...: a verbose node seeded to the hub
start () {
    name=$1; shift
    "$helper" --service="$name" --store="$tmp/$name" --seed="$hub" --verbose "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    eval "pid_$name=$!"
    pids="$pids $!"
}

#   known NAME: how many of the others NAME knows (met, or known from news)
members="hub billing payments idle1 idle2 idle3 idle4 idle5 idle6 idle7 idle8 orders"
known () {
    count=0
    for other in $members; do
        [ "$other" = "$1" ] && continue
        grep -Eq ": (met|member) $other/" "$tmp/$1.err" && count=$((count + 1))
    done
    echo $count
}
all_know () {
    for name in $1; do [ "$(known "$name")" -ge "$2" ] || return 1; done
}

"$helper" --service=hub --store="$tmp/hub" --verbose >"$tmp/hub.out" 2>"$tmp/hub.err" &
pids="$pids $!"
await 50 grep -q READY "$tmp/hub.out"
hub=$(awk '/READY/ {print $2}' "$tmp/hub.out")
start billing --subscribe=order. --log="$tmp/billing.log"
start payments --handle=charge --log="$tmp/payments.log"
for i in 1 2 3 4 5 6 7 8; do start "idle$i"; done
first="hub billing payments idle1 idle2 idle3 idle4 idle5 idle6 idle7 idle8"
await 300 all_know "$first" 10
ok $? "eleven nodes each know the ten others"

start orders --wait-peers=11 --publish=50 --topic=order.placed --call=payments.charge \
    --log="$tmp/orders.log"
await 100 grep -q PUBLISHED "$tmp/orders.out"
await 100 all_know "$first orders" 11
ok $? "a twelfth joins: every node knows all eleven others"

met=$(grep -Ec ": met [a-z0-9]+/" "$tmp/orders.err")
[ "$met" -lt 11 ]
ok $? "orders met only the members it needs: $met of 11"

delivered () { [ "$(lines "$tmp/billing.log")" -ge 50 ]; }
await 100 delivered
unique=$(awk '{print $3}' "$tmp/billing.log" | sort -u | wc -l | tr -d ' ')
[ "$(lines "$tmp/billing.log")" -eq 50 ] && [ "$unique" -eq 50 ]
ok $? "billing, met on demand, handled every event once: $(lines "$tmp/billing.log") lines, $unique seqs"

await 100 grep -q "^R call-1" "$tmp/orders.log"
ok $? "the call to payments was answered"
grep -q "^C call-1 1 done" "$tmp/payments.log"
ok $? "and payments handled it once"

#   A member orders has not met: its death comes to orders as news
victim=""
for name in idle1 idle2 idle3 idle4 idle5 idle6 idle7 idle8; do
    grep -Eq ": met $name/" "$tmp/orders.err" || { victim=$name; break; }
done
if [ -z "$victim" ]; then
    ok 1 "a member orders did not meet (it met them all)"
    ok 1 "is known dead by every node"
else
    eval "kill -9 \$pid_$victim"
    dead () { grep -Eq ": peer $victim/[0-9A-F]+ expired" "$tmp/$1.err"; }
    others=$(echo "$first orders" | tr ' ' '\n' | grep -vx "$victim")
    all_dead () { for name in $others; do dead "$name" || return 1; done; }
    await 150 all_dead
    ok $? "$victim, killed with -9, is known dead by every other node"
    grep -Eq "peer $victim/[0-9A-F]+ did not answer our probe" "$tmp/orders.err"
    [ $? -ne 0 ]
    ok $? "orders, which never met $victim, learned it from news, not its own probe"
fi

#   A subscriber killed with -9 mid-stream and restarted at once on its store
#   and its endpoint (the same instance, a new start, as a service on a fixed
#   port restarts) is met again by the publisher that had met it: the events
#   in flight when it died reach it after its restart
alive=12
[ -z "$victim" ] && alive=13
start ledger --subscribe=invoice. --slow-events=50 --log="$tmp/ledger.log"
start invoicer --wait-peers=$alive --publish=60 --topic=invoice.issued --ack-timeout=1000 \
    --log="$tmp/invoicer.log"
await 200 grep -q PUBLISHED "$tmp/invoicer.out"
handled () { [ "$(lines "$tmp/ledger.log")" -ge "$1" ]; }
await 300 handled 10
ledger=$(awk '/READY/ {print $2}' "$tmp/ledger.out")
kill -9 "$pid_ledger"
wait "$pid_ledger" 2>/dev/null
before=$(lines "$tmp/ledger.log")
start ledger --subscribe=invoice. --slow-events=50 --log="$tmp/ledger.log" --listen="$ledger"
seqs () { awk '{print $3}' "$tmp/ledger.log" | sort -u | wc -l | tr -d ' '; }
all_seqs () { [ "$(seqs)" -ge 60 ]; }
await 300 all_seqs
ok $? "ledger, killed after $before events and restarted at once, got all 60: $(seqs) seqs"

#   A member that refuses our greeting (it has its maximum of peers) is
#   probed and greeted again, less often each time: once a member leaves
#   and it has room, it meets us, and the call waiting for it is answered.
#   Narrow observes, so it meets every member first hand: none is a member
#   it knows from news alone, which a node greeting it would replace
#   (protocol section 4.5, tests/peer/test_node_prefers_greeters.py)
others=$((alive + 1))   #   every member but narrow
start narrow --handle=audit --observe=audit. --max-peers=$others --log="$tmp/narrow.log"
narrow_full () {
    count=0
    for other in $members ledger invoicer; do
        grep -Eq ": (met|member) $other/" "$tmp/narrow.err" && count=$((count + 1))
    done
    [ $count -ge $others ]
}
await 200 narrow_full
start caller --wait-peers=$((others + 1)) --call=narrow.audit --log="$tmp/caller.log"
await 200 grep -q "refused peer caller/" "$tmp/narrow.err"
ok $? "narrow, full, refused the caller's greeting"
grep -q "^R call-1" "$tmp/caller.log"
[ $? -ne 0 ]; ok $? "and the call waits"
leaver=""
for name in idle1 idle2 idle3 idle4 idle5 idle6 idle7 idle8; do
    [ "$name" != "$victim" ] && { leaver=$name; break; }
done
eval "kill \$pid_$leaver"
#   It says goodbye to those it has a connection to; the others learn it
#   from news
gone () { grep -Eq ": peer $leaver/[0-9A-F]+ (left|expired)" "$tmp/$1.err"; }
rest=$(echo "$first orders ledger invoicer narrow caller" | tr ' ' '\n' | grep -vx "$leaver" \
       | grep -vx "${victim:-none}")
all_gone () { for name in $rest; do gone "$name" || return 1; done; }
await 150 all_gone
ok $? "$leaver left, and every other node knows it"
await 300 grep -q "^R call-1 " "$tmp/caller.log"
grep -q "^R call-1 0 " "$tmp/caller.log"
ok $? "once $leaver left, narrow met the caller and its call was answered: $(cat "$tmp/caller.log")"
grep -q "^C call-1 1 done" "$tmp/narrow.log"
ok $? "and narrow handled it once"
done_testing
