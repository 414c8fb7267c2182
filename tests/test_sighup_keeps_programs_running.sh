#!/bin/sh
#   SIGHUP asks a secure node to read its trust directory again; it must
#   not end the program, as it would by default: chorus tail, chorus on
#   and chorus-coordinator keep running through several (here on a
#   plaintext mesh, where there is nothing to read), and still stop
#   cleanly on SIGTERM.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub
"$chorus" tail >/dev/null 2>"$tmp/tail.err" &
tail_pid=$!
"$chorus" on order. --group billing --store "$tmp/on" --exec true 2>"$tmp/on.err" &
on_pid=$!
"$coordinator" --flows "$srcdir/examples/order-saga/flows" --store "$tmp/coordinator" \
    >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
coord_pid=$!
pids="$pids $tail_pid $on_pid"
await 100 grep -q ready "$tmp/coordinator.out"; ok $? "the coordinator is ready"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^billing '"; ok $? "chorus on has joined"

for entry in "tail $tail_pid" "on $on_pid" "chorus-coordinator $coord_pid"; do
    name=${entry% *} pid=${entry#* }
    kill -HUP "$pid"; sleep 0.3; kill -HUP "$pid"; sleep 0.7
    kill -0 "$pid" 2>/dev/null; ok $? "$name is still running after two SIGHUPs"
    kill -TERM "$pid"; wait "$pid"; rc=$?
    [ $rc -eq 0 ]; ok $? "and stops cleanly on SIGTERM (exit $rc)"
done
coord_pid=
done_testing
