#!/bin/sh
#   `chorus publish --lines` publishes what stdin has ready in batches
#   (chorus_node_publish_batch), fsync'd when asked: 1000 lines reach a
#   group of two instances, each event handled exactly once; a bad line
#   stops publishing, named by its number, and the lines before it are
#   published and delivered, those after it are not.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub
for n in 1 2; do
    "$helper" --service=ledger --seed="$hub" --subscribe=order. --log="$tmp/ledger-$n.log" \
        --store="$tmp/ledger-$n" >"$tmp/ledger-$n.out" &
    pids="$pids $!"
done
await 100 sh -c "[ \$(\"$chorus\" peers --wait 300 | grep -c ledger) -ge 2 ]"
ok $? "the ledger group has two instances"

#   Every event the group handled, once a line: "seq key"
handled () { cat "$tmp"/ledger-*.log 2>/dev/null | awk '$1 == "E" { print $3, $4 }'; }

i=1
while [ $i -le 1000 ]; do
    echo "{\"id\": \"order-$((i % 10))\", \"n\": $i}"; i=$((i + 1))
done > "$tmp/orders.jsonl"
"$chorus" publish order.placed --lines --key-field id --durability fsync --json \
    --store "$tmp/orders" --timeout 60 <"$tmp/orders.jsonl" >"$tmp/ids" 2>"$tmp/publish.err"
rc=$?
[ $rc -eq 0 ]; ok $? "publish --lines --durability fsync of 1000 lines exits 0 (exit $rc)"
grep -q "delivered 1000 events to ledger" "$tmp/publish.err"
ok $? "and says the group acknowledged all 1000: $(tail -1 "$tmp/publish.err")"
n=$(grep -c '"id"' "$tmp/ids")
u=$(grep -o '"id":"[^"]*"' "$tmp/ids" | sort -u | wc -l)
[ "$n" -eq 1000 ] && [ "$u" -eq 1000 ]; ok $? "--json prints 1000 distinct ids ($n, $u)"
await 100 sh -c "[ \$(cat $tmp/ledger-*.log | grep -c '^E ') -ge 1000 ]"
n=$(handled | wc -l)
[ "$n" -eq 1000 ]; ok $? "the group handled 1000 events ($n)"
dups=$(handled | awk '{ print $1 }' | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ]; ok $? "each exactly once ($dups handled twice)"
[ -s "$tmp/ledger-1.log" ] && [ -s "$tmp/ledger-2.log" ]
ok $? "shared between the two instances ($(lines "$tmp/ledger-1.log") + $(lines "$tmp/ledger-2.log"))"
keys=$(handled | awk '{ print $2 }' | sort | uniq -c | awk '$1 == 100' | wc -l)
[ "$keys" -eq 10 ]; ok $? "keyed by --key-field: 10 keys of 100 events each ($keys)"

#   A bad line in the middle of what is ready at once
: >"$tmp/ledger-1.log"
: >"$tmp/ledger-2.log"
{
    i=1
    while [ $i -le 299 ]; do echo "{\"n\": $i}"; i=$((i + 1)); done
    echo '{"n": 300'
    echo '{"n": 301}'
} >"$tmp/bad.jsonl"
"$chorus" publish order.placed --lines --store "$tmp/orders" --timeout 60 \
    <"$tmp/bad.jsonl" >/dev/null 2>"$tmp/bad.err"
rc=$?
[ $rc -eq 1 ]; ok $? "a bad line makes publish --lines exit 1 (exit $rc)"
grep -q "^chorus publish: line 300: " "$tmp/bad.err"; ok $? "naming it: $(head -1 "$tmp/bad.err")"
grep -q "delivered 299 events to ledger" "$tmp/bad.err"
ok $? "the 299 lines before it are published and delivered: $(tail -1 "$tmp/bad.err")"
await 100 sh -c "[ \$(cat $tmp/ledger-*.log | grep -c '^E ') -ge 299 ]"
sleep 0.5
n=$(handled | wc -l)
[ "$n" -eq 299 ]; ok $? "the group handled those 299 and not the line after the bad one ($n)"
done_testing
