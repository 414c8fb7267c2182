#!/bin/sh
#   UDP beacon discovery, in a private network namespace with a veth pair
#   so that the broadcasts never leave this machine. Skipped where a
#   namespace cannot be made (not root, no unshare or ip).
. "$srcdir/tests/tap.sh"
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
    skip "needs root, unshare and ip to make a private network for broadcasts"
    done_testing; exit
fi
if ! unshare -n true 2>/dev/null; then
    skip "this machine does not allow network namespaces"
    done_testing; exit
fi
out=$(unshare -n sh -c '
    ip link set lo up &&
    ip link add chorus0 type veth peer name chorus1 &&
    ip addr add 192.0.2.1/24 brd + dev chorus0 &&
    ip link set chorus0 up && ip link set chorus1 up || exit 99
    CHORUS_TEST_BEACON_ONLY=1 CHORUS_TEST_BEACON_PORT=5680 \
        "$top_builddir/tests/test_discovery_meets_peers"' 2>&1)
rc=$?
if [ $rc -eq 99 ]; then
    skip "cannot make a veth pair in the namespace"
    done_testing; exit
fi
echo "$out" | grep -q "^ok .*two nodes without seeds meet by UDP beacon"
ok $? "two nodes meet by UDP beacon in a private network" || diag "$out"
echo "$out" | grep -q "^ok .*two secure nodes without seeds meet by UDP beacon"
ok $? "two secure nodes meet by UDP beacon (version 2, with their keys)" || diag "$out"
echo "$out" | grep -q "^ok .*did not take the secure ones' beacons"
ok $? "plaintext nodes ignore secure beacons" || diag "$out"
done_testing
