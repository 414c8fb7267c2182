#   mesh.sh — what the shell tests of a mesh share (sourced after tap.sh):
#   the programs, a temporary directory, the processes to stop at the end,
#   waiting for a condition, and a hub node to seed from.
chorus="$top_builddir/tools/chorus"
coordinator="$top_builddir/coordinator/chorus-coordinator"
helper="$top_builddir/tests/node_helper"
tmp=$(mktemp -d)
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
