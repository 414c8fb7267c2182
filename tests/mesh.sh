#   mesh.sh — what the shell tests of a mesh share (sourced after tap.sh):
#   the programs, a temporary directory, the processes to stop at the end,
#   waiting for a condition, and a hub node to seed from.
chorus="$top_builddir/tools/chorus"
coordinator="$top_builddir/coordinator/chorus-coordinator"
helper="$top_builddir/tests/node_helper"
tmp=$(mktemp -d)
#   A command run without --store keeps its default store in the test's
#   directory, not in the user's data directory from one run to the next
XDG_DATA_HOME="$tmp/data"
export XDG_DATA_HOME
#   and a node without a store makes its temporary one there: one killed
#   cannot remove it, and the test's directory goes with the test
TMPDIR="$tmp"
export TMPDIR
pids=""
#   Every process a test starts goes in $pids (or $coord_pid, $pid_a,
#   $pid_b for those it restarts); all are stopped and reaped at exit
cleanup () {
    for pid in $coord_pid $pid_a $pid_b $pids; do kill "$pid" 2>/dev/null; done
    for pid in $coord_pid $pid_a $pid_b $pids; do wait "$pid" 2>/dev/null; done
    [ -n "$KEEP_TMP" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

#   await TENTHS CMD...: until CMD succeeds, at most TENTHS tenths of a second
await () {
    tries=$1; shift
    while [ "$tries" -gt 0 ]; do
        "$@" && return 0
        tries=$((tries - 1)); sleep 0.1
    done
    return 1
}

#   await_s SECONDS CMD...: the same, for commands that take a while
await_s () {
    deadline=$(($(date +%s) + $1)); shift
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

#   have_peers SERVICE...: chorus peers, after 300 ms, lists each service
have_peers () {
    met=$("$chorus" peers --wait 300 2>/dev/null)
    for service in "$@"; do
        echo "$met" | grep -q "^$service " || return 1
    done
}

#   Lines in a file, 0 if it does not exist; has_lines FILE N
lines () { [ -f "$1" ] && wc -l < "$1" | tr -d ' ' || echo 0; }
has_lines () { [ "$(lines "$1")" -ge "$2" ]; }

#   start_hub: a node everyone seeds with (gossip does the rest); sets
#   and exports CHORUS_SEEDS, and records an assertion
start_hub () {
    "$helper" --service=hub >"$tmp/hub.out" &
    pids="$pids $!"
    await 50 grep -q READY "$tmp/hub.out"
    hub=$(awk '/READY/ {print $2}' "$tmp/hub.out")
    [ -n "$hub" ]; ok $? "a hub node to seed from: $hub"
    CHORUS_SEEDS="$hub"
    export CHORUS_SEEDS
}

#   start_coordinator [OPTION...]: a coordinator on the test's flows and
#   store ($tmp/flows, $tmp/coordinator), --no-sync, with the options given,
#   its output appended to $tmp/coordinator.out and .err; sets $coord_pid.
#   A test may define its own instead
start_coordinator () {
    "$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync "$@" \
        >>"$tmp/coordinator.out" 2>>"$tmp/coordinator.err" &
    coord_pid=$!
}

#   kill_coordinator_ten_times SEED MIN SPAN EFFECTS: SIGKILLs the
#   coordinator ($coord_pid) ten times, at moments MIN to MIN + SPAN
#   seconds apart drawn from a generator seeded with SEED, restarting it at
#   once each time with the test's start_coordinator. Sets $killed (kills
#   made) and $busy (kills made while the test's `effects` counted fewer
#   than EFFECTS), and notes each kill with the starts answered so far
kill_coordinator_ten_times () {
    awk -v seed="$1" -v min="$2" -v span="$3" \
        'BEGIN { srand (seed); for (i = 0; i < 10; i++) printf "%.2f\n", min + span * rand () }' \
        > "$tmp/moments"
    killed=0
    busy=0
    for moment in $(cat "$tmp/moments"); do
        sleep "$moment"
        if kill -0 "$coord_pid" 2>/dev/null && kill -9 "$coord_pid"; then
            wait "$coord_pid" 2>/dev/null
            killed=$((killed + 1))
        fi
        done_now=$(effects)
        [ "$done_now" -lt "$4" ] && busy=$((busy + 1))
        diag "kill $killed after ${moment}s: $(lines "$tmp/starts") starts answered, $done_now effects"
        start_coordinator
    done
}
