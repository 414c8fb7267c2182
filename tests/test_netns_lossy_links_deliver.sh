#!/bin/sh
#   Group delivery over slow, lossy links (tests/netns.sh): a publisher on
#   host 1 and a group of two instances on hosts 2 and 3, every host's
#   link 5 ms late and losing 1% of what it sends (tc netem). 300 events
#   published are all acknowledged, and the group handles each exactly
#   once. Skipped where the kernel has no netem.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
. "$srcdir/tests/netns.sh"
netns_skip_unless_setup 3
if ! netns_have_netem; then
    skip "$netns_why"
    done_testing; exit
fi
seed="tcp://$(netns_addr 2):5670"
events=300

for host in 1 2 3; do
    netns_netem $host delay 5ms loss 1%
    ok $? "host $host sends with 5 ms delay and 1% loss"
done
for host in 2 3; do
    netns_bg $host "$helper" --service=ledger --subscribe=order. --log="$tmp/ledger-$host.log" \
        --store="$tmp/ledger-$host" --listen=tcp://0.0.0.0:5670 --seed="$seed" \
        >"$tmp/ledger-$host.out" 2>"$tmp/ledger-$host.err"
done
two_ledgers () {
    [ "$(netns_exec 1 "$chorus" peers --seed "$seed" --listen tcp://0.0.0.0:0 --wait 1000 2>/dev/null \
        | grep -c "^ledger .* alive ")" -eq 2 ]
}
await_s 30 two_ledgers
ok $? "the group's two instances on hosts 2 and 3 are met from host 1"

i=1
while [ $i -le $events ]; do echo "{\"n\": $i}"; i=$((i + 1)); done >"$tmp/orders.jsonl"
started=$(date +%s)
netns_exec 1 "$chorus" publish order.placed --lines --key-field n --seed "$seed" \
    --listen tcp://0.0.0.0:0 --store "$tmp/publisher" --timeout 40 \
    <"$tmp/orders.jsonl" >/dev/null 2>"$tmp/publish.err"
rc=$?
[ $rc -eq 0 ] && grep -q "delivered $events events to ledger" "$tmp/publish.err"
ok $? "all $events events are acknowledged (exit $rc, $(($(date +%s) - started)) s): $(tail -1 "$tmp/publish.err")"

#   Events the group handled, "publisher seq" a line
handled () { cat "$tmp"/ledger-*.log 2>/dev/null | awk '$1 == "E" { print $2, $3 }'; }
all_handled () { [ "$(handled | wc -l)" -ge $events ]; }
await_s 20 all_handled
n=$(handled | wc -l)
u=$(handled | sort -u | wc -l)
[ "$n" -eq $events ] && [ "$u" -eq $events ]
ok $? "the group handled each exactly once ($n handled, $u distinct)"
[ -s "$tmp/ledger-2.log" ] && [ -s "$tmp/ledger-3.log" ]
ok $? "shared between hosts 2 and 3 ($(lines "$tmp/ledger-2.log") + $(lines "$tmp/ledger-3.log"))"
done_testing
