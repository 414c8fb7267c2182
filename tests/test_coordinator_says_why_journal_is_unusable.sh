#!/bin/sh
#   A journal the coordinator cannot use but that is not damaged gets its own
#   true message, naming the journal, and exit status 1 (not 5): one that
#   another coordinator has open (locked), and one it may not write
#   (permission denied, checked as an unprivileged user when the test runs
#   as root). Neither is touched.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

mkdir "$tmp/flows"
cat > "$tmp/flows/hold.yaml" <<'EOF'
flow: hold
version: 1
steps:
  - id: wait
    service: nobody
    command: wait
EOF

#   Locked: a second coordinator on the store of a running one
"$coordinator" --flows "$tmp/flows" --store "$tmp/store" --no-sync \
    >"$tmp/first.out" 2>"$tmp/first.err" &
coord_pid=$!
await 100 grep -q ready "$tmp/first.out"
ok $? "a coordinator runs on the store"
"$coordinator" --flows "$tmp/flows" --store "$tmp/store" --no-sync \
    >"$tmp/second.out" 2>"$tmp/second.err"
rc=$?
[ $rc -eq 1 ]; ok $? "a second one on the same store exits 1 (got $rc)"
grep -q "journal $tmp/store/journal is locked by another process" "$tmp/second.err"
ok $? "saying the journal is locked: $(head -1 "$tmp/second.err")"
kill "$coord_pid"; wait "$coord_pid"
ok $? "the first one stops cleanly"
coord_pid=""

#   Permission denied: a journal its user may not write
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    chmod 755 "$tmp"
    chmod -R go-w "$tmp/store"
    chmod -R go+rX "$tmp/store" "$tmp/flows"
    setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$coordinator" --flows "$tmp/flows" --store "$tmp/store" --no-sync \
        >"$tmp/denied.out" 2>"$tmp/denied.err"
    rc=$?
    [ $rc -eq 1 ]; ok $? "a coordinator that may not write its journal exits 1 (got $rc)"
    grep -q "journal $tmp/store/journal: .*permission denied" "$tmp/denied.err"
    ok $? "saying permission denied: $(head -1 "$tmp/denied.err")"
else
    skip "permission denied: needs root to run as another user"
    skip "permission denied: needs root to run as another user"
fi

#   Neither was taken for damage: the journal opens as it was
"$coordinator" --flows "$tmp/flows" --store "$tmp/store" --no-sync \
    >"$tmp/again.out" 2>"$tmp/again.err" &
coord_pid=$!
await 100 grep -q ready "$tmp/again.out"
ok $? "the journal is untouched: a coordinator starts on it $(head -1 "$tmp/again.err")"
done_testing
