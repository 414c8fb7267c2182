#!/bin/sh
#   A publisher whose store's disk fills up (a small tmpfs): publish fails
#   with an error that says the disk is full, every event it reported as
#   published is delivered, and once there is room again it publishes and
#   delivers as before. Skipped where a tmpfs cannot be mounted.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

disk="$tmp/disk"
mkdir -p "$disk"
if ! mount -t tmpfs -o size=1m tmpfs "$disk" 2>/dev/null; then
    skip "mounting a tmpfs is not allowed here (needs root)"
    done_testing
    exit 0
fi
unmount () { umount "$disk" 2>/dev/null; cleanup; }
trap unmount EXIT

start_hub
"$chorus" on order. --group billing --store "$tmp/billing" \
    --exec "cat >/dev/null; echo \$CHORUS_EVENT_ID >> $tmp/handled" 2>>"$tmp/on.err" &
pids="$pids $!"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^billing '"
ok $? "the billing group has joined"

#   Events of 20 KB until the 1 MB disk is full
pad=$(head -c 20000 /dev/zero | tr '\0' x)
i=1
while [ $i -le 200 ]; do echo "{\"n\": $i, \"pad\": \"$pad\"}"; i=$((i + 1)); done \
    > "$tmp/big.jsonl"
"$chorus" publish order.placed --lines --json --store "$disk/producer" --timeout 30 \
    < "$tmp/big.jsonl" > "$tmp/published" 2>"$tmp/publish.err"
rc=$?
[ $rc -ne 0 ]; ok $? "publishing onto a full disk fails (exit $rc)"
grep -q "disk is full" "$tmp/publish.err"
ok $? "and says the disk is full: $(grep -m1 'disk is full' "$tmp/publish.err")"
published=$(lines "$tmp/published")
[ "$published" -gt 0 ] && [ "$published" -lt 200 ]
ok $? "$published of 200 were stored before the disk filled"

#   Room again: what was acknowledged is all delivered, and new events go
mount -o remount,size=64m "$disk"
ok $? "the disk has room again"
i=1
while [ $i -le 10 ]; do echo "{\"after\": $i}"; i=$((i + 1)); done \
    | "$chorus" publish order.placed --lines --json --store "$disk/producer" --timeout 30 \
        >> "$tmp/published" 2>>"$tmp/publish.err"
rc=$?
[ $rc -eq 0 ]; ok $? "publishing works again: $(tail -1 "$tmp/publish.err")"
sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' "$tmp/published" | sort > "$tmp/published.ids"
want=$(lines "$tmp/published.ids")
await 300 has_lines "$tmp/handled" "$want"
sort -u "$tmp/handled" > "$tmp/handled.ids"
missing=$(comm -23 "$tmp/published.ids" "$tmp/handled.ids" | wc -l)
[ "$want" -eq $((published + 10)) ] && [ "$missing" -eq 0 ]
ok $? "every event reported published ($want) was delivered ($missing missing)"
done_testing
