#!/bin/sh
#   A node store that cannot be used for another reason than damage says
#   which, exits 1 (not 5) and is left as it was: one in use by another
#   process, one its user may not write.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub
"$chorus" on order. --group billing --store "$tmp/store" --exec true 2>"$tmp/first.err" &
first=$!
pids="$pids $first"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^billing '"
ok $? "a node runs on the store"

"$chorus" on order. --group billing --store "$tmp/store" --exec true 2>"$tmp/second.err"
rc=$?
[ $rc -eq 1 ]; ok $? "a second one on the same store exits 1 (got $rc)"
grep -q "store $tmp/store is in use by another process" "$tmp/second.err"
ok $? "saying it is in use: $(grep -m1 'in use' "$tmp/second.err")"
kill "$first"; wait "$first"
ok $? "the first one stops cleanly"

if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    chmod 755 "$tmp"
    chmod -R go-w "$tmp/store"
    chmod -R go+rX "$tmp/store"
    echo '{}' | setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$chorus" publish order.placed --lines --store "$tmp/store" --timeout 1 \
        2>"$tmp/denied.err"
    rc=$?
    [ $rc -eq 1 ]; ok $? "a publisher that may not write the store exits 1 (got $rc)"
    grep -q "store $tmp/store: .*permission denied" "$tmp/denied.err"
    ok $? "saying permission denied: $(grep -m1 'permission' "$tmp/denied.err")"
else
    skip "permission denied: needs root to run as another user"
    skip "permission denied: needs root to run as another user"
fi

"$chorus" store check "$tmp/store" > "$tmp/check.out"
ok $? "neither was taken for damage: the store checks sound"
grep -q "last stop: clean" "$tmp/check.out"; ok $? "and its last stop was clean"
done_testing
