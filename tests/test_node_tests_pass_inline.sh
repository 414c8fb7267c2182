#!/bin/sh
#   The node's integration tests whose every node is run by the test's
#   thread pass again with every node's engine in that thread
#   (chorus_node_set_inline, set by test_node when CHORUS_TEST_INLINE is
#   in the environment): commands routed and failed, groups catching up,
#   batches published atomically, flush hooks, deferred results, tracing,
#   discovery, the secure mesh and the errors that say why. Tests that
#   leave a node unrun on purpose (a lagging observer, a publisher that
#   waits for instances it does not run) are not among them: a node run
#   inline does nothing while its thread does not run it.
. "$srcdir/tests/tap.sh"
CHORUS_TEST_INLINE=1
export CHORUS_TEST_INLINE
for name in test_commands_route_and_fail test_failures_say_why test_flush_hook_groups_writes \
            test_group_catches_up test_handlers_answer_later test_publish_batch_is_atomic \
            test_tracing_links_causes test_discovery_meets_peers test_secure_mesh; do
    out=$("$top_builddir/tests/$name" 2>&1)
    rc=$?
    passed=$(printf '%s\n' "$out" | grep -c '^ok')
    failed=$(printf '%s\n' "$out" | grep '^not ok\|^Bail out')
    [ $rc -eq 0 ] && [ -z "$failed" ] && [ "$passed" -gt 0 ]
    ok $? "$name passes with its nodes run inline ($passed checks)" \
        || diag "exit $rc" "$failed"
done
done_testing
