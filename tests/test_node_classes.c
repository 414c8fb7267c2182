/*  test_node_classes.c — each class of the node engine on its own, with a
    fake context in place of the engine (the classes' self-tests, in the
    czmq manner). Each runs in a child process, so that one that fails
    (a self-test aborts, saying which check and where) does not hide the
    others.
*/
#include "tap.h"
#include "chorus_peer.h"
#include "chorus_timer_heap.h"
#include "chorus_poller.h"
#include "chorus_datagram.h"
#include "chorus_peers.h"
#include "chorus_inbox.h"
#include "chorus_delivery.h"
#include "chorus_commands.h"
#include "chorus_observer.h"
#include "chorus_gate.h"

#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_class_t;

static const s_class_t s_classes [] = {
    {"timers: a heap, earliest first; moved and cancelled timers keep it in order",
     chorus__timers_test},
    {"poller: a message seen whether its signal fired or a send read it; removed "
     "readers unseen", chorus__poller_test},
    {"datagram: framed, sent and answered where it came from; too big, foreign or "
     "nameless ones refused, saying why", chorus__datagram_test},
    {"peer: sends, our HELLO first, and a bounded backlog of answers", chorus__peer_test},
    {"inbox: an event once to the application, recorded before acknowledged",
     chorus__inbox_test},
    {"commands: routed, retried, moved, timed out; received once, answered from the record",
     chorus__commands_test},
    {"delivery: per-key order, acks, backoff, ack timeout, hand-over, FETCH",
     chorus__delivery_test},
    {"observer: gaps repaired by FETCH, events handed over in order, losses reported",
     chorus__observer_test},
    {"gate: connections bounded; a closing names its peer, named before or after its "
     "acceptance is read", chorus__gate_test},
    {"peers: met by HELLO, answered, refused past the bound, restarted, expired, gossip, "
     "bounded news and tombstones",
     chorus__peers_test},
};

int
main (void)
{
    size_t count = sizeof (s_classes) / sizeof (s_classes [0]);
    for (size_t i = 0; i < count; i++) {
        fflush (stdout);
        pid_t pid = fork ();
        if (pid == 0) {
            s_classes [i].test (false);
            _exit (0);
        }
        int status = 0;
        waitpid (pid, &status, 0);
        ok (pid > 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0, "%s", s_classes [i].name);
    }
    return done_testing ();
}
