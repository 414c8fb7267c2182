#!/bin/sh
#   test_coordinator_emits_once_under_kills.sh with the journal fsync'd:
#   a flow's event is then published to the node's store lazily, the store
#   is flushed to disk in a thread of its own, and the journal forgets the
#   event only after that flush. Ten SIGKILLs at moments between those
#   steps still leave every flow's order.done delivered, each with one
#   event id. The flows have 120 s, not 60, to finish after the kills:
#   each commit waits for the disk, which a loaded machine makes slow.
journal_sync=""
done_within=120
. "$srcdir/tests/test_coordinator_emits_once_under_kills.sh"
