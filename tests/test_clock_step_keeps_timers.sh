#!/bin/sh
#   A node's timers run on a monotonic clock: when its wall clock jumps an
#   hour ahead, its peers do not all expire and a command it sent does not
#   time out at once. The wall clock is moved by libfaketime (Debian
#   package faketime), which leaves the monotonic clock alone.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

libfaketime=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
if [ -z "$libfaketime" ]; then
    echo "1..0 # SKIP libfaketime is not installed (Debian package faketime)"
    exit 0
fi
#   Under AddressSanitizer its runtime must be the first library loaded
preload="$libfaketime"
if [ -n "${ASAN_OPTIONS:-}" ]; then
    asan=$(readlink -f "$(${CC:-cc} -print-file-name=libasan.so)")
    [ -f "$asan" ] && preload="$asan:$libfaketime"
fi
echo "+0" > "$tmp/clock"
#   faked: the program runs with the wall clock in $tmp/clock (in place of
#   the shell that runs it, so that $! is its pid). libtool runs the built
#   program itself, not its wrapper script, so that only it is preloaded.
faked () {
    exec "$top_builddir/libtool" --mode=execute env LD_PRELOAD="$preload" \
        FAKETIME_TIMESTAMP_FILE="$tmp/clock" FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 "$@"
}

start_hub
"$chorus" serve slow --store "$tmp/slow" \
    --handle "work=touch $tmp/working; sleep 3; echo '\"done\"'" \
    2>"$tmp/serve.err" &
pids="$pids $!"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^slow '"
ok $? "the slow service has joined"

#   An observer that reports every peer change, on the faked clock
faked "$chorus" tail --monitor --json >"$tmp/tail.out" 2>"$tmp/tail.err" &
tail_pid=$!
pids="$pids $tail_pid"
await 100 sh -c "grep -q '\"joined\"' \"$tmp/tail.out\" && grep -q slow \"$tmp/tail.out\""
ok $? "the observer has met the mesh"

#   A command that takes 3 s, sent on the faked clock; the clock jumps an
#   hour while it waits
faked "$chorus" send slow work --timeout 10 >"$tmp/send.out" 2>"$tmp/send.err" &
send_pid=$!
pids="$pids $send_pid"
await 100 test -f "$tmp/working"
ok $? "the service is working on it"
echo "+1h" > "$tmp/clock"
wait "$send_pid"
rc=$?
[ $rc -eq 0 ]; ok $? "the command is answered, not timed out by the jump (exit $rc: $(cat "$tmp/send.err"))"
grep -q done "$tmp/send.out"; ok $? "with its reply: $(cat "$tmp/send.out")"
#   The observer has lived 3 s on the jumped clock by now
grep -q '"expired"' "$tmp/tail.out"; [ $? -ne 0 ]
ok $? "and the observer's peers did not expire: $(grep -c '"expired"' "$tmp/tail.out") expiries"
kill "$tail_pid"; wait "$tail_pid"
ok $? "the observer was still running and stops cleanly"
done_testing
