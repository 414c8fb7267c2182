#!/bin/sh
#   A node that was itself stopped does not blame its peers for the time it
#   lost (protocol section 6.1, local health). Node "watcher" probes with
#   the default timing (a peer suspect after 1 s unanswered, dead after
#   2 s); node "peer" forgets only after 30 s. The peer is SIGSTOPped until
#   the watcher suspects it; then the watcher is SIGSTOPped, the peer
#   continued, and 3 s later the watcher continued: its probe of the peer,
#   begun before it stopped, has been unanswered for more than 2 s by the
#   clock, yet the peer was answering for the whole of those 3 s. The
#   watcher must find it alive, never declare it dead nor meet it anew, and
#   say in its log that it was stalled. Without that, every node that a
#   loaded host or a pause starves of CPU declares healthy peers dead.
#   A second pair shows what a node stalled past the expired time does.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

#   value SERIES: the watcher's figure ("name" or "name{labels}"), or -1
value () {
    "$PYTHON" - "$watcher_metrics" "$1" <<'PY'
import sys, urllib.request
try:
    body = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=2).read().decode()
except OSError:
    print(-1); sys.exit(0)
for line in body.splitlines():
    if line.split(" ")[0] == sys.argv[2]:
        print(int(float(line.split()[1]))); break
else:
    print(-1)
PY
}
alive_and_clear () {
    [ "$(value 'chorus_peers{state="alive"}')" = 1 ] \
        && [ "$(value 'chorus_peers{state="evasive"}')" = 0 ]
}
suspects () { [ "$(value 'chorus_peers{state="evasive"}')" = 1 ]; }

"$helper" --service=peer --store="$tmp/peer" --heartbeat=1000,1000,30000 --verbose \
    >"$tmp/peer.out" 2>"$tmp/peer.err" &
peer=$!
pids="$pids $peer"
await 50 grep -q READY "$tmp/peer.out"
seed=$(awk '/READY/ {print $2}' "$tmp/peer.out")
CHORUS_METRICS=127.0.0.1:0 "$helper" --service=watcher --store="$tmp/watcher" --seed="$seed" \
    --verbose >"$tmp/watcher.out" 2>"$tmp/watcher.err" &
watcher=$!
pids="$pids $watcher"
await 50 grep -q METRICS "$tmp/watcher.out"
watcher_metrics=$(awk '/METRICS/ {print $2}' "$tmp/watcher.out")
await 100 alive_and_clear
ok $? "the watcher meets the peer (figures at $watcher_metrics)"

kill -STOP "$peer"
await 50 suspects
ok $? "the peer stopped, the watcher suspects it"
#   The stall itself: the watcher stopped for longer than its expiry
kill -STOP "$watcher"
kill -CONT "$peer"
sleep 3
kill -CONT "$watcher"
await 100 alive_and_clear
ok $? "continued, the watcher finds the peer alive and suspects nothing"
! grep -q "did not answer our probe" "$tmp/watcher.err"
ok $? "it never declared the peer dead ($(grep -c "did not answer" "$tmp/watcher.err") times)"
[ "$(grep -c "met peer/" "$tmp/watcher.err")" -eq 1 ]
ok $? "nor met it anew (met $(grep -c "met peer/" "$tmp/watcher.err") times)"
grep -q "stalled for" "$tmp/watcher.err"
ok $? "it says it was stalled: $(grep -m1 "stalled for" "$tmp/watcher.err" | cut -c1-120)"
[ "$(value chorus_stalls_total)" -ge 1 ]
ok $? "its figures count the stall: chorus_stalls_total $(value chorus_stalls_total)"

#   Stalled past the expired time, a node may have been forgotten: its peer
#   drops all it sends but a HELLO. Node "sleeper", stopped for 3 s, is
#   expired by node "keeper" (both with the default times); continued, the
#   sleeper sends its HELLO to every peer again, and the keeper meets it
#   anew, without the sleeper having to find the keeper silent and forget
#   it first
"$helper" --service=keeper --store="$tmp/keeper" --verbose \
    >"$tmp/keeper.out" 2>"$tmp/keeper.err" &
keeper=$!
pids="$pids $keeper"
await 50 grep -q READY "$tmp/keeper.out"
"$helper" --service=sleeper --store="$tmp/sleeper" --verbose \
    --seed="$(awk '/READY/ {print $2}' "$tmp/keeper.out")" \
    >"$tmp/sleeper.out" 2>"$tmp/sleeper.err" &
sleeper=$!
pids="$pids $sleeper"
met_sleeper () { [ "$(grep -c "met sleeper/" "$tmp/keeper.err")" -ge "$1" ]; }
#   Both ways: a sleeper stopped before it has met the keeper has no peer
#   to send its HELLO to again
met_both () { met_sleeper 1 && grep -q "met keeper/" "$tmp/sleeper.err"; }
await 100 met_both
ok $? "the keeper and the sleeper meet"
kill -STOP "$sleeper"
await 100 grep -q "peer sleeper/.* expired" "$tmp/keeper.err"
ok $? "stopped, the sleeper is expired by the keeper"
sleep 2
kill -CONT "$sleeper"
await 100 met_sleeper 2
ok $? "continued, it is met anew by the keeper"
grep -q "our HELLO goes to every peer again" "$tmp/sleeper.err"
ok $? "because it sent its HELLO again after the stall"
! grep -q "did not answer our probe" "$tmp/sleeper.err"
ok $? "and it never had to declare the keeper dead for that"
done_testing
