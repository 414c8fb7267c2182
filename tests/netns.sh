#   netns.sh — hosts on a network of their own, for the tests of a mesh
#   across hosts (sourced after tap.sh and mesh.sh).
#
#   netns_setup N makes N network namespaces, the hosts 1..N, each with
#   loopback up and one interface, eth0, at 10.77.0.I/24, wired by a veth
#   pair to a Linux bridge. The bridges live in a namespace of their own,
#   so nothing is added to the machine's own network, parallel tests do
#   not collide (every name carries the test's PID), and no packet leaves
#   the test's bridge. On failure it returns 1 with the reason in
#   $netns_why, for the test to skip on (not root, no ip, no namespaces,
#   no bridge or veth).
#
#   netns_exec I CMD...        runs CMD on host I
#   netns_bg I CMD...          starts CMD on host I in the background, its
#                              PID (CMD's own: ip netns exec execs it) in
#                              $netns_pid and in mesh.sh's $pids
#   netns_addr I               host I's address
#   netns_netem I ARGS...      tc netem ARGS (delay 5ms loss 1%, ...) on what
#                              host I sends (so a round trip between two
#                              hosts with it crosses it twice);
#                              netns_netem_clear I removes it;
#                              netns_have_netem says whether the kernel has
#                              netem (sets $netns_why if not)
#   netns_cut I...             a partition: the hosts named move to a second
#                              bridge, cut off from the others (both sides
#                              keep their links up, as when a switch between
#                              them fails); netns_heal wires everyone back
#
#   The EXIT trap stops the test's processes (mesh.sh's cleanup), then
#   whatever still runs in the namespaces, then deletes the namespaces,
#   which takes their veths and bridges with them.
netns_prefix="chorus$$"
netns_net="$netns_prefix-net"
netns_hosts=0
netns_made=""
netns_why=""
tc=$(command -v tc || echo /usr/sbin/tc)

netns_cleanup () {
    cleanup
    for ns in $netns_made; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    done
    for ns in $netns_made; do ip netns del "$ns" 2>/dev/null; done
    netns_made=""
}
trap netns_cleanup EXIT

netns_host () { echo "$netns_prefix-$1"; }
netns_addr () { echo "10.77.0.$1"; }
netns_exec () { ns=$(netns_host "$1"); shift; ip netns exec "$ns" "$@"; }
#   (A function run with & would be a subshell, and $! its PID, not CMD's)
netns_bg () {
    ns=$(netns_host "$1"); shift
    ip netns exec "$ns" "$@" &
    netns_pid=$!
    pids="$pids $netns_pid"
}

#   netns_reaches I J: host I reaches host J (a TCP connect to a closed
#   port is refused, not lost)
netns_reaches () {
    netns_exec "$1" "${PYTHON:-python3}" -c '
import socket, sys
s = socket.socket ()
s.settimeout (1)
try:
    s.connect ((sys.argv [1], 9))
except ConnectionRefusedError:
    sys.exit (0)
except OSError:
    sys.exit (1)
' "$(netns_addr "$2")"
}

netns_setup () {
    if [ "$(id -u)" -ne 0 ]; then netns_why="needs root to make network namespaces"; return 1; fi
    if ! command -v ip >/dev/null; then netns_why="needs ip (iproute2)"; return 1; fi
    if ip netns list 2>/dev/null | grep -q "^$netns_net\b"; then
        netns_why="namespace $netns_net is left from an earlier run (ip netns del it)"
        return 1
    fi
    if ! ip netns add "$netns_net" 2>/dev/null; then
        netns_why="this machine does not allow network namespaces (ip netns add failed)"
        return 1
    fi
    netns_made="$netns_net"
    if ! ip -n "$netns_net" link add br0 type bridge 2>/dev/null \
    || ! ip -n "$netns_net" link add br1 type bridge 2>/dev/null; then
        netns_why="cannot make a Linux bridge (no bridge module?)"
        return 1
    fi
    ip -n "$netns_net" link set br0 up && ip -n "$netns_net" link set br1 up || return 1
    i=1
    while [ "$i" -le "$1" ]; do
        ns=$(netns_host "$i")
        ip netns add "$ns" || { netns_why="ip netns add $ns failed"; return 1; }
        netns_made="$netns_made $ns"
        if ! ip -n "$netns_net" link add "p$i" type veth peer name eth0 netns "$ns" 2>/dev/null; then
            netns_why="cannot make a veth pair (no veth module?)"
            return 1
        fi
        ip -n "$netns_net" link set "p$i" master br0 up \
            && ip -n "$ns" link set lo up \
            && ip -n "$ns" addr add "$(netns_addr "$i")/24" brd + dev eth0 \
            && ip -n "$ns" link set eth0 up \
            || { netns_why="cannot wire host $i"; return 1; }
        i=$((i + 1))
    done
    netns_hosts=$1
    #   Every host reaches every other before the test starts
    i=2
    while [ "$i" -le "$1" ]; do
        await 50 netns_reaches 1 "$i" \
            || { netns_why="host 1 cannot reach host $i across the bridge"; return 1; }
        i=$((i + 1))
    done
}

netns_have_netem () {
    if ! [ -x "$tc" ]; then netns_why="needs tc (iproute2) for netem"; return 1; fi
    if "$tc" -n "$netns_net" qdisc add dev p1 root netem delay 1ms 2>/dev/null; then
        "$tc" -n "$netns_net" qdisc del dev p1 root 2>/dev/null
        return 0
    fi
    netns_why="tc netem is not available (no sch_netem in this kernel)"
    return 1
}

netns_netem () {
    host=$1; shift
    "$tc" -n "$(netns_host "$host")" qdisc replace dev eth0 root netem "$@"
}

netns_netem_clear () {
    "$tc" -n "$(netns_host "$1")" qdisc del dev eth0 root 2>/dev/null
    true
}

netns_cut () {
    for host in "$@"; do ip -n "$netns_net" link set "p$host" master br1 || return 1; done
}

netns_heal () {
    i=1
    while [ "$i" -le "$netns_hosts" ]; do
        ip -n "$netns_net" link set "p$i" master br0 || return 1
        i=$((i + 1))
    done
}

#   netns_skip_unless_setup N: the hosts, or the whole test skipped with the reason
netns_skip_unless_setup () {
    if ! netns_setup "$1"; then
        skip "$netns_why"
        done_testing; exit
    fi
}
